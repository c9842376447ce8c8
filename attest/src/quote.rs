//! TPM2_Quote verification (TPM 2.0 Part 3, §18.4).
//!
//! [`verify_quote`] takes the quote exactly as `tpm2_quote` writes it
//! (TPMS_ATTEST bytes, TPMT_SIGNATURE bytes), the AK, the PCR values the
//! host claims and the qualifying data the verifier expects, and returns a
//! [`VerifiedQuote`] only if all checks pass, in this order:
//!
//! 1. both structures parse ([`QuoteError::MalformedAttest`],
//!    [`QuoteError::MalformedSignature`]);
//! 2. magic is TPM_GENERATED_VALUE ([`QuoteError::NotTpmGenerated`]);
//! 3. type is TPM_ST_ATTEST_QUOTE ([`QuoteError::NotAQuote`]);
//! 4. the signature's scheme is one the AK permits and the verifier
//!    supports, and it verifies over the TPMS_ATTEST bytes
//!    ([`QuoteError::SchemeNotPermitted`], [`QuoteError::UnsupportedSignature`],
//!    [`QuoteError::UnsupportedRsaKeySize`], [`QuoteError::BadSignature`]);
//! 5. extraData equals the expected qualifying data, compared in constant
//!    time ([`QuoteError::NonceMismatch`]);
//! 6. the quoted PCR selection is non-empty and is exactly the set of PCR
//!    values supplied, and pcrDigest is the hash of those values in
//!    selection order ([`QuoteError::EmptyPcrSelection`],
//!    [`QuoteError::PcrSelectionMismatch`], [`QuoteError::PcrDigestMismatch`]).
//!
//! # Why the signature comes before the nonce
//! Magic and type are checked first: they are cheap, need no key, and name
//! the TPM2_Sign forgery precisely. Then the signature, so that every later
//! error describes content the AK really signed: `NonceMismatch` means "this
//! TPM quoted for another challenge" (a replay worth auditing as such), not
//! "someone sent noise". Neither check involves a secret, so the order leaks
//! nothing. The cost, one signature verification for a replayed quote, is
//! bounded because the vault consumes the nonce before it verifies a quote.

use crate::digest::{HashAlg, PcrValues};
use crate::key::{EccCurve, EccPublicKey, PublicKey, RsaPublicKey};
use crate::tpm::ParseError;
use crate::tpm::attest::{Attest, Attested, ClockInfo};
use crate::tpm::constants::TPM_GENERATED_VALUE;
use crate::tpm::pcr::PcrSelection;
use crate::tpm::public::{KeyScheme, TpmPublic};
use crate::tpm::signature::{Signature, SignatureScheme};

/// RSA modulus sizes accepted for AKs (the sizes TCG profiles require TPMs
/// to support; smaller keys are too weak, larger ones are not AKs in practice).
pub const RSA_AK_BITS: [usize; 2] = [2048, 3072];

