//! Sigstore bundle verification against a signing policy.
//!
//! Order of checks in [`verify_bundle`]:
//! 1. the policy is for this artifact kind;
//! 2. the signer kind is allowed: a certificate needs at least one keyless
//!    identity, a public-key hint at least one managed key;
//! 3. `sigstore-verify` checks the bundle cryptographically (Fulcio chain at
//!    every authenticated signing time, SCT, identity-agnostic; Rekor SET,
//!    inclusion proof and checkpoint; TSA timestamps; signature over the
//!    artifact or DSSE PAE; statement subject binding; log-entry
//!    consistency). Identity matching is left to us because the policy's
//!    regexes and GitHub claims go beyond its exact-match policy;
//! 4. every authenticated signing time is at or before `now`;
//! 5. the certificate's SAN, issuer and claims match a policy identity;
//! 6. for pinned predicate types: the content is a DSSE in-toto statement
//!    with an allowed predicate type and, for images and models, exactly one
//!    subject whose sha256 is the artifact digest.
//!
//! Cryptography comes before the policy checks so that every policy error
//! describes content a trusted signer really produced: an SLSA provenance
//! statement over the right digest by the right identity is reported as
//! [`VerifyError::PredicateTypeNotAllowed`], not as noise.

use sigstore_types::bundle::VerificationMaterialContent;
use sigstore_types::{Artifact, ArtifactDigest, Sha256Hash};
use sigstore_verify::{PublicKeyVerificationPolicy, VerificationPolicy, VerificationResult};

use super::bundle::ParsedBundle;
use super::dsse::{parse_statement, to_hex};
use super::error::VerifyError;
use super::policy::{ArtifactKind, SigningPolicy, sha256};
use super::trust::TrustRoot;
use super::verified::{CertificateClaims, Signer, TlogEvidence, VerifiedArtifact};

/// A SHA-256 digest.
pub type Sha256Digest = [u8; 32];

/// The artifact a bundle is checked against.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum ArtifactInput<'a> {
    /// The artifact's bytes.
    Bytes(&'a [u8]),
    /// The artifact's SHA-256 digest (image manifest digest, model root digest).
    Sha256(Sha256Digest),
}

impl ArtifactInput<'_> {
    fn sha256(&self) -> Sha256Digest {
        match self {
            Self::Bytes(bytes) => sha256(bytes),
            Self::Sha256(digest) => *digest,
        }
    }

    fn upstream(&self) -> Artifact<'_> {
        match self {
            Self::Bytes(bytes) => Artifact::Blob(bytes),
            Self::Sha256(digest) => {
                Artifact::Digest(ArtifactDigest::sha256(Sha256Hash::new(*digest)))
            }
        }
    }
}

/// Verifies a Sigstore bundle over `artifact` against `policy`, at `now`
/// (UNIX seconds). See the module documentation for the checks and their order.
pub fn verify_bundle(
    trust: &TrustRoot,
    policy: &SigningPolicy,
    bundle: &ParsedBundle,
    artifact: ArtifactInput<'_>,
    now: u64,
) -> Result<VerifiedArtifact, VerifyError> {
    verify_bundle_as(policy.kind(), trust, policy, bundle, artifact, now)
}

pub(crate) fn verify_bundle_as(
    kind: ArtifactKind,
    trust: &TrustRoot,
    policy: &SigningPolicy,
    bundle: &ParsedBundle,
    artifact: ArtifactInput<'_>,
    now: u64,
) -> Result<VerifiedArtifact, VerifyError> {
    if policy.kind() != kind {
        return Err(VerifyError::PolicyKind {
            policy: policy.kind(),
            artifact: kind,
        });
    }
    let core = verify_core(trust, policy, bundle, artifact, now)?;
    let predicate_type = check_predicate(kind, policy, bundle, &artifact)?;
    Ok(VerifiedArtifact::new(
        kind,
        artifact.sha256(),
        core.signer,
        core.tlog,
        core.timestamps,
        predicate_type,
    ))
}

/// What steps 2–5 of the module documentation establish.
pub(crate) struct CoreVerified {
    pub(crate) signer: Signer,
    pub(crate) tlog: Option<TlogEvidence>,
    pub(crate) timestamps: Vec<u64>,
}

/// Steps 2–5 of the module documentation: signer kind, `sigstore-verify`,
/// signing times against `now`, identity. No predicate check.
pub(crate) fn verify_core(
    trust: &TrustRoot,
    policy: &SigningPolicy,
    bundle: &ParsedBundle,
    artifact: ArtifactInput<'_>,
    now: u64,
) -> Result<CoreVerified, VerifyError> {
    let (signer, result) = verify_signer(trust, policy, bundle, artifact)?;

    let mut timestamps: Vec<u64> = Vec::new();
    for time in result.verified_timestamps() {
        let seconds = u64::try_from(time.as_second()).unwrap_or(0);
        if seconds > now {
            return Err(VerifyError::SignedInFuture { time: seconds, now });
        }
        timestamps.push(seconds);
    }
    let integrated_time = result
        .integrated_time()
        .map(|t| u64::try_from(t.as_second()).unwrap_or(0));
    if let Some(time) = integrated_time
        && time > now
    {
        return Err(VerifyError::SignedInFuture { time, now });
    }

    let signer = match signer {
        Some(key_signer) => key_signer,
        None => keyless_signer(policy, &result)?,
    };

    let tlog = if result.tlog_verified() {
        bundle
            .bundle
            .verification_material
            .tlog_entries
            .first()
            .map(|entry| TlogEvidence {
                log_index: entry.log_index.get(),
                integrated_time,
            })
    } else {
        None
    };
    Ok(CoreVerified {
        signer,
        tlog,
        timestamps,
    })
}

