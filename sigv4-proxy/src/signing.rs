//! SigV4 signing of an outbound request.
//!
//! The request handed in is final: its URI is absolute and already in canonical encoding
//! (see `target`), and its headers are exactly what goes on the wire (see `headers`). We sign
//! every header that `headers::is_signable` allows and whose value is visible ASCII; the
//! rest are forwarded unsigned, which SigV4 permits.
//!
//! The canonical request is built here, in one buffer, rather than by `aws_sigv4::sign`:
//! that function re-parses the URI, copies every header into a new map, formats through
//! `fmt` and derives the signing key (four HMACs) on every call, which made signing the
//! largest user-space cost of a proxied query. The key only changes with the date and the
//! credentials, so it is derived once per day and secret and kept. The HMAC itself is still
//! `aws_sigv4`'s. Correctness is pinned by the official AWS test suite and by signatures
//! computed with botocore (`tests/sigv4_vectors.rs`), and end to end by a botocore verifier.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SessionTokenMode, SignatureLocation, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::{HeaderName, HeaderValue, Request};
use sha2::{Digest, Sha256};

use crate::headers::is_signable;

/// What the signature says about the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Lowercase hex SHA-256 of the exact body bytes sent: what every AMP client uses.
    Sha256(String),
    /// `UNSIGNED-PAYLOAD`, sent as `x-amz-content-sha256` so the server knows.
    Unsigned,
}

impl Payload {
    fn as_str(&self) -> &str {
        match self {
            Self::Sha256(hex) => hex,
            Self::Unsigned => "UNSIGNED-PAYLOAD",
        }
    }
}

/// Signing failed; the request never left the proxy.
#[derive(Debug, thiserror::Error)]
#[error("could not sign the request: {0}")]
pub struct SigningError(#[source] Box<dyn std::error::Error + Send + Sync>);

impl SigningError {
    fn new(reason: &str) -> Self {
        Self(reason.into())
    }
}

/// The parts of a signature worth logging: never the signature or credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureSummary {
    pub signed_headers: String,
}

/// Signs requests for one service and region with fixed settings.
#[derive(Clone)]
pub struct Signer {
    service: String,
    region: String,
    settings: SigningSettings,
    /// The signing key of the last (date, secret) signed with; see `signing_key`.
    key: Arc<ArcSwapOption<CachedKey>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The cached key is as secret as the credentials: never printed.
        f.debug_struct("Signer")
            .field("service", &self.service)
            .field("region", &self.region)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// A derived SigV4 signing key and what it was derived from (region and service are the
/// signer's own). The secret is kept to compare against, since one access key id could in
/// principle come back with another secret.
struct CachedKey {
    date: [u8; 8],
    secret: String,
    key: Vec<u8>,
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

