//! Certificate signature verification with `ring`.
//!
//! `ring` covers every algorithm the EK chains in the field use, including
//! the mixed ECDSA pairs (a P-384 CA signing with SHA-256, a P-256 CA with
//! SHA-384), so `aws-lc-rs` is not needed here. RSA issuer keys must be
//! 2048..=8192 bits: `ring` has no RSA-1024 verification for SHA-384 or PSS,
//! and no EK CA in the field uses a smaller key.

use ring::signature::{self as sig, RsaPublicKeyComponents, UnparsedPublicKey};

use super::cert::SignatureAlgorithm;
use crate::key::{EccCurve, EccPublicKey, PublicKey, RsaPublicKey};

/// True when `signature` over `message` verifies with `issuer_key` under
/// `algorithm`. A key of the wrong type for the algorithm never verifies.
pub(crate) fn verify(
    algorithm: SignatureAlgorithm,
    issuer_key: &PublicKey,
    message: &[u8],
    signature: &[u8],
) -> bool {
    use SignatureAlgorithm as A;
    match (algorithm, issuer_key) {
        (A::RsaPkcs1Sha1, PublicKey::Rsa(key)) => rsa(
            &sig::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            key,
            message,
            signature,
        ),
        (A::RsaPkcs1Sha256, PublicKey::Rsa(key)) => {
            rsa(&sig::RSA_PKCS1_2048_8192_SHA256, key, message, signature)
        }
        (A::RsaPkcs1Sha384, PublicKey::Rsa(key)) => {
            rsa(&sig::RSA_PKCS1_2048_8192_SHA384, key, message, signature)
        }
        (A::RsaPkcs1Sha512, PublicKey::Rsa(key)) => {
            rsa(&sig::RSA_PKCS1_2048_8192_SHA512, key, message, signature)
        }
        (A::RsaPssSha256, PublicKey::Rsa(key)) => {
            rsa(&sig::RSA_PSS_2048_8192_SHA256, key, message, signature)
        }
        (A::RsaPssSha384, PublicKey::Rsa(key)) => {
            rsa(&sig::RSA_PSS_2048_8192_SHA384, key, message, signature)
        }
        (A::RsaPssSha512, PublicKey::Rsa(key)) => {
            rsa(&sig::RSA_PSS_2048_8192_SHA512, key, message, signature)
        }
        (A::EcdsaSha256, PublicKey::Ecc(key)) => {
            let alg = match key.curve() {
                EccCurve::NistP256 => &sig::ECDSA_P256_SHA256_ASN1,
                EccCurve::NistP384 => &sig::ECDSA_P384_SHA256_ASN1,
            };
            ecdsa(alg, key, message, signature)
        }
        (A::EcdsaSha384, PublicKey::Ecc(key)) => {
            let alg = match key.curve() {
                EccCurve::NistP256 => &sig::ECDSA_P256_SHA384_ASN1,
                EccCurve::NistP384 => &sig::ECDSA_P384_SHA384_ASN1,
            };
            ecdsa(alg, key, message, signature)
        }
        _ => false,
    }
}

fn rsa(params: &sig::RsaParameters, key: &RsaPublicKey, message: &[u8], signature: &[u8]) -> bool {
    // ring wants both integers without leading zero octets.
    let exponent = key.exponent().to_be_bytes();
    let first = exponent.iter().position(|b| *b != 0).unwrap_or(0);
    let e = exponent.get(first..).unwrap_or_default();
    RsaPublicKeyComponents {
        n: key.modulus(),
        e,
    }
    .verify(params, message, signature)
    .is_ok()
}

fn ecdsa(
    alg: &'static sig::EcdsaVerificationAlgorithm,
    key: &EccPublicKey,
    message: &[u8],
    signature: &[u8],
) -> bool {
    UnparsedPublicKey::new(alg, key.uncompressed())
        .verify(message, signature)
        .is_ok()
}
