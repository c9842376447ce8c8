//! The endorsement key (EK) and its certificate.
//!
//! TCG EK Credential Profile 2.5: the RSA-2048 EK lives at persistent handle
//! 0x81010001 with its certificate at NV index 0x01c00002; the ECC NIST P-384
//! EK at 0x81010016 with its certificate at 0x01c00016. When no persistent
//! EK exists, it is re-created from the standard template: primaries are
//! derived from the endorsement seed, so the key is the same one the
//! manufacturer certified.

use tss_esapi::abstraction::{AsymmetricAlgorithmSelection, ek};
use tss_esapi::handles::{KeyHandle, PersistentTpmHandle, TpmHandle};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::structures::{Public, PublicBuffer};
use tss_esapi::traits::Marshall;

use crate::error::TpmError;
use crate::tpm::{Session, Tpm};

/// Which EK to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EkKind {
    /// RSA 2048, template L-1.
    Rsa2048,
    /// ECC NIST P-384, high-range template.
    EccP384,
}

impl EkKind {
    /// The persistent handle where a provisioned TPM keeps this EK.
    pub fn persistent_handle(self) -> u32 {
        match self {
            Self::Rsa2048 => 0x8101_0001,
            Self::EccP384 => 0x8101_0016,
        }
    }

    /// The NV index holding this EK's certificate.
    pub fn certificate_nv_index(self) -> u32 {
        match self {
            Self::Rsa2048 => 0x01c0_0002,
            Self::EccP384 => 0x01c0_0016,
        }
    }

    fn algorithm(self) -> AsymmetricAlgorithmSelection {
        match self {
            Self::Rsa2048 => AsymmetricAlgorithmSelection::Rsa(RsaKeyBits::Rsa2048),
            Self::EccP384 => AsymmetricAlgorithmSelection::Ecc(EccCurve::NistP384),
        }
    }
}

/// An EK handle held by a session.
pub(crate) struct EkSlot {
    pub(crate) kind: EkKind,
    pub(crate) handle: KeyHandle,
    /// True for the provisioned persistent EK (closed, never flushed).
    pub(crate) persistent: bool,
}

/// The public part of an EK, in the encodings a verifier needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EkPublic {
    /// Which EK.
    pub kind: EkKind,
    /// TPM2B_PUBLIC, marshalled (what `tpm2_createek -u` writes).
    pub tpm2b_public: Vec<u8>,
    /// DER SubjectPublicKeyInfo.
    pub spki_der: Vec<u8>,
    /// TPM name: nameAlg || H(TPMT_PUBLIC).
    pub name: Vec<u8>,
    /// True when the EK came from its persistent handle rather than the template.
    pub from_persistent_handle: bool,
}

impl Session {
    /// The handle of the EK of `kind`, loading or creating it once per session.
    pub(crate) fn ek_handle(&mut self, kind: EkKind) -> Result<KeyHandle, TpmError> {
        if let Some(slot) = self.ek_handles.iter().find(|slot| slot.kind == kind) {
            return Ok(slot.handle);
        }
        let persistent = PersistentTpmHandle::new(kind.persistent_handle()).map_err(|_| {
            TpmError::InvalidArgument {
                what: "EK persistent handle",
            }
        })?;
        let slot = match self.context.execute_without_session(|ctx| {
            ctx.tr_from_tpm_public(TpmHandle::Persistent(persistent))
        }) {
            Ok(object) => EkSlot {
                kind,
                handle: KeyHandle::from(object),
                persistent: true,
            },
            Err(_) => {
                let handle = ek::create_ek_object_2(&mut self.context, kind.algorithm(), None)
                    .map_err(TpmError::command("CreatePrimary(EK)"))?;
                EkSlot {
                    kind,
                    handle,
                    persistent: false,
                }
            }
        };
        let handle = slot.handle;
        self.ek_handles.push(slot);
        Ok(handle)
    }
}

