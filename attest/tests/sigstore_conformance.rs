//! The Sigstore conformance suite's bundle-verification cases
//! (sigstore/sigstore-conformance a73de497, `test/assets/bundle-verify/`, kept
//! in `../shared/testdata/sigstore/conformance/`; see its README), each run
//! through [`verify_bundle_command`] as `keyward debug verify-bundle` runs it,
//! once with the artifact's bytes (PATH mode) and once with
//! `sha256:<hex>` of them (DIGEST mode). Directories ending in `_fail` must
//! be rejected, all others accepted.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};

use keyward_attest::sigstore::cli::{CommandArtifact, CommandSigner, verify_bundle_command};

const DEFAULT_IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const DEFAULT_ISSUER: &str = "https://token.actions.githubusercontent.com";

fn suite() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata/sigstore/conformance")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

struct Outcome {
    case: String,
    mode: &'static str,
    expected_ok: bool,
    result: Result<String, String>,
}

fn run_case(dir: &Path, digest_mode: bool) -> Result<String, String> {
    let bundle = std::fs::read(dir.join("bundle.sigstore.json")).unwrap();
    let artifact_path = if dir.join("artifact").exists() {
        dir.join("artifact")
    } else {
        suite().join("a.txt")
    };
    let artifact = std::fs::read(&artifact_path).unwrap();
    let trusted_root = std::fs::read(dir.join("trusted_root.json")).ok();
    let key = std::fs::read_to_string(dir.join("key.pub")).ok();
    let identity = read_trimmed(&dir.join("identity")).unwrap_or(DEFAULT_IDENTITY.to_string());
    let issuer = read_trimmed(&dir.join("issuer")).unwrap_or(DEFAULT_ISSUER.to_string());
    let signer = match &key {
        Some(pem) => CommandSigner::Key(pem),
        None => CommandSigner::Identity {
            identity: &identity,
            issuer: &issuer,
        },
    };
    let digest = format!(
        "sha256:{}",
        hex::encode(ring::digest::digest(&ring::digest::SHA256, &artifact))
    );
    let input = if digest_mode {
        CommandArtifact::Digest(&digest)
    } else {
        CommandArtifact::File(&artifact)
    };
    verify_bundle_command(&bundle, signer, trusted_root.as_deref(), input, now())
        .map(|verified| verified.digest_string())
        .map_err(|error| error.report().replace('\n', " | "))
}

#[test]
fn every_conformance_case_in_both_modes() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(suite())
        .expect("../shared/testdata/sigstore/conformance must exist beside the checkout")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    cases.sort();
    assert_eq!(cases.len(), 70, "the suite has 70 cases");

    let mut outcomes = Vec::new();
    for dir in &cases {
        let case = dir.file_name().unwrap().to_string_lossy().to_string();
        let expected_ok = !case.ends_with("_fail");
        for (mode, digest_mode) in [("PATH", false), ("DIGEST", true)] {
            let result = run_case(dir, digest_mode);
            outcomes.push(Outcome {
                case: case.clone(),
                mode,
                expected_ok,
                result,
            });
        }
    }
    assert_eq!(outcomes.len(), 140);

    let wrong: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.result.is_ok() != o.expected_ok)
        .collect();
    if !wrong.is_empty() || std::env::var_os("SIGSTORE_CONFORMANCE_TABLE").is_some() {
        let mut table = String::from("\ncase | mode | expected | got\n---|---|---|---\n");
        for o in &outcomes {
            let mark = if o.result.is_ok() == o.expected_ok {
                ""
            } else {
                "  <-- WRONG"
            };
            let got = match &o.result {
                Ok(digest) => format!("ok {digest}"),
                Err(e) => format!("rejected: {e}"),
            };
            let expected = if o.expected_ok { "ok" } else { "reject" };
            table.push_str(&format!(
                "{} | {} | {} | {}{}\n",
                o.case, o.mode, expected, got, mark
            ));
        }
        assert!(
            wrong.is_empty(),
            "{} of 140 runs wrong:{table}",
            wrong.len()
        );
        println!("{table}");
    }
}

