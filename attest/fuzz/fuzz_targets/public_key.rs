#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(key) = keyward_attest::key::PublicKey::from_spki_der(data) {
        assert_eq!(
            keyward_attest::key::PublicKey::from_spki_der(&key.to_spki_der()).ok(),
            Some(key)
        );
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = keyward_attest::key::PublicKey::from_pem(text);
    }
});
