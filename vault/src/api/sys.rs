//! `/v1/sys/*`: health, seal status, init, unseal, seal, audit-hash; the
//! public types are the response bodies, shared with the CLI client.
//!
//! Init is the one operation whose outcome cannot be retried: if anything
//! after the seal's initialisation fails (audit key, root token, the
//! outcome audit record), the vault is initialised but the shares were
//! never shown; the answer is an error and the operator must wipe the data
//! directory and init again. The attempt record is written first, so the
//! log shows the init was tried.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use zeroize::Zeroize;

use super::error::{ApiError, ErrorBody};
use super::extract::{RawBody, RequestContext};
use super::{AppState, Call, now_secs};
use crate::audit::AuditKey;
use crate::auth::Role;
use crate::seal::{SealError, SealKind, SealStatus, UnsealProgress, UnsealShare};

/// `GET /v1/sys/health`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HealthResponse {
    /// Whether the vault was initialised.
    initialized: bool,
    /// Whether it is sealed.
    sealed: bool,
    /// The server version.
    version: &'static str,
}

/// Health: 200 when initialised and unsealed, 503 otherwise (Vault's
/// convention, for load balancers), with the same body.
#[utoipa::path(get, path = "/v1/sys/health", responses(
    (status = 200, body = HealthResponse), (status = 503, body = HealthResponse)))]
pub(crate) async fn health(State(state): State<AppState>) -> Response {
    let status = state.seal.status();
    let body = HealthResponse {
        initialized: status.initialized,
        sealed: status.sealed,
        version: env!("CARGO_PKG_VERSION"),
    };
    let code = if status.initialized && !status.sealed {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// The seal's state.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SealStatusResponse {
    /// Whether the vault was initialised.
    pub initialized: bool,
    /// Whether it is sealed.
    pub sealed: bool,
    /// `shamir`, `tpm`, `dev`, or null before init.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Shares needed to unseal.
    pub threshold: u8,
    /// Shares issued.
    pub shares: u8,
    /// Shares submitted so far.
    pub progress: u8,
}

impl From<SealStatus> for SealStatusResponse {
    fn from(s: SealStatus) -> Self {
        Self {
            initialized: s.initialized,
            sealed: s.sealed,
            kind: s.kind.map(|k| {
                match k {
                    SealKind::Shamir => "shamir",
                    SealKind::Tpm => "tpm",
                    SealKind::Dev => "dev",
                }
                .to_owned()
            }),
            threshold: s.threshold,
            shares: s.shares,
            progress: s.progress,
        }
    }
}

/// Seal status (unauthenticated, as in Vault).
#[utoipa::path(get, path = "/v1/sys/seal-status", responses((status = 200, body = SealStatusResponse)))]
pub(crate) async fn seal_status(State(state): State<AppState>) -> Json<SealStatusResponse> {
    Json(state.seal.status().into())
}

/// `POST /v1/sys/init`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InitRequest {
    /// Shares to issue (1–255).
    secret_shares: u8,
    /// Shares needed to unseal (1–`secret_shares`).
    secret_threshold: u8,
}

/// The one answer that carries the unseal shares and the root token.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct InitResponse {
    /// Hex unseal shares; shown once.
    pub keys: Vec<String>,
    /// The root token (admin, no expiry); shown once.
    pub root_token: String,
    /// The root token's accessor.
    pub root_token_accessor: String,
}

impl std::fmt::Debug for InitResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitResponse")
            .field("keys", &self.keys.len())
            .field("root_token_accessor", &self.root_token_accessor)
            .finish_non_exhaustive()
    }
}

impl Drop for InitResponse {
    fn drop(&mut self) {
        self.keys.zeroize();
        self.root_token.zeroize();
    }
}

fn seal_error(e: SealError) -> ApiError {
    match e {
        SealError::InvalidShareParameters { .. } => ApiError::InvalidField {
            field: "secret_threshold",
            message: e.to_string(),
        },
        SealError::MalformedShare { .. } => ApiError::InvalidField {
            field: "key",
            message: e.to_string(),
        },
        SealError::NotInitialized => ApiError::NotInitialized,
        other => ApiError::Seal(other),
    }
}

/// Loads the audit key into the log once the barrier is open.
async fn install_audit_key(state: &AppState, call: &Call<'_>) -> Result<(), ApiError> {
    let key = AuditKey::load_or_create(&state.storage, state.seal.barrier())
        .await
        .map_err(|e| ApiError::internal(&call.ctx.request_id, &e))?;
    state.audit.set_key(key);
    Ok(())
}

