//! Closing idle client connections.
//!
//! hyper's header-read timeout starts with the first byte of a request, so a client that
//! opens a keep-alive connection and then goes quiet would hold a socket and a task forever.
//! A connection is idle when it has moved no bytes for the timeout *and* has no request in
//! flight: a slow upstream answer or a long stream is never cut.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What one client connection is doing.
#[derive(Debug)]
pub struct Activity {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last byte read or written.
    last_io_ms: AtomicU64,
    active_requests: AtomicUsize,
    requests_seen: AtomicUsize,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            last_io_ms: AtomicU64::new(0),
            active_requests: AtomicUsize::new(0),
            requests_seen: AtomicUsize::new(0),
        })
    }

    fn touch(&self) {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.last_io_ms.store(now, Ordering::Relaxed);
    }

    /// How long until the connection counts as idle; `None` when it already is.
    fn idle_in(&self, timeout: Duration) -> Option<Duration> {
        let last = Duration::from_millis(self.last_io_ms.load(Ordering::Relaxed));
        let quiet = self.epoch.elapsed().saturating_sub(last);
        if self.active_requests.load(Ordering::SeqCst) > 0 {
            return Some(timeout);
        }
        timeout.checked_sub(quiet).filter(|left| !left.is_zero())
    }

    /// Completes if no request has arrived `timeout` after the connection opened. hyper's
    /// own header timeout only starts once it has recognised HTTP/1, so a client that sends
    /// nothing, or stalls inside the HTTP/2 preface, is caught here.
    pub async fn no_request_within(&self, timeout: Duration) {
        tokio::time::sleep_until(self.epoch + timeout).await;
        if self.requests_seen.load(Ordering::SeqCst) > 0 {
            std::future::pending::<()>().await;
        }
    }

    /// Completes once the connection has been idle for `timeout`.
    pub async fn idle_for(&self, timeout: Duration) {
        while let Some(wait) = self.idle_in(timeout) {
            tokio::time::sleep(wait).await;
        }
    }
}

/// An I/O stream that records when bytes move.
#[derive(Debug)]
pub struct TrackedIo<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> TrackedIo<T> {
    pub fn new(inner: T, activity: Arc<Activity>) -> Self {
        activity.touch();
        Self { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TrackedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TrackedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Counts a request as active from its arrival until its response body is gone.
#[derive(Debug)]
struct ActiveGuard(Arc<Activity>);

impl ActiveGuard {
    fn new(activity: Arc<Activity>) -> Self {
        activity.active_requests.fetch_add(1, Ordering::SeqCst);
        activity.requests_seen.fetch_add(1, Ordering::SeqCst);
        Self(activity)
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active_requests.fetch_sub(1, Ordering::SeqCst);
        self.0.touch();
    }
}

/// Wraps the per-connection service so requests are counted as active.
#[derive(Debug, Clone)]
pub struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Tracked<S> {
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<S, ReqB, ResB> tower::Service<Request<ReqB>> for Tracked<S>
where
    S: tower::Service<Request<ReqB>, Response = Response<ResB>>,
    S::Future: Send + 'static,
{
    type Response = Response<TrackedBody<ResB>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqB>) -> Self::Future {
        let guard = ActiveGuard::new(self.activity.clone());
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            Ok(response.map(|body| TrackedBody {
                inner: body,
                _guard: guard,
            }))
        })
    }
}

/// A response body that keeps its request counted as active until dropped.
#[derive(Debug)]
pub struct TrackedBody<B> {
    inner: B,
    _guard: ActiveGuard,
}

impl<B: Body + Unpin> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
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

    #[tokio::test(start_paused = true)]
    async fn silent_connections_are_caught_but_not_those_that_sent_a_request() {
        let silent = Activity::new();
        let started = tokio::time::Instant::now();
        silent.no_request_within(Duration::from_secs(3)).await;
        assert_eq!(started.elapsed(), Duration::from_secs(3));

        let talked = Activity::new();
        drop(ActiveGuard::new(talked.clone()));
        let waited = tokio::time::timeout(
            Duration::from_secs(60),
            talked.no_request_within(Duration::from_secs(3)),
        )
        .await;
        assert!(waited.is_err(), "never fires once a request came");
    }

    #[tokio::test(start_paused = true)]
    async fn idle_only_without_requests_and_traffic() {
        let activity = Activity::new();
        activity.touch();
        let timeout = Duration::from_secs(10);
        assert!(activity.idle_in(timeout).is_some());
        let guard = ActiveGuard::new(activity.clone());
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(
            activity.idle_in(timeout),
            Some(timeout),
            "a request is in flight"
        );
        drop(guard);
        assert!(
            activity.idle_in(timeout).is_some(),
            "the end of a request is activity"
        );
        let started = tokio::time::Instant::now();
        activity.idle_for(timeout).await;
        assert!(started.elapsed() >= Duration::from_secs(9));
    }
}
