//! The artifact registry and signing policies through the HTTP API
//! (`oneshot`, no socket): uploaded image bundles, model signatures, bad
//! input, roles, revocation and durability across a restart. Discovery in a
//! real registry is in `tests/tests/artifacts_registry.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use keyward_vault::api::{AppState, app};
use keyward_vault::audit::AuditLog;
use keyward_vault::barrier::BarrierLimits;
use keyward_vault::config::{HumanDuration, Limits};
use keyward_vault::seal::Seal;
use keyward_vault::storage::{KeyRange, Keyspace, SledConfig, SledStorage, Storage};
use serde_json::{Value, json};
use tower::ServiceExt;

const KUBEWARDEN_DIGEST: &str =
    "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172";
const KUBEWARDEN_SUBJECT: &str = "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0";
const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";
const MODEL_V11: &str = "sha256:4636e38614b56fc524211e1315e964336c3f2b9d3d0940bf495669e7c73f35f0";

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn kubewarden_bundle() -> Value {
    let path = manifest_dir()
        .join("../../shared/testdata/sigstore/cosign-v3-image-kubewarden.sigstore.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn model_file(rel: &str) -> String {
    std::fs::read_to_string(
        manifest_dir()
            .join("../attest/testdata/model-signing")
            .join(rel),
    )
    .unwrap()
}

fn model_sig(name: &str) -> Value {
    serde_json::from_str(&model_file(&format!("signatures/{name}"))).unwrap()
}

fn keyless_image_policy(subject: &str) -> Value {
    json!({"kind": "image", "predicate_types": ["https://sigstore.dev/cosign/sign/v1"],
        "identities": [{"issuer": GITHUB_ISSUER, "subject": subject}]})
}

fn key_model_policy() -> Value {
    json!({"kind": "model", "predicate_types": ["https://model_signing/signature/v1.0"],
        "keys": [{"key_id": "release", "public_key": model_file("keys/signer.pub")}]})
}

fn ca_model_policy() -> Value {
    json!({"kind": "model", "predicate_types": ["https://model_signing/signature/v1.0"],
        "certificate_authorities": [{"ca_id": "ml-ca", "certificates": model_file("keys/ca-bundle.pem")}]})
}

struct Vault {
    state: AppState,
    storage: Arc<dyn Storage>,
    audit_path: PathBuf,
}

async fn open(dir: &Path) -> Vault {
    let storage: Arc<dyn Storage> =
        Arc::new(SledStorage::open(&SledConfig::new(dir.join("data"))).unwrap());
    let seal = Arc::new(
        Seal::open(Arc::clone(&storage), BarrierLimits::default())
            .await
            .unwrap(),
    );
    let audit_path = dir.join("audit.log");
    let audit = AuditLog::open(&audit_path, Duration::from_secs(2)).unwrap();
    let limits = Limits {
        max_body_bytes: 256 * 1024,
        request_timeout: HumanDuration(Duration::from_secs(30)),
        max_concurrent_requests: 16,
    };
    let state = AppState::new(Arc::clone(&storage), seal, Arc::new(audit), limits);
    Vault {
        state,
        storage,
        audit_path,
    }
}

impl Vault {
    async fn send(&self, req: Request<Body>) -> (StatusCode, Value) {
        let resp = app(self.state.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("x-keyward-token", token);
        let req = match body {
            Some(v) => req
                .header("content-type", "application/json")
                .body(Body::from(v.to_string())),
            None => req.body(Body::empty()),
        };
        self.send(req.unwrap()).await
    }

    async fn raw_body(&self, path: &str, token: &str, body: &str) -> (StatusCode, Value) {
        let req = Request::builder()
            .method("POST")
            .uri(path)
            .header("x-keyward-token", token)
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        self.send(req).await
    }

    /// Init (unsealed afterwards); returns (shares, root token).
    async fn init(&self) -> (Vec<String>, String) {
        let req = Request::builder()
            .method("POST")
            .uri("/v1/sys/init")
            .header("content-type", "application/json")
            .body(Body::from(
                json!({"secret_shares": 1, "secret_threshold": 1}).to_string(),
            ))
            .unwrap();
        let (status, body) = self.send(req).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let keys = body["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect();
        (keys, body["root_token"].as_str().unwrap().to_owned())
    }

    async fn unseal(&self, share: &str) {
        let req = Request::builder()
            .method("POST")
            .uri("/v1/sys/unseal")
            .header("content-type", "application/json")
            .body(Body::from(json!({ "key": share }).to_string()))
            .unwrap();
        let (status, body) = self.send(req).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["sealed"], false);
    }

    async fn token(&self, root: &str, role: &str) -> String {
        let (status, body) = self
            .call(
                "POST",
                "/v1/auth/token/create",
                root,
                Some(json!({"roles": [role], "ttl": "10m"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    async fn artifact_count(&self) -> usize {
        self.storage
            .scan(Keyspace::Artifacts, KeyRange::All, 1000)
            .await
            .unwrap()
            .len()
    }

    async fn policy_count(&self) -> usize {
        self.storage
            .scan(Keyspace::SigningPolicies, KeyRange::All, 1000)
            .await
            .unwrap()
            .len()
    }

    fn audit_records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.audit_path)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    async fn put_policy(&self, token: &str, kind: &str, name: &str, policy: Value) {
        let (status, body) = self
            .call(
                "PUT",
                &format!("/v1/policies/signing/{kind}/{name}"),
                token,
                Some(policy),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

fn error_text(body: &Value) -> String {
    body["errors"][0].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn image_bundle_registered_listed_revoked_and_durable() {
    let dir = tempfile::tempdir().unwrap();
    let v = open(dir.path()).await;
    let (shares, root) = v.init().await;
    let release = v.token(&root, "release").await;
    let auditor = v.token(&root, "auditor").await;

    v.put_policy(
        &release,
        "image",
        "kubewarden",
        keyless_image_policy(KUBEWARDEN_SUBJECT),
    )
    .await;
    let (status, body) = v
        .call(
            "GET",
            "/v1/policies/signing/image/kubewarden",
            &auditor,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["policy"]["identities"][0]["subject"],
        KUBEWARDEN_SUBJECT
    );

    let reference = format!("ghcr.io/kubewarden/kubewarden-controller@{KUBEWARDEN_DIGEST}");
    let (status, body) = v
        .call(
            "POST",
            "/v1/artifacts/images",
            &release,
            Some(json!({"reference": reference, "policy": "kubewarden", "bundle": kubewarden_bundle()})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["digest"], KUBEWARDEN_DIGEST);
    assert_eq!(body["kind"], "image");
    assert_eq!(body["state"], "active");
    assert_eq!(body["source"], "bundle");
    assert_eq!(body["signer"]["type"], "keyless");
    assert_eq!(body["signer"]["subject"], KUBEWARDEN_SUBJECT);
    assert_eq!(body["signer"]["issuer"], GITHUB_ISSUER);
    assert_eq!(
        body["predicate_type"],
        "https://sigstore.dev/cosign/sign/v1"
    );
    assert!(body["tlog"]["log_index"].is_u64());
    assert_eq!(
        body["repository"],
        "ghcr.io/kubewarden/kubewarden-controller"
    );

    // The same digest again: 409.
    let (status, _) = v
        .call(
            "POST",
            "/v1/artifacts/images",
            &release,
            Some(json!({"digest": KUBEWARDEN_DIGEST, "policy": "kubewarden", "bundle": kubewarden_bundle()})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (status, body) = v
        .call("GET", "/v1/artifacts?kind=image", &auditor, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["artifacts"].as_array().unwrap().len(), 1);
    let (_, body) = v
        .call("GET", "/v1/artifacts?kind=model", &auditor, None)
        .await;
    assert_eq!(body["artifacts"].as_array().unwrap().len(), 0);
    let (status, _) = v
        .call("GET", "/v1/artifacts?kind=blob", &auditor, None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The policy is referenced: it cannot be deleted.
    let (status, _) = v
        .call(
            "DELETE",
            "/v1/policies/signing/image/kubewarden",
            &release,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // The auditor cannot revoke.
    let path = format!("/v1/artifacts/{KUBEWARDEN_DIGEST}/revoke");
    let (status, _) = v.call("POST", &path, &auditor, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Restart: the registration survives.
    drop(v);
    let v = open(dir.path()).await;
    v.unseal(&shares[0]).await;
    let (status, body) = v
        .call(
            "GET",
            &format!("/v1/artifacts/{KUBEWARDEN_DIGEST}"),
            &auditor,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "active");

    let (status, body) = v.call("POST", &path, &release, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "revoked");
    assert!(body["revoked_at"].is_u64());
    let (status, _) = v.call("POST", &path, &release, None).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Revocation is durable too.
    drop(v);
    let v = open(dir.path()).await;
    v.unseal(&shares[0]).await;
    let (_, body) = v
        .call(
            "GET",
            &format!("/v1/artifacts/{KUBEWARDEN_DIGEST}"),
            &auditor,
            None,
        )
        .await;
    assert_eq!(body["state"], "revoked");
    // Only revoked artifacts reference it now: the policy may go.
    let (status, _) = v
        .call(
            "DELETE",
            "/v1/policies/signing/image/kubewarden",
            &release,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = v
        .call(
            "GET",
            "/v1/policies/signing/image/kubewarden",
            &auditor,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let ops: Vec<String> = v
        .audit_records()
        .iter()
        .map(|r| r["operation"].as_str().unwrap_or("").to_owned())
        .collect();
    for op in [
        "policy.signing.put",
        "artifact.register-image",
        "artifact.revoke",
        "artifact.show",
        "policy.signing.delete",
    ] {
        assert!(ops.iter().any(|o| o == op), "{op} not audited");
    }
}

#[tokio::test]
async fn image_bundle_from_another_identity_is_refused_with_reason() {
    let dir = tempfile::tempdir().unwrap();
    let v = open(dir.path()).await;
    let (_, root) = v.init().await;
    let release = v.token(&root, "release").await;
    let other = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0";
    v.put_policy(&release, "image", "acme", keyless_image_policy(other))
        .await;
    let (status, body) = v
        .call(
            "POST",
            "/v1/artifacts/images",
            &release,
            Some(json!({"digest": KUBEWARDEN_DIGEST, "policy": "acme", "bundle": kubewarden_bundle()})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let text = error_text(&body);
    assert!(
        text.starts_with("bundle: signature verification failed"),
        "{text}"
    );
    assert!(text.contains("is not allowed by the policy"), "{text}");
    assert_eq!(v.artifact_count().await, 0);

    // A bundle over another digest: the signature is not over this artifact.
    let wrong = format!("sha256:{}", "ab".repeat(32));
    let (status, body) = v
        .call(
            "POST",
            "/v1/artifacts/images",
            &release,
            Some(json!({"digest": wrong, "policy": "acme", "bundle": kubewarden_bundle()})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(v.artifact_count().await, 0);

    // The right identity, but the policy pins another predicate type (legacy
    // simple signing): the cosign v3 statement does not pass for it.
    let mut legacy = keyless_image_policy(KUBEWARDEN_SUBJECT);
    legacy["predicate_types"] = json!(["application/vnd.dev.cosign.simplesigning.v1+json"]);
    v.put_policy(&release, "image", "legacy", legacy).await;
    let (status, body) = v
        .call(
            "POST",
            "/v1/artifacts/images",
            &release,
            Some(json!({"digest": KUBEWARDEN_DIGEST, "policy": "legacy", "bundle": kubewarden_bundle()})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let text = error_text(&body);
    assert!(
        text.contains("predicate type \"https://sigstore.dev/cosign/sign/v1\" is not allowed"),
        "{text}"
    );
    assert_eq!(v.artifact_count().await, 0);

    let denied = v
        .audit_records()
        .into_iter()
        .find(|r| r["operation"] == "artifact.register-image" && r["status"] == 400)
        .unwrap();
    assert!(denied["reason"].as_str().unwrap().contains("not allowed"));
}

#[tokio::test]
async fn image_policy_with_model_predicate_is_refused() {
    // A policy pinning another predicate type (here SLSA provenance) is not
    // an image policy `keyward-attest` accepts: refused at PUT.
    let dir = tempfile::tempdir().unwrap();
    let v = open(dir.path()).await;
    let (_, root) = v.init().await;
    let release = v.token(&root, "release").await;
    let mut policy = keyless_image_policy(KUBEWARDEN_SUBJECT);
    policy["predicate_types"] = json!(["https://slsa.dev/provenance/v1"]);
    let (status, body) = v
        .call(
            "PUT",
            "/v1/policies/signing/image/slsa",
            &release,
            Some(policy),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(v.policy_count().await, 0);
}

#[tokio::test]
async fn models_key_and_certificate_modes() {
    let dir = tempfile::tempdir().unwrap();
    let v = open(dir.path()).await;
    let (_, root) = v.init().await;
    let release = v.token(&root, "release").await;
    v.put_policy(&release, "model", "ml-key", key_model_policy())
        .await;
    v.put_policy(&release, "model", "ml-ca", ca_model_policy())
        .await;

    // Wrong version id: 400 with the reason, nothing stored.
    let wrong = format!("sha256:{}", "00".repeat(32));
    let (status, body) = v
        .call(
            "POST",
            "/v1/artifacts/models",
            &release,
            Some(json!({"version": wrong, "signature": model_sig("key-v11.sig"), "policy": "ml-key"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_text(&body).starts_with("signature: signature verification failed"));
    assert_eq!(v.artifact_count().await, 0);

    // A key-signed signature under the CA policy: refused.
    let (status, _) = v
        .call(
            "POST",
            "/v1/artifacts/models",
            &release,
            Some(json!({"version": MODEL_V11, "signature": model_sig("key-v11.sig"), "policy": "ml-ca"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v.artifact_count().await, 0);

    let (status, body) = v
        .call(
            "POST",
            "/v1/artifacts/models",
            &release,
            Some(
                json!({"version": MODEL_V11, "signature": model_sig("key-v11.sig"),
                "policy": "ml-key", "name": "tiny"}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["kind"], "model");
    assert_eq!(body["digest"], MODEL_V11);
    assert_eq!(body["name"], "tiny");
    assert_eq!(body["signer"], json!({"type": "key", "key_id": "release"}));
    assert_eq!(
        body["predicate_type"],
        "https://model_signing/signature/v1.0"
    );
    assert_eq!(body["tlog"], Value::Null);

    // Certificate mode (v1.0 signature of another root digest).
    let v10 = "sha256:885c8df0bd9a3b733e7d92b3d018a209261b5ca3b8385100a08157b4c6fd43db";
    let (status, body) = v
        .call(
            "POST",
            "/v1/artifacts/models",
            &release,
            Some(json!({"version": v10, "signature": model_sig("certificate-v10.sig"), "policy": "ml-ca"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["signer"]["type"], "certificate");
    assert_eq!(body["signer"]["ca_id"], "ml-ca");

    let (_, body) = v
        .call("GET", "/v1/artifacts?kind=model", &release, None)
        .await;
    assert_eq!(body["artifacts"].as_array().unwrap().len(), 2);
}

/// The signed resources of a model signature, from its DSSE payload, as a
/// registration manifest.
fn signed_manifest(signature: &Value) -> Vec<Value> {
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(signature["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    let statement: Value = serde_json::from_slice(&payload).unwrap();
    statement["predicate"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["algorithm"], "sha256");
            json!({"name": r["name"], "digest": format!("sha256:{}", r["digest"].as_str().unwrap())})
        })
        .collect()
}

#[tokio::test]
async fn model_manifest_must_equal_the_signed_resources() {
    let dir = tempfile::tempdir().unwrap();
    let v = open(dir.path()).await;
    let (_, root) = v.init().await;
    let release = v.token(&root, "release").await;
    v.put_policy(&release, "model", "ml-key", key_model_policy())
        .await;
    let signature = model_sig("key-v11.sig");
    let good = signed_manifest(&signature);
    assert_eq!(good.len(), 4);
    let register = |manifest: Option<Vec<Value>>| {
        let mut body =
            json!({"version": MODEL_V11, "signature": signature.clone(), "policy": "ml-key"});
        if let Some(m) = manifest {
            body["manifest"] = Value::Array(m);
        }
        body
    };

    // One digest changed: 400 naming the file, nothing stored.
    let mut changed = good.clone();
    let weights = changed
        .iter_mut()
        .find(|e| e["name"] == "weights.bin")
        .unwrap();
    weights["digest"] = json!(format!("sha256:{}", "00".repeat(32)));
    let (status, body) = v
        .call(
            "POST",
            "/v1/artifacts/models",
            &release,
            Some(register(Some(changed))),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        error_text(&body),
        "manifest: weights.bin: digest differs from the signed digest"
    );
    assert_eq!(v.artifact_count().await, 0);

    // A signed file left out.
    let missing: Vec<Value> = good
        .iter()
        .filter(|e| e["name"] != "tokenizer/vocab.txt")
        .cloned()
        .collect();
    let (status, body) = v
        .call(
            "POST",
            "/v1/artifacts/models",
            &release,
            Some(register(Some(missing))),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        error_text(&body),
        "manifest: tokenizer/vocab.txt: signed but missing from the manifest"
    );
    assert_eq!(v.artifact_count().await, 0);

    // A file the signature does not cover.
    let mut extra = good.clone();
    extra.push(json!({"name": "tokenizer/merges.txt",
        "digest": format!("sha256:{}", "11".repeat(32))}));
    let (status, body) = v
        .call(
            "POST",
            "/v1/artifacts/models",
            &release,
            Some(register(Some(extra))),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        error_text(&body),
        "manifest: tokenizer/merges.txt: not in the signature"
    );
    assert_eq!(v.artifact_count().await, 0);

    // A malformed digest names the file too.
    let mut malformed = good.clone();
    malformed[0]["digest"] = json!("md5:00");
    let (status, body) = v
        .call(
            "POST",
            "/v1/artifacts/models",
            &release,
            Some(register(Some(malformed))),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        error_text(&body).starts_with("manifest: config.json: digest must be"),
        "{body}"
    );
    assert_eq!(v.artifact_count().await, 0);

    // The signed list (in another order): stored and returned in lookup.
    let mut reordered = good.clone();
    reordered.reverse();
    let (status, body) = v
        .call(
            "POST",
            "/v1/artifacts/models",
            &release,
            Some(register(Some(reordered.clone()))),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["manifest"], Value::Array(reordered.clone()));
    let (status, body) = v
        .call("GET", &format!("/v1/artifacts/{MODEL_V11}"), &release, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["manifest"], Value::Array(reordered));
    assert_eq!(v.artifact_count().await, 1);

    // Without a manifest, as before: no `manifest` in the record.
    let dir = tempfile::tempdir().unwrap();
    let v = open(dir.path()).await;
    let (_, root) = v.init().await;
    let release = v.token(&root, "release").await;
    v.put_policy(&release, "model", "ml-key", key_model_policy())
        .await;
    let (status, body) = v
        .call(
            "POST",
            "/v1/artifacts/models",
            &release,
            Some(register(None)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("manifest").is_none(), "{body}");
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let v = open(dir.path()).await;
    let (_, root) = v.init().await;
    let release = v.token(&root, "release").await;
    v.put_policy(&release, "model", "ml-key", key_model_policy())
        .await;
    v.put_policy(
        &release,
        "image",
        "kw",
        keyless_image_policy(KUBEWARDEN_SUBJECT),
    )
    .await;
    let policies = v.policy_count().await;

    let cases: Vec<(&str, Value, &str)> = vec![
        // Unknown field.
        (
            "/v1/artifacts/models",
            json!({"version": MODEL_V11, "signature": model_sig("key-v11.sig"), "policy": "ml-key", "extra": 1}),
            "unknown field `extra`",
        ),
        // Wrong digest format.
        (
            "/v1/artifacts/models",
            json!({"version": "sha256:ABC", "signature": model_sig("key-v11.sig"), "policy": "ml-key"}),
            "version:",
        ),
        (
            "/v1/artifacts/images",
            json!({"digest": "sha512:00", "policy": "kw", "bundle": kubewarden_bundle()}),
            "digest:",
        ),
        (
            "/v1/artifacts/images",
            json!({"reference": "not a reference!", "policy": "kw", "bundle": kubewarden_bundle()}),
            "reference:",
        ),
        // Wrong type.
        (
            "/v1/artifacts/images",
            json!({"digest": KUBEWARDEN_DIGEST, "policy": "kw", "discover": "yes"}),
            "discover:",
        ),
        // Neither bundle nor discovery.
        (
            "/v1/artifacts/images",
            json!({"digest": KUBEWARDEN_DIGEST, "policy": "kw"}),
            "bundle:",
        ),
        // Unknown policy.
        (
            "/v1/artifacts/images",
            json!({"digest": KUBEWARDEN_DIGEST, "policy": "nope", "bundle": kubewarden_bundle()}),
            "policy:",
        ),
        // The model policy is not an image policy.
        (
            "/v1/artifacts/images",
            json!({"digest": KUBEWARDEN_DIGEST, "policy": "ml-key", "bundle": kubewarden_bundle()}),
            "policy:",
        ),
        // Bundle not an object.
        (
            "/v1/artifacts/images",
            json!({"digest": KUBEWARDEN_DIGEST, "policy": "kw", "bundle": "eyJhIjoxfQ=="}),
            "bundle:",
        ),
    ];
    for (path, body, expected) in cases {
        let (status, answer) = v.call("POST", path, &release, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {answer}");
        let text = error_text(&answer);
        assert!(text.contains(expected), "{text:?} lacks {expected:?}");
    }

    // Bad base64 inside the bundle.
    let mut bundle = kubewarden_bundle();
    bundle["dsseEnvelope"]["payload"] = json!("!!!not base64!!!");
    let (status, answer) = v
        .call(
            "POST",
            "/v1/artifacts/images",
            &release,
            Some(json!({"digest": KUBEWARDEN_DIGEST, "policy": "kw", "bundle": bundle})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_text(&answer).starts_with("bundle:"), "{answer}");

    // Malformed JSON.
    let (status, answer) = v
        .raw_body("/v1/artifacts/models", &release, "{\"version\": ")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_text(&answer).starts_with("malformed JSON"));

    // Oversized: 413.
    let big = format!(
        "{{\"version\": \"{MODEL_V11}\", \"policy\": \"ml-key\", \"signature\": {{\"x\": \"{}\"}}}}",
        "a".repeat(300 * 1024)
    );
    let (status, _) = v.raw_body("/v1/artifacts/models", &release, &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // Policies: kind mismatch, bad kind, bad name, unknown policy field.
    let (status, answer) = v
        .call(
            "PUT",
            "/v1/policies/signing/image/x",
            &release,
            Some(key_model_policy()),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_text(&answer).starts_with("kind:"));
    let (status, _) = v
        .call(
            "PUT",
            "/v1/policies/signing/blob/x",
            &release,
            Some(key_model_policy()),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = v
        .call(
            "PUT",
            "/v1/policies/signing/model/a%20b",
            &release,
            Some(key_model_policy()),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let mut policy = key_model_policy();
    policy["colour"] = json!("red");
    let (status, answer) = v
        .call(
            "PUT",
            "/v1/policies/signing/model/x",
            &release,
            Some(policy),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_text(&answer).contains("colour"), "{answer}");
    let (status, _) = v
        .call("GET", "/v1/artifacts/sha256:xyz", &release, None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    assert_eq!(v.artifact_count().await, 0);
    assert_eq!(v.policy_count().await, policies);
}

#[tokio::test]
async fn openapi_lists_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let v = open(dir.path()).await;
    let (status, doc) = v.call("GET", "/v1/openapi.json", "", None).await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/v1/policies/signing",
        "/v1/policies/signing/{kind}/{name}",
        "/v1/artifacts",
        "/v1/artifacts/images",
        "/v1/artifacts/models",
        "/v1/artifacts/{digest}",
        "/v1/artifacts/{digest}/revoke",
    ] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
    for schema in [
        "ArtifactRecord",
        "PolicyRecord",
        "RegisterImageRequest",
        "RegisterModelRequest",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
}

#[tokio::test]
async fn roles_are_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let v = open(dir.path()).await;
    let (_, root) = v.init().await;
    let platform = v.token(&root, "platform").await;
    let auditor = v.token(&root, "auditor").await;

    let put = |t: String| {
        let v = &v;
        async move {
            v.call(
                "PUT",
                "/v1/policies/signing/model/m",
                &t,
                Some(key_model_policy()),
            )
            .await
            .0
        }
    };
    assert_eq!(put(platform.clone()).await, StatusCode::FORBIDDEN);
    assert_eq!(put(auditor.clone()).await, StatusCode::FORBIDDEN);
    assert_eq!(
        put("kwt_nonsense".to_owned()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(v.policy_count().await, 0);
    // Admin holds every role.
    assert_eq!(put(root.clone()).await, StatusCode::OK);

    let body = json!({"version": MODEL_V11, "signature": model_sig("key-v11.sig"), "policy": "m"});
    let (status, _) = v
        .call("POST", "/v1/artifacts/models", &auditor, Some(body.clone()))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = v
        .call("POST", "/v1/artifacts/models", &platform, Some(body))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(v.artifact_count().await, 0);
    let (status, _) = v.call("GET", "/v1/artifacts", &platform, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = v.call("GET", "/v1/policies/signing", &platform, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = v.call("GET", "/v1/policies/signing", &auditor, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["policies"].as_array().unwrap().len(), 1);
    let (status, _) = v
        .call("DELETE", "/v1/policies/signing/model/m", &auditor, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(v.policy_count().await, 1);
}
