//! Real clients → sigv4-proxy → botocore-verifying AMP stand-in → real Prometheus.
//!
//! Every request the proxy forwards is re-verified by botocore, an independent SigV4
//! implementation; anything mis-signed gets 403 there and fails these tests.

mod support;

use support::proxy_process::{ProxyProcess, curl};
use support::{Prometheus, StandIn, StandInOptions, Upstream};

const AKID: &str = "AKIAE2EQUERYKEY00001";
const SECRET: &str = "e2e/query+secret";
const TOKEN: &str = "e2e-session-token";
const WS: &str = "ws-test";

struct Stack {
    upstream: Upstream,
    proxy: ProxyProcess,
}

impl Stack {
    fn start(extra_args: &[&str]) -> Self {
        let upstream = Upstream::start(AKID, SECRET, Some(TOKEN));
        let proxy = ProxyProcess::signing_for(
            upstream.standin.port,
            extra_args,
            &[
                ("AWS_ACCESS_KEY_ID", AKID),
                ("AWS_SECRET_ACCESS_KEY", SECRET),
                ("AWS_SESSION_TOKEN", TOKEN),
            ],
        );
        Self { upstream, proxy }
    }

    fn url(&self, path_and_query: &str) -> String {
        format!("{}/workspaces/{WS}{path_and_query}", self.proxy.url())
    }

    /// Every request the stand-in saw was verified; returns how many there were.
    fn assert_all_verified(&self) -> usize {
        let requests = self.upstream.standin.requests();
        for request in &requests {
            assert_eq!(
                request["verified"],
                true,
                "stand-in rejected a proxied request: {request:#}\nproxy log:\n{}",
                self.proxy.log()
            );
        }
        requests.len()
    }
}

fn assert_prometheus_success(result: &support::proxy_process::CurlResult) {
    assert_eq!(result.status, 200, "{} {}", result.text(), result.stderr);
    assert_eq!(result.json()["status"], "success", "{}", result.text());
}

