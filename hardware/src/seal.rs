//! Sealing a small secret to this TPM under a PCR policy.
//!
//! # What it does
//! - [`Tpm::seal_secret`] creates a sealed data object (a `keyedHash` object
//!   whose sensitive area is the caller's bytes: TPM 2.0 Library Part 1,
//!   "Sealed Data Objects", and Part 3, §12.1 TPM2_Create) under the
//!   owner hierarchy's storage primary key, with
//!   `authPolicy = PolicyPCR(selection, current values)` and `userWithAuth`
//!   clear, so only a policy session that satisfies PolicyPCR can unseal it;
//! - [`Tpm::unseal_secret`] loads it and runs TPM2_Unseal through a policy
//!   session (PolicyPCR over the same selection).
//!
//! The secret crosses the TPM bus only inside sessions salted with the
//! storage primary key (Part 3, §11.1 TPM2_StartAuthSession: the salt is
//! encrypted to the primary; Part 1, "Session-based encryption"), so an
//! interposer on the bus sees neither the sealed bytes nor the unsealed ones.
//!
//! # What it does not do
//! It keeps nothing loaded: the storage primary, the sealed object and every
//! session are flushed before each call returns (swtpm without a resource
//! manager has three object slots). It does not decide what a refusal
//! means: a PCR mismatch comes back as [`TpmSealError::PolicyRefused`], a
//! blob made by another TPM (or under a changed owner seed) as
//! [`TpmSealError::ForeignObject`], and the caller picks its fallback.
//!
//! # Blob format (ours, versioned)
//! ```text
//! "KWSO" | version u8 (1) | bank u8 (TPM_ALG_ID low byte: 0x0B sha256, …)
//!        | count u8 | count × PCR index u8 (ascending, distinct, ≤ 23)
//!        | u16 length | TPMT_PUBLIC | u16 length | TPM2B_PRIVATE buffer
//! ```
//! All integers big-endian, lengths capped, no trailing bytes. The blob is
//! not secret (the private area is wrapped by the storage primary key, which
//! never leaves the TPM), but it is bound to this TPM.

use tss_esapi::attributes::{ObjectAttributesBuilder, SessionAttributesBuilder};
use tss_esapi::constants::SessionType;
use tss_esapi::constants::response_code::Tss2ResponseCodeKind;
use tss_esapi::handles::{KeyHandle, ObjectHandle, SessionHandle};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
use tss_esapi::structures::{
    Digest, EccPoint, KeyedHashScheme, Private, Public, PublicBuilder, PublicEccParametersBuilder,
    PublicKeyedHashParameters, SensitiveData, SymmetricDefinition, SymmetricDefinitionObject,
};
use tss_esapi::traits::{Marshall, UnMarshall};
use zeroize::Zeroizing;

use crate::error::TpmError;
use crate::pcr::{MAX_PCR_INDEX, PcrBank, PcrSelection, selection_list};
use crate::tpm::{Session, Tpm};

const MAGIC: &[u8; 4] = b"KWSO";
const VERSION: u8 = 1;
/// TPM 2.0 Library Part 2, TPM2B_SENSITIVE_DATA: the data of a sealed
/// object is at most MAX_SYM_DATA (128) bytes.
pub const MAX_SEALED_SECRET: usize = 128;
/// Largest TPMT_PUBLIC accepted for a sealed object (a keyedHash public area
/// with a SHA-512 policy is under 200 bytes).
const MAX_PUBLIC: usize = 512;
/// Largest TPM2B_PRIVATE buffer (Part 2, §12.3.7: sizeof(_PRIVATE)).
const MAX_PRIVATE: usize = 1024;

