//! `keyward audit verify FILE` on an intact and on tampered logs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use keyward_vault::audit::{AuditEntry, AuditKey, AuditLog, Outcome};

const BIN: &str = env!("CARGO_BIN_EXE_keyward");

async fn write_log(path: &Path, records: u64) {
    let log = AuditLog::open(path, Duration::from_secs(5)).unwrap();
    log.set_key(AuditKey::from_bytes(&[9u8; 32]).unwrap());
    for i in 0..records {
        log.append(AuditEntry {
            time_ms: i,
            request_id: format!("req-{i}"),
            actor: "anonymous".into(),
            operation: "token.create",
            path: "/v1/auth/token/create".into(),
            outcome: Outcome::Success,
            status: Some(200),
            reason: None,
            request: Some(serde_json::json!({"roles": ["admin"], "ttl": 60})),
            response: None,
        })
        .await
        .unwrap();
    }
}

fn verify(path: &Path) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .args(["audit", "verify"])
        .arg(path)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn intact_log_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    write_log(&path, 5).await;
    let (code, out) = verify(&path);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("intact, 5 records"));
}

#[tokio::test]
async fn tampered_logs_exit_1_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    write_log(&path, 5).await;
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();

    // An edited field in record 3 (line 4) breaks the link of line 5.
    let edited = text.replacen("req-2", "req-X", 1);
    std::fs::write(&path, edited).unwrap();
    let (code, out) = verify(&path);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("broken at line 5: `prev` does not match the SHA-256 of line 4"),
        "{out}"
    );

    // A deleted line.
    let mut without: Vec<&str> = lines.clone();
    without.remove(2);
    std::fs::write(&path, without.join("\n") + "\n").unwrap();
    let (code, out) = verify(&path);
    assert_eq!(code, Some(1));
    assert!(out.contains("broken at line 3"), "{out}");

    // A rewritten header (log id changed, genesis not).
    let header = lines[0].replacen("\"log_id\":\"", "\"log_id\":\"00", 1);
    std::fs::write(&path, format!("{header}\n{}\n", lines[1..].join("\n"))).unwrap();
    let (code, out) = verify(&path);
    assert_eq!(code, Some(1));
    assert!(
        out.contains("broken at line 1: header does not chain to the genesis"),
        "{out}"
    );

    // Garbage in the middle.
    let mut garbage: Vec<&str> = lines.clone();
    garbage[3] = "not json";
    std::fs::write(&path, garbage.join("\n") + "\n").unwrap();
    let (code, out) = verify(&path);
    assert_eq!(code, Some(1));
    assert!(out.contains("broken at line 4: not a JSON object"), "{out}");

    // A missing file is an error, not a verdict (exit 1 too, on stderr).
    let (code, _) = verify(&dir.path().join("missing.log"));
    assert_eq!(code, Some(1));
}