/// The exact shapes prometheus-adapter and KEDA send (adapter-keda-anchor §14).
#[test]
fn adapter_and_keda_request_shapes_verify_and_reach_prometheus() {
    let stack = Stack::start(&[]);

    // #1 adapter discovery: form `+`, encoded `[]`, fractional start.
    let series = curl(&[&stack.url(
        "/api/v1/series?match%5B%5D=up+%7Bjob%21%3D%22%22%2Cinstance%21%3D%22%22%7D&start=1755712340.123",
    )]);
    assert_prometheus_success(&series);

    // #3 adapter --prometheus-verb=POST: form body, no query string.
    let posted_series = curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/x-www-form-urlencoded",
        "--data-binary",
        "match%5B%5D=up+%7Bjob%21%3D%22%22%7D&start=1755712340.123",
        &stack.url("/api/v1/series"),
    ]);
    assert_prometheus_success(&posted_series);

    // #4 adapter query: empty `timeout=`, `=~` and `|` encoded, fractional time.
    let query = curl(&[&stack.url(
        "/api/v1/query?query=sum%28up%7Bjob%3D~%22a%7Cprometheus%22%7D%29+by+%28job%29&time=1755712400.173&timeout=",
    )]);
    assert_prometheus_success(&query);

    // #5 adapter POST query with a body of tens of KB (many pods in a regex).
    let pods: Vec<String> = (0..2500).map(|i| format!("pod-{i:05}")).collect();
    let long_query = format!(
        "query=sum%28up%7Binstance%3D~%22{}%22%7D%29&time=1755712400.173&timeout=",
        pods.join("%7C")
    );
    assert!(long_query.len() > 25_000);
    let long = curl(&[
        "-X",
        "POST",
        "-H",
        "Content-Type: application/x-www-form-urlencoded",
        "--data-binary",
        &long_query,
        &stack.url("/api/v1/query"),
    ]);
    assert_prometheus_success(&long);

    // #6 KEDA: raw `:` in an RFC 3339 time.
    let keda = curl(&[&stack.url(
        "/api/v1/query?query=sum%28rate%28prometheus_http_requests_total%7Bhandler%3D%22%2Fmetrics%22%7D%5B2m%5D%29%29&time=2026-08-20T17:53:42Z",
    )]);
    assert_prometheus_success(&keda);

    // #7 KEDA extra parameters in random order, plus a custom header.
    let keda_extra = curl(&[
        "-H",
        "X-Scope-OrgID: tenant-a",
        &stack.url("/api/v1/query?query=up&time=2026-08-20T17:53:42Z&namespace=prod&dedup=true&partial_response=false"),
    ]);
    assert_prometheus_success(&keda_extra);

    // #8 KEDA with a trailing slash in serverAddress: `//` in the path.
    let double_slash = curl(&[&format!(
        "{}/workspaces/{WS}//api/v1/query?query=up&time=2026-08-20T17:53:42Z",
        stack.proxy.url()
    )]);
    assert_prometheus_success(&double_slash);

    // Percent-escapes in the path reach Prometheus intact: `j%6Fb` is `job`, and a `%2F`
    // inside a label name gets exactly the answer Prometheus gives without the proxy.
    let escaped = curl(&[&stack.url("/api/v1/label/j%6Fb/values")]);
    assert_prometheus_success(&escaped);
    let slash = curl(&[&stack.url("/api/v1/label/%2Fodd/values")]);
    let direct = curl(&[&format!(
        "{}/api/v1/label/%2Fodd/values",
        stack.upstream.prometheus.url()
    )]);
    assert_eq!(slash.status, direct.status, "{}", slash.text());

    // Range queries and labels.
    let range = curl(&[
        "--data-urlencode",
        "query=rate(prometheus_http_requests_total[1m])",
        "--data-urlencode",
        "start=2026-01-01T00:00:00Z",
        "--data-urlencode",
        "end=2026-01-01T00:10:00Z",
        "--data-urlencode",
        "step=15s",
        &stack.url("/api/v1/query_range"),
    ]);
    assert_prometheus_success(&range);
    assert_prometheus_success(&curl(&[&stack.url("/api/v1/labels")]));

    assert_eq!(stack.assert_all_verified(), 11);
    let seen = stack.upstream.standin.requests();
    // What went upstream is the strict canonical encoding that was signed.
    let targets: Vec<&str> = seen.iter().filter_map(|r| r["target"].as_str()).collect();
    assert!(
        targets
            .contains(&"/workspaces/ws-test/api/v1/query?query=up&time=2026-08-20T17%3A53%3A42Z"),
        "{targets:#?}"
    );
    assert!(
        targets
            .iter()
            .all(|t| !t.contains('+') && !t.contains("//")),
        "{targets:#?}"
    );
    for escaped in [
        "/workspaces/ws-test/api/v1/label/%2Fodd/values",
        "/workspaces/ws-test/api/v1/label/j%6Fb/values",
    ] {
        assert!(targets.contains(&escaped), "{targets:#?}");
    }
    // Every request carried the session token, and signed the custom header.
    for request in &seen {
        let signed = request["signed_headers"].as_array().expect("list");
        assert!(
            signed.iter().any(|h| h == "x-amz-security-token"),
            "{request:#}"
        );
    }
    assert!(seen.iter().any(|r| {
        r["signed_headers"]
            .as_array()
            .expect("list")
            .iter()
            .any(|h| h == "x-scope-orgid")
    }));
}

#[test]
fn promtool_queries_through_the_proxy() {
    let stack = Stack::start(&[]);
    let server = stack.url("");
    let promtool = support::promtool_bin();
    let run = |args: &[&str]| {
        let output = std::process::Command::new(&promtool)
            .args(args)
            .env("NO_PROXY", "*")
            .output()
            .expect("promtool");
        assert!(
            output.status.success(),
            "promtool {args:?}: {}{}\nproxy log:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            stack.proxy.log()
        );
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    // Prometheus scrapes itself every second; wait for the first sample.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let out = run(&["query", "instant", &server, "up"]);
        if out.contains("up{") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no `up` sample: {out}"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let range = run(&[
        "query",
        "range",
        "--start",
        "2026-01-01T00:00:00Z",
        "--end",
        "2026-01-01T00:01:00Z",
        "--step",
        "15s",
        &server,
        "vector(1)",
    ]);
    assert!(range.contains("1 @[1767225600]"), "{range}");
    let series = run(&["query", "series", "--match", "up", &server]);
    assert!(series.contains("__name__"), "{series}");
    let labels = run(&["query", "labels", &server, "job"]);
    assert!(labels.contains("prometheus"), "{labels}");
    assert!(stack.assert_all_verified() >= 4);
}

