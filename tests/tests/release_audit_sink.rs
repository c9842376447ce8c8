//! Attack-table row 21, end to end: the audit sink is unavailable, so the
//! release path fails closed (503) and releases nothing; once the sink is
//! back (space freed, vault restarted) the same workload gets its secret.
//!
//! How the sink fails: the vault is restarted (in process, on the same
//! store, [`Fixture::restart_with_audit`]) with an audit log built through
//! the public [`AuditLog::with_writer`] over [`FillingDisk`], a writer that
//! appends to the real audit file exactly as the production `FileWriter`
//! does (`write_all` of each batch, then `sync_data`) until its switch is
//! thrown, and from then on writes to `/dev/full`, where the kernel fails
//! every write with `ENOSPC`. So the failure is a real I/O error from a
//! real file descriptor reaching the production chain code, which poisons
//! the log; nothing but the writer's destination is substituted. Mounting
//! a small full tmpfs would need privileges and leave a mount behind on
//! failure; making the file read-only or replacing it with a directory
//! changes nothing for the descriptor the vault already holds open, so it
//! would test nothing.
//!
//! Recovery is a restart with [`AuditLog::open`] on the same file: a
//! poisoned log stays poisoned (the tests pin that too), and opening the
//! file verifies the whole chain, which shows the failed writes left no
//! partial line behind.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::as_conversions
)]

mod common;
use common::*;

use std::fs::File;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use keyward_tests::postgres::Postgres;
use keyward_vault::audit::{AuditLog, AuditWriter, verify};
use serde_json::{Value, json};

const AUDIT_TIMEOUT: Duration = Duration::from_secs(2);
const KV_VALUE: &str = "hunter2-audit-sink";
const DB_ROLE_PATH: &str = "/v1/secrets/database/postgres/readonly";
const KV_PATH: &str = "/v1/secrets/kv/app/db";

/// A disk that fills up: batches go to the audit file (as `FileWriter`:
/// `write_all`, `sync_data`) until `full` is set, then to `/dev/full`.
struct FillingDisk {
    file: File,
    device: File,
    full: Arc<AtomicBool>,
}

impl FillingDisk {
    fn target(&mut self) -> &mut File {
        if self.full.load(Ordering::SeqCst) {
            &mut self.device
        } else {
            &mut self.file
        }
    }
}

impl AuditWriter for FillingDisk {
    fn append(&mut self, lines: &[u8]) -> std::io::Result<()> {
        self.target().write_all(lines)
    }

    fn sync(&mut self) -> std::io::Result<()> {
        self.target().sync_data()
    }
}

/// Restarts the fixture's vault with a [`FillingDisk`] sink continuing the
/// chain of the audit file; returns its switch (set to `full`).
async fn restart_on_filling_disk(fx: &mut Fixture, full: bool) -> Arc<AtomicBool> {
    let head = verify(File::open(&fx.audit_path).unwrap()).unwrap();
    let switch = Arc::new(AtomicBool::new(full));
    let sink = FillingDisk {
        file: File::options().append(true).open(&fx.audit_path).unwrap(),
        device: File::options().write(true).open("/dev/full").unwrap(),
        full: Arc::clone(&switch),
    };
    let audit = AuditLog::with_writer(Box::new(sink), head.last_hash, head.last_seq, AUDIT_TIMEOUT)
        .unwrap();
    fx.restart_with_audit(audit).await;
    switch
}

fn assert_audit_unavailable(status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(
        body["errors"][0], "audit log unavailable; request refused",
        "{body}"
    );
}

