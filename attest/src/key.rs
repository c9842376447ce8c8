//! Public keys as the verifier sees them, independent of their encoding
//! (TPM2B_PUBLIC, SubjectPublicKeyInfo).

use crate::reader::Reader;

/// An elliptic curve the verifier accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EccCurve {
    /// NIST P-256 (TPM_ECC_NIST_P256, 0x0003).
    NistP256,
    /// NIST P-384 (TPM_ECC_NIST_P384, 0x0004).
    NistP384,
}

impl EccCurve {
    /// Length in bytes of a coordinate or scalar on this curve.
    pub fn field_len(self) -> usize {
        match self {
            Self::NistP256 => 32,
            Self::NistP384 => 48,
        }
    }

    /// The TPM_ECC_CURVE identifier (TPM 2.0 Part 2, §6.4).
    pub fn tpm_curve_id(self) -> u16 {
        match self {
            Self::NistP256 => 0x0003,
            Self::NistP384 => 0x0004,
        }
    }

    /// Maps a TPM_ECC_CURVE identifier, or `None` for curves we do not accept.
    pub fn from_tpm_curve_id(id: u16) -> Option<Self> {
        match id {
            0x0003 => Some(Self::NistP256),
            0x0004 => Some(Self::NistP384),
            _ => None,
        }
    }
}

/// An RSA public key: big-endian modulus without leading zero bytes, and exponent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaPublicKey {
    modulus: Vec<u8>,
    exponent: u32,
}

impl RsaPublicKey {
    /// Builds a key from a big-endian modulus (leading zero bytes are stripped) and an exponent.
    /// An exponent of 0 means the TPM default, 65537 (TPM 2.0 Part 2, §12.2.3.5).
    pub fn new(modulus: &[u8], exponent: u32) -> Self {
        let first = modulus
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(modulus.len());
        let modulus = modulus.get(first..).unwrap_or_default().to_vec();
        let exponent = if exponent == 0 { 65537 } else { exponent };
        Self { modulus, exponent }
    }

    /// Big-endian modulus without leading zeros.
    pub fn modulus(&self) -> &[u8] {
        &self.modulus
    }

    /// Public exponent.
    pub fn exponent(&self) -> u32 {
        self.exponent
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        let lead = self.modulus.first().map_or(0, |b| b.leading_zeros());
        let lead = usize::try_from(lead).unwrap_or(0);
        self.modulus.len().saturating_mul(8).saturating_sub(lead)
    }
}

/// An elliptic-curve public point, coordinates zero-padded to the field length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EccPublicKey {
    curve: EccCurve,
    x: Vec<u8>,
    y: Vec<u8>,
}

impl EccPublicKey {
    /// Builds a point; `None` when a coordinate is longer than the field
    /// (after leading zeros are stripped). Whether the point lies on the
    /// curve is checked by the cryptographic operation that uses it.
    pub fn new(curve: EccCurve, x: &[u8], y: &[u8]) -> Option<Self> {
        Some(Self {
            curve,
            x: pad(x, curve.field_len())?,
            y: pad(y, curve.field_len())?,
        })
    }

    /// The curve.
    pub fn curve(&self) -> EccCurve {
        self.curve
    }

    /// X coordinate, field length.
    pub fn x(&self) -> &[u8] {
        &self.x
    }

    /// Y coordinate, field length.
    pub fn y(&self) -> &[u8] {
        &self.y
    }

    /// SEC 1 uncompressed encoding `04 || x || y`.
    pub fn uncompressed(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 2 * self.curve.field_len());
        out.push(0x04);
        out.extend_from_slice(&self.x);
        out.extend_from_slice(&self.y);
        out
    }
}

/// Left-pads `value` with zeros to `len` bytes, stripping extra leading zeros.
fn pad(value: &[u8], len: usize) -> Option<Vec<u8>> {
    let first = value.iter().position(|b| *b != 0).unwrap_or(value.len());
    let significant = value.get(first..)?;
    let zeros = len.checked_sub(significant.len())?;
    let mut out = vec![0u8; zeros];
    out.extend_from_slice(significant);
    Some(out)
}

