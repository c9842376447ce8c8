//! The release path over HTTP: challenges, evidence, secrets, leases, and
//! the admin routes that feed them (kv values, database engine roles,
//! Cedar release policies, identity key rotation), plus the public OIDC
//! discovery document and JWKS.
//!
//! Every decision on the release path writes exactly one audit record
//! before the answer leaves (success with what was released, never the
//! secret; or the exact stage and reason of a denial). A denial is a
//! uniform 403 with the request id; malformed input is a 400 naming the
//! field (syntax, not trust). A failed audit write fails the request, and
//! a secret already created for it is destroyed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::error::{ApiError, ErrorBody};
use super::extract::{RawBody, RequestContext};
use super::{AppState, Call, now_ms, now_secs};
use crate::audit::{AuditEntry, Outcome};
use crate::auth::Role;
use crate::hosts::HostStore;
use crate::obo::OboSettings;
use crate::release::evidence::{self, Evidence};
use crate::release::lease::{self, LeaseRecord, Revocation, RevokeCounts, Revoked};
use crate::release::{Denial, Session, Stage, kv};
use crate::release_policy::{Action, PolicyStore, ReleaseRequest, WorkloadFacts};
use crate::secrets::database::{PostgresEngine, PostgresSettings};
use crate::secrets::identity::{self, IdentitySettings, KeySet, WorkloadClaims};
use crate::storage::{KeyRange, Keyspace, MAX_SCAN, StorageError};

const ADMIN: &[Role] = &[Role::Admin];
const READ: &[Role] = &[Role::Admin, Role::Auditor];
/// Where release policies live in [`Keyspace::System`].
const POLICY_PREFIX: &str = "release-policy/";
/// Where the release policy schema lives.
const SCHEMA_KEY: &[u8] = b"release-schema";
/// Where the identity key set lives in [`Keyspace::Secrets`].
const IDENTITY_KEYS: &[u8] = b"identity/keys";
/// Revoked identity tokens: `identity/revoked/<jti>` → expiry (seconds).
const IDENTITY_REVOKED: &str = "identity/revoked/";
/// Database engine roles: `config/database/postgres/<role>`.
const DB_ROLE_PREFIX: &str = "config/database/postgres/";

/// Secrets-engine state shared by the handlers.
#[derive(Debug, Default)]
pub struct Engines {
    identity: Mutex<Option<IdentitySettings>>,
    keys: tokio::sync::Mutex<Option<KeySet>>,
    postgres: Mutex<HashMap<String, Arc<DbRole>>>,
    policies: tokio::sync::RwLock<Option<Arc<PolicyStore>>>,
    obo: Mutex<Option<Arc<OboSettings>>>,
}

impl Engines {
    /// Configures the identity engine (`[release.identity]`).
    pub fn configure_identity(&self, settings: Option<IdentitySettings>) {
        if let Ok(mut slot) = self.identity.lock() {
            *slot = settings;
        }
    }

    /// Configures the on-behalf-of issuer (`[release.on_behalf_of]`).
    pub fn configure_obo(&self, settings: Option<OboSettings>) {
        if let Ok(mut slot) = self.obo.lock() {
            *slot = settings.map(Arc::new);
        }
    }

    fn identity_settings(&self) -> Option<IdentitySettings> {
        self.identity.lock().ok().and_then(|s| s.clone())
    }

    fn obo(&self) -> Option<Arc<OboSettings>> {
        self.obo.lock().ok().and_then(|s| s.clone())
    }
}

/// A configured database engine role.
#[derive(Debug)]
struct DbRole {
    engine: PostgresEngine,
    default_ttl_secs: u64,
    max_ttl_secs: u64,
}

/// The stored configuration of a database engine role (barrier-encrypted:
/// it holds the admin DSN).
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DbRoleConfig {
    /// Admin DSN (loopback or Unix socket). Write-only: never returned.
    connection_url: String,
    /// Creation templates (`{{name}}`, `{{password}}`, `{{expiration}}`).
    creation_statements: Vec<String>,
    /// Extra templates run before the role is dropped.
    #[serde(default)]
    revocation_statements: Vec<String>,
    /// Role name prefix.
    #[serde(default = "default_prefix")]
    username_prefix: String,
    /// Default lease TTL, seconds.
    #[serde(default = "default_db_ttl")]
    default_ttl: u64,
    /// Longest lease TTL, seconds.
    #[serde(default = "default_db_max_ttl")]
    max_ttl: u64,
}

impl Drop for DbRoleConfig {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.connection_url);
    }
}

impl std::fmt::Debug for DbRoleConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbRoleConfig")
            .field("connection_url", &"[redacted]")
            .field("creation_statements", &self.creation_statements.len())
            .finish_non_exhaustive()
    }
}

fn default_prefix() -> String {
    "kw".to_owned()
}
fn default_db_ttl() -> u64 {
    300
}
fn default_db_max_ttl() -> u64 {
    3600
}

// ---------------------------------------------------------------- helpers

/// Writes the one audit record of a release-path decision.
async fn audit(
    state: &AppState,
    ctx: &RequestContext,
    operation: &'static str,
    actor: &str,
    (outcome, status, reason, response): (Outcome, u16, Option<String>, Option<Value>),
) -> Result<(), ApiError> {
    state
        .audit
        .append(AuditEntry {
            time_ms: now_ms(),
            request_id: ctx.request_id.clone(),
            actor: actor.to_owned(),
            operation,
            path: ctx.path.clone(),
            outcome,
            status: Some(status),
            reason,
            request: None,
            response,
        })
        .await
        .map_err(ApiError::AuditUnavailable)
}

/// Audits a denial and returns what the requester is told.
async fn refuse(
    state: &AppState,
    ctx: &RequestContext,
    operation: &'static str,
    actor: &str,
    denial: Denial,
) -> ApiError {
    let err = match denial.stage {
        Stage::Request => ApiError::InvalidBody {
            message: denial.reason.clone(),
        },
        Stage::Internal | Stage::Engine => ApiError::Internal {
            request_id: ctx.request_id.clone(),
            detail: denial.to_string(),
        },
        _ => ApiError::Denied {
            request_id: ctx.request_id.clone(),
            stage: denial.stage.as_str(),
            reason: denial.reason.clone(),
        },
    };
    refuse_with(state, ctx, operation, actor, err).await
}

/// Audits `err` (a denial, or a failure) and returns what to answer.
async fn refuse_with(
    state: &AppState,
    ctx: &RequestContext,
    operation: &'static str,
    actor: &str,
    err: ApiError,
) -> ApiError {
    let outcome = if matches!(err, ApiError::Denied { .. }) {
        Outcome::Denied
    } else {
        Outcome::Failed
    };
    match audit(
        state,
        ctx,
        operation,
        actor,
        (outcome, err.status().as_u16(), Some(err.detail()), None),
    )
    .await
    {
        Ok(()) => err,
        Err(audit_error) => audit_error,
    }
}

fn host_store(state: &AppState) -> HostStore {
    HostStore::new(Arc::clone(&state.storage), Arc::clone(state.seal.barrier()))
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &RawBody) -> Result<T, Denial> {
    body.json::<T>().map(|(v, _)| v).map_err(|e| Denial {
        stage: Stage::Request,
        reason: e.to_string(),
    })
}

fn denial(stage: Stage, reason: impl Into<String>) -> Denial {
    Denial {
        stage,
        reason: reason.into(),
    }
}

