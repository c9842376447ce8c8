//! Dynamic PostgreSQL credentials: one fresh role per release, dropped on
//! revoke.
//!
//! What it does:
//! - [`PostgresEngine::create_credential`] makes a role named
//!   `PREFIX + TAG + "_" + 12 random [a-z0-9]` (only `[a-z0-9_]`, at most 63
//!   bytes, so it never needs escaping) with a 32-character random
//!   alphanumeric password, by running the operator's creation templates
//!   (`{{name}}`, `{{password}}`, `{{expiration}}`) in **one transaction**: a
//!   failing grant leaves no half-made role behind.
//! - [`PostgresEngine::revoke`] removes a role for good: `ALTER ROLE … NOLOGIN`
//!   (no new sessions), `pg_terminate_backend` on the role's open sessions
//!   (waiting up to [`TERMINATE_WAIT_MS`] for each to end), the operator's
//!   revocation templates, then in one transaction `REASSIGN OWNED BY … TO
//!   CURRENT_USER`, `DROP OWNED BY …` (which also revokes its privileges on
//!   shared objects such as databases) and `DROP ROLE IF EXISTS`. A role
//!   that does not exist (never made, or already dropped) is success.
//! - [`PostgresEngine::extend`] moves a role's `VALID UNTIL` (lease renewal).
//!
//! What it does not do:
//! - **No TLS to the database yet.** Connections use `NoTls`, so
//!   [`PostgresEngine::new`] accepts only loopback hosts and Unix sockets;
//!   TLS to a remote database is future work.
//! - `REASSIGN OWNED` / `DROP OWNED` act on the database the admin DSN
//!   names (plus shared objects). Objects the role owns in *other* databases
//!   make `DROP ROLE` fail with SQLSTATE 2BP01; the error is returned so the
//!   lease layer retries and lists it, never drops it silently.
//! - It does not authorize or track leases: the caller decides who gets a
//!   credential and when to revoke it.
//!
//! The password never leaves the vault in clear: `{{password}}` is replaced
//! by a SCRAM-SHA-256 verifier (RFC 5802 / RFC 7677, PostgreSQL's
//! `pg_authid` format), which PostgreSQL stores as given and which logs in
//! exactly like the clear password. So the statement text, which PostgreSQL
//! may write to its log on error, holds no usable secret. The verifier is
//! computed here with `ring` (PBKDF2, HMAC, SHA-256) because the crate that
//! has it (`postgres-protocol`) is not a direct dependency of the vault.
//! The consequence for template authors: `{{password}}` is only meaningful
//! in a `PASSWORD '…'` clause.
//!
//! Connections: one per call, opened with a connect timeout and closed when
//! the call ends; every statement is also bounded by [`STATEMENT_TIMEOUT`].
//! Releases are rare next to the cost of a role's DDL, and a fresh
//! connection never inherits a broken session or an aborted transaction.
//! The admin role needs `CREATEROLE`, membership in `pg_signal_backend` and
//! in the roles it drops (a superuser has all three); PostgreSQL 14 or later
//! (`pg_terminate_backend(pid, timeout)`).
//!
//! Errors never carry the admin DSN or a password: database messages are
//! passed through with every known secret replaced by `[redacted]`.

use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac, pbkdf2};
use tokio_postgres::config::Host;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls};
/// Re-exported so callers can build [`PostgresSettings`] without naming `zeroize`.
pub use zeroize::Zeroizing;

/// The creation template used when an operator gives none but a grant.
pub const DEFAULT_CREATION_STATEMENT: &str =
    "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';";
/// Longest sanitized lease tag kept in a role name.
pub const MAX_LEASE_TAG_CHARS: usize = 16;
/// PostgreSQL's identifier limit (NAMEDATALEN - 1).
pub const MAX_USERNAME_BYTES: usize = 63;
/// Random `[a-z0-9]` characters at the end of every role name.
const RANDOM_SUFFIX_CHARS: usize = 12;
/// Longest prefix: what is left of 63 bytes after tag, `_` and suffix.
pub const MAX_PREFIX_BYTES: usize =
    MAX_USERNAME_BYTES - MAX_LEASE_TAG_CHARS - 1 - RANDOM_SUFFIX_CHARS;
/// Length of a generated password (alphanumeric: about 190 bits).
pub const PASSWORD_CHARS: usize = 32;
/// Caps on operator templates.
pub const MAX_STATEMENTS: usize = 32;
/// Longest single template, in bytes.
pub const MAX_STATEMENT_BYTES: usize = 16 * 1024;
/// Upper bound for `connect_timeout_secs`.
pub const MAX_CONNECT_TIMEOUT_SECS: u64 = 300;
/// Bound on each statement the engine runs.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `pg_terminate_backend` waits for each session to end.
pub const TERMINATE_WAIT_MS: i64 = 5_000;
/// 9999-12-31 23:59:59 UTC: the last instant with a four-digit year.
pub const MAX_VALID_UNTIL_UNIX: u64 = 253_402_300_799;
/// PostgreSQL's default SCRAM iteration count (`scram_iterations`).
const SCRAM_ITERATIONS: u32 = 4096;
const SCRAM_SALT_BYTES: usize = 16;

