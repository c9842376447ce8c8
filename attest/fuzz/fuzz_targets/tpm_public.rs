#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(public) = keyward_attest::tpm::public::TpmPublic::parse(data) {
        let _ = public.name();
        let _ = keyward_attest::tpm::ak::check_ak_attributes(&public);
    }
});
