//! Delegated authentication and authorization, as an aggregated API server does it
//! (issue 6; anchor §10.1).
//!
//! [`Gate::admit`] decides every request:
//!
//! 1. **Authentication**, first match wins, as the apiserver's union authenticator:
//!    - *request header*: a client certificate that chains to the request-header CA and
//!      whose CN is in the allowed names (empty list = any) makes the `X-Remote-User`,
//!      `X-Remote-Group`, `X-Remote-Extra-*` (and `X-Remote-Uid`) headers trusted;
//!    - *client certificate*: a certificate that chains to the client CA is the user
//!      CN with groups O;
//!    - *bearer token*: a TokenReview to the Kubernetes API (outcomes cached
//!      `--authentication-token-webhook-cache-ttl`, default 10 s);
//!    - otherwise `system:anonymous` (group `system:unauthenticated`). A certificate or token
//!      that one of the methods rejected and no other accepted is a 401.
//!
//!    Authenticated users get the group `system:authenticated`. The CAs and header names come
//!    from `kube-system/extension-apiserver-authentication`, watched and applied live (CA
//!    rotation without restart), unless given by flags.
//! 2. **Authorization**: `--authorization-always-allow-paths` (default `/healthz,/readyz,
//!    /livez`) and members of `--authorization-always-allow-groups` (default
//!    `system:masters`) pass; otherwise, in `delegated` mode, a SubjectAccessReview with the
//!    attributes the apiserver's RequestInfo computes ([`Attributes`]), cached 10 s for both
//!    answers; in `allow-authenticated` mode, every authenticated (non-anonymous) user.
//!
//! Chain validation is done here with rustls-webpki against the current CA set, not in the
//! TLS handshake: [`client_cert_verifier`] only asks for a certificate and checks the
//! handshake signature.
//!
//! RBAC, as for prometheus-adapter: a RoleBinding in `kube-system` to the Role
//! `extension-apiserver-authentication-reader` (get/list/watch of that one ConfigMap; the
//! watch uses `fieldSelector=metadata.name=…`, which that Role allows), and a
//! ClusterRoleBinding to `system:auth-delegator` (create TokenReviews and
//! SubjectAccessReviews). `--authorization-mode=allow-authenticated` needs only the first.
//!
//! Wiring (the server side):
//!
//! ```ignore
//! let gate = Gate::new(&cli.auth, Some(client.clone()))?;   // config errors fail here
//! gate.start().await?;                                      // ConfigMap read, then watched
//! let tls = rustls::ServerConfig::builder()
//!     .with_client_cert_verifier(adapter_shim::auth::client_cert_verifier())
//!     .with_single_cert(chain, key)?;
//! // per request, with the chain `peer_certificates()` returned for the connection:
//! match gate.admit(&parts, &peer_certs).await {
//!     Ok(user) => serve(user),
//!     Err(status) => answer(status), // 401 / 403 / 500 Status
//! }
//! ```

mod attributes;
mod certs;

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use futures_util::StreamExt;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use rustls_pki_types::{CertificateDer, UnixTime};
use sha2::{Digest, Sha256};

pub use attributes::{Attributes, decode_path};
pub use certs::client_cert_verifier;
use certs::{CaSet, subject};

use crate::wire::Status;

/// Namespace of the authentication ConfigMap.
pub const AUTH_CONFIGMAP_NAMESPACE: &str = "kube-system";
/// Name of the authentication ConfigMap.
pub const AUTH_CONFIGMAP_NAME: &str = "extension-apiserver-authentication";

/// `system:anonymous`.
pub const ANONYMOUS_USER: &str = "system:anonymous";
/// `system:unauthenticated`.
pub const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";
/// `system:authenticated`.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";

/// Cache entries kept per cache before expired ones are dropped.
const CACHE_CAPACITY: usize = 10_000;
/// How often CA files given by flags are checked for changes.
const FILE_RELOAD_INTERVAL: Duration = Duration::from_secs(30);

/// How requests are authorized.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthorizationMode {
    /// SubjectAccessReview to the Kubernetes API per request (cached), as prometheus-adapter.
    #[default]
    Delegated,
    /// Any authenticated (non-anonymous) user may read everything; no SubjectAccessReview
    /// and no `system:auth-delegator` binding needed. For small clusters where everyone
    /// who can reach the API through the aggregator may read metrics.
    AllowAuthenticated,
}