const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Settings of one PostgreSQL connection (a "database mount").
pub struct PostgresSettings {
    /// Admin DSN (URL or `key=value` form). Loopback or Unix socket only.
    pub connection_url: Zeroizing<String>,
    /// Templates run in order, in one transaction; placeholders `{{name}}`,
    /// `{{password}}` (a SCRAM verifier, see the module docs) and
    /// `{{expiration}}` (`YYYY-MM-DD HH:MM:SS+00`, to be quoted by the
    /// template). One must be a `CREATE ROLE`/`CREATE USER` with `{{name}}`
    /// and `{{password}}`.
    pub creation_statements: Vec<String>,
    /// Extra templates (only `{{name}}`) run before the role is dropped.
    pub revocation_statements: Vec<String>,
    /// Start of every role name: `[a-z][a-z0-9_]*`, not `pg_`, at most
    /// [`MAX_PREFIX_BYTES`].
    pub username_prefix: String,
    /// Bound on opening a connection, 1..=[`MAX_CONNECT_TIMEOUT_SECS`].
    pub connect_timeout_secs: u64,
}

impl fmt::Debug for PostgresSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresSettings")
            .field("connection_url", &"[redacted]")
            .field("creation_statements", &self.creation_statements)
            .field("revocation_statements", &self.revocation_statements)
            .field("username_prefix", &self.username_prefix)
            .field("connect_timeout_secs", &self.connect_timeout_secs)
            .finish()
    }
}

/// Why settings were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The admin DSN does not parse (the parser's text is withheld: it may
    /// quote the DSN).
    #[error("connection_url is not a valid PostgreSQL connection string")]
    ConnectionUrl,
    /// The admin DSN names no host, or no user.
    #[error("connection_url must name a host and a user")]
    ConnectionUrlIncomplete,
    /// A host other than loopback or a Unix socket (no TLS yet).
    #[error("connection_url must point at a loopback address or a Unix socket")]
    NotLoopback,
    /// `connect_timeout_secs` is 0 or above the cap.
    #[error("connect_timeout_secs must be between 1 and {MAX_CONNECT_TIMEOUT_SECS}")]
    ConnectTimeout,
    /// The username prefix is empty, too long, not `[a-z][a-z0-9_]*`, or
    /// starts with PostgreSQL's reserved `pg_`.
    #[error(
        "username_prefix must be 1..={MAX_PREFIX_BYTES} bytes of [a-z0-9_], start with a letter and not with pg_"
    )]
    Prefix,
    /// No creation statement.
    #[error("creation_statements is empty")]
    NoCreationStatements,
    /// More templates than [`MAX_STATEMENTS`].
    #[error("more than {MAX_STATEMENTS} statements")]
    TooManyStatements,
    /// A template is blank or longer than [`MAX_STATEMENT_BYTES`].
    #[error("{kind} statement {index} is blank or longer than {MAX_STATEMENT_BYTES} bytes")]
    StatementSize {
        /// Which list.
        kind: TemplateKind,
        /// Position in that list.
        index: usize,
    },
    /// `{{…}}` with an unknown name, an unclosed `{{`, or a placeholder the
    /// list does not allow (revocation templates allow only `{{name}}`).
    #[error("{kind} statement {index} has an unknown or disallowed placeholder")]
    Placeholder {
        /// Which list.
        kind: TemplateKind,
        /// Position in that list.
        index: usize,
    },
    /// No creation template mentions `{{name}}`.
    #[error("no creation statement contains {{{{name}}}}")]
    MissingNamePlaceholder,
    /// No `CREATE ROLE`/`CREATE USER` template with `{{name}}` and
    /// `{{password}}`.
    #[error("no CREATE ROLE/USER statement with {{{{name}}}} and {{{{password}}}}")]
    NoCreateRoleWithPassword,
}

/// Which template list a [`SettingsError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TemplateKind {
    /// `creation_statements`.
    Creation,
    /// `revocation_statements`.
    Revocation,
}

impl fmt::Display for TemplateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Creation => "creation",
            Self::Revocation => "revocation",
        })
    }
}

