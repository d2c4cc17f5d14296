//! The JSON the shim serves, shaped byte for byte like prometheus-adapter's answers.
//!
//! Field order is Go struct order (serde serialises in declaration order), `omitempty`
//! fields are skipped when empty, and fields without `omitempty` are always written
//! (`selector: null`, `metricLabels: null`, `items: []`). [`to_go_json`] writes compact
//! JSON the way Go's `encoding/json` encoder does: `<`, `>`, `&`, U+2028 and U+2029 are
//! escaped as `\u003c`, `\u003e`, `\u0026`, `\u2028`, `\u2029`, and a newline ends the body.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The custom metrics API group.
pub const CUSTOM_METRICS_GROUP: &str = "custom.metrics.k8s.io";
/// The external metrics API group.
pub const EXTERNAL_METRICS_GROUP: &str = "external.metrics.k8s.io";
/// `custom.metrics.k8s.io/v1beta1`.
pub const CUSTOM_V1BETA1: &str = "custom.metrics.k8s.io/v1beta1";
/// `custom.metrics.k8s.io/v1beta2`.
pub const CUSTOM_V1BETA2: &str = "custom.metrics.k8s.io/v1beta2";
/// `external.metrics.k8s.io/v1beta1`.
pub const EXTERNAL_V1BETA1: &str = "external.metrics.k8s.io/v1beta1";

// === time ===

/// A `metav1.Time`: written as RFC 3339 in UTC with second precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(
    /// Seconds since the Unix epoch.
    pub i64,
);

impl Timestamp {
    /// The current time, truncated to the second.
    #[must_use]
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    /// A point in time, truncated to the second (toward the past).
    #[must_use]
    pub fn from_system_time(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Self(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
            Err(e) => {
                let d = e.duration();
                let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
                Self(-secs - i64::from(d.subsec_nanos() > 0))
            }
        }
    }

    /// A Prometheus sample time (float seconds), truncated toward the past as Go's
    /// `time.Time` formatting does.
    #[must_use]
    pub fn from_prometheus_seconds(t: f64) -> Self {
        #[allow(clippy::cast_possible_truncation)]
        Self(t.floor() as i64)
    }
}

/// (year, month, day) of a day count since 1970-01-01 in the proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01 so that leap days end each 4/100/400-year cycle.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (year, month as u32, day as u32)
}

/// Days since 1970-01-01 of a (year, month, day).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y.rem_euclid(400);
    let m = i64::from(month);
    let day_of_year = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(86_400);
        let secs = self.0.rem_euclid(86_400);
        let (y, mo, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_rfc3339_utc(&s)
            .map(Self)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid timestamp {s:?}")))
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, the form Kubernetes writes.
fn parse_rfc3339_utc(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let rest = &s[19..];
    let rest = rest
        .strip_prefix('.')
        .map_or(rest, |r| r.trim_start_matches(|c: char| c.is_ascii_digit()));
    if rest != "Z"
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || min > 59
        || sec > 60
    {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    Some(days * 86_400 + i64::from(hour * 3600 + min * 60 + sec))
}

// === shared metadata ===

/// `metav1.ListMeta`; every field is `omitempty`, so it is normally written as `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListMeta {
    /// Deprecated; older servers set it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub self_link: String,
    /// Unused here.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    /// Unused here.
    #[serde(default, rename = "continue", skip_serializing_if = "String::is_empty")]
    pub continue_: String,
    /// Unused here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_item_count: Option<i64>,
}

/// `core/v1.ObjectReference`: the `describedObject` of a custom metric value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    /// Kind, e.g. `Pod`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Namespace; empty for cluster-scoped objects and omitted then.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Object name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Never set by the adapter.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// `group + "/" + version`: `"/v1"` (leading slash) for core kinds, `apps/v1` for apps.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// Never set by the adapter.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    /// Never set by the adapter.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field_path: String,
}