#[test]
fn upstream_answers_pass_through_unchanged() {
    let stack = Stack::start(&[]);

    let throttled = curl(&[&stack.url("/__test/status?code=429&retry_after=7")]);
    assert_eq!(throttled.status, 429);
    assert_eq!(throttled.header("retry-after").as_deref(), Some("7"));

    let redirect = curl(&[&stack.url("/__test/redirect")]);
    assert_eq!(redirect.status, 302, "redirects are the client's to follow");
    assert_eq!(redirect.header("location").as_deref(), Some("/elsewhere"));

    // No --compressed: curl must receive the gzip bytes exactly as the upstream sent them.
    let gzip = curl(&["-H", "Accept-Encoding: gzip", &stack.url("/__test/gzip")]);
    assert_eq!(gzip.status, 200);
    assert_eq!(gzip.header("content-encoding").as_deref(), Some("gzip"));
    assert_eq!(&gzip.body[..2], &[0x1f, 0x8b], "gzip magic");

    let bad = curl(&[&stack.url("/api/v1/query?query=sum(")]);
    assert_eq!(bad.status, 400, "Prometheus' own 400 comes through");
    assert_eq!(bad.json()["errorType"], "bad_data");

    stack.assert_all_verified();
}

#[test]
fn header_policy_on_the_wire() {
    let stack = Stack::start(&[
        "--strip",
        "X-Drop-Me",
        "--duplicate-headers",
        "Authorization",
        "--custom-headers",
        "X-Team=observability,X-Env=test",
    ]);
    let echo = curl(&[
        "-H",
        "Authorization: Bearer caller-token",
        "-H",
        "X-Drop-Me: 1",
        "-H",
        "Connection: keep-alive, X-Hop",
        "-H",
        "X-Hop: secret-hop",
        "-H",
        "Proxy-Authorization: Basic eA==",
        "-H",
        "X-Amz-Content-Sha256: deadbeef",
        "-H",
        "X-Env: from-client",
        &stack.url("/__test/echo"),
    ]);
    assert_eq!(echo.status, 200, "{}", echo.text());
    let seen = echo.json();
    let headers: Vec<(String, String)> = seen["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .map(|h| {
            (
                h[0].as_str().expect("name").to_ascii_lowercase(),
                h[1].as_str().expect("value").to_owned(),
            )
        })
        .collect();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    for dropped in [
        "x-drop-me",
        "x-hop",
        "proxy-authorization",
        "connection",
        "x-amz-content-sha256",
    ] {
        assert_eq!(
            get(dropped),
            None,
            "{dropped} reached the upstream: {headers:?}"
        );
    }
    assert_eq!(get("x-original-authorization"), Some("Bearer caller-token"));
    assert_eq!(get("x-team"), Some("observability"));
    assert_eq!(get("x-env"), Some("from-client"), "the client's value wins");
    assert!(
        get("authorization")
            .expect("signed")
            .starts_with("AWS4-HMAC-SHA256 ")
    );

    let record = stack.upstream.standin.requests().pop().expect("recorded");
    assert_eq!(record["verified"], true, "{record:#}");
    let signed = support::signed_headers(&record);
    for name in [
        "x-original-authorization",
        "x-team",
        "x-env",
        "host",
        "x-amz-date",
    ] {
        assert!(signed.contains(&name), "{name} not signed: {signed:?}");
    }
    assert!(!signed.contains(&"user-agent"));
}

#[test]
fn sign_host_is_what_gets_signed_and_sent() {
    let prometheus = Prometheus::start();
    let standin = StandIn::start(StandInOptions {
        upstream: prometheus.url(),
        workspace: WS.into(),
        region: "eu-west-1".into(),
        static_keys: vec![(AKID.into(), SECRET.into(), None)],
        creds_ttl_secs: 900,
        creds_token: None,
        moto: false,
    });
    // Service and region are derived from the AMP name given to --sign-host.
    let proxy = ProxyProcess::start(
        &[
            "--host",
            &format!("127.0.0.1:{}", standin.port),
            "--sign-host",
            "aps-workspaces.eu-west-1.amazonaws.com",
            "--upstream-url-scheme",
            "http",
        ],
        &[
            ("AWS_ACCESS_KEY_ID", AKID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ],
    );
    let echo = curl(&[&format!("{}/workspaces/{WS}/__test/echo", proxy.url())]);
    assert_eq!(echo.status, 200, "{}", echo.text());
    let host = echo.json()["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .find(|h| {
            h[0].as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case("host"))
        })
        .map(|h| h[1].as_str().expect("value").to_owned());
    assert_eq!(
        host.as_deref(),
        Some("aps-workspaces.eu-west-1.amazonaws.com")
    );
    assert_eq!(standin.requests()[0]["verified"], true);
}

