//! Sends [`ApiRequest`]s to Prometheus (normally the `sigv4-proxy` sidecar) and parses the
//! answers.
//!
//! Query answers are small and read whole (with a cap); series answers can be enormous on
//! big clusters (the root of prometheus-adapter's memory complaints), so they are parsed
//! from the stream on a blocking thread and only the distinct (name, label names) pairs are
//! kept.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::TryStreamExt as _;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Uri};
use http_body_util::{BodyExt as _, BodyStream, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::prometheus::{
    ApiRequest, FORM_CONTENT_TYPE, PromError, QueryResponse, SeriesSet, Verb, instant_query,
    parse_query_response, parse_series_response, series_query, unix_millis,
};

/// The largest instant-query answer read (a vector for a few thousand objects is far
/// smaller).
const MAX_QUERY_BODY: usize = 64 * 1024 * 1024;

/// Why a call to Prometheus failed. Kinds are metric label values (`adapter_shim_prometheus_errors_total{kind}`).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Connecting or sending failed.
    #[error("request failed: {0}")]
    Transport(String),
    /// No complete answer within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The answer was larger than the cap.
    #[error("answer larger than {0} bytes")]
    TooLarge(usize),
    /// Prometheus answered, but not with usable data.
    #[error(transparent)]
    Prometheus(#[from] PromError),
}

impl FetchError {
    /// A short, stable name for metrics and logs.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Transport(_) => "transport",
            Self::Timeout(_) => "timeout",
            Self::TooLarge(_) => "too_large",
            Self::Prometheus(PromError::Api { .. }) => "api_error",
            Self::Prometheus(PromError::UnexpectedStatus(_)) => "http_status",
            Self::Prometheus(PromError::NotVector(_)) => "not_vector",
            Self::Prometheus(_) => "bad_response",
        }
    }
}

/// How to reach Prometheus.
#[derive(Debug, Clone)]
pub struct PromSettings {
    /// `--prometheus-url`; its path is kept (`http://localhost:8080/workspaces/ws-1`).
    pub base_url: String,
    /// `--prometheus-verb`.
    pub verb: Verb,
    /// `--prometheus-header` pairs, sent on every call.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Deadline of an instant query, also sent as its `timeout=` parameter.
    pub query_timeout: Duration,
    /// Deadline of a series call (discovery).
    pub series_timeout: Duration,
}

/// A pooled HTTP(S) client for Prometheus' API.
#[derive(Clone, Debug)]
pub struct PromClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    settings: Arc<PromSettings>,
}

impl PromClient {
    /// Builds the client. HTTPS uses the system roots (compiled-in Mozilla roots when the
    /// image has none).
    ///
    /// # Errors
    /// The TLS provider refuses the default protocol versions (it does not).
    pub fn new(settings: PromSettings) -> Result<Self, rustls::Error> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        if roots.is_empty() {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(32)
            .pool_timer(TokioTimer::new())
            .build(connector);
        Ok(Self {
            client,
            settings: Arc::new(settings),
        })
    }

    /// The settings this client was built with.
    #[must_use]
    pub fn settings(&self) -> &PromSettings {
        &self.settings
    }

    /// Runs an instant query at `now`.
    ///
    /// # Errors
    /// Transport failures, the timeout, or an unusable answer.
    pub async fn query(&self, promql: &str, now: SystemTime) -> Result<QueryResponse, FetchError> {
        let s = &self.settings;
        let request = instant_query(
            &s.base_url,
            promql,
            unix_millis(now),
            s.query_timeout,
            s.verb,
        );
        let timeout = s.query_timeout;
        let call = async {
            let response = self.send(&request).await?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_QUERY_BODY)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        FetchError::TooLarge(MAX_QUERY_BODY)
                    } else {
                        FetchError::Transport(e.to_string())
                    }
                })?
                .to_bytes();
            Ok(parse_query_response(status, &body)?)
        };
        tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| FetchError::Timeout(timeout))?
    }

    /// Lists the distinct series matching `selector` since `start`.
    ///
    /// # Errors
    /// Transport failures, the timeout, or an unusable answer.
    pub async fn series(&self, selector: &str, start: SystemTime) -> Result<SeriesSet, FetchError> {
        let s = &self.settings;
        let request = series_query(&s.base_url, selector, unix_millis(start), s.verb);
        let timeout = s.series_timeout;
        let call = async {
            let response = self.send(&request).await?;
            let status = response.status().as_u16();
            let stream = BodyStream::new(response.into_body())
                .try_filter_map(|frame| std::future::ready(Ok(frame.into_data().ok())))
                .map_err(std::io::Error::other);
            let reader = SyncIoBridge::new(StreamReader::new(stream));
            tokio::task::spawn_blocking(move || parse_series_response(status, reader))
                .await
                .map_err(|e| FetchError::Transport(format!("series parser stopped: {e}")))?
                .map_err(FetchError::from)
        };
        tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| FetchError::Timeout(timeout))?
    }

    async fn send(
        &self,
        request: &ApiRequest,
    ) -> Result<http::Response<hyper::body::Incoming>, FetchError> {
        let uri: Uri = request
            .url
            .parse()
            .map_err(|e| FetchError::Transport(format!("bad URL: {e}")))?;
        let mut builder = Request::builder().uri(uri);
        let body = match (&request.method, &request.body) {
            (Verb::Post, Some(form)) => {
                builder = builder
                    .method(Method::POST)
                    .header(CONTENT_TYPE, FORM_CONTENT_TYPE);
                Full::new(Bytes::from(form.clone()))
            }
            _ => {
                builder = builder.method(Method::GET);
                Full::new(Bytes::new())
            }
        };
        let mut req = builder
            .body(body)
            .map_err(|e| FetchError::Transport(e.to_string()))?;
        append_headers(req.headers_mut(), &self.settings.headers);
        self.client
            .request(req)
            .await
            .map_err(|e| FetchError::Transport(error_chain(&e)))
    }
}