/// What the engine was doing when the database failed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Opening the admin connection.
    Connect,
    /// Running creation template `index` (or committing them: `index` is
    /// then the number of templates).
    Creation {
        /// Position in `creation_statements`.
        index: usize,
    },
    /// Running revocation template `index`.
    Revocation {
        /// Position in `revocation_statements`.
        index: usize,
    },
    /// Looking the role up in `pg_roles`.
    RoleLookup,
    /// `ALTER ROLE … NOLOGIN`.
    DisableLogin,
    /// `pg_terminate_backend` on the role's sessions.
    TerminateSessions,
    /// `REASSIGN OWNED`, `DROP OWNED`, `DROP ROLE`.
    DropRole,
    /// `ALTER ROLE … VALID UNTIL` (renewal).
    Extend,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect => f.write_str("connect"),
            Self::Creation { index } => write!(f, "creation statement {index}"),
            Self::Revocation { index } => write!(f, "revocation statement {index}"),
            Self::RoleLookup => f.write_str("role lookup"),
            Self::DisableLogin => f.write_str("disable login"),
            Self::TerminateSessions => f.write_str("terminate sessions"),
            Self::DropRole => f.write_str("drop role"),
            Self::Extend => f.write_str("extend"),
        }
    }
}

/// Errors of the PostgreSQL engine. No variant holds a password or the
/// admin DSN.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatabaseError {
    /// The settings were refused by [`PostgresEngine::new`].
    #[error("invalid database settings: {0}")]
    InvalidSettings(#[from] SettingsError),
    /// A username given to revoke/lookup is not one this engine makes
    /// (wrong prefix, characters or length); nothing was sent.
    #[error("not a role name of this engine")]
    InvalidUsername,
    /// The role to extend does not exist (revoked, or never made).
    #[error("no such role")]
    UnknownRole,
    /// `valid_until_unix` is after [`MAX_VALID_UNTIL_UNIX`].
    #[error("valid_until {valid_until_unix} is past year 9999")]
    Expiration {
        /// The value refused.
        valid_until_unix: u64,
    },
    /// The system random generator failed.
    #[error("system random generator failed")]
    Random,
    /// The admin connection could not be opened.
    #[error("connecting to PostgreSQL failed: {message}")]
    Connect {
        /// The client's reason, secrets redacted.
        message: String,
    },
    /// A step did not finish in time.
    #[error("PostgreSQL {step} timed out")]
    Timeout {
        /// Which step.
        step: Step,
    },
    /// The database refused a statement (or the connection broke during it).
    #[error("PostgreSQL {step} failed (SQLSTATE {}): {message}", sqlstate.as_deref().unwrap_or("none"))]
    Statement {
        /// Which step.
        step: Step,
        /// The SQLSTATE, when the server sent one.
        sqlstate: Option<String>,
        /// The server's message, secrets redacted.
        message: String,
    },
}

/// A credential just made: the role name and its password.
pub struct DbCredential {
    /// The role name (not secret).
    pub username: String,
    password: Zeroizing<String>,
}

