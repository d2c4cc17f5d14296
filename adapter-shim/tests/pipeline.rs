//! The anchor's walkthrough (§12) through the public API, end to end but without I/O:
//! config → series discovery → registry → discovery document → query → Prometheus answer
//! → MetricValueList. This is the order the server will call these functions in.

use adapter_shim::config::Config;
use adapter_shim::naming::{CustomRegistry, GroupResource, ResourceCatalog};
use adapter_shim::prometheus::{
    Verb, instant_query, match_values_to_names, parse_query_response, parse_series_response,
    series_query, values_by_label,
};
use adapter_shim::quantity::format_value;
use adapter_shim::selector::Selector;
use adapter_shim::template::CustomQuery;
use adapter_shim::wire::{
    ApiResource, ApiResourceList, CUSTOM_V1BETA1, MetricValueListV1Beta1, MetricValueV1Beta1,
    Timestamp, to_go_json,
};

const BASE: &str = "http://localhost:8080/workspaces/ws-0123abcd";

#[test]
fn hpa_pods_metric_walkthrough() {
    let config =
        Config::from_yaml(include_str!("fixtures/seed-canonical.yaml")).expect("seed config loads");
    let catalog = ResourceCatalog::builtin();

    // B. Discovery: one series call per distinct seriesQuery.
    let queries: Vec<&str> = config.custom_series_queries().into_iter().collect();
    assert_eq!(queries.len(), 2);
    let call = series_query(BASE, queries[0], 1_755_712_340_123, Verb::Get);
    assert!(call.url.starts_with(&format!(
        "{BASE}/api/v1/series?match%5B%5D=envoy_cluster_upstream_rq+%7B"
    )));
    let envoy = parse_series_response(
        200,
        &br#"{"status":"success","data":[
            {"__name__":"envoy_cluster_upstream_rq","namespace":"prod","kubernetes_pod_name":"jazz-5d8f7c9b6-2xk4p","envoy_response_code":"200"},
            {"__name__":"envoy_cluster_upstream_rq","namespace":"prod","kubernetes_pod_name":"jazz-5d8f7c9b6-9qzvn","envoy_response_code":"200"}
        ]}"#[..],
    )
    .expect("series parse");
    let http = parse_series_response(
        200,
        &br#"{"status":"success","data":[{"__name__":"http_requests_total","namespace":"prod","pod":"web-1"}]}"#[..],
    )
    .expect("series parse");
    let series_for = |q: &str| {
        if q.starts_with("envoy") {
            &envoy.0
        } else {
            &http.0
        }
    };
    let registry = CustomRegistry::build(
        config
            .rules
            .iter()
            .map(|r| (r.index, &r.naming, series_for(&r.series_query))),
        &catalog,
    );

    // C. The discovery document.
    let resources = registry
        .iter()
        .map(|(key, _)| {
            ApiResource::custom_metric(&key.resource.to_string(), &key.metric, key.namespaced)
        })
        .collect();
    let doc = String::from_utf8(
        to_go_json(&ApiResourceList::new(CUSTOM_V1BETA1, resources)).expect("json"),
    )
    .expect("utf-8");
    assert_eq!(
        doc,
        concat!(
            r#"{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"custom.metrics.k8s.io/v1beta1","resources":["#,
            r#"{"name":"namespaces/appmesh_requests_per_second","singularName":"","namespaced":false,"kind":"MetricValueList","verbs":["get"]},"#,
            r#"{"name":"namespaces/http_requests_per_second","singularName":"","namespaced":false,"kind":"MetricValueList","verbs":["get"]},"#,
            r#"{"name":"pods/appmesh_requests_per_second","singularName":"","namespaced":true,"kind":"MetricValueList","verbs":["get"]},"#,
            r#"{"name":"pods/http_requests_per_second","singularName":"","namespaced":true,"kind":"MetricValueList","verbs":["get"]}]}"#,
            "\n"
        )
    );

    // D. GET …/namespaces/prod/pods/%2A/appmesh_requests_per_second?labelSelector=app%3Djazz
    let resource = GroupResource::parse("pods");
    let source = registry
        .get(&resource, true, "appmesh_requests_per_second")
        .expect("registered");
    let rule = &config.rules[source.rule];
    // The object list (from the Kubernetes API in the server), filtered by labelSelector.
    let object_selector = Selector::parse("app=jazz").expect("labelSelector");
    let listed = [
        ("jazz-5d8f7c9b6-2xk4p", "jazz"),
        ("blues-7f9c8d7b5-abcde", "blues"),
        ("jazz-5d8f7c9b6-9qzvn", "jazz"),
        ("jazz-5d8f7c9b6-tm7rc", "jazz"),
    ];
    let pods: Vec<String> = listed
        .iter()
        .filter(|(_, app)| object_selector.matches(|k| (k == "app").then_some(*app)))
        .map(|(name, _)| (*name).to_owned())
        .collect();
    let resource_label = rule
        .naming
        .resources
        .label_for_resource(&resource, &catalog)
        .expect("pod label");
    let namespace_label = rule
        .naming
        .resources
        .namespace_label(&catalog)
        .expect("ns label");
    let metric_selector = Selector::everything();
    let promql = CustomQuery {
        series: &source.series,
        resource_label: &resource_label,
        namespace: Some((&namespace_label, "prod")),
        metric_selector: &metric_selector,
        names: &pods,
    }
    .render(&rule.metrics_query)
    .expect("renders");
    assert_eq!(
        promql,
        r#"sum(rate(envoy_cluster_upstream_rq{namespace="prod",kubernetes_pod_name=~"jazz-5d8f7c9b6-2xk4p|jazz-5d8f7c9b6-9qzvn|jazz-5d8f7c9b6-tm7rc"}[1m])) by (kubernetes_pod_name)"#
    );
    let request = instant_query(
        BASE,
        &promql,
        1_755_712_400_173,
        std::time::Duration::from_secs(30),
        Verb::Get,
    );
    assert!(request.url.ends_with("&time=1755712400.173&timeout=30s"));

    // The answer: one pod has a value, one is NaN (omitted), one has no series (omitted).
    let answer = parse_query_response(
        200,
        br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"kubernetes_pod_name":"jazz-5d8f7c9b6-2xk4p"},"value":[1755712400.173,"0.4"]},
            {"metric":{"kubernetes_pod_name":"jazz-5d8f7c9b6-9qzvn"},"value":[1755712400.173,"NaN"]}
        ]}}"#,
    )
    .expect("query parse");
    let samples = answer.result.into_vector().expect("vector");
    let values = values_by_label(&samples, &resource_label);
    let pod_info = catalog.get(&resource).expect("pods known");
    let items: Vec<MetricValueV1Beta1> = match_values_to_names(&values, &pods)
        .into_iter()
        .filter_map(|(name, v)| {
            Some(MetricValueV1Beta1 {
                described_object: pod_info.object_reference("prod", &name),
                metric_name: "appmesh_requests_per_second".into(),
                timestamp: Timestamp(1_755_712_400),
                window_seconds: None,
                value: format_value(v).ok()?,
                selector: None,
            })
        })
        .collect();
    let body = String::from_utf8(to_go_json(&MetricValueListV1Beta1::new(items)).expect("json"))
        .expect("utf-8");
    assert_eq!(
        body,
        concat!(
            r#"{"kind":"MetricValueList","apiVersion":"custom.metrics.k8s.io/v1beta1","metadata":{},"items":["#,
            r#"{"describedObject":{"kind":"Pod","namespace":"prod","name":"jazz-5d8f7c9b6-2xk4p","apiVersion":"/v1"},"#,
            r#""metricName":"appmesh_requests_per_second","timestamp":"2025-08-20T17:53:20Z","value":"400m","selector":null}]}"#,
            "\n"
        )
    );
}