/// The key a quote must be signed with.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum QuoteKey<'a> {
    /// An AK's public area. If its scheme is not NULL (restricted signing
    /// keys always have one), the signature must use exactly that scheme
    /// and hash: a TPM signs with a restricted key's own scheme only
    /// (Part 3, §18.4, TPM_RC_SCHEME).
    Tpm(&'a TpmPublic),
    /// A bare public key (from PEM or SubjectPublicKeyInfo): any supported
    /// scheme of its key type is accepted. Prefer [`QuoteKey::Tpm`], which
    /// also pins the scheme.
    Public(&'a PublicKey),
}

/// Why a quote was rejected. Variants are listed in the order they are checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuoteError {
    /// The quote message is not a well-formed TPMS_ATTEST.
    #[error("malformed TPMS_ATTEST")]
    MalformedAttest {
        /// What is wrong with it.
        source: ParseError,
    },
    /// The signature is not a well-formed TPMT_SIGNATURE of a supported kind.
    #[error("malformed TPMT_SIGNATURE")]
    MalformedSignature {
        /// What is wrong with it.
        source: ParseError,
    },
    /// The magic is not TPM_GENERATED_VALUE: the TPM did not produce this
    /// structure (a TPM2_Sign output passed off as a quote).
    #[error("magic 0x{magic:08x} is not TPM_GENERATED_VALUE")]
    NotTpmGenerated {
        /// The magic found.
        magic: u32,
    },
    /// The structure is TPM-generated but is not a quote (e.g. a TPM2_Certify output).
    #[error("attestation type 0x{attest_type:04x} is not TPM_ST_ATTEST_QUOTE")]
    NotAQuote {
        /// The TPM_ST value found.
        attest_type: u16,
    },
    /// The signature's scheme does not fit the key type, or is not the AK's scheme.
    #[error("signature scheme {scheme:?} with {hash:?} is not permitted for this key")]
    SchemeNotPermitted {
        /// The signature's scheme.
        scheme: SignatureScheme,
        /// The signature's hash.
        hash: HashAlg,
    },
    /// The scheme, hash and curve combination is not one the verifier checks
    /// (SHA-1, SHA-512, or ECDSA with a hash other than the curve's).
    #[error("signature scheme {scheme:?} with {hash:?} is not supported")]
    UnsupportedSignature {
        /// The signature's scheme.
        scheme: SignatureScheme,
        /// The signature's hash.
        hash: HashAlg,
    },
    /// The RSA key is not 2048 or 3072 bits.
    #[error("RSA key of {bits} bits is not accepted")]
    UnsupportedRsaKeySize {
        /// The modulus size.
        bits: usize,
    },
    /// The signature does not verify with the key.
    #[error("signature does not verify")]
    BadSignature,
    /// extraData is not the expected qualifying data.
    #[error("qualifying data does not match")]
    NonceMismatch,
    /// The quote covers no PCR.
    #[error("quote selects no PCR")]
    EmptyPcrSelection,
    /// The PCR values supplied are not exactly the PCRs quoted.
    #[error("quote selects {quoted} PCRs, {supplied} values supplied for another set")]
    PcrSelectionMismatch {
        /// PCRs selected in the quote.
        quoted: usize,
        /// PCR values supplied.
        supplied: usize,
    },
    /// pcrDigest is not the digest of the PCR values supplied.
    #[error("PCR values do not match the quoted digest")]
    PcrDigestMismatch,
}

/// A quote that passed [`verify_quote`]: the AK signed these PCR values,
/// clock and qualifying data. Only `verify_quote` constructs it.
#[derive(Debug)]
pub struct VerifiedQuote {
    pcr_values: PcrValues,
    pcr_selection: PcrSelection,
    signature_hash: HashAlg,
    clock_info: ClockInfo,
    firmware_version: u64,
    qualified_signer: Vec<u8>,
    extra_data: Vec<u8>,
}

impl VerifiedQuote {
    /// The quoted PCR values: exactly the PCRs the quote selected.
    pub fn pcr_values(&self) -> &PcrValues {
        &self.pcr_values
    }

    /// The quoted selection, banks in the TPM's order.
    pub fn pcr_selection(&self) -> &PcrSelection {
        &self.pcr_selection
    }

    /// The hash of the signature scheme, which is also the hash of pcrDigest.
    pub fn signature_hash(&self) -> HashAlg {
        self.signature_hash
    }

    /// The TPM's clock, reset and restart counts at quote time.
    pub fn clock_info(&self) -> ClockInfo {
        self.clock_info
    }

    /// The TPM firmware version (vendor-defined).
    pub fn firmware_version(&self) -> u64 {
        self.firmware_version
    }

    /// The qualified name of the AK, as the TPM reported it.
    pub fn qualified_signer(&self) -> &[u8] {
        &self.qualified_signer
    }

    /// The qualifying data the quote carries (equal to what was expected).
    pub fn extra_data(&self) -> &[u8] {
        &self.extra_data
    }
}

