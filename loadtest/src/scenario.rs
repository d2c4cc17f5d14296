//! `loadtest scenario`: the same load, one target after the other, on one machine.
//!
//! Targets: the upstream served directly; nginx as a plain reverse proxy (the ceiling for
//! one proxy hop); `sigv4-proxy`; and the incumbent Go proxy when its binary is there. The
//! upstream is `loadtest serve`, started once for all of them.

use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::procwatch::{self, Machine};
use crate::report::{Check, PhaseReport, Report, TargetInfo, TargetResult};
use crate::runner::{self, Phase, Target};
use crate::schedule::{Mode, Stop};
use crate::stats::Summary;
use crate::workload::{self, Workload};

/// AMP's path shape, so the proxies route and sign exactly what they would in production.
pub(crate) const WORKSPACE_PREFIX: &str = "/workspaces/ws-0a1b2c3d-4e5f-6789-abcd-ef0123456789";
const MIB: u64 = 1 << 20;

#[derive(Debug, Clone)]
pub(crate) struct ScenarioConfig {
    pub(crate) proxy: Option<PathBuf>,
    pub(crate) incumbent: Option<PathBuf>,
    pub(crate) nginx: Option<PathBuf>,
    pub(crate) install_nginx: bool,
    pub(crate) targets: Vec<String>,
    pub(crate) warmup: Duration,
    pub(crate) duration: Duration,
    pub(crate) query_concurrency: usize,
    pub(crate) open_rate: f64,
    pub(crate) open_connections: usize,
    pub(crate) rw_concurrency: usize,
    pub(crate) rw_body_bytes: usize,
    pub(crate) stream_bytes: u64,
    pub(crate) stream_requests: u64,
    pub(crate) answer_bytes: usize,
    pub(crate) out: Option<PathBuf>,
    pub(crate) plot: bool,
    pub(crate) progress: bool,
}

/// A child process that is stopped (TERM, then KILL) when dropped.
#[derive(Debug)]
struct Managed {
    name: String,
    child: Child,
}

impl Managed {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Managed {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SIGTERM lets nginx's master stop its workers and sigv4-proxy drain.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        for _ in 0..60 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "loadtest: {} did not stop on SIGTERM; killing it",
            self.name
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a target is, before it is started.
#[derive(Debug, Clone)]
enum Kind {
    Direct,
    Nginx(PathBuf),
    Proxy(PathBuf),
    Incumbent(PathBuf),
}

#[derive(Debug, Clone)]
struct TargetSpec {
    name: &'static str,
    description: String,
    kind: Kind,
}

/// A started target: where to send requests and which process to watch.
#[derive(Debug)]
struct Running {
    addr: SocketAddr,
    watch: Option<u32>,
    _process: Option<Managed>,
    _dir: Option<TempDir>,
}

/// A directory removed when dropped.
#[derive(Debug)]
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> Result<SocketAddr, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}

/// The workspace root: the nearest ancestor of the current directory, or else of this
/// executable, whose Cargo.toml declares `[workspace]`.
fn workspace_root() -> Option<PathBuf> {
    let starts = [
        std::env::current_dir().ok(),
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf)),
    ];
    starts.into_iter().flatten().find_map(|start| {
        start.ancestors().find_map(|dir| {
            let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).ok()?;
            manifest
                .lines()
                .any(|line| line.trim() == "[workspace]")
                .then(|| dir.to_path_buf())
        })
    })
}

fn default_proxy() -> Option<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("sigv4-proxy")));
    let in_workspace = workspace_root().map(|root| root.join("target/release/sigv4-proxy"));
    [beside, in_workspace]
        .into_iter()
        .flatten()
        .find(|path| path.is_file())
}

fn default_incumbent() -> Option<PathBuf> {
    workspace_root()
        .map(|root| root.join("../shared/anchors/aws-sigv4-proxy"))
        .filter(|path| path.is_file())
}

fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into(), "/usr/local/sbin".into()])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|uids| uids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// nginx from the flag, PATH or /usr/sbin; installed from Debian's `nginx-light` when
/// missing and we are root. Err explains how to get it otherwise.
fn find_or_install_nginx(config: &ScenarioConfig) -> Result<PathBuf, String> {
    if let Some(path) = &config.nginx {
        return if path.is_file() {
            Ok(path.clone())
        } else {
            Err(format!("--nginx {} does not exist", path.display()))
        };
    }
    if let Some(path) = find_in_path("nginx") {
        return Ok(path);
    }
    let how = "install it with `sudo apt-get install nginx-light` (Debian/Ubuntu; `nginx` where \
               nginx-light is gone), or pass --nginx PATH";
    if !config.install_nginx {
        return Err(format!("nginx not found (--no-install given): {how}"));
    }
    if !is_root() {
        return Err(format!("nginx not found and not root: {how}"));
    }
    eprintln!("loadtest: nginx not found; installing Debian's nginx-light with apt-get");
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .map(|status| status.success())
            .unwrap_or(false)
    };
    if !apt(&["update", "-qq"]) {
        return Err(format!("apt-get update failed: {how}"));
    }
    let installed = apt(&[
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        "nginx-light",
    ]) || apt(&["install", "-y", "-qq", "--no-install-recommends", "nginx"]);
    if !installed {
        return Err(format!("apt-get install nginx-light failed: {how}"));
    }
    find_in_path("nginx").ok_or_else(|| format!("nginx still not found after install: {how}"))
}

/// nginx as a plain reverse proxy: keep-alive both ways, no buffering of bodies to disk or
/// memory (so it streams like the signing proxies) but 64 KiB/256 KiB I/O buffers so big
/// bodies do not go through in 4 KiB pieces, no access log (sigv4-proxy logs none by
/// default).
pub(crate) fn nginx_config(dir: &Path, listen: SocketAddr, upstream: SocketAddr) -> String {
    let d = dir.display();
    format!(
        "daemon off;
master_process on;
worker_processes auto;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    client_max_body_size 64m;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    upstream backend {{
        server {upstream};
        keepalive 128;
        keepalive_requests 1000000;
        keepalive_timeout 120s;
    }}
    server {{
        listen {listen} reuseport;
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_buffer_size 64k;
            proxy_buffers 8 64k;
            proxy_busy_buffers_size 128k;
            client_body_buffer_size 256k;
        }}
    }}
}}
"
    )
}

fn log_file(out: &Path, name: &str) -> Stdio {
    std::fs::File::create(out.join(format!("{name}.log")))
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null())
}

fn spawn(name: &str, command: &mut Command, out: &Path) -> Result<Managed, String> {
    let child = command
        .stdin(Stdio::null())
        .stdout(log_file(out, &format!("{name}.stdout")))
        .stderr(log_file(out, name))
        .spawn()
        .map_err(|e| format!("cannot start {name} ({:?}): {e}", command.get_program()))?;
    Ok(Managed {
        name: name.to_owned(),
        child,
    })
}

/// Fake credentials: the loadtest upstream checks no signature, but the proxies sign.
const FAKE_ENV: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
    (
        "AWS_SECRET_ACCESS_KEY",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    ),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

fn start(spec: &TargetSpec, upstream: SocketAddr, out: &Path) -> Result<Running, String> {
    match &spec.kind {
        Kind::Direct => Ok(Running {
            addr: upstream,
            watch: None,
            _process: None,
            _dir: None,
        }),
        Kind::Nginx(path) => {
            let listen = free_port()?;
            let dir = std::env::temp_dir().join(format!("loadtest-nginx-{}", std::process::id()));
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let dir = TempDir(dir);
            let conf = dir.0.join("nginx.conf");
            std::fs::write(&conf, nginx_config(&dir.0, listen, upstream))
                .map_err(|e| format!("{}: {e}", conf.display()))?;
            let _ = std::fs::copy(&conf, out.join("nginx.conf"));
            let process = spawn(
                "nginx",
                Command::new(path)
                    .arg("-p")
                    .arg(&dir.0)
                    .arg("-c")
                    .arg(&conf)
                    .arg("-e")
                    .arg(dir.0.join("error.log")),
                out,
            )?;
            Ok(Running {
                addr: listen,
                watch: Some(process.pid()),
                _process: Some(process),
                _dir: Some(dir),
            })
        }
        Kind::Proxy(path) => {
            let listen = free_port()?;
            let process = spawn(
                "sigv4-proxy",
                Command::new(path)
                    .env_clear()
                    .envs(FAKE_ENV)
                    .args(["--upstream-url-scheme", "http", "--name", "aps"])
                    .args(["--region", "us-east-1", "--admin-port", "127.0.0.1:0"])
                    .args(["--host", &upstream.to_string()])
                    .args(["--port", &listen.to_string()]),
                out,
            )?;
            Ok(Running {
                addr: listen,
                watch: Some(process.pid()),
                _process: Some(process),
                _dir: None,
            })
        }
        Kind::Incumbent(path) => {
            let listen = free_port()?;
            let process = spawn(
                "incumbent",
                Command::new(path)
                    .env_clear()
                    .envs(FAKE_ENV)
                    .args(["--name", "aps", "--region", "us-east-1"])
                    .args(["--host", &upstream.to_string()])
                    .args(["--upstream-url-scheme", "http"])
                    .args(["--port", &listen.to_string()]),
                out,
            )?;
            Ok(Running {
                addr: listen,
                watch: Some(process.pid()),
                _process: Some(process),
                _dir: None,
            })
        }
    }
}

