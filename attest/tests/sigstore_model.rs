//! OpenSSF model signing: vectors made by the real `model_signing` CLI
//! (1.1.1 and 1.0.1, `attest/testdata/model-signing/gen.sh`) and upstream's
//! own keyless compatibility vectors (`testdata/model-signing/upstream/`,
//! see the README there).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

use keyward_attest::sigstore::cli::{CommandSigner, verify_model_command};
use keyward_attest::sigstore::model::{
    ModelError, PredicateField, SerializationMethod, SigningMode, verify_model_signature,
};
use keyward_attest::sigstore::{
    ArtifactKind, PREDICATE_MODEL_SIGNING_V1, Signer, SigningPolicy, TrustRoot, VerifyError,
};
use serde_json::json;

/// The verification time. Certificate-mode chains are judged at the signing
/// certificate's notBefore; `now` only has to be after it, which holds for
/// any run after `gen.sh` wrote the vectors.
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
const IBM_ISSUER: &str = "https://sigstore.verify.ibm.com/oauth2";
const IBM_IDENTITY: &str = "stefanb@us.ibm.com";

fn dir() -> String {
    format!("{}/testdata/model-signing", env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/{path}", dir())).unwrap()
}

fn text(path: &str) -> String {
    String::from_utf8(read(path)).unwrap()
}

/// The root digest `model_signing` recorded for a signature (gen.sh wrote them).
fn recorded_root(signature: &str) -> String {
    text("signatures/root-digests.txt")
        .lines()
        .find_map(|line| {
            line.strip_prefix(&format!("{signature} "))
                .map(str::to_string)
        })
        .unwrap()
}

/// The model directory as (relative path, contents), as the vault's walker would give it.
fn load_model(root: &str) -> Vec<(String, Vec<u8>)> {
    fn walk(base: &Path, at: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                let relative = path
                    .strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((relative, std::fs::read(&path).unwrap()));
            }
        }
    }
    let base = Path::new(&dir()).join(root);
    let mut out = Vec::new();
    walk(&base, &base, &mut out);
    out.sort();
    out
}

fn refs(files: &[(String, Vec<u8>)]) -> Vec<(&str, &[u8])> {
    files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_slice()))
        .collect()
}

fn with_file(files: &[(String, Vec<u8>)], path: &str, contents: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = files.iter().filter(|(p, _)| p != path).cloned().collect();
    out.push((path.to_string(), contents.to_vec()));
    out
}

fn without_file(files: &[(String, Vec<u8>)], path: &str) -> Vec<(String, Vec<u8>)> {
    files.iter().filter(|(p, _)| p != path).cloned().collect()
}

fn policy(value: serde_json::Value) -> SigningPolicy {
    SigningPolicy::from_json(value.to_string().as_bytes()).unwrap()
}

fn key_policy(key: &str) -> SigningPolicy {
    policy(
        json!({"kind": "model", "predicate_types": [PREDICATE_MODEL_SIGNING_V1],
        "keys": [{"key_id": "release", "public_key": text(&format!("keys/{key}"))}]}),
    )
}

fn ca_policy(bundle: &str) -> SigningPolicy {
    policy(
        json!({"kind": "model", "predicate_types": [PREDICATE_MODEL_SIGNING_V1],
        "certificate_authorities": [{"ca_id": "ml-ca", "certificates": text(&format!("keys/{bundle}"))}]}),
    )
}

fn keyless_policy(subject: &str) -> SigningPolicy {
    policy(
        json!({"kind": "model", "predicate_types": [PREDICATE_MODEL_SIGNING_V1],
        "identities": [{"issuer": IBM_ISSUER, "subject": subject}]}),
    )
}

fn root() -> TrustRoot {
    TrustRoot::production().unwrap()
}

fn check(
    policy: &SigningPolicy,
    signature: &[u8],
    files: &[(String, Vec<u8>)],
    ignore: &[&str],
    git: bool,
) -> Result<keyward_attest::sigstore::VerifiedArtifact, ModelError> {
    verify_model_signature(&root(), policy, signature, now())?.check_files(
        &refs(files),
        ignore,
        git,
    )
}

