//! Production serving, end to end on the real binary: rules hot reload (SIGHUP and file
//! change), serving-certificate rotation without restart, readiness gated on the
//! authentication configuration while discovery keeps answering, HTTP/1.1-only mode.

mod stack;

use std::process::Command;
use std::time::{Duration, Instant};

use stack::{Ca, Cluster, ScratchDir, Shim, curl_get};

const ONE_RULE: &str = r#"
rules:
- seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  name: {matches: "^(.*)_total", as: "${1}_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'
"#;

/// Prometheus is not needed here: discovery fails against a closed port and keeps going.
const NO_PROMETHEUS: &str = "http://127.0.0.1:9/workspaces/ws-none";

fn shim_with(cluster: &Cluster, config: &str, extra: &[&str]) -> Shim {
    let mut args: Vec<String> = vec![
        "--prometheus-url".into(),
        NO_PROMETHEUS.into(),
        "--prometheus-series-timeout".into(),
        "1s".into(),
    ];
    if !extra.contains(&"--config-reload-interval") {
        args.extend(["--config-reload-interval".into(), "200ms".into()]);
    }
    args.extend(cluster.shim_args());
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut shim = Shim::start(config, &args, &[]);
    shim.identity = cluster.aggregator.clone();
    shim
}

/// As [`shim_with`], then waits for `/readyz` (the front-proxy CA is loaded).
fn ready_shim_with(cluster: &Cluster, config: &str, extra: &[&str]) -> Shim {
    let shim = shim_with(cluster, config, extra);
    shim.wait_ready();
    shim
}

fn metric(shim: &Shim, name: &str) -> Option<f64> {
    let text = shim.get("/metrics", false).body;
    text.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

#[test]
fn rules_reload_on_sighup_and_on_change_and_broken_rules_keep_the_old_ones() {
    let cluster = Cluster::start();
    let shim = ready_shim_with(&cluster, "rules: []\n", &["--config-reload-interval", "1h"]);
    let path = shim.config_path();
    assert_eq!(
        metric(&shim, "adapter_shim_config_last_reload_successful"),
        Some(1.0)
    );

    // A valid change, applied on SIGHUP (the polling interval is an hour here).
    std::fs::write(&path, ONE_RULE).expect("write rules");
    let hup = Command::new("kill")
        .args(["-HUP", &shim.pid().to_string()])
        .status()
        .expect("kill");
    assert!(hup.success());
    assert!(
        wait_until(Duration::from_secs(10), || shim
            .log()
            .contains("rules reloaded")),
        "{}",
        shim.log()
    );

    // A broken change: refused, the old rules stay, the metric says so.
    std::fs::write(
        &path,
        ONE_RULE.replace("<<.LabelMatchers>>", "<<.LabelMatchers>}"),
    )
    .expect("write broken rules");
    Command::new("kill")
        .args(["-HUP", &shim.pid().to_string()])
        .status()
        .expect("kill");
    assert!(wait_until(Duration::from_secs(10), || metric(
        &shim,
        "adapter_shim_config_last_reload_successful"
    ) == Some(0.0)));
    assert!(
        shim.log()
            .contains("rules not reloaded; the previous rules stay in use")
    );
    assert!(
        shim.log().contains("rules[0]: metricsQuery"),
        "the error names the rule: {}",
        shim.log()
    );
    let doc = shim.get("/apis/custom.metrics.k8s.io/v1beta1", true);
    assert_eq!(doc.status, 200);
    // The process is still serving and healthy.
    assert_eq!(shim.get("/healthz", false).status, 200);
}

#[test]
fn rules_file_changes_are_picked_up_without_a_signal() {
    let cluster = Cluster::start();
    let shim = ready_shim_with(&cluster, "rules: []\n", &[]);
    let path = shim.config_path();
    std::fs::write(&path, ONE_RULE).expect("write rules");
    assert!(
        wait_until(Duration::from_secs(10), || shim
            .log()
            .contains("rules reloaded")),
        "{}",
        shim.log()
    );
    let ts = metric(
        &shim,
        "adapter_shim_config_last_reload_success_timestamp_seconds",
    );
    assert!(ts.is_some_and(|t| t > 1.7e9), "{ts:?}");
}

#[test]
fn serving_certificate_rotates_without_restart() {
    let cluster = Cluster::start();
    let dir = ScratchDir::new("serving-cert");
    let (ca1, ca2) = (Ca::new("serving-ca-1"), Ca::new("serving-ca-2"));
    let (cert, key) = (dir.path.join("tls.crt"), dir.path.join("tls.key"));
    ca1.server_files("127.0.0.1", &cert, &key);
    let ca1_path = dir.path.join("ca1.pem");
    let ca2_path = dir.path.join("ca2.pem");
    std::fs::write(&ca1_path, ca1.pem()).expect("ca1");
    std::fs::write(&ca2_path, ca2.pem()).expect("ca2");
    let shim = ready_shim_with(
        &cluster,
        ONE_RULE,
        &[
            "--tls-cert-file",
            cert.to_str().expect("utf-8"),
            "--tls-private-key-file",
            key.to_str().expect("utf-8"),
        ],
    );
    // Verified TLS (no -k): the served certificate chains to CA 1.
    let verified = |ca: &std::path::Path| {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
            .arg(ca)
            .arg(shim.url("/healthz"))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(verified(&ca1_path), "200");
    assert_ne!(verified(&ca2_path), "200");

    // cert-manager style rotation: new files from CA 2.
    ca2.server_files("127.0.0.1", &cert, &key);
    assert!(
        wait_until(Duration::from_secs(20), || verified(&ca2_path) == "200"),
        "{}",
        shim.log()
    );
    assert_ne!(verified(&ca1_path), "200");
    assert!(shim.log().contains("serving certificate reloaded"));
}

#[test]
fn readiness_waits_for_the_authentication_configuration_while_discovery_answers() {
    let cluster = Cluster::start();
    // The first reads of the ConfigMap fail: the shim keeps retrying.
    cluster
        .kube
        .fail("/api/v1/namespaces/kube-system/configmaps", 500, 3);
    let shim = shim_with(&cluster, ONE_RULE, &[]);
    let early = curl_get(&shim.url("/readyz"), false, &[]);
    // The aggregator's availability check and discovery work regardless, as does /livez.
    assert_eq!(curl_get(&shim.url("/livez"), false, &[]).status, 200);
    if early.status == 503 {
        assert!(early.body.starts_with("not ready: "), "{early:?}");
    }
    assert!(
        wait_until(Duration::from_secs(30), || curl_get(
            &shim.url("/readyz"),
            false,
            &[]
        )
        .status
            == 200),
        "{}",
        shim.log()
    );
    assert!(
        shim.log().contains("authentication setup failed"),
        "the failed lookups were retried: {}",
        shim.log()
    );
    let doc = shim.get("/apis/custom.metrics.k8s.io/v1beta2", true);
    assert_eq!(doc.status, 200, "{doc:?}");
    assert_eq!(doc.json()["resources"], serde_json::json!([]));
}

#[test]
fn http2_can_be_turned_off() {
    let cluster = Cluster::start();
    let shim = ready_shim_with(&cluster, ONE_RULE, &["--disable-http2"]);
    let r = shim.get("/apis/custom.metrics.k8s.io/v1beta1", true);
    assert_eq!(r.status, 200);
    assert_eq!(r.http_version, "1.1");
    let status = shim.terminate();
    assert!(status.success(), "{status:?}");
}
