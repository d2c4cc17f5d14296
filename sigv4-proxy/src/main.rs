use std::process::ExitCode;

use aws_config::BehaviorVersion;
use aws_config::Region;
use aws_config::meta::region::RegionProviderChain;
use aws_credential_types::provider::SharedCredentialsProvider;
use clap::Parser as _;
use clap::error::ErrorKind;
use hyper::body::Incoming;
use tracing_subscriber::EnvFilter;

use sigv4_proxy::config::{Args, Config, LogFormat};
use sigv4_proxy::credentials::CredentialCache;
use sigv4_proxy::proxy::{ForwardSettings, Proxy};
use sigv4_proxy::server;
use sigv4_proxy::signing::Signer;
use sigv4_proxy::upstream::{UpstreamSettings, build_client};

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
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let credentials = CredentialCache::new(credentials_provider(&config).await?);
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
        },
        config.policy.clone(),
        Signer::new(config.service.clone(), config.region.clone()),
        credentials,
        client,
    );

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    tracing::info!(
        address = %listener.local_addr()?,
        upstream = %format_args!("{}://{}", config.scheme, config.authority),
        service = %config.service,
        region = %config.region,
        "listening"
    );
    server::serve(
        listener,
        proxy,
        server::shutdown_signal(),
        config.shutdown_timeout,
    )
    .await;
    Ok(())
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
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().with_current_span(true).init(),
        LogFormat::Text => builder.init(),
    }
}
