//! `auth::Gate` over real TLS handshakes (tokio-rustls on both ends, certificates from rcgen),
//! with TokenReview, SubjectAccessReview and the authentication ConfigMap served by the
//! Kubernetes API stand-in, which records what it was asked.

#[path = "support/kube.rs"]
mod kube_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use adapter_shim::auth::{AuthArgs, AuthorizationMode, Gate, client_cert_verifier};
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use kube_support::{KubeStandIn, SHIM_TOKEN, eventually};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// --- certificates ------------------------------------------------------------------------------

struct Ca {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let key = rcgen::KeyPair::generate().expect("key");
        Self {
            issuer: rcgen::CertifiedIssuer::self_signed(params, key).expect("ca"),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A client certificate with this CN and organizations.
    fn client(&self, cn: &str, orgs: &[&str]) -> ClientCert {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        // rcgen keeps one value per attribute type: the second O goes in under the same OID
        // spelled as a custom type, so the subject carries two O attributes.
        assert!(orgs.len() <= 2, "at most two organizations");
        for (i, o) in orgs.iter().enumerate() {
            let kind = if i == 0 {
                rcgen::DnType::OrganizationName
            } else {
                rcgen::DnType::CustomDnType(vec![2, 5, 4, 10])
            };
            params.distinguished_name.push(kind, *o);
        }
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("cert");
        ClientCert {
            chain: vec![cert.der().clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        }
    }
}

struct ClientCert {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

// --- the server under test -------------------------------------------------------------------

/// An HTTPS server whose every request goes through `gate.admit`: 200 with the UserInfo as
/// JSON, or the Status code with the Status as JSON.
struct Server {
    addr: SocketAddr,
    server_ca: CertificateDer<'static>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(gate: Arc<Gate>) -> Server {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("server cert");
    let server_ca = cert.cert.der().clone();
    let key = PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der());
    let config = rustls::ServerConfig::builder()
        .with_client_cert_verifier(client_cert_verifier())
        .with_single_cert(vec![server_ca.clone()], key.into())
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let gate = Arc::clone(&gate);
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let peer: Vec<CertificateDer<'static>> = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
                    .unwrap_or_default();
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let gate = Arc::clone(&gate);
                    let peer = peer.clone();
                    async move {
                        let (parts, _) = req.into_parts();
                        let (code, body) = match gate.admit(&parts, &peer).await {
                            Ok(user) => (200, serde_json::to_vec(&user).expect("json")),
                            Err(status) => {
                                (status.code, serde_json::to_vec(&status).expect("json"))
                            }
                        };
                        let resp = hyper::Response::builder()
                            .status(code)
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from(body)))
                            .expect("response");
                        Ok::<_, std::convert::Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Server {
        addr,
        server_ca,
        task,
    }
}

/// A client certificate that does not match its key (to test proof of possession).
#[derive(Debug)]
struct MismatchedKey(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for MismatchedKey {
    fn resolve(
        &self,
        _: &[&[u8]],
        _: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

enum Identity<'a> {
    None,
    Cert(&'a ClientCert),
    /// The certificate of the first, the key of the second.
    Stolen(&'a ClientCert, &'a ClientCert),
}

/// Sends one GET over a fresh TLS connection; (status, JSON body), or Err for a failed
/// handshake or connection.
async fn get(
    server: &Server,
    identity: Identity<'_>,
    target: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, Value), String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server.server_ca.clone()).expect("root");
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let config = match identity {
        Identity::None => builder.with_no_client_auth(),
        Identity::Cert(c) => builder
            .with_client_auth_cert(c.chain.clone(), c.key.clone_key())
            .expect("client cert"),
        Identity::Stolen(cert, key) => {
            let signer =
                rustls::crypto::aws_lc_rs::sign::any_supported_type(&key.key).expect("key");
            builder.with_client_cert_resolver(Arc::new(MismatchedKey(Arc::new(
                rustls::sign::CertifiedKey::new(cert.chain.clone(), signer),
            ))))
        }
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(server.addr)
        .await
        .map_err(|e| e.to_string())?;
    let mut tls = connector
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let mut request = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    tls.write_all(request.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    tls.read_to_end(&mut raw)
        .await
        .map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no answer: {text:?}"))?;
    let code: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line: {head}"))?;
    let body = serde_json::from_str(body).map_err(|e| format!("body {body:?}: {e}"))?;
    Ok((code, body))
}

async fn ok_get(
    server: &Server,
    identity: Identity<'_>,
    target: &str,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    get(server, identity, target, headers)
        .await
        .expect("request")
}

// --- fixtures --------------------------------------------------------------------------------

const PODS_WILDCARD: &str = "/apis/custom.metrics.k8s.io/v1beta1/namespaces/prod/pods/%2A/http_requests_per_second?labelSelector=app%3Djazz";

struct World {
    standin: KubeStandIn,
    front_proxy_ca: Ca,
    client_ca: Ca,
    other_ca: Ca,
}

impl World {
    fn new() -> Self {
        Self {
            standin: KubeStandIn::start(),
            front_proxy_ca: Ca::new("front-proxy-ca"),
            client_ca: Ca::new("kubernetes-ca"),
            other_ca: Ca::new("someone-else"),
        }
    }

    /// The ConfigMap as kubeadm writes it; `with_client_ca: false` is EKS' variant.
    fn configmap(&self, front_proxy_ca: &Ca, with_client_ca: bool) -> Value {
        let mut data = json!({
            "requestheader-client-ca-file": front_proxy_ca.pem(),
            "requestheader-allowed-names": "[\"front-proxy-client\"]",
            "requestheader-username-headers": "[\"X-Remote-User\"]",
            "requestheader-uid-headers": "[\"X-Remote-Uid\"]",
            "requestheader-group-headers": "[\"X-Remote-Group\"]",
            "requestheader-extra-headers-prefix": "[\"X-Remote-Extra-\"]",
        });
        if with_client_ca {
            data["client-ca-file"] = Value::from(self.client_ca.pem());
        }
        data
    }

    async fn gate(&self, args: &AuthArgs) -> Arc<Gate> {
        let gate = Gate::new(args, Some(self.standin.client().await)).expect("gate");
        gate.start().await.expect("start");
        assert!(gate.is_ready());
        Arc::new(gate)
    }

    async fn standard(&self) -> (Arc<Gate>, Server) {
        self.standin
            .set_auth_configmap(&self.configmap(&self.front_proxy_ca, true));
        let gate = self.gate(&AuthArgs::default()).await;
        let server = serve(Arc::clone(&gate)).await;
        (gate, server)
    }
}

fn user(body: &Value) -> (String, Vec<String>) {
    let groups = body["groups"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|g| g.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    (body["name"].as_str().unwrap_or_default().to_owned(), groups)
}

const ALICE_HEADERS: &[(&str, &str)] = &[
    ("X-Remote-User", "alice"),
    ("X-Remote-Uid", "uid-alice"),
    ("X-Remote-Group", "devs"),
    ("X-Remote-Group", "ops"),
    ("X-Remote-Extra-Scopes", "read"),
    ("X-Remote-Extra-Example.com%2Fteam", "blue"),
];

// --- tests -----------------------------------------------------------------------------------

#[tokio::test]
async fn front_proxy_certificate_makes_the_remote_headers_trusted() {
    let w = World::new();
    w.standin
        .set_sar_policy(&json!({"default": "deny", "rules": [
            {"match": {"user": "alice"}, "allowed": true}
        ]}));
    let (_gate, server) = w.standard().await;
    let proxy = w.front_proxy_ca.client("front-proxy-client", &[]);
    let (code, body) = ok_get(
        &server,
        Identity::Cert(&proxy),
        PODS_WILDCARD,
        ALICE_HEADERS,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        body,
        json!({"name": "alice", "uid": "uid-alice", "groups": ["devs", "ops", "system:authenticated"],
               "extra": {"example.com/team": ["blue"], "scopes": ["read"]}})
    );
    // The SubjectAccessReview carried the header identity and the RequestInfo attributes,
    // with the shim's own credentials.
    let reviews = w.standin.access_reviews();
    assert_eq!(reviews.len(), 1, "{reviews:#?}");
    assert_eq!(reviews[0]["apiVersion"], "authorization.k8s.io/v1");
    assert_eq!(reviews[0]["kind"], "SubjectAccessReview");
    assert_eq!(
        reviews[0]["spec"],
        json!({
            "user": "alice",
            "uid": "uid-alice",
            "groups": ["devs", "ops", "system:authenticated"],
            "extra": {"example.com/team": ["blue"], "scopes": ["read"]},
            "resourceAttributes": {
                "verb": "get", "group": "custom.metrics.k8s.io", "version": "v1beta1",
                "resource": "pods", "subresource": "http_requests_per_second",
                "namespace": "prod", "name": "*"
            }
        })
    );
    assert_eq!(w.standin.review_callers(), [format!("Bearer {SHIM_TOKEN}")]);
}

#[tokio::test]
async fn remote_headers_are_not_trusted_without_the_right_certificate() {
    let w = World::new();
    w.standin.set_sar_policy(&json!({"default": "allow"}));
    let (_gate, server) = w.standard().await;

    // No certificate: the headers are ignored, the caller is anonymous.
    let (code, body) = ok_get(&server, Identity::None, PODS_WILDCARD, ALICE_HEADERS).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        user(&body),
        (
            "system:anonymous".into(),
            vec!["system:unauthenticated".into()]
        )
    );

    // A certificate from another CA with the allowed CN: rejected.
    let forged = w.other_ca.client("front-proxy-client", &[]);
    let (code, body) = ok_get(
        &server,
        Identity::Cert(&forged),
        PODS_WILDCARD,
        ALICE_HEADERS,
    )
    .await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (401, Some("Unauthorized")),
        "{body}"
    );
    assert_eq!(body["message"], "Unauthorized");

    // The front-proxy CA, but a CN outside the allowed names: rejected.
    let wrong_cn = w.front_proxy_ca.client("intruder", &[]);
    let (code, body) = ok_get(
        &server,
        Identity::Cert(&wrong_cn),
        PODS_WILDCARD,
        ALICE_HEADERS,
    )
    .await;
    assert_eq!(code, 401, "{body}");

    // The allowed certificate, but with another certificate's key: the handshake fails.
    let proxy = w.front_proxy_ca.client("front-proxy-client", &[]);
    let err = get(
        &server,
        Identity::Stolen(&proxy, &wrong_cn),
        PODS_WILDCARD,
        ALICE_HEADERS,
    )
    .await
    .expect_err("a certificate without its key must not get through");
    assert!(
        err.contains("handshake") || err.contains("read") || err.contains("write"),
        "{err}"
    );

    // Only the anonymous request reached authorization.
    let reviews = w.standin.access_reviews();
    assert_eq!(reviews.len(), 1, "{reviews:#?}");
    assert_eq!(reviews[0]["spec"]["user"], "system:anonymous");
}

#[tokio::test]
async fn client_ca_certificates_and_bearer_tokens_authenticate() {
    let w = World::new();
    w.standin.set_sar_policy(&json!({"default": "allow"}));
    w.standin.set_token(
        "hpa-token",
        &json!({"username": "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
                "uid": "uid-1", "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system"],
                "extra": {"authentication.kubernetes.io/pod-name": ["kcm-0"]}}),
    );
    let (_gate, server) = w.standard().await;

    // client-ca certificate: user = CN, groups = O; remote headers ignored.
    let bob = w.client_ca.client("bob", &["team-a", "team-b"]);
    let (code, body) = ok_get(&server, Identity::Cert(&bob), PODS_WILDCARD, ALICE_HEADERS).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        user(&body),
        (
            "bob".into(),
            vec![
                "team-a".into(),
                "team-b".into(),
                "system:authenticated".into()
            ]
        )
    );

    // Bearer token: one TokenReview, then the cached answer.
    let auth = [("Authorization", "Bearer hpa-token")];
    for _ in 0..3 {
        let (code, body) = ok_get(&server, Identity::None, PODS_WILDCARD, &auth).await;
        assert_eq!(code, 200, "{body}");
        assert_eq!(
            body,
            json!({"name": "system:serviceaccount:kube-system:horizontal-pod-autoscaler", "uid": "uid-1",
                   "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"],
                   "extra": {"authentication.kubernetes.io/pod-name": ["kcm-0"]}})
        );
    }
    let reviews = w.standin.token_reviews();
    assert_eq!(reviews.len(), 1, "{reviews:#?}");
    assert_eq!(reviews[0]["kind"], "TokenReview");
    assert_eq!(reviews[0]["spec"], json!({"token": "hpa-token"}));

