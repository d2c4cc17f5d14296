//! The Prometheus HTTP API as the shim uses it: building `/api/v1/query` and
//! `/api/v1/series` requests, and parsing their answers. Pure functions; the HTTP client
//! lives elsewhere.
//!
//! Requests are encoded as Go's `url.Values.Encode` does (keys sorted, `+` for space,
//! `%XX` for everything but `A-Za-z0-9-_.~`), so the proxy sees the same bytes as from
//! prometheus-adapter. Unlike prometheus-adapter, a query always carries a real
//! `timeout=` value, and a request whose URL would exceed [`POST_THRESHOLD`] bytes is sent
//! as a `POST` form instead (long `=~` alternations otherwise hit 414).
//!
//! Responses are accepted with HTTP 2xx, 400, 422 and 503 (the codes Prometheus uses for
//! API errors, whose bodies carry `errorType`/`error`); any other code is
//! `unknown response code N`. Series responses are parsed from a reader, keeping only each
//! series' name and label *names*, de-duplicated, so the raw body is never held.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::naming::Series;

/// URLs longer than this many bytes are sent as a `POST` form.
pub const POST_THRESHOLD: usize = 8 * 1024;

/// The `Content-Type` of a form body.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// HTTP method for Prometheus API calls (`--prometheus-verb`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verb {
    /// Parameters in the query string (the default).
    #[default]
    Get,
    /// Parameters in a form body.
    Post,
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Get => "GET",
            Self::Post => "POST",
        })
    }
}

impl std::str::FromStr for Verb {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_uppercase().as_str() {
            "GET" => Ok(Self::Get),
            "POST" => Ok(Self::Post),
            _ => Err(format!("{s:?} is not GET or POST")),
        }
    }
}

/// A request ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRequest {
    /// GET or POST.
    pub method: Verb,
    /// The full URL (with the query string for GET).
    pub url: String,
    /// The form body for POST (send with [`FORM_CONTENT_TYPE`]).
    pub body: Option<String>,
}

