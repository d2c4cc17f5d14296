//! The serving certificate: from `--tls-cert-file`/`--tls-private-key-file` (re-read when
//! the files change, so cert-manager rotations need no restart), else a self-signed one.
//!
//! prometheus-adapter writes its self-signed certificate into `--cert-dir`, which fails on a
//! read-only root filesystem; here it is made in memory and only written when `--cert-dir`
//! is given (so a CA bundle can be read back from it).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// How often the files are checked for changes.
const RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// File names inside `--cert-dir`, as the Kubernetes apiserver library names them.
pub const CERT_DIR_CERT: &str = "apiserver.crt";
/// See [`CERT_DIR_CERT`].
pub const CERT_DIR_KEY: &str = "apiserver.key";

/// Why the serving certificate could not be set up. One line each, paths included, never
/// key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The chain file is unreadable or not PEM.
    #[error("cannot read certificate chain {path}: {reason}")]
    Certificates {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The key file is unreadable or not PEM.
    #[error("cannot read private key {path}: {reason}")]
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The chain file holds no certificate.
    #[error("{0} holds no certificate")]
    NoCertificate(PathBuf),
    /// The key does not match the certificate.
    #[error("certificate and key do not belong together: {0}")]
    Mismatch(String),
    /// Generating the self-signed certificate failed.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
    /// Writing into `--cert-dir` failed.
    #[error("cannot write the self-signed certificate into {path}: {reason}")]
    Write {
        /// The directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Where the serving certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSource {
    /// PEM files, watched for changes.
    Files {
        /// `--tls-cert-file`.
        cert: PathBuf,
        /// `--tls-private-key-file`.
        key: PathBuf,
    },
    /// `--cert-dir`: reuse `apiserver.crt`/`apiserver.key` there, or generate and write
    /// them.
    Dir(PathBuf),
    /// Generated at start, held in memory only.
    SelfSigned,
}

/// Hands rustls the current certificate; swapped atomically on reload.
#[derive(Debug)]
pub struct ServingCert {
    files: Option<(PathBuf, PathBuf)>,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<CertifiedKey>,
}

impl ServingCert {
    /// Loads or generates the certificate. `names` go into a generated certificate's
    /// subject alternative names (`localhost` and `127.0.0.1` are always there).
    ///
    /// # Errors
    /// Unreadable or mismatched files, or a generation/write failure.
    pub fn load(source: &CertSource, names: &[String]) -> Result<Arc<Self>, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let (files, key) = match source {
            CertSource::Files { cert, key } => (
                Some((cert.clone(), key.clone())),
                load_certified_key(cert, key, &provider)?,
            ),
            CertSource::Dir(dir) => {
                let (cert, key) = (dir.join(CERT_DIR_CERT), dir.join(CERT_DIR_KEY));
                if !cert.exists() || !key.exists() {
                    let (cert_pem, key_pem) = self_signed_pem(names)?;
                    let write = |path: &Path, data: &str| {
                        std::fs::create_dir_all(dir)
                            .and_then(|()| std::fs::write(path, data))
                            .map_err(|e| TlsError::Write {
                                path: dir.clone(),
                                reason: e.to_string(),
                            })
                    };
                    write(&cert, &cert_pem)?;
                    write(&key, &key_pem)?;
                }
                let certified = load_certified_key(&cert, &key, &provider)?;
                (Some((cert, key)), certified)
            }
            CertSource::SelfSigned => {
                let (cert_pem, key_pem) = self_signed_pem(names)?;
                let chain = vec![
                    CertificateDer::from_pem_slice(cert_pem.as_bytes())
                        .map_err(|e| TlsError::Generate(e.to_string()))?,
                ];
                let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
                    .map_err(|e| TlsError::Generate(e.to_string()))?;
                let certified = CertifiedKey::from_der(chain, key, &provider)
                    .map_err(|e| TlsError::Mismatch(e.to_string()))?;
                (None, certified)
            }
        };
        Ok(Arc::new(Self {
            files,
            provider,
            current: ArcSwap::from_pointee(key),
        }))
    }

    /// Re-reads the files (if any); on error the old certificate stays in use.
    ///
    /// # Errors
    /// As [`Self::load`] for files.
    pub fn reload(&self) -> Result<(), TlsError> {
        if let Some((cert, key)) = &self.files {
            let certified = load_certified_key(cert, key, &self.provider)?;
            self.current.store(Arc::new(certified));
        }
        Ok(())
    }

    /// The certificate served now (leaf first).
    #[must_use]
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.current.load().cert.clone()
    }

    /// Polls the files' modification times and reloads when either changes.
    pub fn spawn_watcher(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let (cert, key) = self.files.clone()?;
        let weak = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            let mut seen = None;
            loop {
                let Some(this) = weak.upgrade() else { return };
                let stamp = (modified(&cert), modified(&key));
                if seen.is_some() && seen != Some(stamp) {
                    match this.reload() {
                        Ok(()) => {
                            tracing::info!(path = %cert.display(), "serving certificate reloaded");
                        }
                        Err(error) => {
                            tracing::warn!(%error, "serving certificate not reloaded; keeping the previous one");
                        }
                    }
                }
                seen = Some(stamp);
                drop(this);
                tokio::time::sleep(RELOAD_INTERVAL).await;
            }
        }))
    }

    /// A rustls server configuration offering h2 (unless `http1_only`) and http/1.1, with
    /// an optional client-certificate verifier (the aggregator's front-proxy certificate).
    ///
    /// # Errors
    /// rustls refuses the protocol versions (it does not with aws-lc-rs).
    pub fn server_config(
        self: &Arc<Self>,
        client_verifier: Option<Arc<dyn ClientCertVerifier>>,
        http1_only: bool,
    ) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let builder = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = match client_verifier {
            Some(v) => builder.with_client_cert_verifier(v),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(self.clone());
        config.alpn_protocols = if http1_only {
            vec![b"http/1.1".to_vec()]
        } else {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        };
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn self_signed_pem(names: &[String]) -> Result<(String, String), TlsError> {
    let mut sans = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    sans.extend(names.iter().filter(|n| !n.is_empty()).cloned());
    sans.dedup();
    let certified =
        rcgen::generate_simple_self_signed(sans).map_err(|e| TlsError::Generate(e.to_string()))?;
    Ok((certified.cert.pem(), certified.signing_key.serialize_pem()))
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
    CertifiedKey::from_der(chain, key, provider).map_err(|e| TlsError::Mismatch(e.to_string()))
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
            std::env::temp_dir().join(format!("adapter-shim-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        Dir(path)
    }

    #[test]
    fn self_signed_is_in_memory_and_cert_dir_is_reused() {
        let a = ServingCert::load(&CertSource::SelfSigned, &["shim.monitoring.svc".into()])
            .expect("self-signed");
        assert_eq!(a.chain().len(), 1);
        assert!(a.reload().is_ok(), "nothing to reload");

        let d = dir("certdir");
        let first = ServingCert::load(&CertSource::Dir(d.0.clone()), &[]).expect("generated");
        assert!(d.0.join(CERT_DIR_CERT).exists() && d.0.join(CERT_DIR_KEY).exists());
        let second = ServingCert::load(&CertSource::Dir(d.0.clone()), &[]).expect("reused");
        assert_eq!(first.chain(), second.chain(), "an existing pair is reused");
    }

    #[test]
    fn files_reload_and_bad_files_keep_the_old_certificate() {
        let d = dir("files");
        std::fs::create_dir_all(&d.0).expect("mkdir");
        let (cert, key) = (d.0.join("tls.crt"), d.0.join("tls.key"));
        let (c1, k1) = self_signed_pem(&[]).expect("gen");
        std::fs::write(&cert, &c1).expect("write");
        std::fs::write(&key, &k1).expect("write");
        let source = CertSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        };
        let serving = ServingCert::load(&source, &[]).expect("load");
        let before = serving.chain();

        let (c2, k2) = self_signed_pem(&[]).expect("gen");
        std::fs::write(&cert, &c2).expect("write");
        // A half-written rotation (new cert, old key) is refused and the old pair kept.
        assert!(matches!(serving.reload(), Err(TlsError::Mismatch(_))));
        assert_eq!(serving.chain(), before);
        std::fs::write(&key, &k2).expect("write");
        serving.reload().expect("reload");
        assert_ne!(serving.chain(), before);

        std::fs::write(&cert, "not pem").expect("write");
        let err = ServingCert::load(&source, &[]).expect_err("bad");
        assert!(err.to_string().contains("tls.crt"), "{err}");
    }
}
