//! The verifier (`keyward-attest`) against evidence from a real software TPM
//! driven through `keyward-hardware`: the host side and the vault side of
//! enrollment and attestation, end to end.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use keyward_attest::credential::make_credential;
use keyward_attest::digest::{HashAlg, PcrValues};
use keyward_attest::quote::{QuoteError, QuoteKey, verify_quote};
use keyward_attest::tpm::ak::check_ak_attributes;
use keyward_attest::tpm::public::{Name, TpmPublic};
use keyward_hardware::harness::SimHost;
use keyward_hardware::{AkAlgorithm, EkKind, PcrBank, PcrSelection, TpmError};

fn values(quote: &keyward_hardware::Quote) -> PcrValues {
    let mut out = PcrValues::new();
    for pcr in &quote.pcrs {
        assert_eq!(pcr.bank, PcrBank::Sha256);
        out.insert(HashAlg::Sha256, u32::from(pcr.index), pcr.digest.clone())
            .unwrap();
    }
    out
}

#[test]
fn credential_made_by_attest_activates_in_the_tpm_for_both_ek_kinds() {
    let host = SimHost::start().unwrap();
    let tpm = host.open().unwrap();
    let rng = ring::rand::SystemRandom::new();
    for (kind, alg) in [
        (EkKind::Rsa2048, AkAlgorithm::RsaSsaSha256),
        (EkKind::EccP384, AkAlgorithm::EcdsaP256Sha256),
    ] {
        let ek = TpmPublic::parse(&tpm.ek_public(kind).unwrap().tpm2b_public).unwrap();
        let ak_blob = tpm.create_ak(kind, alg).unwrap();
        let ak = TpmPublic::parse(&ak_blob.public().unwrap().tpm2b_public).unwrap();
        check_ak_attributes(&ak).unwrap();
        // The name the verifier computes is the one the TPM reports.
        assert_eq!(
            ak.name().as_bytes(),
            tpm.load_ak(&ak_blob).unwrap().name.as_slice()
        );

        let secret = [0x42u8; 32];
        let blob = make_credential(&ek, &ak.name(), &secret, &rng).unwrap();
        let recovered =
            tpm.activate_credential(&ak_blob, blob.id_object(), blob.encrypted_secret());
        assert_eq!(recovered.unwrap().as_slice(), secret, "{kind:?}");

        // Bound to another name (another AK of the same TPM): refused.
        let other = tpm.create_ak(kind, alg).unwrap();
        let other_name = Name::parse(&other.public().unwrap().name).unwrap();
        let wrong = make_credential(&ek, &other_name, &secret, &rng).unwrap();
        let err = tpm
            .activate_credential(&ak_blob, wrong.id_object(), wrong.encrypted_secret())
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
    }
}

#[test]
fn credential_for_another_tpms_ek_does_not_activate() {
    let host = SimHost::start().unwrap();
    let other = SimHost::start().unwrap();
    let tpm = host.open().unwrap();
    let rng = ring::rand::SystemRandom::new();
    let foreign_ek = TpmPublic::parse(
        &other
            .open()
            .unwrap()
            .ek_public(EkKind::Rsa2048)
            .unwrap()
            .tpm2b_public,
    )
    .unwrap();
    let ak_blob = tpm
        .create_ak(EkKind::Rsa2048, AkAlgorithm::default())
        .unwrap();
    let name = Name::parse(&ak_blob.public().unwrap().name).unwrap();
    let blob = make_credential(&foreign_ek, &name, &[1; 16], &rng).unwrap();
    assert!(
        tpm.activate_credential(&ak_blob, blob.id_object(), blob.encrypted_secret())
            .is_err()
    );
}

