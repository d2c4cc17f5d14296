//! `loadtest`: load generator and side-by-side benchmark for sigv4-proxy.
//!
//! - `loadtest run`: one workload against one URL, closed or open loop.
//! - `loadtest serve`: the fast upstream (fixed JSON answers, big streamed answers).
//! - `loadtest scenario`: direct vs nginx vs sigv4-proxy vs the incumbent, in one run.

mod plot;
mod procwatch;
mod progress;
mod remote_write;
mod report;
mod runner;
mod scenario;
mod schedule;
mod stats;
mod upstream;
mod workload;

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::procwatch::Machine;
use crate::report::{PhaseReport, Report, TargetInfo, TargetResult};
use crate::runner::{Phase, Target};
use crate::scenario::ScenarioConfig;
use crate::schedule::{Mode, Stop};

#[derive(Debug, Parser)]
#[command(name = "loadtest", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send one workload to one URL and report throughput, latency and resource use.
    Run(RunArgs),
    /// Serve fast fixed answers, as a stand-in upstream (checks no signature).
    Serve(ServeArgs),
    /// Compare direct, nginx, sigv4-proxy and the incumbent under the same load.
    Scenario(ScenarioArgs),
    /// Print (and plot) a results JSON written by `run --json` or `scenario`.
    Report(ReportArgs),
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// The JSON file.
    json: PathBuf,
    /// Print Markdown tables instead of terminal ones.
    #[arg(long)]
    markdown: bool,
    /// Write an SVG of latency percentiles and throughput.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum WorkloadKind {
    /// Prometheus API reads: GET instant queries, form POST range queries, GET series.
    Query,
    /// Prometheus remote write: snappy-compressed protobuf WriteRequests.
    RemoteWrite,
    /// One range query whose answer is --stream-bytes long.
    Stream,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum When {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args)]
