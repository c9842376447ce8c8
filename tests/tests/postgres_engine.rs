//! `keyward_vault::secrets::database` against a real PostgreSQL (Debian's
//! server, started per test by `keyward_tests::postgres`), checked with the
//! real `psql` client: a credential logs in and reads what its grant allows,
//! stops logging in once revoked, has its open session ended by the revoke,
//! and a `VALID UNTIL` in the past keeps it out.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::{SystemTime, UNIX_EPOCH};

use keyward_tests::postgres::{ADMIN_USER, Postgres};
use keyward_vault::secrets::database::{
    DEFAULT_CREATION_STATEMENT, DatabaseError, PostgresEngine, PostgresSettings, SettingsError,
    Step, Zeroizing,
};

const GRANT_SELECT: &str = "GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{{name}}\";";

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn settings(url: String, creation: &[&str]) -> PostgresSettings {
    PostgresSettings {
        connection_url: Zeroizing::new(url),
        creation_statements: creation.iter().map(|s| (*s).to_owned()).collect(),
        revocation_statements: vec![
            "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM \"{{name}}\";".to_owned(),
        ],
        username_prefix: "kw_".to_owned(),
        connect_timeout_secs: 10,
    }
}

fn engine(pg: &Postgres) -> PostgresEngine {
    PostgresEngine::new(settings(
        pg.admin_url(),
        &[DEFAULT_CREATION_STATEMENT, GRANT_SELECT],
    ))
    .unwrap()
}

/// A table the credentials may read.
fn seed(pg: &Postgres) {
    pg.admin_psql(
        "CREATE TABLE reports (id int PRIMARY KEY, body text); \
         INSERT INTO reports VALUES (1, 'quarterly numbers');",
    )
    .unwrap();
}

fn is_login_refused(error: &std::io::Error, user: &str) -> bool {
    error.to_string().contains(&format!(
        "password authentication failed for user \"{user}\""
    ))
}

