//! `/v1/hosts/*`: enrollment (two round trips), listing, approval, boot
//! policy, labels and revocation. The public types are the bodies, shared
//! with the CLI client.
//!
//! Enrollment denials (design brief §6 rows 4–6: untrusted EK chain, EK
//! certificate for another key, AK without attestation-key attributes,
//! wrong, replayed or expired activation) are answered with the uniform
//! 403 "permission denied" and the exact [`EnrollmentDenied`] reason goes
//! to the audit log only. Malformed input is a 400 naming the field, before
//! anything is written.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyward_attest::boot_policy::BootPolicy;
use keyward_attest::ek::MAX_SUPPLIED_INTERMEDIATES;
use keyward_attest::tpm::public::TpmPublic;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::{RawBody, RequestContext};
use super::{AppState, Call, now_secs};
use crate::audit::Outcome;
use crate::auth::Role;
use crate::hosts::{
    self, EnrollmentDenied, HostRecord, HostStore, HostStoreError, PendingEnrollment,
};

/// Roles that may read host records.
const READ_ROLES: &[Role] = &[Role::Platform, Role::Auditor];
/// Roles that may enroll and change hosts (admin holds all).
const WRITE_ROLES: &[Role] = &[Role::Platform];

/// `POST /v1/hosts/enroll`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The EK's TPM2B_PUBLIC, base64.
    pub ek_public: String,
    /// The EK certificate (DER), base64; optional only for allowlisted EKs.
    #[serde(default)]
    pub ek_certificate: Option<String>,
    /// Intermediate certificates (DER), base64, used to build the chain.
    #[serde(default)]
    pub ek_intermediates: Vec<String>,
    /// The AK's TPM2B_PUBLIC, base64.
    pub ak_public: String,
    /// Labels for the host.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Requested host name (`[A-Za-z0-9._-]`, at most 64).
    #[serde(default)]
    pub name: Option<String>,
}

/// The MakeCredential challenge.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollResponse {
    /// The pending enrollment's id.
    pub enrollment_id: String,
    /// TPM2B_ID_OBJECT payload (no size prefix), base64.
    pub credential_blob: String,
    /// TPM2B_ENCRYPTED_SECRET payload (no size prefix), base64.
    pub encrypted_secret: String,
    /// When the enrollment expires, seconds since the Unix epoch.
    pub expires_at: u64,
}

/// `POST /v1/hosts/enroll/{id}/activate`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateRequest {
    /// The secret TPM2_ActivateCredential recovered, base64.
    pub secret: String,
}

/// `GET /v1/hosts`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostList {
    /// Every host, by id.
    pub hosts: Vec<HostRecord>,
}

/// `PUT /v1/hosts/{id}/boot-policy`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BootPolicyRequest {
    /// Golden PCRs or boot-log rules (see `keyward_attest::boot_policy`).
    #[schema(value_type = Object)]
    pub boot_policy: BootPolicy,
}

/// `PUT /v1/hosts/{id}/labels`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LabelsRequest {
    /// The new labels (replacing the old ones).
    pub labels: BTreeMap<String, String>,
}

/// A handler's failure: an [`ApiError`], or an enrollment denial already
/// audited with its reason and answered like any 403.
#[derive(Debug)]
pub(crate) enum Reply {
    Api(ApiError),
    Denied { request_id: String },
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self {
            Self::Api(e) => e.into_response(),
            Self::Denied { request_id } => (
                StatusCode::FORBIDDEN,
                Json(json!({
                    "errors": [format!("permission denied (request id {request_id})")]
                })),
            )
                .into_response(),
        }
    }
}

/// Audits a denial with its exact reason; the client sees a uniform 403.
async fn deny(call: &Call<'_>, reason: EnrollmentDenied, request: Option<Value>) -> Reply {
    match call
        .write(
            Outcome::Denied,
            Some(StatusCode::FORBIDDEN.as_u16()),
            Some(format!("enrollment denied: {reason}")),
            request,
            None,
        )
        .await
    {
        Ok(()) => Reply::Denied {
            request_id: call.ctx.request_id.clone(),
        },
        Err(e) => Reply::Api(e),
    }
}

