//! The requests a phase sends: a Prometheus query mix, remote write, or one big streamed
//! answer. Every request is built once; workers cycle through the list by request number,
//! so every target gets exactly the same sequence.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Uri};

use crate::remote_write::{self, EncodedWrite, Rng};

/// One prepared request. `uri` holds only the path and query; the Host header is added per
/// target.
#[derive(Debug, Clone)]
pub(crate) struct RequestTemplate {
    pub(crate) kind: &'static str,
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// A named list of requests.
#[derive(Debug, Clone)]
pub(crate) struct Workload {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) requests: Vec<RequestTemplate>,
}

impl Workload {
    pub(crate) fn request(&self, ticket: u64) -> &RequestTemplate {
        &self.requests[(ticket % self.requests.len() as u64) as usize]
    }
}

/// PromQL as dashboards, alerts and autoscalers send it.
pub(crate) const PROMQL: [&str; 8] = [
    r#"sum by (namespace) (rate(container_cpu_usage_seconds_total{container!="",container!="POD"}[5m]))"#,
    r#"histogram_quantile(0.99, sum by (le, service) (rate(http_request_duration_seconds_bucket{job="api",code=~"2.."}[5m])))"#,
    r#"up{job="kubernetes-pods"} == 0"#,
    r#"sum(kube_pod_container_status_restarts_total{namespace="payments"}) by (pod) > 3"#,
    r#"100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m])))"#,
    r#"topk(10, sum by (pod) (container_memory_working_set_bytes{namespace=~"checkout|search"}))"#,
    r#"sum(rate(http_requests_total{status=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))"#,
    r#"predict_linear(node_filesystem_avail_bytes{fstype!~"tmpfs|overlay"}[6h], 4 * 3600) < 0"#,
];

const SERIES_MATCHERS: [&str; 4] = [
    r#"up{job="kubernetes-pods"}"#,
    r#"kube_pod_info{namespace="payments"}"#,
    r#"container_memory_working_set_bytes{namespace="search",container!=""}"#,
    r#"{__name__=~"http_requests_total|http_request_duration_seconds_count",service="checkout"}"#,
];

/// 2026-01-01T00:00:00Z: query times are fixed so every run sends the same bytes.
const BASE_TIME: u64 = 1_767_225_600;
const USER_AGENT: &str = concat!("loadtest/", env!("CARGO_PKG_VERSION"));

/// Shares of the query mix, out of 20: instant GETs, range POSTs, series GETs.
const MIX: [(&str, usize); 3] = [("query", 12), ("query_range", 5), ("series", 3)];

/// `application/x-www-form-urlencoded`, as Go's `url.Values.Encode` writes it: unreserved
/// bytes as they are, space as `+`, everything else `%XX`.
pub(crate) fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3 / 2);
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            other => {
                out.push('%');
                out.push(char::from(b"0123456789ABCDEF"[usize::from(other >> 4)]));
                out.push(char::from(b"0123456789ABCDEF"[usize::from(other & 15)]));
            }
        }
    }
    out
}

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn uri(prefix: &str, path: &str, query: Option<&str>) -> Result<Uri, String> {
    let text = match query {
        Some(query) => format!("{prefix}{path}?{query}"),
        None => format!("{prefix}{path}"),
    };
    text.parse::<Uri>()
        .map_err(|e| format!("bad request target {text:?}: {e}"))
}

fn base_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
    headers
}

/// Prometheus HTTP API reads: instant queries by GET, range queries as form POSTs (as
/// Grafana sends them), and series look-ups with several `match[]`. `prefix` is the path
/// before `/api/v1`, e.g. `/workspaces/ws-…`.
pub(crate) fn query_mix(prefix: &str) -> Result<Workload, String> {
    let mut rng = Rng::new(42);
    let mut slots: Vec<&'static str> = MIX
        .iter()
        .flat_map(|(kind, share)| std::iter::repeat_n(*kind, *share))
        .collect();
    // A fixed shuffle, so kinds interleave instead of coming in runs.
    for i in (1..slots.len()).rev() {
        slots.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut requests = Vec::new();
    for round in 0..3 {
        for (slot, kind) in slots.iter().enumerate() {
            let n = round * slots.len() + slot;
            let promql = PROMQL[n % PROMQL.len()];
            let end = BASE_TIME + n as u64 * 15;
            let mut headers = base_headers();
            headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
            let request = match *kind {
                "query" => RequestTemplate {
                    kind,
                    method: Method::GET,
                    uri: uri(
                        prefix,
                        "/api/v1/query",
                        Some(&form(&[("query", promql), ("time", &format!("{end}.123"))])),
                    )?,
                    headers,
                    body: Bytes::new(),
                },
                "query_range" => {
                    headers.insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/x-www-form-urlencoded"),
                    );
                    let body = form(&[
                        ("query", promql),
                        ("start", &(end - 3600).to_string()),
                        ("end", &end.to_string()),
                        ("step", "30s"),
                    ]);
                    RequestTemplate {
                        kind,
                        method: Method::POST,
                        uri: uri(prefix, "/api/v1/query_range", None)?,
                        headers,
                        body: Bytes::from(body),
                    }
                }
                _ => {
                    let first = SERIES_MATCHERS[n % SERIES_MATCHERS.len()];
                    let second = SERIES_MATCHERS[(n + 1) % SERIES_MATCHERS.len()];
                    let query = form(&[
                        ("match[]", first),
                        ("match[]", second),
                        ("start", &(end - 86_400).to_string()),
                        ("end", &end.to_string()),
                    ]);
                    RequestTemplate {
                        kind: "series",
                        method: Method::GET,
                        uri: uri(prefix, "/api/v1/series", Some(&query))?,
                        headers,
                        body: Bytes::new(),
                    }
                }
            };
            requests.push(request);
        }
    }
    let share = |kind: &str| {
        100 * requests.iter().filter(|r| r.kind == kind).count() / requests.len().max(1)
    };
    let description = format!(
        "GET instant queries {} %, form POST range queries {} %, GET series {} %",
        share("query"),
        share("query_range"),
        share("series")
    );
    Ok(Workload {
        name: "query".into(),
        description,
        requests,
    })
}