/// Verifies a TPM2_Quote; see the [module documentation](self) for the checks
/// and their order.
///
/// - `attest`: the marshalled TPMS_ATTEST (`tpm2_quote -m`);
/// - `signature`: the marshalled TPMT_SIGNATURE (`tpm2_quote -s`);
/// - `pcrs`: the values of exactly the quoted PCRs (e.g. from
///   [`crate::tpm::pcr::PcrFile`]);
/// - `expected_extra_data`: the qualifying data the verifier asked for.
pub fn verify_quote(
    key: QuoteKey<'_>,
    attest: &[u8],
    signature: &[u8],
    pcrs: &PcrValues,
    expected_extra_data: &[u8],
) -> Result<VerifiedQuote, QuoteError> {
    let parsed = Attest::parse(attest).map_err(|source| QuoteError::MalformedAttest { source })?;
    let signature =
        Signature::parse(signature).map_err(|source| QuoteError::MalformedSignature { source })?;

    if parsed.magic() != TPM_GENERATED_VALUE {
        return Err(QuoteError::NotTpmGenerated {
            magic: parsed.magic(),
        });
    }
    let Attested::Quote(quote) = parsed.attested() else {
        return Err(QuoteError::NotAQuote {
            attest_type: parsed.attest_type(),
        });
    };
    verify_signature(key, attest, &signature)?;

    if aws_lc_rs::constant_time::verify_slices_are_equal(parsed.extra_data(), expected_extra_data)
        .is_err()
    {
        return Err(QuoteError::NonceMismatch);
    }

    let selection = quote.pcr_selection();
    if selection.is_empty() {
        return Err(QuoteError::EmptyPcrSelection);
    }
    if !selection.matches(pcrs) {
        return Err(QuoteError::PcrSelectionMismatch {
            quoted: selection.len(),
            supplied: pcrs.len(),
        });
    }
    // Part 3, §18.4: pcrDigest is computed with the hash of the signing
    // scheme (not the AK's nameAlg), over the selected PCRs concatenated
    // bank by bank in selection order, ascending index within a bank.
    let hash = signature.hash();
    let mut ctx = ring::digest::Context::new(hash.ring_algorithm());
    for (alg, index) in selection.iter() {
        // `matches` guarantees every selected value is present.
        ctx.update(pcrs.get(alg, index).unwrap_or_default());
    }
    if ctx.finish().as_ref() != quote.pcr_digest() {
        return Err(QuoteError::PcrDigestMismatch);
    }

    Ok(VerifiedQuote {
        pcr_values: pcrs.clone(),
        pcr_selection: selection.clone(),
        signature_hash: hash,
        clock_info: parsed.clock_info(),
        firmware_version: parsed.firmware_version(),
        qualified_signer: parsed.qualified_signer().to_vec(),
        extra_data: parsed.extra_data().to_vec(),
    })
}

