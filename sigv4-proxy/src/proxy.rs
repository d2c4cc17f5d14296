//! The proxy service: turn a client request into a signed upstream request and stream the
//! answer back.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::{HeaderValue, Request, Response, Uri, header};
use http_body_util::{Either, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use tracing::Instrument as _;

use crate::admission::Admission;
use crate::body;
use crate::credentials::CredentialCache;
use crate::error::ProxyError;
use crate::headers::HeaderPolicy;
use crate::metered::{AccessRecord, MeteredBody, RequestGuard};
use crate::metrics::{self, ErrorLabels, Metrics};
use crate::signing::{Payload, Signer};
use crate::target::{self, TargetError};
use crate::upstream::UpstreamClient;

/// What goes upstream: a buffered, hashed body or, with `--unsigned-payload`, the client's
/// body streamed through under the same size cap.
pub type UpstreamBody<B> = Either<Full<Bytes>, Limited<B>>;
/// What goes back to the client: the upstream's body as it arrives, or our own error.
pub type ProxyBody = MeteredBody<Either<Incoming, Full<Bytes>>>;

/// Where and how to forward.
#[derive(Debug, Clone)]
pub struct ForwardSettings {
    pub scheme: Scheme,
    /// Where to connect (`--host`).
    pub authority: Authority,
    /// The Host header sent and signed (`--sign-host`, else `--host`).
    pub host_header: HeaderValue,
    pub max_request_body: u64,
    pub unsigned_payload: bool,
    /// Time allowed for the upstream's response headers; the body may stream for longer.
    pub upstream_timeout: Option<Duration>,
    pub log_failed_requests: bool,
    pub log_signing_process: bool,
    /// This process' `Via` token; a request already carrying it has looped back to us.
    pub via: HeaderValue,
    /// One info line per request under the `sigv4_proxy::access` target.
    pub access_log: bool,
    /// Extra attempts for idempotent queries on 429/502/503/504 or a failed connection.
    pub retry_queries: u32,
}

/// A `tower::Service` that signs and forwards; never fails, errors become JSON answers.
#[derive(Debug)]
pub struct Proxy<B> {
    inner: Arc<Inner<B>>,
}

impl<B> Clone for Proxy<B> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

#[derive(Debug)]
struct Inner<B> {
    settings: ForwardSettings,
    policy: HeaderPolicy,
    signer: Signer,
    credentials: CredentialCache,
    client: UpstreamClient<UpstreamBody<B>>,
    metrics: Arc<Metrics>,
    admission: Admission,
}

impl<B> Proxy<B>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    pub fn new(
        settings: ForwardSettings,
        policy: HeaderPolicy,
        signer: Signer,
        credentials: CredentialCache,
        client: UpstreamClient<UpstreamBody<B>>,
        metrics: Arc<Metrics>,
        admission: Admission,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                settings,
                policy,
                signer,
                credentials,
                client,
                metrics,
                admission,
            }),
        }
    }
}

impl<B> tower::Service<Request<B>> for Proxy<B>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let inner = self.inner.clone();
        // The span carries the path but never the query: PromQL can be sensitive. It is a
        // debug span: at the default level an enabled span cost about 3 µs per request
        // (registry slot, fields formatted), so the lines logged at info and above name the
        // method and path themselves.
        let span = tracing::debug_span!(
            "request",
            method = %request.method(),
            path = %request.uri().path(),
        );
        Box::pin(
            async move {
                let started = Instant::now();
                let metrics = inner.metrics.clone();
                let mut guard = RequestGuard::start(metrics.clone());
                let route = metrics::route_class(request.uri().path());
                let method = request.method().clone();
                let version = request.version();
                // Shares the client's bytes (no copy); only the path part is ever logged.
                let uri = request.uri().clone();
                let mut bytes_in = 0;
                let (response, from_upstream) =
                    match inner.forward(request, route, &mut guard, &mut bytes_in).await {
                        Ok(response) => (response.map(Either::Left), true),
                        Err(error) => {
                            let status = error.status();
                            if status.is_server_error() {
                                tracing::warn!(status = status.as_u16(), error = %error, %method, path = uri.path(), "request failed");
                            } else {
                                tracing::info!(status = status.as_u16(), error = %error, %method, path = uri.path(), "request refused");
                            }
                            metrics.errors.get_or_create(&ErrorLabels { kind: error.code() }).inc();
                            (error.into_response().map(Either::Right), false)
                        }
                    };
                let status = response.status().as_u16();
                metrics.count_request(method_label(&method), route, status);
                metrics.observe_request_duration(route, started.elapsed().as_secs_f64());
                let path = inner.settings.access_log.then(|| uri.path().to_owned());
                guard.access = path.map(|path| AccessRecord {
                    method,
                    version,
                    path,
                    status,
                    from_upstream,
                    bytes_in,
                });
                Ok(response.map(|body| MeteredBody::new(body, guard)))
            }
            .instrument(span),
        )
    }
}

