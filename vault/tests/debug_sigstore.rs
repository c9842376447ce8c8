//! `keyward debug verify-bundle` (Sigstore conformance CLI protocol) and
//! `keyward debug verify-model` against models signed, during the test, by
//! the real `model_signing` tool (PyPI model-signing 1.1.1, installed in
//! `target/tools-venv` by `scripts/deps.sh`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn keyward(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyward"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata/sigstore/conformance")
}

const DEFAULT_IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const DEFAULT_ISSUER: &str = "https://token.actions.githubusercontent.com";

#[test]
fn every_conformance_case_through_the_cli_in_path_and_digest_mode() {
    let root = conformance_dir();
    let production = root.join("../trusted_root.production.json");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    let mut wrong = Vec::new();
    let mut runs = 0;
    for case in &cases {
        let name = case.file_name().unwrap().to_str().unwrap();
        let should_pass = !name.ends_with("_fail");
        let artifact = if case.join("artifact").is_file() {
            case.join("artifact")
        } else {
            root.join("a.txt")
        };
        let digest = format!(
            "sha256:{}",
            hex::encode(ring_sha256(&std::fs::read(&artifact).unwrap()))
        );
        let trusted_root = if case.join("trusted_root.json").is_file() {
            case.join("trusted_root.json")
        } else {
            production.clone()
        };
        let read = |f: &str| {
            std::fs::read_to_string(case.join(f))
                .ok()
                .map(|s| s.trim().to_owned())
        };
        for positional in [artifact.to_str().unwrap().to_owned(), digest] {
            let mut args: Vec<String> =
                vec!["debug".into(), "verify-bundle".into(), "--bundle".into()];
            args.push(case.join("bundle.sigstore.json").to_str().unwrap().into());
            if case.join("key.pub").is_file() {
                args.extend([
                    "--key".into(),
                    case.join("key.pub").to_str().unwrap().into(),
                ]);
            } else {
                args.extend([
                    "--certificate-identity".into(),
                    read("identity").unwrap_or(DEFAULT_IDENTITY.into()),
                ]);
                args.extend([
                    "--certificate-oidc-issuer".into(),
                    read("issuer").unwrap_or(DEFAULT_ISSUER.into()),
                ]);
            }
            args.extend([
                "--trusted-root".into(),
                trusted_root.to_str().unwrap().into(),
                positional,
            ]);
            let out = keyward(&args.iter().map(String::as_str).collect::<Vec<_>>());
            runs += 1;
            if out.status.success() != should_pass {
                wrong.push(format!(
                    "{name}: exit {:?}: {}",
                    out.status.code(),
                    stderr(&out)
                ));
            }
            if !should_pass {
                assert_ne!(out.status.code(), Some(0));
                assert!(!stderr(&out).is_empty(), "{name}: a rejection must say why");
            }
        }
    }
    assert_eq!(runs, 140, "the suite has 70 cases");
    assert!(
        wrong.is_empty(),
        "{} of {runs} runs wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

fn ring_sha256(bytes: &[u8]) -> Vec<u8> {
    keyward_attest::digest::HashAlg::Sha256.hash(&[bytes])
}

fn tools_venv() -> PathBuf {
    std::env::var_os("KEYWARD_TOOLS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools-venv"))
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (run scripts/deps.sh)"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A small model: nested directory, a binary file, a file to ignore.
fn write_model(dir: &Path) {
    std::fs::create_dir_all(dir.join("tokenizer")).unwrap();
    std::fs::write(dir.join("config.json"), br#"{"layers": 2, "hidden": 8}"#).unwrap();
    std::fs::write(
        dir.join("weights.bin"),
        (0..4096u32)
            .flat_map(|i| i.to_le_bytes())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    std::fs::write(dir.join("tokenizer/vocab.txt"), "a\nb\nc\n").unwrap();
    std::fs::write(dir.join("NOTES.md"), "not part of the signed model\n").unwrap();
}

fn openssl(args: &[&str], dir: &Path) {
    run_ok(Command::new("openssl").args(args).current_dir(dir));
}

fn model_signing(args: &[&str], dir: &Path) -> Output {
    Command::new(tools_venv().join("bin/model_signing"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn verify_model(dir: &Path, signer: &[&str], extra: &[&str]) -> Output {
    let mut args = vec!["debug", "verify-model", "--signature", "model.sig"];
    args.extend_from_slice(signer);
    args.extend_from_slice(extra);
    let model = dir.join("model");
    let signature = dir.join("model.sig");
    let args: Vec<String> = args
        .iter()
        .map(|a| match *a {
            "model.sig" => signature.to_str().unwrap().to_owned(),
            other if other.ends_with(".pem") => dir.join(other).to_str().unwrap().to_owned(),
            other => other.to_owned(),
        })
        .chain([model.to_str().unwrap().to_owned()])
        .collect();
    keyward(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The root digest model_signing put in the signed statement's subject.
fn signed_root_digest(signature: &Path) -> String {
    use base64::Engine as _;
    let bundle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(signature).unwrap()).unwrap();
    let payload = base64::engine::general_purpose::STANDARD
        .decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    let statement: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    statement["subject"][0]["digest"]["sha256"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn key_signed_model_from_the_real_tool_verifies_and_changes_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_model(&d.join("model"));
    openssl(
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "signer.key",
        ],
        d,
    );
    openssl(
        &["ec", "-in", "signer.key", "-pubout", "-out", "signer.pem"],
        d,
    );
    openssl(
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "other.key",
        ],
        d,
    );
    openssl(
        &["ec", "-in", "other.key", "-pubout", "-out", "other.pem"],
        d,
    );
    let out = model_signing(
        &[
            "sign",
            "key",
            "--private_key",
            "signer.key",
            "--ignore-paths",
            "model/NOTES.md",
            "--signature",
            "model.sig",
            "model",
        ],
        d,
    );
    assert!(
        out.status.success(),
        "model_signing sign key: {} (run scripts/deps.sh)",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = verify_model(d, &["--key", "signer.pem"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let id = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        id.trim(),
        format!("sha256:{}", signed_root_digest(&d.join("model.sig")))
    );
    // The real tool agrees.
    assert!(
        model_signing(
            &[
                "verify",
                "key",
                "--public_key",
                "signer.pem",
                "--signature",
                "model.sig",
                "model"
            ],
            d
        )
        .status
        .success()
    );

    // Another key.
    let out = verify_model(d, &["--key", "other.pem"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("key"), "{}", stderr(&out));

    // The ignored file may change.
    std::fs::write(d.join("model/NOTES.md"), "edited\n").unwrap();
    assert_eq!(
        verify_model(d, &["--key", "signer.pem"], &[]).status.code(),
        Some(0)
    );

    // A new file is not signed, unless ignored on the command line.
    std::fs::write(d.join("model/extra.txt"), "new\n").unwrap();
    let out = verify_model(d, &["--key", "signer.pem"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("extra.txt"), "{}", stderr(&out));
    assert_eq!(
        verify_model(
            d,
            &["--key", "signer.pem"],
            &["--ignore-paths", "extra.txt"]
        )
        .status
        .code(),
        Some(0)
    );
    std::fs::remove_file(d.join("model/extra.txt")).unwrap();

    // One byte of one signed file.
    let mut weights = std::fs::read(d.join("model/weights.bin")).unwrap();
    weights[100] ^= 1;
    std::fs::write(d.join("model/weights.bin"), weights).unwrap();
    let out = verify_model(d, &["--key", "signer.pem"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("weights.bin"), "{}", stderr(&out));
    assert!(
        !model_signing(
            &[
                "verify",
                "key",
                "--public_key",
                "signer.pem",
                "--signature",
                "model.sig",
                "model"
            ],
            d
        )
        .status
        .success()
    );
}

#[test]
fn certificate_signed_model_from_the_real_tool_chains_only_to_its_ca() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_model(&d.join("model"));
    std::fs::write(
        d.join("ext.cnf"),
        "[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n\
         [leaf]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n\
         subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    )
    .unwrap();
    for (name, subject) in [
        ("ca", "/CN=Keyward Test Model CA"),
        ("other-ca", "/CN=Unrelated CA"),
    ] {
        openssl(
            &[
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
                &format!("{name}.key"),
            ],
            d,
        );
        openssl(
            &[
                "req",
                "-new",
                "-key",
                &format!("{name}.key"),
                "-subj",
                subject,
                "-out",
                &format!("{name}.csr"),
            ],
            d,
        );
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-signkey",
                &format!("{name}.key"),
                "-days",
                "30",
                "-sha256",
                "-extfile",
                "ext.cnf",
                "-extensions",
                "ca",
                "-out",
                &format!("{name}.pem"),
            ],
            d,
        );
    }
    openssl(
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "leaf.key",
        ],
        d,
    );
    openssl(
        &[
            "req",
            "-new",
            "-key",
            "leaf.key",
            "-subj",
            "/CN=release-engineer",
            "-out",
            "leaf.csr",
        ],
        d,
    );
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-sha256",
            "-extfile",
            "ext.cnf",
            "-extensions",
            "leaf",
            "-out",
            "leaf.pem",
        ],
        d,
    );
    let out = model_signing(
        &[
            "sign",
            "certificate",
            "--private_key",
            "leaf.key",
            "--signing_certificate",
            "leaf.pem",
            "--certificate_chain",
            "ca.pem",
            "--ignore-paths",
            "model/NOTES.md",
            "--signature",
            "model.sig",
            "model",
        ],
        d,
    );
    assert!(
        out.status.success(),
        "model_signing sign certificate: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = verify_model(d, &["--certificate-chain", "ca.pem"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        format!("sha256:{}", signed_root_digest(&d.join("model.sig")))
    );

    let out = verify_model(d, &["--certificate-chain", "other-ca.pem"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).to_lowercase().contains("chain")
            || stderr(&out).to_lowercase().contains("trust"),
        "{}",
        stderr(&out)
    );

    std::fs::write(d.join("model/tokenizer/vocab.txt"), "a\nb\nX\n").unwrap();
    let out = verify_model(d, &["--certificate-chain", "ca.pem"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("tokenizer/vocab.txt"),
        "{}",
        stderr(&out)
    );
}