impl ObjectReference {
    /// The reference prometheus-adapter writes: `apiVersion` is `group/version` even for the
    /// core group, where it reads `/v1`.
    #[must_use]
    pub fn new(kind: &str, group: &str, version: &str, namespace: &str, name: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            api_version: format!("{group}/{version}"),
            ..Self::default()
        }
    }
}

/// `metav1.LabelSelector`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    /// `key=value` requirements.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Set-based requirements.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// `metav1.LabelSelectorRequirement`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelSelectorRequirement {
    /// Label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    /// Values; omitted for `Exists` and `DoesNotExist`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

// === custom.metrics.k8s.io ===

/// `custom.metrics.k8s.io/v1beta1` `MetricValueList`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricValueListV1Beta1 {
    /// Always `MetricValueList`.
    pub kind: String,
    /// Always `custom.metrics.k8s.io/v1beta1`.
    pub api_version: String,
    /// Always `{}`.
    pub metadata: ListMeta,
    /// One item per object with a value; `[]` when none.
    pub items: Vec<MetricValueV1Beta1>,
}

impl MetricValueListV1Beta1 {
    /// A list with the right `kind` and `apiVersion`.
    #[must_use]
    pub fn new(items: Vec<MetricValueV1Beta1>) -> Self {
        Self {
            kind: "MetricValueList".into(),
            api_version: CUSTOM_V1BETA1.into(),
            metadata: ListMeta::default(),
            items,
        }
    }
}

/// One v1beta1 metric value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricValueV1Beta1 {
    /// The object the value describes.
    pub described_object: ObjectReference,
    /// The API metric name.
    pub metric_name: String,
    /// When the value was produced (prometheus-adapter: response time).
    pub timestamp: Timestamp,
    /// Window in seconds; written as `window`, omitted when unset (always, in the adapter).
    #[serde(default, rename = "window", skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<i64>,
    /// The Quantity string.
    pub value: String,
    /// The metric selector; `null` when the request had none.
    pub selector: Option<LabelSelector>,
}

/// `custom.metrics.k8s.io/v1beta2` `MetricValueList`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricValueListV1Beta2 {
    /// Always `MetricValueList`.
    pub kind: String,
    /// Always `custom.metrics.k8s.io/v1beta2`.
    pub api_version: String,
    /// Always `{}`.
    pub metadata: ListMeta,
    /// One item per object with a value; `[]` when none.
    pub items: Vec<MetricValueV1Beta2>,
}

impl MetricValueListV1Beta2 {
    /// A list with the right `kind` and `apiVersion`.
    #[must_use]
    pub fn new(items: Vec<MetricValueV1Beta2>) -> Self {
        Self {
            kind: "MetricValueList".into(),
            api_version: CUSTOM_V1BETA2.into(),
            metadata: ListMeta::default(),
            items,
        }
    }
}

/// One v1beta2 metric value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricValueV1Beta2 {
    /// The object the value describes.
    pub described_object: ObjectReference,
    /// Metric name and selector.
    pub metric: MetricIdentifier,
    /// When the value was produced.
    pub timestamp: Timestamp,
    /// Window in seconds, omitted when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<i64>,
    /// The Quantity string.
    pub value: String,
}

/// v1beta2 `MetricIdentifier`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricIdentifier {
    /// The API metric name.
    pub name: String,
    /// The metric selector; `null` when the request had none.
    pub selector: Option<LabelSelector>,
}

impl From<MetricValueV1Beta1> for MetricValueV1Beta2 {
    fn from(v: MetricValueV1Beta1) -> Self {
        Self {
            described_object: v.described_object,
            metric: MetricIdentifier {
                name: v.metric_name,
                selector: v.selector,
            },
            timestamp: v.timestamp,
            window_seconds: v.window_seconds,
            value: v.value,
        }
    }
}

// === external.metrics.k8s.io ===

