//! [`ApiError`]: every way a request fails, its status, and what the client
//! is told. The body is always `{"errors": ["…"]}`.
//!
//! 401 and 403 answers are uniform ("permission denied" with the request
//! id, as in the design brief §5): the exact reason goes only to the audit
//! log ([`ApiError::detail`]), so a prober learns nothing about which
//! tokens exist. 500s likewise hide their detail.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::audit::AuditError;
use crate::auth::{AuthError, Role};
use crate::seal::SealError;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The body is not JSON, or not the JSON expected; names the field.
    #[error("{message}")]
    InvalidBody {
        /// The parser's message, starting with the field path.
        message: String,
    },
    /// A field parsed but its value is refused.
    #[error("{field}: {message}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// Why.
        message: String,
    },
    /// The request's content type is not `application/json`.
    #[error("content type must be application/json")]
    ContentType,
    /// No, an unknown, a revoked or an expired token (401).
    #[error("permission denied (request id {request_id})")]
    Unauthenticated {
        /// The request id, for the operator to find the audit record.
        request_id: String,
        /// The exact reason (audit only).
        reason: AuthError,
    },
    /// The token lacks a role (403).
    #[error("permission denied (request id {request_id})")]
    Forbidden {
        /// The request id.
        request_id: String,
        /// Roles of which one was needed.
        needed: Vec<Role>,
        /// The roles held.
        held: Vec<Role>,
    },
    /// The release path refused the request (403): the exact stage and
    /// reason go to the audit log only.
    #[error("permission denied (request id {request_id})")]
    Denied {
        /// The request id.
        request_id: String,
        /// The stage that refused.
        stage: &'static str,
        /// The exact reason.
        reason: String,
    },
    /// No such route or object.
    #[error("not found: {what}")]
    NotFound {
        /// What was not found.
        what: &'static str,
    },
    /// The route exists without this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request conflicts with the state (already initialised, …).
    #[error("{what}")]
    Conflict {
        /// What conflicts.
        what: &'static str,
    },
    /// The body is larger than the configured limit.
    #[error("request body too large")]
    PayloadTooLarge,
    /// The concurrency limit is reached (load shedding).
    #[error("too many requests; retry later")]
    Overloaded,
    /// The vault is sealed.
    #[error("Vault is sealed")]
    Sealed,
    /// The vault is not initialised.
    #[error("Vault is not initialized")]
    NotInitialized,
    /// The request took longer than the configured timeout.
    #[error("request timed out")]
    Timeout,
    /// The audit record could not be written durably in time: the request
    /// is refused (fail closed).
    #[error("audit log unavailable; request refused")]
    AuditUnavailable(#[source] AuditError),
    /// A seal operation failed for a reason the client can act on.
    #[error("{0}")]
    Seal(#[source] SealError),
    /// Anything else: storage, barrier, corrupt records (500; detail hidden).
    #[error("internal error (request id {request_id})")]
    Internal {
        /// The request id.
        request_id: String,
        /// What failed (audit only).
        detail: String,
    },
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidBody { .. } | Self::InvalidField { .. } | Self::ContentType => {
                StatusCode::BAD_REQUEST
            }
            Self::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } | Self::Denied { .. } => StatusCode::FORBIDDEN,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Overloaded => StatusCode::TOO_MANY_REQUESTS,
            // Vault answers 503 while sealed and 400 when uninitialised.
            Self::Sealed | Self::Timeout | Self::AuditUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::NotInitialized => StatusCode::BAD_REQUEST,
            Self::Seal(e) => match e {
                SealError::AlreadyInitialized | SealError::AlreadyUnsealed => StatusCode::CONFLICT,
                SealError::NotInitialized
                | SealError::InvalidShareParameters { .. }
                | SealError::MalformedShare { .. }
                | SealError::DuplicateShare { .. }
                | SealError::WrongShares
                | SealError::WrongSealKind { .. }
                | SealError::DevModeCannotUnseal => StatusCode::BAD_REQUEST,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
            Self::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the client is told.
    pub fn public_message(&self) -> String {
        match self {
            Self::Seal(_) if self.status() == StatusCode::INTERNAL_SERVER_ERROR => {
                "internal error".to_owned()
            }
            other => other.to_string(),
        }
    }

    /// The exact reason, for the audit log.
    pub fn detail(&self) -> String {
        match self {
            Self::Unauthenticated { reason, .. } => format!("unauthenticated: {reason}"),
            Self::Forbidden { needed, held, .. } => format!(
                "forbidden: needs one of [{}], token holds [{}]",
                roles_text(needed),
                roles_text(held)
            ),
            Self::Denied { stage, reason, .. } => format!("denied at {stage}: {reason}"),
            Self::Internal { detail, .. } => format!("internal: {detail}"),
            Self::AuditUnavailable(e) => format!("audit: {e}"),
            Self::Seal(e) => format!("seal: {e}"),
            other => other.to_string(),
        }
    }

    /// A 500 for `source`, its detail kept for the audit log.
    pub fn internal(request_id: &str, source: &dyn std::fmt::Display) -> Self {
        Self::Internal {
            request_id: request_id.to_owned(),
            detail: source.to_string(),
        }
    }
}

fn roles_text(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "errors": [self.public_message()] });
        (self.status(), Json(body)).into_response()
    }
}

/// The error body, for the OpenAPI document.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Human-readable messages.
    pub errors: Vec<String>,
}
