//! Shamir unseal shares and dev mode.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::sync::Arc;

use keyward_vault::barrier::{BarrierError, BarrierLimits};
use keyward_vault::seal::{
    SHARE_LEN, Seal, SealError, SealKind, SealStatus, UnsealProgress, UnsealShare,
};
use keyward_vault::storage::{Keyspace, SledConfig, SledStorage, Storage, WriteBatch};

fn store(dir: &Path) -> Arc<dyn Storage> {
    Arc::new(SledStorage::open(&SledConfig::new(dir.join("db"))).unwrap())
}

async fn open(storage: Arc<dyn Storage>) -> Seal {
    Seal::open(storage, BarrierLimits::default()).await.unwrap()
}

fn copy(share: &UnsealShare) -> UnsealShare {
    UnsealShare::from_bytes(share.as_bytes()).unwrap()
}

#[tokio::test]
async fn shares_unseal_one_at_a_time_with_progress() {
    let dir = tempfile::tempdir().unwrap();
    let seal = open(store(dir.path())).await;
    assert_eq!(
        seal.status(),
        SealStatus {
            initialized: false,
            sealed: true,
            kind: None,
            threshold: 0,
            shares: 0,
            progress: 0
        }
    );
    let shares = seal.init_shamir(3, 5).await.unwrap();
    assert_eq!(shares.len(), 5);
    assert!(!seal.is_sealed());
    let secret = seal
        .barrier()
        .encrypt(Keyspace::Secrets, b"kv/x", b"value")
        .await
        .unwrap();
    seal.seal();
    assert!(seal.is_sealed());
    assert_eq!(
        seal.submit_share(copy(&shares[4])).await.unwrap(),
        UnsealProgress::Pending {
            progress: 1,
            threshold: 3
        }
    );
    assert_eq!(
        seal.submit_share(copy(&shares[1])).await.unwrap(),
        UnsealProgress::Pending {
            progress: 2,
            threshold: 3
        }
    );
    // Tampered: the same share again. Refused, progress kept.
    let err = seal.submit_share(copy(&shares[1])).await.unwrap_err();
    assert!(
        matches!(err, SealError::DuplicateShare { index: 2 }),
        "{err:?}"
    );
    assert_eq!(seal.status().progress, 2);
    assert_eq!(
        seal.submit_share(copy(&shares[2])).await.unwrap(),
        UnsealProgress::Unsealed
    );
    let status = seal.status();
    assert_eq!(
        status,
        SealStatus {
            initialized: true,
            sealed: false,
            kind: Some(SealKind::Shamir),
            threshold: 3,
            shares: 5,
            progress: 0
        }
    );
    assert_eq!(
        seal.barrier()
            .decrypt(Keyspace::Secrets, b"kv/x", &secret)
            .unwrap()
            .as_slice(),
        b"value"
    );
    assert!(matches!(
        seal.submit_share(copy(&shares[0])).await,
        Err(SealError::AlreadyUnsealed)
    ));
}

#[tokio::test]
async fn a_wrong_share_set_fails_cleanly_and_resets_progress() {
    let dir = tempfile::tempdir().unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let seal = open(store(dir.path())).await;
    let shares = seal.init_shamir(2, 3).await.unwrap();
    let foreign = open(store(other_dir.path()))
        .await
        .init_shamir(2, 3)
        .await
        .unwrap();
    seal.seal();
    // One share from another vault: the combination is some other key,
    // which does not open this vault's keyring.
    seal.submit_share(copy(&shares[0])).await.unwrap();
    let err = seal.submit_share(copy(&foreign[1])).await.unwrap_err();
    assert!(matches!(err, SealError::WrongShares), "{err:?}");
    assert_eq!(seal.status().progress, 0);
    assert!(seal.is_sealed());
    // A share with one flipped bit.
    let mut flipped = shares[1].as_bytes().to_vec();
    flipped[SHARE_LEN - 1] ^= 1;
    seal.submit_share(copy(&shares[0])).await.unwrap();
    assert!(matches!(
        seal.submit_share(UnsealShare::from_bytes(&flipped).unwrap())
            .await,
        Err(SealError::WrongShares)
    ));
    assert_eq!(seal.status().progress, 0);
    // The right set still unseals.
    seal.submit_share(copy(&shares[2])).await.unwrap();
    assert_eq!(
        seal.submit_share(copy(&shares[0])).await.unwrap(),
        UnsealProgress::Unsealed
    );
}

#[tokio::test]
async fn progress_can_be_reset_and_sealing_forgets_it() {
    let dir = tempfile::tempdir().unwrap();
    let seal = open(store(dir.path())).await;
    let shares = seal.init_shamir(2, 2).await.unwrap();
    seal.seal();
    seal.submit_share(copy(&shares[0])).await.unwrap();
    seal.reset_progress();
    assert_eq!(seal.status().progress, 0);
    seal.submit_share(copy(&shares[0])).await.unwrap();
    seal.seal();
    assert_eq!(seal.status().progress, 0);
}