fn append_headers(map: &mut HeaderMap, headers: &[(HeaderName, HeaderValue)]) {
    for (name, value) in headers {
        map.append(name.clone(), value.clone());
    }
}

/// The error and its sources on one line (hyper's top-level message alone is vague).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Parses a `--prometheus-header` value `Name=value` (or `Name: value`).
///
/// # Errors
/// No separator, or a name/value HTTP does not allow.
pub fn parse_header(s: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = s
        .split_once('=')
        .or_else(|| s.split_once(':'))
        .ok_or_else(|| format!("{s:?} is not NAME=VALUE"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("{:?} is not a valid header name", name.trim()))?;
    let value = HeaderValue::from_str(value.trim())
        .map_err(|_| format!("the value for {name} is not a valid header value"))?;
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::sync::Mutex;

    use hyper::body::Incoming;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    use tokio::net::TcpListener;

    type Seen = Arc<Mutex<Vec<(String, String, Option<String>, String)>>>;

    /// A tiny HTTP server answering every request with `answer`, recording
    /// (method, path+query, content-type, body).
    async fn serve(answer: &'static str, delay: Duration) -> (String, Seen) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen: Seen = Arc::default();
        let seen2 = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let seen = seen2.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let seen = seen.clone();
                        async move {
                            let method = req.method().to_string();
                            let uri = req.uri().to_string();
                            let ct = req
                                .headers()
                                .get(CONTENT_TYPE)
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_owned);
                            let tenant = req
                                .headers()
                                .get("x-scope-orgid")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_owned();
                            let body = req.into_body().collect().await.expect("body").to_bytes();
                            seen.lock().expect("lock").push((
                                method,
                                uri,
                                ct,
                                format!("{}|{tenant}", String::from_utf8_lossy(&body)),
                            ));
                            tokio::time::sleep(delay).await;
                            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(answer))))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        (format!("http://{addr}/workspaces/ws-1"), seen)
    }

    fn settings(base: String, verb: Verb) -> PromSettings {
        PromSettings {
            base_url: base,
            verb,
            headers: vec![parse_header("X-Scope-OrgID=tenant-a").expect("header")],
            query_timeout: Duration::from_secs(5),
            series_timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn query_keeps_the_base_path_and_sends_a_real_timeout() {
        let (base, seen) = serve(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"pod":"a"},"value":[1,"2.5"]}]}}"#,
            Duration::ZERO,
        )
        .await;
        let client = PromClient::new(settings(base, Verb::Get)).expect("client");
        let answer = client
            .query("up", SystemTime::UNIX_EPOCH + Duration::from_millis(1_500))
            .await
            .expect("query");
        let samples = answer.result.into_vector().expect("vector");
        assert_eq!(samples.len(), 1);
        assert!((samples[0].value - 2.5).abs() < f64::EPSILON);
        let seen = seen.lock().expect("lock");
        assert_eq!(seen[0].0, "GET");
        assert_eq!(
            seen[0].1,
            "/workspaces/ws-1/api/v1/query?query=up&time=1.5&timeout=5s"
        );
        assert_eq!(seen[0].3, "|tenant-a");
    }

    #[tokio::test]
    async fn post_verb_sends_a_form() {
        let (base, seen) = serve(
            r#"{"status":"success","data":[{"__name__":"http_requests_total","pod":"a","namespace":"n"},{"__name__":"http_requests_total","pod":"b","namespace":"n"}]}"#,
            Duration::ZERO,
        )
        .await;
        let client = PromClient::new(settings(base, Verb::Post)).expect("client");
        let set = client
            .series("http_requests_total", SystemTime::UNIX_EPOCH)
            .await
            .expect("series");
        assert_eq!(set.0.len(), 1, "label values do not matter: {set:?}");
        let seen = seen.lock().expect("lock");
        assert_eq!(seen[0].0, "POST");
        assert_eq!(seen[0].1, "/workspaces/ws-1/api/v1/series");
        assert_eq!(seen[0].2.as_deref(), Some(FORM_CONTENT_TYPE));
        assert_eq!(
            seen[0].3,
            "match%5B%5D=http_requests_total&start=0|tenant-a"
        );
    }

    #[tokio::test]
    async fn errors_have_kinds() {
        let (base, _) = serve(
            r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#,
            Duration::ZERO,
        )
        .await;
        let client = PromClient::new(settings(base, Verb::Get)).expect("client");
        let err = client
            .query("(", SystemTime::now())
            .await
            .expect_err("api error");
        assert_eq!(err.kind(), "api_error");

        let (base, _) = serve("{}", Duration::from_secs(3)).await;
        let mut s = settings(base, Verb::Get);
        s.query_timeout = Duration::from_millis(200);
        let err = PromClient::new(s)
            .expect("client")
            .query("up", SystemTime::now())
            .await
            .expect_err("timeout");
        assert_eq!(err.kind(), "timeout");

        let s = settings("http://127.0.0.1:1/x".into(), Verb::Get);
        let err = PromClient::new(s)
            .expect("client")
            .query("up", SystemTime::now())
            .await
            .expect_err("refused");
        assert_eq!(err.kind(), "transport");
    }

    #[test]
    fn header_flag() {
        let (n, v) = parse_header("X-Scope-OrgID=a=b").expect("ok");
        assert_eq!(n.as_str(), "x-scope-orgid");
        assert_eq!(v, "a=b");
        assert!(parse_header("novalue").is_err());
        assert!(parse_header("bad name=x").is_err());
    }
}
