//! Host enrollment on swtpm (`SimHost`) through the HTTP API (oneshot):
//! the good path, auto-approval, and the design brief §6 rows 4–6, each
//! asserting the uniform denial and the exact audit reason.
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
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyward_attest::tpm::public::TpmPublic;
use keyward_hardware::harness::SimHost;
use keyward_hardware::{AkAlgorithm, AkBlob, EkKind, Tpm};
use keyward_vault::api::{AppState, app};
use keyward_vault::audit::AuditLog;
use keyward_vault::barrier::BarrierLimits;
use keyward_vault::config::{EnrollmentConfig, HumanDuration, Limits};
use keyward_vault::hosts::{EnrollmentSettings, judge};
use keyward_vault::seal::Seal;
use keyward_vault::storage::{KeyRange, Keyspace, SledConfig, SledStorage, Storage};
use serde_json::{Value, json};
use tower::ServiceExt;

/// The GCE EK root: a real manufacturer root that did not issue swtpm's EKs.
fn gce_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/testdata/tpm/gce-certs/tpm_ek_root_1.cer")
}

/// `[enrollment]` trusting the harness CA.
fn harness_config(sim: &SimHost) -> EnrollmentConfig {
    EnrollmentConfig {
        ek_roots: vec![sim.ca().root_cert_path()],
        ek_intermediates: vec![sim.ca().intermediate_cert_path()],
        ..EnrollmentConfig::default()
    }
}

struct Vault {
    dir: tempfile::TempDir,
    state: AppState,
    storage: Arc<dyn Storage>,
    shares: Vec<String>,
    root: String,
    platform: String,
}

async fn open_state(dir: &Path, config: &EnrollmentConfig) -> (AppState, Arc<dyn Storage>) {
    let storage: Arc<dyn Storage> =
        Arc::new(SledStorage::open(&SledConfig::new(dir.join("data"))).unwrap());
    let seal = Arc::new(
        Seal::open(Arc::clone(&storage), BarrierLimits::default())
            .await
            .unwrap(),
    );
    let audit = AuditLog::open(&dir.join("audit.log"), Duration::from_secs(2)).unwrap();
    let state = AppState::new(
        Arc::clone(&storage),
        seal,
        Arc::new(audit),
        Limits::default(),
    );
    state
        .enrollment
        .configure(EnrollmentSettings::load(config).unwrap());
    (state, storage)
}

