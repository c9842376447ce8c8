//! JWKS parsing on arbitrary bytes.
#![no_main]
use keyward_vault::obo::Jwks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = Jwks::from_json(data);
});
