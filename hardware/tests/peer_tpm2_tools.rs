//! Cross-checks against tpm2-tools and OpenSSL, independent implementations
//! of the same formats: what `hardware` produces must satisfy them, and
//! what they produce must work with `hardware`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use keyward_hardware::harness::SimHost;
use keyward_hardware::{AkAlgorithm, EkKind, PcrBank, PcrSelection, TpmError};

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// DER SubjectPublicKeyInfo → PEM, with OpenSSL.
fn pem_from_der(dir: &Path, name: &str, der: &[u8]) -> PathBuf {
    let der_path = write(dir, &format!("{name}.der"), der);
    let pem = dir.join(format!("{name}.pem"));
    let out = run(Command::new("openssl")
        .args(["pkey", "-pubin", "-inform", "DER", "-in"])
        .arg(&der_path)
        .arg("-out")
        .arg(&pem));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    pem
}

struct QuoteFiles {
    ak_pem: PathBuf,
    msg: PathBuf,
    sig: PathBuf,
    pcrs: PathBuf,
    nonce_hex: String,
}

fn checkquote(f: &QuoteFiles) -> Output {
    run(Command::new("tpm2_checkquote")
        .arg("-u")
        .arg(&f.ak_pem)
        .arg("-m")
        .arg(&f.msg)
        .arg("-s")
        .arg(&f.sig)
        .arg("-f")
        .arg(&f.pcrs)
        .args(["-g", "sha256", "-q", &f.nonce_hex]))
}

/// The tpm2-tools "serialized" PCR file (`tpm2_quote -o`, the default
/// `-F serialized`): little-endian dumps of the C structs TPML_PCR_SELECTION
/// (u32 count + 16 × {u16 hash, u8 sizeofSelect, u8 pcrSelect[4], pad}),
/// then a u32 count of TPML_DIGEST, each {u32 count, 8 × {u16 size, u8[64]}}.
/// Its "values" format cannot be used: tpm2_checkquote 5.4 rejects even the
/// files tpm2_quote writes in it ("Failed to hash PCR values").
fn tpm2_tools_serialized_pcrs(sha256_indices: &[u8], digests: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&1u32.to_le_bytes());
    let mut bitmap = [0u8; 4];
    for i in sha256_indices {
        bitmap[usize::from(i / 8)] |= 1 << (i % 8);
    }
    out.extend_from_slice(&0x000Bu16.to_le_bytes());
    out.push(3);
    out.extend_from_slice(&bitmap);
    out.push(0);
    out.resize(4 + 16 * 8, 0);
    let lists: Vec<&[&[u8]]> = digests.chunks(8).collect();
    out.extend_from_slice(&u32::try_from(lists.len()).unwrap().to_le_bytes());
    for list in lists {
        out.extend_from_slice(&u32::try_from(list.len()).unwrap().to_le_bytes());
        for slot in 0..8 {
            let digest = list.get(slot).copied().unwrap_or_default();
            out.extend_from_slice(&u16::try_from(digest.len()).unwrap().to_le_bytes());
            let mut buffer = [0u8; 64];
            buffer[..digest.len()].copy_from_slice(digest);
            out.extend_from_slice(&buffer);
        }
    }
    out
}

fn quote_files(host: &SimHost, alg: AkAlgorithm) -> QuoteFiles {
    let tpm = host.open().unwrap();
    let ak = tpm.create_ak(EkKind::Rsa2048, alg).unwrap();
    tpm.extend_pcr_sha256(23, [0x23; 32]).unwrap();
    let indices = [0, 1, 2, 3, 4, 5, 6, 7, 23];
    let nonce = *b"keyward-cross-check-nonce-000001";
    let quote = tpm
        .quote(&ak, &nonce, &[PcrSelection::new(PcrBank::Sha256, &indices)])
        .unwrap();
    let dir = host.dir();
    let digests: Vec<&[u8]> = quote.pcrs.iter().map(|p| p.digest.as_slice()).collect();
    QuoteFiles {
        ak_pem: pem_from_der(dir, "ak", &ak.public().unwrap().spki_der),
        msg: write(dir, "quote.msg", &quote.attest),
        sig: write(dir, "quote.sig", &quote.signature),
        pcrs: write(
            dir,
            "quote.pcrs",
            &tpm2_tools_serialized_pcrs(&indices, &digests),
        ),
        nonce_hex: hex::encode(nonce),
    }
}

