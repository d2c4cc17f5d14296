//! The command line: prometheus-adapter's flag names where they exist, each with an
//! `ADAPTER_SHIM_*` environment variable, validated before anything is bound.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};

use crate::promclient::{PromSettings, parse_header};
use crate::prometheus::Verb;
use crate::tls::CertSource;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{s:?} is not a duration: {e}"))
}

fn verb(s: &str) -> Result<Verb, String> {
    s.to_ascii_uppercase().parse()
}

fn header(s: &str) -> Result<(HeaderName, HeaderValue), String> {
    parse_header(s)
}

/// Serves the Kubernetes custom and external metrics APIs from prometheus-adapter rules,
/// querying Prometheus or Amazon Managed Service for Prometheus through sigv4-proxy.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "adapter-shim", version, about)]
pub struct Args {
    /// prometheus-adapter configuration file (rules, externalRules, resourceRules).
    #[arg(long, value_name = "FILE", env = "ADAPTER_SHIM_CONFIG")]
    pub config: PathBuf,

    /// Load and validate the configuration, print a summary, and exit.
    #[arg(long, env = "ADAPTER_SHIM_CHECK_CONFIG")]
    pub check_config: bool,

    /// Prometheus API base URL; its path is kept, e.g. the sigv4-proxy sidecar's
    /// http://localhost:8080/workspaces/<workspace-id>.
    #[arg(long, value_name = "URL", env = "ADAPTER_SHIM_PROMETHEUS_URL")]
    pub prometheus_url: Option<String>,

    /// HTTP method for Prometheus calls (queries longer than 8 KiB use POST anyway).
    #[arg(long, value_name = "GET|POST", default_value = "GET", value_parser = verb, env = "ADAPTER_SHIM_PROMETHEUS_VERB")]
    pub prometheus_verb: Verb,

    /// Extra header on every Prometheus call, NAME=VALUE (repeatable), e.g.
    /// X-Scope-OrgID=tenant-a.
    #[arg(long, value_name = "NAME=VALUE", value_parser = header, env = "ADAPTER_SHIM_PROMETHEUS_HEADER")]
    pub prometheus_header: Vec<(HeaderName, HeaderValue)>,

    /// Deadline of one metrics query; also sent to Prometheus as `timeout=`.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration, env = "ADAPTER_SHIM_PROMETHEUS_QUERY_TIMEOUT")]
    pub prometheus_query_timeout: Duration,

    /// Deadline of one series call during discovery.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = duration, env = "ADAPTER_SHIM_PROMETHEUS_SERIES_TIMEOUT")]
    pub prometheus_series_timeout: Duration,

    /// How often series are re-discovered.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration, env = "ADAPTER_SHIM_METRICS_RELIST_INTERVAL")]
    pub metrics_relist_interval: Duration,

    /// How far back discovery looks for series (default: the relist interval; never less).
    #[arg(long, value_name = "DURATION", value_parser = duration, env = "ADAPTER_SHIM_METRICS_MAX_AGE")]
    pub metrics_max_age: Option<Duration>,

