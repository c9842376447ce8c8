//! Why a signature was not accepted.
//!
//! One enum, [`VerifyError`], covers the verification stage of every
//! artifact kind. Failures reported by `sigstore-verify` are classified into
//! structured reasons ([`CertificateFailure`], [`TlogFailure`],
//! [`TimestampFailure`]); the upstream error, with its human-readable
//! detail, stays attached as the `source` for the audit log.

use std::fmt;

use super::bundle::BundleError;
use super::dsse::StatementError;
use super::policy::ArtifactKind;

/// The error `sigstore-verify` reported, kept as the source of a
/// [`VerifyError`] for logs. Its text is detail, not something to match on.
#[derive(Debug)]
pub struct UpstreamError(sigstore_verify::Error);

impl fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for UpstreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl UpstreamError {
    pub(crate) fn new(error: sigstore_verify::Error) -> Self {
        Self(error)
    }
}

/// Why the signing certificate was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertificateFailure {
    /// It or its chain does not parse.
    Malformed,
    /// It does not chain to a trusted Fulcio CA or lacks the code-signing EKU.
    ChainInvalid,
    /// No trusted CA was valid at the signing time.
    NoValidAuthority,
    /// The signing time is before notBefore.
    NotYetValid,
    /// The signing time is after notAfter.
    Expired,
    /// Its embedded SCT is missing or does not verify.
    Sct,
}

/// Why transparency-log evidence was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlogFailure {
    /// The entry names a log that is not in the trusted root.
    UnknownLog,
    /// The Merkle inclusion proof does not verify.
    InclusionProof,
    /// The checkpoint is missing, malformed or not signed by a trusted log.
    Checkpoint,
    /// The SET (inclusion promise) is missing or does not verify.
    InclusionPromise,
    /// The entry does not describe this bundle's signature, key or artifact.
    EntryMismatch,
    /// The integrated time is in the future or outside the certificate's validity.
    IntegratedTime,
    /// The entry body does not parse or has an unsupported kind.
    MalformedEntry,
}

/// Why a timestamp was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimestampFailure {
    /// An RFC 3161 timestamp does not verify against a trusted TSA.
    Invalid,
    /// An RFC 3161 timestamp is outside its TSA's validity window.
    OutsideAuthorityValidity,
    /// No authenticated signing time exists (no TSA timestamp, no SET).
    NoVerifiedTimestamp,
}

