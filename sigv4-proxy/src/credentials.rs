//! A credential cache with background refresh.
//!
//! aws-config's providers do not cache: every `provide_credentials()` is an STS, IMDS or
//! container-endpoint round trip. Requests read the current credentials from an `ArcSwap`
//! (no lock, no await); a background task replaces them well before they expire. Only when
//! nothing valid is held does a request wait, and then all waiters share one load.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::identity::Identity;

/// Refresh this long before expiry at most (what the AWS SDKs do)...
const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// ...and never wait for a single load longer than this.
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(60);
/// After a failed load, requests get the same error for this long instead of each asking
/// the provider again (no fan-out into STS while it is down).
const FAILURE_MEMORY: Duration = Duration::from_secs(1);

/// No usable credentials could be had.
#[derive(Debug, thiserror::Error, Clone)]
pub enum CredentialsError {
    #[error("credential provider failed: {0}")]
    Provider(String),
    #[error("credential provider did not answer within {0:?}")]
    Timeout(Duration),
}

/// Credentials as loaded, with what the refresh schedule needs.
#[derive(Debug)]
pub struct Loaded {
    pub identity: Identity,
    pub access_key_id: String,
    pub expiry: Option<SystemTime>,
    loaded_at: SystemTime,
}

impl Loaded {
    fn new(credentials: Credentials, now: SystemTime) -> Self {
        Self {
            access_key_id: credentials.access_key_id().to_owned(),
            expiry: credentials.expiry(),
            identity: credentials.into(),
            loaded_at: now,
        }
    }

    /// A quarter of the lifetime, at most five minutes: long enough to retry a failed
    /// refresh several times, short enough not to churn on 15-minute STS sessions.
    fn refresh_margin(&self) -> Option<Duration> {
        let expiry = self.expiry?;
        let lifetime = expiry.duration_since(self.loaded_at).unwrap_or_default();
        Some((lifetime / 4).min(MAX_REFRESH_MARGIN))
    }

    /// When the background task should replace these credentials.
    pub fn refresh_at(&self) -> Option<SystemTime> {
        Some(self.expiry? - self.refresh_margin()?)
    }

    /// Whether a request may still be signed with these credentials. Leaves a little slack
    /// so a signature does not reach the server after the credentials died.
    pub fn usable_at(&self, now: SystemTime) -> bool {
        match (self.expiry, self.refresh_margin()) {
            (Some(expiry), Some(margin)) => {
                now + (margin / 4).min(Duration::from_secs(10)) < expiry
            }
            _ => true,
        }
    }
}

/// Hands out current credentials and keeps them fresh.
#[derive(Debug, Clone)]
pub struct CredentialCache {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    provider: SharedCredentialsProvider,
    current: ArcSwapOption<Loaded>,
    /// Held while loading; also remembers the last failure and when it happened.
    load_lock: tokio::sync::Mutex<Option<(std::time::Instant, CredentialsError)>>,
    observer: Box<dyn RefreshObserver>,
}

/// Told about every load, for metrics and logs.
pub trait RefreshObserver: Send + Sync + std::fmt::Debug + 'static {
    fn loaded(&self, loaded: &Loaded);
    fn failed(&self, error: &CredentialsError);
}

/// Logs loads and failures; never the secret parts.
#[derive(Debug, Default)]
pub struct LogObserver;

impl RefreshObserver for LogObserver {
    fn loaded(&self, loaded: &Loaded) {
        tracing::info!(
            access_key_id = %mask(&loaded.access_key_id),
            expires_in_secs = loaded.expiry.and_then(|e| e.duration_since(SystemTime::now()).ok()).map(|d| d.as_secs()),
            "credentials loaded"
        );
    }

    fn failed(&self, error: &CredentialsError) {
        tracing::warn!(%error, "credentials could not be loaded");
    }
}

impl CredentialCache {
    pub fn new(provider: SharedCredentialsProvider) -> Self {
        Self::with_observer(provider, LogObserver)
    }

