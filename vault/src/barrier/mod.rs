//! The barrier: encryption of every stored value that holds a secret, key
//! or credential.
//!
//! # What it does
//! - seals values with AES-256-GCM (`ring::aead`) under the keyring's
//!   newest term, with a fresh random 96-bit nonce, and the full storage
//!   path (keyspace and key) in the associated data, so a ciphertext copied
//!   to another key or keyspace does not open:
//!   ```text
//!   value = term u32 | nonce [12] | ciphertext | tag [16]
//!   AAD   = "keyward/barrier/v1\0" | term u32 | keyspace prefix u8 | key length u16 | key
//!   ```
//! - opens values under whichever term sealed them, so rotation is online:
//!   new writes use the new term, old values still open;
//! - counts encryptions per term and rotates automatically (see below);
//! - keeps the keyring encrypted under the root key in storage
//!   (`system/barrier/keyring`, its own associated data), and holds keys in
//!   memory only while unsealed. [`Barrier::seal`] drops them at once for
//!   every user (they live behind one lock, not in copies).
//!
//! # The rotation bound
//! NIST SP 800-38D, §8.3: with random 96-bit nonces, one key may do at
//! most 2^32 encryptions (collision probability ≤ 2^-32). The barrier
//! rotates after [`MAX_ENCRYPTIONS_PER_TERM`] = 2^30 encryptions, a quarter
//! of that: the nonce-collision probability per term is then about
//! (2^30)² / 2^97 = 2^-37.
//!
//! The count must survive crashes, or a vault that crashes often could run
//! one key past the bound. Encryptions are therefore reserved in blocks
//! ([`RESERVATION_BLOCK`] = 2^20): before the first encryption of a block,
//! the new reservation is written into the keyring (re-encrypted under the
//! root key) and flushed. After a restart every reserved encryption counts
//! as used; a crash wastes at most one block. The root key encrypts the
//! keyring once per reservation or rotation, about 2^10 times per term, so
//! it stays far below its own bound.
//!
//! # What it does not do
//! It does not decide which values need sealing (the caller does: secrets,
//! keys, credentials, activation secrets), hide value lengths, or protect
//! against a storage attacker who replays an older ciphertext to the same
//! key or an older keyring (rollback); it detects modification and moving.
//! `ring` does not wipe its expanded AES key schedules on drop; the raw key
//! bytes are zeroized.

mod keyring;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

pub use keyring::MAX_TERMS;
use keyring::{KEYRING_KEY, KEYRING_KEYSPACE, TermRecord};

use crate::storage::{ConditionKind, Keyspace, MAX_VALUE_LEN, Storage, StorageError, WriteBatch};

/// Key length of AES-256.
pub const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;
const TERM_LEN: usize = 4;
/// Bytes a sealed value adds to its plaintext.
pub const OVERHEAD: usize = TERM_LEN + NONCE_LEN + TAG_LEN;
/// Largest plaintext accepted: a sealed value must fit [`MAX_VALUE_LEN`].
pub const MAX_PLAINTEXT: usize = MAX_VALUE_LEN - OVERHEAD;
/// Encryptions after which a term is retired (see the module docs).
pub const MAX_ENCRYPTIONS_PER_TERM: u64 = 1 << 30;
/// Encryptions reserved (and persisted) at a time.
pub const RESERVATION_BLOCK: u64 = 1 << 20;
const BARRIER_AAD: &[u8] = b"keyward/barrier/v1\0";

