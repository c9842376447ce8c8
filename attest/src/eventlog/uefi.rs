//! UEFI structures found in event data, and UCS-2 / UTF-16 strings.

/// EFI_GLOBAL_VARIABLE, 8be4df61-93ca-11d2-aa0d-00e098032b8c, in its EFI_GUID
/// byte order (first three fields little-endian).
pub(super) const EFI_GLOBAL_VARIABLE: [u8; 16] = [
    0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11, 0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c,
];

/// A parsed UEFI_VARIABLE_DATA (PFP §10, the event data of the
/// EV_EFI_VARIABLE_* events).
#[derive(Debug, Clone, Copy)]
pub(super) struct VariableData<'a> {
    pub(super) vendor_guid: [u8; 16],
    /// The name, UTF-16LE, without terminator.
    pub(super) unicode_name: &'a [u8],
    pub(super) data: &'a [u8],
}

impl VariableData<'_> {
    /// Strict parse: both lengths must account for every byte.
    pub(super) fn parse(bytes: &[u8]) -> Option<VariableData<'_>> {
        let mut r = crate::reader::Reader::new(bytes);
        let vendor_guid = r.array::<16>().ok()?;
        let name_chars = usize::try_from(r.u64_le().ok()?).ok()?;
        let data_len = usize::try_from(r.u64_le().ok()?).ok()?;
        let unicode_name = r.bytes(name_chars.checked_mul(2)?).ok()?;
        let data = r.bytes(data_len).ok()?;
        r.is_empty().then_some(VariableData {
            vendor_guid,
            unicode_name,
            data,
        })
    }

    /// True when this is the EFI global variable `name`.
    pub(super) fn is_global(&self, name: &str) -> bool {
        self.vendor_guid == EFI_GLOBAL_VARIABLE && utf16le_eq(self.unicode_name, name)
    }
}

/// Compares UTF-16LE bytes with a string, without allocating.
fn utf16le_eq(bytes: &[u8], s: &str) -> bool {
    let mut units = s.encode_utf16();
    let mut chunks = bytes.chunks_exact(2);
    for chunk in chunks.by_ref() {
        let unit = match chunk {
            [lo, hi] => u16::from_le_bytes([*lo, *hi]),
            _ => return false,
        };
        if units.next() != Some(unit) {
            return false;
        }
    }
    chunks.remainder().is_empty() && units.next().is_none()
}

/// Decodes a NUL-terminated UTF-16LE (or UCS-2) string: even length, exactly
/// one NUL at the end, no unpaired surrogates. Returns the text without the NUL.
pub(super) fn decode_utf16le_nul_terminated(bytes: &[u8]) -> Option<String> {
    let chunks = bytes.chunks_exact(2);
    if !chunks.remainder().is_empty() {
        return None;
    }
    let units = chunks.filter_map(|c| match c {
        [lo, hi] => Some(u16::from_le_bytes([*lo, *hi])),
        _ => None,
    });
    let mut text = String::with_capacity(bytes.len() / 2);
    let mut terminated = false;
    for decoded in char::decode_utf16(units) {
        let c = decoded.ok()?;
        if terminated {
            return None;
        }
        if c == '\0' {
            terminated = true;
        } else {
            text.push(c);
        }
    }
    terminated.then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    #[test]
    fn parses_a_secure_boot_variable() {
        let mut bytes = EFI_GLOBAL_VARIABLE.to_vec();
        bytes.extend_from_slice(&10u64.to_le_bytes());
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.extend_from_slice(&utf16("SecureBoot"));
        bytes.push(1);
        let var = VariableData::parse(&bytes).unwrap();
        assert!(var.is_global("SecureBoot"));
        assert!(!var.is_global("SecureBoo"));
        assert_eq!(var.data, &[1]);
        bytes.push(0);
        assert!(VariableData::parse(&bytes).is_none(), "trailing byte");
        assert!(VariableData::parse(&bytes[..40]).is_none(), "truncated");
    }

    #[test]
    fn decodes_only_nul_terminated_utf16() {
        assert_eq!(
            decode_utf16le_nul_terminated(&utf16("ro quiet\0")).as_deref(),
            Some("ro quiet")
        );
        assert_eq!(decode_utf16le_nul_terminated(&utf16("ro quiet")), None);
        assert_eq!(decode_utf16le_nul_terminated(&utf16("ro\0quiet\0")), None);
        assert_eq!(decode_utf16le_nul_terminated(&[0x72, 0x00, 0x00]), None);
        assert_eq!(
            decode_utf16le_nul_terminated(&[0x00, 0xd8, 0x00, 0x00]),
            None
        );
    }
}