    pub fn with_observer(
        provider: SharedCredentialsProvider,
        observer: impl RefreshObserver,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                provider,
                current: ArcSwapOption::empty(),
                load_lock: tokio::sync::Mutex::new(None),
                observer: Box::new(observer),
            }),
        }
    }

    /// Credentials to sign with now. Waits only when none are held or they have expired.
    pub async fn get(&self) -> Result<Arc<Loaded>, CredentialsError> {
        if let Some(current) = self.usable_now() {
            return Ok(current);
        }
        let mut last_failure = self.inner.load_lock.lock().await;
        // Whoever held the lock before us may have just loaded them, or just failed to.
        if let Some(current) = self.usable_now() {
            return Ok(current);
        }
        if let Some((at, error)) = last_failure.as_ref()
            && at.elapsed() < FAILURE_MEMORY
        {
            return Err(error.clone());
        }
        self.load_locked(&mut last_failure).await
    }

    /// The credentials currently held, whether or not still valid.
    pub fn peek(&self) -> Option<Arc<Loaded>> {
        self.inner.current.load_full()
    }

    fn usable_now(&self) -> Option<Arc<Loaded>> {
        self.inner
            .current
            .load_full()
            .filter(|c| c.usable_at(SystemTime::now()))
    }

    async fn load_locked(
        &self,
        last_failure: &mut Option<(std::time::Instant, CredentialsError)>,
    ) -> Result<Arc<Loaded>, CredentialsError> {
        let result = tokio::time::timeout(LOAD_TIMEOUT, self.inner.provider.provide_credentials())
            .await
            .map_err(|_| CredentialsError::Timeout(LOAD_TIMEOUT))
            .and_then(|r| r.map_err(|e| CredentialsError::Provider(error_chain(&e))));
        match result {
            Ok(credentials) => {
                let loaded = Arc::new(Loaded::new(credentials, SystemTime::now()));
                self.inner.observer.loaded(&loaded);
                self.inner.current.store(Some(loaded.clone()));
                *last_failure = None;
                Ok(loaded)
            }
            Err(error) => {
                self.inner.observer.failed(&error);
                *last_failure = Some((std::time::Instant::now(), error.clone()));
                Err(error)
            }
        }
    }

    /// Loads credentials now and then keeps them fresh until the cache is dropped.
    pub fn spawn_refresher(&self) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut backoff = Duration::from_secs(1);
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let cache = CredentialCache { inner };
                let due = cache.peek().map(|c| c.refresh_at());
                let wait = match due {
                    None => Duration::ZERO, // nothing loaded yet
                    Some(None) => return,   // static keys never expire
                    Some(Some(at)) => at.duration_since(SystemTime::now()).unwrap_or_default(),
                };
                drop(cache);
                tokio::time::sleep(wait).await;
                let Some(inner) = weak.upgrade() else { return };
                let cache = CredentialCache { inner };
                let result = {
                    let mut last_failure = cache.inner.load_lock.lock().await;
                    cache.load_locked(&mut last_failure).await
                };
                drop(cache);
                match result {
                    Ok(_) => backoff = Duration::from_secs(1),
                    Err(_) => {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_RETRY_BACKOFF);
                    }
                }
            }
        })
    }
}

/// Shows enough of an access key id to tell keys apart in logs.
pub fn mask(access_key_id: &str) -> String {
    let tail: String = access_key_id
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("****{tail}")
}

/// The SDK's errors put the useful part (e.g. "no providers in chain") in their sources.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::provider::{self, future};
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug)]
    struct Counting {
        calls: Arc<AtomicUsize>,
        lifetime: Option<Duration>,
        fail: bool,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            let result = if self.fail {
                Err(provider::error::CredentialsError::not_loaded("no source"))
            } else {
                Ok(Credentials::new(
                    format!("AKID{n}"),
                    "secret",
                    None,
                    self.lifetime.map(|l| SystemTime::now() + l),
                    "test",
                ))
            };
            future::ProvideCredentials::ready(result)
        }
    }

    fn cache(lifetime: Option<Duration>, fail: bool) -> (CredentialCache, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let provider = SharedCredentialsProvider::new(Counting {
            calls: calls.clone(),
            lifetime,
            fail,
        });
        (CredentialCache::new(provider), calls)
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_load() {
        let (cache, calls) = cache(Some(Duration::from_secs(3600)), false);
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.get().await.map(|c| c.access_key_id.clone()) })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.expect("join").expect("creds"), "AKID0");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn expired_credentials_are_reloaded_on_demand() {
        let (cache, calls) = cache(Some(Duration::from_millis(1)), false);
        assert_eq!(cache.get().await.expect("creds").access_key_id, "AKID0");
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(cache.get().await.expect("creds").access_key_id, "AKID1");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn failures_are_errors_with_the_cause() {
        let (cache, _) = cache(None, true);
        let err = cache.get().await.expect_err("fails");
        assert!(err.to_string().contains("no source"), "{err}");
    }

    #[tokio::test]
    async fn a_failing_provider_is_not_asked_once_per_waiting_request() {
        let (cache, calls) = cache(None, true);
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.get().await.is_err() })
            })
            .collect();
        for task in tasks {
            assert!(task.await.expect("join"));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::sleep(FAILURE_MEMORY + Duration::from_millis(50)).await;
        assert!(cache.get().await.is_err());
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "asked again once the memory lapsed"
        );
    }

    #[tokio::test]
    async fn refresher_replaces_credentials_before_expiry() {
        let (cache, calls) = cache(Some(Duration::from_millis(400)), false);
        let task = cache.spawn_refresher();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let loads = calls.load(Ordering::SeqCst);
        // 400 ms lifetime, refreshed 100 ms early: a load about every 300 ms.
        assert!((3..=5).contains(&loads), "{loads} loads");
        assert!(cache.peek().expect("held").usable_at(SystemTime::now()));
        task.abort();
    }

    #[test]
    fn schedule_follows_lifetime() {
        let now = SystemTime::now();
        let hour = Loaded::new(
            Credentials::new("A", "s", None, Some(now + Duration::from_secs(3600)), "t"),
            now,
        );
        assert_eq!(hour.refresh_at(), Some(now + Duration::from_secs(3300)));
        let short = Loaded::new(
            Credentials::new("A", "s", None, Some(now + Duration::from_secs(20)), "t"),
            now,
        );
        assert_eq!(short.refresh_at(), Some(now + Duration::from_secs(15)));
        assert!(short.usable_at(now + Duration::from_secs(18)));
        assert!(!short.usable_at(now + Duration::from_secs(19)));
        let forever = Loaded::new(Credentials::new("A", "s", None, None, "t"), now);
        assert_eq!(forever.refresh_at(), None);
        assert!(forever.usable_at(now + Duration::from_secs(1 << 30)));
    }

    #[test]
    fn masks_all_but_the_tail() {
        assert_eq!(mask("AKIAIOSFODNN7EXAMPLE"), "****MPLE");
        assert_eq!(mask("AB"), "****AB");
    }
}
