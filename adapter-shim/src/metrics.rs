//! The shim's own Prometheus metrics (`/metrics`), prefix `adapter_shim`.
//!
//! prometheus-adapter exposes no Prometheus-client metric unless `resourceRules` is set,
//! so its users cannot see when it is failing; these are always on.

use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, text::encode};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// `{api}`: `custom_v1beta1`, `custom_v1beta2`, `external_v1beta1`, `discovery`, `other`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Which API answered.
    pub api: &'static str,
    /// The HTTP status code class or code (`200`, `404`, …).
    pub code: u16,
}

/// `{kind}` of a failure.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// A stable short name (`timeout`, `transport`, `api_error`, …).
    pub kind: &'static str,
}

/// `{call}`: `query` or `series`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// Which Prometheus API was called.
    pub call: &'static str,
}

/// `{api}` of discovered metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    /// `custom` or `external`.
    pub api: &'static str,
}

/// All metrics, registered once.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Requests answered, by API and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Latency of Prometheus calls, by call.
    pub prometheus_seconds: HistogramFamily<CallLabels>,
    /// Failed Prometheus calls, by kind.
    pub prometheus_errors: Family<KindLabels, Counter>,
    /// Failed object lists (Kubernetes API), by kind.
    pub list_errors: Family<KindLabels, Counter>,
    /// Duration of whole relist passes.
    pub relist_seconds: Histogram,
    /// Series calls during relists that failed (the last good answer was kept).
    pub relist_failures: Counter,
    /// Metrics currently served, by API.
    pub discovered_metrics: Family<ApiLabels, Gauge>,
    /// Unix time of the last relist that finished without a failed call.
    pub relist_last_success: Gauge,
    /// 1 when the last rules reload succeeded (or none happened), else 0.
    pub config_last_reload_successful: Gauge,
    /// Unix time of the last successful rules load.
    pub config_last_reload_success_timestamp: Gauge,
}

/// A histogram family whose histograms share [`latency_buckets`].
pub type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(latency_buckets())
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ]
    .into_iter()
}

impl Metrics {
    /// Creates and registers every metric.
    #[must_use]
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("adapter_shim");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("requests", "API requests answered", requests.clone());
        let prometheus_seconds: HistogramFamily<CallLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "prometheus_request_duration_seconds",
            "Latency of calls to Prometheus",
            prometheus_seconds.clone(),
        );
        let prometheus_errors = Family::<KindLabels, Counter>::default();
        registry.register(
            "prometheus_errors",
            "Failed calls to Prometheus, by kind",
            prometheus_errors.clone(),
        );
        let list_errors = Family::<KindLabels, Counter>::default();
        registry.register(
            "object_list_errors",
            "Failed object lists from the Kubernetes API, by kind",
            list_errors.clone(),
        );
        let relist_seconds = Histogram::new(latency_buckets());
        registry.register(
            "relist_duration_seconds",
            "Duration of series discovery passes",
            relist_seconds.clone(),
        );
        let relist_failures = Counter::default();
        registry.register(
            "relist_failed_queries",
            "Series calls that failed during discovery (the last good answer was kept)",
            relist_failures.clone(),
        );
        let discovered_metrics = Family::<ApiLabels, Gauge>::default();
        registry.register(
            "discovered_metrics",
            "Metrics currently served, by API",
            discovered_metrics.clone(),
        );
        let relist_last_success = Gauge::default();
        registry.register(
            "relist_last_success_timestamp_seconds",
            "Unix time of the last discovery pass without a failed call",
            relist_last_success.clone(),
        );
        let config_last_reload_successful = Gauge::default();
        config_last_reload_successful.set(1);
        registry.register(
            "config_last_reload_successful",
            "Whether the last rules reload succeeded",
            config_last_reload_successful.clone(),
        );
        let config_last_reload_success_timestamp = Gauge::default();
        registry.register(
            "config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful rules load",
            config_last_reload_success_timestamp.clone(),
        );
        Arc::new(Self {
            registry,
            requests,
            prometheus_seconds,
            prometheus_errors,
            list_errors,
            relist_seconds,
            relist_failures,
            discovered_metrics,
            relist_last_success,
            config_last_reload_successful,
            config_last_reload_success_timestamp,
        })
    }

    /// The text exposition.
    #[must_use]
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Seconds since the Unix epoch, for timestamp gauges.
#[must_use]
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_the_documented_names() {
        let m = Metrics::new();
        m.requests
            .get_or_create(&RequestLabels {
                api: "custom_v1beta1",
                code: 200,
            })
            .inc();
        m.prometheus_seconds
            .get_or_create(&CallLabels { call: "query" })
            .observe(0.004);
        m.prometheus_errors
            .get_or_create(&KindLabels { kind: "timeout" })
            .inc();
        m.discovered_metrics
            .get_or_create(&ApiLabels { api: "custom" })
            .set(3);
        let text = m.encode();
        for needle in [
            "adapter_shim_requests_total{api=\"custom_v1beta1\",code=\"200\"} 1",
            "adapter_shim_prometheus_request_duration_seconds_bucket{le=\"0.005\",call=\"query\"} 1",
            "adapter_shim_prometheus_errors_total{kind=\"timeout\"} 1",
            "adapter_shim_discovered_metrics{api=\"custom\"} 3",
            "adapter_shim_config_last_reload_successful 1",
            "adapter_shim_relist_duration_seconds_count 0",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }
}