/// Authentication and authorization flags (prometheus-adapter's names). Flattened into the
/// CLI.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct AuthArgs {
    /// kubeconfig for TokenReview and the authentication ConfigMap lookup (default: the
    /// shim's own client).
    #[arg(
        long,
        env = "ADAPTER_SHIM_AUTHENTICATION_KUBECONFIG",
        value_name = "FILE"
    )]
    pub authentication_kubeconfig: Option<PathBuf>,

    /// kubeconfig for SubjectAccessReview (default: the shim's own client).
    #[arg(
        long,
        env = "ADAPTER_SHIM_AUTHORIZATION_KUBECONFIG",
        value_name = "FILE"
    )]
    pub authorization_kubeconfig: Option<PathBuf>,

    /// Do not read kube-system/extension-apiserver-authentication; use only the CA flags.
    #[arg(long, env = "ADAPTER_SHIM_AUTHENTICATION_SKIP_LOOKUP")]
    pub authentication_skip_lookup: bool,

    /// Start even when the authentication ConfigMap cannot be read (it keeps being watched).
    #[arg(long, env = "ADAPTER_SHIM_AUTHENTICATION_TOLERATE_LOOKUP_FAILURE")]
    pub authentication_tolerate_lookup_failure: bool,

    /// CA bundle for front-proxy (aggregator) client certificates; with it, the
    /// request-header settings come from the flags instead of the ConfigMap.
    #[arg(
        long,
        env = "ADAPTER_SHIM_REQUESTHEADER_CLIENT_CA_FILE",
        value_name = "FILE"
    )]
    pub requestheader_client_ca_file: Option<PathBuf>,

    /// Common names allowed for front-proxy certificates (empty: any name signed by the CA).
    #[arg(
        long,
        env = "ADAPTER_SHIM_REQUESTHEADER_ALLOWED_NAMES",
        value_delimiter = ','
    )]
    pub requestheader_allowed_names: Vec<String>,

    /// Headers holding the user name.
    #[arg(
        long,
        env = "ADAPTER_SHIM_REQUESTHEADER_USERNAME_HEADERS",
        value_delimiter = ',',
        default_value = "X-Remote-User"
    )]
    pub requestheader_username_headers: Vec<String>,

    /// Headers holding the user's UID.
    #[arg(
        long,
        env = "ADAPTER_SHIM_REQUESTHEADER_UID_HEADERS",
        value_delimiter = ',',
        default_value = "X-Remote-Uid"
    )]
    pub requestheader_uid_headers: Vec<String>,

    /// Headers holding the groups.
    #[arg(
        long,
        env = "ADAPTER_SHIM_REQUESTHEADER_GROUP_HEADERS",
        value_delimiter = ',',
        default_value = "X-Remote-Group"
    )]
    pub requestheader_group_headers: Vec<String>,

    /// Header prefixes for extra user information.
    #[arg(
        long,
        env = "ADAPTER_SHIM_REQUESTHEADER_EXTRA_HEADERS_PREFIX",
        value_delimiter = ',',
        default_value = "X-Remote-Extra-"
    )]
    pub requestheader_extra_headers_prefix: Vec<String>,

    /// CA bundle for client certificates (user = CN, groups = O); overrides the ConfigMap's
    /// client-ca-file.
    #[arg(long, env = "ADAPTER_SHIM_CLIENT_CA_FILE", value_name = "FILE")]
    pub client_ca_file: Option<PathBuf>,

    /// Paths served without authorization (`/prefix*` matches a prefix).
    #[arg(
        long,
        env = "ADAPTER_SHIM_AUTHORIZATION_ALWAYS_ALLOW_PATHS",
        value_delimiter = ',',
        default_value = "/healthz,/readyz,/livez"
    )]
    pub authorization_always_allow_paths: Vec<String>,

    /// Groups allowed without a SubjectAccessReview.
    #[arg(
        long,
        env = "ADAPTER_SHIM_AUTHORIZATION_ALWAYS_ALLOW_GROUPS",
        value_delimiter = ',',
        default_value = "system:masters"
    )]
    pub authorization_always_allow_groups: Vec<String>,

    /// `delegated` (SubjectAccessReview) or `allow-authenticated` (any authenticated user;
    /// for small clusters without the auth-delegator binding).
    #[arg(
        long,
        env = "ADAPTER_SHIM_AUTHORIZATION_MODE",
        value_enum,
        default_value = "delegated"
    )]
    pub authorization_mode: AuthorizationMode,

    /// How long TokenReview answers are cached.
    #[arg(
        long,
        env = "ADAPTER_SHIM_AUTHENTICATION_TOKEN_WEBHOOK_CACHE_TTL",
        value_parser = humantime::parse_duration,
        default_value = "10s"
    )]
    pub authentication_token_webhook_cache_ttl: Duration,

    /// How long "allowed" SubjectAccessReview answers are cached.
    #[arg(
        long,
        env = "ADAPTER_SHIM_AUTHORIZATION_WEBHOOK_CACHE_AUTHORIZED_TTL",
        value_parser = humantime::parse_duration,
        default_value = "10s"
    )]
    pub authorization_webhook_cache_authorized_ttl: Duration,

    /// How long "denied" SubjectAccessReview answers are cached.
    #[arg(
        long,
        env = "ADAPTER_SHIM_AUTHORIZATION_WEBHOOK_CACHE_UNAUTHORIZED_TTL",
        value_parser = humantime::parse_duration,
        default_value = "10s"
    )]
    pub authorization_webhook_cache_unauthorized_ttl: Duration,
}

impl Default for AuthArgs {
    fn default() -> Self {
        Self {
            authentication_kubeconfig: None,
            authorization_kubeconfig: None,
            authentication_skip_lookup: false,
            authentication_tolerate_lookup_failure: false,
            requestheader_client_ca_file: None,
            requestheader_allowed_names: Vec::new(),
            requestheader_username_headers: vec!["X-Remote-User".into()],
            requestheader_uid_headers: vec!["X-Remote-Uid".into()],
            requestheader_group_headers: vec!["X-Remote-Group".into()],
            requestheader_extra_headers_prefix: vec!["X-Remote-Extra-".into()],
            client_ca_file: None,
            authorization_always_allow_paths: vec![
                "/healthz".into(),
                "/readyz".into(),
                "/livez".into(),
            ],
            authorization_always_allow_groups: vec!["system:masters".into()],
            authorization_mode: AuthorizationMode::Delegated,
            authentication_token_webhook_cache_ttl: Duration::from_secs(10),
            authorization_webhook_cache_authorized_ttl: Duration::from_secs(10),
            authorization_webhook_cache_unauthorized_ttl: Duration::from_secs(10),
        }
    }
}