/// Starts `loadtest serve` and learns its port from its first line.
fn start_upstream(answer_bytes: usize, out: &Path) -> Result<(Managed, SocketAddr), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
    let mut child = Command::new(exe)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--answer-bytes", &answer_bytes.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file(out, "upstream"))
        .spawn()
        .map_err(|e| format!("cannot start the upstream: {e}"))?;
    let stdout = child.stdout.take().ok_or("upstream has no stdout")?;
    let managed = Managed {
        name: "upstream".into(),
        child,
    };
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| format!("upstream: {e}"))?;
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("upstream said {line:?} instead of its address"))?;
    Ok((managed, addr))
}

fn resolve_targets(config: &ScenarioConfig, notes: &mut Vec<String>) -> Vec<TargetSpec> {
    let wanted = |name: &str| config.targets.iter().any(|t| t == name);
    let mut specs = Vec::new();
    if wanted("direct") {
        specs.push(TargetSpec {
            name: "direct",
            description: "the loadtest upstream, no proxy".into(),
            kind: Kind::Direct,
        });
    }
    if wanted("nginx") {
        match find_or_install_nginx(config) {
            Ok(path) => {
                let version = Command::new(&path)
                    .arg("-v")
                    .output()
                    .ok()
                    .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned())
                    .unwrap_or_default();
                specs.push(TargetSpec {
                    name: "nginx",
                    description: format!(
                        "{} plain reverse proxy, no signing (keep-alive upstream, no buffering)",
                        version.trim_start_matches("nginx version: ")
                    ),
                    kind: Kind::Nginx(path),
                });
            }
            Err(why) => {
                eprintln!("loadtest: skipping nginx: {why}");
                notes.push(format!("nginx skipped: {why}"));
            }
        }
    }
    if wanted("sigv4-proxy") {
        match config.proxy.clone().or_else(default_proxy) {
            Some(path) if path.is_file() => specs.push(TargetSpec {
                name: "sigv4-proxy",
                description: format!("{}", path.display()),
                kind: Kind::Proxy(path),
            }),
            other => {
                let why = format!(
                    "sigv4-proxy binary not found ({}); build it with `cargo build --release -p \
                     sigv4-proxy` or pass --proxy PATH",
                    other.map_or_else(|| "no path".into(), |p| p.display().to_string())
                );
                eprintln!("loadtest: skipping sigv4-proxy: {why}");
                notes.push(why);
            }
        }
    }
    if wanted("incumbent") {
        match config.incumbent.clone().or_else(default_incumbent) {
            Some(path) if path.is_file() => specs.push(TargetSpec {
                name: "incumbent",
                description: format!("aws-sigv4-proxy (Go) {}", path.display()),
                kind: Kind::Incumbent(path),
            }),
            other => {
                let why = format!(
                    "incumbent skipped: no aws-sigv4-proxy binary ({}); pass --incumbent PATH or \
                     set LOADTEST_INCUMBENT",
                    other.map_or_else(|| "none given".into(), |p| p.display().to_string())
                );
                eprintln!("loadtest: {why}");
                notes.push(why);
            }
        }
    }
    specs
}

