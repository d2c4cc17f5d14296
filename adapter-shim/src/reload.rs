//! Hot reload of the rules file: on change (polled) and on SIGHUP. A new file is validated
//! as fully as at start-up; only a valid one replaces the rules, atomically. A broken file
//! leaves the old rules serving and sets `adapter_shim_config_last_reload_successful` to 0.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::{Config, ConfigError};
use crate::discovery::Discovery;
use crate::metrics::{Metrics, unix_now};

/// Re-reads the rules file into `discovery`.
#[derive(Debug)]
pub struct Reloader {
    path: PathBuf,
    discovery: Arc<Discovery>,
    metrics: Arc<Metrics>,
}

impl Reloader {
    /// A reloader for `path`; records the start-up load as the last successful one.
    #[must_use]
    pub fn new(path: &Path, discovery: Arc<Discovery>, metrics: Arc<Metrics>) -> Self {
        metrics.config_last_reload_successful.set(1);
        metrics.config_last_reload_success_timestamp.set(unix_now());
        Self {
            path: path.to_owned(),
            discovery,
            metrics,
        }
    }

    /// Loads and validates the file; applies it only when valid.
    ///
    /// # Errors
    /// The file's first problem; the old rules stay.
    pub fn reload(&self) -> Result<(), ConfigError> {
        let catalog = self.discovery.snapshot().catalog.clone();
        let loaded = std::fs::read_to_string(&self.path)
            .map_err(|e| ConfigError::Read {
                path: self.path.display().to_string(),
                reason: e.to_string(),
            })
            .and_then(|text| Config::from_yaml_with_catalog(&text, &catalog));
        match loaded {
            Ok(config) => {
                for warning in &config.warnings {
                    tracing::warn!(%warning, "configuration warning");
                }
                tracing::info!(
                    path = %self.path.display(),
                    rules = config.rules.len(),
                    external_rules = config.external_rules.len(),
                    "rules reloaded"
                );
                self.discovery.set_config(Arc::new(config));
                self.metrics.config_last_reload_successful.set(1);
                self.metrics
                    .config_last_reload_success_timestamp
                    .set(unix_now());
                Ok(())
            }
            Err(error) => {
                tracing::error!(path = %self.path.display(), %error, "rules not reloaded; the previous rules stay in use");
                self.metrics.config_last_reload_successful.set(0);
                Err(error)
            }
        }
    }

    /// Reloads when the file's modification time or size changes (ConfigMap updates swap a
    /// symlink, which changes both) and on SIGHUP, until `shutdown`.
    pub async fn run<F>(self, interval: Duration, shutdown: F)
    where
        F: std::future::Future<Output = ()>,
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup()).ok();
        if hup.is_none() {
            tracing::warn!("cannot listen for SIGHUP; reloading on file changes only");
        }
        tokio::pin!(shutdown);
        let mut seen = stamp(&self.path);
        loop {
            let hangup = async {
                match hup.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = &mut shutdown => return,
                () = hangup => {
                    tracing::info!("SIGHUP received; reloading rules");
                    seen = stamp(&self.path);
                    let _ = self.reload();
                }
                () = tokio::time::sleep(interval) => {
                    let now = stamp(&self.path);
                    if now != seen {
                        seen = now;
                        let _ = self.reload();
                    }
                }
            }
        }
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    std::fs::metadata(path)
        .ok()
        .and_then(|m| Some((m.modified().ok()?, m.len())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::ResourceCatalog;
    use crate::promclient::{PromClient, PromSettings};
    use crate::prometheus::Verb;

    const GOOD: &str = r#"
rules:
- seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  name: {matches: "^(.*)_total", as: "${1}_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'
"#;

    #[test]
    fn valid_change_applies_broken_change_keeps_old_rules() {
        let dir = std::env::temp_dir().join(format!("adapter-shim-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("config.yaml");
        std::fs::write(&path, "rules: []\n").expect("write");
        let metrics = Metrics::new();
        let client = PromClient::new(PromSettings {
            base_url: "http://127.0.0.1:1".into(),
            verb: Verb::Get,
            headers: vec![],
            query_timeout: Duration::from_secs(1),
            series_timeout: Duration::from_secs(1),
        })
        .expect("client");
        let discovery = Arc::new(Discovery::new(
            Arc::new(Config::load(&path).expect("load")),
            Arc::new(ResourceCatalog::builtin()),
            client,
            Duration::from_secs(60),
            metrics.clone(),
        ));
        let reloader = Reloader::new(&path, discovery.clone(), metrics.clone());

        std::fs::write(&path, GOOD).expect("write");
        reloader.reload().expect("valid");
        assert_eq!(discovery.snapshot().config.rules.len(), 1);
        assert_eq!(metrics.config_last_reload_successful.get(), 1);

        std::fs::write(
            &path,
            GOOD.replace("<<.LabelMatchers>>", "<<.LabelMatchers>}"),
        )
        .expect("write");
        let err = reloader.reload().expect_err("broken");
        assert!(
            err.to_string().starts_with("rules[0]: metricsQuery"),
            "{err}"
        );
        assert_eq!(discovery.snapshot().config.rules.len(), 1, "old rules kept");
        assert_eq!(metrics.config_last_reload_successful.get(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