async fn call(
    state: &AppState,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header("x-keyward-token", t);
    }
    let body = match body {
        Some(v) => {
            req = req.header("content-type", "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    let resp = app(state.clone())
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, value)
}

impl Vault {
    /// An initialised, unsealed vault with a platform token.
    async fn start(config: &EnrollmentConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (state, storage) = open_state(dir.path(), config).await;
        let (status, body) = call(
            &state,
            "POST",
            "/v1/sys/init",
            None,
            Some(json!({"secret_shares": 1, "secret_threshold": 1})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let shares = vec![body["keys"][0].as_str().unwrap().to_owned()];
        let root = body["root_token"].as_str().unwrap().to_owned();
        let (status, body) = call(
            &state,
            "POST",
            "/v1/auth/token/create",
            Some(&root),
            Some(json!({"roles": ["platform"], "ttl": "1h"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let platform = body["token"].as_str().unwrap().to_owned();
        Self {
            dir,
            state,
            storage,
            shares,
            root,
            platform,
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        call(&self.state, method, path, Some(&self.platform), body).await
    }

    async fn token(&self, role: &str) -> String {
        let (status, body) = call(
            &self.state,
            "POST",
            "/v1/auth/token/create",
            Some(&self.root),
            Some(json!({"roles": [role], "ttl": "1h"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }

    fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("audit.log"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The reason of the last audit record.
    fn last_reason(&self) -> String {
        let records = self.audit();
        let last = records.last().unwrap();
        assert_eq!(last["outcome"], "denied", "{last}");
        assert_eq!(last["status"], 403);
        last["reason"].as_str().unwrap().to_owned()
    }

    async fn count(&self, keyspace: Keyspace) -> usize {
        self.storage
            .scan(keyspace, KeyRange::All, 1000)
            .await
            .unwrap()
            .len()
    }

    /// Drops the state and reopens the same directory, unsealed.
    async fn restart(self, config: &EnrollmentConfig) -> Self {
        let Self {
            dir,
            state,
            storage,
            shares,
            root,
            platform,
        } = self;
        drop(state);
        drop(storage);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (state, storage) = open_state(dir.path(), config).await;
        for share in &shares {
            let (status, body) = call(
                &state,
                "POST",
                "/v1/sys/unseal",
                None,
                Some(json!({ "key": share })),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        Self {
            dir,
            state,
            storage,
            shares,
            root,
            platform,
        }
    }
}

/// The host side: a TPM with its EK (RSA) and a fresh AK.
struct Host {
    sim: SimHost,
    tpm: Tpm,
    ak: AkBlob,
    ek_public: Vec<u8>,
    ek_cert: Vec<u8>,
    ak_public: Vec<u8>,
}

impl Host {
    fn start() -> Self {
        Self::start_with(EkKind::Rsa2048)
    }

    fn start_with(kind: EkKind) -> Self {
        let sim = SimHost::start().unwrap();
        let tpm = sim.open().unwrap();
        let ek = tpm.ek_public(kind).unwrap();
        let ek_cert = tpm.ek_certificate(kind).unwrap();
        let ak = tpm.create_ak(kind, AkAlgorithm::RsaSsaSha256).unwrap();
        let ak_public = ak.public().unwrap().tpm2b_public;
        Self {
            sim,
            tpm,
            ak,
            ek_public: ek.tpm2b_public,
            ek_cert,
            ak_public,
        }
    }

    fn request(&self) -> Value {
        json!({
            "ek_public": STANDARD.encode(&self.ek_public),
            "ek_certificate": STANDARD.encode(&self.ek_cert),
            "ak_public": STANDARD.encode(&self.ak_public),
            "labels": {"rack": "r1"},
            "name": "node-1",
        })
    }

    /// TPM2_ActivateCredential on the challenge; the secret, base64.
    fn activate(&self, challenge: &Value) -> String {
        let blob = STANDARD
            .decode(challenge["credential_blob"].as_str().unwrap())
            .unwrap();
        let secret = STANDARD
            .decode(challenge["encrypted_secret"].as_str().unwrap())
            .unwrap();
        let recovered = self
            .tpm
            .activate_credential(&self.ak, &blob, &secret)
            .unwrap();
        STANDARD.encode(recovered.as_slice())
    }

    /// The EK certificate's issuer and trust anchor, as the vault names them.
    fn issuer_and_anchor(&self) -> (String, String) {
        let settings = EnrollmentSettings::load(&harness_config(&self.sim)).unwrap();
        let judged = judge(
            &settings,
            &TpmPublic::parse(&self.ek_public).unwrap(),
            Some(&self.ek_cert),
            &[],
            &TpmPublic::parse(&self.ak_public).unwrap(),
            4_000_000_000,
        )
        .unwrap();
        let facts = judged.facts.unwrap();
        (facts.issuer, facts.trust_anchor)
    }
}

/// The AK's TPM2B_PUBLIC with `clear` bits of objectAttributes cleared
/// (TPM 2.0 Part 2 §12.2.4: TPMT_PUBLIC = type, nameAlg, objectAttributes;
/// the TPM2B adds a 2-byte size in front, so the attributes are bytes 6–9).
fn with_attributes_cleared(tpm2b: &[u8], clear: u32) -> Vec<u8> {
    let mut out = tpm2b.to_vec();
    let bits = u32::from_be_bytes(out[6..10].try_into().unwrap());
    out[6..10].copy_from_slice(&(bits & !clear).to_be_bytes());
    out
}

const RESTRICTED: u32 = 1 << 16;
const FIXED_TPM: u32 = 1 << 1;
const SENSITIVE_DATA_ORIGIN: u32 = 1 << 5;

fn error_text(body: &Value) -> String {
    body["errors"][0].as_str().unwrap().to_owned()
}

async fn enroll(vault: &Vault, body: Value) -> Value {
    let (status, challenge) = vault.call("POST", "/v1/hosts/enroll", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{challenge}");
    challenge
}

async fn activate(vault: &Vault, id: &str, secret: &str) -> (StatusCode, Value) {
    vault
        .call(
            "POST",
            &format!("/v1/hosts/enroll/{id}/activate"),
            Some(json!({ "secret": secret })),
        )
        .await
}

fn assert_denied(status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        error_text(body).starts_with("permission denied (request id "),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enroll_approve_label_policy_revoke() {
    let host = Host::start();
    let config = harness_config(&host.sim);
    let vault = Vault::start(&config).await;

    // Wrong roles and malformed input are refused before anything is written.
    let release = vault.token("release").await;
    let (status, _) = call(
        &vault.state,
        "POST",
        "/v1/hosts/enroll",
        Some(&release),
        Some(host.request()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let mut bad = host.request();
    bad["ek_public"] = json!("not base64!");
    let (status, body) = vault.call("POST", "/v1/hosts/enroll", Some(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error_text(&body).starts_with("ek_public: invalid base64"),
        "{body}"
    );
    let mut bad = host.request();
    bad["ak_public"] = json!(STANDARD.encode([0u8, 4, 1, 2, 3, 4]));
    let (status, body) = vault.call("POST", "/v1/hosts/enroll", Some(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error_text(&body).starts_with("ak_public: not a TPM2B_PUBLIC"),
        "{body}"
    );
    let mut bad = host.request();
    bad["labels"] = json!({"bad key": "x"});
    let (status, body) = vault.call("POST", "/v1/hosts/enroll", Some(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_text(&body).starts_with("labels: "), "{body}");
    let mut bad = host.request();
    bad["extra"] = json!(1);
    let (status, body) = vault.call("POST", "/v1/hosts/enroll", Some(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_text(&body).contains("extra"), "{body}");
    assert_eq!(vault.count(Keyspace::Enrollments).await, 0);

    let challenge = enroll(&vault, host.request()).await;
    let id = challenge["enrollment_id"].as_str().unwrap();
    let secret = host.activate(&challenge);
    let (status, record) = activate(&vault, id, &secret).await;
    assert_eq!(status, StatusCode::OK, "{record}");
    assert_eq!(record["state"], "pending");
    assert_eq!(record["name"], "node-1");
    assert_eq!(record["labels"], json!({"rack": "r1"}));
    let (issuer, _) = host.issuer_and_anchor();
    assert_eq!(record["ek_certificate"]["issuer"], issuer.as_str());
    assert_eq!(record["ak_public"], STANDARD.encode(&host.ak_public));
    let ak_name = hex::encode(host.ak.public().unwrap().name);
    assert_eq!(record["ak_name"], ak_name.as_str());
    let host_id = record["id"].as_str().unwrap().to_owned();

    let auditor = vault.token("auditor").await;
    let (status, list) = call(&vault.state, "GET", "/v1/hosts", Some(&auditor), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["hosts"].as_array().unwrap().len(), 1);
    let (status, _) = call(
        &vault.state,
        "POST",
        &format!("/v1/hosts/{host_id}/approve"),
        Some(&auditor),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = vault.call("GET", "/v1/hosts/00", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Every host path checks the role.
    for (method, path, token) in [
        ("POST", format!("/v1/hosts/{host_id}/revoke"), &auditor),
        ("PUT", format!("/v1/hosts/{host_id}/labels"), &auditor),
        ("PUT", format!("/v1/hosts/{host_id}/boot-policy"), &auditor),
        (
            "POST",
            format!("/v1/hosts/enroll/{}/activate", "ab".repeat(16)),
            &auditor,
        ),
        ("GET", "/v1/hosts".to_owned(), &release),
        ("GET", format!("/v1/hosts/{host_id}"), &release),
    ] {
        let (status, body) = call(
            &vault.state,
            method,
            &path,
            Some(token),
            Some(json!({"labels": {}})),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        let last = vault.audit().last().cloned().unwrap();
        assert_eq!(last["outcome"], "denied");
        assert!(last["reason"].as_str().unwrap().starts_with("forbidden: "));
    }
    let (status, _) = call(&vault.state, "GET", "/v1/hosts", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, record) = vault
        .call("POST", &format!("/v1/hosts/{host_id}/approve"), None)
        .await;
    assert_eq!(
        (status, record["state"].clone()),
        (StatusCode::OK, json!("active"))
    );
    let (status, _) = vault
        .call("POST", &format!("/v1/hosts/{host_id}/approve"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (status, record) = vault
        .call(
            "PUT",
            &format!("/v1/hosts/{host_id}/labels"),
            Some(json!({"labels": {"rack": "r2", "zone": "a"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{record}");
    assert_eq!(record["labels"], json!({"rack": "r2", "zone": "a"}));
    let policy = json!({"golden_pcrs": {"sha256": {"7": "00".repeat(32)}}});
    let (status, record) = vault
        .call(
            "PUT",
            &format!("/v1/hosts/{host_id}/boot-policy"),
            Some(json!({ "boot_policy": policy })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{record}");
    assert_eq!(record["boot_policy"], policy);
    let (status, body) = vault
        .call(
            "PUT",
            &format!("/v1/hosts/{host_id}/boot-policy"),
            Some(json!({"boot_policy": {"golden_pcrs": {"sha256": {"7": "00"}}}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(error_text(&body).starts_with("boot_policy"), "{body}");
    let (_, record) = vault
        .call("GET", &format!("/v1/hosts/{host_id}"), None)
        .await;
    assert_eq!(record["boot_policy"], policy);

    // Revocation is immediate, and a revoked host cannot be approved again.
    let (status, record) = vault
        .call("POST", &format!("/v1/hosts/{host_id}/revoke"), None)
        .await;
    assert_eq!(
        (status, record["state"].clone()),
        (StatusCode::OK, json!("revoked"))
    );
    let (status, body) = vault
        .call("POST", &format!("/v1/hosts/{host_id}/approve"), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_text(&body), "host is revoked");
    let last = vault.audit().last().cloned().unwrap();
    assert_eq!(last["reason"], "host is revoked");
    let (_, record) = vault
        .call("GET", &format!("/v1/hosts/{host_id}"), None)
        .await;
    assert_eq!(record["state"], "revoked");

    // The same TPM cannot enroll a second host.
    let challenge = enroll(&vault, host.request()).await;
    let id = challenge["enrollment_id"].as_str().unwrap();
    let (status, body) = activate(&vault, id, &host.activate(&challenge)).await;
    assert_denied(status, &body);
    let ek_hash = record["ek_hash"].as_str().unwrap();
    assert_eq!(
        vault.last_reason(),
        format!("enrollment denied: EK {ek_hash} is already enrolled as host {host_id}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_approve_by_ek_issuer() {
    let host = Host::start();
    let (issuer, _) = host.issuer_and_anchor();
    let mut config = harness_config(&host.sim);
    config.auto_approve.ek_issuers = vec![issuer.clone()];
    let vault = Vault::start(&config).await;
    let challenge = enroll(&vault, host.request()).await;
    let id = challenge["enrollment_id"].as_str().unwrap();
    let (status, record) = activate(&vault, id, &host.activate(&challenge)).await;
    assert_eq!(status, StatusCode::OK, "{record}");
    assert_eq!(record["state"], "active");
    assert_eq!(record["auto_approved_by"], format!("ek_issuer {issuer}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row4_ek_certificate_from_untrusted_ca() {
    let host = Host::start();
    let (_, anchor) = host.issuer_and_anchor();
    let config = EnrollmentConfig {
        ek_roots: vec![gce_root()],
        ..EnrollmentConfig::default()
    };
    let vault = Vault::start(&config).await;
    let mut request = host.request();
    let intermediate = std::fs::read_to_string(host.sim.ca().intermediate_cert_path()).unwrap();
    let der = keyward_attest::ek::certificate_from_pem(&intermediate).unwrap();
    request["ek_intermediates"] = json!([STANDARD.encode(der)]);
    let (status, body) = vault.call("POST", "/v1/hosts/enroll", Some(request)).await;
    assert_denied(status, &body);
    assert_eq!(
        vault.last_reason(),
        format!(
            "enrollment denied: EK certificate rejected: chain ends at {anchor:?}, which is not a trust anchor"
        )
    );
    assert_eq!(vault.count(Keyspace::Enrollments).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row4_ek_certificate_of_another_ek() {
    let host = Host::start();
    let other = Host::start();
    let vault = Vault::start(&harness_config(&host.sim)).await;
    let mut request = host.request();
    request["ek_certificate"] = json!(STANDARD.encode(&other.ek_cert));
    let (status, body) = vault.call("POST", "/v1/hosts/enroll", Some(request)).await;
    assert_denied(status, &body);
    assert_eq!(
        vault.last_reason(),
        "enrollment denied: EK certificate rejected: EK certificate does not certify the presented EK public key"
    );
    // Without a certificate, an EK off the allowlist is refused too.
    let mut request = host.request();
    request["ek_certificate"] = Value::Null;
    let (status, body) = vault.call("POST", "/v1/hosts/enroll", Some(request)).await;
    assert_denied(status, &body);
    assert!(
        vault
            .last_reason()
            .starts_with("enrollment denied: no EK certificate and EK "),
    );
    assert_eq!(vault.count(Keyspace::Enrollments).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row5_activation_never_completed_expires() {
    let host = Host::start();
    let mut config = harness_config(&host.sim);
    config.ttl = HumanDuration(Duration::from_secs(1));
    let vault = Vault::start(&config).await;
    let challenge = enroll(&vault, host.request()).await;
    let id = challenge["enrollment_id"].as_str().unwrap();
    let expires_at = challenge["expires_at"].as_u64().unwrap();
    let secret = host.activate(&challenge);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, body) = activate(&vault, id, &secret).await;
    assert_denied(status, &body);
    assert_eq!(
        vault.last_reason(),
        format!("enrollment denied: enrollment {id} expired at {expires_at}")
    );
    let (_, list) = vault.call("GET", "/v1/hosts", None).await;
    assert_eq!(list["hosts"], json!([]));
    assert_eq!(vault.count(Keyspace::Enrollments).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row5_wrong_secret_and_replay() {
    let host = Host::start();
    let vault = Vault::start(&harness_config(&host.sim)).await;

    let challenge = enroll(&vault, host.request()).await;
    let id = challenge["enrollment_id"].as_str().unwrap();
    let (status, body) = activate(&vault, id, &STANDARD.encode([7u8; 32])).await;
    assert_denied(status, &body);
    assert_eq!(
        vault.last_reason(),
        format!("enrollment denied: wrong activation secret for enrollment {id}")
    );
    // One attempt per challenge: the right secret now finds nothing.
    let (status, body) = activate(&vault, id, &host.activate(&challenge)).await;
    assert_denied(status, &body);
    assert_eq!(
        vault.last_reason(),
        format!("enrollment denied: no pending enrollment {id}")
    );
    let (status, body) = activate(&vault, id, "%%%").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_text(&body).starts_with("secret: invalid base64"));

    let challenge = enroll(&vault, host.request()).await;
    let id = challenge["enrollment_id"].as_str().unwrap();
    let secret = host.activate(&challenge);
    let (status, record) = activate(&vault, id, &secret).await;
    assert_eq!(status, StatusCode::OK, "{record}");
    let host_id = record["id"].as_str().unwrap();
    let (status, body) = activate(&vault, id, &secret).await;
    assert_denied(status, &body);
    assert_eq!(
        vault.last_reason(),
        format!("enrollment denied: enrollment {id} was already activated (host {host_id})")
    );
    let (_, list) = vault.call("GET", "/v1/hosts", None).await;
    assert_eq!(list["hosts"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row6_ak_not_restricted_or_made_outside_the_tpm() {
    let host = Host::start();
    let vault = Vault::start(&harness_config(&host.sim)).await;

    let mut request = host.request();
    request["ak_public"] =
        json!(STANDARD.encode(with_attributes_cleared(&host.ak_public, RESTRICTED)));
    let (status, body) = vault.call("POST", "/v1/hosts/enroll", Some(request)).await;
    assert_denied(status, &body);
    assert_eq!(
        vault.last_reason(),
        "enrollment denied: AK rejected: attestation key lacks the Restricted attribute"
    );

    // A software key imported into the TPM (TPM2_Import/LoadExternal)
    // cannot carry fixedTPM or sensitiveDataOrigin (Part 1 §27.2).
    let mut request = host.request();
    request["ak_public"] = json!(STANDARD.encode(with_attributes_cleared(
        &host.ak_public,
        FIXED_TPM | SENSITIVE_DATA_ORIGIN
    )));
    let (status, body) = vault.call("POST", "/v1/hosts/enroll", Some(request)).await;
    assert_denied(status, &body);
    assert_eq!(
        vault.last_reason(),
        "enrollment denied: AK rejected: attestation key lacks the FixedTpm attribute"
    );
    assert_eq!(vault.count(Keyspace::Enrollments).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_enrollment_survives_restart() {
    let host = Host::start();
    let config = harness_config(&host.sim);
    let vault = Vault::start(&config).await;
    let challenge = enroll(&vault, host.request()).await;
    let id = challenge["enrollment_id"].as_str().unwrap().to_owned();
    let vault = vault.restart(&config).await;
    let (status, record) = activate(&vault, &id, &host.activate(&challenge)).await;
    assert_eq!(status, StatusCode::OK, "{record}");
    assert_eq!(record["state"], "pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowlisted_ek_without_certificate_auto_approved_by_hash() {
    let host = Host::start();
    let spki = host.tpm.ek_public(EkKind::Rsa2048).unwrap().spki_der;
    let hash = hex::encode(ring::digest::digest(&ring::digest::SHA256, &spki));
    let config = EnrollmentConfig {
        ek_allowlist: vec![hash.clone()],
        auto_approve: keyward_vault::config::AutoApproveConfig {
            ek_hashes: vec![hash.clone()],
            ..Default::default()
        },
        ..EnrollmentConfig::default()
    };
    let vault = Vault::start(&config).await;
    let mut request = host.request();
    request["ek_certificate"] = Value::Null;
    let challenge = enroll(&vault, request).await;
    let id = challenge["enrollment_id"].as_str().unwrap();
    let (status, record) = activate(&vault, id, &host.activate(&challenge)).await;
    assert_eq!(status, StatusCode::OK, "{record}");
    assert_eq!(record["ek_hash"], hash.as_str());
    assert_eq!(record["ek_certificate"], Value::Null);
    assert_eq!(
        (record["state"].clone(), record["auto_approved_by"].clone()),
        (json!("active"), json!("ek_hash"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecc_ek_enrolls() {
    let host = Host::start_with(EkKind::EccP384);
    let vault = Vault::start(&harness_config(&host.sim)).await;
    let challenge = enroll(&vault, host.request()).await;
    let id = challenge["enrollment_id"].as_str().unwrap();
    let (status, record) = activate(&vault, id, &host.activate(&challenge)).await;
    assert_eq!(status, StatusCode::OK, "{record}");
    assert_eq!(record["state"], "pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_activations_create_one_host_and_audit_without_secrets() {
    let host = Host::start();
    let vault = Vault::start(&harness_config(&host.sim)).await;
    let challenge = enroll(&vault, host.request()).await;
    let id = challenge["enrollment_id"].as_str().unwrap();
    let secret = host.activate(&challenge);
    let (a, b) = tokio::join!(activate(&vault, id, &secret), activate(&vault, id, &secret));
    let statuses = [a.0, b.0];
    assert!(statuses.contains(&StatusCode::OK), "{statuses:?}");
    assert!(statuses.contains(&StatusCode::FORBIDDEN), "{statuses:?}");
    let host_id = if a.0 == StatusCode::OK { &a.1 } else { &b.1 }["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let records = vault.audit();
    let denied = records
        .iter()
        .find(|r| r["operation"] == "host.activate" && r["outcome"] == "denied")
        .unwrap();
    assert_eq!(
        denied["reason"],
        format!("enrollment denied: enrollment {id} was already activated (host {host_id})")
    );
    let (_, list) = vault.call("GET", "/v1/hosts", None).await;
    assert_eq!(list["hosts"].as_array().unwrap().len(), 1);

    // Every step was audited; the secret never appears in clear.
    for operation in ["host.enroll", "host.activate"] {
        for outcome in ["attempt", "success"] {
            assert!(
                records
                    .iter()
                    .any(|r| r["operation"] == operation && r["outcome"] == outcome),
                "{operation} {outcome}"
            );
        }
    }
    let text = std::fs::read_to_string(vault.dir.path().join("audit.log")).unwrap();
    assert!(!text.contains(&secret));

    let (status, doc) = call(&vault.state, "GET", "/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/v1/hosts",
        "/v1/hosts/enroll",
        "/v1/hosts/enroll/{id}/activate",
        "/v1/hosts/{id}",
        "/v1/hosts/{id}/approve",
        "/v1/hosts/{id}/revoke",
        "/v1/hosts/{id}/boot-policy",
        "/v1/hosts/{id}/labels",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path}");
    }
}
