//! The one place where failures become HTTP answers.
//!
//! Every answer the proxy makes itself is a short JSON object `{"error": code, "reason": text}`
//! with a precise status. The text is written for the caller and never carries an internal
//! address, a file path, an SDK error dump or a secret: those details go to the log only.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

use crate::admission::Refusal;
use crate::body::BodyError;
use crate::credentials::CredentialsError;
use crate::signing::SigningError;
use crate::target::TargetError;

/// Everything that can stop a request from being proxied.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("bad request target: {0}")]
    BadTarget(#[from] TargetError),
    #[error("request body too large: declared {declared} bytes, limit {limit}")]
    DeclaredTooLarge { declared: u64, limit: u64 },
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error("no credentials: {0}")]
    Credentials(#[from] CredentialsError),
    #[error(transparent)]
    Signing(#[from] SigningError),
    #[error("upstream request failed: {0}")]
    Upstream(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("upstream did not answer within {0:?}")]
    UpstreamTimeout(std::time::Duration),
    #[error("request already passed through this proxy (Via)")]
    Loop,
    #[error("CONNECT is not supported")]
    MethodNotAllowed,
    #[error(transparent)]
    Refused(#[from] Refusal),
}

impl ProxyError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadTarget(_) => StatusCode::BAD_REQUEST,
            Self::DeclaredTooLarge { .. } | Self::Body(BodyError::TooLarge { .. }) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Self::Body(BodyError::Read(_)) => StatusCode::BAD_REQUEST,
            Self::Credentials(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Signing(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Loop => StatusCode::LOOP_DETECTED,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Refused(Refusal::PathNotAllowed | Refusal::ReadOnly) => StatusCode::FORBIDDEN,
            Self::Refused(Refusal::Overloaded) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A stable machine-readable code, also used as a metrics label.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadTarget(_) => "bad_request",
            Self::DeclaredTooLarge { .. } | Self::Body(BodyError::TooLarge { .. }) => {
                "body_too_large"
            }
            Self::Body(BodyError::Read(_)) => "body_read_failed",
            Self::Credentials(_) => "credentials_unavailable",
            Self::Signing(_) => "signing_failed",
            Self::Upstream(_) => "upstream_unavailable",
            Self::UpstreamTimeout(_) => "upstream_timeout",
            Self::Loop => "loop_detected",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Refused(Refusal::PathNotAllowed) => "path_not_allowed",
            Self::Refused(Refusal::ReadOnly) => "read_only",
            Self::Refused(Refusal::Overloaded) => "overloaded",
        }
    }

    /// What the caller is told. Safe to show anyone.
    pub fn public_reason(&self) -> String {
        match self {
            Self::BadTarget(e) => e.to_string(),
            Self::DeclaredTooLarge { limit, .. } | Self::Body(BodyError::TooLarge { limit }) => {
                format!("request body exceeds the {limit}-byte limit (--max-request-body-size)")
            }
            Self::Body(BodyError::Read(_)) => {
                "request body ended early or was malformed".to_owned()
            }
            Self::Credentials(_) => {
                "the proxy has no valid AWS credentials; see the proxy log".to_owned()
            }
            Self::Signing(_) => "the request could not be signed; see the proxy log".to_owned(),
            Self::Upstream(_) => {
                "the upstream could not be reached or reset the connection".to_owned()
            }
            Self::UpstreamTimeout(limit) => {
                format!(
                    "the upstream did not answer within {}s",
                    limit.as_secs_f64()
                )
            }
            Self::Loop => {
                "the request came back to the proxy that sent it; check --host".to_owned()
            }
            Self::MethodNotAllowed => {
                "CONNECT tunnels are not supported; send plain HTTP requests".to_owned()
            }
            Self::Refused(Refusal::PathNotAllowed) => {
                "this path is not allowed through the proxy (--allow-path)".to_owned()
            }
            Self::Refused(Refusal::ReadOnly) => {
                "the proxy is read-only: writes are refused (--read-only)".to_owned()
            }
            Self::Refused(Refusal::Overloaded) => {
                "too many requests in flight (--max-concurrent-requests); retry shortly".to_owned()
            }
        }
    }

    pub fn into_response(&self) -> Response<Full<Bytes>> {
        let mut response = error_response(self.status(), self.code(), &self.public_reason());
        if matches!(self, Self::Refused(Refusal::Overloaded)) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// A JSON error answer. Also used by the admin endpoints.
pub fn error_response(status: StatusCode, code: &str, reason: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "error": code, "reason": reason }).to_string();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn json(error: ProxyError) -> (StatusCode, serde_json::Value) {
        let response = error.into_response();
        let status = response.status();
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, serde_json::from_slice(&body).expect("json"))
    }

    #[tokio::test]
    async fn statuses_and_codes() {
        let cases: Vec<(ProxyError, u16, &str)> = vec![
            (
                TargetError::BadEscape { index: 2 }.into(),
                400,
                "bad_request",
            ),
            (
                ProxyError::DeclaredTooLarge {
                    declared: 10,
                    limit: 5,
                },
                413,
                "body_too_large",
            ),
            (
                BodyError::TooLarge { limit: 5 }.into(),
                413,
                "body_too_large",
            ),
            (
                CredentialsError::Provider("no providers in chain".into()).into(),
                503,
                "credentials_unavailable",
            ),
            (
                ProxyError::Upstream("tcp connect error: 10.1.2.3:443 refused".into()),
                502,
                "upstream_unavailable",
            ),
            (
                ProxyError::UpstreamTimeout(std::time::Duration::from_secs(30)),
                504,
                "upstream_timeout",
            ),
        ];
        for (error, status, code) in cases {
            let (got_status, body) = json(error).await;
            assert_eq!(got_status.as_u16(), status);
            assert_eq!(body["error"], code);
        }
    }

    #[tokio::test]
    async fn internal_details_stay_out_of_the_body() {
        let (_, body) = json(ProxyError::Upstream(
            "dns error: aps-workspaces.internal.example: 10.1.2.3".into(),
        ))
        .await;
        let text = body.to_string();
        assert!(
            !text.contains("10.1.2.3") && !text.contains("internal.example"),
            "{text}"
        );
        let (_, body) =
            json(CredentialsError::Provider("file /root/.aws/credentials".into()).into()).await;
        assert!(!body.to_string().contains("/root"), "{body}");
    }

    #[tokio::test]
    async fn reasons_name_the_limit() {
        let (_, body) = json(BodyError::TooLarge { limit: 1024 }.into()).await;
        assert_eq!(
            body["reason"],
            "request body exceeds the 1024-byte limit (--max-request-body-size)"
        );
    }
}