/// 32 clients at once must ride a pool of upstream connections, not open one per request
/// (the incumbent keeps 2 idle connections and churns the rest).
#[test]
fn upstream_connections_are_reused_under_concurrency() {
    const REQUESTS: usize = 640;
    const CONCURRENCY: usize = 32;
    let stack = Stack::start(&[]);
    let dir = support::ScratchDir::new("parallel");
    let config = dir.path.join("curl.conf");
    let mut lines = String::new();
    for i in 0..REQUESTS {
        lines.push_str(&format!(
            "url = \"{}\"\noutput = \"/dev/null\"\n",
            stack.url(&format!("/api/v1/query?query=vector({i})"))
        ));
    }
    std::fs::write(&config, lines).expect("curl config");
    let before = stack.upstream.standin.stats()["connections"]
        .as_u64()
        .expect("count");
    let output = std::process::Command::new("curl")
        .args([
            "-sS",
            "--noproxy",
            "*",
            "--fail",
            "--parallel",
            "--parallel-max",
        ])
        .arg(CONCURRENCY.to_string())
        .arg("--config")
        .arg(&config)
        .output()
        .expect("curl");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let after = stack.upstream.standin.stats()["connections"]
        .as_u64()
        .expect("count");
    // The stats call itself is one connection.
    let opened = after - before - 1;
    eprintln!("{REQUESTS} requests at concurrency {CONCURRENCY}: {opened} upstream connections");
    assert!(
        opened <= (CONCURRENCY as u64) + 8,
        "{opened} upstream connections for {REQUESTS} requests"
    );
    assert_eq!(stack.assert_all_verified(), REQUESTS);
}

/// A TLS upstream that offers h2: here another sigv4-proxy's TLS listener with a self-signed
/// certificate. Without --no-verify-ssl the certificate is refused (502); with it the request
/// goes through over HTTP/2 and is re-signed by the second proxy, which the stand-in verifies.
#[test]
fn tls_upstream_over_h2_and_no_verify_ssl() {
    let stack = Stack::start(&[]);
    let dir = support::ScratchDir::new("tls-upstream");
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("rcgen");
    let cert = dir.path.join("tls.crt");
    let key = dir.path.join("tls.key");
    std::fs::write(&cert, certified.cert.pem()).expect("cert");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("key");
    let tls_front = ProxyProcess::signing_for(
        stack.upstream.standin.port,
        &[
            "--tls-cert",
            &cert.display().to_string(),
            "--tls-key",
            &key.display().to_string(),
            "--tls-port",
            "127.0.0.1:0",
            "--access-log",
        ],
        &[
            ("AWS_ACCESS_KEY_ID", AKID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
            ("AWS_SESSION_TOKEN", TOKEN),
        ],
    );
    let tls_addr = tls_front
        .log()
        .lines()
        .find(|l| l.contains("TLS listening"))
        .and_then(|l| l.split("address=").nth(1))
        .map(|a| a.trim().to_owned())
        .expect("TLS listener address in log");
    let through = |extra: &[&str]| {
        let mut args = vec![
            "--host",
            tls_addr.as_str(),
            "--upstream-url-scheme",
            "https",
            "--name",
            "aps",
            "--region",
            "us-east-1",
        ];
        args.extend_from_slice(extra);
        ProxyProcess::start(
            &args,
            &[
                ("AWS_ACCESS_KEY_ID", "AKIAOUTERPROXY000001"),
                ("AWS_SECRET_ACCESS_KEY", "outer"),
            ],
        )
    };

    let strict = through(&[]);
    let refused = curl(&[&format!(
        "{}/workspaces/{WS}/api/v1/query?query=up",
        strict.url()
    )]);
    assert_eq!(
        refused.status, 502,
        "a self-signed certificate must not be trusted"
    );

    let lenient = through(&["--no-verify-ssl"]);
    let answer = curl(&[&format!(
        "{}/workspaces/{WS}/api/v1/query?query=up",
        lenient.url()
    )]);
    assert_prometheus_success(&answer);
    stack.assert_all_verified();
    // The TLS front logs the protocol version of the request it got from the outer proxy.
    let front_log = tls_front.log();
    assert!(
        front_log.contains("version=HTTP/2.0") && front_log.contains("status=200"),
        "the outer proxy should have spoken h2 (ALPN) to the TLS front:\n{front_log}"
    );
}