    /// Full control over the settings, for the official test vectors. Only header signing
    /// is supported (the proxy never presigns URLs).
    pub fn with_settings(
        service: impl Into<String>,
        region: impl Into<String>,
        settings: SigningSettings,
    ) -> Self {
        Self {
            service: service.into(),
            region: region.into(),
            settings,
            key: Arc::new(ArcSwapOption::empty()),
        }
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// Signs `request` in place: adds `x-amz-date`, `authorization`, the session token when
    /// there is one and, for unsigned payloads (or `PayloadChecksumKind::XAmzSha256`),
    /// `x-amz-content-sha256`.
    pub fn sign<B>(
        &self,
        request: &mut Request<B>,
        payload: &Payload,
        identity: &Identity,
        time: SystemTime,
    ) -> Result<SignatureSummary, SigningError> {
        if self.settings.signature_location != SignatureLocation::Headers {
            return Err(SigningError::new("only header signing is supported"));
        }
        let credentials = identity
            .data::<Credentials>()
            .ok_or_else(|| SigningError::new("the identity holds no AWS credentials"))?;
        // Without the header the server would hash an unsigned body itself and disagree.
        let announce_payload = matches!(payload, Payload::Unsigned)
            || self.settings.payload_checksum_kind == PayloadChecksumKind::XAmzSha256;
        let token_name = self
            .settings
            .session_token_name_override
            .unwrap_or("x-amz-security-token");
        let stamp = Timestamp::of(time);

        // Headers that go into the signature, sorted by name; equal names keep their order.
        let mut signed: Vec<(&str, &[u8])> = Vec::with_capacity(request.headers().len() + 4);
        for (name, value) in request.headers() {
            if is_signable(name) && value.to_str().is_ok() && !self.excluded(name.as_str()) {
                signed.push((name.as_str(), value.as_bytes()));
            }
        }
        let derived_host;
        if !request.headers().contains_key(http::header::HOST) && !self.excluded("host") {
            derived_host = host_of(request.uri())
                .ok_or_else(|| SigningError::new("the request URI has no host"))?;
            signed.push(("host", derived_host.as_bytes()));
        }
        if !self.excluded("x-amz-date") {
            signed.push(("x-amz-date", stamp.date_time.as_bytes()));
        }
        if let Some(token) = credentials.session_token()
            && self.settings.session_token_mode == SessionTokenMode::Include
            && !self.excluded(token_name)
        {
            signed.push((token_name, token.as_bytes()));
        }
        if announce_payload && !self.excluded("x-amz-content-sha256") {
            signed.push(("x-amz-content-sha256", payload.as_str().as_bytes()));
        }
        signed.sort_by(|a, b| a.0.cmp(b.0));

        let mut signed_headers = String::with_capacity(signed.len() * 16);
        for (i, (name, _)) in signed.iter().enumerate() {
            if i == 0 || signed[i - 1].0 != *name {
                if !signed_headers.is_empty() {
                    signed_headers.push(';');
                }
                signed_headers.push_str(name);
            }
        }

        let uri = request.uri();
        let query = uri.query().unwrap_or_default();
        let mut creq = Vec::with_capacity(512 + 2 * query.len());
        creq.extend_from_slice(request.method().as_str().as_bytes());
        creq.push(b'\n');
        self.push_canonical_path(&mut creq, uri.path());
        creq.push(b'\n');
        push_canonical_query(&mut creq, query);
        creq.push(b'\n');
        for (i, (name, value)) in signed.iter().enumerate() {
            if i > 0 && signed[i - 1].0 == *name {
                // Repeated header: its values are joined with commas on one line.
                creq.pop();
                creq.push(b',');
            } else {
                creq.extend_from_slice(name.as_bytes());
                creq.push(b':');
            }
            push_trimmed(&mut creq, value);
            creq.push(b'\n');
        }
        creq.push(b'\n');
        creq.extend_from_slice(signed_headers.as_bytes());
        creq.push(b'\n');
        creq.extend_from_slice(payload.as_str().as_bytes());

        // The string to sign reuses the buffer: the canonical request is only needed hashed.
        let creq_hash = Sha256::digest(&creq);
        let scope_len = 8 + 1 + self.region.len() + 1 + self.service.len() + "/aws4_request".len();
        let mut sts = creq;
        sts.clear();
        sts.extend_from_slice(b"AWS4-HMAC-SHA256\n");
        sts.extend_from_slice(stamp.date_time.as_bytes());
        sts.push(b'\n');
        let scope_start = sts.len();
        sts.extend_from_slice(&stamp.date_time.as_bytes()[..8]);
        for part in [
            b"/".as_slice(),
            self.region.as_bytes(),
            b"/",
            self.service.as_bytes(),
        ] {
            sts.extend_from_slice(part);
        }
        sts.extend_from_slice(b"/aws4_request\n");
        push_hex(&mut sts, &creq_hash);
        let signature = self.with_signing_key(credentials.secret_access_key(), &stamp, |key| {
            v4::calculate_signature(key, &sts)
        });
        let scope = std::str::from_utf8(&sts[scope_start..scope_start + scope_len])
            .map_err(|_| SigningError::new("region or service is not UTF-8"))?;

        let access_key_id = credentials.access_key_id();
        let mut authorization = String::with_capacity(
            64 + access_key_id.len() + scope.len() + signed_headers.len() + signature.len(),
        );
        for part in [
            "AWS4-HMAC-SHA256 Credential=",
            access_key_id,
            "/",
            scope,
            ", SignedHeaders=",
            &signed_headers,
            ", Signature=",
            &signature,
        ] {
            authorization.push_str(part);
        }

        let headers = request.headers_mut();
        headers.insert(
            HeaderName::from_static("x-amz-date"),
            HeaderValue::from_str(&stamp.date_time).map_err(|e| SigningError(e.into()))?,
        );
        let mut value = HeaderValue::try_from(authorization).map_err(|e| SigningError(e.into()))?;
        value.set_sensitive(true);
        headers.insert(http::header::AUTHORIZATION, value);
        if announce_payload {
            headers.insert(
                HeaderName::from_static("x-amz-content-sha256"),
                HeaderValue::from_str(payload.as_str()).map_err(|e| SigningError(e.into()))?,
            );
        }
        if let Some(token) = credentials.session_token() {
            let mut value = HeaderValue::from_str(token).map_err(|e| SigningError(e.into()))?;
            value.set_sensitive(true);
            let name = HeaderName::from_bytes(token_name.as_bytes())
                .map_err(|e| SigningError(e.into()))?;
            headers.insert(name, value);
        }
        Ok(SignatureSummary { signed_headers })
    }

    fn excluded(&self, name: &str) -> bool {
        self.settings
            .excluded_headers
            .as_ref()
            .is_some_and(|excluded| excluded.iter().any(|e| e.as_ref() == name))
    }

    /// Runs `f` with the signing key for `stamp`'s date and `secret`, deriving it only when
    /// the date or the credentials changed since the last request.
    fn with_signing_key<T>(
        &self,
        secret: &str,
        stamp: &Timestamp,
        f: impl FnOnce(&[u8]) -> T,
    ) -> T {
        let mut date = [0u8; 8];
        date.copy_from_slice(&stamp.date_time.as_bytes()[..8]);
        let cached = self.key.load();
        if let Some(cached) = cached.as_ref()
            && cached.date == date
            && cached.secret == secret
        {
            return f(&cached.key);
        }
        drop(cached);
        let key = v4::generate_signing_key(secret, stamp.time, &self.region, &self.service)
            .as_ref()
            .to_vec();
        let result = f(&key);
        self.key.store(Some(Arc::new(CachedKey {
            date,
            secret: secret.to_owned(),
            key,
        })));
        result
    }

    /// The canonical URI: the path as sent, optionally with dot segments and empty segments
    /// removed, and in `Double` mode with every byte but unreserved ones and `/` escaped
    /// (so an escape on the wire, `%2F`, is signed as `%252F`).
    fn push_canonical_path(&self, out: &mut Vec<u8>, path: &str) {
        let normalized;
        let path = match self.settings.uri_path_normalization_mode {
            UriPathNormalizationMode::Enabled => {
                normalized = normalize_path(path);
                normalized.as_str()
            }
            _ => path,
        };
        match self.settings.percent_encoding_mode {
            PercentEncodingMode::Single => out.extend_from_slice(path.as_bytes()),
            _ => {
                for &byte in path.as_bytes() {
                    if byte == b'/' || is_unreserved(byte) {
                        out.push(byte);
                    } else {
                        push_escape(out, byte);
                    }
                }
            }
        }
    }
}

/// `x-amz-date` (`YYYYMMDDTHHMMSSZ`) of a time, and the time itself for key derivation.
struct Timestamp {
    time: SystemTime,
    date_time: String,
}

impl Timestamp {
    fn of(time: SystemTime) -> Self {
        // Times before 1970 are not something a proxy signs with; they become the epoch.
        let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let (year, month, day) = civil_from_days((secs / 86_400) as i64);
        let of_day = secs % 86_400;
        let mut date_time = String::with_capacity(16);
        push_digits(&mut date_time, year as u64, 4);
        push_digits(&mut date_time, month, 2);
        push_digits(&mut date_time, day, 2);
        date_time.push('T');
        push_digits(&mut date_time, of_day / 3600, 2);
        push_digits(&mut date_time, of_day % 3600 / 60, 2);
        push_digits(&mut date_time, of_day % 60, 2);
        date_time.push('Z');
        Self { time, date_time }
    }
}

fn push_digits(out: &mut String, value: u64, width: u32) {
    for place in (0..width).rev() {
        let digit = (value / 10u64.pow(place)) % 10;
        out.push(char::from(b'0' + digit as u8));
    }
}

/// Proleptic Gregorian (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u64, u64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u64;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The Host a client would send for `uri`: the authority without a default port.
fn host_of(uri: &http::Uri) -> Option<String> {
    let authority = uri.authority()?;
    let default_port = matches!(
        (uri.scheme_str(), authority.port_u16()),
        (Some("http"), Some(80)) | (Some("https"), Some(443))
    );
    Some(if default_port {
        authority.host().to_owned()
    } else {
        authority.as_str().to_owned()
    })
}

/// RFC 3986 §5.2.4 dot-segment removal, also dropping empty segments, keeping a trailing
/// slash: the normalisation every AWS SDK applies to non-S3 paths.
fn normalize_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 1);
    if !path.contains('.') && !path.contains("//") {
        if !path.starts_with('/') {
            out.push('/');
        }
        out.push_str(path);
        return out;
    }
    let mut segments: Vec<&str> = Vec::with_capacity(8);
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    let ends_in_dir = ["/", "/.", "/./", "/..", "/../"]
        .iter()
        .any(|end| path.ends_with(end));
    if out.is_empty() || (ends_in_dir && !out.ends_with('/')) {
        out.push('/');
    }
    out
}