fn store(state: &AppState) -> HostStore {
    HostStore::new(
        std::sync::Arc::clone(&state.storage),
        std::sync::Arc::clone(state.seal.barrier()),
    )
}

fn decode(field: &'static str, text: &str) -> Result<Vec<u8>, ApiError> {
    STANDARD
        .decode(text.trim())
        .map_err(|e| ApiError::InvalidField {
            field,
            message: format!("invalid base64: {e}"),
        })
}

fn tpm_public(field: &'static str, text: &str) -> Result<TpmPublic, ApiError> {
    TpmPublic::parse(&decode(field, text)?).map_err(|e| ApiError::InvalidField {
        field,
        message: format!("not a TPM2B_PUBLIC: {e}"),
    })
}

fn store_error(call: &Call<'_>, e: HostStoreError) -> ApiError {
    match e {
        HostStoreError::NotFound { .. } => ApiError::NotFound { what: "host" },
        HostStoreError::Transition {
            from: "revoked", ..
        } => ApiError::Conflict {
            what: "host is revoked",
        },
        HostStoreError::Transition { from: "active", .. } => ApiError::Conflict {
            what: "host is already active",
        },
        HostStoreError::Transition { .. } => ApiError::Conflict {
            what: "host is not in a state that allows this",
        },
        HostStoreError::Concurrent { .. } => ApiError::Conflict {
            what: "host changed concurrently; retry",
        },
        other => ApiError::internal(&call.ctx.request_id, &other),
    }
}

/// The decoded, parsed request.
struct Evidence {
    ek: TpmPublic,
    ek_certificate: Option<Vec<u8>>,
    intermediates: Vec<Vec<u8>>,
    ak: TpmPublic,
    ak_bytes: Vec<u8>,
}

fn parse_enroll(req: &EnrollRequest) -> Result<Evidence, ApiError> {
    let ek = tpm_public("ek_public", &req.ek_public)?;
    let ek_certificate = req
        .ek_certificate
        .as_deref()
        .map(|c| decode("ek_certificate", c))
        .transpose()?;
    if req.ek_intermediates.len() > MAX_SUPPLIED_INTERMEDIATES {
        return Err(ApiError::InvalidField {
            field: "ek_intermediates",
            message: format!("at most {MAX_SUPPLIED_INTERMEDIATES} certificates"),
        });
    }
    let intermediates = req
        .ek_intermediates
        .iter()
        .map(|c| decode("ek_intermediates", c))
        .collect::<Result<Vec<_>, _>>()?;
    let ak_bytes = decode("ak_public", &req.ak_public)?;
    let ak = TpmPublic::parse(&ak_bytes).map_err(|e| ApiError::InvalidField {
        field: "ak_public",
        message: format!("not a TPM2B_PUBLIC: {e}"),
    })?;
    hosts::check_labels(&req.labels).map_err(|e| ApiError::InvalidField {
        field: "labels",
        message: e.to_string(),
    })?;
    if let Some(name) = &req.name {
        hosts::check_name(name).map_err(|e| ApiError::InvalidField {
            field: "name",
            message: e.to_string(),
        })?;
    }
    Ok(Evidence {
        ek,
        ek_certificate,
        intermediates,
        ak,
        ak_bytes,
    })
}

/// Starts an enrollment: checks the EK chain and AK, answers with the
/// MakeCredential challenge (platform).
#[utoipa::path(post, path = "/v1/hosts/enroll", request_body = EnrollRequest, responses(
    (status = 200, body = EnrollResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody)))]