struct Plan {
    query: Arc<Workload>,
    write: Arc<Workload>,
    stream: Arc<Workload>,
}

fn phase(
    label: String,
    workload: &Arc<Workload>,
    mode: Mode,
    stop: Stop,
    timeout: Duration,
    progress: bool,
    watch: Option<u32>,
) -> Phase {
    Phase {
        label,
        workload: workload.clone(),
        mode,
        stop,
        timeout,
        progress,
        watch_pid: watch,
    }
}

fn for_duration(duration: Duration) -> Stop {
    Stop {
        duration: Some(duration),
        requests: None,
    }
}

/// Runs every phase against one started target; results go into `phases` in order.
async fn measure(
    config: &ScenarioConfig,
    plan: &Plan,
    name: &str,
    running: &Running,
) -> Result<Vec<(&'static str, Summary)>, String> {
    let target = Target::new(running.addr);
    let watch = running.watch;
    let progress = config.progress;
    let query_mode = Mode::Closed {
        concurrency: config.query_concurrency,
    };
    let write_mode = Mode::Closed {
        concurrency: config.rw_concurrency,
    };
    let timeout = Duration::from_secs(30);
    // The same warm-up for everyone: the query mix, then remote write.
    if !config.warmup.is_zero() {
        for (workload, mode) in [(&plan.query, query_mode), (&plan.write, write_mode)] {
            let warm = phase(
                format!("{name} warm-up {}", workload.name),
                workload,
                mode,
                for_duration(config.warmup),
                timeout,
                progress,
                None,
            );
            runner::run(&target, &warm).await;
        }
    }
    let mut results = Vec::new();
    let run = |label: &str, workload: &Arc<Workload>, mode: Mode, stop: Stop, timeout| {
        phase(
            format!("{name} {label}"),
            workload,
            mode,
            stop,
            timeout,
            progress,
            watch,
        )
    };
    let query = run(
        "query",
        &plan.query,
        query_mode,
        for_duration(config.duration),
        timeout,
    );
    results.push(("query", runner::run(&target, &query).await));
    if config.open_rate > 0.0 {
        let open = run(
            "query (fixed rate)",
            &plan.query,
            Mode::Open {
                rate: config.open_rate,
                connections: config.open_connections,
            },
            for_duration(config.duration),
            timeout,
        );
        results.push(("query_fixed_rate", runner::run(&target, &open).await));
    }
    let write = run(
        "remote write",
        &plan.write,
        write_mode,
        for_duration(config.duration),
        timeout,
    );
    results.push(("remote_write", runner::run(&target, &write).await));
    if config.stream_requests > 0 {
        let stream = run(
            "stream",
            &plan.stream,
            Mode::Closed { concurrency: 1 },
            Stop {
                duration: None,
                requests: Some(config.stream_requests),
            },
            Duration::from_secs(300),
        );
        results.push(("stream", runner::run(&target, &stream).await));
    }
    Ok(results)
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0 && a.is_finite()).then(|| a / b)
}

