//! `loadtest serve`: a fast stand-in for AMP, so that the proxy, not the upstream, is what
//! a run measures. It checks no signature. It answers:
//!
//! - any request whose query has `loadtest_bytes=N`: N bytes of JSON-like text, streamed in
//!   chunks (chunked transfer encoding, as Prometheus sends large answers);
//! - `…/api/v1/remote_write` and `…/api/v1/write`: the body is read to the end, then 200
//!   with an empty body (with `--verify-remote-write`, 400 unless it decodes);
//! - `/healthz`: 200 `ok`;
//! - anything else: one fixed Prometheus-style JSON answer of about `--answer-bytes`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Either, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::remote_write;

#[derive(Debug, Clone)]
pub(crate) struct UpstreamConfig {
    pub(crate) answer_bytes: usize,
    pub(crate) chunk_bytes: usize,
    pub(crate) verify_remote_write: bool,
}

#[derive(Debug)]
struct State {
    answer: Bytes,
    chunk: Bytes,
    verify_remote_write: bool,
}

/// Serves until the process is stopped. Prints `listening on ADDR` first, so a parent that
/// asked for port 0 learns the port.
pub(crate) async fn serve(listen: SocketAddr, config: UpstreamConfig) -> Result<(), String> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on {local}");
    let state = Arc::new(State {
        answer: json_answer(config.answer_bytes),
        chunk: filler_chunk(config.chunk_bytes.max(1)),
        verify_remote_write: config.verify_remote_write,
    });
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(answer(&state, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

type AnswerBody = Either<Full<Bytes>, Repeat>;

async fn answer(state: &State, request: Request<Incoming>) -> Response<AnswerBody> {
    let stream_bytes = request.uri().query().and_then(|query| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("loadtest_bytes="))
            .and_then(|n| n.parse::<u64>().ok())
    });
    let path = request.uri().path().to_owned();
    let is_write = path.ends_with("/api/v1/remote_write") || path.ends_with("/api/v1/write");
    // Read the whole body, as a real server would, before answering.
    let body = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return plain(StatusCode::BAD_REQUEST, "body read failed"),
    };
    if let Some(bytes) = stream_bytes {
        return Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(Either::Right(Repeat {
                chunk: state.chunk.clone(),
                remaining: bytes,
            }))
            .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "response"));
    }
    if is_write {
        if state.verify_remote_write
            && let Err(error) = remote_write::decode(&body)
        {
            return plain(StatusCode::BAD_REQUEST, &error);
        }
        return Response::new(Either::Left(Full::new(Bytes::new())));
    }
    if path == "/healthz" {
        return plain(StatusCode::OK, "ok");
    }
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Either::Left(Full::new(state.answer.clone())))
        .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "response"))
}

fn plain(status: StatusCode, text: &str) -> Response<AnswerBody> {
    let mut response = Response::new(Either::Left(Full::new(Bytes::from(text.to_owned()))));
    *response.status_mut() = status;
    response
}

/// A Prometheus instant-query answer of about `size` bytes (never much below, never above
/// `size` by more than one series entry).
pub(crate) fn json_answer(size: usize) -> Bytes {
    let head = r#"{"status":"success","data":{"resultType":"vector","result":["#;
    let tail = "]}}";
    let mut out = String::with_capacity(size + 256);
    out.push_str(head);
    let mut index = 0;
    while out.len() + tail.len() < size {
        if index > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            r#"{{"metric":{{"__name__":"container_cpu_usage_seconds_total","namespace":"payments","pod":"api-7d9f8b6c5d-{index:05}"}},"value":[1767225600.123,"{}.{:03}"]}}"#,
            index % 97,
            (index * 37) % 1000
        ));
        index += 1;
    }
    out.push_str(tail);
    Bytes::from(out)
}

/// A chunk of series-like JSON text, repeated to build big answers.
fn filler_chunk(size: usize) -> Bytes {
    let pattern = br#"{"metric":{"__name__":"http_requests_total","pod":"api-0"},"values":[[1767225600,"1"],[1767225615,"2"]]},"#;
    let mut chunk = BytesMut::with_capacity(size);
    while chunk.len() < size {
        let take = pattern.len().min(size - chunk.len());
        chunk.extend_from_slice(&pattern[..take]);
    }
    chunk.freeze()
}

/// A body of `remaining` bytes made of one shared chunk, sent without copying.
#[derive(Debug)]
pub(crate) struct Repeat {
    chunk: Bytes,
    remaining: u64,
}

impl Body for Repeat {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let n = self.remaining.min(self.chunk.len() as u64);
        self.remaining -= n;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n as usize)))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        // No exact size: the answer goes out chunked, like a large Prometheus answer.
        let mut hint = SizeHint::new();
        hint.set_lower(self.remaining.min(1));
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_valid_json_of_about_the_asked_size() {
        for size in [0, 100, 4096, 100_000] {
            let answer = json_answer(size);
            let value: serde_json::Value = serde_json::from_slice(&answer).expect("json");
            assert_eq!(value["status"], "success");
            assert!(
                answer.len() < size.max(80) + 200,
                "{size}: {}",
                answer.len()
            );
            assert!(answer.len() + 200 > size, "{size}: {}", answer.len());
        }
    }

    #[tokio::test]
    async fn repeat_streams_exactly_the_asked_bytes() {
        let body = Repeat {
            chunk: filler_chunk(1000),
            remaining: 2500,
        };
        assert!(!body.is_end_stream());
        assert_eq!(body.size_hint().exact(), None);
        let bytes = body.collect().await.expect("infallible").to_bytes();
        assert_eq!(bytes.len(), 2500);
    }
}
