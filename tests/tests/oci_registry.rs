//! `keyward_vault::oci` against a real registry: Debian's `docker-registry`
//! (distribution 2.8.2, no referrers API) started per test by
//! `keyward_tests::registry`, images pushed with skopeo, simple-signing
//! signatures written by `scripts/sign-image.py` (independent of the Rust
//! code) and pushed with skopeo, and the real cosign v3 kubewarden bundle
//! (`../shared/testdata/sigstore/`, see its README) pushed as a referrer.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;

use keyward_attest::sigstore::image::{SimpleSigningError, parse_image_digest};
use keyward_attest::sigstore::{
    PREDICATE_COSIGN_SIGN_V1, PREDICATE_SIMPLE_SIGNING, Signer, SigningPolicy, TrustRoot,
    VerifyError,
};
use keyward_tests::registry::{
    OCI_INDEX, OCI_MANIFEST, Registry, generate_key, sha256_digest, write_test_image,
};
use keyward_vault::oci::{
    CandidateError, CandidateKind, ImageError, ImageKind, Limits, ManifestFailure, ReferrersApi,
    RegistryClient, RegistryConfig, RegistryError, SignatureSource,
};
use serde_json::json;

/// After every signature used here (2026-11-01).
const NOW: u64 = 1_793_491_200;
const KUBEWARDEN_DIGEST: &str =
    "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172";
const KUBEWARDEN_IDENTITY: &str = "https://github.com/kubewarden/kubewarden-controller/.github/workflows/release.yml@refs/tags/v1.34.0";
const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";
const BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
const SIMPLE_SIGNING_LAYER: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

fn client(registry: &Registry) -> RegistryClient {
    client_with(registry, Limits::default())
}

fn client_with(registry: &Registry, limits: Limits) -> RegistryClient {
    RegistryClient::new(
        RegistryConfig::new()
            .allow_insecure_http(registry.addr())
            .with_limits(limits),
    )
    .unwrap()
}

fn production() -> TrustRoot {
    TrustRoot::production().unwrap()
}

fn key_policy(public_pem: &str) -> SigningPolicy {
    let policy = json!({"kind": "image", "predicate_types": [PREDICATE_SIMPLE_SIGNING],
        "keys": [{"key_id": "release", "public_key": public_pem}]});
    SigningPolicy::from_json(policy.to_string().as_bytes()).unwrap()
}

fn kubewarden_policy() -> SigningPolicy {
    let policy = json!({"kind": "image", "predicate_types": [PREDICATE_COSIGN_SIGN_V1],
        "identities": [{"issuer": GITHUB_ISSUER, "subject": KUBEWARDEN_IDENTITY}]});
    SigningPolicy::from_json(policy.to_string().as_bytes()).unwrap()
}

fn kubewarden_bundle() -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../shared/testdata/sigstore/cosign-v3-image-kubewarden.sigstore.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn digest_bytes(digest: &str) -> [u8; 32] {
    parse_image_digest(digest).unwrap()
}

/// Pushes a generated image to `repository:tag`; returns its digest.
fn push_image(registry: &Registry, repository: &str, tag: &str, content: &[u8]) -> String {
    let layout = registry
        .scratch(&format!("image-{tag}-{}", content.len()))
        .unwrap();
    let digest = write_test_image(&layout, "img", content).unwrap();
    registry
        .skopeo_push(&layout, "img", repository, tag)
        .unwrap();
    digest
}

/// Pushes `bundle` as a cosign v3 signature manifest referring to `subject`
/// (config: the OCI empty descriptor; one layer: the bundle) by digest;
/// returns the manifest and its digest.
fn push_bundle_manifest(
    registry: &Registry,
    repository: &str,
    subject: &str,
    bundle: &[u8],
) -> (Vec<u8>, String) {
    let empty = registry.put_blob(repository, b"{}").unwrap();
    let layer = registry.put_blob(repository, bundle).unwrap();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": BUNDLE_V03,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": BUNDLE_V03, "digest": layer, "size": bundle.len()}],
        // The subject's size is not known for an image that is not in the
        // registry; nothing reads it (the bundle binds the digest).
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 0},
    })
    .to_string()
    .into_bytes();
    let digest = sha256_digest(&manifest);
    registry
        .put_manifest(repository, &digest, OCI_MANIFEST, &manifest)
        .unwrap();
    (manifest, digest)
}

