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

mod common;
use common::{Server, failed_with, free_port, keyward, ok_json};

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use keyward_vault::storage::{KeyRange, Keyspace, MAX_SCAN, SledConfig, SledStorage, Storage};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_keyward");

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