// --- key mode -------------------------------------------------------------------

#[test]
fn key_v11_signature_verifies_with_its_files() {
    let files = load_model("model");
    let verified = check(
        &key_policy("signer.pub"),
        &read("signatures/key-v11.sig"),
        &files,
        &[],
        true,
    )
    .unwrap();
    assert_eq!(verified.kind(), ArtifactKind::Model);
    assert_eq!(
        verified.signer(),
        &Signer::Key {
            key_id: "release".to_string()
        }
    );
    assert_eq!(verified.predicate_type(), Some(PREDICATE_MODEL_SIGNING_V1));
    let version = verified.model().unwrap();
    assert_eq!(version.id(), recorded_root("key-v11.sig"));
    assert_eq!(verified.digest_string(), version.id());
    assert_eq!(version.name(), "model");
    assert_eq!(version.serialization().method, SerializationMethod::Files);
    assert_eq!(version.serialization().hash_type, "sha256");
    assert!(
        version
            .serialization()
            .ignore_paths
            .contains(&"README.md".to_string())
    );
    assert_eq!(version.resource_count(), 4);
    assert!(verified.tlog().is_none());
}

#[test]
fn one_changed_file_is_named() {
    let files = with_file(&load_model("model"), "weights.bin", b"tampered weights");
    let error = check(
        &key_policy("signer.pub"),
        &read("signatures/key-v11.sig"),
        &files,
        &[],
        true,
    )
    .unwrap_err();
    assert!(
        matches!(error, ModelError::DigestMismatch { ref resource } if resource == "weights.bin"),
        "{error:?}"
    );
    let nested = with_file(&load_model("model"), "tokenizer/vocab.txt", b"hello\n");
    let error = check(
        &key_policy("signer.pub"),
        &read("signatures/key-v11.sig"),
        &nested,
        &[],
        true,
    )
    .unwrap_err();
    assert!(
        matches!(error, ModelError::DigestMismatch { ref resource } if resource == "tokenizer/vocab.txt"),
        "{error:?}"
    );
}

#[test]
fn ignored_files_may_change() {
    // README.md is in the signature's ignore paths; .gitignore and .github/
    // are git files, ignored by default.
    let mut files = with_file(&load_model("model"), "README.md", b"edited after signing\n");
    files = with_file(&files, ".gitignore", b"*.bak\n");
    files = with_file(&files, ".github/new.yml", b"on: pull_request\n");
    assert!(
        check(
            &key_policy("signer.pub"),
            &read("signatures/key-v11.sig"),
            &files,
            &[],
            true
        )
        .is_ok()
    );
    // Caller-supplied ignore paths are honoured too (e.g. the signature file).
    let extra = with_file(&files, "model.sig", b"{}");
    assert!(
        check(
            &key_policy("signer.pub"),
            &read("signatures/key-v11.sig"),
            &extra,
            &["./model.sig"],
            true
        )
        .is_ok()
    );
}

#[test]
fn extra_and_missing_files_are_named() {
    let extra = with_file(&load_model("model"), "tokenizer/merges.txt", b"a b\n");
    let error = check(
        &key_policy("signer.pub"),
        &read("signatures/key-v11.sig"),
        &extra,
        &[],
        true,
    )
    .unwrap_err();
    assert!(
        matches!(error, ModelError::UnsignedFile { ref resource } if resource == "tokenizer/merges.txt"),
        "{error:?}"
    );
    let missing = without_file(&load_model("model"), "config.json");
    let error = check(
        &key_policy("signer.pub"),
        &read("signatures/key-v11.sig"),
        &missing,
        &[],
        true,
    )
    .unwrap_err();
    assert!(
        matches!(error, ModelError::MissingFile { ref resource } if resource == "config.json"),
        "{error:?}"
    );
}

