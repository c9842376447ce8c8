//! The vault's HTTP API (axum), under `/v1/`.
//!
//! # What it does
//! - [`app`] builds the whole router from an [`AppState`], so tests drive
//!   it with `tower::ServiceExt::oneshot` and no socket; [`serve`] puts it
//!   on a listener, with TLS (rustls via `tokio-rustls`) unless the config
//!   allows plain HTTP (dev mode or loopback, see [`crate::config`]);
//! - answers every error as `{"errors": ["…"]}` ([`ApiError`]), including
//!   axum's own (unknown route 404, wrong method 405, unreadable or
//!   oversized body 413) and the layers' (429, 503);
//! - layers, outermost first: request id and metrics; load shedding in
//!   front of a concurrency limit (a full server answers 429 at once rather
//!   than queueing without bound); a request timeout answered 503 (Vault
//!   has no 408 convention for a slow server and 504 is a gateway's code; a
//!   503 tells clients to retry); while sealed, 503 for everything but
//!   health, seal status, init, unseal, metrics and the OpenAPI document;
//!   a body limit (413);
//! - takes the token from `X-Keyward-Token` or `Authorization: Bearer`; a
//!   missing, malformed, unknown, revoked or expired token gets 401, a token
//!   without a needed role 403 — both uniform, with the request id; the
//!   exact reason goes to the audit log;
//! - writes audit records for every request on `sys` (init, unseal, seal,
//!   rotate, audit-hash) and `auth/token` paths, failing closed (see
//!   [`crate::audit`] for the attempt/outcome semantics);
//! - serves Prometheus metrics at `/metrics` and the OpenAPI document,
//!   generated from the handlers by `utoipa`, at `/v1/openapi.json`.
//!
//! # What it does not do
//! It makes no trust decision about evidence (that is `keyward-attest`),
//! and does not yet serve the release path (attestation, sessions, secrets,
//! leases); hosts, signing policies and artifacts are served.

pub mod artifacts;
pub mod error;
pub mod extract;
pub mod hosts;
pub mod metrics;
pub mod policies;
pub mod release;
mod serve;
pub mod sys;
pub mod token;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::HeaderValue;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use utoipa::OpenApi;

pub use error::ApiError;
pub use serve::{ServeError, configure_release, init_dev, open_state, serve, spawn_worker};

use crate::audit::{AuditEntry, AuditLog, Outcome};
use crate::auth::{AuthError, Role, TokenRecord, TokenStore};
use crate::config::Limits;
use crate::seal::Seal;
use crate::storage::Storage;
use extract::{REQUEST_ID_HEADER, RawBody, RequestContext, RequestId};
use metrics::Metrics;

/// Every route, for metric labels (anything else is `other`).
pub const ROUTES: &[&str] = &[
    "/v1/sys/health",
    "/v1/sys/seal-status",
    "/v1/sys/init",
    "/v1/sys/unseal",
    "/v1/sys/seal",
    "/v1/sys/rotate",
    "/v1/sys/audit-hash",
    "/v1/auth/token/create",
    "/v1/auth/token/lookup-self",
    "/v1/auth/token/lookup",
    "/v1/auth/token/revoke",
    "/v1/auth/token/revoke-self",
    "/v1/policies/signing",
    "/v1/artifacts",
    "/v1/artifacts/images",
    "/v1/artifacts/models",
    "/v1/hosts",
    "/v1/hosts/enroll",
    "/v1/attest/challenge",
    "/v1/attest",
    "/v1/sys/leases/renew",
    "/v1/sys/leases/lookup",
    "/v1/sys/leases/revoke",
    "/v1/sys/leases/revoke-prefix",
    "/v1/sys/leases/irrevocable",
    "/v1/policies/release",
    "/v1/policies/release-schema",
    "/v1/identity/.well-known/openid-configuration",
    "/v1/identity/.well-known/jwks.json",
    "/v1/identity/revoked",
    "/v1/identity/rotate",
    "/v1/openapi.json",
    "/metrics",
];

/// Routes answered while sealed.
const SEALED_ROUTES: &[&str] = &[
    "/v1/sys/health",
    "/v1/sys/seal-status",
    "/v1/sys/init",
    "/v1/sys/unseal",
    "/v1/openapi.json",
    "/metrics",
];

/// Everything a handler needs; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

