//! Authorization attributes of a request, computed as the apiserver's `RequestInfoFactory`
//! does, and the apiserver's 403 message for them.

use crate::wire::{Status, StatusDetails};

/// What a SubjectAccessReview asks about one request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Attributes {
    /// A request under `/api/<v>/…` or `/apis/<g>/<v>/…` with at least a resource.
    Resource {
        /// `get`, `list`, `watch`, `create`, …
        verb: String,
        /// API group (`custom.metrics.k8s.io`).
        group: String,
        /// API version (`v1beta1`).
        version: String,
        /// `pods`, `metrics`, the external metric name.
        resource: String,
        /// The custom metric name for object and wildcard requests.
        subresource: String,
        /// `""` when cluster-scoped.
        namespace: String,
        /// Object name, `*` for wildcard requests, `""` for lists.
        name: String,
    },
    /// Anything else (`/apis`, `/apis/<g>/<v>` discovery, `/openapi/v2`, `/healthz`).
    NonResource {
        /// The lower-cased HTTP method (`get`).
        verb: String,
        /// The decoded path.
        path: String,
    },
}

/// Percent-decodes a URL path as Go's `URL.Path` is (invalid escapes are kept as written).
#[must_use]
pub fn decode_path(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of `key` in a form-encoded query string (`+` is a space), first occurrence.
fn query_value(query: Option<&str>, key: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode_path(&k.replace('+', " ")) == key).then(|| decode_path(&v.replace('+', " ")))
    })
}

impl Attributes {
    /// The attributes of a request, as the apiserver's RequestInfo computes them.
    #[must_use]
    pub fn of_request(method: &http::Method, path: &str, query: Option<&str>) -> Self {
        let decoded = decode_path(path);
        let verb_of_method = method.as_str().to_ascii_lowercase();
        let non_resource = || Self::NonResource {
            verb: verb_of_method.clone(),
            path: decoded.clone(),
        };
        let parts: Vec<&str> = decoded.trim_matches('/').split('/').collect();
        if parts.len() < 3 || (parts[0] != "api" && parts[0] != "apis") {
            return non_resource();
        }
        let mut rest = &parts[1..];
        let mut group = "";
        if parts[0] == "apis" {
            if rest.len() < 3 {
                return non_resource();
            }
            group = rest[0];
            rest = &rest[1..];
        }
        let version = rest[0];
        rest = &rest[1..];

        let mut verb = match *method {
            http::Method::POST => "create",
            http::Method::GET | http::Method::HEAD => "get",
            http::Method::PUT => "update",
            http::Method::PATCH => "patch",
            http::Method::DELETE => "delete",
            _ => "",
        }
        .to_owned();
        if matches!(rest.first(), Some(&"watch" | &"proxy")) && rest.len() >= 2 {
            verb = rest[0].to_owned();
            rest = &rest[1..];
        }
        let mut namespace = "";
        if rest.first() == Some(&"namespaces") && rest.len() > 1 {
            namespace = rest[1];
            if rest.len() > 2 && !matches!(rest[2], "status" | "finalize") {
                rest = &rest[2..];
            }
        }
        let resource = rest.first().copied().unwrap_or_default();
        let mut name = rest.get(1).copied().unwrap_or_default().to_owned();
        let subresource = rest.get(2).copied().unwrap_or_default();
        if name.is_empty() && verb == "get" {
            verb = match query_value(query, "watch").as_deref() {
                Some("true" | "1") => "watch",
                _ => "list",
            }
            .to_owned();
            if let Some(fields) = query_value(query, "fieldSelector")
                && let Some(n) = fields.split(',').find_map(|f| {
                    f.strip_prefix("metadata.name==")
                        .or_else(|| f.strip_prefix("metadata.name="))
                })
            {
                name = n.to_owned();
            }
        }
        if name.is_empty() && verb == "delete" {
            verb = "deletecollection".into();
        }
        Self::Resource {
            verb,
            group: group.to_owned(),
            version: version.to_owned(),
            resource: resource.to_owned(),
            subresource: subresource.to_owned(),
            namespace: namespace.to_owned(),
            name,
        }
    }

    /// The 403 the apiserver answers for these attributes and `user`, with the authorizer's
    /// `reason` appended when there is one.
    #[must_use]
    pub fn forbidden(&self, user: &str, reason: &str) -> Status {
        let sanitize = |s: String| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        let (message, details) = match self {
            Self::NonResource { verb, path } => {
                let msg = sanitize(format!("User {user:?} cannot {verb} path {path:?}"));
                (
                    format!("forbidden: {}", with_reason(msg, reason)),
                    StatusDetails::default(),
                )
            }
            Self::Resource {
                verb,
                group,
                resource,
                subresource,
                namespace,
                name,
                ..
            } => {
                let full = if subresource.is_empty() {
                    resource.clone()
                } else {
                    format!("{resource}/{subresource}")
                };
                let msg = if namespace.is_empty() {
                    format!(
                        "User {user:?} cannot {verb} resource {full:?} in API group {group:?} at the cluster scope"
                    )
                } else {
                    format!(
                        "User {user:?} cannot {verb} resource {full:?} in API group {group:?} in the namespace {namespace:?}"
                    )
                };
                let msg = with_reason(sanitize(msg), reason);
                let qualified = if group.is_empty() {
                    resource.clone()
                } else {
                    format!("{resource}.{group}")
                };
                let message = if qualified.is_empty() {
                    format!("forbidden: {msg}")
                } else if name.is_empty() {
                    format!("{qualified} is forbidden: {msg}")
                } else {
                    format!("{qualified} {name:?} is forbidden: {msg}")
                };
                (
                    message,
                    StatusDetails {
                        name: name.clone(),
                        group: group.clone(),
                        kind: resource.clone(),
                        ..StatusDetails::default()
                    },
                )
            }
        };
        let mut status = Status::forbidden(message);
        status.details = Some(details);
        status
    }
}

