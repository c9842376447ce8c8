//! The verifier side of credential activation: TPM2_MakeCredential done in
//! software (TPM 2.0 Part 1, §24 "Credential Protection"; Part 3, §12.6).
//!
//! [`make_credential`] encrypts a short secret so that only a TPM holding
//! both the EK's private key and an object with the given name (the AK) can
//! recover it with TPM2_ActivateCredential. Returning the secret proves the
//! AK lives in the same TPM as the EK.
//!
//! 1. A seed is shared with the EK (Part 1, Annex B and C, "Secret Sharing"):
//!    for an RSA EK, a random seed of nameAlg's digest size, RSA-OAEP
//!    encrypted with nameAlg and the label "IDENTITY\0"; for an ECC EK, an
//!    ephemeral ECDH key, seed = KDFe(nameAlg, Z, "IDENTITY", ephemeral.x,
//!    EK.x), and the ephemeral point as the encrypted secret.
//! 2. symKey = KDFa(nameAlg, seed, "STORAGE", name, "", EK symmetric key
//!    bits); encIdentity = AES-CFB(symKey, IV = 0, TPM2B(credential))
//!    (§24.4).
//! 3. HMACkey = KDFa(nameAlg, seed, "INTEGRITY", "", "", digest bits);
//!    integrity = HMAC(HMACkey, encIdentity || name) (§24.5).
//!
//! RSA-OAEP and AES-CFB come from `aws-lc-rs` (`ring` has neither); ECDH,
//! HMAC and hashes from `ring`. The seed and derived keys are held in
//! [`Zeroizing`] buffers; copies inside `ring`'s HMAC key and `aws-lc`'s
//! cipher contexts are beyond this crate's reach. OAEP padding randomness is
//! drawn by aws-lc itself, not from the `rng` argument.

use crate::digest::HashAlg;
use crate::key::{EccCurve, EccPublicKey, PublicKey};
use crate::reader::Reader;
use crate::tpm::kdf::{hmac_algorithm, kdfa, kdfe};
use crate::tpm::public::{Name, ObjectAttribute, SymmetricDefinition, TpmPublic};
use crate::tpm::{Field, ParseError, Structure, wire};
use ring::rand::SecureRandom;
use zeroize::Zeroizing;

/// Magic at the start of a tpm2-tools credential blob file.
pub const TPM2_TOOLS_CREDENTIAL_MAGIC: u32 = 0xbadc_c0de;
/// The only tpm2-tools credential blob file version.
pub const TPM2_TOOLS_CREDENTIAL_VERSION: u32 = 1;
/// Buffer size of TPM2B_ID_OBJECT: `sizeof(TPMS_ID_OBJECT)`, two
/// TPM2B_DIGESTs of at most 64 bytes (Part 2, §12.4.3).
pub const MAX_ID_OBJECT_SIZE: usize = 2 * (2 + 64);
/// Buffer size of TPM2B_ENCRYPTED_SECRET accepted: an RSA-4096 ciphertext
/// (Part 2, §11.4.33, `sizeof(TPMU_ENCRYPTED_SECRET)`).
pub const MAX_ENCRYPTED_SECRET_SIZE: usize = 512;

/// OAEP label for credential protection: "IDENTITY" with its terminating
/// NUL, which the spec counts as part of the label. (KDFe takes the label
/// without it and appends the NUL itself.)
const IDENTITY_LABEL: &[u8] = b"IDENTITY\0";

/// Why a credential could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The EK lacks an attribute of a storage key (restricted, decrypt).
    #[error("EK lacks the {attribute:?} attribute")]
    EkMissingAttribute {
        /// The attribute.
        attribute: ObjectAttribute,
    },
    /// The EK has an attribute a storage key must not have (sign).
    #[error("EK has the forbidden {attribute:?} attribute")]
    EkForbiddenAttribute {
        /// The attribute.
        attribute: ObjectAttribute,
    },
    /// The EK has no symmetric algorithm, so it cannot protect a credential.
    #[error("EK has no symmetric algorithm")]
    EkWithoutSymmetricAlgorithm,
    /// The EK's public key was rejected by the cryptographic library
    /// (RSA outside 2048-8192 bits, ECC point not on the curve).
    #[error("EK public key rejected")]
    EkKeyRejected,
    /// The credential is empty or longer than the EK nameAlg's digest
    /// (Part 3, §12.6: TPM_RC_SIZE).
    #[error("credential of {len} bytes; 1 to {max} allowed")]
    CredentialSize {
        /// Length given.
        len: usize,
        /// Largest length allowed.
        max: usize,
    },
    /// The random number generator failed.
    #[error("randomness unavailable")]
    RandomnessUnavailable,
    /// A cryptographic primitive failed unexpectedly.
    #[error("cryptographic operation failed")]
    CryptoFailure,
}

