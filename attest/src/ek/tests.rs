//! Tests against real Google vTPM and vendor CA certificates
//! (`shared/testdata/tpm/`), a swtpm local CA and crafted certificates
//! (`attest/testdata/ek/`, made by `attest/testdata/ek/gen.sh`).

use std::path::{Path, PathBuf};

use super::cert::{Certificate, SignatureAlgorithm};
use super::*;

/// 2090-01-01T00:00:00Z: after every swtpm and crafted notBefore, before the
/// crafted notAfters (except `ek-expired.der`).
const T_2090: u64 = 3_786_912_000;
/// 2024-01-01T00:00:00Z: inside the Google vTPM certificates' validity.
const T_2024: u64 = 1_704_067_200;
/// 2000-01-01T00:00:00Z: before every certificate here.
const T_2000: u64 = 946_684_800;

fn ek_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/ek")
}

fn shared_tpm_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata/tpm")
}

fn read(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn vector(name: &str) -> Vec<u8> {
    read(ek_dir().join(name))
}

fn gce(name: &str) -> Vec<u8> {
    read(shared_tpm_dir().join("gce-certs").join(name))
}

fn key(name: &str) -> PublicKey {
    PublicKey::from_pem(std::str::from_utf8(&vector(name)).unwrap()).unwrap()
}

fn pem_to_der(bytes: &[u8]) -> Vec<u8> {
    certificate_from_pem(std::str::from_utf8(bytes).unwrap()).unwrap()
}

fn swtpm_store() -> EkTrustStore {
    let mut store = EkTrustStore::new();
    assert_eq!(
        store.add_roots("swtpm/root.pem", &vector("swtpm/root.pem")),
        Ok(1)
    );
    assert_eq!(
        store.add_intermediates("swtpm/intermediate.pem", &vector("swtpm/intermediate.pem")),
        Ok(1)
    );
    store
}

fn strict() -> EkPolicy {
    EkPolicy {
        require_ek_eku: true,
        expiry: ExpiryPolicy::Enforce,
        allow_sha1_signatures: false,
    }
}

fn verify(
    cert: &[u8],
    supplied: &[&[u8]],
    ek: &PublicKey,
    store: &EkTrustStore,
    policy: &EkPolicy,
    time: u64,
) -> Result<VerifiedEk, EkError> {
    verify_ek_certificate(cert, supplied, ek, store, policy, time)
}

/// The swtpm tpm1 RSA EK certificate checked against `store` and `policy` at 2090.
fn swtpm_rsa(
    cert: &str,
    supplied: &[&[u8]],
    store: &EkTrustStore,
    policy: &EkPolicy,
) -> Result<VerifiedEk, EkError> {
    verify(
        &vector(cert),
        supplied,
        &key("swtpm/tpm1-ek-rsa.pub.pem"),
        store,
        policy,
        T_2090,
    )
}

// ---------------------------------------------------------------- Google vTPM

/// `uca_*` certificates chain to `tpm_ek_intermediate_3` → `tpm_ek_root_1`
/// ("tpm_ek_v1_cloud_host" CA); `pca_*` ones to `gcp_ek_ak_ca_intermediate_v3`
/// → `gcp_ek_ak_ca_root` ("EK/AK CA"). The `*_enc_*` ones certify EKs.
fn gce_store(root: &str, intermediate: &str) -> EkTrustStore {
    let mut store = EkTrustStore::new();
    assert_eq!(store.add_roots(root, &gce(root)), Ok(1));
    assert_eq!(
        store.add_intermediates(intermediate, &gce(intermediate)),
        Ok(1)
    );
    store
}

#[test]
fn google_uca_ek_certificates_chain_to_the_cloud_host_root() {
    let store = gce_store("tpm_ek_root_1.cer", "tpm_ek_intermediate_3.crt");
    let policy = EkPolicy {
        require_ek_eku: true,
        expiry: ExpiryPolicy::Enforce,
        ..EkPolicy::default()
    };
    for name in ["uca_tpm_rsa_enc", "uca_tpm_ecc_enc"] {
        let cert = pem_to_der(&gce(&format!("{name}_cert.pem")));
        let ek = key(&format!("gce/{name}.pub.pem"));
        let verified = verify(&cert, &[], &ek, &store, &policy, T_2024).unwrap();
        assert_eq!(verified.public_key(), &ek);
        let tpm = verified.tpm().unwrap();
        assert_eq!(
            (tpm.manufacturer(), tpm.model(), tpm.version()),
            ("id:474F4F47", "vTPM", "id:20160511")
        );
        assert_eq!(tpm.manufacturer_id(), Some(0x474F_4F47)); // "GOOG"
        assert_eq!(verified.issuers().len(), 2);
        assert!(verified.issuers()[0].contains("tpm_ek_v1_cloud_host-signer-0-2021-10-12"));
        assert!(
            verified
                .trust_anchor()
                .contains("tpm_ek_v1_cloud_host_root-signer")
        );
        assert!(!verified.accepted_expired());
        let digest = ring::digest::digest(&ring::digest::SHA256, &cert);
        assert_eq!(verified.certificate_sha256().as_slice(), digest.as_ref());

        // The same chain with the intermediate sent by the host instead.
        let mut roots_only = EkTrustStore::new();
        roots_only
            .add_roots("root", &gce("tpm_ek_root_1.cer"))
            .unwrap();
        let intermediate = gce("tpm_ek_intermediate_3.crt");
        assert!(verify(&cert, &[&intermediate], &ek, &roots_only, &policy, T_2024).is_ok());
        // Without it, the EK's issuer is unknown.
        assert!(matches!(
            verify(&cert, &[], &ek, &roots_only, &policy, T_2024),
            Err(EkError::UnknownIssuer { issuer }) if issuer.contains("2021-10-12")
        ));
    }
}

#[test]
fn google_pca_ek_certificates_chain_to_the_ek_ak_ca_root_and_lack_the_eku() {
    let store = gce_store("gcp_ek_ak_ca_root.crt", "gcp_ek_ak_ca_intermediate_v3.crt");
    for name in ["pca_tpm_rsa_enc", "pca_tpm_ecc_enc"] {
        let cert = pem_to_der(&gce(&format!("{name}_cert.pem")));
        let ek = key(&format!("gce/{name}.pub.pem"));
        let verified = verify(&cert, &[], &ek, &store, &EkPolicy::default(), T_2024).unwrap();
        assert_eq!(verified.tpm(), None);
        assert_eq!(
            verified.trust_anchor(),
            "C=US, ST=California, L=Mountain View, O=Google LLC, OU=Google Cloud, CN=EK/AK CA Root"
        );
        let policy = EkPolicy {
            require_ek_eku: true,
            ..EkPolicy::default()
        };
        assert_eq!(
            verify(&cert, &[], &ek, &store, &policy, T_2024).unwrap_err(),
            EkError::MissingEkEku
        );
    }
}

#[test]
fn google_ek_certificates_do_not_cross_chains_or_keys() {
    let pca_store = gce_store("gcp_ek_ak_ca_root.crt", "gcp_ek_ak_ca_intermediate_v3.crt");
    let uca = pem_to_der(&gce("uca_tpm_rsa_enc_cert.pem"));
    let uca_key = key("gce/uca_tpm_rsa_enc.pub.pem");
    assert!(matches!(
        verify(
            &uca,
            &[],
            &uca_key,
            &pca_store,
            &EkPolicy::default(),
            T_2024
        ),
        Err(EkError::UnknownIssuer { .. })
    ));
    // Intermediate 2 has another name than the uca certificates' issuer.
    let uca_store = gce_store("tpm_ek_root_1.cer", "tpm_ek_intermediate_2.crt");
    assert!(matches!(
        verify(
            &uca,
            &[],
            &uca_key,
            &uca_store,
            &EkPolicy::default(),
            T_2024
        ),
        Err(EkError::UnknownIssuer { .. })
    ));
    let good_store = gce_store("tpm_ek_root_1.cer", "tpm_ek_intermediate_3.crt");
    assert_eq!(
        verify(
            &uca,
            &[],
            &key("gce/uca_tpm_ecc_enc.pub.pem"),
            &good_store,
            &EkPolicy::default(),
            T_2024
        )
        .unwrap_err(),
        EkError::KeyMismatch
    );
    // The uca certificates expire in 2052.
    let after = 2_600_000_000; // 2052-05-22
    let policy = EkPolicy {
        expiry: ExpiryPolicy::Enforce,
        ..EkPolicy::default()
    };
    let expired = verify(&uca, &[], &uca_key, &good_store, &policy, 2_700_000_000).unwrap_err();
    assert!(matches!(expired, EkError::Expired { subject, .. } if subject.is_empty()));
    assert!(verify(&uca, &[], &uca_key, &good_store, &policy, after).is_ok());
    let lenient = verify(
        &uca,
        &[],
        &uca_key,
        &good_store,
        &EkPolicy::default(),
        2_700_000_000,
    )
    .unwrap();
    assert!(lenient.accepted_expired());
}

// ------------------------------------------------------------ vendor CA store

fn vendor_files() -> Vec<(String, Vec<u8>)> {
    let dir = shared_tpm_dir().join("ek-ca-vendors");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .map(|path| {
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                read(path),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_vendor_ca_file_loads_into_a_trust_store() {
    let files = vendor_files();
    assert_eq!(files.len(), 51);
    let mut store = EkTrustStore::new();
    let mut added = 0;
    for (name, bytes) in &files {
        // Each file alone, so a failure names the file and the reason.
        let mut alone = EkTrustStore::new();
        match alone.add_roots(name, bytes) {
            Ok(n) => assert!(n >= 1, "{name}: no certificate"),
            Err(e) => panic!("{name}: {e}"),
        }
        added += store.add_roots(name, bytes).unwrap();
    }
    // IFX1..8 and IFX_RSA_0xI hold the same certificates under two names.
    assert_eq!(store.root_count(), added);
    assert!(added >= 40 && added <= files.len(), "{added}");
    // Alibaba_Cloud_vTPM_EK.pem and Nationz_TPM_EK.pem have an `openssl x509
    // -text` dump before the PEM block, and most files lack a final newline.
    assert_eq!(
        EkTrustStore::new().add_roots(
            "alibaba",
            &files
                .iter()
                .find(|f| f.0 == "Alibaba_Cloud_vTPM_EK.pem")
                .unwrap()
                .1
        ),
        Ok(1)
    );
}

/// Every vendor certificate whose issuer is also in the set verifies under
/// it: this covers RSA PKCS#1 SHA-1/256/384 and ECDSA P-256/P-384 with
/// SHA-256/384 on real data. A flipped TBS byte makes each one fail.
#[test]
fn vendor_certificates_verify_under_their_issuers() {
    let certs: Vec<(String, Certificate)> = vendor_files()
        .into_iter()
        .map(|(name, bytes)| {
            let pem = std::str::from_utf8(&bytes).unwrap();
            let start = pem.find("-----BEGIN").unwrap();
            (
                name,
                Certificate::from_der(&certificate_from_pem(&pem[start..]).unwrap()).unwrap(),
            )
        })
        .collect();
    let mut algorithms = std::collections::BTreeSet::new();
    let mut verified = 0;
    for (name, cert) in &certs {
        for (issuer_name, issuer) in certs.iter().filter(|(_, c)| c.subject == cert.issuer) {
            assert!(
                signature::verify(
                    cert.signature_algorithm,
                    &issuer.public_key,
                    &cert.tbs,
                    &cert.signature
                ),
                "{name} under {issuer_name}"
            );
            let mut tampered = cert.tbs.clone();
            let last = tampered.len() - 1;
            tampered[last] ^= 1;
            assert!(!signature::verify(
                cert.signature_algorithm,
                &issuer.public_key,
                &tampered,
                &cert.signature
            ));
            algorithms.insert(format!(
                "{:?}/{}",
                cert.signature_algorithm,
                kind(&issuer.public_key)
            ));
            verified += 1;
        }
    }
    assert!(verified >= 30, "{verified}");
    for expected in [
        "RsaPkcs1Sha1/Rsa",
        "RsaPkcs1Sha256/Rsa",
        "EcdsaSha256/Ecc(NistP256)",
        "EcdsaSha384/Ecc(NistP384)",
    ] {
        assert!(
            algorithms.contains(expected),
            "{expected} not covered: {algorithms:?}"
        );
    }
}

fn kind(key: &PublicKey) -> String {
    match key {
        PublicKey::Rsa(_) => "Rsa".into(),
        PublicKey::Ecc(k) => format!("Ecc({:?})", k.curve()),
    }
}

// ------------------------------------------------------------ swtpm local CA

#[test]
fn swtpm_rsa_and_ecc_eks_verify_with_the_strict_policy() {
    let store = swtpm_store();
    for tpm in ["tpm1", "tpm2"] {
        for alg in ["rsa", "ecc"] {
            let cert = vector(&format!("swtpm/{tpm}-ek-{alg}.der"));
            let ek = key(&format!("swtpm/{tpm}-ek-{alg}.pub.pem"));
            let verified = verify(&cert, &[], &ek, &store, &strict_with_sha1(), T_2090).unwrap();
            let tpm_id = verified.tpm().unwrap();
            assert_eq!(
                (tpm_id.manufacturer(), tpm_id.model(), tpm_id.version()),
                ("id:00001014", "swtpm", "id:20191023")
            );
            assert_eq!(tpm_id.manufacturer_id(), Some(0x1014)); // IBM
            assert_eq!(
                verified.issuers(),
                ["CN=swtpm-localca", "CN=swtpm-localca-rootca"]
            );
        }
    }
}

fn strict_with_sha1() -> EkPolicy {
    EkPolicy {
        allow_sha1_signatures: true,
        ..strict()
    }
}

#[test]
fn key_mismatch_with_another_eks_key() {
    let store = swtpm_store();
    let cert = vector("swtpm/tpm1-ek-rsa.der");
    for other in [
        "swtpm/tpm2-ek-rsa.pub.pem",
        "swtpm/tpm1-ek-ecc.pub.pem",
        "keys/rsa2048.pub.pem",
    ] {
        assert_eq!(
            verify(
                &cert,
                &[],
                &key(other),
                &store,
                &EkPolicy::default(),
                T_2090
            )
            .unwrap_err(),
            EkError::KeyMismatch,
            "{other}"
        );
    }
}

#[test]
fn untrusted_root_when_the_store_lacks_the_swtpm_root() {
    let mut store = EkTrustStore::new();
    store
        .add_roots("google", &gce("tpm_ek_root_1.cer"))
        .unwrap();
    store
        .add_intermediates("swtpm/intermediate.pem", &vector("swtpm/intermediate.pem"))
        .unwrap();
    let expected = EkError::UntrustedRoot {
        issuer: "CN=swtpm-localca-rootca".into(),
    };
    assert_eq!(
        swtpm_rsa("swtpm/tpm1-ek-rsa.der", &[], &store, &EkPolicy::default()).unwrap_err(),
        expected
    );
    // Sending the swtpm root along does not make it trusted.
    let root = pem_to_der(&vector("swtpm/root.pem"));
    let mut no_intermediates = EkTrustStore::new();
    no_intermediates
        .add_roots("google", &gce("tpm_ek_root_1.cer"))
        .unwrap();
    let intermediate = pem_to_der(&vector("swtpm/intermediate.pem"));
    assert_eq!(
        swtpm_rsa(
            "swtpm/tpm1-ek-rsa.der",
            &[&intermediate, &root],
            &no_intermediates,
            &EkPolicy::default()
        )
        .unwrap_err(),
        expected
    );
}

#[test]
fn unknown_issuer_when_the_intermediate_is_missing() {
    let mut store = EkTrustStore::new();
    store
        .add_roots("swtpm/root.pem", &vector("swtpm/root.pem"))
        .unwrap();
    assert_eq!(
        swtpm_rsa("swtpm/tpm1-ek-rsa.der", &[], &store, &EkPolicy::default()).unwrap_err(),
        EkError::UnknownIssuer {
            issuer: "CN=swtpm-localca".into()
        }
    );
    let intermediate = pem_to_der(&vector("swtpm/intermediate.pem"));
    assert!(
        swtpm_rsa(
            "swtpm/tpm1-ek-rsa.der",
            &[&intermediate],
            &store,
            &EkPolicy::default()
        )
        .is_ok()
    );
}

#[test]
fn bad_signature_from_the_wrong_key_or_a_tampered_certificate() {
    let store = swtpm_store();
    let bad = EkError::BadSignature {
        subject: "CN=unknown".into(),
    };
    // Issuer name "CN=swtpm-localca", signed by another key.
    assert_eq!(
        swtpm_rsa(
            "crafted/ek-wrong-signer.der",
            &[],
            &store,
            &EkPolicy::default()
        )
        .unwrap_err(),
        bad
    );

    let good = vector("swtpm/tpm1-ek-rsa.der");
    let ek = key("swtpm/tpm1-ek-rsa.pub.pem");
    let mut signature_flipped = good.clone();
    *signature_flipped.last_mut().unwrap() ^= 1;
    assert_eq!(
        verify(
            &signature_flipped,
            &[],
            &ek,
            &store,
            &EkPolicy::default(),
            T_2090
        )
        .unwrap_err(),
        bad
    );
    // The serial number: version [0] a0 03 02 01 02, then INTEGER.
    let mut serial_flipped = good.clone();
    let at = find(&good, &[0xa0, 0x03, 0x02, 0x01, 0x02, 0x02]) + 7;
    serial_flipped[at] ^= 0x40;
    assert_eq!(
        verify(
            &serial_flipped,
            &[],
            &ek,
            &store,
            &EkPolicy::default(),
            T_2090
        )
        .unwrap_err(),
        bad
    );
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
}

fn rfind(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .rposition(|w| w == needle)
        .unwrap()
}

#[test]
fn eku_rules() {
    let store = swtpm_store();
    let require = EkPolicy {
        require_ek_eku: true,
        ..EkPolicy::default()
    };
    // swtpm EK certificates carry tcg-kp-EKCertificate.
    assert!(swtpm_rsa("swtpm/tpm1-ek-rsa.der", &[], &store, &require).is_ok());
    assert!(swtpm_rsa("crafted/ek-no-eku.der", &[], &store, &EkPolicy::default()).is_ok());
    assert_eq!(
        swtpm_rsa("crafted/ek-no-eku.der", &[], &store, &require).unwrap_err(),
        EkError::MissingEkEku
    );
    for policy in [EkPolicy::default(), require] {
        assert_eq!(
            swtpm_rsa("crafted/ek-wrong-eku.der", &[], &store, &policy).unwrap_err(),
            EkError::WrongEku
        );
    }
}

#[test]
fn expiry_per_policy() {
    let store = swtpm_store();
    let cert = vector("crafted/ek-expired.der");
    let parsed = Certificate::from_der(&cert).unwrap();
    let enforce = EkPolicy {
        expiry: ExpiryPolicy::Enforce,
        ..EkPolicy::default()
    };
    assert_eq!(
        swtpm_rsa("crafted/ek-expired.der", &[], &store, &enforce).unwrap_err(),
        EkError::Expired {
            subject: "CN=unknown".into(),
            not_after: parsed.not_after
        }
    );
    let accepted = swtpm_rsa("crafted/ek-expired.der", &[], &store, &EkPolicy::default()).unwrap();
    assert!(accepted.accepted_expired());
    let fresh = swtpm_rsa("swtpm/tpm1-ek-rsa.der", &[], &store, &EkPolicy::default()).unwrap();
    assert!(!fresh.accepted_expired());

    // swtpm certificates end at 9999-12-31T23:59:59Z; a day later the EK
    // certificate is the first to fail under Enforce.
    let ek = key("swtpm/tpm1-ek-rsa.pub.pem");
    let rsa = vector("swtpm/tpm1-ek-rsa.der");
    assert_eq!(
        verify(&rsa, &[], &ek, &store, &enforce, 253_402_387_200).unwrap_err(),
        EkError::Expired {
            subject: "CN=unknown".into(),
            not_after: 253_402_300_799
        }
    );
    // notBefore is enforced by every policy.
    let not_before = Certificate::from_der(&rsa).unwrap().not_before;
    for policy in [EkPolicy::default(), enforce.clone()] {
        assert_eq!(
            verify(&rsa, &[], &ek, &store, &policy, T_2000).unwrap_err(),
            EkError::NotYetValid {
                subject: "CN=unknown".into(),
                not_before
            }
        );
    }
    // An expired intermediate fails under Enforce too.
    let intermediate =
        Certificate::from_der(&pem_to_der(&vector("swtpm/intermediate.pem"))).unwrap();
    assert_eq!(
        chain::check_validity(&intermediate, 253_402_387_200, &enforce),
        Err(EkError::Expired {
            subject: "CN=swtpm-localca".into(),
            not_after: 253_402_300_799
        })
    );
}

#[test]
fn ek_certificate_profile_rules() {
    let store = swtpm_store();
    let policy = EkPolicy::default();
    assert_eq!(
        swtpm_rsa("crafted/ek-is-ca.der", &[], &store, &policy).unwrap_err(),
        EkError::EkIsCa
    );
    assert_eq!(
        swtpm_rsa("crafted/ek-unknown-critical.der", &[], &store, &policy).unwrap_err(),
        EkError::Certificate(CertError::UnknownCriticalExtension {
            oid: "1.3.6.1.4.1.55555.1".into()
        })
    );
    assert_eq!(
        swtpm_rsa("crafted/ek-partial-tpm-identity.der", &[], &store, &policy).unwrap_err(),
        EkError::Certificate(CertError::MalformedTpmIdentity)
    );
    assert_eq!(
        swtpm_rsa("crafted/ek-bad-basic-constraints.der", &[], &store, &policy).unwrap_err(),
        EkError::Certificate(CertError::MalformedExtension {
            oid: "2.5.29.19".into()
        })
    );
    assert_eq!(
        swtpm_rsa("crafted/ek-p521.der", &[], &store, &policy).unwrap_err(),
        EkError::Certificate(CertError::PublicKey(
            crate::key::KeyError::UnsupportedCurve {
                oid: "1.3.132.0.35".into()
            }
        ))
    );
}

#[test]
fn certificate_encoding_rules() {
    let good = vector("swtpm/tpm1-ek-rsa.der");
    assert!(Certificate::from_der(&good).is_ok());

    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(
        Certificate::from_der(&trailing).unwrap_err(),
        CertError::TrailingData { len: 1 }
    );

    assert_eq!(
        Certificate::from_der(&vec![0x30; MAX_CERTIFICATE_LEN + 1]).unwrap_err(),
        CertError::TooLarge {
            len: MAX_CERTIFICATE_LEN + 1,
            max: MAX_CERTIFICATE_LEN
        }
    );

    // Version [0] INTEGER 2 (v3) → 1 (v2).
    let mut v2 = good.clone();
    let at = find(&good, &[0xa0, 0x03, 0x02, 0x01, 0x02]) + 4;
    v2[at] = 1;
    assert_eq!(
        Certificate::from_der(&v2).unwrap_err(),
        CertError::UnsupportedVersion { version: 2 }
    );

    // sha256WithRSAEncryption appears in the TBS and after it.
    let sha256_rsa = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
    let mut outer_changed = good.clone();
    let outer = rfind(&good, &sha256_rsa);
    outer_changed[outer + 8] = 0x0c; // sha384WithRSAEncryption
    assert_eq!(
        Certificate::from_der(&outer_changed).unwrap_err(),
        CertError::SignatureAlgorithmMismatch
    );
    let mut md5 = outer_changed.clone();
    md5[outer + 8] = 0x04;
    md5[find(&good, &sha256_rsa) + 8] = 0x04; // md5WithRSAEncryption
    assert_eq!(
        Certificate::from_der(&md5).unwrap_err(),
        CertError::UnsupportedSignatureAlgorithm {
            oid: "1.2.840.113549.1.1.4".into()
        }
    );

    assert_eq!(
        Certificate::from_der(&duplicate_first_extension(&good)).unwrap_err(),
        CertError::DuplicateExtension {
            oid: "2.5.29.37".into()
        }
    );
}

/// Re-encodes `cert` with its first extension repeated (the signature no
/// longer matches, which does not matter: decoding rejects it first).
fn duplicate_first_extension(cert: &[u8]) -> Vec<u8> {
    let (_, cert_body, _) = split_tlv(cert);
    let parts = children(cert_body);
    let (_, tbs_body, _) = split_tlv(parts[0]);
    let mut tbs_parts: Vec<Vec<u8>> = children(tbs_body).into_iter().map(<[u8]>::to_vec).collect();
    let explicit = tbs_parts.pop().unwrap();
    assert_eq!(explicit[0], 0xa3);
    let (_, explicit_body, _) = split_tlv(&explicit);
    let (_, extensions_body, _) = split_tlv(explicit_body);
    let mut extensions = extensions_body.to_vec();
    extensions.extend_from_slice(children(extensions_body)[0]);
    tbs_parts.push(tlv(0xa3, &tlv(0x30, &extensions)));
    let tbs = tlv(0x30, &tbs_parts.concat());
    tlv(0x30, &[tbs.as_slice(), parts[1], parts[2]].concat())
}

/// (tag, contents, encoded length) of the TLV at the start of `der`.
fn split_tlv(der: &[u8]) -> (u8, &[u8], usize) {
    let (len, header) = match der[1] {
        n @ 0..=0x7f => (usize::from(n), 2),
        0x81 => (usize::from(der[2]), 3),
        0x82 => (usize::from(u16::from_be_bytes([der[2], der[3]])), 4),
        _ => unreachable!(),
    };
    (der[0], &der[header..header + len], header + len)
}

fn children(mut body: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while !body.is_empty() {
        let (_, _, total) = split_tlv(body);
        out.push(&body[..total]);
        body = &body[total..];
    }
    out
}

fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = u16::try_from(contents.len()).unwrap().to_be_bytes();
    match contents.len() {
        0..0x80 => out.push(len[1]),
        0x80..0x100 => out.extend_from_slice(&[0x81, len[1]]),
        _ => out.extend_from_slice(&[0x82, len[0], len[1]]),
    }
    out.extend_from_slice(contents);
    out
}

#[test]
fn ca_rules_along_the_chain() {
    let store = swtpm_store();
    let policy = EkPolicy::default();
    let not_ca = pem_to_der(&vector("crafted/intermediate-not-ca.pem"));
    assert_eq!(
        swtpm_rsa("crafted/ek-under-not-ca.der", &[&not_ca], &store, &policy).unwrap_err(),
        EkError::NotCa {
            subject: "CN=keyward-test-not-ca".into()
        }
    );
    let no_kcs = pem_to_der(&vector("crafted/intermediate-ca-no-keycertsign.pem"));
    assert_eq!(
        swtpm_rsa(
            "crafted/ek-under-ca-no-keycertsign.der",
            &[&no_kcs],
            &store,
            &policy
        )
        .unwrap_err(),
        EkError::MissingKeyCertSign {
            subject: "CN=keyward-test-ca-no-keycertsign".into()
        }
    );
    let pathlen0 = pem_to_der(&vector("crafted/intermediate-ca-pathlen0.pem"));
    let below = pem_to_der(&vector("crafted/intermediate-below-pathlen0.pem"));
    assert_eq!(
        swtpm_rsa(
            "crafted/ek-under-pathlen0.der",
            &[&below, &pathlen0],
            &store,
            &policy
        )
        .unwrap_err(),
        EkError::PathLenExceeded {
            subject: "CN=keyward-test-ca-pathlen0".into(),
            path_len: 0
        }
    );
    // The same CA rules when loading a trust store.
    let mut s = EkTrustStore::new();
    assert_eq!(
        s.add_intermediates("not-ca.pem", &vector("crafted/intermediate-not-ca.pem")),
        Err(TrustStoreError::NotCa {
            origin: "not-ca.pem".into(),
            index: 0,
            subject: "CN=keyward-test-not-ca".into()
        })
    );
    assert_eq!(
        s.add_roots(
            "no-kcs.pem",
            &vector("crafted/intermediate-ca-no-keycertsign.pem")
        ),
        Err(TrustStoreError::MissingKeyCertSign {
            origin: "no-kcs.pem".into(),
            index: 0,
            subject: "CN=keyward-test-ca-no-keycertsign".into()
        })
    );
    assert_eq!(s.root_count() + s.intermediate_count(), 0);
}

#[test]
fn signature_algorithms_and_the_sha1_policy() {
    let store = swtpm_store();
    for (name, algorithm) in [
        ("crafted/ek-rsa-pss.der", SignatureAlgorithm::RsaPssSha256),
        ("crafted/ek-sha384.der", SignatureAlgorithm::RsaPkcs1Sha384),
        ("crafted/ek-sha512.der", SignatureAlgorithm::RsaPkcs1Sha512),
        ("crafted/ek-sha1.der", SignatureAlgorithm::RsaPkcs1Sha1),
    ] {
        assert_eq!(
            Certificate::from_der(&vector(name))
                .unwrap()
                .signature_algorithm,
            algorithm
        );
        assert!(
            swtpm_rsa(name, &[], &store, &EkPolicy::default()).is_ok(),
            "{name}"
        );
    }
    let no_sha1 = EkPolicy {
        allow_sha1_signatures: false,
        ..EkPolicy::default()
    };
    assert_eq!(
        swtpm_rsa("crafted/ek-sha1.der", &[], &store, &no_sha1).unwrap_err(),
        EkError::SignatureAlgorithmNotAllowed {
            subject: "CN=unknown".into(),
            algorithm: SignatureAlgorithm::RsaPkcs1Sha1
        }
    );
    // RSA-PSS parameters other than the three fixed encodings are refused:
    // change the salt length of the TBS copy and the outer copy (32 → 33).
    let mut pss = vector("crafted/ek-rsa-pss.der");
    let salt = [0xa2, 0x03, 0x02, 0x01, 0x20];
    let (first, last) = (find(&pss, &salt), rfind(&pss, &salt));
    pss[first + 4] = 0x21;
    pss[last + 4] = 0x21;
    assert_eq!(
        Certificate::from_der(&pss).unwrap_err(),
        CertError::UnsupportedSignatureAlgorithm {
            oid: "1.2.840.113549.1.1.10".into()
        }
    );
}

#[test]
fn ecdsa_chain_with_mixed_curve_and_hash() {
    // P-384 root signs a P-256 intermediate with SHA-256; the intermediate
    // signs the EK certificate (empty subject) with SHA-384.
    let mut store = EkTrustStore::new();
    store
        .add_roots("ecc-root.pem", &vector("crafted/ecc-root.pem"))
        .unwrap();
    let intermediate = pem_to_der(&vector("crafted/ecc-intermediate.pem"));
    let cert = vector("crafted/ek-ecc-under-ecc.der");
    let ek = key("swtpm/tpm1-ek-ecc.pub.pem");
    let verified = verify(&cert, &[&intermediate], &ek, &store, &strict(), T_2090).unwrap();
    assert_eq!(
        verified.issuers(),
        [
            "CN=keyward-test-ecc-intermediate",
            "CN=keyward-test-ecc-root"
        ]
    );

    let mut tampered = cert.clone();
    let at = tampered.len() - 3;
    tampered[at] ^= 1;
    assert_eq!(
        verify(&tampered, &[&intermediate], &ek, &store, &strict(), T_2090).unwrap_err(),
        EkError::BadSignature {
            subject: String::new()
        }
    );
    let mut bad_intermediate = intermediate.clone();
    let at = bad_intermediate.len() - 3;
    bad_intermediate[at] ^= 1;
    assert_eq!(
        verify(&cert, &[&bad_intermediate], &ek, &store, &strict(), T_2090).unwrap_err(),
        EkError::BadSignature {
            subject: "CN=keyward-test-ecc-intermediate".into()
        }
    );
}

#[test]
fn chain_length_budget_and_supplied_count_are_bounded() {
    let mut deep_store = EkTrustStore::new();
    deep_store
        .add_roots("deep-root.pem", &vector("crafted/deep-root.pem"))
        .unwrap();
    let bundle = String::from_utf8(vector("crafted/deep-intermediates.pem")).unwrap();
    let deep: Vec<Vec<u8>> = bundle
        .split_inclusive("-----END CERTIFICATE-----")
        .filter(|block| block.contains("BEGIN"))
        .map(|block| certificate_from_pem(block.trim()).unwrap())
        .collect();
    assert_eq!(deep.len(), 5);
    let supplied: Vec<&[u8]> = deep.iter().map(Vec::as_slice).collect();
    let ek = key("swtpm/tpm1-ek-ecc.pub.pem");
    let cert = vector("crafted/ek-deep.der");
    assert_eq!(
        verify(
            &cert,
            &supplied,
            &ek,
            &deep_store,
            &EkPolicy::default(),
            T_2090
        )
        .unwrap_err(),
        EkError::ChainTooLong {
            max: MAX_CHAIN_INTERMEDIATES
        }
    );
    // With the top intermediate trusted as an anchor the chain is short enough.
    deep_store.add_roots("deep-1", &deep[0]).unwrap();
    assert_eq!(
        verify(
            &cert,
            &supplied,
            &ek,
            &deep_store,
            &EkPolicy::default(),
            T_2090
        )
        .unwrap()
        .issuers()
        .len(),
        5
    );

    // The swtpm chain needs two signature checks.
    let store = swtpm_store();
    let rsa = vector("swtpm/tpm1-ek-rsa.der");
    let rsa_ek = key("swtpm/tpm1-ek-rsa.pub.pem");
    let policy = EkPolicy::default();
    assert_eq!(
        verify_with_budget(&rsa, &[], &rsa_ek, &store, &policy, T_2090, 1).unwrap_err(),
        EkError::BudgetExhausted
    );
    assert!(verify_with_budget(&rsa, &[], &rsa_ek, &store, &policy, T_2090, 2).is_ok());

    let intermediate = pem_to_der(&vector("swtpm/intermediate.pem"));
    let too_many = vec![intermediate.as_slice(); MAX_SUPPLIED_INTERMEDIATES + 1];
    assert_eq!(
        verify(&rsa, &too_many, &rsa_ek, &store, &policy, T_2090).unwrap_err(),
        EkError::TooManyIntermediates {
            count: MAX_SUPPLIED_INTERMEDIATES + 1,
            max: MAX_SUPPLIED_INTERMEDIATES
        }
    );
    let max = vec![intermediate.as_slice(); MAX_SUPPLIED_INTERMEDIATES];
    assert!(verify(&rsa, &max, &rsa_ek, &store, &policy, T_2090).is_ok());
    assert_eq!(
        verify(&rsa, &[b"\x30\x00"], &rsa_ek, &store, &policy, T_2090).unwrap_err(),
        EkError::Intermediate {
            index: 0,
            error: CertError::Malformed
        }
    );
}

#[test]
fn pem_helper_and_trust_store_input_errors() {
    let root_pem = vector("swtpm/root.pem");
    let root_text = std::str::from_utf8(&root_pem).unwrap();
    let der = certificate_from_pem(root_text).unwrap();
    assert!(Certificate::from_der(&der).is_ok());
    assert_eq!(
        certificate_from_pem(std::str::from_utf8(&vector("keys/p256.pub.pem")).unwrap()),
        Err(CertError::PemLabel {
            label: "PUBLIC KEY".into()
        })
    );
    assert_eq!(
        certificate_from_pem(&format!("{root_text}trailing")),
        Err(CertError::PemMalformed)
    );
    assert_eq!(
        certificate_from_pem(&format!("comment\n{root_text}")),
        Err(CertError::PemMalformed)
    );
    assert_eq!(
        certificate_from_pem(&root_text[..root_text.len() - 30]),
        Err(CertError::PemMalformed)
    );

    let mut store = EkTrustStore::new();
    assert_eq!(store.add_roots("root.pem", &root_pem), Ok(1));
    assert_eq!(
        store.add_roots("root.der", &der),
        Ok(0),
        "duplicates are stored once"
    );
    assert_eq!(
        store.add_roots("key.pem", &vector("keys/p256.pub.pem")),
        Err(TrustStoreError::UnexpectedPemLabel {
            origin: "key.pem".into(),
            index: 0,
            label: "PUBLIC KEY".into()
        })
    );
    assert_eq!(
        store.add_roots("empty", b"hello\n"),
        Err(TrustStoreError::NoCertificates {
            origin: "empty".into()
        })
    );
    assert_eq!(
        store.add_roots("garbage.der", b"\x30\x03\x02\x01\x00"),
        Err(TrustStoreError::Certificate {
            origin: "garbage.der".into(),
            index: 0,
            error: CertError::Malformed
        })
    );
    assert_eq!(
        store.add_roots("latin1", b"\xff-----BEGIN"),
        Err(TrustStoreError::MalformedPem {
            origin: "latin1".into(),
            index: 0
        })
    );
    let truncated = &root_pem[..root_pem.len() - 40];
    assert_eq!(
        store.add_roots("cut.pem", truncated),
        Err(TrustStoreError::MalformedPem {
            origin: "cut.pem".into(),
            index: 0
        })
    );
    // A bundle whose second certificate is bad is not added at all.
    let mut bundle = vector("swtpm/intermediate.pem");
    bundle.extend_from_slice(b"\n");
    bundle.extend_from_slice(&vector("crafted/intermediate-not-ca.pem"));
    assert!(matches!(
        store.add_roots("bundle.pem", &bundle),
        Err(TrustStoreError::NotCa { index: 1, .. })
    ));
    assert_eq!(store.root_count(), 1);
    let big = vec![b' '; MAX_BUNDLE_LEN + 1];
    assert_eq!(
        store.add_roots("big", &big),
        Err(TrustStoreError::TooLarge {
            origin: "big".into(),
            len: MAX_BUNDLE_LEN + 1,
            max: MAX_BUNDLE_LEN
        })
    );
}

// ------------------------------------------------------------- no panics

/// Every prefix and many single-byte corruptions of real certificates decode
/// to an error or a certificate, never a panic; the same through the whole
/// verifier and the trust-store loader.
#[test]
fn garbage_and_truncated_input_never_panics() {
    let store = swtpm_store();
    let ek = key("swtpm/tpm1-ek-rsa.pub.pem");
    let inputs = [
        vector("swtpm/tpm1-ek-rsa.der"),
        vector("crafted/ek-ecc-under-ecc.der"),
        pem_to_der(&gce("uca_tpm_rsa_enc_cert.pem")),
        gce("tpm_ek_root_1.cer"),
    ];
    for input in &inputs {
        for len in 0..input.len() {
            assert!(Certificate::from_der(&input[..len]).is_err());
            assert!(
                verify(
                    &input[..len],
                    &[],
                    &ek,
                    &store,
                    &EkPolicy::default(),
                    T_2090
                )
                .is_err()
            );
        }
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..3000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut corrupted = input.clone();
            let at = usize::try_from(state % u64::try_from(corrupted.len()).unwrap()).unwrap();
            corrupted[at] ^= state.to_be_bytes()[0] | 1;
            let _ = verify(
                &corrupted,
                &[&corrupted],
                &ek,
                &store,
                &EkPolicy::default(),
                T_2090,
            );
            let _ = EkTrustStore::new().add_roots("fuzz", &corrupted);
        }
    }
    for garbage in [
        &b""[..],
        b"\x30",
        b"\x30\x80",
        b"\x30\x84\xff\xff\xff\xff",
        b"\xa0\x03\x02\x01\x02",
        &[0xff; 64],
    ] {
        assert!(Certificate::from_der(garbage).is_err());
        let _ = EkTrustStore::new().add_roots("garbage", garbage);
    }
    let pem = String::from_utf8(vector("swtpm/root.pem")).unwrap();
    for len in 0..pem.len() {
        if pem.is_char_boundary(len) {
            let _ = certificate_from_pem(&pem[..len]);
            let _ = EkTrustStore::new().add_roots("cut", &pem.as_bytes()[..len]);
        }
    }
}