    // An unknown token is a 401 (not anonymous), also cached.
    let bad = [("Authorization", "Bearer nope")];
    for _ in 0..2 {
        let (code, body) = ok_get(&server, Identity::None, PODS_WILDCARD, &bad).await;
        assert_eq!(code, 401, "{body}");
    }
    assert_eq!(w.standin.token_reviews().len(), 2);
    for caller in w.standin.review_callers() {
        assert_eq!(caller, format!("Bearer {SHIM_TOKEN}"));
    }
}

#[tokio::test]
async fn access_reviews_carry_the_apiserver_attributes() {
    let w = World::new();
    w.standin.set_sar_policy(&json!({"default": "allow"}));
    w.standin
        .set_token("t", &json!({"username": "hpa", "groups": ["g"]}));
    let (_gate, server) = w.standard().await;
    let auth = [("Authorization", "Bearer t")];
    let cases = [
        (
            "/apis/custom.metrics.k8s.io/v1beta2/namespaces/prod/pods/%2A/m?labelSelector=app%3Djazz",
            json!({"resourceAttributes": {"verb": "get", "group": "custom.metrics.k8s.io", "version": "v1beta2",
                   "resource": "pods", "subresource": "m", "namespace": "prod", "name": "*"}}),
        ),
        (
            "/apis/custom.metrics.k8s.io/v1beta1/namespaces/prod/services/jazz/m",
            json!({"resourceAttributes": {"verb": "get", "group": "custom.metrics.k8s.io", "version": "v1beta1",
                   "resource": "services", "subresource": "m", "namespace": "prod", "name": "jazz"}}),
        ),
        (
            "/apis/custom.metrics.k8s.io/v1beta1/namespaces/prod/deployments.apps/jazz/m",
            json!({"resourceAttributes": {"verb": "get", "group": "custom.metrics.k8s.io", "version": "v1beta1",
                   "resource": "deployments.apps", "subresource": "m", "namespace": "prod", "name": "jazz"}}),
        ),
        (
            "/apis/custom.metrics.k8s.io/v1beta1/namespaces/prod/metrics/m",
            json!({"resourceAttributes": {"verb": "get", "group": "custom.metrics.k8s.io", "version": "v1beta1",
                   "resource": "metrics", "namespace": "prod", "name": "m"}}),
        ),
        (
            "/apis/custom.metrics.k8s.io/v1beta1/nodes/%2A/node_load1",
            json!({"resourceAttributes": {"verb": "get", "group": "custom.metrics.k8s.io", "version": "v1beta1",
                   "resource": "nodes", "subresource": "node_load1", "name": "*"}}),
        ),
        (
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/prod/queue_depth?labelSelector=queue%3Dorders",
            json!({"resourceAttributes": {"verb": "list", "group": "external.metrics.k8s.io", "version": "v1beta1",
                   "resource": "queue_depth", "namespace": "prod"}}),
        ),
        (
            "/apis/custom.metrics.k8s.io/v1beta1",
            json!({"nonResourceAttributes": {"verb": "get", "path": "/apis/custom.metrics.k8s.io/v1beta1"}}),
        ),
        (
            "/apis",
            json!({"nonResourceAttributes": {"verb": "get", "path": "/apis"}}),
        ),
        (
            "/openapi/v2",
            json!({"nonResourceAttributes": {"verb": "get", "path": "/openapi/v2"}}),
        ),
    ];
    for (target, _) in &cases {
        let (code, body) = ok_get(&server, Identity::None, target, &auth).await;
        assert_eq!(code, 200, "{target}: {body}");
    }
    let reviews = w.standin.access_reviews();
    assert_eq!(reviews.len(), cases.len(), "{reviews:#?}");
    for ((target, want), review) in cases.iter().zip(&reviews) {
        let mut want = want.clone();
        want["user"] = json!("hpa");
        want["groups"] = json!(["g", "system:authenticated"]);
        assert_eq!(review["spec"], want, "{target}");
    }
}