/// The OCI referrers tag schema, as go-containerregistry maintains it for
/// cosign v3 on registries without the referrers API: an index of the
/// referrers under `sha256-<hex>`.
fn push_referrers_index(registry: &Registry, repository: &str, subject: &str, manifest: &[u8]) {
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha256_digest(manifest),
            "size": manifest.len(), "artifactType": BUNDLE_V03}],
    })
    .to_string();
    registry
        .put_manifest(
            repository,
            &subject.replace(':', "-"),
            OCI_INDEX,
            index.as_bytes(),
        )
        .unwrap();
}

fn access_log_has(registry: &Registry, request: &str, status: u16) -> bool {
    registry
        .log()
        .lines()
        .any(|line| line.contains(&format!("\"{request} HTTP/1.1\" {status} ")))
}

#[tokio::test]
async fn key_signed_image_verifies_through_the_sig_tag_after_referrers_fallback() {
    let registry = Registry::start().unwrap();
    let digest = push_image(&registry, "keyward/app", "v1", b"hello v1\n");
    let keys = registry.scratch("keys").unwrap();
    let (key, public) = generate_key(&keys, "release").unwrap();
    let reference = format!("{}/keyward/app:v1", registry.addr());
    let tag = registry
        .push_simple_signature("keyward/app", &reference, &digest, &[&key])
        .unwrap();
    assert_eq!(tag, format!("{}.sig", digest.replace(':', "-")));

    let client = client(&registry);
    let verified = client
        .verify_image(&production(), &key_policy(&public), &reference, NOW)
        .await
        .unwrap();
    assert_eq!(verified.digest_string(), digest);
    assert_eq!(verified.predicate_type(), Some(PREDICATE_SIMPLE_SIGNING));
    assert!(matches!(verified.signer(), Signer::Key { key_id } if key_id == "release"));

    // distribution 2.8 has no referrers API: the request was made, answered
    // 404, and the `sha256-<hex>` tag was read instead (also 404 here).
    let referrers = format!("GET /v2/keyward/app/referrers/{digest}");
    assert!(
        access_log_has(&registry, &referrers, 404),
        "{}",
        registry.log()
    );
    let fallback = format!("GET /v2/keyward/app/manifests/{}", digest.replace(':', "-"));
    assert!(
        access_log_has(&registry, &fallback, 404),
        "{}",
        registry.log()
    );
    let discovery = client
        .discover(&reference, &digest_bytes(&digest))
        .await
        .unwrap();
    assert_eq!(discovery.referrers_api(), ReferrersApi::Unsupported);
    assert_eq!(discovery.candidates().len(), 1);
    let candidate = &discovery.candidates()[0];
    assert_eq!(candidate.kind(), CandidateKind::SimpleSigning);
    assert_eq!(candidate.origin().source, SignatureSource::SimpleSigningTag);
    assert_eq!(candidate.origin().layer, Some(0));
}

