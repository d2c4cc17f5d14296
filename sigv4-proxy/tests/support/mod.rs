//! Test support shared by the integration tests (`mod support;` in `tests/*.rs`).
//!
//! - [`Prometheus`]: a real Prometheus server (Debian package `prometheus`) on a free loopback
//!   port, with its own storage directory, scraping itself every second and accepting remote
//!   write.
//! - [`StandIn`]: `amp_standin.py`, an AMP stand-in that verifies SigV4 with botocore (an
//!   independent implementation) and forwards verified requests to a Prometheus; it also serves
//!   container credentials and, with `moto`, runs a local STS.
//! - Small blocking helpers: [`free_port`], [`wait_for_port`], [`http_request`], [`http_get`].
//!
//! Everything binds 127.0.0.1 on ports picked at run time, and every process started here is
//! killed (and its directory removed) on drop.

#![allow(dead_code, unreachable_pub, missing_debug_implementations)]

pub mod proxy_process;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a Prometheus may take to answer `/-/ready`.
const PROMETHEUS_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the stand-in may take to print its ready line (moto's import takes about 1 s).
const STANDIN_READY_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Locating tools
// ---------------------------------------------------------------------------------------------

/// The Cargo workspace root (the directory holding `.venv/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate lives inside the workspace")
        .to_path_buf()
}

/// `sigv4-proxy/tests/support/` (also when another crate's tests include this module).
pub fn support_dir() -> PathBuf {
    workspace_root()
        .join("sigv4-proxy")
        .join("tests")
        .join("support")
}

/// The Python with botocore and moto: `$SIGV4_TEST_PYTHON`, else `<workspace>/.venv/bin/python`.
pub fn python() -> PathBuf {
    let path = match std::env::var_os("SIGV4_TEST_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => workspace_root().join(".venv").join("bin").join("python"),
    };
    assert!(
        path.exists(),
        "no Python test environment at {}: run `make test-deps` (or set SIGV4_TEST_PYTHON)",
        path.display()
    );
    path
}

/// The Prometheus server binary: `$PROMETHEUS_BIN`, else `prometheus` on PATH.
pub fn prometheus_bin() -> PathBuf {
    tool("PROMETHEUS_BIN", "prometheus")
}

/// promtool: `$PROMTOOL_BIN`, else `promtool` on PATH.
pub fn promtool_bin() -> PathBuf {
    tool("PROMTOOL_BIN", "promtool")
}

fn tool(var: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(p);
        assert!(
            path.is_file(),
            "${var} points at {}, which does not exist",
            path.display()
        );
        return path;
    }
    find_on_path(name).unwrap_or_else(|| {
        panic!(
            "`{name}` is not on PATH: run `make test-deps` (Debian/Ubuntu: apt-get install \
             prometheus), or set ${var} to the binary"
        )
    })
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

// ---------------------------------------------------------------------------------------------
// Ports and scratch directories
// ---------------------------------------------------------------------------------------------

/// A loopback port that was free a moment ago (bound to 127.0.0.1:0, then released). Another
/// process may still take it before it is used, so callers that bind it retry on collision.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`; false on timeout.
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A fresh directory under the system temp dir, removed (with its contents) on drop.
pub struct ScratchDir {
    pub path: PathBuf,
}

