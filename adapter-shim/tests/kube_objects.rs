//! `KubeObjects` and `discover_resources` against the Kubernetes API stand-in, through the
//! real kube-rs client over HTTPS.

#[path = "support/kube.rs"]
mod kube_support;

use std::time::Duration;

use adapter_shim::kube::{KubeObjects, discover_resources};
use adapter_shim::naming::{GroupResource, ResourceCatalog, ResourceInfo};
use adapter_shim::objects::{ListError, ObjectLister};
use adapter_shim::selector::Selector;
use kube_support::{KubeStandIn, eventually};

/// How long a change may take to reach the cache.
const PROPAGATION: Duration = Duration::from_secs(10);

fn builtin(group: &str, resource: &str) -> ResourceInfo {
    ResourceCatalog::builtin()
        .get(&GroupResource::new(group, resource))
        .cloned()
        .unwrap_or_else(|| panic!("{resource}.{group} is built in"))
}

fn crontabs() -> ResourceInfo {
    ResourceInfo {
        group_resource: GroupResource::new("stable.example.com", "crontabs"),
        version: "v1".into(),
        singular: "crontab".into(),
        kind: "CronTab".into(),
        namespaced: true,
    }
}

fn all() -> Selector {
    Selector::everything()
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).expect("selector")
}

async fn names(
    lister: &KubeObjects,
    resource: &ResourceInfo,
    ns: Option<&str>,
    selector: &Selector,
) -> Vec<String> {
    lister.list(resource, ns, selector).await.expect("list")
}

async fn wait_for_names(
    lister: &KubeObjects,
    resource: &ResourceInfo,
    ns: Option<&str>,
    want: &[&str],
) {
    let got = eventually(PROPAGATION, || async {
        let got = names(lister, resource, ns, &all()).await;
        (got == want).then_some(got)
    })
    .await;
    assert!(
        got.is_some(),
        "{} in {ns:?} never became {want:?}, last: {:?}",
        resource.group_resource,
        names(lister, resource, ns, &all()).await
    );
}

#[tokio::test]
async fn pods_are_listed_filtered_and_kept_up_to_date() {
    let standin = KubeStandIn::start();
    standin.apply(
        "pods",
        "prod",
        "web-2",
        &[("app", "web"), ("tier", "front")],
    );
    standin.apply("pods", "prod", "web-1", &[("app", "web")]);
    standin.apply("pods", "prod", "db-0", &[("app", "db")]);
    standin.apply("pods", "dev", "web-9", &[("app", "web")]);
    let lister = KubeObjects::new(standin.client().await);
    let pods = builtin("", "pods");
    lister.warm(&pods);
    assert_eq!(lister.started().len(), 1);

    // Initial list: the first request waits for the sync.
    assert_eq!(
        names(&lister, &pods, Some("prod"), &all()).await,
        ["db-0", "web-1", "web-2"]
    );
    // Label selectors, as the HPA sends them (scale target's selector).
    assert_eq!(
        names(&lister, &pods, Some("prod"), &sel("app=web")).await,
        ["web-1", "web-2"]
    );
    assert_eq!(
        names(
            &lister,
            &pods,
            Some("prod"),
            &sel("app in (web,db),tier!=front")
        )
        .await,
        ["db-0", "web-1"]
    );
    assert_eq!(
        names(&lister, &pods, Some("prod"), &sel("tier")).await,
        ["web-2"]
    );
    assert!(
        names(&lister, &pods, Some("prod"), &sel("app=none"))
            .await
            .is_empty()
    );
    // Namespaces are kept apart.
    assert_eq!(
        names(&lister, &pods, Some("dev"), &sel("app=web")).await,
        ["web-9"]
    );
    assert!(
        names(&lister, &pods, Some("staging"), &all())
            .await
            .is_empty()
    );
    // No namespace on a namespaced type: every namespace.
    assert_eq!(
        names(&lister, &pods, None, &sel("app=web")).await,
        ["web-1", "web-2", "web-9"]
    );

    // A pod added and one deleted show up within a bounded wait.
    standin.apply("pods", "prod", "web-3", &[("app", "web")]);
    wait_for_names(
        &lister,
        &pods,
        Some("prod"),
        &["db-0", "web-1", "web-2", "web-3"],
    )
    .await;
    standin.delete("pods", "prod", "web-1");
    wait_for_names(&lister, &pods, Some("prod"), &["db-0", "web-2", "web-3"]).await;
    // A relabelled pod moves in and out of a selector.
    standin.apply("pods", "prod", "db-0", &[("app", "web")]);
    let moved = eventually(PROPAGATION, || async {
        let got = names(&lister, &pods, Some("prod"), &sel("app=web")).await;
        (got == ["db-0", "web-2", "web-3"]).then_some(())
    })
    .await;
    assert!(moved.is_some(), "relabelled pod not seen");

    // Many pods at once (the HPA case that made prometheus-adapter's URLs too long).
    let many: Vec<String> = (0..200).map(|i| format!("batch-{i:03}")).collect();
    standin.apply_many("pods", "batch", &many, &[("app", "batch")]);
    let seen = eventually(PROPAGATION, || async {
        let got = names(&lister, &pods, Some("batch"), &sel("app=batch")).await;
        (got == many).then_some(())
    })
    .await;
    assert!(seen.is_some(), "200 pods not all seen");

    // One metadata-only list and watch over all namespaces, not a List per request.
    let requests = standin.requests();
    let pod_calls: Vec<_> = requests
        .iter()
        .filter(|r| r["path"] == "/api/v1/pods")
        .collect();
    let lists = pod_calls
        .iter()
        .filter(|r| r["query"]["watch"].is_null())
        .count();
    assert_eq!(lists, 1, "{pod_calls:#?}");
    assert!(
        pod_calls.iter().any(|r| r["query"]["watch"] == "true"),
        "{pod_calls:#?}"
    );
    for call in &pod_calls {
        let accept = call["accept"].as_str().unwrap_or_default();
        assert!(
            accept.contains("as=PartialObjectMetadata"),
            "not metadata-only: {call}"
        );
    }
    assert!(
        requests.iter().all(|r| !r["path"]
            .as_str()
            .unwrap_or_default()
            .contains("/namespaces/")),
        "per-namespace calls: {requests:#?}"
    );
}

