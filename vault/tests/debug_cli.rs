//! `keyward debug quote` and `keyward debug eventlog` against files made by
//! tpm2-tools on swtpm (the checked-in vectors and a live TPM) and against
//! real boot event logs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use keyward_attest::digest::{HashAlg, PcrValues};
use keyward_attest::tpm::pcr::PcrFile;
use keyward_hardware::harness::SimHost;

fn keyward(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyward"))
        .args(args)
        .output()
        .unwrap()
}

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../attest/testdata/tpm")
}

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata")
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn debug_quote(ak: &Path, msg: &Path, sig: &Path, pcrs: &Path, nonce: &str) -> Output {
    keyward(&[
        "debug",
        "quote",
        "--ak",
        s(ak),
        "--quote",
        s(msg),
        "--sig",
        s(sig),
        "--pcrs",
        s(pcrs),
        "--nonce",
        nonce,
    ])
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn quote_vectors_from_tpm2_tools_verify_with_pem_and_tpm2b_aks() {
    let v = vectors();
    let nonce = std::fs::read_to_string(v.join("nonce.hex")).unwrap();
    for ak in ["rsa", "rsapss", "ecc", "ecc384"] {
        for key in [format!("ak_{ak}.pub"), format!("ak_{ak}.pem")] {
            let out = debug_quote(
                &v.join(&key),
                &v.join(format!("quote_{ak}.msg")),
                &v.join(format!("quote_{ak}.sig")),
                &v.join(format!("quote_{ak}.pcrs")),
                nonce.trim(),
            );
            assert_eq!(out.status.code(), Some(0), "{key}: {}", stderr(&out));
            let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(report["valid"], true);
            assert_eq!(
                report["pcrs"]["sha256"].as_object().unwrap().len(),
                9,
                "{key}"
            );
        }
    }
}

#[test]
fn tampered_quotes_exit_1_with_the_reason() {
    let v = vectors();
    let dir = tempfile::tempdir().unwrap();
    let nonce = std::fs::read_to_string(v.join("nonce.hex")).unwrap();
    let nonce = nonce.trim();
    let (ak, msg, sig, pcrs) = (
        v.join("ak_rsa.pem"),
        v.join("quote_rsa.msg"),
        v.join("quote_rsa.sig"),
        v.join("quote_rsa.pcrs"),
    );

    let other_nonce = format!("00{}", &nonce[2..]);
    let out = debug_quote(&ak, &msg, &sig, &pcrs, &other_nonce);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("invalid quote"), "{}", stderr(&out));
    assert!(
        stderr(&out).to_lowercase().contains("qualifying data")
            || stderr(&out).to_lowercase().contains("nonce"),
        "{}",
        stderr(&out)
    );

    let mut bytes = std::fs::read(&sig).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    let bad_sig = dir.path().join("bad.sig");
    std::fs::write(&bad_sig, bytes).unwrap();
    let out = debug_quote(&ak, &msg, &bad_sig, &pcrs, nonce);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("signature"), "{}", stderr(&out));

    let mut values = PcrFile::parse(&std::fs::read(&pcrs).unwrap())
        .unwrap()
        .into_values();
    let mut changed = PcrValues::new();
    for (alg, index, value) in values.iter() {
        let mut value = value.to_vec();
        if index == 23 {
            value[31] ^= 1;
        }
        changed.insert(alg, u32::from(index), value).unwrap();
    }
    values = changed;
    let bad_pcrs = dir.path().join("bad.pcrs");
    std::fs::write(&bad_pcrs, PcrFile::encode(&values).unwrap()).unwrap();
    let out = debug_quote(&ak, &msg, &sig, &bad_pcrs, nonce);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).to_lowercase().contains("pcr"),
        "{}",
        stderr(&out)
    );

    // A TPM2_Sign signature over a forged TPMS_ATTEST is not a quote.
    let out = debug_quote(
        &ak,
        &v.join("forged_quote_rsa.msg"),
        &v.join("forged_quote_rsa.sig"),
        &pcrs,
        nonce,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("TPM_GENERATED") || stderr(&out).contains("generated"),
        "{}",
        stderr(&out)
    );

    // Unreadable input is a failure too, never a pass.
    let out = debug_quote(&dir.path().join("missing"), &msg, &sig, &pcrs, nonce);
    assert_eq!(out.status.code(), Some(1));
}

