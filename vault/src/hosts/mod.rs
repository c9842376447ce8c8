//! Host enrollment: pending enrollments, host records and their states.
//!
//! # What it does
//! - judges an enrollment request ([`judge`]): the EK certificate chains to
//!   a configured manufacturer root and certifies the EK presented
//!   (`keyward_attest::ek`), or the EK's hash is on the allowlist; the AK
//!   has the attributes of an attestation key
//!   (`keyward_attest::tpm::ak`); and an auto-approve rule may match;
//! - makes the MakeCredential challenge for the AK's name under the EK
//!   ([`challenge`], TPM 2.0 Part 1 §24), with a fresh 256-bit secret;
//! - stores the pending enrollment barrier-encrypted (it holds the secret)
//!   in [`Keyspace::Enrollments`] and consumes it at most once
//!   ([`HostStore::activate`]: the enrollment is taken and the host record
//!   inserted in one atomic batch, so two concurrent activations cannot both
//!   succeed);
//! - keeps host records (`pending` → `active` → `revoked`; `pending` →
//!   `revoked`; nothing leaves `revoked`) in [`Keyspace::Hosts`], also
//!   barrier-encrypted so a record cannot be edited or moved on disk, with
//!   an index from EK hash to host so one TPM enrolls once.
//!
//! # What it does not do
//! It reads no clock (times are arguments) and does no HTTP. It does not
//! verify quotes: `last_attested_at` is written by the release path.
//! Pending enrollments that are never activated are removed when touched,
//! not by a background sweep.

mod settings;
mod store;

use std::collections::BTreeMap;

use keyward_attest::boot_policy::BootPolicy;
use keyward_attest::credential::{CredentialError, make_credential};
use keyward_attest::ek::{EkError, verify_ek_certificate};
use keyward_attest::tpm::ak::{AkError, check_ak_attributes};
use keyward_attest::tpm::public::TpmPublic;
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub use settings::{
    EnrollmentConfigError, EnrollmentSettings, EnrollmentSlot, MAX_HASH_LIST, MAX_TRUST_DIR_FILES,
};
pub use store::{HostStore, HostStoreError, PendingEnrollment, approve, revoke, valid_id};

/// Bytes of the activation secret (the credential of MakeCredential): 256
/// bits, within every EK nameAlg's digest size.
pub const SECRET_BYTES: usize = 32;
/// Random bytes in a host or enrollment id.
pub const ID_BYTES: usize = 16;
/// Most labels on a host.
pub const MAX_LABELS: usize = 64;
/// Longest label key.
pub const MAX_LABEL_KEY: usize = 63;
/// Longest label value.
pub const MAX_LABEL_VALUE: usize = 255;
/// Longest host name.
pub const MAX_NAME: usize = 64;

/// A host's place in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum HostState {
    /// Enrolled, waiting for a platform approval.
    Pending,
    /// May attest.
    Active,
    /// Refused for good.
    Revoked,
}

impl HostState {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Revoked => "revoked",
        }
    }
}

/// What the EK certificate said, kept for operators and auto-approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EkFacts {
    /// Subject of the EK certificate's issuer.
    pub issuer: String,
    /// Subject of the trust anchor the chain ended at.
    pub trust_anchor: String,
    /// TPM manufacturer from the subjectAltName, when present.
    pub tpm_manufacturer: Option<String>,
    /// TPM model from the subjectAltName, when present.
    pub tpm_model: Option<String>,
    /// Hex SHA-256 of the EK certificate (DER).
    pub certificate_sha256: String,
}