#[test]
fn wrong_key_is_rejected() {
    // 1.1 bundles name their key by hint.
    let error = verify_model_signature(
        &root(),
        &key_policy("other.pub"),
        &read("signatures/key-v11.sig"),
        now(),
    )
    .unwrap_err();
    assert!(
        matches!(error, ModelError::KeyHintMismatch { .. }),
        "{error:?}"
    );
    // 1.0.x bundles carry no hint: the signature itself fails.
    let error = verify_model_signature(
        &root(),
        &key_policy("other.pub"),
        &read("signatures/key-v10.sig"),
        now(),
    )
    .unwrap_err();
    assert!(matches!(error, ModelError::SignatureInvalid), "{error:?}");
}

#[test]
fn key_v10_signature_verifies_as_model_signing_1_1_does() {
    // 1.0.1 recorded no ignore paths and hashed the git files, so (as with
    // `model_signing verify --no-ignore-git-paths --ignore-paths README.md`)
    // the caller ignores README.md and keeps git files.
    let files = load_model("model");
    let verified = check(
        &key_policy("signer.pub"),
        &read("signatures/key-v10.sig"),
        &files,
        &["README.md"],
        false,
    )
    .unwrap();
    assert_eq!(verified.model().unwrap().id(), recorded_root("key-v10.sig"));
    let error = check(
        &key_policy("signer.pub"),
        &read("signatures/key-v10.sig"),
        &files,
        &[],
        false,
    )
    .unwrap_err();
    assert!(
        matches!(error, ModelError::UnsignedFile { ref resource } if resource == "README.md"),
        "{error:?}"
    );
    let error = check(
        &key_policy("signer.pub"),
        &read("signatures/key-v10.sig"),
        &files,
        &["README.md"],
        true,
    )
    .unwrap_err();
    assert!(
        matches!(error, ModelError::MissingFile { ref resource } if resource == ".github/ci.yml"),
        "{error:?}"
    );
}

#[test]
fn shard_serialization_verifies_and_names_the_shard() {
    let files = load_model("model");
    let verified = check(
        &key_policy("signer.pub"),
        &read("signatures/key-shards-v11.sig"),
        &files,
        &[],
        true,
    )
    .unwrap();
    let version = verified.model().unwrap();
    assert_eq!(version.id(), recorded_root("key-shards-v11.sig"));
    assert_eq!(
        version.serialization().method,
        SerializationMethod::Shards { shard_size: 1000 }
    );
    let mut weights = files
        .iter()
        .find(|(p, _)| p == "weights.bin")
        .unwrap()
        .1
        .clone();
    weights[1500] ^= 1;
    let changed = with_file(&files, "weights.bin", &weights);
    let error = check(
        &key_policy("signer.pub"),
        &read("signatures/key-shards-v11.sig"),
        &changed,
        &[],
        true,
    )
    .unwrap_err();
    assert!(
        matches!(error, ModelError::DigestMismatch { ref resource } if resource == "weights.bin:1000:2000"),
        "{error:?}"
    );
}

// --- certificate mode -------------------------------------------------------------

#[test]
fn certificate_signatures_verify_v11_and_v10() {
    let files = load_model("model");
    let verified = check(
        &ca_policy("ca-bundle.pem"),
        &read("signatures/certificate-v11.sig"),
        &files,
        &[],
        true,
    )
    .unwrap();
    let Signer::Certificate { ca_id, .. } = verified.signer() else {
        panic!()
    };
    assert_eq!(ca_id, "ml-ca");
    assert_eq!(
        verified.model().unwrap().id(),
        recorded_root("certificate-v11.sig")
    );
    // The CA bundle may also be only the root: the chain in the bundle supplies the intermediate.
    let root_only = check(
        &ca_policy("ca-root.pem"),
        &read("signatures/certificate-v11.sig"),
        &files,
        &[],
        true,
    );
    assert!(root_only.is_ok(), "{root_only:?}");
    let v10 = check(
        &ca_policy("ca-bundle.pem"),
        &read("signatures/certificate-v10.sig"),
        &files,
        &["README.md"],
        false,
    );
    assert_eq!(
        v10.unwrap().model().unwrap().id(),
        recorded_root("certificate-v10.sig")
    );
}

