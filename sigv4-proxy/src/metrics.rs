//! Prometheus metrics, served on the admin listener.

use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;
use std::time::SystemTime;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::credentials::{CredentialsError, Loaded, RefreshObserver};

/// Latency buckets from 1 ms to 2 min: instant queries answer in milliseconds, range queries
/// and large series calls in seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0, 120.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: &'static str,
    pub route: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub kind: &'static str,
}

/// Every metric the proxy exports. Cheap to update from any thread.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_duration: Family<RouteLabels, Histogram>,
    pub upstream_duration: Family<RouteLabels, Histogram>,
    pub request_bytes: Counter,
    pub response_bytes: Counter,
    pub in_flight: Gauge,
    pub errors: Family<ErrorLabels, Counter>,
    pub retries: Counter,
    pub credential_refreshes: Counter,
    pub credential_failures: Counter,
    pub credential_expiry: Gauge<f64, AtomicU64>,
    handles: Handles,
}

/// Every route class `route_class` returns, in a fixed order: a class' index picks its
/// resolved metric handles.
const ROUTES: [&str; 10] = [
    "alertmanager",
    "query",
    "query_range",
    "series",
    "labels",
    "label_values",
    "remote_write",
    "metadata",
    "rules",
    "other",
];
/// What `proxy::method_label` returns, in a fixed order.
const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "other",
];

/// Series handles resolved on first use and kept, so a request updates its counters without
/// hashing labels and taking the family's lock each time. A series appears in the exposition
/// when first used, as before.
#[derive(Debug)]
struct Handles {
    request_duration: [OnceLock<Histogram>; ROUTES.len()],
    upstream_duration: [OnceLock<Histogram>; ROUTES.len()],
    /// Status 200 by method and route, the common answer; other statuses use the family.
    ok_requests: [[OnceLock<Counter>; ROUTES.len()]; METHODS.len()],
}

impl Default for Handles {
    fn default() -> Self {
        Self {
            request_duration: [const { OnceLock::new() }; ROUTES.len()],
            upstream_duration: [const { OnceLock::new() }; ROUTES.len()],
            ok_requests: [const { [const { OnceLock::new() }; ROUTES.len()] }; METHODS.len()],
        }
    }
}

fn slot(names: &[&str], name: &str) -> Option<usize> {
    names.iter().position(|n| *n == name)
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("sigv4_proxy");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by method, route class and status",
            requests.clone(),
        );
        let request_duration =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        registry.register(
            "request_duration_seconds",
            "Time from request received to response headers sent",
            request_duration.clone(),
        );
        let upstream_duration =
            Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        registry.register(
            "upstream_duration_seconds",
            "Time the upstream took to answer with headers",
            upstream_duration.clone(),
        );
        let request_bytes = Counter::default();
        registry.register(
            "request_body_bytes",
            "Request body bytes forwarded upstream",
            request_bytes.clone(),
        );
        let response_bytes = Counter::default();
        registry.register(
            "response_body_bytes",
            "Response body bytes streamed back to clients",
            response_bytes.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "in_flight_requests",
            "Requests being handled now, including streaming responses",
            in_flight.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "errors",
            "Requests the proxy answered itself, by error kind",
            errors.clone(),
        );
        let retries = Counter::default();
        registry.register(
            "upstream_retries",
            "Query attempts repeated after 429/502/503/504 or a failed connection (--retry-queries)",
            retries.clone(),
        );
        let credential_refreshes = Counter::default();
        registry.register(
            "credential_refreshes",
            "Successful credential loads",
            credential_refreshes.clone(),
        );
        let credential_failures = Counter::default();
        registry.register(
            "credential_failures",
            "Failed credential loads",
            credential_failures.clone(),
        );
        let credential_expiry = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "credential_expiry_timestamp_seconds",
            "Unix time at which the held credentials expire (0: they do not)",
            credential_expiry.clone(),
        );
        Self {
            registry,
            requests,
            request_duration,
            upstream_duration,
            request_bytes,
            response_bytes,
            in_flight,
            errors,
            retries,
            credential_refreshes,
            credential_failures,
            credential_expiry,
            handles: Handles::default(),
        }
    }
}

impl Metrics {
    /// Counts one answered request.
    pub fn count_request(&self, method: &'static str, route: &'static str, status: u16) {
        let labels = || RequestLabels {
            method,
            route,
            status,
        };
        match (status, slot(&METHODS, method), slot(&ROUTES, route)) {
            (200, Some(m), Some(r)) => self.handles.ok_requests[m][r]
                .get_or_init(|| self.requests.get_or_create(&labels()).clone())
                .inc(),
            _ => self.requests.get_or_create(&labels()).inc(),
        };
    }

    /// Records the time from a request's arrival to its response headers.
    pub fn observe_request_duration(&self, route: &'static str, seconds: f64) {
        observe(
            &self.request_duration,
            &self.handles.request_duration,
            route,
            seconds,
        );
    }

