//! TPML_PCR_SELECTION (TPM 2.0 Part 2, §10.9.7) and the PCR file that
//! `tpm2_quote -o` and `tpm2_pcrread -o` write (tpm2-tools 5.x).

use super::constants::MAX_PCR_BANKS;
use super::error::{Field, ParseError, Structure};
use super::wire;
use crate::digest::{HashAlg, MAX_PCR_INDEX, PcrValueError, PcrValues};
use crate::reader::Reader;

/// Smallest `sizeofSelect` accepted: PCR_SELECT_MIN for the 24 PCRs a PC
/// Client TPM has (TCG PC Client Platform TPM Profile, §4.6; Part 2, §10.6.1
/// requires `sizeofSelect >= PCR_SELECT_MIN`).
pub const MIN_SIZE_OF_SELECT: u8 = 3;
/// Largest `sizeofSelect` accepted: PCR_SELECT_MAX as the TSS headers define
/// it (32 PCRs). Software stacks size the bitmap for that; the bits above
/// PCR 23 must still be clear.
pub const MAX_SIZE_OF_SELECT: u8 = 4;

/// A parsed TPML_PCR_SELECTION: banks in wire order, each with a bitmap of
/// PCR indices (bit `n` = PCR `n`).
///
/// Invariants: no bank twice, no bank empty, no index above
/// [`MAX_PCR_INDEX`]. The wire order of banks matters: TPM2_Quote (Part 3,
/// §18.4) digests the selected PCRs bank by bank in selection order, indices
/// ascending within a bank, so a verifier must follow the same order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PcrSelection {
    banks: Vec<(HashAlg, u32)>,
}

impl PcrSelection {
    /// Parses a complete TPML_PCR_SELECTION; trailing bytes are an error.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(bytes);
        let selection = Self::read(&mut r)?;
        wire::finish(&r, Structure::PcrSelection)?;
        Ok(selection)
    }

    /// Reads a TPML_PCR_SELECTION from the reader's position (big-endian).
    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, ParseError> {
        let count = wire::u32(r, Field::PcrBankCount)?;
        let count = capped_count(count, MAX_PCR_BANKS, Field::PcrBankCount)?;
        let mut builder = Builder::default();
        for _ in 0..count {
            let id = wire::u16(r, Field::PcrBankHash)?;
            let size = wire::u8(r, Field::PcrSelectSize)?;
            check_size_of_select(size)?;
            let bitmap = wire::bytes(r, Field::PcrSelectBitmap, usize::from(size))?;
            builder.push(id, bitmap)?;
        }
        Ok(builder.finish())
    }

    /// Every selected (bank, index), banks in wire order, indices ascending:
    /// the order in which a quote's PCR digest covers the values.
    pub fn iter(&self) -> impl Iterator<Item = (HashAlg, u8)> + '_ {
        self.banks.iter().flat_map(|(alg, bitmap)| {
            (0..=MAX_PCR_INDEX)
                .filter(move |i| bitmap & (1u32 << i) != 0)
                .map(move |i| (*alg, i))
        })
    }

    /// The banks in wire order.
    pub fn banks(&self) -> impl Iterator<Item = HashAlg> + '_ {
        self.banks.iter().map(|(alg, _)| *alg)
    }

    /// Whether PCR `index` of bank `alg` is selected.
    pub fn contains(&self, alg: HashAlg, index: u8) -> bool {
        index <= MAX_PCR_INDEX
            && self
                .banks
                .iter()
                .any(|(a, bitmap)| *a == alg && bitmap & (1u32 << index) != 0)
    }

    /// Number of PCRs selected across all banks.
    pub fn len(&self) -> usize {
        self.banks
            .iter()
            .map(|(_, bitmap)| bitmap.count_ones())
            .map(usize_from)
            .sum()
    }

    /// True when no PCR is selected.
    pub fn is_empty(&self) -> bool {
        self.banks.is_empty()
    }

    /// True when `values` holds exactly the selected PCRs, no more and no fewer.
    pub fn matches(&self, values: &PcrValues) -> bool {
        values.len() == self.len() && self.iter().all(|(alg, i)| values.get(alg, i).is_some())
    }
}

