//! Bodies both ways: remote write from a real Prometheus, size limits, unsigned streaming,
//! a 200 MB streamed answer with bounded memory, and the proxy's own error answers.

mod support;

use std::time::{Duration, Instant};

use support::proxy_process::{ProxyProcess, TempHome, curl};
use support::{Prometheus, Upstream};

const AKID: &str = "AKIAE2EBODIESKEY0001";
const SECRET: &str = "e2e-bodies-secret";
const WS: &str = "ws-test";

const ENV: [(&str, &str); 2] = [
    ("AWS_ACCESS_KEY_ID", AKID),
    ("AWS_SECRET_ACCESS_KEY", SECRET),
];

fn proxy_to(port: u16, extra_args: &[&str]) -> ProxyProcess {
    ProxyProcess::signing_for(port, extra_args, &ENV)
}

#[test]
fn prometheus_remote_write_through_the_proxy_lands_samples() {
    let upstream = Upstream::start(AKID, SECRET, None);
    let (target, standin) = (&upstream.prometheus, &upstream.standin);
    let proxy = proxy_to(standin.port, &[]);
    // A second, real Prometheus scrapes the first and remote-writes (snappy protobuf)
    // through the proxy into it.
    let writer = Prometheus::start_with_config(&format!(
        r#"
global:
  scrape_interval: 1s
  external_labels:
    writer: via-proxy
scrape_configs:
  - job_name: remote-write-source
    static_configs:
      - targets: ["127.0.0.1:{target_port}"]
remote_write:
  - url: {proxy}/workspaces/{WS}/api/v1/remote_write
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 100ms
      max_backoff: 1s
"#,
        target_port = target.port,
        proxy = proxy.url(),
    ));

    let deadline = Instant::now() + Duration::from_secs(60);
    let query = format!(
        "{}/api/v1/query?query=up%7Bwriter%3D%22via-proxy%22%2Cjob%3D%22remote-write-source%22%7D",
        target.url()
    );
    loop {
        let answer = curl(&[&query]);
        if answer.status == 200
            && answer.json()["data"]["result"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no remote-written sample arrived.\nwriter log:\n{}\nproxy log:\n{}\nstand-in log:\n{}",
            writer.log(),
            proxy.log(),
            standin.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let writes: Vec<_> = standin
        .requests()
        .into_iter()
        .filter(|r| {
            r["target"]
                .as_str()
                .is_some_and(|t| t.ends_with("/api/v1/remote_write"))
        })
        .collect();
    assert!(!writes.is_empty());
    for write in &writes {
        assert_eq!(write["verified"], true, "{write:#}");
        let signed = support::signed_headers(write);
        for name in [
            "content-encoding",
            "content-type",
            "content-length",
            "x-prometheus-remote-write-version",
        ] {
            assert!(signed.contains(&name), "{name} not signed: {signed:?}");
        }
    }
}

#[test]
fn request_bodies_over_the_cap_get_413_and_never_go_upstream() {
    let upstream = Upstream::start(AKID, SECRET, None);
    let standin = &upstream.standin;
    let proxy = proxy_to(standin.port, &["--max-request-body-size", "1048576"]);
    let dir = TempHome::new();
    let exact = dir.path.join("exact");
    let over = dir.path.join("over");
    std::fs::write(&exact, vec![b'a'; 1 << 20]).expect("write");
    std::fs::write(&over, vec![b'a'; (1 << 20) + 1]).expect("write");
    let url = format!("{}/workspaces/{WS}/__test/echo", proxy.url());

    let fits = curl(&["--data-binary", &format!("@{}", exact.display()), &url]);
    assert_eq!(fits.status, 200, "{}", fits.text());
    assert_eq!(fits.json()["body_len"], 1 << 20);

    let declared = curl(&["--data-binary", &format!("@{}", over.display()), &url]);
    assert_eq!(declared.status, 413);
    assert_eq!(declared.json()["error"], "body_too_large");
    assert_eq!(
        declared.json()["reason"],
        "request body exceeds the 1048576-byte limit (--max-request-body-size)"
    );

    let chunked = curl(&[
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &format!("@{}", over.display()),
        &url,
    ]);
    assert_eq!(chunked.status, 413, "{}", chunked.text());

    assert_eq!(
        standin.requests().len(),
        1,
        "only the fitting body went upstream"
    );
    // The proxy still serves after refusing.
    assert_eq!(curl(&[&url]).status, 200);
}

#[test]
fn unsigned_payload_streams_the_body_through() {
    let upstream = Upstream::start(AKID, SECRET, None);
    let standin = &upstream.standin;
    let proxy = proxy_to(standin.port, &["--unsigned-payload"]);
    let dir = TempHome::new();
    let body = dir.path.join("body");
    std::fs::write(
        &body,
        (0..3_000_000u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .expect("write");
    let echo = curl(&[
        "-H",
        "Transfer-Encoding: chunked",
        "-H",
        "Content-Type: application/x-protobuf",
        "--data-binary",
        &format!("@{}", body.display()),
        &format!("{}/workspaces/{WS}/__test/echo", proxy.url()),
    ]);
    assert_eq!(echo.status, 200, "{}", echo.text());
    assert_eq!(echo.json()["body_len"], 3_000_000);
    let record = standin.requests().pop().expect("recorded");
    assert_eq!(record["verified"], true, "{record:#}");
    let sha = record["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .find(|h| {
            h[0].as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case("x-amz-content-sha256"))
        })
        .and_then(|h| h[1].as_str().map(str::to_owned));
    assert_eq!(sha.as_deref(), Some("UNSIGNED-PAYLOAD"));
}

/// The incumbent needs ~570 MB and a 1 s first byte for this; we must stay flat.
#[test]
fn a_200_mb_answer_streams_with_bounded_memory() {
    const SIZE: u64 = 200 * 1024 * 1024;
    let upstream = Upstream::start(AKID, SECRET, None);
    let standin = &upstream.standin;
    let proxy = proxy_to(standin.port, &[]);
    let url = format!(
        "{}/workspaces/{WS}/__test/bytes?size={SIZE}&chunk=65536",
        proxy.url()
    );
    // Warm up: credentials, connection pool, allocator arenas.
    assert_eq!(
        curl(&[&format!(
            "{}/workspaces/{WS}/__test/bytes?size=1024",
            proxy.url()
        )])
        .status,
        200
    );
    let before_kib = proxy.status_kib("VmHWM");

    let answer = curl(&["-o", "/dev/null", &url]);
    assert_eq!(answer.status, 200, "{}", answer.stderr);
    assert_eq!(answer.size_download, SIZE);
    let peak_kib = proxy.status_kib("VmHWM");
    eprintln!(
        "200 MiB through the proxy: peak RSS {:.1} MiB (before {:.1} MiB), first byte {:.3} s, total {:.2} s",
        peak_kib as f64 / 1024.0,
        before_kib as f64 / 1024.0,
        answer.ttfb_secs,
        answer.total_secs
    );
    assert!(
        peak_kib < 48 * 1024,
        "peak RSS {peak_kib} KiB: the answer was buffered"
    );
    // A buffering proxy sends nothing until the upstream is done.
    assert!(
        answer.ttfb_secs < answer.total_secs / 4.0,
        "first byte after {} s of {} s",
        answer.ttfb_secs,
        answer.total_secs
    );
}

#[test]
fn proxy_errors_are_precise_json_without_internals() {
    let upstream = Upstream::start(AKID, SECRET, None);
    let standin = &upstream.standin;

    // Nothing listens on a port we just released: 502.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_port = closed.local_addr().expect("addr").port();
    drop(closed);
    let unreachable = proxy_to(closed_port, &[]);
    let answer = curl(&[&format!(
        "{}/workspaces/{WS}/api/v1/query?query=up",
        unreachable.url()
    )]);
    assert_eq!(answer.status, 502);
    assert_eq!(answer.json()["error"], "upstream_unavailable");
    assert!(!answer.text().contains("127.0.0.1"), "{}", answer.text());
    assert!(
        !answer.text().contains(&closed_port.to_string()),
        "{}",
        answer.text()
    );

    // Slow upstream beyond --upstream-timeout: 504.
    let impatient = proxy_to(standin.port, &["--upstream-timeout", "1s"]);
    let slow = curl(&[&format!(
        "{}/workspaces/{WS}/__test/slow?ms=3000",
        impatient.url()
    )]);
    assert_eq!(slow.status, 504);
    assert_eq!(slow.json()["error"], "upstream_timeout");

    // A query that cannot be decoded: 400 and nothing sent.
    let before = standin.requests().len();
    let bad = curl(&[&format!(
        "{}/workspaces/{WS}/api/v1/query?query=%E0%A4",
        impatient.url()
    )]);
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"], "bad_request");
    assert_eq!(standin.requests().len(), before);

    // No credentials anywhere (no env keys, empty HOME, IMDS off): 503, and the process lives.
    let host = format!("127.0.0.1:{}", standin.port);
    let no_creds = ProxyProcess::start(
        &[
            "--host",
            &host,
            "--upstream-url-scheme",
            "http",
            "--name",
            "aps",
            "--region",
            "us-east-1",
        ],
        &[],
    );
    let refused = curl(&[&format!(
        "{}/workspaces/{WS}/api/v1/query?query=up",
        no_creds.url()
    )]);
    assert_eq!(refused.status, 503);
    assert_eq!(refused.json()["error"], "credentials_unavailable");
    assert_eq!(
        curl(&[&format!(
            "{}/workspaces/{WS}/api/v1/query?query=up",
            no_creds.url()
        )])
        .status,
        503,
        "still answering"
    );
}

#[test]
fn declared_but_unsent_bodies_do_not_pin_memory() {
    // Clients that declare a large Content-Length and then send nothing must not make the
    // proxy commit that memory up front (a mapping populated at its declared size would:
    // 24 × 30 MiB ≈ 720 MiB).
    use std::io::Write as _;
    const CLIENTS: usize = 24;
    const DECLARED: u64 = 30 * 1024 * 1024;
    let upstream = Upstream::start(AKID, SECRET, None);
    let proxy = proxy_to(upstream.standin.port, &[]);
    assert_eq!(
        curl(&[&format!(
            "{}/workspaces/{WS}/api/v1/query?query=1",
            proxy.url()
        )])
        .status,
        200
    );
    let before_kib = proxy.status_kib("VmRSS");
    let mut held = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        let mut stream = std::net::TcpStream::connect(proxy.addr).expect("connect");
        write!(
            stream,
            "POST /workspaces/{WS}/api/v1/remote_write HTTP/1.1\r\nHost: {}\r\n\
             Content-Type: application/x-protobuf\r\nContent-Length: {DECLARED}\r\n\r\n",
            proxy.addr
        )
        .expect("write head");
        // A first few bytes, so every request is past its head and reading the body.
        stream.write_all(&[0u8; 1024]).expect("write some body");
        held.push(stream);
    }
    std::thread::sleep(Duration::from_secs(2));
    let during_kib = proxy.status_kib("VmRSS");
    eprintln!(
        "{CLIENTS} requests declaring {} MiB each: RSS {:.1} MiB (before {:.1} MiB)",
        DECLARED / 1024 / 1024,
        during_kib as f64 / 1024.0,
        before_kib as f64 / 1024.0
    );
    assert!(
        during_kib < before_kib + 64 * 1024,
        "RSS grew from {before_kib} KiB to {during_kib} KiB for bodies that were never sent"
    );
    drop(held);
    // Still serving.
    assert_eq!(
        curl(&[&format!(
            "{}/workspaces/{WS}/api/v1/query?query=1",
            proxy.url()
        )])
        .status,
        200
    );
}
