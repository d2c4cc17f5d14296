//! Per-function costs on the request path, so a regression shows up where it happens:
//! signing an AMP query, hashing and signing a 100 KiB remote-write body, the header policy,
//! and query-string re-encoding. `cargo bench -p sigv4-proxy --bench hot_path`.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use http::{HeaderMap, HeaderName, HeaderValue, Request};
use http_body_util::Full;
use sigv4_proxy::body::read_hashed;
use sigv4_proxy::headers::HeaderPolicy;
use sigv4_proxy::signing::{Payload, Signer};
use sigv4_proxy::target::upstream_target;

const HOST: &str = "aps-workspaces.us-east-1.amazonaws.com";
const WORKSPACE: &str = "/workspaces/ws-0a1b2c3d-4e5f-6789-abcd-ef0123456789";
/// An instant query as Grafana or KEDA sends it: form-encoded, `+` for spaces.
const QUERY: &str = "query=histogram_quantile%280.99%2C+sum+by+%28le%2C+service%29+%28rate%28http_request_duration_seconds_bucket%7Bjob%3D%22api%22%2Ccode%3D~%222..%22%7D%5B5m%5D%29%29%29&time=1767225600.123";
const SERIES_QUERY: &str = "match%5B%5D=up%7Bjob%3D%22kubernetes-pods%22%7D&match%5B%5D=kube_pod_info%7Bnamespace%3D%22payments%22%7D&start=1767139200&end=1767225600";

/// Polls a future that never waits (the bodies here are in memory) to completion.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

fn identity() -> Identity {
    Credentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        Some("session-token".to_owned()),
        None,
        "bench",
    )
    .into()
}

/// Headers a Prometheus client sends, before the policy filters them.
fn inbound_headers(remote_write: bool) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut add = |name: &'static str, value: &'static str| {
        headers.append(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    };
    add("host", "127.0.0.1:8005");
    add("user-agent", "Grafana/12.1.0");
    add("accept", "application/json, text/plain, */*");
    add("accept-encoding", "gzip");
    add("connection", "keep-alive");
    add("x-forwarded-for", "10.0.3.7");
    add("x-scope-orgid", "tenant-1");
    if remote_write {
        add("content-type", "application/x-protobuf");
        add("content-encoding", "snappy");
        add("x-prometheus-remote-write-version", "0.1.0");
        add("content-length", "102400");
    }
    headers
}

/// The request as the proxy hands it to the signer: absolute URI, policy-filtered headers.
fn outbound(path_and_query: &str, remote_write: bool) -> Request<()> {
    let policy = HeaderPolicy::new(&["X-Scope-OrgID".to_owned()], &[], "").expect("policy");
    let mut request = Request::new(());
    *request.uri_mut() = format!("https://{HOST}{path_and_query}")
        .parse()
        .expect("uri");
    *request.headers_mut() = policy.upstream_headers(&inbound_headers(remote_write));
    let headers = request.headers_mut();
    headers.insert(http::header::HOST, HeaderValue::from_static(HOST));
    headers.append(
        http::header::VIA,
        HeaderValue::from_static("1.1 sigv4-proxy-0123456789ab"),
    );
    if remote_write {
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(102_400));
        *request.method_mut() = http::Method::POST;
    }
    request
}

fn signing(c: &mut Criterion) {
    let signer = Signer::new("aps", "us-east-1");
    let identity = identity();
    let time = UNIX_EPOCH + Duration::from_secs(1_767_225_600);
    let query_target =
        upstream_target(&format!("{WORKSPACE}/api/v1/query"), Some(QUERY)).expect("target");
    let query_request = outbound(&query_target, false);
    let empty = Payload::Sha256(
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".to_owned(),
    );
    c.bench_function("sign/amp_query", |b| {
        b.iter_batched_ref(
            || query_request.clone(),
            |request| {
                signer
                    .sign(request, black_box(&empty), &identity, time)
                    .expect("signs")
            },
            BatchSize::SmallInput,
        )
    });

    let body = Bytes::from(
        (0..102_400u32)
            .map(|i| (i * 31 % 251) as u8)
            .collect::<Vec<_>>(),
    );
    let write_request = outbound(&format!("{WORKSPACE}/api/v1/remote_write"), true);
    let mut group = c.benchmark_group("sign");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("remote_write_100KiB", |b| {
        b.iter_batched_ref(
            || (write_request.clone(), Full::new(body.clone())),
            |(request, full)| {
                let hashed = ready(read_hashed(full.clone(), 32 << 20)).expect("reads");
                signer
                    .sign(
                        request,
                        &Payload::Sha256(hashed.sha256_hex),
                        &identity,
                        time,
                    )
                    .expect("signs")
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();

    let mut group = c.benchmark_group("body");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("read_hashed_100KiB", |b| {
        b.iter(|| ready(read_hashed(Full::new(black_box(body.clone())), 32 << 20)).expect("reads"))
    });
    group.finish();
}

fn header_policy(c: &mut Criterion) {
    let plain = HeaderPolicy::default();
    let amp = HeaderPolicy::new(&["X-Scope-OrgID".to_owned()], &[], "").expect("policy");
    let query = inbound_headers(false);
    let write = inbound_headers(true);
    c.bench_function("headers/upstream_query", |b| {
        b.iter(|| plain.upstream_headers(black_box(&query)))
    });
    c.bench_function("headers/upstream_remote_write_amp", |b| {
        b.iter(|| amp.upstream_headers(black_box(&write)))
    });
    let mut response = HeaderMap::new();
    response.insert("content-type", HeaderValue::from_static("application/json"));
    response.insert(
        "date",
        HeaderValue::from_static("Thu, 01 Jan 2026 00:00:00 GMT"),
    );
    response.insert("content-length", HeaderValue::from_static("4096"));
    response.insert("connection", HeaderValue::from_static("keep-alive"));
    c.bench_function("headers/response", |b| {
        b.iter_batched_ref(
            || response.clone(),
            HeaderPolicy::response_headers,
            BatchSize::SmallInput,
        )
    });
}

fn query_reencoding(c: &mut Criterion) {
    let query_path = format!("{WORKSPACE}/api/v1/query");
    let series_path = format!("{WORKSPACE}/api/v1/series");
    c.bench_function("target/instant_query", |b| {
        b.iter(|| upstream_target(black_box(&query_path), Some(black_box(QUERY))).expect("ok"))
    });
    c.bench_function("target/series_match", |b| {
        b.iter(|| {
            upstream_target(black_box(&series_path), Some(black_box(SERIES_QUERY))).expect("ok")
        })
    });
    let dirty = format!("{WORKSPACE}//api/v1/./query/");
    c.bench_function("target/path_only", |b| {
        b.iter(|| upstream_target(black_box(&dirty), None).expect("ok"))
    });
}

criterion_group!(hot_path, signing, header_policy, query_reencoding);
criterion_main!(hot_path);