struct Output {
    /// Write the results as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the results as CSV, one row per phase and target.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Show a progress bar (auto: when stderr is a terminal).
    #[arg(long, value_enum, default_value = "auto")]
    progress: When,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Base URL, plain http, with the path before /api/v1: e.g.
    /// http://127.0.0.1:8080/workspaces/ws-1234
    #[arg(long, env = "LOADTEST_URL")]
    url: String,
    #[arg(long, value_enum, default_value = "query")]
    workload: WorkloadKind,
    /// Connections, each sending its next request when the last is answered (closed loop).
    #[arg(short, long, default_value_t = 32)]
    concurrency: usize,
    /// Requests per second on a fixed timetable (open loop); latency of a request that had
    /// to wait for a free connection counts from its scheduled time.
    #[arg(long, conflicts_with = "concurrency")]
    rate: Option<f64>,
    /// Connections available to --rate.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// How long to measure.
    #[arg(short, long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// How many requests to measure (with --duration: whichever comes first).
    #[arg(short = 'n', long)]
    requests: Option<u64>,
    /// Unmeasured load before the measurement, with the same settings.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    warmup: Duration,
    /// Per request, answer included.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "60s")]
    timeout: Duration,
    /// Series per remote-write request.
    #[arg(long, default_value_t = 2000)]
    series: usize,
    /// Samples per series in a remote-write request.
    #[arg(long, default_value_t = 1)]
    samples: usize,
    /// Size remote-write bodies to about this many compressed bytes instead (e.g. 1MiB);
    /// overrides --series.
    #[arg(long, value_parser = parse_size)]
    body_bytes: Option<u64>,
    /// Answer size asked of `loadtest serve` by --workload stream (e.g. 200MB).
    #[arg(long, value_parser = parse_size, default_value = "200MB")]
    stream_bytes: u64,
    /// A process (tree) whose peak RSS and CPU time to report: the proxy under test.
    #[arg(long, value_name = "PID")]
    watch_pid: Option<u32>,
    /// Name of the target in reports.
    #[arg(long, default_value = "target")]
    name: String,
    /// Write an SVG of latency percentiles and throughput.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    #[command(flatten)]
    output: Output,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on; port 0 picks one (printed as `listening on ADDR`).
    #[arg(long, default_value = "127.0.0.1:9092")]
    listen: SocketAddr,
    /// Size of the fixed JSON answer to queries.
    #[arg(long, value_parser = parse_size, default_value = "4096")]
    answer_bytes: u64,
    /// Chunk size of streamed answers (`loadtest_bytes=N` in the query).
    #[arg(long, value_parser = parse_size, default_value = "64KiB")]
    chunk_bytes: u64,
    /// Answer 400 to remote-write bodies that do not decode (snappy + protobuf).
    #[arg(long)]
    verify_remote_write: bool,
    /// Runtime worker threads (default: one per CPU).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Debug, Args)]
struct ScenarioArgs {
    /// The sigv4-proxy binary [default: sigv4-proxy beside this executable, else
    /// target/release/sigv4-proxy in the workspace].
    #[arg(long, env = "LOADTEST_PROXY")]
    proxy: Option<PathBuf>,
    /// The incumbent aws-sigv4-proxy binary [default: ../shared/anchors/aws-sigv4-proxy
    /// next to the workspace]; skipped when absent.
    #[arg(long, env = "LOADTEST_INCUMBENT")]
    incumbent: Option<PathBuf>,
    /// The nginx binary [default: nginx on PATH or in /usr/sbin].
    #[arg(long, env = "LOADTEST_NGINX")]
    nginx: Option<PathBuf>,
    /// Do not install nginx-light with apt-get when nginx is missing (root only).
    #[arg(long)]
    no_install: bool,
    /// Targets to measure, in this order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "direct,nginx,sigv4-proxy,incumbent"
    )]
    targets: Vec<String>,
    /// Unmeasured load before each target's measurements (query mix, then remote write).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "3s")]
    warmup: Duration,
    /// Length of each measured phase.
    #[arg(short, long, value_parser = humantime::parse_duration, default_value = "15s")]
    duration: Duration,
    /// Connections for the closed-loop query phase.
    #[arg(long, default_value_t = 32)]
    query_concurrency: usize,
    /// Rate of the open-loop query phase, requests per second (0: skip the phase).
    #[arg(long, default_value_t = 2000.0)]
    rate: f64,
    /// Connections available to the open-loop phase.
    #[arg(long, default_value_t = 64)]
    rate_connections: usize,
    /// Connections for the remote-write phase.
    #[arg(long, default_value_t = 16)]
    rw_concurrency: usize,
    /// Compressed size of each remote-write body.
    #[arg(long, value_parser = parse_size, default_value = "1MiB")]
    rw_body_bytes: u64,
    /// Size of the streamed answer.
    #[arg(long, value_parser = parse_size, default_value = "200MB")]
    stream_bytes: u64,
    /// Streamed answers to fetch, one after another (0: skip the phase).
    #[arg(long, default_value_t = 3)]
    stream_requests: u64,
    /// Size of the upstream's fixed JSON answer to queries.
    #[arg(long, value_parser = parse_size, default_value = "4096")]
    answer_bytes: u64,
    /// Directory for results.json, results.csv, results.md, results.svg and logs
    /// [default: target/loadtest in the workspace].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Do not write results.svg.
    #[arg(long)]
    no_plot: bool,
    #[command(flatten)]
    output: Output,
}

/// `4096`, `64k`/`64KB` (×1000), `64KiB` (×1024), `1MB`, `1MiB`, `2GB`, `2GiB`.
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 4096, 64KiB or 1MB"))?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1_048_576.0,
        "g" | "gb" => 1e9,
        "gib" => 1_073_741_824.0,
        other => return Err(format!("unknown size unit {other:?} in {text:?}")),
    };
    Ok((number * scale).round() as u64)
}