/// `external.metrics.k8s.io/v1beta1` `ExternalMetricValueList`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalMetricValueList {
    /// Always `ExternalMetricValueList`.
    pub kind: String,
    /// Always `external.metrics.k8s.io/v1beta1`.
    pub api_version: String,
    /// Always `{}`.
    pub metadata: ListMeta,
    /// One item per series; `[]` when none.
    pub items: Vec<ExternalMetricValue>,
}

impl ExternalMetricValueList {
    /// A list with the right `kind` and `apiVersion`.
    #[must_use]
    pub fn new(items: Vec<ExternalMetricValue>) -> Self {
        Self {
            kind: "ExternalMetricValueList".into(),
            api_version: EXTERNAL_V1BETA1.into(),
            metadata: ListMeta::default(),
            items,
        }
    }
}

/// One external metric value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalMetricValue {
    /// The API metric name.
    pub metric_name: String,
    /// The sample's labels; `null` for scalar results.
    pub metric_labels: Option<BTreeMap<String, String>>,
    /// The sample time.
    pub timestamp: Timestamp,
    /// Window in seconds; written as `window`, omitted when unset.
    #[serde(default, rename = "window", skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<i64>,
    /// The Quantity string.
    pub value: String,
}

// === discovery ===

/// `metav1.APIResourceList`: the discovery document of one group-version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiResourceList {
    /// Always `APIResourceList`.
    pub kind: String,
    /// Always `v1`.
    pub api_version: String,
    /// E.g. `custom.metrics.k8s.io/v1beta1`.
    pub group_version: String,
    /// `[]` when nothing is discovered yet.
    pub resources: Vec<ApiResource>,
}

impl ApiResourceList {
    /// A discovery document for `group_version`.
    #[must_use]
    pub fn new(group_version: &str, resources: Vec<ApiResource>) -> Self {
        Self {
            kind: "APIResourceList".into(),
            api_version: "v1".into(),
            group_version: group_version.into(),
            resources,
        }
    }
}

/// `metav1.APIResource`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiResource {
    /// `<group-resource>/<metric>` for custom metrics, `<metric>` for external ones.
    pub name: String,
    /// Always `""`, always written.
    pub singular_name: String,
    /// Whether the resource is namespaced.
    pub namespaced: bool,
    /// Omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// Omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// `MetricValueList` or `ExternalMetricValueList`.
    pub kind: String,
    /// Always `["get"]`.
    pub verbs: Vec<String>,
    /// Omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub short_names: Vec<String>,
    /// Omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// Omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub storage_version_hash: String,
}

impl ApiResource {
    /// A custom metric entry: `name` is `<group-resource>/<metric>`, e.g. `pods/m` or
    /// `deployments.apps/m`.
    #[must_use]
    pub fn custom_metric(group_resource: &str, metric: &str, namespaced: bool) -> Self {
        Self::get_only(
            format!("{group_resource}/{metric}"),
            namespaced,
            "MetricValueList",
        )
    }

    /// An external metric entry.
    #[must_use]
    pub fn external_metric(metric: &str, namespaced: bool) -> Self {
        Self::get_only(metric.to_owned(), namespaced, "ExternalMetricValueList")
    }

    fn get_only(name: String, namespaced: bool, kind: &str) -> Self {
        Self {
            name,
            singular_name: String::new(),
            namespaced,
            group: String::new(),
            version: String::new(),
            kind: kind.into(),
            verbs: vec!["get".into()],
            short_names: Vec::new(),
            categories: Vec::new(),
            storage_version_hash: String::new(),
        }
    }
}

/// `metav1.GroupVersionForDiscovery`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupVersionForDiscovery {
    /// `group/version`.
    pub group_version: String,
    /// `version`.
    pub version: String,
}

impl GroupVersionForDiscovery {
    /// `group/version` and `version`.
    #[must_use]
    pub fn new(group: &str, version: &str) -> Self {
        Self {
            group_version: format!("{group}/{version}"),
            version: version.into(),
        }
    }
}