/// Authenticates a session request (token and proof of possession);
/// a refusal is audited.
async fn session_of(
    state: &AppState,
    ctx: &RequestContext,
    body: &RawBody,
    operation: &'static str,
) -> Result<Arc<Session>, ApiError> {
    let hosts = host_store(state);
    let result = state
        .release
        .authenticate(
            state.storage.as_ref(),
            &hosts,
            ctx.token.as_deref().map(String::as_str),
            ctx.pop.as_deref(),
            &ctx.method,
            &ctx.path,
            body.bytes(),
            now_ms(),
        )
        .await;
    match result {
        Ok(session) => Ok(session),
        Err(d) => Err(refuse(state, ctx, operation, "anonymous", d).await),
    }
}

fn session_actor(session: &Session) -> String {
    format!(
        "workload:{}/{} (session {})",
        session.host_id, session.instance_id, session.id
    )
}

// ----------------------------------------------------------- challenge

/// A fresh challenge.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ChallengeResponse {
    /// The nonce, hex.
    nonce: String,
    /// Its expiry, milliseconds since the Unix epoch.
    expires_at_ms: u64,
}

/// Issues a single-use nonce.
#[utoipa::path(post, path = "/v1/attest/challenge", responses((status = 200, body = ChallengeResponse)))]
pub(crate) async fn challenge(
    State(state): State<AppState>,
    ctx: RequestContext,
) -> Result<Json<ChallengeResponse>, ApiError> {
    let key = state
        .release
        .nonce_key(state.storage.as_ref(), state.seal.barrier())
        .await
        .map_err(|e| ApiError::internal(&ctx.request_id, &e))?;
    let (nonce, expires_at_ms) = state
        .release
        .challenge(key, now_ms())
        .map_err(|e| ApiError::internal(&ctx.request_id, &e))?;
    Ok(Json(ChallengeResponse {
        nonce,
        expires_at_ms,
    }))
}

// ------------------------------------------------------------- attest

/// The attestation session.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct AttestResponse {
    /// The session token (`kws.…`); every use needs a proof of possession.
    token: String,
    /// What the session proves.
    session: Session,
}

impl std::fmt::Debug for AttestResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttestResponse")
            .field("token", &"[redacted]")
            .field("session", &self.session)
            .finish()
    }
}

/// Verifies evidence and opens an attestation session.
#[utoipa::path(post, path = "/v1/attest", request_body = Evidence,
    responses((status = 200, body = AttestResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn attest(
    State(state): State<AppState>,
    ctx: RequestContext,
    body: RawBody,
) -> Result<Response, ApiError> {
    const OP: &str = "attest";
    // Unreadable or oversize bodies keep their own answer (400, 413).
    let evidence: Evidence = match body.json::<Evidence>() {
        Ok((e, _)) => e,
        Err(e) => return Err(refuse_with(&state, &ctx, OP, "anonymous", e).await),
    };
    let actor = format!(
        "host:{}",
        evidence.host_id.chars().take(64).collect::<String>()
    );
    let key = match state
        .release
        .nonce_key(state.storage.as_ref(), state.seal.barrier())
        .await
    {
        Ok(key) => key,
        Err(e) => return Err(refuse(&state, &ctx, OP, &actor, denial(Stage::Internal, e)).await),
    };
    let now = now_ms();
    let hosts = host_store(&state);
    let settings = state.release.settings();
    let stores = evidence::Stores {
        storage: state.storage.as_ref(),
        hosts: &hosts,
        admitted: state.release.admitted(),
    };
    let verified = evidence::verify(&evidence, key, stores, settings.workload_pcr, now).await;
    let attested = match verified {
        Ok(a) => a,
        Err(rejection) => {
            // Evidence the host's AK signed that then fails is a failed
            // re-attestation: revocation follows (see RevokeScope).
            revoke_scope(&state, &ctx, &rejection.scope).await;
            return Err(refuse(&state, &ctx, OP, &actor, rejection.denial).await);
        }
    };
    let (token, session) = match state
        .release
        .create_session(state.storage.as_ref(), attested, now)
        .await
    {
        Ok(s) => s,
        Err(d) => return Err(refuse(&state, &ctx, OP, &actor, d).await),
    };
    let record = serde_json::to_value(session.as_ref()).ok();
    if let Err(e) = audit(
        &state,
        &ctx,
        OP,
        &actor,
        (Outcome::Success, 200, None, record),
    )
    .await
    {
        // No audit record, no session.
        state
            .release
            .discard_session(state.storage.as_ref(), &token, &session)
            .await;
        return Err(e);
    }
    if state.release.attested_write_due(&session.host_id, now) {
        let hosts = host_store(&state);
        let host_id = session.host_id.clone();
        let at = now / 1000;
        // Best effort, off the request path: a lost race or a failed write
        // only delays the host's "last attested" display.
        tokio::spawn(async move {
            let _ = hosts
                .update(&host_id, |record| {
                    record.last_attested_at = Some(at);
                    Ok(())
                })
                .await;
        });
    }
    let response = AttestResponse {
        token: token.to_string(),
        session: (*session).clone(),
    };
    Ok(Json(response).into_response())
}

// ------------------------------------------------------------ secrets

/// `POST /v1/secrets/{path}` body (all optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecretRequest {
    /// kv: a version other than the current.
    #[serde(default)]
    version: Option<u64>,
    /// identity: the token's audience.
    #[serde(default)]
    audience: Option<String>,
    /// Lease or token TTL, seconds (clamped by the engine's maximum and the
    /// session's expiry).
    #[serde(default)]
    ttl: Option<u64>,
    /// A user's JWT from the configured OIDC issuer: the workload acts for
    /// this user.
    #[serde(default)]
    on_behalf_of: Option<String>,
}

fn facts(session: &Session) -> WorkloadFacts {
    WorkloadFacts {
        host_id: session.host_id.clone(),
        host_name: session.host_name.clone(),
        host_labels: session.host_labels.clone(),
        image_digest: session.image_digest.clone(),
        image_reference: session.image_reference.clone(),
        image_signer: session.image_signer.clone(),
        model_name: session.model_name.clone(),
        model_digest: session.model_digest.clone(),
        model_signer: session.model_signer.clone(),
        instance_id: session.instance_id.clone(),
    }
}

/// Loads (once) the Cedar policy store from storage.
async fn policy_store(state: &AppState) -> Result<Arc<PolicyStore>, Denial> {
    if let Some(store) = state.engines.policies.read().await.as_ref() {
        return Ok(Arc::clone(store));
    }
    let mut slot = state.engines.policies.write().await;
    if let Some(store) = slot.as_ref() {
        return Ok(Arc::clone(store));
    }
    let store = Arc::new(load_policy_store(state, None).await?);
    *slot = Some(Arc::clone(&store));
    Ok(store)
}

/// Builds a store from storage; `schema` overrides the stored schema.
async fn load_policy_store(state: &AppState, schema: Option<&str>) -> Result<PolicyStore, Denial> {
    let internal = |e: String| denial(Stage::Internal, e);
    let stored_schema = match schema {
        Some(s) => s.to_owned(),
        None => match state
            .storage
            .get(Keyspace::System, SCHEMA_KEY)
            .await
            .map_err(|e| internal(e.to_string()))?
        {
            Some(bytes) => String::from_utf8(bytes).map_err(|e| internal(e.to_string()))?,
            None => crate::release_policy::DEFAULT_SCHEMA.to_owned(),
        },
    };
    let mut store = PolicyStore::new(&stored_schema).map_err(|e| internal(e.to_string()))?;
    let docs = state
        .storage
        .scan(
            Keyspace::System,
            KeyRange::Prefix(POLICY_PREFIX.as_bytes()),
            MAX_SCAN,
        )
        .await
        .map_err(|e| internal(e.to_string()))?;
    for (key, text) in docs {
        let name = String::from_utf8_lossy(key.get(POLICY_PREFIX.len()..).unwrap_or_default())
            .into_owned();
        let text = String::from_utf8(text).map_err(|e| internal(e.to_string()))?;
        store
            .insert(&name, &text)
            .map_err(|e| internal(format!("stored policy {name}: {e}")))?;
    }
    Ok(store)
}

/// Cedar, with the optional on-behalf-of user.
async fn authorize(
    state: &AppState,
    session: &Session,
    action: Action,
    path: &str,
    engine: &str,
    on_behalf_of: Option<&str>,
) -> Result<(Option<String>, String), Denial> {
    let user = match on_behalf_of {
        None => None,
        Some(token) => {
            let Some(obo) = state.engines.obo() else {
                return Err(denial(
                    Stage::Policy,
                    "on-behalf-of token given but no issuer is configured",
                ));
            };
            Some(
                obo.verify(token, now_secs())
                    .map_err(|e| denial(Stage::Policy, format!("on-behalf-of token: {e}")))?,
            )
        }
    };
    let store = policy_store(state).await?;
    let workload = facts(session);
    let decision = store.authorize(&ReleaseRequest {
        workload: &workload,
        action,
        path,
        engine,
        attested_at: session.attested_at_ms / 1000,
        user: user.as_ref(),
    });
    let user_text = user
        .as_ref()
        .map(|u| format!("{} ({})", u.subject, u.issuer));
    if !decision.allowed {
        return Err(denial(Stage::Policy, decision.reason()));
    }
    Ok((user_text, decision.reason()))
}

/// What was released, for the audit record and the response.
struct Released {
    body: Zeroizing<String>,
    audit: Value,
}

/// Releases the secret at `path` to an attested, authorized workload.
#[utoipa::path(post, path = "/v1/secrets/{path}", params(("path" = String, Path)),
    request_body = SecretRequest, responses((status = 200, body = Object), (status = 400, body = ErrorBody),
    (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn release(
    State(state): State<AppState>,
    Path(path): Path<String>,
    ctx: RequestContext,
    body: RawBody,
) -> Result<Response, ApiError> {
    const OP: &str = "secret.release";
    let session = session_of(&state, &ctx, &body, OP).await?;
    let actor = session_actor(&session);
    let request: SecretRequest = if body.bytes().is_empty() {
        SecretRequest::default()
    } else {
        match body.json::<SecretRequest>() {
            Ok((r, _)) => r,
            Err(e) => return Err(refuse_with(&state, &ctx, OP, &actor, e).await),
        }
    };
    let engine = path.split('/').next().unwrap_or_default();
    let (user, decided_by) = match authorize(
        &state,
        &session,
        Action::Release,
        &path,
        engine,
        request.on_behalf_of.as_deref(),
    )
    .await
    {
        Ok(r) => r,
        Err(d) => return Err(refuse(&state, &ctx, OP, &actor, d).await),
    };
    let outcome = match engine {
        "kv" => release_kv(&state, &path, &request).await,
        "identity" => {
            release_identity(
                &state,
                &ctx.request_id,
                &session,
                &path,
                &request,
                user.clone(),
            )
            .await
        }
        "database" => {
            release_database(
                &state,
                &ctx.request_id,
                &session,
                &path,
                &request,
                user.clone(),
            )
            .await
        }
        _ => Err(denial(
            Stage::Request,
            format!("no secrets engine at {path:?}"),
        )),
    };
    let (released, lease_id) = match outcome {
        Ok(r) => r,
        Err(d) => return Err(refuse(&state, &ctx, OP, &actor, d).await),
    };
    let mut record = released.audit;
    if let Value::Object(map) = &mut record {
        map.insert("on_behalf_of".into(), json!(user));
        map.insert("policy".into(), json!(decided_by));
        map.insert("session".into(), json!(session.id));
    }
    if let Err(e) = audit(
        &state,
        &ctx,
        OP,
        &actor,
        (Outcome::Success, 200, None, Some(record)),
    )
    .await
    {
        // No audit record, no secret: destroy what was made for it.
        if let Some(id) = lease_id {
            let _ = lease::revoke(
                state.storage.as_ref(),
                &EngineRevoker(&state),
                &id,
                now_ms(),
            )
            .await;
        }
        return Err(e);
    }
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, "application/json")
        .body(Body::from(released.body.as_bytes().to_vec()))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response()))
}

