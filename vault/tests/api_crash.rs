//! Crash test: `keyward server` (child process, temp dir, free loopback
//! port) is SIGKILLed by PID in the middle of a stream of token creations
//! and signing-policy PUTs from concurrent clients. After a restart on the
//! same data directory and audit file, and an unseal with the shares, every
//! write that was acknowledged (200) is present, the audit chain verifies,
//! and the vault unseals again.
//!
//! The audit log on reopen: each record is one `write(2)` to an `O_APPEND`
//! regular file followed by `fdatasync`, and a signal cannot split a write
//! to a regular file, so a SIGKILL leaves only complete lines; the chain of
//! those verifies in full. A torn last line can only come from a power
//! loss or a failing disk; its request was never acknowledged.
//! [`a_torn_audit_tail_is_recovered_on_start`] pins what happens then:
//! `keyward audit verify` (read-only) names the line as an unterminated,
//! recoverable tail; the server cuts it off and appends a `recovery` record
//! with the byte count and SHA-256, after which the log verifies; and a
//! corrupted *complete* line still makes the server refuse to start.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::{Server, call, free_port, spawn, start_server};

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_keyward");
/// Concurrent writers.
const WRITERS: usize = 4;
/// Acknowledged writes to wait for before the kill.
const ACKED_BEFORE_KILL: usize = 200;
const ISSUER: &str = "https://token.actions.githubusercontent.com";

fn write_config(dir: &Path, audit: &Path) -> (std::path::PathBuf, String) {
    let port = free_port();
    let config = dir.join("keyward.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n[audit]\npath = \"{}\"\n",
            dir.join("data").display(),
            audit.display()
        ),
    )
    .unwrap();
    (config, format!("http://127.0.0.1:{port}"))
}

/// Starts a server and waits until it answers seal status.
async fn start(http: &reqwest::Client, dir: &Path) -> (Server, String) {
    let (config, addr) = write_config(dir, &dir.join("audit.log"));
    start_server(http, dir, &config, addr).await
}

/// A write the server acknowledged with 200.
#[derive(Debug)]
enum Ack {
    Token(String),
    Policy { name: String, subject: String },
}

fn policy(subject: &str) -> Value {
    json!({"kind": "image", "predicate_types": ["https://sigstore.dev/cosign/sign/v1"],
        "identities": [{"issuer": ISSUER, "subject": subject}]})
}