/// Why the gate could not be set up. Fails start-up; messages carry no secrets.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A flag or file is wrong.
    #[error("{0}")]
    Config(String),
    /// Delegated authentication/authorization needs a Kubernetes client and none was given.
    #[error(
        "{0} needs a Kubernetes client (give --authentication-kubeconfig/--kubeconfig or run in a cluster)"
    )]
    NoClient(&'static str),
    /// The authentication ConfigMap could not be read (see
    /// `--authentication-tolerate-lookup-failure`).
    #[error(
        "unable to read configmap {AUTH_CONFIGMAP_NAMESPACE}/{AUTH_CONFIGMAP_NAME}: {0} (use --authentication-tolerate-lookup-failure to start without it)"
    )]
    Lookup(String),
    /// A client from a kubeconfig flag could not be made.
    #[error(transparent)]
    Kube(#[from] crate::kube::KubeError),
}

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct UserInfo {
    /// User name (`system:serviceaccount:kube-system:horizontal-pod-autoscaler`).
    pub name: String,
    /// UID, often empty.
    pub uid: String,
    /// Groups, `system:authenticated` included for authenticated users.
    pub groups: Vec<String>,
    /// Extra attributes (lower-case keys).
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// `system:anonymous` in `system:unauthenticated`.
    #[must_use]
    pub fn anonymous() -> Self {
        Self {
            name: ANONYMOUS_USER.into(),
            groups: vec![UNAUTHENTICATED_GROUP.into()],
            ..Self::default()
        }
    }

    /// Whether this is the anonymous user (or anyone in `system:unauthenticated`).
    #[must_use]
    pub fn is_anonymous(&self) -> bool {
        self.name == ANONYMOUS_USER || self.groups.iter().any(|g| g == UNAUTHENTICATED_GROUP)
    }

    /// Adds `system:authenticated` unless the user already is in it or in
    /// `system:unauthenticated` (the apiserver's group adder).
    fn with_authenticated_group(mut self) -> Self {
        if !self
            .groups
            .iter()
            .any(|g| g == AUTHENTICATED_GROUP || g == UNAUTHENTICATED_GROUP)
        {
            self.groups.push(AUTHENTICATED_GROUP.into());
        }
        self
    }
}

// --- live configuration --------------------------------------------------------------------

/// Request-header authentication settings.
#[derive(Debug, Clone, PartialEq)]
struct RequestHeader {
    ca: CaSet,
    allowed_names: Vec<String>,
    username_headers: Vec<String>,
    uid_headers: Vec<String>,
    group_headers: Vec<String>,
    /// Lower-cased.
    extra_prefixes: Vec<String>,
}

/// The authentication configuration in force.
#[derive(Debug, Clone, Default, PartialEq)]
struct AuthConfig {
    client_ca: Option<CaSet>,
    request_header: Option<RequestHeader>,
}

impl AuthConfig {
    fn summary(&self) -> String {
        format!(
            "client CA: {}; request-header CA: {}",
            self.client_ca.as_ref().map_or_else(
                || "none".to_owned(),
                |c| format!("{} cert(s) from {}", c.len(), c.source)
            ),
            self.request_header.as_ref().map_or_else(
                || "none".to_owned(),
                |r| format!(
                    "{} cert(s) from {}, allowed names {:?}",
                    r.ca.len(),
                    r.ca.source,
                    r.allowed_names
                )
            ),
        )
    }
}

/// The material given by flags (files re-read while the process runs).
#[derive(Debug, Clone, Default)]
struct FileMaterial {
    client_ca: Option<CaSet>,
    request_header_ca: Option<CaSet>,
}

fn read_ca_file(path: &Path) -> Result<CaSet, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    CaSet::from_pem(&pem, &path.display().to_string())
}

fn json_list(data: &BTreeMap<String, String>, key: &str) -> Result<Vec<String>, String> {
    match data.get(key).map(|s| s.trim()) {
        None | Some("") => Ok(Vec::new()),
        Some(raw) => serde_json::from_str::<Vec<String>>(raw)
            .map_err(|e| format!("configmap key {key}: not a JSON list of strings: {e}")),
    }
}

// --- caches ----------------------------------------------------------------------------------

#[derive(Debug)]
struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(key)
            .filter(|(expires, _)| *expires > Instant::now())
            .map(|(_, v)| v.clone())
    }

    fn insert(&self, key: K, value: V, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CACHE_CAPACITY {
            let now = Instant::now();
            entries.retain(|_, (expires, _)| *expires > now);
            if entries.len() >= CACHE_CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now() + ttl, value));
    }
}

/// A TokenReview outcome: the user, or why the token was refused.
type TokenOutcome = Result<UserInfo, String>;

/// A SubjectAccessReview outcome: allowed, and the reason.
type SarOutcome = (bool, String);

// --- the gate --------------------------------------------------------------------------------

/// Authentication and authorization of every request.
pub struct Gate {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("mode", &self.inner.args.authorization_mode)
            .field("ready", &self.is_ready())
            .field("config", &self.inner.config.load().summary())
            .finish_non_exhaustive()
    }
}