/// Checks that the signature's scheme is permitted and supported, then
/// verifies it over `message`.
fn verify_signature(
    key: QuoteKey<'_>,
    message: &[u8],
    signature: &Signature,
) -> Result<(), QuoteError> {
    let scheme = signature.scheme();
    let hash = signature.hash();
    let not_permitted = QuoteError::SchemeNotPermitted { scheme, hash };
    let public = match key {
        QuoteKey::Tpm(ak) => {
            let permitted = match ak.scheme() {
                KeyScheme::Null => true,
                KeyScheme::RsaSsa(h) => scheme == SignatureScheme::RsaSsa && h == hash,
                KeyScheme::RsaPss(h) => scheme == SignatureScheme::RsaPss && h == hash,
                KeyScheme::Ecdsa(h) => scheme == SignatureScheme::Ecdsa && h == hash,
                _ => false,
            };
            if !permitted {
                return Err(not_permitted);
            }
            ak.key()
        }
        QuoteKey::Public(key) => key,
    };

    match (public, signature) {
        (PublicKey::Rsa(rsa), Signature::RsaSsa { signature, .. }) => {
            let params = match hash {
                HashAlg::Sha256 => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                HashAlg::Sha384 => &ring::signature::RSA_PKCS1_2048_8192_SHA384,
                _ => return Err(QuoteError::UnsupportedSignature { scheme, hash }),
            };
            verify_rsa(rsa, params, message, signature)
        }
        (PublicKey::Rsa(rsa), Signature::RsaPss { signature, .. }) => {
            let params = match hash {
                HashAlg::Sha256 => &ring::signature::RSA_PSS_2048_8192_SHA256,
                HashAlg::Sha384 => &ring::signature::RSA_PSS_2048_8192_SHA384,
                _ => return Err(QuoteError::UnsupportedSignature { scheme, hash }),
            };
            verify_rsa(rsa, params, message, signature)
        }
        (PublicKey::Ecc(ecc), Signature::Ecdsa { r, s, .. }) => {
            // The fixed-length ECDSA verifiers pair each curve with its own
            // hash; a TPM may sign P-256 with SHA-384, which is refused.
            // aws-lc-rs, not ring: 50.2 against 53.4 µs per P-256 check
            // (`cargo bench -p keyward-attest --bench attest -- pop`), and
            // every attestation verifies one quote.
            let alg = match (ecc.curve(), hash) {
                (EccCurve::NistP256, HashAlg::Sha256) => {
                    &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED
                }
                (EccCurve::NistP384, HashAlg::Sha384) => {
                    &aws_lc_rs::signature::ECDSA_P384_SHA384_FIXED
                }
                _ => return Err(QuoteError::UnsupportedSignature { scheme, hash }),
            };
            verify_ecdsa(ecc, alg, message, r, s)
        }
        _ => Err(not_permitted),
    }
}

fn verify_rsa(
    key: &RsaPublicKey,
    params: &'static ring::signature::RsaParameters,
    message: &[u8],
    signature: &[u8],
) -> Result<(), QuoteError> {
    if !RSA_AK_BITS.contains(&key.bits()) {
        return Err(QuoteError::UnsupportedRsaKeySize { bits: key.bits() });
    }
    let exponent = key.exponent().to_be_bytes();
    let first = exponent
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(exponent.len());
    let exponent = exponent.get(first..).unwrap_or_default();
    ring::signature::RsaPublicKeyComponents {
        n: key.modulus(),
        e: exponent,
    }
    .verify(params, message, signature)
    .map_err(|_| QuoteError::BadSignature)
}

