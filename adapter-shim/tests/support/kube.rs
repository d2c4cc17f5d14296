//! [`KubeStandIn`]: `kube_standin.py`, a Kubernetes API stand-in (discovery, List/Watch,
//! TokenReview, SubjectAccessReview) for tests, started on 127.0.0.1 with HTTPS and a
//! kubeconfig pointing at it.
//!
//! Include it from any test of this crate with
//!
//! ```ignore
//! #[path = "support/kube.rs"]
//! mod kube_support;
//! use kube_support::KubeStandIn;
//!
//! let standin = KubeStandIn::start();
//! let client = standin.client().await;            // a kube::Client through the kubeconfig
//! standin.apply("pods", "prod", "web-1", &[("app", "web")]);
//! ```
//!
//! The stand-in needs only Python's standard library: `$ADAPTER_SHIM_TEST_PYTHON`, else
//! `python3` on PATH. It is killed and its directory removed on drop.

#![allow(dead_code, unreachable_pub, missing_debug_implementations)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// How long the stand-in may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The bearer token the kubeconfig gives the shim (the stand-in records it with reviews).
pub const SHIM_TOKEN: &str = "shim-service-account-token";

/// A directory under the system temp dir, removed with its contents on drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "adapter-shim-{prefix}-{}-{}-{nanos:x}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        Self { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The Python that runs the stand-in: `$ADAPTER_SHIM_TEST_PYTHON`, else `python3`.
pub fn python() -> PathBuf {
    match std::env::var_os("ADAPTER_SHIM_TEST_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from("python3"),
    }
}

/// `adapter-shim/tests/support/kube_standin.py`.
pub fn standin_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("support")
        .join("kube_standin.py")
}

/// A running Kubernetes API stand-in.
pub struct KubeStandIn {
    /// The HTTPS API port.
    pub port: u16,
    /// The plain-HTTP control port.
    pub control_port: u16,
    child: Child,
    _stdin: Option<ChildStdin>,
    log_path: PathBuf,
    kubeconfig: PathBuf,
    ca_pem: String,
    dir: TempDir,
}