/// The goals for sigv4-proxy, judged on this run's figures.
fn checks(report: &Report, config: &ScenarioConfig) -> Vec<Check> {
    let get = |phase: &str, target: &str| report.phase(phase).and_then(|p| p.get(target));
    let mut out = Vec::new();
    let mut push = |name: &str, goal: String, figure: Option<(String, bool)>| {
        out.push(Check {
            name: name.into(),
            goal,
            figure: figure
                .as_ref()
                .map_or_else(|| "-".into(), |(text, _)| text.clone()),
            met: figure.map(|(_, met)| met),
        });
    };
    let ours = |phase: &str| get(phase, "sigv4-proxy");
    let c = config.query_concurrency;

    let query_ratio = |other: &str| {
        let (a, b) = (ours("query")?, get("query", other)?);
        Some((
            ratio(a.requests_per_s, b.requests_per_s)?,
            a.requests_per_s,
            b.requests_per_s,
        ))
    };
    push(
        "query throughput vs nginx",
        format!(">= 1.0x at {c} connections"),
        query_ratio("nginx")
            .map(|(r, a, b)| (format!("{r:.2}x ({a:.0} vs {b:.0} req/s)"), r >= 1.0)),
    );
    push(
        "query p99 vs nginx",
        "<= 1.2x".into(),
        ours("query").zip(get("query", "nginx")).and_then(|(a, b)| {
            let r = ratio(a.latency_ms.p99, b.latency_ms.p99)?;
            Some((
                format!(
                    "{r:.2}x ({:.2} vs {:.2} ms)",
                    a.latency_ms.p99, b.latency_ms.p99
                ),
                r <= 1.2,
            ))
        }),
    );
    push(
        "query throughput vs incumbent",
        ">= 4x".into(),
        query_ratio("incumbent")
            .map(|(r, a, b)| (format!("{r:.2}x ({a:.0} vs {b:.0} req/s)"), r >= 4.0)),
    );
    push(
        "200 MB stream: peak RSS",
        "<= 32 MiB".into(),
        ours("stream").and_then(|s| s.process).map(|p| {
            let mib = p.peak_rss_bytes as f64 / MIB as f64;
            (format!("{mib:.1} MiB"), p.peak_rss_bytes <= 32 * MIB)
        }),
    );
    push(
        "200 MB stream: time to first byte",
        "within 5 ms of direct".into(),
        ours("stream").zip(get("stream", "direct")).map(|(a, b)| {
            let delta = a.ttfb_ms.p50 - b.ttfb_ms.p50;
            (
                format!(
                    "+{delta:.2} ms ({:.2} vs {:.2} ms)",
                    a.ttfb_ms.p50, b.ttfb_ms.p50
                ),
                delta <= 5.0,
            )
        }),
    );
    push(
        "remote write throughput vs incumbent",
        format!(
            ">= 2x ({} KiB bodies, {} concurrent)",
            config.rw_body_bytes / 1024,
            config.rw_concurrency
        ),
        ours("remote_write")
            .zip(get("remote_write", "incumbent"))
            .and_then(|(a, b)| {
                let r = ratio(a.requests_per_s, b.requests_per_s)?;
                Some((
                    format!(
                        "{r:.2}x ({:.0} vs {:.0} req/s)",
                        a.requests_per_s, b.requests_per_s
                    ),
                    r >= 2.0,
                ))
            }),
    );
    let rw_budget = config.rw_body_bytes as u64 * config.rw_concurrency as u64 + 16 * MIB;
    push(
        "remote write: peak RSS",
        format!(
            "<= body x concurrency + 16 MiB = {:.1} MiB",
            rw_budget as f64 / MIB as f64
        ),
        ours("remote_write").and_then(|s| s.process).map(|p| {
            (
                format!("{:.1} MiB", p.peak_rss_bytes as f64 / MIB as f64),
                p.peak_rss_bytes <= rw_budget,
            )
        }),
    );
    push(
        "idle RSS",
        "<= 12 MiB".into(),
        report
            .targets
            .iter()
            .find(|t| t.name == "sigv4-proxy")
            .and_then(|t| t.idle_rss_bytes)
            .map(|rss| {
                (
                    format!("{:.1} MiB", rss as f64 / MIB as f64),
                    rss <= 12 * MIB,
                )
            }),
    );
    out
}

fn describe_load(config: &ScenarioConfig, phase: &str) -> String {
    let d = humantime::format_duration(config.duration);
    let w = humantime::format_duration(config.warmup);
    match phase {
        "query" => format!(
            "{} connections, closed loop, {d} after {w} warm-up",
            config.query_concurrency
        ),
        "query_fixed_rate" => format!(
            "open loop at {:.0} req/s over up to {} connections, {d}",
            config.open_rate, config.open_connections
        ),
        "remote_write" => format!("{} connections, closed loop, {d}", config.rw_concurrency),
        "stream" => format!("{} requests one after another", config.stream_requests),
        _ => String::new(),
    }
}

