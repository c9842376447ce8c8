//! End to end: `keyward server` as a child process on a loopback port,
//! driven by the `keyward` CLI (operator, token, audit verify).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::{Server, free_port, keyward, ok_json};

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_keyward");

fn start(dir: &Path) -> (Server, String) {
    start_with(dir, "", "http", &[])
}

/// Starts a server with `extra` config lines, probing it with
/// `operator status` plus `probe_args` until it answers.
fn start_with(dir: &Path, extra: &str, scheme: &str, probe_args: &[&str]) -> (Server, String) {
    let port = free_port();
    let config = dir.join("keyward.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n{extra}\n[audit]\npath = \"{}\"\n",
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
    let addr = format!("{scheme}://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let probe: Vec<&str> = ["operator", "status"]
        .iter()
        .chain(probe_args)
        .copied()
        .collect();
    while !keyward(&addr, None, &probe, None).status.success() {
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
fn server_init_unseal_token_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let (server, addr) = start(dir.path());

    let status = ok_json(&keyward(
        &addr,
        None,
        &["operator", "status", "--format", "json"],
        None,
    ));
    assert_eq!(status["initialized"], false);
    let init = ok_json(&keyward(
        &addr,
        None,
        &[
            "operator",
            "init",
            "--shares",
            "3",
            "--threshold",
            "2",
            "--format",
            "json",
        ],
        None,
    ));
    let keys: Vec<String> = init["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    let root = init["root_token"].as_str().unwrap().to_owned();

    // Seal, then unseal with two shares: one from stdin, one as argument.
    ok_json(&keyward(
        &addr,
        Some(&root),
        &["operator", "seal", "--format", "json"],
        None,
    ));
    let failed = keyward(&addr, Some(&root), &["token", "lookup"], None);
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("503"));
    let first = ok_json(&keyward(
        &addr,
        None,
        &["operator", "unseal", "--format", "json"],
        Some(&format!("{}\n", keys[0])),
    ));
    assert_eq!(
        (first["sealed"].clone(), first["progress"].clone()),
        (Value::Bool(true), Value::from(1))
    );
    let second = ok_json(&keyward(
        &addr,
        None,
        &["operator", "unseal", "--format", "json", &keys[1]],
        None,
    ));
    assert_eq!(second["sealed"], false);

    // Tokens: create, look up (table), revoke; denied without a token.
    let created = ok_json(&keyward(
        &addr,
        Some(&root),
        &[
            "token", "create", "--role", "release", "--ttl", "5m", "--format", "json",
        ],
        None,
    ));
    let accessor = created["accessor"].as_str().unwrap().to_owned();
    let token = created["token"].as_str().unwrap().to_owned();
    let table = keyward(&addr, Some(&root), &["token", "lookup", &accessor], None);
    assert!(table.status.success());
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(
        table.contains("Roles") && table.contains("release"),
        "{table}"
    );
    let own = ok_json(&keyward(
        &addr,
        Some(&token),
        &["token", "lookup", "--format", "json"],
        None,
    ));
    assert_eq!(own["accessor"], accessor.as_str());
    let denied = keyward(
        &addr,
        Some(&token),
        &["token", "create", "--role", "admin"],
        None,
    );
    assert_eq!(denied.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&denied.stderr).contains("403"));
    let anonymous = keyward(&addr, None, &["token", "create", "--role", "admin"], None);
    assert_eq!(anonymous.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&anonymous.stderr).contains("401"));
    assert!(
        keyward(&addr, Some(&root), &["token", "revoke", &accessor], None)
            .status
            .success()
    );
    let revoked = keyward(&addr, Some(&token), &["token", "lookup"], None);
    assert!(String::from_utf8_lossy(&revoked.stderr).contains("401"));

    server.stop();

    // The audit log is intact and holds no secret.
    let log = dir.path().join("audit.log");
    let out = keyward(
        &addr,
        None,
        &["audit", "verify", log.to_str().unwrap()],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(&root) && !text.contains(&token));
    for k in &keys {
        assert!(!text.contains(k.as_str()));
    }

    // A restarted server keeps its state: sealed, initialised, same chain.
    let (server, addr) = start(dir.path());
    let status = ok_json(&keyward(
        &addr,
        None,
        &["operator", "status", "--format", "json"],
        None,
    ));
    assert_eq!(
        (status["initialized"].clone(), status["sealed"].clone()),
        (Value::Bool(true), Value::Bool(true))
    );
    ok_json(&keyward(
        &addr,
        None,
        &["operator", "unseal", "--format", "json", &keys[2]],
        None,
    ));
    let unsealed = ok_json(&keyward(
        &addr,
        None,
        &["operator", "unseal", "--format", "json", &keys[0]],
        None,
    ));
    assert_eq!(unsealed["sealed"], false);
    ok_json(&keyward(
        &addr,
        Some(&root),
        &["token", "lookup", "--format", "json"],
        None,
    ));
    server.stop();
    assert_eq!(
        keyward(
            &addr,
            None,
            &["audit", "verify", log.to_str().unwrap()],
            None
        )
        .status
        .code(),
        Some(0)
    );
}

#[test]
fn server_refuses_bad_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "listen = \"0.0.0.0:8200\"\ndata_dir = \"x\"\n[audit]\npath = \"a\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["server", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("configure [tls]"));
    // An audit path that is a directory: the server does not start.
    let port = free_port();
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n[audit]\npath = \"{}\"\n",
            dir.path().join("d").display(),
            dir.path().display()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["server", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("audit log"));
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn server_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "1",
        "-subj",
        "/CN=keyward test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ];
    ca.extend(ec);
    openssl(dir.path(), &ca);
    let mut csr = vec![
        "req",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ];
    csr.extend(ec);
    openssl(dir.path(), &csr);
    std::fs::write(
        dir.path().join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir.path(),
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-out",
            "server.pem",
            "-extfile",
            "ext.cnf",
        ],
    );
    let tls = format!(
        "[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        dir.path().join("server.pem").display(),
        dir.path().join("server.key").display()
    );
    let ca_path = dir.path().join("ca.pem");
    let ca_arg = ca_path.to_str().unwrap();
    let (server, addr) = start_with(dir.path(), &tls, "https", &["--ca-cert", ca_arg]);
    let status = ok_json(&keyward(
        &addr,
        None,
        &[
            "operator",
            "status",
            "--format",
            "json",
            "--ca-cert",
            ca_arg,
        ],
        None,
    ));
    assert_eq!(status["initialized"], false);
    // Without the CA the certificate is refused.
    let untrusted = keyward(&addr, None, &["operator", "status"], None);
    assert_eq!(untrusted.status.code(), Some(1));
    // Plain HTTP to the TLS port does not get an answer.
    let plain = keyward(
        &addr.replace("https", "http"),
        None,
        &["operator", "status"],
        None,
    );
    assert_eq!(plain.status.code(), Some(1));
    server.stop();
}
