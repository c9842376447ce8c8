//! `keyward audit verify FILE` reads a log that may have been tampered
//! with: the chain check on arbitrary bytes.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = keyward_vault::audit::verify(data);
});
