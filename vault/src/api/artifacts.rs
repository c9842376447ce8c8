//! `/v1/artifacts/*`: register images and model versions after their
//! signatures verify (role `release`), list and look them up (`auditor`
//! too), revoke them.
//!
//! A registration that fails verification is answered 400 with the
//! verifier's reason: the caller is an authenticated release engineer who
//! needs it to fix the signature, not an anonymous prober. Nothing is
//! stored then. Audit records carry the SHA-256 of an uploaded bundle, not
//! the bundle (it can be megabytes and holds nothing secret).
//!
//! A model registration may carry the model's file list (`manifest`). It
//! must equal the verified signature's resource list exactly, or the
//! registration fails with 400 naming the first differing file and nothing
//! is stored; a matching manifest is stored with the artifact so later
//! checks of a model directory can name the changed file.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use keyward_attest::sigstore::{MAX_BUNDLE_LEN, SigningPolicy, VerifiedArtifact};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::extract::{RawBody, RequestContext};
use super::policies::store_error;
use super::{AppState, Call, now_secs};
use crate::artifacts::{
    self, ArtifactRecord, Kind, MAX_NAME_LEN, ManifestEntry, Registration, Source, Verifiers,
    check_manifest, parse_digest, valid_policy_name,
};
use crate::auth::Role;

const WRITE: &[Role] = &[Role::Release];
const READ: &[Role] = &[Role::Release, Role::Auditor];

/// `POST /v1/artifacts/images`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterImageRequest {
    /// `registry/repo:tag` or `registry/repo@sha256:<hex>`; or give
    /// `digest` (and `repository` for discovery).
    #[serde(default)]
    reference: Option<String>,
    /// `sha256:<hex>` manifest digest.
    #[serde(default)]
    digest: Option<String>,
    /// `registry/repo`, with `digest`.
    #[serde(default)]
    repository: Option<String>,
    /// The image signing policy's name.
    policy: String,
    /// A cosign v3 Sigstore bundle (JSON), or use `discover`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    bundle: Option<Value>,
    /// Discover the signature in the OCI registry.
    #[serde(default)]
    discover: bool,
}

/// `POST /v1/artifacts/models`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterModelRequest {
    /// The model version id, `sha256:<root digest>`.
    version: String,
    /// The model-signing signature (`model.sig`, a Sigstore bundle, JSON).
    #[schema(value_type = Object)]
    signature: Value,
    /// The model signing policy's name.
    policy: String,
    /// A name for the model (default: the signed subject name).
    #[serde(default)]
    name: Option<String>,
    /// The model's files; when given, must equal the signed resource list
    /// exactly, and is stored with the artifact.
    #[serde(default)]
    manifest: Option<Vec<ManifestEntry>>,
}

fn invalid(field: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::InvalidField {
        field,
        message: message.into(),
    }
}

/// The bundle's bytes (capped) and its SHA-256 for the audit record.
fn bundle_bytes(field: &'static str, bundle: &Value) -> Result<(Vec<u8>, String), ApiError> {
    if !bundle.is_object() {
        return Err(invalid(field, "must be a Sigstore bundle (a JSON object)"));
    }
    let bytes = serde_json::to_vec(bundle).map_err(|e| invalid(field, e.to_string()))?;
    if bytes.len() > MAX_BUNDLE_LEN {
        return Err(invalid(
            field,
            format!("larger than {MAX_BUNDLE_LEN} bytes"),
        ));
    }
    let hash = hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes));
    Ok((bytes, format!("sha256:{hash}")))
}

/// Loads the named policy of `kind`: 400 naming `policy` when absent.
async fn policy_for(
    state: &AppState,
    request_id: &str,
    kind: Kind,
    name: &str,
) -> Result<(SigningPolicy, Vec<u8>), ApiError> {
    if !valid_policy_name(name) {
        return Err(invalid("policy", "not a valid policy name"));
    }
    match artifacts::load_policy(state.storage.as_ref(), kind, name).await {
        Ok(Some((record, bytes))) => {
            let policy = record
                .signing_policy()
                .map_err(|e| store_error(request_id, e))?;
            Ok((policy, bytes))
        }
        Ok(None) => Err(invalid(
            "policy",
            format!("no {} signing policy named {name:?}", kind.as_str()),
        )),
        Err(e) => Err(store_error(request_id, e)),
    }
}

fn verifiers(state: &AppState, request_id: &str) -> Result<std::sync::Arc<Verifiers>, ApiError> {
    state
        .artifacts
        .verifiers()
        .map_err(|e| ApiError::internal(request_id, &e))
}

/// Runs CPU-bound verification off the async workers.
async fn blocking<T: Send + 'static>(
    request_id: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(request_id, &e))
}