/// The output of MakeCredential: what TPM2_ActivateCredential takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialBlob {
    id_object: Vec<u8>,
    encrypted_secret: Vec<u8>,
}

impl CredentialBlob {
    /// credentialBlob: the contents of the TPM2B_ID_OBJECT (a marshalled
    /// TPMS_ID_OBJECT: TPM2B integrityHMAC, then encIdentity).
    pub fn id_object(&self) -> &[u8] {
        &self.id_object
    }

    /// secret: the contents of the TPM2B_ENCRYPTED_SECRET (an OAEP
    /// ciphertext, or a marshalled TPMS_ECC_POINT).
    pub fn encrypted_secret(&self) -> &[u8] {
        &self.encrypted_secret
    }

    /// The file `tpm2_makecredential -o` writes and `tpm2_activatecredential
    /// -i` reads (tpm2-tools 5.x, confirmed on real output): magic
    /// 0xBADCC0DE and version 1 (UINT32, big-endian), then TPM2B_ID_OBJECT
    /// and TPM2B_ENCRYPTED_SECRET, marshalled.
    pub fn to_tpm2_tools_file(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            12usize
                .saturating_add(self.id_object.len())
                .saturating_add(self.encrypted_secret.len()),
        );
        out.extend_from_slice(&TPM2_TOOLS_CREDENTIAL_MAGIC.to_be_bytes());
        out.extend_from_slice(&TPM2_TOOLS_CREDENTIAL_VERSION.to_be_bytes());
        // Both fields are capped far below u16::MAX when built or parsed.
        for field in [&self.id_object, &self.encrypted_secret] {
            let len = u16::try_from(field.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(field);
        }
        out
    }

    /// Parses a tpm2-tools credential blob file; see [`Self::to_tpm2_tools_file`].
    pub fn parse_tpm2_tools_file(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(bytes);
        let magic = wire::u32(&mut r, Field::CredentialFileMagic)?;
        if magic != TPM2_TOOLS_CREDENTIAL_MAGIC {
            return Err(ParseError::InvalidValue {
                field: Field::CredentialFileMagic,
                value: magic,
            });
        }
        let version = wire::u32(&mut r, Field::CredentialFileVersion)?;
        if version != TPM2_TOOLS_CREDENTIAL_VERSION {
            return Err(ParseError::InvalidValue {
                field: Field::CredentialFileVersion,
                value: version,
            });
        }
        let id_object = wire::tpm2b(&mut r, Field::IdObject, MAX_ID_OBJECT_SIZE)?;
        let encrypted_secret =
            wire::tpm2b(&mut r, Field::EncryptedSecret, MAX_ENCRYPTED_SECRET_SIZE)?;
        wire::finish(&r, Structure::CredentialFile)?;
        Ok(Self {
            id_object: id_object.to_vec(),
            encrypted_secret: encrypted_secret.to_vec(),
        })
    }
}

