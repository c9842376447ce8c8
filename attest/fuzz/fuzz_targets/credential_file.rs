#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = keyward_attest::credential::CredentialBlob::parse_tpm2_tools_file(data);
});