async fn release_kv(
    state: &AppState,
    path: &str,
    request: &SecretRequest,
) -> Result<(Released, Option<String>), Denial> {
    let kv_path = path.strip_prefix("kv/").unwrap_or_default();
    let secret = kv::read(
        state.storage.as_ref(),
        state.seal.barrier(),
        kv_path,
        request.version,
    )
    .await
    .map_err(|e| match e {
        kv::KvError::InvalidPath => denial(Stage::Request, "invalid kv path"),
        other => denial(Stage::Internal, other.to_string()),
    })?
    .ok_or_else(|| denial(Stage::Policy, format!("no kv secret at {path}")))?;
    let body = Zeroizing::new(format!(
        "{{\"path\":{},\"version\":{},\"data\":{}}}",
        json!(path),
        secret.version,
        secret.expose_secret()
    ));
    Ok((
        Released {
            body,
            audit: json!({ "engine": "kv", "path": path, "version": secret.version }),
        },
        None,
    ))
}

/// A lease's time terms: TTL and maximum TTL in seconds, renewability.
struct Terms {
    ttl_secs: u64,
    max_ttl_secs: u64,
    renewable: bool,
}

fn lease_base(
    state: &AppState,
    request_id: &str,
    session: &Session,
    path: &str,
    user: Option<String>,
    terms: Terms,
    revocation: Revocation,
) -> Result<LeaseRecord, Denial> {
    let Terms {
        ttl_secs,
        max_ttl_secs,
        renewable,
    } = terms;
    let now = now_ms();
    let max_expires = now
        .saturating_add(max_ttl_secs.saturating_mul(1000))
        .min(session.expires_at_ms.max(now));
    let expires = now
        .saturating_add(ttl_secs.saturating_mul(1000))
        .min(max_expires);
    Ok(LeaseRecord {
        id: format!("{path}/{}", state.release.random_id()?),
        path: path.to_owned(),
        session_id: session.id.clone(),
        host_id: session.host_id.clone(),
        image_digest: session.image_digest.clone(),
        model_digest: session.model_digest.clone(),
        instance_id: session.instance_id.clone(),
        on_behalf_of: user,
        request_id: request_id.to_owned(),
        issued_at_ms: now,
        expires_at_ms: expires,
        max_expires_at_ms: now.saturating_add(max_ttl_secs.saturating_mul(1000)),
        renewable,
        revocation,
        revoke_attempts: 0,
        last_error: None,
        revoking: false,
    })
}

