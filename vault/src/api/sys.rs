//! `/v1/sys/*`: health, seal status, init, unseal, seal, rotate,
//! audit-hash; the public types are the response bodies, shared with the
//! CLI client.
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
use crate::barrier::BarrierError;
use crate::seal::{SealError, SealKind, SealStatus, UnsealProgress, UnsealShare};
use keyward_hardware::{
    MAX_PCR_INDEX, PcrBank, PcrSelection, Tpm, TpmSealError, default_seal_pcrs,
};

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

/// How `POST /v1/sys/init` protects the root key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum InitType {
    /// Shamir unseal shares (`secret_shares`, `secret_threshold`).
    #[default]
    Shamir,
    /// Sealed to the server's TPM (`seal.tcti`), with recovery shares
    /// (`recovery_shares`, `recovery_threshold`) and an optional `pcrs`.
    Tpm,
}

/// `POST /v1/sys/init`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct InitRequest {
    /// `shamir` (default) or `tpm`.
    #[serde(default, rename = "type")]
    kind: InitType,
    /// Shares to issue (1–255); Shamir mode.
    #[serde(default)]
    secret_shares: Option<u8>,
    /// Shares needed to unseal (1–`secret_shares`); Shamir mode.
    #[serde(default)]
    secret_threshold: Option<u8>,
    /// Recovery shares to issue (1–255); TPM mode.
    #[serde(default)]
    recovery_shares: Option<u8>,
    /// Recovery shares needed (1–`recovery_shares`); TPM mode.
    #[serde(default)]
    recovery_threshold: Option<u8>,
    /// PCRs the root key is sealed to, `bank:i,j,…` (default
    /// `sha256:0,2,4,7`); TPM mode.
    #[serde(default)]
    pcrs: Option<String>,
}

/// Largest number of PCR indices in a `pcrs` field (a PC Client TPM has 24).
const MAX_PCR_FIELD_LEN: usize = 128;

/// Parses `sha256:0,2,4,7`: one bank, distinct indices up to 23 (the TPM
/// layer seals to one bank only).
fn parse_pcrs(text: &str) -> Result<PcrSelection, ApiError> {
    let bad = |message: &str| ApiError::InvalidField {
        field: "pcrs",
        message: message.to_owned(),
    };
    if text.len() > MAX_PCR_FIELD_LEN {
        return Err(bad("too long"));
    }
    let (bank, list) = text
        .split_once(':')
        .ok_or_else(|| bad("expected bank:indices, e.g. sha256:0,2,4,7"))?;
    let bank = match bank {
        "sha1" => PcrBank::Sha1,
        "sha256" => PcrBank::Sha256,
        "sha384" => PcrBank::Sha384,
        "sha512" => PcrBank::Sha512,
        _ => return Err(bad("bank must be sha1, sha256, sha384 or sha512")),
    };
    let mut indices = Vec::new();
    for item in list.split(',') {
        let index: u8 = item
            .parse()
            .map_err(|_| bad("indices must be decimal numbers"))?;
        if index > MAX_PCR_INDEX {
            return Err(bad("PCR index above 23"));
        }
        if indices.contains(&index) {
            return Err(bad("duplicate PCR index"));
        }
        indices.push(index);
    }
    Ok(PcrSelection::new(bank, &indices))
}

/// What an init request asks for, once its fields are checked.
enum InitPlan {
    Shamir {
        threshold: u8,
        shares: u8,
    },
    Tpm {
        threshold: u8,
        shares: u8,
        pcrs: PcrSelection,
        tcti: String,
    },
}

fn required(field: &'static str, value: Option<u8>) -> Result<u8, ApiError> {
    value.ok_or(ApiError::InvalidField {
        field,
        message: "required".to_owned(),
    })
}

fn refused(field: &'static str, present: bool, kind: &str) -> Result<(), ApiError> {
    if present {
        return Err(ApiError::InvalidField {
            field,
            message: format!("not allowed with type {kind}"),
        });
    }
    Ok(())
}

impl InitRequest {
    fn plan(&self, state: &AppState) -> Result<InitPlan, ApiError> {
        match self.kind {
            InitType::Shamir => {
                refused("recovery_shares", self.recovery_shares.is_some(), "shamir")?;
                refused(
                    "recovery_threshold",
                    self.recovery_threshold.is_some(),
                    "shamir",
                )?;
                refused("pcrs", self.pcrs.is_some(), "shamir")?;
                Ok(InitPlan::Shamir {
                    threshold: required("secret_threshold", self.secret_threshold)?,
                    shares: required("secret_shares", self.secret_shares)?,
                })
            }
            InitType::Tpm => {
                refused("secret_shares", self.secret_shares.is_some(), "tpm")?;
                refused("secret_threshold", self.secret_threshold.is_some(), "tpm")?;
                let threshold = required("recovery_threshold", self.recovery_threshold)?;
                let shares = required("recovery_shares", self.recovery_shares)?;
                let pcrs = match &self.pcrs {
                    Some(text) => parse_pcrs(text)?,
                    None => default_seal_pcrs(),
                };
                let tcti = state.seal_tpm.tcti().ok_or(ApiError::InvalidField {
                    field: "type",
                    message: "this server has no TPM configured (seal.tcti)".to_owned(),
                })?;
                Ok(InitPlan::Tpm {
                    threshold,
                    shares,
                    pcrs,
                    tcti,
                })
            }
        }
    }
}

/// The TCTI of the server's own TPM (`seal.tcti`), if configured.
///
/// The TPM is opened for each operation (init, auto-unseal) and closed
/// after it, not held for the server's lifetime: a TPM without a resource
/// manager (swtpm, `/dev/tpm0`) serves one client at a time, and other
/// tools on the vault host need it too.
#[derive(Debug, Default)]
pub struct TpmSlot(std::sync::Mutex<Option<String>>);

