//! TPMT_SIGNATURE (TPM 2.0 Part 2, §11.3.4) for the schemes the verifier
//! can check: RSASSA-PKCS1-v1_5, RSASSA-PSS and ECDSA.

use super::constants::{
    MAX_ECC_KEY_BYTES, MAX_RSA_KEY_BYTES, TPM_ALG_ECDSA, TPM_ALG_RSAPSS, TPM_ALG_RSASSA,
};
use super::error::{Field, ParseError, Structure};
use super::wire;
use crate::digest::HashAlg;
use crate::reader::Reader;

/// A signature scheme the verifier can check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureScheme {
    /// TPM_ALG_RSASSA: RSASSA-PKCS1-v1_5.
    RsaSsa,
    /// TPM_ALG_RSAPSS: RSASSA-PSS, salt as long as the digest.
    RsaPss,
    /// TPM_ALG_ECDSA.
    Ecdsa,
}

/// A parsed TPMT_SIGNATURE.
///
/// HMAC, ECDAA, EC-Schnorr, SM2 and NULL signatures are rejected while
/// parsing: none of them proves anything to a remote verifier that holds
/// only a public key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Signature {
    /// RSASSA-PKCS1-v1_5 (TPMS_SIGNATURE_RSASSA).
    RsaSsa {
        /// The hash signed.
        hash: HashAlg,
        /// The signature, as long as the modulus.
        signature: Vec<u8>,
    },
    /// RSASSA-PSS (TPMS_SIGNATURE_RSAPSS).
    RsaPss {
        /// The hash signed (and used for MGF1).
        hash: HashAlg,
        /// The signature, as long as the modulus.
        signature: Vec<u8>,
    },
    /// ECDSA (TPMS_SIGNATURE_ECDSA).
    Ecdsa {
        /// The hash signed.
        hash: HashAlg,
        /// signatureR, big-endian.
        r: Vec<u8>,
        /// signatureS, big-endian.
        s: Vec<u8>,
    },
}

impl Signature {
    /// Parses a complete TPMT_SIGNATURE (what `tpm2_quote -s` writes in its
    /// default `tss` format); trailing bytes are an error.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(bytes);
        let signature = match wire::u16(&mut r, Field::SignatureAlgorithm)? {
            TPM_ALG_RSASSA => {
                let hash = wire::hash_alg(&mut r, Field::SignatureHash)?;
                let signature = wire::tpm2b(&mut r, Field::RsaSignature, MAX_RSA_KEY_BYTES)?;
                Self::RsaSsa {
                    hash,
                    signature: signature.to_vec(),
                }
            }
            TPM_ALG_RSAPSS => {
                let hash = wire::hash_alg(&mut r, Field::SignatureHash)?;
                let signature = wire::tpm2b(&mut r, Field::RsaSignature, MAX_RSA_KEY_BYTES)?;
                Self::RsaPss {
                    hash,
                    signature: signature.to_vec(),
                }
            }
            TPM_ALG_ECDSA => {
                let hash = wire::hash_alg(&mut r, Field::SignatureHash)?;
                let sig_r = wire::tpm2b(&mut r, Field::EcdsaR, MAX_ECC_KEY_BYTES)?;
                let sig_s = wire::tpm2b(&mut r, Field::EcdsaS, MAX_ECC_KEY_BYTES)?;
                Self::Ecdsa {
                    hash,
                    r: sig_r.to_vec(),
                    s: sig_s.to_vec(),
                }
            }
            id => {
                return Err(ParseError::UnknownAlgorithm {
                    field: Field::SignatureAlgorithm,
                    id,
                });
            }
        };
        wire::finish(&r, Structure::Signature)?;
        Ok(signature)
    }

    /// The signature scheme.
    pub fn scheme(&self) -> SignatureScheme {
        match self {
            Self::RsaSsa { .. } => SignatureScheme::RsaSsa,
            Self::RsaPss { .. } => SignatureScheme::RsaPss,
            Self::Ecdsa { .. } => SignatureScheme::Ecdsa,
        }
    }

    /// The hash algorithm the signature covers a digest of.
    pub fn hash(&self) -> HashAlg {
        match self {
            Self::RsaSsa { hash, .. } | Self::RsaPss { hash, .. } | Self::Ecdsa { hash, .. } => {
                *hash
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tpm::public::tests::testdata;

    #[test]
    fn parses_real_signatures() {
        let sig = Signature::parse(&testdata("quote_rsa.sig")).unwrap();
        assert_eq!(
            (sig.scheme(), sig.hash()),
            (SignatureScheme::RsaSsa, HashAlg::Sha256)
        );
        assert!(matches!(&sig, Signature::RsaSsa { signature, .. } if signature.len() == 256));

        let sig = Signature::parse(&testdata("quote_rsapss.sig")).unwrap();
        assert_eq!(
            (sig.scheme(), sig.hash()),
            (SignatureScheme::RsaPss, HashAlg::Sha256)
        );

        let sig = Signature::parse(&testdata("quote_ecc.sig")).unwrap();
        assert_eq!(
            (sig.scheme(), sig.hash()),
            (SignatureScheme::Ecdsa, HashAlg::Sha256)
        );
        assert!(matches!(&sig, Signature::Ecdsa { r, s, .. } if r.len() == 32 && s.len() == 32));

        let sig = Signature::parse(&testdata("quote_ecc384.sig")).unwrap();
        assert_eq!(
            (sig.scheme(), sig.hash()),
            (SignatureScheme::Ecdsa, HashAlg::Sha384)
        );
    }

    #[test]
    fn rejects_hmac_and_null_signatures() {
        assert_eq!(
            Signature::parse(&[0x00, 0x05, 0x00, 0x0b]),
            Err(ParseError::UnknownAlgorithm {
                field: Field::SignatureAlgorithm,
                id: 0x0005
            })
        );
        assert_eq!(
            Signature::parse(&[0x00, 0x10]),
            Err(ParseError::UnknownAlgorithm {
                field: Field::SignatureAlgorithm,
                id: 0x0010
            })
        );
    }

    #[test]
    fn rejects_unknown_hash() {
        let mut bytes = testdata("quote_rsa.sig");
        bytes[2..4].copy_from_slice(&0x0012u16.to_be_bytes());
        assert_eq!(
            Signature::parse(&bytes),
            Err(ParseError::UnknownAlgorithm {
                field: Field::SignatureHash,
                id: 0x0012
            })
        );
    }

    #[test]
    fn caps_lengths() {
        assert_eq!(
            Signature::parse(&[0x00, 0x14, 0x00, 0x0b, 0x02, 0x01]),
            Err(ParseError::TooLarge {
                field: Field::RsaSignature,
                len: 513,
                max: 512
            })
        );
        assert_eq!(
            Signature::parse(&[0x00, 0x18, 0x00, 0x0b, 0x00, 49]),
            Err(ParseError::TooLarge {
                field: Field::EcdsaR,
                len: 49,
                max: 48
            })
        );
    }

    #[test]
    fn rejects_trailing_bytes() {
        let mut bytes = testdata("quote_ecc.sig");
        bytes.push(0);
        assert_eq!(
            Signature::parse(&bytes),
            Err(ParseError::TrailingBytes {
                structure: Structure::Signature,
                count: 1
            })
        );
    }

    #[test]
    fn truncated_signatures_are_errors() {
        for file in ["quote_rsa.sig", "quote_ecc.sig"] {
            let bytes = testdata(file);
            for len in 0..bytes.len() {
                assert!(
                    Signature::parse(&bytes[..len]).is_err(),
                    "{file}: accepted {len} bytes"
                );
            }
        }
    }
}