/// The shared parts of [`AppState`].
#[derive(Debug)]
pub struct Inner {
    /// The store.
    pub storage: Arc<dyn Storage>,
    /// The seal (owns the barrier).
    pub seal: Arc<Seal>,
    /// Admin tokens.
    pub tokens: TokenStore,
    /// The audit log.
    pub audit: Arc<AuditLog>,
    /// Metrics.
    pub metrics: Metrics,
    /// Request limits.
    pub limits: Limits,
    /// Host enrollment settings (`[enrollment]`).
    pub enrollment: crate::hosts::EnrollmentSlot,
    /// Artifact registry settings (`[artifacts]`) and commit lock.
    pub artifacts: crate::artifacts::ArtifactSettings,
    /// The TPM the root key may be sealed to (`seal.tcti`).
    pub seal_tpm: sys::TpmSlot,
    /// The release path: nonces, sessions.
    pub release: crate::release::Release,
    /// Secrets engines, release policies, on-behalf-of issuer.
    pub engines: release::Engines,
}

impl AppState {
    /// State over an opened store, seal and audit log.
    pub fn new(
        storage: Arc<dyn Storage>,
        seal: Arc<Seal>,
        audit: Arc<AuditLog>,
        limits: Limits,
    ) -> Self {
        let tokens = TokenStore::new(Arc::clone(&storage), Arc::clone(seal.barrier()));
        Self(Arc::new(Inner {
            storage,
            seal,
            tokens,
            audit,
            metrics: Metrics::default(),
            limits,
            enrollment: crate::hosts::EnrollmentSlot::default(),
            artifacts: crate::artifacts::ArtifactSettings::default(),
            seal_tpm: sys::TpmSlot::default(),
            release: crate::release::Release::default(),
            engines: release::Engines::default(),
        }))
    }

    /// The shared parts.
    pub fn inner(&self) -> &Inner {
        &self.0
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// Milliseconds since the Unix epoch (the HTTP layer owns the clock).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Seconds since the Unix epoch.
pub(crate) fn now_secs() -> u64 {
    now_ms() / 1000
}

/// A fresh random request id (128 bits, hex).
pub(crate) fn new_request_id() -> String {
    let mut bytes = [0u8; 16];
    // A failed RNG leaves zeros: the id is for correlation, not security.
    let _ = SystemRandom::new().fill(&mut bytes);
    hex::encode(bytes)
}

/// The OpenAPI document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "Keyward", description = "Attestation-gated secrets vault"),
    paths(
        sys::health,
        sys::seal_status,
        sys::init,
        sys::unseal,
        sys::seal,
        sys::rotate,
        sys::audit_hash,
        token::create,
        token::lookup_self,
        token::lookup,
        token::revoke,
        token::revoke_self,
        hosts::enroll,
        hosts::activate,
        hosts::list,
        hosts::show,
        hosts::approve,
        hosts::revoke,
        hosts::set_boot_policy,
        hosts::set_labels,
        policies::put,
        policies::get,
        policies::list,
        policies::delete,
        artifacts::register_image,
        artifacts::register_model,
        artifacts::list,
        artifacts::show,
        artifacts::revoke,
        release::challenge,
        release::attest,
        release::release,
        release::renew,
        release::lookup,
        release::revoke,
        release::revoke_prefix,
        release::irrevocable,
        release::kv_put,
        release::kv_metadata,
        release::db_role_put,
        release::policy_put,
        release::policy_get,
        release::policy_list,
        release::policy_delete,
        release::schema_get,
        release::schema_put,
        release::discovery,
        release::jwks,
        release::revoked_tokens,
        release::rotate_identity,
    )
)]
pub struct ApiDoc;