#[test]
fn certificate_chaining_to_another_ca_fails() {
    let error = verify_model_signature(
        &root(),
        &ca_policy("other-root.pem"),
        &read("signatures/certificate-v11.sig"),
        now(),
    )
    .unwrap_err();
    assert!(
        matches!(error, ModelError::ChainUntrusted { .. }),
        "{error:?}"
    );
}

#[test]
fn certificate_not_yet_valid_at_now_fails() {
    let error = verify_model_signature(
        &root(),
        &ca_policy("ca-bundle.pem"),
        &read("signatures/certificate-v11.sig"),
        0,
    )
    .unwrap_err();
    assert!(
        matches!(error, ModelError::CertificateNotYetValid { now: 0, .. }),
        "{error:?}"
    );
}

#[test]
fn signing_mode_must_be_allowed_by_the_policy() {
    let error = verify_model_signature(
        &root(),
        &ca_policy("ca-bundle.pem"),
        &read("signatures/key-v11.sig"),
        now(),
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            ModelError::ModeNotAllowed {
                mode: SigningMode::Key
            }
        ),
        "{error:?}"
    );
    let error = verify_model_signature(
        &root(),
        &key_policy("signer.pub"),
        &read("signatures/certificate-v11.sig"),
        now(),
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            ModelError::ModeNotAllowed {
                mode: SigningMode::Certificate
            }
        ),
        "{error:?}"
    );
    let error = verify_model_signature(
        &root(),
        &key_policy("signer.pub"),
        &read("upstream/v1.1.0-sigstore.sig"),
        now(),
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            ModelError::ModeNotAllowed {
                mode: SigningMode::Keyless
            }
        ),
        "{error:?}"
    );
    let image = policy(
        json!({"kind": "image", "predicate_types": ["https://sigstore.dev/cosign/sign/v1"],
        "keys": [{"key_id": "k", "public_key": text("keys/signer.pub")}]}),
    );
    let error = verify_model_signature(&root(), &image, &read("signatures/key-v11.sig"), now())
        .unwrap_err();
    assert!(
        matches!(
            error,
            ModelError::PolicyKind {
                policy: ArtifactKind::Image
            }
        ),
        "{error:?}"
    );
}

// --- keyless (upstream vectors) ---------------------------------------------------

#[test]
fn upstream_keyless_signatures_verify() {
    let files = load_model("upstream/signme");
    for signature in [
        "upstream/v1.1.0-sigstore.sig",
        "upstream/v1.0.1-sigstore.sig",
    ] {
        let verified = check(
            &keyless_policy(IBM_IDENTITY),
            &read(signature),
            &files,
            &[],
            true,
        )
        .unwrap();
        let Signer::Keyless {
            issuer, subject, ..
        } = verified.signer()
        else {
            panic!()
        };
        assert_eq!(
            (issuer.as_str(), subject.as_str()),
            (IBM_ISSUER, IBM_IDENTITY)
        );
        assert!(verified.tlog().is_some());
        assert_eq!(
            verified.model().unwrap().id(),
            "sha256:61d4849d9d90076d6215f4d525f13d6574af8e3f67aef3e6f36fc40a14fdd226"
        );
    }
    let changed = with_file(&files, "signme-2", b"signme-3");
    let error = check(
        &keyless_policy(IBM_IDENTITY),
        &read("upstream/v1.1.0-sigstore.sig"),
        &changed,
        &[],
        true,
    )
    .unwrap_err();
    assert!(
        matches!(error, ModelError::DigestMismatch { ref resource } if resource == "signme-2"),
        "{error:?}"
    );
}

#[test]
fn upstream_keyless_signature_with_another_identity_fails() {
    let error = verify_model_signature(
        &root(),
        &keyless_policy("someone@example.com"),
        &read("upstream/v1.1.0-sigstore.sig"),
        now(),
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            ModelError::Verify(VerifyError::IdentityNotAllowed { .. })
        ),
        "{error:?}"
    );
}