#[tokio::test]
async fn access_review_answers_are_cached_and_denials_read_like_the_apiserver() {
    let w = World::new();
    w.standin.set_token("t", &json!({"username": "x"}));
    w.standin.set_sar_policy(&json!({"default": "allow", "rules": [
        {"match": {"user": "x", "namespace": "prod"}, "allowed": false, "reason": "no RBAC policy matched"}
    ]}));
    let (_gate, server) = w.standard().await;
    let auth = [("Authorization", "Bearer t")];
    let denied = "/apis/custom.metrics.k8s.io/v1beta1/namespaces/prod/pods/%2A/m";
    let allowed = "/apis/custom.metrics.k8s.io/v1beta1/namespaces/dev/pods/%2A/m";
    for _ in 0..3 {
        let (code, body) = ok_get(&server, Identity::None, denied, &auth).await;
        assert_eq!(code, 403, "{body}");
        assert_eq!(
            body,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                   "message": "pods.custom.metrics.k8s.io \"*\" is forbidden: User \"x\" cannot get resource \"pods/m\" in API group \"custom.metrics.k8s.io\" in the namespace \"prod\": no RBAC policy matched",
                   "reason": "Forbidden",
                   "details": {"name": "*", "group": "custom.metrics.k8s.io", "kind": "pods"},
                   "code": 403})
        );
        let (code, body) = ok_get(&server, Identity::None, allowed, &auth).await;
        assert_eq!(code, 200, "{body}");
    }
    // One review per distinct question within the TTL, allowed and denied alike.
    assert_eq!(w.standin.access_reviews().len(), 2);
}