/// Why a barrier operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BarrierError {
    /// The vault is sealed: no keys are in memory.
    #[error("the vault is sealed")]
    Sealed,
    /// The store has no keyring: the vault was never initialised.
    #[error("the vault is not initialised")]
    NotInitialized,
    /// A keyring already exists.
    #[error("the vault is already initialised")]
    AlreadyInitialized,
    /// The root key does not open the keyring (AEAD check failed).
    #[error("the root key does not open the keyring")]
    WrongRootKey,
    /// The decrypted keyring does not parse.
    #[error("keyring corrupt: {what}")]
    KeyringCorrupt {
        /// What was wrong.
        what: &'static str,
    },
    /// Another writer changed the stored keyring since this vault read it.
    #[error("the stored keyring changed underneath this vault")]
    KeyringChanged,
    /// The keyring has [`MAX_TERMS`] terms (or the term number is exhausted).
    #[error("keyring full: at most {max} terms")]
    KeyringFull {
        /// The cap.
        max: usize,
    },
    /// A sealed value shorter than the fixed overhead.
    #[error("sealed value of {len} bytes is shorter than the {min}-byte overhead")]
    Truncated {
        /// Its length.
        len: usize,
        /// The minimum.
        min: usize,
    },
    /// A sealed value names a term the keyring does not have.
    #[error("sealed value names unknown key term {term}")]
    UnknownTerm {
        /// The term.
        term: u32,
    },
    /// The value does not authenticate: modified, or moved from another
    /// storage path.
    #[error("sealed value in keyspace {keyspace:?} does not authenticate")]
    Unauthentic {
        /// The keyspace it was read from.
        keyspace: Keyspace,
    },
    /// A plaintext longer than [`MAX_PLAINTEXT`].
    #[error("plaintext of {len} bytes; at most {max}")]
    PlaintextTooLarge {
        /// Its length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// Limits out of range (see [`BarrierLimits::new`]).
    #[error("invalid barrier limits")]
    InvalidLimits,
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// `ring` refused a key or an operation it should accept.
    #[error("cryptographic operation failed")]
    Crypto,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The root key: wraps the keyring. Held only while unsealed.
pub struct RootKey(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for RootKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RootKey([redacted])")
    }
}

impl RootKey {
    /// A new random root key.
    pub(crate) fn generate() -> Result<Self, BarrierError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        SystemRandom::new()
            .fill(key.as_mut_slice())
            .map_err(|_| BarrierError::Random)?;
        Ok(Self(key))
    }

    /// A root key from exactly [`KEY_LEN`] bytes.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let key: [u8; KEY_LEN] = bytes.try_into().ok()?;
        Some(Self(Zeroizing::new(key)))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        self.0.as_slice()
    }
}

/// When to reserve and when to rotate. Production uses
/// [`BarrierLimits::default`]; tests shrink them to see rotation happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierLimits {
    rotate_after: u64,
    reservation_block: u64,
}

impl Default for BarrierLimits {
    fn default() -> Self {
        Self {
            rotate_after: MAX_ENCRYPTIONS_PER_TERM,
            reservation_block: RESERVATION_BLOCK,
        }
    }
}

impl BarrierLimits {
    /// Rotate after `rotate_after` encryptions per term (at most
    /// [`MAX_ENCRYPTIONS_PER_TERM`]), reserving `reservation_block` (at
    /// least 1, at most `rotate_after`) at a time.
    pub fn new(rotate_after: u64, reservation_block: u64) -> Result<Self, BarrierError> {
        if rotate_after > MAX_ENCRYPTIONS_PER_TERM
            || reservation_block == 0
            || reservation_block > rotate_after
        {
            return Err(BarrierError::InvalidLimits);
        }
        Ok(Self {
            rotate_after,
            reservation_block,
        })
    }
}

/// How much of a term is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TermUsage {
    /// The term.
    pub term: u32,
    /// Encryptions counted under it (including reservations made before a
    /// restart, which count as used).
    pub encryptions: u64,
    /// Encryptions reserved in the stored keyring.
    pub reserved: u64,
}

struct TermKey {
    term: u32,
    key: Zeroizing<[u8; KEY_LEN]>,
    aead: LessSafeKey,
    /// Tickets handed out; a ticket below `reserved` may encrypt.
    issued: AtomicU64,
    reserved: AtomicU64,
}

impl TermKey {
    fn new(
        term: u32,
        key: Zeroizing<[u8; KEY_LEN]>,
        issued: u64,
        reserved: u64,
    ) -> Result<Self, BarrierError> {
        let unbound =
            UnboundKey::new(&AES_256_GCM, key.as_slice()).map_err(|_| BarrierError::Crypto)?;
        Ok(Self {
            term,
            key,
            aead: LessSafeKey::new(unbound),
            issued: AtomicU64::new(issued),
            reserved: AtomicU64::new(reserved),
        })
    }