#[test]
fn registration_by_root_digest() {
    let signature = verify_model_signature(
        &root(),
        &key_policy("signer.pub"),
        &read("signatures/key-v11.sig"),
        now(),
    )
    .unwrap();
    let mut root_digest = *signature.version().root_digest();
    assert!(signature.clone().for_root_digest(&root_digest).is_ok());
    root_digest[0] ^= 1;
    let error = signature.for_root_digest(&root_digest).unwrap_err();
    assert!(
        matches!(error, ModelError::UnexpectedRootDigest { .. }),
        "{error:?}"
    );
}

#[test]
fn debug_command_prints_the_version_id() {
    let files = load_model("model");
    let pem = text("keys/signer.pub");
    let verified = verify_model_command(
        &read("signatures/key-v11.sig"),
        CommandSigner::Key(&pem),
        None,
        &refs(&files),
        &[],
        now(),
    )
    .unwrap();
    assert_eq!(verified.model().unwrap().id(), recorded_root("key-v11.sig"));
    let ca = text("keys/ca-bundle.pem");
    let verified = verify_model_command(
        &read("signatures/certificate-v11.sig"),
        CommandSigner::CertificateChain(&ca),
        None,
        &refs(&files),
        &[],
        now(),
    )
    .unwrap();
    assert_eq!(
        verified.model().unwrap().id(),
        recorded_root("certificate-v11.sig")
    );
    let error = verify_model_command(
        &read("upstream/v1.1.0-sigstore.sig"),
        CommandSigner::Identity {
            identity: "x@example.com",
            issuer: IBM_ISSUER,
        },
        None,
        &refs(&load_model("upstream/signme")),
        &[],
        now(),
    )
    .unwrap_err();
    assert!(
        error.report().contains("not allowed by the policy"),
        "{}",
        error.report()
    );
}

// --- tampering, with a re-signing test signer ---------------------------------------