/// Why a signature did not establish a [`super::VerifiedArtifact`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The bundle did not parse.
    #[error("bundle: {0}")]
    Bundle(#[from] BundleError),
    /// The signing policy is for another artifact kind.
    #[error("policy is for {policy:?} artifacts, not {artifact:?}")]
    PolicyKind {
        /// The policy's kind.
        policy: ArtifactKind,
        /// The kind being verified.
        artifact: ArtifactKind,
    },
    /// The bundle is keyless (certificate) but the policy allows no identity.
    #[error("bundle is keyless but the policy allows no keyless identity")]
    KeylessNotAllowed,
    /// The bundle is signed with a key but the policy lists no managed key.
    #[error("bundle is key-signed but the policy lists no managed key")]
    KeyNotAllowed,
    /// The certificate's identity and issuer match no policy entry.
    #[error("signer {subject:?} from issuer {issuer:?} is not allowed by the policy")]
    IdentityNotAllowed {
        /// The certificate's SAN (email or URI), if any.
        subject: Option<String>,
        /// The certificate's OIDC issuer, if any.
        issuer: Option<String>,
    },
    /// The signature does not verify with the signing key (for managed keys:
    /// with any configured key).
    #[error("signature does not verify")]
    SignatureInvalid {
        /// The upstream error, when `sigstore-verify` reported it.
        #[source]
        source: Option<UpstreamError>,
    },
    /// The bundle's digest, statement subject or log entry does not describe
    /// the artifact given.
    #[error("the signature is not over this artifact")]
    ArtifactMismatch {
        /// The upstream error, when `sigstore-verify` reported it.
        #[source]
        source: Option<UpstreamError>,
    },
    /// The signing certificate was rejected.
    #[error("signing certificate rejected: {reason:?}")]
    Certificate {
        /// Why.
        reason: CertificateFailure,
        /// Detail.
        #[source]
        source: UpstreamError,
    },
    /// Transparency-log evidence was rejected.
    #[error("transparency log evidence rejected: {reason:?}")]
    TransparencyLog {
        /// Why.
        reason: TlogFailure,
        /// Detail.
        #[source]
        source: UpstreamError,
    },
    /// A timestamp was rejected, or none could be established.
    #[error("timestamp rejected: {reason:?}")]
    Timestamp {
        /// Why.
        reason: TimestampFailure,
        /// Detail.
        #[source]
        source: UpstreamError,
    },
    /// An authenticated signing time (integrated time or TSA time) is after
    /// `now`.
    #[error("signed at {time}, after the verification time {now}")]
    SignedInFuture {
        /// The signing time, UNIX seconds.
        time: u64,
        /// The verification time given, UNIX seconds.
        now: u64,
    },
    /// The bundle uses something `sigstore-verify` does not support (key
    /// type, entry kind, DSSE payload type) or is inconsistent with itself.
    #[error("bundle not verifiable")]
    UnsupportedBundle {
        /// Detail.
        #[source]
        source: UpstreamError,
    },
    /// The trusted root cannot be used.
    #[error("trusted root not usable")]
    TrustRoot {
        /// Detail.
        #[source]
        source: UpstreamError,
    },
    /// The DSSE payload is not an in-toto Statement v1 of the expected shape.
    #[error("statement: {0}")]
    Statement(#[from] StatementError),
    /// The content is a message signature but the policy requires an in-toto
    /// predicate (or the reverse).
    #[error("bundle content is not a DSSE in-toto statement")]
    NotAnAttestation,
    /// The statement's predicate type is not one the policy pins.
    #[error("predicate type {predicate_type:?} is not allowed by the policy")]
    PredicateTypeNotAllowed {
        /// The predicate type (truncated to 200 characters).
        predicate_type: String,
    },
    /// The statement does not have exactly one subject.
    #[error("statement has {count} subjects, exactly 1 expected")]
    SubjectCount {
        /// Subjects present.
        count: usize,
    },
    /// The statement's subject has no sha256 digest.
    #[error("statement subject has no sha256 digest")]
    SubjectWithoutSha256,
    /// The statement's subject digest is not the artifact's digest.
    #[error("statement subject is sha256:{found}, expected sha256:{expected}")]
    SubjectDigestMismatch {
        /// The digest expected, hex.
        expected: String,
        /// The digest signed, hex.
        found: String,
    },
    /// Anything else `sigstore-verify` reported.
    #[error("verification failed")]
    Other {
        /// Detail.
        #[source]
        source: UpstreamError,
    },
}

impl VerifyError {
    /// Classifies an error from `sigstore-verify`.
    pub(crate) fn from_upstream(error: sigstore_verify::Error) -> Self {
        use sigstore_verify::TransparencyLogError as T;
        use sigstore_verify::{CertificateError as C, Error as E, TimestampError as Ts};
        match &error {
            E::IdentityMismatch { .. } | E::IssuerMismatch { .. } => {
                // Identity policy is applied by this module, never by sigstore-verify.
                Self::Other {
                    source: UpstreamError(error),
                }
            }
            E::SignatureInvalid(_) => Self::SignatureInvalid {
                source: Some(UpstreamError(error)),
            },
            E::ArtifactMismatch(_) | E::UnsupportedArtifact(_) => Self::ArtifactMismatch {
                source: Some(UpstreamError(error)),
            },
            E::Certificate(c) => {
                let reason = match c {
                    C::Malformed(_) => CertificateFailure::Malformed,
                    C::ChainInvalid(_) => CertificateFailure::ChainInvalid,
                    C::NoValidAuthority { .. } => CertificateFailure::NoValidAuthority,
                    C::NotYetValid { .. } => CertificateFailure::NotYetValid,
                    C::Expired { .. } => CertificateFailure::Expired,
                    C::Sct(_) => CertificateFailure::Sct,
                    _ => CertificateFailure::Malformed,
                };
                Self::Certificate {
                    reason,
                    source: UpstreamError(error),
                }
            }
            E::TransparencyLog(t) => {
                let reason = match t {
                    T::UnknownLog { .. } => TlogFailure::UnknownLog,
                    T::InclusionProof(_) => TlogFailure::InclusionProof,
                    T::Checkpoint(_) => TlogFailure::Checkpoint,
                    T::InclusionPromise(_) => TlogFailure::InclusionPromise,
                    T::EntryMismatch(_) => TlogFailure::EntryMismatch,
                    T::IntegratedTime(_) => TlogFailure::IntegratedTime,
                    _ => TlogFailure::MalformedEntry,
                };
                Self::TransparencyLog {
                    reason,
                    source: UpstreamError(error),
                }
            }
            E::Timestamp(t) => {
                let reason = match t {
                    Ts::Invalid(_) => TimestampFailure::Invalid,
                    Ts::OutsideAuthorityValidity { .. } => {
                        TimestampFailure::OutsideAuthorityValidity
                    }
                    _ => TimestampFailure::NoVerifiedTimestamp,
                };
                Self::Timestamp {
                    reason,
                    source: UpstreamError(error),
                }
            }
            E::InvalidBundle(_)
            | E::UnsupportedBundle(_)
            | E::Bundle(_)
            | E::Types(_)
            | E::Crypto(_) => Self::UnsupportedBundle {
                source: UpstreamError(error),
            },
            E::InvalidTrustRoot(_) | E::TrustRoot(_) | E::TrustedCertificate(_) => {
                Self::TrustRoot {
                    source: UpstreamError(error),
                }
            }
            _ => Self::Other {
                source: UpstreamError(error),
            },
        }
    }

    /// True for the errors that mean "this key did not make this signature",
    /// used to pick the most informative error among several managed keys.
    pub(crate) fn is_wrong_key(&self) -> bool {
        matches!(self, Self::SignatureInvalid { .. })
    }
}
