//! Header policy: what is forwarded upstream, what is signed, what comes back.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Hop-by-hop headers (RFC 9110 §7.6.1) plus the legacy `Proxy-Connection`. They describe
/// one connection, never the end-to-end message, so a proxy must not forward them.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Client-sent headers that would clash with our own signature, or that we recompute.
const REPLACED_BY_PROXY: [HeaderName; 7] = [
    header::AUTHORIZATION,
    HeaderName::from_static("x-amz-date"),
    HeaderName::from_static("x-amz-security-token"),
    HeaderName::from_static("x-amz-content-sha256"),
    header::HOST,
    header::CONTENT_LENGTH,
    // The body is already read (or streamed by us), so a 100-continue handshake upstream
    // would only add a round trip.
    header::EXPECT,
];

/// How the proxy rewrites headers, built once from the command line.
#[derive(Debug, Clone, Default)]
pub struct HeaderPolicy {
    strip: Vec<HeaderName>,
    duplicate: Vec<(HeaderName, HeaderName)>,
    custom: Vec<(HeaderName, HeaderValue)>,
}

/// A header given on the command line that HTTP cannot carry.
#[derive(Debug, thiserror::Error)]
pub enum HeaderPolicyError {
    #[error("{flag}: {name:?} is not a valid header name")]
    BadName { flag: &'static str, name: String },
    #[error("--custom-headers: value for {name:?} is not a valid header value")]
    BadValue { name: String },
    #[error("--custom-headers: {pair:?} is not of the form name=value")]
    BadPair { pair: String },
}

impl HeaderPolicy {
    pub fn new(
        strip: &[String],
        duplicate: &[String],
        custom: &str,
    ) -> Result<Self, HeaderPolicyError> {
        let strip = strip
            .iter()
            .map(|name| parse_name("--strip", name))
            .collect::<Result<_, _>>()?;
        let duplicate = duplicate
            .iter()
            .map(|name| {
                let from = parse_name("--duplicate-headers", name)?;
                let to = parse_name("--duplicate-headers", &format!("x-original-{name}"))?;
                Ok((from, to))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            strip,
            duplicate,
            custom: parse_custom_headers(custom)?,
        })
    }

    /// The headers to send upstream, before signing adds its own. `--duplicate-headers` and
    /// `--custom-headers` are applied here, so the signature covers them.
    pub fn upstream_headers(&self, inbound: &HeaderMap) -> HeaderMap {
        let mut out = HeaderMap::with_capacity(inbound.keys_len() + self.custom.len() + 6);
        let named_by_connection = connection_named(inbound);
        for (name, value) in inbound {
            if is_hop_by_hop(name)
                || REPLACED_BY_PROXY.contains(name)
                || named_by_connection.contains(name)
                || self.strip.contains(name)
            {
                continue;
            }
            out.append(name.clone(), value.clone());
        }
        for (from, to) in &self.duplicate {
            // The same order as the incumbent: a header that is both stripped and duplicated
            // is not duplicated. Authorization, which we always replace, can be duplicated.
            if self.strip.contains(from) {
                continue;
            }
            for value in inbound.get_all(from) {
                out.append(to.clone(), value.clone());
            }
        }
        for (name, value) in &self.custom {
            if !out.contains_key(name) {
                out.insert(name.clone(), value.clone());
            }
        }
        out
    }

    /// Removes hop-by-hop headers from an upstream response before it goes to the client.
    pub fn response_headers(headers: &mut HeaderMap) {
        for name in connection_named(headers) {
            headers.remove(name);
        }
        for name in &HOP_BY_HOP {
            headers.remove(name);
        }
        headers.remove(header::UPGRADE);
    }
}

/// Whether a forwarded header goes into the signature. Headers that intermediaries or the
/// HTTP client itself may rewrite are sent unsigned, so that a rewrite cannot break it.
pub fn is_signable(name: &HeaderName) -> bool {
    let name = name.as_str();
    !(is_hop_by_hop_str(name)
        || matches!(
            name,
            "expect"
                | "user-agent"
                | "x-amzn-trace-id"
                | "authorization"
                | "via"
                | "forwarded"
                | "x-amz-date"
                | "x-amz-security-token"
                | "x-amz-content-sha256"
        )
        || name.starts_with("x-forwarded-"))
}

fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(name) || name == header::UPGRADE
}

fn is_hop_by_hop_str(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| h.as_str() == name) || name == "upgrade"
}

/// Header names listed in `Connection` (RFC 9110 §7.6.1): hop-by-hop by declaration.
fn connection_named(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect()
}

