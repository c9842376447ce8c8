//! Operator commands of the release path, mirroring the API:
//! `keyward policy release …` and `keyward policy release-schema …`
//! (Cedar), `keyward kv put|metadata`, `keyward lease
//! lookup|revoke|revoke-prefix|irrevocable`, and `keyward engine
//! database-role put`.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::{Value, json};

use super::Exit;
use super::operator::{Client, ClientArgs, Format, block_on, field, text};

/// Largest Cedar document or schema read (the server's caps are 64 KiB and
/// 256 KiB).
const MAX_CEDAR_FILE: u64 = 256 * 1024;
/// Largest JSON file read (kv values, engine roles).
const MAX_JSON_FILE: u64 = 64 * 1024;

/// Cedar release policy commands.
#[derive(Debug, Subcommand)]
pub(crate) enum ReleasePolicyCommand {
    /// Create or replace a policy document from a Cedar file; validated
    /// against the schema by the server (admin).
    Put {
        /// The document name.
        name: String,
        /// The Cedar text.
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Print a policy document (admin, auditor).
    Get {
        /// The document name.
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List policy documents (admin, auditor).
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete a policy document (admin).
    Delete {
        /// The document name.
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Cedar schema commands.
#[derive(Debug, Subcommand)]
pub(crate) enum SchemaCommand {
    /// Print the schema (admin, auditor).
    Get {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Replace the schema; refused if a stored policy would not validate
    /// (admin).
    Put {
        /// The Cedar schema (human syntax).
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Static secrets.
#[derive(Debug, Subcommand)]
pub(crate) enum KvCommand {
    /// Write a new version from a JSON object file (admin).
    Put {
        /// The secret path (without `kv/`).
        path: String,
        /// A JSON object.
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Versions and writers, never values (admin, auditor).
    Metadata {
        /// The secret path (without `kv/`).
        path: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Leases.
#[derive(Debug, Subcommand)]
pub(crate) enum LeaseCommand {
    /// Show a lease (admin, auditor).
    Lookup {
        /// The lease id.
        lease_id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revoke a lease now (admin).
    Revoke {
        /// The lease id.
        lease_id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revoke every lease under a prefix (admin).
    RevokePrefix {
        /// e.g. `database/postgres/readonly/`.
        prefix: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Leases whose revocation failed and is being retried (admin, auditor).
    Irrevocable {
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Secrets engine configuration.
#[derive(Debug, Subcommand)]
pub(crate) enum EngineCommand {
    /// Configure a `database/postgres/<role>` from a JSON file holding
    /// `connection_url`, `creation_statements`, … (admin). The URL is
    /// stored barrier-encrypted and never shown again.
    DatabaseRole {
        /// The role name.
        role: String,
        /// The JSON configuration.
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
}

fn read_text(path: &Path, cap: u64) -> Result<String, String> {
    String::from_utf8(super::read_input(path, cap)?)
        .map_err(|_| format!("{}: not UTF-8", path.display()))
}

fn read_json(path: &Path) -> Result<Value, String> {
    let bytes = super::read_input(path, MAX_JSON_FILE)?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: not JSON: {e}", path.display()))
}

fn lease_rows(v: &Value) -> Vec<(&'static str, String)> {
    vec![
        ("Lease", text(field(v, "id"))),
        ("Path", text(field(v, "path"))),
        ("Host", text(field(v, "host_id"))),
        ("Instance", text(field(v, "instance_id"))),
        ("Expires (ms)", text(field(v, "expires_at_ms"))),
        ("Revoking", text(field(v, "revoking"))),
        ("Attempts", text(field(v, "revoke_attempts"))),
        ("Last Error", text(field(v, "last_error"))),
    ]
}

async fn send(
    client: &ClientArgs,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<(Client, Value), String> {
    let client = Client::new(client)?;
    let v = client.call(method, path, body).await?;
    Ok((client, v))
}

/// Runs a release policy command.
pub(crate) fn run_policy(cmd: ReleasePolicyCommand) -> Exit {
    block_on(async move {
        match cmd {
            ReleasePolicyCommand::Put { name, file, client } => {
                let policy = read_text(&file, MAX_CEDAR_FILE)?;
                let path = format!("/v1/policies/release/{name}");
                let (c, v) = send(
                    &client,
                    reqwest::Method::PUT,
                    &path,
                    Some(json!({ "policy": policy })),
                )
                .await?;
                c.print(&v, &[("Name", text(field(&v, "name")))]);
            }
            ReleasePolicyCommand::Get { name, client } => {
                let path = format!("/v1/policies/release/{name}");
                let (c, v) = send(&client, reqwest::Method::GET, &path, None).await?;
                match c.format {
                    Format::Json => c.print(&v, &[]),
                    Format::Table => {
                        let _ = write!(std::io::stdout(), "{}", text(field(&v, "policy")));
                    }
                }
            }
            ReleasePolicyCommand::List { client } => {
                let (c, v) =
                    send(&client, reqwest::Method::GET, "/v1/policies/release", None).await?;
                match c.format {
                    Format::Json => c.print(&v, &[]),
                    Format::Table => {
                        let mut out = std::io::stdout().lock();
                        for name in field(&v, "names").as_array().into_iter().flatten() {
                            let _ = writeln!(out, "{}", text(name));
                        }
                    }
                }
            }
            ReleasePolicyCommand::Delete { name, client } => {
                let path = format!("/v1/policies/release/{name}");
                let (c, v) = send(&client, reqwest::Method::DELETE, &path, None).await?;
                c.print(&v, &[("Deleted", text(field(&v, "name")))]);
            }
        }
        Ok(Exit::Ok)
    })
}

/// Runs a schema command.
pub(crate) fn run_schema(cmd: SchemaCommand) -> Exit {
    block_on(async move {
        match cmd {
            SchemaCommand::Get { client } => {
                let (c, v) = send(
                    &client,
                    reqwest::Method::GET,
                    "/v1/policies/release-schema",
                    None,
                )
                .await?;
                match c.format {
                    Format::Json => c.print(&v, &[]),
                    Format::Table => {
                        let _ = write!(std::io::stdout(), "{}", text(field(&v, "schema")));
                    }
                }
            }
            SchemaCommand::Put { file, client } => {
                let schema = read_text(&file, MAX_CEDAR_FILE)?;
                let (c, v) = send(
                    &client,
                    reqwest::Method::PUT,
                    "/v1/policies/release-schema",
                    Some(json!({ "schema": schema })),
                )
                .await?;
                c.print(&v, &[("Schema", text(field(&v, "schema")))]);
            }
        }
        Ok(Exit::Ok)
    })
}

/// Runs a kv command.
pub(crate) fn run_kv(cmd: KvCommand) -> Exit {
    block_on(async move {
        match cmd {
            KvCommand::Put { path, file, client } => {
                let data = read_json(&file)?;
                let (c, v) = send(
                    &client,
                    reqwest::Method::PUT,
                    &format!("/v1/kv/{path}"),
                    Some(json!({ "data": data })),
                )
                .await?;
                c.print(
                    &v,
                    &[
                        ("Path", text(field(&v, "path"))),
                        ("Version", text(field(&v, "version"))),
                    ],
                );
            }
            KvCommand::Metadata { path, client } => {
                let (c, v) = send(
                    &client,
                    reqwest::Method::GET,
                    &format!("/v1/kv/{path}"),
                    None,
                )
                .await?;
                c.print(&v, &[("Current Version", text(field(&v, "current")))]);
            }
        }
        Ok(Exit::Ok)
    })
}

/// Runs a lease command.
pub(crate) fn run_lease(cmd: LeaseCommand) -> Exit {
    block_on(async move {
        match cmd {
            LeaseCommand::Lookup { lease_id, client } => {
                let (c, v) = send(
                    &client,
                    reqwest::Method::POST,
                    "/v1/sys/leases/lookup",
                    Some(json!({ "lease_id": lease_id })),
                )
                .await?;
                c.print(&v, &lease_rows(&v));
            }
            LeaseCommand::Revoke { lease_id, client } => {
                let (c, v) = send(
                    &client,
                    reqwest::Method::POST,
                    "/v1/sys/leases/revoke",
                    Some(json!({ "lease_id": lease_id })),
                )
                .await?;
                c.print(
                    &v,
                    &[
                        ("Revoked", text(field(&v, "revoked"))),
                        ("Retrying", text(field(&v, "retrying"))),
                    ],
                );
            }
            LeaseCommand::RevokePrefix { prefix, client } => {
                let (c, v) = send(
                    &client,
                    reqwest::Method::POST,
                    "/v1/sys/leases/revoke-prefix",
                    Some(json!({ "prefix": prefix })),
                )
                .await?;
                c.print(
                    &v,
                    &[
                        ("Revoked", text(field(&v, "revoked"))),
                        ("Retrying", text(field(&v, "retrying"))),
                    ],
                );
            }
            LeaseCommand::Irrevocable { client } => {
                let (c, v) = send(
                    &client,
                    reqwest::Method::GET,
                    "/v1/sys/leases/irrevocable",
                    None,
                )
                .await?;
                match c.format {
                    Format::Json => c.print(&v, &[]),
                    Format::Table => {
                        let mut out = std::io::stdout().lock();
                        let _ = writeln!(out, "{:<64}  {:>8}  LAST ERROR", "LEASE", "ATTEMPTS");
                        for l in v.as_array().into_iter().flatten() {
                            let _ = writeln!(
                                out,
                                "{:<64}  {:>8}  {}",
                                text(field(l, "id")),
                                text(field(l, "revoke_attempts")),
                                text(field(l, "last_error"))
                            );
                        }
                    }
                }
            }
        }
        Ok(Exit::Ok)
    })
}

/// Runs an engine command.
pub(crate) fn run_engine(cmd: EngineCommand) -> Exit {
    block_on(async move {
        match cmd {
            EngineCommand::DatabaseRole { role, file, client } => {
                let config = read_json(&file)?;
                let (c, v) = send(
                    &client,
                    reqwest::Method::PUT,
                    &format!("/v1/engines/database/postgres/{role}"),
                    Some(config),
                )
                .await?;
                c.print(&v, &[("Role", text(field(&v, "role")))]);
            }
        }
        Ok(Exit::Ok)
    })
}