/// The canonical query: every `key=value` pair form-decoded (`+` is a space, invalid UTF-8
/// becomes U+FFFD), re-encoded with only unreserved bytes left as they are, and sorted by
/// encoded key, then value.
fn push_canonical_query(out: &mut Vec<u8>, query: &str) {
    if query.is_empty() {
        return;
    }
    let mut pairs: Vec<(Component<'_>, Component<'_>)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (canonical_component(key), canonical_component(value))
        })
        .collect();
    pairs.sort_unstable();
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(key);
        out.push(b'=');
        out.extend_from_slice(value);
    }
}

/// One encoded key or value of the canonical query.
type Component<'a> = Cow<'a, [u8]>;

fn canonical_component(raw: &str) -> Component<'_> {
    // What the proxy sends is already canonical (see `target`): unreserved bytes and
    // uppercase escapes of everything else. That decodes and re-encodes to itself.
    if raw.bytes().all(is_unreserved) {
        return Cow::Borrowed(raw.as_bytes());
    }
    let mut decoded = Vec::with_capacity(raw.len());
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => decoded.push(b' '),
            // A `%` not followed by two hex digits stands for itself, as in form decoding.
            b'%' => match bytes.get(i + 1..i + 3).and_then(|p| hex_pair(p[0], p[1])) {
                Some(byte) => {
                    decoded.push(byte);
                    i += 2;
                }
                None => decoded.push(b'%'),
            },
            other => decoded.push(other),
        }
        i += 1;
    }
    let text = String::from_utf8_lossy(&decoded);
    let mut encoded = Vec::with_capacity(text.len() * 3);
    for &byte in text.as_bytes() {
        if is_unreserved(byte) {
            encoded.push(byte);
        } else {
            push_escape(&mut encoded, byte);
        }
    }
    Cow::Owned(encoded)
}

