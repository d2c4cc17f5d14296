//! [`KubeObjects`]: object names for wildcard requests from metadata-only watch caches.
//!
//! prometheus-adapter does a List per wildcard request (`GET /api/v1/namespaces/prod/pods?
//! labelSelector=…`). The shim keeps, per resource type, a cache fed by one metadata-only
//! watch over all namespaces (`Accept: …;as=PartialObjectMetadataList`), holding only each
//! object's namespace, name and labels. The watch of a type starts on the first request for
//! it; that request waits for the initial list up to a bounded time.
//!
//! **Pods in every phase are listed** (Pending, Running, Succeeded, Failed), as
//! prometheus-adapter does: a metadata-only watch does not see `status.phase`, and an HPA
//! ignores items for pods it does not count itself (it lists the pods and filters phases on
//! its side), so extra names only widen the PromQL `=~` matcher.
//!
//! Once synced, a cache keeps answering from what it holds while its watch reconnects
//! (kube-rs relists after a lost watch; errors are retried with exponential backoff and
//! logged).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use futures_util::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PartialObjectMeta};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::watch;

use crate::naming::ResourceInfo;
use crate::objects::{BoxFuture, ListError, ObjectLister, ObjectMeta, matching_names};
use crate::selector::Selector;

/// How long a request waits for a type's initial list before [`ListError::NotReady`].
pub const DEFAULT_SYNC_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a request waits for a type whose watch has already failed and not yet synced.
const FAILING_SYNC_WAIT: Duration = Duration::from_secs(1);

/// The cache key of a type: group, version, plural.
type TypeKey = (String, String, String);

/// Objects by namespace (`""` for cluster-scoped types), then by name.
type Objects = HashMap<String, BTreeMap<String, ObjectMeta>>;

/// Object lists for wildcard requests from per-type metadata-only watch caches.
pub struct KubeObjects {
    client: kube::Client,
    sync_timeout: Duration,
    caches: Mutex<HashMap<TypeKey, Arc<TypeCache>>>,
}

#[derive(Debug)]
struct TypeCache {
    shared: Arc<SharedState>,
    task: tokio::task::JoinHandle<()>,
}

/// What the watch task and the cache share.
#[derive(Debug)]
struct SharedState {
    /// `pods`, `deployments.apps`: for messages and logs.
    label: String,
    state: RwLock<CacheState>,
    synced: watch::Sender<bool>,
}

#[derive(Debug, Default)]
struct CacheState {
    objects: Objects,
    /// The last watch error, cleared by the next successful (re)list.
    last_error: Option<String>,
}

impl std::fmt::Debug for KubeObjects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeObjects")
            .field("sync_timeout", &self.sync_timeout)
            .field("caches", &self.started())
            .finish_non_exhaustive()
    }
}

impl KubeObjects {
    /// A lister on `client` (a request waits up to [`DEFAULT_SYNC_TIMEOUT`] for a type's
    /// first sync). No API call is made until the first request.
    #[must_use]
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            sync_timeout: DEFAULT_SYNC_TIMEOUT,
            caches: Mutex::new(HashMap::new()),
        }
    }

    /// The same with another wait limit for the initial sync.
    #[must_use]
    pub fn with_sync_timeout(mut self, timeout: Duration) -> Self {
        self.sync_timeout = timeout;
        self
    }

    /// The cache of a type, starting its watch on first use. Must run inside a Tokio
    /// runtime.
    fn cache(&self, resource: &ResourceInfo) -> Arc<TypeCache> {
        let gr = &resource.group_resource;
        let key = (
            gr.group.clone(),
            resource.version.clone(),
            gr.resource.clone(),
        );
        let mut caches = self.caches.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cache) = caches.get(&key) {
            return Arc::clone(cache);
        }
        let cache = start_watch(self.client.clone(), resource);
        caches.insert(key, Arc::clone(&cache));
        cache
    }

    /// Starts the watch of a type now, without waiting (e.g. pods at start-up, so that the
    /// first HPA request finds the cache synced). Must run inside a Tokio runtime.
    pub fn warm(&self, resource: &ResourceInfo) {
        let _ = self.cache(resource);
    }

    /// Types whose watch has been started, with whether each has synced (for readiness
    /// and diagnostics).
    #[must_use]
    pub fn started(&self) -> Vec<(String, bool)> {
        let caches = self.caches.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<(String, bool)> = caches
            .values()
            .map(|c| (c.shared.label.clone(), *c.shared.synced.borrow()))
            .collect();
        out.sort();
        out
    }
}

