//! `keyward-client` end to end: the fixture's vault served on a real
//! loopback socket, the fixture's swtpm host quoting through the client's
//! `DirectTpm`, PostgreSQL for database credentials. The client runs
//! challenge → quote → evidence → session by itself; these tests only
//! configure the vault and watch what the client reports. Waits are on the
//! client's event stream, bounded by a timeout, never on sleeps.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::as_conversions
)]

mod common;
use common::*;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use keyward_client::{
    Client, ClientError, DirectTpm, EventReceiver, LeaseEvent, LeaseStatus, Quoter, RevokedReason,
    Unreachable,
};
use keyward_tests::postgres::Postgres;
use keyward_vault::secrets::identity::IdentitySettings;
use serde_json::{Value, json};

/// How long any background event may take (leases here live 2 s, sessions 3 s).
const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The next event matching `wanted`, within [`EVENT_TIMEOUT`].
async fn next_event(
    events: &mut EventReceiver<LeaseEvent>,
    wanted: impl Fn(&LeaseEvent) -> bool,
) -> LeaseEvent {
    tokio::time::timeout(EVENT_TIMEOUT, async {
        loop {
            match events.recv().await {
                Ok(event) if wanted(&event) => return event,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event stream ended: {e}"),
            }
        }
    })
    .await
    .expect("the event arrived before the timeout")
}

fn write_cel(fx: &Fixture, cel: &[u8]) -> PathBuf {
    let path = fx.dir.path().join("workload.cel");
    std::fs::write(&path, cel).unwrap();
    path
}

/// A client for the workload whose key is `pkcs8`, quoting with `quoter`.
fn client_for(
    fx: &Fixture,
    url: &str,
    pkcs8: &[u8],
    cel: &PathBuf,
    quoter: &Arc<DirectTpm>,
) -> Client {
    Client::builder()
        .vault(url)
        .instance_key_pkcs8(pkcs8)
        .quoter(Arc::clone(quoter) as Arc<dyn Quoter>)
        .host_id(fx.host_id.clone())
        .workload_log(cel)
        // The fixture's host is under a golden-PCR policy (swtpm has no
        // firmware log).
        .without_boot_log()
        .build()
        .unwrap()
}

fn policy(fx: &Fixture) -> String {
    format!(
        r#"permit (principal is Keyward::Workload, action, resource is Keyward::Secret)
        when {{ (resource.path like "kv/app/*" || resource.path == "identity/token"
                 || resource.path == "database/postgres/readonly")
               && principal.image_digest == "{}" && principal.model_signer == "key:model-release" }};"#,
        fx.image_digest
    )
}

