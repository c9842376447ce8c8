//! TPMS_ATTEST (TPM 2.0 Part 2, §10.12.12), the structure a TPM signs for
//! TPM2_Quote, TPM2_Certify and the other attestation commands.

use super::constants::{
    MAX_ATTEST_SIZE, MAX_DATA_SIZE, MAX_DIGEST_SIZE, MAX_NAME_SIZE, TPM_ST_ATTEST_QUOTE,
};
use super::error::{Field, ParseError, Structure};
use super::pcr::PcrSelection;
use super::wire;
use crate::reader::Reader;

/// TPMS_CLOCK_INFO (Part 2, §10.11.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockInfo {
    /// Milliseconds the TPM has been powered since it was last cleared;
    /// never decreases while `safe` holds.
    pub clock: u64,
    /// TPM resets (power cycles without resume) since the last clear.
    pub reset_count: u32,
    /// TPM2_Shutdown(STATE) / TPM2_Startup(STATE) cycles since the last reset.
    pub restart_count: u32,
    /// Whether `clock` is known not to have been reported lower before.
    pub safe: bool,
}

/// TPMS_QUOTE_INFO (Part 2, §10.12.4): what TPM2_Quote attests to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteInfo {
    pcr_selection: PcrSelection,
    pcr_digest: Vec<u8>,
}

impl QuoteInfo {
    /// The PCRs quoted, in the order the digest covers them.
    pub fn pcr_selection(&self) -> &PcrSelection {
        &self.pcr_selection
    }

    /// pcrDigest: the hash of the selected PCR values, concatenated.
    pub fn pcr_digest(&self) -> &[u8] {
        &self.pcr_digest
    }
}

/// The `attested` union of a TPMS_ATTEST.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Attested {
    /// TPM_ST_ATTEST_QUOTE, parsed in full.
    Quote(QuoteInfo),
    /// Any other type: certify, creation, audit, time, NV. Its body is not
    /// parsed, only bounded by [`MAX_ATTEST_SIZE`]; the verifier accepts
    /// nothing but quotes.
    Other {
        /// The TPM_ST value.
        attest_type: u16,
    },
}

/// A parsed TPMS_ATTEST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attest {
    magic: u32,
    attest_type: u16,
    qualified_signer: Vec<u8>,
    extra_data: Vec<u8>,
    clock_info: ClockInfo,
    firmware_version: u64,
    attested: Attested,
}

impl Attest {
    /// Parses a marshalled TPMS_ATTEST (the contents of a TPM2B_ATTEST, as
    /// `tpm2_quote -m` writes it).
    ///
    /// The magic and type are reported, not checked: whether they are
    /// acceptable is the verifier's decision ([`crate::quote::verify_quote`]).
    /// A quote body must end exactly at the end of the input.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        if bytes.len() > MAX_ATTEST_SIZE {
            return Err(ParseError::TooLarge {
                field: Field::AttestLength,
                len: bytes.len(),
                max: MAX_ATTEST_SIZE,
            });
        }
        let mut r = Reader::new(bytes);
        let magic = wire::u32(&mut r, Field::Magic)?;
        let attest_type = wire::u16(&mut r, Field::AttestType)?;
        let qualified_signer = wire::tpm2b(&mut r, Field::QualifiedSigner, MAX_NAME_SIZE)?;
        let extra_data = wire::tpm2b(&mut r, Field::ExtraData, MAX_DATA_SIZE)?;
        let clock_info = read_clock_info(&mut r)?;
        let firmware_version = wire::u64(&mut r, Field::FirmwareVersion)?;
        let attested = if attest_type == TPM_ST_ATTEST_QUOTE {
            let pcr_selection = PcrSelection::read(&mut r)?;
            let pcr_digest = wire::tpm2b(&mut r, Field::PcrDigest, MAX_DIGEST_SIZE)?;
            wire::finish(&r, Structure::Attest)?;
            Attested::Quote(QuoteInfo {
                pcr_selection,
                pcr_digest: pcr_digest.to_vec(),
            })
        } else {
            Attested::Other { attest_type }
        };
        Ok(Self {
            magic,
            attest_type,
            qualified_signer: qualified_signer.to_vec(),
            extra_data: extra_data.to_vec(),
            clock_info,
            firmware_version,
            attested,
        })
    }

    /// magic: TPM_GENERATED_VALUE in anything the TPM produced.
    pub fn magic(&self) -> u32 {
        self.magic
    }

    /// type: the TPM_ST_ATTEST_* value.
    pub fn attest_type(&self) -> u16 {
        self.attest_type
    }

    /// qualifiedSigner: the qualified name of the signing key (TPM2B_NAME contents).
    pub fn qualified_signer(&self) -> &[u8] {
        &self.qualified_signer
    }

    /// extraData: the caller's qualifyingData, typically a nonce.
    pub fn extra_data(&self) -> &[u8] {
        &self.extra_data
    }

    /// clockInfo.
    pub fn clock_info(&self) -> ClockInfo {
        self.clock_info
    }

    /// firmwareVersion: vendor-defined TPM firmware version.
    pub fn firmware_version(&self) -> u64 {
        self.firmware_version
    }

    /// The attested body.
    pub fn attested(&self) -> &Attested {
        &self.attested
    }
}