fn usize_from(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn capped_count(count: u32, max: usize, field: Field) -> Result<usize, ParseError> {
    let len = usize_from(count);
    if len > max {
        return Err(ParseError::TooLarge { field, len, max });
    }
    Ok(len)
}

fn check_size_of_select(size: u8) -> Result<(), ParseError> {
    if (MIN_SIZE_OF_SELECT..=MAX_SIZE_OF_SELECT).contains(&size) {
        Ok(())
    } else {
        Err(ParseError::InvalidValue {
            field: Field::PcrSelectSize,
            value: u32::from(size),
        })
    }
}

/// Collects banks while enforcing the [`PcrSelection`] invariants.
#[derive(Default)]
struct Builder {
    banks: Vec<(HashAlg, u32)>,
}

impl Builder {
    /// Adds one TPMS_PCR_SELECTION; `bitmap` is `pcrSelect[0..sizeofSelect]`.
    fn push(&mut self, id: u16, bitmap: &[u8]) -> Result<(), ParseError> {
        let alg = HashAlg::from_tpm_alg_id(id).ok_or(ParseError::UnknownAlgorithm {
            field: Field::PcrBankHash,
            id,
        })?;
        // Part 2, §10.6.2: bit j of pcrSelect[i] selects PCR 8*i + j.
        let mut bits = 0u32;
        for (byte_index, byte) in (0u32..).zip(bitmap) {
            for bit in 0..8u32 {
                if byte & (1u8 << bit) == 0 {
                    continue;
                }
                let index = byte_index.saturating_mul(8).saturating_add(bit);
                if index > u32::from(MAX_PCR_INDEX) {
                    return Err(ParseError::PcrIndexOutOfRange { alg, index });
                }
                bits |= 1u32 << index;
            }
        }
        if bits == 0 {
            return Err(ParseError::EmptyPcrBank { alg });
        }
        if self.banks.iter().any(|(a, _)| *a == alg) {
            return Err(ParseError::DuplicatePcrBank { alg });
        }
        self.banks.push((alg, bits));
        Ok(())
    }

    fn finish(self) -> PcrSelection {
        PcrSelection { banks: self.banks }
    }
}

/// Slots in the `pcrSelections` array of the C struct TPML_PCR_SELECTION
/// (TPM2_NUM_PCR_BANKS in the TSS headers).
const FILE_SELECTION_SLOTS: usize = 16;
/// Bytes of one TPMS_PCR_SELECTION in the C struct: hash (2), sizeofSelect
/// (1), pcrSelect[PCR_SELECT_MAX = 4], one byte of alignment padding.
const FILE_SELECTION_SLOT_LEN: usize = 8;
/// Most TPML_DIGEST lists in the file: the `pcr_values` array of tpm2-tools'
/// `tpm2_pcrs` has TPM2_MAX_PCRS (32) entries.
pub const MAX_PCR_FILE_DIGEST_LISTS: usize = 32;
/// Digests in one TPML_DIGEST (Part 2, §10.9.2: TPM2_PCR_Read returns at most 8).
const FILE_DIGESTS_PER_LIST: usize = 8;
/// Bytes of one TPM2B_DIGEST in the C struct: size (2) plus a 64-byte buffer.
const FILE_DIGEST_SLOT_LEN: usize = 2 + 64;

/// The contents of a tpm2-tools PCR file: which PCRs, and their values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrFile {
    selection: PcrSelection,
    values: PcrValues,
}

