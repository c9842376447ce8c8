//! Container image signatures, over the image manifest digest.
//!
//! Two formats, each pinned by its own predicate type in the image policy:
//!
//! - cosign v3 ([`PREDICATE_COSIGN_SIGN_V1`]): a Sigstore bundle whose DSSE
//!   envelope holds an in-toto statement with exactly one subject, the
//!   manifest digest → [`verify_cosign_bundle`]. The registry code finds it
//!   through the OCI referrers API or the `sha256-<hex>` tag.
//! - legacy simple signing ([`PREDICATE_SIMPLE_SIGNING`]): the
//!   `sha256-<hex>.sig` artifact cosign (before v3) and `skopeo copy
//!   --sign-by-sigstore-private-key` write → [`verify_simple_signing`], given
//!   the layer blob (payload) and its annotations.
//!
//! Simple signing, checked in this order:
//! 1. the policy is an image policy pinning simple signing;
//! 2. sizes are bounded; the signature annotation is base64;
//! 3. keyless (a certificate annotation is present): the Rekor bundle
//!    annotation is required, and the signature is rebuilt as the v0.1
//!    bundle it is equivalent to (message signature over the payload,
//!    hashedrekord entry with its SET) and verified by `sigstore-verify` like
//!    any bundle — Fulcio chain at the SET's integrated time, SCT, SET, entry
//!    consistency — then the identity is matched. The `chain` annotation is
//!    ignored: Fulcio intermediates come from the trusted root, never from
//!    the signature;
//! 4. key-signed: with a Rekor bundle, the same rebuilt bundle with a managed
//!    key; without one (skopeo), ECDSA/RSA/Ed25519 over the payload with each
//!    managed key until one verifies;
//! 5. the payload parses, its type is the cosign image signature type, its
//!    `docker-manifest-digest` is the image digest, and its
//!    `docker-reference` matches the policy's, when the policy pins one.
//!
//! Debian's skopeo 1.9.3 has sigstore signing disabled ("Debian-local change:
//! sigstore disabled"), so the simple-signing test vectors are written by
//! `attest/testdata/sigstore/gen-simple-signing.sh` in the formats
//! containers/image and cosign write.

use super::bundle::parse_bundle;
use super::dsse::to_hex;
use super::error::VerifyError;
use super::policy::{
    ArtifactKind, PREDICATE_SIMPLE_SIGNING, SigningPolicy, parse_prefixed_sha256, pem_blocks,
};
use super::simple_signing::{
    PayloadFailure, RekorBundleFailure, legacy_bundle, parse_payload, reference_matches,
    rekor_entry,
};
use super::trust::TrustRoot;
use super::verified::{Signer, VerifiedArtifact};
use super::verify::{ArtifactInput, verify_bundle_as, verify_core};

pub use super::policy::PREDICATE_COSIGN_SIGN_V1;
pub use super::simple_signing::PayloadFailure as SimplePayloadFailure;
pub use super::simple_signing::RekorBundleFailure as SimpleRekorBundleFailure;

/// The layer annotation holding the base64 signature.
pub const ANNOTATION_SIGNATURE: &str = "dev.cosignproject.cosign/signature";
/// The layer annotation holding the Fulcio certificate, PEM.
pub const ANNOTATION_CERTIFICATE: &str = "dev.sigstore.cosign/certificate";
/// The layer annotation holding the certificate chain, PEM (ignored).
pub const ANNOTATION_CHAIN: &str = "dev.sigstore.cosign/chain";
/// The layer annotation holding the Rekor bundle (SET), JSON.
pub const ANNOTATION_BUNDLE: &str = "dev.sigstore.cosign/bundle";

/// Largest simple-signing payload accepted, in bytes (real ones are a few
/// hundred bytes; cosign `-a` annotations make them larger).
pub const MAX_SIMPLE_SIGNING_PAYLOAD: usize = 64 * 1024;

/// Largest annotation value accepted, in bytes.
pub const MAX_ANNOTATION_LEN: usize = 64 * 1024;

/// Parses an image digest, `sha256:<64 lower-case hex>`.
pub fn parse_image_digest(text: &str) -> Option<[u8; 32]> {
    parse_prefixed_sha256(text)
}