#[tokio::test]
async fn references_resolve_by_tag_and_by_digest() {
    let registry = Registry::start().unwrap();
    let digest = push_image(&registry, "keyward/app", "v1", b"resolve me\n");
    let client = client(&registry);

    let by_tag = client
        .resolve(&format!("{}/keyward/app:v1", registry.addr()))
        .await
        .unwrap();
    assert_eq!(by_tag.digest_string(), digest);
    assert_eq!(by_tag.tag(), Some("v1"));
    assert_eq!(by_tag.repository(), "keyward/app");
    assert_eq!(by_tag.kind(), ImageKind::Manifest);

    let by_digest = client
        .resolve(&format!("{}/keyward/app@{digest}", registry.addr()))
        .await
        .unwrap();
    assert_eq!(by_digest.digest(), by_tag.digest());
    assert_eq!(by_digest.tag(), None);

    // A digest the registry does not hold, a tag it does not have, a
    // digest algorithm we do not accept, and a malformed reference.
    let mut missing = *by_tag.digest();
    missing[0] ^= 1;
    let error = client
        .resolve(&format!(
            "{}/keyward/app@sha256:{}",
            registry.addr(),
            hex::encode(missing)
        ))
        .await
        .unwrap_err();
    assert!(matches!(error, RegistryError::NotFound { .. }), "{error:?}");
    let error = client
        .resolve(&format!("{}/keyward/app:v2", registry.addr()))
        .await
        .unwrap_err();
    assert!(matches!(error, RegistryError::NotFound { .. }), "{error:?}");
    let error = client
        .resolve(&format!(
            "{}/keyward/app@sha512:{}",
            registry.addr(),
            "ab".repeat(64)
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(error, RegistryError::UnsupportedDigest { .. }),
        "{error:?}"
    );
    let error = client.resolve("Not A Reference!").await.unwrap_err();
    assert!(
        matches!(error, RegistryError::InvalidReference { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn kubewarden_cosign_v3_bundle_verifies_from_the_referrers_tag() {
    // Discovery is by digest: the kubewarden image itself is not in this
    // registry (and need not be); its signature refers to the digest, and the
    // bundle binds that digest.
    let registry = Registry::start().unwrap();
    let repository = "kubewarden/kubewarden-controller";
    let bundle = kubewarden_bundle();
    let (manifest, manifest_digest) =
        push_bundle_manifest(&registry, repository, KUBEWARDEN_DIGEST, &bundle);
    push_referrers_index(&registry, repository, KUBEWARDEN_DIGEST, &manifest);

    let client = client(&registry);
    let repo_ref = format!("{}/{repository}", registry.addr());
    let digest = digest_bytes(KUBEWARDEN_DIGEST);
    let verified = client
        .verify_digest(&production(), &kubewarden_policy(), &repo_ref, &digest, NOW)
        .await
        .unwrap();
    assert_eq!(verified.digest_string(), KUBEWARDEN_DIGEST);
    assert_eq!(verified.predicate_type(), Some(PREDICATE_COSIGN_SIGN_V1));
    let Signer::Keyless {
        issuer, subject, ..
    } = verified.signer()
    else {
        panic!("{:?}", verified.signer())
    };
    assert_eq!(
        (issuer.as_str(), subject.as_str()),
        (GITHUB_ISSUER, KUBEWARDEN_IDENTITY)
    );

    let discovery = client.discover(&repo_ref, &digest).await.unwrap();
    assert_eq!(discovery.referrers_api(), ReferrersApi::Unsupported);
    let candidate = &discovery.candidates()[0];
    assert_eq!(candidate.kind(), CandidateKind::Bundle);
    assert_eq!(candidate.origin().source, SignatureSource::ReferrersTag);
    assert_eq!(
        candidate.origin().manifest.as_deref(),
        Some(manifest_digest.as_str())
    );
    assert!(access_log_has(
        &registry,
        &format!("GET /v2/{repository}/referrers/{KUBEWARDEN_DIGEST}"),
        404
    ));

    // The same bundle under another digest: found (the tag names that
    // digest) but it does not verify.
    let mut other = digest;
    other[31] ^= 1;
    let other_hex = format!("sha256:{}", hex::encode(other));
    push_referrers_index(&registry, repository, &other_hex, &manifest);
    let error = client
        .verify_digest(&production(), &kubewarden_policy(), &repo_ref, &other, NOW)
        .await
        .unwrap_err();
    let ImageError::NoneVerified { failures, .. } = error else {
        panic!("{error:?}")
    };
    assert!(
        matches!(
            failures[0].reason,
            CandidateError::Bundle(VerifyError::ArtifactMismatch { .. })
        ),
        "{failures:?}"
    );
}

#[tokio::test]
async fn bundle_manifest_directly_under_the_digest_tag_verifies() {
    let registry = Registry::start().unwrap();
    let repository = "kubewarden/direct";
    let (manifest, _) = push_bundle_manifest(
        &registry,
        repository,
        KUBEWARDEN_DIGEST,
        &kubewarden_bundle(),
    );
    registry
        .put_manifest(
            repository,
            &KUBEWARDEN_DIGEST.replace(':', "-"),
            OCI_MANIFEST,
            &manifest,
        )
        .unwrap();
    let verified = client(&registry)
        .verify_digest(
            &production(),
            &kubewarden_policy(),
            &format!("{}/{repository}", registry.addr()),
            &digest_bytes(KUBEWARDEN_DIGEST),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(verified.digest_string(), KUBEWARDEN_DIGEST);
}

#[tokio::test]
async fn unsigned_image_has_no_signatures() {
    let registry = Registry::start().unwrap();
    let digest = push_image(&registry, "keyward/app", "v1", b"unsigned\n");
    let keys = registry.scratch("keys").unwrap();
    let (_, public) = generate_key(&keys, "release").unwrap();
    let error = client(&registry)
        .verify_image(
            &production(),
            &key_policy(&public),
            &format!("{}/keyward/app:v1", registry.addr()),
            NOW,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ImageError::NoSignatures { digest: d } if *d == digest),
        "{error:?}"
    );
}

#[tokio::test]
async fn signature_by_a_key_outside_the_policy_is_named() {
    let registry = Registry::start().unwrap();
    let digest = push_image(&registry, "keyward/app", "v1", b"wrong key\n");
    let keys = registry.scratch("keys").unwrap();
    let (_, trusted) = generate_key(&keys, "trusted").unwrap();
    let (rogue, _) = generate_key(&keys, "rogue").unwrap();
    let reference = format!("{}/keyward/app:v1", registry.addr());
    registry
        .push_simple_signature("keyward/app", &reference, &digest, &[&rogue])
        .unwrap();
    let error = client(&registry)
        .verify_image(&production(), &key_policy(&trusted), &reference, NOW)
        .await
        .unwrap_err();
    let ImageError::NoneVerified {
        digest: d,
        failures,
        untried,
    } = error
    else {
        panic!("{error:?}")
    };
    assert_eq!((d, untried, failures.len()), (digest.clone(), 0, 1));
    assert_eq!(failures[0].origin.source, SignatureSource::SimpleSigningTag);
    assert!(
        matches!(
            failures[0].reason,
            CandidateError::SimpleSigning(SimpleSigningError::SignatureInvalid)
        ),
        "{failures:?}"
    );

    // A second layer by the trusted key in the same `.sig` manifest: the
    // first signature fails, the second verifies.
    let (trusted_key, trusted_pub) = (keys.join("trusted.pem"), trusted);
    registry
        .push_simple_signature("keyward/app", &reference, &digest, &[&rogue, &trusted_key])
        .unwrap();
    let verified = client(&registry)
        .verify_image(&production(), &key_policy(&trusted_pub), &reference, NOW)
        .await
        .unwrap();
    assert_eq!(verified.digest_string(), digest);
}

#[tokio::test]
async fn moved_tag_does_not_carry_the_old_signature() {
    let registry = Registry::start().unwrap();
    let old = push_image(&registry, "keyward/app", "v1", b"release one\n");
    let keys = registry.scratch("keys").unwrap();
    let (key, public) = generate_key(&keys, "release").unwrap();
    let reference = format!("{}/keyward/app:v1", registry.addr());
    registry
        .push_simple_signature("keyward/app", &reference, &old, &[&key])
        .unwrap();
    let client = client(&registry);
    let policy = key_policy(&public);
    client
        .verify_image(&production(), &policy, &reference, NOW)
        .await
        .unwrap();

    // The tag now names another image: its digest has no signature.
    let new = push_image(&registry, "keyward/app", "v1", b"release two, unsigned\n");
    assert_ne!(old, new);
    let error = client
        .verify_image(&production(), &policy, &reference, NOW)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ImageError::NoSignatures { digest } if *digest == new),
        "{error:?}"
    );

    // Copying the old signature artifact to the new digest's `.sig` tag does
    // not help: the payload signs the old digest.
    let old_sig = registry
        .get(&format!(
            "/v2/keyward/app/manifests/{}.sig",
            old.replace(':', "-")
        ))
        .unwrap()
        .body;
    registry
        .put_manifest(
            "keyward/app",
            &format!("{}.sig", new.replace(':', "-")),
            OCI_MANIFEST,
            &old_sig,
        )
        .unwrap();
    let error = client
        .verify_image(&production(), &policy, &reference, NOW)
        .await
        .unwrap_err();
    let ImageError::NoneVerified { failures, .. } = error else {
        panic!("{error:?}")
    };
    assert!(
        matches!(
            failures[0].reason,
            CandidateError::SimpleSigning(SimpleSigningError::ManifestDigestMismatch { .. })
        ),
        "{failures:?}"
    );
    // The old digest, by digest, still verifies.
    client
        .verify_image(
            &production(),
            &policy,
            &format!("{}/keyward/app@{old}", registry.addr()),
            NOW,
        )
        .await
        .unwrap();
}

/// A `.sig` manifest with the given layers (config: an OCI image config).
fn put_sig_manifest(registry: &Registry, subject: &str, layers: serde_json::Value) -> Vec<u8> {
    let config = registry
        .put_blob("keyward/app", b"{\"rootfs\":{}}")
        .unwrap();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 13},
        "layers": layers,
    })
    .to_string()
    .into_bytes();
    registry
        .put_manifest(
            "keyward/app",
            &format!("{}.sig", subject.replace(':', "-")),
            OCI_MANIFEST,
            &manifest,
        )
        .unwrap();
    manifest
}