/// Go's `url.QueryEscape`.
#[must_use]
pub fn query_escape(s: &str) -> String {
    use fmt::Write as _;
    let mut out = String::with_capacity(s.len() + s.len() / 2);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// Go's `url.Values.Encode`: pairs sorted by key (stably), `key=value` joined by `&`.
#[must_use]
pub fn encode_form(pairs: &[(&str, &str)]) -> String {
    let mut sorted: Vec<&(&str, &str)> = pairs.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    sorted
        .iter()
        .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Milliseconds since the Unix epoch (Prometheus' `model.Time`), truncated.
#[must_use]
pub fn unix_millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// A Prometheus time parameter: seconds with up to three decimals, trailing zeros dropped
/// (`1755712400.173`, `1755712400.1`, `1755712400`), as `model.Time.String()` writes it.
#[must_use]
pub fn format_time(millis: i64) -> String {
    let sign = if millis < 0 { "-" } else { "" };
    let abs = millis.unsigned_abs();
    let (secs, frac) = (abs / 1000, abs % 1000);
    if frac == 0 {
        return format!("{sign}{secs}");
    }
    let frac = format!("{frac:03}");
    format!("{sign}{secs}.{}", frac.trim_end_matches('0'))
}

/// A Prometheus duration (`model.Duration.String()`): `0s`, `30s`, `1m30s`, `1s500ms`,
/// `1d`; years and weeks only when they divide the duration exactly.
#[must_use]
pub fn format_duration(d: Duration) -> String {
    let mut ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return "0s".to_owned();
    }
    const DAY: u64 = 24 * 3_600_000;
    let mut out = String::new();
    for (unit, size, only_exact) in [
        ("y", 365 * DAY, true),
        ("w", 7 * DAY, true),
        ("d", DAY, false),
        ("h", 3_600_000, false),
        ("m", 60_000, false),
        ("s", 1000, false),
        ("ms", 1, false),
    ] {
        if only_exact && ms % size != 0 {
            continue;
        }
        let n = ms / size;
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
            ms -= n * size;
        }
    }
    out
}

/// `base` (whose path is kept, e.g. `http://localhost:8080/workspaces/ws-1`) joined with an
/// API path, cleaned like Go's `path.Join` (no doubled or trailing slashes).
#[must_use]
pub fn api_url(base: &str, api_path: &str) -> String {
    let base = base.split(['?', '#']).next().unwrap_or(base);
    let (origin, path) = match base.find("://") {
        Some(i) => {
            let after = &base[i + 3..];
            let split = after.find('/').map_or(base.len(), |j| i + 3 + j);
            base.split_at(split)
        }
        None => ("", base),
    };
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/').chain(api_path.split('/')) {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    format!("{origin}/{}", segments.join("/"))
}

fn request(base: &str, api_path: &str, params: &str, verb: Verb) -> ApiRequest {
    let url = api_url(base, api_path);
    let get_len = url.len() + 1 + params.len();
    if verb == Verb::Post || get_len > POST_THRESHOLD {
        ApiRequest {
            method: Verb::Post,
            url,
            body: Some(params.to_owned()),
        }
    } else {
        ApiRequest {
            method: Verb::Get,
            url: format!("{url}?{params}"),
            body: None,
        }
    }
}

/// An instant query: `query`, `time` and a real `timeout`, as GET unless `verb` is POST or
/// the URL would be longer than [`POST_THRESHOLD`].
#[must_use]
pub fn instant_query(
    base: &str,
    query: &str,
    time_millis: i64,
    timeout: Duration,
    verb: Verb,
) -> ApiRequest {
    let time = format_time(time_millis);
    let timeout = format_duration(timeout);
    let params = encode_form(&[("query", query), ("time", &time), ("timeout", &timeout)]);
    request(base, "/api/v1/query", &params, verb)
}

/// A series call: `match[]` and `start` (no `end`, as prometheus-adapter sends it).
#[must_use]
pub fn series_query(base: &str, selector: &str, start_millis: i64, verb: Verb) -> ApiRequest {
    let start = format_time(start_millis);
    let params = encode_form(&[("match[]", selector), ("start", &start)]);
    request(base, "/api/v1/series", &params, verb)
}

// === responses ===

/// Why a Prometheus answer is unusable. Messages are one line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PromError {
    /// An HTTP status the API does not use for its JSON answers.
    #[error("bad_response: unknown response code {0}")]
    UnexpectedStatus(u16),
    /// An API error answer (`status: error`).
    #[error("{error_type}: {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// `bad_data`, `execution`, `timeout`, `unavailable`, …
        error_type: String,
        /// Prometheus' message.
        message: String,
    },
    /// The body is not the expected JSON.
    #[error("bad_response: {0}")]
    Decode(String),
    /// A sample value that is not a number.
    #[error("bad_response: invalid sample value {0:?}")]
    BadValue(String),
    /// A success answer without `data` (`data: null`).
    #[error("bad_response: no data in response")]
    NoData,
    /// The query did not return an instant vector.
    #[error("bad_response: expected a vector result, got {0}")]
    NotVector(&'static str),
}

fn accepted_status(status: u16) -> bool {
    (200..300).contains(&status) || matches!(status, 400 | 422 | 503)
}

fn check_envelope(
    http_status: u16,
    status: &str,
    error_type: Option<String>,
    error: Option<String>,
) -> Result<(), PromError> {
    let is_error = status == "error";
    if is_error {
        return Err(PromError::Api {
            status: http_status,
            error_type: error_type.unwrap_or_else(|| "error".into()),
            message: error.unwrap_or_default(),
        });
    }
    if !(200..300).contains(&http_status) {
        return Err(PromError::Decode(format!(
            "inconsistent body for response code {http_status}"
        )));
    }
    if status != "success" {
        return Err(PromError::Decode(format!("unknown status {status:?}")));
    }
    Ok(())
}

