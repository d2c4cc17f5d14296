//! The custom and external metrics APIs: routing, lookups, queries and answers.
//!
//! This is the only module that turns failures into HTTP status codes and Kubernetes
//! `Status` bodies. It knows nothing about TLS or authentication: the server calls
//! [`Api::handle`] after the request was admitted.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::{Method, StatusCode};
use percent_encoding::percent_decode_str;

use crate::discovery::{Discovery, Snapshot};
use crate::metrics::{CallLabels, KindLabels, Metrics};
use crate::naming::GroupResource;
use crate::objects::ObjectLister;
use crate::prometheus::{PromError, QueryResult, match_values_to_names, values_by_label};
use crate::quantity::format_value;
use crate::selector::Selector;
use crate::template::{CustomQuery, ExternalQuery, QueryError};
use crate::wire::{
    ApiGroup, ApiGroupList, CUSTOM_METRICS_GROUP, EXTERNAL_METRICS_GROUP, ExternalMetricValue,
    ExternalMetricValueList, MetricValueListV1Beta1, MetricValueListV1Beta2, MetricValueV1Beta1,
    MetricValueV1Beta2, Status, Timestamp, to_go_json,
};

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";
const METRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// prometheus-adapter hides Prometheus' error details from API clients on purpose; the
/// details go to the log and to `adapter_shim_prometheus_errors_total{kind}`.
const FETCH_FAILED: &str = "unable to fetch metrics";

/// One answer, ready to send.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: Bytes,
    /// Which API answered (the `api` label of `adapter_shim_requests_total`).
    pub api: &'static str,
}

impl Answer {
    fn json(api: &'static str, body: Bytes) -> Self {
        Self {
            status: StatusCode::OK,
            content_type: JSON,
            body,
            api,
        }
    }

    fn text(api: &'static str, status: StatusCode, body: &'static str) -> Self {
        Self {
            status,
            content_type: TEXT,
            body: Bytes::from_static(body.as_bytes()),
            api,
        }
    }

    /// A Kubernetes `Status` error.
    #[must_use]
    pub fn status(api: &'static str, status: &Status) -> Self {
        Self {
            status: StatusCode::from_u16(status.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            content_type: JSON,
            body: encode(status),
            api,
        }
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Bytes {
    // Our wire types always serialize; an empty body is the fallback of last resort.
    Bytes::from(to_go_json(value).unwrap_or_default())
}

/// The two custom metrics API versions; they differ only in the item shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomVersion {
    /// `v1beta1`: `describedObject`, `metricName`, `selector`.
    V1Beta1,
    /// `v1beta2`: `metric{name, selector}`.
    V1Beta2,
}

impl CustomVersion {
    fn api_label(self) -> &'static str {
        match self {
            Self::V1Beta1 => "custom_v1beta1",
            Self::V1Beta2 => "custom_v1beta2",
        }
    }
}

/// Reports whether the process is ready (TLS material and auth configuration loaded).
pub type ReadyCheck = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// The API's dependencies.
#[derive(Clone)]
pub struct Api {
    /// Rules and discovered metrics.
    pub discovery: Arc<Discovery>,
    /// Object names for wildcard requests.
    pub objects: Arc<dyn ObjectLister>,
    /// The shim's own metrics.
    pub metrics: Arc<Metrics>,
    /// Whether `external.metrics.k8s.io` is served (KEDA usually owns it).
    pub external_enabled: bool,
    /// Readiness for `/readyz`.
    pub ready: ReadyCheck,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("external_enabled", &self.external_enabled)
            .finish_non_exhaustive()
    }
}

/// A parsed request path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Health,
    Ready,
    Metrics,
    OpenApi,
    GroupList,
    Group(&'static str),
    CustomDiscovery(CustomVersion),
    ExternalDiscovery,
    Custom(CustomVersion, CustomTarget),
    External { namespace: String, metric: String },
    BadCustomPath,
    NotFound,
}

/// What a custom metrics request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CustomTarget {
    /// `None` for root-scoped objects (and for the namespace metric route).
    namespace: Option<String>,
    resource: String,
    /// An object name or `*`.
    name: String,
    metric: String,
}

fn decode_segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect()
}