/// Failing cases fail for their stated reason (each README), not just fail.
#[test]
fn failing_cases_report_their_reason() {
    use keyward_attest::sigstore::cli::CommandError;
    use keyward_attest::sigstore::{
        BundleError, BundleField, CertificateFailure, TimestampFailure, TlogFailure, VerifyError,
    };
    fn verify(case: &str) -> CommandError {
        let dir = suite().join(case);
        let bundle = std::fs::read(dir.join("bundle.sigstore.json")).unwrap();
        let artifact_path = if dir.join("artifact").exists() {
            dir.join("artifact")
        } else {
            suite().join("a.txt")
        };
        let artifact = std::fs::read(artifact_path).unwrap();
        let trusted_root = std::fs::read(dir.join("trusted_root.json")).ok();
        let key = std::fs::read_to_string(dir.join("key.pub")).ok();
        let signer = match &key {
            Some(pem) => CommandSigner::Key(pem),
            None => CommandSigner::Identity {
                identity: DEFAULT_IDENTITY,
                issuer: DEFAULT_ISSUER,
            },
        };
        verify_bundle_command(
            &bundle,
            signer,
            trusted_root.as_deref(),
            CommandArtifact::File(&artifact),
            now(),
        )
        .unwrap_err()
    }
    let reason = |case: &str| match verify(case) {
        CommandError::Verify(error) => error,
        other => panic!("{case}: {other:?}"),
    };
    assert!(matches!(
        reason("bundle-invalid-base64-signature_fail"),
        VerifyError::Bundle(BundleError::InvalidBase64 {
            field: BundleField::MessageSignature
        })
    ));
    assert!(matches!(
        reason("bundle-empty-certificate-chain_fail"),
        VerifyError::Bundle(BundleError::EmptyCertificateChain)
    ));
    assert!(matches!(
        reason("bundle-unknown-version_fail"),
        VerifyError::Bundle(BundleError::UnknownMediaType { .. })
    ));
    assert!(matches!(
        reason("bundle-malformed-json_fail"),
        VerifyError::Bundle(BundleError::Json { .. })
    ));
    assert!(matches!(
        reason("checkpoint-bad-keyhint_fail"),
        VerifyError::TransparencyLog {
            reason: TlogFailure::Checkpoint,
            ..
        }
    ));
    assert!(matches!(
        reason("invalid-checkpoint-signature_fail"),
        VerifyError::TransparencyLog {
            reason: TlogFailure::Checkpoint,
            ..
        }
    ));
    assert!(matches!(
        reason("inclusion-proof-corrupted-hash_fail"),
        VerifyError::TransparencyLog {
            reason: TlogFailure::InclusionProof,
            ..
        }
    ));
    assert!(matches!(
        reason("set-invalid-signature_fail"),
        VerifyError::TransparencyLog {
            reason: TlogFailure::InclusionPromise,
            ..
        }
    ));
    assert!(matches!(
        reason("dsse-mismatch-envelope_fail"),
        VerifyError::TransparencyLog {
            reason: TlogFailure::EntryMismatch,
            ..
        }
    ));
    assert!(matches!(
        reason("wrong-hashedrekord-cert-and-sig_fail"),
        VerifyError::TransparencyLog {
            reason: TlogFailure::EntryMismatch,
            ..
        }
    ));
    assert!(matches!(
        reason("invalid-ct-key_fail"),
        VerifyError::Certificate {
            reason: CertificateFailure::Sct,
            ..
        }
    ));
    assert!(matches!(
        reason("intoto-expired-certificate_fail"),
        VerifyError::Certificate {
            reason: CertificateFailure::ChainInvalid,
            ..
        }
    ));
    assert!(matches!(
        reason("signature-mismatch_fail"),
        VerifyError::SignatureInvalid { .. }
    ));
    assert!(matches!(
        reason("dsse-invalid-sig_fail"),
        VerifyError::SignatureInvalid { .. }
    ));
    assert!(matches!(
        reason("message-digest-mismatch_fail"),
        VerifyError::ArtifactMismatch { .. }
    ));
    assert!(matches!(
        reason("wrong-hashedrekord-artifact_fail"),
        VerifyError::ArtifactMismatch { .. }
    ));
    assert!(matches!(
        reason("rekor2-no-timestamp_fail"),
        VerifyError::Timestamp {
            reason: TimestampFailure::NoVerifiedTimestamp,
            ..
        }
    ));
    assert!(matches!(
        reason("rekor2-timestamp-outside-trust-root-tsa-validity_fail"),
        VerifyError::Timestamp {
            reason: TimestampFailure::OutsideAuthorityValidity,
            ..
        }
    ));
    assert!(matches!(
        reason("rekor2-timestamp-payload-mismatch_fail"),
        VerifyError::Timestamp {
            reason: TimestampFailure::Invalid,
            ..
        }
    ));
    assert!(matches!(
        reason("managed-key-no-key_fail"),
        VerifyError::KeyNotAllowed
    ));
    assert!(matches!(
        reason("intoto-missing-inclusion-proof_fail"),
        VerifyError::UnsupportedBundle { .. }
    ));
    // The key file itself is malformed ("wrongkey" inside the base64).
    assert!(matches!(
        verify("managed-key-wrong-key_fail"),
        CommandError::Policy(_)
    ));
    // A trusted root whose tlog key lacks validFor.start does not load.
    assert!(matches!(
        verify("trust-root-tlog-missing-validity-start_fail"),
        CommandError::TrustRoot(_)
    ));
    // The RFC 3161 token's base64 is wrapped at 76 columns; the protobuf JSON
    // mapping does not allow line breaks, so the bundle is refused before the
    // (also failing) timestamp-outside-certificate check.
    assert!(matches!(
        reason("rekor2-timestamp-with-incorrect-time_fail"),
        VerifyError::Bundle(BundleError::InvalidBase64 {
            field: BundleField::Rfc3161Timestamp
        })
    ));
}
