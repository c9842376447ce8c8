//! Endorsement Key certificate validation (design brief §2, enrollment step 2).
//!
//! [`verify_ek_certificate`] checks that an EK certificate chains to a
//! configured TPM manufacturer root, that it certifies the EK public key the
//! host presented, and that it fits the TCG EK profile; the result is a
//! [`VerifiedEk`], which only this module can build. Time is an argument;
//! nothing here reads a clock, a file or the network. Revocation (CRLs,
//! OCSP) is not checked: fetching it is I/O, and hosts are revoked in the
//! vault instead.
//!
//! DER and PEM decoding use `x509-parser` (already a dependency of this crate
//! for SubjectPublicKeyInfo and PEM keys); signatures are verified with `ring`.
//!
//! # What we accept and why
//!
//! | topic | accepted | why |
//! |---|---|---|
//! | certificate encoding | X.509 v3 DER, ≤ [`MAX_CERTIFICATE_LEN`] bytes, nothing after it; PEM through [`certificate_from_pem`] | TCG EK Credential Profile (v3); bounded input |
//! | signature algorithms | RSA PKCS#1 v1.5 with SHA-1/256/384/512, RSA-PSS with SHA-256/384/512 (MGF1 same hash, salt = hash length), ECDSA with SHA-256/384 on P-256/P-384 issuer keys | what EK CAs use (Infineon and Nuvoton still sign with SHA-1); RSA issuer keys of 2048..=8192 bits only (`ring`'s range; no EK CA in the test data uses less; a smaller key fails as [`EkError::BadSignature`]) |
//! | SHA-1 | accepted unless [`EkPolicy::allow_sha1_signatures`] is off | rejecting it rejects Infineon's "IFX TPM EK" chains and Nuvoton's NTC roots; a forged EK certificate would need a chosen-prefix collision against a CA that signs only at manufacturing |
//! | chain | EK → ≤ [`MAX_CHAIN_INTERMEDIATES`] intermediates (supplied with the request or in the store) → trust anchor; ≤ [`MAX_SIGNATURE_CHECKS`] signature checks; ≤ [`MAX_SUPPLIED_INTERMEDIATES`] supplied | RFC 5280 §6.1; bounded work on hostile bundles |
//! | names | issuer and subject DER compared byte for byte | RFC 5280 §7.1 allows more, but vendors' chains match exactly, and exact match is what webpki does |
//! | CA certificates | basicConstraints cA TRUE, keyCertSign when keyUsage is present, pathLenConstraint honoured (trust anchors included) | RFC 5280 §4.2.1.3, §4.2.1.9 |
//! | EK certificate | cA must not be TRUE; keyUsage not checked | TCG EK profile, Basic Constraints (cA FALSE). Key usage of an EK is fixed by its TPM template, and real EK certificates differ (keyEncipherment, keyAgreement, digitalSignature) |
//! | EKU | if present it must contain tcg-kp-EKCertificate (2.23.133.8.1) or anyExtendedKeyUsage ([`EkError::WrongEku`]); required only when [`EkPolicy::require_ek_eku`] ([`EkError::MissingEkEku`]) | RFC 5280 §4.2.1.12; not every real EK certificate carries it (Google's `pca_*` ones do not) |
//! | subject | may be empty | TCG EK profile, Subject: the subject may be empty and the identity lives in the subjectAltName |
//! | subjectAltName | may be critical; a directoryName with tpmManufacturer / tpmModel / tpmVersion (2.23.133.2.1/2/3) is extracted into [`TpmIdentity`]; all three or none | TCG EK profile, Subject Alternative Name |
//! | critical extensions | basicConstraints, keyUsage, extKeyUsage, subjectAltName, certificatePolicies; any other critical extension is rejected ([`CertError::UnknownCriticalExtension`]) | RFC 5280 §4.2. certificatePolicies is accepted critical without policy processing because 27 of 51 vendor CA certificates mark it so, and trust comes from the configured roots |
//! | non-critical extensions | ignored unless we use them (then they must parse) | e.g. Google's instance-information extension 1.3.6.1.4.1.11129.2.1.21, subjectDirectoryAttributes |
//! | validity | notBefore always enforced; notAfter only under [`ExpiryPolicy::Enforce`]; default [`ExpiryPolicy::AcceptExpired`] | an EK certificate states where a key was made, which stays true after notAfter; vendor intermediates expire while their TPMs are in service (e.g. Infineon "IFX TPM EK Intermediate CA 01", notAfter 2025-10-20). [`VerifiedEk::accepted_expired`] records when it happened |
//! | EK public key | must equal the certificate's key ([`EkError::KeyMismatch`]) | binds the chain to the TPM that enrolls |
//! | trailing bytes | rejected | TPMs that pad their NV index must have the padding trimmed by the reader |