/// One instant-vector sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// All labels, `__name__` included if present.
    pub labels: BTreeMap<String, String>,
    /// Sample time in seconds.
    pub timestamp: f64,
    /// The value; may be NaN or ±Inf.
    pub value: f64,
}

/// The result of an instant query.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryResult {
    /// `vector` (samples carrying a native histogram instead of a value are left out).
    Vector(Vec<Sample>),
    /// `scalar`.
    Scalar {
        /// Time in seconds.
        timestamp: f64,
        /// The value.
        value: f64,
    },
    /// `matrix`, with its number of series (never usable for metrics).
    Matrix(usize),
    /// `string`.
    String(String),
}

impl QueryResult {
    /// The result type's name.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Vector(_) => "vector",
            Self::Scalar { .. } => "scalar",
            Self::Matrix(_) => "matrix",
            Self::String(_) => "string",
        }
    }

    /// The samples of a vector result.
    ///
    /// # Errors
    /// Any other result type (custom metrics accept only vectors).
    pub fn into_vector(self) -> Result<Vec<Sample>, PromError> {
        match self {
            Self::Vector(v) => Ok(v),
            other => Err(PromError::NotVector(other.type_name())),
        }
    }
}

/// A parsed instant-query answer.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResponse {
    /// The result.
    pub result: QueryResult,
    /// Prometheus' warnings, if any.
    pub warnings: Vec<String>,
}

