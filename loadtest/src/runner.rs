//! The load engine: one task and one HTTP/1.1 keep-alive connection per worker, a shared
//! request counter, per-worker histograms merged at the end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Request, header};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::procwatch::Watch;
use crate::progress::Progress;
use crate::schedule::{Mode, Pacing, Stop, Timetable, admits, pace};
use crate::stats::{Recorder, Summary};
use crate::workload::{RequestTemplate, Workload};

/// Where requests go: a plain-HTTP address and the Host header to send.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    pub(crate) host: HeaderValue,
}

impl Target {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        let host = HeaderValue::from_str(&addr.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("localhost"));
        Self { addr, host }
    }
}

/// One measured run of one workload against one target.
#[derive(Debug, Clone)]
pub(crate) struct Phase {
    pub(crate) label: String,
    pub(crate) workload: Arc<Workload>,
    pub(crate) mode: Mode,
    pub(crate) stop: Stop,
    /// Per request, head and body together.
    pub(crate) timeout: Duration,
    pub(crate) progress: bool,
    pub(crate) watch_pid: Option<u32>,
}

#[derive(Debug)]
struct Shared {
    target: Target,
    workload: Arc<Workload>,
    mode: Mode,
    stop: Stop,
    timeout: Duration,
    start: Instant,
    next_ticket: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    finished: AtomicBool,
}

/// Runs `phase` against `target` and summarises it.
pub(crate) async fn run(target: &Target, phase: &Phase) -> Summary {
    let watch = phase.watch_pid.map(Watch::start);
    let shared = Arc::new(Shared {
        target: target.clone(),
        workload: phase.workload.clone(),
        mode: phase.mode,
        stop: phase.stop,
        timeout: phase.timeout,
        start: Instant::now(),
        next_ticket: AtomicU64::new(0),
        completed: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        finished: AtomicBool::new(false),
    });
    let progress = phase.progress.then(|| {
        let shared = shared.clone();
        let mut bar = Progress::new(phase.label.clone(), phase.stop);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(250));
            every.tick().await;
            while !shared.finished.load(Ordering::Relaxed) {
                every.tick().await;
                bar.draw(
                    shared.start.elapsed(),
                    shared.completed.load(Ordering::Relaxed),
                    shared.failed.load(Ordering::Relaxed),
                );
            }
            bar.clear();
        })
    });
    let workers: Vec<_> = (0..phase.mode.connections().max(1))
        .map(|_| tokio::spawn(worker(shared.clone())))
        .collect();
    let mut total = Recorder::new();
    for worker in workers {
        match worker.await {
            Ok(recorder) => total.merge(&recorder),
            Err(_) => total.error("worker_panicked"),
        }
    }
    let elapsed = shared.start.elapsed();
    shared.finished.store(true, Ordering::Relaxed);
    if let Some(progress) = progress {
        let _ = progress.await;
    }
    let mut summary = total.summarize(elapsed);
    summary.process = watch.map(Watch::finish);
    summary
}