    /// HTTPS port for the metrics APIs, health endpoints and /metrics.
    #[arg(
        long,
        value_name = "PORT",
        default_value_t = 6443,
        env = "ADAPTER_SHIM_SECURE_PORT"
    )]
    pub secure_port: u16,

    /// Address to listen on.
    #[arg(
        long,
        value_name = "IP",
        default_value = "0.0.0.0",
        env = "ADAPTER_SHIM_BIND_ADDRESS"
    )]
    pub bind_address: IpAddr,

    /// Serving certificate (PEM chain); re-read when it changes.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_private_key_file",
        env = "ADAPTER_SHIM_TLS_CERT_FILE"
    )]
    pub tls_cert_file: Option<PathBuf>,

    /// Serving certificate's private key (PEM).
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_cert_file",
        env = "ADAPTER_SHIM_TLS_PRIVATE_KEY_FILE"
    )]
    pub tls_private_key_file: Option<PathBuf>,

    /// Without certificate files: keep the self-signed pair here (apiserver.crt/.key)
    /// instead of only in memory.
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with = "tls_cert_file",
        env = "ADAPTER_SHIM_CERT_DIR"
    )]
    pub cert_dir: Option<PathBuf>,

    /// Serve external.metrics.k8s.io too (off by default: KEDA usually owns it).
    #[arg(long, env = "ADAPTER_SHIM_ENABLE_EXTERNAL_METRICS")]
    pub enable_external_metrics: bool,

    /// Serve HTTP/1.1 only (as prometheus-adapter's flag for CVE-2023-44487).
    #[arg(long, env = "ADAPTER_SHIM_DISABLE_HTTP2")]
    pub disable_http2: bool,

    /// Time in-flight requests get to finish after SIGTERM.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = duration, env = "ADAPTER_SHIM_SHUTDOWN_TIMEOUT")]
    pub shutdown_timeout: Duration,

    /// How often the rules file is checked for changes (it is also re-read on SIGHUP).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration, env = "ADAPTER_SHIM_CONFIG_RELOAD_INTERVAL")]
    pub config_reload_interval: Duration,

    /// Log format.
    #[arg(
        long,
        value_enum,
        default_value = "text",
        env = "ADAPTER_SHIM_LOG_FORMAT"
    )]
    pub log_format: LogFormat,

    /// How often the cluster's resource types (CRDs) are re-discovered.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration, env = "ADAPTER_SHIM_DISCOVERY_INTERVAL")]
    pub discovery_interval: Duration,

    /// Kubernetes API access.
    #[command(flatten)]
    pub kube: crate::kube::KubeArgs,

    /// Authentication and authorization.
    #[command(flatten)]
    pub auth: crate::auth::AuthArgs,
}

/// A command line that parses but cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// Serving needs a Prometheus URL.
    #[error("--prometheus-url is required (e.g. http://localhost:8080/workspaces/<workspace-id>)")]
    NoPrometheusUrl,
    /// The URL is not http(s) with a host.
    #[error("--prometheus-url {0:?} must be an http:// or https:// URL with a host")]
    BadPrometheusUrl(String),
    /// prometheus-adapter's own start-up check.
    #[error(
        "--metrics-max-age ({max_age}) must not be less than --metrics-relist-interval ({interval})"
    )]
    MaxAgeBelowInterval {
        /// The max age.
        max_age: String,
        /// The interval.
        interval: String,
    },
    /// Zero durations would spin or never answer.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
}