/// What an image registration names, after validation.
struct ImageTarget {
    /// The reference to resolve (tag or digest), if given.
    reference: Option<String>,
    /// The digest, when known without the registry.
    digest: Option<[u8; 32]>,
    /// `registry/repo`.
    repository: Option<String>,
}

fn image_target(req: &RegisterImageRequest) -> Result<ImageTarget, ApiError> {
    let too_long = |v: &Option<String>| v.as_ref().is_some_and(|r| r.len() > MAX_NAME_LEN);
    if too_long(&req.reference) {
        return Err(invalid(
            "reference",
            format!("longer than {MAX_NAME_LEN} bytes"),
        ));
    }
    if too_long(&req.repository) {
        return Err(invalid(
            "repository",
            format!("longer than {MAX_NAME_LEN} bytes"),
        ));
    }
    match (&req.reference, &req.digest) {
        (Some(_), Some(_)) => Err(invalid("digest", "give reference or digest, not both")),
        (None, None) => Err(invalid("reference", "give reference or digest")),
        (Some(text), None) => {
            if req.repository.is_some() {
                return Err(invalid("repository", "only with digest"));
            }
            let parsed: oci_client::Reference = text
                .parse()
                .map_err(|_| invalid("reference", format!("invalid image reference {text:?}")))?;
            let digest = match parsed.digest() {
                Some(d) => Some(parse_digest(d).ok_or_else(|| {
                    invalid("reference", "digest must be sha256:<64 lower-case hex>")
                })?),
                None => None,
            };
            Ok(ImageTarget {
                reference: Some(text.clone()),
                digest,
                repository: Some(format!("{}/{}", parsed.registry(), parsed.repository())),
            })
        }
        (None, Some(text)) => {
            let digest = parse_digest(text)
                .ok_or_else(|| invalid("digest", "must be sha256:<64 lower-case hex>"))?;
            if req.discover && req.repository.is_none() {
                return Err(invalid("repository", "required to discover by digest"));
            }
            Ok(ImageTarget {
                reference: None,
                digest: Some(digest),
                repository: req.repository.clone(),
            })
        }
    }
}

/// Registers an image digest whose signature satisfies an image policy.
#[utoipa::path(post, path = "/v1/artifacts/images", request_body = RegisterImageRequest, responses(
    (status = 200, body = ArtifactRecord), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub(crate) async fn register_image(
    State(state): State<AppState>,
    ctx: RequestContext,
    body: RawBody,
) -> Result<Json<ArtifactRecord>, ApiError> {
    let mut call = Call::new(&state, &ctx, "artifact.register-image");
    let caller = call.authorize(WRITE).await?;
    let (req, _) = call.parse::<RegisterImageRequest>(&body).await?;
    let mut summary = json!({
        "reference": req.reference, "digest": req.digest, "repository": req.repository,
        "policy": req.policy, "discover": req.discover,
    });
    let rid = ctx.request_id.clone();
    let prepared = async {
        let target = image_target(&req)?;
        let bundle = match (&req.bundle, req.discover) {
            (Some(_), true) => {
                return Err(invalid("discover", "give bundle or discover, not both"));
            }
            (None, false) => return Err(invalid("bundle", "give a bundle or \"discover\": true")),
            (Some(b), false) => Some(bundle_bytes("bundle", b)?),
            (None, true) => None,
        };
        let (policy, policy_bytes) = policy_for(&state, &rid, Kind::Image, &req.policy).await?;
        Ok((target, bundle, policy, policy_bytes))
    }
    .await;
    let (target, bundle, policy, policy_bytes) = match prepared {
        Ok(p) => p,
        Err(e) => return Err(call.fail(e, Some(summary)).await),
    };
    if let (Some(obj), Some((_, hash))) = (summary.as_object_mut(), &bundle) {
        obj.insert("bundle_sha256".to_owned(), Value::String(hash.clone()));
    }
    let verified = match verify_image(&state, &rid, &target, bundle, policy).await {
        Ok(v) => v,
        Err(e) => return Err(call.fail(e, Some(summary)).await),
    };
    let registration = Registration {
        name: target.reference,
        repository: target.repository,
        source: if req.discover {
            Source::Discovery
        } else {
            Source::Bundle
        },
        policy: req.policy.clone(),
        now: now_secs(),
        by: caller.accessor.clone(),
        manifest: None,
    };
    commit(
        &state,
        &call,
        &rid,
        verified,
        registration,
        &policy_bytes,
        summary,
    )
    .await
}

