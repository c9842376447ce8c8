//! EK certificate decoding and chain validation against the swtpm vector CA.
#![no_main]
use keyward_attest::ek::{EkPolicy, EkTrustStore, verify_ek_certificate};
use keyward_attest::key::{PublicKey, RsaPublicKey};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut store = EkTrustStore::new();
    let _ = store.add_roots("fuzz", data);
    let key = PublicKey::Rsa(RsaPublicKey::new(&[0xc5; 256], 65537));
    let _ = verify_ek_certificate(
        data,
        &[data],
        &key,
        &store,
        &EkPolicy::default(),
        1_800_000_000,
    );
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = keyward_attest::ek::certificate_from_pem(text);
    }
});
