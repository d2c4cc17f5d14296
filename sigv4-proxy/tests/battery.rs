//! A battery of bad inputs: malformed HTTP, oversize and lying bodies, smuggling attempts,
//! slow and vanishing clients, failing upstreams, missing credentials, refused paths, loops
//! and configuration errors.
//!
//! For every case: the exact status (or what the client sees), that the proxy process is
//! still alive and serves the next normal request, that nothing went upstream when the case
//! was refused, and at the end that no secret reached the proxy log. One Prometheus, one
//! stand-in and a few proxies serve many cases; each assertion names its case.

mod support;

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::proxy_process::{ProxyProcess, TempHome, curl, run_proxy};
use support::{HttpResponse, Prometheus, StandIn, StandInOptions};

const WS: &str = "ws-test";
const ECHO: &str = "/workspaces/ws-test/__test/echo";
const AKID: &str = "ASIABATTERYKEYID0042";
const SECRET: &str = "battery/SECRET+Key/zXq9wJalrXUtnFEMIK7MD";
const TOKEN: &str = "IQoJb3JpZ2luX2VjBATTERYSESSIONTOKEN/4f1d2c3b";
/// What clients try to inject; none of it may be forwarded or logged.
const INJECTED_SIGNATURE: &str = "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed";
const INJECTED_TOKEN: &str = "client-injected-session-token-7c1e";
const INJECTED_BEARER: &str = "client-bearer-secret-b4e1";

// ---------------------------------------------------------------------------------------------
// Stacks
// ---------------------------------------------------------------------------------------------

struct Stack {
    _prometheus: Prometheus,
    standin: StandIn,
}

fn stack_with(creds_ttl_secs: u64, creds_token: Option<&str>) -> Stack {
    let prometheus = Prometheus::start();
    let standin = StandIn::start(StandInOptions {
        upstream: prometheus.url(),
        workspace: WS.into(),
        region: "us-east-1".into(),
        static_keys: vec![(AKID.into(), SECRET.into(), Some(TOKEN.into()))],
        creds_ttl_secs,
        creds_token: creds_token.map(str::to_owned),
        moto: false,
    });
    Stack {
        _prometheus: prometheus,
        standin,
    }
}

fn stack() -> Stack {
    stack_with(900, None)
}

/// The static keys the stand-in knows, as the proxy's environment.
fn static_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("AWS_ACCESS_KEY_ID", AKID),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_SESSION_TOKEN", TOKEN),
        // Debug logging everywhere we own, so the secret check below means something.
        ("RUST_LOG", "debug"),
    ]
}