struct Inner {
    args: AuthArgs,
    /// TokenReview and the ConfigMap lookup.
    authn_client: RwLock<Option<kube::Client>>,
    /// SubjectAccessReview.
    authz_client: RwLock<Option<kube::Client>>,
    files: Mutex<FileMaterial>,
    /// The ConfigMap's data as last seen (`None`: not found or not looked up).
    configmap: Mutex<Option<BTreeMap<String, String>>>,
    config: ArcSwap<AuthConfig>,
    ready: AtomicBool,
    /// `start` ran (successfully or in progress): a second call does nothing.
    started: AtomicBool,
    tokens: TtlCache<[u8; 32], TokenOutcome>,
    reviews: TtlCache<String, SarOutcome>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Drop for Gate {
    fn drop(&mut self) {
        let tasks = self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for task in tasks.iter() {
            task.abort();
        }
    }
}

impl Gate {
    /// Checks the flags and reads the CA files given by flags. `client` is the shim's
    /// Kubernetes client, used for the ConfigMap, TokenReview and SubjectAccessReview unless
    /// `--authentication-kubeconfig`/`--authorization-kubeconfig` name others (those clients
    /// are made by [`Gate::start`]).
    ///
    /// # Errors
    /// [`AuthError::Config`] for unreadable or invalid CA files or kubeconfigs, empty header
    /// lists, always-allow paths not starting with `/`; [`AuthError::NoClient`] when
    /// delegated authorization or the ConfigMap lookup has no client.
    pub fn new(args: &AuthArgs, client: Option<kube::Client>) -> Result<Self, AuthError> {
        let mut files = FileMaterial::default();
        if let Some(path) = &args.client_ca_file {
            files.client_ca = Some(
                read_ca_file(path)
                    .map_err(|e| AuthError::Config(format!("--client-ca-file: {e}")))?,
            );
        }
        if let Some(path) = &args.requestheader_client_ca_file {
            files.request_header_ca =
                Some(read_ca_file(path).map_err(|e| {
                    AuthError::Config(format!("--requestheader-client-ca-file: {e}"))
                })?);
            if args
                .requestheader_username_headers
                .iter()
                .all(|h| h.trim().is_empty())
            {
                return Err(AuthError::Config(
                    "--requestheader-username-headers: at least one header is needed".into(),
                ));
            }
        }
        for (flag, value) in [
            (
                "--requestheader-username-headers",
                &args.requestheader_username_headers,
            ),
            (
                "--requestheader-uid-headers",
                &args.requestheader_uid_headers,
            ),
            (
                "--requestheader-group-headers",
                &args.requestheader_group_headers,
            ),
        ] {
            for h in value {
                if http::HeaderName::from_bytes(h.trim().as_bytes()).is_err() {
                    return Err(AuthError::Config(format!(
                        "{flag}: {h:?} is not a header name"
                    )));
                }
            }
        }
        for p in &args.authorization_always_allow_paths {
            if !p.starts_with('/') {
                return Err(AuthError::Config(format!(
                    "--authorization-always-allow-paths: {p:?} does not start with '/'"
                )));
            }
            if p.find('*').is_some_and(|i| i != p.len() - 1) {
                return Err(AuthError::Config(format!(
                    "--authorization-always-allow-paths: {p:?}: '*' only at the end"
                )));
            }
        }
        for (flag, path) in [
            (
                "--authentication-kubeconfig",
                &args.authentication_kubeconfig,
            ),
            ("--authorization-kubeconfig", &args.authorization_kubeconfig),
        ] {
            if let Some(path) = path {
                kube::config::Kubeconfig::read_from(path)
                    .map_err(|e| AuthError::Config(format!("{flag} {}: {e}", path.display())))?;
            }
        }
        let has_authn = client.is_some() || args.authentication_kubeconfig.is_some();
        let has_authz = client.is_some() || args.authorization_kubeconfig.is_some();
        if !args.authentication_skip_lookup && !has_authn {
            return Err(AuthError::NoClient(
                "reading kube-system/extension-apiserver-authentication",
            ));
        }
        if args.authorization_mode == AuthorizationMode::Delegated && !has_authz {
            return Err(AuthError::NoClient("--authorization-mode=delegated"));
        }

        let inner = Arc::new(Inner {
            args: args.clone(),
            authn_client: RwLock::new(client.clone()),
            authz_client: RwLock::new(client),
            files: Mutex::new(files),
            configmap: Mutex::new(None),
            config: ArcSwap::from_pointee(AuthConfig::default()),
            ready: AtomicBool::new(false),
            started: AtomicBool::new(false),
            tokens: TtlCache::new(),
            reviews: TtlCache::new(),
            tasks: Mutex::new(Vec::new()),
        });
        inner.rebuild();
        if args.authentication_skip_lookup {
            inner.ready.store(true, Ordering::SeqCst);
        }
        Ok(Self { inner })
    }

    /// Makes the clients named by the kubeconfig flags, reads the authentication ConfigMap
    /// (unless `--authentication-skip-lookup`), then keeps watching it and the CA files in
    /// background tasks, applying changes live. Returns once the first configuration is in
    /// force ([`Gate::is_ready`]). A missing ConfigMap is not an error (there is nothing to
    /// trust yet, as in the apiserver); a failed read is, unless
    /// `--authentication-tolerate-lookup-failure`.
    ///
    /// # Errors
    /// [`AuthError::Kube`] for a kubeconfig flag that does not make a client,
    /// [`AuthError::Lookup`] when the ConfigMap cannot be read. Calling it again after a
    /// success does nothing.
    pub async fn start(&self) -> Result<(), AuthError> {
        if self.inner.started.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let result = self.start_once().await;
        if result.is_err() {
            self.inner.started.store(false, Ordering::SeqCst);
        }
        result
    }

