//! Crash test (issue 5): `keyward server` (child process, temp dir, free
//! loopback port) is SIGKILLed by PID in the middle of a stream of host
//! enrollments (first round trip, one swtpm EK/AK) and model registrations
//! (distinct versions signed here with the committed test key). After a
//! restart on the same data directory and audit file and an unseal with the
//! shares, every acknowledged enrollment is still pending, every
//! acknowledged model version is readable, the audit chain verifies, and a
//! new enrollment activates end to end.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::{Server, call, free_port, start_server};

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyward_hardware::harness::SimHost;
use keyward_hardware::{AkAlgorithm, AkBlob, EkKind, Tpm};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_keyward");
/// Concurrent writers.
const WRITERS: usize = 4;
/// Acknowledged writes of each kind to wait for before the kill.
const ACKED_EACH_BEFORE_KILL: usize = 60;
/// Acknowledged pending enrollments probed with a wrong secret after restart.
const WRONG_SECRET_SAMPLE: usize = 10;
const MODEL_PREDICATE: &str = "https://model_signing/signature/v1.0";

fn model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../attest/testdata/model-signing")
}

fn write_config(dir: &Path, sim: &SimHost) -> (PathBuf, String) {
    let port = free_port();
    let config = dir.join("keyward.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n[audit]\npath = \"{}\"\n\
             [enrollment]\nek_roots = [\"{}\"]\nek_intermediates = [\"{}\"]\nttl = \"24h\"\n",
            dir.join("data").display(),
            dir.join("audit.log").display(),
            sim.ca().root_cert_path().display(),
            sim.ca().intermediate_cert_path().display(),
        ),
    )
    .unwrap();
    (config, format!("http://127.0.0.1:{port}"))
}

/// Starts a server and waits until it answers seal status.
async fn start(http: &reqwest::Client, dir: &Path, sim: &SimHost) -> (Server, String) {
    let (config, addr) = write_config(dir, sim);
    start_server(http, dir, &config, addr).await
}

/// Signs model-signing v1.0 bundles shaped like `key-v11.sig` with the
/// committed test key (`keys/signer.key`, SEC1 PEM; ring wants PKCS#8).
struct ModelSigner {
    key: ring::signature::EcdsaKeyPair,
    rng: ring::rand::SystemRandom,
    template: Value,
    statement: Value,
}

impl ModelSigner {
    fn load(dir: &Path) -> Self {
        let der = dir.join("signer.pk8");
        let out = Command::new("openssl")
            .args(["pkcs8", "-topk8", "-nocrypt", "-outform", "DER", "-in"])
            .arg(model_dir().join("keys/signer.key"))
            .arg("-out")
            .arg(&der)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let rng = ring::rand::SystemRandom::new();
        let key = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &std::fs::read(&der).unwrap(),
            &rng,
        )
        .unwrap();
        let template: Value = serde_json::from_slice(
            &std::fs::read(model_dir().join("signatures/key-v11.sig")).unwrap(),
        )
        .unwrap();
        let payload = STANDARD
            .decode(template["dsseEnvelope"]["payload"].as_str().unwrap())
            .unwrap();
        let statement: Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(statement["predicateType"], MODEL_PREDICATE);
        Self {
            key,
            rng,
            template,
            statement,
        }
    }

    /// A bundle for a model whose last resource digest is derived from
    /// `n`; returns the version (`sha256:<root digest>`) and the bundle.
    fn sign(&self, n: u64) -> (String, Value) {
        let mut statement = self.statement.clone();
        let resources = statement["predicate"]["resources"].as_array_mut().unwrap();
        let varied = ring::digest::digest(&ring::digest::SHA256, &n.to_be_bytes());
        resources.last_mut().unwrap()["digest"] = json!(hex::encode(varied.as_ref()));
        let mut concatenated = Vec::new();
        for r in resources.iter() {
            concatenated.extend(hex::decode(r["digest"].as_str().unwrap()).unwrap());
        }
        let root = hex::encode(ring::digest::digest(&ring::digest::SHA256, &concatenated).as_ref());
        statement["subject"][0]["digest"]["sha256"] = json!(root);
        let payload = serde_json::to_vec_pretty(&statement).unwrap();
        let payload_type = self.template["dsseEnvelope"]["payloadType"]
            .as_str()
            .unwrap();
        // DSSE v1 pre-authentication encoding.
        let mut pae = format!(
            "DSSEv1 {} {payload_type} {} ",
            payload_type.len(),
            payload.len()
        )
        .into_bytes();
        pae.extend_from_slice(&payload);
        let sig = self.key.sign(&self.rng, &pae).unwrap();
        let mut bundle = self.template.clone();
        bundle["dsseEnvelope"]["payload"] = json!(STANDARD.encode(&payload));
        bundle["dsseEnvelope"]["signatures"] =
            json!([{"sig": STANDARD.encode(sig.as_ref()), "keyid": ""}]);
        (format!("sha256:{root}"), bundle)
    }
}