fn assert_checkquote_accepts_only_the_untampered(host: &SimHost, alg: AkAlgorithm) {
    let good = quote_files(host, alg);
    let out = checkquote(&good);
    assert!(
        out.status.success(),
        "valid quote rejected: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Another nonce.
    let mut nonce = good.nonce_hex.clone().into_bytes();
    nonce[0] = if nonce[0] == b'0' { b'1' } else { b'0' };
    let bad_nonce = QuoteFiles {
        nonce_hex: String::from_utf8(nonce).unwrap(),
        ..quote_files_clone(&good)
    };
    assert!(
        !checkquote(&bad_nonce).status.success(),
        "changed nonce accepted"
    );

    // One signature byte (the last one: inside the RSA/ECDSA value, not the header).
    let mut sig = std::fs::read(&good.sig).unwrap();
    *sig.last_mut().unwrap() ^= 0x01;
    let bad_sig = QuoteFiles {
        sig: write(host.dir(), "bad.sig", &sig),
        ..quote_files_clone(&good)
    };
    assert!(
        !checkquote(&bad_sig).status.success(),
        "changed signature accepted"
    );

    // One PCR value: the first byte of PCR 23, the only digest of the second TPML_DIGEST.
    let mut pcrs = std::fs::read(&good.pcrs).unwrap();
    pcrs[4 + 128 + 4 + 532 + 4 + 2] ^= 0x01;
    let bad_pcrs = QuoteFiles {
        pcrs: write(host.dir(), "bad.pcrs", &pcrs),
        ..quote_files_clone(&good)
    };
    assert!(
        !checkquote(&bad_pcrs).status.success(),
        "changed PCR accepted"
    );
}

fn quote_files_clone(f: &QuoteFiles) -> QuoteFiles {
    QuoteFiles {
        ak_pem: f.ak_pem.clone(),
        msg: f.msg.clone(),
        sig: f.sig.clone(),
        pcrs: f.pcrs.clone(),
        nonce_hex: f.nonce_hex.clone(),
    }
}

#[test]
fn rsa_quote_verifies_with_tpm2_checkquote_and_tampering_fails() {
    let host = SimHost::start().unwrap();
    assert_checkquote_accepts_only_the_untampered(&host, AkAlgorithm::RsaSsaSha256);
}

#[test]
fn ecdsa_quote_verifies_with_tpm2_checkquote_and_tampering_fails() {
    let host = SimHost::start().unwrap();
    assert_checkquote_accepts_only_the_untampered(&host, AkAlgorithm::EcdsaP256Sha256);
}

/// Splits a tpm2-tools credential file: magic 0xBADCC0DE, version 1, then
/// TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET (tpm2-tools lib/files.c).
fn split_tpm2_tools_credential(file: &[u8]) -> (Vec<u8>, Vec<u8>) {
    assert_eq!(&file[..4], &[0xBA, 0xDC, 0xC0, 0xDE]);
    assert_eq!(&file[4..8], &[0, 0, 0, 1]);
    let mut rest = &file[8..];
    let mut take = || {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let part = rest[2..2 + len].to_vec();
        rest = &rest[2 + len..];
        part
    };
    let (blob, secret) = (take(), take());
    assert!(rest.is_empty());
    (blob, secret)
}

fn makecredential(host: &SimHost, ek_pub: &Path, name: &[u8], secret: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let secret_path = write(host.dir(), "secret.bin", secret);
    let out_path = host.dir().join("cred.out");
    let out = run(Command::new("tpm2_makecredential")
        .args(["-T", "none", "-u"])
        .arg(ek_pub)
        .arg("-s")
        .arg(&secret_path)
        .args(["-n", &hex::encode(name), "-o"])
        .arg(&out_path));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    split_tpm2_tools_credential(&std::fs::read(out_path).unwrap())
}

#[test]
fn credential_from_tpm2_makecredential_activates_only_for_its_ak() {
    let host = SimHost::start().unwrap();
    let tpm = host.open().unwrap();
    let ek = tpm.ek_public(EkKind::Rsa2048).unwrap();
    let ek_pub = write(host.dir(), "ek.pub", &ek.tpm2b_public);
    let ak = tpm
        .create_ak(EkKind::Rsa2048, AkAlgorithm::default())
        .unwrap();
    let other_ak = tpm
        .create_ak(EkKind::Rsa2048, AkAlgorithm::default())
        .unwrap();
    let secret = *b"0123456789abcdef0123456789abcdef";

    let (blob, encrypted) = makecredential(&host, &ek_pub, &ak.public().unwrap().name, &secret);
    let recovered = tpm.activate_credential(&ak, &blob, &encrypted).unwrap();
    assert_eq!(recovered.as_slice(), secret);

    // Made for another AK's name: the TPM's integrity check refuses it.
    let err = tpm
        .activate_credential(&other_ak, &blob, &encrypted)
        .unwrap_err();
    assert!(
        matches!(
            err,
            TpmError::Command {
                command: "ActivateCredential",
                ..
            }
        ),
        "{err:?}"
    );
    // The session slot was released: activation still works afterwards.
    let (blob, encrypted) =
        makecredential(&host, &ek_pub, &other_ak.public().unwrap().name, &secret);
    assert_eq!(
        tpm.activate_credential(&other_ak, &blob, &encrypted)
            .unwrap()
            .as_slice(),
        secret
    );
}

#[test]
fn ecc_ek_activates_credentials_too() {
    let host = SimHost::start().unwrap();
    let tpm = host.open().unwrap();
    let ek = tpm.ek_public(EkKind::EccP384).unwrap();
    let ek_pub = write(host.dir(), "ek-ecc.pub", &ek.tpm2b_public);
    let ak = tpm
        .create_ak(EkKind::EccP384, AkAlgorithm::EcdsaP256Sha256)
        .unwrap();
    let secret = *b"ecc-secret-0123456789";
    let (blob, encrypted) = makecredential(&host, &ek_pub, &ak.public().unwrap().name, &secret);
    assert_eq!(
        tpm.activate_credential(&ak, &blob, &encrypted)
            .unwrap()
            .as_slice(),
        secret
    );
}

#[test]
fn ek_certificates_chain_to_the_harness_ca_and_certify_the_ek() {
    let host = SimHost::start().unwrap();
    let tpm = host.open().unwrap();
    for (kind, name) in [(EkKind::Rsa2048, "rsa"), (EkKind::EccP384, "ecc")] {
        let cert = write(
            host.dir(),
            &format!("ek-{name}.der"),
            &tpm.ek_certificate(kind).unwrap(),
        );
        let pem = host.dir().join(format!("ek-{name}.pem"));
        let out = run(Command::new("openssl")
            .args(["x509", "-inform", "DER", "-in"])
            .arg(&cert)
            .arg("-out")
            .arg(&pem));
        assert!(out.status.success());
        let verify = |ca: &Path, untrusted: Option<&Path>| {
            let mut cmd = Command::new("openssl");
            cmd.arg("verify").arg("-CAfile").arg(ca);
            if let Some(u) = untrusted {
                cmd.arg("-untrusted").arg(u);
            }
            // swtpm's EK certificates carry a critical SAN with TPM attributes
            // that OpenSSL does not know; -ignore_critical is what tpm2-tools' docs use.
            run(cmd.arg("-ignore_critical").arg(&pem))
        };
        let ca = host.ca();
        let ok = verify(&ca.root_cert_path(), Some(&ca.intermediate_cert_path()));
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stdout)
        );
        // Without the intermediate there is no chain.
        assert!(!verify(&ca.root_cert_path(), None).status.success());

        // The certified key is the EK: compare DER SubjectPublicKeyInfo.
        let spki = run(Command::new("openssl")
            .args(["x509", "-inform", "DER", "-noout", "-pubkey", "-in"])
            .arg(&cert));
        let spki_pem = write(host.dir(), "spki.pem", &spki.stdout);
        let der = run(Command::new("openssl")
            .args(["pkey", "-pubin", "-outform", "DER", "-in"])
            .arg(&spki_pem));
        assert!(der.status.success());
        assert_eq!(
            der.stdout,
            tpm.ek_public(kind).unwrap().spki_der,
            "{kind:?}"
        );
    }
}

#[test]
fn ek_of_another_tpm_does_not_match_this_certificate() {
    let host = SimHost::start().unwrap();
    let other = SimHost::start().unwrap();
    let cert = host.ek_certificate(EkKind::Rsa2048).unwrap();
    let other_ek = other.open().unwrap().ek_public(EkKind::Rsa2048).unwrap();
    let cert_path = write(host.dir(), "ek.der", &cert);
    let spki = run(Command::new("openssl")
        .args(["x509", "-inform", "DER", "-noout", "-pubkey", "-in"])
        .arg(&cert_path));
    let spki_pem = write(host.dir(), "spki.pem", &spki.stdout);
    let der = run(Command::new("openssl")
        .args(["pkey", "-pubin", "-outform", "DER", "-in"])
        .arg(&spki_pem));
    assert_ne!(der.stdout, other_ek.spki_der);
}
