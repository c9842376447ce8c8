//! An OpenSSF model-signing signature file, verified under a key policy
//! with the test signer's public key (so the key-mode path is reachable).
#![no_main]
use std::sync::OnceLock;

use keyward_attest::sigstore::model::verify_model_signature;
use keyward_attest::sigstore::{SigningPolicy, TrustRoot};

static SIGNER_PUB: &str = include_str!("../../testdata/model-signing/keys/signer.pub");

fn setup() -> &'static (TrustRoot, SigningPolicy) {
    static SETUP: OnceLock<(TrustRoot, SigningPolicy)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let policy = serde_json::json!({
            "kind": "model",
            "predicate_types": ["https://model_signing/signature/v1.0"],
            "keys": [{"key_id": "fuzz", "public_key": SIGNER_PUB}],
        });
        (
            TrustRoot::production().unwrap(),
            SigningPolicy::from_json(policy.to_string().as_bytes()).unwrap(),
        )
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (trust, policy) = setup();
    if let Ok(signature) = verify_model_signature(trust, policy, data, 1_800_000_000) {
        let _ = signature.for_root_digest(&[0; 32]);
    }
});