fn attest_successes(fx: &Fixture) -> usize {
    fx.audit("attest")
        .iter()
        .filter(|r| r["outcome"] == "success")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_releases_renews_and_sees_revocation() {
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
    // Two-second leases: the client renews them at about 1.3 s.
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
                "default_ttl": 2,
                "max_ttl": 600,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    fx.put_policy("app", &policy(&fx)).await;
    fx.put_kv("app/db", json!({"password": "hunter2", "port": 5432}))
        .await;

    let mut cel = Vec::new();
    let pkcs8 = fx.launch_pkcs8(&mut cel, "agent-1");
    let cel_path = write_cel(&fx, &cel);
    let url = serve(&fx.state).await;
    let quoter = Arc::new(DirectTpm::new(fx.sim.open().unwrap(), fx.ak.clone()));
    let client = client_for(&fx, &url, &pkcs8, &cel_path, &quoter);
    let mut events = client.watch();

    // kv: no lease.
    let kv = client.kv("app/db").await.unwrap();
    assert_eq!(kv.path(), "kv/app/db");
    assert_eq!(kv.version(), 1);
    assert_eq!(kv.keys().collect::<Vec<_>>(), ["password", "port"]);
    assert_eq!(kv.expose_secret("password"), Some("hunter2"));
    assert_eq!(kv.expose_secret("port"), Some("5432"));
    let debug = format!("{kv:?}");
    assert!(
        !debug.contains("hunter2") && debug.contains("[redacted]"),
        "{debug}"
    );
    assert_eq!(attest_successes(&fx), 1);

    // An identity token that verifies against the JWKS served on the socket.
    let token = client.identity_token("sts.example.com").await.unwrap();
    assert!(!token.renewable());
    let jwks = reqwest::get(format!("{url}/v1/identity/.well-known/jwks.json"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let jwks: Value = serde_json::from_slice(&jwks).unwrap();
    let claims = verify_jwt(&jwks, token.secret().expose_secret()).expect("token verifies");
    assert_eq!(claims["aud"], "sts.example.com");
    assert_eq!(claims["keyward"]["host_id"], fx.host_id.as_str());
    assert_eq!(claims["exp"].as_u64(), Some(token.secret().expires_at()));
    // The same token with its audience changed does not verify.
    let parts: Vec<&str> = token.secret().expose_secret().split('.').collect();
    let mut forged_claims = claims.clone();
    forged_claims["aud"] = json!("evil.example.com");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            forged_claims.to_string()
        ),
        parts[2]
    );
    assert!(verify_jwt(&jwks, &forged).is_none());
    let debug = format!("{token:?}");
    assert!(!debug.contains(token.secret().expose_secret()), "{debug}");

    // A PostgreSQL role, usable with psql.
    let db = client.release("database/postgres/readonly").await.unwrap();
    assert!(db.renewable());
    assert!(
        db.id().starts_with("database/postgres/readonly/"),
        "{}",
        db.id()
    );
    let user = db.secret().username().to_owned();
    let password = db.secret().expose_password().to_owned();
    let out = pg.psql(&user, &password, "SELECT id FROM orders;").unwrap();
    assert!(out.contains("42"), "{out}");
    let debug = format!("{db:?}");
    assert!(
        !debug.contains(&password) && debug.contains("[redacted]"),
        "{debug}"
    );
    // One session served all three releases.
    assert_eq!(attest_successes(&fx), 1);

    // Background renewal.
    let first_expiry = db.expires_at_ms();
    let id = db.id().to_owned();
    let renewed = next_event(
        &mut events,
        |e| matches!(e, LeaseEvent::Renewed { lease_id, .. } if *lease_id == id),
    )
    .await;
    let LeaseEvent::Renewed { expires_at_ms, .. } = renewed else {
        unreachable!()
    };
    assert!(
        expires_at_ms > first_expiry,
        "{expires_at_ms} <= {first_expiry}"
    );
    assert!(db.expires_at_ms() >= expires_at_ms);
    let audit = fx.audit("lease.renew");
    assert!(audit.iter().any(|r| r["outcome"] == "success"), "{audit:?}");

    // Revoke the host: the next renewal is refused, the client reports the
    // lease revoked, and the next release is denied.
    let (status, body) = fx
        .admin("POST", &format!("/v1/hosts/{}/revoke", fx.host_id), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let revoked = next_event(
        &mut events,
        |e| matches!(e, LeaseEvent::Revoked { lease_id, .. } if *lease_id == id),
    )
    .await;
    let LeaseEvent::Revoked { reason, .. } = revoked else {
        unreachable!()
    };
    assert!(
        matches!(
            reason,
            RevokedReason::RenewalDenied {
                request_id: Some(_)
            }
        ),
        "{reason:?}"
    );
    assert_eq!(db.status(), LeaseStatus::Revoked);
    assert!(pg.psql(&user, &password, "SELECT 1;").is_err());
    match client.kv("app/db").await {
        Err(ClientError::Denied {
            request_id: Some(request_id),
        }) => {
            let records = fx.audit("secret.release");
            let record = records
                .iter()
                .find(|r| r["request_id"] == request_id.as_str())
                .expect("the denial's audit record");
            assert_eq!(record["outcome"], "denied");
        }
        other => panic!("expected Denied, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reattests_before_its_session_expires() {
    let fx = Fixture::start().await;
    fx.put_policy("app", &policy(&fx)).await;
    fx.put_kv("app/db", json!({"password": "hunter2"})).await;
    // Three-second sessions: the client attests again at about 2 s.
    let mut settings = fx.state.release.settings();
    settings.session_ttl_ms = 3_000;
    fx.state.release.configure(settings);

    let mut cel = Vec::new();
    let pkcs8 = fx.launch_pkcs8(&mut cel, "agent-1");
    let cel_path = write_cel(&fx, &cel);
    let url = serve(&fx.state).await;
    let quoter = Arc::new(DirectTpm::new(fx.sim.open().unwrap(), fx.ak.clone()));
    let client = client_for(&fx, &url, &pkcs8, &cel_path, &quoter);
    let mut events = client.watch();

    let first = client.kv("app/db").await.unwrap();
    assert_eq!(first.expose_secret("password"), Some("hunter2"));
    let first_expiry = client.session_expires_at_ms().await.unwrap();
    assert_eq!(attest_successes(&fx), 1);

    let event = next_event(&mut events, |e| matches!(e, LeaseEvent::Reattested { .. })).await;
    let LeaseEvent::Reattested {
        session_expires_at_ms,
    } = event
    else {
        unreachable!()
    };
    assert!(session_expires_at_ms > first_expiry);
    // The new session was made before the old one expired.
    let records = fx.audit("attest");
    let second = records
        .iter()
        .filter(|r| r["outcome"] == "success")
        .nth(1)
        .expect("a second attestation");
    assert!(
        second["time_ms"].as_u64().unwrap() < first_expiry,
        "{second}"
    );

    // Releases keep working on the new session, and keep working past the
    // first session's end (after the next re-attestation, at about 4 s).
    let again = client.kv("app/db").await.unwrap();
    assert_eq!(again.expose_secret("password"), Some("hunter2"));
    next_event(&mut events, |e| {
        matches!(e, LeaseEvent::Reattested { session_expires_at_ms: t } if *t > session_expires_at_ms)
    })
    .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(now > first_expiry, "{now} <= {first_expiry}");
    let later = client.kv("app/db").await.unwrap();
    assert_eq!(later.expose_secret("password"), Some("hunter2"));
    // Each attestation is a fresh quote: no session was used past its end.
    let denials = fx
        .audit("secret.release")
        .iter()
        .filter(|r| r["outcome"] != "success")
        .count();
    assert_eq!(denials, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_are_typed() {
    let fx = Fixture::start().await;
    fx.put_policy("app", &policy(&fx)).await;
    let mut cel = Vec::new();
    let pkcs8 = fx.launch_pkcs8(&mut cel, "agent-1");
    let cel_path = write_cel(&fx, &cel);
    let url = serve(&fx.state).await;
    let quoter = Arc::new(DirectTpm::new(fx.sim.open().unwrap(), fx.ak.clone()));

    // Nothing listens on the port: Unreachable.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let nowhere = client_for(&fx, &format!("http://{closed}"), &pkcs8, &cel_path, &quoter);
    match nowhere.kv("app/db").await {
        Err(ClientError::Unreachable {
            cause: Unreachable::Transport(_),
        }) => {}
        other => panic!("expected Unreachable, got {other:?}"),
    }

    // The good configuration attests (control for the cases below).
    let good = client_for(&fx, &url, &pkcs8, &cel_path, &quoter);
    good.attest().await.unwrap();

    // A key that no launch record names: the vault denies at the workload
    // log (403, its reason only in the audit log).
    let stranger =
        ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let unlaunched = client_for(&fx, &url, stranger.as_ref(), &cel_path, &quoter);
    match unlaunched.kv("app/db").await {
        Err(ClientError::Denied {
            request_id: Some(_),
        }) => {}
        other => panic!("expected Denied, got {other:?}"),
    }
    assert!(
        fx.last_reason("attest")
            .starts_with("denied at workload_log: "),
        "{}",
        fx.last_reason("attest")
    );

    // A workload log that does not parse: malformed evidence (400).
    let garbage = fx.dir.path().join("garbage.cel");
    std::fs::write(&garbage, b"\x00\x01not a CEL").unwrap();
    let malformed = client_for(&fx, &url, &pkcs8, &garbage, &quoter);
    match malformed.attest().await {
        Err(ClientError::EvidenceRejected { message }) => {
            assert!(message.contains("workload_log"), "{message}");
        }
        other => panic!("expected EvidenceRejected, got {other:?}"),
    }

    // Caller misuse never reaches the vault.
    match good.kv("../sys/init").await {
        Err(ClientError::InvalidArgument { .. }) => {}
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    match good.release("kv/app/db").await {
        Err(ClientError::InvalidArgument { .. }) => {}
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    let no_key = Client::builder()
        .vault(&url)
        .quoter(Arc::clone(&quoter) as Arc<dyn Quoter>)
        .host_id(fx.host_id.clone())
        .workload_log(&cel_path)
        .build();
    assert!(
        matches!(no_key, Err(ClientError::InvalidConfig { .. })),
        "{no_key:?}"
    );
    let bad_key = Client::builder()
        .vault(&url)
        .instance_key_pkcs8(b"not a key")
        .quoter(Arc::clone(&quoter) as Arc<dyn Quoter>)
        .host_id(fx.host_id.clone())
        .workload_log(&cel_path)
        .build();
    assert!(
        matches!(bad_key, Err(ClientError::InvalidConfig { .. })),
        "{bad_key:?}"
    );

    // The host state directory `keyward host enroll` leaves (host.json with
    // the vault URL, ak.blob), the workload log at its default place, and the
    // TPM opened by the client itself (after every other connection closed:
    // swtpm serves one client at a time).
    drop((nowhere, good, unlaunched, malformed, quoter));
    let state_dir = fx.dir.path().join("host-state");
    std::fs::create_dir_all(&state_dir).unwrap();
    std::fs::write(
        state_dir.join("host.json"),
        json!({"host_id": fx.host_id, "vault": url, "ek": "rsa"}).to_string(),
    )
    .unwrap();
    fx.ak.save(&state_dir.join("ak.blob")).unwrap();
    std::fs::write(state_dir.join("workload.cel"), &cel).unwrap();
    let from_state = Client::builder()
        .instance_key_pkcs8(&pkcs8)
        .host_state_dir(&state_dir)
        .tpm(fx.sim.tcti())
        .without_boot_log()
        .build()
        .unwrap();
    from_state.attest().await.unwrap();
    let debug = format!("{from_state:?}");
    assert!(debug.contains(&fx.host_id), "{debug}");
    // A state directory without host.json is a configuration error.
    let empty = fx.dir.path().join("no-state");
    std::fs::create_dir_all(&empty).unwrap();
    let missing = Client::builder()
        .instance_key_pkcs8(&pkcs8)
        .host_state_dir(&empty)
        .build();
    assert!(
        matches!(&missing, Err(ClientError::File { path, .. }) if path.ends_with("host.json")),
        "{missing:?}"
    );
}