/// Makes a credential for the object named `ak_name`, protected by `ek`.
///
/// `credential` is the secret the TPM will release (1 to nameAlg-digest-size
/// bytes); `rng` supplies the RSA seed or the ephemeral ECDH key.
pub fn make_credential(
    ek: &TpmPublic,
    ak_name: &Name,
    credential: &[u8],
    rng: &dyn SecureRandom,
) -> Result<CredentialBlob, CredentialError> {
    check_ek(ek)?;
    // Part 1, §24.4: the parent's symmetric definition protects the
    // credential; parents may only use CFB (the parser accepts no other mode).
    let SymmetricDefinition::AesCfb { key_bits } = ek.symmetric() else {
        return Err(CredentialError::EkWithoutSymmetricAlgorithm);
    };
    let name_alg = ek.name_alg();
    let max = name_alg.digest_len();
    if credential.is_empty() || credential.len() > max {
        return Err(CredentialError::CredentialSize {
            len: credential.len(),
            max,
        });
    }
    let digest_bits = name_alg
        .digest_len()
        .checked_mul(8)
        .and_then(|bits| u32::try_from(bits).ok())
        .ok_or(CredentialError::CryptoFailure)?;

    let (seed, encrypted_secret) = match ek.key() {
        PublicKey::Rsa(_) => rsa_seed(&ek.key().to_spki_der(), name_alg, rng)?,
        PublicKey::Ecc(ecc) => ecc_seed(ecc, name_alg, digest_bits, rng)?,
    };
    let name = ak_name.as_bytes();

    // §24.4: encIdentity = CFB(symKey, IV = 0, TPM2B_DIGEST(credential)).
    // A zero IV is safe because symKey is derived from a fresh random seed
    // and encrypts this one message.
    let sym_key = kdfa(name_alg, &seed, b"STORAGE", name, b"", u32::from(key_bits))
        .ok_or(CredentialError::CryptoFailure)?;
    let mut enc_identity = Zeroizing::new(Vec::with_capacity(credential.len().saturating_add(2)));
    wire::put_tpm2b(&mut enc_identity, credential).ok_or(CredentialError::CryptoFailure)?;
    aes_cfb_zero_iv_encrypt(&sym_key, &mut enc_identity)?;

    // §24.5: outerHMAC = HMAC(HMACkey, encIdentity || name).
    let hmac_key = kdfa(name_alg, &seed, b"INTEGRITY", b"", b"", digest_bits)
        .ok_or(CredentialError::CryptoFailure)?;
    let hmac_key = ring::hmac::Key::new(hmac_algorithm(name_alg), &hmac_key);
    let mut ctx = ring::hmac::Context::with_key(&hmac_key);
    ctx.update(&enc_identity);
    ctx.update(name);
    let integrity = ctx.sign();

    let mut id_object = Vec::with_capacity(MAX_ID_OBJECT_SIZE);
    wire::put_tpm2b(&mut id_object, integrity.as_ref()).ok_or(CredentialError::CryptoFailure)?;
    id_object.extend_from_slice(&enc_identity);
    Ok(CredentialBlob {
        id_object,
        encrypted_secret,
    })
}

/// The TPM's own MakeCredential asks only for an asymmetric decryption key
/// (Part 3, §12.6, TPM_RC_TYPE). An EK is a restricted decryption key, and
/// only such a storage key carries the symmetric definition credential
/// protection needs (Part 1, §24.4), so anything else is refused: restricted
/// and decrypt set, sign clear.
fn check_ek(ek: &TpmPublic) -> Result<(), CredentialError> {
    let attributes = ek.attributes();
    for attribute in [ObjectAttribute::Restricted, ObjectAttribute::Decrypt] {
        if !attributes.contains(attribute) {
            return Err(CredentialError::EkMissingAttribute { attribute });
        }
    }
    if attributes.contains(ObjectAttribute::Sign) {
        return Err(CredentialError::EkForbiddenAttribute {
            attribute: ObjectAttribute::Sign,
        });
    }
    Ok(())
}

type Seed = Zeroizing<Vec<u8>>;