/// `metav1.APIGroup`. Inside an `APIGroupList` it carries no `kind`/`apiVersion`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiGroup {
    /// `APIGroup` at top level, empty (omitted) inside a list.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// `v1` at top level, empty (omitted) inside a list.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// The group name.
    pub name: String,
    /// Served versions, preferred first.
    pub versions: Vec<GroupVersionForDiscovery>,
    /// The preferred version (a struct: Go's `omitempty` never drops it).
    pub preferred_version: GroupVersionForDiscovery,
    /// Unused here.
    #[serde(
        default,
        rename = "serverAddressByClientCIDRs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub server_address_by_client_cidrs: Vec<serde_json::Value>,
}

impl ApiGroup {
    /// A group entry for a list; `versions` must be non-empty, the first one is preferred.
    #[must_use]
    pub fn entry(name: &str, versions: &[&str]) -> Self {
        let versions: Vec<_> = versions
            .iter()
            .map(|v| GroupVersionForDiscovery::new(name, v))
            .collect();
        let preferred_version = versions
            .first()
            .cloned()
            .unwrap_or_else(|| GroupVersionForDiscovery::new(name, ""));
        Self {
            kind: String::new(),
            api_version: String::new(),
            name: name.into(),
            versions,
            preferred_version,
            server_address_by_client_cidrs: Vec::new(),
        }
    }

    /// The same entry as a top-level `APIGroup` document.
    #[must_use]
    pub fn document(mut self) -> Self {
        self.kind = "APIGroup".into();
        self.api_version = "v1".into();
        self
    }
}

/// `metav1.APIGroupList`: the `/apis` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiGroupList {
    /// Always `APIGroupList`.
    pub kind: String,
    /// Always `v1`.
    pub api_version: String,
    /// The groups.
    pub groups: Vec<ApiGroup>,
}

impl ApiGroupList {
    /// An `/apis` document.
    #[must_use]
    pub fn new(groups: Vec<ApiGroup>) -> Self {
        Self {
            kind: "APIGroupList".into(),
            api_version: "v1".into(),
            groups,
        }
    }
}

// === errors ===

/// `metav1.Status`, the body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Always `Status`.
    pub kind: String,
    /// Always `v1`.
    pub api_version: String,
    /// Always `{}`.
    pub metadata: ListMeta,
    /// `Failure`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// Human-readable; the HPA shows it in its conditions.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// `NotFound`, `InternalError`, `BadRequest`, `Forbidden`, `Unauthorized`, …
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Extra detail; omitted when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<StatusDetails>,
    /// The HTTP status code.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub code: u16,
}

fn is_zero(c: &u16) -> bool {
    *c == 0
}

/// `metav1.StatusDetails`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDetails {
    /// Object name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// API group.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// Resource or kind.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Object UID.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// Causes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<StatusCause>,
    /// Retry hint in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<i32>,
}

/// `metav1.StatusCause`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCause {
    /// Machine-readable cause (JSON key `reason`).
    #[serde(default, rename = "reason", skip_serializing_if = "String::is_empty")]
    pub cause_type: String,
    /// Human-readable cause.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The field at fault.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field: String,
}

impl Status {
    /// A `Failure` status.
    #[must_use]
    pub fn failure(code: u16, reason: &str, message: impl Into<String>) -> Self {
        Self {
            kind: "Status".into(),
            api_version: "v1".into(),
            metadata: ListMeta::default(),
            status: "Failure".into(),
            message: message.into(),
            reason: reason.into(),
            details: None,
            code,
        }
    }

    /// 404 for an unknown metric: `the server could not find the metric <m> for <gr>`.
    #[must_use]
    pub fn metric_not_found(group_resource: &str, metric: &str) -> Self {
        Self::failure(
            404,
            "NotFound",
            format!("the server could not find the metric {metric} for {group_resource}"),
        )
    }

    /// 404 for a named object without data:
    /// `the server could not find the metric <m> for <gr> <name>`.
    #[must_use]
    pub fn metric_not_found_for(group_resource: &str, metric: &str, name: &str) -> Self {
        Self::failure(
            404,
            "NotFound",
            format!("the server could not find the metric {metric} for {group_resource} {name}"),
        )
    }