#[tokio::test]
async fn cluster_scoped_types_deployments_and_crds() {
    let standin = KubeStandIn::start();
    standin.apply("deployments.apps", "prod", "jazz", &[("app", "jazz")]);
    standin.apply("deployments.apps", "prod", "blues", &[("app", "blues")]);
    standin.apply(
        "crontabs.stable.example.com",
        "prod",
        "nightly",
        &[("team", "a")],
    );
    standin.apply(
        "crontabs.stable.example.com",
        "dev",
        "hourly",
        &[("team", "b")],
    );
    standin.apply("nodes", "", "node-b", &[("zone", "b")]);
    standin.apply("nodes", "", "node-a", &[("zone", "a")]);
    let lister = KubeObjects::new(standin.client().await);

    // Cluster-scoped: namespaces (the stand-in starts with four) and nodes.
    let namespaces = builtin("", "namespaces");
    assert_eq!(
        names(&lister, &namespaces, None, &all()).await,
        ["default", "dev", "kube-system", "prod"]
    );
    assert_eq!(
        names(
            &lister,
            &namespaces,
            None,
            &sel("kubernetes.io/metadata.name=prod")
        )
        .await,
        ["prod"]
    );
    let nodes = builtin("", "nodes");
    assert_eq!(
        names(&lister, &nodes, None, &sel("zone=a")).await,
        ["node-a"]
    );
    standin.apply("namespaces", "", "staging", &[]);
    wait_for_names(
        &lister,
        &namespaces,
        None,
        &["default", "dev", "kube-system", "prod", "staging"],
    )
    .await;

    // A group other than core.
    let deployments = builtin("apps", "deployments");
    assert_eq!(
        names(&lister, &deployments, Some("prod"), &sel("app=jazz")).await,
        ["jazz"]
    );
    // A CRD, described as discovery would.
    let crd = crontabs();
    assert_eq!(
        names(&lister, &crd, Some("prod"), &all()).await,
        ["nightly"]
    );
    assert_eq!(names(&lister, &crd, None, &sel("team=b")).await, ["hourly"]);
    standin.delete("crontabs.stable.example.com", "prod", "nightly");
    wait_for_names(&lister, &crd, Some("prod"), &[]).await;

    let started = lister.started();
    assert_eq!(
        started,
        vec![
            ("crontabs.stable.example.com".to_owned(), true),
            ("deployments.apps".to_owned(), true),
            ("namespaces".to_owned(), true),
            ("nodes".to_owned(), true),
        ]
    );
}