async fn worker(shared: Arc<Shared>) -> Recorder {
    let mut recorder = Recorder::new();
    let mut connection: Option<SendRequest<Full<Bytes>>> = None;
    let timetable = match shared.mode {
        Mode::Open { rate, .. } => Some(Timetable::new(rate)),
        Mode::Closed { .. } => None,
    };
    loop {
        let ticket = shared.next_ticket.fetch_add(1, Ordering::Relaxed);
        let began = match timetable {
            None => {
                let now = Instant::now();
                if !admits(&shared.stop, ticket, now - shared.start) {
                    break;
                }
                now
            }
            Some(table) => {
                let offset = table.offset(ticket);
                if !admits(&shared.stop, ticket, offset) {
                    break;
                }
                match pace(shared.start + offset, Instant::now()) {
                    Pacing::WaitUntil(at) => {
                        tokio::time::sleep_until(at.into()).await;
                        Instant::now()
                    }
                    Pacing::Late(intended) => intended,
                }
            }
        };
        let template = shared.workload.request(ticket);
        let sender = match ready_connection(&mut connection, shared.target.addr).await {
            Ok(sender) => sender,
            Err(kind) => {
                recorder.error(kind);
                shared.failed.fetch_add(1, Ordering::Relaxed);
                // A refused connection fails at once; do not spin on it.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        recorder.bytes_sent += template.body.len() as u64;
        let request = build(template, &shared.target.host);
        match tokio::time::timeout(shared.timeout, exchange(sender, request)).await {
            Ok(Ok(answer)) => {
                recorder.record_response(answer.ended - began, answer.first_byte - began);
                recorder.bytes_received += answer.bytes;
                if answer.status.is_success() {
                    recorder.ok += 1;
                } else {
                    recorder.error(&format!("status_{}", answer.status.as_u16()));
                    shared.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(Err(kind)) => {
                recorder.error(kind);
                shared.failed.fetch_add(1, Ordering::Relaxed);
                connection = None;
            }
            Err(_) => {
                recorder.error("timeout");
                shared.failed.fetch_add(1, Ordering::Relaxed);
                connection = None;
            }
        }
        shared.completed.fetch_add(1, Ordering::Relaxed);
    }
    recorder
}

/// The worker's connection, opened (again) when there is none or it was closed.
async fn ready_connection(
    connection: &mut Option<SendRequest<Full<Bytes>>>,
    addr: SocketAddr,
) -> Result<&mut SendRequest<Full<Bytes>>, &'static str> {
    if let Some(sender) = connection.as_mut()
        && sender.ready().await.is_err()
    {
        *connection = None;
    }
    if connection.is_none() {
        *connection = Some(connect(addr).await?);
    }
    connection.as_mut().ok_or("connect")
}

pub(crate) async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, &'static str> {
    let stream = TcpStream::connect(addr).await.map_err(|_| "connect")?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| "connect")?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

pub(crate) fn build(template: &RequestTemplate, host: &HeaderValue) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::new(template.body.clone()));
    *request.method_mut() = template.method.clone();
    *request.uri_mut() = template.uri.clone();
    let headers = request.headers_mut();
    headers.reserve(template.headers.len() + 2);
    headers.insert(header::HOST, host.clone());
    for (name, value) in &template.headers {
        headers.append(name.clone(), value.clone());
    }
    if !template.body.is_empty() {
        headers.insert(
            header::CONTENT_LENGTH,
            HeaderValue::from(template.body.len()),
        );
    }
    request
}

/// What came back for one request.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: http::StatusCode,
    pub(crate) first_byte: Instant,
    pub(crate) ended: Instant,
    pub(crate) bytes: u64,
}

/// Sends one request and reads its whole answer, counting but not keeping the bytes.
pub(crate) async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<Answer, &'static str> {
    let response = sender.send_request(request).await.map_err(|_| "send")?;
    let head = Instant::now();
    let status = response.status();
    let mut body = response.into_body();
    let mut first_byte = None;
    let mut bytes = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| "body")?;
        if let Some(data) = frame.data_ref()
            && !data.is_empty()
        {
            first_byte.get_or_insert_with(Instant::now);
            bytes += data.len() as u64;
        }
    }
    Ok(Answer {
        status,
        first_byte: first_byte.unwrap_or(head),
        ended: Instant::now(),
        bytes,
    })
}

/// Waits until `GET path` on `target` answers 2xx, or `within` has passed.
pub(crate) async fn wait_ready(
    target: &Target,
    path: &str,
    within: Duration,
) -> Result<Duration, String> {
    let started = Instant::now();
    let uri: http::Uri = path.parse().map_err(|e| format!("bad path {path}: {e}"))?;
    let template = RequestTemplate {
        kind: "probe",
        method: http::Method::GET,
        uri,
        headers: http::HeaderMap::new(),
        body: Bytes::new(),
    };
    let mut last = String::from("no answer");
    while started.elapsed() < within {
        match connect(target.addr).await {
            Ok(mut sender) => {
                match tokio::time::timeout(
                    Duration::from_secs(2),
                    exchange(&mut sender, build(&template, &target.host)),
                )
                .await
                {
                    Ok(Ok(answer)) if answer.status.is_success() => return Ok(started.elapsed()),
                    Ok(Ok(answer)) => last = format!("status {}", answer.status),
                    Ok(Err(kind)) => last = kind.to_owned(),
                    Err(_) => last = "timeout".to_owned(),
                }
            }
            Err(kind) => last = kind.to_owned(),
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Err(format!(
        "{} did not answer GET {path} within {within:?} ({last})",
        target.addr
    ))
}
