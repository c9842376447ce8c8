//! `/v1/auth/token/*`: create, lookup, revoke; the public types are the
//! response bodies, shared with the CLI client.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use zeroize::Zeroize;

use super::error::{ApiError, ErrorBody};
use super::extract::{RawBody, RequestContext};
use super::{AppState, Call, now_secs};
use crate::auth::{Role, TokenRecord};
use crate::config::HumanDuration;

/// TTL of a created token when none is given: 24 hours.
pub const DEFAULT_TOKEN_TTL_SECS: u64 = 24 * 3600;
/// Any role: for a token's operations on itself.
const ANY_ROLE: &[Role] = &[Role::Admin, Role::Platform, Role::Release, Role::Auditor];

/// `POST /v1/auth/token/create`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateTokenRequest {
    /// Roles of the new token; each must be held by the creator.
    roles: Vec<Role>,
    /// Lifetime: seconds or `"90s"`, `"5m"`, `"2h"`, `"7d"`; default 24h.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    ttl: Option<HumanDuration>,
}

/// A token's public description.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenInfo {
    /// The accessor (not secret).
    pub accessor: String,
    /// Its roles.
    pub roles: Vec<Role>,
    /// Creation, seconds since the Unix epoch.
    pub created_at: u64,
    /// Expiry, seconds since the Unix epoch; null: never.
    pub expires_at: Option<u64>,
}

impl From<TokenRecord> for TokenInfo {
    fn from(r: TokenRecord) -> Self {
        Self {
            accessor: r.accessor,
            roles: r.roles,
            created_at: r.created_at,
            expires_at: r.expires_at,
        }
    }
}

/// The one answer carrying a token value.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenResponse {
    /// The token; shown once, never stored.
    pub token: String,
    /// Its description.
    #[serde(flatten)]
    pub info: TokenInfo,
}

impl std::fmt::Debug for CreateTokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateTokenResponse")
            .field("token", &"[redacted]")
            .field("info", &self.info)
            .finish()
    }
}

impl Drop for CreateTokenResponse {
    fn drop(&mut self) {
        self.token.zeroize();
    }
}

/// `POST /v1/auth/token/lookup` and `…/revoke`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccessorRequest {
    /// The token's accessor.
    accessor: String,
}

/// Creates a token (admin).
#[utoipa::path(post, path = "/v1/auth/token/create", request_body = CreateTokenRequest, responses(
    (status = 200, body = CreateTokenResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    ctx: RequestContext,
    body: RawBody,
) -> Result<Json<CreateTokenResponse>, ApiError> {
    let mut call = Call::new(&state, &ctx, "token.create");
    let caller = call.authorize(&[Role::Admin]).await?;
    let (req, value) = call.parse::<CreateTokenRequest>(&body).await?;
    if !caller.may_grant(&req.roles) {
        let err = ApiError::Forbidden {
            request_id: ctx.request_id.clone(),
            needed: req.roles.clone(),
            held: caller.roles.clone(),
        };
        return Err(call.fail(err, Some(value)).await);
    }
    let ttl = req
        .ttl
        .map_or(DEFAULT_TOKEN_TTL_SECS, HumanDuration::as_secs);
    call.attempt(value).await?;
    let (secret, record) = match state.tokens.create(&req.roles, Some(ttl), now_secs()).await {
        Ok(created) => created,
        Err(e) => return Err(call.fail(call.auth_error(e), None).await),
    };
    let response = CreateTokenResponse {
        token: secret.expose().to_owned(),
        info: record.into(),
    };
    call.success(&response).await?;
    Ok(Json(response))
}

/// Describes the presented token.
#[utoipa::path(get, path = "/v1/auth/token/lookup-self", responses(
    (status = 200, body = TokenInfo), (status = 401, body = ErrorBody)))]
pub(crate) async fn lookup_self(
    State(state): State<AppState>,
    ctx: RequestContext,
) -> Result<Json<TokenInfo>, ApiError> {
    let mut call = Call::new(&state, &ctx, "token.lookup-self");
    let record = call.authorize(ANY_ROLE).await?;
    let response = TokenInfo::from(record);
    call.success(&response).await?;
    Ok(Json(response))
}

/// Describes the token with an accessor (admin or auditor).
#[utoipa::path(post, path = "/v1/auth/token/lookup", request_body = AccessorRequest, responses(
    (status = 200, body = TokenInfo), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn lookup(
    State(state): State<AppState>,
    ctx: RequestContext,
    body: RawBody,
) -> Result<Json<TokenInfo>, ApiError> {
    let mut call = Call::new(&state, &ctx, "token.lookup");
    call.authorize(&[Role::Auditor]).await?;
    let (req, value) = call.parse::<AccessorRequest>(&body).await?;
    let record = match state.tokens.lookup_accessor(&req.accessor).await {
        Ok(record) => record,
        Err(e) => return Err(call.fail(call.auth_error(e), Some(value)).await),
    };
    let response = TokenInfo::from(record);
    call.success(&response).await?;
    Ok(Json(response))
}

/// Revokes the token with an accessor (admin).
#[utoipa::path(post, path = "/v1/auth/token/revoke", request_body = AccessorRequest, responses(
    (status = 200), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    ctx: RequestContext,
    body: RawBody,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut call = Call::new(&state, &ctx, "token.revoke");
    call.authorize(&[Role::Admin]).await?;
    let (req, value) = call.parse::<AccessorRequest>(&body).await?;
    call.attempt(value).await?;
    if let Err(e) = state.tokens.revoke_accessor(&req.accessor).await {
        return Err(call.fail(call.auth_error(e), None).await);
    }
    let response = json!({});
    call.success(&response).await?;
    Ok(Json(response))
}

/// Revokes the presented token.
#[utoipa::path(post, path = "/v1/auth/token/revoke-self", responses(
    (status = 200), (status = 401, body = ErrorBody)))]
pub(crate) async fn revoke_self(
    State(state): State<AppState>,
    ctx: RequestContext,
) -> Result<Json<serde_json::Value>, ApiError> {
    let mut call = Call::new(&state, &ctx, "token.revoke-self");
    let record = call.authorize(ANY_ROLE).await?;
    call.attempt(json!({})).await?;
    if let Err(e) = state.tokens.revoke_accessor(&record.accessor).await {
        return Err(call.fail(call.auth_error(e), None).await);
    }
    let response = json!({});
    call.success(&response).await?;
    Ok(Json(response))
}
