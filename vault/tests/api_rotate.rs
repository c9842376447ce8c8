//! `keyward operator rotate` / `POST /v1/sys/rotate` against a `keyward
//! server` child process: values sealed before a rotation still open,
//! new writes use the new key term (also after a restart), the call is
//! audited, and a non-admin token gets 403.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use keyward_vault::storage::{KeyRange, Keyspace, MAX_SCAN, SledConfig, SledStorage, Storage};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_keyward");

/// Kills the server if a test fails before stopping it.
struct Server(Option<Child>);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Server {
    /// Stops the server with SIGTERM by PID and waits for a clean exit.
    fn stop(mut self) {
        let mut child = self.0.take().unwrap();
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "server exited with {status}");
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("server did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn keyward(addr: &str, token: Option<&str>, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("KEYWARD_ADDR", addr)
        .env_remove("KEYWARD_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(t) = token {
        cmd.env("KEYWARD_TOKEN", t);
    }
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn ok_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn failed_with(out: &Output, text: &str) {
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(text), "{stderr}");
}

fn start(dir: &Path) -> (Server, String) {
    let port = free_port();
    let config = dir.join("keyward.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n[audit]\npath = \"{}\"\n",
            dir.join("data").display(),
            dir.join("audit.log").display()
        ),
    )
    .unwrap();
    let child = Command::new(BIN)
        .args(["server", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("server.err")).unwrap())
        .spawn()
        .unwrap();
    let server = Server(Some(child));
    let addr = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !keyward(&addr, None, &["operator", "status"], None)
        .status
        .success()
    {
        assert!(
            Instant::now() < deadline,
            "server did not come up: {}",
            std::fs::read_to_string(dir.join("server.err")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (server, addr)
}

fn create_token(addr: &str, root: &str, role: &str) -> String {
    ok_json(&keyward(
        addr,
        Some(root),
        &["token", "create", "--role", role, "--format", "json"],
        None,
    ))["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn rotate(addr: &str, token: &str) -> u32 {
    let v = ok_json(&keyward(
        addr,
        Some(token),
        &["operator", "rotate", "--format", "json"],
        None,
    ));
    u32::try_from(v["term"].as_u64().unwrap()).unwrap()
}

fn authenticates(addr: &str, token: &str) {
    ok_json(&keyward(
        addr,
        Some(token),
        &["token", "lookup", "--format", "json"],
        None,
    ));
}

/// The key terms (the barrier's 4-byte big-endian prefix) of every stored
/// token record.
fn token_terms(data: &Path) -> BTreeSet<u32> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let storage = SledStorage::open(&SledConfig::new(data)).unwrap();
        storage
            .scan(Keyspace::Tokens, KeyRange::All, MAX_SCAN)
            .await
            .unwrap()
            .into_iter()
            .map(|(_, value)| u32::from_be_bytes(value[..4].try_into().unwrap()))
            .collect()
    })
}

#[test]
fn rotate_keeps_old_values_and_seals_new_ones_under_the_new_term() {
    let dir = tempfile::tempdir().unwrap();
    let (server, addr) = start(dir.path());
    let init = ok_json(&keyward(
        &addr,
        None,
        &[
            "operator",
            "init",
            "--shares",
            "1",
            "--threshold",
            "1",
            "--format",
            "json",
        ],
        None,
    ));
    let root = init["root_token"].as_str().unwrap().to_owned();
    let share = init["keys"][0].as_str().unwrap().to_owned();

    let before = create_token(&addr, &root, "release");
    let term = rotate(&addr, &root);
    assert!(term >= 2, "{term}");
    let after = create_token(&addr, &root, "platform");
    authenticates(&addr, &before);
    authenticates(&addr, &after);

    // Rotation is admin-only: a release token is refused with 403.
    failed_with(
        &keyward(&addr, Some(&before), &["operator", "rotate"], None),
        "403",
    );
    failed_with(&keyward(&addr, None, &["operator", "rotate"], None), "401");

    server.stop();
    // Both terms are in use on disk: the old token under the first, the new
    // one under the rotated term.
    let terms = token_terms(&dir.path().join("data"));
    assert!(terms.contains(&(term - 1)), "{terms:?}");
    assert!(terms.contains(&term), "{terms:?}");

    let (server, addr) = start(dir.path());
    ok_json(&keyward(
        &addr,
        None,
        &["operator", "unseal", "--format", "json"],
        Some(&share),
    ));
    authenticates(&addr, &before);
    authenticates(&addr, &after);
    // The keyring's active term survived the restart: the next rotation
    // follows it, and writes after it land under the newest term.
    let next = rotate(&addr, &root);
    assert_eq!(next, term + 1);
    let last = create_token(&addr, &root, "auditor");
    authenticates(&addr, &last);
    server.stop();
    let terms = token_terms(&dir.path().join("data"));
    assert!(terms.contains(&next), "{terms:?}");

    // Audited: an attempt and a success per rotation, a denial for the
    // release token, and the chain verifies.
    let audit = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
    let records: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rotations: Vec<&Value> = records
        .iter()
        .filter(|r| r["operation"] == "sys.rotate")
        .collect();
    let outcome = |o: &str| rotations.iter().filter(|r| r["outcome"] == o).count();
    assert_eq!(outcome("success"), 2, "{rotations:#?}");
    assert_eq!(outcome("attempt"), 2, "{rotations:#?}");
    assert_eq!(outcome("denied"), 2, "{rotations:#?}");
    let verify = keyward(
        &addr,
        None,
        &[
            "audit",
            "verify",
            dir.path().join("audit.log").to_str().unwrap(),
        ],
        None,
    );
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}
