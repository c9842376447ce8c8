//! The keyring's encodings: the plaintext record list and its root-key
//! wrapping.
//!
//! ```text
//! record list:  "KWKR" | version u8 (1) | count u32
//!               | count × (term u32 | key [32] | reserved u64)
//! stored blob:  "KWRK" | version u8 (1) | nonce [12] | AES-256-GCM(record list) | tag [16]
//! ```
//! Big-endian, terms strictly ascending, 1 to [`MAX_TERMS`] records, no
//! trailing bytes. The blob's associated data is [`KEYRING_AAD`] followed by
//! the storage path it lives at, so a keyring blob is only accepted where
//! the vault wrote it.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::{BarrierError, KEY_LEN, RootKey, TAG_LEN};
use crate::storage::Keyspace;

/// Most key terms a keyring holds. At the automatic rotation bound of
/// 2^30 encryptions per term this is over 2^42 encryptions; the encoded
/// keyring stays under 200 KiB.
pub const MAX_TERMS: usize = 4096;

const LIST_MAGIC: &[u8; 4] = b"KWKR";
const BLOB_MAGIC: &[u8; 4] = b"KWRK";
const VERSION: u8 = 1;
const RECORD_LEN: usize = 4 + KEY_LEN + 8;
const LIST_HEADER_LEN: usize = 4 + 1 + 4;
const BLOB_HEADER_LEN: usize = 4 + 1 + NONCE_LEN;
/// Associated-data label of the keyring blob (distinct from the barrier's).
const KEYRING_AAD: &[u8] = b"keyward/keyring/v1\0";

/// Where the wrapped keyring is stored.
pub(crate) const KEYRING_KEYSPACE: Keyspace = Keyspace::System;
/// Where the wrapped keyring is stored.
pub(crate) const KEYRING_KEY: &[u8] = b"barrier/keyring";

/// One term of the keyring as stored.
pub(crate) struct TermRecord {
    pub(crate) term: u32,
    pub(crate) key: Zeroizing<[u8; KEY_LEN]>,
    /// Encryptions reserved (and so counted as used) under this term.
    pub(crate) reserved: u64,
}

impl std::fmt::Debug for TermRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TermRecord")
            .field("term", &self.term)
            .field("key", &"[redacted]")
            .field("reserved", &self.reserved)
            .finish()
    }
}

fn aad() -> Vec<u8> {
    let mut aad = KEYRING_AAD.to_vec();
    aad.push(KEYRING_KEYSPACE.prefix());
    aad.extend_from_slice(KEYRING_KEY);
    aad
}

fn encode_list(records: &[TermRecord]) -> Result<Zeroizing<Vec<u8>>, BarrierError> {
    let count = u32::try_from(records.len())
        .ok()
        .filter(|_| !records.is_empty() && records.len() <= MAX_TERMS)
        .ok_or(BarrierError::KeyringFull { max: MAX_TERMS })?;
    let mut out = Zeroizing::new(Vec::with_capacity(
        LIST_HEADER_LEN + records.len().saturating_mul(RECORD_LEN) + TAG_LEN,
    ));
    out.extend_from_slice(LIST_MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&count.to_be_bytes());
    for record in records {
        out.extend_from_slice(&record.term.to_be_bytes());
        out.extend_from_slice(record.key.as_slice());
        out.extend_from_slice(&record.reserved.to_be_bytes());
    }
    Ok(out)
}

fn decode_list(bytes: &[u8]) -> Result<Vec<TermRecord>, BarrierError> {
    let bad = |what| BarrierError::KeyringCorrupt { what };
    let (magic, rest) = bytes.split_first_chunk::<4>().ok_or(bad("truncated"))?;
    if magic != LIST_MAGIC {
        return Err(bad("not a keyring"));
    }
    let (&version, rest) = rest.split_first().ok_or(bad("truncated"))?;
    if version != VERSION {
        return Err(bad("unsupported version"));
    }
    let (count, mut rest) = rest.split_first_chunk::<4>().ok_or(bad("truncated"))?;
    let count = usize::try_from(u32::from_be_bytes(*count)).map_err(|_| bad("term count"))?;
    if count == 0 || count > MAX_TERMS {
        return Err(bad("term count"));
    }
    let mut records: Vec<TermRecord> = Vec::with_capacity(count);
    for _ in 0..count {
        let (record, tail) = rest
            .split_first_chunk::<RECORD_LEN>()
            .ok_or(bad("truncated"))?;
        rest = tail;
        let (term, record) = record.split_first_chunk::<4>().ok_or(bad("truncated"))?;
        let (key, reserved) = record
            .split_first_chunk::<KEY_LEN>()
            .ok_or(bad("truncated"))?;
        let reserved = <[u8; 8]>::try_from(reserved).map_err(|_| bad("truncated"))?;
        let term = u32::from_be_bytes(*term);
        if records.last().is_some_and(|last| last.term >= term) {
            return Err(bad("terms not strictly ascending"));
        }
        records.push(TermRecord {
            term,
            key: Zeroizing::new(*key),
            reserved: u64::from_be_bytes(reserved),
        });
    }
    if !rest.is_empty() {
        return Err(bad("trailing bytes"));
    }
    Ok(records)
}