#[tokio::test]
async fn a_restarted_vault_is_sealed_until_the_threshold_is_met() {
    let dir = tempfile::tempdir().unwrap();
    let (shares, secret) = {
        let storage = store(dir.path());
        let seal = open(Arc::clone(&storage)).await;
        let shares = seal.init_shamir(2, 3).await.unwrap();
        let secret = seal
            .barrier()
            .encrypt(Keyspace::Secrets, b"s", b"kept")
            .await
            .unwrap();
        let mut batch = WriteBatch::new();
        batch.put(Keyspace::Secrets, b"s", &secret).unwrap();
        storage.commit(batch).await.unwrap();
        (shares, secret)
    };
    let storage = store(dir.path());
    let seal = open(Arc::clone(&storage)).await;
    let status = seal.status();
    assert!(status.initialized && status.sealed);
    assert_eq!(status.kind, Some(SealKind::Shamir));
    assert!(matches!(
        seal.barrier().decrypt(Keyspace::Secrets, b"s", &secret),
        Err(BarrierError::Sealed)
    ));
    seal.submit_share(copy(&shares[2])).await.unwrap();
    seal.submit_share(copy(&shares[0])).await.unwrap();
    let stored = storage.get(Keyspace::Secrets, b"s").await.unwrap().unwrap();
    assert_eq!(
        seal.barrier()
            .decrypt(Keyspace::Secrets, b"s", &stored)
            .unwrap()
            .as_slice(),
        b"kept"
    );
}

#[tokio::test]
async fn init_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let seal = open(store(dir.path())).await;
    assert!(matches!(
        seal.submit_share(UnsealShare::from_bytes(&[1; SHARE_LEN]).unwrap())
            .await,
        Err(SealError::NotInitialized)
    ));
    for (t, n) in [(0u8, 1u8), (3, 2), (0, 0)] {
        let err = seal.init_shamir(t, n).await.unwrap_err();
        assert!(
            matches!(err, SealError::InvalidShareParameters { threshold, shares } if threshold == t && shares == n),
            "{err:?}"
        );
    }
    let shares = seal.init_shamir(1, 1).await.unwrap();
    assert!(matches!(
        seal.init_shamir(2, 3).await,
        Err(SealError::AlreadyInitialized)
    ));
    assert!(matches!(
        seal.init_dev("127.0.0.1:1".parse().unwrap()).await,
        Err(SealError::AlreadyInitialized)
    ));
    // A second Seal on the same store (a stale process) cannot re-init.
    seal.seal();
    let other_dir = tempfile::tempdir().unwrap();
    let storage = store(other_dir.path());
    let fresh = open(Arc::clone(&storage)).await;
    fresh.init_shamir(1, 1).await.unwrap();
    let stale = open(Arc::clone(&storage)).await;
    drop(fresh);
    assert!(matches!(
        stale.init_shamir(1, 1).await,
        Err(SealError::AlreadyInitialized)
    ));
    // Threshold 1: one share unseals.
    assert_eq!(
        seal.submit_share(copy(&shares[0])).await.unwrap(),
        UnsealProgress::Unsealed
    );
}

#[tokio::test]
async fn a_corrupt_seal_configuration_is_refused() {
    let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(&SledConfig::temporary()).unwrap());
    for (bytes, what) in [
        (&b"KWSC\x01\x01\x02\x03"[..], None),
        (b"KWSX\x01\x01\x02\x03", Some("not a seal configuration")),
        (b"KWSC\x02\x01\x02\x03", Some("unsupported version")),
        (b"KWSC\x01\x09\x02\x03", Some("unknown kind")),
        (b"KWSC\x01\x01\x04\x03", Some("share parameters")),
        (b"KWSC\x01\x03\x01\x01", Some("share parameters")),
        (b"KWSC\x01\x01\x02\x03\x00", Some("wrong length")),
        (b"KWS", Some("truncated")),
    ] {
        let mut batch = WriteBatch::new();
        batch.put(Keyspace::System, b"seal/config", bytes).unwrap();
        storage.commit(batch).await.unwrap();
        match (
            Seal::open(Arc::clone(&storage), BarrierLimits::default()).await,
            what,
        ) {
            (Ok(seal), None) => assert_eq!(seal.status().threshold, 2),
            (Err(SealError::ConfigCorrupt { what: w }), Some(what)) => assert_eq!(w, what),
            (other, _) => panic!("{bytes:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn dev_mode_is_loopback_only_and_never_persists_the_root_key() {
    let storage: Arc<dyn Storage> = Arc::new(SledStorage::open(&SledConfig::temporary()).unwrap());
    let seal = open(Arc::clone(&storage)).await;
    for addr in ["0.0.0.0:8200", "10.1.2.3:8200", "[::]:8200"] {
        let addr = addr.parse().unwrap();
        let err = seal.init_dev(addr).await.unwrap_err();
        assert!(
            matches!(err, SealError::DevModeRequiresLoopback { addr: a } if a == addr),
            "{err:?}"
        );
    }
    assert!(!seal.status().initialized);
    let warning = seal.init_dev("[::1]:8200".parse().unwrap()).await.unwrap();
    assert!(warning.message().contains("DEV MODE"));
    assert!(warning.message().contains("never written"));
    assert!(!seal.is_sealed());
    let status = seal.status();
    assert_eq!(status.kind, Some(SealKind::Dev));
    assert_eq!((status.threshold, status.shares), (0, 0));
    // Nothing but the seal configuration and the wrapped keyring is stored.
    let system = storage
        .scan(Keyspace::System, keyward_vault::storage::KeyRange::All, 100)
        .await
        .unwrap();
    let keys: Vec<_> = system.iter().map(|(k, _)| k.as_slice()).collect();
    assert_eq!(keys, [&b"barrier/keyring"[..], b"seal/config"]);
    // Once sealed (or restarted), a dev vault stays sealed for good.
    seal.seal();
    assert!(matches!(
        seal.submit_share(UnsealShare::from_bytes(&[1; SHARE_LEN]).unwrap())
            .await,
        Err(SealError::DevModeCannotUnseal)
    ));
    let restarted = open(storage).await;
    assert!(restarted.is_sealed());
    assert!(matches!(
        restarted
            .submit_share(UnsealShare::from_bytes(&[1; SHARE_LEN]).unwrap())
            .await,
        Err(SealError::DevModeCannotUnseal)
    ));
}
