//! Latency of the TPM operations on the hot paths, against swtpm:
//! a quote over 9 PCRs (what every attestation costs the host) and
//! ActivateCredential (what enrollment costs).
//!
//! `cargo bench -p keyward-hardware`. swtpm runs the TPM in software, so
//! these figures are a floor for the host side; real TPMs are slower
//! (tens to hundreds of ms per RSA signature).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use criterion::{Criterion, criterion_group, criterion_main};
use keyward_hardware::harness::SimHost;
use keyward_hardware::{AkAlgorithm, EkKind, PcrBank, PcrSelection};

fn tpm_operations(c: &mut Criterion) {
    let host = SimHost::start().unwrap();
    let tpm = host.open().unwrap();
    let selection = [PcrSelection::new(
        PcrBank::Sha256,
        &[0, 1, 2, 3, 4, 5, 6, 7, 23],
    )];
    let mut group = c.benchmark_group("swtpm");
    group.sample_size(30);

    for (label, alg) in [
        ("rsa2048", AkAlgorithm::RsaSsaSha256),
        ("ecc_p256", AkAlgorithm::EcdsaP256Sha256),
    ] {
        let ak = tpm.create_ak(EkKind::Rsa2048, alg).unwrap();
        let nonce = [0x5a; 32];
        group.bench_function(format!("quote_9_pcrs_{label}_ak"), |b| {
            b.iter(|| tpm.quote(&ak, &nonce, &selection).unwrap())
        });
    }

    // A credential made by tpm2-tools (the peer MakeCredential) for an RSA AK.
    let ak = tpm
        .create_ak(EkKind::Rsa2048, AkAlgorithm::RsaSsaSha256)
        .unwrap();
    let ek = tpm.ek_public(EkKind::Rsa2048).unwrap();
    let ek_path = host.dir().join("ek.pub");
    std::fs::write(&ek_path, &ek.tpm2b_public).unwrap();
    let secret_path = host.dir().join("secret");
    std::fs::write(&secret_path, [7u8; 32]).unwrap();
    let cred_path = host.dir().join("cred");
    let status = std::process::Command::new("tpm2_makecredential")
        .args(["-T", "none", "-u"])
        .arg(&ek_path)
        .arg("-s")
        .arg(&secret_path)
        .args(["-n", &hex::encode(ak.public().unwrap().name), "-o"])
        .arg(&cred_path)
        .status()
        .unwrap();
    assert!(status.success());
    let file = std::fs::read(&cred_path).unwrap();
    // magic(4) version(4) TPM2B_ID_OBJECT TPM2B_ENCRYPTED_SECRET
    let blob_len = usize::from(u16::from_be_bytes([file[8], file[9]]));
    let blob = file[10..10 + blob_len].to_vec();
    let secret = file[10 + blob_len + 2..].to_vec();
    group.bench_function("activate_credential_rsa2048_ek", |b| {
        b.iter(|| tpm.activate_credential(&ak, &blob, &secret).unwrap())
    });
    group.finish();
}

criterion_group!(benches, tpm_operations);
criterion_main!(benches);