impl Drop for KubeObjects {
    fn drop(&mut self) {
        let caches = self
            .caches
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        for cache in caches.values() {
            cache.task.abort();
        }
    }
}

impl ObjectLister for KubeObjects {
    /// Names of the matching objects, sorted. `namespace: None` on a namespaced type lists
    /// all namespaces (names may then repeat); on a cluster-scoped type the namespace is
    /// ignored.
    fn list<'a>(
        &'a self,
        resource: &'a ResourceInfo,
        namespace: Option<&'a str>,
        selector: &'a Selector,
    ) -> BoxFuture<'a, Result<Vec<String>, ListError>> {
        Box::pin(async move {
            let cache = self.cache(resource);
            let cache = &cache.shared;
            let mut synced = cache.synced.subscribe();
            // While a type's watch keeps failing (RBAC, a removed CRD), later requests wait
            // only briefly instead of the full limit each.
            let failing = cache
                .state
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .last_error
                .is_some();
            let limit = if failing {
                self.sync_timeout.min(FAILING_SYNC_WAIT)
            } else {
                self.sync_timeout
            };
            let waited = tokio::time::timeout(limit, synced.wait_for(|s| *s)).await;
            if !matches!(waited, Ok(Ok(_))) {
                let state = cache.state.read().unwrap_or_else(PoisonError::into_inner);
                return Err(match &state.last_error {
                    Some(message) => ListError::Api {
                        resource: cache.label.clone(),
                        message: message.clone(),
                    },
                    None => ListError::NotReady(cache.label.clone()),
                });
            }
            let state = cache.state.read().unwrap_or_else(PoisonError::into_inner);
            let names = if resource.namespaced {
                match namespace {
                    Some(ns) => state
                        .objects
                        .get(ns)
                        .map(|objs| matching_names(objs.values(), selector))
                        .unwrap_or_default(),
                    None => {
                        matching_names(state.objects.values().flat_map(|m| m.values()), selector)
                    }
                }
            } else {
                state
                    .objects
                    .get("")
                    .map(|objs| matching_names(objs.values(), selector))
                    .unwrap_or_default()
            };
            Ok(names)
        })
    }
}

/// The kube-rs description of a type.
fn api_resource(resource: &ResourceInfo) -> ApiResource {
    let gr = &resource.group_resource;
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(&gr.group, &resource.version, &resource.kind),
        &gr.resource,
    )
}

fn start_watch(client: kube::Client, resource: &ResourceInfo) -> Arc<TypeCache> {
    let api: Api<PartialObjectMeta<DynamicObject>> = Api::all_with(client, &api_resource(resource));
    let shared = Arc::new(SharedState {
        label: resource.group_resource.to_string(),
        state: RwLock::new(CacheState::default()),
        synced: watch::channel(false).0,
    });
    let task = tokio::spawn(run_watch(api, Arc::clone(&shared)));
    Arc::new(TypeCache { shared, task })
}

async fn run_watch(api: Api<PartialObjectMeta<DynamicObject>>, shared: Arc<SharedState>) {
    let config = watcher::Config::default().any_semantic();
    let mut stream = watcher::watcher(api, config).default_backoff().boxed();
    let mut buffer: Option<Objects> = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(Event::Init) => buffer = Some(Objects::new()),
            Ok(Event::InitApply(obj)) => {
                if let Some(buf) = buffer.as_mut() {
                    insert(buf, &obj.metadata);
                }
            }
            Ok(Event::InitDone) => {
                let objects = buffer.take().unwrap_or_default();
                let count: usize = objects.values().map(BTreeMap::len).sum();
                {
                    let mut state = shared.state.write().unwrap_or_else(PoisonError::into_inner);
                    state.objects = objects;
                    state.last_error = None;
                }
                tracing::debug!(resource = %shared.label, objects = count, "object cache synced");
                shared.synced.send_replace(true);
            }
            Ok(Event::Apply(obj)) => {
                let mut state = shared.state.write().unwrap_or_else(PoisonError::into_inner);
                insert(&mut state.objects, &obj.metadata);
            }
            Ok(Event::Delete(obj)) => {
                let mut state = shared.state.write().unwrap_or_else(PoisonError::into_inner);
                remove(&mut state.objects, &obj.metadata);
            }
            Err(e) => {
                let message = describe_watch_error(&e);
                tracing::warn!(resource = %shared.label, error = %message, "object watch failed; retrying with backoff");
                let mut state = shared.state.write().unwrap_or_else(PoisonError::into_inner);
                state.last_error = Some(message);
            }
        }
    }
}