/// Verifies the uploaded bundle, or discovers and verifies in the registry.
async fn verify_image(
    state: &AppState,
    rid: &str,
    target: &ImageTarget,
    bundle: Option<(Vec<u8>, String)>,
    policy: SigningPolicy,
) -> Result<VerifiedArtifact, ApiError> {
    let v = verifiers(state, rid)?;
    let now = now_secs();
    let (reference, digest, repository) = (&target.reference, target.digest, &target.repository);
    match bundle {
        Some((bytes, _)) => {
            let digest = match (digest, reference) {
                (Some(d), _) => d,
                // A tag: the registry says which digest it names today; the
                // signature must then be over that digest.
                (None, Some(r)) => *v
                    .registry
                    .resolve(r)
                    .await
                    .map_err(|e| invalid("reference", format!("cannot resolve: {e}")))?
                    .digest(),
                (None, None) => return Err(invalid("reference", "give reference or digest")),
            };
            blocking(rid, move || {
                keyward_attest::sigstore::image::verify_cosign_bundle(
                    &v.trust, &policy, &bytes, &digest, now,
                )
            })
            .await?
            .map_err(|e| invalid("bundle", format!("signature verification failed: {e}")))
        }
        None => {
            let result = match (reference, digest, repository) {
                (Some(r), _, _) => v.registry.verify_image(&v.trust, &policy, r, now).await,
                (None, Some(d), Some(repo)) => {
                    v.registry
                        .verify_digest(&v.trust, &policy, repo, &d, now)
                        .await
                }
                _ => return Err(invalid("repository", "required to discover by digest")),
            };
            result.map_err(|e| invalid("discover", format!("signature verification failed: {e}")))
        }
    }
}

/// Stores the record of a verified artifact (attempt, commit, outcome).
async fn commit(
    state: &AppState,
    call: &Call<'_>,
    rid: &str,
    verified: VerifiedArtifact,
    registration: Registration,
    policy_bytes: &[u8],
    summary: Value,
) -> Result<Json<ArtifactRecord>, ApiError> {
    let Some(record) = ArtifactRecord::from_verified(&verified, registration) else {
        let err = ApiError::internal(rid, &"verified artifact of an unregistrable kind");
        return Err(call.fail(err, Some(summary)).await);
    };
    call.attempt(summary).await?;
    let guard = state.artifacts.lock().await;
    let stored = artifacts::insert_artifact(state.storage.as_ref(), &record, policy_bytes).await;
    drop(guard);
    if let Err(e) = stored {
        return Err(call.fail(store_error(rid, e), None).await);
    }
    call.success(&record).await?;
    Ok(Json(record))
}

/// Registers a model version whose model-signing signature satisfies a
/// model policy.
#[utoipa::path(post, path = "/v1/artifacts/models", request_body = RegisterModelRequest, responses(
    (status = 200, body = ArtifactRecord), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub(crate) async fn register_model(
    State(state): State<AppState>,
    ctx: RequestContext,
    body: RawBody,
) -> Result<Json<ArtifactRecord>, ApiError> {
    let mut call = Call::new(&state, &ctx, "artifact.register-model");
    let caller = call.authorize(WRITE).await?;
    let (req, _) = call.parse::<RegisterModelRequest>(&body).await?;
    let mut summary = json!({ "version": req.version, "policy": req.policy, "name": req.name,
        "manifest_entries": req.manifest.as_ref().map(Vec::len) });
    let rid = ctx.request_id.clone();
    let prepared = async {
        let root = parse_digest(&req.version)
            .ok_or_else(|| invalid("version", "must be sha256:<64 lower-case hex>"))?;
        if req
            .name
            .as_ref()
            .is_some_and(|n| n.is_empty() || n.len() > MAX_NAME_LEN)
        {
            return Err(invalid("name", format!("1 to {MAX_NAME_LEN} bytes")));
        }
        let bundle = bundle_bytes("signature", &req.signature)?;
        let (policy, policy_bytes) = policy_for(&state, &rid, Kind::Model, &req.policy).await?;
        Ok((root, bundle, policy, policy_bytes))
    }
    .await;
    let (root, (bytes, hash), policy, policy_bytes) = match prepared {
        Ok(p) => p,
        Err(e) => return Err(call.fail(e, Some(summary)).await),
    };
    if let Some(obj) = summary.as_object_mut() {
        obj.insert("signature_sha256".to_owned(), Value::String(hash));
    }
    let v = match verifiers(&state, &rid) {
        Ok(v) => v,
        Err(e) => return Err(call.fail(e, Some(summary)).await),
    };
    let now = now_secs();
    let manifest = req.manifest.clone();
    let result = blocking(&rid, move || {
        keyward_attest::sigstore::model::verify_model_signature(&v.trust, &policy, &bytes, now)
            .map_err(|e| invalid("signature", format!("signature verification failed: {e}")))
            .and_then(|m| {
                // Checked against the verified resource list, before the
                // root digest: a manifest is only stored when it is exactly
                // what was signed.
                if let Some(manifest) = &manifest {
                    check_manifest(manifest, m.resources())
                        .map_err(|e| invalid("manifest", e.to_string()))?;
                }
                let name = m.version().name().to_owned();
                m.for_root_digest(&root).map(|a| (a, name)).map_err(|e| {
                    invalid("signature", format!("signature verification failed: {e}"))
                })
            })
    })
    .await;
    let (verified, signed_name) = match result {
        Ok(Ok(v)) => v,
        Ok(Err(e)) | Err(e) => return Err(call.fail(e, Some(summary)).await),
    };
    let name = req.name.clone().or_else(|| {
        (!signed_name.is_empty() && signed_name.len() <= MAX_NAME_LEN).then_some(signed_name)
    });
    let registration = Registration {
        name,
        repository: None,
        source: Source::Bundle,
        policy: req.policy.clone(),
        now: now_secs(),
        by: caller.accessor.clone(),
        manifest: req.manifest,
    };
    commit(
        &state,
        &call,
        &rid,
        verified,
        registration,
        &policy_bytes,
        summary,
    )
    .await
}

