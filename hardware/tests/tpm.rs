//! The TPM layer against a real software TPM (swtpm), one per test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use keyward_hardware::harness::SimHost;
use keyward_hardware::{AkAlgorithm, AkBlob, EkKind, PcrBank, PcrSelection, Tpm, TpmError};

#[test]
fn reads_both_eks_and_their_certificates() {
    let host = SimHost::start().unwrap();
    let tpm = host.open().unwrap();
    for kind in [EkKind::Rsa2048, EkKind::EccP384] {
        let ek = tpm.ek_public(kind).unwrap();
        assert!(
            ek.from_persistent_handle,
            "swtpm_setup persists the {kind:?} EK"
        );
        // TPM2B_PUBLIC: a u16 size then the area it announces.
        let size = usize::from(u16::from_be_bytes([ek.tpm2b_public[0], ek.tpm2b_public[1]]));
        assert_eq!(size + 2, ek.tpm2b_public.len());
        assert_eq!(
            ek.name.len(),
            2 + if kind == EkKind::Rsa2048 { 32 } else { 48 }
        );
        let cert = tpm.ek_certificate(kind).unwrap();
        assert_eq!(cert[0], 0x30, "DER SEQUENCE");
    }
}

#[test]
fn ak_blobs_round_trip_and_are_bound_to_their_tpm() {
    let host = SimHost::start().unwrap();
    let other = SimHost::start().unwrap();
    let tpm = host.open().unwrap();
    for alg in [AkAlgorithm::RsaSsaSha256, AkAlgorithm::EcdsaP256Sha256] {
        let ak = tpm.create_ak(EkKind::Rsa2048, alg).unwrap();
        let path = host.dir().join("ak.bin");
        ak.save(&path).unwrap();
        let loaded = AkBlob::load(&path).unwrap();
        assert_eq!(loaded.public().unwrap(), ak.public().unwrap());
        // The name the TPM reports equals the one we compute offline.
        assert_eq!(tpm.load_ak(&loaded).unwrap(), ak.public().unwrap());
        // Another TPM cannot load it: the private part is wrapped by this TPM's EK.
        let err = other.open().unwrap().load_ak(&loaded).unwrap_err();
        assert!(
            matches!(
                err,
                TpmError::Command {
                    command: "Load(AK)",
                    ..
                }
            ),
            "{err:?}"
        );
    }
}

#[test]
fn ak_file_parser_rejects_damage() {
    let host = SimHost::start().unwrap();
    let ak = host
        .open()
        .unwrap()
        .create_ak(EkKind::Rsa2048, AkAlgorithm::default())
        .unwrap();
    let bytes = ak.to_bytes().unwrap();
    for len in 0..bytes.len() {
        assert!(matches!(
            AkBlob::from_bytes(&bytes[..len]),
            Err(TpmError::MalformedAkFile { .. })
        ));
    }
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(
        AkBlob::from_bytes(&trailing),
        Err(TpmError::MalformedAkFile {
            what: "trailing bytes"
        })
    ));
    let mut magic = bytes.clone();
    magic[0] ^= 1;
    assert!(matches!(
        AkBlob::from_bytes(&magic),
        Err(TpmError::MalformedAkFile {
            what: "not an AK file"
        })
    ));
}

#[test]
fn extend_changes_exactly_one_pcr_as_the_spec_says() {
    let host = SimHost::start().unwrap();
    let tpm = host.open().unwrap();
    let sel = [PcrSelection::new(PcrBank::Sha256, &[16, 23])];
    let before = tpm.read_pcrs(&sel).unwrap();
    assert_eq!(before.len(), 2);
    assert_eq!(before[1].digest, vec![0; 32]);
    let digest = *b"0123456789abcdef0123456789abcdef";
    tpm.extend_pcr_sha256(23, digest).unwrap();
    let after = tpm.read_pcrs(&sel).unwrap();
    assert_eq!(after[0], before[0]);
    let expected = ring::digest::digest(&ring::digest::SHA256, &[[0u8; 32], digest].concat());
    assert_eq!(after[1].digest, expected.as_ref());
    assert!(matches!(
        tpm.extend_pcr_sha256(24, digest),
        Err(TpmError::InvalidArgument { .. })
    ));
}

#[test]
fn reading_an_unallocated_bank_fails_instead_of_spinning() {
    let host = SimHost::start().unwrap();
    let tpm = host.open().unwrap();
    // The harness allocates only the SHA-256 bank.
    let err = tpm
        .read_pcrs(&[PcrSelection::new(PcrBank::Sha1, &[0])])
        .unwrap_err();
    assert!(
        matches!(err, TpmError::UnexpectedResponse { .. }),
        "{err:?}"
    );
}

