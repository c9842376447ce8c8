//! The release path end to end, through the vault's router (`oneshot`, no
//! socket): a swtpm host enrolled by credential activation, an image pushed
//! to a real registry (Debian's docker-registry) with a key-signed
//! simple-signing signature discovered there, a model version signed by
//! the real `model_signing` 1.1.1 (committed vector), a workload launched
//! the way `keyward launch` does it (instance key, launch record appended to
//! the CEL, workload PCR extended in the TPM), then challenge → quote →
//! evidence → session → secrets, and the attack-table denials with their
//! audit reasons.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::as_conversions
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyward_attest::cel::{LaunchRecord, append};
use keyward_attest::instance::{
    PopProof, PopRequest, instance_key_sha256, nonce_message, qualifying_data,
};
use keyward_hardware::harness::SimHost;
use keyward_hardware::{AkAlgorithm, AkBlob, EkKind, PcrBank, PcrSelection};
use keyward_tests::registry::{Registry, generate_key, write_test_image};
use keyward_vault::api::{AppState, app};
use keyward_vault::artifacts::RegistrySettings;
use keyward_vault::audit::AuditLog;
use keyward_vault::barrier::BarrierLimits;
use keyward_vault::config::{ArtifactsConfig, EnrollmentConfig, HumanDuration, Limits};
use keyward_vault::hosts::EnrollmentSettings;
use keyward_vault::seal::Seal;
use keyward_vault::storage::{SledConfig, SledStorage, Storage};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};
use tower::ServiceExt;

const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const MODEL_PREDICATE: &str = "https://model_signing/signature/v1.0";
const WORKLOAD_PCR: u8 = 23;
const BOOT_PCRS: [u8; 8] = [0, 1, 2, 3, 4, 5, 6, 7];

fn model_vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../attest/testdata/model-signing")
}

/// The model version the committed key-mode signature covers.
fn model_version() -> String {
    let text =
        std::fs::read_to_string(model_vectors().join("signatures/root-digests.txt")).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("key-v11.sig"))
        .unwrap_or_else(|| panic!("no key-v11 line in root-digests.txt:\n{text}"));
    let hex = line
        .split_whitespace()
        .find(|w| w.len() == 64 || w.starts_with("sha256:"))
        .unwrap();
    if hex.starts_with("sha256:") {
        hex.to_owned()
    } else {
        format!("sha256:{hex}")
    }
}

/// A vault, a registry with a signed image, a registered model, and an
/// enrolled, approved swtpm host.
struct Fixture {
    _dir: tempfile::TempDir,
    _registry: Registry,
    pub sim: SimHost,
    pub state: AppState,
    pub root: String,
    pub host_id: String,
    pub ak: AkBlob,
    pub image_ref: String,
    pub image_digest: String,
    pub model_digest: String,
    pub audit_path: PathBuf,
}