pub(crate) async fn run(config: ScenarioConfig, command: String) -> Result<Report, String> {
    let out = output_dir(&config);
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let machine = Machine::read();
    eprintln!(
        "loadtest: {}; results in {}",
        machine.describe(),
        out.display()
    );
    let mut notes = Vec::new();
    let specs = resolve_targets(&config, &mut notes);
    if specs.is_empty() {
        return Err("no target to measure".into());
    }

    let (write, body) =
        workload::remote_write(WORKSPACE_PREFIX, 0, 1, Some(config.rw_body_bytes), 4)?;
    let plan = Plan {
        query: Arc::new(workload::query_mix(WORKSPACE_PREFIX)?),
        write: Arc::new(write),
        stream: Arc::new(workload::stream(WORKSPACE_PREFIX, config.stream_bytes)?),
    };
    notes.push(format!(
        "remote-write bodies: {} series, {} bytes snappy, {} bytes protobuf",
        body.series,
        body.body.len(),
        body.uncompressed_bytes
    ));
    notes.push(format!(
        "upstream: `loadtest serve`, {} B JSON answers, no signature check; every target gets \
         the same {} warm-up and the same load, one after the other",
        config.answer_bytes,
        humantime::format_duration(config.warmup)
    ));

    let (_upstream, upstream_addr) = start_upstream(config.answer_bytes, &out)?;
    runner::wait_ready(
        &Target::new(upstream_addr),
        "/healthz",
        Duration::from_secs(10),
    )
    .await?;

    let mut phases: Vec<PhaseReport> = Vec::new();
    let mut targets = Vec::new();
    for spec in &specs {
        eprintln!("loadtest: measuring {} ({})", spec.name, spec.description);
        let running = start(spec, upstream_addr, &out)?;
        if let Err(error) = runner::wait_ready(
            &Target::new(running.addr),
            "/healthz",
            Duration::from_secs(15),
        )
        .await
        {
            eprintln!("loadtest: {} did not start: {error}", spec.name);
            notes.push(format!("{} failed to start: {error}", spec.name));
            continue;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let idle = running.watch.map(procwatch::tree_rss);
        let idle_anon = running.watch.map(procwatch::tree_anon_rss);
        let results = measure(&config, &plan, spec.name, &running).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let idle_after = running.watch.map(procwatch::tree_rss);
        targets.push(TargetInfo {
            name: spec.name.into(),
            description: spec.description.clone(),
            idle_rss_bytes: idle,
            idle_anon_rss_bytes: idle_anon,
            idle_rss_after_load_bytes: idle_after,
        });
        for (phase_name, summary) in results {
            let index = match phases.iter().position(|p| p.name == phase_name) {
                Some(index) => index,
                None => {
                    let workload = match phase_name {
                        "remote_write" => plan.write.description.clone(),
                        "stream" => plan.stream.description.clone(),
                        _ => plan.query.description.clone(),
                    };
                    phases.push(PhaseReport {
                        name: phase_name.into(),
                        workload,
                        load: describe_load(&config, phase_name),
                        results: Vec::new(),
                    });
                    phases.len() - 1
                }
            };
            phases[index].results.push(TargetResult {
                target: spec.name.into(),
                summary,
            });
        }
        drop(running);
    }

    let mut report = Report {
        tool: format!("loadtest {}", env!("CARGO_PKG_VERSION")),
        command,
        machine,
        targets,
        phases,
        checks: Vec::new(),
        notes,
    };
    report.checks = checks(&report, &config);
    Ok(report)
}

/// Where the scenario writes its files.
pub(crate) fn output_dir(config: &ScenarioConfig) -> PathBuf {
    config.out.clone().unwrap_or_else(|| {
        workspace_root()
            .map(|root| root.join("target/loadtest"))
            .unwrap_or_else(|| PathBuf::from("loadtest-results"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_config_is_a_keepalive_reverse_proxy() {
        let text = nginx_config(
            Path::new("/tmp/x"),
            "127.0.0.1:8080".parse().expect("addr"),
            "127.0.0.1:9092".parse().expect("addr"),
        );
        assert!(text.contains("listen 127.0.0.1:8080 reuseport;"));
        assert!(text.contains("server 127.0.0.1:9092;"));
        assert!(text.contains("keepalive 128;"));
        assert!(text.contains("proxy_set_header Connection \"\";"));
        assert!(text.contains("pid /tmp/x/nginx.pid;"));
        assert_eq!(text.matches('{').count(), text.matches('}').count());
    }

    #[test]
    fn ratios_guard_against_zero() {
        assert_eq!(ratio(10.0, 0.0), None);
        assert_eq!(ratio(10.0, 4.0), Some(2.5));
    }
}