/// RSA secret sharing: a random seed, OAEP-encrypted to the EK with
/// nameAlg as hash and MGF1 hash, label "IDENTITY\0". `spki` is the EK as
/// a DER SubjectPublicKeyInfo, the only form in which aws-lc-rs accepts an
/// RSA encryption key.
fn rsa_seed(
    spki: &[u8],
    name_alg: HashAlg,
    rng: &dyn SecureRandom,
) -> Result<(Seed, Vec<u8>), CredentialError> {
    use aws_lc_rs::rsa::{
        OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OAEP_SHA384_MGF1SHA384, OAEP_SHA512_MGF1SHA512,
        OaepPublicEncryptingKey, PublicEncryptingKey,
    };
    let mut seed = Zeroizing::new(vec![0u8; name_alg.digest_len()]);
    rng.fill(&mut seed)
        .map_err(|_| CredentialError::RandomnessUnavailable)?;

    let key = PublicEncryptingKey::from_der(spki).map_err(|_| CredentialError::EkKeyRejected)?;
    let key = OaepPublicEncryptingKey::new(key).map_err(|_| CredentialError::EkKeyRejected)?;
    let algorithm = match name_alg {
        HashAlg::Sha1 => &OAEP_SHA1_MGF1SHA1,
        HashAlg::Sha256 => &OAEP_SHA256_MGF1SHA256,
        HashAlg::Sha384 => &OAEP_SHA384_MGF1SHA384,
        HashAlg::Sha512 => &OAEP_SHA512_MGF1SHA512,
    };
    let mut out = vec![0u8; key.ciphertext_size()];
    let ciphertext = key
        .encrypt(algorithm, &seed, &mut out, Some(IDENTITY_LABEL))
        .map_err(|_| CredentialError::CryptoFailure)?;
    Ok((seed, ciphertext.to_vec()))
}

/// ECC secret sharing (one-pass ECDH, Part 1, Annex C): an ephemeral key on
/// the EK's curve; seed = KDFe(nameAlg, Z, "IDENTITY", ephemeral.x, EK.x);
/// the encrypted secret is the ephemeral point as a TPMS_ECC_POINT.
fn ecc_seed(
    ek: &EccPublicKey,
    name_alg: HashAlg,
    seed_bits: u32,
    rng: &dyn SecureRandom,
) -> Result<(Seed, Vec<u8>), CredentialError> {
    use ring::agreement;
    let algorithm = match ek.curve() {
        EccCurve::NistP256 => &agreement::ECDH_P256,
        EccCurve::NistP384 => &agreement::ECDH_P384,
    };
    let ephemeral = agreement::EphemeralPrivateKey::generate(algorithm, rng)
        .map_err(|_| CredentialError::RandomnessUnavailable)?;
    let public = ephemeral
        .compute_public_key()
        .map_err(|_| CredentialError::CryptoFailure)?;
    // SEC 1 uncompressed point: 0x04 || x || y.
    let n = ek.curve().field_len();
    let point = public.as_ref();
    let x = point
        .get(1..n.saturating_add(1))
        .ok_or(CredentialError::CryptoFailure)?;
    let y = point
        .get(n.saturating_add(1)..)
        .ok_or(CredentialError::CryptoFailure)?;

    let peer = agreement::UnparsedPublicKey::new(algorithm, ek.uncompressed());
    // `z` is the x-coordinate of the shared point, as KDFe expects.
    let seed = agreement::agree_ephemeral(ephemeral, &peer, |z| {
        kdfe(name_alg, z, b"IDENTITY", x, ek.x(), seed_bits)
    })
    .map_err(|_| CredentialError::EkKeyRejected)?
    .ok_or(CredentialError::CryptoFailure)?;

    let mut secret = Vec::with_capacity(n.saturating_mul(2).saturating_add(4));
    wire::put_tpm2b(&mut secret, x).ok_or(CredentialError::CryptoFailure)?;
    wire::put_tpm2b(&mut secret, y).ok_or(CredentialError::CryptoFailure)?;
    Ok((seed, secret))
}