impl DbCredential {
    /// The clear password, for handing to the workload.
    pub fn expose_password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for DbCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbCredential")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// The `database/postgres` engine for one database.
pub struct PostgresEngine {
    config: Config,
    admin_password: Zeroizing<String>,
    creation_statements: Vec<String>,
    revocation_statements: Vec<String>,
    username_prefix: String,
    connect_timeout: Duration,
    rng: SystemRandom,
}

impl fmt::Debug for PostgresEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresEngine")
            .field("connection", &"[redacted]")
            .field("creation_statements", &self.creation_statements.len())
            .field("revocation_statements", &self.revocation_statements.len())
            .field("username_prefix", &self.username_prefix)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl PostgresEngine {
    /// Validates the settings (see [`SettingsError`]); connects to nothing.
    pub fn new(settings: PostgresSettings) -> Result<Self, DatabaseError> {
        let PostgresSettings {
            connection_url,
            creation_statements,
            revocation_statements,
            username_prefix,
            connect_timeout_secs,
        } = settings;
        let mut config =
            Config::from_str(&connection_url).map_err(|_| SettingsError::ConnectionUrl)?;
        check_loopback(&config)?;
        if !(1..=MAX_CONNECT_TIMEOUT_SECS).contains(&connect_timeout_secs) {
            return Err(SettingsError::ConnectTimeout.into());
        }
        check_prefix(&username_prefix)?;
        check_templates(&creation_statements, &revocation_statements)?;
        let connect_timeout = Duration::from_secs(connect_timeout_secs);
        config
            .connect_timeout(connect_timeout)
            .application_name("keyward-vault");
        let admin_password = Zeroizing::new(
            config
                .get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .unwrap_or_default(),
        );
        Ok(Self {
            config,
            admin_password,
            creation_statements,
            revocation_statements,
            username_prefix,
            connect_timeout,
            rng: SystemRandom::new(),
        })
    }

    /// Makes a fresh role valid until `valid_until_unix` (UTC seconds) by
    /// running the creation templates in one transaction. `lease_tag` only
    /// makes the name readable: it is lower-cased, every other character
    /// than `[a-z0-9]` becomes `_`, and it is cut to
    /// [`MAX_LEASE_TAG_CHARS`].
    pub async fn create_credential(
        &self,
        lease_tag: &str,
        valid_until_unix: u64,
    ) -> Result<DbCredential, DatabaseError> {
        let expiration = format_expiration(valid_until_unix)?;
        let suffix = random_string(&self.rng, LOWER_ALNUM, RANDOM_SUFFIX_CHARS)?;
        let username = format!(
            "{}{}_{}",
            self.username_prefix,
            sanitize_tag(lease_tag),
            suffix.as_str()
        );
        let password = random_string(&self.rng, ALNUM, PASSWORD_CHARS)?;
        let verifier = scram_verifier(&self.rng, &password)?;
        let secrets: [&str; 3] = [&password, &verifier, &self.admin_password];

        let mut client = self.connect().await?;
        let transaction = bounded(Step::Creation { index: 0 }, &secrets, async {
            client.transaction().await
        })
        .await?;
        for (index, template) in self.creation_statements.iter().enumerate() {
            let sql = render(
                template,
                &[
                    ("name", username.as_str()),
                    ("password", verifier.as_str()),
                    ("expiration", expiration.as_str()),
                ],
            );
            bounded(
                Step::Creation { index },
                &secrets,
                transaction.batch_execute(&sql),
            )
            .await?;
        }
        bounded(
            Step::Creation {
                index: self.creation_statements.len(),
            },
            &secrets,
            transaction.commit(),
        )
        .await?;
        Ok(DbCredential { username, password })
    }

    /// Drops `username` and ends its sessions (see the module docs for the
    /// steps). A role that does not exist is success, so this can be retried.
    pub async fn revoke(&self, username: &str) -> Result<(), DatabaseError> {
        self.check_username(username)?;
        let secrets: [&str; 1] = [&self.admin_password];
        let mut client = self.connect().await?;
        if !self.lookup(&client, username).await? {
            return Ok(());
        }
        let quoted = format!("\"{username}\"");
        match bounded(
            Step::DisableLogin,
            &secrets,
            client.batch_execute(&format!("ALTER ROLE {quoted} NOLOGIN")),
        )
        .await
        {
            Err(DatabaseError::Statement { sqlstate, .. })
                if sqlstate.as_deref() == Some(SqlState::UNDEFINED_OBJECT.code()) =>
            {
                // Dropped by someone else since the lookup.
                return Ok(());
            }
            other => other?,
        }
        bounded(
            Step::TerminateSessions,
            &secrets,
            client.execute(
                "SELECT pg_terminate_backend(pid, $2) FROM pg_stat_activity WHERE usename = $1",
                &[&username, &TERMINATE_WAIT_MS],
            ),
        )
        .await?;
        for (index, template) in self.revocation_statements.iter().enumerate() {
            let sql = render(template, &[("name", username)]);
            bounded(
                Step::Revocation { index },
                &secrets,
                client.batch_execute(&sql),
            )
            .await?;
        }
        let drop_role = async {
            let transaction = client.transaction().await?;
            transaction
                .batch_execute(&format!(
                    "REASSIGN OWNED BY {quoted} TO CURRENT_USER; DROP OWNED BY {quoted}; DROP ROLE IF EXISTS {quoted};"
                ))
                .await?;
            transaction.commit().await
        };
        match bounded(Step::DropRole, &secrets, drop_role).await {
            Err(DatabaseError::Statement { sqlstate, .. })
                if sqlstate.as_deref() == Some(SqlState::UNDEFINED_OBJECT.code()) =>
            {
                Ok(())
            }
            other => other,
        }
    }

    /// Moves the role's `VALID UNTIL` to `valid_until_unix` (lease renewal).
    /// It sets, not only extends: the caller decides the new end. A role that
    /// does not exist is [`DatabaseError::UnknownRole`].
    pub async fn extend(&self, username: &str, valid_until_unix: u64) -> Result<(), DatabaseError> {
        self.check_username(username)?;
        let expiration = format_expiration(valid_until_unix)?;
        let client = self.connect().await?;
        match bounded(
            Step::Extend,
            &[&self.admin_password],
            client.batch_execute(&format!(
                "ALTER ROLE \"{username}\" VALID UNTIL '{expiration}'"
            )),
        )
        .await
        {
            Err(DatabaseError::Statement { sqlstate, .. })
                if sqlstate.as_deref() == Some(SqlState::UNDEFINED_OBJECT.code()) =>
            {
                Err(DatabaseError::UnknownRole)
            }
            other => other,
        }
    }

    /// Whether `username` exists as a role (checked in `pg_roles`).
    pub async fn role_exists(&self, username: &str) -> Result<bool, DatabaseError> {
        self.check_username(username)?;
        let client = self.connect().await?;
        self.lookup(&client, username).await
    }

    async fn lookup(&self, client: &Client, username: &str) -> Result<bool, DatabaseError> {
        let rows = bounded(
            Step::RoleLookup,
            &[&self.admin_password],
            client.query("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&username]),
        )
        .await?;
        Ok(!rows.is_empty())
    }

    /// Only names this engine could have made: the prefix, then
    /// `[a-z0-9_]`, at most 63 bytes. Keeps revoke away from admin roles.
    fn check_username(&self, username: &str) -> Result<(), DatabaseError> {
        let ok = username.len() <= MAX_USERNAME_BYTES
            && username.len() > self.username_prefix.len()
            && username.starts_with(&self.username_prefix)
            && username.bytes().all(is_name_byte);
        if ok {
            Ok(())
        } else {
            Err(DatabaseError::InvalidUsername)
        }
    }

    async fn connect(&self) -> Result<Client, DatabaseError> {
        let (client, connection) =
            tokio::time::timeout(self.connect_timeout, self.config.connect(NoTls))
                .await
                .map_err(|_| DatabaseError::Timeout {
                    step: Step::Connect,
                })?
                .map_err(|e| DatabaseError::Connect {
                    message: describe(&e, &[&self.admin_password]),
                })?;
        // The connection task ends when `client` is dropped; its errors
        // surface through the client's calls.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }
}

/// Runs one database step under [`STATEMENT_TIMEOUT`], mapping errors.
async fn bounded<T>(
    step: Step,
    secrets: &[&str],
    future: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, DatabaseError> {
    match tokio::time::timeout(STATEMENT_TIMEOUT, future).await {
        Err(_) => Err(DatabaseError::Timeout { step }),
        Ok(Err(e)) => Err(DatabaseError::Statement {
            step,
            sqlstate: e.code().map(|c| c.code().to_owned()),
            message: describe(&e, secrets),
        }),
        Ok(Ok(value)) => Ok(value),
    }
}

/// The error and its causes, with every non-empty secret redacted.
fn describe(error: &tokio_postgres::Error, secrets: &[&str]) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        text = text.replace(secret, "[redacted]");
    }
    text
}

fn check_loopback(config: &Config) -> Result<(), SettingsError> {
    if config.get_hosts().is_empty() || config.get_user().is_none() {
        return Err(SettingsError::ConnectionUrlIncomplete);
    }
    let hosts_ok = config.get_hosts().iter().all(|host| match host {
        Host::Tcp(name) => {
            name.eq_ignore_ascii_case("localhost")
                || name
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        Host::Unix(_) => true,
    });
    // `hostaddr`, when given, is where the client really connects.
    let addrs_ok = config.get_hostaddrs().iter().all(IpAddr::is_loopback);
    if hosts_ok && addrs_ok {
        Ok(())
    } else {
        Err(SettingsError::NotLoopback)
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'
}

fn check_prefix(prefix: &str) -> Result<(), SettingsError> {
    let ok = !prefix.is_empty()
        && prefix.len() <= MAX_PREFIX_BYTES
        && prefix.bytes().all(is_name_byte)
        && prefix
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase())
        && !prefix.starts_with("pg_");
    if ok {
        Ok(())
    } else {
        Err(SettingsError::Prefix)
    }
}

/// The placeholders of a template, or `None` if one is unknown or a `{{`
/// is never closed.
fn placeholders(template: &str) -> Option<Vec<&str>> {
    let mut found = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = rest.get(start + 2..)?;
        let end = after.find("}}")?;
        let name = after.get(..end)?;
        if !matches!(name, "name" | "password" | "expiration") {
            return None;
        }
        found.push(name);
        rest = after.get(end + 2..)?;
    }
    Some(found)
}

/// `CREATE ROLE` / `CREATE USER`, any case and spacing, anywhere in the text.
fn is_create_role(template: &str) -> bool {
    let words: Vec<String> = template
        .split(|c: char| c.is_whitespace() || c == ';' || c == '(')
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_uppercase)
        .collect();
    words
        .windows(2)
        .any(|pair| matches!(pair, [a, b] if a == "CREATE" && (b == "ROLE" || b == "USER")))
}

fn check_templates(creation: &[String], revocation: &[String]) -> Result<(), SettingsError> {
    if creation.is_empty() {
        return Err(SettingsError::NoCreationStatements);
    }
    if creation.len() > MAX_STATEMENTS || revocation.len() > MAX_STATEMENTS {
        return Err(SettingsError::TooManyStatements);
    }
    let mut any_name = false;
    let mut any_create = false;
    for (index, template) in creation.iter().enumerate() {
        let kind = TemplateKind::Creation;
        if template.trim().is_empty() || template.len() > MAX_STATEMENT_BYTES {
            return Err(SettingsError::StatementSize { kind, index });
        }
        let found = placeholders(template).ok_or(SettingsError::Placeholder { kind, index })?;
        let has_name = found.contains(&"name");
        any_name |= has_name;
        any_create |= has_name && found.contains(&"password") && is_create_role(template);
    }
    for (index, template) in revocation.iter().enumerate() {
        let kind = TemplateKind::Revocation;
        if template.trim().is_empty() || template.len() > MAX_STATEMENT_BYTES {
            return Err(SettingsError::StatementSize { kind, index });
        }
        let found = placeholders(template).ok_or(SettingsError::Placeholder { kind, index })?;
        if found.iter().any(|p| *p != "name") {
            return Err(SettingsError::Placeholder { kind, index });
        }
    }
    if !any_name {
        return Err(SettingsError::MissingNamePlaceholder);
    }
    if !any_create {
        return Err(SettingsError::NoCreateRoleWithPassword);
    }
    Ok(())
}

/// Replaces `{{key}}` in one pass (values are never re-scanned). Templates
/// were checked by [`placeholders`]; values are `[a-z0-9_]`, alphanumerics,
/// base64 and digits, so none needs quoting.
fn render(template: &str, values: &[(&str, &str)]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(template.len() + 256));
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let (before, tail) = rest.split_at(start);
        out.push_str(before);
        let inner = tail.get(2..).unwrap_or_default();
        let Some(end) = inner.find("}}") else {
            out.push_str(tail);
            return out;
        };
        let key = inner.get(..end).unwrap_or_default();
        match values.iter().find(|(k, _)| *k == key) {
            Some((_, value)) => out.push_str(value),
            None => out.push_str(tail.get(..end + 4).unwrap_or_default()),
        }
        rest = inner.get(end + 2..).unwrap_or_default();
    }
    out.push_str(rest);
    out
}