impl Args {
    /// The Prometheus client settings, after validation.
    ///
    /// # Errors
    /// See [`UsageError`].
    pub fn prometheus(&self) -> Result<PromSettings, UsageError> {
        let url = self
            .prometheus_url
            .clone()
            .ok_or(UsageError::NoPrometheusUrl)?;
        let uri: http::Uri = url
            .parse()
            .map_err(|_| UsageError::BadPrometheusUrl(url.clone()))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(UsageError::BadPrometheusUrl(url));
        }
        if self.prometheus_query_timeout.is_zero() {
            return Err(UsageError::Zero("--prometheus-query-timeout"));
        }
        if self.prometheus_series_timeout.is_zero() {
            return Err(UsageError::Zero("--prometheus-series-timeout"));
        }
        Ok(PromSettings {
            base_url: url,
            verb: self.prometheus_verb,
            headers: self.prometheus_header.clone(),
            query_timeout: self.prometheus_query_timeout,
            series_timeout: self.prometheus_series_timeout,
        })
    }

    /// The discovery look-back.
    ///
    /// # Errors
    /// A max age below the relist interval, or a zero interval.
    pub fn max_age(&self) -> Result<Duration, UsageError> {
        if self.metrics_relist_interval.is_zero() {
            return Err(UsageError::Zero("--metrics-relist-interval"));
        }
        if self.config_reload_interval.is_zero() {
            return Err(UsageError::Zero("--config-reload-interval"));
        }
        if self.discovery_interval.is_zero() {
            return Err(UsageError::Zero("--discovery-interval"));
        }
        let max_age = self.metrics_max_age.unwrap_or(self.metrics_relist_interval);
        if max_age < self.metrics_relist_interval {
            return Err(UsageError::MaxAgeBelowInterval {
                max_age: humantime::format_duration(max_age).to_string(),
                interval: humantime::format_duration(self.metrics_relist_interval).to_string(),
            });
        }
        Ok(max_age)
    }

    /// Where the serving certificate comes from.
    #[must_use]
    pub fn cert_source(&self) -> CertSource {
        match (
            &self.tls_cert_file,
            &self.tls_private_key_file,
            &self.cert_dir,
        ) {
            (Some(cert), Some(key), _) => CertSource::Files {
                cert: cert.clone(),
                key: key.clone(),
            },
            (_, _, Some(dir)) => CertSource::Dir(dir.clone()),
            _ => CertSource::SelfSigned,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn parse(extra: &[&str]) -> Result<Args, clap::Error> {
        let mut argv = vec!["adapter-shim", "--config", "/etc/adapter/config.yaml"];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv)
    }

    #[test]
    fn prometheus_adapter_flags_parse() {
        let args = parse(&[
            "--prometheus-url",
            "http://localhost:8080/workspaces/ws-1",
            "--prometheus-verb",
            "post",
            "--prometheus-header",
            "X-Scope-OrgID=a",
            "--prometheus-header",
            "X-Other=b",
            "--metrics-relist-interval",
            "1m",
            "--metrics-max-age",
            "5m",
            "--secure-port",
            "6443",
            "--tls-cert-file",
            "/c",
            "--tls-private-key-file",
            "/k",
            "--enable-external-metrics",
        ])
        .expect("parses");
        let prom = args.prometheus().expect("valid");
        assert_eq!(prom.verb, Verb::Post);
        assert_eq!(prom.headers.len(), 2);
        assert_eq!(prom.query_timeout, Duration::from_secs(30));
        assert_eq!(args.max_age().expect("ok"), Duration::from_secs(300));
        assert_eq!(
            args.cert_source(),
            CertSource::Files {
                cert: "/c".into(),
                key: "/k".into()
            }
        );
        assert!(args.enable_external_metrics);
    }

    #[test]
    fn flags_are_well_formed() {
        use clap::CommandFactory as _;
        Args::command().debug_assert();
    }

    #[test]
    fn usage_errors() {
        let args = parse(&[]).expect("parses");
        assert_eq!(
            args.prometheus().expect_err("no url"),
            UsageError::NoPrometheusUrl
        );
        assert_eq!(args.max_age().expect("default"), Duration::from_secs(600));
        assert_eq!(args.cert_source(), CertSource::SelfSigned);

        let args = parse(&["--prometheus-url", "localhost:8080"]).expect("parses");
        assert!(matches!(
            args.prometheus(),
            Err(UsageError::BadPrometheusUrl(_))
        ));

        let args = parse(&[
            "--metrics-relist-interval",
            "10m",
            "--metrics-max-age",
            "1m",
        ])
        .expect("parses");
        assert_eq!(
            args.max_age().expect_err("below").to_string(),
            "--metrics-max-age (1m) must not be less than --metrics-relist-interval (10m)"
        );

        assert!(parse(&["--tls-cert-file", "/c"]).is_err(), "key required");
        assert!(parse(&["--prometheus-verb", "PUT"]).is_err());
        assert!(parse(&["--prometheus-header", "nope"]).is_err());
        assert!(parse(&["--metrics-relist-interval", "soon"]).is_err());
        let args = parse(&["--cert-dir", "/tmp/certs"]).expect("parses");
        assert_eq!(args.cert_source(), CertSource::Dir("/tmp/certs".into()));
    }
}