/// The host side: one swtpm EK and AK, read once.
struct Host {
    ek_public: Vec<u8>,
    ek_cert: Vec<u8>,
    ak: AkBlob,
    ak_public: Vec<u8>,
}

impl Host {
    fn create(sim: &SimHost, kind: EkKind, alg: AkAlgorithm) -> Self {
        let tpm = sim.open().unwrap();
        let ek = tpm.ek_public(kind).unwrap();
        let ek_cert = tpm.ek_certificate(kind).unwrap();
        let ak = tpm.create_ak(kind, alg).unwrap();
        let ak_public = ak.public().unwrap().tpm2b_public;
        drop(tpm);
        Self {
            ek_public: ek.tpm2b_public,
            ek_cert,
            ak,
            ak_public,
        }
    }

    fn request(&self) -> Value {
        json!({
            "ek_public": STANDARD.encode(&self.ek_public),
            "ek_certificate": STANDARD.encode(&self.ek_cert),
            "ak_public": STANDARD.encode(&self.ak_public),
        })
    }

    /// TPM2_ActivateCredential on the challenge; the secret, base64.
    fn activate(&self, tpm: &Tpm, challenge: &Value) -> String {
        let blob = STANDARD
            .decode(challenge["credential_blob"].as_str().unwrap())
            .unwrap();
        let secret = STANDARD
            .decode(challenge["encrypted_secret"].as_str().unwrap())
            .unwrap();
        let recovered = tpm.activate_credential(&self.ak, &blob, &secret).unwrap();
        STANDARD.encode(recovered.as_slice())
    }
}

/// A write the server acknowledged with 200.
#[derive(Debug)]
enum Ack {
    Enrollment { id: String, challenge: Value },
    Model { version: String },
}

struct Stream {
    addr: String,
    platform: String,
    release: String,
    enroll: Value,
    signer: Arc<ModelSigner>,
    next_model: AtomicUsize,
    acked: Mutex<Vec<Ack>>,
    enrollments: AtomicUsize,
    models: AtomicUsize,
    stop: AtomicBool,
}

/// Writes until the server goes away; records every acknowledged write.
async fn writer(http: reqwest::Client, s: Arc<Stream>) -> usize {
    let mut refused = 0;
    for i in 0..100_000usize {
        if s.stop.load(Ordering::SeqCst) {
            break;
        }
        let result = if i % 2 == 0 {
            call(
                &http,
                reqwest::Method::POST,
                format!("{}/v1/hosts/enroll", s.addr),
                Some(&s.platform),
                Some(s.enroll.clone()),
            )
            .await
            .map(|(status, body)| {
                (status == 200).then(|| Ack::Enrollment {
                    id: body["enrollment_id"].as_str().unwrap().to_owned(),
                    challenge: body,
                })
            })
        } else {
            let n = s.next_model.fetch_add(1, Ordering::SeqCst);
            let (version, signature) = s.signer.sign(u64::try_from(n).unwrap());
            call(
                &http,
                reqwest::Method::POST,
                format!("{}/v1/artifacts/models", s.addr),
                Some(&s.release),
                Some(json!({"version": version, "signature": signature, "policy": "ml-key"})),
            )
            .await
            .map(|(status, _)| (status == 200).then_some(Ack::Model { version }))
        };
        match result {
            Ok(Some(ack)) => {
                match ack {
                    Ack::Enrollment { .. } => s.enrollments.fetch_add(1, Ordering::SeqCst),
                    Ack::Model { .. } => s.models.fetch_add(1, Ordering::SeqCst),
                };
                s.acked.lock().unwrap().push(ack);
            }
            // 429/503 under load: not acknowledged, nothing to check.
            Ok(None) => refused += 1,
            // The server is gone (killed mid-request or refused).
            Err(_) => break,
        }
    }
    refused
}

