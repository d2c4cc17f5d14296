//! Series discovery: which metrics exist, refreshed every relist interval.
//!
//! The served state is one immutable [`Snapshot`] behind an `ArcSwap`: requests load it
//! without locks, and a relist or rules reload builds a new one and swaps it in whole, so a
//! request never sees half an update. Unlike prometheus-adapter, one failing series call
//! does not throw the whole pass away: each distinct `seriesQuery` keeps its last good
//! answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use bytes::Bytes;
use futures_util::future::join_all;
use tokio::sync::Notify;

use crate::config::{Config, Rule};
use crate::metrics::{ApiLabels, CallLabels, KindLabels, Metrics, unix_now};
use crate::naming::{CustomRegistry, ExternalRegistry, ResourceCatalog};
use crate::promclient::PromClient;
use crate::prometheus::SeriesSet;
use crate::wire::{
    ApiResource, ApiResourceList, CUSTOM_V1BETA1, CUSTOM_V1BETA2, EXTERNAL_V1BETA1, to_go_json,
};

/// Discovery documents, rendered once per snapshot (clients poll them constantly).
#[derive(Debug, Clone, Default)]
pub struct DiscoveryDocs {
    /// `/apis/custom.metrics.k8s.io/v1beta1`.
    pub custom_v1beta1: Bytes,
    /// `/apis/custom.metrics.k8s.io/v1beta2`.
    pub custom_v1beta2: Bytes,
    /// `/apis/external.metrics.k8s.io/v1beta1`.
    pub external_v1beta1: Bytes,
}

/// Everything a request needs to know about rules and discovered metrics.
#[derive(Debug)]
pub struct Snapshot {
    /// The rules.
    pub config: Arc<Config>,
    /// Known resource types (built-in plus the cluster's).
    pub catalog: Arc<ResourceCatalog>,
    /// Discovered custom metrics.
    pub custom: CustomRegistry,
    /// Discovered external metrics.
    pub external: ExternalRegistry,
    /// Whether a discovery pass has finished (before that every metric is unknown).
    pub relisted: bool,
    /// The rendered discovery documents.
    pub docs: DiscoveryDocs,
}

impl Snapshot {
    fn build(
        config: Arc<Config>,
        catalog: Arc<ResourceCatalog>,
        seen: &LastGood,
        relisted: bool,
    ) -> Self {
        let empty = SeriesSet::default();
        fn series_of<'a>(
            map: &'a HashMap<String, SeriesSet>,
            rule: &Rule,
            empty: &'a SeriesSet,
        ) -> &'a std::collections::BTreeSet<crate::naming::Series> {
            &map.get(&rule.series_query).unwrap_or(empty).0
        }
        let custom = CustomRegistry::build(
            config
                .rules
                .iter()
                .map(|r| (r.index, &r.naming, series_of(&seen.custom, r, &empty))),
            &catalog,
        );
        let external = ExternalRegistry::build(
            config
                .external_rules
                .iter()
                .map(|r| (r.index, &r.naming, series_of(&seen.external, r, &empty))),
        );
        let docs = render_docs(&custom, &external);
        Self {
            config,
            catalog,
            custom,
            external,
            relisted,
            docs,
        }
    }
}

fn render_docs(custom: &CustomRegistry, external: &ExternalRegistry) -> DiscoveryDocs {
    let custom_resources: Vec<ApiResource> = custom
        .iter()
        .map(|(key, _)| {
            ApiResource::custom_metric(&key.resource.to_string(), &key.metric, key.namespaced)
        })
        .collect();
    // prometheus-adapter lists every external metric as namespaced, whatever the rule says;
    // clients only use the name.
    let external_resources: Vec<ApiResource> = external
        .iter()
        .map(|(metric, _)| ApiResource::external_metric(metric, true))
        .collect();
    let render = |gv: &str, resources: Vec<ApiResource>| {
        // Serializing these plain structs cannot fail; an empty body would still be a 200.
        Bytes::from(to_go_json(&ApiResourceList::new(gv, resources)).unwrap_or_default())
    };
    DiscoveryDocs {
        custom_v1beta1: render(CUSTOM_V1BETA1, custom_resources.clone()),
        custom_v1beta2: render(CUSTOM_V1BETA2, custom_resources),
        external_v1beta1: render(EXTERNAL_V1BETA1, external_resources),
    }
}

