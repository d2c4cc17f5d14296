//! Where the names of the objects behind a wildcard request come from.
//!
//! The server asks an [`ObjectLister`] for the objects of one resource type in one
//! namespace that match the request's `labelSelector`. In a cluster that is the kube-rs
//! backed cache in `kube`; [`StaticObjects`] is a fixed in-memory set for tests and
//! `--check-config` style dry runs.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::RwLock;

use crate::naming::ResourceInfo;
use crate::selector::Selector;

/// A boxed future, so the trait stays object safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why objects could not be listed. Mapped to `500 unable to list matching resources`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListError {
    /// The cache for this resource has not synced within the lister's wait limit.
    #[error("the object cache for {0} is not ready")]
    NotReady(String),
    /// The Kubernetes API refused or failed the list/watch (message without secrets).
    #[error("listing {resource} failed: {message}")]
    Api {
        /// `pods`, `deployments.apps`, …
        resource: String,
        /// What the API said.
        message: String,
    },
}

/// Lists object names for wildcard requests.
pub trait ObjectLister: Send + Sync + fmt::Debug {
    /// Names of the objects of `resource` in `namespace` (`None` for cluster-scoped
    /// resources) whose labels match `selector`, sorted by name.
    fn list<'a>(
        &'a self,
        resource: &'a ResourceInfo,
        namespace: Option<&'a str>,
        selector: &'a Selector,
    ) -> BoxFuture<'a, Result<Vec<String>, ListError>>;
}

/// One object as a lister sees it: name and labels.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectMeta {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
}

impl ObjectMeta {
    /// An object with labels given as `(key, value)` pairs.
    #[must_use]
    pub fn new(name: &str, labels: &[(&str, &str)]) -> Self {
        Self {
            name: name.to_owned(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }
}

/// Keeps the objects that match `selector`, returns their names sorted.
pub fn matching_names<'a, I>(objects: I, selector: &Selector) -> Vec<String>
where
    I: IntoIterator<Item = &'a ObjectMeta>,
{
    let mut names: Vec<String> = objects
        .into_iter()
        .filter(|o| selector.matches(|k| o.labels.get(k).map(String::as_str)))
        .map(|o| o.name.clone())
        .collect();
    names.sort();
    names
}

/// Key of a static object set: group-resource string and namespace (`""` when cluster
/// scoped).
type StaticKey = (String, String);

/// A fixed set of objects, for tests and runs without a cluster.
#[derive(Debug, Default)]
pub struct StaticObjects {
    objects: RwLock<BTreeMap<StaticKey, Vec<ObjectMeta>>>,
}

impl StaticObjects {
    /// An empty set.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the objects of `resource` (`pods`, `deployments.apps`) in `namespace`.
    pub fn set(&self, resource: &str, namespace: Option<&str>, objects: Vec<ObjectMeta>) {
        let key = (
            resource.to_owned(),
            namespace.unwrap_or_default().to_owned(),
        );
        self.objects
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, objects);
    }
}

impl ObjectLister for StaticObjects {
    fn list<'a>(
        &'a self,
        resource: &'a ResourceInfo,
        namespace: Option<&'a str>,
        selector: &'a Selector,
    ) -> BoxFuture<'a, Result<Vec<String>, ListError>> {
        let key = (
            resource.group_resource.to_string(),
            namespace.unwrap_or_default().to_owned(),
        );
        let objects = self
            .objects
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let names = objects
            .get(&key)
            .map(|o| matching_names(o, selector))
            .unwrap_or_default();
        Box::pin(std::future::ready(Ok(names)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::{GroupResource, ResourceCatalog};

    fn pods() -> ResourceInfo {
        ResourceCatalog::builtin()
            .get(&GroupResource::core("pods"))
            .cloned()
            .expect("pods")
    }

    fn block_on<T>(f: BoxFuture<'_, T>) -> T {
        // The static lister's future is always ready; poll it once.
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = f;
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("static lister future was not ready"),
        }
    }

    #[test]
    fn static_lister_filters_by_selector_and_namespace() {
        let objects = StaticObjects::new();
        objects.set(
            "pods",
            Some("prod"),
            vec![
                ObjectMeta::new("web-2", &[("app", "web")]),
                ObjectMeta::new("db-0", &[("app", "db")]),
                ObjectMeta::new("web-1", &[("app", "web"), ("tier", "front")]),
            ],
        );
        let sel = Selector::parse("app=web").expect("selector");
        let names = block_on(objects.list(&pods(), Some("prod"), &sel)).expect("list");
        assert_eq!(names, ["web-1", "web-2"]);
        let none = block_on(objects.list(&pods(), Some("dev"), &sel)).expect("list");
        assert!(none.is_empty());
        let all =
            block_on(objects.list(&pods(), Some("prod"), &Selector::everything())).expect("list");
        assert_eq!(all, ["db-0", "web-1", "web-2"]);
    }
}
