//! Command line and environment: a drop-in for awslabs/aws-sigv4-proxy's flags, each also
//! readable from a `SIGV4_PROXY_*` environment variable. Everything is validated here, before
//! any port is bound.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use http::HeaderValue;
use http::uri::{Authority, Scheme};

use crate::admission::{Admission, PathRule};
use crate::headers::{HeaderPolicy, HeaderPolicyError};

const DEFAULT_MAX_BODY: u64 = 32 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// A streaming AWS SigV4 signing reverse proxy for Amazon Managed Service for Prometheus.
///
/// Clients that cannot sign (prometheus-adapter, KEDA, curl, Grafana, remote-writing
/// Prometheus servers and collectors) send plain HTTP here; the proxy signs each request
/// with SigV4 and forwards it to --host, streaming the answer back.
#[derive(Debug, Parser)]
#[command(name = "sigv4-proxy", version, max_term_width = 100)]
pub struct Args {
    /// Signing name of the AWS service, e.g. `aps`. Derived from an AMP --host when omitted.
    #[arg(long, env = "SIGV4_PROXY_NAME", value_name = "SERVICE")]
    pub name: Option<String>,

    /// Signing region, e.g. `us-east-1`. Derived from an AMP --host when omitted.
    #[arg(long, env = "SIGV4_PROXY_REGION")]
    pub region: Option<String>,

    /// Upstream host[:port] to connect to, e.g. `aps-workspaces.us-east-1.amazonaws.com`.
    /// Required: unlike the incumbent, the proxy never forwards to a Host a caller names.
    #[arg(long, env = "SIGV4_PROXY_HOST", value_name = "HOST[:PORT]")]
    pub host: Option<String>,