mod cert;
mod chain;
mod signature;
mod store;

pub use cert::{
    CertError, MAX_CERTIFICATE_LEN, MAX_CERTIFICATE_PEM_LEN, MAX_TPM_ATTRIBUTE_LEN,
    SignatureAlgorithm, TpmIdentity, certificate_from_pem,
};
pub use chain::{MAX_CHAIN_INTERMEDIATES, MAX_SIGNATURE_CHECKS};
pub use store::{EkTrustStore, MAX_BUNDLE_LEN, MAX_TRUST_STORE_CERTS, TrustStoreError};

use crate::key::PublicKey;
use cert::Certificate;

/// Most intermediates a request may supply with its EK certificate.
pub const MAX_SUPPLIED_INTERMEDIATES: usize = 8;

/// How validity periods are enforced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExpiryPolicy {
    /// notBefore is enforced, notAfter is not (see the module table).
    #[default]
    AcceptExpired,
    /// notBefore and notAfter are enforced for every certificate in the chain.
    Enforce,
}

/// What an EK certificate chain must satisfy beyond the fixed checks.
/// `EkPolicy::default()` is what the vault uses unless configured otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EkPolicy {
    /// Require the EK certificate to carry extKeyUsage tcg-kp-EKCertificate
    /// (2.23.133.8.1). Default `false`: real EK certificates without it exist
    /// (Google's `pca_*` vTPM certificates).
    pub require_ek_eku: bool,
    /// How notAfter is treated. Default [`ExpiryPolicy::AcceptExpired`].
    pub expiry: ExpiryPolicy,
    /// Accept sha1WithRSAEncryption signatures. Default `true`: Infineon and
    /// Nuvoton EK CAs sign with it.
    pub allow_sha1_signatures: bool,
}

impl Default for EkPolicy {
    fn default() -> Self {
        Self {
            require_ek_eku: false,
            expiry: ExpiryPolicy::AcceptExpired,
            allow_sha1_signatures: true,
        }
    }
}