/// Lists registered artifacts, optionally of one kind (`?kind=image|model`).
#[utoipa::path(get, path = "/v1/artifacts", params(("kind" = Option<String>, Query)), responses(
    (status = 200, body = Vec<ArtifactRecord>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    ctx: RequestContext,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let mut call = Call::new(&state, &ctx, "artifact.list");
    call.authorize(READ).await?;
    let kind = match parse_kind_query(query.as_deref()) {
        Ok(kind) => kind,
        Err(e) => return Err(call.fail(e, None).await),
    };
    let records = match artifacts::list_artifacts(state.storage.as_ref(), kind).await {
        Ok(records) => records,
        Err(e) => return Err(call.fail(store_error(&ctx.request_id, e), None).await),
    };
    let response = json!({ "artifacts": records });
    call.success(&response).await?;
    Ok(Json(response))
}

fn parse_kind_query(query: Option<&str>) -> Result<Option<Kind>, ApiError> {
    let mut kind = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("kind", value)) if kind.is_none() => {
                kind = Some(
                    Kind::parse(value)
                        .ok_or_else(|| invalid("kind", "must be \"image\" or \"model\""))?,
                );
            }
            Some(("kind", _)) => return Err(invalid("kind", "given more than once")),
            _ => return Err(invalid("query", "only \"kind\" is accepted")),
        }
    }
    Ok(kind)
}

fn digest_path(digest: &str) -> Result<(), ApiError> {
    parse_digest(digest)
        .map(|_| ())
        .ok_or_else(|| invalid("digest", "must be sha256:<64 lower-case hex>"))
}

/// Looks up an artifact by digest.
#[utoipa::path(get, path = "/v1/artifacts/{digest}", params(("digest" = String, Path, description = "sha256:<hex>")),
    responses((status = 200, body = ArtifactRecord), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn show(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(digest): Path<String>,
) -> Result<Json<ArtifactRecord>, ApiError> {
    let mut call = Call::new(&state, &ctx, "artifact.show");
    call.authorize(READ).await?;
    if let Err(e) = digest_path(&digest) {
        return Err(call.fail(e, None).await);
    }
    let record = match artifacts::load_artifact(state.storage.as_ref(), &digest).await {
        Ok(Some((record, _))) => record,
        Ok(None) => {
            return Err(call
                .fail(ApiError::NotFound { what: "artifact" }, None)
                .await);
        }
        Err(e) => return Err(call.fail(store_error(&ctx.request_id, e), None).await),
    };
    call.success(&record).await?;
    Ok(Json(record))
}

/// Revokes an artifact, at once: its record stays, marked `revoked`.
#[utoipa::path(post, path = "/v1/artifacts/{digest}/revoke", params(("digest" = String, Path)),
    responses((status = 200, body = ArtifactRecord), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    ctx: RequestContext,
    Path(digest): Path<String>,
) -> Result<Json<ArtifactRecord>, ApiError> {
    let mut call = Call::new(&state, &ctx, "artifact.revoke");
    let caller = call.authorize(WRITE).await?;
    if let Err(e) = digest_path(&digest) {
        return Err(call.fail(e, None).await);
    }
    call.attempt(json!({ "digest": digest })).await?;
    let record = match artifacts::revoke_artifact(
        state.storage.as_ref(),
        &digest,
        now_secs(),
        &caller.accessor,
    )
    .await
    {
        Ok(record) => record,
        Err(e) => return Err(call.fail(store_error(&ctx.request_id, e), None).await),
    };
    call.success(&record).await?;
    // Revocation follows attestation: sessions and leases running it die.
    state
        .release
        .forget_sessions(|s| s.image_digest == digest || s.model_digest == digest);
    super::release::revoke_basis(
        &state,
        &ctx,
        &crate::release::lease::artifact_prefix(&digest),
        "artifact revoked",
    )
    .await;
    Ok(Json(record))
}
