//! Measurements for the README (not a pass/fail test; run on purpose):
//!
//! ```sh
//! cargo test --release -p adapter-shim --test measure -- --ignored --nocapture
//! ```
//!
//! - the shim's resident memory after discovering 10 000 series (100 metric names × 100
//!   pods, one `/api/v1/series` answer of 10 000 label sets per relist);
//! - the latency it adds per request: the same PromQL sent straight to the proxy vs the
//!   shim's `type: Object` answer, called as the aggregator calls it (front-proxy client
//!   certificate, SubjectAccessReview answers cached), with curl over one keep-alive
//!   connection each; medians.

mod stack;

use std::process::Command;
use std::time::Duration;

use stack::{Cluster, CountersTarget, Shim, prometheus_scraping, signed_path_to};

const METRICS: usize = 100;
const PODS: usize = 100;
const RUNS: usize = 300;

fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Median of curl's `time_total` over `RUNS` transfers of `url` on one connection.
fn median_ms(url: &str, extra: &[&str]) -> f64 {
    let mut cmd = Command::new("curl");
    cmd.args(["-sk", "--http1.1", "-w", "%{http_code} %{time_total}\n"]);
    cmd.args(extra);
    for _ in 0..RUNS {
        cmd.args(["-o", "/dev/null", url]);
    }
    let out = cmd.output().expect("curl");
    let mut times: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let (code, t) = l.split_once(' ').expect("code time");
            assert_eq!(code, "200", "{url}");
            t.parse::<f64>().expect("seconds") * 1000.0
        })
        .collect();
    // The first transfer pays for the connection (and TLS); leave it out.
    times.remove(0);
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

#[test]
#[ignore = "measurement; run with --ignored --nocapture"]
fn memory_with_10k_series_and_added_latency() {
    let series: Vec<String> = (0..METRICS)
        .flat_map(|m| {
            (0..PODS).map(move |p| {
                format!(
                    "app_metric_{m:03}_total{{namespace=\"ns-{}\",pod=\"pod-{p:03}\"}}=1",
                    p % 10
                )
            })
        })
        .collect();
    let refs: Vec<&str> = series.iter().map(String::as_str).collect();
    let target = CountersTarget::start(&refs);
    let prometheus = prometheus_scraping(&target);
    let (standin, proxy) = signed_path_to(&prometheus);
    let base = format!("{}/workspaces/{}", proxy.url(), standin.workspace);
    let rules = r#"
rules:
- seriesQuery: '{__name__=~"app_metric_.*_total",namespace!="",pod!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  name: {matches: "^(.*)_total", as: "${1}_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[20s])) by (<<.GroupBy>>)'
"#;
    let cluster = Cluster::start();
    let mut args = vec![
        "--prometheus-url".to_owned(),
        base.clone(),
        "--metrics-relist-interval".to_owned(),
        "2s".to_owned(),
        "--metrics-max-age".to_owned(),
        "5m".to_owned(),
    ];
    args.extend(cluster.shim_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut shim = Shim::start(rules, &args, &[("ADAPTER_SHIM_LOG", "warn")]);
    shim.identity = cluster.aggregator.clone();
    shim.wait_ready();
    let object = "/apis/custom.metrics.k8s.io/v1beta1/namespaces/ns-7/pods/pod-007/app_metric_042_per_second";
    let ready = shim.wait_for(object, Duration::from_secs(90), |r| r.status == 200);
    assert_eq!(ready.status, 200, "{ready:?}\n{}", shim.log());
    // Let several relists of the full 10 000-series answer run.
    std::thread::sleep(Duration::from_secs(10));
    let series_count = Command::new("curl")
        .args(["-s", "-G", &format!("{}/api/v1/series", prometheus.url())])
        .args([
            "--data-urlencode",
            "match[]={__name__=~\"app_metric_.*_total\"}",
        ])
        .output()
        .map(|o| {
            serde_json::from_slice::<serde_json::Value>(&o.stdout).expect("json")["data"]
                .as_array()
                .map_or(0, Vec::len)
        })
        .expect("curl");
    let doc = shim
        .get("/apis/custom.metrics.k8s.io/v1beta1", false)
        .json();
    let metrics = doc["resources"].as_array().map_or(0, Vec::len);
    let (rss, hwm) = rss_kib(shim.pid());

    let promql = r#"sum(rate(app_metric_042_total{namespace="ns-7",pod="pod-007"}[20s])) by (pod)"#;
    let direct_url = format!(
        "{base}/api/v1/query?query={}&timeout=30s",
        adapter_shim::prometheus::query_escape(promql)
    );
    let direct = median_ms(&direct_url, &[]);
    let identity: Vec<&str> = shim.identity.iter().map(String::as_str).collect();
    let via_shim = median_ms(&shim.url(object), &identity);
    let direct_again = median_ms(&direct_url, &[]);

    println!("series in Prometheus matching the rule: {series_count}");
    println!("metrics served (discovery document entries): {metrics}");
    println!(
        "adapter-shim RSS after relists: {:.1} MiB (peak {:.1} MiB)",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    println!(
        "median latency over {} requests: raw query through sigv4-proxy {direct:.2} ms / {direct_again:.2} ms (before/after); via adapter-shim (HTTPS, type: Object) {via_shim:.2} ms; added {:.2} ms",
        RUNS - 1,
        via_shim - (direct + direct_again) / 2.0
    );
    assert_eq!(series_count, METRICS * PODS);
    assert_eq!(metrics, METRICS * 2, "pods and namespaces for each metric");
}
