//! Attack-table row 22, end to end: `keyward server` (child process, temp
//! dir, free loopback port) is SIGKILLed by PID while concurrent workloads
//! attest and release identity tokens. After a restart on the same data
//! directory and audit file and an unseal with the shares:
//! - every acknowledged (200) identity lease is found by
//!   `POST /v1/sys/leases/lookup`;
//! - every acknowledged request id (attest and release) has its `success`
//!   record in the audit file, and `keyward audit verify` passes on it;
//! - every evidence whose attestation was acknowledged is refused on replay,
//!   with the audit reason `denied at nonce: nonce already used`;
//! - evidence whose attestation was in flight at the kill (sent, never
//!   acknowledged) yields at most one session across before and after: on
//!   replay it is either refused at the nonce (consumed before the kill) or
//!   accepted once and then refused.
//!
//! The vault is set up as an operator would: an swtpm host enrolled
//! (credential activation) and approved with golden boot PCRs, the public
//! kubewarden image registered from its real keyless cosign v3 bundle (no
//! registry needed), the committed model-signing vector registered, a Cedar
//! policy for `identity/token`, and one workload launched as `keyward
//! launch` does (launch record appended to the CEL, PCR 23 extended).
//! Evidences (challenge + swtpm quote) are made before the stream starts,
//! so the stream itself is pure HTTP against the vault.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::as_conversions
)]

mod common;
use common::{free_port, start_server};

use std::collections::{HashMap, VecDeque};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyward_attest::cel::{LaunchRecord, append};
use keyward_attest::instance::{
    PopProof, PopRequest, instance_key_sha256, nonce_message, qualifying_data,
};
use keyward_hardware::harness::SimHost;
use keyward_hardware::{AkAlgorithm, AkBlob, EkKind, PcrBank, PcrSelection, Tpm};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_keyward");
/// Evidences made before the stream.
const EVIDENCES: usize = 200;
/// Concurrent workload clients.
const WORKERS: usize = 6;
/// Acknowledged identity leases to wait for before the kill.
const ACKED_LEASES_BEFORE_KILL: usize = 60;
const WORKLOAD_PCR: u8 = 23;
const BOOT_PCRS: [u8; 8] = [0, 1, 2, 3, 4, 5, 6, 7];
const IMAGE_DIGEST: &str =
    "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172";
const IMAGE_SUBJECT: &str = "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0";
const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";
const MODEL_PREDICATE: &str = "https://model_signing/signature/v1.0";
const IDENTITY_PATH: &str = "/v1/secrets/identity/token";
const NONCE_USED: &str = "denied at nonce: nonce already used";

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn model_vectors() -> PathBuf {
    manifest_dir().join("../attest/testdata/model-signing")
}

/// The model version the committed key-mode signature covers.
fn model_version() -> String {
    let text =
        std::fs::read_to_string(model_vectors().join("signatures/root-digests.txt")).unwrap();
    let line = text.lines().find(|l| l.contains("key-v11.sig")).unwrap();
    let word = line
        .split_whitespace()
        .find(|w| w.len() == 64 || w.starts_with("sha256:"))
        .unwrap();
    if word.starts_with("sha256:") {
        word.to_owned()
    } else {
        format!("sha256:{word}")
    }
}

fn write_config(dir: &Path, sim: &SimHost) -> (PathBuf, String) {
    let port = free_port();
    let config = dir.join("keyward.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n[audit]\npath = \"{}\"\n\
             [enrollment]\nek_roots = [\"{}\"]\nek_intermediates = [\"{}\"]\n\
             [release]\nnonce_ttl = \"10m\"\n\
             [release.identity]\nissuer = \"http://127.0.0.1:{port}/v1/identity\"\n\
             trust_domain = \"keyward.test\"\n",
            dir.join("data").display(),
            dir.join("audit.log").display(),
            sim.ca().root_cert_path().display(),
            sim.ca().intermediate_cert_path().display(),
        ),
    )
    .unwrap();
    (config, format!("http://127.0.0.1:{port}"))
}

/// One answer: status, `X-Request-Id`, body (null when not JSON).
struct Answer {
    status: u16,
    request_id: String,
    body: Value,
}

