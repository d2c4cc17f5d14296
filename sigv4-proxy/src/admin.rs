//! The admin listener: liveness, readiness and metrics, apart from proxied traffic so that
//! probes and scrapes are never signed, forwarded or mixed into proxy metrics.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::Full;

use crate::credentials::CredentialCache;
use crate::error::error_response;
use crate::metrics::Metrics;

/// Shared by the admin endpoints and the shutdown sequence.
#[derive(Debug, Clone)]
pub struct AdminState {
    pub metrics: Arc<Metrics>,
    pub credentials: CredentialCache,
    pub draining: Arc<AtomicBool>,
}

impl AdminState {
    /// Answers one admin request.
    pub fn handle<B>(&self, request: &Request<B>) -> Response<Full<Bytes>> {
        match request.uri().path() {
            "/healthz" | "/livez" => text(StatusCode::OK, "ok\n"),
            "/readyz" => self.readiness(),
            "/metrics" => {
                let mut response = text(StatusCode::OK, &self.metrics.encode());
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                );
                response
            }
            _ => error_response(
                StatusCode::NOT_FOUND,
                "not_found",
                "admin endpoints: /healthz, /readyz, /metrics",
            ),
        }
    }

    fn readiness(&self) -> Response<Full<Bytes>> {
        if self.draining.load(Ordering::SeqCst) {
            return error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "draining",
                "the proxy is shutting down",
            );
        }
        match self.credentials.peek() {
            Some(held) if held.usable_at(SystemTime::now()) => text(StatusCode::OK, "ready\n"),
            _ => error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "credentials_unavailable",
                "no valid AWS credentials are held yet; see the proxy log",
            ),
        }
    }
}

/// So that `server::serve` can run the admin endpoints like any other service.
impl<B> tower::Service<Request<B>> for AdminState {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        std::future::ready(Ok(self.handle(&request)))
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;
    use aws_credential_types::provider::SharedCredentialsProvider;

    fn state() -> AdminState {
        AdminState {
            metrics: Arc::new(Metrics::default()),
            credentials: CredentialCache::new(SharedCredentialsProvider::new(Credentials::new(
                "AKID", "secret", None, None, "test",
            ))),
            draining: Arc::new(AtomicBool::new(false)),
        }
    }

    fn get(state: &AdminState, path: &str) -> StatusCode {
        state
            .handle(&Request::get(path).body(()).expect("request"))
            .status()
    }

    #[tokio::test]
    async fn readiness_follows_credentials_and_draining() {
        let state = state();
        assert_eq!(get(&state, "/healthz"), StatusCode::OK);
        assert_eq!(get(&state, "/readyz"), StatusCode::SERVICE_UNAVAILABLE);
        state.credentials.get().await.expect("static credentials");
        assert_eq!(get(&state, "/readyz"), StatusCode::OK);
        state.draining.store(true, Ordering::SeqCst);
        assert_eq!(get(&state, "/readyz"), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            get(&state, "/healthz"),
            StatusCode::OK,
            "alive while draining"
        );
    }

    #[test]
    fn metrics_and_unknown_paths() {
        let state = state();
        let response = state.handle(&Request::get("/metrics").body(()).expect("request"));
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()[header::CONTENT_TYPE]
                .to_str()
                .expect("ascii")
                .starts_with("application/openmetrics-text")
        );
        assert_eq!(get(&state, "/nope"), StatusCode::NOT_FOUND);
    }
}
