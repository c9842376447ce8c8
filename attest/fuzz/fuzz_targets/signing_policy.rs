#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = keyward_attest::sigstore::SigningPolicy::from_json(data);
});