fn describe_watch_error(e: &watcher::Error) -> String {
    match e {
        watcher::Error::InitialListFailed(k)
        | watcher::Error::WatchStartFailed(k)
        | watcher::Error::WatchFailed(k) => super::describe_error(k),
        other => other.to_string(),
    }
}

fn insert(objects: &mut Objects, meta: &kube::api::ObjectMeta) {
    let Some(name) = meta.name.clone() else {
        return;
    };
    let namespace = meta.namespace.clone().unwrap_or_default();
    let labels = meta.labels.clone().unwrap_or_default();
    objects
        .entry(namespace)
        .or_default()
        .insert(name.clone(), ObjectMeta { name, labels });
}

fn remove(objects: &mut Objects, meta: &kube::api::ObjectMeta) {
    let (Some(name), namespace) = (meta.name.as_deref(), meta.namespace.as_deref()) else {
        return;
    };
    let namespace = namespace.unwrap_or_default();
    if let Some(names) = objects.get_mut(namespace) {
        names.remove(name);
        if names.is_empty() {
            objects.remove(namespace);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::GroupResource;

    fn meta(ns: Option<&str>, name: &str, labels: &[(&str, &str)]) -> kube::api::ObjectMeta {
        kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: ns.map(str::to_owned),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            ..kube::api::ObjectMeta::default()
        }
    }

    #[test]
    fn store_keeps_namespaces_apart_and_forgets_deleted_objects() {
        let mut objects = Objects::new();
        insert(
            &mut objects,
            &meta(Some("prod"), "web-1", &[("app", "web")]),
        );
        insert(&mut objects, &meta(Some("prod"), "db-0", &[("app", "db")]));
        insert(&mut objects, &meta(Some("dev"), "web-1", &[("app", "web")]));
        insert(&mut objects, &meta(None, "node-a", &[]));
        let sel = Selector::parse("app=web").expect("selector");
        assert_eq!(matching_names(objects["prod"].values(), &sel), ["web-1"]);
        assert_eq!(objects[""].len(), 1);
        // A relabel replaces the entry.
        insert(&mut objects, &meta(Some("prod"), "db-0", &[("app", "web")]));
        assert_eq!(
            matching_names(objects["prod"].values(), &sel),
            ["db-0", "web-1"]
        );
        remove(&mut objects, &meta(Some("dev"), "web-1", &[]));
        assert!(!objects.contains_key("dev"), "empty namespaces are dropped");
        remove(&mut objects, &meta(Some("dev"), "web-1", &[]));
        let nameless = kube::api::ObjectMeta::default();
        insert(&mut objects, &nameless);
        remove(&mut objects, &nameless);
        assert_eq!(objects.values().map(BTreeMap::len).sum::<usize>(), 3);
    }

    #[test]
    fn api_resource_describes_crds_and_core_types() {
        let info = ResourceInfo {
            group_resource: GroupResource::new("stable.example.com", "crontabs"),
            version: "v1".into(),
            singular: "crontab".into(),
            kind: "CronTab".into(),
            namespaced: true,
        };
        let ar = api_resource(&info);
        assert_eq!(
            (
                ar.group.as_str(),
                ar.version.as_str(),
                ar.api_version.as_str()
            ),
            ("stable.example.com", "v1", "stable.example.com/v1")
        );
        assert_eq!(
            (ar.kind.as_str(), ar.plural.as_str()),
            ("CronTab", "crontabs")
        );
        let pods = crate::naming::ResourceCatalog::builtin()
            .get(&GroupResource::core("pods"))
            .cloned()
            .expect("pods");
        assert_eq!(api_resource(&pods).api_version, "v1");
    }
}
