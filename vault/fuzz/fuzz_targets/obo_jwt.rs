//! The whole user-token check on arbitrary input, against a fixed JWKS
//! holding the example public keys of RFC 7517 Appendix A.1 (one P-256, one
//! RSA-2048). Signatures verify only if the fuzzer forges one; the header,
//! key-selection and signature paths are what it explores.
#![no_main]
use keyward_vault::obo::{Jwks, OboSettings};

static JWKS: &str = r#"{"keys":[
 {"kty":"EC","crv":"P-256","kid":"ec-1","alg":"ES256",
  "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
  "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
 {"kty":"RSA","kid":"rsa-1","alg":"RS256","e":"AQAB",
  "n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}
]}"#;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(jwks) = Jwks::from_json(JWKS.as_bytes()) else {
        return;
    };
    let settings = OboSettings::new("https://idp.example", "https://vault.example", jwks);
    let _ = settings.verify(token, 1_800_000_000);
});