/// Initialises with Shamir shares; returns the shares and a root token,
/// once. TPM mode is initialised through the CLI on the vault host.
#[utoipa::path(post, path = "/v1/sys/init", request_body = InitRequest, responses(
    (status = 200, body = InitResponse), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn init(
    State(state): State<AppState>,
    ctx: RequestContext,
    body: RawBody,
) -> Result<Json<InitResponse>, ApiError> {
    let call = Call::new(&state, &ctx, "sys.init");
    let (req, value) = match body.json::<InitRequest>() {
        Ok(parsed) => parsed,
        Err(e) => return Err(call.fail(e, None).await),
    };
    if state.seal.status().initialized {
        return Err(call
            .fail(ApiError::Seal(SealError::AlreadyInitialized), Some(value))
            .await);
    }
    call.attempt(value).await?;
    let result = async {
        let shares = state
            .seal
            .init_shamir(req.secret_threshold, req.secret_shares)
            .await
            .map_err(seal_error)?;
        install_audit_key(&state, &call).await?;
        let (token, record) = state
            .tokens
            .create(&[Role::Admin], None, now_secs())
            .await
            .map_err(|e| call.auth_error(e))?;
        Ok(InitResponse {
            keys: shares.iter().map(|s| s.to_hex().to_string()).collect(),
            root_token: token.expose().to_owned(),
            root_token_accessor: record.accessor,
        })
    }
    .await;
    let response = match result {
        Ok(r) => r,
        Err(e) => return Err(call.fail(e, None).await),
    };
    call.success(&response).await?;
    Ok(Json(response))
}

/// `POST /v1/sys/unseal`: one share per call, or `reset`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UnsealRequest {
    /// One hex unseal share.
    #[serde(default)]
    key: Option<String>,
    /// Discard the shares submitted so far.
    #[serde(default)]
    reset: bool,
}

impl std::fmt::Debug for UnsealRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnsealRequest")
            .field("reset", &self.reset)
            .finish_non_exhaustive()
    }
}

impl Drop for UnsealRequest {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

/// Submits one unseal share; answers the seal status (progress).
#[utoipa::path(post, path = "/v1/sys/unseal", request_body = UnsealRequest, responses(
    (status = 200, body = SealStatusResponse), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn unseal(
    State(state): State<AppState>,
    ctx: RequestContext,
    body: RawBody,
) -> Result<Json<SealStatusResponse>, ApiError> {
    let call = Call::new(&state, &ctx, "sys.unseal");
    let (req, value) = match body.json::<UnsealRequest>() {
        Ok(parsed) => parsed,
        Err(e) => return Err(call.fail(e, None).await),
    };
    call.attempt(value).await?;
    let result = async {
        if req.reset {
            state.seal.reset_progress();
            return Ok(());
        }
        let key = req.key.as_deref().ok_or(ApiError::InvalidField {
            field: "key",
            message: "required unless reset is true".to_owned(),
        })?;
        let share = UnsealShare::from_hex(key).map_err(seal_error)?;
        if let UnsealProgress::Unsealed =
            state.seal.submit_share(share).await.map_err(seal_error)?
        {
            install_audit_key(&state, &call).await?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        return Err(call.fail(e, None).await);
    }
    let response = SealStatusResponse::from(state.seal.status());
    call.success(&response).await?;
    Ok(Json(response))
}

/// Seals the vault (admin): every key leaves memory.
#[utoipa::path(post, path = "/v1/sys/seal", responses(
    (status = 200, body = SealStatusResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn seal(
    State(state): State<AppState>,
    ctx: RequestContext,
) -> Result<Json<SealStatusResponse>, ApiError> {
    let mut call = Call::new(&state, &ctx, "sys.seal");
    call.authorize(&[Role::Admin]).await?;
    call.attempt(json!({})).await?;
    state.seal.seal();
    let response = SealStatusResponse::from(state.seal.status());
    // Written with the key still installed, then the key goes too.
    let written = call.success(&response).await;
    state.audit.clear_key();
    written?;
    Ok(Json(response))
}

/// `POST /v1/sys/audit-hash`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditHashRequest {
    /// A string, number or boolean, as it appeared in a request or response.
    #[schema(value_type = Object)]
    input: Value,
}

/// The HMAC the audit log would record for a value.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditHashResponse {
    /// `hmac-sha256:<hex>`.
    hash: String,
}

/// Returns the audit HMAC of `input` (auditor or admin).
#[utoipa::path(post, path = "/v1/sys/audit-hash", request_body = AuditHashRequest, responses(
    (status = 200, body = AuditHashResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn audit_hash(
    State(state): State<AppState>,
    ctx: RequestContext,
    body: RawBody,
) -> Result<Json<AuditHashResponse>, ApiError> {
    let mut call = Call::new(&state, &ctx, "sys.audit-hash");
    call.authorize(&[Role::Auditor]).await?;
    let (req, _) = match body.json::<AuditHashRequest>() {
        Ok(parsed) => parsed,
        Err(e) => return Err(call.fail(e, None).await),
    };
    let hash = match state.audit.key().and_then(|k| k.hash_leaf(&req.input)) {
        Some(hash) => hash,
        None => {
            let err = ApiError::InvalidField {
                field: "input",
                message: "must be a string, number or boolean".to_owned(),
            };
            return Err(call.fail(err, None).await);
        }
    };
    let response = AuditHashResponse { hash };
    call.success(&response).await?;
    Ok(Json(response))
}