    /// 404 with a selector: `… for <gr> <name> with selector <sel>`.
    #[must_use]
    pub fn metric_not_found_for_selector(
        group_resource: &str,
        metric: &str,
        name: &str,
        selector: &str,
    ) -> Self {
        Self::failure(
            404,
            "NotFound",
            format!(
                "the server could not find the metric {metric} for {group_resource} {name} with selector {selector}"
            ),
        )
    }

    /// 500 `Internal error occurred: <cause>` with the cause repeated in `details.causes`.
    /// prometheus-adapter uses the cause `unable to fetch metrics` for every Prometheus failure.
    #[must_use]
    pub fn internal_error(cause: &str) -> Self {
        let mut s = Self::failure(
            500,
            "InternalError",
            format!("Internal error occurred: {cause}"),
        );
        s.details = Some(StatusDetails {
            causes: vec![StatusCause {
                message: cause.into(),
                ..StatusCause::default()
            }],
            ..StatusDetails::default()
        });
        s
    }

    /// 400 `BadRequest`.
    #[must_use]
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::failure(400, "BadRequest", message)
    }

    /// 404 `NotFound` with a free-form message.
    #[must_use]
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::failure(404, "NotFound", message)
    }

    /// 401 `Unauthorized`.
    #[must_use]
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::failure(401, "Unauthorized", message)
    }

    /// 403 `Forbidden`.
    #[must_use]
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::failure(403, "Forbidden", message)
    }
}

// === Go-compatible encoding ===

/// A serde_json formatter that escapes strings the way Go's `encoding/json` does by default.
#[derive(Debug, Clone, Copy, Default)]
struct GoFormatter;

