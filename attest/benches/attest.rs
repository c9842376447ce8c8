//! Verification cost, parse included, on real inputs:
//! (a) an RSA-2048 quote over 9 PCRs made by swtpm, beside a bare `ring`
//!     RSA-2048 PKCS#1 verify of the same signature;
//! (b) replaying the rhel8 boot event log (83 events, 3 banks);
//! (c) a full evidence check: quote + boot log + boot rules + workload CEL;
//! (d) a Sigstore bundle (`sigstore/verify_bundle_happy_path_v0_3`) and,
//!     beside it, the single ECDSA verifications it is made of
//!     (`sigstore/floor_*`);
//! (e) one proof-of-possession signature check (Ed25519 over a 32-byte
//!     digest, as `instance::PopProof::verify` does) with `ring` and with
//!     `aws-lc-rs`, beside ECDSA P-256 in both, the evidence for the PoP
//!     key type and library (`pop/*`).
//!
//! `cargo bench -p keyward-attest --bench attest`. Set
//! `KEYWARD_BENCH_QUOTE_DIR` to a directory holding `ak_rsa.pub`,
//! `quote_rsa.{msg,sig,pcrs}` and `nonce.hex` to bench another quote
//! (`scripts/bench/quote-vs-keylime.sh` does not need to: it uses the
//! checked-in vectors for both sides).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use std::path::{Path, PathBuf};

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use keyward_attest::boot_policy::BootPolicy;
use keyward_attest::cel::{self, DEFAULT_WORKLOAD_PCR, LaunchRecord, WorkloadLog};
use keyward_attest::digest::{HashAlg, PcrValues};
use keyward_attest::eventlog::BootLog;
use keyward_attest::key::PublicKey;
use keyward_attest::quote::{QuoteKey, verify_quote};
use keyward_attest::tpm::pcr::PcrFile;
use keyward_attest::tpm::public::TpmPublic;

fn quote_dir() -> PathBuf {
    std::env::var_os("KEYWARD_BENCH_QUOTE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/tpm"))
}

fn quote(c: &mut Criterion) {
    let dir = quote_dir();
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let (ak, msg, sig, pcrs) = (
        read("ak_rsa.pub"),
        read("quote_rsa.msg"),
        read("quote_rsa.sig"),
        read("quote_rsa.pcrs"),
    );
    let nonce = hex::decode(String::from_utf8(read("nonce.hex")).unwrap().trim()).unwrap();

    let mut group = c.benchmark_group("quote");
    group.bench_function("keyward_verify_rsa2048_9pcrs", |b| {
        b.iter(|| {
            let ak = TpmPublic::parse(black_box(&ak)).unwrap();
            let pcrs = PcrFile::parse(black_box(&pcrs)).unwrap().into_values();
            verify_quote(
                QuoteKey::Tpm(&ak),
                black_box(&msg),
                black_box(&sig),
                &pcrs,
                &nonce,
            )
            .unwrap()
        })
    });

    // The floor: ring's RSA-2048 PKCS#1 v1.5 SHA-256 verify of the same
    // signature over the same message, key components prepared once.
    let parsed = TpmPublic::parse(&ak).unwrap();
    let PublicKey::Rsa(rsa) = parsed.key() else {
        panic!("RSA AK expected")
    };
    let exponent = rsa.exponent().to_be_bytes();
    let first = exponent.iter().position(|b| *b != 0).unwrap();
    let components = ring::signature::RsaPublicKeyComponents {
        n: rsa.modulus().to_vec(),
        e: exponent[first..].to_vec(),
    };
    // TPMT_SIGNATURE: sigAlg (2) | hash (2) | size (2) | signature
    let raw_signature = sig[6..].to_vec();
    components
        .verify(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            &msg,
            &raw_signature,
        )
        .unwrap();
    group.bench_function("ring_rsa2048_pkcs1_verify", |b| {
        b.iter(|| {
            components
                .verify(
                    &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                    black_box(&msg),
                    black_box(&raw_signature),
                )
                .unwrap()
        })
    });
    group.finish();
}

fn rhel8_log() -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/testdata/tpm/eventlogs/rhel8-uefi.bin"),
    )
    .unwrap()
}

fn eventlog(c: &mut Criterion) {
    let log = rhel8_log();
    c.bench_function("eventlog/replay_rhel8", |b| {
        b.iter(|| BootLog::parse(black_box(&log)).unwrap().replay())
    });
}

