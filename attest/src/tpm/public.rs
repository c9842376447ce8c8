//! TPM2B_PUBLIC / TPMT_PUBLIC (TPM 2.0 Part 2, §12.2) for RSA and ECC
//! objects, and object names (Part 1, §16).

use super::constants::{
    MAX_DIGEST_SIZE, MAX_ECC_KEY_BYTES, MAX_PUBLIC_SIZE, MAX_RSA_KEY_BYTES, TPM_ALG_AES,
    TPM_ALG_CFB, TPM_ALG_ECC, TPM_ALG_ECDH, TPM_ALG_ECDSA, TPM_ALG_KDF1_SP800_56A,
    TPM_ALG_KDF1_SP800_108, TPM_ALG_KDF2, TPM_ALG_MGF1, TPM_ALG_NULL, TPM_ALG_OAEP, TPM_ALG_RSA,
    TPM_ALG_RSAES, TPM_ALG_RSAPSS, TPM_ALG_RSASSA,
};
use super::error::{Field, ParseError, Structure};
use super::wire;
use crate::digest::HashAlg;
use crate::key::{EccCurve, EccPublicKey, PublicKey, RsaPublicKey};
use crate::reader::Reader;

/// One bit of TPMA_OBJECT (Part 2, §8.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ObjectAttribute {
    /// fixedTPM (bit 1): the object cannot be duplicated out of this TPM.
    FixedTpm,
    /// stClear (bit 2).
    StClear,
    /// fixedParent (bit 4): the object cannot be moved to another parent.
    FixedParent,
    /// sensitiveDataOrigin (bit 5): the TPM generated the private part.
    SensitiveDataOrigin,
    /// userWithAuth (bit 6).
    UserWithAuth,
    /// adminWithPolicy (bit 7).
    AdminWithPolicy,
    /// noDA (bit 10).
    NoDa,
    /// encryptedDuplication (bit 11).
    EncryptedDuplication,
    /// restricted (bit 16): signs only TPM-generated data, or decrypts only
    /// TPM-formatted data.
    Restricted,
    /// decrypt (bit 17).
    Decrypt,
    /// sign (bit 18).
    Sign,
}

impl ObjectAttribute {
    /// The attribute's mask in TPMA_OBJECT.
    pub fn mask(self) -> u32 {
        let bit = match self {
            Self::FixedTpm => 1,
            Self::StClear => 2,
            Self::FixedParent => 4,
            Self::SensitiveDataOrigin => 5,
            Self::UserWithAuth => 6,
            Self::AdminWithPolicy => 7,
            Self::NoDa => 10,
            Self::EncryptedDuplication => 11,
            Self::Restricted => 16,
            Self::Decrypt => 17,
            Self::Sign => 18,
        };
        1u32 << bit
    }
}

/// TPMA_OBJECT as found on the wire.
///
/// Bits this crate does not name (reserved ones, x509sign) are kept, not
/// rejected: they are covered by the object's name, and rejecting them would
/// break on TPMs implementing a newer revision of Part 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObjectAttributes(u32);

impl ObjectAttributes {
    /// Wraps raw TPMA_OBJECT bits.
    pub fn from_bits(bits: u32) -> Self {
        Self(bits)
    }

    /// The raw TPMA_OBJECT bits.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Whether `attribute` is set.
    pub fn contains(self, attribute: ObjectAttribute) -> bool {
        self.0 & attribute.mask() != 0
    }
}

/// TPMT_SYM_DEF_OBJECT (Part 2, §11.1.7): the symmetric algorithm of a
/// storage key, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SymmetricDefinition {
    /// TPM_ALG_NULL: the object is not a storage parent.
    Null,
    /// AES in CFB mode, the mode parents use to protect their children and
    /// credentials (Part 1, §24.4); other modes are rejected while parsing.
    AesCfb {
        /// Key size: 128, 192 or 256.
        key_bits: u16,
    },
}