#[tokio::test]
async fn access_review_cache_expires_after_its_ttl() {
    let w = World::new();
    w.standin.set_token("t", &json!({"username": "x"}));
    w.standin.set_sar_policy(&json!({"default": "allow"}));
    w.standin
        .set_auth_configmap(&w.configmap(&w.front_proxy_ca, true));
    let args = AuthArgs {
        authorization_webhook_cache_authorized_ttl: Duration::from_millis(1500),
        authentication_token_webhook_cache_ttl: Duration::from_millis(1500),
        ..AuthArgs::default()
    };
    let gate = w.gate(&args).await;
    let server = serve(gate).await;
    let auth = [("Authorization", "Bearer t")];
    ok_get(&server, Identity::None, PODS_WILDCARD, &auth).await;
    ok_get(&server, Identity::None, PODS_WILDCARD, &auth).await;
    assert_eq!(w.standin.access_reviews().len(), 1);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    ok_get(&server, Identity::None, PODS_WILDCARD, &auth).await;
    assert_eq!(w.standin.access_reviews().len(), 2);
    assert_eq!(w.standin.token_reviews().len(), 2);
}

#[tokio::test]
async fn ca_rotation_applies_without_restart() {
    let w = World::new();
    w.standin.set_sar_policy(&json!({"default": "allow"}));
    let (gate, server) = w.standard().await;
    let old_proxy = w.front_proxy_ca.client("front-proxy-client", &[]);
    let (code, body) = ok_get(
        &server,
        Identity::Cert(&old_proxy),
        PODS_WILDCARD,
        ALICE_HEADERS,
    )
    .await;
    assert_eq!((code, user(&body).0.as_str()), (200, "alice"), "{body}");

    // The cluster rotates its front-proxy CA: same gate, same server, new ConfigMap.
    let new_ca = Ca::new("front-proxy-ca-2");
    let new_proxy = new_ca.client("front-proxy-client", &[]);
    w.standin.set_auth_configmap(&w.configmap(&new_ca, true));
    let rotated = eventually(Duration::from_secs(10), || async {
        let (code, body) = ok_get(
            &server,
            Identity::Cert(&new_proxy),
            PODS_WILDCARD,
            ALICE_HEADERS,
        )
        .await;
        (code == 200 && user(&body).0 == "alice").then_some(())
    })
    .await;
    assert!(
        rotated.is_some(),
        "the new CA was never applied: {}",
        gate.describe()
    );
    let (code, body) = ok_get(
        &server,
        Identity::Cert(&old_proxy),
        PODS_WILDCARD,
        ALICE_HEADERS,
    )
    .await;
    assert_eq!(code, 401, "the old CA is still trusted: {body}");

    // A broken update is refused and the CA in force stays.
    w.standin
        .set_auth_configmap(&json!({"requestheader-client-ca-file": "garbage"}));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (code, _) = ok_get(
        &server,
        Identity::Cert(&new_proxy),
        PODS_WILDCARD,
        ALICE_HEADERS,
    )
    .await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn eks_configmap_without_client_ca_works() {
    let w = World::new();
    w.standin.set_sar_policy(&json!({"default": "allow"}));
    w.standin.set_token("t", &json!({"username": "hpa"}));
    w.standin
        .set_auth_configmap(&w.configmap(&w.front_proxy_ca, false));
    let gate = w.gate(&AuthArgs::default()).await;
    let server = serve(Arc::clone(&gate)).await;
    let proxy = w.front_proxy_ca.client("front-proxy-client", &[]);
    let (code, body) = ok_get(
        &server,
        Identity::Cert(&proxy),
        PODS_WILDCARD,
        ALICE_HEADERS,
    )
    .await;
    assert_eq!((code, user(&body).0.as_str()), (200, "alice"), "{body}");
    let (code, body) = ok_get(
        &server,
        Identity::None,
        PODS_WILDCARD,
        &[("Authorization", "Bearer t")],
    )
    .await;
    assert_eq!((code, user(&body).0.as_str()), (200, "hpa"), "{body}");
    // No client CA: a client certificate that is not a front-proxy one is refused.
    let bob = w.client_ca.client("bob", &[]);
    let (code, _) = ok_get(&server, Identity::Cert(&bob), PODS_WILDCARD, &[]).await;
    assert_eq!(code, 401);
    assert!(
        gate.describe().starts_with("client CA: none;"),
        "{}",
        gate.describe()
    );
}

#[tokio::test]
async fn missing_configmap_starts_and_is_picked_up_later() {
    let w = World::new();
    w.standin.set_sar_policy(&json!({"default": "allow"}));
    let gate = w.gate(&AuthArgs::default()).await;
    let server = serve(Arc::clone(&gate)).await;
    let proxy = w.front_proxy_ca.client("front-proxy-client", &[]);
    // Nothing to trust yet: the certificate matches no configured CA, so it is ignored.
    let (code, body) = ok_get(
        &server,
        Identity::Cert(&proxy),
        PODS_WILDCARD,
        ALICE_HEADERS,
    )
    .await;
    assert_eq!(
        (code, user(&body).0.as_str()),
        (200, "system:anonymous"),
        "{body}"
    );
    w.standin
        .set_auth_configmap(&w.configmap(&w.front_proxy_ca, true));
    let applied = eventually(Duration::from_secs(10), || async {
        let (code, body) = ok_get(
            &server,
            Identity::Cert(&proxy),
            PODS_WILDCARD,
            ALICE_HEADERS,
        )
        .await;
        (code == 200 && user(&body).0 == "alice").then_some(())
    })
    .await;
    assert!(applied.is_some());
}

#[tokio::test]
async fn lookup_failure_fails_start_unless_tolerated() {
    let w = World::new();
    w.standin
        .fail("/api/v1/namespaces/kube-system/configmaps", 403, 1);
    let gate = Gate::new(&AuthArgs::default(), Some(w.standin.client().await)).expect("gate");
    let err = gate.start().await.expect_err("lookup failed");
    assert!(
        err.to_string()
            .starts_with("unable to read configmap kube-system/extension-apiserver-authentication"),
        "{err}"
    );

    w.standin
        .fail("/api/v1/namespaces/kube-system/configmaps", 403, 1);
    let args = AuthArgs {
        authentication_tolerate_lookup_failure: true,
        ..AuthArgs::default()
    };
    let gate = Gate::new(&args, Some(w.standin.client().await)).expect("gate");
    gate.start().await.expect("tolerated");
    assert!(gate.is_ready());
}

#[tokio::test]
async fn always_allowed_paths_and_groups_skip_authorization() {
    let w = World::new();
    w.standin.set_sar_policy(&json!({"default": "deny"}));
    let (_gate, server) = w.standard().await;
    for path in ["/healthz", "/readyz", "/livez"] {
        let (code, body) = ok_get(&server, Identity::None, path, &[]).await;
        assert_eq!(code, 200, "{path}: {body}");
    }
    // Even a rejected certificate can probe health.
    let forged = w.other_ca.client("x", &[]);
    let (code, _) = ok_get(&server, Identity::Cert(&forged), "/readyz", &[]).await;
    assert_eq!(code, 200);
    // The aggregator's availability check: system:masters through the front proxy.
    let proxy = w.front_proxy_ca.client("front-proxy-client", &[]);
    let (code, body) = ok_get(
        &server,
        Identity::Cert(&proxy),
        "/apis/custom.metrics.k8s.io/v1beta1",
        &[
            ("X-Remote-User", "system:kube-aggregator"),
            ("X-Remote-Group", "system:masters"),
        ],
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert!(w.standin.access_reviews().is_empty());
    // Anyone else is asked about, and denied.
    let (code, body) = ok_get(&server, Identity::None, "/apis", &[]).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        "forbidden: User \"system:anonymous\" cannot get path \"/apis\""
    );
}

#[tokio::test]
async fn allow_authenticated_mode_needs_no_access_reviews() {
    let w = World::new();
    w.standin.set_token("t", &json!({"username": "hpa"}));
    w.standin
        .set_auth_configmap(&w.configmap(&w.front_proxy_ca, true));
    let args = AuthArgs {
        authorization_mode: AuthorizationMode::AllowAuthenticated,
        ..AuthArgs::default()
    };
    let gate = w.gate(&args).await;
    let server = serve(gate).await;
    let (code, body) = ok_get(
        &server,
        Identity::None,
        PODS_WILDCARD,
        &[("Authorization", "Bearer t")],
    )
    .await;
    assert_eq!((code, user(&body).0.as_str()), (200, "hpa"), "{body}");
    let proxy = w.front_proxy_ca.client("front-proxy-client", &[]);
    let (code, _) = ok_get(
        &server,
        Identity::Cert(&proxy),
        PODS_WILDCARD,
        ALICE_HEADERS,
    )
    .await;
    assert_eq!(code, 200);
    let (code, body) = ok_get(&server, Identity::None, PODS_WILDCARD, &[]).await;
    assert_eq!(code, 403, "{body}");
    assert!(w.standin.access_reviews().is_empty());
}

#[tokio::test]
async fn flags_can_replace_the_configmap() {
    let w = World::new();
    let dir = kube_support::TempDir::new("auth-flags");
    let fp = dir.path.join("front-proxy-ca.pem");
    let cc = dir.path.join("client-ca.pem");
    std::fs::write(&fp, w.front_proxy_ca.pem()).expect("write");
    std::fs::write(&cc, w.client_ca.pem()).expect("write");
    let args = AuthArgs {
        authentication_skip_lookup: true,
        authorization_mode: AuthorizationMode::AllowAuthenticated,
        requestheader_client_ca_file: Some(fp),
        requestheader_allowed_names: vec!["aggregator".into()],
        client_ca_file: Some(cc),
        ..AuthArgs::default()
    };
    // No Kubernetes client at all.
    let gate = Gate::new(&args, None).expect("gate");
    gate.start().await.expect("start");
    let server = serve(Arc::new(gate)).await;
    let aggregator = w.front_proxy_ca.client("aggregator", &[]);
    let (code, body) = ok_get(
        &server,
        Identity::Cert(&aggregator),
        PODS_WILDCARD,
        ALICE_HEADERS,
    )
    .await;
    assert_eq!((code, user(&body).0.as_str()), (200, "alice"), "{body}");
    let front = w.front_proxy_ca.client("front-proxy-client", &[]);
    let (code, _) = ok_get(
        &server,
        Identity::Cert(&front),
        PODS_WILDCARD,
        ALICE_HEADERS,
    )
    .await;
    assert_eq!(code, 401);
    let bob = w.client_ca.client("bob", &["admins"]);
    let (code, body) = ok_get(&server, Identity::Cert(&bob), PODS_WILDCARD, &[]).await;
    assert_eq!((code, user(&body).0.as_str()), (200, "bob"), "{body}");
    assert!(
        w.standin.requests().is_empty(),
        "the API was called: {:?}",
        w.standin.requests()
    );
}