/// A quote over the rhel8 boot PCRs and the workload PCR, signed in software
/// with an RSA-2048 key (a TPM cannot be made to hold the rhel8 PCR values),
/// so the signature check costs what a real AK's does.
struct Evidence {
    key: PublicKey,
    msg: Vec<u8>,
    sig: Vec<u8>,
    pcrs: PcrValues,
    nonce: Vec<u8>,
    boot_log: Vec<u8>,
    workload_log: Vec<u8>,
    instance_key_sha256: [u8; 32],
    policy: BootPolicy,
}

fn evidence() -> Evidence {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};

    let boot_log = rhel8_log();
    let replayed = BootLog::parse(&boot_log).unwrap().replay();
    let mut pcrs = PcrValues::new();
    for index in [0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 14] {
        pcrs.insert(
            HashAlg::Sha256,
            u32::from(index),
            replayed.get(HashAlg::Sha256, index).unwrap().to_vec(),
        )
        .unwrap();
    }
    let instance_key_sha256 = [0x17; 32];
    let record = LaunchRecord::new(
        "instance-1",
        "registry.example/agents/support@sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172",
        "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172",
        "support-model",
        "sha256:0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8",
        instance_key_sha256,
    )
    .unwrap();
    let mut workload_log = Vec::new();
    let digest = cel::append(&mut workload_log, DEFAULT_WORKLOAD_PCR, &record).unwrap();
    pcrs.insert(
        HashAlg::Sha256,
        u32::from(DEFAULT_WORKLOAD_PCR),
        HashAlg::Sha256.extend(&[0; 32], &digest),
    )
    .unwrap();

    // TPMS_ATTEST for a quote over sha256:0-9,14,23 (Part 2, §10.12.12).
    let nonce = HashAlg::Sha256.hash(&[b"keyward bench nonce"]);
    let concatenated: Vec<u8> = pcrs.iter().flat_map(|(_, _, v)| v.to_vec()).collect();
    let pcr_digest = HashAlg::Sha256.hash(&[&concatenated]);
    let mut msg = 0xff54_4347u32.to_be_bytes().to_vec();
    msg.extend_from_slice(&0x8018u16.to_be_bytes());
    msg.extend_from_slice(&[0, 0]);
    msg.extend_from_slice(&u16::try_from(nonce.len()).unwrap().to_be_bytes());
    msg.extend_from_slice(&nonce);
    msg.extend_from_slice(&[0; 17]);
    msg.extend_from_slice(&[0; 8]);
    msg.extend_from_slice(&[0, 0, 0, 1, 0x00, 0x0b, 3, 0xff, 0x43, 0x80]);
    msg.extend_from_slice(&u16::try_from(pcr_digest.len()).unwrap().to_be_bytes());
    msg.extend_from_slice(&pcr_digest);

    let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let mut signature = vec![0; pair.public_modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        &msg,
        &mut signature,
    )
    .unwrap();
    let mut sig = vec![0x00, 0x14, 0x00, 0x0b];
    sig.extend_from_slice(&u16::try_from(signature.len()).unwrap().to_be_bytes());
    sig.extend_from_slice(&signature);
    let key = PublicKey::from_spki_der(pair.public_key().as_der().unwrap().as_ref()).unwrap();
    assert!(matches!(key, PublicKey::Rsa(ref k) if k.bits() == 2048));

    let facts = BootLog::parse(&boot_log).unwrap().verify(&pcrs).unwrap();
    let apps: Vec<String> = facts
        .facts()
        .efi_applications()
        .unwrap()
        .iter()
        .map(|a| format!("\"{}\"", hex::encode(a.digest.0)))
        .collect();
    let lines: Vec<String> = facts
        .facts()
        .kernel_command_lines()
        .iter()
        .map(|l| serde_json::to_string(&l.text).unwrap())
        .collect();
    let policy: BootPolicy = serde_json::from_str(&format!(
        r#"{{"rules": {{"require_secure_boot": true, "allowed_efi_applications": [{}], "allowed_kernel_command_lines": [{}]}}}}"#,
        apps.join(","),
        lines.join(",")
    ))
    .unwrap();
    Evidence {
        key,
        msg,
        sig,
        pcrs,
        nonce,
        boot_log,
        workload_log,
        instance_key_sha256,
        policy,
    }
}