fn parse_name(flag: &'static str, name: &str) -> Result<HeaderName, HeaderPolicyError> {
    HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| HeaderPolicyError::BadName {
        flag,
        name: name.to_owned(),
    })
}

/// Parses `k=v,k2=v2` as the incumbent does (values cannot contain commas), except that a
/// malformed pair is a start-up error rather than a warning that is easy to miss.
fn parse_custom_headers(spec: &str) -> Result<Vec<(HeaderName, HeaderValue)>, HeaderPolicyError> {
    spec.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| HeaderPolicyError::BadPair {
                    pair: pair.to_owned(),
                })?;
            let name = parse_name("--custom-headers", name)?;
            let value =
                HeaderValue::from_str(value.trim()).map_err(|_| HeaderPolicyError::BadValue {
                    name: name.to_string(),
                })?;
            Ok((name, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
        }
        headers
    }

    fn names(headers: &HeaderMap) -> Vec<&str> {
        let mut names: Vec<&str> = headers.keys().map(|n| n.as_str()).collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn drops_hop_by_hop_connection_named_and_client_signing_headers() {
        let inbound = map(&[
            ("connection", "keep-alive, x-secret-hop"),
            ("keep-alive", "timeout=5"),
            ("x-secret-hop", "1"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("proxy-authorization", "Basic abc"),
            ("authorization", "Bearer stale"),
            ("x-amz-date", "20200101T000000Z"),
            ("x-amz-security-token", "stale"),
            ("x-amz-content-sha256", "deadbeef"),
            ("host", "localhost:8080"),
            ("content-length", "12"),
            ("expect", "100-continue"),
            ("content-type", "application/x-protobuf"),
            ("accept", "*/*"),
        ]);
        let out = HeaderPolicy::default().upstream_headers(&inbound);
        assert_eq!(names(&out), ["accept", "content-type"]);
    }

    #[test]
    fn strip_duplicate_and_custom_follow_incumbent_semantics() {
        let policy = HeaderPolicy::new(
            &["X-Scope-OrgID".into(), "x-both".into()],
            &["authorization".into(), "x-both".into()],
            "x-team=obs, x-env=prod,accept=overridden",
        )
        .expect("policy");
        let inbound = map(&[
            ("authorization", "Bearer caller"),
            ("x-scope-orgid", "tenant"),
            ("x-both", "1"),
            ("accept", "application/json"),
        ]);
        let out = policy.upstream_headers(&inbound);
        assert_eq!(
            names(&out),
            ["accept", "x-env", "x-original-authorization", "x-team"]
        );
        assert_eq!(out["x-original-authorization"], "Bearer caller");
        assert_eq!(out["x-team"], "obs");
        assert_eq!(out["accept"], "application/json", "client header wins");
    }

    #[test]
    fn repeated_headers_keep_every_value() {
        let out = HeaderPolicy::default().upstream_headers(&map(&[("x-a", "1"), ("x-a", "2")]));
        let values: Vec<_> = out.get_all("x-a").iter().collect();
        assert_eq!(values, ["1", "2"]);
    }

    #[test]
    fn bad_custom_headers_are_errors() {
        assert!(matches!(
            HeaderPolicy::new(&[], &[], "novalue"),
            Err(HeaderPolicyError::BadPair { .. })
        ));
        assert!(matches!(
            HeaderPolicy::new(&[], &[], "bad name=1"),
            Err(HeaderPolicyError::BadName { .. })
        ));
        assert!(matches!(
            HeaderPolicy::new(&["bad name".into()], &[], ""),
            Err(HeaderPolicyError::BadName { .. })
        ));
    }

    #[test]
    fn signable_excludes_rewritable_headers() {
        for name in [
            "user-agent",
            "expect",
            "x-amzn-trace-id",
            "x-forwarded-for",
            "x-forwarded-proto",
            "connection",
            "transfer-encoding",
            "via",
        ] {
            assert!(!is_signable(&HeaderName::from_static(name)), "{name}");
        }
        for name in [
            "host",
            "content-type",
            "content-encoding",
            "content-length",
            "x-prometheus-remote-write-version",
            "accept-encoding",
            "x-original-authorization",
        ] {
            assert!(is_signable(&HeaderName::from_static(name)), "{name}");
        }
    }

    #[test]
    fn response_hop_by_hop_headers_are_removed() {
        let mut headers = map(&[
            ("connection", "close, x-hop"),
            ("x-hop", "1"),
            ("transfer-encoding", "chunked"),
            ("content-encoding", "gzip"),
            ("retry-after", "7"),
        ]);
        HeaderPolicy::response_headers(&mut headers);
        assert_eq!(names(&headers), ["content-encoding", "retry-after"]);
    }
}
