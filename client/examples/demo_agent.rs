//! The demo's agent (`scripts/demo.sh`): started by `keyward launch`, it
//! attests with the host's TPM and then
//! 1. reads the kv secret `demo/app`;
//! 2. gets a workload identity token for `DEMO_AUDIENCE` and writes it to
//!    `$DEMO_OUT/identity.jwt` (0600) for a downstream service to verify
//!    against the vault's JWKS;
//! 3. gets a PostgreSQL credential (`database/postgres/readonly`) and runs
//!    a query with it on `127.0.0.1:$DEMO_PG_PORT`;
//! 4. with `--hold`, keeps its leases renewed and waits (at most
//!    `DEMO_HOLD_SECS`, default 300) until the vault revokes the database
//!    lease; then checks that its database connection was cut, that the
//!    credential no longer logs in, and that the next release is denied.
//!    It exits non-zero if any of that does not happen.
//!
//! Everything about the vault, the TPM and the instance key comes from the
//! environment `keyward launch` sets ([`ClientBuilder::from_launch_env`]).
//! Secret values are never printed whole.
//!
//! [`ClientBuilder::from_launch_env`]: keyward_client::ClientBuilder::from_launch_env

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use keyward_client::{Client, ClientError, LeaseEvent};
use tokio::sync::broadcast::error::RecvError;

type Error = Box<dyn std::error::Error>;

/// The first characters of a secret, enough to recognise it.
fn preview(text: &str) -> String {
    let head: String = text.chars().take(6).collect();
    format!("{head}… ({} chars)", text.chars().count())
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Says one line at once (the demo script watches this output).
fn say(line: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    // Nothing to do about a closed stdout in a demo.
    let _ = writeln!(out, "agent: {line}");
    let _ = out.flush();
}

async fn postgres(
    port: u16,
    user: &str,
    password: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(port)
        .dbname("postgres")
        .user(user)
        .password(password)
        .connect_timeout(Duration::from_secs(10));
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        // Ends when the server closes the connection; queries report it.
        let _ = connection.await;
    });
    Ok(client)
}

async fn count_orders(db: &tokio_postgres::Client) -> Result<i64, tokio_postgres::Error> {
    db.query_one("SELECT count(*) FROM orders", &[])
        .await?
        .try_get(0)
}

fn write_private(path: &PathBuf, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

async fn run(hold: bool) -> Result<(), Error> {
    let client = Client::builder().from_launch_env().build()?;
    let mut events = client.watch();
    let session_until = client.attest().await?;
    say(format_args!(
        "attested: TPM quote, workload log, image and model accepted; session valid for {} s",
        session_until.saturating_sub(now_ms()) / 1000
    ));

    // 1. A static secret.
    let kv = client.kv("demo/app").await?;
    for key in kv.keys() {
        if let Some(value) = kv.expose_secret(key) {
            say(format_args!(
                "kv {} v{}: {key} = {}",
                kv.path(),
                kv.version(),
                preview(value)
            ));
        }
    }

    // 2. A workload identity token, for a service that trusts the JWKS.
    let audience = env("DEMO_AUDIENCE").unwrap_or_else(|| "demo-service".to_owned());
    let token = client.identity_token(&audience).await?;
    say(format_args!(
        "identity token for audience {audience:?}, expires in {} s (lease {})",
        token.secret().expires_at().saturating_sub(now_ms() / 1000),
        token.id()
    ));
    if let Some(out) = env("DEMO_OUT") {
        let path = PathBuf::from(out).join("identity.jwt");
        write_private(&path, token.secret().expose_secret())?;
        say(format_args!(
            "identity token handed over in {}",
            path.display()
        ));
    }

    // 3. A database credential of its own, used at once.
    let port: u16 = env("DEMO_PG_PORT")
        .ok_or("DEMO_PG_PORT is not set")?
        .parse()?;
    let lease = client.release("database/postgres/readonly").await?;
    let user = lease.secret().username().to_owned();
    let db = postgres(port, &user, lease.secret().expose_password()).await?;
    let orders = count_orders(&db).await?;
    say(format_args!(
        "postgres: logged in as {user} (lease {}, {} s), SELECT count(*) FROM orders → {orders}",
        lease.id(),
        lease.expires_at_ms().saturating_sub(now_ms()) / 1000
    ));
    if !hold {
        return Ok(());
    }

    // 4. Keep the leases and wait for the vault to take them away.
    say("holding: leases renew in the background until the vault revokes them");
    let limit = env("DEMO_HOLD_SECS")
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let wait = async {
        loop {
            match events.recv().await {
                Ok(LeaseEvent::Renewed {
                    lease_id,
                    expires_at_ms,
                }) => say(format_args!(
                    "lease renewed: {lease_id} (for {} s more)",
                    expires_at_ms.saturating_sub(now_ms()) / 1000
                )),
                Ok(LeaseEvent::Revoked { lease_id, reason }) if lease_id == lease.id() => {
                    return Ok(reason);
                }
                Ok(other) => say(format_args!("event: {other:?}")),
                Err(RecvError::Lagged(n)) => say(format_args!("missed {n} events")),
                Err(RecvError::Closed) => return Err("the client's event stream ended"),
            }
        }
    };
    let reason = tokio::time::timeout(Duration::from_secs(limit), wait)
        .await
        .map_err(|_| format!("no revocation within {limit} s"))??;
    say(format_args!("lease revoked: {} ({reason:?})", lease.id()));

    match count_orders(&db).await {
        Err(e) => say(format_args!(
            "postgres: the open connection was cut by the vault ({e})"
        )),
        Ok(_) => return Err("postgres: the connection survived the revocation".into()),
    }
    match postgres(port, &user, lease.secret().expose_password()).await {
        Err(e) => say(format_args!(
            "postgres: the credential no longer logs in ({e})"
        )),
        Ok(_) => return Err("postgres: the revoked credential still logs in".into()),
    }
    match client.kv("demo/app").await {
        Err(ClientError::Denied { request_id }) => say(format_args!(
            "release denied (request id {}); the reason is in the audit log",
            request_id.as_deref().unwrap_or("none")
        )),
        Err(e) => return Err(e.into()),
        Ok(_) => return Err("a release after the revocation was granted".into()),
    }
    Ok(())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn main() -> ExitCode {
    // libtss2 logs to stderr unless told otherwise; quiet it while the
    // process has one thread (before the runtime starts).
    keyward_client::silence_libtss2_logs_at_startup();
    let hold = std::env::args().skip(1).any(|a| a == "--hold");
    agent(hold)
}

#[tokio::main(flavor = "current_thread")]
async fn agent(hold: bool) -> ExitCode {
    if let Err(e) = run(hold).await {
        eprintln!("agent: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