fn read_clock_info(r: &mut Reader<'_>) -> Result<ClockInfo, ParseError> {
    let clock = wire::u64(r, Field::ClockInfo)?;
    let reset_count = wire::u32(r, Field::ClockInfo)?;
    let restart_count = wire::u32(r, Field::ClockInfo)?;
    // TPMI_YES_NO (Part 2, §9.2) admits only NO (0) and YES (1).
    let safe = match wire::u8(r, Field::ClockSafe)? {
        0 => false,
        1 => true,
        value => {
            return Err(ParseError::InvalidValue {
                field: Field::ClockSafe,
                value: u32::from(value),
            });
        }
    };
    Ok(ClockInfo {
        clock,
        reset_count,
        restart_count,
        safe,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::HashAlg;
    use crate::tpm::constants::{TPM_GENERATED_VALUE, TPM_ST_ATTEST_CERTIFY};
    use crate::tpm::public::tests::testdata;

    /// Offset of clockInfo.safe in a quote with a SHA-256 signer name and a
    /// 32-byte extraData: magic 4, type 2, TPM2B_NAME 2 + 34, TPM2B_DATA
    /// 2 + 32, clock 8, resetCount 4, restartCount 4.
    const SAFE_AT: usize = 92;

    #[test]
    fn parses_a_real_quote() {
        let attest = Attest::parse(&testdata("quote_rsa.msg")).unwrap();
        assert_eq!(attest.magic(), TPM_GENERATED_VALUE);
        assert_eq!(attest.attest_type(), TPM_ST_ATTEST_QUOTE);
        let nonce = String::from_utf8(testdata("nonce.hex")).unwrap();
        assert_eq!(attest.extra_data(), &hex::decode(nonce.trim()).unwrap()[..]);
        assert_eq!(attest.qualified_signer().len(), 34);
        assert!(attest.clock_info().safe);
        let Attested::Quote(quote) = attest.attested() else {
            panic!("not a quote")
        };
        assert_eq!(quote.pcr_selection().len(), 9);
        assert_eq!(quote.pcr_digest().len(), 32);
        assert!(quote.pcr_selection().contains(HashAlg::Sha256, 23));
    }

    #[test]
    fn reports_other_types_without_parsing_them() {
        let attest = Attest::parse(&testdata("certify_rsa.msg")).unwrap();
        assert_eq!(attest.magic(), TPM_GENERATED_VALUE);
        assert_eq!(
            attest.attested(),
            &Attested::Other {
                attest_type: TPM_ST_ATTEST_CERTIFY
            }
        );
    }

    #[test]
    fn keeps_a_wrong_magic_for_the_verifier() {
        let attest = Attest::parse(&testdata("forged_quote_rsa.msg")).unwrap();
        assert_eq!(attest.magic(), 0xfe54_4347);
    }

    #[test]
    fn rejects_a_safe_flag_that_is_not_yes_or_no() {
        let mut bytes = testdata("quote_rsa.msg");
        assert_eq!(bytes[SAFE_AT], 1);
        bytes[SAFE_AT] = 2;
        assert_eq!(
            Attest::parse(&bytes),
            Err(ParseError::InvalidValue {
                field: Field::ClockSafe,
                value: 2
            })
        );
    }

    #[test]
    fn rejects_trailing_bytes_after_a_quote() {
        let mut bytes = testdata("quote_rsa.msg");
        bytes.push(0);
        assert_eq!(
            Attest::parse(&bytes),
            Err(ParseError::TrailingBytes {
                structure: Structure::Attest,
                count: 1
            })
        );
    }

    #[test]
    fn caps_lengths() {
        let mut bytes = testdata("quote_rsa.msg");
        // qualifiedSigner size.
        bytes[6..8].copy_from_slice(&67u16.to_be_bytes());
        assert_eq!(
            Attest::parse(&bytes),
            Err(ParseError::TooLarge {
                field: Field::QualifiedSigner,
                len: 67,
                max: 66
            })
        );
        assert_eq!(
            Attest::parse(&vec![0; MAX_ATTEST_SIZE + 1]),
            Err(ParseError::TooLarge {
                field: Field::AttestLength,
                len: MAX_ATTEST_SIZE + 1,
                max: MAX_ATTEST_SIZE
            })
        );
    }

    #[test]
    fn truncated_quotes_are_errors() {
        let bytes = testdata("quote_rsa_two_banks.msg");
        for len in 0..bytes.len() {
            assert!(
                Attest::parse(&bytes[..len]).is_err(),
                "accepted {len} bytes"
            );
        }
    }
}