/// Remote-write requests as Prometheus sends them, cycling through `distinct` bodies.
pub(crate) fn remote_write(
    prefix: &str,
    series: usize,
    samples: usize,
    target_bytes: Option<usize>,
    distinct: usize,
) -> Result<(Workload, EncodedWrite), String> {
    let mut requests = Vec::new();
    let mut first = None;
    for seed in 0..distinct.max(1) as u64 {
        let encoded = remote_write::body(series, samples, target_bytes, seed + 1)
            .map_err(|e| format!("cannot compress a remote-write body: {e}"))?;
        let mut headers = base_headers();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("snappy"));
        headers.insert(
            "x-prometheus-remote-write-version",
            HeaderValue::from_static("0.1.0"),
        );
        requests.push(RequestTemplate {
            kind: "remote_write",
            method: Method::POST,
            uri: uri(prefix, "/api/v1/remote_write", None)?,
            headers,
            body: encoded.body.clone(),
        });
        first.get_or_insert(encoded);
    }
    let first = first.ok_or("no remote-write body")?;
    let description = format!(
        "remote write, {} series x {} samples, {} KiB snappy ({} KiB protobuf)",
        first.series,
        first.samples / first.series.max(1),
        first.body.len() / 1024,
        first.uncompressed_bytes / 1024,
    );
    Ok((
        Workload {
            name: "remote_write".into(),
            description,
            requests,
        },
        first,
    ))
}

/// A range query whose answer is `bytes` long; the loadtest upstream streams it in chunks.
/// Other upstreams ignore the extra `loadtest_bytes` parameter.
pub(crate) fn stream(prefix: &str, bytes: u64) -> Result<Workload, String> {
    let query = form(&[
        ("query", PROMQL[0]),
        ("start", &(BASE_TIME - 86_400).to_string()),
        ("end", &BASE_TIME.to_string()),
        ("step", "15s"),
        ("loadtest_bytes", &bytes.to_string()),
    ]);
    let mut headers = base_headers();
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    Ok(Workload {
        name: "stream".into(),
        description: format!(
            "GET range query answered with {} MB, streamed",
            bytes / 1_000_000
        ),
        requests: vec![RequestTemplate {
            kind: "stream",
            method: Method::GET,
            uri: uri(prefix, "/api/v1/query_range", Some(&query))?,
            headers,
            body: Bytes::new(),
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_matches_go_url_values() {
        assert_eq!(
            form_encode(r#"up{job="a b"}[5m]"#),
            "up%7Bjob%3D%22a+b%22%7D%5B5m%5D"
        );
        assert_eq!(form_encode("match[]"), "match%5B%5D");
        assert_eq!(form_encode("é~"), "%C3%A9~");
    }

    #[test]
    fn query_mix_has_the_documented_shares_in_a_fixed_order() {
        let mix = query_mix("/workspaces/ws-1").expect("builds");
        assert_eq!(mix.requests.len(), 60);
        let count = |kind: &str| mix.requests.iter().filter(|r| r.kind == kind).count();
        assert_eq!(
            (count("query"), count("query_range"), count("series")),
            (36, 15, 9)
        );
        assert_eq!(
            mix.requests[0].uri.to_string(),
            query_mix("/workspaces/ws-1").expect("builds").requests[0]
                .uri
                .to_string()
        );
        let range = mix
            .requests
            .iter()
            .find(|r| r.kind == "query_range")
            .expect("a range query");
        assert_eq!(range.method, Method::POST);
        assert_eq!(range.uri.path(), "/workspaces/ws-1/api/v1/query_range");
        assert!(
            std::str::from_utf8(&range.body)
                .expect("ascii")
                .contains("step=30s")
        );
        let series = mix
            .requests
            .iter()
            .find(|r| r.kind == "series")
            .expect("a series call");
        assert_eq!(
            series
                .uri
                .query()
                .expect("query")
                .matches("match%5B%5D=")
                .count(),
            2
        );
        assert_eq!(mix.request(60).uri, mix.requests[0].uri);
    }

    #[test]
    fn remote_write_requests_carry_protocol_headers() {
        let (workload, first) = remote_write("", 20, 1, None, 2).expect("builds");
        assert_eq!(workload.requests.len(), 2);
        assert_eq!(first.series, 20);
        let request = &workload.requests[0];
        assert_eq!(request.headers["content-encoding"], "snappy");
        assert_eq!(
            request.headers["x-prometheus-remote-write-version"],
            "0.1.0"
        );
        assert_ne!(workload.requests[0].body, workload.requests[1].body);
    }

    #[test]
    fn stream_asks_for_its_size() {
        let workload = stream("", 1234).expect("builds");
        assert!(
            workload.requests[0]
                .uri
                .query()
                .expect("query")
                .ends_with("loadtest_bytes=1234")
        );
    }
}