/// Loads (once) the identity key set, creating it on first use.
async fn with_keys<T>(
    state: &AppState,
    f: impl FnOnce(&mut KeySet, &IdentitySettings) -> Result<T, Denial>,
) -> Result<T, Denial> {
    let settings = state
        .engines
        .identity_settings()
        .ok_or_else(|| denial(Stage::Request, "the identity engine is not configured"))?;
    let mut slot = state.engines.keys.lock().await;
    let internal = |e: String| denial(Stage::Internal, e);
    if slot.is_none() {
        let barrier = state.seal.barrier();
        let stored = state
            .storage
            .get(Keyspace::Secrets, IDENTITY_KEYS)
            .await
            .map_err(|e| internal(e.to_string()))?;
        let keys = match stored {
            Some(sealed) => {
                let plain = barrier
                    .decrypt(Keyspace::Secrets, IDENTITY_KEYS, &sealed)
                    .map_err(|e| internal(e.to_string()))?;
                KeySet::from_bytes(&plain).map_err(|e| internal(e.to_string()))?
            }
            None => {
                let keys = KeySet::generate(now_secs(), state.release.rng())
                    .map_err(|e| internal(e.to_string()))?;
                store_keys(state, &keys.to_bytes()).await?;
                keys
            }
        };
        *slot = Some(keys);
    }
    let keys = slot
        .as_mut()
        .ok_or_else(|| internal("identity keys".into()))?;
    f(keys, &settings)
}

async fn store_keys(state: &AppState, bytes: &[u8]) -> Result<(), Denial> {
    let sealed = state
        .seal
        .barrier()
        .encrypt(Keyspace::Secrets, IDENTITY_KEYS, bytes)
        .await
        .map_err(|e| denial(Stage::Internal, e.to_string()))?;
    let mut batch = crate::storage::WriteBatch::new();
    batch
        .put(Keyspace::Secrets, IDENTITY_KEYS, &sealed)
        .map_err(|e| denial(Stage::Internal, e.to_string()))?;
    state
        .storage
        .commit(batch)
        .await
        .map(|_| ())
        .map_err(|e| denial(Stage::Internal, e.to_string()))
}

async fn release_identity(
    state: &AppState,
    request_id: &str,
    session: &Session,
    path: &str,
    request: &SecretRequest,
    user: Option<String>,
) -> Result<(Released, Option<String>), Denial> {
    if path != "identity/token" {
        return Err(denial(
            Stage::Request,
            "the identity engine serves identity/token",
        ));
    }
    let audience = request
        .audience
        .as_deref()
        .ok_or_else(|| denial(Stage::Request, "audience: required"))?;
    let claims = WorkloadClaims {
        host_id: session.host_id.clone(),
        host_labels: session.host_labels.clone(),
        image_digest: session.image_digest.clone(),
        image_reference: session.image_reference.clone(),
        model_name: session.model_name.clone(),
        model_digest: session.model_digest.clone(),
        instance_id: session.instance_id.clone(),
        on_behalf_of: user.clone(),
    };
    let now = now_secs();
    let remaining = session.expires_at_ms.saturating_sub(now_ms()) / 1000;
    let token = with_keys(state, |keys, settings| {
        let ttl = request
            .ttl
            .unwrap_or(settings.default_ttl_secs)
            .min(remaining.max(1));
        keys.sign(
            &claims,
            audience,
            Some(ttl),
            now,
            settings,
            state.release.rng(),
        )
        .map_err(|e| denial(Stage::Request, e.to_string()))
    })
    .await?;
    let ttl_secs = token.expires_at.saturating_sub(now);
    let lease = lease_base(
        state,
        request_id,
        session,
        path,
        user,
        Terms {
            ttl_secs,
            max_ttl_secs: ttl_secs,
            renewable: false,
        },
        Revocation::Identity {
            jti: token.jti.clone(),
            expires_at: token.expires_at,
        },
    )?;
    lease::insert(state.storage.as_ref(), &lease)
        .await
        .map_err(|e| denial(Stage::Internal, e.to_string()))?;
    let body = Zeroizing::new(
        json!({
            "lease_id": lease.id,
            "lease_duration": ttl_secs,
            "renewable": false,
            "token": token.expose_secret(),
            "expires_at": token.expires_at,
        })
        .to_string(),
    );
    Ok((
        Released {
            body,
            audit: json!({ "engine": "identity", "path": path, "lease_id": lease.id,
                "jti": token.jti, "kid": token.kid, "audience": audience, "expires_at": token.expires_at }),
        },
        Some(lease.id),
    ))
}

async fn db_role(state: &AppState, role: &str) -> Result<Arc<DbRole>, Denial> {
    if let Some(found) = state
        .engines
        .postgres
        .lock()
        .ok()
        .and_then(|m| m.get(role).cloned())
    {
        return Ok(found);
    }
    let key = format!("{DB_ROLE_PREFIX}{role}").into_bytes();
    let internal = |e: String| denial(Stage::Internal, e);
    let sealed = state
        .storage
        .get(Keyspace::Secrets, &key)
        .await
        .map_err(|e| internal(e.to_string()))?
        .ok_or_else(|| denial(Stage::Policy, format!("no database role {role:?}")))?;
    let plain = state
        .seal
        .barrier()
        .decrypt(Keyspace::Secrets, &key, &sealed)
        .map_err(|e| internal(e.to_string()))?;
    let config: DbRoleConfig =
        serde_json::from_slice(&plain).map_err(|e| internal(e.to_string()))?;
    let engine = db_engine(&config).map_err(|e| denial(Stage::Engine, e))?;
    let role_state = Arc::new(DbRole {
        engine,
        default_ttl_secs: config.default_ttl,
        max_ttl_secs: config.max_ttl,
    });
    if let Ok(mut m) = state.engines.postgres.lock() {
        m.insert(role.to_owned(), Arc::clone(&role_state));
    }
    Ok(role_state)
}

fn db_engine(config: &DbRoleConfig) -> Result<PostgresEngine, String> {
    PostgresEngine::new(PostgresSettings {
        connection_url: Zeroizing::new(config.connection_url.clone()),
        creation_statements: config.creation_statements.clone(),
        revocation_statements: config.revocation_statements.clone(),
        username_prefix: config.username_prefix.clone(),
        connect_timeout_secs: 10,
    })
    .map_err(|e| e.to_string())
}

async fn release_database(
    state: &AppState,
    request_id: &str,
    session: &Session,
    path: &str,
    request: &SecretRequest,
    user: Option<String>,
) -> Result<(Released, Option<String>), Denial> {
    let Some(role) = path.strip_prefix("database/postgres/") else {
        return Err(denial(
            Stage::Request,
            "the database engine serves database/postgres/<role>",
        ));
    };
    let db = db_role(state, role).await?;
    let ttl = request
        .ttl
        .unwrap_or(db.default_ttl_secs)
        .min(db.max_ttl_secs);
    let mut lease = lease_base(
        state,
        request_id,
        session,
        path,
        user,
        Terms {
            ttl_secs: ttl,
            max_ttl_secs: db.max_ttl_secs,
            renewable: true,
        },
        Revocation::Database {
            role: role.to_owned(),
            username: String::new(),
        },
    )?;
    let valid_until = lease.expires_at_ms.div_ceil(1000);
    let credential = db
        .engine
        .create_credential(role, valid_until)
        .await
        .map_err(|e| denial(Stage::Engine, e.to_string()))?;
    lease.revocation = Revocation::Database {
        role: role.to_owned(),
        username: credential.username.clone(),
    };
    if let Err(e) = lease::insert(state.storage.as_ref(), &lease).await {
        // Not recorded, so never revocable later: drop it now.
        let _ = db.engine.revoke(&credential.username).await;
        return Err(denial(Stage::Internal, e.to_string()));
    }
    let duration = lease.expires_at_ms.saturating_sub(lease.issued_at_ms) / 1000;
    let body = Zeroizing::new(
        json!({
            "lease_id": lease.id,
            "lease_duration": duration,
            "renewable": true,
            "username": credential.username,
            "password": credential.expose_password(),
        })
        .to_string(),
    );
    Ok((
        Released {
            body,
            audit: json!({ "engine": "database", "path": path, "lease_id": lease.id,
                "username": credential.username, "lease_duration": duration }),
        },
        Some(lease.id),
    ))
}

