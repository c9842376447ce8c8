//! The release-path fixture shared by the end-to-end tests: a vault driven
//! through its router (`oneshot`), a real registry with a signed image, a
//! model version signed by the real `model_signing` (committed vector), an
//! enrolled and approved swtpm host, and workloads launched the way
//! `keyward launch` does it.
#![allow(dead_code, unreachable_pub)]

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

pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const MODEL_PREDICATE: &str = "https://model_signing/signature/v1.0";
pub const WORKLOAD_PCR: u8 = 23;
pub const BOOT_PCRS: [u8; 8] = [0, 1, 2, 3, 4, 5, 6, 7];

pub fn model_vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../attest/testdata/model-signing")
}

/// The model version the committed key-mode signature covers.
pub fn model_version() -> String {
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
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub registry: Registry,
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

pub async fn call(
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
    pub async fn start() -> Self {
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
            dir,
            registry,
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

    pub async fn admin(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        call(&self.state, method, path, Some(&self.root), body).await
    }

    pub async fn put_policy(&self, name: &str, text: &str) {
        let (status, body) = self
            .admin(
                "PUT",
                &format!("/v1/policies/release/{name}"),
                Some(&json!({ "policy": text })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// Writes the kv secret `path` (under `kv/`) with `data` as admin.
    pub async fn put_kv(&self, path: &str, data: Value) {
        let (status, body) = self
            .admin(
                "PUT",
                &format!("/v1/kv/{path}"),
                Some(&json!({ "data": data })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// Launches a workload as `keyward launch` does; returns it.
    pub fn launch(&self, cel: &mut Vec<u8>, instance: &str, model_digest: &str) -> Workload {
        let image = self.image_digest.clone();
        self.launch_image(cel, instance, &image, model_digest)
    }

    /// Launches a workload of image `image_digest`.
    pub fn launch_image(
        &self,
        cel: &mut Vec<u8>,
        instance: &str,
        image_digest: &str,
        model_digest: &str,
    ) -> Workload {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let public: [u8; 32] = key.public_key().as_ref().try_into().unwrap();
        let record = LaunchRecord::new(
            instance,
            &self.image_ref,
            image_digest,
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
    pub async fn evidence(&self, workload: &Workload, cel: &[u8]) -> Value {
        let mut indices = BOOT_PCRS.to_vec();
        indices.push(WORKLOAD_PCR);
        self.evidence_with(workload, cel, &indices, None).await
    }

    /// Evidence quoting `indices`, with a boot log.
    pub async fn evidence_with(
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

    pub async fn attest(&self, evidence: &Value) -> (StatusCode, Value) {
        call(&self.state, "POST", "/v1/attest", None, Some(evidence)).await
    }

    /// A session request with a proof of possession.
    pub async fn session_call(
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

    pub async fn raw(
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
    pub fn audit(&self, operation: &str) -> Vec<Value> {
        std::fs::read_to_string(&self.audit_path)
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|r| r["operation"] == operation)
            .collect()
    }

    /// The last audit reason of `operation`.
    pub fn last_reason(&self, operation: &str) -> String {
        self.audit(operation)
            .last()
            .and_then(|r| r["reason"].as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

pub struct Workload {
    pub key: Ed25519KeyPair,
    pub public: [u8; 32],
}

impl Workload {
    /// A fresh instance key that no launch record names.
    pub fn unlaunched() -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let public = key.public_key().as_ref().try_into().unwrap();
        Self { key, public }
    }
}

pub fn assert_denied(status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let text = body["errors"][0].as_str().unwrap();
    assert!(text.starts_with("permission denied (request id "), "{text}");
}

impl Fixture {
    /// Restarts the vault in process with `audit` as its audit sink: a new
    /// `AppState` over the same store and the same (unsealed) seal, the
    /// audit key loaded from the barrier as unseal does, and the enrollment
    /// and artifact settings of [`Fixture::start`]. Everything else the old
    /// state held in memory (cached sessions, nonce key, engine caches,
    /// identity settings) is rebuilt from storage or must be configured
    /// again, as after a process restart; the old state is dropped.
    pub async fn restart_with_audit(&mut self, audit: AuditLog) {
        let key = keyward_vault::audit::AuditKey::load_or_create(
            &self.state.storage,
            self.state.seal.barrier(),
        )
        .await
        .unwrap();
        audit.set_key(key);
        let state = AppState::new(
            Arc::clone(&self.state.storage),
            Arc::clone(&self.state.seal),
            Arc::new(audit),
            self.state.limits.clone(),
        );
        state.enrollment.configure(
            EnrollmentSettings::load(&EnrollmentConfig {
                ek_roots: vec![self.sim.ca().root_cert_path()],
                ek_intermediates: vec![self.sim.ca().intermediate_cert_path()],
                ..EnrollmentConfig::default()
            })
            .unwrap(),
        );
        assert!(state.artifacts.configure(ArtifactsConfig {
            trusted_root: None,
            registry: RegistrySettings {
                insecure_hosts: vec![self.registry.addr()],
                ..RegistrySettings::default()
            },
        }));
        self.state = state;
    }
}

/// Serves `state`'s vault on a fresh loopback port (a real socket, for
/// clients that speak HTTP); returns its base URL. The server task ends
/// with the test's runtime.
pub async fn serve(state: &AppState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app(state.clone());
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    format!("http://{addr}")
}

impl Fixture {
    /// Launches a workload as [`Fixture::launch`] does, but hands back the
    /// instance key as PKCS#8 (what `keyward launch` gives the workload),
    /// for clients that load their own key.
    pub fn launch_pkcs8(&self, cel: &mut Vec<u8>, instance: &str) -> Vec<u8> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let public: [u8; 32] = key.public_key().as_ref().try_into().unwrap();
        let record = LaunchRecord::new(
            instance,
            &self.image_ref,
            &self.image_digest,
            "demo-model",
            &self.model_digest,
            instance_key_sha256(&public),
        )
        .unwrap();
        let digest = append(cel, WORKLOAD_PCR, &record).unwrap();
        let tpm = self.sim.open().unwrap();
        tpm.extend_pcr_sha256(WORKLOAD_PCR, digest).unwrap();
        pkcs8.as_ref().to_vec()
    }
}

/// Verifies an ES256 JWT against a JWKS, independently of the vault's
/// signer (ring, from the JWK's coordinates); returns the claims.
pub fn verify_jwt(jwks: &Value, token: &str) -> Option<Value> {
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