impl PcrFile {
    /// Parses the file `tpm2_quote -o FILE` / `tpm2_pcrread -o FILE` write.
    ///
    /// tpm2-tools 5.4 (`pcr_fwrite_serialized` in `lib/pcr.c`) dumps C
    /// structs in host byte order, so this reads the x86-64/aarch64
    /// little-endian layout, confirmed on real output:
    ///
    /// ```text
    /// TPML_PCR_SELECTION  u32 count; 16 x { u16 hash; u8 sizeofSelect; u8 pcrSelect[4]; u8 pad }
    /// u32                 number of TPML_DIGEST lists
    /// TPML_DIGEST[n]      u32 count; 8 x { u16 size; u8 buffer[64] }
    /// ```
    ///
    /// The digests, taken list by list, are the selected PCR values in
    /// selection order. Unused array slots, padding and buffer bytes past a
    /// digest's size are not read: tpm2-tools does not promise their contents.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(bytes);
        let selection = read_file_selection(&mut r)?;

        let lists = r
            .u32_le()
            .map_err(ParseError::truncated(Field::DigestListCount))?;
        let lists = capped_count(lists, MAX_PCR_FILE_DIGEST_LISTS, Field::DigestListCount)?;
        let mut digests: Vec<&[u8]> = Vec::new();
        for _ in 0..lists {
            let count = r
                .u32_le()
                .map_err(ParseError::truncated(Field::DigestCount))?;
            let count = capped_count(count, FILE_DIGESTS_PER_LIST, Field::DigestCount)?;
            for slot in 0..FILE_DIGESTS_PER_LIST {
                let size = r.u16_le().map_err(ParseError::truncated(Field::PcrValue))?;
                let buffer = wire::bytes(&mut r, Field::PcrValue, FILE_DIGEST_SLOT_LEN - 2)?;
                if slot < count {
                    let len = usize::from(size);
                    let digest = buffer.get(..len).ok_or(ParseError::TooLarge {
                        field: Field::PcrValue,
                        len,
                        max: buffer.len(),
                    })?;
                    digests.push(digest);
                }
            }
        }
        wire::finish(&r, Structure::PcrFile)?;

        if digests.len() != selection.len() {
            return Err(ParseError::PcrCountMismatch {
                selected: selection.len(),
                supplied: digests.len(),
            });
        }
        let mut values = PcrValues::new();
        for ((alg, index), digest) in selection.iter().zip(digests) {
            values
                .insert(alg, u32::from(index), digest.to_vec())
                .map_err(|e| match e {
                    PcrValueError::WrongDigestLength { len, expected, .. } => {
                        ParseError::WrongLength {
                            field: Field::PcrValue,
                            len,
                            expected,
                        }
                    }
                    _ => ParseError::PcrIndexOutOfRange {
                        alg,
                        index: u32::from(index),
                    },
                })?;
        }
        Ok(Self { selection, values })
    }

    /// The PCRs the file covers, banks in the order tpm2-tools quoted them.
    pub fn selection(&self) -> &PcrSelection {
        &self.selection
    }

    /// The PCR values.
    pub fn values(&self) -> &PcrValues {
        &self.values
    }

    /// The PCR values, by value.
    pub fn into_values(self) -> PcrValues {
        self.values
    }
    /// Writes `values` in the layout [`PcrFile::parse`] reads (banks in
    /// TPM_ALG_ID order, indices ascending, sizeofSelect 3), so tools and
    /// tests can hand PCR values to `tpm2_checkquote` or `keyward debug`.
    /// `None` when the values need more banks or lists than the format holds.
    pub fn encode(values: &PcrValues) -> Option<Vec<u8>> {
        let banks: Vec<HashAlg> = HashAlg::ALL
            .into_iter()
            .filter(|a| values.bank(*a).is_some())
            .collect();
        if banks.len() > FILE_SELECTION_SLOTS {
            return None;
        }
        let mut out = Vec::new();
        out.extend_from_slice(&u32::try_from(banks.len()).ok()?.to_le_bytes());
        for slot in 0..FILE_SELECTION_SLOTS {
            let mut entry = [0u8; FILE_SELECTION_SLOT_LEN];
            if let Some(alg) = banks.get(slot) {
                let [lo, hi] = alg.tpm_alg_id().to_le_bytes();
                let mut bitmap = [0u8; 3];
                for index in values.bank(*alg)?.keys() {
                    *bitmap.get_mut(usize::from(index / 8))? |= 1 << (index % 8);
                }
                let [a, b, c] = bitmap;
                entry = [lo, hi, 3, a, b, c, 0, 0];
            }
            out.extend_from_slice(&entry);
        }
        let digests: Vec<&[u8]> = values.iter().map(|(_, _, v)| v).collect();
        let lists: Vec<&[&[u8]]> = digests.chunks(FILE_DIGESTS_PER_LIST).collect();
        if lists.len() > MAX_PCR_FILE_DIGEST_LISTS {
            return None;
        }
        out.extend_from_slice(&u32::try_from(lists.len()).ok()?.to_le_bytes());
        for list in lists {
            out.extend_from_slice(&u32::try_from(list.len()).ok()?.to_le_bytes());
            for slot in 0..FILE_DIGESTS_PER_LIST {
                let digest = list.get(slot).copied().unwrap_or_default();
                let mut buffer = [0u8; FILE_DIGEST_SLOT_LEN - 2];
                buffer.get_mut(..digest.len())?.copy_from_slice(digest);
                out.extend_from_slice(&u16::try_from(digest.len()).ok()?.to_le_bytes());
                out.extend_from_slice(&buffer);
            }
        }
        Some(out)
    }
}