#[test]
fn quote_returns_marshalled_structures_and_pcrs() {
    let host = SimHost::start().unwrap();
    let tpm = host.open().unwrap();
    let ak = tpm
        .create_ak(EkKind::Rsa2048, AkAlgorithm::default())
        .unwrap();
    let sel = [PcrSelection::new(
        PcrBank::Sha256,
        &[0, 1, 2, 3, 4, 5, 6, 7, 23],
    )];
    let quote = tpm.quote(&ak, b"nonce", &sel).unwrap();
    assert_eq!(
        &quote.attest[..4],
        &[0xff, 0x54, 0x43, 0x47],
        "TPM_GENERATED_VALUE"
    );
    assert_eq!(&quote.attest[4..6], &[0x80, 0x18], "TPM_ST_ATTEST_QUOTE");
    assert_eq!(&quote.signature[..2], &[0x00, 0x14], "TPM_ALG_RSASSA");
    assert_eq!(quote.pcrs.len(), 9);
    assert_eq!(
        quote.pcrs.iter().map(|p| p.index).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4, 5, 6, 7, 23]
    );
    assert!(matches!(
        tpm.quote(&ak, &[0; 65], &sel),
        Err(TpmError::InvalidArgument { .. })
    ));
}

#[test]
fn open_flushes_transient_objects_left_by_killed_clients() {
    let host = SimHost::start().unwrap();
    // tpm2-tools without a resource manager leaves each primary loaded: three
    // of them fill all of swtpm's object slots, as killed processes would.
    for i in 0..3 {
        let ctx = host.dir().join(format!("primary{i}.ctx"));
        let out = std::process::Command::new("tpm2_createprimary")
            .args(["-C", "o", "-G", "ecc", "-c"])
            .arg(&ctx)
            .env("TPM2TOOLS_TCTI", host.tcti())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let handles = std::process::Command::new("tpm2_getcap")
        .arg("handles-transient")
        .env("TPM2TOOLS_TCTI", host.tcti())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&handles.stdout).lines().count(), 3);
    // With the slots full an AK could not be created; open() clears them.
    let tpm = Tpm::open(&host.tcti()).unwrap();
    tpm.create_ak(EkKind::Rsa2048, AkAlgorithm::default())
        .unwrap();
}

#[test]
fn one_tpm_serves_many_threads() {
    let host = SimHost::start().unwrap();
    let tpm = host.open().unwrap();
    let ak = tpm
        .create_ak(EkKind::Rsa2048, AkAlgorithm::default())
        .unwrap();
    let sel = [PcrSelection::new(PcrBank::Sha256, &[23])];
    std::thread::scope(|scope| {
        for i in 0..4u8 {
            let (tpm, ak, sel) = (tpm.clone(), &ak, &sel);
            scope.spawn(move || {
                for j in 0..3u8 {
                    let quote = tpm.quote(ak, &[i, j], sel).unwrap();
                    assert!(quote.attest.windows(2).any(|w| w == [i, j]));
                }
            });
        }
    });
}

#[test]
fn bad_tcti_strings_are_refused_not_reinterpreted() {
    for tcti in [
        "swtpm:pth=/tmp/x",
        "bogus:",
        "swtpm:path=/x,port=1",
        "mssim:path=/x",
    ] {
        assert!(
            matches!(
                Tpm::open(tcti),
                Err(TpmError::BadTcti { .. } | TpmError::Open { .. })
            ),
            "{tcti}"
        );
    }
    let err = Tpm::open("swtpm:path=/nonexistent/keyward.sock").unwrap_err();
    assert!(matches!(err, TpmError::Open { .. }), "{err:?}");
}

#[test]
fn reboot_resets_pcrs_and_keeps_keys() {
    let mut host = SimHost::start().unwrap();
    let ak;
    {
        let tpm = host.open().unwrap();
        ak = tpm
            .create_ak(EkKind::Rsa2048, AkAlgorithm::default())
            .unwrap();
        tpm.extend_pcr_sha256(23, [7; 32]).unwrap();
    }
    host.reboot().unwrap();
    let tpm = host.open().unwrap();
    let pcr = tpm
        .read_pcrs(&[PcrSelection::new(PcrBank::Sha256, &[23])])
        .unwrap();
    assert_eq!(pcr[0].digest, vec![0; 32]);
    tpm.load_ak(&ak).unwrap();
}

#[test]
fn ek_is_recreated_from_the_tcg_template_when_not_persisted() {
    for (kind, handle) in [
        (EkKind::Rsa2048, "0x81010001"),
        (EkKind::EccP384, "0x81010016"),
    ] {
        let host = SimHost::start().unwrap();
        let persisted = host.open().unwrap().ek_public(kind).unwrap();
        // Remove the persistent EK, as on a TPM whose owner never persisted it.
        let out = std::process::Command::new("tpm2_evictcontrol")
            .args(["-C", "o", "-c", handle])
            .env("TPM2TOOLS_TCTI", host.tcti())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tpm = host.open().unwrap();
        let recreated = tpm.ek_public(kind).unwrap();
        assert!(!recreated.from_persistent_handle);
        // Primaries derive from the endorsement seed: the key the certificate certifies.
        assert_eq!(recreated.spki_der, persisted.spki_der, "{kind:?}");
        assert_eq!(recreated.name, persisted.name, "{kind:?}");
        // And it works as the AK's parent.
        let ak = tpm.create_ak(kind, AkAlgorithm::default()).unwrap();
        tpm.load_ak(&ak).unwrap();
    }
}
