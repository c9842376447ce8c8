//! End to end: `keyward launch` on swtpm (instance key handed to the child,
//! launch record appended to the workload CEL, workload PCR extended, CMD
//! exec'd), and `keyward host status` against a `keyward server` child.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
use common::{Server, failed_with, free_port, keyward, ok_json};

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use keyward_attest::cel::WorkloadLog;
use keyward_attest::digest::{HashAlg, PcrValues};
use keyward_attest::instance::instance_key_sha256;
use keyward_hardware::harness::SimHost;
use keyward_hardware::{PcrBank, PcrSelection};
use ring::signature::{Ed25519KeyPair, KeyPair};

const BIN: &str = env!("CARGO_BIN_EXE_keyward");
const IMAGE_REF: &str = "registry.example/team/agent:1.4";

/// What the child records about its environment, in `$OUT`.
const CHILD: &str = r#"set -e
k="$KEYWARD_INSTANCE_KEY"
cp "$k" "$OUT/key.der"
stat -c %a "$k" > "$OUT/key.mode"
stat -c %a "$(dirname "$k")" > "$OUT/dir.mode"
ls -A "$(dirname "$k")" > "$OUT/dir.list"
env | grep '^KEYWARD_' | sort > "$OUT/env"
echo $$ > "$OUT/pid"
rm -r "$(dirname "$k")"
"#;

fn image_digest(seed: &str) -> String {
    format!(
        "sha256:{}",
        hex::encode(ring::digest::digest(&ring::digest::SHA256, seed.as_bytes()))
    )
}

/// A test directory: state dir, key base (TMPDIR), child output.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["state", "tmp"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        Self { dir }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn log(&self) -> PathBuf {
        self.state().join("workload.cel")
    }

    fn out(&self, name: &str) -> PathBuf {
        let out = self.dir.path().join(name);
        std::fs::create_dir_all(&out).unwrap();
        out
    }

    /// `keyward launch --tcti … --state-dir … ARGS -- sh -c CHILD`, the child
    /// writing into `out`; keys go under `tmp/` (no tmpfs runtime dir).
    fn command(&self, host: &SimHost, args: &[&str], out: &Path) -> Command {
        self.command_with_tcti(&host.tcti(), args, out)
    }

    fn command_with_tcti(&self, tcti: &str, args: &[&str], out: &Path) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("launch")
            .args(["--tcti", tcti])
            .arg("--state-dir")
            .arg(self.state())
            .args(args)
            .args(["--", "sh", "-c", CHILD])
            .env("OUT", out)
            .env("TMPDIR", self.dir.path().join("tmp"))
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("KEYWARD_TCTI")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn launch(&self, host: &SimHost, args: &[&str], out: &Path) -> (u32, Output) {
        let child = self.command(host, args, out).spawn().unwrap();
        let pid = child.id();
        (pid, child.wait_with_output().unwrap())
    }
}

fn default_args(image: &str, model: &str) -> Vec<String> {
    [
        "--image",
        &format!("{IMAGE_REF}@{image}"),
        "--model-digest",
        model,
        "--model-name",
        "planner",
    ]
    .map(str::to_owned)
    .to_vec()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn pcr23(host: &SimHost) -> Vec<u8> {
    let tpm = host.open().unwrap();
    let values = tpm
        .read_pcrs(&[PcrSelection::new(PcrBank::Sha256, &[23])])
        .unwrap();
    assert_eq!(values.len(), 1);
    values[0].digest.clone()
}

/// Parses the log and verifies it against PCR 23 read from the TPM.
fn verify_log(env: &Env, host: &SimHost) -> keyward_attest::cel::VerifiedWorkloadLog {
    let bytes = std::fs::read(env.log()).unwrap();
    let log = WorkloadLog::parse(&bytes, 23).unwrap();
    let mut pcrs = PcrValues::new();
    pcrs.insert(HashAlg::Sha256, 23, pcr23(host)).unwrap();
    log.verify(&pcrs).unwrap()
}

/// The public key of the PKCS#8 the child copied out.
fn child_public_key(out: &Path) -> [u8; 32] {
    let pkcs8 = std::fs::read(out.join("key.der")).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).unwrap();
    pair.public_key().as_ref().try_into().unwrap()
}

fn read_trim(path: PathBuf) -> String {
    std::fs::read_to_string(path).unwrap().trim().to_owned()
}

