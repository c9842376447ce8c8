//! End to end: `keyward server` as a child process, driven by
//! `keyward policy release|release-schema …`, `keyward kv …`,
//! `keyward lease …` and `keyward engine database-role …`; release
//! policies and kv versions survive a restart.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::{Server, failed_with, free_port, keyward, ok_json};

use std::path::Path;

fn start(dir: &Path, port: u16) -> (Server, String) {
    common::start_cli_server(dir, port, "")
}

#[test]
fn cli_release_policies_kv_leases_and_engines() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (server, addr) = start(dir.path(), port);
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
    let share = init["keys"][0].as_str().unwrap().to_owned();
    let root = init["root_token"].as_str().unwrap().to_owned();
    let r = Some(root.as_str());

    // Cedar: a valid document is stored; one naming an unknown attribute
    // is refused with the validator's reason.
    let good = dir.path().join("app.cedar");
    std::fs::write(
        &good,
        "permit (principal is Keyward::Workload, action, resource is Keyward::Secret)\n\
         when { resource.path like \"kv/app/*\" };\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.cedar");
    std::fs::write(
        &bad,
        "permit (principal, action, resource) when { principal.no_such_attribute == 1 };\n",
    )
    .unwrap();
    let g = good.to_str().unwrap();
    ok_json(&keyward(
        &addr,
        r,
        &[
            "policy", "release", "put", "app", "--file", g, "--format", "json",
        ],
        None,
    ));
    failed_with(
        &keyward(
            &addr,
            r,
            &[
                "policy",
                "release",
                "put",
                "bad",
                "--file",
                bad.to_str().unwrap(),
            ],
            None,
        ),
        "does not validate",
    );
    let listed = ok_json(&keyward(
        &addr,
        r,
        &["policy", "release", "list", "--format", "json"],
        None,
    ));
    assert_eq!(listed["names"], serde_json::json!(["app"]));
    let text = keyward(&addr, r, &["policy", "release", "get", "app"], None);
    assert!(text.status.success());
    assert_eq!(
        String::from_utf8_lossy(&text.stdout),
        std::fs::read_to_string(&good).unwrap()
    );
    let schema = keyward(&addr, r, &["policy", "release-schema", "get"], None);
    assert!(String::from_utf8_lossy(&schema.stdout).contains("entity Workload"));

    // kv: write from a file; metadata never shows the value.
    let value = dir.path().join("value.json");
    std::fs::write(&value, r#"{"password": "hunter2"}"#).unwrap();
    let v = value.to_str().unwrap();
    let put = ok_json(&keyward(
        &addr,
        r,
        &["kv", "put", "app/db", "--file", v, "--format", "json"],
        None,
    ));
    assert_eq!(put["version"], 1);
    ok_json(&keyward(
        &addr,
        r,
        &["kv", "put", "app/db", "--file", v, "--format", "json"],
        None,
    ));
    let meta = keyward(
        &addr,
        r,
        &["kv", "metadata", "app/db", "--format", "json"],
        None,
    );
    let meta_text = String::from_utf8_lossy(&meta.stdout).into_owned();
    assert!(!meta_text.contains("hunter2"), "{meta_text}");
    let meta: serde_json::Value = serde_json::from_str(&meta_text).unwrap();
    assert_eq!(meta["current"], 2);

    // Leases: none yet; a missing lease is an error.
    let list = ok_json(&keyward(
        &addr,
        r,
        &["lease", "irrevocable", "--format", "json"],
        None,
    ));
    assert_eq!(list, serde_json::json!([]));
    failed_with(
        &keyward(&addr, r, &["lease", "lookup", "kv/none/1"], None),
        "not found",
    );

    // Engines: a non-loopback database is refused, the URL never echoed.
    let role = dir.path().join("role.json");
    std::fs::write(
        &role,
        r#"{"connection_url": "postgres://admin:s3cret@db.example.com/postgres",
            "creation_statements": ["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"]}"#,
    )
    .unwrap();
    let refused = keyward(
        &addr,
        r,
        &[
            "engine",
            "database-role",
            "ro",
            "--file",
            role.to_str().unwrap(),
        ],
        None,
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!stderr.contains("s3cret"), "{stderr}");
    assert!(
        !std::fs::read_to_string(dir.path().join("audit.log"))
            .unwrap()
            .contains("s3cret")
    );

    // Restart: policies and kv versions are still there.
    server.stop();
    let (_server, addr) = start(dir.path(), port);
    ok_json(&keyward(
        &addr,
        None,
        &["operator", "unseal", &share, "--format", "json"],
        None,
    ));
    let listed = ok_json(&keyward(
        &addr,
        r,
        &["policy", "release", "list", "--format", "json"],
        None,
    ));
    assert_eq!(listed["names"], serde_json::json!(["app"]));
    let meta = ok_json(&keyward(
        &addr,
        r,
        &["kv", "metadata", "app/db", "--format", "json"],
        None,
    ));
    assert_eq!(meta["current"], 2);
}
