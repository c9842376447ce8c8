//! Image signatures: the real cosign v3 kubewarden bundle
//! (`../shared/testdata/sigstore/`, see its README) and the simple-signing
//! vectors of `attest/testdata/sigstore/simple-signing/` (README there).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;

use keyward_attest::sigstore::image::{
    SimplePayloadFailure, SimpleSigningError, SimpleSigningSignature, parse_image_digest,
    verify_cosign_bundle, verify_simple_signing,
};
use keyward_attest::sigstore::{
    ArtifactKind, BundleError, PREDICATE_COSIGN_SIGN_V1, PREDICATE_SIMPLE_SIGNING, Signer,
    SigningPolicy, TimestampFailure, TlogFailure, TrustRoot, VerifyError,
};
use serde_json::json;

const KUBEWARDEN_DIGEST: &str =
    "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172";
const KUBEWARDEN_IDENTITY: &str = "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0";
const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";
/// A time after every vector was signed (2026-11-01).
const NOW: u64 = 1_793_491_200;

fn shared(path: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../shared/testdata/sigstore/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn testdata(path: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/testdata/sigstore/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn text(path: &str) -> String {
    String::from_utf8(testdata(path)).unwrap()
}

fn policy(value: serde_json::Value) -> SigningPolicy {
    SigningPolicy::from_json(value.to_string().as_bytes()).unwrap()
}

fn cosign_policy(identity: serde_json::Value) -> SigningPolicy {
    policy(
        json!({"kind": "image", "predicate_types": [PREDICATE_COSIGN_SIGN_V1], "identities": [identity]}),
    )
}

fn kubewarden() -> Vec<u8> {
    shared("cosign-v3-image-kubewarden.sigstore.json")
}

fn digest() -> [u8; 32] {
    parse_image_digest(KUBEWARDEN_DIGEST).unwrap()
}

fn production() -> TrustRoot {
    TrustRoot::production().unwrap()
}

// --- cosign v3 ---------------------------------------------------------------

#[test]
fn kubewarden_cosign_v3_bundle_verifies() {
    let policy = cosign_policy(json!({"issuer": GITHUB_ISSUER, "subject": KUBEWARDEN_IDENTITY}));
    let verified =
        verify_cosign_bundle(&production(), &policy, &kubewarden(), &digest(), NOW).unwrap();
    assert_eq!(verified.kind(), ArtifactKind::Image);
    assert_eq!(verified.digest_string(), KUBEWARDEN_DIGEST);
    assert_eq!(verified.predicate_type(), Some(PREDICATE_COSIGN_SIGN_V1));
    let Signer::Keyless {
        issuer,
        subject,
        claims,
    } = verified.signer()
    else {
        panic!()
    };
    assert_eq!(
        (issuer.as_str(), subject.as_str()),
        (GITHUB_ISSUER, KUBEWARDEN_IDENTITY)
    );
    assert_eq!(
        claims.source_repository_ref.as_deref(),
        Some("refs/tags/v1.34.0")
    );
    let tlog = verified.tlog().unwrap();
    assert_eq!(
        (tlog.log_index, tlog.integrated_time),
        (1_261_105_807, Some(1_775_719_409))
    );
}

#[test]
fn kubewarden_fails_for_another_digest() {
    let policy = cosign_policy(json!({"issuer": GITHUB_ISSUER, "subject": KUBEWARDEN_IDENTITY}));
    let mut other = digest();
    other[0] ^= 1;
    let error =
        verify_cosign_bundle(&production(), &policy, &kubewarden(), &other, NOW).unwrap_err();
    assert!(
        matches!(error, VerifyError::ArtifactMismatch { .. }),
        "{error:?}"
    );
}

#[test]
fn kubewarden_fails_for_another_identity_or_issuer() {
    let wrong_subject = KUBEWARDEN_IDENTITY.replace("v1.34.0", "v1.35.0");
    for identity in [
        json!({"issuer": GITHUB_ISSUER, "subject": wrong_subject}),
        json!({"issuer": "https://accounts.google.com", "subject": KUBEWARDEN_IDENTITY}),
    ] {
        let error = verify_cosign_bundle(
            &production(),
            &cosign_policy(identity),
            &kubewarden(),
            &digest(),
            NOW,
        )
        .unwrap_err();
        let VerifyError::IdentityNotAllowed { subject, issuer } = error else {
            panic!("{error:?}")
        };
        assert_eq!(subject.as_deref(), Some(KUBEWARDEN_IDENTITY));
        assert_eq!(issuer.as_deref(), Some(GITHUB_ISSUER));
    }
}

#[test]
fn subject_regex_is_anchored() {
    let good = r"https://github\.com/kubewarden/kubewarden-controller/\.github/workflows/release\.yml@refs/tags/v.*";
    let policy = cosign_policy(json!({"issuer": GITHUB_ISSUER, "subject_regex": good}));
    assert!(verify_cosign_bundle(&production(), &policy, &kubewarden(), &digest(), NOW).is_ok());
    // Matches a substring of the SAN, so only an unanchored matcher would accept it.
    for partial in [
        "kubewarden-controller",
        r"https://github\.com/kubewarden/.*@refs/tags/v1",
        "(?m)^.*$\n",
    ] {
        let policy = cosign_policy(json!({"issuer": GITHUB_ISSUER, "subject_regex": partial}));
        let error = verify_cosign_bundle(&production(), &policy, &kubewarden(), &digest(), NOW)
            .unwrap_err();
        assert!(
            matches!(error, VerifyError::IdentityNotAllowed { .. }),
            "{partial}: {error:?}"
        );
    }
}

#[test]
fn github_claims_must_all_hold() {
    let claims = json!({"repository": "kubewarden/kubewarden-controller", "ref": "refs/tags/v1.34.0",
        "workflow_sha": "2a6b879b7a5ef59d7fb348d0b5d14314538ac0a6"});
    let policy = cosign_policy(
        json!({"issuer": GITHUB_ISSUER, "subject": KUBEWARDEN_IDENTITY, "github": claims}),
    );
    assert!(verify_cosign_bundle(&production(), &policy, &kubewarden(), &digest(), NOW).is_ok());
    for wrong in [
        json!({"repository": "kubewarden/other"}),
        json!({"ref": "refs/heads/main"}),
        json!({"workflow_sha": "0000000000000000000000000000000000000000"}),
    ] {
        let policy = cosign_policy(
            json!({"issuer": GITHUB_ISSUER, "subject": KUBEWARDEN_IDENTITY, "github": wrong}),
        );
        let error = verify_cosign_bundle(&production(), &policy, &kubewarden(), &digest(), NOW)
            .unwrap_err();
        assert!(
            matches!(error, VerifyError::IdentityNotAllowed { .. }),
            "{error:?}"
        );
    }
}

#[test]
fn another_predicate_over_the_same_digest_is_not_an_image_signature() {
    // A genuine SLSA provenance bundle from the conformance suite, by the
    // conformance identity, over a.txt: as an "image" with a.txt's digest it
    // is cryptographically valid but the wrong predicate.
    let case = "conformance/happy-path-intoto-in-dsse-v3";
    let bundle = shared(&format!("{case}/bundle.sigstore.json"));
    let artifact = shared("conformance/a.txt");
    let digest: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, &artifact)
        .as_ref()
        .try_into()
        .unwrap();
    let identity = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
    let policy = cosign_policy(json!({"issuer": GITHUB_ISSUER, "subject": identity}));
    let error = verify_cosign_bundle(&production(), &policy, &bundle, &digest, NOW).unwrap_err();
    let VerifyError::PredicateTypeNotAllowed { predicate_type } = error else {
        panic!("{error:?}")
    };
    assert_eq!(predicate_type, "https://slsa.dev/provenance/v1");
}

#[test]
fn policy_pinning_only_simple_signing_refuses_cosign_v3() {
    let policy = policy(
        json!({"kind": "image", "predicate_types": [PREDICATE_SIMPLE_SIGNING],
        "identities": [{"issuer": GITHUB_ISSUER, "subject": KUBEWARDEN_IDENTITY}]}),
    );
    let error =
        verify_cosign_bundle(&production(), &policy, &kubewarden(), &digest(), NOW).unwrap_err();
    assert!(
        matches!(error, VerifyError::PredicateTypeNotAllowed { ref predicate_type } if predicate_type == PREDICATE_COSIGN_SIGN_V1),
        "{error:?}"
    );
}

#[test]
fn model_policy_is_refused_for_images() {
    let policy = policy(
        json!({"kind": "model", "predicate_types": ["https://model_signing/signature/v1.0"],
        "identities": [{"issuer": GITHUB_ISSUER, "subject": KUBEWARDEN_IDENTITY}]}),
    );
    let error =
        verify_cosign_bundle(&production(), &policy, &kubewarden(), &digest(), NOW).unwrap_err();
    assert!(matches!(
        error,
        VerifyError::PolicyKind {
            policy: ArtifactKind::Model,
            artifact: ArtifactKind::Image
        }
    ));
}

fn tampered_kubewarden(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut bundle: serde_json::Value = serde_json::from_slice(&kubewarden()).unwrap();
    edit(&mut bundle);
    serde_json::to_vec(&bundle).unwrap()
}

fn flip_base64(value: &mut serde_json::Value, byte: usize) {
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::STANDARD;
    let mut bytes = engine.decode(value.as_str().unwrap()).unwrap();
    bytes[byte] ^= 0x01;
    *value = json!(engine.encode(bytes));
}

#[test]
fn tampered_signature_and_payload_are_rejected() {
    let policy = cosign_policy(json!({"issuer": GITHUB_ISSUER, "subject": KUBEWARDEN_IDENTITY}));
    // The RFC 3161 timestamp covers the signature, and signing times are
    // established first, so a changed signature fails there.
    let signature =
        tampered_kubewarden(|b| flip_base64(&mut b["dsseEnvelope"]["signatures"][0]["sig"], 10));
    let error =
        verify_cosign_bundle(&production(), &policy, &signature, &digest(), NOW).unwrap_err();
    assert!(
        matches!(
            error,
            VerifyError::Timestamp {
                reason: TimestampFailure::Invalid,
                ..
            }
        ),
        "{error:?}"
    );

    // A payload naming another digest, still a well-formed statement.
    let payload = tampered_kubewarden(|b| {
        use base64::Engine as _;
        let engine = base64::engine::general_purpose::STANDARD;
        let text = String::from_utf8(
            engine
                .decode(b["dsseEnvelope"]["payload"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        b["dsseEnvelope"]["payload"] = json!(engine.encode(text.replace("c811d58d", "c811d58e")));
    });
    let error = verify_cosign_bundle(&production(), &policy, &payload, &digest(), NOW).unwrap_err();
    assert!(
        matches!(error, VerifyError::SignatureInvalid { .. }),
        "{error:?}"
    );

    let set = tampered_kubewarden(|b| {
        flip_base64(
            &mut b["verificationMaterial"]["tlogEntries"][0]["inclusionPromise"]["signedEntryTimestamp"],
            12,
        )
    });
    let error = verify_cosign_bundle(&production(), &policy, &set, &digest(), NOW).unwrap_err();
    assert!(
        matches!(
            error,
            VerifyError::TransparencyLog {
                reason: TlogFailure::InclusionPromise,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn signing_time_after_now_is_rejected() {
    let policy = cosign_policy(json!({"issuer": GITHUB_ISSUER, "subject": KUBEWARDEN_IDENTITY}));
    let before = 1_775_719_409 - 1;
    let error =
        verify_cosign_bundle(&production(), &policy, &kubewarden(), &digest(), before).unwrap_err();
    assert!(
        matches!(error, VerifyError::SignedInFuture { time: 1_775_719_409, now } if now == before),
        "{error:?}"
    );
}

#[test]
fn malformed_bundles_get_typed_errors() {
    let policy = cosign_policy(json!({"issuer": GITHUB_ISSUER, "subject": KUBEWARDEN_IDENTITY}));
    let bundle = kubewarden();
    let truncated = &bundle[..bundle.len() / 2];
    let error =
        verify_cosign_bundle(&production(), &policy, truncated, &digest(), NOW).unwrap_err();
    assert!(
        matches!(error, VerifyError::Bundle(BundleError::Json { .. })),
        "{error:?}"
    );
    let media = tampered_kubewarden(|b| {
        b["mediaType"] = json!("application/vnd.dev.sigstore.bundle.v9+json")
    });
    let error = verify_cosign_bundle(&production(), &policy, &media, &digest(), NOW).unwrap_err();
    assert!(
        matches!(
            error,
            VerifyError::Bundle(BundleError::UnknownMediaType { .. })
        ),
        "{error:?}"
    );
}

// --- simple signing ------------------------------------------------------------

fn annotations(dir: &str) -> BTreeMap<String, String> {
    serde_json::from_slice(&testdata(&format!("simple-signing/{dir}/annotations.json"))).unwrap()
}

fn simple_digest() -> [u8; 32] {
    parse_image_digest(text("simple-signing/image-digest.txt").trim()).unwrap()
}

fn key_policy(key_file: &str, docker_reference: Option<&str>) -> SigningPolicy {
    let mut value = json!({"kind": "image", "predicate_types": [PREDICATE_SIMPLE_SIGNING],
        "keys": [{"key_id": "release", "public_key": text(&format!("simple-signing/key-signed/{key_file}"))}]});
    if let Some(reference) = docker_reference {
        value["docker_reference"] = json!(reference);
    }
    policy(value)
}

fn keyless_policy(subject: &str) -> SigningPolicy {
    policy(
        json!({"kind": "image", "predicate_types": [PREDICATE_SIMPLE_SIGNING],
        "identities": [{"issuer": GITHUB_ISSUER, "subject": subject,
            "github": {"repository": "keyward-test/app", "ref": "refs/tags/v1.0.0"}}]}),
    )
}

fn private_root() -> TrustRoot {
    TrustRoot::from_json(&testdata("simple-signing/keyless/trusted_root.json")).unwrap()
}

#[test]
fn key_signed_simple_signing_verifies() {
    let payload = testdata("simple-signing/key-signed/payload.json");
    let a = annotations("key-signed");
    let signature = SimpleSigningSignature::new(&payload, &a["dev.cosignproject.cosign/signature"]);
    for reference in [
        None,
        Some("registry.example/keyward/app"),
        Some("registry.example/keyward/app:v1"),
    ] {
        let verified = verify_simple_signing(
            &production(),
            &key_policy("key.pub", reference),
            &signature,
            &simple_digest(),
            NOW,
        )
        .unwrap();
        assert_eq!(
            verified.signer(),
            &Signer::Key {
                key_id: "release".to_string()
            }
        );
        assert_eq!(verified.predicate_type(), Some(PREDICATE_SIMPLE_SIGNING));
        assert!(verified.tlog().is_none());
    }
}

#[test]
fn key_signed_simple_signing_rejections() {
    let payload = testdata("simple-signing/key-signed/payload.json");
    let a = annotations("key-signed");
    let sig = a["dev.cosignproject.cosign/signature"].as_str();
    let signature = SimpleSigningSignature::new(&payload, sig);
    let digest = simple_digest();

    let error = verify_simple_signing(
        &production(),
        &key_policy("other.pub", None),
        &signature,
        &digest,
        NOW,
    )
    .unwrap_err();
    assert!(
        matches!(error, SimpleSigningError::SignatureInvalid),
        "{error:?}"
    );

    let mut other_digest = digest;
    other_digest[31] ^= 1;
    let error = verify_simple_signing(
        &production(),
        &key_policy("key.pub", None),
        &signature,
        &other_digest,
        NOW,
    )
    .unwrap_err();
    assert!(
        matches!(error, SimpleSigningError::ManifestDigestMismatch { .. }),
        "{error:?}"
    );

    let error = verify_simple_signing(
        &production(),
        &key_policy("key.pub", Some("registry.example/keyward/other")),
        &signature,
        &digest,
        NOW,
    )
    .unwrap_err();
    assert!(
        matches!(error, SimpleSigningError::DockerReferenceMismatch { .. }),
        "{error:?}"
    );

    let tampered = String::from_utf8(payload.clone())
        .unwrap()
        .replace("v5.23.1", "v5.23.2");
    let error = verify_simple_signing(
        &production(),
        &key_policy("key.pub", None),
        &SimpleSigningSignature::new(tampered.as_bytes(), sig),
        &digest,
        NOW,
    )
    .unwrap_err();
    assert!(
        matches!(error, SimpleSigningError::SignatureInvalid),
        "{error:?}"
    );

    let error = verify_simple_signing(
        &production(),
        &key_policy("key.pub", None),
        &SimpleSigningSignature::new(&payload, "not base64!"),
        &digest,
        NOW,
    )
    .unwrap_err();
    assert!(
        matches!(error, SimpleSigningError::SignatureBase64),
        "{error:?}"
    );

    let cosign_only = policy(
        json!({"kind": "image", "predicate_types": [PREDICATE_COSIGN_SIGN_V1],
        "keys": [{"key_id": "release", "public_key": text("simple-signing/key-signed/key.pub")}]}),
    );
    let error =
        verify_simple_signing(&production(), &cosign_only, &signature, &digest, NOW).unwrap_err();
    assert!(matches!(error, SimpleSigningError::NotAllowed), "{error:?}");

    let huge = vec![b' '; 64 * 1024 + 1];
    let error = verify_simple_signing(
        &production(),
        &key_policy("key.pub", None),
        &SimpleSigningSignature::new(&huge, sig),
        &digest,
        NOW,
    )
    .unwrap_err();
    assert!(
        matches!(error, SimpleSigningError::PayloadTooLarge { .. }),
        "{error:?}"
    );
}

fn keyless_signature<'a>(
    payload: &'a [u8],
    a: &'a BTreeMap<String, String>,
) -> SimpleSigningSignature<'a> {
    SimpleSigningSignature::new(payload, &a["dev.cosignproject.cosign/signature"])
        .with_certificate(&a["dev.sigstore.cosign/certificate"])
        .with_chain(&a["dev.sigstore.cosign/chain"])
        .with_rekor_bundle(&a["dev.sigstore.cosign/bundle"])
}

#[test]
fn keyless_simple_signing_verifies_against_its_trusted_root() {
    let payload = testdata("simple-signing/keyless/payload.json");
    let a = annotations("keyless");
    let identity = text("simple-signing/keyless/identity.txt");
    let verified = verify_simple_signing(
        &private_root(),
        &keyless_policy(identity.trim()),
        &keyless_signature(&payload, &a),
        &simple_digest(),
        NOW,
    )
    .unwrap();
    let Signer::Keyless { subject, .. } = verified.signer() else {
        panic!()
    };
    assert_eq!(subject, identity.trim());
    assert_eq!(verified.tlog().unwrap().log_index, 42);
}

#[test]
fn keyless_simple_signing_rejections() {
    let payload = testdata("simple-signing/keyless/payload.json");
    let a = annotations("keyless");
    let identity = text("simple-signing/keyless/identity.txt");
    let policy = keyless_policy(identity.trim());
    let digest = simple_digest();

    // The public-good root does not know this Fulcio or Rekor.
    let error = verify_simple_signing(
        &production(),
        &policy,
        &keyless_signature(&payload, &a),
        &digest,
        NOW,
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            SimpleSigningError::Verify(VerifyError::TransparencyLog { .. })
        ),
        "{error:?}"
    );

    let error = verify_simple_signing(
        &private_root(),
        &keyless_policy("https://example.com/other"),
        &keyless_signature(&payload, &a),
        &digest,
        NOW,
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            SimpleSigningError::Verify(VerifyError::IdentityNotAllowed { .. })
        ),
        "{error:?}"
    );

    let no_bundle = SimpleSigningSignature::new(&payload, &a["dev.cosignproject.cosign/signature"])
        .with_certificate(&a["dev.sigstore.cosign/certificate"]);
    let error =
        verify_simple_signing(&private_root(), &policy, &no_bundle, &digest, NOW).unwrap_err();
    assert!(
        matches!(error, SimpleSigningError::MissingRekorBundle),
        "{error:?}"
    );

    let mut rekor: serde_json::Value =
        serde_json::from_str(&a["dev.sigstore.cosign/bundle"]).unwrap();
    flip_base64(&mut rekor["SignedEntryTimestamp"], 20);
    let rekor = rekor.to_string();
    let bad_set = keyless_signature(&payload, &a).with_rekor_bundle(&rekor);
    let error =
        verify_simple_signing(&private_root(), &policy, &bad_set, &digest, NOW).unwrap_err();
    assert!(
        matches!(
            error,
            SimpleSigningError::Verify(VerifyError::TransparencyLog {
                reason: TlogFailure::InclusionPromise,
                ..
            })
        ),
        "{error:?}"
    );

    let mut sig_bytes = a["dev.cosignproject.cosign/signature"].clone();
    sig_bytes.replace_range(10..11, if &sig_bytes[10..11] == "A" { "B" } else { "A" });
    let bad_sig = SimpleSigningSignature::new(&payload, &sig_bytes)
        .with_certificate(&a["dev.sigstore.cosign/certificate"])
        .with_rekor_bundle(&a["dev.sigstore.cosign/bundle"]);
    let error =
        verify_simple_signing(&private_root(), &policy, &bad_sig, &digest, NOW).unwrap_err();
    assert!(
        matches!(
            error,
            SimpleSigningError::Verify(VerifyError::SignatureInvalid { .. })
        ),
        "{error:?}"
    );

    let malformed =
        keyless_signature(&payload, &a).with_rekor_bundle("{\"SignedEntryTimestamp\":1}");
    let error =
        verify_simple_signing(&private_root(), &policy, &malformed, &digest, NOW).unwrap_err();
    assert!(
        matches!(error, SimpleSigningError::RekorBundle { .. }),
        "{error:?}"
    );

    let error = verify_simple_signing(
        &private_root(),
        &policy,
        &keyless_signature(&payload, &a),
        &digest,
        1_760_011_230 - 1,
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            SimpleSigningError::Verify(VerifyError::SignedInFuture { .. })
        ),
        "{error:?}"
    );
}

#[test]
fn simple_signing_payload_of_another_type_is_refused() {
    let payload = testdata("simple-signing/key-signed/payload-atomic.json");
    let a: BTreeMap<String, String> = serde_json::from_slice(&testdata(
        "simple-signing/key-signed/annotations-atomic.json",
    ))
    .unwrap();
    let signature = SimpleSigningSignature::new(&payload, &a["dev.cosignproject.cosign/signature"]);
    let error = verify_simple_signing(
        &production(),
        &key_policy("key.pub", None),
        &signature,
        &simple_digest(),
        NOW,
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            SimpleSigningError::Payload {
                reason: SimplePayloadFailure::Type
            }
        ),
        "{error:?}"
    );
}

#[test]
fn simple_signing_annotations_are_bounded_and_parsed() {
    let payload = testdata("simple-signing/keyless/payload.json");
    let a = annotations("keyless");
    let huge = "A".repeat(64 * 1024 + 1);
    let signature = keyless_signature(&payload, &a).with_chain(&huge);
    let error = verify_simple_signing(
        &private_root(),
        &keyless_policy("x"),
        &signature,
        &simple_digest(),
        NOW,
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            SimpleSigningError::AnnotationTooLarge {
                annotation: "dev.sigstore.cosign/chain",
                ..
            }
        ),
        "{error:?}"
    );
    let two = format!("{0}{0}", a["dev.sigstore.cosign/certificate"]);
    let signature = keyless_signature(&payload, &a).with_certificate(&two);
    let error = verify_simple_signing(
        &private_root(),
        &keyless_policy("x"),
        &signature,
        &simple_digest(),
        NOW,
    )
    .unwrap_err();
    assert!(
        matches!(error, SimpleSigningError::CertificatePem),
        "{error:?}"
    );
}

#[test]
fn message_signatures_are_not_image_attestations() {
    let bundle = shared("conformance/happy-path-v0.3/bundle.sigstore.json");
    let artifact = shared("conformance/a.txt");
    let digest: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, &artifact)
        .as_ref()
        .try_into()
        .unwrap();
    let identity = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
    let policy = cosign_policy(json!({"issuer": GITHUB_ISSUER, "subject": identity}));
    let error = verify_cosign_bundle(&production(), &policy, &bundle, &digest, NOW).unwrap_err();
    assert!(matches!(error, VerifyError::NotAnAttestation), "{error:?}");
    // A key-only policy refuses a keyless bundle before any cryptography.
    let keys_only = policy_from_key_only();
    let error = verify_cosign_bundle(&production(), &keys_only, &bundle, &digest, NOW).unwrap_err();
    assert!(matches!(error, VerifyError::KeylessNotAllowed), "{error:?}");
}

fn policy_from_key_only() -> SigningPolicy {
    policy(
        json!({"kind": "image", "predicate_types": [PREDICATE_COSIGN_SIGN_V1],
        "keys": [{"key_id": "release", "public_key": text("simple-signing/key-signed/key.pub")}]}),
    )
}