impl Tpm {
    /// The EK's public key and name.
    pub fn ek_public(&self, kind: EkKind) -> Result<EkPublic, TpmError> {
        self.call(move |s| {
            let handle = s.ek_handle(kind)?;
            let from_persistent_handle = s
                .ek_handles
                .iter()
                .any(|slot| slot.kind == kind && slot.persistent);
            let (public, name, _) = s
                .context
                .execute_without_session(|ctx| ctx.read_public(handle))
                .map_err(TpmError::command("ReadPublic(EK)"))?;
            Ok(EkPublic {
                kind,
                tpm2b_public: marshal_tpm2b_public(&public)?,
                spki_der: spki_der(&public)?,
                name: name.value().to_vec(),
                from_persistent_handle,
            })
        })
    }

    /// The EK certificate (DER) from its NV index.
    pub fn ek_certificate(&self, kind: EkKind) -> Result<Vec<u8>, TpmError> {
        self.call(move |s| {
            ek::retrieve_ek_pubcert(&mut s.context, kind.algorithm())
                .map_err(|_| TpmError::NoEkCertificate {
                    nv_index: kind.certificate_nv_index(),
                })
                .and_then(|nv| {
                    der_certificate_prefix(&nv).ok_or(TpmError::NoEkCertificate {
                        nv_index: kind.certificate_nv_index(),
                    })
                })
        })
    }
}

/// The DER certificate at the start of an NV index's contents.
///
/// Some TPMs size the NV index larger than the certificate and pad it
/// (zeros or 0xff); verifiers reject trailing bytes, so they are cut here,
/// at the length the outer DER SEQUENCE declares. Anything that is not a
/// SEQUENCE fitting in the data is `None`.
fn der_certificate_prefix(nv: &[u8]) -> Option<Vec<u8>> {
    let (&tag, rest) = nv.split_first()?;
    if tag != 0x30 {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        // Long form: 1 to 4 length bytes (certificates are far below 4 GiB).
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let bytes = rest.get(..count)?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, 2 + count)
    };
    nv.get(..header.checked_add(len)?).map(<[u8]>::to_vec)
}

/// Marshals a public area as TPM2B_PUBLIC.
pub(crate) fn marshal_tpm2b_public(public: &Public) -> Result<Vec<u8>, TpmError> {
    let buffer =
        PublicBuffer::try_from(public.clone()).map_err(|_| TpmError::UnexpectedResponse {
            what: "public area does not fit TPM2B_PUBLIC",
        })?;
    buffer.marshall().map_err(|_| TpmError::UnexpectedResponse {
        what: "cannot marshal TPM2B_PUBLIC",
    })
}

/// DER SubjectPublicKeyInfo of an RSA or ECC public area.
pub(crate) fn spki_der(public: &Public) -> Result<Vec<u8>, TpmError> {
    let spki = picky_asn1_x509::SubjectPublicKeyInfo::try_from(public.clone()).map_err(|_| {
        TpmError::UnexpectedResponse {
            what: "public area has no SPKI form",
        }
    })?;
    picky_asn1_der::to_vec(&spki).map_err(|_| TpmError::UnexpectedResponse {
        what: "cannot encode SPKI",
    })
}

#[cfg(test)]
mod tests {
    use super::der_certificate_prefix;

    #[test]
    fn trims_nv_padding_after_the_certificate() {
        let cert = [0x30, 0x82, 0x00, 0x03, 1, 2, 3];
        let mut padded = cert.to_vec();
        padded.extend_from_slice(&[0xff; 9]);
        assert_eq!(der_certificate_prefix(&padded).as_deref(), Some(&cert[..]));
        assert_eq!(
            der_certificate_prefix(&[0x30, 0x02, 9, 9, 0]).as_deref(),
            Some(&[0x30, 0x02, 9, 9][..])
        );
    }

    #[test]
    fn refuses_what_is_not_a_fitting_sequence() {
        assert_eq!(der_certificate_prefix(&[]), None);
        assert_eq!(der_certificate_prefix(&[0xff; 16]), None);
        assert_eq!(der_certificate_prefix(&[0x30, 0x82, 0x01, 0x00, 1]), None);
        assert_eq!(der_certificate_prefix(&[0x30, 0x85, 1, 1, 1, 1, 1]), None);
        assert_eq!(der_certificate_prefix(&[0x30, 0x80]), None);
    }
}