fn with_reason(msg: String, reason: &str) -> String {
    if reason.is_empty() {
        msg
    } else {
        format!("{msg}: {reason}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn res(
        verb: &str,
        group: &str,
        version: &str,
        resource: &str,
        sub: &str,
        ns: &str,
        name: &str,
    ) -> Attributes {
        Attributes::Resource {
            verb: verb.into(),
            group: group.into(),
            version: version.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            name: name.into(),
        }
    }

    #[test]
    fn custom_metrics_requests() {
        let cm = "custom.metrics.k8s.io";
        let cases = [
            (
                "/apis/custom.metrics.k8s.io/v1beta1/namespaces/prod/pods/%2A/http_requests_per_second",
                None,
                res(
                    "get",
                    cm,
                    "v1beta1",
                    "pods",
                    "http_requests_per_second",
                    "prod",
                    "*",
                ),
            ),
            (
                "/apis/custom.metrics.k8s.io/v1beta2/namespaces/prod/services/jazz/m",
                Some("metricLabelSelector=a%3Db"),
                res("get", cm, "v1beta2", "services", "m", "prod", "jazz"),
            ),
            (
                "/apis/custom.metrics.k8s.io/v1beta1/namespaces/prod/deployments.apps/jazz/m",
                None,
                res(
                    "get",
                    cm,
                    "v1beta1",
                    "deployments.apps",
                    "m",
                    "prod",
                    "jazz",
                ),
            ),
            (
                "/apis/custom.metrics.k8s.io/v1beta1/namespaces/prod/metrics/m",
                None,
                res("get", cm, "v1beta1", "metrics", "", "prod", "m"),
            ),
            (
                "/apis/custom.metrics.k8s.io/v1beta1/nodes/*/node_load1",
                None,
                res("get", cm, "v1beta1", "nodes", "node_load1", "", "*"),
            ),
            (
                "/apis/external.metrics.k8s.io/v1beta1/namespaces/prod/queue_depth",
                Some("labelSelector=queue%3Dorders"),
                res(
                    "list",
                    "external.metrics.k8s.io",
                    "v1beta1",
                    "queue_depth",
                    "",
                    "prod",
                    "",
                ),
            ),
            (
                "/api/v1/namespaces/prod/pods",
                Some("watch=true"),
                res("watch", "", "v1", "pods", "", "prod", ""),
            ),
            (
                "/api/v1/namespaces/prod/pods",
                Some("fieldSelector=metadata.name%3Dweb-1"),
                res("list", "", "v1", "pods", "", "prod", "web-1"),
            ),
        ];
        for (path, query, want) in cases {
            assert_eq!(
                Attributes::of_request(&Method::GET, path, query),
                want,
                "{path}"
            );
        }
    }

    #[test]
    fn discovery_and_other_paths_are_non_resource() {
        for path in [
            "/apis",
            "/apis/custom.metrics.k8s.io",
            "/apis/custom.metrics.k8s.io/v1beta1",
            "/openapi/v2",
            "/openapi/v3/apis/custom.metrics.k8s.io/v1beta1",
            "/healthz",
            "/api/v1",
        ] {
            assert_eq!(
                Attributes::of_request(&Method::GET, path, None),
                Attributes::NonResource {
                    verb: "get".into(),
                    path: path.into()
                },
                "{path}"
            );
        }
    }

    #[test]
    fn forbidden_messages_read_like_the_apiserver() {
        let a = res(
            "get",
            "custom.metrics.k8s.io",
            "v1beta1",
            "pods",
            "m",
            "prod",
            "*",
        );
        let s = a.forbidden("x", "");
        assert_eq!(
            s.message,
            r#"pods.custom.metrics.k8s.io "*" is forbidden: User "x" cannot get resource "pods/m" in API group "custom.metrics.k8s.io" in the namespace "prod""#
        );
        assert_eq!(s.code, 403);
        assert_eq!(s.reason, "Forbidden");
        let d = s.details.expect("details");
        assert_eq!(
            (d.name.as_str(), d.group.as_str(), d.kind.as_str()),
            ("*", "custom.metrics.k8s.io", "pods")
        );

        let ext = res(
            "list",
            "external.metrics.k8s.io",
            "v1beta1",
            "q",
            "",
            "prod",
            "",
        );
        assert_eq!(
            ext.forbidden("system:anonymous", "no RBAC policy matched")
                .message,
            r#"q.external.metrics.k8s.io is forbidden: User "system:anonymous" cannot list resource "q" in API group "external.metrics.k8s.io" in the namespace "prod": no RBAC policy matched"#
        );
        let node = res(
            "get",
            "custom.metrics.k8s.io",
            "v1beta1",
            "nodes",
            "m",
            "",
            "n1",
        );
        assert!(
            node.forbidden("u", "")
                .message
                .ends_with("at the cluster scope")
        );
        let nr = Attributes::NonResource {
            verb: "get".into(),
            path: "/apis".into(),
        };
        assert_eq!(
            nr.forbidden("u", "").message,
            r#"forbidden: User "u" cannot get path "/apis""#
        );
    }

    #[test]
    fn paths_are_percent_decoded() {
        assert_eq!(decode_path("/a/%2A/b%7Cc"), "/a/*/b|c");
        assert_eq!(decode_path("/bad%zz/%2"), "/bad%zz/%2");
    }
}