/// A public key of a TPM object or certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublicKey {
    /// RSA.
    Rsa(RsaPublicKey),
    /// Elliptic curve.
    Ecc(EccPublicKey),
}

/// Largest DER SubjectPublicKeyInfo accepted. An RSA-8192 SPKI is 1,062 bytes.
pub const MAX_SPKI_LEN: usize = 2048;

/// Largest PEM text accepted by [`PublicKey::from_pem`].
pub const MAX_PUBLIC_KEY_PEM_LEN: usize = 4096;

/// Smallest RSA modulus [`PublicKey::from_spki_der`] accepts, in bits.
pub const MIN_RSA_MODULUS_BITS: usize = 1024;

/// Largest RSA modulus [`PublicKey::from_spki_der`] accepts, in bits (the
/// largest `ring` verifies).
pub const MAX_RSA_MODULUS_BITS: usize = 8192;

/// A SubjectPublicKeyInfo or PEM public key that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The input is longer than the cap for its encoding.
    #[error("public key encoding is {len} bytes, more than {max}")]
    TooLarge {
        /// Bytes given.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The DER structure is not a well-formed SubjectPublicKeyInfo.
    #[error("malformed SubjectPublicKeyInfo DER at byte {offset}")]
    Malformed {
        /// Offset of the first byte that could not be accepted.
        offset: usize,
    },
    /// Bytes follow the SubjectPublicKeyInfo.
    #[error("{len} bytes follow the SubjectPublicKeyInfo")]
    TrailingData {
        /// Number of extra bytes.
        len: usize,
    },
    /// The algorithm is neither rsaEncryption nor id-ecPublicKey.
    #[error("unsupported public key algorithm {oid}")]
    UnsupportedAlgorithm {
        /// Dotted OID of the algorithm.
        oid: String,
    },
    /// The EC key names a curve other than P-256 or P-384.
    #[error("unsupported elliptic curve {oid}")]
    UnsupportedCurve {
        /// Dotted OID of the curve.
        oid: String,
    },
    /// The EC key carries explicit curve parameters instead of a named curve.
    #[error("EC key does not use a named curve")]
    NotNamedCurve,
    /// The EC point is not an uncompressed point of the curve's size.
    #[error("EC point of {len} bytes starting with {first_byte:?} is not uncompressed")]
    UnsupportedPointEncoding {
        /// First byte of the point (0x02/0x03 for compressed points).
        first_byte: Option<u8>,
        /// Length of the point.
        len: usize,
    },
    /// The RSA modulus size is outside the accepted range.
    #[error("RSA modulus of {bits} bits is outside the accepted range")]
    RsaModulusSize {
        /// Modulus size in bits.
        bits: usize,
    },
    /// The RSA public exponent is even, below 3 or above `u32::MAX`.
    #[error("unsupported RSA public exponent")]
    RsaExponent,
    /// The PEM text is not one well-formed block.
    #[error("malformed PEM")]
    PemMalformed,
    /// The PEM block is not a `PUBLIC KEY`.
    #[error("PEM block is {label:?}, expected \"PUBLIC KEY\"")]
    PemLabel {
        /// The label found.
        label: String,
    },
    /// Something other than whitespace surrounds the PEM block.
    #[error("text outside the PEM block")]
    PemTrailingData,
}

// DER tags (X.690 §8) used by SubjectPublicKeyInfo.
const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_NULL: u8 = 0x05;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;

// OID contents octets (X.690 §8.19).
/// rsaEncryption, 1.2.840.113549.1.1.1 (RFC 3279 §2.3.1).
const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// id-ecPublicKey, 1.2.840.10045.2.1 (RFC 5480 §2.1.1).
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// secp256r1, 1.2.840.10045.3.1.7 (RFC 5480 §2.1.1.1).
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// secp384r1, 1.3.132.0.34 (RFC 5480 §2.1.1.1).
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];

impl EccCurve {
    fn oid(self) -> &'static [u8] {
        match self {
            Self::NistP256 => OID_P256,
            Self::NistP384 => OID_P384,
        }
    }
}