fn route(path: &str, external_enabled: bool) -> Route {
    let segments = decode_segments(path);
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    match s.as_slice() {
        ["healthz" | "livez", ..] => Route::Health,
        ["readyz", ..] => Route::Ready,
        ["metrics"] => Route::Metrics,
        ["openapi", ..] => Route::OpenApi,
        ["apis"] => Route::GroupList,
        ["apis", CUSTOM_METRICS_GROUP] => Route::Group(CUSTOM_METRICS_GROUP),
        ["apis", EXTERNAL_METRICS_GROUP] if external_enabled => {
            Route::Group(EXTERNAL_METRICS_GROUP)
        }
        ["apis", CUSTOM_METRICS_GROUP, version, rest @ ..] => {
            let version = match *version {
                "v1beta1" => CustomVersion::V1Beta1,
                "v1beta2" => CustomVersion::V1Beta2,
                _ => return Route::NotFound,
            };
            match rest {
                [] => Route::CustomDiscovery(version),
                ["namespaces", ns, "metrics", metric] => Route::Custom(
                    version,
                    CustomTarget {
                        namespace: None,
                        resource: "namespaces".into(),
                        name: (*ns).into(),
                        metric: (*metric).into(),
                    },
                ),
                ["namespaces", ns, resource, name, metric] => Route::Custom(
                    version,
                    CustomTarget {
                        namespace: Some((*ns).into()),
                        resource: (*resource).into(),
                        name: (*name).into(),
                        metric: (*metric).into(),
                    },
                ),
                [resource, name, metric] => Route::Custom(
                    version,
                    CustomTarget {
                        namespace: None,
                        resource: (*resource).into(),
                        name: (*name).into(),
                        metric: (*metric).into(),
                    },
                ),
                [_] | [_, _] => Route::BadCustomPath,
                _ => Route::NotFound,
            }
        }
        ["apis", EXTERNAL_METRICS_GROUP, "v1beta1", rest @ ..] if external_enabled => match rest {
            [] => Route::ExternalDiscovery,
            ["namespaces", ns, metric] => Route::External {
                namespace: (*ns).into(),
                metric: (*metric).into(),
            },
            _ => Route::NotFound,
        },
        _ => Route::NotFound,
    }
}

/// `labelSelector` and `metricLabelSelector`, decoded form-style (the aggregator re-encodes
/// the query string, so `+` is a space).
#[derive(Debug, Default)]
struct Params {
    label_selector: Option<String>,
    metric_label_selector: Option<String>,
}

fn params(query: Option<&str>) -> Params {
    let mut p = Params::default();
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match &*k {
            "labelSelector" => p.label_selector = Some(v.into_owned()),
            "metricLabelSelector" => p.metric_label_selector = Some(v.into_owned()),
            _ => {}
        }
    }
    p
}

// A `Status` is the error answer itself and is built once per failed request; boxing it
// would buy nothing.
#[allow(clippy::result_large_err)]
fn parse_selector(name: &str, value: Option<&str>) -> Result<Selector, Status> {
    match value {
        None => Ok(Selector::everything()),
        Some(v) => Selector::parse(v).map_err(|e| Status::bad_request(format!("{name}: {e}"))),
    }
}

#[allow(clippy::result_large_err)] // see parse_selector
impl Api {
    /// Answers one request. `path` is the raw (percent-encoded) path, `query` the raw query
    /// string.
    pub async fn handle(&self, method: &Method, path: &str, query: Option<&str>) -> Answer {
        let route = route(path, self.external_enabled);
        if method != Method::GET && method != Method::HEAD {
            return Answer::status(
                "other",
                &Status::failure(
                    405,
                    "MethodNotAllowed",
                    format!(
                        "the server does not allow this method on the requested resource ({method})"
                    ),
                ),
            );
        }
        match route {
            Route::Health => Answer::text("health", StatusCode::OK, "ok"),
            Route::Ready => match (self.ready)() {
                Ok(()) => Answer::text("health", StatusCode::OK, "ok"),
                Err(reason) => Answer {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    content_type: TEXT,
                    body: Bytes::from(format!("not ready: {reason}")),
                    api: "health",
                },
            },
            Route::Metrics => Answer {
                status: StatusCode::OK,
                content_type: METRICS_TEXT,
                body: Bytes::from(self.metrics.encode()),
                api: "metrics",
            },
            // The aggregator skips a 404 gracefully; anything else is logged on every sync.
            Route::OpenApi => Answer::status(
                "discovery",
                &Status::not_found("the server does not serve an OpenAPI document"),
            ),
            Route::GroupList => {
                let mut groups = vec![custom_group()];
                if self.external_enabled {
                    groups.push(external_group());
                }
                Answer::json("discovery", encode(&ApiGroupList::new(groups)))
            }
            Route::Group(CUSTOM_METRICS_GROUP) => {
                Answer::json("discovery", encode(&custom_group().document()))
            }
            Route::Group(_) => Answer::json("discovery", encode(&external_group().document())),
            // Always 200, also before the first relist and with no rules: a failing
            // discovery document takes kubectl, the garbage collector and namespace
            // deletion down cluster-wide.
            Route::CustomDiscovery(v) => {
                let snap = self.discovery.snapshot();
                let body = match v {
                    CustomVersion::V1Beta1 => snap.docs.custom_v1beta1.clone(),
                    CustomVersion::V1Beta2 => snap.docs.custom_v1beta2.clone(),
                };
                Answer::json("discovery", body)
            }
            Route::ExternalDiscovery => Answer::json(
                "discovery",
                self.discovery.snapshot().docs.external_v1beta1.clone(),
            ),
            Route::Custom(version, target) => {
                let api = version.api_label();
                match self.custom(version, &target, query).await {
                    Ok(body) => Answer::json(api, body),
                    Err(status) => Answer::status(api, &status),
                }
            }
            Route::External { namespace, metric } => {
                match self.external(&namespace, &metric, query).await {
                    Ok(body) => Answer::json("external_v1beta1", body),
                    Err(status) => Answer::status("external_v1beta1", &status),
                }
            }
            Route::BadCustomPath => {
                Answer::status("other", &Status::bad_request("invalid request path"))
            }
            Route::NotFound => Answer::status(
                "other",
                &Status::not_found("the server could not find the requested resource"),
            ),
        }
    }