impl ScratchDir {
    pub fn new(prefix: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "sigv4-proxy-{prefix}-{}-{}-{nanos:x}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        Self { path }
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn read_log(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

// ---------------------------------------------------------------------------------------------
// Prometheus
// ---------------------------------------------------------------------------------------------

/// A real Prometheus server on 127.0.0.1; killed and its directory removed on drop.
pub struct Prometheus {
    pub port: u16,
    child: Child,
    log_path: PathBuf,
    dir: ScratchDir,
}

impl Prometheus {
    /// Prometheus with the remote-write receiver on, scraping itself every second.
    pub fn start() -> Self {
        Self::launch(None)
    }

    /// Prometheus with the given configuration file text (remote-write receiver on as well).
    pub fn start_with_config(yaml: &str) -> Self {
        Self::launch(Some(yaml))
    }

    fn launch(yaml: Option<&str>) -> Self {
        let binary = prometheus_bin();
        let dir = ScratchDir::new("prometheus");
        let config_path = dir.path.join("prometheus.yml");
        let log_path = dir.path.join("prometheus.log");
        let mut last_log = String::new();
        for attempt in 1..=5 {
            let port = free_port();
            let config = match yaml {
                Some(text) => text.to_owned(),
                None => format!(
                    "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                     scrape_configs:\n  - job_name: prometheus\n    static_configs:\n      \
                     - targets: [\"127.0.0.1:{port}\"]\n"
                ),
            };
            std::fs::write(&config_path, config).expect("write prometheus.yml");
            let log = std::fs::File::create(&log_path).expect("create prometheus.log");
            let mut child = Command::new(&binary)
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path.join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--web.enable-remote-write-receiver")
                .env("NO_PROXY", "127.0.0.1,localhost")
                .env("no_proxy", "127.0.0.1,localhost")
                .current_dir(&dir.path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", binary.display()));
            match wait_ready(&mut child, port, &log_path) {
                Ok(()) => {
                    return Self {
                        port,
                        child,
                        log_path,
                        dir,
                    };
                }
                Err(log) => {
                    stop(&mut child);
                    if log.contains("address already in use") && attempt < 5 {
                        last_log = log;
                        continue;
                    }
                    panic!("Prometheus did not become ready on 127.0.0.1:{port}:\n{log}");
                }
            }
        }
        panic!("Prometheus found no free port in 5 attempts:\n{last_log}");
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Everything Prometheus has logged so far.
    pub fn log(&self) -> String {
        read_log(&self.log_path)
    }

    /// The directory holding its config, log and TSDB.
    pub fn dir(&self) -> &Path {
        &self.dir.path
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// Polls `/-/ready` until it answers 200; Err(log) if the process exits or time runs out.
fn wait_ready(child: &mut Child, port: u16, log_path: &Path) -> Result<(), String> {
    let deadline = Instant::now() + PROMETHEUS_READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited with {status}\n{}", read_log(log_path)));
        }
        if let Ok(answer) = http_get(port, "/-/ready")
            && answer.status == 200
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "/-/ready not 200 within {PROMETHEUS_READY_TIMEOUT:?}\n{}",
                read_log(log_path)
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------------------
// AMP stand-in
// ---------------------------------------------------------------------------------------------

/// How to run `amp_standin.py`.
#[derive(Debug, Clone)]
pub struct StandInOptions {
    /// The Prometheus verified requests go to, e.g. [`Prometheus::url`].
    pub upstream: String,
    /// The workspace id in `/workspaces/<id>/...`; any other id answers 404.
    pub workspace: String,
    /// The region the credential scope must name.
    pub region: String,
    /// Long-lived keys: (access key id, secret, session token).
    pub static_keys: Vec<(String, String, Option<String>)>,
    /// Lifetime of the keys `GET /__creds` hands out.
    pub creds_ttl_secs: u64,
    /// The `Authorization` value `GET /__creds` requires.
    pub creds_token: Option<String>,
    /// Run moto's STS in-process; its port is [`StandIn::moto_port`].
    pub moto: bool,
}

impl Default for StandInOptions {
    fn default() -> Self {
        Self {
            upstream: String::new(),
            workspace: "ws-test".into(),
            region: "us-east-1".into(),
            static_keys: Vec::new(),
            creds_ttl_secs: 900,
            creds_token: None,
            moto: false,
        }
    }
}

/// A real Prometheus behind the verifying stand-in, which knows one static key.
pub struct Upstream {
    pub prometheus: Prometheus,
    pub standin: StandIn,
}

impl Upstream {
    pub fn start(akid: &str, secret: &str, token: Option<&str>) -> Self {
        let prometheus = Prometheus::start();
        let standin = StandIn::start(StandInOptions {
            upstream: prometheus.url(),
            static_keys: vec![(akid.into(), secret.into(), token.map(str::to_owned))],
            ..StandInOptions::default()
        });
        Self {
            prometheus,
            standin,
        }
    }
}

/// The header names a request recorded by the stand-in signed.
pub fn signed_headers(record: &serde_json::Value) -> Vec<&str> {
    record["signed_headers"]
        .as_array()
        .map(|names| names.iter().filter_map(|h| h.as_str()).collect())
        .unwrap_or_default()
}

/// A running `amp_standin.py`; killed on drop.
pub struct StandIn {
    pub port: u16,
    pub moto_port: Option<u16>,
    pub workspace: String,
    child: Child,
    /// Held open: the stand-in exits by itself when this pipe closes (the test process died).
    _stdin: Option<ChildStdin>,
    log_path: PathBuf,
    _dir: ScratchDir,
}

impl StandIn {
    pub fn start(opts: StandInOptions) -> Self {
        assert!(
            !opts.upstream.is_empty(),
            "StandInOptions::upstream is required"
        );
        let dir = ScratchDir::new("standin");
        let log_path = dir.path.join("standin.log");
        let log = std::fs::File::create(&log_path).expect("create standin.log");
        let mut command = Command::new(python());
        command
            .arg(support_dir().join("amp_standin.py"))
            .args(["--upstream", &opts.upstream])
            .args(["--workspace", &opts.workspace])
            .args(["--region", &opts.region])
            .args(["--service", "aps"])
            .args(["--creds-ttl", &opts.creds_ttl_secs.to_string()])
            .arg("--exit-with-stdin");
        for (akid, secret, token) in &opts.static_keys {
            let spec = match token {
                Some(token) => format!("{akid}:{secret}:{token}"),
                None => format!("{akid}:{secret}"),
            };
            command.arg(format!("--static-key={spec}"));
        }
        if let Some(token) = &opts.creds_token {
            command.arg(format!("--creds-token={token}"));
        }
        if opts.moto {
            command.arg("--moto");
        }
        let mut child = command
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("NO_PROXY", "*")
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_DEFAULT_PROFILE")
            .current_dir(&dir.path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn amp_standin.py");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");

        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let result = BufReader::new(stdout).read_line(&mut line).map(|_| line);
            let _ = tx.send(result);
        });
        let line = match rx.recv_timeout(STANDIN_READY_TIMEOUT) {
            Ok(Ok(line)) if !line.trim().is_empty() => line,
            other => {
                stop(&mut child);
                panic!(
                    "amp_standin.py did not get ready ({other:?}):\n{}",
                    read_log(&log_path)
                );
            }
        };
        let ready: serde_json::Value = serde_json::from_str(line.trim())
            .unwrap_or_else(|e| panic!("bad ready line {line:?}: {e}"));
        let port = ready["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or_else(|| panic!("no port in ready line {line:?}"));
        let moto_port = ready["moto_port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok());
        Self {
            port,
            moto_port,
            workspace: opts.workspace,
            child,
            _stdin: stdin,
            log_path,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<port>/workspaces/<ws><path_and_query>`
    pub fn workspace_url(&self, path_and_query: &str) -> String {
        format!(
            "{}/workspaces/{}{path_and_query}",
            self.url(),
            self.workspace
        )
    }

    /// The container-credentials endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI`).
    pub fn creds_url(&self) -> String {
        format!("{}/__creds", self.url())
    }

    /// `http://127.0.0.1:<moto_port>` (for `AWS_ENDPOINT_URL_STS`), if moto runs.
    pub fn sts_url(&self) -> Option<String> {
        self.moto_port.map(|p| format!("http://127.0.0.1:{p}"))
    }

    /// Every request seen under `/workspaces/`, oldest first: `method`, `target`, `headers`
    /// (`[[name, value], ...]` as received), `body_len`, `body_sha256`, `verified`, `detail`,
    /// `status`, `signed_headers`.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        let answer = self.control("GET", "/__standin/requests");
        match answer.json() {
            serde_json::Value::Array(items) => items,
            other => panic!("/__standin/requests is not a list: {other}"),
        }
    }

    /// Requests that matched no route (e.g. a path outside `/workspaces/`): `method`, `target`.
    pub fn unrouted(&self) -> Vec<serde_json::Value> {
        match self.control("GET", "/__standin/unrouted").json() {
            serde_json::Value::Array(items) => items,
            other => panic!("/__standin/unrouted is not a list: {other}"),
        }
    }

    /// Every request the stand-in read that was not a control or credentials request,
    /// routed or not, verified or not (`stats()["dispatched"]`).
    pub fn dispatched(&self) -> u64 {
        self.stats()["dispatched"]
            .as_u64()
            .expect("dispatched is a count")
    }

    /// Makes `GET /__creds` answer 500 (`true`) or hand out keys again (`false`).
    pub fn fail_creds(&self, fail: bool) {
        let target = format!("/__standin/creds?fail={}", u8::from(fail));
        self.control("POST", &target);
    }

    /// Answers the next `count` verified `/workspaces` requests with `status`, before they
    /// are forwarded or reach a test route.
    pub fn fail_next(&self, count: u32, status: u16) {
        let target = format!("/__standin/fail-next?count={count}&status={status}");
        self.control("POST", &target);
    }

    /// Forgets the recorded requests.
    pub fn reset(&self) {
        self.control("POST", "/__standin/reset");
    }

    /// `{"creds_fetches": n, "sts_calls": m, "connections": c, "dispatched": d,
    /// "creds_requests": r}`
    pub fn stats(&self) -> serde_json::Value {
        self.control("GET", "/__standin/stats").json()
    }

    /// Everything the stand-in (and moto) logged so far.
    pub fn log(&self) -> String {
        read_log(&self.log_path)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn control(&self, method: &str, target: &str) -> HttpResponse {
        let answer = http_request(method, self.port, target, &[], b"")
            .unwrap_or_else(|e| panic!("{method} {target}: {e}\n{}", self.log()));
        assert_eq!(answer.status, 200, "{method} {target}: {}", answer.text());
        answer
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

// ---------------------------------------------------------------------------------------------
// A tiny blocking HTTP/1.0 client (control APIs, readiness probes, raw requests)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Header (name, value) pairs in order, names as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// Sends one HTTP/1.0 request (`Connection: close`) to 127.0.0.1:`port` and reads the whole
/// answer. `target` is sent byte for byte; `Host` and `Content-Length` are added unless given.
pub fn http_request(
    method: &str,
    port: u16,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.set_write_timeout(Some(Duration::from_secs(60)))?;
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let mut head = format!("{method} {target} HTTP/1.0\r\n");
    if !has("host") {
        head.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    if !has("content-length") && (!body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH")) {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("Connection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

/// `GET target` on 127.0.0.1:`port`.
pub fn http_get(port: u16, target: &str) -> std::io::Result<HttpResponse> {
    http_request("GET", port, target, &[], b"")
}

/// Parses a complete HTTP/1.x answer (after skipping 1xx ones); chunked bodies are decoded.
pub fn parse_response(raw: &[u8]) -> std::io::Result<HttpResponse> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let mut rest = raw;
    // Skip interim 1xx answers.
    loop {
        let end = find(rest, b"\r\n\r\n").ok_or_else(|| bad("no end of header block"))?;
        let head = String::from_utf8_lossy(&rest[..end]).into_owned();
        let body = &rest[end + 4..];
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("bad status line"))?;
        if (100..200).contains(&status) {
            rest = body;
            continue;
        }
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let chunked = headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("transfer-encoding")
                && v.to_ascii_lowercase().contains("chunked")
        });
        let body = if chunked {
            dechunk(body).ok_or_else(|| bad("bad chunked body"))?
        } else {
            body.to_vec()
        };
        return Ok(HttpResponse {
            status,
            headers,
            body,
        });
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}
