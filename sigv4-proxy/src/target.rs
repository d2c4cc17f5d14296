//! The request target sent upstream: a cleaned path and a strictly encoded query string.
//!
//! SigV4 signs a canonical form of the path and query. If the bytes on the wire differ from
//! what was signed (a `+` the server reads differently, a `//` one side collapses), the
//! upstream rejects the signature. So we rewrite the target into exactly the canonical
//! encoding before signing, and send that.

/// Why a client's request target cannot be forwarded faithfully.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("query parameter {index} has a malformed percent-escape")]
    BadEscape { index: usize },
    #[error("query parameter {index} is not valid UTF-8 once percent-decoded")]
    NotUtf8 { index: usize },
    #[error("the request target cannot be forwarded as a URI")]
    Unparseable,
}

/// Builds the upstream `path?query` from the client's raw path and query.
pub fn upstream_target(path: &str, query: Option<&str>) -> Result<String, TargetError> {
    let mut out = String::with_capacity(path.len() + query.map_or(0, |q| q.len() + 8) + 1);
    push_clean_path(&mut out, path);
    if let Some(query) = query {
        let start = out.len();
        out.push('?');
        push_canonical_query(&mut out, query)?;
        if out.len() == start + 1 {
            out.truncate(start);
        }
    }
    Ok(out)
}

/// Collapses duplicate slashes and resolves `.`/`..` segments, as Prometheus' own SigV4
/// round-tripper does (`path.Clean`), but keeps a trailing slash and leaves percent-escapes
/// untouched so that `%2F` inside a label value survives.
fn push_clean_path(out: &mut String, path: &str) {
    if path.is_empty() || path == "/" {
        out.push('/');
        return;
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
    let ends_in_dir = path.ends_with('/') || path.ends_with("/.") || path.ends_with("/..");
    if segments.is_empty() || ends_in_dir {
        out.push('/');
    }
}

/// Re-encodes every `key=value` pair with RFC 3986 rules, keeping order, repeated keys and
/// empty values. `+` is a space (HTML form encoding, which Go's `url.Values` and every
/// Prometheus client use) and goes out as `%20`.
fn push_canonical_query(out: &mut String, query: &str) -> Result<(), TargetError> {
    let mut first = true;
    let mut scratch = Vec::new();
    for (index, pair) in query.split('&').enumerate() {
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if !first {
            out.push('&');
        }
        first = false;
        push_reencoded(out, key, index, &mut scratch)?;
        out.push('=');
        push_reencoded(out, value, index, &mut scratch)?;
    }
    Ok(())
}

fn push_reencoded(
    out: &mut String,
    raw: &str,
    index: usize,
    scratch: &mut Vec<u8>,
) -> Result<(), TargetError> {
    // Fast path: already canonical (only unreserved characters), the common case for keys.
    if raw.bytes().all(is_unreserved) {
        out.push_str(raw);
        return Ok(());
    }
    scratch.clear();
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => scratch.push(b' '),
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|b| hex_value(*b));
                let lo = bytes.get(i + 2).and_then(|b| hex_value(*b));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => scratch.push(hi << 4 | lo),
                    _ => return Err(TargetError::BadEscape { index }),
                }
                i += 2;
            }
            other => scratch.push(other),
        }
        i += 1;
    }
    // aws-sigv4 decodes lossily to UTF-8 when it canonicalises; bytes that are not UTF-8
    // would be signed as U+FFFD but sent as themselves, so refuse them up front.
    if std::str::from_utf8(scratch).is_err() {
        return Err(TargetError::NotUtf8 { index });
    }
    for &byte in scratch.iter() {
        if is_unreserved(byte) {
            out.push(byte as char);
        } else {
            // A table lookup: `write!` with a format spec costs more than the rest of the
            // re-encoding together.
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
    }
    Ok(())
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~')
}

fn hex_value(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(path: &str, query: Option<&str>) -> String {
        upstream_target(path, query).expect("valid target")
    }

    #[test]
    fn plus_becomes_percent_20_and_reserved_bytes_are_escaped() {
        assert_eq!(
            target(
                "/workspaces/ws-1/api/v1/query",
                Some("query=sum+by+%28pod%29+(rate(x[5m]))&time=2026-08-20T17:53:42Z")
            ),
            "/workspaces/ws-1/api/v1/query?query=sum%20by%20%28pod%29%20%28rate%28x%5B5m%5D%29%29&time=2026-08-20T17%3A53%3A42Z"
        );
    }

    #[test]
    fn keeps_empty_values_repeated_keys_and_order() {
        assert_eq!(
            target(
                "/api/v1/series",
                Some("match[]=b&match%5B%5D=a&timeout=&start=1.5")
            ),
            "/api/v1/series?match%5B%5D=b&match%5B%5D=a&timeout=&start=1.5"
        );
    }

    #[test]
    fn bare_keys_gain_an_equals_sign_and_empty_pairs_vanish() {
        assert_eq!(target("/x", Some("a&&b=1&")), "/x?a=&b=1");
        assert_eq!(target("/x", Some("")), "/x");
        assert_eq!(target("/x", Some("&")), "/x");
    }

    #[test]
    fn semicolons_and_literal_percent_survive() {
        assert_eq!(
            target("/x", Some("b=2;c=3&p=100%25")),
            "/x?b=2%3Bc%3D3&p=100%25"
        );
    }

    #[test]
    fn lowercase_escapes_are_normalised() {
        assert_eq!(target("/x", Some("q=%7e%2f")), "/x?q=~%2F");
    }

    #[test]
    fn malformed_escapes_are_refused() {
        assert_eq!(
            upstream_target("/x", Some("a=1&q=%zz")),
            Err(TargetError::BadEscape { index: 1 })
        );
        assert_eq!(
            upstream_target("/x", Some("q=%4")),
            Err(TargetError::BadEscape { index: 0 })
        );
    }

    #[test]
    fn non_utf8_values_are_refused() {
        assert_eq!(
            upstream_target("/x", Some("q=%FF")),
            Err(TargetError::NotUtf8 { index: 0 })
        );
    }

    #[test]
    fn utf8_values_are_encoded_per_byte() {
        assert_eq!(target("/x", Some("q=%C3%A9")), "/x?q=%C3%A9");
    }

    #[test]
    fn double_slashes_collapse_like_keda_needs() {
        assert_eq!(
            target("/workspaces/ws-1//api/v1/query", None),
            "/workspaces/ws-1/api/v1/query"
        );
        assert_eq!(target("//a///b", None), "/a/b");
    }

    #[test]
    fn dot_segments_resolve_and_trailing_slash_is_kept() {
        assert_eq!(target("/a/./b/../c/", None), "/a/c/");
        assert_eq!(target("/a/b/..", None), "/a/");
        assert_eq!(target("/../..", None), "/");
        assert_eq!(target("", None), "/");
    }

    #[test]
    fn percent_escapes_in_path_are_untouched() {
        assert_eq!(
            target("/api/v1/label/%2Fx/values", None),
            "/api/v1/label/%2Fx/values"
        );
    }
}