    async fn start_once(&self) -> Result<(), AuthError> {
        let args = &self.inner.args;
        if let Some(path) = &args.authentication_kubeconfig {
            let c = crate::kube::client(Some(path)).await?;
            *self
                .inner
                .authn_client
                .write()
                .unwrap_or_else(PoisonError::into_inner) = Some(c);
        }
        if let Some(path) = &args.authorization_kubeconfig {
            let c = crate::kube::client(Some(path)).await?;
            *self
                .inner
                .authz_client
                .write()
                .unwrap_or_else(PoisonError::into_inner) = Some(c);
        }
        let mut tasks = Vec::new();
        if !args.authentication_skip_lookup {
            let client = self.inner.authn_client();
            let Some(client) = client else {
                return Err(AuthError::NoClient(
                    "reading kube-system/extension-apiserver-authentication",
                ));
            };
            let api: Api<ConfigMap> = Api::namespaced(client, AUTH_CONFIGMAP_NAMESPACE);
            match api.get_opt(AUTH_CONFIGMAP_NAME).await {
                Ok(Some(cm)) => self
                    .inner
                    .apply_configmap(Some(cm.data.unwrap_or_default())),
                Ok(None) => {
                    tracing::warn!(
                        "configmap {AUTH_CONFIGMAP_NAMESPACE}/{AUTH_CONFIGMAP_NAME} not found: \
                         front-proxy and client-certificate authentication are off until it appears"
                    );
                }
                Err(e) => {
                    let message = crate::kube::describe_error(&e);
                    if !args.authentication_tolerate_lookup_failure {
                        return Err(AuthError::Lookup(message));
                    }
                    tracing::warn!(error = %message, "cannot read the authentication configmap; continuing without it");
                }
            }
            tasks.push(tokio::spawn(watch_configmap(
                api,
                Arc::downgrade(&self.inner),
            )));
        }
        if args.client_ca_file.is_some() || args.requestheader_client_ca_file.is_some() {
            tasks.push(tokio::spawn(reload_files(Arc::downgrade(&self.inner))));
        }
        self.inner.ready.store(true, Ordering::SeqCst);
        self.inner
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(tasks);
        Ok(())
    }

    /// Whether the authentication configuration has been loaded (for `/readyz`).
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::SeqCst)
    }

    /// Authenticates and authorizes one request. `peer_certs` is the client certificate
    /// chain the TLS layer received (leaf first), empty when none.
    ///
    /// # Errors
    /// The Status to answer: 401 `Unauthorized` when a certificate or token was presented and
    /// rejected, 403 `Forbidden` with the apiserver's message when authorization denies, 500
    /// `InternalError` when the SubjectAccessReview itself fails.
    pub async fn admit(
        &self,
        parts: &http::request::Parts,
        peer_certs: &[CertificateDer<'static>],
    ) -> Result<UserInfo, Status> {
        let path = parts.uri.path();
        let always = self.always_allowed(path);
        let user = match self.inner.authenticate(parts, peer_certs, !always).await {
            Ok(user) => user,
            Err(reason) => {
                if always {
                    UserInfo::anonymous()
                } else {
                    tracing::debug!(%reason, path, "authentication failed");
                    return Err(Status::unauthorized("Unauthorized"));
                }
            }
        };
        if always {
            return Ok(user);
        }
        self.inner.authorize(&user, parts).await?;
        Ok(user)
    }

    fn always_allowed(&self, path: &str) -> bool {
        let path = decode_path(path);
        self.inner
            .args
            .authorization_always_allow_paths
            .iter()
            .any(|p| {
                p.strip_suffix('*')
                    .map_or_else(|| *p == path, |prefix| path.starts_with(prefix))
            })
    }

    /// A short description of the configuration in force (no key material).
    #[must_use]
    pub fn describe(&self) -> String {
        self.inner.config.load().summary()
    }
}