async fn token(http: &reqwest::Client, addr: &str, root: &str, role: &str) -> String {
    let (status, body) = call(
        http,
        reqwest::Method::POST,
        format!("{addr}/v1/auth/token/create"),
        Some(root),
        Some(json!({"roles": [role], "ttl": "24h"})),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

async fn activate(
    http: &reqwest::Client,
    addr: &str,
    platform: &str,
    id: &str,
    secret: &str,
) -> (u16, Value) {
    call(
        http,
        reqwest::Method::POST,
        format!("{addr}/v1/hosts/enroll/{id}/activate"),
        Some(platform),
        Some(json!({ "secret": secret })),
    )
    .await
    .unwrap()
}

/// The audit reasons recorded for `host.activate` denials.
fn activation_reasons(audit: &Path) -> Vec<String> {
    std::fs::read_to_string(audit)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["operation"] == "host.activate")
        .filter_map(|r| r["reason"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_enrollments_and_registrations_loses_no_acknowledged_write() {
    let sim = SimHost::start().unwrap();
    let host = Host::create(&sim, EkKind::Rsa2048, AkAlgorithm::RsaSsaSha256);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let signer = Arc::new(ModelSigner::load(dir.path()));
    let (mut server, addr) = start(&http, dir.path(), &sim).await;

    let (status, init) = call(
        &http,
        reqwest::Method::POST,
        format!("{addr}/v1/sys/init"),
        None,
        Some(json!({"secret_shares": 3, "secret_threshold": 2})),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{init}");
    let root = init["root_token"].as_str().unwrap().to_owned();
    let shares: Vec<String> = init["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    let platform = token(&http, &addr, &root, "platform").await;
    let release = token(&http, &addr, &root, "release").await;
    let public_key = std::fs::read_to_string(model_dir().join("keys/signer.pub")).unwrap();
    let (status, body) = call(
        &http,
        reqwest::Method::PUT,
        format!("{addr}/v1/policies/signing/model/ml-key"),
        Some(&release),
        Some(
            json!({"kind": "model", "predicate_types": [MODEL_PREDICATE],
            "keys": [{"key_id": "release", "public_key": public_key}]}),
        ),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");

    // One of our bundles verifies through the API before the stream.
    let (version, signature) = signer.sign(u64::MAX);
    let (status, body) = call(
        &http,
        reqwest::Method::POST,
        format!("{addr}/v1/artifacts/models"),
        Some(&release),
        Some(json!({"version": version, "signature": signature, "policy": "ml-key"})),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["digest"], version.as_str());
    assert_eq!(body["signer"], json!({"type": "key", "key_id": "release"}));

    let stream = Arc::new(Stream {
        addr: addr.clone(),
        platform: platform.clone(),
        release: release.clone(),
        enroll: host.request(),
        signer: Arc::clone(&signer),
        next_model: AtomicUsize::new(0),
        acked: Mutex::new(Vec::new()),
        enrollments: AtomicUsize::new(0),
        models: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
    });
    let tasks: Vec<_> = (0..WRITERS)
        .map(|_| tokio::spawn(writer(http.clone(), Arc::clone(&stream))))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(180);
    while stream.enrollments.load(Ordering::SeqCst) < ACKED_EACH_BEFORE_KILL
        || stream.models.load(Ordering::SeqCst) < ACKED_EACH_BEFORE_KILL
    {
        assert!(Instant::now() < deadline, "too few writes acknowledged");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // SIGKILL by PID while the writers are still sending.
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
    let mut refused = 0;
    for task in tasks {
        refused += task.await.unwrap();
    }
    let acked = std::mem::take(&mut *stream.acked.lock().unwrap());
    eprintln!(
        "{} enrollments and {} models acknowledged before the SIGKILL, {refused} refused",
        stream.enrollments.load(Ordering::SeqCst),
        stream.models.load(Ordering::SeqCst)
    );

    // Restart on the same data directory and audit file.
    let (server, addr) = start(&http, dir.path(), &sim).await;
    let audit = dir.path().join("audit.log");
    for share in &shares[..2] {
        let (status, body) = call(
            &http,
            reqwest::Method::POST,
            format!("{addr}/v1/sys/unseal"),
            None,
            Some(json!({"key": share})),
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{body}");
    }
    let (_, s) = call(
        &http,
        reqwest::Method::GET,
        format!("{addr}/v1/sys/seal-status"),
        None,
        None,
    )
    .await
    .unwrap();
    assert_eq!(s["sealed"], false, "{s}");

    let mut enrollments = Vec::new();
    let mut models = 0;
    for ack in &acked {
        match ack {
            Ack::Enrollment { id, challenge } => enrollments.push((id.clone(), challenge.clone())),
            Ack::Model { version } => {
                let (status, body) = call(
                    &http,
                    reqwest::Method::GET,
                    format!("{addr}/v1/artifacts/{version}"),
                    Some(&release),
                    None,
                )
                .await
                .unwrap();
                assert_eq!(status, 200, "acknowledged model {version} lost: {body}");
                assert_eq!(body["digest"], version.as_str());
                assert_eq!(body["kind"], "model");
                models += 1;
            }
        }
    }
    assert!(models >= ACKED_EACH_BEFORE_KILL, "{models} models");
    assert!(enrollments.len() >= ACKED_EACH_BEFORE_KILL);

    // No read path lists pending enrollments: a wrong secret is answered
    // "wrong activation secret" (the enrollment exists) rather than "no
    // pending enrollment". The last acknowledged one activates on the TPM.
    let (last_id, last_challenge) = enrollments.pop().unwrap();
    let wrong = STANDARD.encode([0u8; 32]);
    let step = (enrollments.len() / WRONG_SECRET_SAMPLE).max(1);
    let sample: Vec<&(String, Value)> = enrollments.iter().step_by(step).collect();
    for (id, _) in &sample {
        let (status, body) = activate(&http, &addr, &platform, id, &wrong).await;
        assert_eq!(status, 403, "{body}");
        let reasons = activation_reasons(&audit);
        assert!(
            reasons.contains(&format!(
                "enrollment denied: wrong activation secret for enrollment {id}"
            )),
            "{reasons:?}"
        );
    }
    let tpm = sim.open().unwrap();
    let secret = host.activate(&tpm, &last_challenge);
    let (status, record) = activate(&http, &addr, &platform, &last_id, &secret).await;
    assert_eq!(status, 200, "pending enrollment {last_id} lost: {record}");
    drop(tpm);

    // A new enrollment (another EK: the RSA one is enrolled now) activates
    // end to end on the restarted server.
    let other = Host::create(&sim, EkKind::EccP384, AkAlgorithm::EcdsaP256Sha256);
    let (status, challenge) = call(
        &http,
        reqwest::Method::POST,
        format!("{addr}/v1/hosts/enroll"),
        Some(&platform),
        Some(other.request()),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{challenge}");
    let tpm = sim.open().unwrap();
    let secret = other.activate(&tpm, &challenge);
    drop(tpm);
    let id = challenge["enrollment_id"].as_str().unwrap();
    let (status, body) = activate(&http, &addr, &platform, id, &secret).await;
    assert_eq!(status, 200, "{body}");
    server.stop();

    let verify = Command::new(BIN)
        .args(["audit", "verify"])
        .arg(&audit)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}