impl TpmSlot {
    /// Sets (or clears) the TCTI.
    pub fn configure(&self, tcti: Option<String>) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = tcti;
    }

    /// The configured TCTI.
    pub fn tcti(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Opens the TPM behind `tcti` off the async worker threads (opening
/// blocks on the TPM).
pub(crate) async fn open_tpm(tcti: String) -> Result<Tpm, SealError> {
    tokio::task::spawn_blocking(move || Tpm::open(&tcti))
        .await
        .map_err(|_| SealError::TpmTaskFailed)?
        .map_err(|e| SealError::Tpm(TpmSealError::Tpm(e)))
}

/// Closes a TPM connection off the async worker threads (closing joins
/// the TPM's owning thread).
pub(crate) async fn close_tpm(tpm: Tpm) {
    let _ = tokio::task::spawn_blocking(move || drop(tpm)).await;
}

/// The one answer that carries the unseal shares and the root token.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct InitResponse {
    /// Hex unseal shares (Shamir mode; empty in TPM mode); shown once.
    pub keys: Vec<String>,
    /// Hex recovery shares (TPM mode; empty in Shamir mode); shown once.
    #[serde(default)]
    pub recovery_keys: Vec<String>,
    /// The root token (admin, no expiry); shown once.
    pub root_token: String,
    /// The root token's accessor.
    pub root_token_accessor: String,
}

impl std::fmt::Debug for InitResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitResponse")
            .field("keys", &self.keys.len())
            .field("recovery_keys", &self.recovery_keys.len())
            .field("root_token_accessor", &self.root_token_accessor)
            .finish_non_exhaustive()
    }
}

impl Drop for InitResponse {
    fn drop(&mut self) {
        self.keys.zeroize();
        self.recovery_keys.zeroize();
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

/// Initialises with Shamir shares, or with the root key sealed to the
/// server's TPM plus recovery shares; returns the shares and a root token,
/// once.
#[utoipa::path(post, path = "/v1/sys/init", request_body = InitRequest, responses(
    (status = 200, body = InitResponse), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn init(
    State(state): State<AppState>,
    ctx: RequestContext,
    body: RawBody,
) -> Result<Json<InitResponse>, ApiError> {
    let call = Call::new(&state, &ctx, "sys.init");
    let (req, value) = call.parse::<InitRequest>(&body).await?;
    let plan = match req.plan(&state) {
        Ok(plan) => plan,
        Err(e) => return Err(call.fail(e, Some(value)).await),
    };
    if state.seal.status().initialized {
        return Err(call
            .fail(ApiError::Seal(SealError::AlreadyInitialized), Some(value))
            .await);
    }
    call.attempt(value).await?;
    let result = async {
        let (shares, tpm_mode) = match plan {
            InitPlan::Shamir { threshold, shares } => (
                state
                    .seal
                    .init_shamir(threshold, shares)
                    .await
                    .map_err(seal_error)?,
                false,
            ),
            InitPlan::Tpm {
                threshold,
                shares,
                pcrs,
                tcti,
            } => {
                let tpm = open_tpm(tcti).await.map_err(seal_error)?;
                let issued = state.seal.init_tpm(&tpm, &pcrs, threshold, shares).await;
                close_tpm(tpm).await;
                let issued = issued.map_err(|e| match e {
                    SealError::InvalidShareParameters { .. } => ApiError::InvalidField {
                        field: "recovery_threshold",
                        message: e.to_string(),
                    },
                    other => seal_error(other),
                })?;
                (issued, true)
            }
        };
        install_audit_key(&state, &call).await?;
        let (token, record) = state
            .tokens
            .create(&[Role::Admin], None, now_secs())
            .await
            .map_err(|e| call.auth_error(e))?;
        let hex: Vec<String> = shares.iter().map(|s| s.to_hex().to_string()).collect();
        let (keys, recovery_keys) = if tpm_mode {
            (Vec::new(), hex)
        } else {
            (hex, Vec::new())
        };
        Ok(InitResponse {
            keys,
            recovery_keys,
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
    let (req, value) = call.parse::<UnsealRequest>(&body).await?;
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
    let (req, _) = call.parse::<AuditHashRequest>(&body).await?;
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

/// `POST /v1/sys/rotate`: the barrier's new active key term.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateResponse {
    /// The key term new writes are sealed under; older terms still open.
    pub term: u32,
}

/// Rotates the barrier keyring (admin): adds a key term and makes it active.
#[utoipa::path(post, path = "/v1/sys/rotate", responses(
    (status = 200, body = RotateResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn rotate(
    State(state): State<AppState>,
    ctx: RequestContext,
) -> Result<Json<RotateResponse>, ApiError> {
    let mut call = Call::new(&state, &ctx, "sys.rotate");
    call.authorize(&[Role::Admin]).await?;
    call.attempt(json!({})).await?;
    let term = match state.seal.barrier().rotate().await {
        Ok(term) => term,
        Err(BarrierError::KeyringFull { .. }) => {
            let err = ApiError::Conflict {
                what: "the keyring holds the maximum number of key terms",
            };
            return Err(call.fail(err, None).await);
        }
        Err(BarrierError::Sealed) => return Err(call.fail(ApiError::Sealed, None).await),
        Err(e) => {
            let err = ApiError::internal(&ctx.request_id, &e);
            return Err(call.fail(err, None).await);
        }
    };
    let response = RotateResponse { term };
    call.success(&response).await?;
    Ok(Json(response))
}