impl Inner {
    fn authn_client(&self) -> Option<kube::Client> {
        self.authn_client
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn authz_client(&self) -> Option<kube::Client> {
        self.authz_client
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Applies a new ConfigMap state (`None`: deleted or not found).
    fn apply_configmap(&self, data: Option<BTreeMap<String, String>>) {
        // Validate before keeping: a broken update keeps the configuration in force.
        let candidate = build_config(
            &self.args,
            &self.files.lock().unwrap_or_else(PoisonError::into_inner),
            data.as_ref(),
        );
        match candidate {
            Ok(_) => {
                *self
                    .configmap
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = data;
                self.rebuild();
            }
            Err(e) => {
                tracing::error!(error = %e, "authentication configmap rejected; keeping the configuration in force")
            }
        }
    }

    /// Recomputes the configuration from the files and the last good ConfigMap data.
    fn rebuild(&self) {
        let files = self
            .files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let data = self
            .configmap
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match build_config(&self.args, &files, data.as_ref()) {
            Ok(config) => {
                if **self.config.load() != config {
                    tracing::info!(config = %config.summary(), "authentication configuration applied");
                    self.config.store(Arc::new(config));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "authentication configuration rejected; keeping the one in force")
            }
        }
    }

    async fn authenticate(
        &self,
        parts: &http::request::Parts,
        chain: &[CertificateDer<'static>],
        review_tokens: bool,
    ) -> Result<UserInfo, String> {
        let config = self.config.load_full();
        let mut errors: Vec<String> = Vec::new();
        if !chain.is_empty() {
            let now = UnixTime::since_unix_epoch(
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default(),
            );
            if let Some(rh) = &config.request_header {
                match rh.ca.verify(chain, now).and_then(|()| subject(&chain[0])) {
                    Ok((cn, _)) => {
                        if !rh.allowed_names.is_empty() && !rh.allowed_names.contains(&cn) {
                            errors.push(format!(
                                "request-header: x509: subject with cn={cn} is not in the allowed list"
                            ));
                        } else if let Some(user) = rh.user_from(&parts.headers) {
                            return Ok(user.with_authenticated_group());
                        }
                    }
                    Err(e) => errors.push(format!("request-header: {e}")),
                }
            }
            if let Some(ca) = &config.client_ca {
                match ca.verify(chain, now).and_then(|()| subject(&chain[0])) {
                    Ok((cn, orgs)) if !cn.is_empty() => {
                        return Ok(UserInfo {
                            name: cn,
                            groups: orgs,
                            ..UserInfo::default()
                        }
                        .with_authenticated_group());
                    }
                    Ok(_) => {}
                    Err(e) => errors.push(format!("client certificate: {e}")),
                }
            }
        }
        if let Some(token) = bearer_token(&parts.headers) {
            if review_tokens {
                match self.review_token(token).await {
                    Ok(user) => return Ok(user.with_authenticated_group()),
                    Err(e) => errors.push(e),
                }
            } else {
                errors.push("bearer token not reviewed on an always-allowed path".into());
            }
        }
        if errors.is_empty() {
            Ok(UserInfo::anonymous())
        } else {
            Err(errors.join("; "))
        }
    }

    async fn review_token(&self, token: &str) -> Result<UserInfo, String> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(outcome) = self.tokens.get(&key) {
            return outcome;
        }
        let Some(client) = self.authn_client() else {
            return Err("bearer token: no Kubernetes client for TokenReview".into());
        };
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_owned()),
                audiences: None,
            },
            ..TokenReview::default()
        };
        let api: Api<TokenReview> = Api::all(client);
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| format!("TokenReview failed: {}", crate::kube::describe_error(&e)))?;
        let status = answer.status.unwrap_or_default();
        let outcome = match (status.authenticated, status.user) {
            (Some(true), Some(user)) if user.username.as_deref().is_some_and(|u| !u.is_empty()) => {
                Ok(UserInfo {
                    name: user.username.unwrap_or_default(),
                    uid: user.uid.unwrap_or_default(),
                    groups: user.groups.unwrap_or_default(),
                    extra: user.extra.unwrap_or_default(),
                })
            }
            _ => Err(format!(
                "invalid bearer token{}",
                status.error.map(|e| format!(": {e}")).unwrap_or_default()
            )),
        };
        self.tokens.insert(
            key,
            outcome.clone(),
            self.args.authentication_token_webhook_cache_ttl,
        );
        outcome
    }

    async fn authorize(&self, user: &UserInfo, parts: &http::request::Parts) -> Result<(), Status> {
        if user
            .groups
            .iter()
            .any(|g| self.args.authorization_always_allow_groups.contains(g))
        {
            return Ok(());
        }
        let attributes = Attributes::of_request(&parts.method, parts.uri.path(), parts.uri.query());
        match self.args.authorization_mode {
            AuthorizationMode::AllowAuthenticated => {
                if user.is_anonymous() {
                    Err(attributes.forbidden(&user.name, "only authenticated users are allowed"))
                } else {
                    Ok(())
                }
            }
            AuthorizationMode::Delegated => {
                let spec = sar_spec(user, &attributes);
                let key = serde_json::to_string(&spec).unwrap_or_default();
                let (allowed, reason) = match self.reviews.get(&key) {
                    Some(outcome) => outcome,
                    None => {
                        let outcome = self.review_access(spec).await.map_err(|e| {
                            tracing::warn!(error = %e, "SubjectAccessReview failed");
                            Status::internal_error(&e)
                        })?;
                        let ttl = if outcome.0 {
                            self.args.authorization_webhook_cache_authorized_ttl
                        } else {
                            self.args.authorization_webhook_cache_unauthorized_ttl
                        };
                        self.reviews.insert(key, outcome.clone(), ttl);
                        outcome
                    }
                };
                if allowed {
                    Ok(())
                } else {
                    Err(attributes.forbidden(&user.name, &reason))
                }
            }
        }
    }

    async fn review_access(&self, spec: SubjectAccessReviewSpec) -> Result<SarOutcome, String> {
        let Some(client) = self.authz_client() else {
            return Err("no Kubernetes client for SubjectAccessReview".into());
        };
        let api: Api<SubjectAccessReview> = Api::all(client);
        let review = SubjectAccessReview {
            spec,
            ..SubjectAccessReview::default()
        };
        let answer = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| {
                format!(
                    "SubjectAccessReview failed: {}",
                    crate::kube::describe_error(&e)
                )
            })?;
        let status = answer.status.unwrap_or_default();
        let mut reason = status.reason.unwrap_or_default();
        if reason.is_empty()
            && let Some(err) = status.evaluation_error.filter(|e| !e.is_empty())
        {
            reason = err;
        }
        Ok((status.allowed, reason))
    }
}

impl RequestHeader {
    /// The user the trusted headers name, `None` without a user name header.
    fn user_from(&self, headers: &http::HeaderMap) -> Option<UserInfo> {
        let first = |names: &[String]| {
            names.iter().find_map(|n| {
                headers
                    .get(n.trim())
                    .and_then(|v| v.to_str().ok())
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned)
            })
        };
        let name = first(&self.username_headers)?;
        let uid = first(&self.uid_headers).unwrap_or_default();
        let mut groups = Vec::new();
        for n in &self.group_headers {
            for v in headers.get_all(n.trim()) {
                if let Ok(v) = v.to_str()
                    && !v.is_empty()
                {
                    groups.push(v.to_owned());
                }
            }
        }
        let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (header, value) in headers {
            let header = header.as_str(); // lower-case
            for prefix in &self.extra_prefixes {
                if let Some(key) = header.strip_prefix(prefix.as_str()) {
                    if key.is_empty() {
                        continue;
                    }
                    let key = decode_path(key).to_lowercase();
                    if let Ok(v) = value.to_str() {
                        extra.entry(key).or_default().push(v.to_owned());
                    }
                }
            }
        }
        Some(UserInfo {
            name,
            uid,
            groups,
            extra,
        })
    }
}

fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn sar_spec(user: &UserInfo, attributes: &Attributes) -> SubjectAccessReviewSpec {
    let (resource_attributes, non_resource_attributes) = match attributes {
        Attributes::Resource {
            verb,
            group,
            version,
            resource,
            subresource,
            namespace,
            name,
        } => (
            Some(ResourceAttributes {
                verb: non_empty(verb),
                group: non_empty(group),
                version: non_empty(version),
                resource: non_empty(resource),
                subresource: non_empty(subresource),
                namespace: non_empty(namespace),
                name: non_empty(name),
                ..ResourceAttributes::default()
            }),
            None,
        ),
        Attributes::NonResource { verb, path } => (
            None,
            Some(NonResourceAttributes {
                verb: non_empty(verb),
                path: non_empty(path),
            }),
        ),
    };
    SubjectAccessReviewSpec {
        user: non_empty(&user.name),
        uid: non_empty(&user.uid),
        groups: (!user.groups.is_empty()).then(|| user.groups.clone()),
        extra: (!user.extra.is_empty()).then(|| user.extra.clone()),
        resource_attributes,
        non_resource_attributes,
    }
}