fn show_progress(when: When) -> bool {
    match when {
        When::Always => true,
        When::Never => false,
        When::Auto => std::io::stderr().is_terminal(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let threads = match &cli.command {
        Command::Serve(args) => args.threads,
        _ => None,
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(threads) = threads {
        builder.worker_threads(threads.max(1));
    }
    let runtime = match builder.build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("loadtest: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let command_line = std::env::args().collect::<Vec<_>>().join(" ");
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Run(args) => run(args, command_line).await,
            Command::Serve(args) => serve(args).await,
            Command::Scenario(args) => scenario(args, command_line).await,
            Command::Report(args) => reprint(&args),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("loadtest: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    upstream::serve(
        args.listen,
        upstream::UpstreamConfig {
            answer_bytes: usize::try_from(args.answer_bytes).map_err(|e| e.to_string())?,
            chunk_bytes: usize::try_from(args.chunk_bytes).map_err(|e| e.to_string())?,
            verify_remote_write: args.verify_remote_write,
        },
    )
    .await
}

/// `http://host:port/prefix` → address, Host header, path prefix.
async fn parse_url(url: &str) -> Result<(Target, String), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("--url {url}: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!(
            "--url {url}: only plain http is supported (put sigv4-proxy in front of TLS)"
        ));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| format!("--url {url}: no host"))?;
    let host_port = format!(
        "{}:{}",
        authority.host(),
        authority.port_u16().unwrap_or(80)
    );
    let addr = tokio::net::lookup_host(&host_port)
        .await
        .map_err(|e| format!("--url {url}: {e}"))?
        .next()
        .ok_or_else(|| format!("--url {url}: host has no address"))?;
    let mut target = Target::new(addr);
    target.host =
        http::HeaderValue::from_str(authority.as_str()).map_err(|e| format!("--url {url}: {e}"))?;
    Ok((target, uri.path().trim_end_matches('/').to_owned()))
}

async fn run(args: RunArgs, command: String) -> Result<(), String> {
    let (target, prefix) = parse_url(&args.url).await?;
    let workload = match args.workload {
        WorkloadKind::Query => workload::query_mix(&prefix)?,
        WorkloadKind::RemoteWrite => {
            let target_bytes = args
                .body_bytes
                .map(usize::try_from)
                .transpose()
                .map_err(|e| e.to_string())?;
            workload::remote_write(&prefix, args.series, args.samples, target_bytes, 4)?.0
        }
        WorkloadKind::Stream => workload::stream(&prefix, args.stream_bytes)?,
    };
    let workload = Arc::new(workload);
    let mode = match args.rate {
        Some(rate) if rate > 0.0 => Mode::Open {
            rate,
            connections: args.connections,
        },
        Some(_) => return Err("--rate must be above 0".into()),
        None => Mode::Closed {
            concurrency: args.concurrency,
        },
    };
    let stop = match (args.duration, args.requests) {
        (None, None) => Stop {
            duration: Some(Duration::from_secs(10)),
            requests: None,
        },
        (duration, requests) => Stop { duration, requests },
    };
    let progress = show_progress(args.output.progress);
    if !args.warmup.is_zero() {
        let warm = Phase {
            label: "warm-up".into(),
            workload: workload.clone(),
            mode,
            stop: Stop {
                duration: Some(args.warmup),
                requests: None,
            },
            timeout: args.timeout,
            progress,
            watch_pid: None,
        };
        runner::run(&target, &warm).await;
    }
    let idle = args.watch_pid.map(procwatch::tree_rss);
    let phase = Phase {
        label: workload.name.clone(),
        workload: workload.clone(),
        mode,
        stop,
        timeout: args.timeout,
        progress,
        watch_pid: args.watch_pid,
    };
    let cpu_before = procwatch::self_cpu_s();
    let summary = runner::run(&target, &phase).await;
    let loadgen_cpu = procwatch::self_cpu_s() - cpu_before;
    let load = match mode {
        Mode::Closed { concurrency } => format!("{concurrency} connections, closed loop"),
        Mode::Open { rate, connections } => {
            format!("open loop at {rate:.0} req/s over up to {connections} connections")
        }
    };
    let report = Report {
        tool: format!("loadtest {}", env!("CARGO_PKG_VERSION")),
        command,
        machine: Machine::read(),
        targets: vec![TargetInfo {
            name: args.name.clone(),
            description: args.url.clone(),
            idle_rss_bytes: idle,
            idle_anon_rss_bytes: args.watch_pid.map(procwatch::tree_anon_rss),
            idle_rss_after_load_bytes: None,
        }],
        phases: vec![PhaseReport {
            name: workload.name.clone(),
            workload: workload.description.clone(),
            load: format!("{load}, {:.1} s", summary.elapsed_s),
            results: vec![TargetResult {
                target: args.name,
                summary,
            }],
        }],
        checks: Vec::new(),
        notes: vec![format!("load generator CPU: {loadgen_cpu:.2} s")],
    };
    print!("{}", report::render(&report, false));
    write_outputs(&report, &args.output, args.plot.as_deref())
}

fn reprint(args: &ReportArgs) -> Result<(), String> {
    let text = std::fs::read_to_string(&args.json)
        .map_err(|e| format!("cannot read {}: {e}", args.json.display()))?;
    let report: Report = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a loadtest result: {e}", args.json.display()))?;
    print!("{}", report::render(&report, args.markdown));
    if let Some(path) = &args.plot {
        plot::write_svg(&report, path)?;
    }
    Ok(())
}

fn write_outputs(report: &Report, output: &Output, plot: Option<&Path>) -> Result<(), String> {
    if let Some(path) = &output.json {
        report::write_json(report, path)?;
    }
    if let Some(path) = &output.csv {
        report::write_csv(report, path)?;
    }
    if let Some(path) = plot {
        plot::write_svg(report, path)?;
    }
    Ok(())
}

async fn scenario(args: ScenarioArgs, command: String) -> Result<(), String> {
    let to_usize = |n: u64| usize::try_from(n).map_err(|e| e.to_string());
    let config = ScenarioConfig {
        proxy: args.proxy,
        incumbent: args.incumbent,
        nginx: args.nginx,
        install_nginx: !args.no_install,
        targets: args.targets,
        warmup: args.warmup,
        duration: args.duration,
        query_concurrency: args.query_concurrency,
        open_rate: args.rate,
        open_connections: args.rate_connections,
        rw_concurrency: args.rw_concurrency,
        rw_body_bytes: to_usize(args.rw_body_bytes)?,
        stream_bytes: args.stream_bytes,
        stream_requests: args.stream_requests,
        answer_bytes: to_usize(args.answer_bytes)?,
        out: args.out,
        plot: !args.no_plot,
        progress: show_progress(args.output.progress),
    };
    let out = scenario::output_dir(&config);
    let report = scenario::run(config.clone(), command).await?;
    print!("{}", report::render(&report, false));
    report::write_json(&report, &out.join("results.json"))?;
    report::write_csv(&report, &out.join("results.csv"))?;
    let markdown = format!(
        "Machine: {}\n\nCommand: `{}`\n{}",
        report.machine.describe(),
        report.command,
        report::render(&report, true)
    );
    std::fs::write(out.join("results.md"), markdown)
        .map_err(|e| format!("cannot write results.md: {e}"))?;
    let plot = config.plot.then(|| out.join("results.svg"));
    write_outputs(&report, &args.output, plot.as_deref())?;
    eprintln!(
        "loadtest: wrote results.json, results.csv, results.md{} in {}",
        if config.plot { ", results.svg" } else { "" },
        out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_decimal_and_binary_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64KiB"), Ok(65_536));
        assert_eq!(parse_size("64k"), Ok(64_000));
        assert_eq!(parse_size("1MiB"), Ok(1_048_576));
        assert_eq!(parse_size("200MB"), Ok(200_000_000));
        assert_eq!(parse_size("1.5 GB"), Ok(1_500_000_000));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").is_err());
    }

    #[test]
    fn the_command_line_parses() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "loadtest",
            "run",
            "--url",
            "http://127.0.0.1:8080/workspaces/ws-1",
            "--rate",
            "500",
            "-d",
            "5s",
        ])
        .expect("parses");
        let Command::Run(args) = cli.command else {
            panic!("run expected");
        };
        assert_eq!(args.rate, Some(500.0));
        assert_eq!(args.duration, Some(Duration::from_secs(5)));
        let cli = Cli::try_parse_from(["loadtest", "scenario", "--targets", "direct,nginx"])
            .expect("parses");
        let Command::Scenario(args) = cli.command else {
            panic!("scenario expected");
        };
        assert_eq!(args.targets, ["direct", "nginx"]);
        assert_eq!(args.rw_body_bytes, 1_048_576);
    }

    #[tokio::test]
    async fn urls_give_address_host_and_prefix() {
        let (target, prefix) = parse_url("http://127.0.0.1:8080/workspaces/ws-1/")
            .await
            .expect("parses");
        assert_eq!(target.addr, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(target.host, "127.0.0.1:8080");
        assert_eq!(prefix, "/workspaces/ws-1");
        assert!(parse_url("https://example.com").await.is_err());
    }
}