/// Roles the creation statements recorded, and roles PostgreSQL still has.
fn created_and_live_roles(pg: &Postgres) -> (Vec<String>, Vec<String>) {
    let lines = |out: String| -> Vec<String> {
        out.lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let created = lines(
        pg.admin_psql("SELECT name FROM created_roles ORDER BY name;")
            .unwrap(),
    );
    let live = lines(
        pg.admin_psql("SELECT rolname FROM pg_roles WHERE rolname LIKE 'kw%' ORDER BY rolname;")
            .unwrap(),
    );
    (created, live)
}

fn count(fx: &Fixture, operation: &str, outcome: &str) -> usize {
    fx.audit(operation)
        .iter()
        .filter(|r| r["outcome"] == outcome)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_audit_sink_fails_closed_and_recovers_after_restart() {
    let mut fx = Fixture::start().await;
    let pg = Postgres::start().unwrap();
    // Every role the engine creates is also written down by its creation
    // statements (same transaction), so a role that was made and then
    // dropped is visible as "recorded but not live".
    pg.admin_psql(
        "CREATE TABLE orders (id int); INSERT INTO orders VALUES (42); \
         CREATE TABLE created_roles (name text);",
    )
    .unwrap();
    let (status, body) = fx
        .admin(
            "PUT",
            "/v1/engines/database/postgres/readonly",
            Some(&json!({
                "connection_url": pg.admin_url(),
                "creation_statements": [
                    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
                    "GRANT SELECT ON orders TO \"{{name}}\";",
                    "INSERT INTO created_roles VALUES ('{{name}}');"
                ],
                "default_ttl": 120,
                "max_ttl": 600,
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    fx.put_kv("app/db", json!({"password": KV_VALUE})).await;
    fx.put_policy(
        "app",
        &format!(
            r#"permit (principal is Keyward::Workload, action, resource is Keyward::Secret)
            when {{ (resource.path like "kv/app/*" || resource.path == "database/postgres/readonly")
                    && principal.image_digest == "{}" }};"#,
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

    // The writer works while the disk has room: the session survives the
    // restart and gets its kv secret, recorded through this sink.
    let full = restart_on_filling_disk(&mut fx, false).await;
    let (status, secret) = fx
        .session_call(&workload, &token, KV_PATH, &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{secret}");
    assert_eq!(secret["data"]["password"], KV_VALUE);
    assert_eq!(count(&fx, "secret.release", "success"), 1);

    // The disk fills. Attestation: 503, no session token.
    full.store(true, Ordering::SeqCst);
    let failed_evidence = fx.evidence(&workload, &cel).await;
    let (status, body) = fx.attest(&failed_evidence).await;
    assert_audit_unavailable(status, &body);
    assert!(body.get("token").is_none(), "{body}");
    assert!(!body.to_string().contains("kws."), "{body}");
    assert_eq!(fx.state.audit.failures(), 1);
    assert_eq!(count(&fx, "attest", "success"), 1);

    // Database release on a fresh full-disk restart (the log above is
    // poisoned; a new one makes the release's own write hit ENOSPC): 503,
    // and the role created for it was dropped again.
    restart_on_filling_disk(&mut fx, true).await;
    let (status, body) = fx
        .session_call(&workload, &token, DB_ROLE_PATH, &json!({}))
        .await;
    assert_audit_unavailable(status, &body);
    assert!(
        body.get("password").is_none() && body.get("username").is_none(),
        "{body}"
    );
    assert_eq!(fx.state.audit.failures(), 1);
    let (created, live) = created_and_live_roles(&pg);
    assert_eq!(
        created.len(),
        1,
        "the engine did not create a role: {created:?}"
    );
    assert!(
        live.is_empty(),
        "role left behind after the failed audit write: {live:?}"
    );
    let leftover = created.first().unwrap();

    // kv release on a fresh full-disk restart: 503 without the value.
    let full = restart_on_filling_disk(&mut fx, true).await;
    let (status, body) = fx
        .session_call(&workload, &token, KV_PATH, &json!({}))
        .await;
    assert_audit_unavailable(status, &body);
    assert!(!body.to_string().contains(KV_VALUE), "{body}");
    // Space comes back, but a log that failed a write stays poisoned (a
    // partial line may sit at its end) until the vault restarts.
    full.store(false, Ordering::SeqCst);
    let (status, body) = fx
        .session_call(&workload, &token, KV_PATH, &json!({}))
        .await;
    assert_audit_unavailable(status, &body);
    assert!(!body.to_string().contains(KV_VALUE), "{body}");
    assert_eq!(fx.state.audit.failures(), 2);
    // Nothing about the failed requests reached the file.
    assert_eq!(count(&fx, "secret.release", "success"), 1);
    assert_eq!(count(&fx, "attest", "success"), 1);

    // The sink recovers: restart on the production file sink. Opening
    // verifies the whole chain (no partial line was left behind).
    let reopened = AuditLog::open(&fx.audit_path, AUDIT_TIMEOUT).unwrap();
    assert!(reopened.recovered().is_none());
    fx.restart_with_audit(reopened).await;
    let (status, secret) = fx
        .session_call(&workload, &token, KV_PATH, &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{secret}");
    assert_eq!(secret["data"]["password"], KV_VALUE);
    let (status, db) = fx
        .session_call(&workload, &token, DB_ROLE_PATH, &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{db}");
    let username = db["username"].as_str().unwrap();
    let password = db["password"].as_str().unwrap();
    assert_ne!(username, leftover.as_str());
    let out = pg
        .psql(username, password, "SELECT id FROM orders;")
        .unwrap();
    assert_eq!(out, "42");
    let (created, live) = created_and_live_roles(&pg);
    assert_eq!(created.len(), 2, "{created:?}");
    assert_eq!(live, vec![username.to_owned()]);
    assert_eq!(count(&fx, "secret.release", "success"), 3);
    let last = fx.audit("secret.release").pop().unwrap();
    assert!(!last.to_string().contains(password), "{last}");

    // The evidence whose attestation failed cannot be turned into a
    // session now: its nonce was used.
    let (status, body) = fx.attest(&failed_evidence).await;
    assert_denied(status, &body);
    assert_eq!(
        fx.last_reason("attest"),
        "denied at nonce: nonce already used"
    );
    // A fresh attestation of the same workload succeeds.
    let evidence = fx.evidence(&workload, &cel).await;
    let (status, body) = fx.attest(&evidence).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(count(&fx, "attest", "success"), 2);

    verify(File::open(&fx.audit_path).unwrap()).unwrap();
}
