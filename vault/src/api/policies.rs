//! `/v1/policies/signing/{kind}/{name}`: signing policies per artifact kind
//! (role `release`; `auditor` may read). The body of a `PUT` is the policy
//! document itself, validated completely by `keyward-attest`.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::error::{ApiError, ErrorBody};
use super::extract::{RawBody, RequestContext};
use super::{AppState, Call, now_secs};
use crate::artifacts::{self, Kind, PolicyRecord, RegistryStoreError, valid_policy_name};
use crate::auth::Role;
use keyward_attest::sigstore::SigningPolicy;

/// Roles that may write policies (admin holds all).
const WRITE: &[Role] = &[Role::Release];
/// Roles that may read them.
const READ: &[Role] = &[Role::Release, Role::Auditor];

/// Maps a registry store error of an authorised call.
pub(crate) fn store_error(request_id: &str, e: RegistryStoreError) -> ApiError {
    match e {
        RegistryStoreError::NotFound { what } => ApiError::NotFound { what },
        RegistryStoreError::Conflict { what } => ApiError::Conflict { what },
        other => ApiError::internal(request_id, &other),
    }
}

fn kind_and_name(kind: &str, name: &str) -> Result<Kind, ApiError> {
    let kind = Kind::parse(kind).ok_or_else(|| ApiError::InvalidField {
        field: "kind",
        message: "must be \"image\" or \"model\"".to_owned(),
    })?;
    if !valid_policy_name(name) {
        return Err(ApiError::InvalidField {
            field: "name",
            message: format!(
                "1 to {} characters of A-Z a-z 0-9 . _ -",
                artifacts::MAX_POLICY_NAME_LEN
            ),
        });
    }
    Ok(kind)
}

/// Creates or replaces a signing policy.
#[utoipa::path(put, path = "/v1/policies/signing/{kind}/{name}",
    params(("kind" = String, Path, description = "image or model"), ("name" = String, Path)),
    request_body(content = Object, description = "SigningPolicy JSON"),
    responses((status = 200, body = PolicyRecord), (status = 400, body = ErrorBody),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub(crate) async fn put(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path((kind, name)): Path<(String, String)>,
    body: RawBody,
) -> Result<Json<PolicyRecord>, ApiError> {
    let mut call = Call::new(&state, &ctx, "policy.signing.put");
    let caller = call.authorize(WRITE).await?;
    let kind = match kind_and_name(&kind, &name) {
        Ok(kind) => kind,
        Err(e) => return Err(call.fail(e, None).await),
    };
    // Deserialising a SigningPolicy validates it completely; the path of
    // the first bad field is in the message.
    let (policy, value) = call.parse::<SigningPolicy>(&body).await?;
    if policy.kind() != kind.attest() {
        let err = ApiError::InvalidField {
            field: "kind",
            message: format!(
                "the policy is for {:?} artifacts but the path says {}",
                policy.kind(),
                kind.as_str()
            ),
        };
        return Err(call.fail(err, Some(value)).await);
    }
    let stored: Value = match serde_json::from_str(&policy.to_json()) {
        Ok(v) => v,
        Err(e) => {
            return Err(call.fail_internal(&e, None).await);
        }
    };
    let record = PolicyRecord {
        name,
        kind,
        policy: stored,
        updated_at: now_secs(),
        updated_by: caller.accessor.clone(),
    };
    call.attempt(json!({ "kind": kind.as_str(), "name": record.name, "policy": value }))
        .await?;
    let _guard = state.artifacts.lock().await;
    if let Err(e) = artifacts::store_policy(state.storage.as_ref(), &record).await {
        return Err(call.fail(store_error(&ctx.request_id, e), None).await);
    }
    call.success(&record).await?;
    // Sessions re-check their artifacts against the changed policy.
    state.release.bump_epoch();
    Ok(Json(record))
}

/// Reads a signing policy.
#[utoipa::path(get, path = "/v1/policies/signing/{kind}/{name}",
    params(("kind" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = PolicyRecord), (status = 400, body = ErrorBody),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn get(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path((kind, name)): Path<(String, String)>,
) -> Result<Json<PolicyRecord>, ApiError> {
    let mut call = Call::new(&state, &ctx, "policy.signing.get");
    call.authorize(READ).await?;
    let kind = match kind_and_name(&kind, &name) {
        Ok(kind) => kind,
        Err(e) => return Err(call.fail(e, None).await),
    };
    let record = match artifacts::load_policy(state.storage.as_ref(), kind, &name).await {
        Ok(Some((record, _))) => record,
        Ok(None) => return Err(call.fail(ApiError::NotFound { what: "policy" }, None).await),
        Err(e) => return Err(call.fail(store_error(&ctx.request_id, e), None).await),
    };
    call.success(&record).await?;
    Ok(Json(record))
}

/// Lists signing policies.
#[utoipa::path(get, path = "/v1/policies/signing",
    responses((status = 200, body = Vec<PolicyRecord>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    ctx: RequestContext,
) -> Result<Json<Value>, ApiError> {
    let mut call = Call::new(&state, &ctx, "policy.signing.list");
    call.authorize(READ).await?;
    let records = match artifacts::list_policies(state.storage.as_ref()).await {
        Ok(records) => records,
        Err(e) => return Err(call.fail(store_error(&ctx.request_id, e), None).await),
    };
    let response = json!({ "policies": records });
    call.success(&response).await?;
    Ok(Json(response))
}

/// Deletes a signing policy; 409 while an active artifact references it.
#[utoipa::path(delete, path = "/v1/policies/signing/{kind}/{name}",
    params(("kind" = String, Path), ("name" = String, Path)),
    responses((status = 200), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path((kind, name)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let mut call = Call::new(&state, &ctx, "policy.signing.delete");
    call.authorize(WRITE).await?;
    let kind = match kind_and_name(&kind, &name) {
        Ok(kind) => kind,
        Err(e) => return Err(call.fail(e, None).await),
    };
    call.attempt(json!({ "kind": kind.as_str(), "name": name }))
        .await?;
    let _guard = state.artifacts.lock().await;
    if let Err(e) = artifacts::delete_policy(state.storage.as_ref(), kind, &name).await {
        return Err(call.fail(store_error(&ctx.request_id, e), None).await);
    }
    let response = json!({});
    call.success(&response).await?;
    // Sessions re-check their artifacts against the changed policy.
    state.release.bump_epoch();
    Ok(Json(response))
}
