//! HTTPS serving: TLS (h2 and HTTP/1.1), admission, the API, graceful drain.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rustls::pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::api::{Answer, Api};
use crate::metrics::RequestLabels;
use crate::objects::BoxFuture;
use crate::wire::Status;

/// Time a client has to finish its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client has to send a request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Request line plus headers.
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Decides whether a request may be served: authentication and authorization.
pub trait Admission: Send + Sync + std::fmt::Debug {
    /// `Ok` to serve; `Err` with the 401/403 `Status` to answer. `peer_certs` is the client
    /// certificate chain the TLS layer saw (leaf first), empty when none.
    fn admit<'a>(
        &'a self,
        parts: &'a http::request::Parts,
        peer_certs: &'a [CertificateDer<'static>],
    ) -> BoxFuture<'a, Result<(), Status>>;
}

/// Admits everyone (tests, and local runs without a cluster).
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl Admission for AllowAll {
    fn admit<'a>(
        &'a self,
        _parts: &'a http::request::Parts,
        _peer_certs: &'a [CertificateDer<'static>],
    ) -> BoxFuture<'a, Result<(), Status>> {
        Box::pin(std::future::ready(Ok(())))
    }
}

impl Admission for crate::auth::Gate {
    fn admit<'a>(
        &'a self,
        parts: &'a http::request::Parts,
        peer_certs: &'a [CertificateDer<'static>],
    ) -> BoxFuture<'a, Result<(), Status>> {
        Box::pin(async move {
            crate::auth::Gate::admit(self, parts, peer_certs)
                .await
                .map(|_user| ())
        })
    }
}

/// What one connection's requests share.
#[derive(Debug, Clone)]
struct Shared {
    api: Api,
    admission: Arc<dyn Admission>,
}

async fn answer(
    shared: Shared,
    peer_certs: Arc<Vec<CertificateDer<'static>>>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let (parts, _body) = req.into_parts();
    let answer = match shared.admission.admit(&parts, &peer_certs).await {
        Ok(()) => {
            shared
                .api
                .handle(&parts.method, parts.uri.path(), parts.uri.query())
                .await
        }
        Err(status) => Answer::status("denied", &status),
    };
    shared
        .api
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            api: answer.api,
            code: answer.status.as_u16(),
        })
        .inc();
    tracing::debug!(
        method = %parts.method,
        path = parts.uri.path(),
        status = answer.status.as_u16(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    let body = if parts.method == http::Method::HEAD {
        Bytes::new()
    } else {
        answer.body
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = answer.status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(answer.content_type));
    response
}

/// Serves the API over TLS on `listener` until `shutdown` completes, then stops accepting
/// and gives in-flight requests up to `drain` to finish.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    api: Api,
    admission: Arc<dyn Admission>,
    http1_only: bool,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) {
    let acceptor = TlsAcceptor::from(tls);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(MAX_HEADER_BYTES).unwrap_or(u32::MAX))
        // The aggregator multiplexes every HPA's calls over few connections.
        .max_concurrent_streams(250)
        .keep_alive_interval(Some(Duration::from_secs(30)));
    let builder = if http1_only {
        Arc::new(builder.http1_only())
    } else {
        Arc::new(builder)
    };

    let shared = Shared { api, admission };
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let watcher = graceful.watcher();
        let builder = builder.clone();
        let acceptor = acceptor.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            let stream =
                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => {
                        tracing::debug!(%peer, %error, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
            let peer_certs: Arc<Vec<CertificateDer<'static>>> = Arc::new(
                stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
                    .unwrap_or_default(),
            );
            let service = service_fn(move |req| {
                let shared = shared.clone();
                let peer_certs = peer_certs.clone();
                async move { Ok::<_, Infallible>(answer(shared, peer_certs, req).await) }
            });
            let io = TokioIo::new(stream);
            let connection = watcher.watch(builder.serve_connection(io, service).into_owned());
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "client connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!(
        timeout_secs = drain.as_secs_f64(),
        "draining in-flight requests"
    );
    match tokio::time::timeout(drain, graceful.shutdown()).await {
        Ok(()) => tracing::info!("all connections closed"),
        Err(_) => tracing::warn!("drain timeout reached; closing remaining connections"),
    }
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(error) => {
            tracing::error!(%error, "cannot listen for SIGTERM");
            std::future::pending::<()>().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}
