use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::Region;
use aws_config::meta::region::RegionProviderChain;
use aws_credential_types::provider::SharedCredentialsProvider;
use clap::Parser as _;
use clap::error::ErrorKind;
use http::HeaderValue;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

use sigv4_proxy::admin::AdminState;
use sigv4_proxy::config::{Args, Config, LogFormat};
use sigv4_proxy::credentials::CredentialCache;
use sigv4_proxy::metrics::{CredentialMetrics, Metrics};
use sigv4_proxy::proxy::{ForwardSettings, Proxy};
use sigv4_proxy::server;
use sigv4_proxy::signing::Signer;
use sigv4_proxy::tls::ReloadingCert;
use sigv4_proxy::upstream::{UpstreamSettings, build_client};
use tokio_rustls::TlsAcceptor;

/// sysexits.h EX_USAGE: the command line or environment is wrong.
const EXIT_USAGE: u8 = 64;

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
    let config = match args.validate() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("sigv4-proxy: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    init_logging(&config);
    // Certificate files are configuration too: unreadable ones stop us before binding.
    let tls = match config.tls.as_ref().map(|settings| {
        ReloadingCert::load(
            &settings.cert,
            &settings.key,
            Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        )
    }) {
        None => None,
        Some(Ok(cert)) => Some(cert),
        Some(Err(error)) => {
            eprintln!("sigv4-proxy: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if args.check_config {
        println!(
            "ok: listen {} -> {}://{} (Host {}), signing {} in {}{}",
            config.listen,
            config.scheme,
            config.authority,
            config.host_header.to_str().unwrap_or("?"),
            config.service,
            config.region,
            config
                .role
                .as_ref()
                .map(|r| format!(", assuming {}", r.arn))
                .unwrap_or_default(),
        );
        return ExitCode::SUCCESS;
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sigv4-proxy: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config, tls)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(
    config: Config,
    tls: Option<Arc<ReloadingCert>>,
) -> Result<(), Box<dyn std::error::Error>> {
    let metrics = Arc::new(Metrics::default());
    let credentials = CredentialCache::with_observer(
        credentials_provider(&config).await?,
        CredentialMetrics(metrics.clone()),
    );
    let _refresher = credentials.spawn_refresher();

    let client = build_client(&UpstreamSettings {
        idle_timeout: config.idle_conn_timeout,
        max_idle_per_host: config.max_idle_conns_per_host,
        connect_timeout: config.upstream_connect_timeout,
        no_verify_ssl: config.no_verify_ssl,
    })?;
    let proxy: Proxy<Incoming> = Proxy::new(
        ForwardSettings {
            scheme: config.scheme.clone(),
            authority: config.authority.clone(),
            host_header: config.host_header.clone(),
            max_request_body: config.max_request_body_size,
            unsigned_payload: config.unsigned_payload,
            upstream_timeout: config.upstream_timeout,
            log_failed_requests: config.log_failed_requests,
            log_signing_process: config.log_signing_process,
            via: via_token(),
            access_log: config.access_log,
            retry_queries: config.retry_queries,
        },
        config.policy.clone(),
        Signer::new(config.service.clone(), config.region.clone()),
        credentials.clone(),
        client,
        metrics.clone(),
        config.admission.clone(),
    );

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let admin_listener = match config.admin_listen {
        Some(address) => Some(
            TcpListener::bind(address)
                .await
                .map_err(|e| format!("cannot listen on {address} (--admin-port): {e}"))?,
        ),
        None => None,
    };

    let tls_listener = match (&config.tls, tls) {
        (Some(settings), Some(cert)) => {
            let tls_listener = TcpListener::bind(settings.listen)
                .await
                .map_err(|e| format!("cannot listen on {} (--tls-port): {e}", settings.listen))?;
            tracing::info!(address = %tls_listener.local_addr()?, "TLS listening");
            let _watcher = cert.spawn_watcher();
            Some((tls_listener, TlsAcceptor::from(cert.server_config()?)))
        }
        _ => None,
    };

    let draining = Arc::new(AtomicBool::new(false));
    let (stop_admin, admin_stopped) = tokio::sync::watch::channel(false);
    let admin_task = admin_listener.map(|admin_listener| {
        if let Ok(address) = admin_listener.local_addr() {
            tracing::info!(%address, "admin listening");
        }
        let state = AdminState {
            metrics,
            credentials,
            draining: draining.clone(),
        };
        let mut admin_stopped = admin_stopped;
        tokio::spawn(server::serve(
            admin_listener,
            None,
            state,
            server::ServerLimits::default(),
            async move {
                let _ = admin_stopped.wait_for(|stop| *stop).await;
            },
            Duration::from_secs(1),
        ))
    });

    tracing::info!(
        address = %listener.local_addr()?,
        upstream = %format_args!("{}://{}", config.scheme, config.authority),
        service = %config.service,
        region = %config.region,
        "listening"
    );
    let (stop_proxy, proxy_stopped) = tokio::sync::watch::channel(false);
    tokio::spawn({
        let draining = draining.clone();
        async move {
            server::shutdown_signal().await;
            // Readiness fails from here on, so load balancers stop sending new requests.
            draining.store(true, Ordering::SeqCst);
            let _ = stop_proxy.send(true);
        }
    });
    let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let limits = server::ServerLimits {
        max_header_bytes: config.max_header_bytes,
        header_read_timeout: config.client_header_timeout,
        idle_timeout: config.client_idle_timeout,
    };
    let tls_serving = async {
        if let Some((tls_listener, acceptor)) = tls_listener {
            server::serve(
                tls_listener,
                Some(acceptor),
                proxy.clone(),
                limits,
                until_stopped(proxy_stopped.clone()),
                config.shutdown_timeout,
            )
            .await;
        }
    };
    let plain_serving = server::serve(
        listener,
        None,
        proxy.clone(),
        limits,
        until_stopped(proxy_stopped.clone()),
        config.shutdown_timeout,
    );
    tokio::join!(plain_serving, tls_serving);
    let _ = stop_admin.send(true);
    if let Some(task) = admin_task {
        let _ = task.await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// This process' received-by pseudonym for `Via`, unique per process so that a request
/// that comes back to us is recognised.
fn via_token() -> HeaderValue {
    use std::hash::{BuildHasher as _, Hasher as _};
    // RandomState is seeded from the OS; enough to tell proxy processes apart.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    let token = format!(
        "1.1 sigv4-proxy-{:012x}",
        hasher.finish() & 0xffff_ffff_ffff
    );
    HeaderValue::from_str(&token).expect("ASCII token")
}

/// aws-config's default chain (env, profile, web identity, container, IMDS), with
/// `--role-arn` assumed on top of it. STS calls go to the signing region unless
/// AWS_REGION/AWS_DEFAULT_REGION say otherwise.
async fn credentials_provider(config: &Config) -> Result<SharedCredentialsProvider, &'static str> {
    let region = RegionProviderChain::first_try(
        aws_config::environment::region::EnvironmentVariableRegionProvider::new(),
    )
    .or_else(Region::new(config.region.clone()));
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .load()
        .await;
    let base = sdk
        .credentials_provider()
        .ok_or("aws-config produced no credentials provider")?;
    Ok(match &config.role {
        Some(role) => SharedCredentialsProvider::new(
            aws_config::sts::AssumeRoleProvider::builder(role.arn.clone())
                .session_name(role.session_name.clone())
                .configure(&sdk)
                .build_from_provider(base)
                .await,
        ),
        None => base,
    })
}

fn init_logging(config: &Config) {
    let default = if config.verbose { "debug" } else { "info" };
    // The SDK's own trace output may include request details; keep it quiet.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(default))
        .add_directive("aws_sigv4=warn".parse().expect("static directive"))
        .add_directive("aws_smithy_runtime=warn".parse().expect("static directive"))
        .add_directive("hyper=info".parse().expect("static directive"))
        .add_directive("h2=info".parse().expect("static directive"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match config.log_format {
        LogFormat::Json => builder.json().with_current_span(true).init(),
        LogFormat::Text => builder.init(),
    }
}