pub(crate) async fn enroll(
    State(state): State<AppState>,
    ctx: RequestContext,
    body: RawBody,
) -> Result<Json<EnrollResponse>, Reply> {
    let mut call = Call::new(&state, &ctx, "host.enroll");
    call.authorize(WRITE_ROLES).await?;
    let (req, value) = call.parse::<EnrollRequest>(&body).await?;
    let evidence = match parse_enroll(&req) {
        Ok(evidence) => evidence,
        Err(e) => return Err(call.fail(e, Some(value)).await.into()),
    };
    let settings = state.enrollment.current();
    let now = now_secs();
    let intermediates: Vec<&[u8]> = evidence.intermediates.iter().map(Vec::as_slice).collect();
    let judged = match hosts::judge(
        &settings,
        &evidence.ek,
        evidence.ek_certificate.as_deref(),
        &intermediates,
        &evidence.ak,
        now,
    ) {
        Ok(judged) => judged,
        Err(reason) => return Err(deny(&call, reason, Some(value)).await),
    };
    let (secret, challenge) = match hosts::challenge(&evidence.ek, &evidence.ak) {
        Ok(Ok(made)) => made,
        Ok(Err(reason)) => return Err(deny(&call, reason, Some(value)).await),
        Err(e) => {
            let err = ApiError::internal(&ctx.request_id, &e);
            return Err(call.fail(err, Some(value)).await.into());
        }
    };
    let id = match hosts::new_id() {
        Ok(id) => id,
        Err(e) => {
            let err = ApiError::internal(&ctx.request_id, &e);
            return Err(call.fail(err, Some(value)).await.into());
        }
    };
    let expires_at = now.saturating_add(settings.ttl_secs());
    let pending = PendingEnrollment::new(
        id.clone(),
        req.name.clone(),
        hex::encode(judged.ek_hash),
        judged.facts,
        STANDARD.encode(&evidence.ak_bytes),
        hex::encode(evidence.ak.name().as_bytes()),
        req.labels.clone(),
        judged.auto_approve,
        expires_at,
        &secret,
    );
    call.attempt(value).await?;
    if let Err(e) = store(&state).put_pending(&pending).await {
        return Err(call.fail(store_error(&call, e), None).await.into());
    }
    let response = EnrollResponse {
        enrollment_id: id,
        credential_blob: STANDARD.encode(&challenge.credential_blob),
        encrypted_secret: STANDARD.encode(&challenge.encrypted_secret),
        expires_at,
    };
    call.success(&response).await?;
    Ok(Json(response))
}

/// Completes an enrollment with the recovered secret; creates the host
/// (platform). Single use.
#[utoipa::path(post, path = "/v1/hosts/enroll/{id}/activate",
    params(("id" = String, Path, description = "Enrollment id")),
    request_body = ActivateRequest, responses(
    (status = 200, body = HostRecord), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody)))]
pub(crate) async fn activate(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ctx: RequestContext,
    body: RawBody,
) -> Result<Json<HostRecord>, Reply> {
    let mut call = Call::new(&state, &ctx, "host.activate");
    call.authorize(WRITE_ROLES).await?;
    let (req, value) = call.parse::<ActivateRequest>(&body).await?;
    let secret = match decode("secret", &req.secret) {
        Ok(secret) => zeroize::Zeroizing::new(secret),
        Err(e) => return Err(call.fail(e, Some(value)).await.into()),
    };
    drop(req);
    call.attempt(value).await?;
    match store(&state).activate(&id, &secret, now_secs()).await {
        Ok(Ok(record)) => {
            call.success(&record).await?;
            Ok(Json(record))
        }
        Ok(Err(reason)) => Err(deny(&call, reason, None).await),
        Err(e) => Err(call.fail(store_error(&call, e), None).await.into()),
    }
}

impl std::fmt::Debug for ActivateRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ActivateRequest { secret: [redacted] }")
    }
}

impl Drop for ActivateRequest {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret);
    }
}

/// Lists hosts (platform, auditor).
#[utoipa::path(get, path = "/v1/hosts", responses(
    (status = 200, body = HostList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    ctx: RequestContext,
) -> Result<Json<HostList>, Reply> {
    let mut call = Call::new(&state, &ctx, "host.list");
    call.authorize(READ_ROLES).await?;
    match store(&state).list().await {
        Ok(hosts) => {
            let response = HostList { hosts };
            call.success(&response).await?;
            Ok(Json(response))
        }
        Err(e) => Err(call.fail(store_error(&call, e), None).await.into()),
    }
}