// -------------------------------------------------------------- leases

/// Destroys secrets through the engines.
pub(crate) struct EngineRevoker<'a>(pub(crate) &'a AppState);

impl lease::Revoker for EngineRevoker<'_> {
    fn revoke<'a>(
        &'a self,
        revocation: &'a Revocation,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            match revocation {
                Revocation::Database { role, username } => {
                    if username.is_empty() {
                        return Ok(());
                    }
                    let db = db_role(self.0, role).await.map_err(|d| d.to_string())?;
                    db.engine.revoke(username).await.map_err(|e| e.to_string())
                }
                Revocation::Identity { jti, expires_at } => {
                    let key = format!("{IDENTITY_REVOKED}{jti}").into_bytes();
                    let mut batch = crate::storage::WriteBatch::new();
                    batch
                        .put(Keyspace::Secrets, &key, &expires_at.to_be_bytes())
                        .map_err(|e| e.to_string())?;
                    self.0
                        .storage
                        .commit(batch)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
            }
        })
    }
}

/// Revokes what a failed re-attestation takes down.
async fn revoke_scope(state: &AppState, ctx: &RequestContext, scope: &evidence::RevokeScope) {
    match scope {
        evidence::RevokeScope::Host(host_id) => {
            let prefix = lease::host_prefix(host_id);
            revoke_basis(state, ctx, &prefix, "failed re-attestation of the host").await;
        }
        evidence::RevokeScope::Instance {
            host_id,
            instance_id,
        } => {
            let prefix = lease::host_prefix(host_id);
            let Ok(ids) = lease::ids_with_basis(state.storage.as_ref(), &prefix).await else {
                return;
            };
            let mut mine = Vec::new();
            for id in ids {
                if let Ok(Some((record, _))) = lease::load(state.storage.as_ref(), &id).await
                    && record.instance_id == *instance_id
                {
                    mine.push(id);
                }
            }
            if mine.is_empty() {
                // A first attestation, or an instance whose leases are
                // gone: nothing to revoke, and the denial has its record.
                return;
            }
            let basis = format!("h/{host_id}/ instance {instance_id}");
            revoke_ids(
                state,
                ctx,
                &mine,
                &basis,
                "failed re-attestation of the instance",
            )
            .await;
        }
        _ => {}
    }
}

/// Revokes every lease under a basis prefix and audits the counts.
pub(crate) async fn revoke_basis(
    state: &AppState,
    ctx: &RequestContext,
    prefix: &[u8],
    why: &str,
) -> Option<RevokeCounts> {
    let ids = lease::ids_with_basis(state.storage.as_ref(), prefix)
        .await
        .ok()?;
    let basis = String::from_utf8_lossy(prefix).into_owned();
    revoke_ids(state, ctx, &ids, &basis, why).await
}

/// Revokes `ids` and audits the counts under `basis`.
async fn revoke_ids(
    state: &AppState,
    ctx: &RequestContext,
    ids: &[String],
    basis: &str,
    why: &str,
) -> Option<RevokeCounts> {
    let counts = lease::revoke_all(state.storage.as_ref(), &EngineRevoker(state), ids, now_ms())
        .await
        .ok()?;
    let _ = audit(
        state,
        ctx,
        "lease.revoke-basis",
        "vault",
        (
            Outcome::Success,
            200,
            Some(why.to_owned()),
            Some(json!({ "basis": basis, "revoked": counts.revoked, "retrying": counts.retrying })),
        ),
    )
    .await;
    Some(counts)
}

/// `{"lease_id": …}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LeaseIdRequest {
    /// The lease id.
    lease_id: String,
    /// Renewal: seconds to extend by (default: the lease's original TTL).
    #[serde(default)]
    increment: Option<u64>,
}

/// Renews a lease (the workload, with its session).
#[utoipa::path(post, path = "/v1/sys/leases/renew", request_body = LeaseIdRequest,
    responses((status = 200, body = LeaseRecord), (status = 403, body = ErrorBody)))]
pub(crate) async fn renew(
    State(state): State<AppState>,
    ctx: RequestContext,
    body: RawBody,
) -> Result<Json<LeaseRecord>, ApiError> {
    const OP: &str = "lease.renew";
    let session = session_of(&state, &ctx, &body, OP).await?;
    let actor = session_actor(&session);
    let result = renew_inner(&state, &session, &body).await;
    match result {
        Ok(record) => {
            let value = serde_json::to_value(&record).ok();
            audit(
                &state,
                &ctx,
                OP,
                &actor,
                (Outcome::Success, 200, None, value),
            )
            .await?;
            Ok(Json(record))
        }
        Err(d) => Err(refuse(&state, &ctx, OP, &actor, d).await),
    }
}

async fn renew_inner(
    state: &AppState,
    session: &Session,
    body: &RawBody,
) -> Result<LeaseRecord, Denial> {
    let request: LeaseIdRequest = parse_body(body)?;
    let internal = |e: StorageError| denial(Stage::Internal, e.to_string());
    let (record, bytes) = lease::load(state.storage.as_ref(), &request.lease_id)
        .await
        .map_err(internal)?
        .ok_or_else(|| denial(Stage::Lease, "no such lease (expired or revoked)"))?;
    if record.host_id != session.host_id
        || record.instance_id != session.instance_id
        || record.image_digest != session.image_digest
        || record.model_digest != session.model_digest
    {
        return Err(denial(
            Stage::Lease,
            format!("lease {} belongs to another workload", record.id),
        ));
    }
    if record.revoking {
        return Err(denial(Stage::Lease, "lease is being revoked"));
    }
    if !record.renewable {
        return Err(denial(Stage::Lease, "lease is not renewable"));
    }
    let engine = record.path.split('/').next().unwrap_or_default().to_owned();
    authorize(state, session, Action::Renew, &record.path, &engine, None).await?;
    let now = now_ms();
    let original = record.expires_at_ms.saturating_sub(record.issued_at_ms);
    let increment = request
        .increment
        .map_or(original, |s| s.saturating_mul(1000));
    let expires = now
        .saturating_add(increment)
        .min(record.max_expires_at_ms)
        .min(session.expires_at_ms);
    let mut next = record.clone();
    next.expires_at_ms = expires.max(record.expires_at_ms);
    next.session_id = session.id.clone();
    if let Revocation::Database { role, username } = &record.revocation {
        let db = db_role(state, role).await?;
        db.engine
            .extend(username, next.expires_at_ms.div_ceil(1000))
            .await
            .map_err(|e| denial(Stage::Engine, e.to_string()))?;
    }
    lease::replace(state.storage.as_ref(), &bytes, &record, &next)
        .await
        .map_err(|e| match e {
            StorageError::ConditionFailed { .. } => {
                denial(Stage::Lease, "lease changed concurrently")
            }
            other => denial(Stage::Internal, other.to_string()),
        })?;
    Ok(next)
}

