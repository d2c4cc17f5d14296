//! Starts the real `sigv4-proxy` binary for integration tests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running proxy process; killed on drop.
pub struct ProxyProcess {
    child: Child,
    pub addr: SocketAddr,
    pub admin_addr: SocketAddr,
    log_path: PathBuf,
    _home: TempHome,
}

/// Environment every proxy gets: nothing from the developer's shell or ~/.aws, no IMDS.
fn base_env(home: &std::path::Path) -> Vec<(String, String)> {
    vec![
        ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
        ("HOME".into(), home.display().to_string()),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ("NO_PROXY".into(), "127.0.0.1,localhost".into()),
        ("RUST_LOG".into(), "info".into()),
    ]
}

/// The `sigv4-proxy` binary: Cargo's own for this crate's tests; for other crates' tests
/// (which include this module by path) the workspace build, built first if missing.
pub fn proxy_bin() -> PathBuf {
    if let Some(bin) = option_env!("CARGO_BIN_EXE_sigv4-proxy") {
        return PathBuf::from(bin);
    }
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| super::workspace_root().join("target"));
            let bin = target.join("debug").join("sigv4-proxy");
            if !bin.is_file() {
                let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
                let status = Command::new(cargo)
                    .args([
                        "build",
                        "--locked",
                        "-p",
                        "sigv4-proxy",
                        "--bin",
                        "sigv4-proxy",
                    ])
                    .current_dir(super::workspace_root())
                    .status()
                    .expect("run cargo build for sigv4-proxy");
                assert!(status.success(), "building sigv4-proxy failed");
            }
            bin
        })
        .clone()
}

impl ProxyProcess {
    /// A proxy signing `aps` in us-east-1 for the stand-in on `standin_port` (plain HTTP),
    /// with `extra` arguments and the environment `env`.
    pub fn signing_for(standin_port: u16, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let host = format!("127.0.0.1:{standin_port}");
        let mut args = vec![
            "--host",
            host.as_str(),
            "--upstream-url-scheme",
            "http",
            "--name",
            "aps",
            "--region",
            "us-east-1",
        ];
        args.extend_from_slice(extra);
        Self::start(&args, env)
    }