#[test]
fn quotes_from_the_tpm_verify_and_tampering_is_named() {
    let host = SimHost::start().unwrap();
    let tpm = host.open().unwrap();
    let selection = [PcrSelection::new(
        PcrBank::Sha256,
        &[0, 1, 2, 3, 4, 5, 6, 7, 23],
    )];
    for alg in [AkAlgorithm::RsaSsaSha256, AkAlgorithm::EcdsaP256Sha256] {
        let ak_blob = tpm.create_ak(EkKind::Rsa2048, alg).unwrap();
        let ak = TpmPublic::parse(&ak_blob.public().unwrap().tpm2b_public).unwrap();
        tpm.extend_pcr_sha256(23, [9; 32]).unwrap();
        let nonce = [0xabu8; 32];
        let quote = tpm.quote(&ak_blob, &nonce, &selection).unwrap();
        let pcrs = values(&quote);

        let verified = verify_quote(
            QuoteKey::Tpm(&ak),
            &quote.attest,
            &quote.signature,
            &pcrs,
            &nonce,
        )
        .unwrap();
        assert_eq!(verified.pcr_values(), &pcrs);
        assert_eq!(verified.extra_data(), nonce);

        let err = |r: Result<_, QuoteError>| r.map(|_| ()).unwrap_err();
        assert!(matches!(
            err(verify_quote(
                QuoteKey::Tpm(&ak),
                &quote.attest,
                &quote.signature,
                &pcrs,
                &[0xac; 32]
            )),
            QuoteError::NonceMismatch
        ));
        let mut sig = quote.signature.clone();
        *sig.last_mut().unwrap() ^= 1;
        assert!(matches!(
            err(verify_quote(
                QuoteKey::Tpm(&ak),
                &quote.attest,
                &sig,
                &pcrs,
                &nonce
            )),
            QuoteError::BadSignature
        ));
        let mut changed = PcrValues::new();
        for (alg, index, value) in pcrs.iter() {
            let mut value = value.to_vec();
            if index == 23 {
                value[0] ^= 1;
            }
            changed.insert(alg, u32::from(index), value).unwrap();
        }
        assert!(matches!(
            err(verify_quote(
                QuoteKey::Tpm(&ak),
                &quote.attest,
                &quote.signature,
                &changed,
                &nonce
            )),
            QuoteError::PcrDigestMismatch
        ));
        // An AK of another TPM did not sign this.
        let stranger = SimHost::start().unwrap();
        let other = stranger
            .open()
            .unwrap()
            .create_ak(EkKind::Rsa2048, alg)
            .unwrap();
        let other = TpmPublic::parse(&other.public().unwrap().tpm2b_public).unwrap();
        assert!(matches!(
            err(verify_quote(
                QuoteKey::Tpm(&other),
                &quote.attest,
                &quote.signature,
                &pcrs,
                &nonce
            )),
            QuoteError::BadSignature
        ));
    }
}

#[test]
fn ek_certificate_read_from_the_tpm_verifies_against_the_harness_ca() {
    use keyward_attest::ek::{EkError, EkPolicy, EkTrustStore, verify_ek_certificate};
    use keyward_attest::key::PublicKey;

    let host = SimHost::start().unwrap();
    let other = SimHost::start().unwrap();
    let tpm = host.open().unwrap();
    let mut store = EkTrustStore::new();
    let ca = host.ca();
    store
        .add_roots("swtpm root", &std::fs::read(ca.root_cert_path()).unwrap())
        .unwrap();
    store
        .add_intermediates(
            "swtpm intermediate",
            &std::fs::read(ca.intermediate_cert_path()).unwrap(),
        )
        .unwrap();
    let mut policy = EkPolicy::default();
    policy.require_ek_eku = true;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();

    let foreign = other.open().unwrap();
    for kind in [EkKind::Rsa2048, EkKind::EccP384] {
        let cert = tpm.ek_certificate(kind).unwrap();
        let ek = PublicKey::from_spki_der(&tpm.ek_public(kind).unwrap().spki_der).unwrap();
        let verified = verify_ek_certificate(&cert, &[], &ek, &store, &policy, now).unwrap();
        assert_eq!(verified.public_key(), &ek);

        // The same certificate presented with another TPM's EK.
        let stranger =
            PublicKey::from_spki_der(&foreign.ek_public(kind).unwrap().spki_der).unwrap();
        let err = verify_ek_certificate(&cert, &[], &stranger, &store, &policy, now).unwrap_err();
        assert!(matches!(err, EkError::KeyMismatch), "{err:?}");

        // A store that trusts only some other manufacturer.
        let mut vendors = EkTrustStore::new();
        let gce = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/testdata/tpm/gce-certs/tpm_ek_root_1.cer"
        );
        vendors
            .add_roots("gce", &std::fs::read(gce).unwrap())
            .unwrap();
        let err = verify_ek_certificate(&cert, &[], &ek, &vendors, &policy, now).unwrap_err();
        assert!(matches!(err, EkError::UnknownIssuer { .. }), "{err:?}");
    }
}