/// Why sealing or unsealing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TpmSealError {
    /// The TPM refused to unseal: the PCR policy is not satisfied (the
    /// sealed PCRs no longer hold the values they held at seal time).
    #[error("the TPM refused to unseal: PCR policy not satisfied")]
    PolicyRefused,
    /// The sealed object does not load under this TPM's storage primary key:
    /// it was made by another TPM, or the owner hierarchy was cleared.
    #[error("the sealed object does not belong to this TPM")]
    ForeignObject,
    /// The secret is empty or longer than [`MAX_SEALED_SECRET`].
    #[error("secret of {len} bytes: a sealed object holds 1 to {max} bytes")]
    SecretSize {
        /// The length given.
        len: usize,
        /// The largest accepted.
        max: usize,
    },
    /// The PCR selection is not one PCR bank with 1 to 24 distinct indices ≤ 23.
    #[error("unsupported PCR selection: {what}")]
    BadSelection {
        /// What was wrong.
        what: &'static str,
    },
    /// A stored sealed-object blob is malformed.
    #[error("malformed sealed-object blob: {what}")]
    MalformedBlob {
        /// What was wrong.
        what: &'static str,
    },
    /// Any other TPM failure.
    #[error(transparent)]
    Tpm(#[from] TpmError),
}

/// A secret sealed to one TPM under a PCR policy: the sealed object's
/// public and (TPM-wrapped) private areas and the PCR selection of its
/// policy.
#[derive(Clone)]
pub struct SealedSecret {
    pcrs: PcrSelection,
    public: Public,
    private: Private,
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSecret")
            .field("pcrs", &self.pcrs)
            .finish_non_exhaustive()
    }
}

impl SealedSecret {
    /// The PCR selection of the unseal policy, default
    /// [`default_seal_pcrs`]: sha256 0 (firmware), 2 (option ROMs),
    /// 4 (boot loader), 7 (Secure Boot policy), per the TCG PC Client
    /// Platform Firmware Profile, §3.3.4.
    pub fn pcrs(&self) -> &PcrSelection {
        &self.pcrs
    }

    /// Encodes the blob (format in the module docs).
    pub fn to_bytes(&self) -> Result<Vec<u8>, TpmSealError> {
        let bad = |what| TpmSealError::MalformedBlob { what };
        let public = self
            .public
            .marshall()
            .map_err(|_| bad("public area does not marshal"))?;
        let private = self.private.value();
        let count = u8::try_from(self.pcrs.indices.len()).map_err(|_| bad("PCR count"))?;
        let mut out =
            Vec::with_capacity(12 + self.pcrs.indices.len() + public.len() + private.len());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(bank_code(self.pcrs.bank));
        out.push(count);
        out.extend_from_slice(&self.pcrs.indices);
        for part in [public.as_slice(), private] {
            let len = u16::try_from(part.len()).map_err(|_| bad("part longer than 65535 bytes"))?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(part);
        }
        Ok(out)
    }

    /// Decodes a blob, bounded and strict.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TpmSealError> {
        let bad = |what| TpmSealError::MalformedBlob { what };
        let (magic, rest) = bytes.split_at_checked(4).ok_or(bad("truncated header"))?;
        if magic != MAGIC {
            return Err(bad("not a sealed-object blob"));
        }
        let (&[version, bank, count], rest) = rest
            .split_first_chunk::<3>()
            .ok_or(bad("truncated header"))?;
        if version != VERSION {
            return Err(bad("unsupported version"));
        }
        let bank = bank_from_code(bank).ok_or(bad("unknown PCR bank"))?;
        let (indices, rest) = rest
            .split_at_checked(usize::from(count))
            .ok_or(bad("truncated PCR list"))?;
        let pcrs = PcrSelection::new(bank, indices);
        check_selection(&pcrs).map_err(|_| bad("bad PCR list"))?;
        let (public, rest) = take_part(rest, MAX_PUBLIC).ok_or(bad("bad public part"))?;
        let (private, rest) = take_part(rest, MAX_PRIVATE).ok_or(bad("bad private part"))?;
        if !rest.is_empty() {
            return Err(bad("trailing bytes"));
        }
        let public = Public::unmarshall(public).map_err(|_| bad("public area does not parse"))?;
        if !matches!(public, Public::KeyedHash { .. }) {
            return Err(bad("not a keyedHash object"));
        }
        let private = Private::try_from(private.to_vec()).map_err(|_| bad("private too long"))?;
        Ok(Self {
            pcrs,
            public,
            private,
        })
    }
}

