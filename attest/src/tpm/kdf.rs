//! The TPM key derivation functions KDFa and KDFe (TPM 2.0 Part 1, §11.4.10).
//!
//! Outputs are secrets (seeds and keys) and come back in [`Zeroizing`]
//! buffers, wiped on drop.

use crate::digest::HashAlg;
use zeroize::Zeroizing;

/// Largest output requested of a KDF: two SHA-512 blocks. The TPM derives at
/// most a symmetric key (256 bits) or an HMAC key (one digest) at a time.
const MAX_KDF_BITS: u32 = 1024;

/// The HMAC of `alg`, as `ring` names it.
pub(crate) fn hmac_algorithm(alg: HashAlg) -> ring::hmac::Algorithm {
    match alg {
        HashAlg::Sha1 => ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        HashAlg::Sha256 => ring::hmac::HMAC_SHA256,
        HashAlg::Sha384 => ring::hmac::HMAC_SHA384,
        HashAlg::Sha512 => ring::hmac::HMAC_SHA512,
    }
}

/// Output length in bytes for `bits`, or `None` unless `bits` is a positive
/// multiple of 8 within [`MAX_KDF_BITS`]. The TPM allows other bit counts,
/// but nothing this crate derives needs them.
fn output_len(bits: u32) -> Option<usize> {
    if bits == 0 || !bits.is_multiple_of(8) || bits > MAX_KDF_BITS {
        return None;
    }
    usize::try_from(bits / 8).ok()
}

/// KDFa (Part 1, §11.4.10.2, SP 800-108 counter mode with HMAC):
///
/// `K(i) = HMAC_hash(key, [i]_32 || label || 0x00 || context_u || context_v || [bits]_32)`
///
/// for i = 1, 2, … concatenated and truncated to `bits`. `label` is given
/// without its terminating NUL octet, which the spec makes part of the label.
pub(crate) fn kdfa(
    hash: HashAlg,
    key: &[u8],
    label: &[u8],
    context_u: &[u8],
    context_v: &[u8],
    bits: u32,
) -> Option<Zeroizing<Vec<u8>>> {
    let len = output_len(bits)?;
    let key = ring::hmac::Key::new(hmac_algorithm(hash), key);
    let mut out = Zeroizing::new(Vec::with_capacity(len.saturating_add(hash.digest_len())));
    let mut counter = 1u32;
    while out.len() < len {
        let mut ctx = ring::hmac::Context::with_key(&key);
        ctx.update(&counter.to_be_bytes());
        ctx.update(label);
        ctx.update(&[0]);
        ctx.update(context_u);
        ctx.update(context_v);
        ctx.update(&bits.to_be_bytes());
        out.extend_from_slice(ctx.sign().as_ref());
        counter = counter.checked_add(1)?;
    }
    out.truncate(len);
    Some(out)
}

/// KDFe (Part 1, §11.4.10.3, SP 800-56A concatenation KDF):
///
/// `K(i) = H([i]_32 || z || label || 0x00 || party_u || party_v)`
///
/// for i = 1, 2, … concatenated and truncated to `bits`. `z` is the
/// x-coordinate of the ECDH shared point; `label` excludes its NUL.
pub(crate) fn kdfe(
    hash: HashAlg,
    z: &[u8],
    label: &[u8],
    party_u: &[u8],
    party_v: &[u8],
    bits: u32,
) -> Option<Zeroizing<Vec<u8>>> {
    let len = output_len(bits)?;
    let mut out = Zeroizing::new(Vec::with_capacity(len.saturating_add(hash.digest_len())));
    let mut counter = 1u32;
    while out.len() < len {
        let mut ctx = ring::digest::Context::new(hash.ring_algorithm());
        ctx.update(&counter.to_be_bytes());
        ctx.update(z);
        ctx.update(label);
        ctx.update(&[0]);
        ctx.update(party_u);
        ctx.update(party_v);
        out.extend_from_slice(ctx.finish().as_ref());
        counter = counter.checked_add(1)?;
    }
    out.truncate(len);
    Some(out)
}