/// Why an EK certificate was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EkError {
    /// The request supplied more than [`MAX_SUPPLIED_INTERMEDIATES`] intermediates.
    #[error("{count} intermediates supplied, at most {max} accepted")]
    TooManyIntermediates {
        /// Number supplied.
        count: usize,
        /// The cap.
        max: usize,
    },
    /// The EK certificate cannot be decoded or uses something not accepted.
    #[error("EK certificate: {0}")]
    Certificate(#[source] CertError),
    /// A supplied intermediate (counting from 0) cannot be decoded.
    #[error("supplied intermediate {index}: {error}")]
    Intermediate {
        /// Index in the supplied list.
        index: usize,
        /// Why it was rejected.
        #[source]
        error: CertError,
    },
    /// The certificate's public key is not the EK the host presented.
    #[error("EK certificate does not certify the presented EK public key")]
    KeyMismatch,
    /// The EK certificate is a CA certificate.
    #[error("EK certificate has basicConstraints cA TRUE")]
    EkIsCa,
    /// The policy requires tcg-kp-EKCertificate and the certificate has no
    /// extKeyUsage naming it.
    #[error("EK certificate lacks extKeyUsage tcg-kp-EKCertificate (2.23.133.8.1)")]
    MissingEkEku,
    /// The certificate's extKeyUsage excludes EK use.
    #[error("EK certificate extKeyUsage does not allow EK use")]
    WrongEku,
    /// A certificate is not valid yet at the validation time.
    #[error("certificate {subject:?} is not valid before {not_before}")]
    NotYetValid {
        /// Its subject.
        subject: String,
        /// Its notBefore, UNIX seconds.
        not_before: i64,
    },
    /// A certificate expired before the validation time, and the policy enforces notAfter.
    #[error("certificate {subject:?} expired at {not_after}")]
    Expired {
        /// Its subject.
        subject: String,
        /// Its notAfter, UNIX seconds.
        not_after: i64,
    },
    /// No certificate in the store or the request is named as the EK
    /// certificate's issuer: typically a missing intermediate.
    #[error("no certificate for issuer {issuer:?}")]
    UnknownIssuer {
        /// The EK certificate's issuer.
        issuer: String,
    },
    /// The chain climbed through intermediates to an issuer that is no
    /// configured trust anchor.
    #[error("chain ends at {issuer:?}, which is not a trust anchor")]
    UntrustedRoot {
        /// The issuer no certificate was found for.
        issuer: String,
    },
    /// A certificate's signature does not verify with its issuer's key.
    #[error("signature of {subject:?} does not verify")]
    BadSignature {
        /// Subject of the certificate whose signature failed.
        subject: String,
    },
    /// A certificate is signed with an algorithm the policy disallows.
    #[error("certificate {subject:?} is signed with {algorithm:?}, which the policy disallows")]
    SignatureAlgorithmNotAllowed {
        /// Subject of the signed certificate.
        subject: String,
        /// Its signature algorithm.
        algorithm: SignatureAlgorithm,
    },
    /// An issuing certificate is not a CA certificate.
    #[error("issuer {subject:?} is not a CA certificate")]
    NotCa {
        /// Its subject.
        subject: String,
    },
    /// An issuing certificate's keyUsage lacks keyCertSign.
    #[error("issuer {subject:?} may not sign certificates")]
    MissingKeyCertSign {
        /// Its subject.
        subject: String,
    },
    /// More intermediates below a CA than its pathLenConstraint allows.
    #[error("issuer {subject:?} allows {path_len} intermediates below it")]
    PathLenExceeded {
        /// Subject of the constraining CA.
        subject: String,
        /// Its pathLenConstraint.
        path_len: u32,
    },
    /// The only chains need more than [`MAX_CHAIN_INTERMEDIATES`] intermediates.
    #[error("chain needs more than {max} intermediates")]
    ChainTooLong {
        /// The cap.
        max: usize,
    },
    /// The search used up its [`MAX_SIGNATURE_CHECKS`] signature checks.
    #[error("chain search budget exhausted")]
    BudgetExhausted,
}

/// An EK certificate that chains to a trust anchor and certifies the EK the
/// host presented. Built only by [`verify_ek_certificate`].
#[derive(Debug)]
pub struct VerifiedEk {
    public_key: PublicKey,
    tpm: Option<TpmIdentity>,
    issuers: Vec<String>,
    accepted_expired: bool,
    certificate_sha256: [u8; 32],
}

impl VerifiedEk {
    /// The EK public key, as certified.
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// The TPM manufacturer, model and version from the subjectAltName, when
    /// the certificate carries them.
    pub fn tpm(&self) -> Option<&TpmIdentity> {
        self.tpm.as_ref()
    }

    /// Subjects of the certificates above the EK certificate, its issuer
    /// first and the trust anchor last.
    pub fn issuers(&self) -> &[String] {
        &self.issuers
    }

