//! Golden-file tests of the proxy's own signer, `sigv4_proxy::signing::Signer`.
//!
//! 1. The official AWS SigV4 test suite (`tests/data/aws-sigv4-test-suite/v4`, vendored from
//!    the aws-sigv4 1.6.4 crate; see the NOTICE there), header-signing vectors only: the
//!    proxy never presigns. Run in `PercentEncodingMode::Single`, which the suite assumes,
//!    every vector must match. The two old-format extras (`double-url-encode`,
//!    `double-encode-path`) are double-encoding vectors and run in `Double`.
//! 2. The same vectors in `PercentEncodingMode::Double`, the mode the proxy uses for `aps`:
//!    exactly the vectors whose path has a percent-escape once it is on the wire may differ.
//! 3. AMP-shaped golden cases (`tests/data/amp-golden`), whose expected `Authorization`
//!    values were computed by botocore, an independent signer (see `generate.py` there),
//!    signed with `Signer::new`, the exact constructor the proxy uses.
//!
//! Everything goes through `Signer::sign`, so the header policy (`headers::is_signable`)
//! is part of what is tested: a request header the policy refuses to sign is left out.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SessionTokenMode, SignatureLocation, SigningSettings,
    UriPathNormalizationMode,
};
use aws_smithy_runtime_api::client::identity::Identity;
use http::{HeaderName, HeaderValue, Request};
use sha2::{Digest, Sha256};
use sigv4_proxy::signing::{Payload, Signer};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn suite_dir() -> PathBuf {
    data_dir().join("aws-sigv4-test-suite/v4")
}

// ---------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------

/// A request as written in the suite's `request.txt`.
#[derive(Debug)]
struct RawRequest {
    method: String,
    /// `path?query`, percent-encoded where the file has raw spaces or non-ASCII bytes.
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawRequest {
    /// The first `Host` header: the suite gives the authority only there.
    fn host(&self) -> &str {
        self.headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("host"))
            .map(|(_, value)| value.as_str())
            .expect("request has a Host header")
    }

    /// The path part of the (encoded) target.
    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// An `http::Request` as the proxy would hand it to the signer: absolute `https` URI
    /// whose authority is the Host header, and every header kept (Host included).
    fn to_http(&self) -> Request<Vec<u8>> {
        let uri = format!("https://{}{}", self.host(), self.target);
        let mut builder = Request::builder().method(self.method.as_str()).uri(&uri);
        for (name, value) in &self.headers {
            builder = builder.header(
                HeaderName::from_bytes(name.as_bytes()).expect("valid header name"),
                HeaderValue::from_str(value).expect("valid header value"),
            );
        }
        builder
            .body(self.body.clone())
            .unwrap_or_else(|e| panic!("cannot build a request for {uri}: {e}"))
    }

    fn payload(&self) -> Payload {
        Payload::Sha256(hex::encode(Sha256::digest(&self.body)))
    }
}

/// Parses the suite's request format: `METHOD TARGET HTTP/1.1`, then `Name:value` lines,
/// where a line starting with whitespace continues the previous value (folded with one
/// space, as `get-header-value-multiline`'s canonical request `value1 value2 value3`
/// expects), then an optional blank line and the body, taken byte for byte.
fn parse_request(bytes: &[u8]) -> RawRequest {
    let (head, body) = match find(bytes, b"\n\n") {
        Some(at) => (&bytes[..at], bytes[at + 2..].to_vec()),
        None => (bytes, Vec::new()),
    };
    let head = std::str::from_utf8(head).expect("request head is UTF-8");
    let (method, target, headers) = parse_head(head);
    RawRequest {
        method,
        target,
        headers,
        body,
    }
}

fn parse_head(head: &str) -> (String, String, Vec<(String, String)>) {
    let mut lines = head.lines();
    let request_line = lines.next().expect("request line");
    let (method, rest) = request_line.split_once(' ').expect("METHOD TARGET VERSION");
    // The target itself may contain spaces (`get-space-unnormalized`).
    let (target, version) = rest.rsplit_once(' ').expect("METHOD TARGET VERSION");
    assert_eq!(version, "HTTP/1.1", "request line {request_line:?}");

    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            let (_, value) = headers.last_mut().expect("continuation follows a header");
            value.push(' ');
            value.push_str(line.trim());
        } else {
            let (name, value) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("header line {line:?}"));
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    (method.to_owned(), encode_target(target), headers)
}