#[test]
fn launch_hands_the_key_to_the_child_and_records_it() {
    let host = SimHost::start().unwrap();
    let env = Env::new();
    let out = env.out("one");
    let image = image_digest("image one");
    let model = image_digest("model one");
    let mut args = default_args(&image, &model);
    args.extend(["--instance-id", "agent-7"].map(str::to_owned));
    assert_eq!(pcr23(&host), vec![0u8; 32]);

    let (pid, output) = env.launch(&host, &strs(&args), &out);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // exec, not spawn: the shell has the launcher's pid.
    assert_eq!(read_trim(out.join("pid")), pid.to_string());
    // The key: 0600 in a 0700 directory holding nothing else.
    assert_eq!(read_trim(out.join("key.mode")), "600");
    assert_eq!(read_trim(out.join("dir.mode")), "700");
    assert_eq!(read_trim(out.join("dir.list")), "instance.key");
    let environment = read_trim(out.join("env"));
    let vars: std::collections::BTreeMap<&str, &str> = environment
        .lines()
        .filter_map(|l| l.split_once('='))
        .collect();
    let key_path = Path::new(vars["KEYWARD_INSTANCE_KEY"]);
    assert!(
        key_path.starts_with(env.dir.path().join("tmp")),
        "{key_path:?}"
    );
    // The child removed its key directory; the launcher left nothing else.
    assert_eq!(
        std::fs::read_dir(env.dir.path().join("tmp"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(Path::new(vars["KEYWARD_WORKLOAD_LOG"]), env.log().as_path());
    assert_eq!(Path::new(vars["KEYWARD_STATE_DIR"]), env.state().as_path());
    assert_eq!(vars["KEYWARD_TCTI"], host.tcti());
    assert_eq!(vars["KEYWARD_WORKLOAD_PCR"], "23");
    assert_eq!(vars["KEYWARD_INSTANCE_ID"], "agent-7");
    // Not on tmpfs, so the launcher says the key may reach the disk.
    assert!(String::from_utf8_lossy(&output.stderr).contains("may reach the disk"));

    // The record, and PCR 23 replays from the log.
    let verified = verify_log(&env, &host);
    let records = verified.launch_records();
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record.instance_id(), "agent-7");
    assert_eq!(record.image_reference(), IMAGE_REF);
    assert_eq!(record.image_digest(), image);
    assert_eq!(record.model_name(), "planner");
    assert_eq!(record.model_digest(), model);
    let public = child_public_key(&out);
    assert_eq!(record.instance_key_sha256(), &instance_key_sha256(&public));
    assert_ne!(pcr23(&host), vec![0u8; 32]);
}

#[test]
fn key_goes_to_a_tmpfs_runtime_dir() {
    let shm = Path::new("/dev/shm");
    assert!(shm.is_dir(), "this test needs /dev/shm (a tmpfs)");
    let host = SimHost::start().unwrap();
    let env = Env::new();
    let runtime = tempfile::tempdir_in(shm).unwrap();
    let out = env.out("tmpfs");
    let args = default_args(&image_digest("i"), &image_digest("m"));
    let mut cmd = env.command(&host, &strs(&args), &out);
    cmd.env("XDG_RUNTIME_DIR", runtime.path());
    let output = cmd.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let environment = read_trim(out.join("env"));
    let key = environment
        .lines()
        .find_map(|l| l.strip_prefix("KEYWARD_INSTANCE_KEY="))
        .unwrap();
    assert!(Path::new(key).starts_with(runtime.path()), "{key}");
    assert!(!String::from_utf8_lossy(&output.stderr).contains("may reach the disk"));
    // A random instance id: 128 bits in hex.
    let verified = verify_log(&env, &host);
    let id = verified.launch_records()[0].instance_id();
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
}

#[test]
fn two_concurrent_launches_append_two_records() {
    let host = SimHost::start().unwrap();
    let env = Env::new();
    let (out_a, out_b) = (env.out("a"), env.out("b"));
    let args_a = default_args(&image_digest("a"), &image_digest("model"));
    let args_b = default_args(&image_digest("b"), &image_digest("model"));
    let a = env.command(&host, &strs(&args_a), &out_a).spawn().unwrap();
    let b = env.command(&host, &strs(&args_b), &out_b).spawn().unwrap();
    for child in [a, b] {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let verified = verify_log(&env, &host);
    let records = verified.launch_records();
    assert_eq!(records.len(), 2);
    // Each child's key is in exactly one record, with its own image.
    for (out, image) in [(&out_a, image_digest("a")), (&out_b, image_digest("b"))] {
        let hash = instance_key_sha256(&child_public_key(out));
        let mine = verified.launch_record_for_key(&hash).unwrap();
        assert_eq!(mine.image_digest(), image);
    }

    // A third launch still appends to a valid log.
    let out_c = env.out("c");
    let (_, output) = env.launch(&host, &strs(&args_a), &out_c);
    assert!(output.status.success());
    assert_eq!(verify_log(&env, &host).launch_records().len(), 3);
}

/// A copy of the model-signing test model, and its committed version id.
fn model_copy(into: &Path) -> (PathBuf, String) {
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("../attest/testdata/model-signing");
    let model = into.join("model");
    let status = Command::new("cp")
        .arg("-r")
        .arg(testdata.join("model"))
        .arg(&model)
        .status()
        .unwrap();
    assert!(status.success());
    let digests = std::fs::read_to_string(testdata.join("signatures/root-digests.txt")).unwrap();
    let id = digests
        .lines()
        .find_map(|l| l.strip_prefix("key-v11.sig "))
        .unwrap()
        .trim()
        .to_owned();
    (model, id)
}

#[test]
fn model_dir_must_match_the_model_digest() {
    let host = SimHost::start().unwrap();
    let env = Env::new();
    let (model, id) = model_copy(env.dir.path());
    let model_arg = model.display().to_string();
    let mut args = default_args(&image_digest("img"), &id);
    args.truncate(4); // no --model-name: the directory's name is recorded
    args.extend(["--model-dir", &model_arg, "--ignore-paths", "README.md"].map(str::to_owned));

    let (_, output) = env.launch(&host, &strs(&args), &env.out("good"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let verified = verify_log(&env, &host);
    assert_eq!(verified.launch_records()[0].model_digest(), id);
    assert_eq!(verified.launch_records()[0].model_name(), "model");
    let log_before = std::fs::read(env.log()).unwrap();
    let pcr_before = pcr23(&host);

    // Without the ignore, README.md counts: refused.
    let without_ignore: Vec<String> = args[..6].to_vec();
    let out = env.out("no-ignore");
    let (_, output) = env.launch(&host, &strs(&without_ignore), &out);
    failed_with(&output, "hashes to sha256:");

    // One changed byte in weights.bin: refused, nothing appended or extended.
    let weights = model.join("weights.bin");
    let mut bytes = std::fs::read(&weights).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&weights, bytes).unwrap();
    let out = env.out("tampered");
    let (_, output) = env.launch(&host, &strs(&args), &out);
    failed_with(&output, &format!("not --model-digest {id}"));
    assert!(!out.join("pid").exists(), "the workload must not start");
    assert_eq!(std::fs::read(env.log()).unwrap(), log_before);
    assert_eq!(pcr23(&host), pcr_before);
    assert_eq!(
        std::fs::read_dir(env.dir.path().join("tmp"))
            .unwrap()
            .count(),
        0,
        "no key left behind"
    );
}

#[test]
fn bad_arguments_are_refused_before_anything_is_written() {
    let host = SimHost::start().unwrap();
    let env = Env::new();
    let model = image_digest("m");
    let hex = &image_digest("x")["sha256:".len()..];
    for (image, message) in [
        (IMAGE_REF.to_owned(), "is not REF@sha256:"),
        (format!("{IMAGE_REF}@sha512:{hex}"), "is not REF@sha256:"),
        (format!("@sha256:{hex}"), "is not REF@sha256:"),
        (
            format!("{IMAGE_REF}@sha256:{}", hex.to_uppercase()),
            "is not REF@sha256:",
        ),
    ] {
        let args = ["--image", &image, "--model-digest", &model];
        let out = env.out("bad");
        let (_, output) = env.launch(&host, &args, &out);
        failed_with(&output, message);
        assert!(!out.join("pid").exists());
    }
    let image = format!("{IMAGE_REF}@{}", image_digest("i"));
    let bad_model = ["--image", image.as_str(), "--model-digest", "sha256:abc"];
    let (_, output) = env.launch(&host, &bad_model, &env.out("bad"));
    failed_with(&output, "ModelDigest");
    let bad_id = [
        "--image",
        image.as_str(),
        "--model-digest",
        &model,
        "--instance-id",
        "a\tb",
    ];
    let (_, output) = env.launch(&host, &bad_id, &env.out("bad"));
    failed_with(&output, "InstanceId");
    let bad_pcr = [
        "--image",
        image.as_str(),
        "--model-digest",
        &model,
        "--pcr",
        "24",
    ];
    let (_, output) = env.launch(&host, &bad_pcr, &env.out("bad"));
    failed_with(&output, "--pcr");

    assert!(!env.log().exists());
    assert_eq!(pcr23(&host), vec![0u8; 32]);
    assert_eq!(
        std::fs::read_dir(env.dir.path().join("tmp"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn unusable_tpm_or_log_leaves_no_trace() {
    let host = SimHost::start().unwrap();
    let env = Env::new();
    let image = format!("{IMAGE_REF}@{}", image_digest("i"));
    let model = image_digest("m");
    let args = ["--image", image.as_str(), "--model-digest", &model];

    // No TPM there: nothing written.
    let out = env.out("no-tpm");
    let missing = format!("swtpm:path={}", env.dir.path().join("nope").display());
    let output = env
        .command_with_tcti(&missing, &args, &out)
        .output()
        .unwrap();
    failed_with(&output, "TPM swtpm:");
    assert!(!out.join("pid").exists());
    assert!(!env.log().exists());

    // A corrupt workload log: refused, left as it was, PCR not extended,
    // no key left behind.
    std::fs::write(env.log(), b"\x00\x00\x00\x00\x08garbage").unwrap();
    let out = env.out("corrupt");
    let (_, output) = env.launch(&host, &args, &out);
    failed_with(&output, "workload log");
    assert!(!out.join("pid").exists());
    assert_eq!(
        std::fs::read(env.log()).unwrap(),
        b"\x00\x00\x00\x00\x08garbage"
    );
    assert_eq!(pcr23(&host), vec![0u8; 32]);
    assert_eq!(
        std::fs::read_dir(env.dir.path().join("tmp"))
            .unwrap()
            .count(),
        0
    );

    // A missing command: the record stays (it is in the PCR), the key goes.
    std::fs::remove_file(env.log()).unwrap();
    let output = Command::new(BIN)
        .arg("launch")
        .args(["--tcti", &host.tcti()])
        .arg("--state-dir")
        .arg(env.state())
        .args(args)
        .args(["--", "/nonexistent/keyward-test-cmd"])
        .env("TMPDIR", env.dir.path().join("tmp"))
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap();
    failed_with(&output, "cannot run");
    assert_eq!(verify_log(&env, &host).launch_records().len(), 1);
    assert_eq!(
        std::fs::read_dir(env.dir.path().join("tmp"))
            .unwrap()
            .count(),
        0
    );
}

/// Starts a server whose `[enrollment]` trusts `host`'s EK CA.
fn start_server(dir: &Path, host: &SimHost) -> (Server, String) {
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
    let server = Server(Some(common::spawn(dir, &config)));
    let addr = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    // Readiness: poll the status route (bounded), as the other CLI tests do.
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
fn host_status_shows_what_the_vault_thinks() {
    let host = SimHost::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let state_arg = state.display().to_string();

    // Not enrolled: says so.
    let output = keyward(
        "http://127.0.0.1:1",
        Some("x"),
        &["host", "status", "--state-dir", &state_arg],
        None,
    );
    failed_with(&output, "keyward host enroll");

    let (server, addr) = start_server(dir.path(), &host);
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
    let token = |role: &str| {
        ok_json(&keyward(
            &addr,
            Some(&root),
            &["token", "create", "--role", role, "--format", "json"],
            None,
        ))["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (platform, auditor, release) = (token("platform"), token("auditor"), token("release"));
    let tcti = host.tcti();
    let record = ok_json(&keyward(
        "http://127.0.0.1:1",
        Some(&platform),
        &[
            "host",
            "enroll",
            "--vault",
            &addr,
            "--tcti",
            &tcti,
            "--labels",
            "rack=r1",
            "--state-dir",
            &state_arg,
            "--format",
            "json",
        ],
        None,
    ));
    let id = record["id"].as_str().unwrap().to_owned();

    // The vault address comes from host.json (KEYWARD_ADDR points nowhere).
    let status_args = [
        "host",
        "status",
        "--state-dir",
        &state_arg,
        "--format",
        "json",
    ];
    let status = ok_json(&keyward(
        "http://127.0.0.1:1",
        Some(&auditor),
        &status_args,
        None,
    ));
    assert_eq!(status["id"], id.as_str());
    assert_eq!(status["state"], "pending");
    assert_eq!(status["labels"]["rack"], "r1");
    assert!(status["boot_policy"].is_null());

    ok_json(&keyward(
        &addr,
        Some(&platform),
        &["host", "approve", &id, "--format", "json"],
        None,
    ));
    let table = keyward(
        "http://127.0.0.1:1",
        Some(&platform),
        &["host", "status", "--state-dir", &state_arg],
        None,
    );
    assert!(table.status.success());
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("active"), "{text}");
    assert!(text.contains(&id), "{text}");
    assert!(text.contains("rack=r1"), "{text}");
    assert!(text.contains(&addr), "{text}");

    // The route is admin-only: no token, or a role without it, is refused.
    failed_with(
        &keyward("http://127.0.0.1:1", None, &status_args, None),
        "401",
    );
    failed_with(
        &keyward("http://127.0.0.1:1", Some(&release), &status_args, None),
        "403",
    );
    // --vault overrides host.json.
    let elsewhere = keyward(
        "http://127.0.0.1:1",
        Some(&auditor),
        &[
            "host",
            "status",
            "--state-dir",
            &state_arg,
            "--vault",
            "http://127.0.0.1:1",
        ],
        None,
    );
    assert!(!elsewhere.status.success());
    server.stop();
}
