//! The real stack for end-to-end tests: a scrape target with counters growing at known
//! rates → a real Prometheus → the botocore-verifying AMP stand-in → the real `sigv4-proxy`
//! → the real `adapter-shim` binary, spoken to over HTTPS by curl (h2 and HTTP/1.1).
//!
//! The Prometheus, stand-in and proxy helpers are `sigv4-proxy`'s own test support,
//! included by path.

#![allow(dead_code, unreachable_pub, missing_debug_implementations)]

#[path = "../../../sigv4-proxy/tests/support/mod.rs"]
pub mod support;

#[path = "../support/kube.rs"]
pub mod kube_support;

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

pub use kube_support::KubeStandIn;
pub use support::proxy_process::ProxyProcess;
pub use support::{Prometheus, ScratchDir, StandIn, StandInOptions};

pub const AKID: &str = "AKIDADAPTERSHIMTEST";
pub const SECRET: &str = "adapter-shim-test-secret-key-0123456789";

/// A scrape target serving counters that grow at the given rates per second.
pub struct CountersTarget {
    pub port: u16,
    child: Child,
    _stdin: Option<ChildStdin>,
}

impl CountersTarget {
    /// `series` are `name{labels}=rate` strings.
    pub fn start(series: &[&str]) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/stack/counters_target.py");
        let mut child = Command::new(support::python())
            .arg(script)
            .args(series)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn counters_target.py");
        let stdin = child.stdin.take();
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("ready line");
        let ready: serde_json::Value = serde_json::from_str(line.trim()).expect("json line");
        let port = u16::try_from(ready["port"].as_u64().expect("port")).expect("u16");
        Self {
            port,
            child,
            _stdin: stdin,
        }
    }

    /// Changes rates (`name{labels}=rate` lines) from now on.
    pub fn set_rates(&self, series: &[&str]) {
        let body = series.join("\n");
        support::http_request(
            "POST",
            self.port,
            "/rates",
            &[("Content-Type", "text/plain")],
            body.as_bytes(),
        )
        .expect("set rates");
    }
}