fn only_failure(error: ImageError) -> CandidateError {
    let ImageError::NoneVerified { mut failures, .. } = error else {
        panic!("{error:?}")
    };
    assert_eq!(failures.len(), 1, "{failures:?}");
    failures.remove(0).reason
}

#[tokio::test]
async fn oversized_and_malformed_manifests_get_typed_errors() {
    let registry = Registry::start().unwrap();
    let digest = push_image(&registry, "keyward/app", "v1", b"hostile\n");
    let reference = format!("{}/keyward/app:v1", registry.addr());
    let keys = registry.scratch("keys").unwrap();
    let (_, public) = generate_key(&keys, "release").unwrap();
    let policy = key_policy(&public);
    let payload = br#"{"critical":{}}"#;
    let payload_digest = registry.put_blob("keyward/app", payload).unwrap();
    let layer = |size: usize, annotations: serde_json::Value| {
        json!({"mediaType": SIMPLE_SIGNING_LAYER, "digest": payload_digest, "size": size,
            "annotations": annotations})
    };
    let signed = json!({"dev.cosignproject.cosign/signature": "MEUCIQ=="});

    // The image manifest itself above the cap.
    let tiny = client_with(&registry, Limits::default().with_max_manifest_len(64));
    let error = tiny.resolve(&reference).await.unwrap_err();
    assert!(
        matches!(error, RegistryError::TooLarge { limit: 64, .. }),
        "{error:?}"
    );

    // A `.sig` manifest above the cap (padded with annotations).
    let padding =
        json!({"dev.cosignproject.cosign/signature": "MEUCIQ==", "pad": "x".repeat(4096)});
    put_sig_manifest(&registry, &digest, json!([layer(payload.len(), padding)]));
    let small = client_with(&registry, Limits::default().with_max_manifest_len(2048));
    let error = small
        .verify_image(&production(), &policy, &reference, NOW)
        .await
        .unwrap_err();
    assert!(
        matches!(
            only_failure(error),
            CandidateError::Fetch(RegistryError::TooLarge { limit: 2048, .. })
        ),
        "too large"
    );

    // More layers than the cap.
    put_sig_manifest(
        &registry,
        &digest,
        json!([
            layer(payload.len(), signed.clone()),
            layer(payload.len(), signed.clone()),
            layer(payload.len(), signed.clone())
        ]),
    );
    let two_layers = client_with(&registry, Limits::default().with_max_layers(2));
    let error = two_layers
        .verify_image(&production(), &policy, &reference, NOW)
        .await
        .unwrap_err();
    let reason = only_failure(error);
    assert!(
        matches!(
            reason,
            CandidateError::Fetch(RegistryError::Manifest {
                failure: ManifestFailure::TooManyLayers { count: 3, max: 2 },
                ..
            })
        ),
        "{reason:?}"
    );

    // A layer whose descriptor understates the blob's size.
    put_sig_manifest(
        &registry,
        &digest,
        json!([layer(payload.len() - 1, signed.clone())]),
    );
    let reason = only_failure(
        client(&registry)
            .verify_image(&production(), &policy, &reference, NOW)
            .await
            .unwrap_err(),
    );
    assert!(
        matches!(
            reason,
            CandidateError::Fetch(RegistryError::TooLarge { .. })
        ),
        "{reason:?}"
    );

    // ... or overstates it.
    put_sig_manifest(
        &registry,
        &digest,
        json!([layer(payload.len() + 1, signed.clone())]),
    );
    let reason = only_failure(
        client(&registry)
            .verify_image(&production(), &policy, &reference, NOW)
            .await
            .unwrap_err(),
    );
    assert!(
        matches!(
            reason,
            CandidateError::Fetch(RegistryError::SizeMismatch { .. })
        ),
        "{reason:?}"
    );

    // A simple-signing layer without its signature annotation.
    put_sig_manifest(&registry, &digest, json!([layer(payload.len(), json!({}))]));
    let reason = only_failure(
        client(&registry)
            .verify_image(&production(), &policy, &reference, NOW)
            .await
            .unwrap_err(),
    );
    assert!(
        matches!(reason, CandidateError::MissingSignatureAnnotation),
        "{reason:?}"
    );

    // A well-formed layer whose payload is not a simple-signing payload and
    // whose signature is junk: verification, not discovery, rejects it.
    put_sig_manifest(
        &registry,
        &digest,
        json!([layer(payload.len(), signed.clone())]),
    );
    let reason = only_failure(
        client(&registry)
            .verify_image(&production(), &policy, &reference, NOW)
            .await
            .unwrap_err(),
    );
    assert!(
        matches!(
            reason,
            CandidateError::SimpleSigning(SimpleSigningError::SignatureInvalid)
        ),
        "{reason:?}"
    );

    // An index where the `.sig` image manifest belongs.
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).to_string();
    registry
        .put_manifest(
            "keyward/app",
            &format!("{}.sig", digest.replace(':', "-")),
            OCI_INDEX,
            index.as_bytes(),
        )
        .unwrap();
    let reason = only_failure(
        client(&registry)
            .verify_image(&production(), &policy, &reference, NOW)
            .await
            .unwrap_err(),
    );
    assert!(
        matches!(
            reason,
            CandidateError::Fetch(RegistryError::Manifest {
                failure: ManifestFailure::UnexpectedKind,
                ..
            })
        ),
        "{reason:?}"
    );
}