fn sanitize_tag(tag: &str) -> String {
    tag.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(MAX_LEASE_TAG_CHARS)
        .collect()
}

/// `len` characters drawn uniformly from `alphabet` (rejection sampling, so
/// no modulo bias).
fn random_string(
    rng: &SystemRandom,
    alphabet: &[u8],
    len: usize,
) -> Result<Zeroizing<String>, DatabaseError> {
    let size = alphabet.len();
    // Largest multiple of the alphabet size that fits in a byte.
    let limit = 256 - 256 % size;
    let mut out = Zeroizing::new(String::with_capacity(len));
    let mut buffer = Zeroizing::new([0u8; 64]);
    while out.len() < len {
        rng.fill(&mut buffer[..])
            .map_err(|_| DatabaseError::Random)?;
        for byte in buffer.iter().map(|b| usize::from(*b)) {
            if out.len() == len {
                break;
            }
            if byte < limit {
                let c = alphabet.get(byte % size).ok_or(DatabaseError::Random)?;
                out.push(char::from(*c));
            }
        }
    }
    Ok(out)
}

/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (base64),
/// as PostgreSQL stores in `pg_authid.rolpassword`. RFC 5802 §3:
/// SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, i); ClientKey =
/// HMAC(SaltedPassword, "Client Key"); StoredKey = H(ClientKey); ServerKey =
/// HMAC(SaltedPassword, "Server Key"). Our passwords are ASCII
/// alphanumerics, on which SASLprep is the identity.
fn scram_verifier(rng: &SystemRandom, password: &str) -> Result<Zeroizing<String>, DatabaseError> {
    let mut salt = [0u8; SCRAM_SALT_BYTES];
    rng.fill(&mut salt).map_err(|_| DatabaseError::Random)?;
    Ok(scram_verifier_with_salt(password, &salt, SCRAM_ITERATIONS))
}