fn hex_pair(hi: u8, lo: u8) -> Option<u8> {
    let digit = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    Some(digit(hi)? << 4 | digit(lo)?)
}

/// Header value with leading and trailing spaces removed and runs of spaces collapsed to
/// one (spaces only, not other whitespace: what the SDKs do).
fn push_trimmed(out: &mut Vec<u8>, value: &[u8]) {
    let start = value.iter().position(|b| *b != b' ').unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| *b != b' ')
        .map_or(start, |i| i + 1);
    let mut previous_space = false;
    for &byte in &value[start..end] {
        if byte == b' ' && previous_space {
            continue;
        }
        previous_space = byte == b' ';
        out.push(byte);
    }
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

fn push_escape(out: &mut Vec<u8>, byte: u8) {
    out.extend_from_slice(&[
        b'%',
        HEX_UPPER[usize::from(byte >> 4)],
        HEX_UPPER[usize::from(byte & 0xf)],
    ]);
}

fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    for &byte in bytes {
        out.push(HEX_LOWER[usize::from(byte >> 4)]);
        out.push(HEX_LOWER[usize::from(byte & 0xf)]);
    }
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~')
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

    #[test]
    fn cached_signing_key_follows_the_date_and_the_secret() {
        let other_secret: Identity =
            Credentials::new("AKIDEXAMPLE", "another-secret", None, None, "test").into();
        let day = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let next_day = day + Duration::from_secs(86_400);
        let authorization = |signer: &Signer, identity: &Identity, time| {
            let mut request = amp_request();
            signer
                .sign(&mut request, &Payload::Unsigned, identity, time)
                .expect("signs");
            request.headers()["authorization"].clone()
        };
        // One long-lived signer (whose key cache is exercised) against a fresh one per case.
        let reused = Signer::new("aps", "us-east-1");
        for (who, time) in [
            (identity(None), day),
            (identity(None), day),
            (other_secret.clone(), day),
            (identity(None), next_day),
            (other_secret, next_day),
        ] {
            assert_eq!(
                authorization(&reused, &who, time),
                authorization(&Signer::new("aps", "us-east-1"), &who, time)
            );
        }
    }

    #[test]
    fn timestamps_across_leap_days_and_centuries() {
        for (secs, expected) in [
            (0, "19700101T000000Z"),
            (951_782_400, "20000229T000000Z"),
            (1_709_251_199, "20240229T235959Z"),
            (4_107_542_400, "21000301T000000Z"),
        ] {
            let stamp = Timestamp::of(UNIX_EPOCH + Duration::from_secs(secs));
            assert_eq!(stamp.date_time, expected, "{secs}");
        }
    }
}