    async fn custom(
        &self,
        version: CustomVersion,
        target: &CustomTarget,
        query: Option<&str>,
    ) -> Result<Bytes, Status> {
        let p = params(query);
        let object_selector = parse_selector("labelSelector", p.label_selector.as_deref())?;
        let metric_selector =
            parse_selector("metricLabelSelector", p.metric_label_selector.as_deref())?;
        let snap = self.discovery.snapshot();
        let requested = GroupResource::parse(&target.resource);
        let metric = target.metric.as_str();
        let Some(info) = snap.catalog.normalize(&requested).cloned() else {
            return Err(Status::metric_not_found(&requested.to_string(), metric));
        };
        let gr = info.group_resource.to_string();
        let namespaced = target.namespace.is_some();
        let Some(source) = snap.custom.get(&info.group_resource, namespaced, metric) else {
            return Err(Status::metric_not_found(&gr, metric));
        };
        let Some(rule) = snap.config.rules.get(source.rule) else {
            return Err(Status::metric_not_found(&gr, metric));
        };
        let resources = &rule.naming.resources;
        let resource_label = resources
            .label_for_resource(&info.group_resource, &snap.catalog)
            .map_err(|_| Status::metric_not_found(&gr, metric))?;
        let namespace_label = match &target.namespace {
            Some(_) => Some(
                resources
                    .namespace_label(&snap.catalog)
                    .map_err(|_| Status::metric_not_found(&gr, metric))?,
            ),
            None => None,
        };

        let wildcard = target.name == "*";
        let names = if wildcard {
            let listed = self
                .objects
                .list(&info, target.namespace.as_deref(), &object_selector)
                .await
                .map_err(|error| {
                    tracing::warn!(resource = %gr, %error, "listing objects failed");
                    self.metrics
                        .list_errors
                        .get_or_create(&KindLabels {
                            kind: match error {
                                crate::objects::ListError::NotReady(_) => "not_ready",
                                crate::objects::ListError::Api { .. } => "api",
                            },
                        })
                        .inc();
                    Status::internal_error("unable to list matching resources")
                })?;
            if listed.is_empty() {
                return Err(Status::metric_not_found(&gr, metric));
            }
            listed
        } else {
            vec![target.name.clone()]
        };

        let promql = CustomQuery {
            series: &source.series,
            resource_label: &resource_label,
            namespace: match (&namespace_label, &target.namespace) {
                (Some(label), Some(ns)) => Some((label.as_str(), ns.as_str())),
                _ => None,
            },
            metric_selector: &metric_selector,
            names: &names,
        }
        .render(&rule.metrics_query)
        .map_err(|e| query_error(&e, rule.location()))?;

        let samples = match self.query(&promql).await?.result {
            QueryResult::Vector(samples) => samples,
            other => {
                self.count_error(&PromError::NotVector(other.type_name()));
                tracing::warn!(query = %promql, result = other.type_name(), "metricsQuery did not return a vector");
                return Err(Status::internal_error(FETCH_FAILED));
            }
        };
        let values = values_by_label(&samples, &resource_label);
        let now = Timestamp::now();
        let selector = if metric_selector.is_empty() {
            None
        } else {
            metric_selector.to_label_selector().ok()
        };
        let namespace = target.namespace.as_deref().unwrap_or_default();
        let items: Vec<MetricValueV1Beta1> = match_values_to_names(&values, &names)
            .into_iter()
            // NaN and ±Inf have no Quantity: the item is left out (see the README).
            .filter_map(|(name, v)| {
                format_value(v).ok().map(|value| MetricValueV1Beta1 {
                    described_object: info.object_reference(namespace, &name),
                    metric_name: metric.to_owned(),
                    timestamp: now,
                    window_seconds: None,
                    value,
                    selector: selector.clone(),
                })
            })
            .collect();
        if !wildcard && items.is_empty() {
            if !samples.is_empty() {
                tracing::info!(query = %promql, label = %resource_label, "none of the results matched the object name (or its value was not a number)");
            }
            return Err(Status::metric_not_found_for(&gr, metric, &target.name));
        }
        Ok(match version {
            CustomVersion::V1Beta1 => encode(&MetricValueListV1Beta1::new(items)),
            CustomVersion::V1Beta2 => encode(&MetricValueListV1Beta2::new(
                items.into_iter().map(MetricValueV1Beta2::from).collect(),
            )),
        })
    }