/// tpm2-tools against a live swtpm, then `keyward debug quote` on what it wrote.
#[test]
fn live_tpm2_tools_quote_verifies_and_another_nonce_does_not() {
    let host = SimHost::start().unwrap();
    let dir = host.dir();
    let tools = |args: &[&str]| {
        let out = Command::new(args[0])
            .args(&args[1..])
            .current_dir(dir)
            .env("TPM2TOOLS_TCTI", host.tcti())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Without a resource manager each tool leaves its objects loaded.
        let _ = Command::new("tpm2_flushcontext")
            .arg("-t")
            .env("TPM2TOOLS_TCTI", host.tcti())
            .output();
    };
    tools(&["tpm2_createek", "-c", "ek.ctx", "-G", "rsa", "-u", "ek.pub"]);
    tools(&[
        "tpm2_createak",
        "-C",
        "ek.ctx",
        "-c",
        "ak.ctx",
        "-G",
        "rsa",
        "-g",
        "sha256",
        "-s",
        "rsassa",
        "-u",
        "ak.pub",
        "-f",
        "pem",
    ]);
    tools(&[
        "tpm2_pcrextend",
        "23:sha256=0101010101010101010101010101010101010101010101010101010101010101",
    ]);
    let nonce = "6b6579776172642d6c6976652d6e6f6e6365";
    tools(&[
        "tpm2_quote",
        "-c",
        "ak.ctx",
        "-l",
        "sha256:0,1,2,3,4,5,6,7,23",
        "-q",
        nonce,
        "-m",
        "q.msg",
        "-s",
        "q.sig",
        "-o",
        "q.pcrs",
        "-g",
        "sha256",
    ]);

    let out = debug_quote(
        &dir.join("ak.pub"),
        &dir.join("q.msg"),
        &dir.join("q.sig"),
        &dir.join("q.pcrs"),
        nonce,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["pcrs"]["sha256"]["23"],
        hex::encode(ring_sha256(
            &[[0u8; 32].as_slice(), [1u8; 32].as_slice()].concat()
        ))
    );
    let out = debug_quote(
        &dir.join("ak.pub"),
        &dir.join("q.msg"),
        &dir.join("q.sig"),
        &dir.join("q.pcrs"),
        "00",
    );
    assert_eq!(out.status.code(), Some(1));
}

fn ring_sha256(data: &[u8]) -> Vec<u8> {
    HashAlg::Sha256.hash(&[data])
}

#[test]
fn eventlog_replays_every_real_log_to_its_expected_pcrs() {
    let dir = shared().join("tpm/eventlogs");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let entries = manifest.as_array().unwrap();
    assert!(entries.len() >= 6);
    for entry in entries {
        let file = dir.join(entry["file"].as_str().unwrap());
        let out = keyward(&["debug", "eventlog", s(&file)]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            file.display(),
            stderr(&out)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(!report["events"].as_array().unwrap().is_empty());
        assert!(report["facts"].is_object());
        for (bank, pcrs) in entry["expected_pcrs"].as_object().unwrap() {
            for (index, value) in pcrs.as_object().unwrap() {
                assert_eq!(
                    &report["pcrs"][bank][index],
                    value,
                    "{} {bank}:{index}",
                    file.display()
                );
            }
        }
    }
}

#[test]
fn eventlog_checks_against_quoted_pcrs_when_given() {
    let log = shared().join("tpm/eventlogs/rhel8-uefi.bin");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(shared().join("tpm/eventlogs/manifest.json")).unwrap(),
    )
    .unwrap();
    let entry = manifest
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["file"] == "rhel8-uefi.bin")
        .unwrap();
    let mut quoted = PcrValues::new();
    for (index, value) in entry["expected_pcrs"]["sha256"].as_object().unwrap() {
        quoted
            .insert(
                HashAlg::Sha256,
                index.parse().unwrap(),
                hex::decode(value.as_str().unwrap()).unwrap(),
            )
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.pcrs");
    std::fs::write(&good, PcrFile::encode(&quoted).unwrap()).unwrap();
    let out = keyward(&["debug", "eventlog", s(&log), "--pcrs", s(&good)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["checked_against"], "quote");
    assert_eq!(report["facts"]["secure_boot"]["state"], "enabled");

    let mut tampered = PcrValues::new();
    for (alg, index, value) in quoted.iter() {
        let mut value = value.to_vec();
        if index == 4 {
            value[0] ^= 1;
        }
        tampered.insert(alg, u32::from(index), value).unwrap();
    }
    let bad = dir.path().join("bad.pcrs");
    std::fs::write(&bad, PcrFile::encode(&tampered).unwrap()).unwrap();
    let out = keyward(&["debug", "eventlog", s(&log), "--pcrs", s(&bad)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("does not match"), "{}", stderr(&out));

    let garbage = dir.path().join("garbage.bin");
    std::fs::write(&garbage, b"not an event log").unwrap();
    assert_eq!(
        keyward(&["debug", "eventlog", s(&garbage)]).status.code(),
        Some(1)
    );
}