/// Percent-encodes the bytes `http::Uri` refuses (raw space, non-ASCII, controls and a few
/// delimiters), leaving existing escapes alone: the suite writes `/example space/` and
/// `/ሴ` raw and expects them signed as `%20` and `%E1%88%B4`.
fn encode_target(target: &str) -> String {
    let mut out = String::with_capacity(target.len());
    for &byte in target.as_bytes() {
        if byte.is_ascii_graphic() && !matches!(byte, b'"' | b'<' | b'>' | b'\\' | b'^' | b'`') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Parses the fixed form `YYYY-MM-DDTHH:MM:SSZ`.
fn parse_timestamp(text: &str) -> SystemTime {
    let b = text.as_bytes();
    let well_formed = b.len() == 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z';
    assert!(
        well_formed,
        "timestamp {text:?} is not YYYY-MM-DDTHH:MM:SSZ"
    );
    let num = |range: std::ops::Range<usize>| -> i64 {
        text[range]
            .parse()
            .unwrap_or_else(|_| panic!("timestamp {text:?}"))
    };
    let days = days_from_civil(num(0..4), num(5..7), num(8..10));
    let secs = days * 86_400 + num(11..13) * 3_600 + num(14..16) * 60 + num(17..19);
    UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).expect("after 1970"))
}