    /// Starts `sigv4-proxy` on 127.0.0.1:0 with `args` and exactly the environment `env`
    /// (plus PATH, an empty HOME and IMDS disabled), and waits until it listens.
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::try_start(args, env).unwrap_or_else(|log| panic!("proxy did not start:\n{log}"))
    }

    pub fn try_start(args: &[&str], env: &[(&str, &str)]) -> Result<Self, String> {
        Self::try_start_on("127.0.0.1:0", args, env)
    }

    /// Like [`ProxyProcess::start`], but listening on `listen` (e.g. `127.0.0.1:<port>` from
    /// `support::free_port()`) instead of 127.0.0.1:0. The admin listener stays on port 0.
    pub fn start_on(listen: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::try_start_on(listen, args, env)
            .unwrap_or_else(|log| panic!("proxy did not start on {listen}:\n{log}"))
    }

    pub fn try_start_on(listen: &str, args: &[&str], env: &[(&str, &str)]) -> Result<Self, String> {
        let home = TempHome::new();
        let log_path = home.path.join("proxy.log");
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut command = Command::new(proxy_bin());
        command
            .args(["--port", listen, "--admin-port", "127.0.0.1:0"])
            .args(args)
            .env_clear()
            .envs(base_env(&home.path))
            .envs(env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let mut child = command.spawn().expect("spawn sigv4-proxy");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let address_of = |marker: &str| -> Option<SocketAddr> {
                text.lines()
                    .find(|l| l.contains(marker))
                    .and_then(|l| l.split("address=").nth(1))
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|a| a.parse().ok())
            };
            if let (Some(addr), Some(admin_addr)) =
                (address_of(": listening "), address_of(": admin listening "))
            {
                return Ok(Self {
                    child,
                    addr,
                    admin_addr,
                    log_path,
                    _home: home,
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("exited with {status}:\n{text}"));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(format!("no listening line within 20 s:\n{text}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// A field of /proc/<pid>/status in KiB, e.g. "VmHWM" (peak RSS) or "VmRSS".
    pub fn status_kib(&self, field: &str) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("proc status");
        status
            .lines()
            .find(|l| l.starts_with(&format!("{field}:")))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .expect("field present")
    }

    /// Whether the process is still running (it has not exited).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM without waiting; see [`ProxyProcess::wait_exit`].
    pub fn send_sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }

    /// Waits up to `timeout` for the process to exit; None if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The admin `/metrics` text.
    pub fn metrics_text(&self) -> String {
        let answer = super::http_get(self.admin_addr.port(), "/metrics")
            .unwrap_or_else(|e| panic!("GET /metrics: {e}\n{}", self.log()));
        assert_eq!(answer.status, 200, "GET /metrics: {}", answer.text());
        answer.text()
    }

    /// The value of one sample in `/metrics`, by its exact series text, e.g.
    /// `sigv4_proxy_in_flight_requests` or `sigv4_proxy_errors_total{kind="overloaded"}`.
    pub fn metric(&self, series: &str) -> Option<f64> {
        metric_value(&self.metrics_text(), series)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "proxy ignored SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of `series` (its name and labels exactly as printed) in OpenMetrics `text`.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?;
        let value = rest.strip_prefix(' ')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

/// Runs the proxy binary to completion (for configuration errors and --check-config).
pub fn run_proxy(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let home = TempHome::new();
    Command::new(proxy_bin())
        .args(args)
        .env_clear()
        .envs(base_env(&home.path))
        .envs(env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
        .stdin(Stdio::null())
        .output()
        .expect("run sigv4-proxy")
}

/// An empty directory used as HOME, removed on drop.
pub struct TempHome {
    pub path: PathBuf,
}

impl TempHome {
    pub fn new() -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "sigv4-proxy-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&path).expect("temp dir");
        Self { path }
    }
}

impl Drop for TempHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Runs curl with `args` and returns (HTTP status, response headers, body).
pub fn curl(args: &[&str]) -> CurlResult {
    let home = TempHome::new();
    let headers = home.path.join("headers");
    let body = home.path.join("body");
    let output = Command::new("curl")
        .args(["-sS", "--noproxy", "*", "-D"])
        .arg(&headers)
        .arg("-o")
        .arg(&body)
        .args([
            "-w",
            "%{http_code} %{time_starttransfer} %{time_total} %{size_download}",
        ])
        .args(args)
        .output()
        .expect("run curl");
    let exit_code = output.status.code();
    let metrics = String::from_utf8_lossy(&output.stdout).to_string();
    let mut parts = metrics.split_whitespace();
    let status = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let ttfb = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    let total = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    let size = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    CurlResult {
        status,
        headers: std::fs::read_to_string(&headers).unwrap_or_default(),
        body: std::fs::read(&body).unwrap_or_default(),
        ttfb_secs: ttfb,
        total_secs: total,
        size_download: size,
        stderr: String::from_utf8_lossy(&output.stderr).to_string(),
        exit_code,
    }
}

#[derive(Debug)]
pub struct CurlResult {
    pub status: u16,
    /// Raw header block(s) as received, lowercased names not guaranteed.
    pub headers: String,
    pub body: Vec<u8>,
    pub ttfb_secs: f64,
    pub total_secs: f64,
    pub size_download: u64,
    pub stderr: String,
    /// curl's exit status: 0 for a complete transfer, 18 for a partial one, 56 for a
    /// receive failure, ...
    pub exit_code: Option<i32>,
}

impl CurlResult {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// The value of a response header (case-insensitive), from the last header block.
    pub fn header(&self, name: &str) -> Option<String> {
        let block = self
            .headers
            .rsplit("\r\n\r\n")
            .find(|b| !b.trim().is_empty())?;
        block.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}
