//! The barrier: AEAD with the storage path as associated data, key terms,
//! explicit and automatic rotation, crash-proof encryption counts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::sync::Arc;

use keyward_vault::barrier::{BarrierError, BarrierLimits, MAX_PLAINTEXT, OVERHEAD};
use keyward_vault::seal::{Seal, UnsealProgress, UnsealShare};
use keyward_vault::storage::{Keyspace, SledConfig, SledStorage, Storage};

fn store(dir: &Path) -> Arc<dyn Storage> {
    Arc::new(SledStorage::open(&SledConfig::new(dir.join("db"))).unwrap())
}

async fn dev_seal(limits: BarrierLimits) -> Seal {
    let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(&SledConfig::temporary()).unwrap());
    let seal = Seal::open(storage, limits).await.unwrap();
    seal.init_dev("127.0.0.1:8200".parse().unwrap())
        .await
        .unwrap();
    seal
}

fn term_of(value: &[u8]) -> u32 {
    u32::from_be_bytes(value[..4].try_into().unwrap())
}

async fn unseal(seal: &Seal, shares: &[UnsealShare]) {
    let mut last = None;
    for share in shares {
        last = Some(
            seal.submit_share(UnsealShare::from_bytes(share.as_bytes()).unwrap())
                .await
                .unwrap(),
        );
    }
    assert_eq!(last, Some(UnsealProgress::Unsealed));
}

#[tokio::test]
async fn values_open_only_where_they_were_written_and_unmodified() {
    let seal = dev_seal(BarrierLimits::default()).await;
    let barrier = seal.barrier();
    let sealed = barrier
        .encrypt(Keyspace::Secrets, b"kv/db/password", b"hunter2")
        .await
        .unwrap();
    assert_eq!(sealed.len(), b"hunter2".len() + OVERHEAD);
    assert_eq!(term_of(&sealed), 1);
    assert_eq!(
        barrier
            .decrypt(Keyspace::Secrets, b"kv/db/password", &sealed)
            .unwrap()
            .as_slice(),
        b"hunter2"
    );
    // Same plaintext twice: different nonces, different ciphertexts.
    let again = barrier
        .encrypt(Keyspace::Secrets, b"kv/db/password", b"hunter2")
        .await
        .unwrap();
    assert_ne!(sealed, again);
    // Moved to another key, or to the same key in another keyspace.
    for (ks, key) in [
        (Keyspace::Secrets, &b"kv/db/password2"[..]),
        (Keyspace::Secrets, b"kv/db/passwor"),
        (Keyspace::Tokens, b"kv/db/password"),
    ] {
        let err = barrier.decrypt(ks, key, &sealed).unwrap_err();
        assert!(
            matches!(err, BarrierError::Unauthentic { keyspace } if keyspace == ks),
            "{err:?}"
        );
    }
    // Every byte after the term is authenticated.
    for i in 4..sealed.len() {
        let mut flipped = sealed.clone();
        flipped[i] ^= 0x80;
        assert!(matches!(
            barrier.decrypt(Keyspace::Secrets, b"kv/db/password", &flipped),
            Err(BarrierError::Unauthentic {
                keyspace: Keyspace::Secrets
            })
        ));
    }
    let mut other_term = sealed.clone();
    other_term[..4].copy_from_slice(&7u32.to_be_bytes());
    assert!(matches!(
        barrier.decrypt(Keyspace::Secrets, b"kv/db/password", &other_term),
        Err(BarrierError::UnknownTerm { term: 7 })
    ));
    for len in [0, 4, OVERHEAD - 1] {
        assert!(matches!(
            barrier.decrypt(Keyspace::Secrets, b"kv/db/password", &sealed[..len]),
            Err(BarrierError::Truncated { min: OVERHEAD, .. })
        ));
    }
    // An empty plaintext is fine; an oversize one is refused.
    let empty = barrier.encrypt(Keyspace::Secrets, b"e", b"").await.unwrap();
    assert!(
        barrier
            .decrypt(Keyspace::Secrets, b"e", &empty)
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        barrier
            .encrypt(Keyspace::Secrets, b"big", &vec![0; MAX_PLAINTEXT + 1])
            .await,
        Err(BarrierError::PlaintextTooLarge {
            max: MAX_PLAINTEXT,
            ..
        })
    ));
    // Sealed: no keys, no operations.
    seal.seal();
    assert!(matches!(
        barrier.decrypt(Keyspace::Secrets, b"kv/db/password", &sealed),
        Err(BarrierError::Sealed)
    ));
    assert!(matches!(
        barrier.encrypt(Keyspace::Secrets, b"k", b"v").await,
        Err(BarrierError::Sealed)
    ));
    assert!(matches!(barrier.rotate().await, Err(BarrierError::Sealed)));
}

