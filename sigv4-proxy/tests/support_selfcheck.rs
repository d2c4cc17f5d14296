//! The test harness itself: a real Prometheus behind the botocore AMP stand-in.
//!
//! Requests are signed here with aws-sigv4 directly (not through the proxy), so a pass shows
//! that the stand-in's verifier (botocore) and aws-sigv4 agree, that verified requests reach
//! Prometheus, that anything unsigned or tampered with gets AMP's 403, and that the control
//! API records what happened.

mod support;

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use support::{HttpResponse, Prometheus, StandIn, StandInOptions, http_get, http_request};

const WS: &str = "ws-test";
const AKID: &str = "AKIASELFCHECK0000001";
const SECRET: &str = "self/check+secret/0123456789abcdefGHIJKL";
const TOKEN: &str = "selfcheck-session-token";

struct Key<'a> {
    akid: &'a str,
    secret: &'a str,
    token: Option<&'a str>,
}

const KEY: Key<'static> = Key {
    akid: AKID,
    secret: SECRET,
    token: Some(TOKEN),
};

/// Signs like a well-behaved client (aws-sigv4, service `aps`) and sends it to the stand-in.
fn send_signed(
    standin: &StandIn,
    key: &Key<'_>,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    unsigned_payload: bool,
) -> HttpResponse {
    let signed = sign_headers(
        standin.port,
        key,
        method,
        target,
        headers,
        body,
        unsigned_payload,
    );
    send(standin, method, target, &signed, body)
}

