//! Which requests the proxy will sign at all: path allow-list, read-only mode, and a cap on
//! concurrent upstream requests. The proxy signs with the pod's IAM role, so a shared
//! gateway must not become a way to use that role for anything a caller likes.

use std::sync::Arc;

use http::Method;
use regex::Regex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A request the admission rules refuse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("path is not in --allow-path")]
    PathNotAllowed,
    #[error("--read-only refuses writes")]
    ReadOnly,
    #[error("--max-concurrent-requests reached")]
    Overloaded,
}

/// One `--allow-path` entry: a literal prefix, or a regular expression when it starts with `^`.
#[derive(Debug, Clone)]
pub enum PathRule {
    Prefix(String),
    Pattern(Regex),
}

impl PathRule {
    pub fn parse(value: &str) -> Result<Self, regex::Error> {
        if value.starts_with('^') {
            Regex::new(value).map(Self::Pattern)
        } else {
            Ok(Self::Prefix(value.to_owned()))
        }
    }

    fn matches(&self, path: &str) -> bool {
        match self {
            Self::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Self::Pattern(regex) => regex.is_match(path),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Admission {
    allow: Vec<PathRule>,
    read_only: bool,
    limit: Option<Arc<Semaphore>>,
}

impl Admission {
    /// `max_concurrent` of 0 means no limit.
    pub fn new(allow: Vec<PathRule>, read_only: bool, max_concurrent: usize) -> Self {
        Self {
            allow,
            read_only,
            limit: (max_concurrent > 0).then(|| Arc::new(Semaphore::new(max_concurrent))),
        }
    }

    /// Checks a request against the rules; `path` is the cleaned upstream path.
    pub fn check(&self, method: &Method, path: &str) -> Result<(), Refusal> {
        if !self.allow.is_empty() && !self.allow.iter().any(|rule| rule.matches(path)) {
            return Err(Refusal::PathNotAllowed);
        }
        if self.read_only && is_write(method, path) {
            return Err(Refusal::ReadOnly);
        }
        Ok(())
    }

    /// A slot for one upstream request, held until its response body is done. Refuses at
    /// once rather than queueing: the caller (Prometheus, KEDA) retries with its own backoff.
    pub fn permit(&self) -> Result<Option<OwnedSemaphorePermit>, Refusal> {
        match &self.limit {
            None => Ok(None),
            Some(limit) => limit
                .clone()
                .try_acquire_owned()
                .map(Some)
                .map_err(|_| Refusal::Overloaded),
        }
    }
}

/// Writes on the AMP data plane: ingestion, Alertmanager changes (silences, alerts), and the
/// Prometheus admin and rules APIs.
fn is_write(method: &Method, path: &str) -> bool {
    let path = path.trim_end_matches('/');
    if path.ends_with("/api/v1/remote_write")
        || path.ends_with("/api/v1/write")
        || path.ends_with("/api/v1/otlp/v1/metrics")
        || path.contains("/api/v1/admin/")
    {
        return true;
    }
    let mutating = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    mutating && (path.contains("/alertmanager/") || path.contains("/api/v1/rules"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_allow_list_allows_everything() {
        let admission = Admission::default();
        assert_eq!(admission.check(&Method::POST, "/anything"), Ok(()));
    }

    #[test]
    fn prefixes_and_patterns() {
        let admission = Admission::new(
            vec![
                PathRule::parse("/workspaces/ws-1/api/v1/query").expect("prefix"),
                PathRule::parse(r"^/workspaces/ws-2/api/v1/(series|labels)$").expect("regex"),
            ],
            false,
            0,
        );
        assert_eq!(
            admission.check(&Method::GET, "/workspaces/ws-1/api/v1/query_range"),
            Ok(())
        );
        assert_eq!(
            admission.check(&Method::GET, "/workspaces/ws-2/api/v1/series"),
            Ok(())
        );
        for refused in [
            "/workspaces/ws-2/api/v1/series/x",
            "/workspaces/ws-1/api/v1/remote_write",
            "/workspaces/ws-3/api/v1/query",
        ] {
            assert_eq!(
                admission.check(&Method::GET, refused),
                Err(Refusal::PathNotAllowed),
                "{refused}"
            );
        }
        assert!(PathRule::parse("^(unclosed").is_err());
    }

    #[test]
    fn read_only_refuses_writes_but_not_post_queries() {
        let admission = Admission::new(vec![], true, 0);
        for (method, path) in [
            (Method::POST, "/workspaces/ws/api/v1/remote_write"),
            (Method::POST, "/workspaces/ws/alertmanager/api/v2/silences"),
            (
                Method::DELETE,
                "/workspaces/ws/alertmanager/api/v2/silence/abc",
            ),
            (Method::PUT, "/workspaces/ws/api/v1/rules/ns"),
            (Method::POST, "/api/v1/admin/tsdb/delete_series"),
        ] {
            assert_eq!(
                admission.check(&method, path),
                Err(Refusal::ReadOnly),
                "{method} {path}"
            );
        }
        for (method, path) in [
            (Method::POST, "/workspaces/ws/api/v1/query"),
            (Method::POST, "/workspaces/ws/api/v1/query_range"),
            (Method::POST, "/workspaces/ws/api/v1/series"),
            (Method::GET, "/workspaces/ws/alertmanager/api/v2/silences"),
            (Method::GET, "/workspaces/ws/api/v1/rules"),
        ] {
            assert_eq!(admission.check(&method, path), Ok(()), "{method} {path}");
        }
    }

    #[test]
    fn concurrency_cap_refuses_when_full_and_frees_on_drop() {
        let admission = Admission::new(vec![], false, 2);
        let first = admission.permit().expect("slot");
        let _second = admission.permit().expect("slot");
        assert_eq!(admission.permit().err(), Some(Refusal::Overloaded));
        drop(first);
        assert!(admission.permit().is_ok());
        assert!(Admission::default().permit().expect("unlimited").is_none());
    }
}