#[tokio::test]
async fn malformed_bundle_in_a_referrer_is_a_typed_verification_failure() {
    let registry = Registry::start().unwrap();
    let repository = "kubewarden/garbled";
    let mut bundle = kubewarden_bundle();
    bundle.truncate(bundle.len() / 2);
    let (manifest, _) = push_bundle_manifest(&registry, repository, KUBEWARDEN_DIGEST, &bundle);
    push_referrers_index(&registry, repository, KUBEWARDEN_DIGEST, &manifest);
    let error = client(&registry)
        .verify_digest(
            &production(),
            &kubewarden_policy(),
            &format!("{}/{repository}", registry.addr()),
            &digest_bytes(KUBEWARDEN_DIGEST),
            NOW,
        )
        .await
        .unwrap_err();
    let reason = only_failure(error);
    assert!(
        matches!(
            reason,
            CandidateError::Bundle(VerifyError::Bundle(
                keyward_attest::sigstore::BundleError::Json { .. }
            ))
        ),
        "{reason:?}"
    );
}

#[test]
fn registry_is_stopped_and_reaped_on_drop() {
    let registry = Registry::start().unwrap();
    let pid = registry.pid();
    let proc = format!("/proc/{pid}");
    assert!(Path::new(&proc).exists());
    drop(registry);
    // Reaped, not a zombie: the process entry is gone.
    assert!(
        !Path::new(&proc).exists(),
        "docker-registry {pid} left behind"
    );
}