/// Verifies a cosign v3 signature bundle over the image whose manifest
/// digest is `manifest_digest`, at `now` (UNIX seconds). The policy must be
/// an image policy pinning [`PREDICATE_COSIGN_SIGN_V1`]; a bundle with any
/// other predicate over the same digest (SLSA provenance, SBOMs) fails with
/// [`VerifyError::PredicateTypeNotAllowed`].
pub fn verify_cosign_bundle(
    trust: &TrustRoot,
    policy: &SigningPolicy,
    bundle: &[u8],
    manifest_digest: &[u8; 32],
    now: u64,
) -> Result<VerifiedArtifact, VerifyError> {
    let bundle = parse_bundle(bundle)?;
    verify_bundle_as(
        ArtifactKind::Image,
        trust,
        policy,
        &bundle,
        ArtifactInput::Sha256(*manifest_digest),
        now,
    )
}

/// A legacy `sha256-<hex>.sig` signature as fetched from the registry: the
/// layer blob and the layer's annotation values.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct SimpleSigningSignature<'a> {
    /// The layer blob (media type `application/vnd.dev.cosign.simplesigning.v1+json`).
    pub payload: &'a [u8],
    /// [`ANNOTATION_SIGNATURE`].
    pub signature: &'a str,
    /// [`ANNOTATION_CERTIFICATE`], for keyless signatures.
    pub certificate: Option<&'a str>,
    /// [`ANNOTATION_CHAIN`] (accepted, ignored).
    pub chain: Option<&'a str>,
    /// [`ANNOTATION_BUNDLE`].
    pub rekor_bundle: Option<&'a str>,
}

impl<'a> SimpleSigningSignature<'a> {
    /// A signature from its payload and signature annotation.
    pub fn new(payload: &'a [u8], signature: &'a str) -> Self {
        Self {
            payload,
            signature,
            certificate: None,
            chain: None,
            rekor_bundle: None,
        }
    }

    /// Adds the certificate annotation.
    pub fn with_certificate(mut self, certificate: &'a str) -> Self {
        self.certificate = Some(certificate);
        self
    }

    /// Adds the chain annotation.
    pub fn with_chain(mut self, chain: &'a str) -> Self {
        self.chain = Some(chain);
        self
    }

    /// Adds the Rekor bundle annotation.
    pub fn with_rekor_bundle(mut self, rekor_bundle: &'a str) -> Self {
        self.rekor_bundle = Some(rekor_bundle);
        self
    }
}