    /// Host header to send and sign while connecting to --host (VPC endpoints, tunnels).
    #[arg(
        long = "sign-host",
        env = "SIGV4_PROXY_SIGN_HOST",
        value_name = "HOST[:PORT]"
    )]
    pub sign_host: Option<String>,

    /// Address to listen on, Go style: `:8080` (all interfaces) or `127.0.0.1:8080`.
    #[arg(
        long,
        env = "SIGV4_PROXY_PORT",
        default_value = ":8080",
        value_name = "ADDR"
    )]
    pub port: String,

    /// Address of the admin listener (/healthz, /readyz, /metrics), or `off`.
    #[arg(
        long = "admin-port",
        env = "SIGV4_PROXY_ADMIN_PORT",
        default_value = ":8081",
        value_name = "ADDR"
    )]
    pub admin_port: String,

    /// PEM certificate chain for the TLS listener (re-read when it changes).
    #[arg(
        long = "tls-cert",
        env = "SIGV4_PROXY_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for the TLS listener.
    #[arg(
        long = "tls-key",
        env = "SIGV4_PROXY_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// Address of the TLS listener (HTTP/2 and HTTP/1.1 by ALPN), when --tls-cert is given.
    #[arg(
        long = "tls-port",
        env = "SIGV4_PROXY_TLS_PORT",
        default_value = ":8443",
        value_name = "ADDR"
    )]
    pub tls_port: String,

    /// Scheme for upstream connections.
    #[arg(
        long = "upstream-url-scheme",
        env = "SIGV4_PROXY_UPSTREAM_URL_SCHEME",
        default_value = "https",
        value_parser = ["http", "https"]
    )]
    pub upstream_url_scheme: String,

    /// Assume this IAM role (STS AssumeRole) on top of the default credential chain. Session
    /// name from AWS_ROLE_SESSION_NAME, else `sigv4-proxy-<hostname>`.
    #[arg(long = "role-arn", env = "SIGV4_PROXY_ROLE_ARN", value_name = "ARN")]
    pub role_arn: Option<String>,

    /// Stream request bodies through unhashed, signed as `UNSIGNED-PAYLOAD`. Not documented
    /// as accepted by AMP; every AMP client signs the body hash (the default).
    #[arg(long = "unsigned-payload", env = "SIGV4_PROXY_UNSIGNED_PAYLOAD")]
    pub unsigned_payload: bool,

    /// Remove this request header before signing and forwarding (repeatable; env: comma-separated).
    #[arg(
        short = 's',
        long = "strip",
        env = "SIGV4_PROXY_STRIP",
        value_delimiter = ',',
        value_name = "HEADER"
    )]
    pub strip: Vec<String>,

    /// Copy request header H to X-Original-H, signed (repeatable; env: comma-separated).
    #[arg(
        long = "duplicate-headers",
        env = "SIGV4_PROXY_DUPLICATE_HEADERS",
        value_delimiter = ',',
        value_name = "HEADER"
    )]
    pub duplicate_headers: Vec<String>,

    /// Extra request headers `k=v,k2=v2`, added before signing unless the client sent them.
    #[arg(
        long = "custom-headers",
        env = "SIGV4_PROXY_CUSTOM_HEADERS",
        default_value = "",
        value_name = "K=V,..."
    )]
    pub custom_headers: String,

    /// Do not verify the upstream's TLS certificate (tests and tunnels only).
    #[arg(long = "no-verify-ssl", env = "SIGV4_PROXY_NO_VERIFY_SSL")]
    pub no_verify_ssl: bool,

    /// How long an idle upstream connection is kept for reuse.
    #[arg(
        long = "transport.idle-conn-timeout",
        env = "SIGV4_PROXY_IDLE_CONN_TIMEOUT",
        default_value = "40s",
        value_parser = parse_duration,
        value_name = "DURATION"
    )]
    pub idle_conn_timeout: Duration,

    /// Idle upstream connections kept per host (the incumbent keeps Go's 2).
    #[arg(
        long = "transport.max-idle-conns-per-host",
        env = "SIGV4_PROXY_MAX_IDLE_CONNS_PER_HOST",
        default_value_t = 100,
        value_name = "N"
    )]
    pub max_idle_conns_per_host: usize,

    /// Largest request body accepted, in bytes; larger ones get 413 before anything is sent.
    #[arg(
        long = "max-request-body-size",
        env = "SIGV4_PROXY_MAX_REQUEST_BODY_SIZE",
        default_value_t = DEFAULT_MAX_BODY,
        value_name = "BYTES"
    )]
    pub max_request_body_size: u64,

    /// Time allowed for the upstream's response headers (504 after it); `0s` waits forever.
    /// A streamed body may take longer.
    #[arg(
        long = "upstream-timeout",
        env = "SIGV4_PROXY_UPSTREAM_TIMEOUT",
        default_value = "2m",
        value_parser = parse_duration,
        value_name = "DURATION"
    )]
    pub upstream_timeout: Duration,

    /// Time allowed to open an upstream TCP connection.
    #[arg(
        long = "upstream-connect-timeout",
        env = "SIGV4_PROXY_UPSTREAM_CONNECT_TIMEOUT",
        default_value = "10s",
        value_parser = parse_duration,
        value_name = "DURATION"
    )]
    pub upstream_connect_timeout: Duration,

    /// On SIGTERM/SIGINT, how long in-flight requests may take to finish.
    #[arg(
        long = "shutdown-timeout",
        env = "SIGV4_PROXY_SHUTDOWN_TIMEOUT",
        default_value = "30s",
        value_parser = parse_duration,
        value_name = "DURATION"
    )]
    pub shutdown_timeout: Duration,

    /// Only forward paths starting with this prefix, or matching this regex when it starts
    /// with `^` (repeatable; env: comma-separated). Default: every path.
    #[arg(
        long = "allow-path",
        env = "SIGV4_PROXY_ALLOW_PATH",
        value_delimiter = ',',
        value_name = "PREFIX|^REGEX"
    )]
    pub allow_path: Vec<String>,

    /// Refuse writes (remote_write, Alertmanager and rules changes) with 403, so a shared
    /// query gateway cannot write with its IAM role.
    #[arg(long = "read-only", env = "SIGV4_PROXY_READ_ONLY")]
    pub read_only: bool,

    /// Upstream requests in flight at once; more get 503 with Retry-After. 0: no limit.
    #[arg(
        long = "max-concurrent-requests",
        env = "SIGV4_PROXY_MAX_CONCURRENT_REQUESTS",
        default_value_t = 0,
        value_name = "N"
    )]
    pub max_concurrent_requests: usize,

    /// Largest request head (request line and headers) accepted, in bytes; larger ones get 431.
    #[arg(
        long = "max-header-bytes",
        env = "SIGV4_PROXY_MAX_HEADER_BYTES",
        default_value_t = 64 * 1024,
        value_name = "BYTES"
    )]
    pub max_header_bytes: usize,

    /// Time a client has to send its request line and headers (slow-loris guard).
    #[arg(
        long = "client-header-timeout",
        env = "SIGV4_PROXY_CLIENT_HEADER_TIMEOUT",
        default_value = "30s",
        value_parser = parse_duration,
        value_name = "DURATION"
    )]
    pub client_header_timeout: Duration,

    /// Close a client connection that has no request in flight and has moved no bytes for
    /// this long (idle keep-alive).
    #[arg(
        long = "client-idle-timeout",
        env = "SIGV4_PROXY_CLIENT_IDLE_TIMEOUT",
        default_value = "90s",
        value_parser = parse_duration,
        value_name = "DURATION"
    )]
    pub client_idle_timeout: Duration,

    /// Forward X-Scope-OrgID to AMP. By default it is stripped when --host is AMP, which
    /// rejects it (Grafana and KEDA users often send it).
    #[arg(long = "keep-scope-orgid", env = "SIGV4_PROXY_KEEP_SCOPE_ORGID")]
    pub keep_scope_orgid: bool,

    /// Retry idempotent queries (GET; POST to query, query_range, series, labels) up to N
    /// times on 429/502/503/504 or a failed connection, with jittered backoff honouring
    /// Retry-After, within --upstream-timeout. remote_write is never retried.
    #[arg(
        long = "retry-queries",
        env = "SIGV4_PROXY_RETRY_QUERIES",
        default_value_t = 0,
        value_name = "N"
    )]
    pub retry_queries: u32,

    /// One log line per request: method, path (no query), status, bytes, duration.
    #[arg(long = "access-log", env = "SIGV4_PROXY_ACCESS_LOG")]
    pub access_log: bool,

    /// Debug logging (never bodies, queries or secrets); implies the two --log-* flags.
    #[arg(short = 'v', long, env = "SIGV4_PROXY_VERBOSE")]
    pub verbose: bool,

    /// Log status, error type and request id of upstream answers >= 400.
    #[arg(long = "log-failed-requests", env = "SIGV4_PROXY_LOG_FAILED_REQUESTS")]
    pub log_failed_requests: bool,

    /// Log what was signed: signed header names, path, query parameter names, payload hash.
    #[arg(long = "log-signing-process", env = "SIGV4_PROXY_LOG_SIGNING_PROCESS")]
    pub log_signing_process: bool,

    /// Log line format.
    #[arg(long = "log-format", env = "SIGV4_PROXY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Validate the configuration, print it and exit without binding anything.
    #[arg(long = "check-config")]
    pub check_config: bool,
}

