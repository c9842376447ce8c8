//! Crash tests: a child process commits a stream of batches and prints
//! each acknowledged one; the parent SIGKILLs it mid-stream, reopens the
//! store, and finds every acknowledged batch complete. For atomic batches
//! (`commit`), whatever else survived is complete too; for ordered batches
//! (`commit_in_order`), whatever survived of a batch is a prefix of it.
//!
//! The child is this test executable itself, run with `CHILD_ENV` set and
//! filtered to the `crash_child` test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use keyward_vault::storage::{
    KeyRange, Keyspace, MAX_SCAN, SledConfig, SledStorage, Storage, WriteBatch,
};

const CHILD_ENV: &str = "KEYWARD_STORAGE_CRASH_CHILD_DIR";
/// Set (to anything) for a child that commits ordered batches.
const ORDERED_ENV: &str = "KEYWARD_STORAGE_CRASH_CHILD_ORDERED";
/// Writers in the child, so that acknowledgements come from shared flushes.
const CHILD_WRITERS: u64 = 8;
/// Acknowledgements the parent waits for before killing the child.
const KILL_AFTER_ACKS: usize = 300;

fn lease_key(writer: u64, n: u64) -> Vec<u8> {
    [writer.to_be_bytes(), n.to_be_bytes()].concat()
}

/// Not a test of its own: the body of the child process that
/// `every_acknowledged_commit_survives_sigkill` starts (with `--ignored`).
#[test]
#[ignore = "child process of every_acknowledged_commit_survives_sigkill"]
fn crash_child() {
    let dir =
        std::env::var_os(CHILD_ENV).expect("run by the crash test, which sets the store path");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    runtime.block_on(async move {
        let ordered = std::env::var_os(ORDERED_ENV).is_some();
        let store = Arc::new(SledStorage::open(&SledConfig::new(dir)).unwrap());
        let stdout = Arc::new(std::sync::Mutex::new(std::io::stdout()));
        let writers: Vec<_> = (0..CHILD_WRITERS)
            .map(|w| {
                let store = Arc::clone(&store);
                let stdout = Arc::clone(&stdout);
                tokio::spawn(async move {
                    for n in 0u64.. {
                        let key = lease_key(w, n);
                        let mut b = WriteBatch::new();
                        if ordered {
                            // A session creation's shape: single-use key,
                            // index entry, record.
                            b.insert_new(Keyspace::Nonces, &key, b"used").unwrap();
                            b.put(Keyspace::SessionExpiry, &key, b"").unwrap();
                            b.put(Keyspace::Sessions, &key, b"session").unwrap();
                            store.commit_in_order(b).await.unwrap();
                        } else {
                            b.put(Keyspace::Leases, &key, b"lease").unwrap();
                            b.put(Keyspace::LeaseExpiry, &key, b"").unwrap();
                            b.put(Keyspace::AuditPointers, &key, b"audit").unwrap();
                            store.commit(b).await.unwrap();
                        }
                        let mut out = stdout.lock().unwrap();
                        writeln!(out, "ack {w} {n}").unwrap();
                        out.flush().unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
    });
}

/// Runs the child on a fresh store until `KILL_AFTER_ACKS` commits are
/// acknowledged, SIGKILLs it, and returns the store's directory (kept
/// alive by the returned guard) and every acknowledged `(writer, n)`.
fn run_child_and_kill(ordered: bool) -> (tempfile::TempDir, std::path::PathBuf, Vec<(u64, u64)>) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "crash_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &db)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if ordered {
        command.env(ORDERED_ENV, "1");
    }
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = Vec::new();
    let mut lines = BufReader::new(stdout).lines();
    while acked.len() < KILL_AFTER_ACKS {
        let line = lines.next().expect("child exited early").unwrap();
        if let Some(rest) = line.strip_prefix("ack ") {
            let (w, n) = rest.split_once(' ').unwrap();
            acked.push((w.parse::<u64>().unwrap(), n.parse::<u64>().unwrap()));
        }
    }
    // Child::kill is SIGKILL: no destructor, no final flush.
    child.kill().unwrap();
    // Acknowledgements already in the pipe count too.
    for line in lines.map_while(Result::ok) {
        if let Some(rest) = line.strip_prefix("ack ") {
            let (w, n) = rest.split_once(' ').unwrap();
            acked.push((w.parse().unwrap(), n.parse().unwrap()));
        }
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was killed, not finished");
    (dir, db, acked)
}

#[tokio::test]
async fn every_acknowledged_commit_survives_sigkill() {
    let (_dir, db, acked) = run_child_and_kill(false);
    let store = SledStorage::open(&SledConfig::new(&db)).unwrap();
    for (w, n) in &acked {
        let key = lease_key(*w, *n);
        for ks in [
            Keyspace::Leases,
            Keyspace::LeaseExpiry,
            Keyspace::AuditPointers,
        ] {
            assert!(
                store.get(ks, &key).await.unwrap().is_some(),
                "acknowledged write {w}/{n} lost from {ks:?}"
            );
        }
    }
    // Atomicity: whatever else survived (applied but unacknowledged) is
    // complete too — each batch is in all three keyspaces or in none.
    let leases = store
        .scan(Keyspace::Leases, KeyRange::All, MAX_SCAN)
        .await
        .unwrap();
    let expiry = store
        .scan(Keyspace::LeaseExpiry, KeyRange::All, MAX_SCAN)
        .await
        .unwrap();
    let audit = store
        .scan(Keyspace::AuditPointers, KeyRange::All, MAX_SCAN)
        .await
        .unwrap();
    let keys = |v: &[(Vec<u8>, Vec<u8>)]| v.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&leases), keys(&expiry));
    assert_eq!(keys(&leases), keys(&audit));
    assert!(leases.len() >= acked.len());
}

#[tokio::test]
async fn an_ordered_batch_survives_sigkill_as_a_prefix() {
    let (_dir, db, acked) = run_child_and_kill(true);
    let store = SledStorage::open(&SledConfig::new(&db)).unwrap();
    for (w, n) in &acked {
        let key = lease_key(*w, *n);
        for ks in [
            Keyspace::Nonces,
            Keyspace::SessionExpiry,
            Keyspace::Sessions,
        ] {
            assert!(
                store.get(ks, &key).await.unwrap().is_some(),
                "acknowledged write {w}/{n} lost from {ks:?}"
            );
        }
    }
    // Prefixes only: a session record only with its index entry, an index
    // entry only with its used nonce.
    let keys = |ks| {
        let store = &store;
        async move {
            store
                .scan(ks, KeyRange::All, MAX_SCAN)
                .await
                .unwrap()
                .into_iter()
                .map(|(k, _)| k)
                .collect::<std::collections::BTreeSet<_>>()
        }
    };
    let nonces = keys(Keyspace::Nonces).await;
    let index = keys(Keyspace::SessionExpiry).await;
    let sessions = keys(Keyspace::Sessions).await;
    assert!(
        sessions.is_subset(&index),
        "a session without its index entry"
    );
    assert!(
        index.is_subset(&nonces),
        "an index entry without its used nonce"
    );
    assert!(sessions.len() >= acked.len());
}