#[tokio::test]
async fn explicit_rotation_keeps_old_values_readable_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (old, shares) = {
        let seal = Seal::open(store(dir.path()), BarrierLimits::default())
            .await
            .unwrap();
        let shares = seal.init_shamir(2, 3).await.unwrap();
        let barrier = seal.barrier();
        let old = barrier
            .encrypt(Keyspace::Secrets, b"a", b"old")
            .await
            .unwrap();
        assert_eq!(barrier.rotate().await.unwrap(), 2);
        assert_eq!(barrier.active_term().unwrap(), 2);
        let new = barrier
            .encrypt(Keyspace::Secrets, b"b", b"new")
            .await
            .unwrap();
        assert_eq!((term_of(&old), term_of(&new)), (1, 2));
        assert_eq!(
            barrier
                .decrypt(Keyspace::Secrets, b"a", &old)
                .unwrap()
                .as_slice(),
            b"old"
        );
        (old, shares)
    };
    let seal = Seal::open(store(dir.path()), BarrierLimits::default())
        .await
        .unwrap();
    unseal(&seal, &shares[1..]).await;
    let barrier = seal.barrier();
    assert_eq!(barrier.active_term().unwrap(), 2);
    assert_eq!(
        barrier
            .decrypt(Keyspace::Secrets, b"a", &old)
            .unwrap()
            .as_slice(),
        b"old"
    );
    let usage = barrier.usage().unwrap();
    assert_eq!(usage.iter().map(|u| u.term).collect::<Vec<_>>(), [1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_is_automatic_before_the_bound_even_under_concurrency() {
    // Tiny limits so that rotation happens in a test: rotate after 10
    // encryptions, reserve 3 at a time.
    let seal = dev_seal(BarrierLimits::new(10, 3).unwrap()).await;
    let barrier = Arc::clone(seal.barrier());
    let tasks: Vec<_> = (0..100u32)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                let key = i.to_be_bytes();
                let value = barrier
                    .encrypt(Keyspace::Secrets, &key, &key)
                    .await
                    .unwrap();
                (key, value)
            })
        })
        .collect();
    let mut values = Vec::new();
    for t in tasks {
        values.push(t.await.unwrap());
    }
    for (key, value) in &values {
        assert_eq!(
            barrier
                .decrypt(Keyspace::Secrets, key, value)
                .unwrap()
                .as_slice(),
            key
        );
    }
    let usage = barrier.usage().unwrap();
    // 100 encryptions at ≤ 10 per term: at least 10 terms.
    assert!(usage.len() >= 10, "{usage:?}");
    let mut per_term = std::collections::BTreeMap::<u32, u64>::new();
    for (_, value) in &values {
        *per_term.entry(term_of(value)).or_default() += 1;
    }
    for (term, count) in per_term {
        assert!(count <= 10, "term {term} encrypted {count} values");
    }
    for u in &usage {
        assert!(u.reserved <= 10 && u.encryptions <= u.reserved, "{u:?}");
    }
    assert!(matches!(
        BarrierLimits::new(10, 0),
        Err(BarrierError::InvalidLimits)
    ));
    assert!(matches!(
        BarrierLimits::new(10, 11),
        Err(BarrierError::InvalidLimits)
    ));
    assert!(matches!(
        BarrierLimits::new((1 << 30) + 1, 1),
        Err(BarrierError::InvalidLimits)
    ));
}

#[tokio::test]
async fn a_crash_cannot_reset_the_encryption_count() {
    let dir = tempfile::tempdir().unwrap();
    let limits = BarrierLimits::new(1000, 10).unwrap();
    let shares = {
        let seal = Seal::open(store(dir.path()), limits).await.unwrap();
        let shares = seal.init_shamir(1, 1).await.unwrap();
        for i in 0..15u8 {
            seal.barrier()
                .encrypt(Keyspace::Secrets, &[i], b"v")
                .await
                .unwrap();
        }
        let usage = seal.barrier().usage().unwrap();
        // Counting is conservative: a caller that hits the end of a
        // reservation spends a ticket, so at least 15 are counted.
        assert!(usage[0].encryptions >= 15, "{usage:?}");
        assert_eq!(usage[0].reserved, 20);
        // Dropped without sealing: as good as a crash for the counters,
        // which exist only in memory and in the stored reservation.
        shares
    };
    let seal = Seal::open(store(dir.path()), limits).await.unwrap();
    unseal(&seal, &shares).await;
    let usage = seal.barrier().usage().unwrap();
    // Everything reserved before the crash counts as used.
    assert_eq!((usage[0].encryptions, usage[0].reserved), (20, 20));
    seal.barrier()
        .encrypt(Keyspace::Secrets, b"next", b"v")
        .await
        .unwrap();
    let usage = seal.barrier().usage().unwrap();
    assert!(usage[0].encryptions > 20, "{usage:?}");
    assert_eq!(usage[0].reserved, 30);
}

#[tokio::test]
async fn a_keyring_changed_underneath_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let storage = store(dir.path());
    let seal = Seal::open(Arc::clone(&storage), BarrierLimits::default())
        .await
        .unwrap();
    seal.init_shamir(1, 1).await.unwrap();
    let mut keyring = storage
        .get(Keyspace::System, b"barrier/keyring")
        .await
        .unwrap()
        .unwrap();
    let last = keyring.len() - 1;
    keyring[last] ^= 1;
    let mut batch = keyward_vault::storage::WriteBatch::new();
    batch
        .put(Keyspace::System, b"barrier/keyring", &keyring)
        .unwrap();
    storage.commit(batch).await.unwrap();
    assert!(matches!(
        seal.barrier().rotate().await,
        Err(BarrierError::KeyringChanged)
    ));
}