#[tokio::test]
async fn credential_reads_with_its_grant_and_is_gone_after_revoke() {
    let pg = Postgres::start().unwrap();
    seed(&pg);
    let engine = engine(&pg);
    let valid_until = now_unix() + 3_600;
    let credential = engine
        .create_credential("Lease/A-1", valid_until)
        .await
        .unwrap();
    let user = credential.username.clone();
    let password = credential.expose_password();

    // Name: prefix, sanitized tag, `_`, 12 random [a-z0-9].
    let suffix = user.strip_prefix("kw_lease_a_1_").unwrap();
    assert_eq!(suffix.len(), 12);
    assert!(
        suffix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    );
    assert_eq!(password.len(), 32);
    assert!(password.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert!(!format!("{credential:?}").contains(password));

    // Logs in with the real client and reads what the grant allows...
    assert_eq!(
        pg.psql(&user, password, "SELECT body FROM reports WHERE id = 1")
            .unwrap(),
        "quarterly numbers"
    );
    // ... and nothing more.
    let write = pg
        .psql(&user, password, "INSERT INTO reports VALUES (2, 'forged')")
        .unwrap_err();
    assert!(
        write
            .to_string()
            .contains("permission denied for table reports"),
        "{write}"
    );
    // A wrong password is refused (the control for the checks below).
    let wrong = pg.psql(&user, "not-the-password", "SELECT 1").unwrap_err();
    assert!(is_login_refused(&wrong, &user), "{wrong}");

    // PostgreSQL reads our hand-formatted expiration as the same instant as
    // its own `to_timestamp`.
    let same_instant = pg
        .admin_psql(&format!(
            "SELECT rolvaliduntil = to_timestamp({valid_until}) FROM pg_roles WHERE rolname = '{user}'"
        ))
        .unwrap();
    assert_eq!(same_instant, "t");
    // Only a SCRAM verifier reached the server, never the clear password.
    let stored = pg
        .admin_psql(&format!(
            "SELECT rolpassword FROM pg_authid WHERE rolname = '{user}'"
        ))
        .unwrap();
    assert!(stored.starts_with("SCRAM-SHA-256$4096:"), "{stored}");
    assert!(!pg.log().contains(password));

    assert!(engine.role_exists(&user).await.unwrap());
    engine.revoke(&user).await.unwrap();
    assert!(!engine.role_exists(&user).await.unwrap());
    let after = pg
        .psql(&user, password, "SELECT body FROM reports WHERE id = 1")
        .unwrap_err();
    assert!(is_login_refused(&after, &user), "{after}");
    // Revoking again is fine: revocation is retried by the lease layer.
    engine.revoke(&user).await.unwrap();
}

#[tokio::test]
async fn revoke_ends_open_sessions_and_keeps_owned_objects() {
    let pg = Postgres::start().unwrap();
    seed(&pg);
    let engine = engine(&pg);
    let credential = engine
        .create_credential("session", now_unix() + 3_600)
        .await
        .unwrap();
    let user = credential.username.clone();
    // The role owns a table, which would block a bare DROP ROLE.
    pg.admin_psql(&format!("GRANT CREATE ON SCHEMA public TO \"{user}\""))
        .unwrap();
    pg.psql(
        &user,
        credential.expose_password(),
        "CREATE TABLE notes (line text)",
    )
    .unwrap();

    let mut session = pg
        .psql_session(&user, credential.expose_password())
        .unwrap();
    assert_eq!(
        session
            .query("SELECT body FROM reports WHERE id = 1;")
            .unwrap(),
        "quarterly numbers"
    );

    engine.revoke(&user).await.unwrap();

    let ended = session.query("SELECT 1;").unwrap_err();
    assert!(
        ended
            .to_string()
            .contains("terminating connection due to administrator command"),
        "{ended}"
    );
    assert!(!engine.role_exists(&user).await.unwrap());
    // REASSIGN OWNED handed the table to the admin instead of losing it.
    assert_eq!(
        pg.admin_psql("SELECT tableowner FROM pg_tables WHERE tablename = 'notes'")
            .unwrap(),
        ADMIN_USER
    );
    let sessions = pg
        .admin_psql(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = '{user}'"
        ))
        .unwrap();
    assert_eq!(sessions, "0");
}

#[tokio::test]
async fn expired_credential_is_refused_until_extended_and_credentials_are_distinct() {
    let pg = Postgres::start().unwrap();
    seed(&pg);
    let engine = engine(&pg);
    let now = now_unix();
    let first = engine
        .create_credential("same-tag", now + 600)
        .await
        .unwrap();
    let second = engine
        .create_credential("same-tag", now + 600)
        .await
        .unwrap();
    assert_ne!(first.username, second.username);
    assert_ne!(first.expose_password(), second.expose_password());
    for credential in [&first, &second] {
        assert_eq!(
            pg.psql(
                &credential.username,
                credential.expose_password(),
                "SELECT current_user"
            )
            .unwrap(),
            credential.username
        );
    }
    // One credential's password does not open the other.
    let crossed = pg
        .psql(&first.username, second.expose_password(), "SELECT 1")
        .unwrap_err();
    assert!(is_login_refused(&crossed, &first.username), "{crossed}");

    let expired = engine.create_credential("expired", now - 60).await.unwrap();
    let refused = pg
        .psql(&expired.username, expired.expose_password(), "SELECT 1")
        .unwrap_err();
    assert!(is_login_refused(&refused, &expired.username), "{refused}");
    // The role exists: it is the expiry that keeps it out.
    assert!(engine.role_exists(&expired.username).await.unwrap());

    // Renewal moves VALID UNTIL: the same password now logs in...
    engine.extend(&expired.username, now + 600).await.unwrap();
    assert_eq!(
        pg.psql(&expired.username, expired.expose_password(), "SELECT 1")
            .unwrap(),
        "1"
    );
    // ... and back into the past keeps it out again.
    engine.extend(&expired.username, now - 60).await.unwrap();
    let again = pg
        .psql(&expired.username, expired.expose_password(), "SELECT 1")
        .unwrap_err();
    assert!(is_login_refused(&again, &expired.username), "{again}");
    // A revoked role cannot be extended.
    engine.revoke(&expired.username).await.unwrap();
    assert!(matches!(
        engine.extend(&expired.username, now + 600).await,
        Err(DatabaseError::UnknownRole)
    ));
}

