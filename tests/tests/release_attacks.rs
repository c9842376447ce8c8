//! Attack-table rows 7, 13, 15, 18 (on-behalf-of), 19 and 20 end to end on
//! the release fixture (`common`): each asserts the uniform denial (or the
//! 400/413) and the exact audit reason, and that nothing was written.
//! Rows 1–3, 8–12, 14, 16, 17 and 18 (policy) are in `release_e2e.rs`;
//! rows 4–6 in `vault/tests/hosts_enroll.rs`; 21 and 22 in
//! `release_audit_sink.rs` and `vault/tests/release_crash.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::as_conversions
)]

mod common;
use common::*;

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use keyward_tests::registry::write_test_image;
use keyward_vault::obo::{Jwks, OboSettings};
use keyward_vault::storage::{KeyRange, Keyspace};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

async fn count(fx: &Fixture, keyspace: Keyspace) -> usize {
    fx.state
        .storage
        .scan(keyspace, KeyRange::All, 10_000)
        .await
        .unwrap()
        .len()
}

async fn kv_fixture() -> (Fixture, Workload, String) {
    let fx = Fixture::start().await;
    fx.put_policy(
        "app",
        r#"permit (principal is Keyward::Workload, action, resource is Keyward::Secret)
           when { resource.path like "kv/app/*" };
           permit (principal is Keyward::Workload, action, resource is Keyward::Secret)
           when { resource.path == "kv/team/db" && context has user
                  && context.user.scopes.contains("db:read") };"#,
    )
    .await;
    for path in ["/v1/kv/app/db", "/v1/kv/team/db"] {
        let (status, body) = fx
            .admin("PUT", path, Some(&json!({"data": {"password": "hunter2"}})))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let mut cel = Vec::new();
    let workload = fx.launch(&mut cel, "agent-1", &fx.model_digest);
    let evidence = fx.evidence(&workload, &cel).await;
    let (status, session) = fx.attest(&evidence).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let token = session["token"].as_str().unwrap().to_owned();
    (fx, workload, token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row7_a_tpm2_sign_signature_is_not_a_quote() {
    let fx = Fixture::start().await;
    let mut cel = Vec::new();
    let workload = fx.launch(&mut cel, "agent-1", &fx.model_digest);
    let mut evidence = fx.evidence(&workload, &cel).await;
    let genuine = STANDARD
        .decode(evidence["quote"].as_str().unwrap())
        .unwrap();
    let tpm = fx.sim.open().unwrap();
    // The TPM refuses to TPM2_Sign anything that starts with
    // TPM_GENERATED_VALUE with the restricted AK…
    assert!(tpm.sign_with_ak(&fx.ak, &genuine).is_err());
    // …so the attacker signs the quote's bytes with another magic.
    let mut forged = genuine.clone();
    forged[..4].copy_from_slice(&[0x00, 0x00, 0x00, 0x00]);
    let signature = tpm.sign_with_ak(&fx.ak, &forged).unwrap();
    drop(tpm);
    evidence["quote"] = json!(STANDARD.encode(&forged));
    evidence["signature"] = json!(STANDARD.encode(&signature));
    let (status, body) = fx.attest(&evidence).await;
    assert_denied(status, &body);
    assert_eq!(
        fx.last_reason("attest"),
        "denied at quote: magic 0x00000000 is not TPM_GENERATED_VALUE"
    );
    assert_eq!(count(&fx, Keyspace::Sessions).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row13_unsigned_or_disallowed_image() {
    let fx = Fixture::start().await;
    // An unsigned image: registration is refused…
    let layout = fx.registry.scratch("unsigned").unwrap();
    let unsigned = write_test_image(&layout, "img", b"agent v2 unsigned\n").unwrap();
    fx.registry
        .skopeo_push(&layout, "img", "keyward/agent", "v2")
        .unwrap();
    let (status, body) = fx
        .admin(
            "POST",
            "/v1/artifacts/images",
            Some(&json!({"digest": unsigned,
                "repository": format!("{}/keyward/agent", fx.registry.addr()),
                "policy": "release", "discover": true})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // …and a workload launched from it is denied at the artifact stage.
    let mut cel = Vec::new();
    let workload = fx.launch_image(&mut cel, "agent-u", &unsigned, &fx.model_digest);
    let evidence = fx.evidence(&workload, &cel).await;
    let (status, body) = fx.attest(&evidence).await;
    assert_denied(status, &body);
    assert_eq!(
        fx.last_reason("attest"),
        format!("denied at artifact: image {unsigned} is not registered")
    );

    // A registered image whose signer the (narrowed) policy no longer
    // allows: denied, and an open session dies on its next use.
    let w2 = fx.launch(&mut cel, "agent-2", &fx.model_digest);
    let evidence = fx.evidence(&w2, &cel).await;
    let (status, session) = fx.attest(&evidence).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let token = session["token"].as_str().unwrap().to_owned();
    let other_key = std::fs::read_to_string(model_vectors().join("keys/other.pub")).unwrap();
    let narrowed = json!({"kind": "image", "predicate_types": [SIMPLE_SIGNING],
        "keys": [{"key_id": "someone-else", "public_key": other_key}]});
    let (status, body) = fx
        .admin("PUT", "/v1/policies/signing/image/release", Some(&narrowed))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let evidence = fx.evidence(&w2, &cel).await;
    let (status, body) = fx.attest(&evidence).await;
    assert_denied(status, &body);
    let expected = format!(
        "denied at artifact: image {}: signer key release is no longer allowed by policy \"release\"",
        fx.image_digest
    );
    assert_eq!(fx.last_reason("attest"), expected);
    let (status, body) = fx
        .session_call(&w2, &token, "/v1/secrets/kv/app/db", &json!({}))
        .await;
    assert_denied(status, &body);
    assert_eq!(fx.last_reason("secret.release"), expected);
}

/// The model-signing root digest of the committed model with one file's
/// digest replaced, computed as model-signing's file serialization does
/// (SHA-256 over the resources' digests in their signed order).
fn tampered_model_digest(file: &str, new_content: &[u8]) -> String {
    let sig: Value = serde_json::from_slice(
        &std::fs::read(model_vectors().join("signatures/key-v11.sig")).unwrap(),
    )
    .unwrap();
    let payload = STANDARD
        .decode(sig["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    let statement: Value = serde_json::from_slice(&payload).unwrap();
    let mut concatenated = Vec::new();
    let mut replaced = false;
    for r in statement["predicate"]["resources"].as_array().unwrap() {
        if r["name"] == file {
            concatenated.extend(ring::digest::digest(&ring::digest::SHA256, new_content).as_ref());
            replaced = true;
        } else {
            concatenated.extend(hex::decode(r["digest"].as_str().unwrap()).unwrap());
        }
    }
    assert!(replaced, "{file} is not a signed resource");
    let root = ring::digest::digest(&ring::digest::SHA256, &concatenated);
    format!("sha256:{}", hex::encode(root.as_ref()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row15_tampered_bundle_or_changed_model_files() {
    let fx = Fixture::start().await;
    // A tampered model-signing bundle does not register.
    let mut sig: Value = serde_json::from_slice(
        &std::fs::read(model_vectors().join("signatures/key-v11.sig")).unwrap(),
    )
    .unwrap();
    let mut payload = STANDARD
        .decode(sig["dsseEnvelope"]["payload"].as_str().unwrap())
        .unwrap();
    let at = payload.iter().position(|b| *b == b'"').unwrap();
    payload.insert(at, b' ');
    sig["dsseEnvelope"]["payload"] = json!(STANDARD.encode(&payload));
    let (status, body) = fx
        .admin(
            "POST",
            "/v1/artifacts/models",
            Some(&json!({"version": fx.model_digest, "signature": sig, "policy": "release"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let text = body["errors"][0].as_str().unwrap();
    assert!(text.contains("verif"), "{text}");

    // A model directory whose weights changed has another digest: a
    // workload launched with it is denied at the artifact stage.
    let changed = tampered_model_digest("weights.bin", b"poisoned weights");
    assert_ne!(changed, fx.model_digest);
    let mut cel = Vec::new();
    let workload = fx.launch(&mut cel, "agent-t", &changed);
    let evidence = fx.evidence(&workload, &cel).await;
    let (status, body) = fx.attest(&evidence).await;
    assert_denied(status, &body);
    assert_eq!(
        fx.last_reason("attest"),
        format!("denied at artifact: model {changed} is not registered")
    );
}

fn user_token(key: &EcdsaKeyPair, scope: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = json!({"alg": "ES256", "kid": "idp-1", "typ": "JWT"});
    let claims = json!({"iss": "https://idp.example", "aud": "keyward", "sub": "alice",
        "exp": now + 300, "iat": now, "scope": scope});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = key.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row18_on_behalf_of_user_needs_the_scope() {
    let (fx, workload, token) = kv_fixture().await;
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let idp =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let point = idp.public_key().as_ref();
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "idp-1", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])}]});
    let jwks = Jwks::from_json(jwks.to_string().as_bytes()).unwrap();
    fx.state.engines.configure_obo(Some(OboSettings::new(
        "https://idp.example",
        "keyward",
        jwks,
    )));

    // With the scope: released, and the audit names agent and user.
    let good = user_token(&idp, "openid db:read");
    let (status, body) = fx
        .session_call(
            &workload,
            &token,
            "/v1/secrets/kv/team/db",
            &json!({ "on_behalf_of": good }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let record = fx.audit("secret.release").pop().unwrap();
    assert_eq!(record["outcome"], "success");
    assert!(
        record["actor"].as_str().unwrap().starts_with("workload:"),
        "{record}"
    );
    let text = record.to_string();
    assert!(!text.contains("hunter2"), "{text}");

    // Without a user, or a user without the scope: denied at policy.
    let (status, body) = fx
        .session_call(&workload, &token, "/v1/secrets/kv/team/db", &json!({}))
        .await;
    assert_denied(status, &body);
    assert!(
        fx.last_reason("secret.release")
            .starts_with("denied at policy: "),
        "{}",
        fx.last_reason("secret.release")
    );
    let narrow = user_token(&idp, "openid");
    let (status, body) = fx
        .session_call(
            &workload,
            &token,
            "/v1/secrets/kv/team/db",
            &json!({ "on_behalf_of": narrow }),
        )
        .await;
    assert_denied(status, &body);
    assert!(
        fx.last_reason("secret.release")
            .starts_with("denied at policy: "),
        "{}",
        fx.last_reason("secret.release")
    );
    // A user token from another issuer key: denied at policy, exactly why.
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let forger =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let forged = user_token(&forger, "openid db:read");
    let (status, body) = fx
        .session_call(
            &workload,
            &token,
            "/v1/secrets/kv/team/db",
            &json!({ "on_behalf_of": forged }),
        )
        .await;
    assert_denied(status, &body);
    assert!(
        fx.last_reason("secret.release")
            .starts_with("denied at policy: on-behalf-of token: "),
        "{}",
        fx.last_reason("secret.release")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row19_agents_and_wrong_roles_on_admin_paths() {
    let (fx, _workload, token) = kv_fixture().await;
    // A session token is not an admin token.
    let (status, body) = call(
        &fx.state,
        "PUT",
        "/v1/kv/app/db",
        Some(&token),
        Some(&json!({"data": {"password": "mine"}})),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(
        fx.last_reason("kv.write"),
        "unauthenticated: malformed token"
    );
    // A release-engineer token cannot write release policy or kv.
    let (status, body) = fx
        .admin(
            "POST",
            "/v1/auth/token/create",
            Some(&json!({"roles": ["release"], "ttl": "10m"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let release = body["token"].as_str().unwrap().to_owned();
    for (method, path, op, body) in [
        (
            "PUT",
            "/v1/policies/release/evil",
            "policy.release.write",
            json!({"policy": "permit (principal, action, resource);"}),
        ),
        (
            "PUT",
            "/v1/kv/app/db",
            "kv.write",
            json!({"data": {"password": "mine"}}),
        ),
        (
            "POST",
            "/v1/sys/leases/revoke-prefix",
            "lease.revoke-prefix",
            json!({"prefix": "kv/"}),
        ),
    ] {
        let (status, answer) = call(&fx.state, method, path, Some(&release), Some(&body)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {answer}");
        assert_eq!(
            fx.last_reason(op),
            "forbidden: needs one of [admin], token holds [release]",
            "{path}"
        );
    }
    // The kv value is unchanged (version 1 only).
    let (status, meta) = fx.admin("GET", "/v1/kv/app/db", None).await;
    assert_eq!(status, StatusCode::OK, "{meta}");
    assert_eq!(meta["current"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row20_malformed_or_oversize_evidence_writes_nothing() {
    let fx = Fixture::start().await;
    let mut cel = Vec::new();
    let workload = fx.launch(&mut cel, "agent-1", &fx.model_digest);
    let evidence = fx.evidence(&workload, &cel).await;
    let cases: Vec<(&str, Value, &str)> = vec![
        ("quote", json!("not base64!"), "quote: not base64"),
        ("quote", json!(STANDARD.encode([0xffu8; 40])), "TPMS_ATTEST"),
        (
            "signature",
            json!(STANDARD.encode([1u8, 2, 3])),
            "TPMT_SIGNATURE",
        ),
        (
            "workload_log",
            json!(STANDARD.encode([0xffu8; 64])),
            "workload_log: ",
        ),
        ("boot_log", json!(STANDARD.encode([0u8; 10])), "boot_log: "),
        (
            "instance_key",
            json!(STANDARD.encode([0u8; 31])),
            "instance key is 31 bytes",
        ),
        ("pcrs", json!({"md5": {"0": "00"}}), "pcrs: unknown bank"),
    ];
    for (field, value, expected) in cases {
        let mut bad = evidence.clone();
        bad[field] = value;
        let (status, body) = fx.attest(&bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {body}");
        let reason = fx.last_reason("attest");
        assert!(reason.contains(expected), "{field}: {reason}");
    }
    let mut unknown = evidence.clone();
    unknown["extra"] = json!(1);
    let (status, body) = fx.attest(&unknown).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // Oversize: 413 before anything is parsed.
    let mut huge = evidence.clone();
    huge["workload_log"] = json!("A".repeat(2 << 20));
    let (status, _) = fx.attest(&huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Nothing was written: no session, no used nonce; the nonce of the
    // malformed requests still answers once.
    assert_eq!(count(&fx, Keyspace::Sessions).await, 0);
    assert_eq!(count(&fx, Keyspace::Nonces).await, 0);
    let (status, body) = fx.attest(&evidence).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(count(&fx, Keyspace::Sessions).await, 1);
    assert_eq!(count(&fx, Keyspace::Nonces).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row3_unknown_host_or_foreign_ak() {
    let fx = Fixture::start().await;
    let mut cel = Vec::new();
    let workload = fx.launch(&mut cel, "agent-1", &fx.model_digest);
    // A host id that was never enrolled.
    let mut evidence = fx.evidence(&workload, &cel).await;
    evidence["host_id"] = json!("00".repeat(16));
    let (status, body) = fx.attest(&evidence).await;
    assert_denied(status, &body);
    assert_eq!(
        fx.last_reason("attest"),
        format!("denied at host: host {:?} is not enrolled", "00".repeat(16))
    );
    // An AK of the same TPM that was never enrolled, claiming the host:
    // its quote does not verify with the enrolled AK.
    let tpm = fx.sim.open().unwrap();
    let rogue = tpm
        .create_ak(
            keyward_hardware::EkKind::Rsa2048,
            keyward_hardware::AkAlgorithm::RsaSsaSha256,
        )
        .unwrap();
    drop(tpm);
    let mut evidence = fx.evidence(&workload, &cel).await;
    let nonce = hex::decode(evidence["nonce"].as_str().unwrap()).unwrap();
    let tpm = fx.sim.open().unwrap();
    let mut indices = BOOT_PCRS.to_vec();
    indices.push(WORKLOAD_PCR);
    let quote = tpm
        .quote(
            &rogue,
            &keyward_attest::instance::qualifying_data(&nonce, &workload.public),
            &[keyward_hardware::PcrSelection::new(
                keyward_hardware::PcrBank::Sha256,
                &indices,
            )],
        )
        .unwrap();
    drop(tpm);
    evidence["quote"] = json!(STANDARD.encode(&quote.attest));
    evidence["signature"] = json!(STANDARD.encode(&quote.signature));
    let (status, body) = fx.attest(&evidence).await;
    assert_denied(status, &body);
    assert!(
        fx.last_reason("attest").starts_with("denied at quote: "),
        "{}",
        fx.last_reason("attest")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row16_a_captured_proof_cannot_be_replayed() {
    use keyward_attest::instance::{PopProof, PopRequest};

    let (fx, workload, token) = kv_fixture().await;
    let path = "/v1/secrets/kv/app/db";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let proof = PopProof::sign(
        &workload.key,
        &PopRequest {
            method: "POST",
            path,
            body: b"{}",
            token: token.as_bytes(),
        },
        now,
        [9; 16],
    );
    let (status, body) = fx.raw(path, Some(&token), Some(&proof), "{}".into()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = fx.raw(path, Some(&token), Some(&proof), "{}".into()).await;
    assert_denied(status, &body);
    assert_eq!(
        fx.last_reason("secret.release"),
        "denied at session: proof of possession already used (replay)"
    );
    // A proof for another body or path does not transfer.
    let (status, body) = fx
        .raw(path, Some(&token), Some(&proof), r#"{"version": 1}"#.into())
        .await;
    assert_denied(status, &body);
    assert_eq!(
        fx.last_reason("secret.release"),
        "denied at session: proof signature does not verify with the session's instance key"
    );
}