fn scram_verifier_with_salt(password: &str, salt: &[u8], iterations: u32) -> Zeroizing<String> {
    let mut salted = Zeroizing::new([0u8; 32]);
    let rounds = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        rounds,
        salt,
        password.as_bytes(),
        &mut salted[..],
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, &salted[..]);
    let client_key = hmac::sign(&key, b"Client Key");
    let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
    let server_key = hmac::sign(&key, b"Server Key");
    Zeroizing::new(format!(
        "SCRAM-SHA-256${rounds}:{}${}:{}",
        STANDARD.encode(salt),
        STANDARD.encode(stored_key.as_ref()),
        STANDARD.encode(server_key.as_ref()),
    ))
}

/// `YYYY-MM-DD HH:MM:SS+00` for UTC seconds since the epoch, computed by
/// hand (proleptic Gregorian, H. Hinnant's `civil_from_days`) rather than
/// pulling a date crate into the vault for one format.
pub fn format_expiration(valid_until_unix: u64) -> Result<String, DatabaseError> {
    if valid_until_unix > MAX_VALID_UNTIL_UNIX {
        return Err(DatabaseError::Expiration { valid_until_unix });
    }
    // Bounded above, so none of the arithmetic below can overflow or go
    // negative (all terms are unsigned and z >= 719_468).
    let days = valid_until_unix / 86_400;
    let seconds = valid_until_unix % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    Ok(format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}+00",
        seconds / 3_600,
        seconds % 3_600 / 60,
        seconds % 60
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(creation: &[&str]) -> PostgresSettings {
        PostgresSettings {
            connection_url: Zeroizing::new(
                "postgres://admin:s3cret-admin@127.0.0.1:5432/postgres".to_owned(),
            ),
            creation_statements: creation.iter().map(|s| (*s).to_owned()).collect(),
            revocation_statements: Vec::new(),
            username_prefix: "kw_".to_owned(),
            connect_timeout_secs: 5,
        }
    }

    fn settings_error(s: PostgresSettings) -> SettingsError {
        match PostgresEngine::new(s) {
            Err(DatabaseError::InvalidSettings(e)) => e,
            other => panic!("expected InvalidSettings, got {other:?}"),
        }
    }

    #[test]
    fn expiration_known_instants() {
        assert_eq!(format_expiration(0).unwrap(), "1970-01-01 00:00:00+00");
        assert_eq!(
            format_expiration(951_782_400).unwrap(),
            "2000-02-29 00:00:00+00"
        );
        assert_eq!(
            format_expiration(1_700_000_000).unwrap(),
            "2023-11-14 22:13:20+00"
        );
        assert_eq!(
            format_expiration(MAX_VALID_UNTIL_UNIX).unwrap(),
            "9999-12-31 23:59:59+00"
        );
        assert!(matches!(
            format_expiration(MAX_VALID_UNTIL_UNIX + 1),
            Err(DatabaseError::Expiration { valid_until_unix }) if valid_until_unix == MAX_VALID_UNTIL_UNIX + 1
        ));
    }

    /// Every day of 1970..2370 against a naive day-by-day calendar.
    #[test]
    fn expiration_matches_naive_calendar() {
        let (mut year, mut month, mut day) = (1970u64, 1u64, 1u64);
        let leap =
            |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
        for days in 0..146_097u64 {
            let expected = format!("{year:04}-{month:02}-{day:02} 23:59:59+00");
            assert_eq!(format_expiration(days * 86_400 + 86_399).unwrap(), expected);
            let month_len = match month {
                2 if leap(year) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            day += 1;
            if day > month_len {
                day = 1;
                month += 1;
                if month > 12 {
                    month = 1;
                    year += 1;
                }
            }
        }
        assert_eq!(year, 2370);
    }

    #[test]
    fn random_strings_use_their_alphabet() {
        let rng = SystemRandom::new();
        let a = random_string(&rng, ALNUM, PASSWORD_CHARS).unwrap();
        let b = random_string(&rng, ALNUM, PASSWORD_CHARS).unwrap();
        assert_eq!(a.len(), PASSWORD_CHARS);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(*a, *b);
        let s = random_string(&rng, LOWER_ALNUM, 500).unwrap();
        assert!(
            s.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
    }

    #[test]
    fn tag_is_sanitized_and_cut() {
        assert_eq!(sanitize_tag("Lease/ABC-1"), "lease_abc_1");
        assert_eq!(sanitize_tag("é\"; DROP ROLE x"), "____drop_role_x");
        assert_eq!(sanitize_tag("abcdefghijklmnopqrstuvwxyz").len(), 16);
        assert_eq!(sanitize_tag(""), "");
    }

    #[test]
    fn render_substitutes_once() {
        let out = render(
            "CREATE ROLE \"{{name}}\" PASSWORD '{{password}}' {{name}}",
            &[("name", "kw_x"), ("password", "{{name}}")],
        );
        assert_eq!(*out, "CREATE ROLE \"kw_x\" PASSWORD '{{name}}' kw_x");
    }

    #[test]
    fn scram_verifier_shape() {
        let v = scram_verifier_with_salt("pencil", b"0123456789abcdef", 4096);
        let rest = v.strip_prefix("SCRAM-SHA-256$4096:").unwrap();
        let (salt, keys) = rest.split_once('$').unwrap();
        assert_eq!(STANDARD.decode(salt).unwrap(), b"0123456789abcdef");
        let (stored, server) = keys.split_once(':').unwrap();
        assert_eq!(STANDARD.decode(stored).unwrap().len(), 32);
        assert_eq!(STANDARD.decode(server).unwrap().len(), 32);
        assert!(!v.contains("pencil"));
        // Another password or salt gives another verifier.
        assert_ne!(
            *v,
            *scram_verifier_with_salt("pencil2", b"0123456789abcdef", 4096)
        );
        assert_ne!(
            *v,
            *scram_verifier_with_salt("pencil", b"0123456789abcdeg", 4096)
        );
    }

    #[test]
    fn default_settings_are_accepted() {
        let engine = PostgresEngine::new(settings(&[
            DEFAULT_CREATION_STATEMENT,
            "GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{{name}}\";",
        ]))
        .unwrap();
        let debug = format!("{engine:?}");
        assert!(!debug.contains("s3cret-admin"), "{debug}");
        let debug = format!("{:?}", settings(&[DEFAULT_CREATION_STATEMENT]));
        assert!(!debug.contains("s3cret-admin"), "{debug}");
        assert!(debug.contains("[redacted]"));
    }

    #[test]
    fn templates_are_checked() {
        assert_eq!(
            settings_error(settings(&[
                "CREATE ROLE x WITH LOGIN PASSWORD '{{password}}'"
            ])),
            SettingsError::MissingNamePlaceholder
        );
        assert_eq!(
            settings_error(settings(&["CREATE ROLE \"{{name}}\" WITH LOGIN"])),
            SettingsError::NoCreateRoleWithPassword
        );
        assert_eq!(
            settings_error(settings(&[
                "ALTER ROLE \"{{name}}\" PASSWORD '{{password}}'"
            ])),
            SettingsError::NoCreateRoleWithPassword
        );
        assert_eq!(
            settings_error(settings(&[
                DEFAULT_CREATION_STATEMENT,
                "GRANT x TO {{nmae}}"
            ])),
            SettingsError::Placeholder {
                kind: TemplateKind::Creation,
                index: 1
            }
        );
        assert_eq!(
            settings_error(settings(&[
                "CREATE ROLE \"{{name}\" PASSWORD '{{password}}'"
            ])),
            SettingsError::Placeholder {
                kind: TemplateKind::Creation,
                index: 0
            }
        );
        assert_eq!(
            settings_error(settings(&[])),
            SettingsError::NoCreationStatements
        );
        assert_eq!(
            settings_error(settings(&[DEFAULT_CREATION_STATEMENT, "  "])),
            SettingsError::StatementSize {
                kind: TemplateKind::Creation,
                index: 1
            }
        );
        let mut s = settings(&[DEFAULT_CREATION_STATEMENT]);
        s.revocation_statements = vec!["SELECT '{{password}}'".to_owned()];
        assert_eq!(
            settings_error(s),
            SettingsError::Placeholder {
                kind: TemplateKind::Revocation,
                index: 0
            }
        );
        // Lower case and `CREATE USER` are recognised.
        PostgresEngine::new(settings(&[
            "create user \"{{name}}\" password '{{password}}'",
        ]))
        .unwrap();
    }

    #[test]
    fn prefix_url_and_timeout_are_checked() {
        for bad in [
            "",
            "KW_",
            "kw-",
            "1kw",
            "pg_kw",
            &"k".repeat(MAX_PREFIX_BYTES + 1),
        ] {
            let mut s = settings(&[DEFAULT_CREATION_STATEMENT]);
            s.username_prefix = bad.to_owned();
            assert_eq!(settings_error(s), SettingsError::Prefix, "{bad:?}");
        }
        let mut s = settings(&[DEFAULT_CREATION_STATEMENT]);
        s.username_prefix = "k".repeat(MAX_PREFIX_BYTES);
        PostgresEngine::new(s).unwrap();

        for (url, expected) in [
            (
                "postgres://a:pw@db.example.com/postgres",
                SettingsError::NotLoopback,
            ),
            (
                "postgres://a:pw@10.0.0.1/postgres",
                SettingsError::NotLoopback,
            ),
            (
                "host=localhost hostaddr=10.0.0.1 user=a",
                SettingsError::NotLoopback,
            ),
            (
                "postgres://a:pw@/postgres",
                SettingsError::ConnectionUrlIncomplete,
            ),
            (
                "postgres://127.0.0.1/postgres",
                SettingsError::ConnectionUrlIncomplete,
            ),
            (
                "postgres://a:pw@127.0.0.1:notaport/x",
                SettingsError::ConnectionUrl,
            ),
        ] {
            let mut s = settings(&[DEFAULT_CREATION_STATEMENT]);
            s.connection_url = Zeroizing::new(url.to_owned());
            assert_eq!(settings_error(s), expected, "{url}");
        }
        for good in [
            "postgres://a:pw@localhost/postgres",
            "postgres://a:pw@[::1]:5432/postgres",
            "host=/run/postgresql user=a",
        ] {
            let mut s = settings(&[DEFAULT_CREATION_STATEMENT]);
            s.connection_url = Zeroizing::new(good.to_owned());
            PostgresEngine::new(s).unwrap();
        }
        for timeout in [0, MAX_CONNECT_TIMEOUT_SECS + 1] {
            let mut s = settings(&[DEFAULT_CREATION_STATEMENT]);
            s.connect_timeout_secs = timeout;
            assert_eq!(settings_error(s), SettingsError::ConnectTimeout);
        }
    }

    #[test]
    fn usernames_outside_the_prefix_are_refused() {
        let engine = PostgresEngine::new(settings(&[DEFAULT_CREATION_STATEMENT])).unwrap();
        for bad in [
            "postgres",
            "kw_",
            "kw_A",
            "kw_x\"; DROP ROLE admin; --",
            &format!("kw_{}", "a".repeat(61)),
        ] {
            assert!(
                matches!(
                    engine.check_username(bad),
                    Err(DatabaseError::InvalidUsername)
                ),
                "{bad:?}"
            );
        }
        engine.check_username("kw_lease_abc123def456").unwrap();
    }

    #[test]
    fn errors_redact_secrets() {
        let credential = DbCredential {
            username: "kw_x".to_owned(),
            password: Zeroizing::new("hunter2hunter2".to_owned()),
        };
        assert_eq!(credential.expose_password(), "hunter2hunter2");
        let debug = format!("{credential:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("kw_x"));
    }
}
