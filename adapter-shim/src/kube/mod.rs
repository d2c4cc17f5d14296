//! The Kubernetes side of the shim, on kube-rs.
//!
//! - [`KubeArgs`]: `--kubeconfig` / `--lister-kubeconfig` (each with an `ADAPTER_SHIM_*`
//!   variable);
//! - [`client`]: a [`kube::Client`] from a kubeconfig file, else in-cluster, else kube-rs'
//!   usual inference (`$KUBECONFIG`, `~/.kube/config`);
//! - [`KubeObjects`]: the [`ObjectLister`](crate::objects::ObjectLister) behind wildcard
//!   requests, a metadata-only watch cache per resource type, started on first use;
//! - [`discover_resources`]: API discovery (preferred versions, no subresources), so CRDs
//!   can be added to the [`ResourceCatalog`](crate::naming::ResourceCatalog).
//!
//! TLS is rustls with the aws-lc-rs provider; no OpenSSL.
//!
//! RBAC the shim's service account needs for this module: `list` and `watch` on every
//! resource type wildcard requests name (prometheus-adapter's ClusterRole covers `pods`,
//! `services`, `namespaces`, `nodes`; add e.g. `deployments.apps` or CRDs when rules use
//! them), cluster-wide (the caches watch all namespaces). Discovery needs nothing beyond the
//! `system:discovery` role every authenticated user has.

mod discovery;
mod objects;

use std::path::{Path, PathBuf};

pub use discovery::discover_resources;
pub use objects::{DEFAULT_SYNC_TIMEOUT, KubeObjects};

/// Where the shim finds its Kubernetes API credentials. Flattened into the CLI.
#[derive(clap::Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeArgs {
    /// kubeconfig for talking to the Kubernetes API (API discovery, and listing unless
    /// --lister-kubeconfig is given). Without it: in-cluster service account, else
    /// $KUBECONFIG / ~/.kube/config.
    #[arg(long, env = "ADAPTER_SHIM_KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// kubeconfig used only to list objects for wildcard (`*`) requests; overrides
    /// --kubeconfig for listing.
    #[arg(long, env = "ADAPTER_SHIM_LISTER_KUBECONFIG", value_name = "FILE")]
    pub lister_kubeconfig: Option<PathBuf>,
}

impl KubeArgs {
    /// The kubeconfig for listing: `--lister-kubeconfig`, else `--kubeconfig`.
    #[must_use]
    pub fn lister_path(&self) -> Option<&Path> {
        self.lister_kubeconfig
            .as_deref()
            .or(self.kubeconfig.as_deref())
    }
}

/// Why a Kubernetes client could not be made or used. Messages never carry credentials.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The kubeconfig file could not be read or used.
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
    /// Neither in-cluster configuration nor a kubeconfig was found.
    #[error("no Kubernetes configuration: not in a cluster ({incluster}) and {infer}")]
    NoConfig {
        /// Why the in-cluster configuration failed.
        incluster: String,
        /// Why kube-rs' inference failed.
        infer: String,
    },
    /// The client could not be built from the configuration (TLS material, proxy…).
    #[error("Kubernetes client: {0}")]
    Client(String),
    /// An API call failed.
    #[error("Kubernetes API: {0}")]
    Api(String),
}

impl KubeError {
    pub(crate) fn api(e: &kube::Error) -> Self {
        Self::Api(describe_error(e))
    }
}

/// A one-line description of a kube-rs error without request details: for API errors the
/// apiserver's own message and code, for the rest kube-rs' Display (which does not include
/// headers or tokens).
pub(crate) fn describe_error(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => {
            format!("{} ({} {})", status.message, status.code, status.reason)
        }
        other => other.to_string(),
    }
}

/// A client for the Kubernetes API: that kubeconfig file (its current context) if given,
/// else the in-cluster service account, else kube-rs' inference (`$KUBECONFIG`,
/// `~/.kube/config`).
///
/// # Errors
/// [`KubeError`] when the file cannot be read or parsed, no configuration is found, or the
/// client cannot be built (bad TLS material).
pub async fn client(path: Option<&Path>) -> Result<kube::Client, KubeError> {
    let config = match path {
        Some(path) => {
            let kubeconfig =
                kube::config::Kubeconfig::read_from(path).map_err(|e| KubeError::Kubeconfig {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?;
            kube::Config::from_custom_kubeconfig(
                kubeconfig,
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .map_err(|e| KubeError::Kubeconfig {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?
        }
        None => match kube::Config::incluster() {
            Ok(config) => config,
            Err(incluster) => kube::Config::infer()
                .await
                .map_err(|infer| KubeError::NoConfig {
                    incluster: incluster.to_string(),
                    infer: infer.to_string(),
                })?,
        },
    };
    kube::Client::try_from(config).map_err(|e| KubeError::Client(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        kube: KubeArgs,
    }

    #[test]
    fn lister_kubeconfig_overrides_kubeconfig() {
        let cli = Cli::try_parse_from(["x", "--kubeconfig", "/a", "--lister-kubeconfig", "/b"])
            .expect("parse");
        assert_eq!(cli.kube.lister_path(), Some(Path::new("/b")));
        let cli = Cli::try_parse_from(["x", "--kubeconfig", "/a"]).expect("parse");
        assert_eq!(cli.kube.lister_path(), Some(Path::new("/a")));
        let cli = Cli::try_parse_from(["x"]).expect("parse");
        assert_eq!(cli.kube.lister_path(), None);
    }

    #[tokio::test]
    async fn missing_kubeconfig_is_a_clear_error() {
        let Err(err) = client(Some(Path::new("/nonexistent/kubeconfig"))).await else {
            panic!("a missing kubeconfig was accepted");
        };
        let text = err.to_string();
        assert!(
            text.starts_with("kubeconfig /nonexistent/kubeconfig: "),
            "{text}"
        );
    }
}
