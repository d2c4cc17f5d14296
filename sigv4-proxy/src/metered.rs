//! A response body that counts the bytes it streams, and a guard that keeps its request
//! counted (in-flight gauge, concurrency permit) until the last byte is sent or the client
//! goes away, then writes the access-log line.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::OwnedSemaphorePermit;

use crate::metrics::Metrics;

/// What the access-log line says about a request.
#[derive(Debug)]
pub struct AccessRecord {
    pub method: http::Method,
    pub version: http::Version,
    /// Path only: query values (PromQL) never reach the log.
    pub path: String,
    pub status: u16,
    /// Whether the status came from the upstream (or from the proxy itself).
    pub from_upstream: bool,
    pub bytes_in: u64,
}

/// Lives as long as the request: from arrival until its response body is finished.
#[derive(Debug)]
pub struct RequestGuard {
    metrics: Arc<Metrics>,
    started: Instant,
    pub permit: Option<OwnedSemaphorePermit>,
    pub access: Option<AccessRecord>,
    bytes_out: u64,
    finished: bool,
}

impl RequestGuard {
    pub fn start(metrics: Arc<Metrics>) -> Self {
        metrics.in_flight.inc();
        Self {
            metrics,
            started: Instant::now(),
            permit: None,
            access: None,
            bytes_out: 0,
            finished: false,
        }
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.metrics.in_flight.dec();
        if let Some(access) = &self.access {
            tracing::info!(
                target: "sigv4_proxy::access",
                method = %access.method,
                version = ?access.version,
                path = %access.path,
                status = access.status,
                upstream = access.from_upstream,
                bytes_in = access.bytes_in,
                bytes_out = self.bytes_out,
                duration_ms = self.started.elapsed().as_secs_f64() * 1e3,
                complete = self.finished,
                "access"
            );
        }
    }
}

/// Wraps a body; no buffering, one counter update per frame.
#[derive(Debug)]
pub struct MeteredBody<B> {
    inner: B,
    guard: RequestGuard,
}

impl<B: Body> MeteredBody<B> {
    pub fn new(inner: B, mut guard: RequestGuard) -> Self {
        guard.finished = inner.is_end_stream();
        Self { inner, guard }
    }
}

impl<B: Body + Unpin> Body for MeteredBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let n = data.remaining() as u64;
                    self.guard.bytes_out += n;
                    self.guard.metrics.response_bytes.inc_by(n);
                }
                if self.inner.is_end_stream() {
                    self.guard.finished = true;
                }
            }
            Poll::Ready(None) => self.guard.finished = true,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};

    #[tokio::test]
    async fn counts_bytes_and_in_flight_until_dropped() {
        let metrics = Arc::new(Metrics::default());
        let body = MeteredBody::new(
            Full::new(Bytes::from_static(b"hello")),
            RequestGuard::start(metrics.clone()),
        );
        assert_eq!(metrics.in_flight.get(), 1);
        assert_eq!(body.size_hint().exact(), Some(5));
        let collected = body.collect().await.expect("body").to_bytes();
        assert_eq!(collected, "hello");
        assert_eq!(metrics.response_bytes.get(), 5);
        assert_eq!(
            metrics.in_flight.get(),
            0,
            "collect consumed and dropped the body"
        );
    }

    #[tokio::test]
    async fn the_permit_is_held_until_the_body_is_gone() {
        let metrics = Arc::new(Metrics::default());
        let limit = Arc::new(tokio::sync::Semaphore::new(1));
        let mut guard = RequestGuard::start(metrics);
        guard.permit = Some(limit.clone().try_acquire_owned().expect("slot"));
        let body = MeteredBody::new(Full::new(Bytes::from_static(b"x")), guard);
        assert_eq!(limit.available_permits(), 0);
        drop(body);
        assert_eq!(limit.available_permits(), 1);
    }
}