/// An enrolled host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostRecord {
    /// Host id (32 hex digits).
    pub id: String,
    /// Name requested at enrollment (the id when none was).
    pub name: String,
    /// Hex SHA-256 of the EK public key (DER SubjectPublicKeyInfo).
    pub ek_hash: String,
    /// EK certificate facts; `null` when enrolled through the allowlist.
    pub ek_certificate: Option<EkFacts>,
    /// The AK's TPM2B_PUBLIC, base64.
    pub ak_public: String,
    /// The AK's TPM name (nameAlg ‖ digest), hex.
    pub ak_name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// The boot policy; `null` until set.
    #[schema(value_type = Option<Object>)]
    pub boot_policy: Option<BootPolicy>,
    /// State.
    pub state: HostState,
    /// The auto-approve rule that made it active, if any.
    pub auto_approved_by: Option<String>,
    /// Enrollment (activation) time, seconds since the Unix epoch.
    pub enrolled_at: u64,
    /// Last successful attestation, seconds since the Unix epoch.
    pub last_attested_at: Option<u64>,
    /// Revocation time, seconds since the Unix epoch.
    pub revoked_at: Option<u64>,
}

/// Why an enrollment or activation is refused. The requester is told only
/// "permission denied"; this goes to the audit log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnrollmentDenied {
    /// The EK certificate does not chain to a trust anchor, or does not
    /// certify the EK presented.
    #[error("EK certificate rejected: {0}")]
    EkCertificate(#[source] EkError),
    /// No EK certificate, and the EK is not on the allowlist.
    #[error("no EK certificate and EK {ek_hash} is not on the allowlist")]
    NotAllowlisted {
        /// Hex SHA-256 of the EK public key.
        ek_hash: String,
    },
    /// The AK lacks an attestation key's attributes.
    #[error("AK rejected: {0}")]
    AkAttributes(#[source] AkError),
    /// MakeCredential refused the EK (not a restricted decryption key, …).
    #[error("EK unusable for MakeCredential: {0}")]
    Credential(#[source] CredentialError),
    /// No pending enrollment with this id: never issued, or removed after
    /// expiry or a wrong secret.
    #[error("no pending enrollment {id}")]
    UnknownEnrollment {
        /// The id presented.
        id: String,
    },
    /// The enrollment was activated before: a replay.
    #[error("enrollment {id} was already activated (host {host_id})")]
    AlreadyActivated {
        /// The enrollment id.
        id: String,
        /// The host it created.
        host_id: String,
    },
    /// The enrollment expired before activation (it is removed).
    #[error("enrollment {id} expired at {expired_at}")]
    Expired {
        /// The enrollment id.
        id: String,
        /// Its expiry, seconds since the Unix epoch.
        expired_at: u64,
    },
    /// The secret presented is not the one the credential protected (the
    /// enrollment is removed: one attempt only).
    #[error("wrong activation secret for enrollment {id}")]
    WrongSecret {
        /// The enrollment id.
        id: String,
    },
    /// A host with this EK is already enrolled.
    #[error("EK {ek_hash} is already enrolled as host {host_id}")]
    EkAlreadyEnrolled {
        /// Hex SHA-256 of the EK.
        ek_hash: String,
        /// The existing host.
        host_id: String,
    },
}

/// The facts an accepted enrollment request establishes.
#[derive(Debug)]
pub struct Judged {
    /// SHA-256 of the EK public key (DER SubjectPublicKeyInfo).
    pub ek_hash: [u8; 32],
    /// EK certificate facts, when a certificate was given.
    pub facts: Option<EkFacts>,
    /// The auto-approve rule that matched.
    pub auto_approve: Option<String>,
}

/// Checks an enrollment request's evidence at `now` (Unix seconds).
pub fn judge(
    settings: &EnrollmentSettings,
    ek: &TpmPublic,
    ek_certificate: Option<&[u8]>,
    intermediates: &[&[u8]],
    ak: &TpmPublic,
    now: u64,
) -> Result<Judged, EnrollmentDenied> {
    let mut ek_hash = [0u8; 32];
    ek_hash.copy_from_slice(digest(&SHA256, &ek.key().to_spki_der()).as_ref());
    // Design brief §2 Enrollment step 2: a certificate, when given, must
    // chain and certify this EK; the allowlist is for TPMs without one.
    let facts = match ek_certificate {
        Some(der) => {
            let verified = verify_ek_certificate(
                der,
                intermediates,
                ek.key(),
                &settings.store,
                &settings.policy,
                now,
            )
            .map_err(EnrollmentDenied::EkCertificate)?;
            Some(EkFacts {
                issuer: verified.issuers().first().cloned().unwrap_or_default(),
                trust_anchor: verified.trust_anchor().to_owned(),
                tpm_manufacturer: verified.tpm().map(|t| t.manufacturer().to_owned()),
                tpm_model: verified.tpm().map(|t| t.model().to_owned()),
                certificate_sha256: hex::encode(verified.certificate_sha256()),
            })
        }
        None if settings.allowlist.contains(&ek_hash) => None,
        None => {
            return Err(EnrollmentDenied::NotAllowlisted {
                ek_hash: hex::encode(ek_hash),
            });
        }
    };
    check_ak_attributes(ak).map_err(EnrollmentDenied::AkAttributes)?;
    let auto_approve = if settings.auto_hashes.contains(&ek_hash) {
        Some("ek_hash".to_owned())
    } else {
        facts
            .as_ref()
            .filter(|f| settings.auto_issuers.contains(&f.issuer))
            .map(|f| format!("ek_issuer {}", f.issuer))
    };
    Ok(Judged {
        ek_hash,
        facts,
        auto_approve,
    })
}

/// An activation secret. Not `Clone`, redacted `Debug`, zeroized on drop.
pub struct ActivationSecret(Zeroizing<[u8; SECRET_BYTES]>);

impl std::fmt::Debug for ActivationSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ActivationSecret([redacted])")
    }
}