async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> reqwest::Result<Answer> {
    let mut request = http.request(method, url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(b) = body {
        request = request.header("content-type", "application/json").body(b);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    // A body cut off by the kill is an error: not acknowledged.
    let bytes = response.bytes().await?;
    Ok(Answer {
        status,
        request_id,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    })
}

/// An admin call that must succeed.
async fn admin(
    http: &reqwest::Client,
    addr: &str,
    root: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> Value {
    let a = send(
        http,
        method,
        format!("{addr}{path}"),
        &[("x-keyward-token", root)],
        Some(body.to_string()),
    )
    .await
    .unwrap();
    assert_eq!(a.status, 200, "{path}: {}", a.body);
    a.body
}

/// The launched workload: its instance key and workload log.
struct Workload {
    key: Ed25519KeyPair,
    public: [u8; 32],
    cel: Vec<u8>,
}

/// Launches a workload as `keyward launch` does.
fn launch(tpm: &Tpm, image_ref: &str, model_digest: &str) -> Workload {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let public: [u8; 32] = key.public_key().as_ref().try_into().unwrap();
    let record = LaunchRecord::new(
        "agent-1",
        image_ref,
        IMAGE_DIGEST,
        "demo-model",
        model_digest,
        instance_key_sha256(&public),
    )
    .unwrap();
    let mut cel = Vec::new();
    let digest = append(&mut cel, WORKLOAD_PCR, &record).unwrap();
    tpm.extend_pcr_sha256(WORKLOAD_PCR, digest).unwrap();
    Workload { key, public, cel }
}

/// Evidence answering a fresh challenge.
async fn evidence(
    http: &reqwest::Client,
    addr: &str,
    tpm: &Tpm,
    ak: &AkBlob,
    host_id: &str,
    workload: &Workload,
) -> Value {
    let challenge = send(
        http,
        reqwest::Method::POST,
        format!("{addr}/v1/attest/challenge"),
        &[],
        None,
    )
    .await
    .unwrap();
    assert_eq!(challenge.status, 200, "{}", challenge.body);
    let nonce = hex::decode(challenge.body["nonce"].as_str().unwrap()).unwrap();
    let mut indices = BOOT_PCRS.to_vec();
    indices.push(WORKLOAD_PCR);
    let quote = tpm
        .quote(
            ak,
            &qualifying_data(&nonce, &workload.public),
            &[PcrSelection::new(PcrBank::Sha256, &indices)],
        )
        .unwrap();
    let pcrs: serde_json::Map<String, Value> = quote
        .pcrs
        .iter()
        .map(|p| (p.index.to_string(), json!(hex::encode(&p.digest))))
        .collect();
    json!({
        "host_id": host_id,
        "nonce": hex::encode(&nonce),
        "quote": STANDARD.encode(&quote.attest),
        "signature": STANDARD.encode(&quote.signature),
        "pcrs": {"sha256": pcrs},
        "workload_log": STANDARD.encode(&workload.cel),
        "instance_key": STANDARD.encode(workload.public),
        "nonce_signature": STANDARD.encode(workload.key.sign(&nonce_message(&nonce))),
    })
}

/// An identity token release with a proof of possession.
async fn release_identity(
    http: &reqwest::Client,
    addr: &str,
    workload: &Workload,
    token: &str,
) -> reqwest::Result<Answer> {
    let body = json!({"audience": "sts.example.com"}).to_string();
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
            path: IDENTITY_PATH,
            body: body.as_bytes(),
            token: token.as_bytes(),
        },
        now,
        id,
    );
    let bearer = format!("Bearer {token}");
    send(
        http,
        reqwest::Method::POST,
        format!("{addr}{IDENTITY_PATH}"),
        &[("authorization", &bearer), ("keyward-pop", &proof)],
        Some(body),
    )
    .await
}

async fn attest(http: &reqwest::Client, addr: &str, evidence: &Value) -> reqwest::Result<Answer> {
    send(
        http,
        reqwest::Method::POST,
        format!("{addr}/v1/attest"),
        &[],
        Some(evidence.to_string()),
    )
    .await
}

/// What the stream saw.
#[derive(Default)]
struct Seen {
    /// Evidence index → request id of its acknowledged attestation.
    attested: HashMap<usize, String>,
    /// Evidence sent but never acknowledged (the kill, or 429/503).
    unacknowledged: Vec<usize>,
    /// Acknowledged identity leases: (lease id, request id).
    leases: Vec<(String, String)>,
}

struct Stream {
    addr: String,
    workload: Workload,
    queue: Mutex<VecDeque<(usize, Value)>>,
    seen: Mutex<Seen>,
    leases: AtomicUsize,
    stop: AtomicBool,
}

/// Attests with the next evidence and releases an identity token with the
/// session, until the server goes away or `stop`.
async fn worker(http: reqwest::Client, s: Arc<Stream>) {
    while !s.stop.load(Ordering::SeqCst) {
        let Some((index, evidence)) = s.queue.lock().unwrap().pop_front() else {
            break;
        };
        let answer = match attest(&http, &s.addr, &evidence).await {
            Ok(a) if a.status == 200 => a,
            Ok(a) => {
                assert!(
                    matches!(a.status, 429 | 503),
                    "attest: {} {}",
                    a.status,
                    a.body
                );
                s.seen.lock().unwrap().unacknowledged.push(index);
                continue;
            }
            Err(_) => {
                s.seen.lock().unwrap().unacknowledged.push(index);
                break;
            }
        };
        let token = answer.body["token"].as_str().unwrap().to_owned();
        s.seen
            .lock()
            .unwrap()
            .attested
            .insert(index, answer.request_id);
        match release_identity(&http, &s.addr, &s.workload, &token).await {
            Ok(a) if a.status == 200 => {
                let lease = a.body["lease_id"].as_str().unwrap().to_owned();
                assert!(lease.starts_with("identity/token/"), "{lease}");
                s.seen.lock().unwrap().leases.push((lease, a.request_id));
                s.leases.fetch_add(1, Ordering::SeqCst);
            }
            Ok(a) => assert!(
                matches!(a.status, 429 | 503),
                "release: {} {}",
                a.status,
                a.body
            ),
            Err(_) => break,
        }
    }
}

/// The audit file's records by request id.
fn audit_by_request(path: &Path) -> HashMap<String, Vec<Value>> {
    let mut map: HashMap<String, Vec<Value>> = HashMap::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        if let Some(id) = record["request_id"].as_str() {
            map.entry(id.to_owned()).or_default().push(record);
        }
    }
    map
}