/// The default PCR selection for sealing: sha256 PCRs 0, 2, 4 and 7.
pub fn default_seal_pcrs() -> PcrSelection {
    PcrSelection::new(PcrBank::Sha256, &[0, 2, 4, 7])
}

/// TPM 2.0 Part 2, §6.3 (TPM_ALG_ID): the low byte of each hash's id.
fn bank_code(bank: PcrBank) -> u8 {
    match bank {
        PcrBank::Sha1 => 0x04,
        PcrBank::Sha256 => 0x0B,
        PcrBank::Sha384 => 0x0C,
        PcrBank::Sha512 => 0x0D,
    }
}

fn bank_from_code(code: u8) -> Option<PcrBank> {
    match code {
        0x04 => Some(PcrBank::Sha1),
        0x0B => Some(PcrBank::Sha256),
        0x0C => Some(PcrBank::Sha384),
        0x0D => Some(PcrBank::Sha512),
        _ => None,
    }
}

fn check_selection(pcrs: &PcrSelection) -> Result<(), TpmSealError> {
    let bad = |what| TpmSealError::BadSelection { what };
    if pcrs.indices.is_empty() {
        return Err(bad("no PCR selected"));
    }
    // Ascending and distinct: the blob has one canonical encoding.
    if !pcrs
        .indices
        .windows(2)
        .all(|w| matches!(w, [a, b] if a < b))
    {
        return Err(bad("PCR indices not ascending and distinct"));
    }
    if pcrs.indices.iter().any(|i| *i > MAX_PCR_INDEX) {
        return Err(bad("PCR index above 23"));
    }
    Ok(())
}

fn take_part(bytes: &[u8], cap: usize) -> Option<(&[u8], &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<2>()?;
    let len = usize::from(u16::from_be_bytes(*len));
    if len == 0 || len > cap {
        return None;
    }
    rest.split_at_checked(len)
}

/// TCG TPM v2.0 Provisioning Guidance, "Storage Primary Key (SRK)
/// Templates": the ECC NIST P-256 storage root key template (restricted decryption key, AES-128-CFB for
/// children, empty unique). Primaries are derived from the owner seed, so
/// re-creating it yields the same key every time on the same TPM.
fn srk_template() -> Result<Public, TpmError> {
    let bad = |_| TpmError::InvalidArgument {
        what: "storage primary template",
    };
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_no_da(true)
        .with_restricted(true)
        .with_decrypt(true)
        .build()
        .map_err(bad)?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_ecc_parameters(
            PublicEccParametersBuilder::new_restricted_decryption_key(
                SymmetricDefinitionObject::AES_128_CFB,
                EccCurve::NistP256,
            )
            .build()
            .map_err(bad)?,
        )
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
        .map_err(bad)
}

/// TPM 2.0 Part 3, §12.1 (TPM2_Create): a sealed data object is a
/// keyedHash object with `sign` and `decrypt` clear and
/// `sensitiveDataOrigin` clear (the data comes from the caller).
/// `userWithAuth` and `adminWithAuth` are clear so that only the policy
/// (Part 1, "Enhanced Authorization") authorises use; `fixedTPM`/`fixedParent` keep it on
/// this TPM.
fn sealed_object_template(policy: Digest) -> Result<Public, TpmError> {
    let bad = |_| TpmError::InvalidArgument {
        what: "sealed object template",
    };
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_no_da(true)
        .build()
        .map_err(bad)?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::KeyedHash)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_auth_policy(policy)
        .with_keyed_hash_parameters(PublicKeyedHashParameters::new(KeyedHashScheme::Null))
        .with_keyed_hash_unique_identifier(Digest::default())
        .build()
        .map_err(bad)
}

fn flush_session(session: &mut Session, auth: AuthSession) {
    // A session without continueSession is already gone; ignore that error.
    let _ = session
        .context
        .flush_context(SessionHandle::from(auth).into());
}

fn flush_object(session: &mut Session, handle: KeyHandle) {
    let _ = session.context.flush_context(ObjectHandle::from(handle));
}