/// Why a simple-signing signature was not accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimpleSigningError {
    /// The policy is not an image policy pinning simple signing.
    #[error("policy does not allow simple-signing image signatures")]
    NotAllowed,
    /// The payload is larger than [`MAX_SIMPLE_SIGNING_PAYLOAD`].
    #[error("payload is {len} bytes, at most {max} accepted")]
    PayloadTooLarge {
        /// Bytes given.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// An annotation is longer than [`MAX_ANNOTATION_LEN`].
    #[error("annotation {annotation} is {len} bytes, at most {max} accepted")]
    AnnotationTooLarge {
        /// The annotation key.
        annotation: &'static str,
        /// Bytes given.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The signature annotation is not base64.
    #[error("signature annotation is not valid base64")]
    SignatureBase64,
    /// The certificate annotation is not exactly one PEM certificate.
    #[error("certificate annotation is not one PEM certificate")]
    CertificatePem,
    /// A keyless signature without the Rekor bundle annotation.
    #[error("keyless signature has no Rekor bundle")]
    MissingRekorBundle,
    /// The Rekor bundle annotation is malformed.
    #[error("Rekor bundle annotation rejected: {reason:?}")]
    RekorBundle {
        /// Why.
        reason: RekorBundleFailure,
    },
    /// Bundle verification (keyless, or key with a Rekor bundle) failed.
    #[error("{0}")]
    Verify(#[from] VerifyError),
    /// No managed key verifies the signature (key-signed, no Rekor bundle).
    #[error("signature does not verify with any managed key")]
    SignatureInvalid,
    /// The payload is malformed.
    #[error("payload rejected: {reason:?}")]
    Payload {
        /// Why.
        reason: PayloadFailure,
    },
    /// The payload signs another manifest digest.
    #[error("payload signs sha256:{found}, expected sha256:{expected}")]
    ManifestDigestMismatch {
        /// The image digest, hex.
        expected: String,
        /// The signed digest, hex.
        found: String,
    },
    /// The payload's docker reference does not match the policy's.
    #[error("payload names {found:?}, the policy requires {expected:?}")]
    DockerReferenceMismatch {
        /// The policy's reference.
        expected: String,
        /// The signed reference (truncated to 200 characters).
        found: String,
    },
}

/// Verifies a legacy simple-signing signature over the image whose manifest
/// digest is `manifest_digest`, at `now` (UNIX seconds). See the module
/// documentation for the checks.
pub fn verify_simple_signing(
    trust: &TrustRoot,
    policy: &SigningPolicy,
    signature: &SimpleSigningSignature<'_>,
    manifest_digest: &[u8; 32],
    now: u64,
) -> Result<VerifiedArtifact, SimpleSigningError> {
    if policy.kind() != ArtifactKind::Image || !policy.allows_predicate(PREDICATE_SIMPLE_SIGNING) {
        return Err(SimpleSigningError::NotAllowed);
    }
    if signature.payload.len() > MAX_SIMPLE_SIGNING_PAYLOAD {
        return Err(SimpleSigningError::PayloadTooLarge {
            len: signature.payload.len(),
            max: MAX_SIMPLE_SIGNING_PAYLOAD,
        });
    }
    let annotations = [
        (ANNOTATION_SIGNATURE, Some(signature.signature)),
        (ANNOTATION_CERTIFICATE, signature.certificate),
        (ANNOTATION_CHAIN, signature.chain),
        (ANNOTATION_BUNDLE, signature.rekor_bundle),
    ];
    for (annotation, value) in annotations {
        let len = value.map_or(0, str::len);
        if len > MAX_ANNOTATION_LEN {
            return Err(SimpleSigningError::AnnotationTooLarge {
                annotation,
                len,
                max: MAX_ANNOTATION_LEN,
            });
        }
    }
    let signature_bytes = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(signature.signature.trim())
            .map_err(|_| SimpleSigningError::SignatureBase64)?
    };
    let entry = signature
        .rekor_bundle
        .map(|json| rekor_entry(json).map_err(|reason| SimpleSigningError::RekorBundle { reason }))
        .transpose()?;

    let (signer, tlog, timestamps) = match (signature.certificate, entry) {
        (Some(pem), Some(entry)) => {
            let mut certificates =
                pem_blocks(pem, "CERTIFICATE").ok_or(SimpleSigningError::CertificatePem)?;
            let leaf = certificates
                .pop()
                .filter(|_| certificates.is_empty())
                .ok_or(SimpleSigningError::CertificatePem)?;
            let bundle = legacy_bundle(signature.payload, signature_bytes, Some(leaf), entry);
            let core = verify_core(
                trust,
                policy,
                &bundle,
                ArtifactInput::Bytes(signature.payload),
                now,
            )?;
            (core.signer, core.tlog, core.timestamps)
        }
        (Some(_), None) => return Err(SimpleSigningError::MissingRekorBundle),
        (None, Some(entry)) => {
            let bundle = legacy_bundle(signature.payload, signature_bytes, None, entry);
            let core = verify_core(
                trust,
                policy,
                &bundle,
                ArtifactInput::Bytes(signature.payload),
                now,
            )?;
            (core.signer, core.tlog, core.timestamps)
        }
        (None, None) => {
            if policy.keys().is_empty() {
                return Err(VerifyError::KeyNotAllowed.into());
            }
            let key_id = policy
                .keys()
                .iter()
                .find(|key| verify_with_key(key.spki_der(), signature.payload, &signature_bytes))
                .map(|key| key.key_id().to_string())
                .ok_or(SimpleSigningError::SignatureInvalid)?;
            (Signer::Key { key_id }, None, Vec::new())
        }
    };

    let payload = parse_payload(signature.payload)
        .map_err(|reason| SimpleSigningError::Payload { reason })?;
    if &payload.manifest_digest != manifest_digest {
        return Err(SimpleSigningError::ManifestDigestMismatch {
            expected: to_hex(manifest_digest),
            found: to_hex(&payload.manifest_digest),
        });
    }
    if let Some(expected) = policy.docker_reference()
        && !reference_matches(expected, &payload.docker_reference)
    {
        return Err(SimpleSigningError::DockerReferenceMismatch {
            expected: expected.to_string(),
            found: payload.docker_reference.chars().take(200).collect(),
        });
    }
    Ok(VerifiedArtifact::new(
        ArtifactKind::Image,
        *manifest_digest,
        signer,
        tlog,
        timestamps,
        Some(PREDICATE_SIMPLE_SIGNING.to_string()),
    ))
}

/// A signature over `payload` by the key, with the key type's default scheme
/// (ECDSA P-256/SHA-256 for the keys skopeo and cosign generate).
fn verify_with_key(spki_der: &[u8], payload: &[u8], signature: &[u8]) -> bool {
    let key = sigstore_types::DerPublicKey::new(spki_der.to_vec());
    sigstore_verify::crypto::VerificationKey::from_spki(&key)
        .and_then(|key| {
            key.verify(
                payload,
                &sigstore_types::SignatureBytes::new(signature.to_vec()),
            )
        })
        .is_ok()
}