async fn unseal(http: &reqwest::Client, addr: &str, shares: &[String]) {
    for share in shares {
        let a = send(
            http,
            reqwest::Method::POST,
            format!("{addr}/v1/sys/unseal"),
            &[],
            Some(json!({"key": share}).to_string()),
        )
        .await
        .unwrap();
        assert_eq!(a.status, 200, "{}", a.body);
    }
    let a = send(
        http,
        reqwest::Method::GET,
        format!("{addr}/v1/sys/seal-status"),
        &[],
        None,
    )
    .await
    .unwrap();
    assert_eq!(a.body["sealed"], false, "{}", a.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_release_loses_no_acknowledged_lease_and_burns_nonces() {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let sim = SimHost::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (config, addr) = write_config(dir.path(), &sim);
    let (mut server, addr) = start_server(&http, dir.path(), &config, addr).await;

    let init = send(
        &http,
        reqwest::Method::POST,
        format!("{addr}/v1/sys/init"),
        &[],
        Some(json!({"secret_shares": 3, "secret_threshold": 2}).to_string()),
    )
    .await
    .unwrap();
    assert_eq!(init.status, 200, "{}", init.body);
    let root = init.body["root_token"].as_str().unwrap().to_owned();
    let shares: Vec<String> = init.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();

    // Artifacts: the kubewarden image from its keyless bundle, the model
    // from the committed key-mode signature.
    use reqwest::Method;
    let image_policy = json!({"kind": "image", "predicate_types": ["https://sigstore.dev/cosign/sign/v1"],
        "identities": [{"issuer": GITHUB_ISSUER, "subject": IMAGE_SUBJECT}]});
    admin(
        &http,
        &addr,
        &root,
        Method::PUT,
        "/v1/policies/signing/image/kubewarden",
        image_policy,
    )
    .await;
    let signer_pub = std::fs::read_to_string(model_vectors().join("keys/signer.pub")).unwrap();
    let model_policy = json!({"kind": "model", "predicate_types": [MODEL_PREDICATE],
        "keys": [{"key_id": "model-release", "public_key": signer_pub}]});
    admin(
        &http,
        &addr,
        &root,
        Method::PUT,
        "/v1/policies/signing/model/release",
        model_policy,
    )
    .await;
    let bundle: Value = serde_json::from_slice(
        &std::fs::read(
            manifest_dir()
                .join("../../shared/testdata/sigstore/cosign-v3-image-kubewarden.sigstore.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let image_ref = format!("ghcr.io/kubewarden/kubewarden-controller@{IMAGE_DIGEST}");
    admin(
        &http,
        &addr,
        &root,
        Method::POST,
        "/v1/artifacts/images",
        json!({"reference": image_ref, "policy": "kubewarden", "bundle": bundle}),
    )
    .await;
    let signature: Value = serde_json::from_slice(
        &std::fs::read(model_vectors().join("signatures/key-v11.sig")).unwrap(),
    )
    .unwrap();
    let model_digest = model_version();
    admin(
        &http,
        &addr,
        &root,
        Method::POST,
        "/v1/artifacts/models",
        json!({"version": model_digest, "signature": signature, "policy": "release", "name": "demo-model"}),
    )
    .await;
    admin(
        &http,
        &addr,
        &root,
        Method::PUT,
        "/v1/policies/release/identity",
        json!({"policy": r#"permit (principal is Keyward::Workload, action, resource is Keyward::Secret)
            when { resource.path == "identity/token" };"#}),
    )
    .await;

    // The host: EK + AK, credential activation, approval, golden PCRs.
    let tpm = sim.open().unwrap();
    let ek = tpm.ek_public(EkKind::Rsa2048).unwrap();
    let ek_cert = tpm.ek_certificate(EkKind::Rsa2048).unwrap();
    let ak = tpm
        .create_ak(EkKind::Rsa2048, AkAlgorithm::RsaSsaSha256)
        .unwrap();
    let challenge = admin(
        &http,
        &addr,
        &root,
        Method::POST,
        "/v1/hosts/enroll",
        json!({
            "ek_public": STANDARD.encode(&ek.tpm2b_public),
            "ek_certificate": STANDARD.encode(&ek_cert),
            "ak_public": STANDARD.encode(ak.public().unwrap().tpm2b_public),
            "name": "node-1",
        }),
    )
    .await;
    let blob = STANDARD
        .decode(challenge["credential_blob"].as_str().unwrap())
        .unwrap();
    let secret = STANDARD
        .decode(challenge["encrypted_secret"].as_str().unwrap())
        .unwrap();
    let recovered = tpm.activate_credential(&ak, &blob, &secret).unwrap();
    let enrollment = challenge["enrollment_id"].as_str().unwrap();
    let record = admin(
        &http,
        &addr,
        &root,
        Method::POST,
        &format!("/v1/hosts/enroll/{enrollment}/activate"),
        json!({"secret": STANDARD.encode(recovered.as_slice())}),
    )
    .await;
    let host_id = record["id"].as_str().unwrap().to_owned();
    admin(
        &http,
        &addr,
        &root,
        Method::POST,
        &format!("/v1/hosts/{host_id}/approve"),
        json!({}),
    )
    .await;
    let values = tpm
        .read_pcrs(&[PcrSelection::new(PcrBank::Sha256, &BOOT_PCRS)])
        .unwrap();
    let golden: serde_json::Map<String, Value> = values
        .iter()
        .map(|p| (p.index.to_string(), json!(hex::encode(&p.digest))))
        .collect();
    admin(
        &http,
        &addr,
        &root,
        Method::PUT,
        &format!("/v1/hosts/{host_id}/boot-policy"),
        json!({"boot_policy": {"golden_pcrs": {"sha256": golden}}}),
    )
    .await;

    // One workload; evidences made up front.
    let workload = launch(&tpm, &image_ref, &model_digest);
    let started = Instant::now();
    let mut evidences = Vec::with_capacity(EVIDENCES);
    for _ in 0..EVIDENCES {
        evidences.push(evidence(&http, &addr, &tpm, &ak, &host_id, &workload).await);
    }
    drop(tpm);
    eprintln!("{EVIDENCES} evidences in {:?}", started.elapsed());

    let stream = Arc::new(Stream {
        addr: addr.clone(),
        workload,
        queue: Mutex::new(evidences.iter().cloned().enumerate().collect()),
        seen: Mutex::new(Seen::default()),
        leases: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
    });
    let tasks: Vec<_> = (0..WORKERS)
        .map(|_| tokio::spawn(worker(http.clone(), Arc::clone(&stream))))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while stream.leases.load(Ordering::SeqCst) < ACKED_LEASES_BEFORE_KILL {
        assert!(
            Instant::now() < deadline,
            "too few leases acknowledged: {}",
            std::fs::read_to_string(dir.path().join("server.err")).unwrap_or_default()
        );
        assert!(
            !stream.queue.lock().unwrap().is_empty(),
            "evidences ran out before the kill"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // SIGKILL by PID while the workers are still sending.
    let pid = server.0.as_ref().unwrap().id();
    let killed = Command::new("kill")
        .arg("-KILL")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let status = server.0.as_mut().unwrap().wait().unwrap();
    assert_eq!(status.signal(), Some(9), "{status}");
    drop(server);
    stream.stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.unwrap();
    }
    let seen = std::mem::take(&mut *stream.seen.lock().unwrap());
    let never_sent: Vec<usize> = stream
        .queue
        .lock()
        .unwrap()
        .iter()
        .map(|(i, _)| *i)
        .collect();
    eprintln!(
        "before the SIGKILL: {} attestations and {} leases acknowledged, {} attestations \
         unacknowledged, {} evidences never sent",
        seen.attested.len(),
        seen.leases.len(),
        seen.unacknowledged.len(),
        never_sent.len()
    );
    assert!(seen.leases.len() >= ACKED_LEASES_BEFORE_KILL);
    assert!(!never_sent.is_empty());

    // Restart on the same data directory and audit file; unseal.
    let (server, addr) = start_server(&http, dir.path(), &config, addr).await;
    unseal(&http, &addr, &shares[..2]).await;

    // Every acknowledged lease is there.
    for (lease, _) in &seen.leases {
        let record = admin(
            &http,
            &addr,
            &root,
            Method::POST,
            "/v1/sys/leases/lookup",
            json!({"lease_id": lease}),
        )
        .await;
        assert_eq!(record["id"], lease.as_str(), "{record}");
    }
    // An unknown lease id is not (the lookup can fail).
    let missing = send(
        &http,
        Method::POST,
        format!("{addr}/v1/sys/leases/lookup"),
        &[("x-keyward-token", &root)],
        Some(json!({"lease_id": "identity/token/00000000000000000000000000000000"}).to_string()),
    )
    .await
    .unwrap();
    assert_eq!(missing.status, 404, "{}", missing.body);

    // Replays: acknowledged attestations are refused at the nonce.
    let mut replay_ids = Vec::new();
    for index in seen.attested.keys() {
        let a = attest(&http, &addr, &evidences[*index]).await.unwrap();
        assert_eq!(a.status, 403, "evidence {index} replayed: {}", a.body);
        replay_ids.push(a.request_id);
    }
    // In flight at the kill: consumed (refused) or not (accepted once).
    let (mut consumed, mut accepted) = (0, 0);
    for index in &seen.unacknowledged {
        let a = attest(&http, &addr, &evidences[*index]).await.unwrap();
        if a.status == 200 {
            accepted += 1;
            let again = attest(&http, &addr, &evidences[*index]).await.unwrap();
            assert_eq!(
                again.status, 403,
                "evidence {index} accepted twice: {}",
                again.body
            );
            replay_ids.push(again.request_id);
        } else {
            assert_eq!(a.status, 403, "evidence {index}: {}", a.body);
            consumed += 1;
            replay_ids.push(a.request_id);
        }
    }
    eprintln!(
        "unacknowledged evidences after restart: {consumed} consumed, {accepted} accepted once"
    );
    // An evidence never sent still attests: its nonce outlived the crash
    // and only use burns it.
    let fresh = attest(&http, &addr, &evidences[never_sent[0]])
        .await
        .unwrap();
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    let fresh_token = fresh.body["token"].as_str().unwrap().to_owned();
    let released = release_identity(&http, &addr, &stream.workload, &fresh_token)
        .await
        .unwrap();
    assert_eq!(released.status, 200, "{}", released.body);
    server.stop();

    // The audit file: every acknowledged request has its success record,
    // every replay its nonce denial, and the chain verifies.
    let audit_path = dir.path().join("audit.log");
    let records = audit_by_request(&audit_path);
    let has = |id: &str, operation: &str, outcome: &str| {
        records.get(id).is_some_and(|rs| {
            rs.iter()
                .any(|r| r["operation"] == operation && r["outcome"] == outcome)
        })
    };
    for id in seen.attested.values() {
        assert!(
            has(id, "attest", "success"),
            "acknowledged attest {id} not audited"
        );
    }
    for (lease, id) in &seen.leases {
        assert!(
            has(id, "secret.release", "success"),
            "acknowledged release {id} ({lease}) not audited"
        );
    }
    for id in &replay_ids {
        let reason = records
            .get(id)
            .and_then(|rs| rs.iter().find(|r| r["operation"] == "attest"))
            .map(|r| r["reason"].clone());
        assert_eq!(reason, Some(json!(NONCE_USED)), "replay {id}");
    }
    let verify = Command::new(BIN)
        .args(["audit", "verify"])
        .arg(&audit_path)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}
