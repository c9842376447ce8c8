//! Restart-to-ready time and memory of a real `keyward server` holding
//! 100k hosts and 1M live leases (issue 6, deliverable 8, target c). Run by
//! `scripts/bench/release.sh`; figures go to docs/benchmarks.md.
//!
//! What it does:
//! 1. starts `target/release/keyward server` on a fresh data directory,
//!    initialises it over HTTP (one Shamir share), stops it (SIGTERM, by pid);
//! 2. re-runs this binary as a child (`KEYWARD_RESTART_FILL`), which opens
//!    the data directory through the vault library (`SledStorage`,
//!    `Seal::open`, unseal with the share), and writes the host records
//!    (sealed by the barrier, `h/<id>` and `ek/<hash>` as `HostStore` does)
//!    and the leases (record, expiry key and basis keys, as
//!    `release::lease::insert` does) in batches near `MAX_BATCH_OPS`,
//!    several batches in flight so group commit shares fsyncs. A child
//!    process, so sled's directory lock is surely released before step 3;
//! 3. starts the server again and times spawn → first HTTP answer
//!    (`GET /v1/sys/health`, sealed) and spawn → unsealed (one
//!    `POST /v1/sys/unseal`), reading VmRSS from /proc at each point and
//!    after a lease lookup and a host read that prove the data is there.
//!    Step 3 is repeated; each run is printed.
//!
//! It asserts nothing about speed or size (benchmarks never do).
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

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use keyward_vault::barrier::{Barrier, BarrierLimits};
use keyward_vault::hosts::{HostRecord, HostState};
use keyward_vault::release::lease::{LeaseRecord, Revocation};
use keyward_vault::seal::{Seal, UnsealShare};
use keyward_vault::storage::{
    Keyspace, MAX_BATCH_OPS, SledConfig, SledStorage, Storage, WriteBatch, lease_expiry_key,
};
use serde_json::{Value, json};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn keyward_binary() -> PathBuf {
    std::env::var_os("KEYWARD_BIN").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/keyward"),
        PathBuf::from,
    )
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn vm_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                dir_bytes(&e.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

/// `keyward server` as a child process.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(config: &Path, port: u16, log: &Path) -> Self {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
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
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Polls `GET /v1/sys/health` until it answers; the status it answered.
    async fn wait_answering(&mut self, client: &reqwest::Client) -> u16 {
        let start = Instant::now();
        loop {
            if let Ok(r) = client
                .get(format!("{}/v1/sys/health", self.base))
                .send()
                .await
            {
                return r.status().as_u16();
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("keyward server exited early: {status}");
            }
            assert!(start.elapsed() < Duration::from_secs(120), "server not up");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// SIGTERM by pid, then wait for exit.
    fn stop(mut self) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        panic!("keyward server ignored SIGTERM for 30 s");
    }
}

async fn call(
    client: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
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

fn host_id(i: u64) -> String {
    format!("{:032x}", 0x00b0_0000_0000_u64 + i)
}

fn lease_id(i: u64) -> String {
    format!("identity/token/{:032x}", 0x0001_ea5e_0000_0000_u64 + i)
}

/// Writes `hosts` host records and `leases` leases into the vault at
/// `data`, unsealed with `share` (hex). Runs in the child process.
async fn fill(data: &Path, share: &str, hosts: u64, leases: u64) {
    let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(&SledConfig::new(data)).unwrap());
    let seal = Seal::open(Arc::clone(&storage), BarrierLimits::default())
        .await
        .unwrap();
    seal.submit_share(UnsealShare::from_hex(share).unwrap())
        .await
        .unwrap();
    let barrier: Arc<Barrier> = Arc::clone(seal.barrier());
    let in_flight = 8u64;
    let started = Instant::now();

    // Hosts: two keys each (`h/<id>` sealed record, `ek/<hash>` → id).
    let per_batch = (MAX_BATCH_OPS / 2) as u64;
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..in_flight {
        let storage = Arc::clone(&storage);
        let barrier = Arc::clone(&barrier);
        tasks.spawn(async move {
            let mut i = worker * per_batch;
            while i < hosts {
                let mut batch = WriteBatch::new();
                for j in i..(i + per_batch).min(hosts) {
                    let id = host_id(j);
                    let ek_hash =
                        hex::encode(ring::digest::digest(&ring::digest::SHA256, id.as_bytes()));
                    let record = HostRecord {
                        id: id.clone(),
                        name: format!("node-{j}"),
                        ek_hash: ek_hash.clone(),
                        ek_certificate: None,
                        // An ECC P-256 AK's TPM2B_PUBLIC is about this size.
                        ak_public: "A".repeat(120),
                        ak_name: format!("000b{ek_hash}"),
                        labels: BTreeMap::from([("env".to_owned(), "prod".to_owned())]),
                        boot_policy: None,
                        state: HostState::Active,
                        auto_approved_by: None,
                        enrolled_at: now_ms() / 1000,
                        last_attested_at: None,
                        revoked_at: None,
                    };
                    let key = format!("h/{id}").into_bytes();
                    let plain = serde_json::to_vec(&record).unwrap();
                    let sealed = barrier
                        .encrypt(Keyspace::Hosts, &key, &plain)
                        .await
                        .unwrap();
                    batch.put(Keyspace::Hosts, &key, &sealed).unwrap();
                    batch
                        .put(
                            Keyspace::Hosts,
                            format!("ek/{ek_hash}").as_bytes(),
                            id.as_bytes(),
                        )
                        .unwrap();
                }
                storage.commit(batch).await.unwrap();
                i += per_batch * in_flight;
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    eprintln!(
        "restart bench: {hosts} hosts written in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // Leases: record + expiry key + four basis keys each, as lease::insert.
    let started = Instant::now();
    let per_batch = (MAX_BATCH_OPS / 6) as u64;
    let now = now_ms();
    let image = format!("sha256:{}", "1".repeat(64));
    let model = format!("sha256:{}", "2".repeat(64));
    for worker in 0..in_flight {
        let storage = Arc::clone(&storage);
        let image = image.clone();
        let model = model.clone();
        tasks.spawn(async move {
            let mut i = worker * per_batch;
            while i < leases {
                let mut batch = WriteBatch::new();
                for j in i..(i + per_batch).min(leases) {
                    // Live for 1-2 h, spread so the expiry index is realistic.
                    let expires = now + 3_600_000 + j % 3_600_000;
                    let record = LeaseRecord {
                        id: lease_id(j),
                        path: "identity/token".to_owned(),
                        session_id: format!("{:064x}", j / 10),
                        host_id: host_id(j % hosts.max(1)),
                        image_digest: image.clone(),
                        model_digest: model.clone(),
                        instance_id: format!("agent-{}", j / 10),
                        on_behalf_of: None,
                        request_id: format!("{j:032x}"),
                        issued_at_ms: now,
                        expires_at_ms: expires,
                        max_expires_at_ms: expires + 86_400_000,
                        renewable: true,
                        revocation: Revocation::Identity {
                            jti: format!("{j:032x}"),
                            expires_at: expires / 1000,
                        },
                        revoke_attempts: 0,
                        last_error: None,
                        revoking: false,
                    };
                    let id = record.id.as_bytes();
                    batch
                        .put(Keyspace::Leases, id, &serde_json::to_vec(&record).unwrap())
                        .unwrap();
                    batch
                        .put(Keyspace::LeaseExpiry, &lease_expiry_key(expires, id), &[])
                        .unwrap();
                    for basis in [
                        format!("h/{}/{}", record.host_id, record.id),
                        format!("a/{}/{}", record.image_digest, record.id),
                        format!("a/{}/{}", record.model_digest, record.id),
                        format!("s/{}/{}", record.session_id, record.id),
                    ] {
                        batch
                            .put(Keyspace::LeaseBasis, basis.as_bytes(), &[])
                            .unwrap();
                    }
                }
                storage.commit(batch).await.unwrap();
                i += per_batch * in_flight;
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    eprintln!(
        "restart bench: {leases} leases written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    drop(barrier);
    drop(seal);
    drop(storage);
}

struct Run {
    answering: Duration,
    unsealed: Duration,
    rss_answering_kib: u64,
    rss_unsealed_kib: u64,
    rss_after_reads_kib: u64,
    hwm_kib: u64,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if let Some(dir) = std::env::var_os("KEYWARD_RESTART_FILL") {
        let share = std::env::var("KEYWARD_RESTART_SHARE").unwrap();
        fill(
            Path::new(&dir),
            &share,
            env_u64("KEYWARD_RESTART_HOSTS", 100_000),
            env_u64("KEYWARD_RESTART_LEASES", 1_000_000),
        )
        .await;
        return;
    }
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("restart bench: run with `cargo bench -p keyward-tests --bench restart`");
        return;
    }
    let hosts = env_u64("KEYWARD_RESTART_HOSTS", 100_000);
    let leases = env_u64("KEYWARD_RESTART_LEASES", 1_000_000);
    let runs = env_u64("KEYWARD_RESTART_RUNS", 3);
    let client = reqwest::Client::new();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("keyward.toml");
    let log = dir.path().join("server.log");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n\n[audit]\npath = \"{}\"\n",
            data.display(),
            dir.path().join("audit.log").display()
        ),
    )
    .unwrap();

    // 1. Initialise.
    let mut server = Server::start(&config, port, &log);
    server.wait_answering(&client).await;
    let (status, init) = call(
        &client,
        &server.base,
        reqwest::Method::POST,
        "/v1/sys/init",
        None,
        Some(&json!({"secret_shares": 1, "secret_threshold": 1})),
    )
    .await;
    assert_eq!(status, 200, "{init}");
    let share = init["keys"][0].as_str().unwrap().to_owned();
    let root = init["root_token"].as_str().unwrap().to_owned();
    let empty_rss = vm_kib(server.pid(), "VmRSS:");
    server.stop();

    // 2. Fill through the library, in a child process.
    eprintln!("restart bench: writing {hosts} hosts and {leases} leases…");
    let started = Instant::now();
    let status = Command::new(std::env::current_exe().unwrap())
        .env("KEYWARD_RESTART_FILL", &data)
        .env("KEYWARD_RESTART_SHARE", &share)
        .env("KEYWARD_RESTART_HOSTS", hosts.to_string())
        .env("KEYWARD_RESTART_LEASES", leases.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "fill failed: {status}");
    let fill_secs = started.elapsed().as_secs_f64();
    let data_bytes = dir_bytes(&data);

    // 3. Restart, time, measure.
    let mut results = Vec::new();
    for _ in 0..runs {
        let spawned = Instant::now();
        let mut server = Server::start(&config, port, &log);
        let health = server.wait_answering(&client).await;
        let answering = spawned.elapsed();
        let rss_answering_kib = vm_kib(server.pid(), "VmRSS:");
        assert_eq!(health, 503, "a restarted vault starts sealed");
        let (status, body) = call(
            &client,
            &server.base,
            reqwest::Method::POST,
            "/v1/sys/unseal",
            None,
            Some(&json!({ "key": share })),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = call(
            &client,
            &server.base,
            reqwest::Method::GET,
            "/v1/sys/health",
            None,
            None,
        )
        .await;
        assert_eq!(status, 200, "not unsealed: {body}");
        let unsealed = spawned.elapsed();
        let rss_unsealed_kib = vm_kib(server.pid(), "VmRSS:");
        // The data is there: the last lease and the last host read back.
        let (status, body) = call(
            &client,
            &server.base,
            reqwest::Method::POST,
            "/v1/sys/leases/lookup",
            Some(&root),
            Some(&json!({ "lease_id": lease_id(leases - 1) })),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = call(
            &client,
            &server.base,
            reqwest::Method::GET,
            &format!("/v1/hosts/{}", host_id(hosts - 1)),
            Some(&root),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let rss_after_reads_kib = vm_kib(server.pid(), "VmRSS:");
        let hwm_kib = vm_kib(server.pid(), "VmHWM:");
        server.stop();
        results.push(Run {
            answering,
            unsealed,
            rss_answering_kib,
            rss_unsealed_kib,
            rss_after_reads_kib,
            hwm_kib,
        });
    }

    println!();
    println!(
        "restart with {hosts} hosts and {leases} live leases (data dir {:.0} MiB, filled in {fill_secs:.1} s; empty vault RSS {:.1} MiB)",
        data_bytes as f64 / (1024.0 * 1024.0),
        mib(empty_rss)
    );
    println!();
    println!(
        "| run | spawn → answering ms | spawn → unsealed ms | RSS answering MiB | RSS unsealed MiB | RSS after reads MiB | peak RSS (VmHWM) MiB |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for (i, r) in results.iter().enumerate() {
        println!(
            "| {} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} |",
            i + 1,
            r.answering.as_secs_f64() * 1000.0,
            r.unsealed.as_secs_f64() * 1000.0,
            mib(r.rss_answering_kib),
            mib(r.rss_unsealed_kib),
            mib(r.rss_after_reads_kib),
            mib(r.hwm_kib),
        );
    }
}
