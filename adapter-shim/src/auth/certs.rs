//! Client certificates: CA sets that change at run time, chain validation with
//! rustls-webpki, subject names, and the TLS-layer verifier that only proves key possession.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};

/// The signature algorithms of the aws-lc-rs provider (the one the workspace uses).
fn algorithms() -> WebPkiSupportedAlgorithms {
    rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms
}

/// A set of trusted CA certificates (one PEM bundle).
#[derive(Clone)]
pub(crate) struct CaSet {
    anchors: Arc<Vec<TrustAnchor<'static>>>,
    /// Where it came from (`configmap kube-system/…:client-ca-file`, a file path).
    pub(crate) source: String,
    /// The certificates, DER, for equality checks.
    ders: Arc<Vec<Vec<u8>>>,
}

impl std::fmt::Debug for CaSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaSet")
            .field("source", &self.source)
            .field("certificates", &self.anchors.len())
            .finish()
    }
}

impl PartialEq for CaSet {
    fn eq(&self, other: &Self) -> bool {
        self.ders == other.ders
    }
}

impl CaSet {
    /// Parses a PEM bundle of CA certificates; an empty bundle or a certificate that is not a
    /// usable trust anchor is an error.
    pub(crate) fn from_pem(pem: &[u8], source: &str) -> Result<Self, String> {
        let mut anchors = Vec::new();
        let mut ders = Vec::new();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("{source}: bad PEM: {e}"))?;
            let anchor = webpki::anchor_from_trusted_cert(&cert)
                .map_err(|e| format!("{source}: not a CA certificate: {e:?}"))?
                .to_owned();
            anchors.push(anchor);
            ders.push(cert.as_ref().to_vec());
        }
        if anchors.is_empty() {
            return Err(format!("{source}: no certificate in PEM data"));
        }
        Ok(Self {
            anchors: Arc::new(anchors),
            source: source.to_owned(),
            ders: Arc::new(ders),
        })
    }

    /// Number of CA certificates.
    pub(crate) fn len(&self) -> usize {
        self.anchors.len()
    }

    /// Checks that `chain` (leaf first, then intermediates) chains to one of the CAs and that
    /// the leaf may be used for client authentication, at `now`. The error reads like Go's.
    pub(crate) fn verify(
        &self,
        chain: &[CertificateDer<'static>],
        now: UnixTime,
    ) -> Result<(), String> {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Err("no client certificate".into());
        };
        let ee = webpki::EndEntityCert::try_from(leaf)
            .map_err(|e| format!("x509: malformed certificate: {e:?}"))?;
        ee.verify_for_usage(
            algorithms().all,
            &self.anchors,
            intermediates,
            now,
            webpki::KeyUsage::client_auth(),
            None,
            None,
        )
        .map(|_| ())
        .map_err(|e| describe_webpki_error(&e))
    }
}

fn describe_webpki_error(e: &webpki::Error) -> String {
    match e {
        webpki::Error::UnknownIssuer => "x509: certificate signed by unknown authority".into(),
        webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. } => {
            "x509: certificate has expired or is not yet valid".into()
        }
        webpki::Error::RequiredEkuNotFoundContext(_) => {
            "x509: certificate specifies an incompatible key usage".into()
        }
        other => format!("x509: {other:?}"),
    }
}

/// The subject's common name and organizations of a DER certificate.
pub(crate) fn subject(cert: &CertificateDer<'_>) -> Result<(String, Vec<String>), String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|e| format!("x509: malformed certificate: {e}"))?;
    let subject = parsed.subject();
    let cn = subject
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .unwrap_or_default()
        .to_owned();
    let orgs = subject
        .iter_organization()
        .filter_map(|a| a.as_str().ok().map(str::to_owned))
        .collect();
    Ok((cn, orgs))
}

/// The rustls verifier for the shim's server: asks for a client certificate without
/// requiring one, accepts any well-formed chain at the TLS layer, and **does verify the
/// handshake signature** (the client proves it holds the certificate's key). Which CA the
/// chain must lead to is decided per request by [`Gate::admit`](super::Gate::admit),
/// because the CAs change while connections stay open.
#[must_use]
pub fn client_cert_verifier() -> Arc<dyn ClientCertVerifier> {
    Arc::new(DeferredClientCertVerifier {
        algorithms: algorithms(),
    })
}

#[derive(Debug)]
struct DeferredClientCertVerifier {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for DeferredClientCertVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // No hints: Go clients (the aggregator) then send their configured certificate.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Well-formed is all the TLS layer checks; the chain is checked per request.
        webpki::EndEntityCert::try_from(end_entity).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca(name: &str) -> rcgen::CertifiedIssuer<'static, rcgen::KeyPair> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().expect("key");
        rcgen::CertifiedIssuer::self_signed(params, key).expect("ca")
    }

    fn leaf(
        issuer: &rcgen::Issuer<'_, rcgen::KeyPair>,
        cn: &str,
        eku: rcgen::ExtendedKeyUsagePurpose,
    ) -> CertificateDer<'static> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "team");
        params.extended_key_usages = vec![eku];
        let key = rcgen::KeyPair::generate().expect("key");
        params.signed_by(&key, issuer).expect("leaf").der().clone()
    }

    fn now() -> UnixTime {
        UnixTime::since_unix_epoch(
            std::time::SystemTime::now()
                .duration_since(std::time::SystemTime::UNIX_EPOCH)
                .unwrap_or_default(),
        )
    }

    #[test]
    fn chains_are_checked_against_the_current_set() {
        let a = ca("a");
        let b = ca("b");
        let bundle = format!("{}{}", a.pem(), b.pem());
        let both = CaSet::from_pem(bundle.as_bytes(), "bundle").expect("bundle");
        assert_eq!(both.len(), 2);
        let only_a = CaSet::from_pem(a.pem().as_bytes(), "a").expect("a");
        let from_b = leaf(
            &b,
            "front-proxy-client",
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        );
        assert_eq!(both.verify(std::slice::from_ref(&from_b), now()), Ok(()));
        assert_eq!(
            only_a.verify(std::slice::from_ref(&from_b), now()),
            Err("x509: certificate signed by unknown authority".into())
        );
        // A server-only certificate is not a client certificate.
        let server = leaf(&a, "x", rcgen::ExtendedKeyUsagePurpose::ServerAuth);
        assert_eq!(
            only_a.verify(&[server], now()),
            Err("x509: certificate specifies an incompatible key usage".into())
        );
        assert!(only_a.verify(&[], now()).is_err());
        assert_eq!(
            subject(&from_b),
            Ok(("front-proxy-client".into(), vec!["team".into()]))
        );
    }

    #[test]
    fn bad_bundles_are_refused() {
        assert!(CaSet::from_pem(b"", "empty").is_err());
        assert!(CaSet::from_pem(b"not pem", "junk").is_err());
        let err = CaSet::from_pem(
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "broken",
        )
        .expect_err("not a certificate");
        assert!(err.starts_with("broken: "), "{err}");
    }
}