/// Looks up a lease (admin, auditor).
#[utoipa::path(post, path = "/v1/sys/leases/lookup", request_body = LeaseIdRequest,
    responses((status = 200, body = LeaseRecord), (status = 404, body = ErrorBody)))]
pub(crate) async fn lookup(
    State(state): State<AppState>,
    ctx: RequestContext,
    body: RawBody,
) -> Result<Json<LeaseRecord>, ApiError> {
    let mut call = Call::new(&state, &ctx, "lease.lookup");
    call.authorize(READ).await?;
    let (request, value) = call.parse::<LeaseIdRequest>(&body).await?;
    match lease::load(state.storage.as_ref(), &request.lease_id).await {
        Ok(Some((record, _))) => {
            call.success(&json!({ "lease_id": record.id })).await?;
            Ok(Json(record))
        }
        Ok(None) => Err(call
            .fail(ApiError::NotFound { what: "lease" }, Some(value))
            .await),
        Err(e) => Err(call.fail_internal(&e, Some(value)).await),
    }
}

/// Revokes one lease at once (admin).
#[utoipa::path(post, path = "/v1/sys/leases/revoke", request_body = LeaseIdRequest,
    responses((status = 200, body = RevokeCounts), (status = 404, body = ErrorBody)))]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    ctx: RequestContext,
    body: RawBody,
) -> Result<Json<RevokeCounts>, ApiError> {
    let mut call = Call::new(&state, &ctx, "lease.revoke");
    call.authorize(ADMIN).await?;
    let (request, value) = call.parse::<LeaseIdRequest>(&body).await?;
    call.attempt(value.clone()).await?;
    let result = lease::revoke(
        state.storage.as_ref(),
        &EngineRevoker(&state),
        &request.lease_id,
        now_ms(),
    )
    .await;
    let counts = match result {
        Ok(Revoked::Done(_)) => RevokeCounts {
            revoked: 1,
            retrying: 0,
        },
        Ok(Revoked::Retrying(_)) => RevokeCounts {
            revoked: 0,
            retrying: 1,
        },
        Ok(Revoked::Absent) => {
            return Err(call
                .fail(ApiError::NotFound { what: "lease" }, Some(value))
                .await);
        }
        Err(e) => {
            return Err(call.fail_internal(&e, Some(value)).await);
        }
    };
    call.success(&counts).await?;
    Ok(Json(counts))
}

/// `{"prefix": …}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PrefixRequest {
    /// Lease id prefix, e.g. `database/postgres/readonly/`.
    prefix: String,
}

/// Revokes every lease under a prefix (admin).
#[utoipa::path(post, path = "/v1/sys/leases/revoke-prefix", request_body = PrefixRequest,
    responses((status = 200, body = RevokeCounts)))]
pub(crate) async fn revoke_prefix(
    State(state): State<AppState>,
    ctx: RequestContext,
    body: RawBody,
) -> Result<Json<RevokeCounts>, ApiError> {
    let mut call = Call::new(&state, &ctx, "lease.revoke-prefix");
    call.authorize(ADMIN).await?;
    let (request, value) = call.parse::<PrefixRequest>(&body).await?;
    if request.prefix.is_empty() {
        let err = ApiError::InvalidField {
            field: "prefix",
            message: "must not be empty".into(),
        };
        return Err(call.fail(err, Some(value)).await);
    }
    call.attempt(value.clone()).await?;
    let result = async {
        let ids = lease::ids_with_prefix(state.storage.as_ref(), &request.prefix).await?;
        lease::revoke_all(
            state.storage.as_ref(),
            &EngineRevoker(&state),
            &ids,
            now_ms(),
        )
        .await
    }
    .await;
    match result {
        Ok(counts) => {
            call.success(&counts).await?;
            Ok(Json(counts))
        }
        Err(e) => Err(call.fail_internal(&e, Some(value)).await),
    }
}

/// Leases whose revocation failed and is being retried (admin, auditor).
#[utoipa::path(get, path = "/v1/sys/leases/irrevocable",
    responses((status = 200, body = Vec<LeaseRecord>)))]
pub(crate) async fn irrevocable(
    State(state): State<AppState>,
    ctx: RequestContext,
) -> Result<Json<Vec<LeaseRecord>>, ApiError> {
    let mut call = Call::new(&state, &ctx, "lease.irrevocable");
    call.authorize(READ).await?;
    match lease::irrevocable(state.storage.as_ref()).await {
        Ok(list) => {
            call.success(&json!({ "count": list.len() })).await?;
            Ok(Json(list))
        }
        Err(e) => Err(call.fail_internal(&e, None).await),
    }
}

/// One pass of the background worker: expire due leases, retry failed
/// revocations, prune used nonces, rotate the identity key when due.
pub async fn maintain(state: &AppState) -> Result<RevokeCounts, StorageError> {
    if state.seal.is_sealed() {
        return Ok(RevokeCounts::default());
    }
    let now = now_ms();
    let counts = lease::expire_due(state.storage.as_ref(), &EngineRevoker(state), now, 256).await?;
    lease::prune_nonces(state.storage.as_ref(), now, 1024).await?;
    state.release.prune_sessions(now);
    state
        .release
        .prune_stored_sessions(state.storage.as_ref(), now, 256)
        .await?;
    if state.engines.identity_settings().is_some() {
        let rotated = with_keys(state, |keys, settings| {
            let now = now_secs();
            let pruned = keys.prune(now) > 0;
            if keys.needs_rotation(now, settings) {
                keys.rotate(now, settings, state.release.rng())
                    .map_err(|e| denial(Stage::Internal, e.to_string()))?;
                return Ok(Some(keys.to_bytes()));
            }
            Ok(pruned.then(|| keys.to_bytes()))
        })
        .await;
        if let Ok(Some(bytes)) = rotated {
            let _ = store_keys(state, &bytes).await;
        }
    }
    Ok(counts)
}

// ---------------------------------------------------------- kv admin

/// `PUT /v1/kv/{path}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct KvWrite {
    /// The secret: a JSON object.
    #[schema(value_type = Object)]
    data: serde_json::Map<String, Value>,
}

impl std::fmt::Debug for KvWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KvWrite([redacted])")
    }
}

/// Writes a new version of a kv secret (admin).
#[utoipa::path(put, path = "/v1/kv/{path}", params(("path" = String, Path)), request_body = KvWrite,
    responses((status = 200, body = Object), (status = 400, body = ErrorBody)))]
pub(crate) async fn kv_put(
    State(state): State<AppState>,
    Path(path): Path<String>,
    ctx: RequestContext,
    body: RawBody,
) -> Result<Json<Value>, ApiError> {
    let mut call = Call::new(&state, &ctx, "kv.write");
    let caller = call.authorize(ADMIN).await?;
    let (request, _) = call.parse::<KvWrite>(&body).await?;
    // The audit record names the path, never the value.
    call.attempt(json!({ "path": path })).await?;
    match kv::write(
        state.storage.as_ref(),
        state.seal.barrier(),
        &path,
        &request.data,
        &caller.accessor,
        now_ms(),
    )
    .await
    {
        Ok(version) => {
            let out = json!({ "path": path, "version": version });
            call.success(&out).await?;
            Ok(Json(out))
        }
        Err(e) => {
            let err = match e {
                kv::KvError::InvalidPath => ApiError::InvalidField {
                    field: "path",
                    message: e.to_string(),
                },
                kv::KvError::InvalidValue => ApiError::InvalidField {
                    field: "data",
                    message: e.to_string(),
                },
                kv::KvError::Concurrent => ApiError::Conflict {
                    what: "secret changed concurrently; retry",
                },
                other => ApiError::internal(&ctx.request_id, &other),
            };
            Err(call.fail(err, None).await)
        }
    }
}