/// The configuration from flags, files and the ConfigMap's data (flags win, per part).
fn build_config(
    args: &AuthArgs,
    files: &FileMaterial,
    data: Option<&BTreeMap<String, String>>,
) -> Result<AuthConfig, String> {
    let source =
        |key: &str| format!("configmap {AUTH_CONFIGMAP_NAMESPACE}/{AUTH_CONFIGMAP_NAME} key {key}");
    let ca_from = |key: &str| -> Result<Option<CaSet>, String> {
        match data.and_then(|d| d.get(key)).map(|s| s.trim()) {
            None | Some("") => Ok(None),
            Some(pem) => CaSet::from_pem(pem.as_bytes(), &source(key)).map(Some),
        }
    };
    let lower = |v: &[String]| -> Vec<String> {
        v.iter()
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let client_ca = match &files.client_ca {
        Some(ca) => Some(ca.clone()),
        None => ca_from("client-ca-file")?,
    };
    let request_header = match &files.request_header_ca {
        Some(ca) => Some(RequestHeader {
            ca: ca.clone(),
            allowed_names: args
                .requestheader_allowed_names
                .iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            username_headers: lower(&args.requestheader_username_headers),
            uid_headers: lower(&args.requestheader_uid_headers),
            group_headers: lower(&args.requestheader_group_headers),
            extra_prefixes: lower(&args.requestheader_extra_headers_prefix),
        }),
        None => match ca_from("requestheader-client-ca-file")? {
            None => None,
            Some(ca) => {
                let d = data.cloned().unwrap_or_default();
                let username_headers = lower(&json_list(&d, "requestheader-username-headers")?);
                if username_headers.is_empty() {
                    return Err(format!(
                        "{}: empty while requestheader-client-ca-file is set",
                        source("requestheader-username-headers")
                    ));
                }
                Some(RequestHeader {
                    ca,
                    allowed_names: json_list(&d, "requestheader-allowed-names")?,
                    username_headers,
                    uid_headers: lower(&json_list(&d, "requestheader-uid-headers")?),
                    group_headers: lower(&json_list(&d, "requestheader-group-headers")?),
                    extra_prefixes: lower(&json_list(&d, "requestheader-extra-headers-prefix")?),
                })
            }
        },
    };
    Ok(AuthConfig {
        client_ca,
        request_header,
    })
}

/// Watches the authentication ConfigMap and applies each change.
async fn watch_configmap(api: Api<ConfigMap>, inner: std::sync::Weak<Inner>) {
    let config = watcher::Config::default().fields(&format!("metadata.name={AUTH_CONFIGMAP_NAME}"));
    let mut stream = watcher::watcher(api, config).default_backoff().boxed();
    let mut seen_in_init = false;
    while let Some(event) = stream.next().await {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        match event {
            Ok(Event::Init) => seen_in_init = false,
            Ok(Event::InitApply(cm) | Event::Apply(cm)) => {
                seen_in_init = true;
                inner.apply_configmap(Some(cm.data.unwrap_or_default()));
            }
            Ok(Event::InitDone) => {
                if !seen_in_init {
                    tracing::warn!(
                        "configmap {AUTH_CONFIGMAP_NAMESPACE}/{AUTH_CONFIGMAP_NAME} is absent; keeping the authentication configuration in force"
                    );
                }
            }
            Ok(Event::Delete(_)) => {
                tracing::warn!(
                    "configmap {AUTH_CONFIGMAP_NAMESPACE}/{AUTH_CONFIGMAP_NAME} was deleted; keeping the authentication configuration in force"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "watching the authentication configmap failed; retrying with backoff");
            }
        }
    }
}

/// Re-reads the CA files given by flags when they change.
async fn reload_files(inner: std::sync::Weak<Inner>) {
    let mut interval = tokio::time::interval(FILE_RELOAD_INTERVAL);
    interval.tick().await;
    loop {
        interval.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let mut fresh = FileMaterial::default();
        let mut ok = true;
        if let Some(path) = &inner.args.client_ca_file {
            match read_ca_file(path) {
                Ok(ca) => fresh.client_ca = Some(ca),
                Err(e) => {
                    ok = false;
                    tracing::error!(error = %e, "--client-ca-file unreadable; keeping the CA in force");
                }
            }
        }
        if let Some(path) = &inner.args.requestheader_client_ca_file {
            match read_ca_file(path) {
                Ok(ca) => fresh.request_header_ca = Some(ca),
                Err(e) => {
                    ok = false;
                    tracing::error!(error = %e, "--requestheader-client-ca-file unreadable; keeping the CA in force");
                }
            }
        }
        if ok {
            *inner.files.lock().unwrap_or_else(PoisonError::into_inner) = fresh;
            inner.rebuild();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        auth: AuthArgs,
        #[command(flatten)]
        kube: crate::kube::KubeArgs,
    }

    #[test]
    fn flags_are_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_match_prometheus_adapter() {
        let cli = Cli::try_parse_from(["x"]).expect("parse");
        assert_eq!(cli.auth, AuthArgs::default());
        let cli = Cli::try_parse_from([
            "x",
            "--authorization-mode=allow-authenticated",
            "--requestheader-allowed-names=front-proxy-client,aggregator",
            "--authorization-always-allow-paths=/healthz,/metrics",
            "--authentication-token-webhook-cache-ttl=30s",
            "--authentication-skip-lookup",
        ])
        .expect("parse");
        assert_eq!(
            cli.auth.authorization_mode,
            AuthorizationMode::AllowAuthenticated
        );
        assert_eq!(
            cli.auth.requestheader_allowed_names,
            ["front-proxy-client", "aggregator"]
        );
        assert_eq!(
            cli.auth.authorization_always_allow_paths,
            ["/healthz", "/metrics"]
        );
        assert_eq!(
            cli.auth.authentication_token_webhook_cache_ttl,
            Duration::from_secs(30)
        );
        assert!(cli.auth.authentication_skip_lookup);
    }

    #[test]
    fn config_errors_fail_at_start_up() {
        let no_client = Gate::new(&AuthArgs::default(), None).expect_err("needs a client");
        assert!(matches!(no_client, AuthError::NoClient(_)), "{no_client}");
        let args = AuthArgs {
            authentication_skip_lookup: true,
            authorization_mode: AuthorizationMode::AllowAuthenticated,
            client_ca_file: Some("/nonexistent/ca.pem".into()),
            ..AuthArgs::default()
        };
        let err = Gate::new(&args, None).expect_err("missing file");
        assert!(
            err.to_string()
                .starts_with("--client-ca-file: /nonexistent/ca.pem"),
            "{err}"
        );
        let args = AuthArgs {
            authentication_skip_lookup: true,
            authorization_mode: AuthorizationMode::AllowAuthenticated,
            authorization_always_allow_paths: vec!["healthz".into()],
            ..AuthArgs::default()
        };
        assert!(Gate::new(&args, None).is_err());
        let args = AuthArgs {
            authentication_skip_lookup: true,
            authorization_mode: AuthorizationMode::AllowAuthenticated,
            ..AuthArgs::default()
        };
        let gate = Gate::new(&args, None).expect("no client needed");
        assert!(gate.is_ready());
    }

    #[test]
    fn bad_configmap_data_is_rejected() {
        let args = AuthArgs::default();
        let files = FileMaterial::default();
        let mut data = BTreeMap::new();
        data.insert(
            "requestheader-client-ca-file".to_owned(),
            "not pem".to_owned(),
        );
        assert!(build_config(&args, &files, Some(&data)).is_err());
        data.clear();
        data.insert(
            "requestheader-allowed-names".to_owned(),
            "front-proxy-client".to_owned(),
        );
        // No request-header CA: the other keys are not read.
        let config = build_config(&args, &files, Some(&data)).expect("no CA, nothing to check");
        assert!(config.request_header.is_none() && config.client_ca.is_none());
    }

    #[test]
    fn request_header_user_is_read_like_the_apiserver() {
        let rh = RequestHeader {
            ca: CaSet::from_pem(test_ca().as_bytes(), "test").expect("ca"),
            allowed_names: vec![],
            username_headers: vec!["x-remote-user".into()],
            uid_headers: vec!["x-remote-uid".into()],
            group_headers: vec!["x-remote-group".into()],
            extra_prefixes: vec!["x-remote-extra-".into()],
        };
        let mut h = http::HeaderMap::new();
        assert!(rh.user_from(&h).is_none());
        h.insert("x-remote-user", "alice".parse().expect("hv"));
        h.append("x-remote-group", "a".parse().expect("hv"));
        h.append("x-remote-group", "b,c".parse().expect("hv"));
        h.append("x-remote-extra-Scopes", "s1".parse().expect("hv"));
        h.append("x-remote-extra-scopes", "s2".parse().expect("hv"));
        h.append("x-remote-extra-example.com%2Fkey", "v".parse().expect("hv"));
        let user = rh.user_from(&h).expect("user");
        assert_eq!(user.name, "alice");
        assert_eq!(user.groups, ["a", "b,c"]);
        assert_eq!(user.extra["scopes"], ["s1", "s2"]);
        assert_eq!(user.extra["example.com/key"], ["v"]);
        let user = user.with_authenticated_group();
        assert_eq!(user.groups, ["a", "b,c", "system:authenticated"]);
    }

    #[test]
    fn gate_and_its_futures_can_be_shared_across_tasks() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: T) {}
        let args = AuthArgs {
            authentication_skip_lookup: true,
            authorization_mode: AuthorizationMode::AllowAuthenticated,
            ..AuthArgs::default()
        };
        let gate = Gate::new(&args, None).expect("gate");
        send_sync(&gate);
        let (parts, ()) = http::Request::new(()).into_parts();
        send(gate.admit(&parts, &[]));
        send(gate.start());
    }

    #[test]
    fn bearer_tokens_are_parsed() {
        let mut h = http::HeaderMap::new();
        assert_eq!(bearer_token(&h), None);
        h.insert(
            http::header::AUTHORIZATION,
            "Bearer abc".parse().expect("hv"),
        );
        assert_eq!(bearer_token(&h), Some("abc"));
        h.insert(
            http::header::AUTHORIZATION,
            "Basic abc".parse().expect("hv"),
        );
        assert_eq!(bearer_token(&h), None);
        h.insert(
            http::header::AUTHORIZATION,
            "bearer   ".parse().expect("hv"),
        );
        assert_eq!(bearer_token(&h), None);
    }

    #[test]
    fn ttl_cache_expires() {
        let cache: TtlCache<u8, u8> = TtlCache::new();
        cache.insert(1, 10, Duration::from_secs(60));
        cache.insert(2, 20, Duration::ZERO);
        assert_eq!(cache.get(&1), Some(10));
        assert_eq!(cache.get(&2), None);
        cache.insert(3, 30, Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(cache.get(&3), None);
    }

    fn test_ca() -> String {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().expect("key");
        params.self_signed(&key).expect("cert").pem()
    }
}