/// The signing or encryption scheme of a key (TPMT_RSA_SCHEME,
/// TPMT_ECC_SCHEME; Part 2, §11.2.4 and §11.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyScheme {
    /// TPM_ALG_NULL: the caller picks the scheme per operation. Restricted
    /// decryption keys (EKs) always have this.
    Null,
    /// RSASSA-PKCS1-v1_5 signatures.
    RsaSsa(HashAlg),
    /// RSASSA-PSS signatures.
    RsaPss(HashAlg),
    /// RSAES-PKCS1-v1_5 encryption.
    RsaEs,
    /// RSAES-OAEP encryption.
    Oaep(HashAlg),
    /// ECDSA signatures.
    Ecdsa(HashAlg),
    /// ECDH key agreement.
    Ecdh(HashAlg),
}

/// TPMT_KDF_SCHEME of an ECC key (Part 2, §11.2.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KdfScheme {
    /// TPM_ALG_NULL.
    Null,
    /// MGF1.
    Mgf1(HashAlg),
    /// KDF1 of SP 800-56A.
    Kdf1Sp80056a(HashAlg),
    /// KDF2 of IEEE 1363a.
    Kdf2(HashAlg),
    /// KDF1 of SP 800-108.
    Kdf1Sp800108(HashAlg),
}

/// The RSA key sizes a TPMT_PUBLIC may declare.
const RSA_KEY_BITS: [u16; 4] = [1024, 2048, 3072, 4096];

/// A parsed TPMT_PUBLIC of an RSA or ECC object.
///
/// Keeps the exact marshalled bytes, from which [`TpmPublic::name`] is
/// computed: re-marshalling would hide encodings the parser tolerates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmPublic {
    name_alg: HashAlg,
    attributes: ObjectAttributes,
    auth_policy: Vec<u8>,
    symmetric: SymmetricDefinition,
    scheme: KeyScheme,
    kdf: KdfScheme,
    key: PublicKey,
    marshalled: Vec<u8>,
}

