//! Helpers shared by the tests that drive a real `keyward server` child
//! process (included with `mod common;`; not every file uses every helper).
#![allow(dead_code)]

use std::io::Write;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_keyward");

/// Kills the server if a test fails before stopping it.
pub(crate) struct Server(pub(crate) Option<Child>);

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
    pub(crate) fn stop(mut self) {
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

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(crate) fn keyward(
    addr: &str,
    token: Option<&str>,
    args: &[&str],
    stdin: Option<&str>,
) -> Output {
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

pub(crate) fn ok_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

pub(crate) fn failed_with(out: &Output, text: &str) {
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(text), "{stderr}");
}

/// Starts `keyward server --config CONFIG` (stderr to `DIR/server.err`).
pub(crate) fn spawn(dir: &std::path::Path, config: &std::path::Path) -> Child {
    Command::new(BIN)
        .args(["server", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("server.err")).unwrap())
        .spawn()
        .unwrap()
}

/// Starts a server and waits (bounded) until it answers seal status at `addr`.
pub(crate) async fn start_server(
    http: &reqwest::Client,
    dir: &std::path::Path,
    config: &std::path::Path,
    addr: String,
) -> (Server, String) {
    let server = Server(Some(spawn(dir, config)));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("{addr}/v1/sys/seal-status")).send().await
            && r.status().is_success()
        {
            return (server, addr);
        }
        assert!(
            Instant::now() < deadline,
            "server did not come up: {}",
            std::fs::read_to_string(dir.join("server.err")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One JSON request; the body parsed as JSON (null when it is not).
pub(crate) async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> reqwest::Result<(u16, Value)> {
    let mut request = http.request(method, url);
    if let Some(t) = token {
        request = request.header("x-keyward-token", t);
    }
    if let Some(b) = body {
        request = request
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await?;
    Ok((
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

/// Writes a minimal config (loopback port, data dir and audit log in `dir`,
/// plus `extra` TOML) and starts `keyward server`, waiting (bounded) until
/// `keyward operator status` answers.
pub(crate) fn start_cli_server(dir: &std::path::Path, port: u16, extra: &str) -> (Server, String) {
    let config = dir.join("keyward.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n[audit]\npath = \"{}\"\n{extra}",
            dir.join("data").display(),
            dir.join("audit.log").display()
        ),
    )
    .unwrap();
    let server = Server(Some(spawn(dir, &config)));
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
