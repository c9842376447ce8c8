//! TPM auto-unseal through init, on swtpm: `keyward operator init --type
//! tpm` against a `keyward server` child process configured with the
//! SimHost's TCTI; a restart unseals by itself; after a sealed PCR changes
//! (extended while the server is stopped: swtpm serves one client at a
//! time) a restart stays sealed and the recovery shares unseal it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::{Server, failed_with, free_port, keyward, ok_json};

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use keyward_hardware::harness::SimHost;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_keyward");

/// Starts a server on `dir`'s data and audit log, with `seal.tcti` set
/// when `tcti` is given (a new port each time).
fn start(dir: &Path, tcti: Option<&str>) -> (Server, String) {
    let port = free_port();
    let config = dir.join("keyward.toml");
    let seal = tcti.map_or_else(String::new, |t| format!("[seal]\ntcti = \"{t}\"\n"));
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n{seal}[audit]\npath = \"{}\"\n",
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

fn status(addr: &str) -> Value {
    ok_json(&keyward(
        addr,
        None,
        &["operator", "status", "--format", "json"],
        None,
    ))
}

fn authenticates(addr: &str, token: &str) {
    ok_json(&keyward(
        addr,
        Some(token),
        &["token", "lookup", "--format", "json"],
        None,
    ));
}

#[test]
fn tpm_init_restart_unseals_and_a_changed_pcr_needs_the_recovery_shares() {
    let host = SimHost::start().unwrap();
    let tcti = host.tcti();
    let dir = tempfile::tempdir().unwrap();
    let (server, addr) = start(dir.path(), Some(&tcti));

    let init = ok_json(&keyward(
        &addr,
        None,
        &[
            "operator",
            "init",
            "--type",
            "tpm",
            "--pcrs",
            "sha256:7,16",
            "--shares",
            "3",
            "--threshold",
            "2",
            "--format",
            "json",
        ],
        None,
    ));
    let root = init["root_token"].as_str().unwrap().to_owned();
    assert_eq!(init["keys"].as_array().unwrap().len(), 0);
    let recovery: Vec<String> = init["recovery_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recovery.len(), 3);
    let s = status(&addr);
    assert_eq!(s["type"], "tpm");
    assert_eq!(s["sealed"], false);
    assert_eq!(
        (s["threshold"].as_u64(), s["shares"].as_u64()),
        (Some(2), Some(3))
    );
    authenticates(&addr, &root);

    // Same host, same PCRs: the restarted server is unsealed at once.
    server.stop();
    let (server, addr) = start(dir.path(), Some(&tcti));
    let s = status(&addr);
    assert_eq!(s["sealed"], false, "{s}");
    assert_eq!(s["progress"], 0);
    authenticates(&addr, &root);
    server.stop();

    // A sealed PCR changes while the server is down.
    let tpm = host.open().unwrap();
    tpm.extend_pcr_sha256(16, [0x5a; 32]).unwrap();
    drop(tpm);
    let (server, addr) = start(dir.path(), Some(&tcti));
    let s = status(&addr);
    assert_eq!(s["sealed"], true, "{s}");
    assert_eq!(s["type"], "tpm");
    let log = std::fs::read_to_string(dir.path().join("server.err")).unwrap();
    assert!(log.contains("TPM auto-unseal"), "{log}");
    assert!(log.contains("PCR policy not satisfied"), "{log}");
    failed_with(
        &keyward(&addr, Some(&root), &["token", "lookup"], None),
        "503",
    );
    let first = ok_json(&keyward(
        &addr,
        None,
        &["operator", "unseal", "--format", "json"],
        Some(&recovery[2]),
    ));
    assert_eq!(
        (first["sealed"].as_bool(), first["progress"].as_u64()),
        (Some(true), Some(1))
    );
    let second = ok_json(&keyward(
        &addr,
        None,
        &["operator", "unseal", "--format", "json"],
        Some(&recovery[0]),
    ));
    assert_eq!(second["sealed"], false, "{second}");
    authenticates(&addr, &root);
    server.stop();

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

#[test]
fn tpm_init_is_refused_without_a_tpm_and_with_bad_fields() {
    let dir = tempfile::tempdir().unwrap();
    let (server, addr) = start(dir.path(), None);
    let init = |args: &[&str]| {
        let mut all = vec!["operator", "init", "--shares", "1", "--threshold", "1"];
        all.extend_from_slice(args);
        keyward(&addr, None, &all, None)
    };
    let out = init(&["--type", "tpm"]);
    failed_with(&out, "400");
    failed_with(&out, "seal.tcti");
    failed_with(
        &init(&["--type", "tpm", "--pcrs", "sha256:24"]),
        "pcrs: PCR index above 23",
    );
    failed_with(
        &init(&["--type", "tpm", "--pcrs", "sha256:7,7"]),
        "duplicate PCR index",
    );
    failed_with(&init(&["--type", "tpm", "--pcrs", "md5:7"]), "pcrs: bank");
    failed_with(&init(&["--pcrs", "sha256:7"]), "--type");

    // The HTTP body: each mode's fields only, the required ones present.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cases = [
        (
            serde_json::json!({"type": "tpm", "recovery_shares": 1}),
            "recovery_threshold: required",
        ),
        (
            serde_json::json!({"type": "tpm", "recovery_shares": 1, "recovery_threshold": 1,
                "secret_shares": 1}),
            "secret_shares: not allowed with type tpm",
        ),
        (
            serde_json::json!({"secret_shares": 1, "secret_threshold": 1, "pcrs": "sha256:7"}),
            "pcrs: not allowed with type shamir",
        ),
        (
            serde_json::json!({"secret_shares": 1, "secret_threshold": 1,
                "recovery_shares": 1}),
            "recovery_shares: not allowed with type shamir",
        ),
        (
            serde_json::json!({"type": "hsm", "secret_shares": 1, "secret_threshold": 1}),
            "type",
        ),
        (
            serde_json::json!({"type": "tpm", "recovery_shares": 1, "recovery_threshold": 1,
                "pcrs": "sha256"}),
            "pcrs: expected bank:indices",
        ),
    ];
    for (body, message) in cases {
        let (code, answer) = runtime.block_on(async {
            let r = reqwest::Client::new()
                .post(format!("{addr}/v1/sys/init"))
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            let code = r.status().as_u16();
            (code, r.json::<Value>().await.unwrap())
        });
        assert_eq!(code, 400, "{body}: {answer}");
        let error = answer["errors"][0].as_str().unwrap();
        assert!(error.contains(message), "{body}: {error}");
    }
    assert_eq!(status(&addr)["initialized"], false);
    server.stop();
}
