//! Sigstore verification of container images and model versions (issue 4).
//!
//! The vault registers an image digest or a model version only when a
//! signature over it satisfies the signing policy of its artifact kind. This
//! module decides that, from bytes the caller already holds: the trusted root,
//! the signing policy, the bundle or signature, and the artifact digest or the
//! model's files. It returns a [`VerifiedArtifact`], which only this module
//! can build.
//!
//! # What it verifies
//! | input | how | entry point |
//! |---|---|---|
//! | Sigstore bundle (v0.1–v0.3), keyless or managed key, any artifact | `sigstore-verify`: Fulcio chain at the signing time, SCT, Rekor SET, inclusion proof and checkpoint, RFC 3161 timestamps, log-entry consistency; then our policy (identity, issuer, GitHub claims, key, predicate type) | [`verify_bundle`] |
//! | cosign v3 image signature (DSSE in-toto statement over the manifest digest) | as above, plus the statement's subject and predicate type | [`image::verify_cosign_bundle`] |
//! | legacy cosign / skopeo simple signing (`sha256-<hex>.sig`) | keyless: rebuilt as a v0.1 bundle (hashedrekord + SET) and verified by `sigstore-verify`; key-signed: signature over the payload with a managed key | [`image::verify_simple_signing`] |
//! | OpenSSF model signing (model-signing 1.0.x / 1.1.x) | keyless through `sigstore-verify`; key and certificate modes by [`model`]'s own DSSE verifier | [`model::verify_model_signature`] |
//!
//! # What it does not do
//! No I/O, no registry access, no directory walking: the caller fetches
//! signatures and reads files. No TUF: the operator pins `trusted_root.json`
//! ([`TrustRoot::from_json`]) or uses the embedded public-good root
//! ([`TrustRoot::production`]). No revocation: the vault revokes artifacts.
//! No relaxed modes: keyless signatures always need the Fulcio chain, an
//! embedded SCT from a CT log in the trusted root, and a verified
//! transparency-log entry (a private Sigstore deployment's root must list
//! its CT log); only model-signing key and certificate signatures, and
//! skopeo's key-signed simple signing, are accepted without a log entry,
//! because those formats never have one.
//!
//! # Time
//! Every entry point takes `now` (UNIX seconds) and rejects signing times
//! after it ([`VerifyError::SignedInFuture`]). `sigstore-verify` 0.15.1 offers
//! no way to pass a time in and additionally reads the system clock itself, in
//! four places: Rekor v1 integrated times must not be in the future; checkpoint
//! keys are selected by key hint among keys valid now; a SET without an
//! integrated time selects the log key valid now; and
//! `TrustedRoot::tsa_authorities` skips authorities whose validity has not
//! started yet. Certificate validity itself is always checked at the
//! authenticated signing times (TSA or SET), never at `now`.
//!
//! # Dependencies
//! `sigstore-verify`, `sigstore-trust-root` and `sigstore-types` `=0.15.1`
//! (without TUF or TLS features; `scripts/check-attest-deps.sh` keeps tokio,
//! reqwest and hyper out), `serde_json` for bundles, policies and predicates,
//! `base64` for cosign annotations, and `regex` for anchored identity patterns.
//! Not the `sigstore` crate 0.15: its bundle verifier skips the SET, inclusion
//! proof and checkpoint checks. `rustls-webpki` and `rustls-pki-types`
//! (already in the tree through `sigstore-verify`) build model-signing
//! certificate chains; `jiff` (likewise) carries the integrated time of
//! legacy cosign Rekor bundles into `sigstore-types`.
//!
//! # Fuzzing entry points
//! [`parse_bundle`], [`parse_dsse_envelope`], [`parse_statement`],
//! [`SigningPolicy::from_json`] and [`TrustRoot::from_json`] accept any bytes
//! and return typed errors.

mod bundle;
pub mod cli;
mod dsse;
mod error;
pub mod image;
pub mod model;
pub mod model_digest;
mod policy;
mod simple_signing;
mod trust;
mod verified;
mod verify;

pub use bundle::{
    BundleError, BundleField, BundleVersion, JsonErrorKind, MAX_BUNDLE_LEN, ParsedBundle,
    parse_bundle,
};
pub use dsse::{
    DsseEnvelope, DsseError, IN_TOTO_PAYLOAD_TYPE, IN_TOTO_STATEMENT_V1, InTotoStatement,
    MAX_DSSE_LEN, MAX_STATEMENT_SUBJECTS, StatementError, SubjectDigest, pae, parse_dsse_envelope,
    parse_statement,
};
pub use error::{CertificateFailure, TimestampFailure, TlogFailure, UpstreamError, VerifyError};
pub use policy::{
    ArtifactKind, GithubClaims, KeylessIdentity, MAX_CA_CERTIFICATES, MAX_IDENTITIES,
    MAX_MANAGED_KEYS, MAX_POLICY_LEN, MAX_REGEX_LEN, ManagedKey, ModelCa, PREDICATE_COSIGN_SIGN_V1,
    PREDICATE_MODEL_SIGNING_V1, PREDICATE_SIMPLE_SIGNING, PolicyError, SigningPolicy,
    SubjectMatcher,
};
pub use trust::{MAX_TRUSTED_ROOT_LEN, TrustRoot, TrustRootError};
pub use verified::{CertificateClaims, Signer, TlogEvidence, VerifiedArtifact};
pub use verify::{ArtifactInput, Sha256Digest, verify_bundle};
