//! End to end through the real stack (see `stack/mod.rs`): the exact calls an HPA makes
//! for a `Pods` metric (wildcard + labelSelector), an `Object` metric, a namespace metric
//! and an `External` metric, in both API versions, called as the kube-aggregator calls
//! (front-proxy client certificate + `X-Remote-*`), plus discovery, health, authorization
//! and error answers.

mod stack;

use std::time::Duration;

use stack::{
    Cluster, CountersTarget, HPA_USER, Shim, prometheus_scraping, quantity, signed_path_to,
};

/// The seeds' rules (App Mesh, http_requests_total), an Object rule for services, and the
/// ho11y external rule. [`rules`] shortens their rate windows so the test does not wait
/// minutes for Prometheus to hold a full window (rate() divides by the whole window).
const RULES: &str = r#"
rules:
- seriesQuery: 'envoy_cluster_upstream_rq {namespace!="",kubernetes_pod_name!=""}'
  resources:
    overrides:
      namespace: {resource: namespace}
      kubernetes_pod_name: {resource: pod}
  name: {matches: "envoy_cluster_upstream_rq", as: "appmesh_requests_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)'
- seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  name: {matches: "^(.*)_total", as: "${1}_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'
- seriesQuery: 'ingress_requests_total{namespace!="",service!=""}'
  resources: {overrides: {namespace: {resource: namespace}, service: {resource: service}}}
  name: {matches: "^(.*)_total", as: "${1}_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)'
externalRules:
- seriesQuery: 'ho11y_total{namespace!=""}'
  resources:
    overrides:
      namespace: {resource: namespace}
  name: {matches: "^(.*)_total$", as: "${1}_rate"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'
"#;

const SERIES: &[&str] = &[
    r#"envoy_cluster_upstream_rq{namespace="prod",kubernetes_pod_name="jazz-1",envoy_response_code="200"}=3"#,
    r#"envoy_cluster_upstream_rq{namespace="prod",kubernetes_pod_name="jazz-2",envoy_response_code="200"}=5"#,
    r#"http_requests_total{namespace="prod",pod="web-1",app="web"}=12"#,
    r#"http_requests_total{namespace="prod",pod="web-2",app="web"}=8"#,
    r#"http_requests_total{namespace="dev",pod="web-1",app="web"}=1"#,
    r#"ingress_requests_total{namespace="prod",service="frontend"}=20"#,
    r#"ho11y_total{namespace="prod",pod="ho11y-1",path="/"}=2"#,
    r#"ho11y_total{namespace="prod",pod="ho11y-2",path="/"}=4"#,
];

fn rules() -> String {
    RULES.replace("[1m]", "[20s]").replace("[2m]", "[20s]")
}

fn close(got: f64, want: f64) -> bool {
    (got - want).abs() <= want * 0.1 + 0.01
}

#[test]
fn hpa_calls_through_the_real_proxy_and_prometheus() {
    let target = CountersTarget::start(SERIES);
    let prometheus = prometheus_scraping(&target);
    let (standin, proxy) = signed_path_to(&prometheus);
    let cluster = Cluster::start();
    for (name, app) in [
        ("web-1", "web"),
        ("web-2", "web"),
        ("web-3", "web"), // no series: left out of the answer
        ("jazz-1", "jazz"),
        ("jazz-2", "jazz"),
    ] {
        cluster.kube.apply("pods", "prod", name, &[("app", app)]);
    }
    cluster.kube.apply("services", "prod", "frontend", &[]);
    // Enough pods that the joined names exceed 8 KiB: the query must go as a POST form.
    let many: Vec<String> = (0..300)
        .map(|i| format!("batch-worker-{i:04}-abcdefghijklmnop"))
        .collect();
    cluster
        .kube
        .apply_many("pods", "batch", &many, &[("app", "worker")]);

    let base = format!("{}/workspaces/{}", proxy.url(), standin.workspace);
    let mut args = vec![
        "--prometheus-url".to_owned(),
        base,
        "--metrics-relist-interval".to_owned(),
        "1s".to_owned(),
        "--metrics-max-age".to_owned(),
        "10m".to_owned(),
        "--enable-external-metrics".to_owned(),
    ];
    args.extend(cluster.shim_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut shim = Shim::start(&rules(), &args, &[]);
    shim.wait_ready();

    // Before anything else: without the aggregator's certificate the X-Remote-* headers
    // are not trusted, the caller is anonymous, and the SubjectAccessReview denies it.
    let anonymous = stack::curl_get(
        &shim.url("/apis/custom.metrics.k8s.io/v1beta1"),
        true,
        &["-H", &format!("X-Remote-User: {HPA_USER}")],
    );
    assert_eq!(anonymous.status, 403, "{anonymous:?}");
    assert_eq!(anonymous.json()["reason"], "Forbidden");
    shim.identity = cluster.aggregator.clone();

    // Discovery documents answer 200 at once, whatever has been discovered.
    for path in [
        "/apis",
        "/apis/custom.metrics.k8s.io",
        "/apis/custom.metrics.k8s.io/v1beta1",
        "/apis/custom.metrics.k8s.io/v1beta2",
        "/apis/external.metrics.k8s.io/v1beta1",
    ] {
        let r = shim.get(path, true);
        assert_eq!(r.status, 200, "{path}: {r:?}");
        assert_eq!(r.content_type, "application/json");
        assert_eq!(r.http_version, "2", "the aggregator speaks h2");
    }
    let apis = shim.get("/apis", false).json();
    assert_eq!(
        apis["groups"][0]["preferredVersion"]["version"], "v1beta2",
        "{apis}"
    );
    assert_eq!(shim.get("/openapi/v2", true).status, 404);
    assert_eq!(shim.get("/openapi/v3", true).status, 404);
    for path in ["/healthz", "/livez", "/readyz"] {
        // Always allowed, whoever asks.
        let r = stack::curl_get(&shim.url(path), false, &[]);
        assert_eq!((r.status, r.body.as_str()), (200, "ok"), "{path}");
    }

    // Wait until the rate windows hold enough samples for every metric.
    let object_path = "/apis/custom.metrics.k8s.io/v1beta1/namespaces/prod/services/frontend/ingress_requests_per_second";
    let object = shim.wait_for(object_path, Duration::from_secs(60), |r| {
        r.status == 200
            && close(
                quantity(r.json()["items"][0]["value"].as_str().unwrap_or("0")),
                20.0,
            )
    });
    assert_eq!(object.status, 200, "{object:?}\n{}", shim.log());

    // The discovery document lists what the rules found.
    let doc = shim.get("/apis/custom.metrics.k8s.io/v1beta1", true).json();
    let names: Vec<&str> = doc["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    for want in [
        "pods/appmesh_requests_per_second",
        "pods/http_requests_per_second",
        "namespaces/http_requests_per_second",
        "services/ingress_requests_per_second",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }

    // type: Object, v1beta1: exactly one item with the v1beta1 shape.
    let v = object.json();
    assert_eq!(v["kind"], "MetricValueList");
    assert_eq!(v["apiVersion"], "custom.metrics.k8s.io/v1beta1");
    let items = v["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{v}");
    assert_eq!(
        items[0]["describedObject"],
        serde_json::json!({"kind": "Service", "namespace": "prod", "name": "frontend", "apiVersion": "/v1"})
    );
    assert_eq!(items[0]["metricName"], "ingress_requests_per_second");
    assert!(items[0]["selector"].is_null());

    // The same call in v1beta2.
    let v2 = shim
        .get(&object_path.replace("v1beta1", "v1beta2"), true)
        .json();
    assert_eq!(v2["apiVersion"], "custom.metrics.k8s.io/v1beta2");
    assert_eq!(
        v2["items"][0]["metric"]["name"],
        "ingress_requests_per_second"
    );
    assert!(close(
        quantity(v2["items"][0]["value"].as_str().expect("value")),
        20.0
    ));

    // type: Object with a metricLabelSelector (the selector is echoed back).
    let sel = shim.get(
        "/apis/custom.metrics.k8s.io/v1beta1/namespaces/prod/pods/web-1/http_requests_per_second?metricLabelSelector=app%3Dweb",
        true,
    );
    assert_eq!(sel.status, 200, "{sel:?}");
    let sel = sel.json();
    assert!(
        close(
            quantity(sel["items"][0]["value"].as_str().expect("v")),
            12.0
        ),
        "{sel}"
    );
    assert_eq!(sel["items"][0]["selector"]["matchLabels"]["app"], "web");

    // Namespace metric (type: Object, describedObject kind Namespace): the HPA's own namespace.
    for version in ["v1beta1", "v1beta2"] {
        let ns = shim.get(
            &format!("/apis/custom.metrics.k8s.io/{version}/namespaces/prod/metrics/http_requests_per_second"),
            true,
        );
        assert_eq!(ns.status, 200, "{ns:?}");
        let ns = ns.json();
        assert_eq!(ns["items"].as_array().map(Vec::len), Some(1));
        assert!(
            close(quantity(ns["items"][0]["value"].as_str().expect("v")), 20.0),
            "{ns}"
        );
        let described = &ns["items"][0]["describedObject"];
        assert_eq!(described["kind"], "Namespace");
        assert_eq!(described["name"], "prod");
        assert!(described.get("namespace").is_none(), "{described}");
    }

    // type: Pods: the wildcard with the scale target's selector, in both versions. The
    // object list comes from the Kubernetes API (a watch cache), web-3 has no series and is
    // left out, the other app's pods are not asked for.
    for version in ["v1beta1", "v1beta2"] {
        let pods = shim.get(
            &format!("/apis/custom.metrics.k8s.io/{version}/namespaces/prod/pods/%2A/http_requests_per_second?labelSelector=app%3Dweb"),
            true,
        );
        assert_eq!(pods.status, 200, "{pods:?}");
        let pods = pods.json();
        let items = pods["items"].as_array().expect("items");
        let named: Vec<(&str, f64)> = items
            .iter()
            .map(|i| {
                (
                    i["describedObject"]["name"].as_str().expect("name"),
                    quantity(i["value"].as_str().expect("value")),
                )
            })
            .collect();
        assert_eq!(named.len(), 2, "{pods}");
        assert_eq!(named[0].0, "web-1");
        assert!(close(named[0].1, 12.0), "{pods}");
        assert_eq!(named[1].0, "web-2");
        assert!(close(named[1].1, 8.0), "{pods}");
        if version == "v1beta2" {
            assert_eq!(items[0]["metric"]["name"], "http_requests_per_second");
            assert!(items[0].get("metricName").is_none());
        } else {
            assert_eq!(items[0]["metricName"], "http_requests_per_second");
        }
    }
    // The App Mesh seed: `app in (jazz)` as the aggregator re-encodes it.
    let jazz = shim
        .get(
            "/apis/custom.metrics.k8s.io/v1beta1/namespaces/prod/pods/%2A/appmesh_requests_per_second?labelSelector=app+in+%28jazz%29",
            true,
        )
        .json();
    let values: Vec<f64> = jazz["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| quantity(i["value"].as_str().expect("v")))
        .collect();
    assert_eq!(values.len(), 2, "{jazz}");
    assert!(close(values[0], 3.0) && close(values[1], 5.0), "{jazz}");
    // A pod added to the cluster shows up without a restart (the watch cache follows).
    cluster
        .kube
        .apply("pods", "prod", "jazz-3", &[("app", "jazz")]);
    target.set_rates(&[r#"envoy_cluster_upstream_rq{namespace="prod",kubernetes_pod_name="jazz-3",envoy_response_code="200"}=7"#]);
    let three = shim.wait_for(
        "/apis/custom.metrics.k8s.io/v1beta1/namespaces/prod/pods/%2A/appmesh_requests_per_second?labelSelector=app%3Djazz",
        Duration::from_secs(60),
        |r| r.status == 200 && r.json()["items"].as_array().map(Vec::len) == Some(3),
    );
    assert_eq!(
        three.json()["items"][2]["describedObject"]["name"],
        "jazz-3",
        "{three:?}"
    );
    // No pods match: 404, as prometheus-adapter.
    let none = shim.get(
        "/apis/custom.metrics.k8s.io/v1beta1/namespaces/prod/pods/%2A/http_requests_per_second?labelSelector=app%3Dnothing",
        true,
    );
    assert_eq!(none.status, 404, "{none:?}");
    // 300 pods: the query is longer than 8 KiB and goes as a POST form (prometheus-adapter
    // users hit 414 at ~150 pods); no series, so an empty list.
    let batch = shim.get(
        "/apis/custom.metrics.k8s.io/v1beta1/namespaces/batch/pods/%2A/http_requests_per_second?labelSelector=app%3Dworker",
        true,
    );
    assert_eq!(batch.status, 200, "{batch:?}");
    assert_eq!(batch.json()["items"], serde_json::json!([]));

    // type: External: one aggregated item (GroupBy is empty), summed by the HPA.
    let ext = shim.wait_for(
        "/apis/external.metrics.k8s.io/v1beta1/namespaces/prod/ho11y_rate",
        Duration::from_secs(30),
        |r| r.status == 200,
    );
    assert_eq!(ext.status, 200, "{ext:?}");
    let ext = ext.json();
    assert_eq!(ext["kind"], "ExternalMetricValueList");
    let items = ext["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{ext}");
    assert!(
        close(quantity(items[0]["value"].as_str().expect("v")), 6.0),
        "{ext}"
    );
    assert_eq!(items[0]["metricName"], "ho11y_rate");
    let ext_sel = shim
        .get(
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/prod/ho11y_rate?labelSelector=pod%3Dho11y-2",
            true,
        )
        .json();
    assert!(
        close(
            quantity(ext_sel["items"][0]["value"].as_str().expect("v")),
            4.0
        ),
        "{ext_sel}"
    );
    let ext_other_ns = shim
        .get(
            "/apis/external.metrics.k8s.io/v1beta1/namespaces/dev/ho11y_rate",
            true,
        )
        .json();
    assert_eq!(
        ext_other_ns["items"],
        serde_json::json!([]),
        "empty list, not an error"
    );

    // Errors are Kubernetes Status objects with the adapter's messages.
    let unknown = shim.get(
        "/apis/custom.metrics.k8s.io/v1beta1/namespaces/prod/pods/web-1/nope_per_second",
        true,
    );
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.json()["message"],
        "the server could not find the metric nope_per_second for pods"
    );
    let no_data = shim.get(
        "/apis/custom.metrics.k8s.io/v1beta2/namespaces/prod/pods/web-9/http_requests_per_second",
        true,
    );
    assert_eq!(no_data.status, 404);
    assert_eq!(
        no_data.json()["message"],
        "the server could not find the metric http_requests_per_second for pods web-9"
    );
    let bad_selector = shim.get(
        "/apis/custom.metrics.k8s.io/v1beta1/namespaces/prod/pods/web-1/http_requests_per_second?metricLabelSelector=app+in+%28",
        true,
    );
    assert_eq!(bad_selector.status, 400, "{bad_selector:?}");
    assert_eq!(bad_selector.json()["reason"], "BadRequest");
    let bad_path = shim.get("/apis/custom.metrics.k8s.io/v1beta1/pods", true);
    assert_eq!(bad_path.status, 400);
    let mut post_args: Vec<&str> = shim.identity.iter().map(String::as_str).collect();
    post_args.extend(["-X", "POST"]);
    let post = stack::curl_get(
        &shim.url("/apis/custom.metrics.k8s.io/v1beta1"),
        false,
        &post_args,
    );
    assert_eq!(post.status, 405, "{post:?}");

    // Every Prometheus call went through the proxy and was signed (the stand-in verified
    // each with botocore) and carried a real timeout.
    let requests = standin.requests();
    let path_of = |r: &serde_json::Value| {
        r["target"]
            .as_str()
            .unwrap_or_default()
            .split('?')
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    let queries: Vec<&serde_json::Value> = requests
        .iter()
        .filter(|r| path_of(r).ends_with("/api/v1/query"))
        .collect();
    assert!(!queries.is_empty(), "no query reached the stand-in");
    for q in &queries {
        assert_eq!(q["verified"], true, "{q}");
        if q["method"] == "GET" {
            assert!(
                q["target"]
                    .as_str()
                    .is_some_and(|s| s.contains("&timeout=30s")),
                "{q}"
            );
        }
    }
    assert!(
        requests
            .iter()
            .any(|r| path_of(r).ends_with("/api/v1/series")),
        "discovery used /api/v1/series"
    );
    let long_post = queries
        .iter()
        .find(|q| q["method"] == "POST")
        .expect("the 300-pod query went as a POST");
    assert_eq!(long_post["verified"], true);
    assert!(
        long_post["body_len"].as_u64().unwrap_or(0) > 8 * 1024,
        "{long_post}"
    );

    // The Kubernetes side: every call authorized with a SubjectAccessReview carrying the
    // apiserver's attributes, and one watch-backed list per resource type, not one per
    // request.
    let reviews = cluster.kube.access_reviews();
    let wildcard_review = reviews
        .iter()
        .find(|r| r["spec"]["resourceAttributes"]["name"] == "*")
        .expect("a review for a wildcard request");
    assert_eq!(wildcard_review["spec"]["user"], HPA_USER);
    let attrs = &wildcard_review["spec"]["resourceAttributes"];
    assert_eq!(attrs["verb"], "get");
    assert_eq!(attrs["group"], "custom.metrics.k8s.io");
    assert_eq!(attrs["resource"], "pods");
    assert_eq!(attrs["namespace"], "prod");
    let pod_lists = cluster
        .kube
        .requests()
        .iter()
        .filter(|r| {
            r["method"] == "GET"
                && r["path"].as_str().is_some_and(|p| p == "/api/v1/pods")
                && r["query"].get("watch").is_none()
        })
        .count();
    assert_eq!(pod_lists, 1, "pods listed once, then watched");

    // Its own metrics.
    let m = shim.get("/metrics", false);
    assert_eq!(m.status, 200);
    for needle in [
        "adapter_shim_discovered_metrics{api=\"custom\"} ",
        "adapter_shim_requests_total{api=\"custom_v1beta1\",code=\"200\"}",
        "adapter_shim_requests_total{api=\"custom_v1beta1\",code=\"404\"}",
        "adapter_shim_prometheus_request_duration_seconds_count{call=\"query\"}",
        "adapter_shim_relist_duration_seconds_count",
    ] {
        assert!(m.body.contains(needle), "{needle} missing:\n{}", m.body);
    }

    // SIGTERM: a clean exit.
    let status = shim.terminate();
    assert!(status.success(), "{status:?}");
}