fn sign_headers(
    port: u16,
    key: &Key<'_>,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    unsigned_payload: bool,
) -> Vec<(String, String)> {
    let identity: Identity = Credentials::new(
        key.akid,
        key.secret,
        key.token.map(str::to_owned),
        None,
        "selfcheck",
    )
    .into();
    let mut settings = SigningSettings::default();
    if unsigned_payload {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("aps")
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .expect("signing params")
        .into();
    let signable_body = if unsigned_payload {
        SignableBody::UnsignedPayload
    } else {
        SignableBody::Bytes(body)
    };
    let uri = format!("http://127.0.0.1:{port}{target}");
    let signable = SignableRequest::new(method, uri, headers.iter().copied(), signable_body)
        .expect("signable request");
    let (instructions, _signature) = sign(signable, &params).expect("sign").into_parts();
    let mut all: Vec<(String, String)> = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    all.extend(
        instructions
            .headers()
            .map(|(n, v)| (n.to_owned(), v.to_owned())),
    );
    all
}

fn send(
    standin: &StandIn,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> HttpResponse {
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    http_request(method, standin.port, target, &refs, body)
        .unwrap_or_else(|e| panic!("{method} {target}: {e}\n{}", standin.log()))
}

fn ws(path_and_query: &str) -> String {
    format!("/workspaces/{WS}{path_and_query}")
}

fn assert_refused(answer: &HttpResponse, what: &str, detail_part: &str) {
    assert_eq!(answer.status, 403, "{what}: {}", answer.text());
    assert_eq!(
        answer.header("x-amzn-errortype"),
        Some("InvalidSignatureException"),
        "{what}"
    );
    let json = answer.json();
    assert!(
        json["message"]
            .as_str()
            .is_some_and(|m| m.contains("signature we calculated does not match")),
        "{what}: {json}"
    );
    assert!(
        json["detail"]
            .as_str()
            .is_some_and(|d| d.contains(detail_part)),
        "{what}: want {detail_part:?} in {json}"
    );
}

#[test]
fn unsigned_requests_get_403_and_are_recorded() {
    let prometheus = Prometheus::start();
    assert_eq!(
        http_get(prometheus.port, "/api/v1/query?query=up")
            .expect("query Prometheus")
            .status,
        200
    );
    let standin = StandIn::start(StandInOptions {
        upstream: prometheus.url(),
        workspace: WS.into(),
        region: "us-east-1".into(),
        static_keys: vec![(AKID.into(), SECRET.into(), Some(TOKEN.into()))],
        creds_ttl_secs: 900,
        creds_token: Some("pod-token".into()),
        moto: false,
    });
    assert_eq!(standin.moto_port, None);

    let unsigned = http_get(standin.port, &ws("/api/v1/query?query=up")).expect("unsigned");
    assert_refused(&unsigned, "unsigned", "missing Authorization");

    let requests = standin.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let record = &requests[0];
    assert_eq!(record["method"], "GET");
    assert_eq!(record["target"], ws("/api/v1/query?query=up"));
    assert_eq!(record["verified"], false);
    assert_eq!(record["status"], 403);
    assert_eq!(record["body_len"], 0);
    assert!(
        record["headers"]
            .as_array()
            .expect("headers")
            .iter()
            .any(|h| h[0]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case("host")))
    );
    assert!(standin.log().contains("REJECTED GET"), "{}", standin.log());

    standin.reset();
    assert!(standin.requests().is_empty());
    assert_eq!(standin.stats()["creds_fetches"], 0);
    assert_eq!(standin.stats()["sts_calls"], 0);
}

#[test]
fn botocore_verifier_agrees_with_aws_sigv4_and_rejects_tampering() {
    let prometheus = Prometheus::start();
    let standin = StandIn::start(StandInOptions {
        upstream: prometheus.url(),
        static_keys: vec![(AKID.into(), SECRET.into(), Some(TOKEN.into()))],
        creds_token: Some("pod-token".into()),
        ..StandInOptions::default()
    });

    // Signed GET reaches Prometheus.
    let query = send_signed(
        &standin,
        &KEY,
        "GET",
        &ws("/api/v1/query?query=up"),
        &[],
        b"",
        false,
    );
    assert_eq!(query.status, 200, "{}\n{}", query.text(), standin.log());
    assert_eq!(query.json()["status"], "success");

    // Strictly encoded query with reserved characters, plus a signed custom header.
    let encoded =
        ws("/api/v1/query?query=sum%28up%29%20by%20%28job%29&time=2026-01-01T00%3A00%3A00Z");
    let answer = send_signed(
        &standin,
        &KEY,
        "GET",
        &encoded,
        &[("x-scope-orgid", "tenant-a")],
        b"",
        false,
    );
    assert_eq!(answer.status, 200, "{}", answer.text());

    // A form POST: the body is part of the signature.
    let form = b"query=vector%281%29&time=1700000000";
    let form_headers = [("content-type", "application/x-www-form-urlencoded")];
    let posted = send_signed(
        &standin,
        &KEY,
        "POST",
        &ws("/api/v1/query"),
        &form_headers,
        form,
        false,
    );
    assert_eq!(posted.status, 200, "{}", posted.text());

    // Double encoding: a %2F in the path is canonicalised as %252F by both sides. (Prometheus
    // then answers 301 itself: Go's mux cleans the decoded `//` out of the path.)
    let label = ws("/api/v1/label/%2Fodd/values");
    let odd = send_signed(&standin, &KEY, "GET", &label, &[], b"", false);
    assert_ne!(odd.status, 403, "{}", odd.text());

    // UNSIGNED-PAYLOAD (x-amz-content-sha256 signed) to the echo route.
    let echo = send_signed(
        &standin,
        &KEY,
        "POST",
        &ws("/__test/echo"),
        &[("content-type", "application/x-protobuf")],
        b"streamed body",
        true,
    );
    assert_eq!(echo.status, 200, "{}", echo.text());
    assert_eq!(echo.json()["body_len"], 13);

    // Tampering.
    let signed = sign_headers(
        standin.port,
        &KEY,
        "POST",
        &ws("/api/v1/query"),
        &form_headers,
        form,
        false,
    );
    let changed_body = send(
        &standin,
        "POST",
        &ws("/api/v1/query"),
        &signed,
        b"query=vector%282%29&time=1700000000",
    );
    assert_refused(&changed_body, "changed body", "signature mismatch");
    let signed = sign_headers(
        standin.port,
        &KEY,
        "GET",
        &ws("/api/v1/query?query=up"),
        &[],
        b"",
        false,
    );
    let changed_query = send(
        &standin,
        "GET",
        &ws("/api/v1/query?query=down"),
        &signed,
        b"",
    );
    assert_refused(&changed_query, "changed query", "--- canonical request ---");
    let plus = send_signed(
        &standin,
        &KEY,
        "GET",
        &ws("/api/v1/query?query=a+b"),
        &[],
        b"",
        false,
    );
    assert_refused(&plus, "literal +", "literal '+'");
    let wrong_secret = Key {
        secret: "not-the-secret",
        ..KEY
    };
    let forged = send_signed(
        &standin,
        &wrong_secret,
        "GET",
        &ws("/api/v1/query?query=up"),
        &[],
        b"",
        false,
    );
    assert_refused(&forged, "wrong secret", "signature mismatch");
    let no_token = Key { token: None, ..KEY };
    let tokenless = send_signed(
        &standin,
        &no_token,
        "GET",
        &ws("/api/v1/query?query=up"),
        &[],
        b"",
        false,
    );
    assert_refused(&tokenless, "missing token", "x-amz-security-token");

    // Another workspace: 404.
    let other = send_signed(
        &standin,
        &KEY,
        "GET",
        "/workspaces/ws-other/api/v1/query?query=up",
        &[],
        b"",
        false,
    );
    assert_eq!(other.status, 404, "{}", other.text());

    // Container credentials: token-protected, a new key per call, usable at once.
    let refused = http_get(standin.port, "/__creds").expect("creds");
    assert_eq!(refused.status, 401);
    let creds = http_request(
        "GET",
        standin.port,
        "/__creds",
        &[("Authorization", "pod-token")],
        b"",
    )
    .expect("creds")
    .json();
    let issued = Key {
        akid: creds["AccessKeyId"].as_str().expect("AccessKeyId"),
        secret: creds["SecretAccessKey"].as_str().expect("SecretAccessKey"),
        token: Some(creds["Token"].as_str().expect("Token")),
    };
    assert!(issued.akid.starts_with("ASIASTANDIN"), "{creds}");
    assert!(
        creds["Expiration"]
            .as_str()
            .is_some_and(|e| e.ends_with('Z')),
        "{creds}"
    );
    let with_issued = send_signed(
        &standin,
        &issued,
        "GET",
        &ws("/api/v1/query?query=up"),
        &[],
        b"",
        false,
    );
    assert_eq!(with_issued.status, 200, "{}", with_issued.text());
    assert_eq!(standin.stats()["creds_fetches"], 1);

    // What the control API recorded.
    let records = standin.requests();
    let verified: Vec<bool> = records.iter().map(|r| r["verified"] == true).collect();
    assert_eq!(
        verified,
        [
            true, true, true, true, true, false, false, false, false, false, true, true
        ],
        "{records:#?}"
    );
    assert!(
        records[0]["signed_headers"]
            .as_array()
            .expect("list")
            .iter()
            .any(|h| h == "x-amz-security-token")
    );
    assert!(
        records[1]["signed_headers"]
            .as_array()
            .expect("list")
            .iter()
            .any(|h| h == "x-scope-orgid")
    );
    assert_eq!(records[2]["body_len"], form.len());
    assert_eq!(records[10]["status"], 404);
}