/// AES-CFB128 with an all-zero IV, in place; the key length picks AES-128/192/256.
fn aes_cfb_zero_iv_encrypt(key: &[u8], in_out: &mut [u8]) -> Result<(), CredentialError> {
    use aws_lc_rs::cipher::{
        AES_128, AES_192, AES_256, EncryptingKey, EncryptionContext, UnboundCipherKey,
    };
    let algorithm = match key.len() {
        16 => &AES_128,
        24 => &AES_192,
        32 => &AES_256,
        _ => return Err(CredentialError::CryptoFailure),
    };
    let key = UnboundCipherKey::new(algorithm, key).map_err(|_| CredentialError::CryptoFailure)?;
    let key = EncryptingKey::cfb128(key).map_err(|_| CredentialError::CryptoFailure)?;
    let iv = EncryptionContext::Iv128(aws_lc_rs::iv::FixedLength::from([0u8; 16]));
    key.less_safe_encrypt(in_out, iv)
        .map_err(|_| CredentialError::CryptoFailure)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tpm::public::tests::testdata;
    use aws_lc_rs::cipher::{AES_128, DecryptingKey, DecryptionContext, UnboundCipherKey};
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::{
        KeySize, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, PrivateDecryptingKey,
    };
    use ring::agreement;
    use ring::rand::SystemRandom;
    use x509_parser::prelude::FromDer;

    /// objectAttributes of the TCG default EK template: fixedTPM,
    /// fixedParent, sensitiveDataOrigin, adminWithPolicy, restricted, decrypt.
    const EK_ATTRIBUTES: u32 = 0x0003_00b2;

    fn ak_name() -> Name {
        Name::parse(&testdata("ak_rsa.name")).unwrap()
    }

    /// A TPMT_PUBLIC head for an SHA-256 storage key with AES-128-CFB.
    fn ek_head(object_type: u16, attributes: u32, symmetric: &[u8]) -> Vec<u8> {
        let mut t = object_type.to_be_bytes().to_vec();
        t.extend_from_slice(&[0x00, 0x0b]);
        t.extend_from_slice(&attributes.to_be_bytes());
        t.extend_from_slice(&[0, 0]); // authPolicy
        t.extend_from_slice(symmetric);
        t
    }

    const AES_128_CFB: [u8; 6] = [0x00, 0x06, 0x00, 0x80, 0x00, 0x43];

    struct RsaEk {
        public: TpmPublic,
        private: OaepPrivateDecryptingKey,
        spki: Vec<u8>,
    }

    fn rsa_ek(attributes: u32, symmetric: &[u8]) -> RsaEk {
        let private = PrivateDecryptingKey::generate(KeySize::Rsa2048).unwrap();
        let spki = private.public_key().as_der().unwrap().as_ref().to_vec();
        let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&spki).unwrap();
        let x509_parser::public_key::PublicKey::RSA(rsa) = info.parsed().unwrap() else {
            panic!("not RSA")
        };
        let modulus = &rsa.modulus[rsa.modulus.iter().position(|b| *b != 0).unwrap()..];
        assert_eq!(rsa.exponent, [1, 0, 1]);
        let mut t = ek_head(0x0001, attributes, symmetric);
        t.extend_from_slice(&[0x00, 0x10]); // scheme NULL
        t.extend_from_slice(&[0x08, 0x00, 0, 0, 0, 0]); // 2048 bits, default exponent
        t.extend_from_slice(&[0x01, 0x00]);
        t.extend_from_slice(modulus);
        RsaEk {
            public: TpmPublic::parse_tpmt(&t).unwrap(),
            private: OaepPrivateDecryptingKey::new(private).unwrap(),
            spki,
        }
    }

    /// The TPM side of TPM2_ActivateCredential once the seed is recovered:
    /// check the HMAC over encIdentity || name, then decrypt.
    fn activate(blob: &CredentialBlob, seed: &[u8], name: &[u8]) -> Result<Vec<u8>, &'static str> {
        let mut r = Reader::new(blob.id_object());
        let integrity = wire::tpm2b(&mut r, Field::IdObject, 64).map_err(|_| "malformed")?;
        let enc_identity = r.peek_rest();
        let hmac_key = kdfa(HashAlg::Sha256, seed, b"INTEGRITY", b"", b"", 256).unwrap();
        let hmac_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &hmac_key);
        ring::hmac::verify(&hmac_key, &[enc_identity, name].concat(), integrity)
            .map_err(|_| "integrity")?;
        let sym_key = kdfa(HashAlg::Sha256, seed, b"STORAGE", name, b"", 128).unwrap();
        let key =
            DecryptingKey::cfb128(UnboundCipherKey::new(&AES_128, &sym_key).unwrap()).unwrap();
        let mut plain = enc_identity.to_vec();
        let iv = DecryptionContext::Iv128(aws_lc_rs::iv::FixedLength::from([0u8; 16]));
        let plain = key.decrypt(&mut plain, iv).unwrap();
        let mut r = Reader::new(plain);
        let credential = wire::tpm2b(&mut r, Field::IdObject, 64).map_err(|_| "malformed")?;
        Ok(credential.to_vec())
    }

    fn rsa_recover_seed(ek: &RsaEk, blob: &CredentialBlob) -> Vec<u8> {
        let mut out = vec![0u8; 256];
        ek.private
            .decrypt(
                &OAEP_SHA256_MGF1SHA256,
                blob.encrypted_secret(),
                &mut out,
                Some(IDENTITY_LABEL),
            )
            .unwrap()
            .to_vec()
    }

    #[test]
    fn ek_spki_is_what_aws_lc_expects() {
        // The EK reaches aws-lc as `PublicKey::to_spki_der`: it must encode a
        // TPM modulus with the default exponent exactly as aws-lc does.
        let ek = rsa_ek(EK_ATTRIBUTES, &AES_128_CFB);
        assert_eq!(ek.public.key().to_spki_der(), ek.spki);
    }

    #[test]
    fn rsa_round_trip() {
        let ek = rsa_ek(EK_ATTRIBUTES, &AES_128_CFB);
        let secret = b"keyward credential secret 32 byt";
        let blob = make_credential(&ek.public, &ak_name(), secret, &SystemRandom::new()).unwrap();
        assert_eq!(blob.encrypted_secret().len(), 256);
        // integrityHMAC (2 + 32) and encIdentity (2 + 32).
        assert_eq!(blob.id_object().len(), 68);
        let seed = rsa_recover_seed(&ek, &blob);
        assert_eq!(seed.len(), 32);
        assert_eq!(
            activate(&blob, &seed, ak_name().as_bytes()).unwrap(),
            secret
        );
    }

    #[test]
    fn ecc_round_trip() {
        let rng = SystemRandom::new();
        let ek_private =
            agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng).unwrap();
        let point = ek_private.compute_public_key().unwrap().as_ref().to_vec();
        let mut t = ek_head(0x0023, EK_ATTRIBUTES, &AES_128_CFB);
        t.extend_from_slice(&[0x00, 0x10, 0x00, 0x03, 0x00, 0x10]); // scheme, curve, kdf
        for coordinate in [&point[1..33], &point[33..]] {
            t.extend_from_slice(&[0, 32]);
            t.extend_from_slice(coordinate);
        }
        let ek = TpmPublic::parse_tpmt(&t).unwrap();

        let secret = b"short";
        let blob = make_credential(&ek, &ak_name(), secret, &rng).unwrap();
        // TPMS_ECC_POINT: two 32-byte coordinates with their sizes.
        let mut r = Reader::new(blob.encrypted_secret());
        let x = wire::tpm2b(&mut r, Field::EccX, 32).unwrap();
        let y = wire::tpm2b(&mut r, Field::EccY, 32).unwrap();
        assert!(r.is_empty());
        let ephemeral = [&[0x04][..], x, y].concat();
        let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, ephemeral);
        let seed = agreement::agree_ephemeral(ek_private, &peer, |z| {
            kdfe(HashAlg::Sha256, z, b"IDENTITY", x, &point[1..33], 256)
                .unwrap()
                .to_vec()
        })
        .unwrap();
        assert_eq!(
            activate(&blob, &seed, ak_name().as_bytes()).unwrap(),
            secret
        );
    }

    #[test]
    fn tampered_blob_or_other_name_fails_activation() {
        let ek = rsa_ek(EK_ATTRIBUTES, &AES_128_CFB);
        let name = ak_name();
        let blob = make_credential(&ek.public, &name, b"secret", &SystemRandom::new()).unwrap();
        let seed = rsa_recover_seed(&ek, &blob);

        let mut tampered = blob.clone();
        let last = tampered.id_object.len() - 1;
        tampered.id_object[last] ^= 1; // a byte of encIdentity
        assert_eq!(
            activate(&tampered, &seed, name.as_bytes()),
            Err("integrity")
        );

        let mut tampered = blob.clone();
        tampered.id_object[2] ^= 1; // a byte of integrityHMAC
        assert_eq!(
            activate(&tampered, &seed, name.as_bytes()),
            Err("integrity")
        );

        let other = TpmPublic::parse(&testdata("ak_ecc.pub")).unwrap().name();
        assert_eq!(activate(&blob, &seed, other.as_bytes()), Err("integrity"));
    }

    #[test]
    fn works_with_real_swtpm_endorsement_keys() {
        for file in ["ek_rsa.pub", "ek_ecc.pub"] {
            let ek = TpmPublic::parse(&testdata(file)).unwrap();
            let blob = make_credential(&ek, &ak_name(), &[7; 32], &SystemRandom::new()).unwrap();
            assert_eq!(blob.id_object().len(), 68, "{file}");
            let expected = if file == "ek_rsa.pub" { 256 } else { 68 };
            assert_eq!(blob.encrypted_secret().len(), expected, "{file}");
        }
    }

    #[test]
    fn rejects_credentials_of_bad_size() {
        let ek = TpmPublic::parse(&testdata("ek_rsa.pub")).unwrap();
        let rng = SystemRandom::new();
        assert_eq!(
            make_credential(&ek, &ak_name(), &[1; 33], &rng),
            Err(CredentialError::CredentialSize { len: 33, max: 32 })
        );
        assert_eq!(
            make_credential(&ek, &ak_name(), &[], &rng),
            Err(CredentialError::CredentialSize { len: 0, max: 32 })
        );
    }

    #[test]
    fn rejects_keys_that_are_not_storage_keys() {
        let rng = SystemRandom::new();
        let ak = TpmPublic::parse(&testdata("ak_rsa.pub")).unwrap();
        assert_eq!(
            make_credential(&ak, &ak_name(), b"s", &rng),
            Err(CredentialError::EkMissingAttribute {
                attribute: ObjectAttribute::Decrypt
            })
        );
        let ek = rsa_ek(
            EK_ATTRIBUTES & !ObjectAttribute::Restricted.mask(),
            &AES_128_CFB,
        );
        assert_eq!(
            make_credential(&ek.public, &ak_name(), b"s", &rng),
            Err(CredentialError::EkMissingAttribute {
                attribute: ObjectAttribute::Restricted
            })
        );
        let ek = rsa_ek(EK_ATTRIBUTES | ObjectAttribute::Sign.mask(), &AES_128_CFB);
        assert_eq!(
            make_credential(&ek.public, &ak_name(), b"s", &rng),
            Err(CredentialError::EkForbiddenAttribute {
                attribute: ObjectAttribute::Sign
            })
        );
        let ek = rsa_ek(EK_ATTRIBUTES, &[0x00, 0x10]);
        assert_eq!(
            make_credential(&ek.public, &ak_name(), b"s", &rng),
            Err(CredentialError::EkWithoutSymmetricAlgorithm)
        );
    }

    #[test]
    fn parses_and_rewrites_a_tpm2_makecredential_file() {
        let bytes = testdata("makecredential_rsa.blob");
        let blob = CredentialBlob::parse_tpm2_tools_file(&bytes).unwrap();
        assert_eq!(blob.id_object().len(), 68);
        assert_eq!(blob.encrypted_secret().len(), 256);
        assert_eq!(blob.to_tpm2_tools_file(), bytes);
    }

    #[test]
    fn rejects_malformed_credential_files() {
        let good = testdata("makecredential_rsa.blob");
        let mut bytes = good.clone();
        bytes[0] = 0;
        assert_eq!(
            CredentialBlob::parse_tpm2_tools_file(&bytes),
            Err(ParseError::InvalidValue {
                field: Field::CredentialFileMagic,
                value: 0x00dc_c0de
            })
        );
        let mut bytes = good.clone();
        bytes[7] = 2;
        assert_eq!(
            CredentialBlob::parse_tpm2_tools_file(&bytes),
            Err(ParseError::InvalidValue {
                field: Field::CredentialFileVersion,
                value: 2
            })
        );
        let mut bytes = good.clone();
        bytes.push(0);
        assert_eq!(
            CredentialBlob::parse_tpm2_tools_file(&bytes),
            Err(ParseError::TrailingBytes {
                structure: Structure::CredentialFile,
                count: 1
            })
        );
        let mut bytes = good.clone();
        bytes[8..10].copy_from_slice(&133u16.to_be_bytes());
        assert_eq!(
            CredentialBlob::parse_tpm2_tools_file(&bytes),
            Err(ParseError::TooLarge {
                field: Field::IdObject,
                len: 133,
                max: 132
            })
        );
        for len in 0..good.len() {
            assert!(
                CredentialBlob::parse_tpm2_tools_file(&good[..len]).is_err(),
                "{len} bytes"
            );
        }
    }
}