impl ActivationSecret {
    /// True when `presented` is this secret (constant time).
    pub fn matches(&self, presented: &[u8]) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(self.0.as_slice(), presented).is_ok()
    }
}

/// The challenge sent to the host.
#[derive(Debug)]
pub struct Challenge {
    /// TPM2B_ID_OBJECT payload.
    pub credential_blob: Vec<u8>,
    /// TPM2B_ENCRYPTED_SECRET payload.
    pub encrypted_secret: Vec<u8>,
}

/// Why a secret or id could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("system random number generator failed")]
pub struct RandomError;

/// A fresh random id (hex).
pub fn new_id() -> Result<String, RandomError> {
    let mut bytes = [0u8; ID_BYTES];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| RandomError)?;
    Ok(hex::encode(bytes))
}

/// Draws a secret and protects it for `ak` under `ek` (MakeCredential,
/// TPM 2.0 Part 1 §24): only the TPM holding both the EK and an object
/// with the AK's name can recover it with TPM2_ActivateCredential.
pub fn challenge(
    ek: &TpmPublic,
    ak: &TpmPublic,
) -> Result<Result<(ActivationSecret, Challenge), EnrollmentDenied>, RandomError> {
    let rng = SystemRandom::new();
    let mut secret = Zeroizing::new([0u8; SECRET_BYTES]);
    rng.fill(secret.as_mut_slice()).map_err(|_| RandomError)?;
    Ok(
        match make_credential(ek, &ak.name(), secret.as_slice(), &rng) {
            Ok(blob) => Ok((
                ActivationSecret(secret),
                Challenge {
                    credential_blob: blob.id_object().to_vec(),
                    encrypted_secret: blob.encrypted_secret().to_vec(),
                },
            )),
            Err(e) => Err(EnrollmentDenied::Credential(e)),
        },
    )
}

/// Why labels or a name are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LabelError {
    /// More than [`MAX_LABELS`] labels.
    #[error("{count} labels, at most {max}")]
    TooMany {
        /// How many.
        count: usize,
        /// The cap.
        max: usize,
    },
    /// A key that is empty, too long, or not `[A-Za-z0-9._/-]`.
    #[error("invalid label key {key:?}")]
    Key {
        /// The key (truncated).
        key: String,
    },
    /// A value longer than [`MAX_LABEL_VALUE`] or with control characters.
    #[error("invalid value for label {key:?}")]
    Value {
        /// The key.
        key: String,
    },
    /// A name that is empty, too long, or not `[A-Za-z0-9._-]`.
    #[error("invalid host name {name:?}")]
    Name {
        /// The name (truncated).
        name: String,
    },
}