impl Session {
    fn create_srk(&mut self) -> Result<KeyHandle, TpmError> {
        let template = srk_template()?;
        let created = self
            .context
            .execute_with_nullauth_session(|ctx| {
                ctx.create_primary(Hierarchy::Owner, template, None, None, None, None)
            })
            .map_err(TpmError::command("CreatePrimary(SRK)"))?;
        Ok(created.key_handle)
    }

    /// Starts a session salted with `srk` (TPM 2.0 Part 3, §11.1
    /// TPM2_StartAuthSession: the salt is encrypted to `tpmKey`) and with
    /// parameter encryption on for commands and responses.
    fn start_salted(
        &mut self,
        srk: KeyHandle,
        session_type: SessionType,
    ) -> Result<AuthSession, TpmError> {
        let auth = self
            .context
            .start_auth_session(
                Some(srk),
                None,
                None,
                session_type,
                SymmetricDefinition::AES_128_CFB,
                HashingAlgorithm::Sha256,
            )
            .map_err(TpmError::command("StartAuthSession"))?
            .ok_or(TpmError::UnexpectedResponse { what: "no session" })?;
        let (attributes, mask) = SessionAttributesBuilder::new()
            .with_continue_session(true)
            .with_decrypt(true)
            .with_encrypt(true)
            .build();
        if let Err(e) = self.context.tr_sess_set_attributes(auth, attributes, mask) {
            flush_session(self, auth);
            return Err(TpmError::Command {
                command: "TR_SetSessionAttributes",
                source: e,
            });
        }
        Ok(auth)
    }

    /// The policy digest of PolicyPCR over the current values of `pcrs`,
    /// computed by the TPM in a trial session (Part 1, "Trial Policy").
    fn trial_pcr_policy(&mut self, pcrs: &PcrSelection) -> Result<Digest, TpmError> {
        let list = selection_list(std::slice::from_ref(pcrs))?;
        let trial = self
            .context
            .start_auth_session(
                None,
                None,
                None,
                SessionType::Trial,
                SymmetricDefinition::AES_128_CFB,
                HashingAlgorithm::Sha256,
            )
            .map_err(TpmError::command("StartAuthSession(trial)"))?
            .ok_or(TpmError::UnexpectedResponse {
                what: "no trial session",
            })?;
        let result = (|| {
            let policy =
                PolicySession::try_from(trial).map_err(|_| TpmError::UnexpectedResponse {
                    what: "not a policy session",
                })?;
            // Part 3, §23.7: an empty pcrDigest makes the TPM use the
            // current values of the selected PCRs.
            self.context
                .policy_pcr(policy, Digest::default(), list)
                .map_err(TpmError::command("PolicyPCR(trial)"))?;
            self.context
                .policy_get_digest(policy)
                .map_err(TpmError::command("PolicyGetDigest"))
        })();
        flush_session(self, trial);
        result
    }

    fn seal_under(
        &mut self,
        srk: KeyHandle,
        secret: &[u8],
        pcrs: &PcrSelection,
    ) -> Result<SealedSecret, TpmSealError> {
        let policy = self.trial_pcr_policy(pcrs)?;
        let template = sealed_object_template(policy)?;
        let data =
            SensitiveData::try_from(secret.to_vec()).map_err(|_| TpmSealError::SecretSize {
                len: secret.len(),
                max: MAX_SEALED_SECRET,
            })?;
        let hmac = self.start_salted(srk, SessionType::Hmac)?;
        let created = self
            .context
            .execute_with_session(Some(hmac), |ctx| {
                ctx.create(srk, template, None, Some(data), None, None)
            })
            .map_err(TpmError::command("Create(sealed object)"));
        flush_session(self, hmac);
        let created = created?;
        Ok(SealedSecret {
            pcrs: pcrs.clone(),
            public: created.out_public,
            private: created.out_private,
        })
    }