/// The last good series answer per distinct `seriesQuery`, custom and external apart (as
/// prometheus-adapter lists them separately).
#[derive(Debug, Default)]
struct LastGood {
    custom: HashMap<String, SeriesSet>,
    external: HashMap<String, SeriesSet>,
}

/// The discovery state and loop.
#[derive(Debug)]
pub struct Discovery {
    snapshot: ArcSwap<Snapshot>,
    last_good: Mutex<LastGood>,
    client: PromClient,
    max_age: Duration,
    metrics: Arc<Metrics>,
    wake: Notify,
}

impl Discovery {
    /// Starts with `config` and nothing discovered.
    #[must_use]
    pub fn new(
        config: Arc<Config>,
        catalog: Arc<ResourceCatalog>,
        client: PromClient,
        max_age: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        let snapshot = Snapshot::build(config, catalog, &LastGood::default(), false);
        Self {
            snapshot: ArcSwap::from_pointee(snapshot),
            last_good: Mutex::new(LastGood::default()),
            client,
            max_age,
            metrics,
            wake: Notify::new(),
        }
    }

    /// The current state.
    #[must_use]
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// The Prometheus client discovery uses (requests share it).
    #[must_use]
    pub fn client(&self) -> &PromClient {
        &self.client
    }

    /// Replaces the rules (already validated), keeping what was discovered for the series
    /// queries that remain, and asks the loop for a relist.
    pub fn set_config(&self, config: Arc<Config>) {
        let last_good = self.lock();
        let current = self.snapshot();
        let next = Snapshot::build(
            config,
            current.catalog.clone(),
            &last_good,
            current.relisted,
        );
        self.publish(next);
        drop(last_good);
        self.wake.notify_one();
    }