/// Days since 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The value of the first `name:` line of a signed-request file (case-insensitive name).
fn header_in(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

fn signature_of(authorization: &str) -> &str {
    authorization
        .rsplit_once("Signature=")
        .map(|(_, sig)| sig.trim())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// Official suite
// ---------------------------------------------------------------------------------------

/// One header-signing vector of the official suite.
#[derive(Debug)]
struct Vector {
    name: String,
    request: RawRequest,
    identity: Identity,
    time: SystemTime,
    region: String,
    service: String,
    settings: SigningSettings,
    /// `Authorization` from `header-signed-request.txt`.
    expected_authorization: String,
    /// `X-Amz-Date`, `X-Amz-Security-Token`, `x-amz-content-sha256` from the same file.
    expected_added: Vec<(&'static str, String)>,
}

const ADDED_BY_SIGNER: [&str; 3] = ["x-amz-date", "x-amz-security-token", "x-amz-content-sha256"];

fn read_to_string(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every case directory with a `context.json`, sorted by name.
fn context_vectors(mode: PercentEncodingMode) -> Vec<Vector> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(suite_dir())
        .expect("suite directory is vendored")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|dir| dir.join("context.json").is_file())
        .collect();
    dirs.sort();
    dirs.iter().map(|dir| context_vector(dir, mode)).collect()
}

fn context_vector(dir: &Path, mode: PercentEncodingMode) -> Vector {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("case name")
        .to_owned();
    let context: serde_json::Value =
        serde_json::from_str(&read_to_string(&dir.join("context.json"))).expect("context.json");
    let text = |key: &str| -> String {
        context[key]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: context.{key}"))
            .to_owned()
    };
    let flag = |key: &str| context[key].as_bool().unwrap_or(false);
    let credentials = &context["credentials"];
    let identity: Identity = Credentials::new(
        credentials["access_key_id"]
            .as_str()
            .expect("access_key_id"),
        credentials["secret_access_key"]
            .as_str()
            .expect("secret_access_key"),
        credentials["token"].as_str().map(str::to_owned),
        None,
        "suite",
    )
    .into();

    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = mode;
    settings.signature_location = SignatureLocation::Headers;
    settings.uri_path_normalization_mode = if flag("normalize") {
        UriPathNormalizationMode::Enabled
    } else {
        UriPathNormalizationMode::Disabled
    };
    if flag("sign_body") {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    if flag("omit_session_token") {
        settings.session_token_mode = SessionTokenMode::Exclude;
    }

    let request = parse_request(&fs::read(dir.join("request.txt")).expect("request.txt"));
    let signed = read_to_string(&dir.join("header-signed-request.txt"));
    let expected_authorization =
        header_in(&signed, "authorization").expect("signed request has Authorization");
    // The suite's two expectations must agree with each other.
    let signature_file = read_to_string(&dir.join("header-signature.txt"));
    assert_eq!(
        signature_of(&expected_authorization),
        signature_file.trim(),
        "{name}: header-signed-request.txt and header-signature.txt disagree"
    );
    let (time, region, service) = (
        parse_timestamp(&text("timestamp")),
        text("region"),
        text("service"),
    );
    Vector {
        expected_added: expected_added(&signed),
        name,
        request,
        identity,
        time,
        region,
        service,
        settings,
        expected_authorization,
    }
}

fn expected_added(signed_request: &str) -> Vec<(&'static str, String)> {
    ADDED_BY_SIGNER
        .iter()
        .filter_map(|&name| Some((name, header_in(signed_request, name)?)))
        .collect()
}

/// What signing one vector produced.
#[derive(Debug)]
struct Outcome {
    authorization: String,
    /// Mismatches in the other headers the signer adds (`x-amz-date`, ...).
    added_mismatches: Vec<String>,
}

impl Outcome {
    fn matches(&self, vector: &Vector) -> bool {
        self.authorization == vector.expected_authorization && self.added_mismatches.is_empty()
    }
}

fn sign_vector(vector: &Vector) -> Outcome {
    let mut request = vector.request.to_http();
    let payload = vector.request.payload();
    Signer::with_settings(&vector.service, &vector.region, vector.settings.clone())
        .sign(&mut request, &payload, &vector.identity, vector.time)
        .unwrap_or_else(|e| panic!("{}: signing failed: {e}", vector.name));
    let authorization = request.headers()["authorization"]
        .to_str()
        .expect("ASCII authorization")
        .to_owned();
    let added_mismatches = vector
        .expected_added
        .iter()
        .filter_map(|(name, expected)| {
            let got = request.headers().get(*name).and_then(|v| v.to_str().ok());
            (got != Some(expected.as_str()))
                .then(|| format!("{name}: expected {expected:?}, got {got:?}"))
        })
        .collect();
    Outcome {
        authorization,
        added_mismatches,
    }
}

/// Signed-header names the suite expects but our header policy refuses to sign.
fn policy_conflicts(vector: &Vector) -> Vec<String> {
    let signed = vector
        .expected_authorization
        .split("SignedHeaders=")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_default();
    signed
        .split(';')
        .filter(|name| !ADDED_BY_SIGNER.contains(name))
        .filter(|name| {
            let name = HeaderName::from_bytes(name.as_bytes()).expect("header name");
            !sigv4_proxy::headers::is_signable(&name)
        })
        .map(str::to_owned)
        .collect()
}

fn describe_failure(vector: &Vector, outcome: &Outcome) -> String {
    format!(
        "{}:\n  expected {}\n  got      {}{}",
        vector.name,
        vector.expected_authorization,
        outcome.authorization,
        outcome
            .added_mismatches
            .iter()
            .map(|m| format!("\n  {m}"))
            .collect::<String>()
    )
}

#[test]
fn official_suite_single_encoding_header_vectors() {
    let vectors = context_vectors(PercentEncodingMode::Single);
    assert_eq!(
        vectors.len(),
        38,
        "the vendored suite should have 38 cases with a context.json"
    );
    let mut failures = Vec::new();
    let mut conflicts = Vec::new();
    for vector in &vectors {
        let conflict = policy_conflicts(vector);
        if !conflict.is_empty() {
            conflicts.push(format!("{}: {}", vector.name, conflict.join(", ")));
        }
        let outcome = sign_vector(vector);
        if !outcome.matches(vector) {
            failures.push(describe_failure(vector, &outcome));
        }
    }
    let passed = vectors.len() - failures.len();
    eprintln!(
        "official SigV4 suite, header signing, PercentEncodingMode::Single: {passed}/{} passed",
        vectors.len()
    );
    assert!(
        conflicts.is_empty(),
        "vectors sign headers that headers::is_signable refuses:\n{}",
        conflicts.join("\n")
    );
    assert!(
        failures.is_empty(),
        "{passed}/{} Single-mode header vectors passed; failures:\n{}",
        vectors.len(),
        failures.join("\n")
    );
}

/// The old-format extras have no `context.json`. Their parameters are those of the aws-sigv4
/// unit tests that use them (`test_sign_url_escape` for `double-encode-path`, which signs
/// with `Credentials::for_tests()`), with default settings: double encoding, normalised
/// path. Their `header-canonical-request.txt` files were made with other parameters
/// (region `test-region`, time 2021-05-11), so only the signed requests are compared.
#[test]
fn official_suite_double_encode_extras() {
    let extras = [
        (
            "double-url-encode",
            ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            "2021-05-11T15:40:45Z",
            "us-east-2",
            "lambda",
        ),
        (
            "double-encode-path",
            ("ANOTREAL", "notrealrnrELgWzOk3IfjzDKtFBhDby"),
            "2015-08-30T12:36:00Z",
            "us-east-1",
            "service",
        ),
    ];
    let mut failures = Vec::new();
    for (name, (akid, secret), timestamp, region, service) in extras {
        let dir = suite_dir().join(name);
        assert!(
            !dir.join("context.json").exists(),
            "{name} now has a context.json; run it with the others"
        );
        let signed = read_to_string(&dir.join("header-signed-request.txt"));
        let mut vector = Vector {
            name: name.to_owned(),
            request: parse_request(&fs::read(dir.join("request.txt")).expect("request.txt")),
            identity: Credentials::new(akid, secret, None, None, "suite").into(),
            time: parse_timestamp(timestamp),
            region: region.to_owned(),
            service: service.to_owned(),
            settings: SigningSettings::default(),
            expected_authorization: header_in(&signed, "authorization")
                .expect("signed request has Authorization"),
            expected_added: expected_added(&signed),
        };
        assert_eq!(
            vector.settings.percent_encoding_mode,
            PercentEncodingMode::Double
        );
        let outcome = sign_vector(&vector);
        if !outcome.matches(&vector) {
            failures.push(describe_failure(&vector, &outcome));
        }
        // They really are about double encoding: single encoding gives another signature.
        vector.settings.percent_encoding_mode = PercentEncodingMode::Single;
        let single = sign_vector(&vector);
        assert_ne!(
            single.authorization, vector.expected_authorization,
            "{name} passes in Single mode too, so it does not test double encoding"
        );
    }
    eprintln!(
        "official SigV4 suite, old-format double-encoding extras, PercentEncodingMode::Double: \
         {}/{} passed",
        extras.len() - failures.len(),
        extras.len()
    );
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}

/// In `Double` mode (what the proxy uses for `aps`) every `%` of the wire path is encoded
/// again, so a vector can only differ if its path (as sent) has a percent-escape.
#[test]
fn official_suite_in_double_mode_differs_only_for_escaped_paths() {
    let vectors = context_vectors(PercentEncodingMode::Double);
    let mut matched = Vec::new();
    let mut differed = BTreeSet::new();
    for vector in &vectors {
        if sign_vector(vector).matches(vector) {
            matched.push(vector.name.clone());
        } else {
            differed.insert(vector.name.clone());
        }
    }
    let escaped_paths: BTreeSet<String> = vectors
        .iter()
        .filter(|v| v.request.path().contains('%'))
        .map(|v| v.name.clone())
        .collect();
    eprintln!(
        "official SigV4 suite, header signing, PercentEncodingMode::Double: {}/{} match, {} \
         differ: {differed:?}",
        matched.len(),
        vectors.len(),
        differed.len()
    );
    assert_eq!(
        differed, escaped_paths,
        "exactly the vectors whose path has a percent-escape should differ in Double mode"
    );
    let expected: BTreeSet<String> = ["get-space-normalized", "get-space-unnormalized", "get-utf8"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(differed, expected);
}

// ---------------------------------------------------------------------------------------
// AMP-shaped golden cases computed by botocore
// ---------------------------------------------------------------------------------------

/// One `tests/data/amp-golden/*.golden` file (format described in its header and in
/// `generate.py`).
#[derive(Debug)]
struct GoldenCase {
    name: String,
    fields: Vec<(String, String)>,
    request: RawRequest,
}

impl GoldenCase {
    fn field(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn required(&self, key: &str) -> &str {
        self.field(key)
            .unwrap_or_else(|| panic!("{}: missing `{key}:`", self.name))
    }
}

fn parse_golden(name: &str, text: &str) -> GoldenCase {
    let mut fields = Vec::new();
    let mut request_lines: Option<Vec<&str>> = None;
    for line in text.lines() {
        if let Some(lines) = request_lines.as_mut() {
            if line.starts_with("--- ") {
                break;
            }
            lines.push(line);
        } else if line == "--- request" {
            request_lines = Some(Vec::new());
        } else if line.starts_with('#') || line.trim().is_empty() {
            continue;
        } else {
            let (key, value) = line
                .split_once(':')
                .unwrap_or_else(|| panic!("{name}: line {line:?}"));
            fields.push((key.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let head = request_lines
        .unwrap_or_else(|| panic!("{name}: no `--- request` section"))
        .join("\n");
    let (method, target, headers) = parse_head(&head);
    let mut case = GoldenCase {
        name: name.to_owned(),
        fields,
        request: RawRequest {
            method,
            target,
            headers,
            body: Vec::new(),
        },
    };
    case.request.body = hex::decode(case.field("body_hex").unwrap_or_default())
        .unwrap_or_else(|e| panic!("{name}: body_hex: {e}"));
    case
}

#[test]
fn amp_golden_cases_match_botocore() {
    let dir = data_dir().join("amp-golden");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("amp-golden directory")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "golden"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 4,
        "expected the AMP golden cases in {}",
        dir.display()
    );

    let mut failures = Vec::new();
    for file in &files {
        let name = file
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("case name");
        let case = parse_golden(name, &read_to_string(file));
        let identity: Identity = Credentials::new(
            case.required("access_key_id"),
            case.required("secret_access_key"),
            case.field("session_token").map(str::to_owned),
            None,
            "amp-golden",
        )
        .into();
        let payload = match case.field("payload") {
            Some("unsigned") => Payload::Unsigned,
            None | Some("sha256") => case.request.payload(),
            Some(other) => panic!("{name}: payload {other:?}"),
        };
        let mut request = case.request.to_http();
        let summary = Signer::new(case.required("service"), case.required("region"))
            .sign(
                &mut request,
                &payload,
                &identity,
                parse_timestamp(case.required("timestamp")),
            )
            .unwrap_or_else(|e| panic!("{name}: signing failed: {e}"));
        let got = request.headers()["authorization"]
            .to_str()
            .expect("ASCII authorization");
        let expected = case.required("authorization");
        let token = request
            .headers()
            .get("x-amz-security-token")
            .and_then(|v| v.to_str().ok());
        if got != expected {
            failures.push(format!(
                "{name}:\n  botocore {expected}\n  ours     {got}\n  (botocore's canonical \
                 request is in {name}.golden; ours signed headers {})",
                summary.signed_headers
            ));
        } else if token != case.field("session_token") {
            failures.push(format!("{name}: x-amz-security-token header is {token:?}"));
        }
    }
    eprintln!(
        "AMP golden cases (expected values from botocore SigV4Auth): {}/{} agree",
        files.len() - failures.len(),
        files.len()
    );
    assert!(
        failures.is_empty(),
        "disagreements:\n{}",
        failures.join("\n")
    );
}

#[test]
fn timestamp_parser() {
    assert_eq!(
        parse_timestamp("2015-08-30T12:36:00Z"),
        UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    );
    assert_eq!(
        parse_timestamp("2021-05-11T15:40:45Z"),
        UNIX_EPOCH + Duration::from_secs(1_620_747_645)
    );
    assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), UNIX_EPOCH);
    assert_eq!(
        parse_timestamp("2024-02-29T23:59:59Z"),
        UNIX_EPOCH + Duration::from_secs(1_709_251_199)
    );
}
