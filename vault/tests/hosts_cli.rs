//! End to end: `keyward host enroll` on swtpm against a `keyward server`
//! child process, then `keyward host list|show|approve|set-boot-policy|revoke`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::{Server, failed_with, free_port, keyward, ok_json};

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use keyward_hardware::AkBlob;
use keyward_hardware::harness::SimHost;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_keyward");

/// Starts a server whose `[enrollment]` trusts `host`'s EK CA.
fn start(dir: &Path, host: &SimHost) -> (Server, String) {
    let port = free_port();
    let config = dir.join("keyward.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n\
             [enrollment]\nek_roots = [\"{}\"]\nek_intermediates = [\"{}\"]\nttl = \"2m\"\n\
             [audit]\npath = \"{}\"\n",
            dir.join("data").display(),
            host.ca().root_cert_path().display(),
            host.ca().intermediate_cert_path().display(),
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

#[test]
fn host_enroll_through_the_binary() {
    let host = SimHost::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (server, addr) = start(dir.path(), &host);

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
    let created = ok_json(&keyward(
        &addr,
        Some(&root),
        &["token", "create", "--role", "platform", "--format", "json"],
        None,
    ));
    let platform = created["token"].as_str().unwrap().to_owned();

    // Enrolling needs the platform role.
    let state_dir = dir.path().join("state");
    let state_arg = state_dir.display().to_string();
    let tcti = host.tcti();
    let auditor = ok_json(&keyward(
        &addr,
        Some(&root),
        &["token", "create", "--role", "auditor", "--format", "json"],
        None,
    ))["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let enroll_args = [
        "host",
        "enroll",
        "--vault",
        &addr,
        "--tcti",
        &tcti,
        "--labels",
        "rack=r1,zone=a",
        "--state-dir",
        &state_arg,
        "--format",
        "json",
    ];
    failed_with(
        &keyward("http://127.0.0.1:1", Some(&auditor), &enroll_args, None),
        "403",
    );

    let record = ok_json(&keyward(
        "http://127.0.0.1:1",
        Some(&platform),
        &enroll_args,
        None,
    ));
    assert_eq!(record["state"], "pending");
    assert_eq!(record["labels"]["rack"], "r1");
    let id = record["id"].as_str().unwrap().to_owned();
    let saved: Value =
        serde_json::from_slice(&std::fs::read(state_dir.join("host.json")).unwrap()).unwrap();
    assert_eq!(saved["host_id"], id.as_str());
    let ak_path = state_dir.join("ak.blob");
    let mode = std::fs::metadata(&ak_path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let ak = AkBlob::load(&ak_path).unwrap();
    assert_eq!(
        record["ak_public"],
        STANDARD.encode(ak.public().unwrap().tpm2b_public).as_str()
    );

    let list = keyward(&addr, Some(&auditor), &["host", "list"], None);
    assert!(list.status.success());
    let table = String::from_utf8_lossy(&list.stdout);
    assert!(table.contains(&id) && table.contains("pending"), "{table}");

    let approved = ok_json(&keyward(
        &addr,
        Some(&platform),
        &["host", "approve", &id, "--format", "json"],
        None,
    ));
    assert_eq!(approved["state"], "active");
    let show = keyward(&addr, Some(&platform), &["host", "show", &id], None);
    let table = String::from_utf8_lossy(&show.stdout);
    assert!(
        table.contains("active") && table.contains("rack=r1,zone=a"),
        "{table}"
    );

    let policy = dir.path().join("policy.json");
    let mut file = std::fs::File::create(&policy).unwrap();
    writeln!(
        file,
        "{{\"golden_pcrs\": {{\"sha256\": {{\"0\": \"{}\"}}}}}}",
        "ab".repeat(32)
    )
    .unwrap();
    let set = ok_json(&keyward(
        &addr,
        Some(&platform),
        &[
            "host",
            "set-boot-policy",
            &id,
            "--file",
            &policy.display().to_string(),
            "--format",
            "json",
        ],
        None,
    ));
    assert_eq!(
        set["boot_policy"]["golden_pcrs"]["sha256"]["0"],
        "ab".repeat(32).as_str()
    );

    let revoked = ok_json(&keyward(
        &addr,
        Some(&platform),
        &["host", "revoke", &id, "--format", "json"],
        None,
    ));
    assert_eq!(revoked["state"], "revoked");
    failed_with(
        &keyward(&addr, Some(&platform), &["host", "approve", &id], None),
        "409",
    );
    failed_with(
        &keyward(
            &addr,
            Some(&platform),
            &["host", "show", "../sys/seal"],
            None,
        ),
        "not 32 hex digits",
    );
    server.stop();
    drop(host);
}