#[tokio::test]
async fn absent_roles_foreign_names_and_failing_templates() {
    let pg = Postgres::start().unwrap();
    let engine = engine(&pg);

    // Absent role: revoke is Ok, lookup says no.
    engine.revoke("kw_never_made_0123456789ab").await.unwrap();
    assert!(
        !engine
            .role_exists("kw_never_made_0123456789ab")
            .await
            .unwrap()
    );

    // Names the engine could not have made are refused before any SQL.
    for foreign in [
        ADMIN_USER,
        "postgres",
        "kw_X",
        "kw_a\"; DROP ROLE keyward_admin; --",
    ] {
        assert!(
            matches!(
                engine.revoke(foreign).await,
                Err(DatabaseError::InvalidUsername)
            ),
            "{foreign:?}"
        );
    }
    assert_eq!(pg.admin_psql("SELECT current_user").unwrap(), ADMIN_USER);

    // A grant on a table that does not exist fails the whole transaction:
    // the error names the statement, and no role is left behind.
    let broken = PostgresEngine::new(settings(
        pg.admin_url(),
        &[
            DEFAULT_CREATION_STATEMENT,
            "GRANT SELECT ON missing_table TO \"{{name}}\";",
        ],
    ))
    .unwrap();
    let err = broken
        .create_credential("broken", now_unix() + 600)
        .await
        .unwrap_err();
    match &err {
        DatabaseError::Statement {
            step: Step::Creation { index: 1 },
            sqlstate,
            message,
        } => {
            assert_eq!(sqlstate.as_deref(), Some("42P01"));
            assert!(message.contains("missing_table"), "{message}");
        }
        other => panic!("expected a creation statement error, got {other:?}"),
    }
    let text = format!("{err} {err:?}");
    assert!(!text.contains(pg.admin_password()), "{text}");
    assert!(!text.contains("SCRAM-SHA-256$"), "{text}");
    assert_eq!(
        pg.admin_psql("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'kw\\_%'")
            .unwrap(),
        "0"
    );

    // A wrong admin password: a Connect error that does not echo it.
    let wrong_url = pg
        .admin_url()
        .replace(pg.admin_password(), "wrong-admin-password");
    let wrong = PostgresEngine::new(settings(wrong_url, &[DEFAULT_CREATION_STATEMENT])).unwrap();
    match wrong.create_credential("x", now_unix() + 600).await {
        Err(DatabaseError::Connect { message }) => {
            assert!(
                message.contains("password authentication failed"),
                "{message}"
            );
            assert!(!message.contains("wrong-admin-password"), "{message}");
        }
        other => panic!("expected Connect, got {other:?}"),
    }
}

#[test]
fn template_without_name_is_invalid_settings() {
    let url = "postgres://keyward_admin:pw@127.0.0.1:5432/postgres".to_owned();
    let result = PostgresEngine::new(settings(
        url.clone(),
        &["CREATE ROLE fixed_name WITH LOGIN PASSWORD '{{password}}';"],
    ));
    assert!(matches!(
        result,
        Err(DatabaseError::InvalidSettings(
            SettingsError::MissingNamePlaceholder
        ))
    ));
    // The same template with `{{name}}` is accepted.
    PostgresEngine::new(settings(
        url,
        &["CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}';"],
    ))
    .unwrap();
}
