#![no_main]
// Proof-of-possession headers are attacker-controlled: parse, then verify
// against a fixed key (which must fail without panicking).
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(proof) = keyward_attest::instance::PopProof::parse(text) {
        let request = keyward_attest::instance::PopRequest {
            method: "POST",
            path: "/v1/secrets/kv/x",
            body: data,
            token: b"kws.x",
        };
        let _ = proof.verify(&[7u8; 32], &request, proof.time_ms(), 30_000);
    }
});