    /// Subject of the trust anchor the chain ends at.
    pub fn trust_anchor(&self) -> &str {
        self.issuers.last().map_or("", String::as_str)
    }

    /// True when a certificate in the chain was past its notAfter at the
    /// validation time and [`ExpiryPolicy::AcceptExpired`] let it through.
    pub fn accepted_expired(&self) -> bool {
        self.accepted_expired
    }

    /// SHA-256 of the EK certificate's DER, for audit records.
    pub fn certificate_sha256(&self) -> [u8; 32] {
        self.certificate_sha256
    }
}

/// Validates an EK certificate (DER) for the EK public key a host presented.
///
/// `intermediates` are DER certificates sent with the request (untrusted;
/// used only to build the chain). `time` is the validation time in UNIX
/// seconds. The checks and what is accepted are listed in the module table.
pub fn verify_ek_certificate(
    certificate: &[u8],
    intermediates: &[&[u8]],
    ek_public: &PublicKey,
    store: &EkTrustStore,
    policy: &EkPolicy,
    time: u64,
) -> Result<VerifiedEk, EkError> {
    verify_with_budget(
        certificate,
        intermediates,
        ek_public,
        store,
        policy,
        time,
        MAX_SIGNATURE_CHECKS,
    )
}

fn verify_with_budget(
    certificate: &[u8],
    intermediates: &[&[u8]],
    ek_public: &PublicKey,
    store: &EkTrustStore,
    policy: &EkPolicy,
    time: u64,
    budget: usize,
) -> Result<VerifiedEk, EkError> {
    if intermediates.len() > MAX_SUPPLIED_INTERMEDIATES {
        return Err(EkError::TooManyIntermediates {
            count: intermediates.len(),
            max: MAX_SUPPLIED_INTERMEDIATES,
        });
    }
    let ek = Certificate::from_der(certificate).map_err(EkError::Certificate)?;
    let supplied = intermediates
        .iter()
        .enumerate()
        .map(|(index, der)| {
            Certificate::from_der(der).map_err(|error| EkError::Intermediate { index, error })
        })
        .collect::<Result<Vec<_>, _>>()?;

    if ek.public_key != *ek_public {
        return Err(EkError::KeyMismatch);
    }
    // TCG EK Credential Profile, Basic Constraints: an EK certificate is an
    // end-entity certificate.
    if ek.is_ca() {
        return Err(EkError::EkIsCa);
    }
    // RFC 5280 §4.2.1.12: with extKeyUsage present, the key is for the listed
    // purposes only. TCG EK profile, Extended Key Usage:
    // tcg-kp-EKCertificate names EK use.
    match ek.extended_key_usage {
        Some(eku) if !eku.ek_certificate && !eku.any => return Err(EkError::WrongEku),
        Some(eku) if !eku.ek_certificate && policy.require_ek_eku => {
            return Err(EkError::MissingEkEku);
        }
        None if policy.require_ek_eku => return Err(EkError::MissingEkEku),
        _ => {}
    }
    // Times past i64::MAX seconds are after every notAfter.
    let time = i64::try_from(time).unwrap_or(i64::MAX);
    chain::check_validity(&ek, time, policy)?;

    let mut search = chain::Search {
        store,
        supplied: &supplied,
        policy,
        time,
        budget,
    };
    let mut path = Vec::new();
    search.extend(&ek, &mut path)?;

    let accepted_expired = time > ek.not_after || path.iter().any(|c| time > c.not_after);
    let issuers = path.iter().map(|c| c.subject_name.clone()).collect();
    let digest = ring::digest::digest(&ring::digest::SHA256, &ek.der);
    let certificate_sha256 = <[u8; 32]>::try_from(digest.as_ref()).unwrap_or_default();
    Ok(VerifiedEk {
        public_key: ek.public_key,
        tpm: ek.tpm,
        issuers,
        accepted_expired,
        certificate_sha256,
    })
}

#[cfg(test)]
mod tests;
