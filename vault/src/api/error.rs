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
            Self::InvalidBody { message } => without_values(message),
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

/// Where serde's messages quote a value of the request: the rendering of
/// `serde::de::Unexpected` for strings, numbers, booleans and characters,
/// and the variant of `unknown variant`. A string is quoted by its `Debug`
/// form, the others between backticks.
const VALUE_MARKERS: [&str; 6] = [
    "string \"",
    "integer `",
    "floating point `",
    "boolean `",
    "character `",
    "unknown variant `",
];

/// A body-parse message without the request's values, for the audit log:
/// every span that [`VALUE_MARKERS`] opens becomes `<value>`. The requester
/// is answered with the whole message (it sent the value); the audit
/// record, whose leaf values are otherwise HMACed, must not hold it in
/// clear. A quoted string ends at its first unescaped `"` (`Debug` escapes
/// any inside); a backtick span ends at the last "`, " of the message, so
/// a value holding "`, expected" cannot end it early (at worst the
/// expected part is cut too). Field paths and kinds stay.
fn without_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some((at, marker)) = VALUE_MARKERS
        .iter()
        .filter_map(|m| rest.find(m).map(|at| (at, *m)))
        .min_by_key(|(at, _)| *at)
    {
        let (before, after) = rest.split_at(at);
        out.push_str(before);
        // The marker without its opening quote or backtick.
        out.push_str(marker.get(..marker.len() - 1).unwrap_or(marker));
        out.push_str("<value>");
        let span = after.get(marker.len()..).unwrap_or("");
        let end = if marker.ends_with('"') {
            closing_quote(span).map(|i| i + 1)
        } else {
            span.rfind("`, ").or_else(|| span.rfind('`')).map(|i| i + 1)
        };
        match end {
            Some(end) => rest = span.get(end..).unwrap_or(""),
            // Unterminated: nothing after the marker can be trusted.
            None => return out,
        }
    }
    out.push_str(rest);
    out
}

/// The byte index of the first `"` in `text` not escaped by a backslash.
fn closing_quote(text: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i),
            _ => {}
        }
    }
    None
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

#[cfg(test)]
mod tests {
    use super::without_values;

    #[test]
    fn parse_messages_lose_their_values_and_keep_field_and_kind() {
        for (message, expected) in [
            (
                r#"data: invalid type: string "hunter2", expected a map"#,
                "data: invalid type: string <value>, expected a map",
            ),
            (
                r#"data: invalid type: string "a\", expected b `c`", expected a map"#,
                "data: invalid type: string <value>, expected a map",
            ),
            (
                "ttl: invalid type: integer `7`, expected a string",
                "ttl: invalid type: integer <value>, expected a string",
            ),
            (
                "x: invalid type: floating point `1.5`, expected u8",
                "x: invalid type: floating point <value>, expected u8",
            ),
            (
                "x: invalid type: character ```, expected a string",
                "x: invalid type: character <value>, expected a string",
            ),
            (
                "roles[0]: unknown variant `s3cret`, there are no variants",
                "roles[0]: unknown variant <value>, there are no variants",
            ),
            ("missing field `roles`", "missing field `roles`"),
            (
                "malformed JSON: EOF while parsing an object at line 1 column 20",
                "malformed JSON: EOF while parsing an object at line 1 column 20",
            ),
            // Unterminated: everything after the marker goes.
            (
                r#"a: invalid type: string "s3cret"#,
                "a: invalid type: string <value>",
            ),
            ("b: unknown variant `s3cret", "b: unknown variant <value>"),
        ] {
            assert_eq!(without_values(message), expected, "{message}");
        }
    }

    #[test]
    fn a_value_cannot_end_its_span_early() {
        // The variant holds "`, expected": the cut runs to the last "`, ".
        let message =
            "roles[0]: unknown variant `s3cret`, expected x`, expected one of `admin`, `release`";
        let cut = without_values(message);
        assert!(
            !cut.contains("s3cret") && !cut.contains("expected x"),
            "{cut}"
        );
        assert!(
            cut.starts_with("roles[0]: unknown variant <value>"),
            "{cut}"
        );
    }
}