fn full_evidence(c: &mut Criterion) {
    let e = evidence();
    let check = |e: &Evidence| {
        let quote =
            verify_quote(QuoteKey::Public(&e.key), &e.msg, &e.sig, &e.pcrs, &e.nonce).unwrap();
        let boot = BootLog::parse(&e.boot_log)
            .unwrap()
            .verify(quote.pcr_values())
            .unwrap();
        let state = e.policy.evaluate(quote.pcr_values(), Some(&boot)).unwrap();
        let workload = WorkloadLog::parse(&e.workload_log, DEFAULT_WORKLOAD_PCR)
            .unwrap()
            .verify(quote.pcr_values())
            .unwrap();
        let record = workload
            .launch_record_for_key(&e.instance_key_sha256)
            .unwrap()
            .clone();
        (state, record)
    };
    check(&e);
    c.bench_function("evidence/full_check_quote_bootlog_policy_cel", |b| {
        b.iter(|| check(black_box(&e)))
    });
}

/// The conformance suite's `happy-path-v0.3` bundle (hashedrekord, Fulcio
/// certificate, Rekor inclusion proof and checkpoint) over `a.txt`, parsed
/// and verified each time against the production trusted root (built once),
/// as `scripts/bench/bundle-vs-sigstore-python.sh` does with sigstore-python.
fn sigstore_bundle(c: &mut Criterion) {
    use keyward_attest::sigstore::{
        ArtifactInput, SigningPolicy, TrustRoot, parse_bundle, verify_bundle,
    };
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata/sigstore/conformance");
    let bundle = std::fs::read(dir.join("happy-path-v0.3/bundle.sigstore.json")).unwrap();
    let artifact = std::fs::read(dir.join("a.txt")).unwrap();
    let trust = TrustRoot::production().unwrap();
    let policy = SigningPolicy::blob_identity(
        "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main",
        "https://token.actions.githubusercontent.com",
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let check = || {
        let parsed = parse_bundle(black_box(&bundle)).unwrap();
        verify_bundle(
            &trust,
            &policy,
            &parsed,
            ArtifactInput::Bytes(black_box(&artifact)),
            now,
        )
        .unwrap()
    };
    check();
    let mut group = c.benchmark_group("sigstore");
    group.bench_function("verify_bundle_happy_path_v0_3", |b| b.iter(check));
    group.finish();
}

/// The public-key operations `verify_bundle` cannot avoid on
/// `happy-path-v0.3`, each timed alone with aws-lc-rs as sigstore-verify
/// calls it (`UnparsedPublicKey`: key parsed, then verified): one ECDSA
/// P-256/SHA-256 verification (the artifact signature by the leaf key; the
/// SCT, SET and checkpoint are P-256 verifications of the same cost) and one
/// ECDSA P-384/SHA-384 verification (the Fulcio intermediate's signature on
/// the leaf). Four of the first and one of the second are the floor of a
/// keyless hashedrekord bundle with a SET, an SCT and a checkpoint.
fn sigstore_floor(c: &mut Criterion) {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, ECDSA_P384_SHA384_ASN1, UnparsedPublicKey};
    use base64::Engine as _;
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata/sigstore/conformance");
    let b64 = |s: &serde_json::Value| {
        base64::engine::general_purpose::STANDARD
            .decode(s.as_str().unwrap())
            .unwrap()
    };
    let bundle: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("happy-path-v0.3/bundle.sigstore.json")).unwrap(),
    )
    .unwrap();
    let root: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.join("../trusted_root.production.json")).unwrap(),
    )
    .unwrap();
    let artifact = std::fs::read(dir.join("a.txt")).unwrap();
    let leaf_der = b64(&bundle["verificationMaterial"]["certificate"]["rawBytes"]);
    let artifact_sig = b64(&bundle["messageSignature"]["signature"]);
    // The current Fulcio authority: chain [intermediate, root].
    let intermediate_der =
        b64(&root["certificateAuthorities"][1]["certChain"]["certificates"][0]["rawBytes"]);
    let (_, leaf) = x509_parser::parse_x509_certificate(&leaf_der).unwrap();
    let (_, intermediate) = x509_parser::parse_x509_certificate(&intermediate_der).unwrap();
    let leaf_key = leaf.public_key().subject_public_key.data.to_vec();
    let intermediate_key = intermediate.public_key().subject_public_key.data.to_vec();
    let tbs = leaf.tbs_certificate.as_ref().to_vec();
    let leaf_sig = leaf.signature_value.data.to_vec();

    let p256 = || {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, black_box(&leaf_key))
            .verify(black_box(&artifact), black_box(&artifact_sig))
            .unwrap()
    };
    let p384 = || {
        UnparsedPublicKey::new(&ECDSA_P384_SHA384_ASN1, black_box(&intermediate_key))
            .verify(black_box(&tbs), black_box(&leaf_sig))
            .unwrap()
    };
    p256();
    p384();
    // Tampered inputs must fail, or the timings mean nothing.
    let mut bad = artifact.clone();
    bad.push(b'x');
    assert!(
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &leaf_key)
            .verify(&bad, &artifact_sig)
            .is_err()
    );
    let mut bad = tbs.clone();
    bad[10] ^= 1;
    assert!(
        UnparsedPublicKey::new(&ECDSA_P384_SHA384_ASN1, &intermediate_key)
            .verify(&bad, &leaf_sig)
            .is_err()
    );
    let mut group = c.benchmark_group("sigstore");
    group.bench_function("floor_ecdsa_p256_sha256_verify", |b| b.iter(p256));
    group.bench_function("floor_ecdsa_p384_sha384_verify", |b| b.iter(p384));
    group.finish();
}