impl PublicKey {
    /// Parses a DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7).
    ///
    /// Accepts rsaEncryption keys (RFC 3279 §2.3.1: NULL parameters, positive
    /// modulus of [`MIN_RSA_MODULUS_BITS`]..=[`MAX_RSA_MODULUS_BITS`] bits,
    /// odd exponent that fits in 32 bits) and id-ecPublicKey keys on the named
    /// curves P-256 and P-384 with uncompressed points (RFC 5480 §2.1.1, §2.2).
    /// The encoding must be DER: minimal lengths, minimal integers, nothing
    /// after the structure. Whether an EC point lies on its curve is checked by
    /// the signature verification that uses it.
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey, KeyError> {
        if der.len() > MAX_SPKI_LEN {
            return Err(KeyError::TooLarge {
                len: der.len(),
                max: MAX_SPKI_LEN,
            });
        }
        let mut outer = Reader::new(der);
        let (spki, spki_at) = der_expect(&mut outer, TAG_SEQUENCE, 0)?;
        if !outer.is_empty() {
            return Err(KeyError::TrailingData {
                len: outer.remaining(),
            });
        }
        let mut r = Reader::new(spki);
        let (algorithm, algorithm_at) = der_expect(&mut r, TAG_SEQUENCE, spki_at)?;
        let (bits, bits_at) = der_expect(&mut r, TAG_BIT_STRING, spki_at)?;
        if !r.is_empty() {
            return Err(KeyError::Malformed {
                offset: spki_at.saturating_add(r.consumed()),
            });
        }
        // RSAPublicKey and ECPoint (RFC 3279 §2.3.1, RFC 5480 §2.2) are whole
        // octets, so the BIT STRING's unused-bits count (X.690 §8.6.2.2) is zero.
        let key = match bits.split_first() {
            Some((0, key)) => key,
            _ => return Err(KeyError::Malformed { offset: bits_at }),
        };
        let key_at = bits_at.saturating_add(1);

        let mut alg = Reader::new(algorithm);
        let (oid, _) = der_expect(&mut alg, TAG_OID, algorithm_at)?;
        let params = alg.peek_rest();
        let params_at = algorithm_at.saturating_add(alg.consumed());
        if oid == OID_RSA_ENCRYPTION {
            // RFC 3279 §2.3.1: the parameters of rsaEncryption are NULL.
            if params != [TAG_NULL, 0x00] {
                return Err(KeyError::Malformed { offset: params_at });
            }
            parse_rsa_public_key(key, key_at)
        } else if oid == OID_EC_PUBLIC_KEY {
            // RFC 5480 §2.1.1: namedCurve is the only form allowed in PKIX.
            let mut p = Reader::new(params);
            let curve_oid = match der_tlv(&mut p, params_at) {
                Ok((TAG_OID, curve)) if p.is_empty() => curve,
                _ => return Err(KeyError::NotNamedCurve),
            };
            let curve = if curve_oid == OID_P256 {
                EccCurve::NistP256
            } else if curve_oid == OID_P384 {
                EccCurve::NistP384
            } else {
                return Err(KeyError::UnsupportedCurve {
                    oid: oid_string(curve_oid),
                });
            };
            parse_ec_point(curve, key)
        } else {
            Err(KeyError::UnsupportedAlgorithm {
                oid: oid_string(oid),
            })
        }
    }

    /// Parses a PEM `-----BEGIN PUBLIC KEY-----` block (RFC 7468 §13) holding a
    /// SubjectPublicKeyInfo. Only whitespace may surround the block.
    pub fn from_pem(pem: &str) -> Result<PublicKey, KeyError> {
        if pem.len() > MAX_PUBLIC_KEY_PEM_LEN {
            return Err(KeyError::TooLarge {
                len: pem.len(),
                max: MAX_PUBLIC_KEY_PEM_LEN,
            });
        }
        let text = pem.trim_start();
        // x509-parser skips any text before the first BEGIN line; a key file
        // with leading text is more likely a mix-up than a key.
        if !text.starts_with("-----BEGIN ") {
            return Err(KeyError::PemMalformed);
        }
        let (rest, block) = x509_parser::pem::parse_x509_pem(text.as_bytes())
            .map_err(|_| KeyError::PemMalformed)?;
        if block.label != "PUBLIC KEY" {
            return Err(KeyError::PemLabel { label: block.label });
        }
        if !rest.iter().all(u8::is_ascii_whitespace) {
            return Err(KeyError::PemTrailingData);
        }
        Self::from_spki_der(&block.contents)
    }