fn verify_ecdsa(
    key: &EccPublicKey,
    alg: &'static aws_lc_rs::signature::EcdsaVerificationAlgorithm,
    message: &[u8],
    r: &[u8],
    s: &[u8],
) -> Result<(), QuoteError> {
    // The FIXED encoding is r || s, each left-padded to the field length.
    let len = key.curve().field_len();
    let mut fixed = Vec::with_capacity(len.saturating_mul(2));
    for half in [r, s] {
        let first = half.iter().position(|b| *b != 0).unwrap_or(half.len());
        let significant = half.get(first..).unwrap_or_default();
        let padding = len
            .checked_sub(significant.len())
            .ok_or(QuoteError::BadSignature)?;
        fixed.resize(fixed.len().saturating_add(padding), 0);
        fixed.extend_from_slice(significant);
    }
    aws_lc_rs::signature::UnparsedPublicKey::new(alg, key.uncompressed())
        .verify(message, &fixed)
        .map_err(|_| QuoteError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tpm::Structure;
    use crate::tpm::constants::{TPM_ST_ATTEST_CERTIFY, TPM_ST_ATTEST_QUOTE};
    use crate::tpm::pcr::PcrFile;
    use crate::tpm::public::tests::testdata;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

    struct Vector {
        ak: TpmPublic,
        msg: Vec<u8>,
        sig: Vec<u8>,
        pcrs: PcrValues,
        nonce: Vec<u8>,
    }

    fn vector(ak: &str, quote: &str) -> Vector {
        let nonce = String::from_utf8(testdata("nonce.hex")).unwrap();
        Vector {
            ak: TpmPublic::parse(&testdata(&format!("{ak}.pub"))).unwrap(),
            msg: testdata(&format!("{quote}.msg")),
            sig: testdata(&format!("{quote}.sig")),
            pcrs: PcrFile::parse(&testdata(&format!("{quote}.pcrs")))
                .unwrap()
                .into_values(),
            nonce: hex::decode(nonce.trim()).unwrap(),
        }
    }

    impl Vector {
        fn verify(&self) -> Result<VerifiedQuote, QuoteError> {
            verify_quote(
                QuoteKey::Tpm(&self.ak),
                &self.msg,
                &self.sig,
                &self.pcrs,
                &self.nonce,
            )
        }
    }

    fn rsa() -> Vector {
        vector("ak_rsa", "quote_rsa")
    }

    fn ecc() -> Vector {
        vector("ak_ecc", "quote_ecc")
    }

    #[test]
    fn good_rsa_quote_verifies() {
        let v = rsa();
        let verified = v.verify().unwrap();
        assert_eq!(verified.pcr_values(), &v.pcrs);
        assert_eq!(verified.pcr_values().len(), 9);
        assert_eq!(verified.pcr_selection().len(), 9);
        assert_eq!(verified.extra_data(), &v.nonce[..]);
        assert_eq!(verified.signature_hash(), HashAlg::Sha256);
        assert!(verified.clock_info().safe);
        assert_eq!(verified.qualified_signer().len(), 34);
        assert_ne!(verified.firmware_version(), 0);
    }

    #[test]
    fn good_rsa_quote_verifies_with_a_bare_key() {
        let v = rsa();
        verify_quote(
            QuoteKey::Public(v.ak.key()),
            &v.msg,
            &v.sig,
            &v.pcrs,
            &v.nonce,
        )
        .unwrap();
    }

    #[test]
    fn good_quotes_verify_with_pem_aks() {
        for (ak, quote) in [
            ("ak_rsa", "quote_rsa"),
            ("ak_rsapss", "quote_rsapss"),
            ("ak_ecc", "quote_ecc"),
            ("ak_ecc384", "quote_ecc384"),
        ] {
            let v = vector(ak, quote);
            let pem = String::from_utf8(testdata(&format!("{ak}.pem"))).unwrap();
            let key = PublicKey::from_pem(&pem).unwrap();
            assert_eq!(&key, v.ak.key(), "{ak}");
            verify_quote(QuoteKey::Public(&key), &v.msg, &v.sig, &v.pcrs, &v.nonce).unwrap();
        }
    }

    #[test]
    fn good_rsapss_quote_verifies() {
        vector("ak_rsapss", "quote_rsapss").verify().unwrap();
    }

    #[test]
    fn good_ecc_p256_quote_verifies() {
        ecc().verify().unwrap();
    }

    #[test]
    fn good_ecc_p384_quote_digests_pcrs_with_the_scheme_hash() {
        // The AK's nameAlg is SHA-256 but it signs with SHA-384: the PCR
        // digest in the quote is SHA-384, as Part 3, §18.4 says.
        let v = vector("ak_ecc384", "quote_ecc384");
        assert_eq!(v.ak.name_alg(), HashAlg::Sha256);
        assert_eq!(v.verify().unwrap().signature_hash(), HashAlg::Sha384);
    }

    #[test]
    fn good_two_bank_quote_verifies_in_tpm_bank_order() {
        // The quote lists sha256 before sha1; PcrValues iterates sha1 first.
        let v = vector("ak_rsa", "quote_rsa_two_banks");
        let verified = v.verify().unwrap();
        let banks: Vec<_> = verified.pcr_selection().banks().collect();
        assert_eq!(banks, [HashAlg::Sha256, HashAlg::Sha1]);
    }

    #[test]
    fn tampered_nonce_is_rejected() {
        let mut v = rsa();
        v.nonce[0] ^= 1;
        assert_eq!(v.verify().unwrap_err(), QuoteError::NonceMismatch);
        v.nonce.truncate(16);
        assert_eq!(v.verify().unwrap_err(), QuoteError::NonceMismatch);
    }

    #[test]
    fn flipped_signature_byte_is_rejected() {
        for mut v in [rsa(), ecc(), vector("ak_rsapss", "quote_rsapss")] {
            let last = v.sig.len() - 1;
            v.sig[last] ^= 1;
            assert_eq!(v.verify().unwrap_err(), QuoteError::BadSignature);
        }
    }

    #[test]
    fn flipped_message_byte_is_rejected() {
        let mut v = ecc();
        // A byte of the PCR digest: still parses, no longer matches the signature.
        let last = v.msg.len() - 1;
        v.msg[last] ^= 1;
        assert_eq!(v.verify().unwrap_err(), QuoteError::BadSignature);
    }

    #[test]
    fn changed_pcr_value_is_rejected() {
        let mut v = rsa();
        let mut value = v.pcrs.get(HashAlg::Sha256, 23).unwrap().to_vec();
        value[0] ^= 1;
        v.pcrs.insert(HashAlg::Sha256, 23, value).unwrap();
        assert_eq!(v.verify().unwrap_err(), QuoteError::PcrDigestMismatch);
    }

    #[test]
    fn pcr_values_for_another_selection_are_rejected() {
        let mut v = rsa();
        v.pcrs.insert(HashAlg::Sha256, 8, vec![0; 32]).unwrap();
        assert_eq!(
            v.verify().unwrap_err(),
            QuoteError::PcrSelectionMismatch {
                quoted: 9,
                supplied: 10
            }
        );
        let mut v = rsa();
        v.pcrs.insert(HashAlg::Sha1, 23, vec![0; 20]).unwrap();
        assert_eq!(
            v.verify().unwrap_err(),
            QuoteError::PcrSelectionMismatch {
                quoted: 9,
                supplied: 10
            }
        );
        let mut v = rsa();
        v.pcrs = PcrValues::new();
        assert_eq!(
            v.verify().unwrap_err(),
            QuoteError::PcrSelectionMismatch {
                quoted: 9,
                supplied: 0
            }
        );
    }

    #[test]
    fn tpm2_sign_output_is_not_tpm_generated() {
        // generate.sh signed a copy of the quote whose magic starts 0xfe with
        // TPM2_Sign: the signature is valid, the structure is not the TPM's.
        let mut v = rsa();
        v.msg = testdata("forged_quote_rsa.msg");
        v.sig = testdata("forged_quote_rsa.sig");
        assert_eq!(
            v.verify().unwrap_err(),
            QuoteError::NotTpmGenerated { magic: 0xfe54_4347 }
        );
    }

    #[test]
    fn certify_output_is_not_a_quote() {
        let mut v = rsa();
        v.msg = testdata("certify_rsa.msg");
        v.sig = testdata("certify_rsa.sig");
        assert_eq!(
            v.verify().unwrap_err(),
            QuoteError::NotAQuote {
                attest_type: TPM_ST_ATTEST_CERTIFY
            }
        );
    }

    #[test]
    fn wrong_magic_or_type_is_rejected_before_the_signature() {
        let mut v = rsa();
        v.msg[3] ^= 1;
        assert_eq!(
            v.verify().unwrap_err(),
            QuoteError::NotTpmGenerated { magic: 0xff54_4346 }
        );
        let mut v = rsa();
        v.msg[5] = 0x19; // TPM_ST_ATTEST_TIME
        assert_eq!(
            v.verify().unwrap_err(),
            QuoteError::NotAQuote {
                attest_type: 0x8019
            }
        );
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut v = rsa();
        v.msg.push(0);
        assert_eq!(
            v.verify().unwrap_err(),
            QuoteError::MalformedAttest {
                source: ParseError::TrailingBytes {
                    structure: Structure::Attest,
                    count: 1
                }
            }
        );
        let mut v = rsa();
        v.sig.push(0);
        assert_eq!(
            v.verify().unwrap_err(),
            QuoteError::MalformedSignature {
                source: ParseError::TrailingBytes {
                    structure: Structure::Signature,
                    count: 1
                }
            }
        );
    }

    #[test]
    fn truncated_input_at_every_length_is_an_error() {
        for mut v in [rsa(), ecc(), vector("ak_rsa", "quote_rsa_two_banks")] {
            let (msg, sig) = (v.msg.clone(), v.sig.clone());
            for len in 0..msg.len() {
                v.msg = msg[..len].to_vec();
                assert!(
                    matches!(v.verify(), Err(QuoteError::MalformedAttest { .. })),
                    "message of {len} bytes"
                );
            }
            v.msg = msg;
            for len in 0..sig.len() {
                v.sig = sig[..len].to_vec();
                assert!(
                    matches!(v.verify(), Err(QuoteError::MalformedSignature { .. })),
                    "signature of {len} bytes"
                );
            }
        }
    }

    #[test]
    fn wrong_ak_is_rejected() {
        // Another RSA AK with the same scheme: the signature does not verify.
        let other = TpmPublic::parse(&testdata("ak_rsapss.pub")).unwrap();
        let v = rsa();
        assert_eq!(
            verify_quote(
                QuoteKey::Public(other.key()),
                &v.msg,
                &v.sig,
                &v.pcrs,
                &v.nonce
            )
            .unwrap_err(),
            QuoteError::BadSignature
        );
        // Its public area pins RSA-PSS, so an RSASSA signature is not permitted.
        assert_eq!(
            verify_quote(QuoteKey::Tpm(&other), &v.msg, &v.sig, &v.pcrs, &v.nonce).unwrap_err(),
            QuoteError::SchemeNotPermitted {
                scheme: SignatureScheme::RsaSsa,
                hash: HashAlg::Sha256
            }
        );
        // An ECC key cannot check an RSA signature.
        let ecc_ak = TpmPublic::parse(&testdata("ak_ecc.pub")).unwrap();
        assert_eq!(
            verify_quote(
                QuoteKey::Public(ecc_ak.key()),
                &v.msg,
                &v.sig,
                &v.pcrs,
                &v.nonce
            )
            .unwrap_err(),
            QuoteError::SchemeNotPermitted {
                scheme: SignatureScheme::RsaSsa,
                hash: HashAlg::Sha256
            }
        );
        // Another ECC AK.
        let mut v = ecc();
        v.ak = TpmPublic::parse(&testdata("ak_ecc384.pub")).unwrap();
        assert_eq!(
            v.verify().unwrap_err(),
            QuoteError::SchemeNotPermitted {
                scheme: SignatureScheme::Ecdsa,
                hash: HashAlg::Sha256
            }
        );
    }

    #[test]
    fn p256_with_sha384_is_unsupported() {
        let v = vector("ak_ecc384", "quote_ecc384");
        let p256 = TpmPublic::parse(&testdata("ak_ecc.pub")).unwrap();
        assert_eq!(
            verify_quote(
                QuoteKey::Public(p256.key()),
                &v.msg,
                &v.sig,
                &v.pcrs,
                &v.nonce
            )
            .unwrap_err(),
            QuoteError::UnsupportedSignature {
                scheme: SignatureScheme::Ecdsa,
                hash: HashAlg::Sha384
            }
        );
    }

    #[test]
    fn rsa_4096_aks_are_refused() {
        let v = rsa();
        let key = PublicKey::Rsa(RsaPublicKey::new(&[0xc5; 512], 0));
        let mut sig = vec![0x00, 0x14, 0x00, 0x0b, 0x02, 0x00];
        sig.extend_from_slice(&[1; 512]);
        assert_eq!(
            verify_quote(QuoteKey::Public(&key), &v.msg, &sig, &v.pcrs, &v.nonce).unwrap_err(),
            QuoteError::UnsupportedRsaKeySize { bits: 4096 }
        );
    }

    /// An in-test P-256 "AK" and a TPMS_ATTEST built by hand, for checks a
    /// real TPM cannot be made to fail.
    struct SelfSigned {
        ak: TpmPublic,
        pair: EcdsaKeyPair,
    }

    impl SelfSigned {
        fn new() -> Self {
            let rng = SystemRandom::new();
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                    .unwrap();
            let point = pair.public_key().as_ref();
            let mut tpmt =
                hex::decode("0023000b0005007200000010001800 0b00030010".replace(' ', "")).unwrap();
            for coordinate in [&point[1..33], &point[33..65]] {
                tpmt.extend_from_slice(&[0, 32]);
                tpmt.extend_from_slice(coordinate);
            }
            Self {
                ak: TpmPublic::parse_tpmt(&tpmt).unwrap(),
                pair,
            }
        }

        /// A quote over `selection` (TPML_PCR_SELECTION bytes) with `digest`.
        fn quote(&self, selection: &[u8], digest: &[u8], nonce: &[u8]) -> (Vec<u8>, Vec<u8>) {
            let mut msg = TPM_GENERATED_VALUE.to_be_bytes().to_vec();
            msg.extend_from_slice(&TPM_ST_ATTEST_QUOTE.to_be_bytes());
            msg.extend_from_slice(&[0, 0]); // qualifiedSigner
            msg.extend_from_slice(&u16::try_from(nonce.len()).unwrap().to_be_bytes());
            msg.extend_from_slice(nonce);
            msg.extend_from_slice(&[0; 17]); // clockInfo
            msg.extend_from_slice(&[0; 8]); // firmwareVersion
            msg.extend_from_slice(selection);
            msg.extend_from_slice(&u16::try_from(digest.len()).unwrap().to_be_bytes());
            msg.extend_from_slice(digest);
            let fixed = self.pair.sign(&SystemRandom::new(), &msg).unwrap();
            let mut sig = vec![0x00, 0x18, 0x00, 0x0b, 0x00, 32];
            sig.extend_from_slice(&fixed.as_ref()[..32]);
            sig.extend_from_slice(&[0, 32]);
            sig.extend_from_slice(&fixed.as_ref()[32..]);
            (msg, sig)
        }
    }

    #[test]
    fn self_signed_quote_round_trips() {
        let signer = SelfSigned::new();
        let mut pcrs = PcrValues::new();
        pcrs.insert(HashAlg::Sha256, 1, vec![7; 32]).unwrap();
        let digest = HashAlg::Sha256.hash(&[&[7; 32]]);
        let (msg, sig) = signer.quote(&[0, 0, 0, 1, 0, 0x0b, 3, 2, 0, 0], &digest, b"n");
        verify_quote(QuoteKey::Tpm(&signer.ak), &msg, &sig, &pcrs, b"n").unwrap();
    }

    #[test]
    fn empty_pcr_selection_is_rejected() {
        let signer = SelfSigned::new();
        let digest = HashAlg::Sha256.hash(&[]);
        let (msg, sig) = signer.quote(&[0, 0, 0, 0], &digest, b"n");
        assert_eq!(
            verify_quote(
                QuoteKey::Tpm(&signer.ak),
                &msg,
                &sig,
                &PcrValues::new(),
                b"n"
            )
            .unwrap_err(),
            QuoteError::EmptyPcrSelection
        );
    }

    #[test]
    fn pcr_digest_of_another_hash_is_rejected() {
        // A SHA-1 pcrDigest under a SHA-256 signature: the TPM never does this.
        let signer = SelfSigned::new();
        let mut pcrs = PcrValues::new();
        pcrs.insert(HashAlg::Sha256, 1, vec![7; 32]).unwrap();
        let digest = HashAlg::Sha1.hash(&[&[7; 32]]);
        let (msg, sig) = signer.quote(&[0, 0, 0, 1, 0, 0x0b, 3, 2, 0, 0], &digest, b"n");
        assert_eq!(
            verify_quote(QuoteKey::Tpm(&signer.ak), &msg, &sig, &pcrs, b"n").unwrap_err(),
            QuoteError::PcrDigestMismatch
        );
    }
}