    /// Replaces the resource catalog (after API discovery found the cluster's types).
    pub fn set_catalog(&self, catalog: Arc<ResourceCatalog>) {
        let last_good = self.lock();
        let current = self.snapshot();
        let next = Snapshot::build(
            current.config.clone(),
            catalog,
            &last_good,
            current.relisted,
        );
        self.publish(next);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LastGood> {
        self.last_good
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self, next: Snapshot) {
        self.metrics
            .discovered_metrics
            .get_or_create(&ApiLabels { api: "custom" })
            .set(i64::try_from(next.custom.len()).unwrap_or(i64::MAX));
        self.metrics
            .discovered_metrics
            .get_or_create(&ApiLabels { api: "external" })
            .set(i64::try_from(next.external.len()).unwrap_or(i64::MAX));
        self.snapshot.store(Arc::new(next));
    }

    /// One discovery pass: every distinct series query in parallel, then one swap.
    /// Returns the number of failed calls.
    pub async fn relist(&self) -> usize {
        let started = Instant::now();
        let config = self.snapshot().config.clone();
        let start = SystemTime::now()
            .checked_sub(self.max_age)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let custom: Vec<String> = config
            .custom_series_queries()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let external: Vec<String> = config
            .external_series_queries()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let fetch = |query: String| async move {
            let t = Instant::now();
            let result = self.client.series(&query, start).await;
            self.metrics
                .prometheus_seconds
                .get_or_create(&CallLabels { call: "series" })
                .observe(t.elapsed().as_secs_f64());
            (query, result)
        };
        let (custom_results, external_results) = tokio::join!(
            join_all(custom.into_iter().map(fetch)),
            join_all(external.into_iter().map(fetch)),
        );

        let mut failures = 0;
        let mut last_good = self.lock();
        let LastGood {
            custom: custom_map,
            external: external_map,
        } = &mut *last_good;
        for (results, map) in [
            (custom_results, custom_map),
            (external_results, external_map),
        ] {
            let mut fresh = HashMap::with_capacity(results.len());
            for (query, result) in results {
                match result {
                    Ok(set) => {
                        tracing::debug!(series_query = %query, series = set.0.len(), "series listed");
                        fresh.insert(query, set);
                    }
                    Err(error) => {
                        failures += 1;
                        self.metrics.relist_failures.inc();
                        self.metrics
                            .prometheus_errors
                            .get_or_create(&KindLabels { kind: error.kind() })
                            .inc();
                        tracing::warn!(series_query = %query, %error, "series discovery failed; keeping the last good answer");
                        if let Some(previous) = map.remove(&query) {
                            fresh.insert(query, previous);
                        }
                    }
                }
            }
            // Queries no longer in the rules are dropped here.
            *map = fresh;
        }
        let current = self.snapshot();
        // A reload may have happened while the calls ran; build from the newest rules.
        let next = Snapshot::build(
            current.config.clone(),
            current.catalog.clone(),
            &last_good,
            true,
        );
        self.publish(next);
        drop(last_good);

        let elapsed = started.elapsed();
        self.metrics.relist_seconds.observe(elapsed.as_secs_f64());
        if failures == 0 {
            self.metrics.relist_last_success.set(unix_now());
        }
        let snap = self.snapshot();
        tracing::info!(
            custom_metrics = snap.custom.len(),
            external_metrics = snap.external.len(),
            failed_calls = failures,
            elapsed_ms = elapsed.as_millis() as u64,
            "discovery pass finished"
        );
        failures
    }

    /// Relists now, then every `interval` (and at once after a rules reload), until
    /// `shutdown` resolves. A pass never overlaps the next one.
    pub async fn run<F>(self: Arc<Self>, interval: Duration, shutdown: F)
    where
        F: std::future::Future<Output = ()>,
    {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = self.relist() => {}
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(interval) => {}
                () = self.wake.notified() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promclient::PromSettings;
    use crate::prometheus::Verb;

    const RULES: &str = r#"
rules:
- seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  name: {matches: "^(.*)_total", as: "${1}_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'
externalRules:
- seriesQuery: 'queue_depth{namespace!=""}'
  resources: {overrides: {namespace: {resource: namespace}}}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>})'
"#;

    fn discovery(base: &str) -> Discovery {
        let client = PromClient::new(PromSettings {
            base_url: base.into(),
            verb: Verb::Get,
            headers: vec![],
            query_timeout: Duration::from_secs(2),
            series_timeout: Duration::from_millis(500),
        })
        .expect("client");
        Discovery::new(
            Arc::new(Config::from_yaml(RULES).expect("rules")),
            Arc::new(ResourceCatalog::builtin()),
            client,
            Duration::from_secs(600),
            Metrics::new(),
        )
    }

    #[test]
    fn before_the_first_pass_documents_are_valid_and_empty() {
        let d = discovery("http://127.0.0.1:1");
        let snap = d.snapshot();
        assert!(!snap.relisted);
        assert_eq!(
            &snap.docs.custom_v1beta2[..],
            b"{\"kind\":\"APIResourceList\",\"apiVersion\":\"v1\",\"groupVersion\":\"custom.metrics.k8s.io/v1beta2\",\"resources\":[]}\n"
        );
    }

    #[tokio::test]
    async fn a_failed_call_keeps_the_last_good_answer() {
        let d = discovery("http://127.0.0.1:1");
        // Seed a last good answer as a successful earlier pass would have.
        {
            let mut lg = d.lock();
            lg.custom.insert(
                r#"http_requests_total{namespace!="",pod!=""}"#.into(),
                SeriesSet(
                    [crate::naming::Series::new(
                        "http_requests_total",
                        &["namespace", "pod"],
                    )]
                    .into_iter()
                    .collect(),
                ),
            );
        }
        let failures = d.relist().await;
        assert_eq!(failures, 2, "both calls fail against a closed port");
        let snap = d.snapshot();
        assert!(snap.relisted);
        assert_eq!(snap.custom.len(), 2, "pods and namespaces metrics kept");
        assert!(snap.external.is_empty());
        let doc = String::from_utf8(snap.docs.custom_v1beta1.to_vec()).expect("utf-8");
        assert!(
            doc.contains("\"name\":\"pods/http_requests_per_second\""),
            "{doc}"
        );

        // A reload that drops the rule drops its metrics at once.
        d.set_config(Arc::new(Config::from_yaml("rules: []").expect("empty")));
        assert!(d.snapshot().custom.is_empty());
    }
}