impl TpmPublic {
    /// Parses a TPM2B_PUBLIC (what `tpm2_createak -u`, `tpm2_createek -u`
    /// and `tpm2_readpublic -o` write). The size field must cover the
    /// TPMT_PUBLIC exactly; nothing may follow it.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(bytes);
        let inner = wire::tpm2b(&mut r, Field::PublicSize, MAX_PUBLIC_SIZE)?;
        wire::finish(&r, Structure::Public)?;
        Self::parse_tpmt(inner)
    }

    /// Parses a bare TPMT_PUBLIC; nothing may follow it.
    pub fn parse_tpmt(bytes: &[u8]) -> Result<Self, ParseError> {
        if bytes.len() > MAX_PUBLIC_SIZE {
            return Err(ParseError::TooLarge {
                field: Field::PublicSize,
                len: bytes.len(),
                max: MAX_PUBLIC_SIZE,
            });
        }
        let mut r = Reader::new(bytes);
        let object_type = wire::u16(&mut r, Field::ObjectType)?;
        let name_alg = wire::hash_alg(&mut r, Field::NameAlg)?;
        let attributes = ObjectAttributes(wire::u32(&mut r, Field::ObjectAttributes)?);

        // Part 2, §12.2.4: authPolicy is empty or a digest of nameAlg.
        let auth_policy = wire::tpm2b(&mut r, Field::AuthPolicy, MAX_DIGEST_SIZE)?;
        if !auth_policy.is_empty() && auth_policy.len() != name_alg.digest_len() {
            return Err(ParseError::WrongLength {
                field: Field::AuthPolicy,
                len: auth_policy.len(),
                expected: name_alg.digest_len(),
            });
        }

        let symmetric = read_symmetric(&mut r)?;
        let (scheme, kdf, key) = match object_type {
            TPM_ALG_RSA => {
                let scheme = read_rsa_scheme(&mut r)?;
                let key = read_rsa_key(&mut r)?;
                (scheme, KdfScheme::Null, key)
            }
            TPM_ALG_ECC => {
                let scheme = read_ecc_scheme(&mut r)?;
                let curve_id = wire::u16(&mut r, Field::EccCurve)?;
                let curve =
                    EccCurve::from_tpm_curve_id(curve_id).ok_or(ParseError::UnknownAlgorithm {
                        field: Field::EccCurve,
                        id: curve_id,
                    })?;
                let kdf = read_kdf(&mut r)?;
                let key = read_ecc_point(&mut r, curve)?;
                (scheme, kdf, key)
            }
            id => {
                return Err(ParseError::UnknownAlgorithm {
                    field: Field::ObjectType,
                    id,
                });
            }
        };
        wire::finish(&r, Structure::Public)?;

        Ok(Self {
            name_alg,
            attributes,
            auth_policy: auth_policy.to_vec(),
            symmetric,
            scheme,
            kdf,
            key,
            marshalled: bytes.to_vec(),
        })
    }

    /// nameAlg: the hash of the object's name, and of its KDFs and
    /// credential protection when it is a parent.
    pub fn name_alg(&self) -> HashAlg {
        self.name_alg
    }

    /// objectAttributes.
    pub fn attributes(&self) -> ObjectAttributes {
        self.attributes
    }

    /// authPolicy (empty when the object has none).
    pub fn auth_policy(&self) -> &[u8] {
        &self.auth_policy
    }

    /// The symmetric definition (non-NULL for storage parents such as EKs).
    pub fn symmetric(&self) -> SymmetricDefinition {
        self.symmetric
    }

    /// The key's scheme.
    pub fn scheme(&self) -> KeyScheme {
        self.scheme
    }

    /// The KDF scheme of an ECC key; [`KdfScheme::Null`] for RSA keys.
    pub fn kdf(&self) -> KdfScheme {
        self.kdf
    }

    /// The public key.
    pub fn key(&self) -> &PublicKey {
        &self.key
    }

    /// The marshalled TPMT_PUBLIC, exactly as parsed.
    pub fn marshalled(&self) -> &[u8] {
        &self.marshalled
    }

    /// The object's name: nameAlg (UINT16, big-endian) followed by
    /// H_nameAlg(marshalled TPMT_PUBLIC) (Part 1, §16).
    pub fn name(&self) -> Name {
        let mut bytes = self.name_alg.tpm_alg_id().to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.name_alg.hash(&[&self.marshalled]));
        Name {
            alg: self.name_alg,
            bytes,
        }
    }
}

fn read_symmetric(r: &mut Reader<'_>) -> Result<SymmetricDefinition, ParseError> {
    match wire::u16(r, Field::SymmetricAlgorithm)? {
        TPM_ALG_NULL => Ok(SymmetricDefinition::Null),
        TPM_ALG_AES => {
            let key_bits = wire::u16(r, Field::SymmetricKeyBits)?;
            if ![128, 192, 256].contains(&key_bits) {
                return Err(ParseError::InvalidValue {
                    field: Field::SymmetricKeyBits,
                    value: u32::from(key_bits),
                });
            }
            match wire::u16(r, Field::SymmetricMode)? {
                TPM_ALG_CFB => Ok(SymmetricDefinition::AesCfb { key_bits }),
                id => Err(ParseError::UnknownAlgorithm {
                    field: Field::SymmetricMode,
                    id,
                }),
            }
        }
        id => Err(ParseError::UnknownAlgorithm {
            field: Field::SymmetricAlgorithm,
            id,
        }),
    }
}

fn read_rsa_scheme(r: &mut Reader<'_>) -> Result<KeyScheme, ParseError> {
    match wire::u16(r, Field::Scheme)? {
        TPM_ALG_NULL => Ok(KeyScheme::Null),
        TPM_ALG_RSASSA => Ok(KeyScheme::RsaSsa(wire::hash_alg(r, Field::SchemeHash)?)),
        TPM_ALG_RSAPSS => Ok(KeyScheme::RsaPss(wire::hash_alg(r, Field::SchemeHash)?)),
        // TPMS_ENC_SCHEME_RSAES is empty (Part 2, §11.2.3.2).
        TPM_ALG_RSAES => Ok(KeyScheme::RsaEs),
        TPM_ALG_OAEP => Ok(KeyScheme::Oaep(wire::hash_alg(r, Field::SchemeHash)?)),
        id => Err(ParseError::UnknownAlgorithm {
            field: Field::Scheme,
            id,
        }),
    }
}