#[cfg(test)]
mod tests {
    //! Known answers computed independently with Python's standard library:
    //!
    //! ```text
    //! kdfa = lambda h, key, label, u, v, bits: b"".join(
    //!     hmac.new(key, struct.pack(">I", i) + label + b"\0" + u + v
    //!              + struct.pack(">I", bits), h).digest()
    //!     for i in range(1, 1 + -(-bits // (8 * hashlib.new(h).digest_size)))
    //! )[: bits // 8]
    //! kdfe = lambda h, z, use, u, v, bits: b"".join(
    //!     hashlib.new(h, struct.pack(">I", i) + z + use + b"\0" + u + v).digest()
    //!     for i in range(1, 1 + -(-bits // (8 * hashlib.new(h).digest_size)))
    //! )[: bits // 8]
    //! ```
    //!
    //! with key = bytes(range(32)) (bytes(range(48)) for SHA-384),
    //! name = b"\x00\x0b" + b"\xaa" * 32, z = b"\x11" * n,
    //! party_u = b"\x22" * n, party_v = b"\x33" * n.
    use super::*;

    fn name() -> Vec<u8> {
        let mut name = vec![0x00, 0x0b];
        name.extend_from_slice(&[0xaa; 32]);
        name
    }

    fn key(len: u8) -> Vec<u8> {
        (0..len).collect()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn kdfa_known_answers() {
        let out = kdfa(HashAlg::Sha256, &key(32), b"STORAGE", &name(), b"", 128).unwrap();
        assert_eq!(hex(&out), "0415b32b6f43896a87e7b29be8f2ac14");
        let out = kdfa(HashAlg::Sha256, &key(32), b"INTEGRITY", b"", b"", 256).unwrap();
        assert_eq!(
            hex(&out),
            "bacf689f634ece301e1f1b15b072d9c87db6a69585db42b1a0cb8f73ebe2692e"
        );
        // Three HMAC blocks, truncated: exercises the counter.
        let out = kdfa(HashAlg::Sha256, &key(32), b"STORAGE", &name(), b"", 520).unwrap();
        assert_eq!(
            hex(&out),
            "ee325dfba1685bbe332f1a847c5f5671e1c0f001919c80a3da52f47a2fe23442\
             fa76691417d892994e2420891564dfbeec326d324ede81e4b1a9b278bde03111\
             2d"
        );
        let out = kdfa(HashAlg::Sha384, &key(48), b"STORAGE", &name(), b"", 256).unwrap();
        assert_eq!(
            hex(&out),
            "5762ba59194554860a86caa8ef9c49d4723c9cb78947672254d95e7d074e6c3e"
        );
    }

    #[test]
    fn kdfe_known_answers() {
        let out = kdfe(
            HashAlg::Sha256,
            &[0x11; 32],
            b"IDENTITY",
            &[0x22; 32],
            &[0x33; 32],
            256,
        )
        .unwrap();
        assert_eq!(
            hex(&out),
            "349308f14b258cab5f67a14bfd8329ea42365fcdca2f9e7e658bc7504d5d0cb3"
        );
        let out = kdfe(
            HashAlg::Sha256,
            &[0x11; 32],
            b"IDENTITY",
            &[0x22; 32],
            &[0x33; 32],
            512,
        )
        .unwrap();
        assert_eq!(
            hex(&out),
            "349308f14b258cab5f67a14bfd8329ea42365fcdca2f9e7e658bc7504d5d0cb3\
             157a112cc50062b74b12276beacc36b76eb90d8ab908b3390cf3caa308aeeca9"
        );
        let out = kdfe(
            HashAlg::Sha384,
            &[0x11; 48],
            b"IDENTITY",
            &[0x22; 48],
            &[0x33; 48],
            384,
        )
        .unwrap();
        assert_eq!(
            hex(&out),
            "7d7147b0a398348c9b609c86403d4e69a591f729202069dbc3b399dbc22c9dd4\
             44d17b52415e1d02c1e55cc401266433"
        );
    }

    #[test]
    fn refuses_bit_counts_it_does_not_need() {
        assert!(kdfa(HashAlg::Sha256, b"k", b"L", b"", b"", 0).is_none());
        assert!(kdfa(HashAlg::Sha256, b"k", b"L", b"", b"", 12).is_none());
        assert!(kdfe(HashAlg::Sha256, b"z", b"L", b"", b"", MAX_KDF_BITS + 8).is_none());
    }
}