impl Drop for CountersTarget {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Prometheus scraping `target` every second (labels from the target are kept, as
/// with `honor_labels` for pod-level exporters).
pub fn prometheus_scraping(target: &CountersTarget) -> Prometheus {
    Prometheus::start_with_config(&format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: app\n    honor_labels: true\n    static_configs:\n      \
         - targets: [\"127.0.0.1:{}\"]\n",
        target.port
    ))
}

/// The verifying stand-in in front of `prometheus` and a proxy signing for it.
pub fn signed_path_to(prometheus: &Prometheus) -> (StandIn, ProxyProcess) {
    let standin = StandIn::start(StandInOptions {
        upstream: prometheus.url(),
        static_keys: vec![(AKID.into(), SECRET.into(), None)],
        ..StandInOptions::default()
    });
    let proxy = ProxyProcess::signing_for(
        standin.port,
        &[],
        &[
            ("AWS_ACCESS_KEY_ID", AKID),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ],
    );
    (standin, proxy)
}

/// A running `adapter-shim`; killed on drop.
pub struct Shim {
    pub addr: SocketAddr,
    config_path: PathBuf,
    /// curl arguments every [`Shim::get`] sends (the aggregator's identity).
    pub identity: Vec<String>,
    child: Child,
    log_path: PathBuf,
    _dir: ScratchDir,
}

impl Shim {
    /// Starts the shim with `config` (YAML text) and `args`, on 127.0.0.1:0.
    pub fn start(config: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::try_start(config, args, env)
            .unwrap_or_else(|log| panic!("shim did not start:\n{log}"))
    }

    pub fn try_start(config: &str, args: &[&str], env: &[(&str, &str)]) -> Result<Self, String> {
        let dir = ScratchDir::new("shim");
        let config_path = dir.path.join("config.yaml");
        std::fs::write(&config_path, config).expect("write config");
        let log_path = dir.path.join("shim.log");
        let out_path = dir.path.join("shim.out");
        let mut child = Command::new(env!("CARGO_BIN_EXE_adapter-shim"))
            .arg("--config")
            .arg(&config_path)
            .args(["--secure-port", "0", "--bind-address", "127.0.0.1"])
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("ADAPTER_SHIM_LOG", "info,adapter_shim=debug")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .envs(env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).expect("out"))
            .stderr(std::fs::File::create(&log_path).expect("log"))
            .spawn()
            .expect("spawn adapter-shim");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = std::fs::read_to_string(&out_path).unwrap_or_default();
            if let Some(addr) = out
                .lines()
                .find_map(|l| l.strip_prefix("listening on "))
                .and_then(|a| a.trim().parse().ok())
            {
                return Ok(Self {
                    addr,
                    config_path,
                    identity: Vec::new(),
                    child,
                    log_path,
                    _dir: dir,
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "exited with {status}:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                ));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err("no listening line within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// Waits until `/readyz` answers 200 (authentication configuration loaded).
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = curl_get(&self.url("/readyz"), false, &[]);
            if r.status == 200 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not ready: {r:?}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The rules file the shim was started with (rewrite it to test reloads).
    pub fn config_path(&self) -> PathBuf {
        self.config_path.clone()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(Instant::now() < deadline, "shim did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// GET over HTTPS with curl (`-k`: the shim's certificate is self-signed); `http2`
    /// chooses h2 (as the aggregator speaks) or HTTP/1.1.
    pub fn get(&self, path_and_query: &str, http2: bool) -> Reply {
        let identity: Vec<&str> = self.identity.iter().map(String::as_str).collect();
        curl_get(&self.url(path_and_query), http2, &identity)
    }

    /// Polls `path` until `ok` accepts the reply or `timeout` passes; returns the last one.
    pub fn wait_for(&self, path: &str, timeout: Duration, ok: impl Fn(&Reply) -> bool) -> Reply {
        let deadline = Instant::now() + timeout;
        loop {
            let reply = self.get(path, true);
            if ok(&reply) || Instant::now() > deadline {
                return reply;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Shim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer as curl saw it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub http_version: String,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// `curl -k` GET, with extra curl arguments (client certificates, headers), through the
/// shared test support's [`support::proxy_process::curl`].
pub fn curl_get(url: &str, http2: bool, extra: &[&str]) -> Reply {
    let mut args = vec![
        "-k",
        "--max-time",
        "30",
        if http2 { "--http2" } else { "--http1.1" },
    ];
    args.extend_from_slice(extra);
    args.push(url);
    let answer = support::proxy_process::curl(&args);
    // The status line of the last header block: `HTTP/2 200` or `HTTP/1.1 200 OK`.
    let http_version = answer
        .headers
        .rsplit("\r\n\r\n")
        .find(|b| !b.trim().is_empty())
        .and_then(|block| block.lines().next())
        .and_then(|line| line.split_whitespace().next())
        .and_then(|proto| proto.strip_prefix("HTTP/"))
        .unwrap_or_default()
        .to_owned();
    Reply {
        status: answer.status,
        content_type: answer.header("content-type").unwrap_or_default(),
        http_version,
        body: answer.text(),
    }
}

/// A Quantity string as a float (`400m` → 0.4, `12k` → 12000), for tolerant comparisons.
pub fn quantity(q: &str) -> f64 {
    let (num, mult) = match q.as_bytes().last() {
        Some(b'm') => (&q[..q.len() - 1], 1e-3),
        Some(b'k') => (&q[..q.len() - 1], 1e3),
        Some(b'M') => (&q[..q.len() - 1], 1e6),
        Some(b'G') => (&q[..q.len() - 1], 1e9),
        _ => (q, 1.0),
    };
    num.parse::<f64>()
        .unwrap_or_else(|e| panic!("quantity {q:?}: {e}"))
        * mult
}

// --- the aggregator's identity -----------------------------------------------------------------

/// A test CA made with rcgen.
pub struct Ca {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl Ca {
    pub fn new(name: &str) -> Self {
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

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `host` (an IP address or DNS name), written to `cert` and
    /// `key` (the key first, so a watcher never pairs the new certificate with the old key
    /// for long).
    pub fn server_files(&self, host: &str, cert: &Path, key: &Path) {
        let mut params = rcgen::CertificateParams::new(vec![host.to_owned()]).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, host);
        let pair = rcgen::KeyPair::generate().expect("key");
        let signed = params.signed_by(&pair, &self.issuer).expect("cert");
        std::fs::write(key, pair.serialize_pem()).expect("write key");
        std::fs::write(cert, signed.pem()).expect("write cert");
    }

    /// A client certificate for `cn`, written as `<dir>/<cn>.crt` and `.key`; returns the
    /// paths.
    pub fn client_files(&self, cn: &str, dir: &Path) -> (PathBuf, PathBuf) {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("cert");
        let (cert_path, key_path) = (dir.join(format!("{cn}.crt")), dir.join(format!("{cn}.key")));
        std::fs::write(&cert_path, cert.pem()).expect("write cert");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        (cert_path, key_path)
    }
}

/// The user the kube-controller-manager's HPA controller calls as.
pub const HPA_USER: &str = "system:serviceaccount:kube-system:horizontal-pod-autoscaler";

/// A Kubernetes API stand-in set up as a cluster with a front-proxy CA (kubeadm's
/// `extension-apiserver-authentication`), a SubjectAccessReview policy that allows only the
/// HPA controller, and curl arguments that call the shim as the kube-aggregator does on the
/// HPA's behalf: front-proxy client certificate plus `X-Remote-*` headers.
pub struct Cluster {
    pub kube: KubeStandIn,
    pub front_proxy_ca: Ca,
    pub aggregator: Vec<String>,
    pub dir: ScratchDir,
}

impl Cluster {
    pub fn start() -> Self {
        let kube = KubeStandIn::start();
        let front_proxy_ca = Ca::new("front-proxy-ca");
        let dir = ScratchDir::new("aggregator");
        let (cert, key) = front_proxy_ca.client_files("front-proxy-client", &dir.path);
        kube.set_auth_configmap(&serde_json::json!({
            "requestheader-client-ca-file": front_proxy_ca.pem(),
            "requestheader-allowed-names": "[\"front-proxy-client\"]",
            "requestheader-username-headers": "[\"X-Remote-User\"]",
            "requestheader-group-headers": "[\"X-Remote-Group\"]",
            "requestheader-extra-headers-prefix": "[\"X-Remote-Extra-\"]",
        }));
        kube.set_sar_policy(&serde_json::json!({
            "default": "deny",
            "rules": [{"match": {"user": HPA_USER}, "allowed": true}],
        }));
        let aggregator = vec![
            "--cert".to_owned(),
            cert.display().to_string(),
            "--key".to_owned(),
            key.display().to_string(),
            "-H".to_owned(),
            format!("X-Remote-User: {HPA_USER}"),
            "-H".to_owned(),
            "X-Remote-Group: system:serviceaccounts".to_owned(),
            "-H".to_owned(),
            "X-Remote-Group: system:authenticated".to_owned(),
        ];
        Self {
            kube,
            front_proxy_ca,
            aggregator,
            dir,
        }
    }

    /// `--kubeconfig <path>` for the shim.
    pub fn shim_args(&self) -> Vec<String> {
        vec![
            "--kubeconfig".to_owned(),
            self.kube.kubeconfig().display().to_string(),
        ]
    }
}