fn read_ecc_scheme(r: &mut Reader<'_>) -> Result<KeyScheme, ParseError> {
    // ECDAA, EC-Schnorr and SM2 are not accepted: the verifier cannot check
    // their signatures.
    match wire::u16(r, Field::Scheme)? {
        TPM_ALG_NULL => Ok(KeyScheme::Null),
        TPM_ALG_ECDSA => Ok(KeyScheme::Ecdsa(wire::hash_alg(r, Field::SchemeHash)?)),
        TPM_ALG_ECDH => Ok(KeyScheme::Ecdh(wire::hash_alg(r, Field::SchemeHash)?)),
        id => Err(ParseError::UnknownAlgorithm {
            field: Field::Scheme,
            id,
        }),
    }
}

fn read_kdf(r: &mut Reader<'_>) -> Result<KdfScheme, ParseError> {
    let id = wire::u16(r, Field::KdfScheme)?;
    if id == TPM_ALG_NULL {
        return Ok(KdfScheme::Null);
    }
    let make = match id {
        TPM_ALG_MGF1 => KdfScheme::Mgf1,
        TPM_ALG_KDF1_SP800_56A => KdfScheme::Kdf1Sp80056a,
        TPM_ALG_KDF2 => KdfScheme::Kdf2,
        TPM_ALG_KDF1_SP800_108 => KdfScheme::Kdf1Sp800108,
        id => {
            return Err(ParseError::UnknownAlgorithm {
                field: Field::KdfScheme,
                id,
            });
        }
    };
    Ok(make(wire::hash_alg(r, Field::KdfHash)?))
}

fn read_rsa_key(r: &mut Reader<'_>) -> Result<PublicKey, ParseError> {
    let key_bits = wire::u16(r, Field::RsaKeyBits)?;
    if !RSA_KEY_BITS.contains(&key_bits) {
        return Err(ParseError::InvalidValue {
            field: Field::RsaKeyBits,
            value: u32::from(key_bits),
        });
    }
    // Part 2, §12.2.3.5: an exponent of zero means 2^16 + 1.
    let exponent = wire::u32(r, Field::RsaExponent)?;
    let modulus = wire::tpm2b(r, Field::RsaModulus, MAX_RSA_KEY_BYTES)?;
    let expected = usize::from(key_bits / 8);
    if modulus.len() != expected {
        return Err(ParseError::WrongLength {
            field: Field::RsaModulus,
            len: modulus.len(),
            expected,
        });
    }
    Ok(PublicKey::Rsa(RsaPublicKey::new(modulus, exponent)))
}

fn read_ecc_point(r: &mut Reader<'_>, curve: EccCurve) -> Result<PublicKey, ParseError> {
    // A TPM marshals both coordinates at the full field length; a shorter
    // or longer one is not a key it produced.
    let expected = curve.field_len();
    let mut coordinate = |field| -> Result<&[u8], ParseError> {
        let value = wire::tpm2b(r, field, MAX_ECC_KEY_BYTES)?;
        if value.len() == expected {
            Ok(value)
        } else {
            Err(ParseError::WrongLength {
                field,
                len: value.len(),
                expected,
            })
        }
    };
    let x = coordinate(Field::EccX)?;
    let y = coordinate(Field::EccY)?;
    EccPublicKey::new(curve, x, y)
        .map(PublicKey::Ecc)
        .ok_or(ParseError::WrongLength {
            field: Field::EccX,
            len: x.len(),
            expected,
        })
}

/// The name of an object (Part 1, §16): nameAlg followed by the digest of
/// its public area. Handles, which are names of permanent entities, are not
/// accepted here.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name {
    alg: HashAlg,
    bytes: Vec<u8>,
}