    /// Encodes the key as a DER SubjectPublicKeyInfo, the inverse of
    /// [`PublicKey::from_spki_der`].
    pub fn to_spki_der(&self) -> Vec<u8> {
        // The two shapes are fixed (RFC 3279 §2.3.1, RFC 5480 §2), so a few
        // lines of DER writing replace an ASN.1 encoder dependency.
        let (algorithm, key) = match self {
            Self::Rsa(rsa) => {
                let mut alg = tlv(TAG_OID, OID_RSA_ENCRYPTION);
                alg.extend_from_slice(&[TAG_NULL, 0x00]);
                let mut ints = der_unsigned_integer(rsa.modulus());
                ints.extend(der_unsigned_integer(&rsa.exponent().to_be_bytes()));
                (alg, tlv(TAG_SEQUENCE, &ints))
            }
            Self::Ecc(ecc) => {
                let mut alg = tlv(TAG_OID, OID_EC_PUBLIC_KEY);
                alg.extend(tlv(TAG_OID, ecc.curve().oid()));
                (alg, ecc.uncompressed())
            }
        };
        let mut bit_string = Vec::with_capacity(key.len().saturating_add(1));
        bit_string.push(0);
        bit_string.extend_from_slice(&key);
        let mut body = tlv(TAG_SEQUENCE, &algorithm);
        body.extend(tlv(TAG_BIT_STRING, &bit_string));
        tlv(TAG_SEQUENCE, &body)
    }
}

/// RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
/// (RFC 3279 §2.3.1). `at` is the offset of `key` in the SPKI, for errors.
fn parse_rsa_public_key(key: &[u8], at: usize) -> Result<PublicKey, KeyError> {
    let mut outer = Reader::new(key);
    let (seq, seq_at) = der_expect(&mut outer, TAG_SEQUENCE, at)?;
    if !outer.is_empty() {
        return Err(KeyError::Malformed {
            offset: at.saturating_add(outer.consumed()),
        });
    }
    let mut r = Reader::new(seq);
    let modulus = der_positive_integer(&mut r, seq_at)?;
    let exponent = der_positive_integer(&mut r, seq_at)?;
    if !r.is_empty() {
        return Err(KeyError::Malformed {
            offset: seq_at.saturating_add(r.consumed()),
        });
    }
    let rsa = RsaPublicKey::new(modulus, 0);
    let bits = rsa.bits();
    if !(MIN_RSA_MODULUS_BITS..=MAX_RSA_MODULUS_BITS).contains(&bits) {
        return Err(KeyError::RsaModulusSize { bits });
    }
    // RsaPublicKey holds a u32 exponent. Exponents 1 and even values are not
    // RSA keys (and `RsaPublicKey::new` would read 0 as the TPM default).
    let exponent = exponent
        .iter()
        .try_fold(0u32, |acc, b| {
            acc.checked_mul(256)?.checked_add(u32::from(*b))
        })
        .filter(|e| *e >= 3 && e % 2 == 1)
        .ok_or(KeyError::RsaExponent)?;
    Ok(PublicKey::Rsa(RsaPublicKey { exponent, ..rsa }))
}

/// ECPoint: SEC 1 §2.3.3 uncompressed form `04 || X || Y` (RFC 5480 §2.2).
fn parse_ec_point(curve: EccCurve, point: &[u8]) -> Result<PublicKey, KeyError> {
    let field = curve.field_len();
    let malformed = || KeyError::UnsupportedPointEncoding {
        first_byte: point.first().copied(),
        len: point.len(),
    };
    let coordinates = match point.split_first() {
        Some((0x04, rest)) if rest.len() == field.saturating_mul(2) => rest,
        _ => return Err(malformed()),
    };
    let (x, y) = coordinates.split_at(field);
    let ecc = EccPublicKey::new(curve, x, y).ok_or_else(malformed)?;
    Ok(PublicKey::Ecc(ecc))
}