#[test]
fn skopeo_push_keeps_the_layout_digest() {
    let registry = Registry::start().unwrap();
    let dir = registry.scratch("layout").unwrap();
    let digest = write_test_image(&dir, "img", b"same bytes\n").unwrap();
    // Deterministic: the same content gives the same digest.
    let again = registry.scratch("layout-again").unwrap();
    assert_eq!(
        write_test_image(&again, "img", b"same bytes\n").unwrap(),
        digest
    );
    registry
        .skopeo_push(&dir, "img", "keyward/app", "v1")
        .unwrap();
    let response = registry
        .get(&format!("/v2/keyward/app/manifests/{digest}"))
        .unwrap();
    assert_eq!(response.status, 200);
    assert!(
        response
            .headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("docker-content-digest") && *v == digest)
    );
}

fn attest_vector(path: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../attest/testdata/sigstore/simple-signing/{path}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[tokio::test]
async fn keyless_simple_signature_with_set_verifies_from_the_sig_tag() {
    // The keyless vector of attest/testdata/sigstore/simple-signing/ (see its
    // README: a private Sigstore instance, certificate + chain + Rekor bundle
    // annotations) pushed as the `.sig` artifact cosign < 3 writes. The
    // signed image is not in the registry: discovery is by digest.
    let registry = Registry::start().unwrap();
    let digest = String::from_utf8(attest_vector("image-digest.txt")).unwrap();
    let digest = digest.trim();
    let payload = attest_vector("keyless/payload.json");
    let annotations: serde_json::Value =
        serde_json::from_slice(&attest_vector("keyless/annotations.json")).unwrap();
    let layer = registry.put_blob("keyward/app", &payload).unwrap();
    put_sig_manifest(
        &registry,
        digest,
        json!([{"mediaType": SIMPLE_SIGNING_LAYER, "digest": layer, "size": payload.len(),
            "annotations": annotations}]),
    );
    let identity = String::from_utf8(attest_vector("keyless/identity.txt")).unwrap();
    let policy = json!({"kind": "image", "predicate_types": [PREDICATE_SIMPLE_SIGNING],
        "identities": [{"issuer": GITHUB_ISSUER, "subject": identity.trim(),
            "github": {"repository": "keyward-test/app", "ref": "refs/tags/v1.0.0"}}]});
    let policy = SigningPolicy::from_json(policy.to_string().as_bytes()).unwrap();
    let trust = TrustRoot::from_json(&attest_vector("keyless/trusted_root.json")).unwrap();
    let client = client(&registry);
    let repository = format!("{}/keyward/app", registry.addr());
    let verified = client
        .verify_digest(&trust, &policy, &repository, &digest_bytes(digest), NOW)
        .await
        .unwrap();
    let Signer::Keyless { subject, .. } = verified.signer() else {
        panic!("{:?}", verified.signer())
    };
    assert_eq!(subject, identity.trim());
    assert_eq!(verified.tlog().unwrap().log_index, 42);

    // Under the public-good root the same signature's log entry is unknown.
    let error = client
        .verify_digest(
            &production(),
            &policy,
            &repository,
            &digest_bytes(digest),
            NOW,
        )
        .await
        .unwrap_err();
    let reason = only_failure(error);
    assert!(
        matches!(
            reason,
            CandidateError::SimpleSigning(SimpleSigningError::Verify(
                VerifyError::TransparencyLog { .. }
            ))
        ),
        "{reason:?}"
    );
}