impl Name {
    /// Parses the contents of a TPM2B_NAME (as `tpm2_createak -n` writes).
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let mut r = Reader::new(bytes);
        let alg = wire::hash_alg(&mut r, Field::NameHash)?;
        let digest = r.peek_rest();
        if digest.len() != alg.digest_len() {
            return Err(ParseError::WrongLength {
                field: Field::NameDigest,
                len: digest.len(),
                expected: alg.digest_len(),
            });
        }
        Ok(Self {
            alg,
            bytes: bytes.to_vec(),
        })
    }

    /// The name bytes: algorithm identifier, then digest.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The hash algorithm of the name.
    pub fn hash_alg(&self) -> HashAlg {
        self.alg
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn testdata(name: &str) -> Vec<u8> {
        let path = format!("{}/testdata/tpm/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// The TPMT_PUBLIC inside a TPM2B_PUBLIC test file.
    fn tpmt(name: &str) -> Vec<u8> {
        testdata(name)[2..].to_vec()
    }

    /// Replaces `tpmt[at..at + old.len()]`, after checking it holds `old`.
    fn patched(tpmt: &[u8], at: usize, old: &[u8], new: &[u8]) -> Vec<u8> {
        assert_eq!(
            &tpmt[at..at + old.len()],
            old,
            "test patches the wrong bytes"
        );
        let mut out = tpmt[..at].to_vec();
        out.extend_from_slice(new);
        out.extend_from_slice(&tpmt[at + old.len()..]);
        out
    }

    #[test]
    fn parses_rsa_ak() {
        let ak = TpmPublic::parse(&testdata("ak_rsa.pub")).unwrap();
        assert_eq!(ak.name_alg(), HashAlg::Sha256);
        assert_eq!(ak.scheme(), KeyScheme::RsaSsa(HashAlg::Sha256));
        assert_eq!(ak.symmetric(), SymmetricDefinition::Null);
        assert_eq!(ak.attributes().bits(), 0x0005_0072);
        assert!(ak.attributes().contains(ObjectAttribute::Restricted));
        assert!(!ak.attributes().contains(ObjectAttribute::Decrypt));
        assert!(ak.auth_policy().is_empty());
        let PublicKey::Rsa(key) = ak.key() else {
            panic!("not RSA")
        };
        assert_eq!(key.bits(), 2048);
        assert_eq!(key.exponent(), 65537);
        assert_eq!(ak.marshalled(), &tpmt("ak_rsa.pub")[..]);
    }

    #[test]
    fn parses_ecc_aks() {
        let ak = TpmPublic::parse(&testdata("ak_ecc.pub")).unwrap();
        assert_eq!(ak.scheme(), KeyScheme::Ecdsa(HashAlg::Sha256));
        assert_eq!(ak.kdf(), KdfScheme::Null);
        let PublicKey::Ecc(key) = ak.key() else {
            panic!("not ECC")
        };
        assert_eq!(key.curve(), EccCurve::NistP256);

        let ak = TpmPublic::parse(&testdata("ak_ecc384.pub")).unwrap();
        assert_eq!(ak.scheme(), KeyScheme::Ecdsa(HashAlg::Sha384));
        let PublicKey::Ecc(key) = ak.key() else {
            panic!("not ECC")
        };
        assert_eq!(key.curve(), EccCurve::NistP384);
    }

    #[test]
    fn parses_endorsement_keys() {
        let ek = TpmPublic::parse(&testdata("ek_rsa.pub")).unwrap();
        assert_eq!(
            ek.symmetric(),
            SymmetricDefinition::AesCfb { key_bits: 128 }
        );
        assert_eq!(ek.scheme(), KeyScheme::Null);
        assert_eq!(ek.auth_policy().len(), 32);
        assert!(ek.attributes().contains(ObjectAttribute::Decrypt));

        let ek = TpmPublic::parse(&testdata("ek_ecc.pub")).unwrap();
        assert_eq!(
            ek.symmetric(),
            SymmetricDefinition::AesCfb { key_bits: 128 }
        );
        assert!(matches!(ek.key(), PublicKey::Ecc(k) if k.curve() == EccCurve::NistP256));
    }

    #[test]
    fn names_match_tpm2_createak() {
        for ak in ["ak_rsa", "ak_rsapss", "ak_ecc", "ak_ecc384"] {
            let public = TpmPublic::parse(&testdata(&format!("{ak}.pub"))).unwrap();
            let expected = testdata(&format!("{ak}.name"));
            assert_eq!(public.name().as_bytes(), &expected[..], "{ak}");
            assert_eq!(Name::parse(&expected).unwrap(), public.name());
            assert_eq!(public.name().hash_alg(), HashAlg::Sha256);
        }
    }

    #[test]
    fn name_rejects_handles_and_wrong_lengths() {
        assert_eq!(
            Name::parse(&[0x40, 0, 0, 1]),
            Err(ParseError::UnknownAlgorithm {
                field: Field::NameHash,
                id: 0x4000
            })
        );
        let mut name = testdata("ak_rsa.name");
        name.push(0);
        assert_eq!(
            Name::parse(&name),
            Err(ParseError::WrongLength {
                field: Field::NameDigest,
                len: 33,
                expected: 32
            })
        );
    }

    #[test]
    fn rejects_size_not_covering_the_object() {
        let mut bytes = testdata("ak_rsa.pub");
        bytes.push(0);
        assert_eq!(
            TpmPublic::parse(&bytes),
            Err(ParseError::TrailingBytes {
                structure: Structure::Public,
                count: 1
            })
        );
        // Size field one larger than the object, extra byte inside.
        let mut bytes = testdata("ak_rsa.pub");
        let size = u16::from_be_bytes([bytes[0], bytes[1]]) + 1;
        bytes[..2].copy_from_slice(&size.to_be_bytes());
        bytes.push(0);
        assert_eq!(
            TpmPublic::parse(&bytes),
            Err(ParseError::TrailingBytes {
                structure: Structure::Public,
                count: 1
            })
        );
    }

    #[test]
    fn rejects_oversized_public_area() {
        let mut bytes = vec![0x04, 0x01];
        bytes.extend_from_slice(&[0; 1025]);
        assert_eq!(
            TpmPublic::parse(&bytes),
            Err(ParseError::TooLarge {
                field: Field::PublicSize,
                len: 1025,
                max: 1024
            })
        );
    }

    #[test]
    fn rejects_keyedhash_objects() {
        let t = patched(&tpmt("ak_rsa.pub"), 0, &[0, 1], &[0, 8]);
        assert_eq!(
            TpmPublic::parse_tpmt(&t),
            Err(ParseError::UnknownAlgorithm {
                field: Field::ObjectType,
                id: 8
            })
        );
    }

    #[test]
    fn rejects_unknown_name_alg() {
        let t = patched(&tpmt("ak_rsa.pub"), 2, &[0, 0x0b], &[0, 0x12]);
        assert_eq!(
            TpmPublic::parse_tpmt(&t),
            Err(ParseError::UnknownAlgorithm {
                field: Field::NameAlg,
                id: 0x12
            })
        );
    }

    #[test]
    fn rejects_auth_policy_of_the_wrong_size() {
        let t = patched(&tpmt("ak_rsa.pub"), 8, &[0, 0], &[0, 1, 0xaa]);
        assert_eq!(
            TpmPublic::parse_tpmt(&t),
            Err(ParseError::WrongLength {
                field: Field::AuthPolicy,
                len: 1,
                expected: 32
            })
        );
    }

    #[test]
    fn rejects_unsupported_symmetric_definitions() {
        // EK: authPolicy is 32 bytes, so the symmetric definition is at 10 + 32.
        let ek = tpmt("ek_rsa.pub");
        let t = patched(&ek, 42, &[0, 6, 0, 128, 0, 0x43], &[0, 6, 0, 100, 0, 0x43]);
        assert_eq!(
            TpmPublic::parse_tpmt(&t),
            Err(ParseError::InvalidValue {
                field: Field::SymmetricKeyBits,
                value: 100
            })
        );
        let t = patched(&ek, 42, &[0, 6, 0, 128, 0, 0x43], &[0, 6, 0, 128, 0, 0x44]);
        assert_eq!(
            TpmPublic::parse_tpmt(&t),
            Err(ParseError::UnknownAlgorithm {
                field: Field::SymmetricMode,
                id: 0x44
            })
        );
        let t = patched(&ek, 42, &[0, 6], &[0, 0x26]);
        assert_eq!(
            TpmPublic::parse_tpmt(&t),
            Err(ParseError::UnknownAlgorithm {
                field: Field::SymmetricAlgorithm,
                id: 0x26
            })
        );
    }

    #[test]
    fn rejects_schemes_of_the_other_key_type() {
        // ECDSA on an RSA key.
        let t = patched(&tpmt("ak_rsa.pub"), 12, &[0, 0x14], &[0, 0x18]);
        assert_eq!(
            TpmPublic::parse_tpmt(&t),
            Err(ParseError::UnknownAlgorithm {
                field: Field::Scheme,
                id: 0x18
            })
        );
        // RSASSA on an ECC key.
        let t = patched(&tpmt("ak_ecc.pub"), 12, &[0, 0x18], &[0, 0x14]);
        assert_eq!(
            TpmPublic::parse_tpmt(&t),
            Err(ParseError::UnknownAlgorithm {
                field: Field::Scheme,
                id: 0x14
            })
        );
        // Unknown scheme hash.
        let t = patched(&tpmt("ak_ecc.pub"), 14, &[0, 0x0b], &[0, 0x10]);
        assert_eq!(
            TpmPublic::parse_tpmt(&t),
            Err(ParseError::UnknownAlgorithm {
                field: Field::SchemeHash,
                id: 0x10
            })
        );
    }

    #[test]
    fn rejects_rsa_key_size_and_modulus_mismatch() {
        let t = patched(&tpmt("ak_rsa.pub"), 16, &[8, 0], &[8, 1]);
        assert_eq!(
            TpmPublic::parse_tpmt(&t),
            Err(ParseError::InvalidValue {
                field: Field::RsaKeyBits,
                value: 2049
            })
        );
        let t = patched(&tpmt("ak_rsa.pub"), 16, &[8, 0], &[0x0c, 0]);
        assert_eq!(
            TpmPublic::parse_tpmt(&t),
            Err(ParseError::WrongLength {
                field: Field::RsaModulus,
                len: 256,
                expected: 384
            })
        );
    }

    #[test]
    fn rejects_unknown_curve_and_short_coordinates() {
        let t = patched(&tpmt("ak_ecc.pub"), 16, &[0, 3], &[0, 0x20]);
        assert_eq!(
            TpmPublic::parse_tpmt(&t),
            Err(ParseError::UnknownAlgorithm {
                field: Field::EccCurve,
                id: 0x20
            })
        );
        // x declared as 31 bytes: its last byte is read as y's size.
        let t = patched(&tpmt("ak_ecc.pub"), 20, &[0, 32], &[0, 31]);
        assert_eq!(
            TpmPublic::parse_tpmt(&t),
            Err(ParseError::WrongLength {
                field: Field::EccX,
                len: 31,
                expected: 32
            })
        );
    }

    #[test]
    fn truncated_public_areas_are_errors() {
        for file in ["ak_rsa.pub", "ak_ecc.pub", "ek_rsa.pub", "ek_ecc.pub"] {
            let bytes = testdata(file);
            for len in 0..bytes.len() {
                assert!(
                    TpmPublic::parse(&bytes[..len]).is_err(),
                    "{file}: accepted {len} bytes"
                );
                assert!(TpmPublic::parse_tpmt(&bytes[2..len.max(2)]).is_err());
            }
        }
    }
}