    async fn external(
        &self,
        namespace: &str,
        metric: &str,
        query: Option<&str>,
    ) -> Result<Bytes, Status> {
        let p = params(query);
        let metric_selector = parse_selector("labelSelector", p.label_selector.as_deref())?;
        let snap: Arc<Snapshot> = self.discovery.snapshot();
        let Some(source) = snap.external.get(metric) else {
            // prometheus-adapter's quirk, kept for byte compatibility: the group-resource
            // in this message is `namespaces` only for the default namespace.
            let gr = if namespace == "default" {
                "namespaces"
            } else {
                ""
            };
            return Err(Status::metric_not_found(gr, metric));
        };
        let Some(rule) = snap.config.external_rules.get(source.rule) else {
            return Err(Status::metric_not_found("", metric));
        };
        let namespace_label = if rule.namespaced {
            // Validated at load time; kept as a 500 like prometheus-adapter if it happens.
            Some(
                rule.naming
                    .resources
                    .namespace_label(&snap.catalog)
                    .map_err(|_| Status::internal_error(FETCH_FAILED))?,
            )
        } else {
            None
        };
        let promql = ExternalQuery {
            series: &source.series,
            namespace: namespace_label.as_deref().map(|l| (l, namespace)),
            metric_selector: &metric_selector,
        }
        .render(&rule.metrics_query)
        .map_err(|e| query_error(&e, rule.location()))?;

        let items = match self.query(&promql).await?.result {
            QueryResult::Vector(samples) => samples
                .into_iter()
                .filter_map(|s| {
                    format_value(s.value).ok().map(|value| ExternalMetricValue {
                        metric_name: metric.to_owned(),
                        metric_labels: Some(s.labels),
                        timestamp: Timestamp::from_prometheus_seconds(s.timestamp),
                        window_seconds: None,
                        value,
                    })
                })
                .collect(),
            QueryResult::Scalar { timestamp, value } => format_value(value)
                .ok()
                .map(|value| ExternalMetricValue {
                    metric_name: metric.to_owned(),
                    metric_labels: None,
                    timestamp: Timestamp::from_prometheus_seconds(timestamp),
                    window_seconds: None,
                    value,
                })
                .into_iter()
                .collect(),
            other => {
                self.count_error(&PromError::NotVector(other.type_name()));
                tracing::warn!(query = %promql, result = other.type_name(), "external metricsQuery returned neither a vector nor a scalar");
                return Err(Status::internal_error(FETCH_FAILED));
            }
        };
        Ok(encode(&ExternalMetricValueList::new(items)))
    }

    async fn query(&self, promql: &str) -> Result<crate::prometheus::QueryResponse, Status> {
        let started = Instant::now();
        let result = self
            .discovery
            .client()
            .query(promql, SystemTime::now())
            .await;
        self.metrics
            .prometheus_seconds
            .get_or_create(&CallLabels { call: "query" })
            .observe(started.elapsed().as_secs_f64());
        result.map_err(|error| {
            self.metrics
                .prometheus_errors
                .get_or_create(&KindLabels { kind: error.kind() })
                .inc();
            tracing::warn!(query = %promql, %error, "query failed");
            Status::internal_error(FETCH_FAILED)
        })
    }

    fn count_error(&self, error: &PromError) {
        let kind = crate::promclient::FetchError::Prometheus(error.clone()).kind();
        self.metrics
            .prometheus_errors
            .get_or_create(&KindLabels { kind })
            .inc();
    }
}

