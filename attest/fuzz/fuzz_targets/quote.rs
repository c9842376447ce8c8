//! The whole quote check with a real AK (from the swtpm vectors) and
//! attacker-chosen attest and signature bytes: input = u16 split ‖ attest ‖ sig.
#![no_main]
use keyward_attest::digest::PcrValues;
use keyward_attest::quote::{QuoteKey, verify_quote};
use keyward_attest::tpm::public::TpmPublic;

static AK: &[u8] = include_bytes!("../../testdata/tpm/ak_rsa.pub");

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(ak) = TpmPublic::parse(AK) else { return };
    let Some((split, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let split = usize::from(u16::from_be_bytes(*split)).min(rest.len());
    let (attest, signature) = rest.split_at(split);
    let _ = verify_quote(
        QuoteKey::Tpm(&ak),
        attest,
        signature,
        &PcrValues::new(),
        b"nonce",
    );
});
