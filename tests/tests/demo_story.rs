//! The README's first command, `scripts/demo.sh`, run end to end on this
//! build's `keyward` and `demo_agent` (`KEYWARD_DEMO_BIN_DIR`): a vault
//! unsealed with Shamir shares, a swtpm host enrolled by credential
//! activation, a real registry with a key-signed image, a model signed by
//! the real `model_signing`, PostgreSQL, Cedar policy, and the agent
//! launched by `keyward launch`. The script checks each step itself and
//! exits non-zero at the first that fails; this test also asserts the
//! story's outcomes in its output, so a step that silently stopped doing
//! its part fails here.
//!
//! The binaries come from the directory of this test's own build
//! (`cargo test --workspace` builds the `keyward` binary and the client's
//! examples before running any test).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Far more than the demo needs (about a minute here).
const DEADLINE: Duration = Duration::from_secs(600);

/// `target/<profile>`: this test runs from `target/<profile>/deps`.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap().to_owned();
    for bin in ["keyward", "examples/demo_agent"] {
        assert!(
            dir.join(bin).is_file(),
            "{} is missing: run through `cargo test --workspace` (scripts/test.sh), \
             which builds it",
            dir.join(bin).display()
        );
    }
    dir
}

#[test]
fn the_demo_tells_the_whole_story() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut child = Command::new("bash")
        .arg(root.join("scripts/demo.sh"))
        .env("KEYWARD_DEMO_BIN_DIR", bin_dir())
        .env("TSS2_LOG", "all+NONE")
        .env_remove("KEYWARD_DEMO_KEEP")
        .env_remove("KEYWARD_ADDR")
        .env_remove("KEYWARD_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = String::new();
        let mut err = String::new();
        let _ = stdout.read_to_string(&mut out);
        let _ = stderr.read_to_string(&mut err);
        let status = child.wait().unwrap();
        let _ = done.send((status, out, err));
    });
    let (status, out, err) = match finished.recv_timeout(DEADLINE) {
        Ok(result) => result,
        Err(_) => {
            // The script's trap stops everything it started.
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("scripts/demo.sh did not finish within {DEADLINE:?}");
        }
    };
    assert!(
        status.success(),
        "scripts/demo.sh failed ({status}):\n--- stdout\n{out}\n--- stderr\n{err}"
    );
    let expect = |what: &str| {
        assert!(
            out.contains(what),
            "the demo's output lacks {what:?}:\n{out}\n--- stderr\n{err}"
        );
    };
    // Set-up, each step checked by the script.
    expect("✔ vault unsealed at http://127.0.0.1:");
    expect(" is active");
    expect("✔ image and model registered");
    expect("✔ Cedar policy written and validated against the schema");
    // The agent's releases, and the relying party's check of its token.
    expect("agent: attested:");
    expect("agent: kv kv/demo/app v1: api_key = demo-");
    expect("agent: postgres: logged in as ");
    expect("SELECT count(*) FROM orders → 2");
    expect("\"aud\": \"demo-service\"");
    expect("\"sub\": \"keyward://demo.keyward.test/host/");
    expect("✔ identity token verified against the JWKS");
    // Revocation follows the attestation.
    expect("agent: lease revoked: database/postgres/readonly/");
    expect("agent: postgres: the open connection was cut by the vault");
    expect("agent: postgres: the credential no longer logs in");
    expect("agent: release denied (request id ");
    // A tampered model: refused by the launcher, denied by the vault.
    expect("✔ tampered model refused before launch");
    expect("agent: permission denied (request id ");
    expect("denied at artifact: ");
    expect("✔ audit chain verified");
    expect(". Done: stopping everything by PID ==");
}
