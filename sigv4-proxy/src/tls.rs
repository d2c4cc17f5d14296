//! The optional TLS listener's certificate: loaded at start, and re-read when the files
//! change (cert-manager and Kubernetes secret updates) without a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// How often the files are checked for changes.
const RELOAD_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read certificate chain {path}: {reason}")]
    Certificates { path: PathBuf, reason: String },
    #[error("cannot read private key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("{0} holds no certificate")]
    NoCertificate(PathBuf),
    #[error("certificate and key do not belong together: {0}")]
    Mismatch(String),
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Hands rustls the current certificate; swapped atomically on reload.
#[derive(Debug)]
pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<CertifiedKey>,
}

impl ReloadingCert {
    pub fn load(
        cert_path: &Path,
        key_path: &Path,
        provider: Arc<CryptoProvider>,
    ) -> Result<Arc<Self>, TlsError> {
        let key = load_certified_key(cert_path, key_path, &provider)?;
        Ok(Arc::new(Self {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            provider,
            current: ArcSwap::from_pointee(key),
        }))
    }

    /// Re-reads both files; on any error the old certificate stays in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let key = load_certified_key(&self.cert_path, &self.key_path, &self.provider)?;
        self.current.store(Arc::new(key));
        Ok(())
    }

    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }

    /// Polls the files' modification times and reloads when either changes.
    pub fn spawn_watcher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut seen = None;
            loop {
                let Some(this) = weak.upgrade() else { return };
                let stamp = (modified(&this.cert_path), modified(&this.key_path));
                if seen.is_some() && seen != Some(stamp) {
                    match this.reload() {
                        Ok(()) => {
                            tracing::info!(path = %this.cert_path.display(), "TLS certificate reloaded")
                        }
                        Err(error) => {
                            tracing::warn!(%error, "TLS certificate not reloaded; keeping the previous one")
                        }
                    }
                }
                seen = Some(stamp);
                drop(this);
                tokio::time::sleep(RELOAD_INTERVAL).await;
            }
        })
    }

    /// A rustls server configuration offering h2 and http/1.1.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn load_certified_key(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert_path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Certificates {
            path: cert_path.to_owned(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert_path.to_owned()));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| TlsError::Key {
        path: key_path.to_owned(),
        reason: e.to_string(),
    })?;
    let certified = CertifiedKey::from_der(chain, key, provider)
        .map_err(|e| TlsError::Mismatch(e.to_string()))?;
    Ok(certified)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn dir(name: &str) -> Dir {
        let path =
            std::env::temp_dir().join(format!("sigv4-proxy-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&path).expect("dir");
        Dir(path)
    }

    fn write_pair(dir: &Path, host: &str) {
        let certified = rcgen::generate_simple_self_signed(vec![host.to_owned()]).expect("rcgen");
        std::fs::write(dir.join("tls.crt"), certified.cert.pem()).expect("write");
        std::fs::write(dir.join("tls.key"), certified.signing_key.serialize_pem()).expect("write");
    }

    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::aws_lc_rs::default_provider())
    }

    #[test]
    fn loads_and_reloads_and_keeps_the_old_pair_on_error() {
        let dir = dir("reload");
        write_pair(&dir.0, "first.example");
        let cert = ReloadingCert::load(&dir.0.join("tls.crt"), &dir.0.join("tls.key"), provider())
            .expect("loads");
        let first = cert.current().cert[0].clone();

        write_pair(&dir.0, "second.example");
        cert.reload().expect("reloads");
        let second = cert.current().cert[0].clone();
        assert_ne!(first, second);

        std::fs::write(dir.0.join("tls.key"), "not a key").expect("write");
        assert!(matches!(cert.reload(), Err(TlsError::Key { .. })));
        assert_eq!(cert.current().cert[0], second, "kept the working pair");
        assert!(cert.server_config().is_ok());
    }

    #[test]
    fn mismatched_or_missing_files_are_errors() {
        let a = dir("a");
        let b = dir("b");
        write_pair(&a.0, "a.example");
        write_pair(&b.0, "b.example");
        assert!(matches!(
            ReloadingCert::load(&a.0.join("tls.crt"), &b.0.join("tls.key"), provider()),
            Err(TlsError::Mismatch(_))
        ));
        assert!(matches!(
            ReloadingCert::load(&a.0.join("missing.crt"), &a.0.join("tls.key"), provider()),
            Err(TlsError::Certificates { .. })
        ));
    }
}
