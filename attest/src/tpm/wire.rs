//! Field readers shared by the TPM parsers: every read names its field, so a
//! failure says where the input went wrong.
//!
//! TPM 2.0 Library Part 1, §18.5 (Marshaling): integers are big-endian; a
//! TPM2B is a UINT16 byte count followed by that many bytes.

use super::error::{Field, ParseError, Structure};
use crate::digest::HashAlg;
use crate::reader::Reader;

pub(crate) fn u8(r: &mut Reader<'_>, field: Field) -> Result<u8, ParseError> {
    r.u8().map_err(ParseError::truncated(field))
}

pub(crate) fn u16(r: &mut Reader<'_>, field: Field) -> Result<u16, ParseError> {
    r.u16_be().map_err(ParseError::truncated(field))
}

pub(crate) fn u32(r: &mut Reader<'_>, field: Field) -> Result<u32, ParseError> {
    r.u32_be().map_err(ParseError::truncated(field))
}

pub(crate) fn u64(r: &mut Reader<'_>, field: Field) -> Result<u64, ParseError> {
    r.u64_be().map_err(ParseError::truncated(field))
}

pub(crate) fn bytes<'a>(
    r: &mut Reader<'a>,
    field: Field,
    len: usize,
) -> Result<&'a [u8], ParseError> {
    r.bytes(len).map_err(ParseError::truncated(field))
}

/// Reads a TPM2B whose buffer may hold at most `max` bytes. The cap is the
/// size of the buffer in the structure's definition (Part 2), so a larger
/// size is one no TPM can produce.
pub(crate) fn tpm2b<'a>(
    r: &mut Reader<'a>,
    field: Field,
    max: usize,
) -> Result<&'a [u8], ParseError> {
    let len = usize::from(u16(r, field)?);
    if len > max {
        return Err(ParseError::TooLarge { field, len, max });
    }
    bytes(r, field, len)
}

/// Reads a TPMI_ALG_HASH that must name one of the hashes in [`HashAlg`];
/// TPM_ALG_NULL and every other identifier are rejected.
pub(crate) fn hash_alg(r: &mut Reader<'_>, field: Field) -> Result<HashAlg, ParseError> {
    let id = u16(r, field)?;
    HashAlg::from_tpm_alg_id(id).ok_or(ParseError::UnknownAlgorithm { field, id })
}

/// Rejects input left over after `structure`.
pub(crate) fn finish(r: &Reader<'_>, structure: Structure) -> Result<(), ParseError> {
    if r.is_empty() {
        Ok(())
    } else {
        Err(ParseError::TrailingBytes {
            structure,
            count: r.remaining(),
        })
    }
}

/// Appends a TPM2B (UINT16 size, then the bytes). `None` when `data` does
/// not fit a UINT16 size.
pub(crate) fn put_tpm2b(out: &mut Vec<u8>, data: &[u8]) -> Option<()> {
    let len = u16::try_from(data.len()).ok()?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data);
    Some(())
}
