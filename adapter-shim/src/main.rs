//! `adapter-shim`: serves the custom (and, opt-in, external) metrics APIs from a
//! prometheus-adapter configuration; `--check-config` validates and prints a summary.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser as _;
use clap::error::ErrorKind;

use adapter_shim::api::{Api, ReadyCheck};
use adapter_shim::auth::{Gate, client_cert_verifier};
use adapter_shim::cli::{Args, LogFormat};
use adapter_shim::config::{Config, Rule};
use adapter_shim::discovery::Discovery;
use adapter_shim::kube::{KubeObjects, discover_resources};
use adapter_shim::metrics::Metrics;
use adapter_shim::naming::ResourceCatalog;
use adapter_shim::promclient::PromClient;
use adapter_shim::reload::Reloader;
use adapter_shim::server;
use adapter_shim::tls::ServingCert;

/// sysexits.h EX_USAGE: the command line, environment or configuration is wrong.
const EXIT_USAGE: u8 = 64;
/// The port could not be bound or the runtime failed.
const EXIT_FAILURE: u8 = 1;

fn usage(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("adapter-shim: {message}");
    ExitCode::from(EXIT_USAGE)
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(error) => {
            let _ = error.print();
            return match error.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
                _ => ExitCode::from(EXIT_USAGE),
            };
        }
    };
    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(error) => return usage(error),
    };
    if args.check_config {
        print!("{}", summary(&config));
        return ExitCode::SUCCESS;
    }
    // Everything that can be wrong with the command line is found before a port is bound.
    let prom = match args.prometheus() {
        Ok(prom) => prom,
        Err(error) => return usage(error),
    };
    let max_age = match args.max_age() {
        Ok(max_age) => max_age,
        Err(error) => return usage(error),
    };
    init_tracing(args.log_format);
    for warning in &config.warnings {
        tracing::warn!(%warning, "configuration warning");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("adapter-shim: cannot start the runtime: {error}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    runtime.block_on(run(args, config, prom, max_age))
}

async fn run(
    args: Args,
    config: Config,
    prom: adapter_shim::promclient::PromSettings,
    max_age: std::time::Duration,
) -> ExitCode {
    // Configuration problems (files, kubeconfigs, CA files) end the process with 64 before
    // the port is bound.
    let serving = match ServingCert::load(&args.cert_source(), &service_names()) {
        Ok(serving) => serving,
        Err(error) => return usage(error),
    };
    let tls = match serving.server_config(Some(client_cert_verifier()), args.disable_http2) {
        Ok(tls) => tls,
        Err(error) => return usage(error),
    };
    let client = match PromClient::new(prom) {
        Ok(client) => client,
        Err(error) => return usage(format!("Prometheus client: {error}")),
    };
    let kube = match adapter_shim::kube::client(args.kube.kubeconfig.as_deref()).await {
        Ok(kube) => kube,
        Err(error) => return usage(format!("Kubernetes client: {error}")),
    };
    let lister = match args.kube.lister_kubeconfig.as_deref() {
        Some(path) => match adapter_shim::kube::client(Some(path)).await {
            Ok(lister) => lister,
            Err(error) => return usage(format!("Kubernetes lister client: {error}")),
        },
        None => kube.clone(),
    };
    let gate = match Gate::new(&args.auth, Some(kube.clone())) {
        Ok(gate) => Arc::new(gate),
        Err(error) => return usage(error),
    };

    let metrics = Metrics::new();
    let discovery = Arc::new(Discovery::new(
        Arc::new(config),
        Arc::new(ResourceCatalog::builtin()),
        client,
        max_age,
        metrics.clone(),
    ));
    let ready_gate = gate.clone();
    let ready: ReadyCheck = Arc::new(move || {
        if ready_gate.is_ready() {
            Ok(())
        } else {
            Err("authentication configuration not loaded yet".into())
        }
    });
    let api = Api {
        discovery: discovery.clone(),
        objects: Arc::new(KubeObjects::new(lister)),
        metrics: metrics.clone(),
        external_enabled: args.enable_external_metrics,
        ready,
    };

    let addr = SocketAddr::new(args.bind_address, args.secure_port);
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("adapter-shim: cannot listen on {addr}: {error}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let local = listener.local_addr().unwrap_or(addr);
    tracing::info!(
        address = %local,
        external = args.enable_external_metrics,
        auth = %gate.describe(),
        "serving the metrics APIs over HTTPS"
    );
    // Test harnesses read the bound port from this line (with --secure-port 0).
    println!("listening on {local}");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let _cert_watcher = serving.spawn_watcher();
    tokio::spawn(start_auth(gate.clone(), stopped()));
    tokio::spawn(discover_types(
        kube,
        discovery.clone(),
        args.discovery_interval,
        stopped(),
    ));
    tokio::spawn(
        discovery
            .clone()
            .run(args.metrics_relist_interval, stopped()),
    );
    tokio::spawn(
        Reloader::new(&args.config, discovery.clone(), metrics.clone())
            .run(args.config_reload_interval, stopped()),
    );
    let shutdown = async move {
        server::shutdown_signal().await;
        let _ = stop_tx.send(true);
    };
    server::serve(
        listener,
        tls,
        api,
        gate,
        args.disable_http2,
        shutdown,
        args.shutdown_timeout,
    )
    .await;
    ExitCode::SUCCESS
}

/// Loads the authentication configuration, retrying until it works; `/readyz` reports
/// not ready until then (discovery documents are served regardless).
async fn start_auth(gate: Arc<Gate>, shutdown: impl std::future::Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut delay = std::time::Duration::from_millis(500);
    loop {
        match gate.start().await {
            Ok(()) => return,
            Err(error) => {
                tracing::error!(%error, retry_in_ms = delay.as_millis() as u64, "authentication setup failed");
            }
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(std::time::Duration::from_secs(30));
    }
}

/// Adds the cluster's resource types (CRDs) to the catalog, now and every `interval`.
async fn discover_types(
    kube: ::kube::Client,
    discovery: Arc<Discovery>,
    interval: std::time::Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        match discover_resources(&kube).await {
            Ok(found) => {
                let mut catalog = ResourceCatalog::builtin();
                let count = found.len();
                for info in found {
                    catalog.insert(info);
                }
                discovery.set_catalog(Arc::new(catalog));
                tracing::debug!(types = count, "resource types discovered");
            }
            Err(error) => {
                tracing::warn!(%error, "resource type discovery failed; keeping the known types");
            }
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// Names for a generated certificate: the pod's host name (the aggregator dials the
/// Service name and verifies only with a caBundle, which a self-signed pair cannot have).
fn service_names() -> Vec<String> {
    std::env::var("HOSTNAME").into_iter().collect()
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ADAPTER_SHIM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn summary(config: &Config) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "ok: {} custom rule(s) ({} series queries), {} external rule(s) ({} series queries), resourceRules {}",
        config.rules.len(),
        config.custom_series_queries().len(),
        config.external_rules.len(),
        config.external_series_queries().len(),
        if config.resource_rules.is_some() {
            "present"
        } else {
            "absent"
        },
    );
    for rule in config.rules.iter().chain(&config.external_rules) {
        describe(&mut out, rule);
    }
    for warning in &config.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    out
}

fn describe(out: &mut String, rule: &Rule) {
    use std::fmt::Write as _;
    let resources = &rule.naming.resources;
    let mut mapping: Vec<String> = resources
        .overrides()
        .iter()
        .map(|(label, gr)| format!("{label}→{gr}"))
        .collect();
    if resources.has_template() {
        mapping.push("template".into());
    }
    let _ = writeln!(
        out,
        "{}: seriesQuery {}",
        rule.location(),
        rule.series_query
    );
    let _ = writeln!(
        out,
        "  name as {:?}; resources {}{}",
        rule.naming.namer.as_template(),
        if mapping.is_empty() {
            "none".to_owned()
        } else {
            mapping.join(", ")
        },
        if rule.namespaced {
            ""
        } else {
            "; namespaced: false"
        },
    );
    let _ = writeln!(out, "  sample query: {}", rule.sample_query);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lists_rules_and_warnings() {
        let config = Config::from_yaml(
            "rules:\n- seriesQuery: 'http_requests_total{namespace!=\"\",pod!=\"\"}'\n  resources: {overrides: {namespace: namespace, pod: {resource: pod}}}\n  name: {matches: '^(.*)_total', as: '${1}_per_second'}\n  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'\n",
        )
        .expect("valid");
        let text = summary(&config);
        assert_eq!(
            text,
            "ok: 1 custom rule(s) (1 series queries), 0 external rule(s) (0 series queries), resourceRules absent\n\
             rules[0]: seriesQuery http_requests_total{namespace!=\"\",pod!=\"\"}\n  \
             name as \"${1}_per_second\"; resources namespace→namespace, pod→pod\n  \
             sample query: sum(rate(sample_series{namespace=\"default\",pod=~\"sample-pod-a|sample-pod-b\"}[2m])) by (pod)\n\
             warning: rules[0].resources.overrides.namespace: shorthand \"namespace\" read as {resource: namespace}; prometheus-adapter itself rejects this form\n"
        );
    }
}
