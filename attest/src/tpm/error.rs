//! The one error type of the TPM wire parsers.

use crate::digest::HashAlg;

/// A TPM structure the parsers produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Structure {
    /// TPMS_ATTEST.
    Attest,
    /// TPMT_SIGNATURE.
    Signature,
    /// TPM2B_PUBLIC or TPMT_PUBLIC.
    Public,
    /// TPM2B_NAME contents.
    Name,
    /// TPML_PCR_SELECTION.
    PcrSelection,
    /// The tpm2-tools serialized PCR file.
    PcrFile,
    /// The tpm2-tools credential blob file.
    CredentialFile,
}

/// The field a parser was reading when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Field {
    /// The length of a whole TPMS_ATTEST.
    AttestLength,
    /// TPMS_ATTEST.magic.
    Magic,
    /// TPMS_ATTEST.type.
    AttestType,
    /// TPMS_ATTEST.qualifiedSigner (TPM2B_NAME).
    QualifiedSigner,
    /// TPMS_ATTEST.extraData (TPM2B_DATA).
    ExtraData,
    /// TPMS_ATTEST.clockInfo.
    ClockInfo,
    /// TPMS_CLOCK_INFO.safe (TPMI_YES_NO).
    ClockSafe,
    /// TPMS_ATTEST.firmwareVersion.
    FirmwareVersion,
    /// TPMS_QUOTE_INFO.pcrDigest.
    PcrDigest,
    /// TPML_PCR_SELECTION.count.
    PcrBankCount,
    /// TPMS_PCR_SELECTION.hash.
    PcrBankHash,
    /// TPMS_PCR_SELECTION.sizeofSelect.
    PcrSelectSize,
    /// TPMS_PCR_SELECTION.pcrSelect.
    PcrSelectBitmap,
    /// Number of TPML_DIGEST lists in the tpm2-tools PCR file.
    DigestListCount,
    /// TPML_DIGEST.count.
    DigestCount,
    /// A TPM2B_DIGEST holding a PCR value.
    PcrValue,
    /// TPM2B_PUBLIC.size.
    PublicSize,
    /// TPMT_PUBLIC.type.
    ObjectType,
    /// TPMT_PUBLIC.nameAlg.
    NameAlg,
    /// TPMT_PUBLIC.objectAttributes.
    ObjectAttributes,
    /// TPMT_PUBLIC.authPolicy.
    AuthPolicy,
    /// TPMT_SYM_DEF_OBJECT.algorithm.
    SymmetricAlgorithm,
    /// TPMT_SYM_DEF_OBJECT.keyBits.
    SymmetricKeyBits,
    /// TPMT_SYM_DEF_OBJECT.mode.
    SymmetricMode,
    /// TPMT_RSA_SCHEME / TPMT_ECC_SCHEME .scheme.
    Scheme,
    /// The hash algorithm of a key's scheme.
    SchemeHash,
    /// TPMS_RSA_PARMS.keyBits.
    RsaKeyBits,
    /// TPMS_RSA_PARMS.exponent.
    RsaExponent,
    /// TPMU_PUBLIC_ID.rsa (the modulus).
    RsaModulus,
    /// TPMS_ECC_PARMS.curveID.
    EccCurve,
    /// TPMS_ECC_PARMS.kdf.scheme.
    KdfScheme,
    /// The hash algorithm of TPMS_ECC_PARMS.kdf.
    KdfHash,
    /// TPMS_ECC_POINT.x.
    EccX,
    /// TPMS_ECC_POINT.y.
    EccY,
    /// TPMT_SIGNATURE.sigAlg.
    SignatureAlgorithm,
    /// The hash algorithm of a TPMT_SIGNATURE.
    SignatureHash,
    /// TPMS_SIGNATURE_RSA.sig.
    RsaSignature,
    /// TPMS_SIGNATURE_ECC.signatureR.
    EcdsaR,
    /// TPMS_SIGNATURE_ECC.signatureS.
    EcdsaS,
    /// The algorithm identifier at the start of a name.
    NameHash,
    /// The digest part of a name.
    NameDigest,
    /// The magic of a tpm2-tools credential blob file.
    CredentialFileMagic,
    /// The version of a tpm2-tools credential blob file.
    CredentialFileVersion,
    /// TPM2B_ID_OBJECT.
    IdObject,
    /// TPM2B_ENCRYPTED_SECRET.
    EncryptedSecret,
}

/// Why bytes are not a well-formed TPM structure.
///
/// Every length, count and algorithm identifier is checked before use; the
/// parsers never allocate more than a length cap allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The input ended inside a field.
    #[error("input ends inside {field:?}: {needed} bytes needed, {remaining} left")]
    Truncated {
        /// The field being read.
        field: Field,
        /// Bytes the field needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A size or count is above the cap for its field.
    #[error("{field:?} is {len}, above the cap of {max}")]
    TooLarge {
        /// The field.
        field: Field,
        /// The size or count found.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// A field has a length its context forbids (digest size, key size, coordinate size).
    #[error("{field:?} has {len} bytes, expected {expected}")]
    WrongLength {
        /// The field.
        field: Field,
        /// The length found.
        len: usize,
        /// The length required.
        expected: usize,
    },
    /// Bytes remain after a complete structure.
    #[error("{count} bytes after the end of {structure:?}")]
    TrailingBytes {
        /// The structure.
        structure: Structure,
        /// How many bytes remain.
        count: usize,
    },
    /// An algorithm or type identifier that is unknown or not accepted in this field.
    #[error("algorithm 0x{id:04x} is not accepted in {field:?}")]
    UnknownAlgorithm {
        /// The field.
        field: Field,
        /// The TPM_ALG_ID (or TPM_ECC_CURVE) found.
        id: u16,
    },
    /// A field holds a value outside its allowed set.
    #[error("{field:?} holds the invalid value {value}")]
    InvalidValue {
        /// The field.
        field: Field,
        /// The value found.
        value: u32,
    },
    /// A PCR above [`crate::digest::MAX_PCR_INDEX`] is selected.
    #[error("PCR {index} selected in bank {alg:?} does not exist on a PC Client TPM")]
    PcrIndexOutOfRange {
        /// The bank.
        alg: HashAlg,
        /// The index.
        index: u32,
    },
    /// A bank appears twice in one PCR selection.
    #[error("bank {alg:?} is selected twice")]
    DuplicatePcrBank {
        /// The bank.
        alg: HashAlg,
    },
    /// A bank is listed with no PCR selected.
    #[error("bank {alg:?} is listed with no PCR selected")]
    EmptyPcrBank {
        /// The bank.
        alg: HashAlg,
    },
    /// The number of PCR values does not match the number of PCRs selected.
    #[error("{selected} PCRs are selected but {supplied} values are present")]
    PcrCountMismatch {
        /// PCRs selected.
        selected: usize,
        /// Values present.
        supplied: usize,
    },
}

impl ParseError {
    pub(crate) fn truncated(field: Field) -> impl FnOnce(crate::reader::Truncated) -> Self {
        move |t| Self::Truncated {
            field,
            needed: t.needed,
            remaining: t.remaining,
        }
    }
}
