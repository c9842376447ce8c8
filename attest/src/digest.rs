//! Hash algorithms known to the verifier and PCR values keyed by bank.

use std::collections::BTreeMap;

/// A hash algorithm that a PCR bank, event log or quote may use.
///
/// The discriminants are the TPM_ALG_ID values (TPM 2.0 Part 2, §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum HashAlg {
    /// TPM_ALG_SHA1 (0x0004). Accepted for replaying legacy banks only.
    Sha1,
    /// TPM_ALG_SHA256 (0x000B).
    Sha256,
    /// TPM_ALG_SHA384 (0x000C).
    Sha384,
    /// TPM_ALG_SHA512 (0x000D).
    Sha512,
}

impl HashAlg {
    /// Every algorithm, in TPM_ALG_ID order.
    pub const ALL: [HashAlg; 4] = [
        HashAlg::Sha1,
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
    ];

    /// Maps a TPM_ALG_ID to a hash algorithm, or `None` if it is not one we support.
    pub fn from_tpm_alg_id(id: u16) -> Option<Self> {
        match id {
            0x0004 => Some(Self::Sha1),
            0x000B => Some(Self::Sha256),
            0x000C => Some(Self::Sha384),
            0x000D => Some(Self::Sha512),
            _ => None,
        }
    }

    /// The TPM_ALG_ID of this algorithm.
    pub fn tpm_alg_id(self) -> u16 {
        match self {
            Self::Sha1 => 0x0004,
            Self::Sha256 => 0x000B,
            Self::Sha384 => 0x000C,
            Self::Sha512 => 0x000D,
        }
    }

    /// Digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }

    /// The lower-case name used in JSON and in tpm2-tools (`sha256`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    /// Parses a name as [`HashAlg::name`] prints it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.name() == name)
    }

    /// The `ring` algorithm computing this hash.
    pub fn ring_algorithm(self) -> &'static ring::digest::Algorithm {
        match self {
            Self::Sha1 => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &ring::digest::SHA256,
            Self::Sha384 => &ring::digest::SHA384,
            Self::Sha512 => &ring::digest::SHA512,
        }
    }

    /// Hashes the concatenation of `parts`.
    pub fn hash(self, parts: &[&[u8]]) -> Vec<u8> {
        let mut ctx = ring::digest::Context::new(self.ring_algorithm());
        for part in parts {
            ctx.update(part);
        }
        ctx.finish().as_ref().to_vec()
    }

    /// `PCR_new = H(PCR_old || digest)` (TPM 2.0 Part 1, §17.2).
    pub fn extend(self, pcr: &[u8], digest: &[u8]) -> Vec<u8> {
        self.hash(&[pcr, digest])
    }
}

/// Highest PCR index the verifier accepts (PC Client TPMs have 24 PCRs).
pub const MAX_PCR_INDEX: u8 = 23;

/// PCR values, by bank and index. Digest lengths always match their bank.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PcrValues {
    banks: BTreeMap<HashAlg, BTreeMap<u8, Vec<u8>>>,
}

/// A PCR value that cannot be stored in [`PcrValues`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PcrValueError {
    /// The index is above [`MAX_PCR_INDEX`].
    #[error("PCR index {index} is out of range")]
    IndexOutOfRange {
        /// The index given.
        index: u32,
    },
    /// The digest length does not match the bank's algorithm.
    #[error("PCR {index} in bank {alg:?} has {len} bytes, expected {expected}")]
    WrongDigestLength {
        /// The bank.
        alg: HashAlg,
        /// The index.
        index: u8,
        /// The length given.
        len: usize,
        /// The bank's digest length.
        expected: usize,
    },
}

impl PcrValues {
    /// No values.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets one PCR value, checking index and length.
    pub fn insert(
        &mut self,
        alg: HashAlg,
        index: u32,
        value: Vec<u8>,
    ) -> Result<(), PcrValueError> {
        let index = u8::try_from(index)
            .ok()
            .filter(|i| *i <= MAX_PCR_INDEX)
            .ok_or(PcrValueError::IndexOutOfRange { index })?;
        if value.len() != alg.digest_len() {
            return Err(PcrValueError::WrongDigestLength {
                alg,
                index,
                len: value.len(),
                expected: alg.digest_len(),
            });
        }
        self.banks.entry(alg).or_default().insert(index, value);
        Ok(())
    }

    /// One PCR value.
    pub fn get(&self, alg: HashAlg, index: u8) -> Option<&[u8]> {
        self.banks.get(&alg)?.get(&index).map(Vec::as_slice)
    }

    /// One bank, by index.
    pub fn bank(&self, alg: HashAlg) -> Option<&BTreeMap<u8, Vec<u8>>> {
        self.banks.get(&alg)
    }

    /// Every (bank, index, value), banks in TPM_ALG_ID order and indices ascending.
    pub fn iter(&self) -> impl Iterator<Item = (HashAlg, u8, &[u8])> + '_ {
        self.banks
            .iter()
            .flat_map(|(alg, bank)| bank.iter().map(move |(i, v)| (*alg, *i, v.as_slice())))
    }

    /// Number of PCR values across all banks.
    pub fn len(&self) -> usize {
        self.banks.values().map(BTreeMap::len).sum()
    }

    /// True when no value is present.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_ids_round_trip() {
        for alg in HashAlg::ALL {
            assert_eq!(HashAlg::from_tpm_alg_id(alg.tpm_alg_id()), Some(alg));
            assert_eq!(HashAlg::from_name(alg.name()), Some(alg));
            assert_eq!(alg.hash(&[b""]).len(), alg.digest_len());
        }
        assert_eq!(HashAlg::from_tpm_alg_id(0x0012), None); // SM3_256
    }

    #[test]
    fn pcr_values_check_index_and_length() {
        let mut v = PcrValues::new();
        assert_eq!(v.insert(HashAlg::Sha256, 23, vec![0; 32]), Ok(()));
        assert_eq!(
            v.insert(HashAlg::Sha256, 24, vec![0; 32]),
            Err(PcrValueError::IndexOutOfRange { index: 24 })
        );
        assert_eq!(
            v.insert(HashAlg::Sha1, 0, vec![0; 32]),
            Err(PcrValueError::WrongDigestLength {
                alg: HashAlg::Sha1,
                index: 0,
                len: 32,
                expected: 20
            })
        );
        assert_eq!(v.len(), 1);
        assert_eq!(v.get(HashAlg::Sha256, 23), Some(&[0u8; 32][..]));
    }

    #[test]
    fn extend_matches_the_spec_formula() {
        // Extending a zero PCR with a zero digest: SHA-256(0^32 || 0^32).
        let out = HashAlg::Sha256.extend(&[0; 32], &[0; 32]);
        assert_eq!(
            hex_lower(&out),
            "f5a5fd42d16a20302798ef6ed309979b43003d2320d9f0e8ea9831a92759fb4b"
        );
    }

    fn hex_lower(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
