#![no_main]
use keyward_attest::sigstore::{IN_TOTO_PAYLOAD_TYPE, pae, parse_dsse_envelope, parse_statement};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = parse_dsse_envelope(data);
    let _ = parse_statement(IN_TOTO_PAYLOAD_TYPE, data);
    let _ = pae(IN_TOTO_PAYLOAD_TYPE, data);
});