fn read_file_selection(r: &mut Reader<'_>) -> Result<PcrSelection, ParseError> {
    let count = r
        .u32_le()
        .map_err(ParseError::truncated(Field::PcrBankCount))?;
    let count = capped_count(count, MAX_PCR_BANKS, Field::PcrBankCount)?;
    let mut builder = Builder::default();
    for slot in 0..FILE_SELECTION_SLOTS {
        let raw = wire::bytes(r, Field::PcrSelectBitmap, FILE_SELECTION_SLOT_LEN)?;
        if slot >= count {
            continue;
        }
        let mut entry = Reader::new(raw);
        let id = entry
            .u16_le()
            .map_err(ParseError::truncated(Field::PcrBankHash))?;
        let size = wire::u8(&mut entry, Field::PcrSelectSize)?;
        check_size_of_select(size)?;
        let bitmap = wire::bytes(&mut entry, Field::PcrSelectBitmap, usize::from(size))?;
        builder.push(id, bitmap)?;
    }
    Ok(builder.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_round_trips_through_parse_and_matches_tpm2_quote_output() {
        let real = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/tpm/quote_rsa.pcrs"
        ))
        .unwrap();
        let parsed = PcrFile::parse(&real).unwrap();
        let encoded = PcrFile::encode(parsed.values()).unwrap();
        assert_eq!(PcrFile::parse(&encoded).unwrap(), parsed);
        // Byte-identical to tpm2-tools except in bytes it leaves undefined
        // (array padding and unused slots): compare what the parser reads.
        assert_eq!(encoded.len(), real.len());
        let mut two = PcrValues::new();
        two.insert(HashAlg::Sha1, 0, vec![1; 20]).unwrap();
        two.insert(HashAlg::Sha256, 23, vec![2; 32]).unwrap();
        assert_eq!(
            PcrFile::parse(&PcrFile::encode(&two).unwrap())
                .unwrap()
                .into_values(),
            two
        );
    }

    fn selection_bytes(banks: &[(u16, &[u8])]) -> Vec<u8> {
        let mut out = u32::try_from(banks.len()).unwrap().to_be_bytes().to_vec();
        for (id, bitmap) in banks {
            out.extend_from_slice(&id.to_be_bytes());
            out.push(u8::try_from(bitmap.len()).unwrap());
            out.extend_from_slice(bitmap);
        }
        out
    }

    #[test]
    fn parses_banks_in_wire_order() {
        let s = PcrSelection::parse(&selection_bytes(&[
            (0x000b, &[0x01, 0x00, 0x80]),
            (0x0004, &[0x81, 0x00, 0x00, 0x00]),
        ]))
        .unwrap();
        let all: Vec<_> = s.iter().collect();
        assert_eq!(
            all,
            [
                (HashAlg::Sha256, 0),
                (HashAlg::Sha256, 23),
                (HashAlg::Sha1, 0),
                (HashAlg::Sha1, 7)
            ]
        );
        assert_eq!(s.len(), 4);
        assert!(s.contains(HashAlg::Sha1, 7));
        assert!(!s.contains(HashAlg::Sha1, 23));
        assert_eq!(
            s.banks().collect::<Vec<_>>(),
            [HashAlg::Sha256, HashAlg::Sha1]
        );
    }

    #[test]
    fn empty_list_is_well_formed() {
        let s = PcrSelection::parse(&[0, 0, 0, 0]).unwrap();
        assert!(s.is_empty());
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn rejects_unknown_hash() {
        assert_eq!(
            PcrSelection::parse(&selection_bytes(&[(0x0012, &[1, 0, 0])])),
            Err(ParseError::UnknownAlgorithm {
                field: Field::PcrBankHash,
                id: 0x0012
            })
        );
    }

    #[test]
    fn rejects_duplicate_bank() {
        assert_eq!(
            PcrSelection::parse(&selection_bytes(&[
                (0x000b, &[1, 0, 0]),
                (0x000b, &[2, 0, 0])
            ])),
            Err(ParseError::DuplicatePcrBank {
                alg: HashAlg::Sha256
            })
        );
    }

    #[test]
    fn rejects_empty_bank() {
        assert_eq!(
            PcrSelection::parse(&selection_bytes(&[(0x000b, &[0, 0, 0])])),
            Err(ParseError::EmptyPcrBank {
                alg: HashAlg::Sha256
            })
        );
    }

    #[test]
    fn rejects_size_of_select_outside_3_to_4() {
        assert_eq!(
            PcrSelection::parse(&selection_bytes(&[(0x000b, &[1, 0])])),
            Err(ParseError::InvalidValue {
                field: Field::PcrSelectSize,
                value: 2
            })
        );
        assert_eq!(
            PcrSelection::parse(&selection_bytes(&[(0x000b, &[1, 0, 0, 0, 0])])),
            Err(ParseError::InvalidValue {
                field: Field::PcrSelectSize,
                value: 5
            })
        );
    }

    #[test]
    fn rejects_pcr_above_23() {
        assert_eq!(
            PcrSelection::parse(&selection_bytes(&[(0x000b, &[1, 0, 0, 0x01])])),
            Err(ParseError::PcrIndexOutOfRange {
                alg: HashAlg::Sha256,
                index: 24
            })
        );
    }

    #[test]
    fn rejects_too_many_banks_before_reading_them() {
        assert_eq!(
            PcrSelection::parse(&[0, 0, 0, 5]),
            Err(ParseError::TooLarge {
                field: Field::PcrBankCount,
                len: 5,
                max: 4
            })
        );
    }

    #[test]
    fn rejects_trailing_bytes() {
        let mut bytes = selection_bytes(&[(0x000b, &[1, 0, 0])]);
        bytes.push(0);
        assert_eq!(
            PcrSelection::parse(&bytes),
            Err(ParseError::TrailingBytes {
                structure: Structure::PcrSelection,
                count: 1
            })
        );
    }

    #[test]
    fn matches_requires_the_exact_set() {
        let s = PcrSelection::parse(&selection_bytes(&[(0x000b, &[0x03, 0, 0])])).unwrap();
        let mut v = PcrValues::new();
        v.insert(HashAlg::Sha256, 0, vec![0; 32]).unwrap();
        assert!(!s.matches(&v));
        v.insert(HashAlg::Sha256, 1, vec![0; 32]).unwrap();
        assert!(s.matches(&v));
        v.insert(HashAlg::Sha256, 2, vec![0; 32]).unwrap();
        assert!(!s.matches(&v));
    }

    fn testdata(name: &str) -> Vec<u8> {
        let path = format!("{}/testdata/tpm/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn parses_real_tpm2_quote_pcr_file() {
        let file = PcrFile::parse(&testdata("quote_rsa.pcrs")).unwrap();
        let indices: Vec<_> = file.selection().iter().map(|(_, i)| i).collect();
        assert_eq!(indices, [0, 1, 2, 3, 4, 5, 6, 7, 23]);
        assert_eq!(file.values().len(), 9);
        // generate.sh extends PCR 0 once, from zero, with SHA-256("keyward pcr 0").
        let extended = HashAlg::Sha256.hash(&[b"keyward pcr 0"]);
        let pcr0 = HashAlg::Sha256.extend(&[0; 32], &extended);
        assert_eq!(file.values().get(HashAlg::Sha256, 0), Some(&pcr0[..]));
    }

    #[test]
    fn parses_real_two_bank_pcr_file() {
        let file = PcrFile::parse(&testdata("quote_rsa_two_banks.pcrs")).unwrap();
        let all: Vec<_> = file.selection().iter().collect();
        assert_eq!(
            all,
            [
                (HashAlg::Sha256, 0),
                (HashAlg::Sha256, 23),
                (HashAlg::Sha1, 0),
                (HashAlg::Sha1, 7)
            ]
        );
        assert_eq!(
            file.values().get(HashAlg::Sha1, 7).map(<[u8]>::len),
            Some(20)
        );
        assert_eq!(file.clone().into_values(), *file.values());
    }

    #[test]
    fn pcr_file_rejects_trailing_bytes() {
        let mut bytes = testdata("quote_rsa.pcrs");
        bytes.push(0);
        assert_eq!(
            PcrFile::parse(&bytes),
            Err(ParseError::TrailingBytes {
                structure: Structure::PcrFile,
                count: 1
            })
        );
    }

    #[test]
    fn pcr_file_rejects_a_missing_value() {
        let mut bytes = testdata("quote_rsa.pcrs");
        // Second TPML_DIGEST (after 132 + 4 + 532 bytes) claims 0 digests instead of 1.
        let at = 132 + 4 + 532;
        bytes[at..at + 4].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            PcrFile::parse(&bytes),
            Err(ParseError::PcrCountMismatch {
                selected: 9,
                supplied: 8
            })
        );
    }

    #[test]
    fn pcr_file_rejects_a_value_of_the_wrong_length() {
        let mut bytes = testdata("quote_rsa.pcrs");
        // Size of the first digest in the first list.
        let at = 132 + 4 + 4;
        bytes[at..at + 2].copy_from_slice(&20u16.to_le_bytes());
        assert_eq!(
            PcrFile::parse(&bytes),
            Err(ParseError::WrongLength {
                field: Field::PcrValue,
                len: 20,
                expected: 32
            })
        );
        bytes[at..at + 2].copy_from_slice(&65u16.to_le_bytes());
        assert_eq!(
            PcrFile::parse(&bytes),
            Err(ParseError::TooLarge {
                field: Field::PcrValue,
                len: 65,
                max: 64
            })
        );
    }

    #[test]
    fn pcr_file_caps_list_counts() {
        let mut bytes = testdata("quote_rsa.pcrs");
        bytes[132..136].copy_from_slice(&33u32.to_le_bytes());
        assert_eq!(
            PcrFile::parse(&bytes),
            Err(ParseError::TooLarge {
                field: Field::DigestListCount,
                len: 33,
                max: 32
            })
        );
        let mut bytes = testdata("quote_rsa.pcrs");
        bytes[136..140].copy_from_slice(&9u32.to_le_bytes());
        assert_eq!(
            PcrFile::parse(&bytes),
            Err(ParseError::TooLarge {
                field: Field::DigestCount,
                len: 9,
                max: 8
            })
        );
    }

    #[test]
    fn pcr_file_truncated_anywhere_is_an_error() {
        let bytes = testdata("quote_rsa_two_banks.pcrs");
        for len in 0..bytes.len() {
            assert!(
                PcrFile::parse(&bytes[..len]).is_err(),
                "accepted {len} bytes"
            );
        }
    }
}