impl<B> Inner<B>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    async fn forward(
        &self,
        request: Request<B>,
        route: &'static str,
        guard: &mut RequestGuard,
        bytes_in: &mut u64,
    ) -> Result<Response<Incoming>, ProxyError> {
        let settings = &self.settings;
        let (parts, body) = request.into_parts();
        // Tunnels would carry unsigned traffic with our identity's blessing.
        if parts.method == http::Method::CONNECT {
            return Err(ProxyError::MethodNotAllowed);
        }
        if parts
            .headers
            .get_all(header::VIA)
            .iter()
            .any(|via| contains_token(via.as_bytes(), settings.via.as_bytes()))
        {
            return Err(ProxyError::Loop);
        }
        let path_and_query = target::upstream_target(parts.uri.path(), parts.uri.query())?;
        let upstream_path = path_and_query.split('?').next().unwrap_or_default();
        self.admission.check(&parts.method, upstream_path)?;
        let declared = declared_length(&parts.headers);
        if let Some(declared) = declared
            && declared > settings.max_request_body
        {
            return Err(ProxyError::DeclaredTooLarge {
                declared,
                limit: settings.max_request_body,
            });
        }

        let mut headers = self.policy.upstream_headers(&parts.headers);
        headers.insert(header::HOST, settings.host_header.clone());
        headers.append(header::VIA, settings.via.clone());
        let (body, payload) = if settings.unsigned_payload {
            if let Some(length) = parts.headers.get(header::CONTENT_LENGTH) {
                headers.insert(header::CONTENT_LENGTH, length.clone());
            }
            // Streamed: only the declared length is known up front.
            *bytes_in = declared.unwrap_or_default();
            self.metrics.request_bytes.inc_by(*bytes_in);
            (
                Either::Right(Limited::new(body, cap_usize(settings.max_request_body))),
                Payload::Unsigned,
            )
        } else {
            let hashed = body::read_hashed(body, settings.max_request_body).await?;
            *bytes_in = hashed.bytes.len() as u64;
            self.metrics.request_bytes.inc_by(*bytes_in);
            // Content-Length is set (and so signed) whenever the client sent a body, so that
            // the HTTP client has nothing left to add on its own.
            if !hashed.bytes.is_empty()
                || declared.is_some()
                || parts.headers.contains_key(header::TRANSFER_ENCODING)
            {
                headers.insert(
                    header::CONTENT_LENGTH,
                    HeaderValue::from(hashed.bytes.len()),
                );
            }
            (
                Either::Left(Full::new(hashed.bytes)),
                Payload::Sha256(hashed.sha256_hex),
            )
        };

        let uri = Uri::builder()
            .scheme(settings.scheme.clone())
            .authority(settings.authority.clone())
            .path_and_query(path_and_query)
            .build()
            .map_err(|_| TargetError::Unparseable)?;

        guard.permit = self.admission.permit()?;
        let retries = match &body {
            Either::Left(_) if is_retryable_query(&parts.method, route) => settings.retry_queries,
            _ => 0,
        };
        let deadline = settings
            .upstream_timeout
            .map(|limit| Instant::now() + limit);
        let mut body = Some(body);
        let mut attempt = 0;
        let response = loop {
            // Attempts that may be retried send clones (the body is shared bytes); the last
            // one, and any streamed body, moves the originals.
            let last = attempt >= retries;
            let this_body = match &body {
                Some(Either::Left(full)) if !last => Either::Left(full.clone()),
                _ => body
                    .take()
                    .ok_or_else(|| ProxyError::Upstream("body already sent".into()))?,
            };
            let mut outbound = Request::new(this_body);
            *outbound.method_mut() = parts.method.clone();
            *outbound.uri_mut() = uri.clone();
            *outbound.headers_mut() = if last {
                std::mem::take(&mut headers)
            } else {
                headers.clone()
            };
            let result = self.send(outbound, &payload, route, deadline).await;
            let retry_hint = match &result {
                Ok(response) if RETRY_STATUSES.contains(&response.status().as_u16()) => {
                    Some(retry_after(response.headers()))
                }
                Err(ProxyError::Upstream(_)) => Some(None),
                _ => None,
            };
            if let Some(hint) = retry_hint
                && attempt < retries
            {
                let wait = backoff(attempt, hint);
                if deadline.is_none_or(|d| Instant::now() + wait < d) {
                    attempt += 1;
                    self.metrics.retries.inc();
                    tracing::info!(attempt, wait_ms = wait.as_millis() as u64, method = %parts.method, path = parts.uri.path(), "retrying query");
                    tokio::time::sleep(wait).await;
                    continue;
                }
            }
            break result?;
        };

        let (mut head, body) = response.into_parts();
        HeaderPolicy::response_headers(&mut head.headers);
        head.version = parts.version;
        if settings.log_failed_requests
            && (head.status.is_client_error() || head.status.is_server_error())
        {
            tracing::warn!(
                status = head.status.as_u16(),
                method = %parts.method,
                path = parts.uri.path(),
                error_type = head
                    .headers
                    .get("x-amzn-errortype")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or(""),
                request_id = head
                    .headers
                    .get("x-amzn-requestid")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or(""),
                "upstream refused the request"
            );
        }
        Ok(Response::from_parts(head, body))
    }
}