#[tokio::test]
async fn unknown_type_is_an_error_after_the_sync_limit() {
    let standin = KubeStandIn::start();
    let lister = KubeObjects::new(standin.client().await).with_sync_timeout(Duration::from_secs(3));
    let missing = ResourceInfo {
        group_resource: GroupResource::new("nowhere.example.com", "ghosts"),
        version: "v1".into(),
        singular: "ghost".into(),
        kind: "Ghost".into(),
        namespaced: true,
    };
    let started = std::time::Instant::now();
    let err = lister
        .list(&missing, Some("prod"), &all())
        .await
        .expect_err("no such type");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "waited {:?}",
        started.elapsed()
    );
    match err {
        ListError::Api { resource, message } => {
            assert_eq!(resource, "ghosts.nowhere.example.com");
            assert!(message.contains("404"), "{message}");
        }
        ListError::NotReady(resource) => assert_eq!(resource, "ghosts.nowhere.example.com"),
    }
    // Once the watch is known to fail, requests do not each wait the full limit.
    let started = std::time::Instant::now();
    let err = lister
        .list(&missing, Some("prod"), &all())
        .await
        .expect_err("still no such type");
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "waited {:?}",
        started.elapsed()
    );
    assert!(
        matches!(&err, ListError::Api { message, .. } if message.contains("404")),
        "{err:?}"
    );
}

#[tokio::test]
async fn watch_failures_are_retried() {
    let standin = KubeStandIn::start();
    standin.apply("services", "prod", "jazz", &[("app", "jazz")]);
    // The first two list attempts fail; the backoff retries until one succeeds.
    standin.fail("/api/v1/services", 500, 2);
    let lister =
        KubeObjects::new(standin.client().await).with_sync_timeout(Duration::from_secs(20));
    let services = builtin("", "services");
    assert_eq!(
        names(&lister, &services, Some("prod"), &all()).await,
        ["jazz"]
    );
    let calls = standin
        .requests()
        .iter()
        .filter(|r| r["path"] == "/api/v1/services" && r["query"]["watch"].is_null())
        .count();
    assert!(calls >= 3, "expected retried lists, saw {calls}");
}

#[tokio::test]
async fn discovery_finds_builtins_and_crds_at_preferred_versions() {
    let standin = KubeStandIn::start();
    let client = standin.client().await;
    let found = discover_resources(&client).await.expect("discovery");
    let find = |group: &str, resource: &str| {
        found
            .iter()
            .find(|r| r.group_resource == GroupResource::new(group, resource))
            .cloned()
    };
    assert_eq!(find("stable.example.com", "crontabs"), Some(crontabs()));
    assert_eq!(
        find("stable.example.com", "clusterwidgets"),
        Some(ResourceInfo {
            group_resource: GroupResource::new("stable.example.com", "clusterwidgets"),
            version: "v1".into(),
            singular: "clusterwidget".into(),
            kind: "ClusterWidget".into(),
            namespaced: false,
        })
    );
    assert_eq!(find("", "pods"), Some(builtin("", "pods")));
    assert_eq!(
        find("apps", "deployments"),
        Some(builtin("apps", "deployments"))
    );
    assert!(
        found
            .iter()
            .all(|r| !r.group_resource.resource.contains('/')),
        "subresources leaked: {found:?}"
    );
    // Each (group, resource) once: only the preferred version was read.
    let mut keys: Vec<_> = found.iter().map(|r| r.group_resource.to_string()).collect();
    let total = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), total);
    let asked: Vec<String> = standin
        .requests()
        .iter()
        .filter_map(|r| r["path"].as_str().map(str::to_owned))
        .collect();
    assert!(!asked.iter().any(|p| p.contains("v1beta1")), "{asked:?}");

    // What the server will do with it: CRDs into the catalog, then resolvable by name.
    let mut catalog = ResourceCatalog::builtin();
    for info in found {
        catalog.insert(info);
    }
    let resolved = catalog
        .normalize(&GroupResource::new("", "crontab"))
        .expect("singular CRD name resolves");
    assert_eq!(
        resolved.group_resource.to_string(),
        "crontabs.stable.example.com"
    );
}

#[tokio::test]
async fn forbidden_lists_are_reported_with_the_api_message() {
    let standin = KubeStandIn::start();
    // RBAC without list on services: every list attempt is refused.
    standin.fail("/api/v1/services", 403, 1000);
    let lister = KubeObjects::new(standin.client().await).with_sync_timeout(Duration::from_secs(2));
    let services = builtin("", "services");
    let err = lister
        .list(&services, Some("prod"), &all())
        .await
        .expect_err("forbidden");
    assert_eq!(
        err,
        ListError::Api {
            resource: "services".into(),
            message: "injected failure 403 for /api/v1/services (403 Forbidden)".into(),
        }
    );
    // The shim's credentials never show up in what is reported.
    assert!(!err.to_string().contains(kube_support::SHIM_TOKEN));
}