impl KubeStandIn {
    /// Starts the stand-in with a fresh CA and a serving certificate for 127.0.0.1, and
    /// writes a kubeconfig (CA file, bearer token [`SHIM_TOKEN`]) next to them.
    pub fn start() -> Self {
        let dir = TempDir::new("kube-standin");
        let (ca_pem, cert_pem, key_pem) = serving_material();
        let ca_path = dir.path.join("ca.pem");
        let cert_path = dir.path.join("tls.crt");
        let key_path = dir.path.join("tls.key");
        std::fs::write(&ca_path, &ca_pem).expect("write ca.pem");
        std::fs::write(&cert_path, cert_pem).expect("write tls.crt");
        std::fs::write(&key_path, key_pem).expect("write tls.key");

        let log_path = dir.path.join("standin.log");
        let log = std::fs::File::create(&log_path).expect("create standin.log");
        let mut child = Command::new(python())
            .arg(standin_script())
            .arg("--tls-cert")
            .arg(&cert_path)
            .arg("--tls-key")
            .arg(&key_path)
            .arg("--exit-with-stdin")
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .current_dir(&dir.path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {} kube_standin.py: {e}", python().display()));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let result = BufReader::new(stdout).read_line(&mut line).map(|_| line);
            let _ = tx.send(result);
        });
        let line = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(Ok(line)) if !line.trim().is_empty() => line,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "kube_standin.py did not get ready ({other:?}):\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
        };
        let ready: Value = serde_json::from_str(line.trim())
            .unwrap_or_else(|e| panic!("bad ready line {line:?}: {e}"));
        let port_of = |key: &str| {
            ready[key]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or_else(|| panic!("no {key} in ready line {line:?}"))
        };
        let port = port_of("port");
        let control_port = port_of("control_port");

        let kubeconfig = dir.path.join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: standin\n  cluster:\n    \
                 server: https://127.0.0.1:{port}\n    certificate-authority: {ca}\n\
                 users:\n- name: shim\n  user:\n    token: {SHIM_TOKEN}\n\
                 contexts:\n- name: standin\n  context:\n    cluster: standin\n    user: shim\n\
                 current-context: standin\n",
                ca = ca_path.display()
            ),
        )
        .expect("write kubeconfig");
        Self {
            port,
            control_port,
            child,
            _stdin: stdin,
            log_path,
            kubeconfig,
            ca_pem,
            dir,
        }
    }

    /// `https://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// A kubeconfig file for the stand-in (current context, CA, token [`SHIM_TOKEN`]).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The CA that signed the stand-in's serving certificate (PEM).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A kube-rs client through [`Self::kubeconfig`], made by the shim's own
    /// `adapter_shim::kube::client`.
    pub async fn client(&self) -> ::kube::Client {
        adapter_shim::kube::client(Some(self.kubeconfig()))
            .await
            .expect("client from the stand-in's kubeconfig")
    }

    /// Everything the stand-in logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    // --- control ---------------------------------------------------------------------------

    /// Creates or replaces an object. `resource` is `pods`, `services`, `namespaces`,
    /// `nodes`, `deployments.apps`, `crontabs.stable.example.com`,
    /// `clusterwidgets.stable.example.com`; `namespace` is ignored for cluster-scoped types.
    /// Returns the new resourceVersion.
    pub fn apply(
        &self,
        resource: &str,
        namespace: &str,
        name: &str,
        labels: &[(&str, &str)],
    ) -> u64 {
        let labels: serde_json::Map<String, Value> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
            .collect();
        let answer = self.control(
            "/_control/objects",
            &json!({"op": "apply", "resource": resource, "namespace": namespace, "name": name, "labels": labels}),
        );
        answer["resourceVersion"].as_u64().unwrap_or(0)
    }

    /// Creates or replaces many objects of one type in one namespace, all with `labels`, in
    /// one control call (e.g. 200 pods). Returns the last resourceVersion.
    pub fn apply_many(
        &self,
        resource: &str,
        namespace: &str,
        names: &[String],
        labels: &[(&str, &str)],
    ) -> u64 {
        let labels: serde_json::Map<String, Value> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
            .collect();
        let objects: Vec<Value> = names
            .iter()
            .map(|name| {
                json!({"resource": resource, "namespace": namespace, "name": name, "labels": labels})
            })
            .collect();
        let answer = self.control("/_control/objects", &json!({ "objects": objects }));
        answer["resourceVersion"].as_u64().unwrap_or(0)
    }

    /// Deletes an object (no-op when absent).
    pub fn delete(&self, resource: &str, namespace: &str, name: &str) {
        self.control(
            "/_control/objects",
            &json!({"op": "delete", "resource": resource, "namespace": namespace, "name": name}),
        );
    }

    /// Creates or replaces `kube-system/extension-apiserver-authentication` with `data`.
    pub fn set_auth_configmap(&self, data: &Value) {
        self.control("/_control/configmap", &json!({ "data": data }));
    }

    /// Deletes `kube-system/extension-apiserver-authentication`.
    pub fn delete_auth_configmap(&self) {
        self.control("/_control/configmap", &json!({"delete": true}));
    }

    /// Makes `token` known to TokenReview as `user` (`{"username", "uid", "groups",
    /// "extra"}`); `Value::Null` forgets it.
    pub fn set_token(&self, token: &str, user: &Value) {
        self.control("/_control/tokens", &json!({ token: user }));
    }

    /// Sets the SubjectAccessReview policy: `{"default": "allow"|"deny", "rules": [{"match":
    /// {"user"|"group"|"verb"|"group_api"|"resource"|"subresource"|"namespace"|"name"|"path":
    /// value}, "allowed": bool, "reason": "…"}]}`; the first matching rule decides.
    pub fn set_sar_policy(&self, policy: &Value) {
        self.control("/_control/sar-policy", policy);
    }

    /// Makes the next `count` API requests whose path starts with `prefix` fail with
    /// `status`.
    pub fn fail(&self, prefix: &str, status: u16, count: u32) {
        self.control(
            "/_control/fail",
            &json!({"prefix": prefix, "status": status, "count": count}),
        );
    }

    /// The TokenReview request bodies received, oldest first.
    pub fn token_reviews(&self) -> Vec<Value> {
        self.recorded("tokenreviews")
    }

    /// The SubjectAccessReview request bodies received, oldest first.
    pub fn access_reviews(&self) -> Vec<Value> {
        self.recorded("subjectaccessreviews")
    }

    /// The `Authorization` headers the reviews came with (the shim's own credentials).
    pub fn review_callers(&self) -> Vec<String> {
        let all = self.control_get("/_control/recorded");
        ["tokenreviews", "subjectaccessreviews"]
            .iter()
            .flat_map(|k| all[*k].as_array().cloned().unwrap_or_default())
            .map(|e| e["authorization"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    fn recorded(&self, kind: &str) -> Vec<Value> {
        let all = self.control_get("/_control/recorded");
        all[kind]
            .as_array()
            .map(|a| a.iter().map(|e| e["body"].clone()).collect())
            .unwrap_or_default()
    }

    /// Every API request seen: `{"method", "path", "query": {k: v}, "accept"}`.
    pub fn requests(&self) -> Vec<Value> {
        self.control_get("/_control/requests")
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Forgets recorded reviews and requests.
    pub fn reset_recorded(&self) {
        self.control("/_control/reset", &json!({}));
    }

    fn control(&self, path: &str, body: &Value) -> Value {
        self.control_request("POST", path, Some(body))
    }

    fn control_get(&self, path: &str) -> Value {
        self.control_request("GET", path, None)
    }

    fn control_request(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut stream = TcpStream::connect(("127.0.0.1", self.control_port))
            .unwrap_or_else(|e| panic!("connect to the stand-in's control port: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("write control request");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read control answer");
        let text = String::from_utf8_lossy(&raw);
        let (head, payload) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("bad control answer {text:?}"));
        assert!(
            head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
            "control {method} {path} failed: {head}\n{payload}"
        );
        serde_json::from_str(payload).unwrap_or_else(|e| panic!("control answer {payload:?}: {e}"))
    }
}

impl Drop for KubeStandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 50 ms until it returns `Some`, up to `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A CA and a serving certificate for 127.0.0.1/localhost signed by it: (CA PEM, cert PEM,
/// key PEM).
fn serving_material() -> (String, String, String) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kube-standin-ca");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("ca cert");

    let mut params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("server params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kube-apiserver");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key = rcgen::KeyPair::generate().expect("server key");
    let cert = params.signed_by(&key, &ca).expect("server cert");
    (ca.pem(), cert.pem(), key.serialize_pem())
}
