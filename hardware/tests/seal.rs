//! Sealing to a PCR policy, against swtpm.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use keyward_hardware::harness::SimHost;
use keyward_hardware::{
    AkAlgorithm, EkKind, MAX_SEALED_SECRET, PcrBank, PcrSelection, SealedSecret, TpmSealError,
    default_seal_pcrs,
};

const SECRET: &[u8; 32] = b"root key: 32 bytes of test data!";

#[test]
fn sealed_secret_unseals_on_the_same_tpm_and_after_a_reboot() {
    let mut host = SimHost::start().unwrap();
    let tpm = host.open().unwrap();
    let sealed = tpm.seal_secret(SECRET, &default_seal_pcrs()).unwrap();
    assert_eq!(sealed.pcrs(), &default_seal_pcrs());
    let bytes = sealed.to_bytes().unwrap();
    let parsed = SealedSecret::from_bytes(&bytes).unwrap();
    assert_eq!(parsed.to_bytes().unwrap(), bytes);
    assert_eq!(tpm.unseal_secret(&parsed).unwrap().as_slice(), SECRET);
    drop(tpm);
    // PCRs reset to the same (empty-firmware) values on swtpm restart.
    host.reboot().unwrap();
    let tpm = host.open().unwrap();
    assert_eq!(tpm.unseal_secret(&parsed).unwrap().as_slice(), SECRET);
}

#[test]
fn extending_a_sealed_pcr_refuses_and_an_unsealed_one_does_not() {
    let host = SimHost::start().unwrap();
    let tpm = host.open().unwrap();
    let sealed = tpm.seal_secret(SECRET, &default_seal_pcrs()).unwrap();
    // PCR 23 is outside the selection: no effect on the policy.
    tpm.extend_pcr_sha256(23, [0x11; 32]).unwrap();
    assert_eq!(tpm.unseal_secret(&sealed).unwrap().as_slice(), SECRET);
    tpm.extend_pcr_sha256(7, [0x22; 32]).unwrap();
    let err = tpm.unseal_secret(&sealed).unwrap_err();
    assert!(matches!(err, TpmSealError::PolicyRefused), "{err:?}");
}

#[test]
fn a_blob_from_another_tpm_is_foreign() {
    let host = SimHost::start().unwrap();
    let other = SimHost::start().unwrap();
    let sealed = host
        .open()
        .unwrap()
        .seal_secret(SECRET, &default_seal_pcrs())
        .unwrap();
    let err = other.open().unwrap().unseal_secret(&sealed).unwrap_err();
    assert!(matches!(err, TpmSealError::ForeignObject), "{err:?}");
}

#[test]
fn every_object_and_session_is_flushed() {
    let host = SimHost::start().unwrap();
    let tpm = host.open().unwrap();
    // A loaded AK keeps one of swtpm's three object slots busy.
    let ak = tpm
        .create_ak(EkKind::Rsa2048, AkAlgorithm::default())
        .unwrap();
    tpm.load_ak(&ak).unwrap();
    let sealed = tpm.seal_secret(SECRET, &default_seal_pcrs()).unwrap();
    for _ in 0..5 {
        assert_eq!(tpm.unseal_secret(&sealed).unwrap().as_slice(), SECRET);
        tpm.seal_secret(b"x", &default_seal_pcrs()).unwrap();
    }
    tpm.extend_pcr_sha256(0, [1; 32]).unwrap();
    for _ in 0..5 {
        assert!(matches!(
            tpm.unseal_secret(&sealed),
            Err(TpmSealError::PolicyRefused)
        ));
    }
    drop(tpm);
    let handles = std::process::Command::new("tpm2_getcap")
        .arg("handles-transient")
        .env("TPM2TOOLS_TCTI", host.tcti())
        .output()
        .unwrap();
    assert!(handles.status.success());
    assert_eq!(String::from_utf8_lossy(&handles.stdout).trim(), "");
}

#[test]
fn arguments_are_checked_before_the_tpm_is_asked() {
    let host = SimHost::start().unwrap();
    let tpm = host.open().unwrap();
    for secret in [&[][..], &[0; MAX_SEALED_SECRET + 1][..]] {
        assert!(matches!(
            tpm.seal_secret(secret, &default_seal_pcrs()),
            Err(TpmSealError::SecretSize { max: 128, .. })
        ));
    }
    for (indices, what) in [
        (&[][..], "no PCR selected"),
        (&[7, 0][..], "PCR indices not ascending and distinct"),
        (&[0, 0][..], "PCR indices not ascending and distinct"),
        (&[24][..], "PCR index above 23"),
    ] {
        let err = tpm
            .seal_secret(SECRET, &PcrSelection::new(PcrBank::Sha256, indices))
            .unwrap_err();
        assert!(
            matches!(err, TpmSealError::BadSelection { what: w } if w == what),
            "{err:?}"
        );
    }
    assert_eq!(
        tpm.seal_secret(&[7; MAX_SEALED_SECRET], &default_seal_pcrs())
            .and_then(|s| tpm.unseal_secret(&s))
            .unwrap()
            .as_slice(),
        &[7; MAX_SEALED_SECRET]
    );
}

#[test]
fn blob_parser_rejects_damage() {
    let host = SimHost::start().unwrap();
    let sealed = host
        .open()
        .unwrap()
        .seal_secret(SECRET, &default_seal_pcrs())
        .unwrap();
    let bytes = sealed.to_bytes().unwrap();
    for len in 0..bytes.len() {
        assert!(matches!(
            SealedSecret::from_bytes(&bytes[..len]),
            Err(TpmSealError::MalformedBlob { .. })
        ));
    }
    let malformed = |bytes: &[u8], what: &str| {
        let err = SealedSecret::from_bytes(bytes).unwrap_err();
        assert!(
            matches!(err, TpmSealError::MalformedBlob { what: w } if w == what),
            "{err:?}"
        );
    };
    let mut trailing = bytes.clone();
    trailing.push(0);
    malformed(&trailing, "trailing bytes");
    let mut magic = bytes.clone();
    magic[0] ^= 1;
    malformed(&magic, "not a sealed-object blob");
    let mut version = bytes.clone();
    version[4] = 2;
    malformed(&version, "unsupported version");
    let mut bank = bytes.clone();
    bank[5] = 0x10;
    malformed(&bank, "unknown PCR bank");
    // PCR list [0, 2, 4, 7] at offsets 7..11: make it non-canonical.
    let mut order = bytes.clone();
    order.swap(7, 8);
    malformed(&order, "bad PCR list");
    let mut index = bytes.clone();
    index[10] = 24;
    malformed(&index, "bad PCR list");
}