fn upstream_args(port: u16) -> Vec<String> {
    [
        "--host",
        &format!("127.0.0.1:{port}"),
        "--upstream-url-scheme",
        "http",
        "--name",
        "aps",
        "--region",
        "us-east-1",
        "-v",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A verbose proxy in front of `upstream_port` with the stand-in's static keys.
fn proxy_to(upstream_port: u16, extra: &[&str]) -> ProxyProcess {
    ProxyProcess::signing_for(upstream_port, &[&["-v"], extra].concat(), &static_env())
}

// ---------------------------------------------------------------------------------------------
// Bookkeeping: case tally, upstream counts, liveness, secrets
// ---------------------------------------------------------------------------------------------

struct Tally {
    group: &'static str,
    cases: Vec<&'static str>,
}

impl Tally {
    fn new(group: &'static str) -> Self {
        Self {
            group,
            cases: Vec::new(),
        }
    }

    /// Starts a case; returns its name for assertion messages.
    fn case(&mut self, name: &'static str) -> &'static str {
        self.cases.push(name);
        name
    }

    fn finish(self, at_least: usize) {
        let n = self.cases.len();
        eprintln!(
            "battery/{}: {n} cases passed: {}",
            self.group,
            self.cases.join(", ")
        );
        assert!(
            n >= at_least,
            "{}: only {n} cases ran, expected at least {at_least}",
            self.group
        );
    }
}

/// What the stand-in has seen: verified-or-not `/workspaces` records, and every request it
/// read at all (routed or not, including ones it refused as malformed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    recorded: usize,
    dispatched: u64,
}

fn seen(standin: &StandIn) -> Seen {
    Seen {
        recorded: standin.requests().len(),
        dispatched: standin.dispatched(),
    }
}

fn assert_nothing_upstream(standin: &StandIn, before: Seen, case: &str) {
    // A refused request must not be in flight upstream either: give a straggler a moment.
    std::thread::sleep(Duration::from_millis(30));
    let after = seen(standin);
    assert_eq!(
        after,
        before,
        "{case}: something reached the upstream: {:#?}",
        &standin.requests()[before.recorded.min(after.recorded)..]
    );
}

/// The proxy process is alive and a normal request through it answers 200.
fn assert_serves(proxy: &mut ProxyProcess, case: &str) {
    assert!(
        proxy.is_running(),
        "{case}: the proxy exited:\n{}",
        proxy.log()
    );
    let answer = support::http_get(proxy.addr.port(), ECHO)
        .unwrap_or_else(|e| panic!("{case}: the next request failed: {e}\n{}", proxy.log()));
    assert_eq!(
        answer.status,
        200,
        "{case}: the next request: {}",
        answer.text()
    );
}

/// The proxy process is alive and its admin listener answers (for proxies whose upstream
/// is down on purpose, where no request can succeed).
fn assert_alive(proxy: &mut ProxyProcess, case: &str) {
    assert!(
        proxy.is_running(),
        "{case}: the proxy exited:\n{}",
        proxy.log()
    );
    let answer = support::http_get(proxy.admin_addr.port(), "/healthz")
        .unwrap_or_else(|e| panic!("{case}: /healthz failed: {e}\n{}", proxy.log()));
    assert_eq!(answer.status, 200, "{case}: /healthz");
}

fn assert_no_secrets(proxy: &ProxyProcess, which: &str) {
    let log = proxy.log();
    assert!(!log.is_empty(), "{which}: empty log");
    for secret in [
        SECRET,
        TOKEN,
        AKID,
        INJECTED_SIGNATURE,
        INJECTED_TOKEN,
        INJECTED_BEARER,
        "Signature=",
    ] {
        assert!(
            !log.contains(secret),
            "{which}: {secret:?} is in the proxy log:\n{log}"
        );
    }
}

fn json_error(answer: &HttpResponse) -> String {
    answer.json()["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn header_value<'a>(record: &'a serde_json::Value, name: &str) -> Vec<&'a str> {
    record["headers"]
        .as_array()
        .map(|headers| {
            headers
                .iter()
                .filter(|h| h[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
                .filter_map(|h| h[1].as_str())
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP over TCP
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// A whole response arrived (only with [`Until::Response`]).
    Complete,
    /// The server closed the connection.
    Eof,
    /// The server reset the connection.
    Reset,
    /// Neither within the time allowed.
    TimedOut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Until {
    /// Stop reading once one complete final response has arrived.
    Response,
    /// Read until the server closes (or the time is up).
    Close,
}

#[derive(Debug)]
struct Raw {
    bytes: Vec<u8>,
    ending: Ending,
    elapsed: Duration,
}

impl Raw {
    /// Status codes of every response head in the bytes, interim ones included.
    fn statuses(&self) -> Vec<u16> {
        let mut out = Vec::new();
        let mut at = 0;
        while self.bytes[at..].starts_with(b"HTTP/1.") {
            match response_at(&self.bytes, at) {
                Some((status, end)) => {
                    out.push(status);
                    match end {
                        Some(end) => at = end,
                        None => break,
                    }
                }
                None => {
                    // A head cut short: its status line is still worth reporting.
                    let line = String::from_utf8_lossy(&self.bytes[at..]);
                    if let Some(code) = line.split_whitespace().nth(1).and_then(|c| c.parse().ok())
                    {
                        out.push(code);
                    }
                    break;
                }
            }
        }
        out
    }

    /// The first final response, parsed (body de-chunked).
    fn response(&self) -> HttpResponse {
        let (start, end) = final_response_span(&self.bytes).unwrap_or((0, self.bytes.len()));
        support::parse_response(&self.bytes[start..end]).unwrap_or_else(|e| {
            panic!(
                "not an HTTP response ({e}), ending {:?}: {:?}",
                self.ending,
                String::from_utf8_lossy(&self.bytes)
            )
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The response whose status line starts at `start`: its status once the head is complete,
/// and where it ends if it is complete and self-delimited (an interim 1xx answer ends with
/// its head; a body delimited by closing the connection has no end here).
fn response_at(buf: &[u8], start: usize) -> Option<(u16, Option<usize>)> {
    let head_end = start + find(&buf[start..], b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[start..head_end]).to_ascii_lowercase();
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    if (100..200).contains(&status) || matches!(status, 204 | 304) {
        return Some((status, Some(head_end)));
    }
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim() == name)
            .map(|(_, v)| v.trim().to_owned())
    };
    if header("transfer-encoding").is_some_and(|te| te.contains("chunked")) {
        let mut at = head_end;
        loop {
            let Some(line_len) = find(&buf[at..], b"\r\n") else {
                return Some((status, None));
            };
            let size_text = String::from_utf8_lossy(&buf[at..at + line_len]);
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            at += line_len + 2;
            if size == 0 {
                let end = find(&buf[at..], b"\r\n").map(|n| at + n + 2);
                return Some((status, end));
            }
            at += size + 2;
            if at > buf.len() {
                return Some((status, None));
            }
        }
    }
    if let Some(length) = header("content-length") {
        let end = head_end + length.parse::<usize>().ok()?;
        return Some((status, (buf.len() >= end).then_some(end)));
    }
    Some((status, None))
}

/// Where the first complete non-1xx response lies in `buf`, if it is complete.
fn final_response_span(buf: &[u8]) -> Option<(usize, usize)> {
    let mut start = 0;
    loop {
        let (status, end) = response_at(buf, start)?;
        if (100..200).contains(&status) {
            start = end?;
            continue;
        }
        return end.map(|end| (start, end));
    }
}

/// Connects, writes `parts` (each after its delay) from a second thread, optionally
/// half-closes, and reads what comes back until `until` or `timeout`.
fn exchange(
    addr: SocketAddr,
    parts: Vec<(Duration, Vec<u8>)>,
    half_close: bool,
    until: Until,
    timeout: Duration,
) -> Raw {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .expect("write timeout");
    stream
        .set_read_timeout(Some(Duration::from_millis(20)))
        .expect("read timeout");
    let mut writer = stream.try_clone().expect("clone");
    let started = Instant::now();
    let writing = std::thread::spawn(move || {
        for (delay, bytes) in parts {
            std::thread::sleep(delay);
            if writer.write_all(&bytes).is_err() {
                return; // the server closed on us: fine, see what it said
            }
        }
        if half_close {
            let _ = writer.shutdown(Shutdown::Write);
        }
    });
    let mut reader = stream;
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let ending = loop {
        if until == Until::Response && final_response_span(&bytes).is_some() {
            break Ending::Complete;
        }
        if started.elapsed() > timeout {
            break Ending::TimedOut;
        }
        match reader.read(&mut buf) {
            Ok(0) => break Ending::Eof,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break Ending::Reset,
        }
    };
    let elapsed = started.elapsed();
    drop(reader);
    let _ = writing.join();
    Raw {
        bytes,
        ending,
        elapsed,
    }
}

/// One write, then read one response (or until close).
fn raw(addr: SocketAddr, request: &[u8]) -> Raw {
    exchange(
        addr,
        vec![(Duration::ZERO, request.to_vec())],
        false,
        Until::Response,
        Duration::from_secs(10),
    )
}

fn head(method: &str, target: &str, version: &str, headers: &[&str]) -> Vec<u8> {
    let mut text = format!("{method} {target} {version}\r\n");
    for header in headers {
        text.push_str(header);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    text.into_bytes()
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

// ---------------------------------------------------------------------------------------------
// 1. The client side: malformed HTTP, bodies, smuggling, slow and vanishing clients, targets
// ---------------------------------------------------------------------------------------------

#[test]
fn malformed_client_input_is_refused_and_never_forwarded() {
    let stack = stack();
    let standin = &stack.standin;
    let mut proxy = proxy_to(
        standin.port,
        &[
            "--max-request-body-size",
            "1048576",
            "--client-header-timeout",
            "1s",
        ],
    );
    let addr = proxy.addr;
    let mut tally = Tally::new("client");
    let dir = TempHome::new();

    // Requests hyper itself refuses with an empty-bodied 400 and closes.
    let hyper_400: Vec<(&'static str, Vec<u8>)> = vec![
        (
            "malformed request line",
            b"this is not http at all\r\n\r\n".to_vec(),
        ),
        (
            "unknown HTTP version",
            head("GET", ECHO, "HTTP/9.9", &["Host: x"]),
        ),
        ("HTTP/0.9 request line", b"GET /\r\n\r\n".to_vec()),
        (
            "control byte in the request target",
            head("GET", "/work\x7fspaces", "HTTP/1.1", &["Host: x"]),
        ),
        (
            "invalid header name byte",
            head("GET", ECHO, "HTTP/1.1", &["Host: x", "Bad\x01Name: x"]),
        ),
        (
            "space inside a header name",
            head("GET", ECHO, "HTTP/1.1", &["Host: x", "Bad Name: x"]),
        ),
        (
            "NUL in a header value",
            head("GET", ECHO, "HTTP/1.1", &["Host: x", "X-A: o\0ne"]),
        ),
        (
            "obsolete line folding",
            head("GET", ECHO, "HTTP/1.1", &["Host: x", "X-A: one", " two"]),
        ),
        (
            "two differing Content-Length headers",
            cat(&[
                &head(
                    "POST",
                    ECHO,
                    "HTTP/1.1",
                    &["Host: x", "Content-Length: 5", "Content-Length: 6"],
                ),
                b"hello!",
            ]),
        ),
        (
            "non-numeric Content-Length",
            cat(&[
                &head(
                    "POST",
                    ECHO,
                    "HTTP/1.1",
                    &["Host: x", "Content-Length: abc"],
                ),
                b"hello",
            ]),
        ),
        (
            "Content-Length beyond u64",
            cat(&[
                &head(
                    "POST",
                    ECHO,
                    "HTTP/1.1",
                    &["Host: x", "Content-Length: 18446744073709551616"],
                ),
                b"hello",
            ]),
        ),
        (
            "Transfer-Encoding that does not end in chunked",
            cat(&[
                &head(
                    "POST",
                    ECHO,
                    "HTTP/1.1",
                    &[
                        "Host: x",
                        "Content-Length: 5",
                        "Transfer-Encoding: xchunked",
                    ],
                ),
                b"hello",
            ]),
        ),
        (
            "space before the colon of Transfer-Encoding",
            cat(&[
                &head(
                    "POST",
                    ECHO,
                    "HTTP/1.1",
                    &["Host: x", "Transfer-Encoding : chunked"],
                ),
                b"0\r\n\r\n",
            ]),
        ),
        (
            "Transfer-Encoding in HTTP/1.0",
            cat(&[
                &head(
                    "POST",
                    ECHO,
                    "HTTP/1.0",
                    &["Host: x", "Transfer-Encoding: chunked"],
                ),
                b"0\r\n\r\n",
            ]),
        ),
    ];
    for (name, request) in hyper_400 {
        let case = tally.case(name);
        let before = seen(standin);
        let answer = raw(addr, &request);
        assert_eq!(
            answer.statuses(),
            vec![400],
            "{case}: {:?} -> {}",
            String::from_utf8_lossy(&request),
            answer.text()
        );
        assert_nothing_upstream(standin, before, case);
        assert_serves(&mut proxy, case);
    }

    // Request heads over --max-header-bytes (64 KiB by default): 431 from hyper.
    let big_heads: Vec<(&'static str, Vec<u8>)> = vec![
        (
            "1 MiB header value",
            head(
                "GET",
                ECHO,
                "HTTP/1.1",
                &["Host: x", &format!("X-Big: {}", "a".repeat(1 << 20))],
            ),
        ),
        ("200 header lines", {
            let lines: Vec<String> = std::iter::once("Host: x".to_owned())
                .chain((0..200).map(|i| format!("X-H{i}: v")))
                .collect();
            let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
            head("GET", ECHO, "HTTP/1.1", &lines)
        }),
        (
            "100 KiB request target",
            head(
                "GET",
                &format!("{ECHO}?q={}", "a".repeat(100 * 1024)),
                "HTTP/1.1",
                &["Host: x"],
            ),
        ),
    ];
    for (name, request) in big_heads {
        let case = tally.case(name);
        let before = seen(standin);
        let answer = raw(addr, &request);
        assert_eq!(answer.statuses(), vec![431], "{case}: {}", answer.text());
        assert_nothing_upstream(standin, before, case);
        assert_serves(&mut proxy, case);
    }

    // Bodies over --max-request-body-size 1048576, sent by curl.
    let over = dir.path.join("over");
    std::fs::write(&over, vec![b'a'; (1 << 20) + 1]).expect("write");
    let url = format!("{}{ECHO}", proxy.url());
    for (name, extra) in [
        ("oversize body with Content-Length", None),
        ("oversize chunked body", Some("Transfer-Encoding: chunked")),
    ] {
        let case = tally.case(name);
        let before = seen(standin);
        let data = format!("@{}", over.display());
        let mut args = vec!["--data-binary", data.as_str()];
        if let Some(header) = extra {
            args.extend(["-H", header]);
        }
        args.push(&url);
        let answer = curl(&args);
        assert_eq!(answer.status, 413, "{case}: {}", answer.text());
        assert_eq!(answer.json()["error"], "body_too_large", "{case}");
        assert_eq!(
            answer.json()["reason"],
            "request body exceeds the 1048576-byte limit (--max-request-body-size)",
            "{case}"
        );
        assert_nothing_upstream(standin, before, case);
        assert_serves(&mut proxy, case);
    }

    {
        let case = tally.case("Expect: 100-continue with a small body");
        // The proxy reads the body, so hyper must invite it with a 100 first; the body is
        // sent a little later, as a client that waits for the 100 would.
        let answer = exchange(
            addr,
            vec![
                (
                    Duration::ZERO,
                    head(
                        "POST",
                        ECHO,
                        "HTTP/1.1",
                        &["Host: x", "Content-Length: 5", "Expect: 100-continue"],
                    ),
                ),
                (Duration::from_millis(100), b"hello".to_vec()),
            ],
            false,
            Until::Response,
            Duration::from_secs(5),
        );
        assert_eq!(
            answer.statuses(),
            vec![100, 200],
            "{case}: {}",
            answer.text()
        );
        let record = standin.requests().pop().expect("recorded");
        assert_eq!(record["verified"], true, "{case}: {record:#}");
        assert_eq!(record["body_len"], 5, "{case}");
        assert!(
            header_value(&record, "expect").is_empty(),
            "{case}: Expect forwarded"
        );
        assert_serves(&mut proxy, case);
    }

    {
        let case = tally.case("Expect: 100-continue with an oversize Content-Length");
        let before = seen(standin);
        let answer = raw(
            addr,
            &head(
                "POST",
                ECHO,
                "HTTP/1.1",
                &["Host: x", "Content-Length: 2000000", "Expect: 100-continue"],
            ),
        );
        // 413 at once, without inviting the body with a 100 first.
        assert_eq!(answer.statuses(), vec![413], "{case}: {}", answer.text());
        assert_eq!(json_error(&answer.response()), "body_too_large", "{case}");
        assert_nothing_upstream(standin, before, case);
        assert_serves(&mut proxy, case);
    }

    {
        let case = tally.case("lying Content-Length, then half-close");
        let before = seen(standin);
        let answer = exchange(
            addr,
            vec![(
                Duration::ZERO,
                cat(&[
                    &head(
                        "POST",
                        ECHO,
                        "HTTP/1.1",
                        &["Host: x", "Content-Length: 1000"],
                    ),
                    b"0123456789",
                ]),
            )],
            true,
            Until::Close,
            Duration::from_secs(5),
        );
        assert_ne!(answer.ending, Ending::TimedOut, "{case}: {}", answer.text());
        assert_eq!(answer.statuses(), vec![400], "{case}: {}", answer.text());
        assert_eq!(json_error(&answer.response()), "body_read_failed", "{case}");
        assert_nothing_upstream(standin, before, case);
        assert_serves(&mut proxy, case);
    }

    {
        let case = tally.case("chunked garbage (zz)");
        let before = seen(standin);
        let answer = raw(
            addr,
            &cat(&[
                &head(
                    "POST",
                    ECHO,
                    "HTTP/1.1",
                    &["Host: x", "Transfer-Encoding: chunked"],
                ),
                b"zz\r\nhello\r\n0\r\n\r\n",
            ]),
        );
        assert_eq!(answer.statuses(), vec![400], "{case}: {}", answer.text());
        assert_eq!(json_error(&answer.response()), "body_read_failed", "{case}");
        assert_nothing_upstream(standin, before, case);
        assert_serves(&mut proxy, case);
    }

    {
        let case = tally.case("chunked body cut short, then half-close");
        let before = seen(standin);
        let answer = exchange(
            addr,
            vec![(
                Duration::ZERO,
                cat(&[
                    &head(
                        "POST",
                        ECHO,
                        "HTTP/1.1",
                        &["Host: x", "Transfer-Encoding: chunked"],
                    ),
                    b"a\r\n01234",
                ]),
            )],
            true,
            Until::Close,
            Duration::from_secs(5),
        );
        assert_eq!(answer.statuses(), vec![400], "{case}: {}", answer.text());
        assert_eq!(json_error(&answer.response()), "body_read_failed", "{case}");
        assert_nothing_upstream(standin, before, case);
        assert_serves(&mut proxy, case);
    }

    // Request smuggling: Content-Length and Transfer-Encoding together. Transfer-Encoding
    // wins (RFC 9112 §6.3), the connection is closed after the answer, and the "hidden"
    // request never runs.
    for (name, cl_first) in [
        ("Content-Length + Transfer-Encoding (CL.TE smuggling)", true),
        (
            "Transfer-Encoding + Content-Length (TE.CL smuggling)",
            false,
        ),
    ] {
        let case = tally.case(name);
        let before = seen(standin);
        let hidden = format!("GET {ECHO}?smuggled=1 HTTP/1.1\r\nHost: x\r\n\r\n");
        let body = format!("5\r\nhello\r\n0\r\n\r\n{hidden}");
        let length = format!("Content-Length: {}", body.len());
        let framing: [&str; 2] = if cl_first {
            [&length, "Transfer-Encoding: chunked"]
        } else {
            ["Transfer-Encoding: chunked", &length]
        };
        let answer = exchange(
            addr,
            vec![(
                Duration::ZERO,
                cat(&[
                    &head(
                        "POST",
                        ECHO,
                        "HTTP/1.1",
                        &["Host: x", framing[0], framing[1]],
                    ),
                    body.as_bytes(),
                ]),
            )],
            false,
            Until::Close,
            Duration::from_secs(5),
        );
        assert_eq!(
            answer.ending,
            Ending::Eof,
            "{case}: the connection must close after the answer: {}",
            answer.text()
        );
        assert_eq!(
            answer.statuses(),
            vec![200],
            "{case}: one answer only: {}",
            answer.text()
        );
        let after = standin.requests();
        assert_eq!(after.len(), before.recorded + 1, "{case}: {after:#?}");
        let forwarded = &after[before.recorded];
        assert_eq!(forwarded["verified"], true, "{case}: {forwarded:#}");
        assert_eq!(forwarded["target"], ECHO, "{case}");
        assert_eq!(
            forwarded["body_len"], 5,
            "{case}: the chunked framing decides the body"
        );
        assert_eq!(
            header_value(forwarded, "transfer-encoding"),
            Vec::<&str>::new()
        );
        assert_eq!(
            header_value(forwarded, "content-length"),
            vec!["5"],
            "{case}"
        );
        assert!(
            !after
                .iter()
                .any(|r| r["target"].as_str().is_some_and(|t| t.contains("smuggled"))),
            "{case}: the hidden request went upstream"
        );
        assert_eq!(standin.dispatched(), before.dispatched + 1, "{case}");
        assert_serves(&mut proxy, case);
    }

    // Slow-loris: a head trickled a header line at a time is cut off after
    // --client-header-timeout (1 s), without an answer.
    {
        let case = tally.case("slow-loris: request head trickled byte by byte");
        let before = seen(standin);
        let mut parts = vec![(
            Duration::ZERO,
            format!("GET {ECHO} HTTP/1.1\r\nHost: x\r\n").into_bytes(),
        )];
        parts.extend((0..25).map(|i| {
            (
                Duration::from_millis(200),
                format!("X-Trickle-{i}: y\r\n").into_bytes(),
            )
        }));
        let answer = exchange(addr, parts, false, Until::Close, Duration::from_secs(5));
        assert!(
            matches!(answer.ending, Ending::Eof | Ending::Reset),
            "{case}: still open after {:?}",
            answer.elapsed
        );
        assert!(
            answer.elapsed < Duration::from_millis(2500),
            "{case}: closed only after {:?}",
            answer.elapsed
        );
        let statuses = answer.statuses();
        assert!(
            statuses.is_empty() || statuses == vec![408],
            "{case}: {}",
            answer.text()
        );
        assert_nothing_upstream(standin, before, case);
        assert_serves(&mut proxy, case);
    }

    {
        let case = tally.case("client disconnects mid-body");
        let before = seen(standin);
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .write_all(&cat(&[
                &head(
                    "POST",
                    ECHO,
                    "HTTP/1.1",
                    &["Host: x", "Content-Length: 100000"],
                ),
                &[b'x'; 1000],
            ]))
            .expect("write");
        std::thread::sleep(Duration::from_millis(100));
        drop(stream);
        std::thread::sleep(Duration::from_millis(100));
        assert_nothing_upstream(standin, before, case);
        assert_serves(&mut proxy, case);
    }

    {
        let case = tally.case("h2c preface followed by garbage frames");
        let before = seen(standin);
        let answer = exchange(
            addr,
            vec![(
                Duration::ZERO,
                cat(&[
                    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
                    b"\x00\x00\x04\xff\x00\x00\x00\x00\x00garbage-not-a-frame",
                ]),
            )],
            false,
            Until::Close,
            Duration::from_secs(5),
        );
        assert!(
            matches!(answer.ending, Ending::Eof | Ending::Reset),
            "{case}: {:?}",
            answer.ending
        );
        assert_nothing_upstream(standin, before, case);
        assert_serves(&mut proxy, case);
    }

    for (name, query) in [
        ("query with a bad escape (%zz)", "query=%zz"),
        ("query that is not UTF-8 once decoded", "query=%E0%A4"),
        ("query with a truncated escape (%4)", "query=up%4"),
    ] {
        let case = tally.case(name);
        let before = seen(standin);
        let answer = raw(
            addr,
            &head(
                "GET",
                &format!("/workspaces/{WS}/api/v1/query?{query}"),
                "HTTP/1.1",
                &["Host: x"],
            ),
        );
        assert_eq!(answer.statuses(), vec![400], "{case}: {}", answer.text());
        let body = answer.response();
        assert_eq!(json_error(&body), "bad_request", "{case}");
        assert!(
            body.json()["reason"]
                .as_str()
                .is_some_and(|r| r.contains("query parameter")),
            "{case}: {}",
            body.text()
        );
        assert_nothing_upstream(standin, before, case);
        assert_serves(&mut proxy, case);
    }

    {
        let case = tally.case("CONNECT");
        let before = seen(standin);
        let answer = raw(
            addr,
            &head(
                "CONNECT",
                "evil.example:443",
                "HTTP/1.1",
                &["Host: evil.example:443"],
            ),
        );
        assert_eq!(answer.statuses(), vec![405], "{case}: {}", answer.text());
        assert_eq!(
            json_error(&answer.response()),
            "method_not_allowed",
            "{case}"
        );
        assert_nothing_upstream(standin, before, case);
        assert_serves(&mut proxy, case);
    }

    let upstream_host = format!("127.0.0.1:{}", standin.port);
    {
        let case = tally.case("absolute-form target naming another host");
        let before = seen(standin);
        let answer = raw(
            addr,
            &head(
                "GET",
                &format!("http://evil.example{ECHO}?probe=absolute"),
                "HTTP/1.1",
                &["Host: evil.example"],
            ),
        );
        assert_eq!(answer.statuses(), vec![200], "{case}: {}", answer.text());
        let echo = answer.response().json();
        assert_eq!(echo["target"], format!("{ECHO}?probe=absolute"), "{case}");
        assert_eq!(
            header_value(&echo, "host"),
            vec![upstream_host.as_str()],
            "{case}: signed for the configured host only"
        );
        let records = standin.requests();
        assert_eq!(records.len(), before.recorded + 1, "{case}");
        assert_eq!(records[before.recorded]["verified"], true, "{case}");
        assert_serves(&mut proxy, case);
    }

    {
        let case = tally.case("path traversal out of the workspace");
        let before = seen(standin);
        let answer = raw(
            addr,
            &head(
                "GET",
                "/workspaces/ws-test/../../etc/passwd",
                "HTTP/1.1",
                &["Host: x"],
            ),
        );
        // Cleaned to /etc/passwd and sent to the configured upstream, which has no such route.
        assert_eq!(answer.statuses(), vec![404], "{case}: {}", answer.text());
        let unrouted = standin.unrouted();
        let last = unrouted.last().expect("the stand-in saw it");
        assert_eq!(last["target"], "/etc/passwd", "{case}");
        assert_eq!(standin.requests().len(), before.recorded, "{case}");
        assert_eq!(standin.dispatched(), before.dispatched + 1, "{case}");
        assert_serves(&mut proxy, case);
    }

    {
        let case = tally.case("path with dot segments inside the workspace");
        let before = seen(standin);
        let answer = raw(
            addr,
            &head(
                "GET",
                "/workspaces/ws-test/api/v1/./../../__test//echo",
                "HTTP/1.1",
                &["Host: x"],
            ),
        );
        assert_eq!(answer.statuses(), vec![200], "{case}: {}", answer.text());
        assert_eq!(answer.response().json()["target"], ECHO, "{case}");
        let records = standin.requests();
        assert_eq!(records.len(), before.recorded + 1, "{case}");
        assert_eq!(records[before.recorded]["verified"], true, "{case}");
        assert!(
            records
                .iter()
                .chain(standin.unrouted().iter())
                .all(|r| !r["target"].as_str().unwrap_or_default().contains("..")),
            "{case}: a target with .. went upstream"
        );
        assert_serves(&mut proxy, case);
    }

    {
        let case = tally.case("HTTP/1.0 request without Host");
        let answer = exchange(
            addr,
            vec![(Duration::ZERO, head("GET", ECHO, "HTTP/1.0", &[]))],
            false,
            Until::Close,
            Duration::from_secs(5),
        );
        assert_eq!(answer.ending, Ending::Eof, "{case}");
        assert_eq!(answer.statuses(), vec![200], "{case}: {}", answer.text());
        let echo = answer.response().json();
        assert_eq!(header_value(&echo, "host"), vec![upstream_host.as_str()]);
        assert_eq!(
            standin.requests().last().expect("recorded")["verified"],
            true,
            "{case}"
        );
        assert_serves(&mut proxy, case);
    }

    {
        let case = tally.case("header value with obs-text (0xE9)");
        let mut request = format!("GET {ECHO} HTTP/1.1\r\nHost: x\r\nX-Label: caf").into_bytes();
        request.extend_from_slice(b"\xe9\r\nConnection: close\r\n\r\n");
        let answer = raw(addr, &request);
        assert_eq!(answer.statuses(), vec![200], "{case}: {}", answer.text());
        let record = standin.requests().pop().expect("recorded");
        assert_eq!(record["verified"], true, "{case}: {record:#}");
        assert_eq!(
            header_value(&record, "x-label").len(),
            1,
            "{case}: forwarded"
        );
        assert!(
            !record["signed_headers"]
                .as_array()
                .expect("list")
                .iter()
                .any(|h| h == "x-label"),
            "{case}: non-ASCII values are forwarded unsigned"
        );
        assert_serves(&mut proxy, case);
    }

    {
        let case = tally.case("client-sent Authorization / X-Amz-* headers");
        let injected_auth = format!(
            "AWS4-HMAC-SHA256 Credential=AKIAINJECTEDCLIENT01/20200101/us-east-1/aps/aws4_request, SignedHeaders=host, Signature={INJECTED_SIGNATURE}"
        );
        let answer = curl(&[
            "-H",
            &format!("Authorization: {injected_auth}"),
            "-H",
            &format!("X-Amz-Security-Token: {INJECTED_TOKEN}"),
            "-H",
            "X-Amz-Date: 20200101T000000Z",
            "-H",
            "X-Amz-Content-Sha256: 0000000000000000000000000000000000000000000000000000000000000000",
            "-H",
            &format!("Proxy-Authorization: Bearer {INJECTED_BEARER}"),
            &url,
        ]);
        assert_eq!(answer.status, 200, "{case}: {}", answer.text());
        let record = standin.requests().pop().expect("recorded");
        assert_eq!(record["verified"], true, "{case}: {record:#}");
        let auth = header_value(&record, "authorization");
        assert_eq!(auth.len(), 1, "{case}: {auth:?}");
        assert!(!auth[0].contains(INJECTED_SIGNATURE), "{case}: {auth:?}");
        assert!(auth[0].contains(&format!("Credential={AKID}/")), "{case}");
        assert_eq!(
            header_value(&record, "x-amz-security-token"),
            vec![TOKEN],
            "{case}"
        );
        let date = header_value(&record, "x-amz-date");
        assert_eq!(date.len(), 1, "{case}");
        assert_ne!(date[0], "20200101T000000Z", "{case}");
        assert!(
            header_value(&record, "proxy-authorization").is_empty(),
            "{case}: hop-by-hop header forwarded"
        );
        assert_serves(&mut proxy, case);
    }

    {
        let case = tally.case("two pipelined requests on one connection");
        let mut both = head("GET", &format!("{ECHO}?n=1"), "HTTP/1.1", &["Host: x"]);
        both.extend(head(
            "GET",
            &format!("{ECHO}?n=2"),
            "HTTP/1.1",
            &["Host: x", "Connection: close"],
        ));
        let answer = exchange(
            addr,
            vec![(Duration::ZERO, both)],
            false,
            Until::Close,
            Duration::from_secs(5),
        );
        assert_eq!(
            answer.statuses(),
            vec![200, 200],
            "{case}: {}",
            answer.text()
        );
        let text = answer.text();
        let first = text.find("?n=1").expect("first answer");
        let second = text.find("?n=2").expect("second answer");
        assert!(first < second, "{case}: answers out of order");
        assert_serves(&mut proxy, case);
    }

    assert_no_secrets(&proxy, "client-side proxy");
    tally.finish(40);
}

/// `--client-header-timeout` must also bound connections that have not sent a single byte,
/// or only part of the HTTP/2 preface: otherwise each one holds a socket and a task forever
/// (a slow-loris that never starts). The three connections are watched at the same time and
/// every failure is reported together.
#[test]
fn silent_connections_are_closed_after_the_header_timeout() {
    let stack = stack();
    let standin = &stack.standin;
    let mut proxy = proxy_to(standin.port, &["--client-header-timeout", "1s"]);
    let mut tally = Tally::new("silent");
    let before = seen(standin);
    let addr = proxy.addr;
    let watchers: Vec<_> = [
        ("connection that sends nothing", &b""[..]),
        (
            "connection that stops inside the h2 preface",
            &b"PRI * HTTP/2.0\r\n"[..],
        ),
        ("connection that stops after two bytes", &b"GE"[..]),
    ]
    .into_iter()
    .map(|(name, first_bytes)| {
        let case = tally.case(name);
        let handle = std::thread::spawn(move || {
            exchange(
                addr,
                vec![(Duration::ZERO, first_bytes.to_vec())],
                false,
                Until::Close,
                Duration::from_secs(3),
            )
        });
        (case, handle)
    })
    .collect();
    let mut failures = Vec::new();
    for (case, handle) in watchers {
        let answer = handle.join().expect("watcher thread");
        let closed = matches!(answer.ending, Ending::Eof | Ending::Reset);
        if !closed || answer.elapsed >= Duration::from_millis(2500) {
            failures.push(format!(
                "{case}: {:?} after {:?} with --client-header-timeout 1s (want closed within ~1 s)",
                answer.ending, answer.elapsed
            ));
        }
    }
    assert_nothing_upstream(standin, before, "silent connections");
    assert_serves(&mut proxy, "silent connections");
    assert_no_secrets(&proxy, "silent-connections proxy");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    tally.finish(3);
}

/// With `--unsigned-payload` the body is streamed, but `--max-request-body-size` still holds
/// for bodies whose length is not declared (README: "declared or streamed").
#[test]
fn unsigned_payload_streams_are_capped_too() {
    let stack = stack();
    let standin = &stack.standin;
    let mut proxy = proxy_to(
        standin.port,
        &["--unsigned-payload", "--max-request-body-size", "1048576"],
    );
    let mut tally = Tally::new("unsigned");
    let dir = TempHome::new();
    let over = dir.path.join("over");
    std::fs::write(&over, vec![b'a'; 2_000_000]).expect("write");
    let data = format!("@{}", over.display());
    let url = format!("{}{ECHO}", proxy.url());
    {
        let case = tally.case("unsigned payload: oversize body with Content-Length");
        let before = seen(standin);
        let answer = curl(&["--data-binary", &data, &url]);
        assert_eq!(answer.status, 413, "{case}: {}", answer.text());
        assert_eq!(answer.json()["error"], "body_too_large", "{case}");
        assert_nothing_upstream(standin, before, case);
        assert_serves(&mut proxy, case);
    }
    {
        let case = tally.case("unsigned payload: oversize chunked body");
        let answer = curl(&[
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            &data,
            &url,
        ]);
        let oversize_forwarded: Vec<_> = standin
            .requests()
            .into_iter()
            .filter(|r| r["body_len"].as_u64().is_some_and(|n| n > 1_048_576))
            .map(|r| r["body_len"].clone())
            .collect();
        assert_eq!(
            answer.status,
            413,
            "{case}: {} (bodies over the limit that reached the upstream: {oversize_forwarded:?})",
            answer.text()
        );
        assert_eq!(answer.json()["error"], "body_too_large", "{case}");
        assert!(
            oversize_forwarded.is_empty(),
            "{case}: the upstream received {oversize_forwarded:?} bytes"
        );
        assert_serves(&mut proxy, case);
    }
    assert_no_secrets(&proxy, "unsigned-payload proxy");
    tally.finish(2);
}

// ---------------------------------------------------------------------------------------------
// 2. The upstream side: disconnects, resets, hangs, garbage, down, retries
// ---------------------------------------------------------------------------------------------

#[test]
fn upstream_failures_reach_the_client_precisely() {
    let stack = stack();
    let standin = &stack.standin;
    let mut proxy = proxy_to(standin.port, &["--upstream-timeout", "1s"]);
    let addr = proxy.addr;
    let mut tally = Tally::new("upstream");
    let base = proxy.url();
    let test_url = |route: &str| format!("{base}/workspaces/{WS}/__test/{route}");

    {
        let case = tally.case("client disconnects mid-response on a 200 MB stream");
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream
            .write_all(&head(
                "GET",
                &format!("/workspaces/{WS}/__test/bytes?size=209715200"),
                "HTTP/1.1",
                &["Host: x"],
            ))
            .expect("write");
        let mut got = 0usize;
        let mut buf = vec![0u8; 64 * 1024];
        while got < 1 << 20 {
            let n = stream.read(&mut buf).expect("read");
            assert!(n > 0, "{case}: the stream ended early");
            got += n;
        }
        assert_eq!(
            proxy.metric("sigv4_proxy_in_flight_requests"),
            Some(1.0),
            "{case}: the stream is in flight"
        );
        drop(stream);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let in_flight = proxy.metric("sigv4_proxy_in_flight_requests");
            let cancelled = standin
                .log()
                .contains("GET /workspaces/ws-test/__test/bytes client gone");
            if in_flight == Some(0.0) && cancelled {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{case}: in flight {in_flight:?}, upstream cancelled {cancelled}\n{}",
                standin.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_serves(&mut proxy, case);
    }

    for (name, framing) in [
        ("upstream resets mid-stream (chunked)", "chunked"),
        ("upstream resets mid-stream (Content-Length)", "length"),
    ] {
        let case = tally.case(name);
        let answer = curl(&[&test_url(&format!("reset?after=100000&framing={framing}"))]);
        assert_eq!(answer.status, 200, "{case}: the head had arrived");
        assert!(
            matches!(answer.exit_code, Some(18 | 56)),
            "{case}: curl must see a broken transfer, got exit {:?}: {}",
            answer.exit_code,
            answer.stderr
        );
        assert!(answer.body.len() <= 100_000, "{case}");
        assert_serves(&mut proxy, case);
    }

    {
        let case = tally.case("upstream reset seen raw: no end-of-body chunk");
        let answer = exchange(
            addr,
            vec![(
                Duration::ZERO,
                head(
                    "GET",
                    &format!("/workspaces/{WS}/__test/reset?after=5000"),
                    "HTTP/1.1",
                    &["Host: x"],
                ),
            )],
            false,
            Until::Close,
            Duration::from_secs(5),
        );
        assert!(
            matches!(answer.ending, Ending::Eof | Ending::Reset),
            "{case}: {:?}",
            answer.ending
        );
        assert_eq!(answer.statuses(), vec![200], "{case}");
        let text = answer.text();
        assert!(
            text.to_ascii_lowercase()
                .contains("transfer-encoding: chunked"),
            "{case}: {text}"
        );
        assert!(
            final_response_span(&answer.bytes).is_none(),
            "{case}: the client got a complete response: {text}"
        );
        assert_serves(&mut proxy, case);
    }

    {
        let case = tally.case("upstream hangs past --upstream-timeout");
        let started = Instant::now();
        let answer = curl(&[&test_url("slow?ms=5000")]);
        assert_eq!(answer.status, 504, "{case}: {}", answer.text());
        assert_eq!(answer.json()["error"], "upstream_timeout", "{case}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{case}: took {:?}",
            started.elapsed()
        );
        assert_serves(&mut proxy, case);
    }

    {
        let case = tally.case("upstream answers garbage");
        let before = seen(standin);
        let answer = curl(&[&test_url("garbage")]);
        assert_eq!(answer.status, 502, "{case}: {}", answer.text());
        assert_eq!(answer.json()["error"], "upstream_unavailable", "{case}");
        assert_eq!(standin.dispatched(), before.dispatched + 1, "{case}");
        assert_serves(&mut proxy, case);
    }

    {
        let case = tally.case("upstream down");
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let closed_port = closed.local_addr().expect("addr").port();
        drop(closed);
        let mut down = proxy_to(closed_port, &[]);
        let answer = curl(&[&format!("{}{ECHO}", down.url())]);
        assert_eq!(answer.status, 502, "{case}: {}", answer.text());
        assert_eq!(answer.json()["error"], "upstream_unavailable", "{case}");
        let text = answer.text();
        for internal in ["127.0.0.1", &closed_port.to_string(), "refused", "tcp"] {
            assert!(!text.contains(internal), "{case}: {internal} in {text}");
        }
        assert_alive(&mut down, case);
        assert_no_secrets(&down, "upstream-down proxy");
    }

    // --retry-queries 2: reads are tried three times, remote_write once.
    let mut retrying = proxy_to(standin.port, &["--retry-queries", "2"]);
    {
        let case = tally.case("retried query ends in the upstream's 503");
        let before = seen(standin);
        let answer = curl(&[&format!(
            "{}/workspaces/{WS}/__test/status?code=503",
            retrying.url()
        )]);
        assert_eq!(answer.status, 503, "{case}: {}", answer.text());
        assert_eq!(
            answer.json()["errorType"],
            "standin",
            "{case}: passed through"
        );
        let attempts: Vec<_> = standin.requests()[before.recorded..]
            .iter()
            .filter(|r| r["target"] == "/workspaces/ws-test/__test/status?code=503")
            .cloned()
            .collect();
        assert_eq!(attempts.len(), 3, "{case}: {attempts:#?}");
        assert!(attempts.iter().all(|r| r["verified"] == true), "{case}");
        assert_eq!(
            retrying.metric("sigv4_proxy_upstream_retries_total"),
            Some(2.0),
            "{case}"
        );
        assert_serves(&mut retrying, case);
    }
    {
        let case = tally.case("retried query against an upstream answering garbage");
        let before = seen(standin);
        let answer = curl(&[&format!(
            "{}/workspaces/{WS}/__test/garbage",
            retrying.url()
        )]);
        assert_eq!(answer.status, 502, "{case}: {}", answer.text());
        assert_eq!(answer.json()["error"], "upstream_unavailable", "{case}");
        assert_eq!(standin.dispatched(), before.dispatched + 3, "{case}");
        assert_serves(&mut retrying, case);
    }
    {
        let case = tally.case("remote_write answered 503 is not retried");
        let before = seen(standin);
        standin.fail_next(5, 503);
        let answer = curl(&[
            "-H",
            "Content-Type: application/x-protobuf",
            "-H",
            "Content-Encoding: snappy",
            "--data-binary",
            "not-really-snappy",
            &format!("{}/workspaces/{WS}/api/v1/remote_write", retrying.url()),
        ]);
        standin.fail_next(0, 503);
        assert_eq!(answer.status, 503, "{case}: {}", answer.text());
        let records = standin.requests();
        assert_eq!(
            records.len(),
            before.recorded + 1,
            "{case}: {:#?}",
            &records[before.recorded..]
        );
        assert_eq!(records[before.recorded]["verified"], true, "{case}");
        assert_serves(&mut retrying, case);
    }

    assert_no_secrets(&proxy, "upstream-failures proxy");
    assert_no_secrets(&retrying, "retrying proxy");
    tally.finish(10);
}

// ---------------------------------------------------------------------------------------------
// 3. Credentials
// ---------------------------------------------------------------------------------------------

#[test]
fn missing_or_failing_credentials_answer_503() {
    let stack = stack_with(8, Some("battery-pod-token"));
    let standin = &stack.standin;
    let mut tally = Tally::new("credentials");

    {
        let case = tally.case("no credentials anywhere");
        let args = upstream_args(standin.port);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut proxy = ProxyProcess::start(&args, &[("RUST_LOG", "debug")]);
        let before = seen(standin);
        for _ in 0..3 {
            let answer = curl(&[&format!("{}{ECHO}", proxy.url())]);
            assert_eq!(answer.status, 503, "{case}: {}", answer.text());
            assert_eq!(answer.json()["error"], "credentials_unavailable", "{case}");
        }
        let ready = support::http_get(proxy.admin_addr.port(), "/readyz").expect("readyz");
        assert_eq!(ready.status, 503, "{case}: /readyz");
        assert_eq!(ready.json()["error"], "credentials_unavailable", "{case}");
        assert_nothing_upstream(standin, before, case);
        assert_alive(&mut proxy, case);
        assert_no_secrets(&proxy, "no-credentials proxy");
    }

    {
        let case = tally.case("credential source down: cached keys serve until they expire");
        let args = upstream_args(standin.port);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let creds_url = standin.creds_url();
        let mut proxy = ProxyProcess::start(
            &args,
            &[
                ("AWS_CONTAINER_CREDENTIALS_FULL_URI", creds_url.as_str()),
                ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "battery-pod-token"),
                ("RUST_LOG", "debug"),
            ],
        );
        let url = format!("{}{ECHO}", proxy.url());
        let started = Instant::now();
        while curl(&[&url]).status != 200 {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{case}: no first success:\n{}",
                proxy.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        standin.fail_creds(true);
        let fetches_before = standin.stats()["creds_requests"].as_u64().expect("count");
        let expiry = proxy
            .metric("sigv4_proxy_credential_expiry_timestamp_seconds")
            .expect("expiry metric");
        let now = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_secs_f64()
        };
        assert!(
            expiry - now() > 4.0 && expiry - now() < 9.0,
            "{case}: expiry in {} s",
            expiry - now()
        );
        // Valid cached credentials keep serving while the source is down...
        let mut served = 0;
        while now() < expiry - 1.0 {
            let answer = curl(&[&url]);
            assert_eq!(
                answer.status,
                200,
                "{case}: {} s before expiry: {}\n{}",
                expiry - now(),
                answer.text(),
                proxy.log()
            );
            served += 1;
            std::thread::sleep(Duration::from_millis(250));
        }
        assert!(served >= 8, "{case}: only {served} requests before expiry");
        // ...and once they have expired, nothing is signed with them.
        while now() < expiry + 0.2 {
            std::thread::sleep(Duration::from_millis(50));
        }
        let before = seen(standin);
        for _ in 0..3 {
            let answer = curl(&[&url]);
            assert_eq!(
                answer.status,
                503,
                "{case}: after expiry: {}",
                answer.text()
            );
            assert_eq!(answer.json()["error"], "credentials_unavailable", "{case}");
        }
        assert_nothing_upstream(standin, before, case);
        let ready = support::http_get(proxy.admin_addr.port(), "/readyz").expect("readyz");
        assert_eq!(ready.status, 503, "{case}: /readyz after expiry");
        let fetches = standin.stats()["creds_requests"].as_u64().expect("count");
        assert!(
            fetches > fetches_before,
            "{case}: the proxy never tried to refresh"
        );
        assert_alive(&mut proxy, case);
        // The source comes back: the proxy recovers on its own.
        standin.fail_creds(false);
        let deadline = Instant::now() + Duration::from_secs(5);
        while curl(&[&url]).status != 200 {
            assert!(
                Instant::now() < deadline,
                "{case}: no recovery:\n{}",
                proxy.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_serves(&mut proxy, case);
        assert_no_secrets(&proxy, "container-credentials proxy");
        let log = proxy.log();
        assert!(!log.contains("battery-pod-token"), "{case}: token in log");
    }
    tally.finish(2);
}

// ---------------------------------------------------------------------------------------------
// 4. Admission, overload and loops
// ---------------------------------------------------------------------------------------------

#[test]
fn admission_overload_and_loops() {
    let stack = stack();
    let standin = &stack.standin;
    let mut tally = Tally::new("admission");

    let mut allow = proxy_to(
        standin.port,
        &["--allow-path", "/workspaces/ws-test/api/v1/query"],
    );
    {
        let case = tally.case("path outside --allow-path");
        let before = seen(standin);
        let answer = curl(&[&format!("{}{ECHO}", allow.url())]);
        assert_eq!(answer.status, 403, "{case}: {}", answer.text());
        assert_eq!(answer.json()["error"], "path_not_allowed", "{case}");
        assert_nothing_upstream(standin, before, case);
        let query = curl(&[&format!(
            "{}/workspaces/{WS}/api/v1/query?query=up",
            allow.url()
        )]);
        assert_eq!(query.status, 200, "{case}: allowed path: {}", query.text());
        assert_alive(&mut allow, case);
    }
    {
        let case = tally.case("dot segments to escape --allow-path");
        let before = seen(standin);
        let answer = raw(
            allow.addr,
            &head(
                "GET",
                "/workspaces/ws-test/api/v1/query/../../../__test/echo",
                "HTTP/1.1",
                &["Host: x"],
            ),
        );
        assert_eq!(answer.statuses(), vec![403], "{case}: {}", answer.text());
        assert_eq!(json_error(&answer.response()), "path_not_allowed", "{case}");
        assert_nothing_upstream(standin, before, case);
        assert_alive(&mut allow, case);
    }
    assert_no_secrets(&allow, "allow-path proxy");

    let mut read_only = proxy_to(standin.port, &["--read-only"]);
    {
        let case = tally.case("remote_write through --read-only");
        let before = seen(standin);
        let answer = curl(&[
            "-H",
            "Content-Type: application/x-protobuf",
            "--data-binary",
            "payload",
            &format!("{}/workspaces/{WS}/api/v1/remote_write", read_only.url()),
        ]);
        assert_eq!(answer.status, 403, "{case}: {}", answer.text());
        assert_eq!(answer.json()["error"], "read_only", "{case}");
        assert_nothing_upstream(standin, before, case);
        let query = curl(&[
            "--data-urlencode",
            "query=up",
            &format!("{}/workspaces/{WS}/api/v1/query", read_only.url()),
        ]);
        assert_eq!(query.status, 200, "{case}: POST query: {}", query.text());
        assert_eq!(query.json()["status"], "success", "{case}");
        assert_serves(&mut read_only, case);
    }
    assert_no_secrets(&read_only, "read-only proxy");

    let mut capped = proxy_to(standin.port, &["--max-concurrent-requests", "1"]);
    {
        let case = tally.case("over --max-concurrent-requests");
        let slow_url = format!("{}/workspaces/{WS}/__test/slow?ms=1500", capped.url());
        let slow = std::thread::spawn(move || curl(&[&slow_url]));
        let deadline = Instant::now() + Duration::from_secs(5);
        while !standin
            .requests()
            .iter()
            .any(|r| r["target"] == "/workspaces/ws-test/__test/slow?ms=1500")
        {
            assert!(
                Instant::now() < deadline,
                "{case}: the slow request never arrived"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let before = seen(standin);
        let answer = curl(&[&format!("{}{ECHO}", capped.url())]);
        assert_eq!(answer.status, 503, "{case}: {}", answer.text());
        assert_eq!(answer.json()["error"], "overloaded", "{case}");
        assert_eq!(answer.header("retry-after").as_deref(), Some("1"), "{case}");
        assert_nothing_upstream(standin, before, case);
        let first = slow.join().expect("slow request thread");
        assert_eq!(first.status, 200, "{case}: the slow one: {}", first.text());
        assert_serves(&mut capped, case);
    }
    assert_no_secrets(&capped, "capped proxy");

    {
        let case = tally.case("Via loop between two proxies");
        // A -> B -> A: A must see its own Via entry and refuse with 508, once.
        let a_port = support::free_port();
        let a_listen = format!("127.0.0.1:{a_port}");
        let mut b = proxy_to(a_port, &[]);
        let b_args = upstream_args(b.addr.port());
        let b_args: Vec<&str> = b_args.iter().map(String::as_str).collect();
        let mut a = ProxyProcess::start_on(&a_listen, &b_args, &static_env());
        let answer = curl(&["-m", "10", &format!("{}{ECHO}", a.url())]);
        assert_eq!(answer.status, 508, "{case}: {}", answer.text());
        assert_eq!(answer.json()["error"], "loop_detected", "{case}");
        std::thread::sleep(Duration::from_millis(100));
        let loop_line = "request already passed through this proxy (Via)";
        let count = |log: String, needle: &str| log.lines().filter(|l| l.contains(needle)).count();
        assert_eq!(
            count(a.log(), loop_line),
            1,
            "{case}: A refuses the looped request once:\n{}",
            a.log()
        );
        assert_eq!(
            count(b.log(), loop_line),
            0,
            "{case}: B never saw its own entry:\n{}",
            b.log()
        );
        assert_eq!(
            count(a.log(), "signed request") + count(b.log(), "signed request"),
            2,
            "{case}: one hop each way, no storm:\nA:\n{}\nB:\n{}",
            a.log(),
            b.log()
        );
        assert_alive(&mut a, case);
        assert_alive(&mut b, case);
        assert_no_secrets(&a, "loop proxy A");
        assert_no_secrets(&b, "loop proxy B");
    }
    tally.finish(5);
}

// ---------------------------------------------------------------------------------------------
// 5. Configuration errors
// ---------------------------------------------------------------------------------------------

#[test]
fn configuration_errors_exit_64_before_binding() {
    let mut tally = Tally::new("config");
    // Held: a proxy that bound it first would fail with "cannot listen" (exit 1), not 64.
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = held.local_addr().expect("addr").port();
    let listen = format!("127.0.0.1:{port}");
    let dir = TempHome::new();
    let key = dir.path.join("key.pem");
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n",
    )
    .expect("key");
    let missing_cert = dir.path.join("no-such-cert.pem");
    let key_arg = key.display().to_string();
    let missing_cert_arg = missing_cert.display().to_string();
    let dir_arg = dir.path.display().to_string();
    let upstream = [
        "--host",
        "127.0.0.1:9",
        "--name",
        "aps",
        "--region",
        "us-east-1",
    ];
    let cases: Vec<(&'static str, Vec<&str>, &str)> = vec![
        (
            "--tls-cert without --tls-key",
            vec!["--port", &listen, "--tls-cert", &missing_cert_arg],
            "--tls-key",
        ),
        (
            "--tls-cert file that does not exist",
            vec![
                "--port",
                &listen,
                "--tls-cert",
                &missing_cert_arg,
                "--tls-key",
                &key_arg,
            ],
            "",
        ),
        (
            "--tls-cert that is a directory",
            vec![
                "--port",
                &listen,
                "--tls-cert",
                &dir_arg,
                "--tls-key",
                &key_arg,
            ],
            "",
        ),
        (
            "--allow-path with a broken regex",
            vec!["--port", &listen, "--allow-path", "^("],
            "--allow-path",
        ),
        (
            "--max-header-bytes 100",
            vec!["--port", &listen, "--max-header-bytes", "100"],
            "--max-header-bytes",
        ),
        (
            "same --port and --admin-port",
            vec!["--port", &listen, "--admin-port", &listen],
            "must differ",
        ),
        (
            "--max-request-body-size 0",
            vec!["--port", &listen, "--max-request-body-size", "0"],
            "--max-request-body-size",
        ),
        (
            "--transport.max-idle-conns-per-host 0",
            vec![
                "--port",
                &listen,
                "--transport.max-idle-conns-per-host",
                "0",
            ],
            "max-idle-conns-per-host",
        ),
        (
            "--upstream-url-scheme ftp",
            vec!["--port", &listen, "--upstream-url-scheme", "ftp"],
            "ftp",
        ),
        (
            "--port out of range",
            vec!["--port", "127.0.0.1:99999"],
            "--port",
        ),
        (
            "--upstream-timeout that is not a duration",
            vec!["--port", &listen, "--upstream-timeout", "forever"],
            "duration",
        ),
    ];
    for (name, mut args, expected) in cases {
        let case = tally.case(name);
        args.extend_from_slice(&upstream);
        let output = run_proxy(&args, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(64), "{case}: {stderr}");
        assert!(!stderr.trim().is_empty(), "{case}: no explanation");
        assert!(stderr.contains(expected), "{case}: {stderr}");
        assert!(!stderr.contains("cannot listen"), "{case}: {stderr}");
        assert!(!stderr.contains("panicked"), "{case}: {stderr}");
    }

    for (name, host) in [
        ("self-loop: --host is the listen address", listen.clone()),
        (
            "self-loop: --host is localhost on the listen port",
            format!("localhost:{port}"),
        ),
    ] {
        let case = tally.case(name);
        let output = run_proxy(
            &[
                "--host",
                &host,
                "--port",
                &listen,
                "--upstream-url-scheme",
                "http",
                "--name",
                "aps",
                "--region",
                "us-east-1",
            ],
            &[],
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(64), "{case}: {stderr}");
        assert!(stderr.contains("loop"), "{case}: {stderr}");
    }
    drop(held);
    tally.finish(13);
}