/// Re-signs a key-mode bundle's payload after `edit`, with the test key, so
/// checks after the signature can be reached.
fn resign(signature: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    let mut bundle: serde_json::Value = serde_json::from_slice(&read(signature)).unwrap();
    let mut statement: serde_json::Value = serde_json::from_slice(
        &engine
            .decode(bundle["dsseEnvelope"]["payload"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    edit(&mut statement);
    let payload = serde_json::to_vec(&statement).unwrap();
    let pae = keyward_attest::sigstore::pae("application/vnd.in-toto+json", &payload);
    let pem = text("keys/signer.key");
    let der = engine
        .decode(
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
    let key = aws_lc_rs::signature::EcdsaKeyPair::from_private_key_der(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &der,
    )
    .unwrap();
    let sig = key
        .sign(&aws_lc_rs::rand::SystemRandom::new(), &pae)
        .unwrap();
    bundle["dsseEnvelope"]["payload"] = json!(engine.encode(&payload));
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = json!(engine.encode(sig.as_ref()));
    serde_json::to_vec(&bundle).unwrap()
}

#[test]
fn resigning_helper_produces_a_valid_bundle() {
    let bundle = resign("signatures/key-v11.sig", |_| {});
    assert!(
        check(
            &key_policy("signer.pub"),
            &bundle,
            &load_model("model"),
            &[],
            true
        )
        .is_ok()
    );
}

#[test]
fn tampered_signature_payload_and_predicate_type_are_rejected() {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    let original: serde_json::Value =
        serde_json::from_slice(&read("signatures/key-v11.sig")).unwrap();

    let mut bad_sig = original.clone();
    let mut sig = engine
        .decode(
            bad_sig["dsseEnvelope"]["signatures"][0]["sig"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let last = sig.len() - 1;
    sig[last] ^= 1;
    bad_sig["dsseEnvelope"]["signatures"][0]["sig"] = json!(engine.encode(sig));
    let error = verify_model_signature(
        &root(),
        &key_policy("signer.pub"),
        &serde_json::to_vec(&bad_sig).unwrap(),
        now(),
    )
    .unwrap_err();
    assert!(matches!(error, ModelError::SignatureInvalid), "{error:?}");

    // Unsigned edits: the signature covers payload and predicate type.
    for (from, to) in [
        ("weights.bin", "weights.bim"),
        (PREDICATE_MODEL_SIGNING_V1, "https://slsa.dev/provenance/v1"),
    ] {
        let mut edited = original.clone();
        let payload = String::from_utf8(
            engine
                .decode(edited["dsseEnvelope"]["payload"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert!(payload.contains(from));
        edited["dsseEnvelope"]["payload"] = json!(engine.encode(payload.replace(from, to)));
        let error = verify_model_signature(
            &root(),
            &key_policy("signer.pub"),
            &serde_json::to_vec(&edited).unwrap(),
            now(),
        )
        .unwrap_err();
        assert!(matches!(error, ModelError::SignatureInvalid), "{error:?}");
    }

    // Signed by the right key, but another predicate type over the same model.
    let other = resign("signatures/key-v11.sig", |s| {
        s["predicateType"] = json!("https://slsa.dev/provenance/v1")
    });
    let error =
        verify_model_signature(&root(), &key_policy("signer.pub"), &other, now()).unwrap_err();
    assert!(
        matches!(
            error,
            ModelError::Verify(VerifyError::PredicateTypeNotAllowed { .. })
        ),
        "{error:?}"
    );
}

#[test]
fn signed_but_inconsistent_manifests_are_rejected() {
    let check_sig = |bundle: Vec<u8>| {
        verify_model_signature(&root(), &key_policy("signer.pub"), &bundle, now())
    };

    let reordered = resign("signatures/key-v11.sig", |s| {
        s["predicate"]["resources"]
            .as_array_mut()
            .unwrap()
            .reverse();
    });
    let error = check_sig(reordered).unwrap_err();
    assert!(
        matches!(error, ModelError::RootDigestMismatch { .. }),
        "{error:?}"
    );

    let duplicate = resign("signatures/key-v11.sig", |s| {
        let first = s["predicate"]["resources"][0].clone();
        s["predicate"]["resources"]
            .as_array_mut()
            .unwrap()
            .push(first);
    });
    let error = check_sig(duplicate).unwrap_err();
    assert!(
        matches!(error, ModelError::DuplicateResource { .. }),
        "{error:?}"
    );

    let method = resign("signatures/key-v11.sig", |s| {
        s["predicate"]["serialization"]["method"] = json!("tensors")
    });
    let error = check_sig(method).unwrap_err();
    assert!(
        matches!(
            error,
            ModelError::Predicate {
                field: PredicateField::Method,
                ..
            }
        ),
        "{error:?}"
    );

    let digest = resign("signatures/key-v11.sig", |s| {
        s["predicate"]["resources"][0]["digest"] = json!("xyz")
    });
    let error = check_sig(digest).unwrap_err();
    assert!(
        matches!(
            error,
            ModelError::Predicate {
                field: PredicateField::ResourceDigest,
                index: Some(0)
            }
        ),
        "{error:?}"
    );

    let two_subjects = resign("signatures/key-v11.sig", |s| {
        let first = s["subject"][0].clone();
        s["subject"].as_array_mut().unwrap().push(first);
    });
    let error = check_sig(two_subjects).unwrap_err();
    assert!(
        matches!(
            error,
            ModelError::Verify(VerifyError::SubjectCount { count: 2 })
        ),
        "{error:?}"
    );
}

#[test]
fn unsupported_hash_types_verify_but_cannot_be_rehashed() {
    let blake3 = resign("signatures/key-v11.sig", |s| {
        s["predicate"]["serialization"]["hash_type"] = json!("blake3")
    });
    let signature =
        verify_model_signature(&root(), &key_policy("signer.pub"), &blake3, now()).unwrap();
    let error = signature.hasher(&[], true).unwrap_err();
    assert!(
        matches!(error, ModelError::UnsupportedHashType { ref hash_type } if hash_type == "blake3"),
        "{error:?}"
    );
}

#[test]
fn caller_paths_are_validated() {
    let signature = verify_model_signature(
        &root(),
        &key_policy("signer.pub"),
        &read("signatures/key-v11.sig"),
        now(),
    )
    .unwrap();
    let error = signature.hasher(&["/etc/passwd"], true).unwrap_err();
    assert!(
        matches!(error, ModelError::InvalidIgnorePath { .. }),
        "{error:?}"
    );
    let mut hasher = signature.hasher(&[], true).unwrap();
    let error = hasher.file("../outside").unwrap_err();
    assert!(matches!(error, ModelError::InvalidPath { .. }), "{error:?}");
}

#[test]
fn certificate_not_for_signing_is_refused() {
    let error = verify_model_signature(
        &root(),
        &ca_policy("ca-bundle.pem"),
        &read("signatures/certificate-not-for-signing-v11.sig"),
        now(),
    )
    .unwrap_err();
    assert!(
        matches!(error, ModelError::CertificateNotForSigning),
        "{error:?}"
    );
}

#[test]
fn malformed_certificate_chains_are_refused() {
    use base64::Engine as _;
    let mut bundle: serde_json::Value =
        serde_json::from_slice(&read("signatures/certificate-v11.sig")).unwrap();
    let chain = bundle["verificationMaterial"]["x509CertificateChain"]["certificates"].clone();
    bundle["verificationMaterial"]["x509CertificateChain"]["certificates"][1]["rawBytes"] =
        json!(base64::engine::general_purpose::STANDARD.encode(b"not DER"));
    let error = verify_model_signature(
        &root(),
        &ca_policy("ca-bundle.pem"),
        &serde_json::to_vec(&bundle).unwrap(),
        now(),
    )
    .unwrap_err();
    assert!(
        matches!(error, ModelError::CertificateMalformed { index: 1 }),
        "{error:?}"
    );
    let long: Vec<serde_json::Value> = (0..9).map(|_| chain[0].clone()).collect();
    bundle["verificationMaterial"]["x509CertificateChain"]["certificates"] = json!(long);
    let error = verify_model_signature(
        &root(),
        &ca_policy("ca-bundle.pem"),
        &serde_json::to_vec(&bundle).unwrap(),
        now(),
    )
    .unwrap_err();
    assert!(
        matches!(error, ModelError::ChainLength { count: 9 }),
        "{error:?}"
    );
}

#[test]
fn non_ec_keys_are_refused_for_models() {
    // 1.0.x bundles have no hint, so the RSA policy key is tried and refused.
    let error = verify_model_signature(
        &root(),
        &key_policy("rsa.pub"),
        &read("signatures/key-v10.sig"),
        now(),
    )
    .unwrap_err();
    assert!(matches!(error, ModelError::UnsupportedKey), "{error:?}");
}

#[test]
fn message_signature_bundles_are_not_model_signatures() {
    let bundle = std::fs::read(format!(
        "{}/../../shared/testdata/sigstore/conformance/happy-path-v0.3/bundle.sigstore.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let error =
        verify_model_signature(&root(), &key_policy("signer.pub"), &bundle, now()).unwrap_err();
    assert!(matches!(error, ModelError::NotDsse), "{error:?}");
}

#[test]
fn resource_algorithm_must_match_the_serialization() {
    let bundle = resign("signatures/key-v11.sig", |s| {
        s["predicate"]["resources"][0]["algorithm"] = json!("sha512")
    });
    let error = check(
        &key_policy("signer.pub"),
        &bundle,
        &load_model("model"),
        &[],
        true,
    )
    .unwrap_err();
    assert!(
        matches!(error, ModelError::ResourceAlgorithm { ref name, .. } if name == "config.json"),
        "{error:?}"
    );
}