/// One PoP-sized signature check per library and key type: key parsed
/// from its raw bytes and the signature verified, as a request does.
fn pop_verify(c: &mut Criterion) {
    use aws_lc_rs::signature as lc;
    use ring::signature as rs;
    use ring::signature::KeyPair as _;
    let rng = ring::rand::SystemRandom::new();
    let message = [7u8; 32];

    let ed_pkcs8 = rs::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let ed = rs::Ed25519KeyPair::from_pkcs8(ed_pkcs8.as_ref()).unwrap();
    let ed_public = ed.public_key().as_ref().to_vec();
    let ed_sig = ed.sign(&message).as_ref().to_vec();

    let p256_pkcs8 =
        rs::EcdsaKeyPair::generate_pkcs8(&rs::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let p256 = rs::EcdsaKeyPair::from_pkcs8(
        &rs::ECDSA_P256_SHA256_FIXED_SIGNING,
        p256_pkcs8.as_ref(),
        &rng,
    )
    .unwrap();
    let p256_public = p256.public_key().as_ref().to_vec();
    let p256_sig = p256.sign(&rng, &message).unwrap().as_ref().to_vec();

    let ring_ed = || {
        rs::UnparsedPublicKey::new(&rs::ED25519, black_box(&ed_public))
            .verify(black_box(&message), black_box(&ed_sig))
    };
    let lc_ed = || {
        lc::UnparsedPublicKey::new(&lc::ED25519, black_box(&ed_public))
            .verify(black_box(&message), black_box(&ed_sig))
    };
    let ring_p256 = || {
        rs::UnparsedPublicKey::new(&rs::ECDSA_P256_SHA256_FIXED, black_box(&p256_public))
            .verify(black_box(&message), black_box(&p256_sig))
    };
    let lc_p256 = || {
        lc::UnparsedPublicKey::new(&lc::ECDSA_P256_SHA256_FIXED, black_box(&p256_public))
            .verify(black_box(&message), black_box(&p256_sig))
    };
    // Both libraries accept the good signatures and refuse a changed one,
    // or the timings mean nothing.
    assert!(ring_ed().is_ok() && lc_ed().is_ok() && ring_p256().is_ok() && lc_p256().is_ok());
    let mut other = message;
    other[0] ^= 1;
    assert!(
        rs::UnparsedPublicKey::new(&rs::ED25519, &ed_public)
            .verify(&other, &ed_sig)
            .is_err()
    );
    assert!(
        lc::UnparsedPublicKey::new(&lc::ED25519, &ed_public)
            .verify(&other, &ed_sig)
            .is_err()
    );
    assert!(
        lc::UnparsedPublicKey::new(&lc::ECDSA_P256_SHA256_FIXED, &p256_public)
            .verify(&other, &p256_sig)
            .is_err()
    );

    let mut group = c.benchmark_group("pop");
    group.bench_function("ring_ed25519_verify", |b| b.iter(ring_ed));
    group.bench_function("aws_lc_ed25519_verify", |b| b.iter(lc_ed));
    group.bench_function("ring_ecdsa_p256_verify", |b| b.iter(ring_p256));
    group.bench_function("aws_lc_ecdsa_p256_verify", |b| b.iter(lc_p256));
    group.finish();
}

criterion_group!(
    benches,
    pop_verify,
    quote,
    eventlog,
    full_evidence,
    sigstore_bundle,
    sigstore_floor
);
criterion_main!(benches);