/// A kv secret's metadata, never its value (admin, auditor).
#[utoipa::path(get, path = "/v1/kv/{path}", params(("path" = String, Path)),
    responses((status = 200, body = kv::KvMetadata), (status = 404, body = ErrorBody)))]
pub(crate) async fn kv_metadata(
    State(state): State<AppState>,
    Path(path): Path<String>,
    ctx: RequestContext,
) -> Result<Json<kv::KvMetadata>, ApiError> {
    let mut call = Call::new(&state, &ctx, "kv.metadata");
    call.authorize(READ).await?;
    match kv::metadata(state.storage.as_ref(), state.seal.barrier(), &path).await {
        Ok(Some(m)) => {
            call.success(&json!({ "path": path })).await?;
            Ok(Json(m))
        }
        Ok(None) => Err(call.fail(ApiError::NotFound { what: "secret" }, None).await),
        Err(kv::KvError::InvalidPath) => {
            let err = ApiError::InvalidField {
                field: "path",
                message: "invalid secret path".into(),
            };
            Err(call.fail(err, None).await)
        }
        Err(e) => Err(call.fail_internal(&e, None).await),
    }
}

// ------------------------------------------------ database engine roles

/// Configures a database engine role (admin). The connection URL is
/// stored barrier-encrypted and never returned or audited.
#[utoipa::path(put, path = "/v1/engines/database/postgres/{role}", params(("role" = String, Path)),
    request_body = DbRoleConfig, responses((status = 200, body = Object), (status = 400, body = ErrorBody)))]
pub(crate) async fn db_role_put(
    State(state): State<AppState>,
    Path(role): Path<String>,
    ctx: RequestContext,
    body: RawBody,
) -> Result<Json<Value>, ApiError> {
    let mut call = Call::new(&state, &ctx, "engine.database.role.write");
    call.authorize(ADMIN).await?;
    let (config, _) = call.parse::<DbRoleConfig>(&body).await?;
    let valid_role = !role.is_empty()
        && role.len() <= 64
        && role
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let audit_view = json!({ "role": role, "creation_statements": config.creation_statements,
        "username_prefix": config.username_prefix, "default_ttl": config.default_ttl, "max_ttl": config.max_ttl });
    if !valid_role {
        let err = ApiError::InvalidField {
            field: "role",
            message: "1-64 characters of [A-Za-z0-9_-]".into(),
        };
        return Err(call.fail(err, Some(audit_view)).await);
    }
    if config.default_ttl == 0 || config.max_ttl < config.default_ttl {
        let err = ApiError::InvalidField {
            field: "max_ttl",
            message: "need 0 < default_ttl <= max_ttl".into(),
        };
        return Err(call.fail(err, Some(audit_view)).await);
    }
    if let Err(e) = db_engine(&config) {
        let err = ApiError::InvalidField {
            field: "creation_statements",
            message: e,
        };
        return Err(call.fail(err, Some(audit_view)).await);
    }
    call.attempt(audit_view).await?;
    let key = format!("{DB_ROLE_PREFIX}{role}").into_bytes();
    let result = async {
        let plain = Zeroizing::new(serde_json::to_vec(&config).map_err(|e| e.to_string())?);
        let sealed = state
            .seal
            .barrier()
            .encrypt(Keyspace::Secrets, &key, &plain)
            .await
            .map_err(|e| e.to_string())?;
        let mut batch = crate::storage::WriteBatch::new();
        batch
            .put(Keyspace::Secrets, &key, &sealed)
            .map_err(|e| e.to_string())?;
        state
            .storage
            .commit(batch)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
    .await;
    if let Err(e) = result {
        return Err(call.fail_internal(&e, None).await);
    }
    if let Ok(mut m) = state.engines.postgres.lock() {
        m.remove(&role);
    }
    let out = json!({ "role": role });
    call.success(&out).await?;
    Ok(Json(out))
}

// --------------------------------------------------- release policies

/// `PUT /v1/policies/release/{name}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyWrite {
    /// Cedar policy text.
    policy: String,
}

/// `PUT /v1/policies/release-schema`.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SchemaWrite {
    /// Cedar schema text (human syntax).
    schema: String,
}

/// Writes (`Some`) or deletes (`None`) one key of [`Keyspace::System`] in
/// a commit of its own: a release policy or the schema.
async fn commit_system(
    state: &AppState,
    key: &[u8],
    value: Option<&[u8]>,
) -> Result<(), crate::storage::StorageError> {
    let mut batch = crate::storage::WriteBatch::new();
    match value {
        Some(value) => batch.put(Keyspace::System, key, value)?,
        None => batch.delete(Keyspace::System, key)?,
    };
    state.storage.commit(batch).await.map(|_| ())
}

fn policy_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= crate::release_policy::MAX_NAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Writes a Cedar release policy, validated against the schema (admin).
#[utoipa::path(put, path = "/v1/policies/release/{name}", params(("name" = String, Path)),
    request_body = PolicyWrite, responses((status = 200, body = Object), (status = 400, body = ErrorBody)))]
pub(crate) async fn policy_put(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ctx: RequestContext,
    body: RawBody,
) -> Result<Json<Value>, ApiError> {
    let mut call = Call::new(&state, &ctx, "policy.release.write");
    call.authorize(ADMIN).await?;
    let (request, value) = call.parse::<PolicyWrite>(&body).await?;
    if !policy_name_ok(&name) {
        let err = ApiError::InvalidField {
            field: "name",
            message: "letters, digits, '_', '-', '.'".into(),
        };
        return Err(call.fail(err, Some(value)).await);
    }
    let mut guard = state.engines.policies.write().await;
    let mut store = match load_policy_store(&state, None).await {
        Ok(s) => s,
        Err(d) => {
            return Err(call.fail_internal(&d, None).await);
        }
    };
    if let Err(e) = store.insert(&name, &request.policy) {
        let err = ApiError::InvalidField {
            field: "policy",
            message: e.to_string(),
        };
        return Err(call.fail(err, Some(value)).await);
    }
    call.attempt(value).await?;
    let key = format!("{POLICY_PREFIX}{name}").into_bytes();
    let written = commit_system(&state, &key, Some(request.policy.as_bytes())).await;
    if let Err(e) = written {
        return Err(call.fail_internal(&e, None).await);
    }
    *guard = Some(Arc::new(store));
    let out = json!({ "name": name });
    call.success(&out).await?;
    Ok(Json(out))
}

/// A release policy's text (admin, auditor).
#[utoipa::path(get, path = "/v1/policies/release/{name}", params(("name" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub(crate) async fn policy_get(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ctx: RequestContext,
) -> Result<Json<Value>, ApiError> {
    let mut call = Call::new(&state, &ctx, "policy.release.read");
    call.authorize(READ).await?;
    let key = format!("{POLICY_PREFIX}{name}").into_bytes();
    match state.storage.get(Keyspace::System, &key).await {
        Ok(Some(text)) => {
            let out = json!({ "name": name, "policy": String::from_utf8_lossy(&text) });
            call.success(&json!({ "name": name })).await?;
            Ok(Json(out))
        }
        Ok(None) => Err(call.fail(ApiError::NotFound { what: "policy" }, None).await),
        Err(e) => Err(call.fail_internal(&e, None).await),
    }
}