/// Reads one DER TLV and returns its tag and contents. Only low tag numbers
/// and definite lengths in their shortest form are accepted (X.690 §10.1);
/// two length octets are enough for everything under [`MAX_SPKI_LEN`].
/// `at` is the offset of `r`'s input in the whole encoding, for errors.
fn der_tlv<'a>(r: &mut Reader<'a>, at: usize) -> Result<(u8, &'a [u8]), KeyError> {
    let start = at.saturating_add(r.consumed());
    let malformed = KeyError::Malformed { offset: start };
    let tag = r.u8().map_err(|_| malformed.clone())?;
    if tag & 0x1f == 0x1f {
        return Err(malformed);
    }
    let len = match r.u8().map_err(|_| malformed.clone())? {
        short @ 0x00..=0x7f => usize::from(short),
        0x81 => match r.u8().map_err(|_| malformed.clone())? {
            long @ 0x80..=0xff => usize::from(long),
            _ => return Err(malformed),
        },
        0x82 => match r.u16_be().map_err(|_| malformed.clone())? {
            long @ 0x0100..=0xffff => usize::from(long),
            _ => return Err(malformed),
        },
        _ => return Err(malformed),
    };
    let contents = r.bytes(len).map_err(|_| malformed)?;
    Ok((tag, contents))
}

/// Reads one DER TLV that must carry `tag`; returns its contents and their
/// offset in the whole encoding.
fn der_expect<'a>(r: &mut Reader<'a>, tag: u8, at: usize) -> Result<(&'a [u8], usize), KeyError> {
    let start = at.saturating_add(r.consumed());
    match der_tlv(r, at)? {
        (found, contents) if found == tag => {
            let contents_at = at
                .saturating_add(r.consumed())
                .saturating_sub(contents.len());
            Ok((contents, contents_at))
        }
        _ => Err(KeyError::Malformed { offset: start }),
    }
}

/// Reads a DER INTEGER that must be positive and minimally encoded (X.690
/// §8.3.2); returns its magnitude without the sign octet.
fn der_positive_integer<'a>(r: &mut Reader<'a>, at: usize) -> Result<&'a [u8], KeyError> {
    let start = at.saturating_add(r.consumed());
    let (bytes, _) = der_expect(r, TAG_INTEGER, at)?;
    match bytes {
        [0x00, next, ..] if *next >= 0x80 => Ok(bytes.get(1..).unwrap_or_default()),
        [first, ..] if *first != 0x00 && *first < 0x80 => Ok(bytes),
        _ => Err(KeyError::Malformed { offset: start }),
    }
}

/// A DER TLV with the given tag and contents.
fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(contents.len().saturating_add(6));
    out.push(tag);
    match u8::try_from(contents.len()) {
        Ok(short) if short < 0x80 => out.push(short),
        _ => {
            let len = contents.len().to_be_bytes();
            let first = len.iter().position(|b| *b != 0).unwrap_or(0);
            let significant = len.get(first..).unwrap_or_default();
            // At most size_of::<usize>() octets, so the count fits in 7 bits.
            out.push(0x80 | u8::try_from(significant.len()).unwrap_or(0x7f));
            out.extend_from_slice(significant);
        }
    }
    out.extend_from_slice(contents);
    out
}

/// A DER INTEGER holding the unsigned big-endian `magnitude`.
fn der_unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    let first = magnitude
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(magnitude.len());
    let significant = magnitude.get(first..).unwrap_or_default();
    let mut contents = Vec::with_capacity(significant.len().saturating_add(1));
    // X.690 §8.3.2: a leading zero octet only when the high bit would
    // otherwise make the value negative, and zero itself is one 0x00 octet.
    if significant.first().is_none_or(|b| *b >= 0x80) {
        contents.push(0);
    }
    contents.extend_from_slice(significant);
    tlv(TAG_INTEGER, &contents)
}