fn id_chars(s: &str, extra: &[u8]) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b) || extra.contains(&b))
}

/// Checks a label set.
pub fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), LabelError> {
    if labels.len() > MAX_LABELS {
        return Err(LabelError::TooMany {
            count: labels.len(),
            max: MAX_LABELS,
        });
    }
    for (key, value) in labels {
        if key.is_empty() || key.len() > MAX_LABEL_KEY || !id_chars(key, b"/") {
            return Err(LabelError::Key {
                key: key.chars().take(80).collect(),
            });
        }
        if value.len() > MAX_LABEL_VALUE || value.chars().any(char::is_control) {
            return Err(LabelError::Value { key: key.clone() });
        }
    }
    Ok(())
}

/// Checks a host name.
pub fn check_name(name: &str) -> Result<(), LabelError> {
    if name.is_empty() || name.len() > MAX_NAME || !id_chars(name, b"") {
        return Err(LabelError::Name {
            name: name.chars().take(80).collect(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    use crate::config::{AutoApproveConfig, EnrollmentConfig};

    fn record(state: HostState) -> HostRecord {
        HostRecord {
            id: "ab".repeat(16),
            name: "n".to_owned(),
            ek_hash: "00".repeat(32),
            ek_certificate: None,
            ak_public: String::new(),
            ak_name: String::new(),
            labels: BTreeMap::new(),
            boot_policy: None,
            state,
            auto_approved_by: None,
            enrolled_at: 1,
            last_attested_at: None,
            revoked_at: None,
        }
    }

    #[test]
    fn transitions() {
        let mut r = record(HostState::Pending);
        approve(&mut r).unwrap();
        assert_eq!(r.state, HostState::Active);
        assert!(matches!(
            approve(&mut r),
            Err(HostStoreError::Transition { from: "active", .. })
        ));
        revoke(&mut r, 7).unwrap();
        assert_eq!((r.state, r.revoked_at), (HostState::Revoked, Some(7)));
        assert!(matches!(
            approve(&mut r),
            Err(HostStoreError::Transition {
                from: "revoked",
                to: "active",
                ..
            })
        ));
        assert!(matches!(
            revoke(&mut r, 8),
            Err(HostStoreError::Transition {
                from: "revoked",
                ..
            })
        ));
        assert_eq!(r.revoked_at, Some(7));
        let mut pending = record(HostState::Pending);
        revoke(&mut pending, 9).unwrap();
        assert!(approve(&mut pending).is_err());
    }

    #[test]
    fn labels_and_names() {
        let ok: BTreeMap<String, String> = [
            ("rack".into(), "r1".into()),
            ("a/b.c_d-e".into(), String::new()),
        ]
        .into_iter()
        .collect();
        check_labels(&ok).unwrap();
        let bad_key: BTreeMap<String, String> =
            [("bad key".into(), "x".into())].into_iter().collect();
        assert!(matches!(
            check_labels(&bad_key),
            Err(LabelError::Key { .. })
        ));
        let long_key: BTreeMap<String, String> = [("k".repeat(MAX_LABEL_KEY + 1), "x".into())]
            .into_iter()
            .collect();
        assert!(matches!(
            check_labels(&long_key),
            Err(LabelError::Key { .. })
        ));
        let control: BTreeMap<String, String> = [("k".into(), "a\nb".into())].into_iter().collect();
        assert!(matches!(
            check_labels(&control),
            Err(LabelError::Value { .. })
        ));
        let long_value: BTreeMap<String, String> = [("k".into(), "v".repeat(MAX_LABEL_VALUE + 1))]
            .into_iter()
            .collect();
        assert!(matches!(
            check_labels(&long_value),
            Err(LabelError::Value { .. })
        ));
        let many: BTreeMap<String, String> = (0..=MAX_LABELS)
            .map(|i| (format!("k{i}"), String::new()))
            .collect();
        assert!(matches!(
            check_labels(&many),
            Err(LabelError::TooMany { .. })
        ));
        check_name("node-1.example").unwrap();
        for bad in ["", "a/b", "a b", &"n".repeat(MAX_NAME + 1)] {
            assert!(
                matches!(check_name(bad), Err(LabelError::Name { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn ids() {
        let id = new_id().unwrap();
        assert!(valid_id(&id));
        for bad in [
            "",
            "../sys/seal",
            &"g".repeat(32),
            &"a".repeat(31),
            &"a".repeat(33),
        ] {
            assert!(!valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn secret_compare() {
        let secret = ActivationSecret(Zeroizing::new([5; SECRET_BYTES]));
        assert!(secret.matches(&[5; SECRET_BYTES]));
        assert!(!secret.matches(&[6; SECRET_BYTES]));
        assert!(!secret.matches(&[5; SECRET_BYTES - 1]));
        assert_eq!(format!("{secret:?}"), "ActivationSecret([redacted])");
    }

    #[test]
    fn config_section_parses_and_defaults() {
        let base =
            "listen = \"127.0.0.1:8200\"\ndata_dir = \"/tmp/x\"\n[audit]\npath = \"/tmp/a.log\"\n";
        let config = crate::config::Config::parse(base, Path::new("t.toml")).unwrap();
        assert_eq!(config.enrollment.ttl.as_secs(), 300);
        assert!(config.enrollment.allow_sha1_signatures);
        let text = format!(
            "{base}[enrollment]\nek_roots = [\"/r\"]\nttl = \"90s\"\nenforce_expiry = true\n\
             [enrollment.auto_approve]\nek_issuers = [\"CN=x\"]\n"
        );
        let config = crate::config::Config::parse(&text, Path::new("t.toml")).unwrap();
        assert_eq!(config.enrollment.ttl.as_secs(), 90);
        assert_eq!(config.enrollment.auto_approve.ek_issuers, ["CN=x"]);
        assert!(config.enrollment.enforce_expiry);
        let typo = format!("{base}[enrollment]\nek_root = []\n");
        assert!(crate::config::Config::parse(&typo, Path::new("t.toml")).is_err());
    }

    #[test]
    fn settings_refusals() {
        let bad_hash = EnrollmentConfig {
            ek_allowlist: vec!["abc".into()],
            ..EnrollmentConfig::default()
        };
        assert!(matches!(
            EnrollmentSettings::load(&bad_hash),
            Err(EnrollmentConfigError::Hash {
                list: "ek_allowlist",
                ..
            })
        ));
        let bad_auto = EnrollmentConfig {
            auto_approve: AutoApproveConfig {
                ek_hashes: vec!["zz".repeat(32)],
                ..AutoApproveConfig::default()
            },
            ..EnrollmentConfig::default()
        };
        assert!(matches!(
            EnrollmentSettings::load(&bad_auto),
            Err(EnrollmentConfigError::Hash {
                list: "auto_approve.ek_hashes",
                ..
            })
        ));
        let missing = EnrollmentConfig {
            ek_roots: vec!["/nonexistent/keyward/roots.pem".into()],
            ..EnrollmentConfig::default()
        };
        assert!(matches!(
            EnrollmentSettings::load(&missing),
            Err(EnrollmentConfigError::Read { .. })
        ));
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata/tpm/gce-certs");
        let gce = EnrollmentConfig {
            ek_roots: vec![dir.join("tpm_ek_root_1.cer")],
            ..EnrollmentConfig::default()
        };
        let settings = EnrollmentSettings::load(&gce).unwrap();
        assert_eq!(settings.store.root_count(), 1);
        assert_eq!(settings.ttl_secs(), 300);
    }
}