impl<B> Inner<B>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// Signs (afresh, so `x-amz-date` is current on every attempt) and sends one request.
    async fn send(
        &self,
        mut outbound: Request<UpstreamBody<B>>,
        payload: &Payload,
        route: &'static str,
        deadline: Option<Instant>,
    ) -> Result<Response<Incoming>, ProxyError> {
        let settings = &self.settings;
        let credentials = self.credentials.get().await?;
        let summary = self.signer.sign(
            &mut outbound,
            payload,
            &credentials.identity,
            SystemTime::now(),
        )?;
        if settings.log_signing_process {
            tracing::info!(
                service = self.signer.service(),
                region = self.signer.region(),
                signed_headers = %summary.signed_headers,
                upstream_path = outbound.uri().path(),
                query_keys = %query_keys(outbound.uri().query()),
                payload = match payload { Payload::Sha256(hex) => hex.as_str(), Payload::Unsigned => "UNSIGNED-PAYLOAD" },
                access_key_id = %crate::credentials::mask(&credentials.access_key_id),
                "signed request"
            );
        }

        let upstream_started = Instant::now();
        let sent = self.client.request(outbound);
        let response = match (deadline, settings.upstream_timeout) {
            (Some(deadline), Some(limit)) => tokio::time::timeout_at(deadline.into(), sent)
                .await
                .map_err(|_| ProxyError::UpstreamTimeout(limit))?,
            _ => sent.await,
        }
        .map_err(|e| upstream_error(e, settings.max_request_body))?;
        self.metrics
            .observe_upstream_duration(route, upstream_started.elapsed().as_secs_f64());
        Ok(response)
    }
}

