//! Attestation key checks: the attributes that make a key's signatures
//! evidence about the TPM that holds it.

use super::public::{ObjectAttribute, TpmPublic};

/// Why a public area is not acceptable as an attestation key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AkError {
    /// An attribute an AK must have is clear.
    #[error("attestation key lacks the {attribute:?} attribute")]
    MissingAttribute {
        /// The attribute.
        attribute: ObjectAttribute,
    },
    /// An attribute an AK must not have is set.
    #[error("attestation key has the forbidden {attribute:?} attribute")]
    ForbiddenAttribute {
        /// The attribute.
        attribute: ObjectAttribute,
    },
}

/// Attributes an AK must have (Part 2, §8.3, TPMA_OBJECT), checked in this
/// order:
/// - restricted + sign: the key signs only digests the TPM computed itself
///   or checked with a TPM2_Hash ticket, so it cannot sign a forged
///   TPMS_ATTEST (Part 3, §15.4 and §20.2);
/// - fixedTPM + fixedParent: the key can never leave this TPM, so proving
///   it is in the same TPM as the EK (credential activation) stays true;
/// - sensitiveDataOrigin: the TPM generated the private key; nobody ever
///   held it outside.
const REQUIRED: [ObjectAttribute; 5] = [
    ObjectAttribute::Restricted,
    ObjectAttribute::Sign,
    ObjectAttribute::FixedTpm,
    ObjectAttribute::FixedParent,
    ObjectAttribute::SensitiveDataOrigin,
];

/// Attributes an AK must not have: decrypt. A TPM refuses to create a
/// restricted key with both sign and decrypt (Part 2, §8.3, TPM_RC_ATTRIBUTES),
/// so such a public area did not come from a TPM; and a key that decrypts
/// can be made to process attacker-chosen ciphertexts.
const FORBIDDEN: [ObjectAttribute; 1] = [ObjectAttribute::Decrypt];

/// Checks that `ak` has the attributes of an attestation key, reporting the
/// first attribute missing or forbidden.
///
/// This looks at attributes only; the key type and scheme are checked when
/// a quote is verified with the key.
pub fn check_ak_attributes(ak: &TpmPublic) -> Result<(), AkError> {
    let attributes = ak.attributes();
    if let Some(attribute) = REQUIRED.into_iter().find(|a| !attributes.contains(*a)) {
        return Err(AkError::MissingAttribute { attribute });
    }
    if let Some(attribute) = FORBIDDEN.into_iter().find(|a| attributes.contains(*a)) {
        return Err(AkError::ForbiddenAttribute { attribute });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tpm::public::tests::testdata;

    /// The AK with its objectAttributes (bytes 4..8 of the TPMT_PUBLIC) replaced.
    fn ak_with_attributes(bits: u32) -> TpmPublic {
        let mut tpmt = testdata("ak_rsa.pub")[2..].to_vec();
        tpmt[4..8].copy_from_slice(&bits.to_be_bytes());
        TpmPublic::parse_tpmt(&tpmt).unwrap()
    }

    #[test]
    fn real_aks_pass() {
        for file in ["ak_rsa.pub", "ak_rsapss.pub", "ak_ecc.pub", "ak_ecc384.pub"] {
            let ak = TpmPublic::parse(&testdata(file)).unwrap();
            assert_eq!(check_ak_attributes(&ak), Ok(()), "{file}");
        }
    }

    #[test]
    fn each_missing_attribute_is_reported() {
        let good = TpmPublic::parse(&testdata("ak_rsa.pub"))
            .unwrap()
            .attributes()
            .bits();
        for attribute in REQUIRED {
            let ak = ak_with_attributes(good & !attribute.mask());
            assert_eq!(
                check_ak_attributes(&ak),
                Err(AkError::MissingAttribute { attribute })
            );
        }
    }

    #[test]
    fn decrypt_is_forbidden() {
        let good = TpmPublic::parse(&testdata("ak_rsa.pub"))
            .unwrap()
            .attributes()
            .bits();
        let ak = ak_with_attributes(good | ObjectAttribute::Decrypt.mask());
        assert_eq!(
            check_ak_attributes(&ak),
            Err(AkError::ForbiddenAttribute {
                attribute: ObjectAttribute::Decrypt
            })
        );
    }

    #[test]
    fn an_endorsement_key_is_not_an_ak() {
        let ek = TpmPublic::parse(&testdata("ek_rsa.pub")).unwrap();
        assert_eq!(
            check_ak_attributes(&ek),
            Err(AkError::MissingAttribute {
                attribute: ObjectAttribute::Sign
            })
        );
    }
}