/// The validated configuration the proxy runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub admin_listen: Option<SocketAddr>,
    pub tls: Option<TlsSettings>,
    pub service: String,
    pub region: String,
    pub scheme: Scheme,
    pub authority: Authority,
    pub host_header: HeaderValue,
    pub policy: HeaderPolicy,
    pub admission: Admission,
    pub max_header_bytes: usize,
    pub client_header_timeout: Duration,
    pub client_idle_timeout: Duration,
    pub access_log: bool,
    pub retry_queries: u32,
    pub role: Option<AssumeRole>,
    pub unsigned_payload: bool,
    pub no_verify_ssl: bool,
    pub idle_conn_timeout: Duration,
    pub max_idle_conns_per_host: usize,
    pub max_request_body_size: u64,
    pub upstream_timeout: Option<Duration>,
    pub upstream_connect_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub verbose: bool,
    pub log_failed_requests: bool,
    pub log_signing_process: bool,
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub listen: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRole {
    pub arn: String,
    pub session_name: String,
}

/// A configuration that cannot work. Each message fits on one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "--host is required: without it the proxy would sign for any Host a caller names (e.g. --host aps-workspaces.us-east-1.amazonaws.com)"
    )]
    MissingHost,
    #[error("{flag} {value:?} must be host[:port] without scheme or path{hint}")]
    BadHost {
        flag: &'static str,
        value: String,
        hint: &'static str,
    },
    #[error(
        "--name and --region are required unless --host or --sign-host is an AMP endpoint (aps-workspaces.<region>.amazonaws.com); missing {0}"
    )]
    MissingSigningScope(&'static str),
    #[error("--region {0:?} is not an AWS region name")]
    BadRegion(String),
    #[error("{flag} {value:?} is not a listen address like :8080 or 127.0.0.1:8080: {reason}")]
    BadListen {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error("--port, --admin-port and --tls-port must differ (two are {0})")]
    SameListeners(SocketAddr),
    #[error("--host {0} is this proxy's own listener: every request would loop")]
    SelfLoop(String),
    #[error("--role-arn {0:?} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)")]
    BadRoleArn(String),
    #[error(transparent)]
    Headers(#[from] HeaderPolicyError),
    #[error("--allow-path {value:?} is not a valid regular expression: {reason}")]
    BadAllowPath { value: String, reason: String },
    #[error("--max-header-bytes must be at least 8192")]
    SmallHeaderLimit,
    #[error("--max-request-body-size must be at least 1 byte")]
    ZeroBodyLimit,
    #[error("--transport.max-idle-conns-per-host must be at least 1")]
    ZeroIdleConns,
}

impl Args {
    pub fn validate(&self) -> Result<Config, ConfigError> {
        let host = self.host.as_deref().ok_or(ConfigError::MissingHost)?;
        let authority = parse_authority("--host", host)?;
        let sign_host = self
            .sign_host
            .as_deref()
            .map(|h| parse_authority("--sign-host", h))
            .transpose()?;
        let scheme = if self.upstream_url_scheme == "http" {
            Scheme::HTTP
        } else {
            Scheme::HTTPS
        };

        let derived = sign_host
            .as_ref()
            .and_then(|a| amp_region(a.host()))
            .or_else(|| amp_region(authority.host()));
        let (service, region) = match (&self.name, &self.region, derived.clone()) {
            (Some(name), Some(region), _) => (name.clone(), region.clone()),
            (name, region, Some(derived)) => (
                name.clone().unwrap_or_else(|| "aps".to_owned()),
                region.clone().unwrap_or(derived),
            ),
            (None, _, None) => return Err(ConfigError::MissingSigningScope("--name")),
            (Some(_), None, None) => return Err(ConfigError::MissingSigningScope("--region")),
        };
        if !is_region_name(&region) {
            return Err(ConfigError::BadRegion(region));
        }

        let signed_authority = sign_host.as_ref().unwrap_or(&authority);
        let host_header =
            HeaderValue::from_str(&host_without_default_port(signed_authority, &scheme)).map_err(
                |_| ConfigError::BadHost {
                    flag: "--sign-host",
                    value: signed_authority.to_string(),
                    hint: "",
                },
            )?;

        let role = self
            .role_arn
            .as_deref()
            .map(|arn| {
                if arn.starts_with("arn:") && arn.contains(":role/") {
                    Ok(AssumeRole {
                        arn: arn.to_owned(),
                        session_name: session_name(
                            std::env::var("AWS_ROLE_SESSION_NAME").ok(),
                            &hostname(),
                        ),
                    })
                } else {
                    Err(ConfigError::BadRoleArn(arn.to_owned()))
                }
            })
            .transpose()?;

        if self.max_request_body_size == 0 {
            return Err(ConfigError::ZeroBodyLimit);
        }
        if self.max_idle_conns_per_host == 0 {
            return Err(ConfigError::ZeroIdleConns);
        }
        if self.max_header_bytes < 8192 {
            return Err(ConfigError::SmallHeaderLimit);
        }
        let allow = self
            .allow_path
            .iter()
            .map(|value| {
                PathRule::parse(value).map_err(|e| ConfigError::BadAllowPath {
                    value: value.clone(),
                    reason: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let targets_amp = derived.is_some();
        let mut strip = self.strip.clone();
        if targets_amp && !self.keep_scope_orgid {
            strip.push("x-scope-orgid".to_owned());
        }

        let listen = parse_listen("--port", &self.port)?;
        let admin_listen = match self.admin_port.as_str() {
            "off" | "" => None,
            value => Some(parse_listen("--admin-port", value)?),
        };
        if admin_listen.is_some_and(|admin| admin.port() == listen.port() && admin.port() != 0) {
            return Err(ConfigError::SameListeners(listen));
        }
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                let tls_listen = parse_listen("--tls-port", &self.tls_port)?;
                if tls_listen.port() == listen.port() && tls_listen.port() != 0 {
                    return Err(ConfigError::SameListeners(listen));
                }
                Some(TlsSettings {
                    listen: tls_listen,
                    cert: cert.clone(),
                    key: key.clone(),
                })
            }
            _ => None,
        };
        if points_at(&authority, &scheme, listen) {
            return Err(ConfigError::SelfLoop(authority.to_string()));
        }

        Ok(Config {
            listen,
            admin_listen,
            tls,
            service,
            region,
            scheme,
            authority,
            host_header,
            policy: HeaderPolicy::new(&strip, &self.duplicate_headers, &self.custom_headers)?,
            admission: Admission::new(allow, self.read_only, self.max_concurrent_requests),
            max_header_bytes: self.max_header_bytes,
            client_header_timeout: self.client_header_timeout,
            client_idle_timeout: self.client_idle_timeout,
            access_log: self.access_log,
            retry_queries: self.retry_queries,
            role,
            unsigned_payload: self.unsigned_payload,
            no_verify_ssl: self.no_verify_ssl,
            idle_conn_timeout: self.idle_conn_timeout,
            max_idle_conns_per_host: self.max_idle_conns_per_host,
            max_request_body_size: self.max_request_body_size,
            upstream_timeout: (!self.upstream_timeout.is_zero()).then_some(self.upstream_timeout),
            upstream_connect_timeout: self.upstream_connect_timeout,
            shutdown_timeout: self.shutdown_timeout,
            verbose: self.verbose,
            log_failed_requests: self.log_failed_requests || self.verbose,
            log_signing_process: self.log_signing_process || self.verbose,
            log_format: self.log_format,
        })
    }
}

/// Go durations as users write them in the incumbent's flags: `40s`, `1m30s`, `500ms`.
fn parse_duration(value: &str) -> Result<Duration, String> {
    if value == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(value)
        .map_err(|e| format!("{value:?} is not a duration like 40s or 1m30s: {e}"))
}

fn parse_authority(flag: &'static str, value: &str) -> Result<Authority, ConfigError> {
    let bad = |hint| ConfigError::BadHost {
        flag,
        value: value.to_owned(),
        hint,
    };
    if value.contains("://") {
        return Err(bad(
            " (drop the scheme; use --upstream-url-scheme for http)",
        ));
    }
    if value.contains('/') {
        return Err(bad(" (the path goes in the client's URL, not here)"));
    }
    let authority: Authority = value.parse().map_err(|_| bad(""))?;
    if authority.host().is_empty() || value.contains('@') {
        return Err(bad(""));
    }
    Ok(authority)
}

/// The Host value clients send: no port when it is the scheme's default, as hyper and every
/// SigV4 signer do, so that the signed and sent values agree.
fn host_without_default_port(authority: &Authority, scheme: &Scheme) -> String {
    match authority.port_u16() {
        Some(443) if *scheme == Scheme::HTTPS => authority.host().to_owned(),
        Some(80) if *scheme == Scheme::HTTP => authority.host().to_owned(),
        _ => authority.as_str().to_owned(),
    }
}

/// The region of an Amazon Managed Service for Prometheus endpoint, if `host` is one:
/// `aps-workspaces[-fips].<region>.amazonaws.com[.cn]`, `aps-workspaces[-fips].<region>.api.aws`,
/// `aps[-fips].<region>.amazonaws.com`, and VPC endpoint names such as
/// `vpce-1a2b.aps-workspaces.<region>.vpce.amazonaws.com`. The first matching label wins.
pub fn amp_region(host: &str) -> Option<String> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let aws_domain = [".amazonaws.com", ".amazonaws.com.cn", ".api.aws"]
        .iter()
        .any(|suffix| host.ends_with(suffix));
    if !aws_domain {
        return None;
    }
    let labels: Vec<&str> = host.split('.').collect();
    labels.windows(2).find_map(|pair| {
        matches!(
            pair[0],
            "aps-workspaces" | "aps-workspaces-fips" | "aps" | "aps-fips"
        )
        .then_some(pair[1])
        .filter(|region| is_region_name(region))
        .map(str::to_owned)
    })
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `ap-southeast-5`, `cn-north-1`, `il-central-1`.
fn is_region_name(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

/// Whether `--host` names our own listener by a loopback or literal address (the common
/// copy-paste mistake). Names that need DNS are left to the `Via` check at run time.
fn points_at(authority: &Authority, scheme: &Scheme, listen: SocketAddr) -> bool {
    let port = authority
        .port_u16()
        .unwrap_or(if *scheme == Scheme::HTTPS { 443 } else { 80 });
    if port != listen.port() {
        return false;
    }
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let ip = if host.eq_ignore_ascii_case("localhost") {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        ip
    } else {
        return false;
    };
    ip == listen.ip() || (listen.ip().is_unspecified() && ip.is_loopback())
}

fn parse_listen(flag: &'static str, value: &str) -> Result<SocketAddr, ConfigError> {
    let bad = |reason: String| ConfigError::BadListen {
        flag,
        value: value.to_owned(),
        reason,
    };
    // Go's ":8080" means every interface; a bare "8080" is accepted too.
    let normalized = if let Some(port) = value.strip_prefix(':') {
        format!("0.0.0.0:{port}")
    } else if value.bytes().all(|b| b.is_ascii_digit()) && !value.is_empty() {
        format!("0.0.0.0:{value}")
    } else {
        value.to_owned()
    };
    normalized
        .to_socket_addrs()
        .map_err(|e| bad(e.to_string()))?
        .next()
        .ok_or_else(|| bad("no address".to_owned()))
}

/// STS allows `[\w+=,.@-]{2,64}`.
fn session_name(from_env: Option<String>, hostname: &str) -> String {
    let raw = from_env
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("sigv4-proxy-{hostname}"));
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect()
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["sigv4-proxy"];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv).expect("parses")
    }

    fn config(extra: &[&str]) -> Result<Config, ConfigError> {
        args(extra).validate()
    }

    #[test]
    fn derives_service_and_region_from_amp_hosts() {
        for (host, region) in [
            ("aps-workspaces.us-east-1.amazonaws.com", "us-east-1"),
            (
                "aps-workspaces-fips.us-gov-west-1.amazonaws.com",
                "us-gov-west-1",
            ),
            ("aps-workspaces.eu-west-2.api.aws", "eu-west-2"),
            ("aps-workspaces-fips.us-east-2.api.aws", "us-east-2"),
            ("aps.ap-southeast-2.amazonaws.com", "ap-southeast-2"),
            ("aps-workspaces.cn-north-1.amazonaws.com.cn", "cn-north-1"),
            (
                "vpce-0abc-1xyz.aps-workspaces.eu-central-1.vpce.amazonaws.com",
                "eu-central-1",
            ),
            ("APS-Workspaces.US-EAST-1.amazonaws.com.", "us-east-1"),
        ] {
            assert_eq!(amp_region(host).as_deref(), Some(region), "{host}");
        }
        for host in [
            "example.com",
            "aps-workspaces.us-east-1.example.com",
            "localhost",
            "aps-workspaces.amazonaws.com",
            "execute-api.us-east-1.amazonaws.com",
        ] {
            assert_eq!(amp_region(host), None, "{host}");
        }
    }

    #[test]
    fn amp_host_alone_is_enough() {
        let cfg = config(&["--host", "aps-workspaces.eu-west-1.amazonaws.com"]).expect("valid");
        assert_eq!(
            (cfg.service.as_str(), cfg.region.as_str()),
            ("aps", "eu-west-1")
        );
        assert_eq!(cfg.host_header, "aps-workspaces.eu-west-1.amazonaws.com");
        assert_eq!(cfg.scheme, Scheme::HTTPS);
        assert_eq!(cfg.listen, "0.0.0.0:8080".parse().expect("addr"));
    }

    #[test]
    fn sign_host_is_signed_and_wins_derivation() {
        let cfg = config(&[
            "--host",
            "127.0.0.1:9443",
            "--sign-host",
            "aps-workspaces.us-west-2.amazonaws.com",
        ])
        .expect("valid");
        assert_eq!(cfg.region, "us-west-2");
        assert_eq!(cfg.authority.as_str(), "127.0.0.1:9443");
        assert_eq!(cfg.host_header, "aps-workspaces.us-west-2.amazonaws.com");
    }

    #[test]
    fn explicit_name_and_region_win() {
        let cfg = config(&[
            "--name",
            "execute-api",
            "--region",
            "us-east-2",
            "--host",
            "aps-workspaces.us-east-1.amazonaws.com",
        ])
        .expect("valid");
        assert_eq!(
            (cfg.service.as_str(), cfg.region.as_str()),
            ("execute-api", "us-east-2")
        );
    }

    #[test]
    fn non_amp_hosts_need_name_and_region() {
        let err = config(&["--host", "127.0.0.1:9090"]).expect_err("needs scope");
        assert!(err.to_string().contains("missing --name"), "{err}");
        let err = config(&["--host", "127.0.0.1:9090", "--name", "aps"]).expect_err("needs region");
        assert!(err.to_string().contains("missing --region"), "{err}");
    }

    #[test]
    fn refuses_to_run_without_host() {
        assert!(matches!(
            config(&["--name", "aps", "--region", "us-east-1"]),
            Err(ConfigError::MissingHost)
        ));
    }

    #[test]
    fn urls_in_host_get_a_hint() {
        let err =
            config(&["--host", "https://aps-workspaces.us-east-1.amazonaws.com"]).expect_err("url");
        assert!(err.to_string().contains("drop the scheme"), "{err}");
        let err = config(&[
            "--host",
            "aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-1",
        ])
        .expect_err("path");
        assert!(err.to_string().contains("path"), "{err}");
    }

    #[test]
    fn default_ports_are_not_part_of_the_signed_host() {
        let cfg = config(&["--host", "aps-workspaces.us-east-1.amazonaws.com:443"]).expect("valid");
        assert_eq!(cfg.host_header, "aps-workspaces.us-east-1.amazonaws.com");
        let cfg = config(&[
            "--host",
            "127.0.0.1:80",
            "--upstream-url-scheme",
            "http",
            "--name",
            "aps",
            "--region",
            "us-east-1",
        ])
        .expect("valid");
        assert_eq!(cfg.host_header, "127.0.0.1");
    }

    #[test]
    fn go_style_listen_addresses() {
        let listen = |v| parse_listen("--port", v);
        assert_eq!(
            listen(":8005").expect("ok"),
            "0.0.0.0:8005".parse().expect("addr")
        );
        assert_eq!(
            listen("127.0.0.1:0").expect("ok"),
            "127.0.0.1:0".parse().expect("addr")
        );
        assert_eq!(
            listen("[::1]:8080").expect("ok"),
            "[::1]:8080".parse().expect("addr")
        );
        assert_eq!(
            listen("9000").expect("ok"),
            "0.0.0.0:9000".parse().expect("addr")
        );
        assert!(listen("localhost").is_err());
        assert!(listen(":http-alt").is_err());
    }

    #[test]
    fn self_loops_are_refused_at_start() {
        let scope = [
            "--upstream-url-scheme",
            "http",
            "--name",
            "aps",
            "--region",
            "us-east-1",
        ];
        for (host, port) in [
            ("localhost:8080", ":8080"),
            ("127.0.0.1:8080", ":8080"),
            ("127.0.0.1:9000", "127.0.0.1:9000"),
            ("[::1]:8080", ":8080"),
        ] {
            let mut argv = vec!["--host", host, "--port", port];
            argv.extend_from_slice(&scope);
            assert!(
                matches!(config(&argv), Err(ConfigError::SelfLoop(_))),
                "{host} {port}"
            );
        }
        let mut argv = vec!["--host", "127.0.0.1:9090", "--port", ":8080"];
        argv.extend_from_slice(&scope);
        assert!(config(&argv).is_ok());
    }

    #[test]
    fn admin_listener_is_separate_or_off() {
        let host = ["--host", "aps-workspaces.us-east-1.amazonaws.com"];
        let cfg = config(&host).expect("valid");
        assert_eq!(
            cfg.admin_listen,
            Some("0.0.0.0:8081".parse().expect("addr"))
        );
        let mut off = host.to_vec();
        off.extend(["--admin-port", "off"]);
        assert_eq!(config(&off).expect("valid").admin_listen, None);
        let mut same = host.to_vec();
        same.extend(["--admin-port", ":8080"]);
        assert!(matches!(config(&same), Err(ConfigError::SameListeners(_))));
    }

    #[test]
    fn go_style_durations() {
        assert_eq!(parse_duration("40s"), Ok(Duration::from_secs(40)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("forty").is_err());
    }

    #[test]
    fn role_session_names_are_sanitised_and_cut() {
        assert_eq!(session_name(Some("adapter".into()), "h"), "adapter");
        assert_eq!(session_name(None, "node-1"), "sigv4-proxy-node-1");
        let long = session_name(None, &"x".repeat(100));
        assert_eq!(long.len(), 64);
        assert_eq!(session_name(Some("a b/c".into()), "h"), "a-b-c");
        assert!(
            config(&[
                "--host",
                "aps-workspaces.us-east-1.amazonaws.com",
                "--role-arn",
                "nope"
            ])
            .is_err()
        );
    }

    #[test]
    fn repeatable_and_bool_flags() {
        let cfg = config(&[
            "--host",
            "aps-workspaces.us-east-1.amazonaws.com",
            "-s",
            "x-a",
            "--strip",
            "x-b",
            "--duplicate-headers",
            "authorization",
            "--custom-headers",
            "x-team=obs",
            "--unsigned-payload",
            "-v",
        ])
        .expect("valid");
        assert!(cfg.unsigned_payload && cfg.log_signing_process && cfg.log_failed_requests);
    }

    #[test]
    fn bad_values_are_config_errors() {
        assert!(
            config(&[
                "--host",
                "aps-workspaces.us-east-1.amazonaws.com",
                "--custom-headers",
                "oops"
            ])
            .is_err()
        );
        assert!(
            config(&[
                "--host",
                "aps-workspaces.us-east-1.amazonaws.com",
                "--max-request-body-size",
                "0"
            ])
            .is_err()
        );
        assert!(config(&["--host", "x:1", "--name", "aps", "--region", "mars"]).is_err());
        assert!(Args::try_parse_from(["sigv4-proxy", "--upstream-url-scheme", "ftp"]).is_err());
        assert!(
            Args::try_parse_from(["sigv4-proxy", "--transport.idle-conn-timeout", "soon"]).is_err()
        );
    }
}