/// Writes until the server goes away; records every acknowledged write.
async fn writer(
    http: reqwest::Client,
    addr: String,
    root: String,
    id: usize,
    acked: Arc<Mutex<Vec<Ack>>>,
    count: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> usize {
    let mut refused = 0;
    for i in 0..100_000usize {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let result = if i % 2 == 0 {
            call(
                &http,
                reqwest::Method::POST,
                format!("{addr}/v1/auth/token/create"),
                Some(&root),
                Some(json!({"roles": ["release"]})),
            )
            .await
            .map(|(status, body)| {
                (status == 200).then(|| Ack::Token(body["token"].as_str().unwrap().to_owned()))
            })
        } else {
            let name = format!("crash-{id}-{i}");
            let subject =
                format!("https://github.com/acme/app/.github/workflows/{name}.yml@refs/heads/main");
            call(
                &http,
                reqwest::Method::PUT,
                format!("{addr}/v1/policies/signing/image/{name}"),
                Some(&root),
                Some(policy(&subject)),
            )
            .await
            .map(|(status, _)| (status == 200).then_some(Ack::Policy { name, subject }))
        };
        match result {
            Ok(Some(ack)) => {
                acked.lock().unwrap().push(ack);
                count.fetch_add(1, Ordering::SeqCst);
            }
            // 429/503 under load: not acknowledged, nothing to check.
            Ok(None) => refused += 1,
            // The server is gone (killed mid-request or refused).
            Err(_) => break,
        }
    }
    refused
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_stream_loses_no_acknowledged_write() {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (mut server, addr) = start(&http, dir.path()).await;

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

    let acked = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..WRITERS)
        .map(|id| {
            tokio::spawn(writer(
                http.clone(),
                addr.clone(),
                root.clone(),
                id,
                Arc::clone(&acked),
                Arc::clone(&count),
                Arc::clone(&stop),
            ))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while count.load(Ordering::SeqCst) < ACKED_BEFORE_KILL {
        assert!(Instant::now() < deadline, "too few writes acknowledged");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // SIGKILL by PID while the writers are still sending.
    let child = server.0.take().unwrap();
    let pid = child.id();
    server.0 = Some(child);
    let killed = Command::new("kill")
        .arg("-KILL")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let status = server.0.as_mut().unwrap().wait().unwrap();
    assert_eq!(status.signal(), Some(9), "{status}");
    drop(server);
    stop.store(true, Ordering::SeqCst);
    let mut refused = 0;
    for task in tasks {
        refused += task.await.unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(acked.len() >= ACKED_BEFORE_KILL);
    eprintln!(
        "{} writes acknowledged before the SIGKILL, {refused} refused (429/503)",
        acked.len()
    );

    // Restart on the same data directory and audit file.
    let (server, addr) = start(&http, dir.path()).await;
    let (_, s) = call(
        &http,
        reqwest::Method::GET,
        format!("{addr}/v1/sys/seal-status"),
        None,
        None,
    )
    .await
    .unwrap();
    assert_eq!(s["sealed"], true, "{s}");
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

    let (mut tokens, mut policies) = (0, 0);
    for ack in &acked {
        match ack {
            Ack::Token(token) => {
                let (status, body) = call(
                    &http,
                    reqwest::Method::GET,
                    format!("{addr}/v1/auth/token/lookup-self"),
                    Some(token),
                    None,
                )
                .await
                .unwrap();
                assert_eq!(status, 200, "acknowledged token lost: {body}");
                assert_eq!(body["roles"], json!(["release"]));
                tokens += 1;
            }
            Ack::Policy { name, subject } => {
                let (status, body) = call(
                    &http,
                    reqwest::Method::GET,
                    format!("{addr}/v1/policies/signing/image/{name}"),
                    Some(&root),
                    None,
                )
                .await
                .unwrap();
                assert_eq!(status, 200, "acknowledged policy {name} lost: {body}");
                assert_eq!(body["policy"]["identities"][0]["subject"], subject.as_str());
                policies += 1;
            }
        }
    }
    assert!(
        tokens > 0 && policies > 0,
        "{tokens} tokens, {policies} policies"
    );

    // The server still writes after the crash, and its shutdown is clean.
    let (status, _) = call(
        &http,
        reqwest::Method::POST,
        format!("{addr}/v1/auth/token/create"),
        Some(&root),
        Some(json!({"roles": ["auditor"]})),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    server.stop();

    let verify = Command::new(BIN)
        .args(["audit", "verify"])
        .arg(dir.path().join("audit.log"))
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

fn audit_verify(audit: &Path) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args(["audit", "verify"])
        .arg(audit)
        .output()
        .unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Starts the server over `dir` and waits for it to exit on its own.
async fn refused_start(dir: &Path) -> String {
    let (config, _) = write_config(dir, &dir.join("audit.log"));
    let mut child = Server(Some(spawn(dir, &config)));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.0.as_mut().unwrap().try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "server started over a broken audit log"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    child.0 = None;
    assert!(!status.success());
    std::fs::read_to_string(dir.join("server.err")).unwrap()
}

#[tokio::test]
async fn a_torn_audit_tail_is_recovered_on_start() {
    let http = reqwest::Client::new();
    let dir = tempfile::tempdir().unwrap();
    let (server, addr) = start(&http, dir.path()).await;
    let (status, _) = call(
        &http,
        reqwest::Method::POST,
        format!("{addr}/v1/sys/init"),
        None,
        Some(json!({"secret_shares": 1, "secret_threshold": 1})),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    server.stop();

    // What a power loss mid-write could leave: a record without its newline.
    let audit = dir.path().join("audit.log");
    let lines = std::fs::read_to_string(&audit).unwrap().lines().count();
    let tail: &[u8] = b"{\"type\":\"record\",\"seq\":";
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&audit)
        .unwrap();
    std::io::Write::write_all(&mut file, tail).unwrap();
    drop(file);

    let (code, text) = audit_verify(&audit);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "line {}: unterminated last line: recoverable by restarting the server",
            lines + 1
        )),
        "{text}"
    );

    // The server starts over it, cutting the tail and recording the cut.
    let (server, addr) = start(&http, dir.path()).await;
    let (status, s) = call(
        &http,
        reqwest::Method::GET,
        format!("{addr}/v1/sys/seal-status"),
        None,
        None,
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{s}");
    server.stop();
    let err = std::fs::read_to_string(dir.path().join("server.err")).unwrap();
    assert!(err.contains(&format!("({} bytes", tail.len())), "{err}");

    let (code, text) = audit_verify(&audit);
    assert_eq!(code, Some(0), "{text}");
    let text = std::fs::read_to_string(&audit).unwrap();
    let recovery: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["type"] == "recovery")
        .collect();
    assert_eq!(recovery.len(), 1, "{text}");
    assert_eq!(recovery[0]["line"], lines + 1);
    assert_eq!(recovery[0]["truncated_bytes"], tail.len());
    assert_eq!(
        recovery[0]["truncated_sha256"],
        hex::encode(ring::digest::digest(&ring::digest::SHA256, tail))
    );
    assert!(!text.contains("\"seq\":{"), "the torn bytes are gone");

    // A corrupted complete line still refuses the start.
    let mut edited: Vec<String> = text.lines().map(str::to_owned).collect();
    assert!(edited.len() >= 3, "{text}");
    edited[1] = edited[1].replacen("\"outcome\":", "\"outcome_\":", 1);
    let corrupted = format!("{}\n", edited.join("\n"));
    assert_ne!(corrupted, text);
    std::fs::write(&audit, &corrupted).unwrap();
    let err = refused_start(dir.path()).await;
    assert!(
        err.contains("line 3: `prev` does not match the SHA-256 of line 2"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&audit).unwrap(), corrupted);
}