/// Selector problems are the caller's (400); a template failing at request time is ours.
fn query_error(e: &QueryError, rule: String) -> Status {
    match e {
        QueryError::UnsupportedOperator(_) | QueryError::Malformed(..) => {
            Status::bad_request(e.to_string())
        }
        QueryError::NoNames | QueryError::Template(_) => {
            tracing::error!(%rule, error = %e, "metricsQuery failed to render");
            Status::internal_error(FETCH_FAILED)
        }
    }
}

fn custom_group() -> ApiGroup {
    // v1beta2 first: it is the preferred version (the APIServices rank it higher too).
    ApiGroup::entry(CUSTOM_METRICS_GROUP, &["v1beta2", "v1beta1"])
}

fn external_group() -> ApiGroup {
    ApiGroup::entry(EXTERNAL_METRICS_GROUP, &["v1beta1"])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn custom(version: CustomVersion, ns: Option<&str>, r: &str, n: &str, m: &str) -> Route {
        Route::Custom(
            version,
            CustomTarget {
                namespace: ns.map(str::to_owned),
                resource: r.into(),
                name: n.into(),
                metric: m.into(),
            },
        )
    }

    #[test]
    fn routes() {
        use CustomVersion::{V1Beta1, V1Beta2};
        let cases: Vec<(&str, Route)> = vec![
            ("/healthz", Route::Health),
            ("/livez", Route::Health),
            ("/readyz", Route::Ready),
            ("/metrics", Route::Metrics),
            ("/openapi/v2", Route::OpenApi),
            (
                "/openapi/v3/apis/custom.metrics.k8s.io/v1beta1",
                Route::OpenApi,
            ),
            ("/apis", Route::GroupList),
            ("/apis/", Route::GroupList),
            (
                "/apis/custom.metrics.k8s.io",
                Route::Group(CUSTOM_METRICS_GROUP),
            ),
            (
                "/apis/custom.metrics.k8s.io/v1beta1",
                Route::CustomDiscovery(V1Beta1),
            ),
            (
                "/apis/custom.metrics.k8s.io/v1beta2/",
                Route::CustomDiscovery(V1Beta2),
            ),
            ("/apis/custom.metrics.k8s.io/v1/", Route::NotFound),
            (
                "/apis/custom.metrics.k8s.io/v1beta1/namespaces/prod/pods/%2A/http_requests_per_second",
                custom(
                    V1Beta1,
                    Some("prod"),
                    "pods",
                    "*",
                    "http_requests_per_second",
                ),
            ),
            (
                "/apis/custom.metrics.k8s.io/v1beta2/namespaces/prod/deployments.apps/web/m",
                custom(V1Beta2, Some("prod"), "deployments.apps", "web", "m"),
            ),
            (
                "/apis/custom.metrics.k8s.io/v1beta1/namespaces/prod/metrics/m",
                custom(V1Beta1, None, "namespaces", "prod", "m"),
            ),
            (
                "/apis/custom.metrics.k8s.io/v1beta1/nodes/*/node_load1",
                custom(V1Beta1, None, "nodes", "*", "node_load1"),
            ),
            (
                "/apis/custom.metrics.k8s.io/v1beta1/pods/x",
                Route::BadCustomPath,
            ),
            (
                "/apis/external.metrics.k8s.io/v1beta1",
                Route::ExternalDiscovery,
            ),
            (
                "/apis/external.metrics.k8s.io/v1beta1/namespaces/prod/s1-rabbitmq-queueName2",
                Route::External {
                    namespace: "prod".into(),
                    metric: "s1-rabbitmq-queueName2".into(),
                },
            ),
            ("/apis/external.metrics.k8s.io/v1beta1/x", Route::NotFound),
            ("/", Route::NotFound),
        ];
        for (path, want) in cases {
            assert_eq!(route(path, true), want, "{path}");
        }
        assert_eq!(
            route("/apis/external.metrics.k8s.io/v1beta1", false),
            Route::NotFound
        );
    }

    #[test]
    fn selectors_are_form_decoded() {
        let p = params(Some(
            "labelSelector=app+in+%28jazz%2Cblues%29%2Ctier%21%3Ddb&metricLabelSelector=code%3D200&pretty=true",
        ));
        assert_eq!(
            p.label_selector.as_deref(),
            Some("app in (jazz,blues),tier!=db")
        );
        assert_eq!(p.metric_label_selector.as_deref(), Some("code=200"));
        let bad = parse_selector("metricLabelSelector", Some("a in (")).expect_err("bad");
        assert_eq!(bad.code, 400);
        assert!(
            bad.message.starts_with("metricLabelSelector: "),
            "{}",
            bad.message
        );
    }
}