/// Dotted-decimal form of OID contents octets, for error reports.
pub(crate) fn oid_string(contents: &[u8]) -> String {
    x509_parser::asn1_rs::Oid::new(std::borrow::Cow::Borrowed(contents)).to_id_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_normalises_modulus_and_default_exponent() {
        let k = RsaPublicKey::new(&[0, 0, 0x80, 1], 0);
        assert_eq!(k.modulus(), &[0x80, 1]);
        assert_eq!(k.exponent(), 65537);
        assert_eq!(k.bits(), 16);
    }

    #[test]
    fn ecc_pads_and_bounds_coordinates() {
        let k = EccPublicKey::new(EccCurve::NistP256, &[1], &[0, 2]).unwrap();
        assert_eq!(k.x().len(), 32);
        assert_eq!(k.uncompressed().len(), 65);
        assert!(EccPublicKey::new(EccCurve::NistP256, &[1; 33], &[1]).is_none());
        assert!(EccPublicKey::new(EccCurve::NistP256, &[0; 40], &[1]).is_some());
    }
}

#[cfg(test)]
mod spki_tests {
    //! SubjectPublicKeyInfo and PEM decoding against OpenSSL-generated keys
    //! (`attest/testdata/ek/keys/`, made by `attest/testdata/ek/gen.sh`).

    use super::*;

    fn vector(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/ek/keys")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn pem(name: &str) -> String {
        String::from_utf8(vector(name)).unwrap()
    }

    #[test]
    fn openssl_keys_round_trip_through_der_and_pem() {
        for (name, expected) in [
            ("rsa2048", "rsa 2048 65537"),
            ("rsa3072-e3", "rsa 3072 3"),
            ("p256", "ecc NistP256"),
            ("p384", "ecc NistP384"),
        ] {
            let der = vector(&format!("{name}.pub.der"));
            let key = PublicKey::from_spki_der(&der).unwrap();
            let summary = match &key {
                PublicKey::Rsa(rsa) => format!("rsa {} {}", rsa.bits(), rsa.exponent()),
                PublicKey::Ecc(ecc) => format!("ecc {:?}", ecc.curve()),
            };
            assert_eq!(summary, expected);
            assert_eq!(
                key.to_spki_der(),
                der,
                "{name}: re-encoding differs from OpenSSL's"
            );
            assert_eq!(
                PublicKey::from_pem(&pem(&format!("{name}.pub.pem"))),
                Ok(key)
            );
        }
    }

    #[test]
    fn keys_built_from_tpm_parts_round_trip() {
        // Leading zeros, the TPM default exponent and short coordinates.
        let mut modulus = vec![0u8, 0];
        modulus.extend(std::iter::repeat_n(0xc5, 256));
        let rsa = PublicKey::Rsa(RsaPublicKey::new(&modulus, 0));
        assert_eq!(PublicKey::from_spki_der(&rsa.to_spki_der()), Ok(rsa));
        // A modulus whose top byte is below 0x80 needs no sign octet.
        let rsa = PublicKey::Rsa(RsaPublicKey::new(&[0x7f; 256], 0x8000_0001));
        assert_eq!(PublicKey::from_spki_der(&rsa.to_spki_der()), Ok(rsa));
        let p384 = PublicKey::from_spki_der(&vector("p384.pub.der")).unwrap();
        let PublicKey::Ecc(ecc) = &p384 else { panic!() };
        let short =
            PublicKey::Ecc(EccPublicKey::new(EccCurve::NistP384, ecc.x(), &[0, 0, 7]).unwrap());
        assert_eq!(PublicKey::from_spki_der(&short.to_spki_der()), Ok(short));
    }

