//! Release-path throughput and latency of a real `keyward server`
//! (issue 6, deliverable 8). Run by `scripts/bench/release.sh`; figures go
//! to docs/benchmarks.md.
//!
//! What it does: starts a registry with a signed image, a swtpm host and
//! `target/release/keyward server` (plain HTTP on 127.0.0.1, sled data
//! directory and durable audit log in a temp dir) as child processes;
//! initialises, enrolls the host (ECC P-256 AK, so quotes are cheap to
//! pre-generate), registers image and model, launches one workload, stores
//! a kv secret and a Cedar policy — all over HTTP, as an operator would.
//! Then, with 64 concurrent workers on one pooled keep-alive HTTP/1.1
//! client, it measures:
//!
//! - `challenge`: `POST /v1/attest/challenge` alone. The nonces it collects
//!   are quoted by swtpm *before* the next phase (a quote is bound to its
//!   nonce, and a TPM quote costs ~5 ms, far more than the vault's work);
//! - `challenge+attest+secret` (target a), the full attested release: per
//!   iteration `POST /v1/attest/challenge`, then `POST /v1/attest` with
//!   pre-built evidence, then `POST /v1/secrets/kv/app/db` with the new
//!   session's token and a proof of possession. The evidence answers a
//!   nonce from the `challenge` phase, not the one this iteration just got:
//!   swtpm would need ~4 ms to quote it, far more than the vault's work, so
//!   the fresh nonce is dropped (issuing it writes nothing, so the vault
//!   does all the work of a real iteration). The pool of evidence is
//!   finite; when it runs dry the phase ends and the rate is computed over
//!   what ran (the defaults, 50,000 documents or 220 s of quoting, last the
//!   2 s warm-up and the 10 s window up to ~4,000/s);
//! - `session secret` (target b): one session, every request a fresh proof
//!   of possession.
//!
//! For each phase: rate, latency percentiles per request and per
//! iteration, and the server's and the load generator's CPU time per
//! iteration (from /proc/<pid>/stat). `KEYWARD_BENCH_STAT=1` also counts the
//! server's syncs, writes, futex calls and context switches with
//! `perf stat`.
//!
//! It does not assert anything about speed (benchmarks never do). A
//! request the vault answers with anything but 200 is counted as an error,
//! not as a sample, and the distinct answers are printed with their counts
//! (under overload the vault sheds load with 503s, which is a result too). Set `KEYWARD_BENCH_PERF=DIR` to also record a
//! `perf` profile of the server during each timed phase.
//!
//! Hand-written rather than criterion: criterion measures a closure in one
//! process; this is a closed-loop load test against another process.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::as_conversions,
    missing_debug_implementations,
    unreachable_pub,
    reason = "benchmark harness, not product code: a setup failure should stop it loudly"
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyward_attest::cel::{LaunchRecord, append};
use keyward_attest::instance::{
    PopProof, PopRequest, instance_key_sha256, nonce_message, qualifying_data,
};
use keyward_hardware::harness::SimHost;
use keyward_hardware::{AkAlgorithm, AkBlob, EkKind, PcrBank, PcrSelection, Tpm};
use keyward_tests::registry::{Registry, generate_key, write_test_image};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};

const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const MODEL_PREDICATE: &str = "https://model_signing/signature/v1.0";
const WORKLOAD_PCR: u8 = 23;
const BOOT_PCRS: [u8; 8] = [0, 1, 2, 3, 4, 5, 6, 7];
const SECRET_PATH: &str = "/v1/secrets/kv/app/db";

/// The load generator runs on the server's allocator: it shares the two
/// cores with the vault, so the cheaper its requests, the more CPU is left
/// to the vault (its own CPU per iteration is reported beside the server's).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Settings {
    workers: usize,
    warmup: Duration,
    measure: Duration,
    /// Longest time spent quoting the evidence pool.
    pool_secs: u64,
    /// Most evidence documents pre-generated.
    pool_max: usize,
}

