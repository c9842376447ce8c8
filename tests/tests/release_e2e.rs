//! The release path end to end, through the vault's router (`oneshot`, no
//! socket), on the fixture of `common` (swtpm host, real registry, real
//! model-signing signature): challenge → quote → evidence → session →
//! secrets, and attack-table denials with their audit reasons.
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
use keyward_attest::cel::{LaunchRecord, append};
use keyward_attest::instance::instance_key_sha256;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::json;
fn policy_for(fx: &Fixture) -> String {
    format!(
        r#"permit (principal is Keyward::Workload, action, resource is Keyward::Secret)
        when {{ resource.path like "kv/app/*" && principal.model_signer == "key:model-release"
               && principal.image_digest == "{}" }};"#,
        fx.image_digest
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attested_workload_gets_kv_secret_and_replays_fail() {
    let fx = Fixture::start().await;
    fx.put_policy("app", &policy_for(&fx)).await;
    fx.put_kv("app/db", json!({"password": "hunter2"})).await;

    let mut cel = Vec::new();
    let workload = fx.launch(&mut cel, "agent-1", &fx.model_digest);
    let evidence = fx.evidence(&workload, &cel).await;
    let (status, session) = fx.attest(&evidence).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let token = session["token"].as_str().unwrap().to_owned();
    assert_eq!(session["session"]["host_id"], fx.host_id.as_str());
    assert_eq!(session["session"]["image_digest"], fx.image_digest.as_str());
    assert_eq!(session["session"]["model_signer"], "key:model-release");
    assert_eq!(session["session"]["host_labels"], json!({"env": "prod"}));
    // The host record shows the attestation (written off the request path).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, host) = fx
            .admin("GET", &format!("/v1/hosts/{}", fx.host_id), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{host}");
        if host["last_attested_at"].is_u64() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{host}");
        tokio::task::yield_now().await;
    }

    let (status, secret) = fx
        .session_call(&workload, &token, "/v1/secrets/kv/app/db", &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{secret}");
    assert_eq!(secret["data"], json!({"password": "hunter2"}));
    assert_eq!(secret["version"], 1);
    let released = fx.audit("secret.release");
    let last = released.last().unwrap();
    assert_eq!(last["outcome"], "success");
    assert!(!last.to_string().contains("hunter2"), "{last}");

    // Row 1: the same evidence again (nonce used).
    let (status, body) = fx.attest(&evidence).await;
    assert_denied(status, &body);
    assert_eq!(
        fx.last_reason("attest"),
        "denied at nonce: nonce already used"
    );

    // Row 16: the token without a proof, with another key's proof, or a
    // replayed proof.
    let (status, body) = fx
        .raw("/v1/secrets/kv/app/db", Some(&token), None, "{}".into())
        .await;
    assert_denied(status, &body);
    assert_eq!(
        fx.last_reason("secret.release"),
        "denied at session: no proof of possession"
    );
    let thief = Workload::unlaunched();
    let (status, body) = fx
        .session_call(&thief, &token, "/v1/secrets/kv/app/db", &json!({}))
        .await;
    assert_denied(status, &body);
    assert_eq!(
        fx.last_reason("secret.release"),
        "denied at session: proof signature does not verify with the session's instance key"
    );

    // Row 18: outside Cedar policy.
    fx.put_kv("other/db", json!({"password": "x"})).await;
    let (status, body) = fx
        .session_call(&workload, &token, "/v1/secrets/kv/other/db", &json!({}))
        .await;
    assert_denied(status, &body);
    assert!(
        fx.last_reason("secret.release")
            .starts_with("denied at policy: "),
        "{}",
        fx.last_reason("secret.release")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_denials_name_their_stage() {
    let fx = Fixture::start().await;
    let mut cel = Vec::new();
    let workload = fx.launch(&mut cel, "agent-1", &fx.model_digest);

    // Row 12: a key with no launch record of its own, against this log.
    let other = Workload::unlaunched();
    let evidence = fx.evidence(&other, &cel).await;
    let (status, body) = fx.attest(&evidence).await;
    assert_denied(status, &body);
    assert!(
        fx.last_reason("attest")
            .starts_with("denied at workload_log: "),
        "{}",
        fx.last_reason("attest")
    );

    // Row 11: a forged CEL (a record appended without extending the PCR).
    let mut forged = cel.clone();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let forged_key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let forged_public: [u8; 32] = forged_key.public_key().as_ref().try_into().unwrap();
    let record = LaunchRecord::new(
        "agent-forged",
        &fx.image_ref,
        &fx.image_digest,
        "demo-model",
        &fx.model_digest,
        instance_key_sha256(&forged_public),
    )
    .unwrap();
    append(&mut forged, WORKLOAD_PCR, &record).unwrap();
    let forged_workload = Workload {
        key: forged_key,
        public: forged_public,
    };
    let evidence = fx.evidence(&forged_workload, &forged).await;
    let (status, body) = fx.attest(&evidence).await;
    assert_denied(status, &body);
    assert!(
        fx.last_reason("attest")
            .starts_with("denied at workload_log: "),
        "{}",
        fx.last_reason("attest")
    );

    // Row 8: a PCR value changed after quoting.
    let mut evidence = fx.evidence(&workload, &cel).await;
    evidence["pcrs"]["sha256"]["0"] = json!("11".repeat(32));
    let (status, body) = fx.attest(&evidence).await;
    assert_denied(status, &body);
    assert!(
        fx.last_reason("attest").starts_with("denied at quote: "),
        "{}",
        fx.last_reason("attest")
    );

    // Row 2: an expired nonce (TTL 0 ms).
    let mut settings = fx.state.release.settings();
    settings.nonce_ttl_ms = 0;
    fx.state.release.configure(settings);
    let evidence = fx.evidence(&workload, &cel).await;
    settings.nonce_ttl_ms = 60_000;
    fx.state.release.configure(settings);
    // The nonce expired the millisecond after it was issued; quoting took longer.
    let (status, body) = fx.attest(&evidence).await;
    assert_denied(status, &body);
    assert!(
        fx.last_reason("attest")
            .starts_with("denied at nonce: nonce expired at "),
        "{}",
        fx.last_reason("attest")
    );

    // Row 13: an unregistered model digest in the launch record.
    let mut cel2 = cel.clone();
    let unknown = format!("sha256:{}", "ab".repeat(32));
    let w2 = fx.launch(&mut cel2, "agent-2", &unknown);
    let evidence = fx.evidence(&w2, &cel2).await;
    let (status, body) = fx.attest(&evidence).await;
    assert_denied(status, &body);
    assert_eq!(
        fx.last_reason("attest"),
        format!("denied at artifact: model {unknown} is not registered")
    );

    // The honest workload still attests (its launch record is in cel2 too).
    let evidence = fx.evidence(&workload, &cel2).await;
    let (status, body) = fx.attest(&evidence).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Row 3: a revoked host.
    let (status, body) = fx
        .admin("POST", &format!("/v1/hosts/{}/revoke", fx.host_id), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let evidence = fx.evidence(&workload, &cel2).await;
    let (status, body) = fx.attest(&evidence).await;
    assert_denied(status, &body);
    assert_eq!(
        fx.last_reason("attest"),
        format!("denied at host: host {} is revoked", fx.host_id)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_the_model_kills_session_and_identity_lease() {
    let fx = Fixture::start().await;
    fx.put_policy("app", &policy_for(&fx)).await;
    fx.put_kv("app/db", json!({"password": "hunter2"})).await;
    let mut cel = Vec::new();
    let workload = fx.launch(&mut cel, "agent-1", &fx.model_digest);
    let evidence = fx.evidence(&workload, &cel).await;
    let (status, session) = fx.attest(&evidence).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let token = session["token"].as_str().unwrap().to_owned();

    // Row 14: revoke the model; the session's next use is denied.
    let (status, body) = fx
        .admin(
            "POST",
            &format!("/v1/artifacts/{}/revoke", fx.model_digest),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = fx
        .session_call(&workload, &token, "/v1/secrets/kv/app/db", &json!({}))
        .await;
    assert_denied(status, &body);
    let reason = fx.last_reason("secret.release");
    assert!(
        reason == "denied at session: unknown session token"
            || reason == format!("denied at artifact: model {} is revoked", fx.model_digest),
        "{reason}"
    );
    // And a fresh attestation of the same workload is denied at the artifact.
    let evidence = fx.evidence(&workload, &cel).await;
    let (status, body) = fx.attest(&evidence).await;
    assert_denied(status, &body);
    assert_eq!(
        fx.last_reason("attest"),
        format!("denied at artifact: model {} is revoked", fx.model_digest)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_and_identity_leases_follow_attestation() {
    use keyward_tests::postgres::Postgres;
    use keyward_vault::secrets::identity::IdentitySettings;

    let fx = Fixture::start().await;
    let pg = Postgres::start().unwrap();
    pg.admin_psql("CREATE TABLE orders (id int); INSERT INTO orders VALUES (42);")
        .unwrap();
    fx.state.engines.configure_identity(Some(IdentitySettings {
        issuer: "http://127.0.0.1:8200/v1/identity".into(),
        trust_domain: "keyward.test".into(),
        default_ttl_secs: 300,
        max_ttl_secs: 3600,
        rotation_period_secs: 86_400,
    }));
    let (status, body) = fx
        .admin(
            "PUT",
            "/v1/engines/database/postgres/readonly",
            Some(&json!({
                "connection_url": pg.admin_url(),
                "creation_statements": [
                    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
                    "GRANT SELECT ON orders TO \"{{name}}\";"
                ],
                "default_ttl": 120,
                "max_ttl": 600,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        !std::fs::read_to_string(&fx.audit_path)
            .unwrap()
            .contains(pg.admin_password()),
        "the admin DSN's password reached the audit log"
    );
    fx.put_policy(
        "db",
        &format!(
            r#"permit (principal is Keyward::Workload, action, resource is Keyward::Secret)
            when {{ (resource.path == "database/postgres/readonly" || resource.path == "identity/token")
                    && principal.image_digest == "{}"
                    && principal.hasTag("env") && principal.getTag("env") == "prod" }};"#,
            fx.image_digest
        ),
    )
    .await;

    let mut cel = Vec::new();
    let workload = fx.launch(&mut cel, "agent-1", &fx.model_digest);
    let evidence = fx.evidence(&workload, &cel).await;
    let (status, session) = fx.attest(&evidence).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let token = session["token"].as_str().unwrap().to_owned();

    // A PostgreSQL role, usable at once.
    let (status, db) = fx
        .session_call(
            &workload,
            &token,
            "/v1/secrets/database/postgres/readonly",
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{db}");
    let username = db["username"].as_str().unwrap().to_owned();
    let password = db["password"].as_str().unwrap().to_owned();
    let out = pg
        .psql(&username, &password, "SELECT id FROM orders;")
        .unwrap();
    assert!(out.contains("42"), "{out}");
    let lease_id = db["lease_id"].as_str().unwrap().to_owned();
    assert!(
        lease_id.starts_with("database/postgres/readonly/"),
        "{lease_id}"
    );
    let audit = fx.audit("secret.release");
    let last = audit.last().unwrap();
    assert!(!last.to_string().contains(&password), "{last}");

    // Renewal with the session's proof.
    let (status, renewed) = fx
        .session_call(
            &workload,
            &token,
            "/v1/sys/leases/renew",
            &json!({ "lease_id": lease_id, "increment": 200 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renewed}");

    // A workload identity token that verifies against the served JWKS.
    let (status, id) = fx
        .session_call(
            &workload,
            &token,
            "/v1/secrets/identity/token",
            &json!({ "audience": "sts.example.com" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{id}");
    let (status, jwks) = call(
        &fx.state,
        "GET",
        "/v1/identity/.well-known/jwks.json",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{jwks}");
    let claims = verify_jwt(&jwks, id["token"].as_str().unwrap()).expect("token verifies");
    assert_eq!(claims["aud"], "sts.example.com");
    assert_eq!(claims["keyward"]["host_id"], fx.host_id.as_str());
    assert_eq!(claims["keyward"]["model_digest"], fx.model_digest.as_str());
    let (status, discovery) = call(
        &fx.state,
        "GET",
        "/v1/identity/.well-known/openid-configuration",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(discovery["issuer"], "http://127.0.0.1:8200/v1/identity");

    // Row 17: revoke the host; the role is dropped, the token listed as
    // revoked, and renewal is denied.
    let (status, body) = fx
        .admin("POST", &format!("/v1/hosts/{}/revoke", fx.host_id), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let refused = pg
        .psql(&username, &password, "SELECT 1;")
        .expect_err("login after revocation");
    assert!(
        refused
            .to_string()
            .contains("password authentication failed"),
        "{refused}"
    );
    let (status, revoked) = call(&fx.state, "GET", "/v1/identity/revoked", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(revoked["revoked"][0]["jti"], claims["jti"]);
    let (status, body) = fx
        .session_call(
            &workload,
            &token,
            "/v1/sys/leases/renew",
            &json!({ "lease_id": lease_id }),
        )
        .await;
    assert_denied(status, &body);
    let reason = fx.last_reason("lease.renew");
    assert!(
        reason.starts_with("denied at host: ")
            || reason == "denied at session: unknown session token",
        "{reason}"
    );
    let basis = fx.audit("lease.revoke-basis");
    let last = basis.last().unwrap();
    assert_eq!(last["reason"], "host revoked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boot_log_and_boot_rules_are_enforced() {
    use keyward_tests::firmware::{self, BootImage, Measurement, QUOTE_PCRS, Tamper};

    let fx = Fixture::start().await;
    let image = BootImage::example();
    let tpm = fx.sim.open().unwrap();
    let log = firmware::measure(&image, &mut |p, d| tpm.extend_pcr_sha256(p, d)).unwrap();
    drop(tpm);
    let set_policy =
        |image: &BootImage| json!({ "boot_policy": firmware::boot_policy_json(image) });
    let path = format!("/v1/hosts/{}/boot-policy", fx.host_id);
    let (status, body) = fx.admin("PUT", &path, Some(&set_policy(&image))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut cel = Vec::new();
    let workload = fx.launch(&mut cel, "agent-1", &fx.model_digest);

    // The honest boot log satisfies the rules; the workload gets an
    // identity token (a lease).
    fx.state
        .engines
        .configure_identity(Some(keyward_vault::secrets::identity::IdentitySettings {
            issuer: "http://127.0.0.1:8200/v1/identity".into(),
            trust_domain: "keyward.test".into(),
            default_ttl_secs: 300,
            max_ttl_secs: 3600,
            rotation_period_secs: 86_400,
        }));
    fx.put_policy(
        "id",
        r#"permit (principal is Keyward::Workload, action, resource is Keyward::Secret)
           when { resource.path == "identity/token" };"#,
    )
    .await;
    let evidence = fx
        .evidence_with(&workload, &cel, &QUOTE_PCRS, Some(&log))
        .await;
    let (status, body) = fx.attest(&evidence).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    let (status, id) = fx
        .session_call(
            &workload,
            &token,
            "/v1/secrets/identity/token",
            &json!({"audience": "svc"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{id}");
    let lease_id = id["lease_id"].as_str().unwrap().to_owned();

    // Row 9: the log edited (the kernel's event removed): does not replay.
    let output = firmware::boot(&image);
    let kernel = output.first(Measurement::Kernel).unwrap().index;
    let edited = output.tampered(Tamper::Remove(kernel)).unwrap();
    let evidence = fx
        .evidence_with(&workload, &cel, &QUOTE_PCRS, Some(&edited))
        .await;
    let (status, body) = fx.attest(&evidence).await;
    assert_denied(status, &body);
    let reason = fx.last_reason("attest");
    assert!(
        reason.starts_with("denied at boot_policy: boot log: "),
        "{reason}"
    );
    // A failed re-attestation of the host revokes the host's leases.
    let (status, _) = fx
        .admin(
            "POST",
            "/v1/sys/leases/lookup",
            Some(&json!({ "lease_id": lease_id })),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        fx.last_reason("lease.revoke-basis"),
        "failed re-attestation of the host"
    );

    // Row 10: the policy wants another kernel: boot state outside policy.
    let mut other = image.clone();
    other.kernel = b"another kernel".to_vec();
    let (status, body) = fx.admin("PUT", &path, Some(&set_policy(&other))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let evidence = fx
        .evidence_with(&workload, &cel, &QUOTE_PCRS, Some(&log))
        .await;
    let (status, body) = fx.attest(&evidence).await;
    assert_denied(status, &body);
    let reason = fx.last_reason("attest");
    assert!(
        reason.starts_with("denied at boot_policy: boot state outside policy: "),
        "{reason}"
    );
    // A rules policy without a boot log is refused too.
    let evidence = fx.evidence_with(&workload, &cel, &QUOTE_PCRS, None).await;
    let (status, body) = fx.attest(&evidence).await;
    assert_denied(status, &body);
    let reason = fx.last_reason("attest");
    assert!(
        reason.starts_with("denied at boot_policy: boot state outside policy: "),
        "{reason}"
    );
}

/// Runs the expiry worker's pass until `done` holds (a deadline bounds it:
/// the lease TTLs here are one or two seconds).
async fn maintain_until(fx: &Fixture, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        keyward_vault::api::release::maintain(&fx.state)
            .await
            .unwrap();
        if done() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not done by the deadline"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_expire_failed_revocations_are_listed_and_sessions_expire() {
    use keyward_tests::postgres::Postgres;

    let fx = Fixture::start().await;
    let pg = Postgres::start().unwrap();
    let (status, body) = fx
        .admin(
            "PUT",
            "/v1/engines/database/postgres/short",
            Some(&json!({
                "connection_url": pg.admin_url(),
                "creation_statements": [
                    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';"
                ],
                "default_ttl": 1,
                "max_ttl": 600,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    fx.put_policy(
        "db",
        r#"permit (principal is Keyward::Workload, action, resource is Keyward::Secret)
           when { resource.path like "database/postgres/*" };"#,
    )
    .await;
    let mut cel = Vec::new();
    let workload = fx.launch(&mut cel, "agent-1", &fx.model_digest);
    let evidence = fx.evidence(&workload, &cel).await;
    let (status, session) = fx.attest(&evidence).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let token = session["token"].as_str().unwrap().to_owned();
    let path = "/v1/secrets/database/postgres/short";

    // A one-second lease: the worker drops its role once it expires.
    let (status, db) = fx.session_call(&workload, &token, path, &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{db}");
    let user = db["username"].as_str().unwrap().to_owned();
    let password = db["password"].as_str().unwrap().to_owned();
    pg.psql(&user, &password, "SELECT 1;").unwrap();
    let lease_id = db["lease_id"].as_str().unwrap().to_owned();
    let lookup = json!({ "lease_id": lease_id });
    maintain_until(&fx, || pg.psql(&user, &password, "SELECT 1;").is_err()).await;
    let (status, _) = fx
        .admin("POST", "/v1/sys/leases/lookup", Some(&lookup))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The database goes away: revocation fails, is kept, listed, retried.
    let (status, db) = fx
        .session_call(&workload, &token, path, &json!({"ttl": 1}))
        .await;
    assert_eq!(status, StatusCode::OK, "{db}");
    let lease_id = db["lease_id"].as_str().unwrap().to_owned();
    drop(pg);
    let (status, counts) = fx
        .admin(
            "POST",
            "/v1/sys/leases/revoke",
            Some(&json!({ "lease_id": lease_id })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{counts}");
    assert_eq!(counts, json!({"revoked": 0, "retrying": 1}));
    let (status, list) = fx.admin("GET", "/v1/sys/leases/irrevocable", None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list[0]["id"], lease_id.as_str());
    assert_eq!(list[0]["revoking"], true);
    assert!(list[0]["revoke_attempts"].as_u64().unwrap() >= 1, "{list}");
    assert!(
        list[0]["last_error"].as_str().unwrap().contains("connect"),
        "{list}"
    );
    // The worker retries (attempts grow) and never drops it silently.
    let attempts = list[0]["revoke_attempts"].as_u64().unwrap();
    let state = fx.state.clone();
    let lease = lease_id.clone();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        keyward_vault::api::release::maintain(&state).await.unwrap();
        let (record, _) = keyward_vault::release::lease::load(state.storage.as_ref(), &lease)
            .await
            .unwrap()
            .expect("a lease whose revocation failed is kept");
        if u64::from(record.revoke_attempts) > attempts {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no retry");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // Row 16 (after expiry): a session past its TTL is refused.
    let mut settings = fx.state.release.settings();
    settings.session_ttl_ms = 1;
    fx.state.release.configure(settings);
    let evidence = fx.evidence(&workload, &cel).await;
    let (status, session) = fx.attest(&evidence).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let short = session["token"].as_str().unwrap().to_owned();
    let expires = session["session"]["expires_at_ms"].as_u64().unwrap();
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        <= expires
    {
        tokio::task::yield_now().await;
    }
    let (status, body) = fx
        .session_call(&workload, &short, "/v1/secrets/kv/app/db", &json!({}))
        .await;
    assert_denied(status, &body);
    assert!(
        fx.last_reason("secret.release")
            .starts_with("denied at session: session "),
        "{}",
        fx.last_reason("secret.release")
    );
}

/// Entries of `keyspace` in the fixture's store.
async fn stored(fx: &Fixture, keyspace: keyward_vault::storage::Keyspace) -> usize {
    fx.state
        .storage
        .scan(keyspace, keyward_vault::storage::KeyRange::All, 10_000)
        .await
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_prunes_stored_sessions_that_expired_unused() {
    use keyward_vault::storage::Keyspace;

    let fx = Fixture::start().await;
    fx.put_policy("app", &policy_for(&fx)).await;
    fx.put_kv("app/db", json!({"password": "hunter2"})).await;
    let mut cel = Vec::new();
    let workload = fx.launch(&mut cel, "agent-1", &fx.model_digest);

    // One session that lives (the default five minutes) ...
    let evidence = fx.evidence(&workload, &cel).await;
    let (status, session) = fx.attest(&evidence).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let live = session["token"].as_str().unwrap().to_owned();
    // ... and two that expire at once and are never used.
    let mut settings = fx.state.release.settings();
    let default_ttl = settings.session_ttl_ms;
    settings.session_ttl_ms = 1;
    fx.state.release.configure(settings);
    let mut latest_expiry = 0;
    for _ in 0..2 {
        let evidence = fx.evidence(&workload, &cel).await;
        let (status, session) = fx.attest(&evidence).await;
        assert_eq!(status, StatusCode::OK, "{session}");
        latest_expiry = session["session"]["expires_at_ms"].as_u64().unwrap();
    }
    settings.session_ttl_ms = default_ttl;
    fx.state.release.configure(settings);
    assert_eq!(stored(&fx, Keyspace::Sessions).await, 3);
    assert_eq!(stored(&fx, Keyspace::SessionExpiry).await, 3);

    // The worker's pass deletes the expired ones, record and index entry,
    // once their expiry has passed; the live one stays.
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        <= latest_expiry
    {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    keyward_vault::api::release::maintain(&fx.state)
        .await
        .unwrap();
    assert_eq!(stored(&fx, Keyspace::Sessions).await, 1);
    assert_eq!(stored(&fx, Keyspace::SessionExpiry).await, 1);
    let (status, body) = fx
        .session_call(&workload, &live, "/v1/secrets/kv/app/db", &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
