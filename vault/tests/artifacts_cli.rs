//! End to end: `keyward server` as a child process, driven by
//! `keyward policy signing …` and `keyward artifact …`; registrations
//! survive a restart.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::{Server, free_port, keyward, ok_json};

use std::path::{Path, PathBuf};

use serde_json::json;

const MODEL_V11: &str = "sha256:4636e38614b56fc524211e1315e964336c3f2b9d3d0940bf495669e7c73f35f0";
const KUBEWARDEN_DIGEST: &str =
    "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172";

fn start(dir: &Path, port: u16) -> (Server, String) {
    common::start_cli_server(
        dir,
        port,
        "[artifacts.registry]\ninsecure_hosts = [\"127.0.0.1:1\"]\n",
    )
}

fn testdata(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../attest/testdata/model-signing")
        .join(rel)
}

#[test]
fn cli_policies_and_artifacts_survive_restart() {
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
    let created = ok_json(&keyward(
        &addr,
        Some(&root),
        &["token", "create", "--role", "release", "--format", "json"],
        None,
    ));
    let release = created["token"].as_str().unwrap().to_owned();

    // Policies: from a file and from stdin.
    let public = std::fs::read_to_string(testdata("keys/signer.pub")).unwrap();
    let model_policy = json!({"kind": "model",
        "predicate_types": ["https://model_signing/signature/v1.0"],
        "keys": [{"key_id": "release", "public_key": public}]});
    let file = dir.path().join("model-policy.json");
    std::fs::write(&file, model_policy.to_string()).unwrap();
    let put = ok_json(&keyward(
        &addr,
        Some(&release),
        &[
            "policy",
            "signing",
            "put",
            "model",
            "ml",
            "--file",
            file.to_str().unwrap(),
            "--format",
            "json",
        ],
        None,
    ));
    assert_eq!(put["name"], "ml");
    let image_policy = json!({"kind": "image",
        "predicate_types": ["https://sigstore.dev/cosign/sign/v1"],
        "identities": [{"issuer": "https://token.actions.githubusercontent.com",
            "subject": "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0"}]});
    ok_json(&keyward(
        &addr,
        Some(&release),
        &[
            "policy", "signing", "put", "image", "kw", "--file", "-", "--format", "json",
        ],
        Some(&image_policy.to_string()),
    ));
    let table = keyward(&addr, Some(&release), &["policy", "signing", "list"], None);
    assert!(table.status.success());
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("model") && table.contains("ml") && table.contains("kw"),
        "{table}"
    );

    // Model registration; a wrong version id fails with the reason.
    let sig = testdata("signatures/key-v11.sig");
    let wrong = format!("sha256:{}", "11".repeat(32));
    let failed = keyward(
        &addr,
        Some(&release),
        &[
            "artifact",
            "register",
            "model",
            "--version",
            &wrong,
            "--signature",
            sig.to_str().unwrap(),
            "--policy",
            "ml",
        ],
        None,
    );
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("400") && stderr.contains("signature verification failed"),
        "{stderr}"
    );
    let registered = ok_json(&keyward(
        &addr,
        Some(&release),
        &[
            "artifact",
            "register",
            "model",
            "--version",
            MODEL_V11,
            "--signature",
            sig.to_str().unwrap(),
            "--policy",
            "ml",
            "--name",
            "tiny",
            "--format",
            "json",
        ],
        None,
    ));
    assert_eq!(registered["digest"], MODEL_V11);

    // Image with an uploaded bundle.
    let bundle = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/testdata/sigstore/cosign-v3-image-kubewarden.sigstore.json");
    let reference = format!("ghcr.io/kubewarden/kubewarden-controller@{KUBEWARDEN_DIGEST}");
    let image = ok_json(&keyward(
        &addr,
        Some(&release),
        &[
            "artifact",
            "register",
            "image",
            "--ref",
            &reference,
            "--bundle",
            bundle.to_str().unwrap(),
            "--policy",
            "kw",
            "--format",
            "json",
        ],
        None,
    ));
    assert_eq!(image["digest"], KUBEWARDEN_DIGEST);

    // Restart and unseal: both are still there.
    server.stop();
    let (server, addr) = start(dir.path(), port);
    ok_json(&keyward(
        &addr,
        None,
        &["operator", "unseal", "--format", "json", &share],
        None,
    ));
    let list = ok_json(&keyward(
        &addr,
        Some(&release),
        &["artifact", "list", "--format", "json"],
        None,
    ));
    assert_eq!(list["artifacts"].as_array().unwrap().len(), 2);
    let table = keyward(
        &addr,
        Some(&release),
        &["artifact", "show", MODEL_V11],
        None,
    );
    assert!(table.status.success());
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("key release") && table.contains("active"),
        "{table}"
    );

    let revoked = ok_json(&keyward(
        &addr,
        Some(&release),
        &["artifact", "revoke", MODEL_V11, "--format", "json"],
        None,
    ));
    assert_eq!(revoked["state"], "revoked");
    let models = ok_json(&keyward(
        &addr,
        Some(&release),
        &["artifact", "list", "--kind", "model", "--format", "json"],
        None,
    ));
    assert_eq!(models["artifacts"][0]["state"], "revoked");
    // The image policy is in use: delete refused.
    let refused = keyward(
        &addr,
        Some(&release),
        &["policy", "signing", "delete", "image", "kw"],
        None,
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("409"));
    ok_json(&keyward(
        &addr,
        Some(&release),
        &[
            "policy", "signing", "delete", "model", "ml", "--format", "json",
        ],
        None,
    ));
    server.stop();
}