    fn unseal_under(
        &mut self,
        srk: KeyHandle,
        sealed: &SealedSecret,
    ) -> Result<Zeroizing<Vec<u8>>, TpmSealError> {
        let object = self
            .context
            .execute_with_nullauth_session(|ctx| {
                ctx.load(srk, sealed.private.clone(), sealed.public.clone())
            })
            .map_err(|e| match rc_kind(&e) {
                // Part 3, §12.2 TPM2_Load: the private area's integrity HMAC
                // is keyed from the parent's seed; under another TPM's (or a
                // re-seeded) storage key it fails with TPM_RC_INTEGRITY.
                Some(Tss2ResponseCodeKind::Integrity) => TpmSealError::ForeignObject,
                _ => TpmSealError::Tpm(TpmError::Command {
                    command: "Load(sealed object)",
                    source: e,
                }),
            })?;
        let result = self.unseal_loaded(srk, object, &sealed.pcrs);
        flush_object(self, object);
        result
    }

    fn unseal_loaded(
        &mut self,
        srk: KeyHandle,
        object: KeyHandle,
        pcrs: &PcrSelection,
    ) -> Result<Zeroizing<Vec<u8>>, TpmSealError> {
        let list = selection_list(std::slice::from_ref(pcrs))?;
        let auth = self.start_salted(srk, SessionType::Policy)?;
        let result = (|| {
            let policy =
                PolicySession::try_from(auth).map_err(|_| TpmError::UnexpectedResponse {
                    what: "not a policy session",
                })?;
            self.context
                .policy_pcr(policy, Digest::default(), list)
                .map_err(TpmError::command("PolicyPCR"))?;
            let data = self
                .context
                .execute_with_session(Some(auth), |ctx| ctx.unseal(object.into()))
                .map_err(|e| match rc_kind(&e) {
                    // Part 3, §12.7 TPM2_Unseal: the session's policy digest
                    // differs from the object's authPolicy (TPM_RC_POLICY_FAIL),
                    // or a PCR changed after PolicyPCR (TPM_RC_PCR_CHANGED).
                    Some(Tss2ResponseCodeKind::PolicyFail | Tss2ResponseCodeKind::PcrChanged) => {
                        TpmSealError::PolicyRefused
                    }
                    _ => TpmSealError::Tpm(TpmError::Command {
                        command: "Unseal",
                        source: e,
                    }),
                })?;
            Ok(Zeroizing::new(data.value().to_vec()))
        })();
        flush_session(self, auth);
        result
    }
}

fn rc_kind(e: &tss_esapi::Error) -> Option<Tss2ResponseCodeKind> {
    match e {
        tss_esapi::Error::Tss2Error(rc) => rc.kind(),
        tss_esapi::Error::WrapperError(_) => None,
    }
}

impl Tpm {
    /// Seals `secret` (1 to [`MAX_SEALED_SECRET`] bytes) to this TPM under
    /// PolicyPCR over the current values of `pcrs`.
    pub fn seal_secret(
        &self,
        secret: &[u8],
        pcrs: &PcrSelection,
    ) -> Result<SealedSecret, TpmSealError> {
        if secret.is_empty() || secret.len() > MAX_SEALED_SECRET {
            return Err(TpmSealError::SecretSize {
                len: secret.len(),
                max: MAX_SEALED_SECRET,
            });
        }
        check_selection(pcrs)?;
        let secret = Zeroizing::new(secret.to_vec());
        let pcrs = pcrs.clone();
        // The outer error is the connection's; the inner one is this call's.
        self.call(move |s| {
            let srk = s.create_srk()?;
            let result = s.seal_under(srk, &secret, &pcrs);
            flush_object(s, srk);
            Ok(result)
        })?
    }

    /// Unseals `sealed`. Fails with [`TpmSealError::PolicyRefused`] when
    /// the sealed PCRs changed and [`TpmSealError::ForeignObject`] when the
    /// blob belongs to another TPM.
    pub fn unseal_secret(&self, sealed: &SealedSecret) -> Result<Zeroizing<Vec<u8>>, TpmSealError> {
        let sealed = sealed.clone();
        self.call(move |s| {
            let srk = s.create_srk()?;
            let result = s.unseal_under(srk, &sealed);
            flush_object(s, srk);
            Ok(result)
        })?
    }
}
