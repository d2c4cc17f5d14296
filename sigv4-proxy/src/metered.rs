//! A response body that counts the bytes it streams and keeps its request counted as in
//! flight until the last byte is sent or the client goes away.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Buf;
use http_body::{Body, Frame, SizeHint};

use crate::metrics::Metrics;

/// Decrements the in-flight gauge when dropped.
#[derive(Debug)]
pub struct InFlight(Arc<Metrics>);

impl InFlight {
    pub fn start(metrics: Arc<Metrics>) -> Self {
        metrics.in_flight.inc();
        Self(metrics)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

/// Wraps a body; no buffering, one counter update per frame.
#[derive(Debug)]
pub struct MeteredBody<B> {
    inner: B,
    in_flight: InFlight,
}

impl<B> MeteredBody<B> {
    pub fn new(inner: B, in_flight: InFlight) -> Self {
        Self { inner, in_flight }
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
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.in_flight
                .0
                .response_bytes
                .inc_by(data.remaining() as u64);
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
            InFlight::start(metrics.clone()),
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
}
