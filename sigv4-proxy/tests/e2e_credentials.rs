//! Credentials from the real aws-config chain, against local STS (moto) and a container
//! credentials endpoint, verified by the botocore stand-in.

mod support;

use std::time::{Duration, Instant};

use support::proxy_process::{ProxyProcess, TempHome, curl};
use support::{Prometheus, StandIn, StandInOptions};

const WS: &str = "ws-test";

fn standin(prometheus: &Prometheus, moto: bool, creds_ttl_secs: u64) -> StandIn {
    StandIn::start(StandInOptions {
        upstream: prometheus.url(),
        workspace: WS.into(),
        region: "us-east-1".into(),
        static_keys: vec![],
        creds_ttl_secs,
        creds_token: Some("pod-identity-token".into()),
        moto,
    })
}

fn query(proxy: &ProxyProcess) -> u16 {
    curl(&[&format!(
        "{}/workspaces/{WS}/api/v1/query?query=up",
        proxy.url()
    )])
    .status
}

#[test]
fn role_arn_assumes_the_role_through_sts_once() {
    let prometheus = Prometheus::start();
    let standin = standin(&prometheus, true, 900);
    let sts = format!("http://127.0.0.1:{}", standin.moto_port.expect("moto"));
    let proxy = ProxyProcess::signing_for(
        standin.port,
        &["--role-arn", "arn:aws:iam::123456789012:role/amp-query"],
        &[
            ("AWS_ACCESS_KEY_ID", "AKIABASEKEYFORSTS001"),
            ("AWS_SECRET_ACCESS_KEY", "base-secret"),
            ("AWS_ENDPOINT_URL_STS", &sts),
            ("AWS_ROLE_SESSION_NAME", "e2e-assume"),
        ],
    );
    for _ in 0..20 {
        assert_eq!(query(&proxy), 200, "{}\n{}", proxy.log(), standin.log());
    }
    let requests = standin.requests();
    assert_eq!(requests.len(), 20);
    for request in &requests {
        assert_eq!(request["verified"], true, "{request:#}");
    }
    assert_eq!(
        standin.stats()["sts_calls"],
        1,
        "credentials must be cached"
    );
}

#[test]
fn web_identity_irsa_through_sts_once() {
    let prometheus = Prometheus::start();
    let standin = standin(&prometheus, true, 900);
    let sts = format!("http://127.0.0.1:{}", standin.moto_port.expect("moto"));
    let dir = TempHome::new();
    let token_file = dir.path.join("token");
    std::fs::write(&token_file, "eyJhbGciOiJSUzI1NiJ9.e2e.sig").expect("token");
    let proxy = ProxyProcess::signing_for(
        standin.port,
        &[],
        &[
            (
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                &token_file.display().to_string(),
            ),
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/amp-irsa"),
            ("AWS_ENDPOINT_URL_STS", &sts),
            ("AWS_REGION", "us-east-1"),
        ],
    );
    for _ in 0..20 {
        assert_eq!(query(&proxy), 200, "{}\n{}", proxy.log(), standin.log());
    }
    assert!(standin.requests().iter().all(|r| r["verified"] == true));
    assert_eq!(
        standin.stats()["sts_calls"],
        1,
        "credentials must be cached"
    );
}

/// Short-lived container credentials (EKS Pod Identity's mechanism) are replaced in the
/// background before they expire: no request fails and none waits on the endpoint.
#[test]
fn short_lived_credentials_are_refreshed_before_expiry() {
    let prometheus = Prometheus::start();
    let standin = standin(&prometheus, false, 12);
    let proxy = ProxyProcess::signing_for(
        standin.port,
        &[],
        &[
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                &format!("http://127.0.0.1:{}/__creds", standin.port),
            ),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "pod-identity-token"),
        ],
    );
    let started = Instant::now();
    let mut sent = 0;
    while started.elapsed() < Duration::from_secs(27) {
        assert_eq!(
            query(&proxy),
            200,
            "request {sent} failed:\n{}\n{}",
            proxy.log(),
            standin.log()
        );
        sent += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    let requests = standin.requests();
    assert!(requests.iter().all(|r| r["verified"] == true));
    let keys: std::collections::BTreeSet<String> = requests
        .iter()
        .filter_map(|r| r["headers"].as_array())
        .flat_map(|h| h.iter())
        .filter(|h| {
            h[0].as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case("authorization"))
        })
        .filter_map(|h| {
            h[1].as_str()?
                .split("Credential=")
                .nth(1)?
                .split('/')
                .next()
                .map(str::to_owned)
        })
        .collect();
    let fetches = standin.stats()["creds_fetches"].as_u64().expect("count");
    // 12 s credentials are replaced 3 s early: about every 9 s, so 3 or 4 loads in 27 s,
    // never one per request.
    assert!(
        (3..=5).contains(&fetches),
        "{fetches} credential fetches for {sent} requests"
    );
    assert!(keys.len() >= 3, "requests were signed with {keys:?}");
}