/// The router: every route and layer (see the module docs).
pub fn app(state: AppState) -> Router {
    let limits = state.limits.clone();
    Router::new()
        .route("/v1/sys/health", get(sys::health))
        .route("/v1/sys/seal-status", get(sys::seal_status))
        .route("/v1/sys/init", post(sys::init))
        .route("/v1/sys/unseal", post(sys::unseal))
        .route("/v1/sys/seal", post(sys::seal))
        .route("/v1/sys/rotate", post(sys::rotate))
        .route("/v1/sys/audit-hash", post(sys::audit_hash))
        .route("/v1/auth/token/create", post(token::create))
        .route("/v1/auth/token/lookup-self", get(token::lookup_self))
        .route("/v1/auth/token/lookup", post(token::lookup))
        .route("/v1/auth/token/revoke", post(token::revoke))
        .route("/v1/auth/token/revoke-self", post(token::revoke_self))
        .route("/v1/policies/signing", get(policies::list))
        .route(
            "/v1/policies/signing/{kind}/{name}",
            get(policies::get)
                .put(policies::put)
                .delete(policies::delete),
        )
        .route("/v1/artifacts", get(artifacts::list))
        .route("/v1/artifacts/images", post(artifacts::register_image))
        .route("/v1/artifacts/models", post(artifacts::register_model))
        .route("/v1/artifacts/{digest}", get(artifacts::show))
        .route("/v1/artifacts/{digest}/revoke", post(artifacts::revoke))
        .route("/v1/hosts", get(hosts::list))
        .route("/v1/hosts/enroll", post(hosts::enroll))
        .route("/v1/hosts/enroll/{id}/activate", post(hosts::activate))
        .route("/v1/hosts/{id}", get(hosts::show))
        .route("/v1/hosts/{id}/approve", post(hosts::approve))
        .route("/v1/hosts/{id}/revoke", post(hosts::revoke))
        .route(
            "/v1/hosts/{id}/boot-policy",
            axum::routing::put(hosts::set_boot_policy),
        )
        .route(
            "/v1/hosts/{id}/labels",
            axum::routing::put(hosts::set_labels),
        )
        .route("/v1/attest/challenge", post(release::challenge))
        .route("/v1/attest", post(release::attest))
        .route("/v1/secrets/{*path}", post(release::release))
        .route("/v1/sys/leases/renew", post(release::renew))
        .route("/v1/sys/leases/lookup", post(release::lookup))
        .route("/v1/sys/leases/revoke", post(release::revoke))
        .route("/v1/sys/leases/revoke-prefix", post(release::revoke_prefix))
        .route("/v1/sys/leases/irrevocable", get(release::irrevocable))
        .route(
            "/v1/kv/{*path}",
            get(release::kv_metadata).put(release::kv_put),
        )
        .route(
            "/v1/engines/database/postgres/{role}",
            axum::routing::put(release::db_role_put),
        )
        .route("/v1/policies/release", get(release::policy_list))
        .route(
            "/v1/policies/release-schema",
            get(release::schema_get).put(release::schema_put),
        )
        .route(
            "/v1/policies/release/{name}",
            get(release::policy_get)
                .put(release::policy_put)
                .delete(release::policy_delete),
        )
        .route(
            "/v1/identity/.well-known/openid-configuration",
            get(release::discovery),
        )
        .route("/v1/identity/.well-known/jwks.json", get(release::jwks))
        .route("/v1/identity/revoked", get(release::revoked_tokens))
        .route("/v1/identity/rotate", post(release::rotate_identity))
        .route("/v1/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(from_fn_with_state(state.clone(), sealed_gate))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(layer_error))
                .load_shed()
                // `Router::layer` instantiates the stack once per route: the
                // global variant shares one semaphore across all of them.
                .layer(GlobalConcurrencyLimitLayer::new(
                    limits.max_concurrent_requests,
                ))
                .timeout(limits.request_timeout.0),
        )
        .layer(from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn layer_error(err: tower::BoxError) -> ApiError {
    if err.is::<tower::timeout::error::Elapsed>() {
        ApiError::Timeout
    } else if err.is::<tower::load_shed::error::Overloaded>() {
        ApiError::Overloaded
    } else {
        ApiError::internal("", &err)
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound { what: "route" }
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

async fn sealed_gate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.seal.is_sealed() && !SEALED_ROUTES.contains(&req.uri().path()) {
        return ApiError::Sealed.into_response();
    }
    next.run(req).await
}

/// Outermost: assigns the request id, echoes it in `X-Request-Id`, counts
/// the answer.
async fn observe(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let id = new_request_id();
    req.extensions_mut().insert(RequestId(id.clone()));
    let route = ROUTES
        .iter()
        .find(|r| **r == req.uri().path())
        .copied()
        .unwrap_or("other");
    let mut response = next.run(req).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    state.metrics.observe(route, response.status().as_u16());
    response
}

async fn openapi() -> Response {
    match ApiDoc::openapi().to_json() {
        Ok(json) => ([(CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => ApiError::internal("", &e).into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    match state.metrics.encode(state.audit.failures()) {
        Ok(text) => (
            [(
                CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => ApiError::internal("", &e).into_response(),
    }
}

/// One audited operation: the actor, and the records it writes.
pub(crate) struct Call<'a> {
    state: &'a AppState,
    ctx: &'a RequestContext,
    operation: &'static str,
    actor: String,
}

impl<'a> Call<'a> {
    pub(crate) fn new(
        state: &'a AppState,
        ctx: &'a RequestContext,
        operation: &'static str,
    ) -> Self {
        Self {
            state,
            ctx,
            operation,
            actor: "anonymous".to_owned(),
        }
    }

    async fn write(
        &self,
        outcome: Outcome,
        status: Option<u16>,
        reason: Option<String>,
        request: Option<Value>,
        response: Option<Value>,
    ) -> Result<(), ApiError> {
        self.state
            .audit
            .append(AuditEntry {
                time_ms: now_ms(),
                request_id: self.ctx.request_id.clone(),
                actor: self.actor.clone(),
                operation: self.operation,
                path: self.ctx.path.clone(),
                outcome,
                status,
                reason,
                request,
                response,
            })
            .await
            .map_err(ApiError::AuditUnavailable)
    }

    /// The attempt record, before the effect is committed.
    pub(crate) async fn attempt(&self, request: Value) -> Result<(), ApiError> {
        self.write(Outcome::Attempt, None, None, Some(request), None)
            .await
    }

    /// The success record; the response is sent only if it is written.
    pub(crate) async fn success<T: Serialize>(&self, response: &T) -> Result<(), ApiError> {
        let value = serde_json::to_value(response)
            .map_err(|e| ApiError::internal(&self.ctx.request_id, &e))?;
        self.write(Outcome::Success, Some(200), None, None, Some(value))
            .await
    }

    /// Parses the body as `T`, with its JSON value for the attempt record.
    /// A body that does not parse is audited as a failure with the field
    /// and reason ([`RawBody::json`]) and answered with that error.
    pub(crate) async fn parse<T: DeserializeOwned>(
        &self,
        body: &RawBody,
    ) -> Result<(T, Value), ApiError> {
        match body.json::<T>() {
            Ok(parsed) => Ok(parsed),
            Err(e) => Err(self.fail(e, None).await),
        }
    }

    /// Records a denial or failure with its exact reason and returns the
    /// error to answer (503 instead, if even that record fails).
    pub(crate) async fn fail(&self, err: ApiError, request: Option<Value>) -> ApiError {
        let outcome = match err {
            ApiError::Unauthenticated { .. } | ApiError::Forbidden { .. } => Outcome::Denied,
            _ => Outcome::Failed,
        };
        match self
            .write(
                outcome,
                Some(err.status().as_u16()),
                Some(err.detail()),
                request,
                None,
            )
            .await
        {
            Ok(()) => err,
            Err(audit) => audit,
        }
    }

    /// [`Call::fail`] with a 500 that names the request id to the caller
    /// and `source` only in the audit record.
    pub(crate) async fn fail_internal<E: std::fmt::Display + Sync>(
        &self,
        source: &E,
        request: Option<Value>,
    ) -> ApiError {
        self.fail(ApiError::internal(&self.ctx.request_id, source), request)
            .await
    }

    /// Authenticates the presented token and checks that it holds one of
    /// `any_of` (admin holds all). Denials are audited.
    pub(crate) async fn authorize(&mut self, any_of: &[Role]) -> Result<TokenRecord, ApiError> {
        let result = match &self.ctx.token {
            None => Err(AuthError::MissingToken),
            Some(token) => self.state.tokens.authenticate(token, now_secs()).await,
        };
        let record = match result {
            Ok(record) => record,
            Err(
                reason @ (AuthError::MissingToken
                | AuthError::MalformedToken
                | AuthError::UnknownToken
                | AuthError::Expired { .. }),
            ) => {
                if let AuthError::Expired { accessor, .. } = &reason {
                    self.actor = accessor.clone();
                }
                let err = ApiError::Unauthenticated {
                    request_id: self.ctx.request_id.clone(),
                    reason,
                };
                return Err(self.fail(err, None).await);
            }
            Err(other) => {
                let err = ApiError::internal(&self.ctx.request_id, &other);
                return Err(self.fail(err, None).await);
            }
        };
        self.actor = record.accessor.clone();
        if !any_of.iter().any(|r| record.has_role(*r)) {
            let err = ApiError::Forbidden {
                request_id: self.ctx.request_id.clone(),
                needed: any_of.to_vec(),
                held: record.roles.clone(),
            };
            return Err(self.fail(err, None).await);
        }
        Ok(record)
    }

    /// Maps a token-store error of an authorised call.
    pub(crate) fn auth_error(&self, e: AuthError) -> ApiError {
        match e {
            AuthError::UnknownAccessor => ApiError::NotFound { what: "accessor" },
            AuthError::NoRoles => ApiError::InvalidField {
                field: "roles",
                message: e.to_string(),
            },
            AuthError::Ttl { .. } => ApiError::InvalidField {
                field: "ttl",
                message: e.to_string(),
            },
            other => ApiError::internal(&self.ctx.request_id, &other),
        }
    }
}