    fn record(&self) -> TermRecord {
        TermRecord {
            term: self.term,
            key: self.key.clone(),
            reserved: self.reserved.load(Ordering::SeqCst),
        }
    }
}

/// Terms in ascending order; the last is active.
struct Keyring {
    terms: Vec<Arc<TermKey>>,
}

impl Keyring {
    fn active(&self) -> Result<&Arc<TermKey>, BarrierError> {
        self.terms
            .last()
            .ok_or(BarrierError::KeyringCorrupt { what: "no term" })
    }

    fn term(&self, term: u32) -> Option<&Arc<TermKey>> {
        self.terms
            .binary_search_by_key(&term, |t| t.term)
            .ok()
            .and_then(|i| self.terms.get(i))
    }

    fn records(&self) -> Vec<TermRecord> {
        self.terms.iter().map(|t| t.record()).collect()
    }
}

struct Unsealed {
    root: RootKey,
    keyring: RwLock<Arc<Keyring>>,
    /// Serialises keyring writes; holds the stored blob for compare-and-swap.
    stored: tokio::sync::Mutex<Vec<u8>>,
}

impl Unsealed {
    fn keyring(&self) -> Arc<Keyring> {
        Arc::clone(&self.keyring.read().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The barrier. One per vault, shared (`Arc`); sealed until the seal
/// module gives it the root key.
pub struct Barrier {
    storage: Arc<dyn Storage>,
    limits: BarrierLimits,
    state: RwLock<Option<Arc<Unsealed>>>,
}

impl std::fmt::Debug for Barrier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Barrier")
            .field("sealed", &self.is_sealed())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

fn value_aad(term: u32, keyspace: Keyspace, key: &[u8]) -> Result<Vec<u8>, BarrierError> {
    // Keys are at most MAX_KEY_LEN (512) bytes; the length keeps the
    // encoding unambiguous should the AAD ever gain a further field.
    let key_len = u16::try_from(key.len()).map_err(|_| StorageError::KeyTooLong {
        keyspace,
        len: key.len(),
        max: crate::storage::MAX_KEY_LEN,
    })?;
    let mut aad = Vec::with_capacity(BARRIER_AAD.len() + 7 + key.len());
    aad.extend_from_slice(BARRIER_AAD);
    aad.extend_from_slice(&term.to_be_bytes());
    aad.push(keyspace.prefix());
    aad.extend_from_slice(&key_len.to_be_bytes());
    aad.extend_from_slice(key);
    Ok(aad)
}

impl Barrier {
    /// A sealed barrier over `storage`.
    pub fn new(storage: Arc<dyn Storage>, limits: BarrierLimits) -> Self {
        Self {
            storage,
            limits,
            state: RwLock::new(None),
        }
    }

    /// True when no keys are in memory.
    pub fn is_sealed(&self) -> bool {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }

    /// Drops every key. Operations already running finish; later ones fail
    /// with [`BarrierError::Sealed`].
    pub fn seal(&self) {
        *self.state.write().unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn unsealed(&self) -> Result<Arc<Unsealed>, BarrierError> {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(BarrierError::Sealed)
    }

    fn install(&self, root: RootKey, keyring: Keyring, stored: Vec<u8>) {
        let unsealed = Unsealed {
            root,
            keyring: RwLock::new(Arc::new(keyring)),
            stored: tokio::sync::Mutex::new(stored),
        };
        *self.state.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(unsealed));
    }

    /// Creates the keyring (term 1) under `root`, commits it together with
    /// `batch` (the seal configuration), and unseals.
    pub(crate) async fn initialize(
        &self,
        root: RootKey,
        mut batch: WriteBatch,
    ) -> Result<(), BarrierError> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        SystemRandom::new()
            .fill(key.as_mut_slice())
            .map_err(|_| BarrierError::Random)?;
        let first = TermKey::new(1, key, 0, self.limits.reservation_block)?;
        let keyring = Keyring {
            terms: vec![Arc::new(first)],
        };
        let blob = keyring::wrap(&root, &keyring.records())?;
        batch.insert_new(KEYRING_KEYSPACE, KEYRING_KEY, &blob)?;
        match self.storage.commit(batch).await {
            Ok(_) => {}
            Err(StorageError::ConditionFailed {
                kind: ConditionKind::InsertNew,
                ..
            }) => return Err(BarrierError::AlreadyInitialized),
            Err(e) => return Err(e.into()),
        }
        self.install(root, keyring, blob);
        Ok(())
    }

    /// Opens the stored keyring with `root` and unseals. A wrong root key
    /// fails the keyring's AEAD check ([`BarrierError::WrongRootKey`]);
    /// nothing compares key bytes.
    pub(crate) async fn unseal(&self, root: RootKey) -> Result<(), BarrierError> {
        let blob = self
            .storage
            .get(KEYRING_KEYSPACE, KEYRING_KEY)
            .await?
            .ok_or(BarrierError::NotInitialized)?;
        let records = keyring::unwrap(&root, &blob)?;
        let terms = records
            .into_iter()
            // Whatever was reserved before may have been used: count it.
            .map(|r| TermKey::new(r.term, r.key, r.reserved, r.reserved).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        self.install(root, Keyring { terms }, blob);
        Ok(())
    }

    /// A copy of the root key, for re-protecting it (TPM reseal).
    pub(crate) fn root_key_copy(&self) -> Result<RootKey, BarrierError> {
        Ok(RootKey(self.unsealed()?.root.0.clone()))
    }

    /// Seals `plaintext` for storage at (`keyspace`, `key`).
    pub async fn encrypt(
        &self,
        keyspace: Keyspace,
        key: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, BarrierError> {
        if plaintext.len() > MAX_PLAINTEXT {
            return Err(BarrierError::PlaintextTooLarge {
                len: plaintext.len(),
                max: MAX_PLAINTEXT,
            });
        }
        crate::storage::check_key(keyspace, key)?;
        loop {
            let unsealed = self.unsealed()?;
            let keyring = unsealed.keyring();
            let active = keyring.active()?;
            let ticket = active.issued.fetch_add(1, Ordering::SeqCst);
            if ticket < active.reserved.load(Ordering::SeqCst) {
                return seal_value(active, keyspace, key, plaintext);
            }
            // Out of reserved encryptions: reserve more or rotate, then retry.
            self.maintain(&unsealed, Some(active.term)).await?;
        }
    }

    /// Opens a value read from (`keyspace`, `key`).
    pub fn decrypt(
        &self,
        keyspace: Keyspace,
        key: &[u8],
        value: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, BarrierError> {
        let unsealed = self.unsealed()?;
        let (term, rest) =
            value
                .split_first_chunk::<TERM_LEN>()
                .ok_or(BarrierError::Truncated {
                    len: value.len(),
                    min: OVERHEAD,
                })?;
        let (nonce, sealed) =
            rest.split_first_chunk::<NONCE_LEN>()
                .ok_or(BarrierError::Truncated {
                    len: value.len(),
                    min: OVERHEAD,
                })?;
        if sealed.len() < TAG_LEN {
            return Err(BarrierError::Truncated {
                len: value.len(),
                min: OVERHEAD,
            });
        }
        let term = u32::from_be_bytes(*term);
        let keyring = unsealed.keyring();
        let term_key = keyring
            .term(term)
            .ok_or(BarrierError::UnknownTerm { term })?;
        let aad = value_aad(term, keyspace, key)?;
        let mut buffer = Zeroizing::new(sealed.to_vec());
        let plaintext_len = term_key
            .aead
            .open_in_place(
                Nonce::assume_unique_for_key(*nonce),
                Aad::from(aad),
                &mut buffer,
            )
            .map_err(|_| BarrierError::Unauthentic { keyspace })?
            .len();
        buffer.truncate(plaintext_len);
        Ok(buffer)
    }

    /// Adds a new term and makes it active; returns it. Values sealed under
    /// older terms still open.
    pub async fn rotate(&self) -> Result<u32, BarrierError> {
        let unsealed = self.unsealed()?;
        self.maintain(&unsealed, None).await
    }

    /// The active term.
    pub fn active_term(&self) -> Result<u32, BarrierError> {
        Ok(self.unsealed()?.keyring().active()?.term)
    }

    /// Usage of every term, oldest first.
    pub fn usage(&self) -> Result<Vec<TermUsage>, BarrierError> {
        let keyring = self.unsealed()?.keyring();
        Ok(keyring
            .terms
            .iter()
            .map(|t| {
                let reserved = t.reserved.load(Ordering::SeqCst);
                TermUsage {
                    term: t.term,
                    encryptions: t.issued.load(Ordering::SeqCst).min(reserved),
                    reserved,
                }
            })
            .collect())
    }

    /// Reserves another block for the active term, or rotates when the term
    /// is spent or when `exhausted` is `None` (explicit rotation). Returns
    /// the active term afterwards.
    async fn maintain(
        &self,
        unsealed: &Unsealed,
        exhausted: Option<u32>,
    ) -> Result<u32, BarrierError> {
        let mut stored = unsealed.stored.lock().await;
        let keyring = unsealed.keyring();
        let active = keyring.active()?;
        let reserved = active.reserved.load(Ordering::SeqCst);
        if let Some(term) = exhausted
            && (active.term != term || active.issued.load(Ordering::SeqCst) < reserved)
        {
            // Someone else reserved or rotated while this caller waited.
            return Ok(active.term);
        }
        let rotate = exhausted.is_none() || reserved >= self.limits.rotate_after;
        let mut records = keyring.records();
        let next = if rotate {
            if keyring.terms.len() >= MAX_TERMS {
                return Err(BarrierError::KeyringFull { max: MAX_TERMS });
            }
            let term = active
                .term
                .checked_add(1)
                .ok_or(BarrierError::KeyringFull { max: MAX_TERMS })?;
            let mut key = Zeroizing::new([0u8; KEY_LEN]);
            SystemRandom::new()
                .fill(key.as_mut_slice())
                .map_err(|_| BarrierError::Random)?;
            let new = TermKey::new(term, key, 0, self.limits.reservation_block)?;
            records.push(new.record());
            Some(new)
        } else {
            let more = reserved
                .saturating_add(self.limits.reservation_block)
                .min(self.limits.rotate_after);
            if let Some(last) = records.last_mut() {
                last.reserved = more;
            }
            None
        };
        let blob = keyring::wrap(&unsealed.root, &records)?;
        // Durable before any encryption uses the new reservation or term.
        match self
            .storage
            .compare_and_swap(KEYRING_KEYSPACE, KEYRING_KEY, Some(&stored), Some(&blob))
            .await
        {
            Ok(()) => {}
            Err(StorageError::ConditionFailed { .. }) => return Err(BarrierError::KeyringChanged),
            Err(e) => return Err(e.into()),
        }
        *stored = blob;
        match next {
            Some(new) => {
                let term = new.term;
                let mut terms = keyring.terms.clone();
                terms.push(Arc::new(new));
                *unsealed
                    .keyring
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Arc::new(Keyring { terms });
                Ok(term)
            }
            None => {
                if let Some(last) = records.last() {
                    active.reserved.store(last.reserved, Ordering::SeqCst);
                }
                Ok(active.term)
            }
        }
    }
}

fn seal_value(
    term: &TermKey,
    keyspace: Keyspace,
    key: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, BarrierError> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| BarrierError::Random)?;
    let aad = value_aad(term.term, keyspace, key)?;
    let mut out = Vec::with_capacity(plaintext.len().saturating_add(OVERHEAD));
    out.extend_from_slice(&term.term.to_be_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let body = out
        .get_mut(TERM_LEN + NONCE_LEN..)
        .ok_or(BarrierError::Crypto)?;
    let tag = term
        .aead
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), body)
        .map_err(|_| BarrierError::Crypto)?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}