impl serde_json::ser::Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let escaped = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(escaped.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// Serialises `value` as Go's `json.Encoder` would: compact, HTML-safe escapes, and a
/// trailing newline.
///
/// # Errors
/// Only if `value`'s `Serialize` fails (the types in this module never do).
pub fn to_go_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    value.serialize(&mut ser)?;
    out.push(b'\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timestamp = Timestamp(1_755_712_400); // 2025-08-20T17:53:20Z

    fn golden<V: Serialize>(value: &V, file: &str, expected: &str) {
        let got = match to_go_json(value) {
            Ok(b) => String::from_utf8(b).unwrap_or_default(),
            Err(e) => panic!("{file}: {e}"),
        };
        assert_eq!(got, expected, "golden file tests/golden/{file}");
    }

    fn pod(name: &str) -> ObjectReference {
        ObjectReference::new("Pod", "", "v1", "prod", name)
    }

    fn v1_item(name: &str, value: &str, selector: Option<LabelSelector>) -> MetricValueV1Beta1 {
        MetricValueV1Beta1 {
            described_object: pod(name),
            metric_name: "appmesh_requests_per_second".into(),
            timestamp: T,
            window_seconds: None,
            value: value.into(),
            selector,
        }
    }

    fn selector() -> LabelSelector {
        LabelSelector {
            match_labels: BTreeMap::from([("envoy_response_code".into(), "200".into())]),
            match_expressions: vec![LabelSelectorRequirement {
                key: "a".into(),
                operator: "In".into(),
                values: vec!["x".into(), "y".into()],
            }],
        }
    }

    #[test]
    fn timestamps() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (T.0, "2025-08-20T17:53:20Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (951_868_799, "2000-02-29T23:59:59Z"),
            (4_102_444_800, "2100-01-01T00:00:00Z"),
            (-1, "1969-12-31T23:59:59Z"),
            (1_709_251_199, "2024-02-29T23:59:59Z"),
        ];
        for (secs, want) in cases {
            assert_eq!(Timestamp(secs).to_string(), want);
            assert_eq!(parse_rfc3339_utc(want), Some(secs), "{want}");
        }
        assert_eq!(parse_rfc3339_utc("2025-08-20T17:53:20.123Z"), Some(T.0));
        assert_eq!(parse_rfc3339_utc("2025-08-20 17:53:20Z"), None);
        assert_eq!(Timestamp::from_prometheus_seconds(1_755_712_400.999), T);
        assert_eq!(
            Timestamp::from_system_time(
                UNIX_EPOCH + std::time::Duration::from_millis(1_755_712_400_500)
            ),
            T
        );
    }

    #[test]
    fn custom_v1beta1() {
        golden(
            &MetricValueListV1Beta1::new(vec![
                v1_item("jazz-5d8f7c9b6-2xk4p", "400m", None),
                v1_item("jazz-5d8f7c9b6-9qzvn", "1500k", None),
            ]),
            "custom_v1beta1_pods.json",
            include_str!("../tests/golden/custom_v1beta1_pods.json"),
        );
        golden(
            &MetricValueListV1Beta1::new(vec![v1_item(
                "jazz-5d8f7c9b6-2xk4p",
                "10",
                Some(selector()),
            )]),
            "custom_v1beta1_selector.json",
            include_str!("../tests/golden/custom_v1beta1_selector.json"),
        );
        golden(
            &MetricValueListV1Beta1::new(Vec::new()),
            "custom_v1beta1_empty.json",
            include_str!("../tests/golden/custom_v1beta1_empty.json"),
        );
        let deployment = MetricValueV1Beta1 {
            described_object: ObjectReference::new("Deployment", "apps", "v1", "prod", "jazz"),
            metric_name: "http_requests_per_second".into(),
            timestamp: T,
            window_seconds: Some(60),
            value: "20500m".into(),
            selector: None,
        };
        let node = MetricValueV1Beta1 {
            described_object: ObjectReference::new("Node", "", "v1", "", "ip-10-0-0-1"),
            metric_name: "node_load1".into(),
            timestamp: T,
            window_seconds: None,
            value: "-500m".into(),
            selector: None,
        };
        golden(
            &MetricValueListV1Beta1::new(vec![deployment, node]),
            "custom_v1beta1_objects.json",
            include_str!("../tests/golden/custom_v1beta1_objects.json"),
        );
    }

    #[test]
    fn custom_v1beta2() {
        golden(
            &MetricValueListV1Beta2::new(vec![
                v1_item("jazz-5d8f7c9b6-2xk4p", "400m", None).into(),
            ]),
            "custom_v1beta2_pods.json",
            include_str!("../tests/golden/custom_v1beta2_pods.json"),
        );
        let mut item: MetricValueV1Beta2 =
            v1_item("jazz-5d8f7c9b6-2xk4p", "16m", Some(selector())).into();
        item.window_seconds = Some(60);
        golden(
            &MetricValueListV1Beta2::new(vec![item]),
            "custom_v1beta2_selector_window.json",
            include_str!("../tests/golden/custom_v1beta2_selector_window.json"),
        );
        golden(
            &MetricValueListV1Beta2::new(Vec::new()),
            "custom_v1beta2_empty.json",
            include_str!("../tests/golden/custom_v1beta2_empty.json"),
        );
    }

    #[test]
    fn external_v1beta1() {
        let vector = ExternalMetricValue {
            metric_name: "queue_depth".into(),
            metric_labels: Some(BTreeMap::from([
                ("queue".into(), "orders".into()),
                ("__name__".into(), "rabbitmq_queue_messages".into()),
            ])),
            timestamp: T,
            window_seconds: None,
            value: "42".into(),
        };
        let scalar = ExternalMetricValue {
            metric_name: "queue_depth".into(),
            metric_labels: None,
            timestamp: T,
            window_seconds: Some(300),
            value: "1234567m".into(),
        };
        golden(
            &ExternalMetricValueList::new(vec![vector, scalar]),
            "external_v1beta1.json",
            include_str!("../tests/golden/external_v1beta1.json"),
        );
        golden(
            &ExternalMetricValueList::new(Vec::new()),
            "external_v1beta1_empty.json",
            include_str!("../tests/golden/external_v1beta1_empty.json"),
        );
    }

    #[test]
    fn discovery() {
        golden(
            &ApiResourceList::new(
                CUSTOM_V1BETA1,
                vec![
                    ApiResource::custom_metric("pods", "appmesh_requests_per_second", true),
                    ApiResource::custom_metric("namespaces", "appmesh_requests_per_second", false),
                    ApiResource::custom_metric(
                        "deployments.apps",
                        "http_requests_per_second",
                        true,
                    ),
                ],
            ),
            "discovery_custom_v1beta1.json",
            include_str!("../tests/golden/discovery_custom_v1beta1.json"),
        );
        golden(
            &ApiResourceList::new(CUSTOM_V1BETA2, Vec::new()),
            "discovery_custom_v1beta2_empty.json",
            include_str!("../tests/golden/discovery_custom_v1beta2_empty.json"),
        );
        golden(
            &ApiResourceList::new(
                EXTERNAL_V1BETA1,
                vec![ApiResource::external_metric("queue_depth", true)],
            ),
            "discovery_external_v1beta1.json",
            include_str!("../tests/golden/discovery_external_v1beta1.json"),
        );
        let custom = ApiGroup::entry(CUSTOM_METRICS_GROUP, &["v1beta2", "v1beta1"]);
        let external = ApiGroup::entry(EXTERNAL_METRICS_GROUP, &["v1beta1"]);
        golden(
            &ApiGroupList::new(vec![custom.clone(), external]),
            "api_group_list.json",
            include_str!("../tests/golden/api_group_list.json"),
        );
        golden(
            &custom.document(),
            "api_group_custom.json",
            include_str!("../tests/golden/api_group_custom.json"),
        );
    }

    #[test]
    fn statuses() {
        golden(
            &Status::metric_not_found("pods", "appmesh_requests_per_second"),
            "status_not_found.json",
            include_str!("../tests/golden/status_not_found.json"),
        );
        golden(
            &Status::metric_not_found_for("services", "http_requests_per_second", "jazz"),
            "status_not_found_for.json",
            include_str!("../tests/golden/status_not_found_for.json"),
        );
        golden(
            &Status::internal_error("unable to fetch metrics"),
            "status_internal_error.json",
            include_str!("../tests/golden/status_internal_error.json"),
        );
        golden(
            &Status::bad_request("invalid request path"),
            "status_bad_request.json",
            include_str!("../tests/golden/status_bad_request.json"),
        );
    }

    #[test]
    fn go_escaping() {
        let s = Status::bad_request("a<b>&c\u{2028}\"\n\u{1}é");
        let json = String::from_utf8(to_go_json(&s).unwrap_or_default()).unwrap_or_default();
        assert!(
            json.contains(r#""message":"a\u003cb\u003e\u0026c\u2028\"\n\u0001é""#),
            "{json}"
        );
        let labels = ExternalMetricValue {
            metric_name: "m".into(),
            metric_labels: Some(BTreeMap::from([("k<".into(), "v&".into())])),
            timestamp: T,
            window_seconds: None,
            value: "1".into(),
        };
        let json = String::from_utf8(to_go_json(&labels).unwrap_or_default()).unwrap_or_default();
        assert!(json.contains(r#"{"k\u003c":"v\u0026"}"#), "{json}");
    }

    #[test]
    fn round_trip() {
        let list = MetricValueListV1Beta1::new(vec![v1_item("p", "1", Some(selector()))]);
        let bytes = to_go_json(&list).unwrap_or_default();
        let back: MetricValueListV1Beta1 = serde_json::from_slice(&bytes).expect("parses");
        assert_eq!(back, list);
        let status: Status =
            serde_json::from_str(include_str!("../tests/golden/status_internal_error.json"))
                .expect("parses");
        assert_eq!(status, Status::internal_error("unable to fetch metrics"));
    }
}