    #[test]
    fn unsupported_algorithms_curves_and_points_are_named() {
        assert_eq!(
            PublicKey::from_spki_der(&vector("ed25519.pub.der")),
            Err(KeyError::UnsupportedAlgorithm {
                oid: "1.3.101.112".into()
            })
        );
        assert_eq!(
            PublicKey::from_spki_der(&vector("p521.pub.der")),
            Err(KeyError::UnsupportedCurve {
                oid: "1.3.132.0.35".into()
            })
        );
        let compressed = vector("p256-compressed.pub.der");
        let first = compressed[compressed.len() - 33];
        assert!(first == 2 || first == 3);
        assert_eq!(
            PublicKey::from_spki_der(&compressed),
            Err(KeyError::UnsupportedPointEncoding {
                first_byte: Some(first),
                len: 33
            })
        );
        assert_eq!(
            PublicKey::from_pem(&pem("ed25519.pub.pem")),
            Err(KeyError::UnsupportedAlgorithm {
                oid: "1.3.101.112".into()
            })
        );
        // A P-256 point labelled P-384 has the wrong length.
        let mut relabelled = vector("p256.pub.der");
        let at = relabelled
            .windows(OID_P256.len())
            .position(|w| w == OID_P256)
            .unwrap();
        relabelled.splice(at - 2..at + OID_P256.len(), tlv(TAG_OID, OID_P384));
        relabelled[1] -= 3;
        relabelled[3] -= 3;
        assert_eq!(
            PublicKey::from_spki_der(&relabelled),
            Err(KeyError::UnsupportedPointEncoding {
                first_byte: Some(4),
                len: 65
            })
        );
        // Explicit curve parameters (here a NULL) instead of a named curve.
        let mut explicit = vector("p256.pub.der");
        explicit.splice(at - 2..at + OID_P256.len(), [TAG_NULL, 0x00]);
        explicit[1] -= 8;
        explicit[3] -= 8;
        assert_eq!(
            PublicKey::from_spki_der(&explicit),
            Err(KeyError::NotNamedCurve)
        );
    }

    /// An RSA SPKI with the given modulus and exponent contents octets.
    fn rsa_spki(modulus: &[u8], exponent: &[u8]) -> Vec<u8> {
        let mut alg = tlv(TAG_OID, OID_RSA_ENCRYPTION);
        alg.extend_from_slice(&[TAG_NULL, 0]);
        let mut ints = tlv(TAG_INTEGER, modulus);
        ints.extend(tlv(TAG_INTEGER, exponent));
        let mut bits = vec![0u8];
        bits.extend(tlv(TAG_SEQUENCE, &ints));
        let mut body = tlv(TAG_SEQUENCE, &alg);
        body.extend(tlv(TAG_BIT_STRING, &bits));
        tlv(TAG_SEQUENCE, &body)
    }

    #[test]
    fn rsa_integers_sizes_and_exponents_are_checked() {
        let mut modulus = vec![0u8, 0xc5];
        modulus.extend(std::iter::repeat_n(0x11, 255));
        assert!(PublicKey::from_spki_der(&rsa_spki(&modulus, &[1, 0, 1])).is_ok());
        for exponent in [&[2u8][..], &[1], &[1, 0, 0], &[1, 0, 0, 0, 1]] {
            assert_eq!(
                PublicKey::from_spki_der(&rsa_spki(&modulus, exponent)),
                Err(KeyError::RsaExponent)
            );
        }
        assert_eq!(
            PublicKey::from_spki_der(&rsa_spki(&[0x40; 64], &[3])),
            Err(KeyError::RsaModulusSize { bits: 511 })
        );
        let mut huge = vec![0u8];
        huge.extend(std::iter::repeat_n(0xff, 1025));
        assert_eq!(
            PublicKey::from_spki_der(&rsa_spki(&huge, &[3])),
            Err(KeyError::RsaModulusSize { bits: 8200 })
        );
        // Negative modulus (no sign octet) and a redundant leading zero.
        let negative = rsa_spki(&modulus[1..], &[3]);
        assert!(matches!(
            PublicKey::from_spki_der(&negative),
            Err(KeyError::Malformed { .. })
        ));
        let mut padded = vec![0u8];
        padded.extend_from_slice(&modulus);
        assert!(matches!(
            PublicKey::from_spki_der(&rsa_spki(&padded, &[3])),
            Err(KeyError::Malformed { .. })
        ));
    }