impl Settings {
    fn from_env() -> Self {
        Self {
            workers: env_u64("KEYWARD_BENCH_WORKERS", 64) as usize,
            warmup: Duration::from_secs(env_u64("KEYWARD_BENCH_WARMUP_SECS", 2)),
            measure: Duration::from_secs(env_u64("KEYWARD_BENCH_SECS", 10)),
            pool_secs: env_u64("KEYWARD_BENCH_POOL_SECS", 220),
            pool_max: env_u64("KEYWARD_BENCH_POOL_MAX", 50_000) as usize,
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn keyward_binary() -> PathBuf {
    std::env::var_os("KEYWARD_BIN").map_or_else(
        || workspace_root().join("target/release/keyward"),
        PathBuf::from,
    )
}

fn model_vectors() -> PathBuf {
    workspace_root().join("attest/testdata/model-signing")
}

/// The model version the committed key-mode signature covers.
fn model_version() -> String {
    let text =
        std::fs::read_to_string(model_vectors().join("signatures/root-digests.txt")).unwrap();
    let line = text.lines().find(|l| l.contains("key-v11.sig")).unwrap();
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

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `utime + stime` of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the parenthesised command name; utime and stime are
    // fields 14 and 15 of the whole line.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn clock_ticks_per_sec() -> u64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn line_count(path: &Path) -> u64 {
    std::fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count() as u64)
        .unwrap_or(0)
}

/// Median latency of `write` + `fdatasync` of one audit-sized line on the
/// file system under `dir` (what a durable audit record costs at least).
fn fsync_us(dir: &Path) -> f64 {
    use std::io::Write;
    let mut file = std::fs::File::create(dir.join("fsync-probe")).unwrap();
    let line = [b'x'; 600];
    let mut samples: Vec<f64> = (0..500)
        .map(|_| {
            let t = Instant::now();
            file.write_all(&line).unwrap();
            file.sync_data().unwrap();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn vm_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// `keyward server` as a child process, stopped (SIGTERM, by pid) on drop.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(config: &Path, log: &Path) -> Self {
        let log = std::fs::File::create(log).unwrap();
        let child = Command::new(keyward_binary())
            .args(["server", "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} (run `cargo build --release -j2 -p keyward-vault` first): {e}",
                    keyward_binary().display()
                )
            });
        let port = std::fs::read_to_string(config)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("listen = \"127.0.0.1:"))
            .and_then(|l| l.strip_suffix('"'))
            .unwrap()
            .to_owned();
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the server answers HTTP at all (polling a child process
    /// that gives no other readiness signal).
    async fn wait_answering(&mut self, client: &reqwest::Client) {
        let start = Instant::now();
        loop {
            if let Ok(r) = client
                .get(format!("{}/v1/sys/health", self.base))
                .send()
                .await
            {
                drop(r);
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("keyward server exited early: {status}");
            }
            assert!(start.elapsed() < Duration::from_secs(30), "server not up");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One admin/unauthenticated JSON call; returns status and body.
async fn call(
    client: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = client.request(method, format!("{base}{path}"));
    if let Some(t) = token {
        req = req.header("x-keyward-token", t);
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn ok(
    client: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Value {
    let (status, value) = call(client, base, method, path, token, body).await;
    assert_eq!(status, 200, "{method} {path}: {value}");
    value
}

/// The vault, host, artifacts and workload the phases run against.
/// Fields drop in order: the server stops first, the TPM connection closes
/// before swtpm stops, the temp dir goes last.
struct Setup {
    server: Server,
    tpm: Tpm,
    _sim: SimHost,
    _registry: Registry,
    _dir: tempfile::TempDir,
    audit_path: PathBuf,
    host_id: String,
    ak: AkBlob,
    cel: Vec<u8>,
    key: Arc<Ed25519KeyPair>,
    public: [u8; 32],
}

async fn setup(client: &reqwest::Client) -> Setup {
    let registry = Registry::start().unwrap();
    let layout = registry.scratch("image").unwrap();
    let image_digest = write_test_image(&layout, "img", b"agent v1\n").unwrap();
    registry
        .skopeo_push(&layout, "img", "keyward/agent", "v1")
        .unwrap();
    let keys = registry.scratch("keys").unwrap();
    let (signing_key, image_public) = generate_key(&keys, "release").unwrap();
    let image_ref = format!("{}/keyward/agent:v1", registry.addr());
    registry
        .push_simple_signature("keyward/agent", &image_ref, &image_digest, &[&signing_key])
        .unwrap();
    let sim = SimHost::start().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("keyward.toml");
    let port = free_port();
    std::fs::write(
        &config,
        format!(
            r#"listen = "127.0.0.1:{port}"
data_dir = "{data}"

[limits]
max_concurrent_requests = 256

[audit]
path = "{audit}"

[enrollment]
ek_roots = ["{root}"]
ek_intermediates = ["{intermediate}"]

[artifacts.registry]
insecure_hosts = ["{registry}"]

[release]
nonce_ttl = "30m"
session_ttl = "30m"
"#,
            data = dir.path().join("data").display(),
            audit = dir.path().join("audit.log").display(),
            root = sim.ca().root_cert_path().display(),
            intermediate = sim.ca().intermediate_cert_path().display(),
            registry = registry.addr(),
        ),
    )
    .unwrap();
    let mut server = Server::start(&config, &dir.path().join("server.log"));
    server.wait_answering(client).await;
    let base = server.base.clone();
    let init = ok(
        client,
        &base,
        "POST",
        "/v1/sys/init",
        None,
        Some(&json!({"secret_shares": 1, "secret_threshold": 1})),
    )
    .await;
    let root = init["root_token"].as_str().unwrap().to_owned();
    let admin = Some(root.as_str());

    // Signing policies, image and model.
    let signer_pub = std::fs::read_to_string(model_vectors().join("keys/signer.pub")).unwrap();
    for (path, policy) in [
        (
            "/v1/policies/signing/image/release",
            json!({"kind": "image", "predicate_types": [SIMPLE_SIGNING],
                "keys": [{"key_id": "release", "public_key": image_public}]}),
        ),
        (
            "/v1/policies/signing/model/release",
            json!({"kind": "model", "predicate_types": [MODEL_PREDICATE],
                "keys": [{"key_id": "model-release", "public_key": signer_pub}]}),
        ),
    ] {
        ok(client, &base, "PUT", path, admin, Some(&policy)).await;
    }
    ok(
        client,
        &base,
        "POST",
        "/v1/artifacts/images",
        admin,
        Some(&json!({"reference": image_ref, "policy": "release", "discover": true})),
    )
    .await;
    let signature: Value = serde_json::from_slice(
        &std::fs::read(model_vectors().join("signatures/key-v11.sig")).unwrap(),
    )
    .unwrap();
    let model_digest = model_version();
    ok(
        client,
        &base,
        "POST",
        "/v1/artifacts/models",
        admin,
        Some(&json!({"version": model_digest, "signature": signature,
            "policy": "release", "name": "demo-model"})),
    )
    .await;

    // Enrollment with an ECC AK: credential activation, approval, boot policy.
    let tpm = sim.open().unwrap();
    let ek = tpm.ek_public(EkKind::Rsa2048).unwrap();
    let ek_cert = tpm.ek_certificate(EkKind::Rsa2048).unwrap();
    let ak = tpm
        .create_ak(EkKind::Rsa2048, AkAlgorithm::EcdsaP256Sha256)
        .unwrap();
    let challenge = ok(
        client,
        &base,
        "POST",
        "/v1/hosts/enroll",
        admin,
        Some(&json!({
            "ek_public": STANDARD.encode(&ek.tpm2b_public),
            "ek_certificate": STANDARD.encode(&ek_cert),
            "ak_public": STANDARD.encode(ak.public().unwrap().tpm2b_public),
            "name": "node-1",
            "labels": {"env": "prod"},
        })),
    )
    .await;
    let blob = STANDARD
        .decode(challenge["credential_blob"].as_str().unwrap())
        .unwrap();
    let secret = STANDARD
        .decode(challenge["encrypted_secret"].as_str().unwrap())
        .unwrap();
    let recovered = tpm.activate_credential(&ak, &blob, &secret).unwrap();
    let id = challenge["enrollment_id"].as_str().unwrap();
    let record = ok(
        client,
        &base,
        "POST",
        &format!("/v1/hosts/enroll/{id}/activate"),
        admin,
        Some(&json!({"secret": STANDARD.encode(recovered.as_slice())})),
    )
    .await;
    let host_id = record["id"].as_str().unwrap().to_owned();
    ok(
        client,
        &base,
        "POST",
        &format!("/v1/hosts/{host_id}/approve"),
        admin,
        None,
    )
    .await;
    let values = tpm
        .read_pcrs(&[PcrSelection::new(PcrBank::Sha256, &BOOT_PCRS)])
        .unwrap();
    let golden: serde_json::Map<String, Value> = values
        .iter()
        .map(|p| (p.index.to_string(), json!(hex::encode(&p.digest))))
        .collect();
    ok(
        client,
        &base,
        "PUT",
        &format!("/v1/hosts/{host_id}/boot-policy"),
        admin,
        Some(&json!({"boot_policy": {"golden_pcrs": {"sha256": golden}}})),
    )
    .await;

    // Release policy and the secret.
    let policy = format!(
        r#"permit (principal is Keyward::Workload, action, resource is Keyward::Secret)
        when {{ resource.path like "kv/app/*" && principal.model_signer == "key:model-release"
               && principal.image_digest == "{image_digest}" }};"#
    );
    ok(
        client,
        &base,
        "PUT",
        "/v1/policies/release/app",
        admin,
        Some(&json!({ "policy": policy })),
    )
    .await;
    ok(
        client,
        &base,
        "PUT",
        "/v1/kv/app/db",
        admin,
        Some(&json!({"data": {"password": "hunter2"}})),
    )
    .await;

    // Launch one workload as `keyward launch` does.
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let public: [u8; 32] = key.public_key().as_ref().try_into().unwrap();
    let launch = LaunchRecord::new(
        "agent-1",
        &image_ref,
        &image_digest,
        "demo-model",
        &model_digest,
        instance_key_sha256(&public),
    )
    .unwrap();
    let mut cel = Vec::new();
    let digest = append(&mut cel, WORKLOAD_PCR, &launch).unwrap();
    tpm.extend_pcr_sha256(WORKLOAD_PCR, digest).unwrap();

    Setup {
        audit_path: dir.path().join("audit.log"),
        _dir: dir,
        _registry: registry,
        _sim: sim,
        tpm,
        server,
        host_id,
        ak,
        cel,
        key: Arc::new(key),
        public,
    }
}

impl Setup {
    /// Evidence answering `nonce` (hex), as the JSON body of `POST /v1/attest`.
    fn evidence(&self, nonce_hex: &str) -> String {
        let nonce = hex::decode(nonce_hex).unwrap();
        let mut indices = BOOT_PCRS.to_vec();
        indices.push(WORKLOAD_PCR);
        let quote = self
            .tpm
            .quote(
                &self.ak,
                &qualifying_data(&nonce, &self.public),
                &[PcrSelection::new(PcrBank::Sha256, &indices)],
            )
            .unwrap();
        let pcrs: serde_json::Map<String, Value> = quote
            .pcrs
            .iter()
            .map(|p| (p.index.to_string(), json!(hex::encode(&p.digest))))
            .collect();
        json!({
            "host_id": self.host_id,
            "nonce": nonce_hex,
            "quote": STANDARD.encode(&quote.attest),
            "signature": STANDARD.encode(&quote.signature),
            "pcrs": {"sha256": pcrs},
            "workload_log": STANDARD.encode(&self.cel),
            "instance_key": STANDARD.encode(self.public),
            "nonce_signature": STANDARD.encode(self.key.sign(&nonce_message(&nonce))),
        })
        .to_string()
    }
}

/// `POST /v1/attest`; the session token.
async fn attest(client: &reqwest::Client, base: &str, evidence: String) -> Result<String, String> {
    let resp = client
        .post(format!("{base}/v1/attest"))
        .header("content-type", "application/json")
        .body(evidence)
        .send()
        .await
        .map_err(|e| format!("attest: {e}"))?;
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.map_err(|e| format!("attest: {e}"))?;
    if status != 200 {
        return Err(format!(
            "attest: {status} {}",
            String::from_utf8_lossy(&bytes)
        ));
    }
    let body: Value = serde_json::from_slice(&bytes).map_err(|e| format!("attest: {e}"))?;
    body["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("attest: no token in {body}"))
}

/// `POST /v1/secrets/kv/app/db` with a fresh proof of possession.
async fn release_secret(
    client: &reqwest::Client,
    base: &str,
    key: &Ed25519KeyPair,
    token: &str,
    rng: &SystemRandom,
) -> Result<(), String> {
    let body = "{}";
    let mut id = [0u8; 16];
    rng.fill(&mut id).map_err(|_| "rng".to_owned())?;
    let proof = PopProof::sign(
        key,
        &PopRequest {
            method: "POST",
            path: SECRET_PATH,
            body: body.as_bytes(),
            token: token.as_bytes(),
        },
        now_ms(),
        id,
    );
    let resp = client
        .post(format!("{base}{SECRET_PATH}"))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .header("keyward-pop", proof)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("secret: {e}"))?;
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.map_err(|e| format!("secret: {e}"))?;
    if status != 200 {
        return Err(format!(
            "secret: {status} {}",
            String::from_utf8_lossy(&bytes)
        ));
    }
    // The secret really came back (not an empty 200).
    if !bytes.windows(7).any(|w| w == b"hunter2") {
        return Err(format!(
            "secret: unexpected body {}",
            String::from_utf8_lossy(&bytes)
        ));
    }
    Ok(())
}

/// Per-request latencies (µs) by stage, and the count of completed iterations.
#[derive(Default)]
struct Samples {
    stages: Vec<Vec<u32>>,
    iterations: u64,
    /// Successful iterations including warm-up.
    all_iterations: u64,
}

/// What one iteration reports: latency per stage, or `None` when its input
/// pool ran dry.
type Iteration = std::pin::Pin<
    Box<dyn std::future::Future<Output = Option<Result<Vec<Duration>, String>>> + Send>,
>;

struct PhaseResult {
    name: &'static str,
    stage_names: Vec<&'static str>,
    samples: Samples,
    elapsed: Duration,
    errors: u64,
    /// Distinct error answers and how often each came.
    error_kinds: Vec<(String, u64)>,
    server_cpu_secs: f64,
    client_cpu_secs: f64,
    ended_early: bool,
    /// Audit records written during the whole phase (warm-up included).
    audit_records: f64,
    /// `perf stat` counts of the server over the measured window
    /// (`KEYWARD_BENCH_STAT`), event name and count.
    stat: Vec<(String, u64)>,
}

/// What `KEYWARD_BENCH_STAT=1` counts on the server: the syncs of sled and
/// the audit log, the writes, and the context switches between them.
const STAT_EVENTS: &str = "context-switches,syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync,\
syscalls:sys_enter_sync_file_range,syscalls:sys_enter_pwrite64,syscalls:sys_enter_write,\
syscalls:sys_enter_writev,syscalls:sys_enter_futex";

/// Parses `perf stat -x,` output: `count,unit,event,…` per line.
fn parse_perf_stat(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(',');
            let count = fields.next()?.trim().parse::<u64>().ok()?;
            let event = fields.nth(1)?.trim();
            Some((
                event.trim_start_matches("syscalls:sys_enter_").to_owned(),
                count,
            ))
        })
        .collect()
}

/// Runs `op` on `workers` concurrent tasks: `warmup` unrecorded, then
/// `measure` recorded (or until `op` reports its pool dry).
async fn run_phase(
    name: &'static str,
    stage_names: Vec<&'static str>,
    settings: &Settings,
    server_pid: u32,
    audit_log: &Path,
    op: Arc<dyn Fn() -> Iteration + Send + Sync>,
) -> PhaseResult {
    let audit_before = line_count(audit_log);
    let start = Instant::now();
    let measure_from = start + settings.warmup;
    let measure_until = measure_from + settings.measure;
    let stages = stage_names.len();
    let mut tasks = tokio::task::JoinSet::new();
    let errors = Arc::new(Mutex::new(std::collections::BTreeMap::<String, u64>::new()));
    let dry = Arc::new(Mutex::new(None::<Instant>));
    for _ in 0..settings.workers {
        let op = Arc::clone(&op);
        let errors = Arc::clone(&errors);
        let dry = Arc::clone(&dry);
        tasks.spawn(async move {
            let mut local = Samples {
                stages: vec![Vec::new(); stages],
                iterations: 0,
                all_iterations: 0,
            };
            loop {
                let began = Instant::now();
                if began >= measure_until {
                    break;
                }
                match op().await {
                    None => {
                        let mut d = dry.lock().unwrap();
                        if d.is_none() {
                            *d = Some(Instant::now());
                        }
                        break;
                    }
                    Some(Err(e)) => {
                        if began >= measure_from {
                            let kind: String = e.chars().take(120).collect();
                            *errors.lock().unwrap().entry(kind).or_default() += 1;
                        }
                    }
                    Some(Ok(latencies)) => {
                        local.all_iterations += 1;
                        if began >= measure_from && Instant::now() <= measure_until {
                            local.iterations += 1;
                            for (i, l) in latencies.into_iter().enumerate() {
                                local.stages[i]
                                    .push(u32::try_from(l.as_micros()).unwrap_or(u32::MAX));
                            }
                        }
                    }
                }
            }
            local
        });
    }
    let ticks = clock_ticks_per_sec() as f64;
    // CPU counters are read at the start and end of the measured window.
    let sleep_until = tokio::time::Instant::from_std(measure_from);
    tokio::time::sleep_until(sleep_until).await;
    let server_cpu0 = cpu_ticks(server_pid);
    let client_cpu0 = cpu_ticks(std::process::id());
    let perf = std::env::var_os("KEYWARD_BENCH_PERF").map(|dir| {
        let out = PathBuf::from(dir).join(format!("perf-{}.data", name.replace(['+', ' '], "-")));
        // Frame-pointer call graphs stop at the first frame built without
        // them (most of a release build); `dwarf` unwinds the whole stack.
        let call_graph =
            std::env::var("KEYWARD_BENCH_PERF_CALL_GRAPH").unwrap_or_else(|_| "fp".to_owned());
        let freq = if call_graph.starts_with("dwarf") {
            "97"
        } else {
            "499"
        };
        Command::new("perf")
            .args(["record", "-F", freq, "--call-graph", &call_graph, "-o"])
            .arg(out)
            .args(["-p", &server_pid.to_string(), "--", "sleep"])
            .arg(settings.measure.as_secs().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    });
    let stat_file = std::env::var_os("KEYWARD_BENCH_STAT").map(|_| {
        let out =
            std::env::temp_dir().join(format!("keyward-bench-stat-{}.csv", std::process::id()));
        let child = Command::new("perf")
            .args(["stat", "-x,", "-e", STAT_EVENTS, "-o"])
            .arg(&out)
            .args(["-p", &server_pid.to_string(), "--", "sleep"])
            .arg(settings.measure.as_secs().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        (child, out)
    });
    let mut samples = Samples {
        stages: vec![Vec::new(); stages],
        iterations: 0,
        all_iterations: 0,
    };
    let mut all_iterations = 0u64;
    while let Some(local) = tasks.join_next().await {
        let local = local.unwrap();
        samples.iterations += local.iterations;
        all_iterations += local.all_iterations;
        for (all, mine) in samples.stages.iter_mut().zip(local.stages) {
            all.extend(mine);
        }
    }
    let end = Instant::now();
    let server_cpu = cpu_ticks(server_pid) - server_cpu0;
    let client_cpu = cpu_ticks(std::process::id()) - client_cpu0;
    if let Some(mut p) = perf {
        let _ = p.wait();
    }
    let stat = stat_file.map_or_else(Vec::new, |(mut child, out)| {
        let _ = child.wait();
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let _ = std::fs::remove_file(&out);
        parse_perf_stat(&text)
    });
    let dry_at = *dry.lock().unwrap();
    let window_end = dry_at.map_or(measure_until.min(end), |d| d.min(measure_until));
    let error_kinds: Vec<(String, u64)> = errors
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    let errors = error_kinds.iter().map(|(_, n)| n).sum();
    for s in &mut samples.stages {
        s.sort_unstable();
    }
    PhaseResult {
        name,
        stage_names,
        samples,
        elapsed: window_end.saturating_duration_since(measure_from),
        errors,
        error_kinds,
        server_cpu_secs: server_cpu as f64 / ticks,
        client_cpu_secs: client_cpu as f64 / ticks,
        ended_early: dry_at.is_some_and(|d| d < measure_until),
        audit_records: (line_count(audit_log) - audit_before) as f64 / all_iterations.max(1) as f64,
        stat,
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

fn report(results: &[PhaseResult], workers: usize) {
    println!();
    println!(
        "| phase ({workers} clients) | iterations | window s | rate /s | request | p50 ms | p99 ms | max ms | server CPU µs/iter | client CPU µs/iter | audit records/iter | errors |"
    );
    println!("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in results {
        let secs = r.elapsed.as_secs_f64();
        let iters = r.samples.iterations.max(1) as f64;
        for (i, (stage, lat)) in r.stage_names.iter().zip(&r.samples.stages).enumerate() {
            let lead = if i == 0 {
                format!(
                    "| {}{} | {} | {:.2} | {:.0} ",
                    r.name,
                    if r.ended_early { " (pool ran dry)" } else { "" },
                    r.samples.iterations,
                    secs,
                    r.samples.iterations as f64 / secs
                )
            } else {
                "| | | | ".to_owned()
            };
            let cpu = if i == 0 {
                format!(
                    "{:.0} | {:.0} | {:.1} | {}",
                    r.server_cpu_secs * 1e6 / iters,
                    r.client_cpu_secs * 1e6 / iters,
                    r.audit_records,
                    r.errors
                )
            } else {
                " | | |".to_owned()
            };
            println!(
                "{lead}| {stage} | {:.2} | {:.2} | {:.2} | {cpu} |",
                percentile(lat, 50.0),
                percentile(lat, 99.0),
                percentile(lat, 100.0),
            );
        }
        for (kind, n) in &r.error_kinds {
            println!("  {}: {n} × {kind}", r.name);
        }
    }
    for r in results.iter().filter(|r| !r.stat.is_empty()) {
        // perf stat covers the measured window (or less, if the pool ran
        // dry): per second of that window, and per measured iteration.
        let secs = r.elapsed.as_secs_f64().max(1e-9);
        let iters = r.samples.iterations.max(1) as f64;
        let counts: Vec<String> = r
            .stat
            .iter()
            .map(|(event, n)| {
                format!(
                    "{event} {:.0}/s ({:.2}/iter)",
                    *n as f64 / secs,
                    *n as f64 / iters
                )
            })
            .collect();
        println!("  {} server syscalls: {}", r.name, counts.join(", "));
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would run this
    // too, so it only runs when asked for as a bench.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("release bench: run with `cargo bench -p keyward-tests --bench release`");
        return;
    }
    let settings = Settings::from_env();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(settings.workers * 2)
        .build()
        .unwrap();
    eprintln!("release bench: setting up registry, swtpm and keyward server…");
    let setup = setup(&client).await;
    let base = setup.server.base.clone();
    let pid = setup.server.pid();
    let mut results = Vec::new();

    // Challenges: measured alone; their nonces feed the evidence pool.
    let nonces = Arc::new(Mutex::new(Vec::<String>::new()));
    let challenge_op: Arc<dyn Fn() -> Iteration + Send + Sync> = {
        let client = client.clone();
        let base = base.clone();
        let nonces = Arc::clone(&nonces);
        Arc::new(move || {
            let client = client.clone();
            let base = base.clone();
            let nonces = Arc::clone(&nonces);
            Box::pin(async move {
                let began = Instant::now();
                let result = async {
                    let resp = client
                        .post(format!("{base}/v1/attest/challenge"))
                        .send()
                        .await
                        .map_err(|e| format!("challenge: {e}"))?;
                    let status = resp.status().as_u16();
                    let bytes = resp.bytes().await.map_err(|e| format!("challenge: {e}"))?;
                    if status != 200 {
                        return Err(format!("challenge: {status}"));
                    }
                    let body: Value =
                        serde_json::from_slice(&bytes).map_err(|e| format!("challenge: {e}"))?;
                    let nonce = body["nonce"].as_str().ok_or("challenge: no nonce")?;
                    nonces.lock().unwrap().push(nonce.to_owned());
                    Ok(vec![began.elapsed()])
                }
                .await;
                Some(result)
            })
        })
    };
    results.push(
        run_phase(
            "challenge",
            vec!["challenge"],
            &settings,
            pid,
            &setup.audit_path,
            challenge_op,
        )
        .await,
    );

    // Evidence pool: one swtpm quote per nonce, before the timed run.
    let nonces = std::mem::take(&mut *nonces.lock().unwrap());
    let started = Instant::now();
    let mut pool = Vec::new();
    for nonce in nonces.iter().take(settings.pool_max) {
        if started.elapsed() >= Duration::from_secs(settings.pool_secs) {
            break;
        }
        pool.push(setup.evidence(nonce));
    }
    let quote_ms = started.elapsed().as_secs_f64() * 1000.0 / pool.len().max(1) as f64;
    eprintln!(
        "release bench: {} evidence documents quoted in {:.1} s ({quote_ms:.2} ms/quote, ECC P-256 AK)",
        pool.len(),
        started.elapsed().as_secs_f64()
    );
    let pool_size = pool.len();

    // (a) attest + secret, one iteration per evidence document.
    let pool = Arc::new(pool);
    let next = Arc::new(AtomicUsize::new(0));
    let rng = Arc::new(SystemRandom::new());
    let attest_op: Arc<dyn Fn() -> Iteration + Send + Sync> = {
        let client = client.clone();
        let base = base.clone();
        let key = Arc::clone(&setup.key);
        let rng = Arc::clone(&rng);
        Arc::new(move || {
            let client = client.clone();
            let base = base.clone();
            let key = Arc::clone(&key);
            let rng = Arc::clone(&rng);
            let pool = Arc::clone(&pool);
            let index = next.fetch_add(1, Ordering::Relaxed);
            Box::pin(async move {
                let evidence = pool.get(index)?.clone();
                let began = Instant::now();
                let result = async {
                    let (status, body) =
                        call(&client, &base, "POST", "/v1/attest/challenge", None, None).await;
                    if status != 200 || body["nonce"].as_str().is_none() {
                        return Err(format!("challenge: {status} {body}"));
                    }
                    let challenged = began.elapsed();
                    let token = attest(&client, &base, evidence).await?;
                    let attested = began.elapsed();
                    release_secret(&client, &base, &key, &token, &rng).await?;
                    let total = began.elapsed();
                    Ok(vec![
                        challenged,
                        attested - challenged,
                        total - attested,
                        total,
                    ])
                }
                .await;
                Some(result)
            })
        })
    };
    results.push(
        run_phase(
            "challenge+attest+secret",
            vec!["challenge", "attest", "secret", "iteration"],
            &settings,
            pid,
            &setup.audit_path,
            attest_op,
        )
        .await,
    );

    // (b) one session, many releases.
    // Retried: right after phase (a) the audit sink may still be shedding.
    let mut token = None;
    for _ in 0..20 {
        let (status, challenge) =
            call(&client, &base, "POST", "/v1/attest/challenge", None, None).await;
        assert_eq!(status, 200, "{challenge}");
        let evidence = setup.evidence(challenge["nonce"].as_str().unwrap());
        match attest(&client, &base, evidence).await {
            Ok(t) => {
                token = Some(t);
                break;
            }
            Err(e) => {
                eprintln!("release bench: session attest refused ({e}); retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    let token = Arc::new(token.expect("no session after 20 attempts"));
    let session_op: Arc<dyn Fn() -> Iteration + Send + Sync> = {
        let client = client.clone();
        let base = base.clone();
        let key = Arc::clone(&setup.key);
        Arc::new(move || {
            let client = client.clone();
            let base = base.clone();
            let key = Arc::clone(&key);
            let rng = Arc::clone(&rng);
            let token = Arc::clone(&token);
            Box::pin(async move {
                let began = Instant::now();
                let result = release_secret(&client, &base, &key, &token, &rng)
                    .await
                    .map(|()| vec![began.elapsed()]);
                Some(result)
            })
        })
    };
    results.push(
        run_phase(
            "session secret",
            vec!["secret"],
            &settings,
            pid,
            &setup.audit_path,
            session_op,
        )
        .await,
    );

    let rss = vm_rss_kib(pid);
    let fsync = fsync_us(setup.audit_path.parent().unwrap());
    report(&results, settings.workers);
    println!();
    println!(
        "evidence pool: {pool_size} documents, {quote_ms:.2} ms per swtpm quote; server RSS after the run: {:.1} MiB",
        rss as f64 / 1024.0
    );
    println!(
        "write + fdatasync of one 600-byte line on the audit log's file system: {fsync:.0} µs median (serialised, that allows {:.0} records/s)",
        1e6 / fsync
    );
    let full = &results[1];
    let per_iter = |cpu: f64| cpu * 1e6 / full.samples.iterations.max(1) as f64;
    let (server_us, client_us) = (
        per_iter(full.server_cpu_secs),
        per_iter(full.client_cpu_secs),
    );
    println!(
        "full attested release: {server_us:.0} µs server + {client_us:.0} µs load-generator CPU per iteration → at most {:.0}/s on 2 cores shared as here, {:.0}/s if the server had both to itself",
        2e6 / (server_us + client_us),
        2e6 / server_us
    );
    let total_errors: u64 = results.iter().map(|r| r.errors).sum();
    if total_errors > 0 {
        println!(
            "NOTE: {total_errors} requests were answered with errors (listed under the table); rates count successes only"
        );
    }
}