async fn call(
    state: &AppState,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header("x-keyward-token", t);
    }
    let req = match body {
        Some(v) => req
            .header("content-type", "application/json")
            .body(Body::from(v.to_string())),
        None => req.body(Body::empty()),
    };
    let resp = app(state.clone()).oneshot(req.unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

impl Fixture {
    async fn start() -> Self {
        let registry = Registry::start().unwrap();
        let layout = registry.scratch("image").unwrap();
        let image_digest = write_test_image(&layout, "img", b"agent v1\n").unwrap();
        registry
            .skopeo_push(&layout, "img", "keyward/agent", "v1")
            .unwrap();
        let keys = registry.scratch("keys").unwrap();
        let (key, public) = generate_key(&keys, "release").unwrap();
        let image_ref = format!("{}/keyward/agent:v1", registry.addr());
        registry
            .push_simple_signature("keyward/agent", &image_ref, &image_digest, &[&key])
            .unwrap();

        let sim = SimHost::start().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let storage: Arc<dyn Storage> =
            Arc::new(SledStorage::open(&SledConfig::new(dir.path().join("data"))).unwrap());
        let seal = Arc::new(
            Seal::open(Arc::clone(&storage), BarrierLimits::default())
                .await
                .unwrap(),
        );
        let audit_path = dir.path().join("audit.log");
        let audit = AuditLog::open(&audit_path, Duration::from_secs(2)).unwrap();
        let limits = Limits {
            max_body_bytes: 1 << 20,
            request_timeout: HumanDuration(Duration::from_secs(30)),
            max_concurrent_requests: 64,
        };
        let state = AppState::new(storage, seal, Arc::new(audit), limits);
        state.enrollment.configure(
            EnrollmentSettings::load(&EnrollmentConfig {
                ek_roots: vec![sim.ca().root_cert_path()],
                ek_intermediates: vec![sim.ca().intermediate_cert_path()],
                ..EnrollmentConfig::default()
            })
            .unwrap(),
        );
        assert!(state.artifacts.configure(ArtifactsConfig {
            trusted_root: None,
            registry: RegistrySettings {
                insecure_hosts: vec![registry.addr()],
                ..RegistrySettings::default()
            },
        }));
        let (status, body) = call(
            &state,
            "POST",
            "/v1/sys/init",
            None,
            Some(&json!({"secret_shares": 1, "secret_threshold": 1})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let root = body["root_token"].as_str().unwrap().to_owned();

        // Signing policies and artifacts.
        let image_policy = json!({"kind": "image", "predicate_types": [SIMPLE_SIGNING],
            "keys": [{"key_id": "release", "public_key": public}]});
        let signer_pub = std::fs::read_to_string(model_vectors().join("keys/signer.pub")).unwrap();
        let model_policy = json!({"kind": "model", "predicate_types": [MODEL_PREDICATE],
            "keys": [{"key_id": "model-release", "public_key": signer_pub}]});
        for (path, policy) in [
            ("/v1/policies/signing/image/release", image_policy),
            ("/v1/policies/signing/model/release", model_policy),
        ] {
            let (status, body) = call(&state, "PUT", path, Some(&root), Some(&policy)).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        let (status, body) = call(
            &state,
            "POST",
            "/v1/artifacts/images",
            Some(&root),
            Some(&json!({"reference": image_ref, "policy": "release", "discover": true})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let signature: Value = serde_json::from_slice(
            &std::fs::read(model_vectors().join("signatures/key-v11.sig")).unwrap(),
        )
        .unwrap();
        let model_digest = model_version();
        let (status, body) = call(
            &state,
            "POST",
            "/v1/artifacts/models",
            Some(&root),
            Some(&json!({"version": model_digest, "signature": signature,
                "policy": "release", "name": "demo-model"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");

        // Enroll the host: EK + AK, credential activation, approval.
        let tpm = sim.open().unwrap();
        let ek = tpm.ek_public(EkKind::Rsa2048).unwrap();
        let ek_cert = tpm.ek_certificate(EkKind::Rsa2048).unwrap();
        let ak = tpm
            .create_ak(EkKind::Rsa2048, AkAlgorithm::RsaSsaSha256)
            .unwrap();
        let request = json!({
            "ek_public": STANDARD.encode(&ek.tpm2b_public),
            "ek_certificate": STANDARD.encode(&ek_cert),
            "ak_public": STANDARD.encode(ak.public().unwrap().tpm2b_public),
            "name": "node-1",
            "labels": {"env": "prod"},
        });
        let (status, challenge) = call(
            &state,
            "POST",
            "/v1/hosts/enroll",
            Some(&root),
            Some(&request),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{challenge}");
        let blob = STANDARD
            .decode(challenge["credential_blob"].as_str().unwrap())
            .unwrap();
        let secret = STANDARD
            .decode(challenge["encrypted_secret"].as_str().unwrap())
            .unwrap();
        let recovered = tpm.activate_credential(&ak, &blob, &secret).unwrap();
        let id = challenge["enrollment_id"].as_str().unwrap();
        let (status, record) = call(
            &state,
            "POST",
            &format!("/v1/hosts/enroll/{id}/activate"),
            Some(&root),
            Some(&json!({"secret": STANDARD.encode(recovered.as_slice())})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{record}");
        let host_id = record["id"].as_str().unwrap().to_owned();
        let (status, body) = call(
            &state,
            "POST",
            &format!("/v1/hosts/{host_id}/approve"),
            Some(&root),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // Golden boot PCRs: what this (firmware-less) swtpm holds now.
        let values = tpm
            .read_pcrs(&[PcrSelection::new(PcrBank::Sha256, &BOOT_PCRS)])
            .unwrap();
        let golden: serde_json::Map<String, Value> = values
            .iter()
            .map(|p| (p.index.to_string(), json!(hex::encode(&p.digest))))
            .collect();
        let policy = json!({"boot_policy": {"golden_pcrs": {"sha256": golden}}});
        let (status, body) = call(
            &state,
            "PUT",
            &format!("/v1/hosts/{host_id}/boot-policy"),
            Some(&root),
            Some(&policy),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        drop(tpm);

        Self {
            _dir: dir,
            _registry: registry,
            sim,
            state,
            root,
            host_id,
            ak,
            image_ref,
            image_digest,
            model_digest,
            audit_path,
        }
    }

    async fn admin(&self, method: &str, path: &str, body: Option<&Value>) -> (StatusCode, Value) {
        call(&self.state, method, path, Some(&self.root), body).await
    }

    async fn put_policy(&self, name: &str, text: &str) {
        let (status, body) = self
            .admin(
                "PUT",
                &format!("/v1/policies/release/{name}"),
                Some(&json!({ "policy": text })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// Launches a workload as `keyward launch` does; returns it.
    fn launch(&self, cel: &mut Vec<u8>, instance: &str, model_digest: &str) -> Workload {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let public: [u8; 32] = key.public_key().as_ref().try_into().unwrap();
        let record = LaunchRecord::new(
            instance,
            &self.image_ref,
            &self.image_digest,
            "demo-model",
            model_digest,
            instance_key_sha256(&public),
        )
        .unwrap();
        let digest = append(cel, WORKLOAD_PCR, &record).unwrap();
        let tpm = self.sim.open().unwrap();
        tpm.extend_pcr_sha256(WORKLOAD_PCR, digest).unwrap();
        Workload { key, public }
    }

    /// Evidence for `workload` answering a fresh challenge.
    async fn evidence(&self, workload: &Workload, cel: &[u8]) -> Value {
        let mut indices = BOOT_PCRS.to_vec();
        indices.push(WORKLOAD_PCR);
        self.evidence_with(workload, cel, &indices, None).await
    }

    /// Evidence quoting `indices`, with a boot log.
    async fn evidence_with(
        &self,
        workload: &Workload,
        cel: &[u8],
        indices: &[u8],
        boot_log: Option<&[u8]>,
    ) -> Value {
        let (status, challenge) =
            call(&self.state, "POST", "/v1/attest/challenge", None, None).await;
        assert_eq!(status, StatusCode::OK, "{challenge}");
        let nonce = hex::decode(challenge["nonce"].as_str().unwrap()).unwrap();
        let tpm = self.sim.open().unwrap();
        let quote = tpm
            .quote(
                &self.ak,
                &qualifying_data(&nonce, &workload.public),
                &[PcrSelection::new(PcrBank::Sha256, indices)],
            )
            .unwrap();
        let pcrs: serde_json::Map<String, Value> = quote
            .pcrs
            .iter()
            .map(|p| (p.index.to_string(), json!(hex::encode(&p.digest))))
            .collect();
        let mut evidence = json!({
            "host_id": self.host_id,
            "nonce": hex::encode(&nonce),
            "quote": STANDARD.encode(&quote.attest),
            "signature": STANDARD.encode(&quote.signature),
            "pcrs": {"sha256": pcrs},
            "workload_log": STANDARD.encode(cel),
            "instance_key": STANDARD.encode(workload.public),
            "nonce_signature": STANDARD.encode(workload.key.sign(&nonce_message(&nonce))),
        });
        if let Some(log) = boot_log {
            evidence["boot_log"] = json!(STANDARD.encode(log));
        }
        evidence
    }

    async fn attest(&self, evidence: &Value) -> (StatusCode, Value) {
        call(&self.state, "POST", "/v1/attest", None, Some(evidence)).await
    }

    /// A session request with a proof of possession.
    async fn session_call(
        &self,
        workload: &Workload,
        token: &str,
        path: &str,
        body: &Value,
    ) -> (StatusCode, Value) {
        let bytes = body.to_string();
        let mut id = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut id).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let proof = PopProof::sign(
            &workload.key,
            &PopRequest {
                method: "POST",
                path,
                body: bytes.as_bytes(),
                token: token.as_bytes(),
            },
            now,
            id,
        );
        self.raw(path, Some(token), Some(&proof), bytes).await
    }

    async fn raw(
        &self,
        path: &str,
        token: Option<&str>,
        proof: Option<&str>,
        body: String,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method("POST")
            .uri(path)
            .header("content-type", "application/json");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(p) = proof {
            req = req.header("keyward-pop", p);
        }
        let resp = app(self.state.clone())
            .oneshot(req.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// The audit records of `operation`, in order.
    fn audit(&self, operation: &str) -> Vec<Value> {
        std::fs::read_to_string(&self.audit_path)
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|r| r["operation"] == operation)
            .collect()
    }

    /// The last audit reason of `operation`.
    fn last_reason(&self, operation: &str) -> String {
        self.audit(operation)
            .last()
            .and_then(|r| r["reason"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

struct Workload {
    key: Ed25519KeyPair,
    public: [u8; 32],
}

impl Workload {
    /// A fresh instance key that no launch record names.
    fn unlaunched() -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let public = key.public_key().as_ref().try_into().unwrap();
        Self { key, public }
    }
}

fn assert_denied(status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let text = body["errors"][0].as_str().unwrap();
    assert!(text.starts_with("permission denied (request id "), "{text}");
}

fn policy_for(fx: &Fixture) -> String {
    format!(
        r#"permit (principal is Keyward::Workload, action, resource is Keyward::Secret)
        when {{ resource.path like "kv/app/*" && principal.model_signer == "key:model-release"
               && principal.image_digest == "{}" }};"#,
        fx.image_digest
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attested_workload_gets_kv_secret_and_replays_fail() {
    let fx = Fixture::start().await;
    fx.put_policy("app", &policy_for(&fx)).await;
    let (status, body) = fx
        .admin(
            "PUT",
            "/v1/kv/app/db",
            Some(&json!({"data": {"password": "hunter2"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let mut cel = Vec::new();
    let workload = fx.launch(&mut cel, "agent-1", &fx.model_digest);
    let evidence = fx.evidence(&workload, &cel).await;
    let (status, session) = fx.attest(&evidence).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let token = session["token"].as_str().unwrap().to_owned();
    assert_eq!(session["session"]["host_id"], fx.host_id.as_str());
    assert_eq!(session["session"]["image_digest"], fx.image_digest.as_str());
    assert_eq!(session["session"]["model_signer"], "key:model-release");
    assert_eq!(session["session"]["host_labels"], json!({"env": "prod"}));

    let (status, secret) = fx
        .session_call(&workload, &token, "/v1/secrets/kv/app/db", &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{secret}");
    assert_eq!(secret["data"], json!({"password": "hunter2"}));
    assert_eq!(secret["version"], 1);
    let released = fx.audit("secret.release");
    let last = released.last().unwrap();
    assert_eq!(last["outcome"], "success");
    assert!(!last.to_string().contains("hunter2"), "{last}");

    // Row 1: the same evidence again (nonce used).
    let (status, body) = fx.attest(&evidence).await;
    assert_denied(status, &body);
    assert_eq!(
        fx.last_reason("attest"),
        "denied at nonce: nonce already used"
    );

    // Row 16: the token without a proof, with another key's proof, or a
    // replayed proof.
    let (status, body) = fx
        .raw("/v1/secrets/kv/app/db", Some(&token), None, "{}".into())
        .await;
    assert_denied(status, &body);
    assert_eq!(
        fx.last_reason("secret.release"),
        "denied at session: no proof of possession"
    );
    let thief = Workload::unlaunched();
    let (status, body) = fx
        .session_call(&thief, &token, "/v1/secrets/kv/app/db", &json!({}))
        .await;
    assert_denied(status, &body);
    assert_eq!(
        fx.last_reason("secret.release"),
        "denied at session: proof signature does not verify with the session's instance key"
    );

    // Row 18: outside Cedar policy.
    let (status, body) = fx
        .admin(
            "PUT",
            "/v1/kv/other/db",
            Some(&json!({"data": {"password": "x"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = fx
        .session_call(&workload, &token, "/v1/secrets/kv/other/db", &json!({}))
        .await;
    assert_denied(status, &body);
    assert!(
        fx.last_reason("secret.release")
            .starts_with("denied at policy: "),
        "{}",
        fx.last_reason("secret.release")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_denials_name_their_stage() {
    let fx = Fixture::start().await;
    let mut cel = Vec::new();
    let workload = fx.launch(&mut cel, "agent-1", &fx.model_digest);

    // Row 12: a key with no launch record of its own, against this log.
    let other = Workload::unlaunched();
    let evidence = fx.evidence(&other, &cel).await;
    let (status, body) = fx.attest(&evidence).await;
    assert_denied(status, &body);
    assert!(
        fx.last_reason("attest")
            .starts_with("denied at workload_log: "),
        "{}",
        fx.last_reason("attest")
    );

    // Row 11: a forged CEL (a record appended without extending the PCR).
    let mut forged = cel.clone();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let forged_key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let forged_public: [u8; 32] = forged_key.public_key().as_ref().try_into().unwrap();
    let record = LaunchRecord::new(
        "agent-forged",
        &fx.image_ref,
        &fx.image_digest,
        "demo-model",
        &fx.model_digest,
        instance_key_sha256(&forged_public),
    )
    .unwrap();
    append(&mut forged, WORKLOAD_PCR, &record).unwrap();
    let forged_workload = Workload {
        key: forged_key,
        public: forged_public,
    };
    let evidence = fx.evidence(&forged_workload, &forged).await;
    let (status, body) = fx.attest(&evidence).await;
    assert_denied(status, &body);
    assert!(
        fx.last_reason("attest")
            .starts_with("denied at workload_log: "),
        "{}",
        fx.last_reason("attest")
    );

    // Row 8: a PCR value changed after quoting.
    let mut evidence = fx.evidence(&workload, &cel).await;
    evidence["pcrs"]["sha256"]["0"] = json!("11".repeat(32));
    let (status, body) = fx.attest(&evidence).await;
    assert_denied(status, &body);
    assert!(
        fx.last_reason("attest").starts_with("denied at quote: "),
        "{}",
        fx.last_reason("attest")
    );

    // Row 2: an expired nonce (TTL 0 ms).
    let mut settings = fx.state.release.settings();
    settings.nonce_ttl_ms = 0;
    fx.state.release.configure(settings);
    let evidence = fx.evidence(&workload, &cel).await;
    settings.nonce_ttl_ms = 60_000;
    fx.state.release.configure(settings);
    // The nonce expired the millisecond after it was issued; quoting took longer.
    let (status, body) = fx.attest(&evidence).await;
    assert_denied(status, &body);
    assert!(
        fx.last_reason("attest")
            .starts_with("denied at nonce: nonce expired at "),
        "{}",
        fx.last_reason("attest")
    );

    // Row 13: an unregistered model digest in the launch record.
    let mut cel2 = cel.clone();
    let unknown = format!("sha256:{}", "ab".repeat(32));
    let w2 = fx.launch(&mut cel2, "agent-2", &unknown);
    let evidence = fx.evidence(&w2, &cel2).await;
    let (status, body) = fx.attest(&evidence).await;
    assert_denied(status, &body);
    assert_eq!(
        fx.last_reason("attest"),
        format!("denied at artifact: model {unknown} is not registered")
    );

    // The honest workload still attests (its launch record is in cel2 too).
    let evidence = fx.evidence(&workload, &cel2).await;
    let (status, body) = fx.attest(&evidence).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Row 3: a revoked host.
    let (status, body) = fx
        .admin("POST", &format!("/v1/hosts/{}/revoke", fx.host_id), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let evidence = fx.evidence(&workload, &cel2).await;
    let (status, body) = fx.attest(&evidence).await;
    assert_denied(status, &body);
    assert_eq!(
        fx.last_reason("attest"),
        format!("denied at host: host {} is revoked", fx.host_id)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_the_model_kills_session_and_identity_lease() {
    let fx = Fixture::start().await;
    fx.put_policy("app", &policy_for(&fx)).await;
    let (status, body) = fx
        .admin(
            "PUT",
            "/v1/kv/app/db",
            Some(&json!({"data": {"password": "hunter2"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut cel = Vec::new();
    let workload = fx.launch(&mut cel, "agent-1", &fx.model_digest);
    let evidence = fx.evidence(&workload, &cel).await;
    let (status, session) = fx.attest(&evidence).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let token = session["token"].as_str().unwrap().to_owned();

    // Row 14: revoke the model; the session's next use is denied.
    let (status, body) = fx
        .admin(
            "POST",
            &format!("/v1/artifacts/{}/revoke", fx.model_digest),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = fx
        .session_call(&workload, &token, "/v1/secrets/kv/app/db", &json!({}))
        .await;
    assert_denied(status, &body);
    let reason = fx.last_reason("secret.release");
    assert!(
        reason == "denied at session: unknown session token"
            || reason == format!("denied at artifact: model {} is revoked", fx.model_digest),
        "{reason}"
    );
    // And a fresh attestation of the same workload is denied at the artifact.
    let evidence = fx.evidence(&workload, &cel).await;
    let (status, body) = fx.attest(&evidence).await;
    assert_denied(status, &body);
    assert_eq!(
        fx.last_reason("attest"),
        format!("denied at artifact: model {} is revoked", fx.model_digest)
    );
}

/// Verifies an ES256 JWT against a JWKS, independently of the vault's
/// signer (ring, from the JWK's coordinates); returns the claims.
fn verify_jwt(jwks: &Value, token: &str) -> Option<Value> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts = token.split('.');
    let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
    let jwk = jwks["keys"]
        .as_array()?
        .iter()
        .find(|k| k["kid"] == header["kid"])?;
    let mut point = vec![4u8];
    point.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str()?).ok()?);
    point.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str()?).ok()?);
    let signature = URL_SAFE_NO_PAD.decode(s).ok()?;
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &point)
        .verify(format!("{h}.{c}").as_bytes(), &signature)
        .ok()?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).ok()?).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_and_identity_leases_follow_attestation() {
    use keyward_tests::postgres::Postgres;
    use keyward_vault::secrets::identity::IdentitySettings;

    let fx = Fixture::start().await;
    let pg = Postgres::start().unwrap();
    pg.admin_psql("CREATE TABLE orders (id int); INSERT INTO orders VALUES (42);")
        .unwrap();
    fx.state.engines.configure_identity(Some(IdentitySettings {
        issuer: "http://127.0.0.1:8200/v1/identity".into(),
        trust_domain: "keyward.test".into(),
        default_ttl_secs: 300,
        max_ttl_secs: 3600,
        rotation_period_secs: 86_400,
    }));
    let (status, body) = fx
        .admin(
            "PUT",
            "/v1/engines/database/postgres/readonly",
            Some(&json!({
                "connection_url": pg.admin_url(),
                "creation_statements": [
                    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
                    "GRANT SELECT ON orders TO \"{{name}}\";"
                ],
                "default_ttl": 120,
                "max_ttl": 600,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        !std::fs::read_to_string(&fx.audit_path)
            .unwrap()
            .contains(pg.admin_password()),
        "the admin DSN's password reached the audit log"
    );
    fx.put_policy(
        "db",
        &format!(
            r#"permit (principal is Keyward::Workload, action, resource is Keyward::Secret)
            when {{ (resource.path == "database/postgres/readonly" || resource.path == "identity/token")
                    && principal.image_digest == "{}"
                    && principal.hasTag("env") && principal.getTag("env") == "prod" }};"#,
            fx.image_digest
        ),
    )
    .await;

    let mut cel = Vec::new();
    let workload = fx.launch(&mut cel, "agent-1", &fx.model_digest);
    let evidence = fx.evidence(&workload, &cel).await;
    let (status, session) = fx.attest(&evidence).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let token = session["token"].as_str().unwrap().to_owned();

    // A PostgreSQL role, usable at once.
    let (status, db) = fx
        .session_call(
            &workload,
            &token,
            "/v1/secrets/database/postgres/readonly",
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{db}");
    let username = db["username"].as_str().unwrap().to_owned();
    let password = db["password"].as_str().unwrap().to_owned();
    let out = pg
        .psql(&username, &password, "SELECT id FROM orders;")
        .unwrap();
    assert!(out.contains("42"), "{out}");
    let lease_id = db["lease_id"].as_str().unwrap().to_owned();
    assert!(
        lease_id.starts_with("database/postgres/readonly/"),
        "{lease_id}"
    );
    let audit = fx.audit("secret.release");
    let last = audit.last().unwrap();
    assert!(!last.to_string().contains(&password), "{last}");

    // Renewal with the session's proof.
    let (status, renewed) = fx
        .session_call(
            &workload,
            &token,
            "/v1/sys/leases/renew",
            &json!({ "lease_id": lease_id, "increment": 200 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renewed}");

    // A workload identity token that verifies against the served JWKS.
    let (status, id) = fx
        .session_call(
            &workload,
            &token,
            "/v1/secrets/identity/token",
            &json!({ "audience": "sts.example.com" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{id}");
    let (status, jwks) = call(
        &fx.state,
        "GET",
        "/v1/identity/.well-known/jwks.json",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{jwks}");
    let claims = verify_jwt(&jwks, id["token"].as_str().unwrap()).expect("token verifies");
    assert_eq!(claims["aud"], "sts.example.com");
    assert_eq!(claims["keyward"]["host_id"], fx.host_id.as_str());
    assert_eq!(claims["keyward"]["model_digest"], fx.model_digest.as_str());
    let (status, discovery) = call(
        &fx.state,
        "GET",
        "/v1/identity/.well-known/openid-configuration",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(discovery["issuer"], "http://127.0.0.1:8200/v1/identity");

    // Row 17: revoke the host; the role is dropped, the token listed as
    // revoked, and renewal is denied.
    let (status, body) = fx
        .admin("POST", &format!("/v1/hosts/{}/revoke", fx.host_id), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let refused = pg
        .psql(&username, &password, "SELECT 1;")
        .expect_err("login after revocation");
    assert!(
        refused
            .to_string()
            .contains("password authentication failed"),
        "{refused}"
    );
    let (status, revoked) = call(&fx.state, "GET", "/v1/identity/revoked", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(revoked["revoked"][0]["jti"], claims["jti"]);
    let (status, body) = fx
        .session_call(
            &workload,
            &token,
            "/v1/sys/leases/renew",
            &json!({ "lease_id": lease_id }),
        )
        .await;
    assert_denied(status, &body);
    let reason = fx.last_reason("lease.renew");
    assert!(
        reason.starts_with("denied at host: ")
            || reason == "denied at session: unknown session token",
        "{reason}"
    );
    let basis = fx.audit("lease.revoke-basis");
    let last = basis.last().unwrap();
    assert_eq!(last["reason"], "host revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boot_log_and_boot_rules_are_enforced() {
    use keyward_tests::firmware::{self, BootImage, Measurement, QUOTE_PCRS, Tamper};

    let fx = Fixture::start().await;
    let image = BootImage::example();
    let tpm = fx.sim.open().unwrap();
    let log = firmware::measure(&image, &mut |p, d| tpm.extend_pcr_sha256(p, d)).unwrap();
    drop(tpm);
    let set_policy =
        |image: &BootImage| json!({ "boot_policy": firmware::boot_policy_json(image) });
    let path = format!("/v1/hosts/{}/boot-policy", fx.host_id);
    let (status, body) = fx.admin("PUT", &path, Some(&set_policy(&image))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut cel = Vec::new();
    let workload = fx.launch(&mut cel, "agent-1", &fx.model_digest);

    // The honest boot log satisfies the rules.
    let evidence = fx
        .evidence_with(&workload, &cel, &QUOTE_PCRS, Some(&log))
        .await;
    let (status, body) = fx.attest(&evidence).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Row 9: the log edited (the kernel's event removed): does not replay.
    let output = firmware::boot(&image);
    let kernel = output.first(Measurement::Kernel).unwrap().index;
    let edited = output.tampered(Tamper::Remove(kernel)).unwrap();
    let evidence = fx
        .evidence_with(&workload, &cel, &QUOTE_PCRS, Some(&edited))
        .await;
    let (status, body) = fx.attest(&evidence).await;
    assert_denied(status, &body);
    let reason = fx.last_reason("attest");
    assert!(
        reason.starts_with("denied at boot_policy: boot log: "),
        "{reason}"
    );

    // Row 10: the policy wants another kernel: boot state outside policy.
    let mut other = image.clone();
    other.kernel = b"another kernel".to_vec();
    let (status, body) = fx.admin("PUT", &path, Some(&set_policy(&other))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let evidence = fx
        .evidence_with(&workload, &cel, &QUOTE_PCRS, Some(&log))
        .await;
    let (status, body) = fx.attest(&evidence).await;
    assert_denied(status, &body);
    let reason = fx.last_reason("attest");
    assert!(
        reason.starts_with("denied at boot_policy: boot state outside policy: "),
        "{reason}"
    );
    // A rules policy without a boot log is refused too.
    let evidence = fx.evidence_with(&workload, &cel, &QUOTE_PCRS, None).await;
    let (status, body) = fx.attest(&evidence).await;
    assert_denied(status, &body);
    let reason = fx.last_reason("attest");
    assert!(
        reason.starts_with("denied at boot_policy: boot state outside policy: "),
        "{reason}"
    );
}
