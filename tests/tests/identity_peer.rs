//! Workload identity tokens (`keyward_vault::secrets::identity`) verified by
//! an independent implementation: Python's `cryptography` package from the
//! tools venv (`scripts/deps.sh`), fed only the JWKS JSON and the compact
//! token, as a relying party would be. The script also recomputes the RFC
//! 7638 thumbprint of the key, which must be the `kid`. No network.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::{Command, Stdio};

use keyward_tests::registry::tools_python;
use keyward_vault::secrets::identity::{IdentitySettings, IssuedToken, KeySet, WorkloadClaims};
use ring::rand::SystemRandom;
use serde_json::{Value, json};

/// 2026-11-01T00:00:00Z.
const NOW: u64 = 1_793_491_200;
const IMAGE_DIGEST: &str =
    "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172";
const MODEL_DIGEST: &str =
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The relying party (Python `cryptography`): reads `{"jwks": …, "token":
/// …}` on stdin; prints `{"header", "claims", "thumbprint"}` or exits 1 with
/// the reason. The demo verifies its agent's token with the same script.
const VERIFIER: &str = include_str!("../../scripts/verify-jwt.py");

/// Runs the Python verifier: `Ok(output JSON)` or `Err(stderr)`.
fn python_verify(jwks: &Value, token: &str) -> Result<Value, String> {
    let python = tools_python();
    let mut child = Command::new(&python)
        .arg("-c")
        .arg(VERIFIER)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/deps.sh)", python.display()));
    let request = json!({ "jwks": jwks, "token": token }).to_string();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    match output.status.code() {
        Some(0) => Ok(serde_json::from_slice(&output.stdout).unwrap()),
        Some(1) => Err(stderr),
        other => panic!("verifier crashed ({other:?}): {stderr}"),
    }
}

fn settings() -> IdentitySettings {
    IdentitySettings {
        issuer: "https://vault.example:8200/v1/identity".to_owned(),
        trust_domain: "prod.example".to_owned(),
        default_ttl_secs: 300,
        max_ttl_secs: 3600,
        rotation_period_secs: 86_400,
    }
}

fn claims() -> WorkloadClaims {
    WorkloadClaims {
        host_id: "host-01".to_owned(),
        host_labels: BTreeMap::from([("zone".to_owned(), "eu-west-1a".to_owned())]),
        image_digest: IMAGE_DIGEST.to_owned(),
        image_reference: format!("registry.example/agents/summarizer@{IMAGE_DIGEST}"),
        model_name: "llama-3-8b".to_owned(),
        model_digest: MODEL_DIGEST.to_owned(),
        instance_id: "0f1e2d3c-inst".to_owned(),
        on_behalf_of: Some("alice@example.com".to_owned()),
    }
}

fn expected_claims(issued: &IssuedToken, audience: &str, iat: u64) -> Value {
    json!({
        "iss": "https://vault.example:8200/v1/identity",
        "sub": format!("keyward://prod.example/host/host-01/image/{IMAGE_DIGEST}"),
        "aud": audience,
        "iat": iat,
        "nbf": iat,
        "exp": issued.expires_at,
        "jti": issued.jti,
        "keyward": {
            "host_id": "host-01",
            "host_labels": {"zone": "eu-west-1a"},
            "image_digest": IMAGE_DIGEST,
            "image_reference": format!("registry.example/agents/summarizer@{IMAGE_DIGEST}"),
            "model_name": "llama-3-8b",
            "model_digest": MODEL_DIGEST,
            "instance_id": "0f1e2d3c-inst",
            "on_behalf_of": "alice@example.com",
        },
    })
}

fn parts(token: &str) -> Vec<&str> {
    token.split('.').collect()
}

#[test]
fn python_verifies_tokens_of_the_active_and_a_retiring_key() {
    let rng = SystemRandom::new();
    let mut keys = KeySet::generate(NOW, &rng).unwrap();
    let old = keys
        .sign(
            &claims(),
            "sts.example.com",
            Some(3600),
            NOW,
            &settings(),
            &rng,
        )
        .unwrap();
    keys.rotate(NOW + 60, &settings(), &rng).unwrap();
    let new = keys
        .sign(
            &claims(),
            "https://svc.example",
            None,
            NOW + 60,
            &settings(),
            &rng,
        )
        .unwrap();
    assert_ne!(old.kid, new.kid);
    let jwks = keys.jwks();

    for (issued, audience, iat) in [
        (&old, "sts.example.com", NOW),
        (&new, "https://svc.example", NOW + 60),
    ] {
        let verified = python_verify(&jwks, issued.expose_secret()).unwrap();
        assert_eq!(
            verified["header"],
            json!({"alg": "ES256", "typ": "JWT", "kid": issued.kid})
        );
        assert_eq!(verified["thumbprint"], issued.kid.as_str());
        assert_eq!(verified["claims"], expected_claims(issued, audience, iat));
    }
    assert_eq!(old.expires_at, NOW + 3600);
    assert_eq!(new.expires_at, NOW + 60 + 300);

    // Once pruned, the old key is gone for Python too.
    keys.prune(NOW + 60 + 3600);
    assert_eq!(
        python_verify(&keys.jwks(), old.expose_secret()),
        Err("unknown kid".to_owned())
    );
    assert!(python_verify(&keys.jwks(), new.expose_secret()).is_ok());
}

#[test]
fn python_rejects_tampered_tokens() {
    let rng = SystemRandom::new();
    let mut keys = KeySet::generate(NOW, &rng).unwrap();
    let first = keys
        .sign(&claims(), "sts.example.com", None, NOW, &settings(), &rng)
        .unwrap();
    let other_audience = keys
        .sign(&claims(), "attacker.example", None, NOW, &settings(), &rng)
        .unwrap();
    keys.rotate(NOW + 1, &settings(), &rng).unwrap();
    let by_new_key = keys
        .sign(
            &claims(),
            "sts.example.com",
            None,
            NOW + 1,
            &settings(),
            &rng,
        )
        .unwrap();
    let jwks = keys.jwks();
    assert!(python_verify(&jwks, first.expose_secret()).is_ok());

    let [header, payload, signature] = parts(first.expose_secret())[..] else {
        panic!("not three parts");
    };

    // One signature character changed (a middle one: all six bits count).
    let mut flipped: Vec<char> = signature.chars().collect();
    flipped[40] = if flipped[40] == 'A' { 'B' } else { 'A' };
    let flipped: String = flipped.into_iter().collect();
    let tampered = format!("{header}.{payload}.{flipped}");
    assert_eq!(
        python_verify(&jwks, &tampered),
        Err("bad signature".to_owned())
    );

    // Another token's payload (another audience) under this signature.
    let spliced = format!(
        "{header}.{}.{signature}",
        parts(other_audience.expose_secret())[1]
    );
    assert_eq!(
        python_verify(&jwks, &spliced),
        Err("bad signature".to_owned())
    );

    // Relabelled to the other published key.
    let relabelled = format!(
        "{}.{payload}.{signature}",
        parts(by_new_key.expose_secret())[0]
    );
    assert_eq!(
        python_verify(&jwks, &relabelled),
        Err("bad signature".to_owned())
    );

    // A key set the verifier does not know.
    let stranger = KeySet::generate(NOW, &rng).unwrap();
    let foreign = stranger
        .sign(&claims(), "sts.example.com", None, NOW, &settings(), &rng)
        .unwrap();
    assert_eq!(
        python_verify(&jwks, foreign.expose_secret()),
        Err("unknown kid".to_owned())
    );
}
