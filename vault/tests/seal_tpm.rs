//! TPM auto-unseal on swtpm: restart and reboot unseal by themselves; a
//! changed PCR or another TPM is refused, and recovery shares still work.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::Path;
use std::sync::Arc;

use keyward_hardware::harness::SimHost;
use keyward_hardware::{PcrBank, PcrSelection, TpmSealError, default_seal_pcrs};
use keyward_vault::barrier::BarrierLimits;
use keyward_vault::seal::{Seal, SealError, SealKind, UnsealProgress, UnsealShare};
use keyward_vault::storage::{Keyspace, SledConfig, SledStorage, Storage, WriteBatch};

fn store(dir: &Path) -> Arc<dyn Storage> {
    Arc::new(SledStorage::open(&SledConfig::new(dir.join("db"))).unwrap())
}

async fn open(dir: &Path) -> Seal {
    Seal::open(store(dir), BarrierLimits::default())
        .await
        .unwrap()
}

/// Initialises a TPM-sealed vault with 2-of-3 recovery shares and stores
/// one secret; returns the shares and the secret's stored value.
async fn init(dir: &Path, host: &SimHost) -> (Vec<UnsealShare>, Vec<u8>) {
    let storage = store(dir);
    let seal = Seal::open(Arc::clone(&storage), BarrierLimits::default())
        .await
        .unwrap();
    let tpm = host.open().unwrap();
    let shares = seal
        .init_tpm(&tpm, &default_seal_pcrs(), 2, 3)
        .await
        .unwrap();
    assert!(!seal.is_sealed());
    let status = seal.status();
    assert_eq!(status.kind, Some(SealKind::Tpm));
    assert_eq!((status.threshold, status.shares), (2, 3));
    let value = seal
        .barrier()
        .encrypt(Keyspace::Secrets, b"s", b"secret")
        .await
        .unwrap();
    let mut batch = WriteBatch::new();
    batch.put(Keyspace::Secrets, b"s", &value).unwrap();
    storage.commit(batch).await.unwrap();
    (shares, value)
}

fn assert_reads(seal: &Seal, value: &[u8]) {
    assert_eq!(
        seal.barrier()
            .decrypt(Keyspace::Secrets, b"s", value)
            .unwrap()
            .as_slice(),
        b"secret"
    );
}

#[tokio::test]
async fn restart_and_reboot_unseal_by_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = SimHost::start().unwrap();
    let (_shares, value) = init(dir.path(), &host).await;
    // Vault restart on the same host.
    {
        let seal = open(dir.path()).await;
        assert!(seal.is_sealed());
        seal.auto_unseal(&host.open().unwrap()).await.unwrap();
        assert!(!seal.is_sealed());
        assert_reads(&seal, &value);
        assert!(matches!(
            seal.auto_unseal(&host.open().unwrap()).await,
            Err(SealError::AlreadyUnsealed)
        ));
    }
    // Host reboot: PCRs reset and are measured to the same values.
    host.reboot().unwrap();
    let seal = open(dir.path()).await;
    seal.auto_unseal(&host.open().unwrap()).await.unwrap();
    assert_reads(&seal, &value);
}

#[tokio::test]
async fn a_changed_pcr_refuses_and_recovery_shares_still_unseal() {
    let dir = tempfile::tempdir().unwrap();
    let host = SimHost::start().unwrap();
    let (shares, value) = init(dir.path(), &host).await;
    let tpm = host.open().unwrap();
    // A changed boot state: the Secure Boot policy PCR moves.
    tpm.extend_pcr_sha256(7, [0x42; 32]).unwrap();
    let seal = open(dir.path()).await;
    let err = seal.auto_unseal(&tpm).await.unwrap_err();
    assert!(
        matches!(err, SealError::Tpm(TpmSealError::PolicyRefused)),
        "{err:?}"
    );
    assert!(seal.is_sealed());
    assert_eq!(
        seal.submit_share(UnsealShare::from_bytes(shares[2].as_bytes()).unwrap())
            .await
            .unwrap(),
        UnsealProgress::Pending {
            progress: 1,
            threshold: 2
        }
    );
    assert_eq!(
        seal.submit_share(UnsealShare::from_bytes(shares[0].as_bytes()).unwrap())
            .await
            .unwrap(),
        UnsealProgress::Unsealed
    );
    assert_reads(&seal, &value);
    // The operator accepts the new state: reseal to the current PCRs.
    seal.reseal_tpm(&tpm, &default_seal_pcrs()).await.unwrap();
    drop(seal);
    let seal = open(dir.path()).await;
    seal.auto_unseal(&tpm).await.unwrap();
    assert_reads(&seal, &value);
}

#[tokio::test]
async fn a_blob_from_another_tpm_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let host = SimHost::start().unwrap();
    let other = SimHost::start().unwrap();
    let (shares, value) = init(dir.path(), &host).await;
    // The data directory moved to another machine.
    let seal = open(dir.path()).await;
    let err = seal.auto_unseal(&other.open().unwrap()).await.unwrap_err();
    assert!(
        matches!(err, SealError::Tpm(TpmSealError::ForeignObject)),
        "{err:?}"
    );
    for share in &shares[..2] {
        seal.submit_share(UnsealShare::from_bytes(share.as_bytes()).unwrap())
            .await
            .unwrap();
    }
    assert_reads(&seal, &value);
}

#[tokio::test]
async fn tpm_operations_check_their_preconditions() {
    let dir = tempfile::tempdir().unwrap();
    let host = SimHost::start().unwrap();
    let tpm = host.open().unwrap();
    let seal = open(dir.path()).await;
    assert!(matches!(
        seal.auto_unseal(&tpm).await,
        Err(SealError::NotInitialized)
    ));
    assert!(matches!(
        seal.init_tpm(&tpm, &default_seal_pcrs(), 3, 2).await,
        Err(SealError::InvalidShareParameters {
            threshold: 3,
            shares: 2
        })
    ));
    assert!(matches!(
        seal.init_tpm(&tpm, &PcrSelection::new(PcrBank::Sha256, &[]), 1, 1)
            .await,
        Err(SealError::Tpm(TpmSealError::BadSelection { .. }))
    ));
    assert!(!seal.status().initialized);
    seal.init_shamir(1, 1).await.unwrap();
    seal.seal();
    assert!(matches!(
        seal.auto_unseal(&tpm).await,
        Err(SealError::WrongSealKind {
            kind: SealKind::Shamir
        })
    ));
    assert!(matches!(
        seal.reseal_tpm(&tpm, &default_seal_pcrs()).await,
        Err(SealError::WrongSealKind {
            kind: SealKind::Shamir
        })
    ));
}

#[tokio::test]
async fn a_damaged_sealed_blob_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let host = SimHost::start().unwrap();
    init(dir.path(), &host).await;
    let storage = store(dir.path());
    let mut blob = storage
        .get(Keyspace::System, b"seal/tpm")
        .await
        .unwrap()
        .unwrap();
    blob.push(0);
    let mut batch = WriteBatch::new();
    batch.put(Keyspace::System, b"seal/tpm", &blob).unwrap();
    storage.commit(batch).await.unwrap();
    let seal = Seal::open(storage, BarrierLimits::default()).await.unwrap();
    let err = seal.auto_unseal(&host.open().unwrap()).await.unwrap_err();
    assert!(
        matches!(
            err,
            SealError::Tpm(TpmSealError::MalformedBlob {
                what: "trailing bytes"
            })
        ),
        "{err:?}"
    );
}