/// Statuses worth another try for an idempotent read: throttling and gateway trouble.
const RETRY_STATUSES: [u16; 4] = [429, 502, 503, 504];
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Queries are reads, whatever the method: Prometheus clients POST long queries as forms.
/// Remote write is never retried here; its senders retry themselves.
fn is_retryable_query(method: &http::Method, route: &'static str) -> bool {
    let read_route = matches!(route, "query" | "query_range" | "series" | "labels");
    *method == http::Method::GET || (*method == http::Method::POST && read_route)
}

/// `Retry-After` in seconds (the HTTP-date form is not used by AWS).
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Exponential from 100 ms with full jitter over its upper half, at least what the upstream
/// asked for.
fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    use std::hash::{BuildHasher as _, Hasher as _};
    let ceiling = (Duration::from_millis(100) * 2u32.saturating_pow(attempt)).min(MAX_BACKOFF);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(attempt);
    let fraction = 0.5 + (hasher.finish() % 1000) as f64 / 2000.0;
    let jittered = ceiling.mul_f64(fraction);
    retry_after.map_or(jittered, |asked| asked.max(jittered))
}

fn cap_usize(limit: u64) -> usize {
    usize::try_from(limit).unwrap_or(usize::MAX)
}

/// A streamed body that hit the cap surfaces as a client error inside the upstream
/// client's error; everything else is the upstream's fault.
fn upstream_error(error: hyper_util::client::legacy::Error, limit: u64) -> ProxyError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(cause) = source {
        if cause.is::<LengthLimitError>() {
            return ProxyError::Body(crate::body::BodyError::TooLarge { limit });
        }
        source = cause.source();
    }
    ProxyError::Upstream(error.into())
}

/// Bounded label values: anything unusual is "other".
fn method_label(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        http::Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// Whether a `Via` header lists the same received-by pseudonym as `ours` ("1.1 <name>").
fn contains_token(via: &[u8], ours: &[u8]) -> bool {
    fn received_by(entry: &[u8]) -> Option<&[u8]> {
        entry
            .split(|b| b.is_ascii_whitespace())
            .filter(|word| !word.is_empty())
            .nth(1)
    }
    let ours = received_by(ours);
    via.split(|b| *b == b',')
        .any(|entry| received_by(entry) == ours)
}

fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Only the parameter names: values (PromQL, label matchers) stay out of logs.
fn query_keys(query: Option<&str>) -> String {
    query
        .unwrap_or_default()
        .split('&')
        .map(|pair| pair.split('=').next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_loops_are_recognised_by_instance_token() {
        let ours = b"1.1 sigv4-proxy-1a2b3c";
        assert!(contains_token(b"1.1 sigv4-proxy-1a2b3c", ours));
        assert!(contains_token(b"1.1 nginx, 1.1 sigv4-proxy-1a2b3c", ours));
        assert!(!contains_token(b"1.1 sigv4-proxy-ffffff", ours));
        assert!(!contains_token(b"1.1 sigv4-proxy-1a2b3c4", ours));
    }

    #[test]
    fn only_reads_are_retried() {
        use http::Method;
        assert!(is_retryable_query(&Method::GET, "query"));
        assert!(is_retryable_query(&Method::GET, "label_values"));
        assert!(is_retryable_query(&Method::POST, "query_range"));
        assert!(is_retryable_query(&Method::POST, "series"));
        assert!(!is_retryable_query(&Method::POST, "remote_write"));
        assert!(!is_retryable_query(&Method::POST, "alertmanager"));
        assert!(!is_retryable_query(&Method::DELETE, "alertmanager"));
    }

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        for attempt in 0..10 {
            let wait = backoff(attempt, None);
            let ceiling = (Duration::from_millis(100) * 2u32.pow(attempt.min(6))).min(MAX_BACKOFF);
            assert!(
                wait <= ceiling && wait >= ceiling / 2,
                "{attempt}: {wait:?}"
            );
        }
        assert_eq!(
            backoff(0, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        let mut headers = http::HeaderMap::new();
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            header::RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn query_keys_drop_values() {
        assert_eq!(
            query_keys(Some("query=up%7Bjob%3D%22x%22%7D&time=1&timeout=")),
            "query,time,timeout"
        );
        assert_eq!(query_keys(None), "");
    }
}
