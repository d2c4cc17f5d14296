//! Client connection lifetimes: idle keep-alive connections are closed, busy ones never are,
//! and a client that gives up cancels its upstream request.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::Upstream;
use support::proxy_process::{ProxyProcess, curl};

const AKID: &str = "AKIAE2ECONNSKEY00001";
const SECRET: &str = "e2e-connections-secret";
const WS: &str = "ws-test";

fn stack(extra: &[&str]) -> (Upstream, ProxyProcess) {
    let upstream = Upstream::start(AKID, SECRET, None);
    let proxy = ProxyProcess::signing_for(
        upstream.standin.port,
        extra,
        &[
            ("AWS_ACCESS_KEY_ID", AKID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ],
    );
    (upstream, proxy)
}

/// Seconds until the server closes `stream` (reads until EOF), at most `limit`.
fn seconds_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<f64> {
    let started = Instant::now();
    stream.set_read_timeout(Some(limit)).expect("timeout");
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(started.elapsed().as_secs_f64()),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

fn in_flight(proxy: &ProxyProcess) -> f64 {
    let metrics = curl(&[&format!("{}/metrics", proxy.admin_url())]).text();
    metrics
        .lines()
        .find(|l| l.starts_with("sigv4_proxy_in_flight_requests "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("in-flight gauge")
}

#[test]
fn idle_keep_alive_connections_are_closed_but_busy_ones_are_not() {
    let (_upstream, proxy) = stack(&["--client-idle-timeout", "1s"]);

    // A connection that never sends anything.
    let mut silent = TcpStream::connect(proxy.addr).expect("connect");
    let closed_after = seconds_until_closed(&mut silent, Duration::from_secs(5)).expect("closed");
    assert!(
        (0.9..3.0).contains(&closed_after),
        "silent connection closed after {closed_after} s"
    );

    // A keep-alive connection after one answered request.
    let mut kept = TcpStream::connect(proxy.addr).expect("connect");
    write!(
        kept,
        "GET /workspaces/{WS}/__test/echo HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .expect("write");
    let closed_after = seconds_until_closed(&mut kept, Duration::from_secs(5)).expect("closed");
    assert!(
        (0.9..3.0).contains(&closed_after),
        "idle keep-alive closed after {closed_after} s"
    );

    // A request whose upstream takes longer than the idle timeout is not cut.
    let slow = curl(&[&format!(
        "{}/workspaces/{WS}/__test/slow?ms=2500",
        proxy.url()
    )]);
    assert_eq!(slow.status, 200, "{}", slow.text());
    // Nor is a long stream.
    let stream = curl(&[
        "-o",
        "/dev/null",
        "--limit-rate",
        "2M",
        &format!("{}/workspaces/{WS}/__test/bytes?size=6000000", proxy.url()),
    ]);
    assert_eq!(stream.status, 200);
    assert_eq!(stream.size_download, 6_000_000);
}

/// A client that gives up (KEDA's 3 s deadline, an adapter timeout) must not leave its
/// PromQL running through us: the upstream request is dropped with it.
#[test]
fn a_client_that_gives_up_cancels_the_upstream_request() {
    let (upstream, proxy) = stack(&[]);
    let standin = &upstream.standin;
    let gave_up = curl(&[
        "--max-time",
        "1",
        &format!("{}/workspaces/{WS}/__test/slow?ms=5000", proxy.url()),
    ]);
    assert_eq!(gave_up.status, 0, "curl gave up: {}", gave_up.stderr);
    let deadline = Instant::now() + Duration::from_millis(1500);
    while in_flight(&proxy) > 0.0 {
        assert!(
            Instant::now() < deadline,
            "the proxy still waits for the abandoned upstream answer"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        standin.requests().len(),
        1,
        "the request did reach the upstream"
    );
    assert_eq!(
        curl(&[&format!("{}/workspaces/{WS}/__test/echo", proxy.url())]).status,
        200
    );
}