    #[test]
    fn der_must_be_canonical_and_complete() {
        let der = vector("rsa2048.pub.der");
        let mut trailing = der.clone();
        trailing.push(0);
        assert_eq!(
            PublicKey::from_spki_der(&trailing),
            Err(KeyError::TrailingData { len: 1 })
        );
        // Outer length 0x82 0x01 0x22 re-encoded with a redundant third octet.
        let mut long_form = vec![0x30, 0x83, 0x00];
        long_form.extend_from_slice(&der[2..]);
        assert_eq!(
            PublicKey::from_spki_der(&long_form),
            Err(KeyError::Malformed { offset: 0 })
        );
        // Unused bits in the key BIT STRING.
        let mut unused = der.clone();
        let at = unused
            .windows(3)
            .position(|w| w == [TAG_BIT_STRING, 0x82, 0x01])
            .unwrap()
            + 4;
        unused[at] = 1;
        assert!(matches!(
            PublicKey::from_spki_der(&unused),
            Err(KeyError::Malformed { .. })
        ));
        // rsaEncryption without its NULL parameters.
        let mut no_null = der.clone();
        let at = no_null.windows(2).position(|w| w == [TAG_NULL, 0]).unwrap();
        no_null.drain(at..at + 2);
        no_null[3] -= 2;
        no_null[5] -= 2;
        assert!(matches!(
            PublicKey::from_spki_der(&no_null),
            Err(KeyError::Malformed { .. })
        ));
        assert_eq!(
            PublicKey::from_spki_der(&[0x30; MAX_SPKI_LEN + 1]),
            Err(KeyError::TooLarge {
                len: MAX_SPKI_LEN + 1,
                max: MAX_SPKI_LEN
            })
        );
    }

    #[test]
    fn pem_must_be_one_public_key_block() {
        let text = pem("p256.pub.pem");
        assert!(PublicKey::from_pem(&format!("\n  {text}\n\n")).is_ok());
        assert_eq!(
            PublicKey::from_pem(&format!("{text}more")),
            Err(KeyError::PemTrailingData)
        );
        assert_eq!(
            PublicKey::from_pem(&format!("{text}{text}")),
            Err(KeyError::PemTrailingData)
        );
        assert_eq!(
            PublicKey::from_pem(&format!("key:\n{text}")),
            Err(KeyError::PemMalformed)
        );
        let cert_label = text.replace("PUBLIC KEY", "CERTIFICATE");
        assert_eq!(
            PublicKey::from_pem(&cert_label),
            Err(KeyError::PemLabel {
                label: "CERTIFICATE".into()
            })
        );
        let bad_base64 = text.replacen("MF", "M!", 1);
        assert_eq!(
            PublicKey::from_pem(&bad_base64),
            Err(KeyError::PemMalformed)
        );
        assert_eq!(
            PublicKey::from_pem(&text[..text.len() - 20]),
            Err(KeyError::PemMalformed)
        );
        let big = " ".repeat(MAX_PUBLIC_KEY_PEM_LEN + 1);
        assert_eq!(
            PublicKey::from_pem(&big),
            Err(KeyError::TooLarge {
                len: MAX_PUBLIC_KEY_PEM_LEN + 1,
                max: MAX_PUBLIC_KEY_PEM_LEN
            })
        );
    }

    #[test]
    fn truncated_and_corrupted_spki_never_panics() {
        for name in [
            "rsa2048",
            "rsa3072-e3",
            "p256",
            "p384",
            "p521",
            "ed25519",
            "p256-compressed",
        ] {
            let der = vector(&format!("{name}.pub.der"));
            for len in 0..der.len() {
                assert!(
                    PublicKey::from_spki_der(&der[..len]).is_err(),
                    "{name} prefix {len}"
                );
            }
            for at in 0..der.len() {
                for flip in [0x01, 0x80, 0xff] {
                    let mut corrupted = der.clone();
                    corrupted[at] ^= flip;
                    if let Ok(key) = PublicKey::from_spki_der(&corrupted) {
                        // Whatever is accepted re-encodes to the same bytes.
                        assert_eq!(key.to_spki_der(), corrupted, "{name} byte {at} ^ {flip:#x}");
                    }
                }
            }
        }
        for garbage in [
            &b""[..],
            b"\x30",
            b"\x30\x80\x00\x00",
            b"\x30\x84\xff\xff\xff\xff",
            b"\x1f\x01\x00",
        ] {
            assert!(PublicKey::from_spki_der(garbage).is_err());
        }
        let text = pem("rsa2048.pub.pem");
        for len in 0..text.len() {
            let _ = PublicKey::from_pem(&text[..len]);
        }
    }
}
