#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = keyward_attest::tpm::attest::Attest::parse(data);
});
