//! Extractors: the request context (id, path, presented token) and the raw
//! body, parsed by handlers *after* authentication so that an
//! unauthenticated caller learns nothing from body validation, and so that
//! every outcome, bad input included, reaches the audit log.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use zeroize::Zeroizing;

use super::error::ApiError;

/// Header carrying the token (Vault's `X-Vault-Token`).
pub const TOKEN_HEADER: &str = "x-keyward-token";
/// Header carrying a session request's proof of possession.
pub const POP_HEADER: &str = "keyward-pop";
/// Header carrying the request id in responses.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The request id, set by the outermost middleware.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Who asked what.
pub struct RequestContext {
    /// The request id.
    pub request_id: String,
    /// The request path.
    pub path: String,
    /// The presented token, if any (zeroized on drop).
    pub token: Option<Zeroizing<String>>,
    /// The HTTP method.
    pub method: String,
    /// The proof of possession header of a session request.
    pub pop: Option<String>,
}

impl std::fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestContext")
            .field("request_id", &self.request_id)
            .field("path", &self.path)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

/// The token from `X-Keyward-Token`, else from `Authorization: Bearer`.
fn presented_token(headers: &HeaderMap) -> Option<Zeroizing<String>> {
    if let Some(v) = headers.get(TOKEN_HEADER) {
        return v.to_str().ok().map(|s| Zeroizing::new(s.trim().to_owned()));
    }
    let auth = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = auth.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| Zeroizing::new(rest.trim().to_owned()))
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_else(super::new_request_id);
        Ok(Self {
            request_id,
            path: parts.uri.path().to_owned(),
            token: presented_token(&parts.headers),
            method: parts.method.as_str().to_owned(),
            pop: parts
                .headers
                .get(POP_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        })
    }
}

/// The body, size-limited by the router's `DefaultBodyLimit`. Extraction
/// never fails: a body that could not be read (too large: 413) is reported
/// by [`RawBody::json`], inside the handler, after authentication and with
/// an audit record like any other bad input.
#[derive(Debug)]
pub struct RawBody {
    json_content_type: bool,
    bytes: Result<Bytes, BodyError>,
}

/// Why the body could not be read.
#[derive(Debug, Clone, Copy)]
enum BodyError {
    TooLarge,
    Unreadable,
}

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json_content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                BodyError::TooLarge
            } else {
                BodyError::Unreadable
            }
        });
        Ok(Self {
            json_content_type,
            bytes,
        })
    }
}

impl RawBody {
    /// The raw bytes (empty when the body could not be read).
    pub fn bytes(&self) -> &[u8] {
        self.bytes.as_ref().map_or(&[], |b| b.as_ref())
    }

    /// Parses the body as `T`, returning it with its JSON value (for the
    /// audit record). Errors name the field (`roles[1]: unknown variant …`).
    pub fn json<T: DeserializeOwned>(&self) -> Result<(T, Value), ApiError> {
        let bytes = match &self.bytes {
            Ok(bytes) => bytes,
            Err(BodyError::TooLarge) => return Err(ApiError::PayloadTooLarge),
            Err(BodyError::Unreadable) => {
                return Err(ApiError::InvalidBody {
                    message: "the request body could not be read".to_owned(),
                });
            }
        };
        if !self.json_content_type {
            return Err(ApiError::ContentType);
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|e| ApiError::InvalidBody {
            message: format!("malformed JSON: {e}"),
        })?;
        let parsed = serde_path_to_error::deserialize(&value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            ApiError::InvalidBody {
                message: if path == "." {
                    inner.to_string()
                } else {
                    format!("{path}: {inner}")
                },
            }
        })?;
        Ok((parsed, value))
    }
}