/// Describes a host (platform, auditor).
#[utoipa::path(get, path = "/v1/hosts/{id}", params(("id" = String, Path, description = "Host id")),
    responses((status = 200, body = HostRecord), (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ctx: RequestContext,
) -> Result<Json<HostRecord>, Reply> {
    let mut call = Call::new(&state, &ctx, "host.show");
    call.authorize(READ_ROLES).await?;
    match store(&state).get(&id).await {
        Ok(record) => {
            call.success(&record).await?;
            Ok(Json(record))
        }
        Err(e) => Err(call.fail(store_error(&call, e), None).await.into()),
    }
}

/// Runs one audited change of host `id`.
async fn change(
    call: &Call<'_>,
    state: &AppState,
    id: &str,
    request: Value,
    apply: impl FnOnce(&mut HostRecord) -> Result<(), HostStoreError>,
) -> Result<Json<HostRecord>, Reply> {
    call.attempt(request).await?;
    match store(state).update(id, apply).await {
        Ok(record) => {
            call.success(&record).await?;
            Ok(Json(record))
        }
        Err(e) => Err(call.fail(store_error(call, e), None).await.into()),
    }
}

/// Approves a pending host (platform). A revoked host cannot be approved.
#[utoipa::path(post, path = "/v1/hosts/{id}/approve", params(("id" = String, Path, description = "Host id")),
    responses((status = 200, body = HostRecord), (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn approve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ctx: RequestContext,
) -> Result<Json<HostRecord>, Reply> {
    let mut call = Call::new(&state, &ctx, "host.approve");
    call.authorize(WRITE_ROLES).await?;
    change(&call, &state, &id, json!({ "id": id }), hosts::approve).await
}

/// Revokes a host at once (platform).
#[utoipa::path(post, path = "/v1/hosts/{id}/revoke", params(("id" = String, Path, description = "Host id")),
    responses((status = 200, body = HostRecord), (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ctx: RequestContext,
) -> Result<Json<HostRecord>, Reply> {
    let mut call = Call::new(&state, &ctx, "host.revoke");
    call.authorize(WRITE_ROLES).await?;
    let now = now_secs();
    let record = change(&call, &state, &id, json!({ "id": id }), |r| {
        hosts::revoke(r, now)
    })
    .await?;
    // Revocation follows attestation: the host's sessions and leases die.
    state.release.forget_sessions(|s| s.host_id == id);
    super::release::revoke_basis(
        &state,
        &ctx,
        &crate::release::lease::host_prefix(&id),
        "host revoked",
    )
    .await;
    Ok(record)
}

/// Sets a host's boot policy, validated by `keyward_attest::boot_policy`
/// (platform).
#[utoipa::path(put, path = "/v1/hosts/{id}/boot-policy", params(("id" = String, Path, description = "Host id")),
    request_body = BootPolicyRequest, responses((status = 200, body = HostRecord), (status = 400, body = ErrorBody),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn set_boot_policy(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ctx: RequestContext,
    body: RawBody,
) -> Result<Json<HostRecord>, Reply> {
    let mut call = Call::new(&state, &ctx, "host.set-boot-policy");
    call.authorize(WRITE_ROLES).await?;
    let (req, value) = call.parse::<BootPolicyRequest>(&body).await?;
    change(&call, &state, &id, value, move |r| {
        r.boot_policy = Some(req.boot_policy);
        Ok(())
    })
    .await
}

/// Replaces a host's labels (platform).
#[utoipa::path(put, path = "/v1/hosts/{id}/labels", params(("id" = String, Path, description = "Host id")),
    request_body = LabelsRequest, responses((status = 200, body = HostRecord), (status = 400, body = ErrorBody),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn set_labels(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ctx: RequestContext,
    body: RawBody,
) -> Result<Json<HostRecord>, Reply> {
    let mut call = Call::new(&state, &ctx, "host.set-labels");
    call.authorize(WRITE_ROLES).await?;
    let (req, value) = call.parse::<LabelsRequest>(&body).await?;
    if let Err(e) = hosts::check_labels(&req.labels) {
        let err = ApiError::InvalidField {
            field: "labels",
            message: e.to_string(),
        };
        return Err(call.fail(err, Some(value)).await.into());
    }
    change(&call, &state, &id, value, move |r| {
        r.labels = req.labels;
        Ok(())
    })
    .await
}