/// Runs `sigstore-verify`. Returns the signer for managed keys (`None` for
/// keyless bundles, whose identity is matched afterwards) and the result.
fn verify_signer(
    trust: &TrustRoot,
    policy: &SigningPolicy,
    bundle: &ParsedBundle,
    artifact: ArtifactInput<'_>,
) -> Result<(Option<Signer>, VerificationResult), VerifyError> {
    match &bundle.bundle.verification_material.content {
        VerificationMaterialContent::PublicKey(_) => {
            if policy.keys().is_empty() {
                return Err(VerifyError::KeyNotAllowed);
            }
            // The hint is unauthenticated (protobuf-specs PublicKeyIdentifier),
            // so every configured key is tried. The error reported is the
            // first one that is not "this key did not make the signature"
            // (log, timestamp or binding failures name the real problem),
            // else "signature invalid".
            let mut informative: Option<VerifyError> = None;
            let mut last: Option<VerifyError> = None;
            for key in policy.keys() {
                let der = sigstore_types::DerPublicKey::new(key.spki_der().to_vec());
                let key_policy = PublicKeyVerificationPolicy::new(der);
                match trust
                    .verifier
                    .verify(artifact.upstream(), &bundle.bundle, &key_policy)
                {
                    Ok(result) if result.tlog_verified() => {
                        return Ok((
                            Some(Signer::Key {
                                key_id: key.key_id().to_string(),
                            }),
                            result,
                        ));
                    }
                    Ok(_) => return Err(VerifyError::SignatureInvalid { source: None }),
                    Err(error) => {
                        let error = VerifyError::from_upstream(error);
                        if !error.is_wrong_key() && informative.is_none() {
                            informative = Some(error);
                        } else {
                            last = Some(error);
                        }
                    }
                }
            }
            Err(informative
                .or(last)
                .unwrap_or(VerifyError::SignatureInvalid { source: None }))
        }
        _ => {
            if policy.identities().is_empty() {
                return Err(VerifyError::KeylessNotAllowed);
            }
            let result = trust
                .verifier
                .verify(
                    artifact.upstream(),
                    &bundle.bundle,
                    &VerificationPolicy::any_identity(),
                )
                .map_err(VerifyError::from_upstream)?;
            // Defence in depth: the policy above verifies all three.
            if !(result.certificate_verified() && result.sct_verified() && result.tlog_verified()) {
                return Err(VerifyError::SignatureInvalid { source: None });
            }
            Ok((None, result))
        }
    }
}

fn keyless_signer(
    policy: &SigningPolicy,
    result: &VerificationResult,
) -> Result<Signer, VerifyError> {
    let subject = result.identity().map(|san| san.as_str().to_string());
    let issuer = result.issuer().map(str::to_string);
    let claims = result
        .certificate()
        .map(|info| CertificateClaims::from_fulcio(&info.ci_claims))
        .unwrap_or_default();
    match (&subject, &issuer) {
        (Some(s), Some(i)) if policy.keyless_match(s, i, &claims).is_some() => {
            Ok(Signer::Keyless {
                issuer: i.clone(),
                subject: s.clone(),
                claims: Box::new(claims),
            })
        }
        _ => Err(VerifyError::IdentityNotAllowed { subject, issuer }),
    }
}

/// Step 6 of the module documentation. Returns the predicate type found.
fn check_predicate(
    kind: ArtifactKind,
    policy: &SigningPolicy,
    bundle: &ParsedBundle,
    artifact: &ArtifactInput<'_>,
) -> Result<Option<String>, VerifyError> {
    let Some((payload_type, payload)) = bundle.dsse() else {
        if policy.predicate_types().is_empty() {
            return Ok(None);
        }
        return Err(VerifyError::NotAnAttestation);
    };
    let statement = parse_statement(payload_type, payload)?;
    let predicate_type = statement.predicate_type().to_string();
    if !policy.predicate_types().is_empty() && !policy.allows_predicate(&predicate_type) {
        return Err(VerifyError::PredicateTypeNotAllowed {
            predicate_type: predicate_type.chars().take(200).collect(),
        });
    }
    if kind != ArtifactKind::Blob {
        // An image or model signature names exactly one artifact: cosign v3
        // and model-signing both write a single subject.
        let [subject] = statement.subjects() else {
            return Err(VerifyError::SubjectCount {
                count: statement.subjects().len(),
            });
        };
        let found = subject.sha256.ok_or(VerifyError::SubjectWithoutSha256)?;
        let expected = artifact.sha256();
        if found != expected {
            return Err(VerifyError::SubjectDigestMismatch {
                expected: to_hex(&expected),
                found: to_hex(&found),
            });
        }
    }
    Ok(Some(predicate_type))
}
