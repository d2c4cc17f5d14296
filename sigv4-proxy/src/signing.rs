//! SigV4 signing of an outbound request, on top of `aws-sigv4`.
//!
//! The request handed in is final: its URI is absolute and already in canonical encoding
//! (see `target`), and its headers are exactly what goes on the wire (see `headers`). We sign
//! every header that `headers::is_signable` allows and whose value is visible ASCII; the
//! rest are forwarded unsigned, which SigV4 permits.

use std::time::SystemTime;

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::{HeaderName, HeaderValue, Request};

use crate::headers::is_signable;

/// What the signature says about the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Lowercase hex SHA-256 of the exact body bytes sent: what every AMP client uses.
    Sha256(String),
    /// `UNSIGNED-PAYLOAD`, sent as `x-amz-content-sha256` so the server knows.
    Unsigned,
}

/// Signing failed; the request never left the proxy.
#[derive(Debug, thiserror::Error)]
#[error("could not sign the request: {0}")]
pub struct SigningError(#[source] Box<dyn std::error::Error + Send + Sync>);

/// The parts of a signature worth logging: never the signature or credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureSummary {
    pub signed_headers: String,
}

/// Signs requests for one service and region with fixed settings.
#[derive(Debug, Clone)]
pub struct Signer {
    service: String,
    region: String,
    settings: SigningSettings,
}

impl Signer {
    /// Settings right for `aps` and every non-S3 service: the path is normalised and its
    /// escapes are encoded again (`%2F` is signed as `%252F`), as botocore and the Go SDKs do.
    pub fn new(service: impl Into<String>, region: impl Into<String>) -> Self {
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Double;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Enabled;
        Self::with_settings(service, region, settings)
    }

    /// Full control over the settings, for the official test vectors.
    pub fn with_settings(
        service: impl Into<String>,
        region: impl Into<String>,
        settings: SigningSettings,
    ) -> Self {
        Self {
            service: service.into(),
            region: region.into(),
            settings,
        }
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// Signs `request` in place: adds `x-amz-date`, `authorization`, the session token when
    /// there is one and, for unsigned payloads, `x-amz-content-sha256`.
    pub fn sign<B>(
        &self,
        request: &mut Request<B>,
        payload: &Payload,
        identity: &Identity,
        time: SystemTime,
    ) -> Result<SignatureSummary, SigningError> {
        let mut settings = self.settings.clone();
        let body = match payload {
            Payload::Sha256(hex) => SignableBody::Precomputed(hex.clone()),
            Payload::Unsigned => {
                // Without the header the server would hash the body itself and disagree.
                settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
                SignableBody::UnsignedPayload
            }
        };
        let params = v4::SigningParams::builder()
            .identity(identity)
            .region(&self.region)
            .name(&self.service)
            .time(time)
            .settings(settings)
            .build()
            .map_err(|e| SigningError(e.into()))?
            .into();

        let uri = request.uri().to_string();
        let headers = request
            .headers()
            .iter()
            .filter(|(name, _)| is_signable(name))
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)));
        let signable = SignableRequest::new(request.method().as_str(), uri, headers, body)
            .map_err(|e| SigningError(e.into()))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| SigningError(e.into()))?
            .into_parts();

        let mut summary = SignatureSummary {
            signed_headers: String::new(),
        };
        let (new_headers, _) = instructions.into_parts();
        for header in new_headers {
            let mut value =
                HeaderValue::from_str(header.value()).map_err(|e| SigningError(e.into()))?;
            value.set_sensitive(header.sensitive() || header.name() == "authorization");
            if header.name() == "authorization" {
                summary.signed_headers = signed_headers_of(header.value()).to_owned();
            }
            request
                .headers_mut()
                .insert(HeaderName::from_static(header.name()), value);
        }
        Ok(summary)
    }
}

fn signed_headers_of(authorization: &str) -> &str {
    authorization
        .split("SignedHeaders=")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;
    use std::time::{Duration, UNIX_EPOCH};

    fn identity(token: Option<&str>) -> Identity {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            token.map(str::to_owned),
            None,
            "test",
        )
        .into()
    }

    fn amp_request() -> Request<()> {
        Request::get(
            "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-1/api/v1/query?query=up",
        )
        .header("host", "aps-workspaces.us-east-1.amazonaws.com")
        .header("accept", "application/json")
        .header("user-agent", "curl/8")
        .header("x-forwarded-for", "10.0.0.1")
        .body(())
        .expect("request")
    }

    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn signs_end_to_end_headers_but_not_rewritable_ones() {
        let mut request = amp_request();
        let summary = Signer::new("aps", "us-east-1")
            .sign(
                &mut request,
                &Payload::Sha256(EMPTY_SHA256.into()),
                &identity(Some("session-token")),
                UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            )
            .expect("signs");
        assert_eq!(
            summary.signed_headers,
            "accept;host;x-amz-date;x-amz-security-token"
        );
        let auth = request.headers()["authorization"].to_str().expect("ascii");
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-east-1/aps/aws4_request, "
            ),
            "{auth}"
        );
        assert!(request.headers()["authorization"].is_sensitive());
        assert!(request.headers()["x-amz-security-token"].is_sensitive());
        assert_eq!(request.headers()["x-amz-date"], "20231114T221320Z");
        assert!(!request.headers().contains_key("x-amz-content-sha256"));
    }

    #[test]
    fn unsigned_payload_is_announced_and_signed() {
        let mut request = amp_request();
        let summary = Signer::new("aps", "us-east-1")
            .sign(
                &mut request,
                &Payload::Unsigned,
                &identity(None),
                SystemTime::now(),
            )
            .expect("signs");
        assert_eq!(
            request.headers()["x-amz-content-sha256"],
            "UNSIGNED-PAYLOAD"
        );
        assert_eq!(
            summary.signed_headers,
            "accept;host;x-amz-content-sha256;x-amz-date"
        );
    }

    #[test]
    fn signature_changes_with_payload_hash() {
        let sign_with = |hash: &str| {
            let mut request = amp_request();
            Signer::new("aps", "us-east-1")
                .sign(
                    &mut request,
                    &Payload::Sha256(hash.into()),
                    &identity(None),
                    UNIX_EPOCH,
                )
                .expect("signs");
            request.headers()["authorization"].clone()
        };
        assert_ne!(sign_with(EMPTY_SHA256), sign_with(&"0".repeat(64)));
    }

    #[test]
    fn opaque_header_values_are_forwarded_unsigned() {
        let mut request = amp_request();
        request.headers_mut().insert(
            "x-opaque",
            HeaderValue::from_bytes(b"caf\xe9").expect("obs-text is legal"),
        );
        let summary = Signer::new("aps", "us-east-1")
            .sign(
                &mut request,
                &Payload::Sha256(EMPTY_SHA256.into()),
                &identity(None),
                UNIX_EPOCH,
            )
            .expect("signs");
        assert!(!summary.signed_headers.contains("x-opaque"));
        assert!(request.headers().contains_key("x-opaque"));
    }
}