/// A Prometheus sample value: a decimal, `NaN`, `+Inf` or `-Inf` (like Go's
/// `strconv.ParseFloat`, the special names are accepted in any case, and `Infinity` too).
///
/// # Errors
/// Anything else.
pub fn parse_sample_value(s: &str) -> Result<f64, PromError> {
    let (negative, unsigned) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if unsigned.eq_ignore_ascii_case("inf") || unsigned.eq_ignore_ascii_case("infinity") {
        return Ok(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if s.eq_ignore_ascii_case("nan") {
        return Ok(f64::NAN);
    }
    let numeric = !unsigned.is_empty()
        && unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    match s.parse::<f64>() {
        Ok(v) if numeric => Ok(v),
        _ => Err(PromError::BadValue(s.to_owned())),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryEnvelope {
    #[serde(default)]
    status: String,
    #[serde(default)]
    data: Option<RawQueryData>,
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    warnings: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum RawQueryData {
    Vector(Vec<RawSample>),
    Scalar((f64, String)),
    Matrix(Vec<IgnoredAny>),
    String((f64, String)),
}

#[derive(Deserialize)]
struct RawSample {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    value: Option<(f64, String)>,
}

/// Parses an `/api/v1/query` answer.
///
/// # Errors
/// An unexpected HTTP status, an API error, malformed JSON, a non-numeric sample, or no
/// data.
pub fn parse_query_response(http_status: u16, body: &[u8]) -> Result<QueryResponse, PromError> {
    if !accepted_status(http_status) {
        return Err(PromError::UnexpectedStatus(http_status));
    }
    let env: QueryEnvelope =
        serde_json::from_slice(body).map_err(|e| PromError::Decode(e.to_string()))?;
    check_envelope(http_status, &env.status, env.error_type, env.error)?;
    let result = match env.data.ok_or(PromError::NoData)? {
        RawQueryData::Vector(samples) => QueryResult::Vector(
            samples
                .into_iter()
                .filter_map(|s| s.value.map(|v| (s.metric, v)))
                .map(|(labels, (timestamp, v))| {
                    Ok(Sample {
                        labels,
                        timestamp,
                        value: parse_sample_value(&v)?,
                    })
                })
                .collect::<Result<_, PromError>>()?,
        ),
        RawQueryData::Scalar((timestamp, v)) => QueryResult::Scalar {
            timestamp,
            value: parse_sample_value(&v)?,
        },
        RawQueryData::Matrix(series) => QueryResult::Matrix(series.len()),
        RawQueryData::String((_, s)) => QueryResult::String(s),
    };
    Ok(QueryResponse {
        result,
        warnings: env.warnings.unwrap_or_default(),
    })
}

/// Values keyed by the value of `label` (the resource label). Samples without the label
/// are skipped; on duplicates the last sample wins, as in prometheus-adapter.
#[must_use]
pub fn values_by_label(samples: &[Sample], label: &str) -> BTreeMap<String, f64> {
    samples
        .iter()
        .filter_map(|s| s.labels.get(label).map(|name| (name.clone(), s.value)))
        .collect()
}

/// The values for `names`, in the order of `names`; names without a value are left out.
#[must_use]
pub fn match_values_to_names(
    values: &BTreeMap<String, f64>,
    names: &[String],
) -> Vec<(String, f64)> {
    names
        .iter()
        .filter_map(|n| values.get(n).map(|v| (n.clone(), *v)))
        .collect()
}

// === series ===

/// The distinct (name, label names) pairs of a series answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeriesSet(pub BTreeSet<Series>);

impl<'de> Deserialize<'de> for SeriesSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SetVisitor;
        impl<'de> Visitor<'de> for SetVisitor {
            type Value = SeriesSet;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of label sets")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SeriesSet, A::Error> {
                let mut set = BTreeSet::new();
                while let Some(SeriesEntry(s)) = seq.next_element()? {
                    set.insert(s);
                }
                Ok(SeriesSet(set))
            }
        }
        d.deserialize_seq(SetVisitor)
    }
}

struct SeriesEntry(Series);

impl<'de> Deserialize<'de> for SeriesEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = SeriesEntry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a label set")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SeriesEntry, A::Error> {
                let mut name = None;
                let mut labels = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "__name__" {
                        name = Some(map.next_value::<String>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                        labels.push(key);
                    }
                }
                let name = name.ok_or_else(|| de::Error::missing_field("__name__"))?;
                labels.sort();
                labels.dedup();
                Ok(SeriesEntry(Series { name, labels }))
            }
        }
        d.deserialize_map(EntryVisitor)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SeriesEnvelope {
    #[serde(default)]
    status: String,
    #[serde(default)]
    data: Option<SeriesSet>,
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// Parses an `/api/v1/series` answer from a reader, keeping only distinct
/// (name, label names) pairs.
///
/// # Errors
/// An unexpected HTTP status, an API error, malformed JSON, a series without `__name__`,
/// or `data: null` (prometheus-adapter treats it as a failed call too).
pub fn parse_series_response<R: io::Read>(
    http_status: u16,
    body: R,
) -> Result<SeriesSet, PromError> {
    if !accepted_status(http_status) {
        return Err(PromError::UnexpectedStatus(http_status));
    }
    let env: SeriesEnvelope = serde_json::from_reader(io::BufReader::new(body))
        .map_err(|e| PromError::Decode(e.to_string()))?;
    check_envelope(http_status, &env.status, env.error_type, env.error)?;
    env.data.ok_or(PromError::NoData)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "http://localhost:8080/workspaces/ws-0123abcd";
    const APPMESH_QUERY: &str = r#"sum(rate(envoy_cluster_upstream_rq{namespace="prod",kubernetes_pod_name=~"jazz-5d8f7c9b6-2xk4p|jazz-5d8f7c9b6-9qzvn|jazz-5d8f7c9b6-tm7rc"}[1m])) by (kubernetes_pod_name)"#;

    #[test]
    fn walkthrough_urls() {
        // Anchor §12.B and §12.D.5, with a real timeout instead of the adapter's empty one.
        let series = series_query(
            BASE,
            r#"envoy_cluster_upstream_rq {namespace!="",kubernetes_pod_name!=""}"#,
            1_755_712_340_123,
            Verb::Get,
        );
        assert_eq!(
            series.url,
            "http://localhost:8080/workspaces/ws-0123abcd/api/v1/series?match%5B%5D=envoy_cluster_upstream_rq+%7Bnamespace%21%3D%22%22%2Ckubernetes_pod_name%21%3D%22%22%7D&start=1755712340.123"
        );
        let query = instant_query(
            BASE,
            APPMESH_QUERY,
            1_755_712_400_173,
            Duration::from_secs(30),
            Verb::Get,
        );
        assert_eq!(query.method, Verb::Get);
        assert_eq!(query.body, None);
        assert_eq!(
            query.url,
            "http://localhost:8080/workspaces/ws-0123abcd/api/v1/query?query=sum%28rate%28envoy_cluster_upstream_rq%7Bnamespace%3D%22prod%22%2Ckubernetes_pod_name%3D~%22jazz-5d8f7c9b6-2xk4p%7Cjazz-5d8f7c9b6-9qzvn%7Cjazz-5d8f7c9b6-tm7rc%22%7D%5B1m%5D%29%29+by+%28kubernetes_pod_name%29&time=1755712400.173&timeout=30s"
        );
        let post = instant_query(
            BASE,
            "up",
            1_755_712_400_000,
            Duration::from_millis(1500),
            Verb::Post,
        );
        assert_eq!(
            post,
            ApiRequest {
                method: Verb::Post,
                url: format!("{BASE}/api/v1/query"),
                body: Some("query=up&time=1755712400&timeout=1s500ms".into()),
            }
        );
    }

    #[test]
    fn long_queries_switch_to_post() {
        let names: Vec<String> = (0..400).map(|i| format!("web-5d8f7c9b6-{i:05}")).collect();
        let q = format!("sum(rate(x{{pod=~\"{}\"}}[1m]))", names.join("|"));
        let req = instant_query(BASE, &q, 0, Duration::from_secs(10), Verb::Get);
        assert_eq!(req.method, Verb::Post);
        assert_eq!(req.url, format!("{BASE}/api/v1/query"));
        let body = req.body.expect("form body");
        assert!(body.starts_with("query=sum%28rate%28x%7Bpod%3D~%22web-5d8f7c9b6-00000%7C"));
        assert!(body.ends_with("&time=0&timeout=10s"));
        // Just under the threshold stays GET.
        let short = instant_query(BASE, "up", 0, Duration::from_secs(10), Verb::Get);
        assert_eq!(short.method, Verb::Get);
        assert!(short.url.len() <= POST_THRESHOLD);
    }

    #[test]
    fn encoding() {
        assert_eq!(query_escape("a b+c/d~e_f.g-h"), "a+b%2Bc%2Fd~e_f.g-h");
        assert_eq!(query_escape("é"), "%C3%A9");
        assert_eq!(
            encode_form(&[("b", "2"), ("a", "1"), ("b", "1")]),
            "a=1&b=2&b=1"
        );
        assert_eq!(
            encode_form(&[("timeout", ""), ("query", "up")]),
            "query=up&timeout="
        );
    }

    #[test]
    fn times_and_durations() {
        assert_eq!(format_time(1_755_712_400_173), "1755712400.173");
        assert_eq!(format_time(1_755_712_400_100), "1755712400.1");
        assert_eq!(format_time(1_755_712_400_000), "1755712400");
        assert_eq!(format_time(1_755_712_400_010), "1755712400.01");
        assert_eq!(format_time(0), "0");
        assert_eq!(format_time(-1500), "-1.5");
        assert_eq!(
            unix_millis(UNIX_EPOCH + Duration::from_micros(1_755_712_400_173_999)),
            1_755_712_400_173
        );
        let cases = [
            (0, "0s"),
            (1, "1ms"),
            (1500, "1s500ms"),
            (30_000, "30s"),
            (90_000, "1m30s"),
            (3_600_000, "1h"),
            (86_400_000, "1d"),
            (90 * 86_400_000, "90d"),
            (14 * 86_400_000, "2w"),
            (365 * 86_400_000, "1y"),
            (8 * 86_400_000 + 1, "8d1ms"),
        ];
        for (ms, want) in cases {
            assert_eq!(format_duration(Duration::from_millis(ms)), want, "{ms}");
        }
    }

    #[test]
    fn url_joining() {
        let cases = [
            (
                "http://localhost:8080/workspaces/ws-1",
                "http://localhost:8080/workspaces/ws-1/api/v1/query",
            ),
            (
                "http://localhost:8080/workspaces/ws-1/",
                "http://localhost:8080/workspaces/ws-1/api/v1/query",
            ),
            (
                "http://localhost:8080",
                "http://localhost:8080/api/v1/query",
            ),
            (
                "http://localhost:8080/",
                "http://localhost:8080/api/v1/query",
            ),
            (
                "https://prom.example//a//b/",
                "https://prom.example/a/b/api/v1/query",
            ),
            ("http://h/a/../b?x=1", "http://h/b/api/v1/query"),
        ];
        for (base, want) in cases {
            assert_eq!(api_url(base, "/api/v1/query"), want, "{base}");
        }
    }

    #[test]
    fn vector_answers() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"kubernetes_pod_name":"jazz-1"},"value":[1755712400.173,"0.4"]},
            {"metric":{"kubernetes_pod_name":"jazz-2"},"value":[1755712400.173,"NaN"]},
            {"metric":{"kubernetes_pod_name":"jazz-3"},"value":[1755712400.173,"+Inf"]},
            {"metric":{"kubernetes_pod_name":"jazz-4"},"value":[1755712400.173,"-Inf"]},
            {"metric":{"le":"0.5"},"value":[1755712400.173,"7"]},
            {"metric":{"kubernetes_pod_name":"jazz-1"},"value":[1755712400.173,"1e3"]},
            {"metric":{"kubernetes_pod_name":"jazz-5"},"histogram":[1755712400.173,{"count":"1"}]}
        ]}}"#;
        let resp = parse_query_response(200, body).expect("parses");
        let samples = resp.result.into_vector().expect("vector");
        assert_eq!(samples.len(), 6, "the histogram sample is left out");
        assert!(samples[1].value.is_nan());
        assert_eq!(samples[2].value, f64::INFINITY);
        assert_eq!(samples[3].value, f64::NEG_INFINITY);
        let by_pod = values_by_label(&samples, "kubernetes_pod_name");
        assert_eq!(by_pod.len(), 4);
        assert_eq!(by_pod["jazz-1"], 1000.0, "the last duplicate wins");
        let names: Vec<String> = ["jazz-4", "jazz-9", "jazz-1"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let matched = match_values_to_names(&by_pod, &names);
        assert_eq!(
            matched.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["jazz-4", "jazz-1"],
            "in the order of the names, missing ones omitted"
        );

        let empty = parse_query_response(
            200,
            br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
        )
        .expect("parses");
        assert_eq!(empty.result, QueryResult::Vector(Vec::new()));
    }

    #[test]
    fn other_answers() {
        let scalar = parse_query_response(
            200,
            br#"{"status":"success","data":{"resultType":"scalar","result":[1755712400.1,"5"]}}"#,
        )
        .expect("scalar");
        assert_eq!(
            scalar.result,
            QueryResult::Scalar {
                timestamp: 1_755_712_400.1,
                value: 5.0
            }
        );
        assert_eq!(
            scalar.clone().result.into_vector(),
            Err(PromError::NotVector("scalar"))
        );
        let matrix = parse_query_response(
            200,
            br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],[2,"2"]]}]},"warnings":["w"]}"#,
        )
        .expect("matrix");
        assert_eq!(matrix.result, QueryResult::Matrix(1));
        assert_eq!(matrix.warnings, vec!["w".to_owned()]);
        let string = parse_query_response(
            200,
            br#"{"status":"success","data":{"resultType":"string","result":[1,"hi"]}}"#,
        )
        .expect("string");
        assert_eq!(string.result, QueryResult::String("hi".into()));
    }

    #[test]
    fn error_answers() {
        let bad_data = parse_query_response(
            400,
            br#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected"}"#,
        );
        assert_eq!(
            bad_data.map_err(|e| e.to_string()),
            Err("bad_data: 1:5: parse error: unexpected".into())
        );
        for (code, etype) in [(422, "execution"), (503, "unavailable"), (200, "timeout")] {
            let body = format!(r#"{{"status":"error","errorType":"{etype}","error":"x"}}"#);
            assert!(matches!(
                parse_query_response(code, body.as_bytes()),
                Err(PromError::Api { status, .. }) if status == code
            ));
        }
        for code in [414, 429, 500, 502, 404] {
            assert_eq!(
                parse_query_response(code, b"<html>"),
                Err(PromError::UnexpectedStatus(code))
            );
        }
        assert!(matches!(
            parse_query_response(200, b"not json"),
            Err(PromError::Decode(_))
        ));
        assert!(matches!(
            parse_query_response(
                400,
                br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#
            ),
            Err(PromError::Decode(_))
        ));
        assert_eq!(
            parse_query_response(200, br#"{"status":"success","data":null}"#),
            Err(PromError::NoData)
        );
        assert_eq!(
            parse_query_response(200, br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"abc"]}]}}"#),
            Err(PromError::BadValue("abc".into()))
        );
        for (ok, want) in [
            ("0", 0.0),
            ("-1.5", -1.5),
            ("1e+06", 1e6),
            (".5", 0.5),
            ("Inf", f64::INFINITY),
            ("-infinity", f64::NEG_INFINITY),
        ] {
            assert_eq!(parse_sample_value(ok), Ok(want), "{ok}");
        }
        assert!(parse_sample_value("nan").is_ok_and(f64::is_nan));
        for bad in ["", "-", "1,5", "0x10", "abc", "+NaN", "e5", "1e", "--1"] {
            assert!(parse_sample_value(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn series_answers() {
        let body = br#"{"status":"success","data":[
            {"__name__":"envoy_cluster_upstream_rq","namespace":"prod","kubernetes_pod_name":"jazz-1","envoy_response_code":"200"},
            {"__name__":"envoy_cluster_upstream_rq","namespace":"prod","kubernetes_pod_name":"jazz-2","envoy_response_code":"503"},
            {"__name__":"http_requests_total","pod":"web-1","namespace":"prod"}
        ]}"#;
        let set = parse_series_response(200, &body[..]).expect("parses");
        assert_eq!(
            set.0.into_iter().collect::<Vec<_>>(),
            vec![
                Series::new(
                    "envoy_cluster_upstream_rq",
                    &["envoy_response_code", "kubernetes_pod_name", "namespace"]
                ),
                Series::new("http_requests_total", &["namespace", "pod"]),
            ],
            "label values are dropped and identical shapes collapse"
        );
        assert_eq!(
            parse_series_response(200, &br#"{"status":"success","data":[]}"#[..]),
            Ok(SeriesSet::default())
        );
        assert_eq!(
            parse_series_response(200, &br#"{"status":"success","data":null}"#[..]),
            Err(PromError::NoData)
        );
        assert!(matches!(
            parse_series_response(200, &br#"{"status":"success","data":[{"job":"x"}]}"#[..]),
            Err(PromError::Decode(_))
        ));
        assert!(matches!(
            parse_series_response(
                422,
                &br#"{"status":"error","errorType":"execution","error":"too many series"}"#[..]
            ),
            Err(PromError::Api { .. })
        ));
        assert_eq!(
            parse_series_response(429, &b""[..]),
            Err(PromError::UnexpectedStatus(429))
        );
    }

    #[test]
    fn verbs() {
        assert_eq!("post".parse::<Verb>(), Ok(Verb::Post));
        assert_eq!("GET".parse::<Verb>(), Ok(Verb::Get));
        assert!("PUT".parse::<Verb>().is_err());
        assert_eq!(Verb::Post.to_string(), "POST");
    }
}