    /// Records the time the upstream took to answer with headers.
    pub fn observe_upstream_duration(&self, route: &'static str, seconds: f64) {
        observe(
            &self.upstream_duration,
            &self.handles.upstream_duration,
            route,
            seconds,
        );
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

fn observe(
    family: &Family<RouteLabels, Histogram>,
    handles: &[OnceLock<Histogram>; ROUTES.len()],
    route: &'static str,
    seconds: f64,
) {
    match slot(&ROUTES, route) {
        Some(r) => handles[r]
            .get_or_init(|| family.get_or_create(&RouteLabels { route }).clone())
            .observe(seconds),
        None => family
            .get_or_create(&RouteLabels { route })
            .observe(seconds),
    }
}

/// The route class of a request path: bounded cardinality for labels.
pub fn route_class(path: &str) -> &'static str {
    let tail = path.trim_end_matches('/');
    if tail.contains("/alertmanager/") {
        return "alertmanager";
    }
    if tail.ends_with("/api/v1/query") {
        "query"
    } else if tail.ends_with("/api/v1/query_range") {
        "query_range"
    } else if tail.ends_with("/api/v1/series") {
        "series"
    } else if tail.ends_with("/api/v1/labels") {
        "labels"
    } else if tail.contains("/api/v1/label/") && tail.ends_with("/values") {
        "label_values"
    } else if tail.ends_with("/api/v1/remote_write") {
        "remote_write"
    } else if tail.ends_with("/api/v1/metadata") {
        "metadata"
    } else if tail.ends_with("/api/v1/rules") || tail.ends_with("/api/v1/alerts") {
        "rules"
    } else {
        "other"
    }
}

/// Feeds credential loads into the metrics, and logs them.
#[derive(Debug)]
pub struct CredentialMetrics(pub std::sync::Arc<Metrics>);

impl RefreshObserver for CredentialMetrics {
    fn loaded(&self, loaded: &Loaded) {
        crate::credentials::LogObserver.loaded(loaded);
        self.0.credential_refreshes.inc();
        let expiry = loaded
            .expiry
            .and_then(|e| e.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0.0, |d| d.as_secs_f64());
        self.0.credential_expiry.set(expiry);
    }

    fn failed(&self, error: &CredentialsError) {
        crate::credentials::LogObserver.failed(error);
        self.0.credential_failures.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_classes() {
        for (path, class) in [
            ("/workspaces/ws/api/v1/query", "query"),
            ("/workspaces/ws/api/v1/query/", "query"),
            ("/workspaces/ws/api/v1/query_range", "query_range"),
            ("/workspaces/ws/api/v1/series", "series"),
            ("/workspaces/ws/api/v1/labels", "labels"),
            ("/workspaces/ws/api/v1/label/job/values", "label_values"),
            ("/workspaces/ws/api/v1/remote_write", "remote_write"),
            (
                "/workspaces/ws/alertmanager/api/v2/silences",
                "alertmanager",
            ),
            ("/workspaces/ws/api/v1/rules", "rules"),
            ("/anything/else", "other"),
        ] {
            assert_eq!(route_class(path), class, "{path}");
            assert!(
                slot(&ROUTES, class).is_some(),
                "{class} has resolved handles"
            );
        }
    }

    #[test]
    fn exposition_names_follow_conventions() {
        let metrics = Metrics::default();
        metrics
            .requests
            .get_or_create(&RequestLabels {
                method: "GET",
                route: "query",
                status: 200,
            })
            .inc();
        metrics
            .request_duration
            .get_or_create(&RouteLabels { route: "query" })
            .observe(0.003);
        let text = metrics.encode();
        assert!(
            text.contains(
                r#"sigv4_proxy_requests_total{method="GET",route="query",status="200"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains("sigv4_proxy_request_duration_seconds_bucket"),
            "{text}"
        );
        assert!(
            text.contains("sigv4_proxy_credential_refreshes_total 0"),
            "{text}"
        );
        assert!(text.contains("# EOF"));
    }

    #[test]
    fn resolved_handles_update_the_exported_series() {
        let metrics = Metrics::default();
        metrics.count_request("GET", "query", 200);
        metrics.count_request("GET", "query", 200);
        metrics.count_request("GET", "query", 503);
        metrics.count_request("BREW", "query", 200);
        metrics.observe_request_duration("query", 0.003);
        metrics.observe_request_duration("query", 0.004);
        metrics.observe_upstream_duration("series", 0.002);
        let text = metrics.encode();
        for line in [
            r#"sigv4_proxy_requests_total{method="GET",route="query",status="200"} 2"#,
            r#"sigv4_proxy_requests_total{method="GET",route="query",status="503"} 1"#,
            r#"sigv4_proxy_requests_total{method="BREW",route="query",status="200"} 1"#,
            r#"sigv4_proxy_request_duration_seconds_count{route="query"} 2"#,
            r#"sigv4_proxy_upstream_duration_seconds_count{route="series"} 1"#,
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
        assert!(
            !text.contains(r#"route="remote_write""#),
            "unused series stay out"
        );
    }
}