/// Release policy names (admin, auditor).
#[utoipa::path(get, path = "/v1/policies/release", responses((status = 200, body = Object)))]
pub(crate) async fn policy_list(
    State(state): State<AppState>,
    ctx: RequestContext,
) -> Result<Json<Value>, ApiError> {
    let mut call = Call::new(&state, &ctx, "policy.release.list");
    call.authorize(READ).await?;
    match policy_store(&state).await {
        Ok(store) => {
            let out = json!({ "names": store.names() });
            call.success(&out).await?;
            Ok(Json(out))
        }
        Err(d) => Err(call.fail_internal(&d, None).await),
    }
}

/// Deletes a release policy (admin).
#[utoipa::path(delete, path = "/v1/policies/release/{name}", params(("name" = String, Path)),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
pub(crate) async fn policy_delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ctx: RequestContext,
) -> Result<Json<Value>, ApiError> {
    let mut call = Call::new(&state, &ctx, "policy.release.delete");
    call.authorize(ADMIN).await?;
    let mut guard = state.engines.policies.write().await;
    let key = format!("{POLICY_PREFIX}{name}").into_bytes();
    match state.storage.get(Keyspace::System, &key).await {
        Ok(Some(_)) => {}
        Ok(None) => return Err(call.fail(ApiError::NotFound { what: "policy" }, None).await),
        Err(e) => {
            return Err(call.fail_internal(&e, None).await);
        }
    }
    call.attempt(json!({ "name": name })).await?;
    let written = commit_system(&state, &key, None).await;
    if let Err(e) = written {
        return Err(call.fail_internal(&e, None).await);
    }
    *guard = None;
    let out = json!({ "name": name });
    call.success(&out).await?;
    Ok(Json(out))
}

/// The release policy schema (admin, auditor).
#[utoipa::path(get, path = "/v1/policies/release-schema", responses((status = 200, body = SchemaWrite)))]
pub(crate) async fn schema_get(
    State(state): State<AppState>,
    ctx: RequestContext,
) -> Result<Json<SchemaWrite>, ApiError> {
    let mut call = Call::new(&state, &ctx, "policy.release-schema.read");
    call.authorize(READ).await?;
    match policy_store(&state).await {
        Ok(store) => {
            call.success(&json!({})).await?;
            Ok(Json(SchemaWrite {
                schema: store.schema_text().to_owned(),
            }))
        }
        Err(d) => Err(call.fail_internal(&d, None).await),
    }
}

/// Replaces the schema; refused if a stored policy would not validate
/// under it (admin).
#[utoipa::path(put, path = "/v1/policies/release-schema", request_body = SchemaWrite,
    responses((status = 200, body = Object), (status = 400, body = ErrorBody)))]
pub(crate) async fn schema_put(
    State(state): State<AppState>,
    ctx: RequestContext,
    body: RawBody,
) -> Result<Json<Value>, ApiError> {
    let mut call = Call::new(&state, &ctx, "policy.release-schema.write");
    call.authorize(ADMIN).await?;
    let (request, value) = call.parse::<SchemaWrite>(&body).await?;
    let mut guard = state.engines.policies.write().await;
    let store = match load_policy_store(&state, None).await {
        Ok(mut s) => match s.replace_schema(&request.schema) {
            Ok(()) => s,
            Err(e) => {
                let err = ApiError::InvalidField {
                    field: "schema",
                    message: e.to_string(),
                };
                return Err(call.fail(err, Some(value)).await);
            }
        },
        Err(d) => {
            return Err(call.fail_internal(&d, None).await);
        }
    };
    call.attempt(value).await?;
    let written = commit_system(&state, SCHEMA_KEY, Some(request.schema.as_bytes())).await;
    if let Err(e) = written {
        return Err(call.fail_internal(&e, None).await);
    }
    *guard = Some(Arc::new(store));
    let out = json!({ "schema": "replaced" });
    call.success(&out).await?;
    Ok(Json(out))
}

// ------------------------------------------------------------ identity

/// OIDC discovery for workload identity tokens.
#[utoipa::path(get, path = "/v1/identity/.well-known/openid-configuration", responses((status = 200, body = Object)))]
pub(crate) async fn discovery(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let settings = state
        .engines
        .identity_settings()
        .ok_or(ApiError::NotFound {
            what: "identity engine",
        })?;
    Ok(Json(identity::discovery_document(&settings)))
}

/// The JWKS: the active key and every retired key whose tokens may still
/// be valid.
#[utoipa::path(get, path = "/v1/identity/.well-known/jwks.json", responses((status = 200, body = Object)))]
pub(crate) async fn jwks(
    State(state): State<AppState>,
    ctx: RequestContext,
) -> Result<Json<Value>, ApiError> {
    if state.engines.identity_settings().is_none() {
        return Err(ApiError::NotFound {
            what: "identity engine",
        });
    }
    with_keys(&state, |keys, _| {
        keys.prune(now_secs());
        Ok(keys.jwks())
    })
    .await
    .map(Json)
    .map_err(|d| ApiError::internal(&ctx.request_id, &d))
}

/// Identity tokens revoked before their expiry (ids and expiry).
#[utoipa::path(get, path = "/v1/identity/revoked", responses((status = 200, body = Object)))]
pub(crate) async fn revoked_tokens(
    State(state): State<AppState>,
    ctx: RequestContext,
) -> Result<Json<Value>, ApiError> {
    let entries = state
        .storage
        .scan(
            Keyspace::Secrets,
            KeyRange::Prefix(IDENTITY_REVOKED.as_bytes()),
            MAX_SCAN,
        )
        .await
        .map_err(|e| ApiError::internal(&ctx.request_id, &e))?;
    let now = now_secs();
    let list: Vec<Value> = entries
        .iter()
        .filter_map(|(key, value)| {
            let jti = String::from_utf8_lossy(key.get(IDENTITY_REVOKED.len()..)?).into_owned();
            let exp = u64::from_be_bytes(<[u8; 8]>::try_from(value.as_slice()).ok()?);
            (exp > now).then(|| json!({ "jti": jti, "expires_at": exp }))
        })
        .collect();
    Ok(Json(json!({ "revoked": list })))
}

/// Rotates the identity signing key now (admin).
#[utoipa::path(post, path = "/v1/identity/rotate", responses((status = 200, body = Object)))]
pub(crate) async fn rotate_identity(
    State(state): State<AppState>,
    ctx: RequestContext,
) -> Result<Json<Value>, ApiError> {
    let mut call = Call::new(&state, &ctx, "identity.rotate");
    call.authorize(ADMIN).await?;
    call.attempt(json!({})).await?;
    let result = with_keys(&state, |keys, settings| {
        let kid = keys
            .rotate(now_secs(), settings, state.release.rng())
            .map_err(|e| denial(Stage::Internal, e.to_string()))?;
        Ok((kid, keys.to_bytes()))
    })
    .await;
    let (kid, bytes) = match result {
        Ok(r) => r,
        Err(d) => {
            return Err(call.fail_internal(&d, None).await);
        }
    };
    if let Err(d) = store_keys(&state, &bytes).await {
        return Err(call.fail_internal(&d, None).await);
    }
    let out = json!({ "active_kid": kid });
    call.success(&out).await?;
    Ok(Json(out))
}