fn root_aead(root: &RootKey) -> Result<LessSafeKey, BarrierError> {
    let key = UnboundKey::new(&AES_256_GCM, root.bytes()).map_err(|_| BarrierError::Crypto)?;
    Ok(LessSafeKey::new(key))
}

/// Encrypts the record list under the root key.
pub(crate) fn wrap(root: &RootKey, records: &[TermRecord]) -> Result<Vec<u8>, BarrierError> {
    let list = encode_list(records)?;
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| BarrierError::Random)?;
    let mut sealed = Zeroizing::new(list.to_vec());
    root_aead(root)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad()),
            &mut *sealed,
        )
        .map_err(|_| BarrierError::Crypto)?;
    let mut out = Vec::with_capacity(BLOB_HEADER_LEN + sealed.len());
    out.extend_from_slice(BLOB_MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Decrypts and parses a stored keyring. A wrong root key (or a modified
/// blob) fails the AEAD check: [`BarrierError::WrongRootKey`].
pub(crate) fn unwrap(root: &RootKey, blob: &[u8]) -> Result<Vec<TermRecord>, BarrierError> {
    let bad = |what| BarrierError::KeyringCorrupt { what };
    let (magic, rest) = blob.split_first_chunk::<4>().ok_or(bad("truncated blob"))?;
    if magic != BLOB_MAGIC {
        return Err(bad("not a keyring blob"));
    }
    let (&version, rest) = rest.split_first().ok_or(bad("truncated blob"))?;
    if version != VERSION {
        return Err(bad("unsupported blob version"));
    }
    let (nonce, sealed) = rest
        .split_first_chunk::<NONCE_LEN>()
        .ok_or(bad("truncated blob"))?;
    if sealed.len() < TAG_LEN {
        return Err(bad("truncated blob"));
    }
    let mut buffer = Zeroizing::new(sealed.to_vec());
    let list = root_aead(root)?
        .open_in_place(
            Nonce::assume_unique_for_key(*nonce),
            Aad::from(aad()),
            &mut buffer,
        )
        .map_err(|_| BarrierError::WrongRootKey)?;
    decode_list(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records() -> Vec<TermRecord> {
        vec![
            TermRecord {
                term: 1,
                key: Zeroizing::new([1; KEY_LEN]),
                reserved: 10,
            },
            TermRecord {
                term: 2,
                key: Zeroizing::new([2; KEY_LEN]),
                reserved: 20,
            },
        ]
    }

    #[test]
    fn list_round_trips_and_rejects_damage() {
        let list = encode_list(&records()).unwrap();
        let back = decode_list(&list).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(
            (back[1].term, *back[1].key, back[1].reserved),
            (2, [2; KEY_LEN], 20)
        );
        let corrupt = |bytes: &[u8], what: &str| {
            let err = decode_list(bytes).unwrap_err();
            assert!(
                matches!(err, BarrierError::KeyringCorrupt { what: w } if w == what),
                "{err:?}"
            );
        };
        for len in 0..list.len() {
            assert!(matches!(
                decode_list(&list[..len]),
                Err(BarrierError::KeyringCorrupt { .. })
            ));
        }
        let mut trailing = list.to_vec();
        trailing.push(0);
        corrupt(&trailing, "trailing bytes");
        let mut order = records();
        order.swap(0, 1);
        corrupt(
            &encode_list(&order).unwrap(),
            "terms not strictly ascending",
        );
        let mut dup = records();
        dup[1].term = 1;
        corrupt(&encode_list(&dup).unwrap(), "terms not strictly ascending");
        let mut zero = list.to_vec();
        zero[5..9].copy_from_slice(&0u32.to_be_bytes());
        corrupt(&zero, "term count");
        let mut huge = list.to_vec();
        huge[5..9].copy_from_slice(&u32::try_from(MAX_TERMS + 1).unwrap().to_be_bytes());
        corrupt(&huge, "term count");
        let mut magic = list.to_vec();
        magic[0] = b'X';
        corrupt(&magic, "not a keyring");
        let mut version = list.to_vec();
        version[4] = 9;
        corrupt(&version, "unsupported version");
        assert!(matches!(
            encode_list(&[]),
            Err(BarrierError::KeyringFull { .. })
        ));
    }

    #[test]
    fn blob_opens_only_with_its_root_key_and_unmodified() {
        let root = RootKey::from_bytes(&[7; KEY_LEN]).unwrap();
        let other = RootKey::from_bytes(&[8; KEY_LEN]).unwrap();
        let blob = wrap(&root, &records()).unwrap();
        assert_eq!(unwrap(&root, &blob).unwrap().len(), 2);
        assert!(matches!(
            unwrap(&other, &blob),
            Err(BarrierError::WrongRootKey)
        ));
        for i in BLOB_HEADER_LEN..blob.len() {
            let mut flipped = blob.clone();
            flipped[i] ^= 0x01;
            assert!(matches!(
                unwrap(&root, &flipped),
                Err(BarrierError::WrongRootKey)
            ));
        }
        let mut magic = blob.clone();
        magic[0] = b'X';
        assert!(matches!(
            unwrap(&root, &magic),
            Err(BarrierError::KeyringCorrupt {
                what: "not a keyring blob"
            })
        ));
        assert!(matches!(
            unwrap(&root, &blob[..BLOB_HEADER_LEN + TAG_LEN - 1]),
            Err(BarrierError::KeyringCorrupt {
                what: "truncated blob"
            })
        ));
    }
}
