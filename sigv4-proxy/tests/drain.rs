//! Graceful shutdown under load: SIGTERM stops accepting, turns `/readyz` to 503 and lets
//! in-flight requests (short ones and long streams) finish within `--shutdown-timeout`,
//! then the process exits 0. Past the timeout it exits anyway.

mod support;

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::proxy_process::{ProxyProcess, curl};
use support::{Prometheus, StandIn, StandInOptions};

const WS: &str = "ws-test";
const AKID: &str = "AKIADRAINTESTKEY0001";
const SECRET: &str = "drain-test-secret-key/0123456789abcdefgh";

struct Stack {
    _prometheus: Prometheus,
    standin: StandIn,
}

fn stack() -> Stack {
    let prometheus = Prometheus::start();
    let standin = StandIn::start(StandInOptions {
        upstream: prometheus.url(),
        workspace: WS.into(),
        region: "us-east-1".into(),
        static_keys: vec![(AKID.into(), SECRET.into(), None)],
        ..StandInOptions::default()
    });
    Stack {
        _prometheus: prometheus,
        standin,
    }
}

fn proxy(standin: &StandIn, shutdown_timeout: &str) -> ProxyProcess {
    ProxyProcess::signing_for(
        standin.port,
        &["--shutdown-timeout", shutdown_timeout],
        &[
            ("AWS_ACCESS_KEY_ID", AKID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ],
    )
}

/// Waits until the stand-in has received `count` requests whose target contains `needle`.
fn wait_for_upstream(standin: &StandIn, needle: &str, count: usize, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let seen = standin
            .requests()
            .iter()
            .filter(|r| r["target"].as_str().is_some_and(|t| t.contains(needle)))
            .count();
        if seen >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {seen} of {count} requests for {needle} reached the upstream within {within:?}:\n{}",
            standin.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One GET over its own connection, read until the proxy closes it.
fn get_until_close(addr: SocketAddr, target: &str, keep_alive: bool) -> Result<Vec<u8>, String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    let connection = if keep_alive {
        ""
    } else {
        "Connection: close\r\n"
    };
    stream
        .write_all(format!("GET {target} HTTP/1.1\r\nHost: x\r\n{connection}\r\n").as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw) {
        Ok(_) => Ok(raw),
        Err(e) => Err(format!(
            "read after {} bytes: {e}: {:?}",
            raw.len(),
            String::from_utf8_lossy(&raw)
        )),
    }
}

/// After SIGTERM: `/readyz` answers 503 `draining`, and the proxy port refuses new
/// connections. Polls briefly, since the signal is handled asynchronously.
fn assert_draining(proxy: &ProxyProcess) {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let ready = support::http_get(proxy.admin_addr.port(), "/readyz")
            .unwrap_or_else(|e| panic!("/readyz during the drain: {e}\n{}", proxy.log()));
        if ready.status == 503 {
            assert_eq!(ready.json()["error"], "draining", "{}", ready.text());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz still {} after SIGTERM",
            ready.status
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    loop {
        match TcpStream::connect_timeout(&proxy.addr, Duration::from_secs(1)) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => break,
            other => {
                assert!(
                    Instant::now() < deadline,
                    "a new connection to the proxy port during the drain: {other:?}"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

#[test]
fn sigterm_with_200_requests_in_flight_loses_none() {
    const N: usize = 200;
    let stack = stack();
    let standin = &stack.standin;
    let mut proxy = proxy(standin, "20s");
    let addr = proxy.addr;
    let target = format!("/workspaces/{WS}/__test/slow?ms=1500");

    let clients: Vec<_> = (0..N)
        .map(|i| {
            let target = target.clone();
            // Half keep-alive, half Connection: close: the drain must close idle keep-alive
            // connections itself, or it would wait for the timeout.
            std::thread::spawn(move || get_until_close(addr, &target, i % 2 == 0))
        })
        .collect();
    wait_for_upstream(standin, "__test/slow", N, Duration::from_secs(15));
    assert_eq!(
        proxy.metric("sigv4_proxy_in_flight_requests"),
        Some(N as f64),
        "all {N} in flight at the proxy"
    );

    let signalled = Instant::now();
    proxy.send_sigterm();
    assert_draining(&proxy);
    let status = proxy
        .wait_exit(Duration::from_secs(25))
        .unwrap_or_else(|| panic!("still running 25 s after SIGTERM:\n{}", proxy.log()));
    let drain = signalled.elapsed();

    let mut ok = 0;
    for (i, client) in clients.into_iter().enumerate() {
        let raw = client
            .join()
            .expect("client thread")
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        let answer = support::parse_response(&raw)
            .unwrap_or_else(|e| panic!("request {i}: {e}: {:?}", String::from_utf8_lossy(&raw)));
        assert_eq!(answer.status, 200, "request {i}: {}", answer.text());
        assert_eq!(answer.json()["slept_ms"], 1500, "request {i}: full body");
        ok += 1;
    }
    eprintln!(
        "drain: {ok}/{N} in-flight requests answered 200 after SIGTERM; drained in {:.2} s; exit {:?}",
        drain.as_secs_f64(),
        status.code()
    );
    assert_eq!(status.code(), Some(0), "exit status {status}");
    assert!(
        drain < Duration::from_secs(5),
        "the drain took {drain:?} for 1.5 s requests: idle keep-alive connections held it"
    );
    let log = proxy.log();
    assert!(log.contains("all connections closed"), "{log}");
}

#[test]
fn sigterm_lets_a_long_stream_finish() {
    const SIZE: u64 = 50 * 1024 * 1024;
    let stack = stack();
    let standin = &stack.standin;
    let mut proxy = proxy(standin, "20s");
    let url = format!(
        "{}/workspaces/{WS}/__test/bytes?size={SIZE}&chunk=65536",
        proxy.url()
    );
    // A slow reader: about 2 s for 50 MiB.
    let reader = std::thread::spawn(move || curl(&["--limit-rate", "25M", &url]));
    wait_for_upstream(standin, "__test/bytes", 1, Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));

    let signalled = Instant::now();
    proxy.send_sigterm();
    assert_draining(&proxy);
    let status = proxy
        .wait_exit(Duration::from_secs(25))
        .unwrap_or_else(|| panic!("still running 25 s after SIGTERM:\n{}", proxy.log()));
    let drain = signalled.elapsed();
    let answer = reader.join().expect("reader thread");
    eprintln!(
        "drain: 50 MiB stream finished {} of {SIZE} bytes (curl exit {:?}, total {:.2} s); drained in {:.2} s; exit {:?}",
        answer.size_download,
        answer.exit_code,
        answer.total_secs,
        drain.as_secs_f64(),
        status.code()
    );
    assert_eq!(answer.status, 200, "{}", answer.stderr);
    assert_eq!(answer.exit_code, Some(0), "{}", answer.stderr);
    assert_eq!(answer.size_download, SIZE);
    assert_eq!(answer.body.len() as u64, SIZE);
    assert_eq!(status.code(), Some(0), "exit status {status}");
}

#[test]
fn shutdown_timeout_bounds_the_drain() {
    let stack = stack();
    let standin = &stack.standin;
    let mut proxy = proxy(standin, "1s");
    let addr = proxy.addr;
    let client = std::thread::spawn(move || {
        let started = Instant::now();
        let outcome = get_until_close(addr, &format!("/workspaces/{WS}/__test/slow?ms=5000"), true);
        (outcome, started.elapsed())
    });
    wait_for_upstream(standin, "__test/slow", 1, Duration::from_secs(10));

    let signalled = Instant::now();
    proxy.send_sigterm();
    assert_draining(&proxy);
    let status = proxy
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("still running 10 s after SIGTERM:\n{}", proxy.log()));
    let drain = signalled.elapsed();
    let (outcome, waited) = client.join().expect("client thread");
    eprintln!(
        "drain: --shutdown-timeout 1s with a 5 s request: exited after {:.2} s, exit {:?}; the client saw {} after {:.2} s",
        drain.as_secs_f64(),
        status.code(),
        match &outcome {
            Ok(raw) if raw.is_empty() => "the connection closed without an answer".to_owned(),
            Ok(raw) => format!("{:?}", String::from_utf8_lossy(raw)),
            Err(e) => e.clone(),
        },
        waited.as_secs_f64()
    );
    assert_eq!(status.code(), Some(0), "exit status {status}");
    assert!(
        drain >= Duration::from_millis(900) && drain < Duration::from_millis(2500),
        "exited {drain:?} after SIGTERM with --shutdown-timeout 1s"
    );
    // The request was cut off, not answered as if it had succeeded.
    if let Ok(raw) = &outcome {
        assert!(
            !String::from_utf8_lossy(raw).starts_with("HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
    assert!(
        waited < Duration::from_secs(4),
        "the client hung for {waited:?}"
    );
    assert!(
        proxy.log().contains("drain timeout reached"),
        "{}",
        proxy.log()
    );
}
