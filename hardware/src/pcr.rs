//! Reading and extending PCRs.

use tss_esapi::handles::PcrHandle;
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::structures::{Digest, DigestValues, PcrSelectionList, PcrSlot};

use crate::error::TpmError;
use crate::tpm::{Session, Tpm};

/// Highest PCR index of a PC Client TPM.
pub const MAX_PCR_INDEX: u8 = 23;
/// A TPM returns at most 8 digests per PCR_Read (TPML_DIGEST holds 8);
/// 4 banks × 24 PCRs need at most 12 rounds. Anything more means the TPM is
/// not making progress.
const MAX_READ_ROUNDS: usize = 16;

/// A PCR bank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum PcrBank {
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl PcrBank {
    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// The name tpm2-tools uses (`sha256`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    pub(crate) fn hashing_algorithm(self) -> HashingAlgorithm {
        match self {
            Self::Sha1 => HashingAlgorithm::Sha1,
            Self::Sha256 => HashingAlgorithm::Sha256,
            Self::Sha384 => HashingAlgorithm::Sha384,
            Self::Sha512 => HashingAlgorithm::Sha512,
        }
    }

    fn from_hashing_algorithm(alg: HashingAlgorithm) -> Option<Self> {
        match alg {
            HashingAlgorithm::Sha1 => Some(Self::Sha1),
            HashingAlgorithm::Sha256 => Some(Self::Sha256),
            HashingAlgorithm::Sha384 => Some(Self::Sha384),
            HashingAlgorithm::Sha512 => Some(Self::Sha512),
            _ => None,
        }
    }
}

/// Some PCRs of one bank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrSelection {
    /// The bank.
    pub bank: PcrBank,
    /// PCR indices, each at most [`MAX_PCR_INDEX`].
    pub indices: Vec<u8>,
}

impl PcrSelection {
    /// A selection of `indices` in `bank`.
    pub fn new(bank: PcrBank, indices: &[u8]) -> Self {
        Self {
            bank,
            indices: indices.to_vec(),
        }
    }
}

/// One PCR's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrValue {
    /// The bank.
    pub bank: PcrBank,
    /// The index.
    pub index: u8,
    /// The digest, `bank.digest_len()` bytes.
    pub digest: Vec<u8>,
}

fn slot(index: u8) -> Result<PcrSlot, TpmError> {
    if index > MAX_PCR_INDEX {
        return Err(TpmError::InvalidArgument {
            what: "PCR index above 23",
        });
    }
    PcrSlot::try_from(1u32 << index).map_err(|_| TpmError::InvalidArgument { what: "PCR index" })
}

pub(crate) fn selection_list(selection: &[PcrSelection]) -> Result<PcrSelectionList, TpmError> {
    let mut builder = PcrSelectionList::builder();
    for bank in selection {
        if bank.indices.is_empty() {
            return Err(TpmError::InvalidArgument {
                what: "empty PCR selection",
            });
        }
        let slots = bank
            .indices
            .iter()
            .map(|i| slot(*i))
            .collect::<Result<Vec<_>, _>>()?;
        builder = builder.with_selection(bank.bank.hashing_algorithm(), &slots);
    }
    builder.build().map_err(|_| TpmError::InvalidArgument {
        what: "PCR selection",
    })
}

impl Session {
    /// Reads every selected PCR; values come back bank by bank in the order
    /// given, indices ascending (the order a quote digests them in).
    pub(crate) fn read_pcrs(
        &mut self,
        selection: &[PcrSelection],
    ) -> Result<Vec<PcrValue>, TpmError> {
        let mut remaining = selection_list(selection)?;
        let mut values: Vec<PcrValue> = Vec::new();
        let mut rounds = 0;
        while !remaining.is_empty() {
            rounds += 1;
            if rounds > MAX_READ_ROUNDS {
                return Err(TpmError::UnexpectedResponse {
                    what: "PCR_Read made no progress",
                });
            }
            let (_, read, digests) = self
                .context
                .pcr_read(remaining.clone())
                .map_err(TpmError::command("PCR_Read"))?;
            let mut digests = digests.value().iter();
            let mut progressed = false;
            for sel in read.get_selections() {
                let bank = PcrBank::from_hashing_algorithm(sel.hashing_algorithm()).ok_or(
                    TpmError::UnexpectedResponse {
                        what: "PCR_Read returned an unknown bank",
                    },
                )?;
                for slot in sel.selected() {
                    let index = u8::try_from(u32::from(slot).trailing_zeros())
                        .map_err(|_| TpmError::UnexpectedResponse { what: "PCR slot" })?;
                    let digest = digests.next().ok_or(TpmError::UnexpectedResponse {
                        what: "PCR_Read returned too few digests",
                    })?;
                    if digest.len() != bank.digest_len() {
                        return Err(TpmError::UnexpectedResponse {
                            what: "PCR digest length",
                        });
                    }
                    values.push(PcrValue {
                        bank,
                        index,
                        digest: digest.value().to_vec(),
                    });
                    progressed = true;
                }
            }
            if !progressed {
                // An unallocated bank reads back as an empty selection.
                return Err(TpmError::UnexpectedResponse {
                    what: "PCR_Read returned nothing: is the bank allocated?",
                });
            }
            remaining
                .subtract(&read)
                .map_err(|_| TpmError::UnexpectedResponse {
                    what: "PCR_Read returned PCRs that were not asked for",
                })?;
        }
        // Order as the caller selected: bank order given, indices ascending.
        let mut ordered = Vec::with_capacity(values.len());
        for bank in selection {
            let mut indices = bank.indices.clone();
            indices.sort_unstable();
            indices.dedup();
            for index in indices {
                let pos = values
                    .iter()
                    .position(|v| v.bank == bank.bank && v.index == index)
                    .ok_or(TpmError::UnexpectedResponse {
                        what: "PCR_Read skipped a PCR",
                    })?;
                ordered.push(values.swap_remove(pos));
            }
        }
        Ok(ordered)
    }
}

impl Tpm {
    /// Reads the selected PCRs.
    pub fn read_pcrs(&self, selection: &[PcrSelection]) -> Result<Vec<PcrValue>, TpmError> {
        let selection = selection.to_vec();
        self.call(move |s| s.read_pcrs(&selection))
    }

    /// Extends PCR `index` of the SHA-256 bank with `digest`.
    pub fn extend_pcr_sha256(&self, index: u8, digest: [u8; 32]) -> Result<(), TpmError> {
        if index > MAX_PCR_INDEX {
            return Err(TpmError::InvalidArgument {
                what: "PCR index above 23",
            });
        }
        self.call(move |s| {
            let handle = PcrHandle::try_from(u32::from(index))
                .map_err(|_| TpmError::InvalidArgument { what: "PCR index" })?;
            let mut values = DigestValues::new();
            let digest = Digest::try_from(digest.to_vec())
                .map_err(|_| TpmError::InvalidArgument { what: "digest" })?;
            values.set(HashingAlgorithm::Sha256, digest);
            s.context
                .execute_with_nullauth_session(|ctx| ctx.pcr_extend(handle, values))
                .map_err(TpmError::command("PCR_Extend"))
        })
    }
}
