//! `keyward policy signing put|get|list|delete`.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;
use serde_json::Value;

use super::Exit;
use super::operator::{Client, ClientArgs, Format, block_on, field, text};

/// Largest policy file read (the server's cap is 256 KiB).
const MAX_POLICY_FILE: u64 = 256 * 1024;

/// Policy commands.
#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Signing policies per artifact kind (release; auditor may read).
    #[command(subcommand)]
    Signing(SigningCommand),
    /// Cedar release policies (admin; auditor may read).
    #[command(subcommand)]
    Release(super::release::ReleasePolicyCommand),
    /// The Cedar schema release policies are validated against.
    #[command(subcommand)]
    ReleaseSchema(super::release::SchemaCommand),
}

/// Signing policy commands.
#[derive(Debug, Subcommand)]
pub(crate) enum SigningCommand {
    /// Create or replace a policy from a JSON file (`-`: standard input).
    Put {
        /// `image` or `model`.
        kind: String,
        /// The policy name.
        name: String,
        /// The SigningPolicy JSON document.
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show a policy.
    Get {
        /// `image` or `model`.
        kind: String,
        /// The policy name.
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List policies.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete a policy (refused while active artifacts reference it).
    Delete {
        /// `image` or `model`.
        kind: String,
        /// The policy name.
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

fn read_document(path: &std::path::Path) -> Result<Value, String> {
    let bytes = if path.as_os_str() == "-" {
        use std::io::Read;
        let mut bytes = Vec::new();
        std::io::stdin()
            .take(MAX_POLICY_FILE.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| format!("standard input: {e}"))?;
        if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_POLICY_FILE {
            return Err(format!(
                "standard input: larger than {MAX_POLICY_FILE} bytes"
            ));
        }
        bytes
    } else {
        super::read_input(path, MAX_POLICY_FILE)?
    };
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: not JSON: {e}", path.display()))
}

fn policy_path(kind: &str, name: &str) -> String {
    format!("/v1/policies/signing/{kind}/{name}")
}

fn rows(v: &Value) -> Vec<(&'static str, String)> {
    let policy = field(v, "policy");
    vec![
        ("Name", text(field(v, "name"))),
        ("Kind", text(field(v, "kind"))),
        ("Predicate Types", text(field(policy, "predicate_types"))),
        (
            "Identities",
            field(policy, "identities")
                .as_array()
                .map_or(0, Vec::len)
                .to_string(),
        ),
        (
            "Keys",
            field(policy, "keys")
                .as_array()
                .map_or(0, Vec::len)
                .to_string(),
        ),
        (
            "CAs",
            field(policy, "certificate_authorities")
                .as_array()
                .map_or(0, Vec::len)
                .to_string(),
        ),
        ("Updated At", text(field(v, "updated_at"))),
        ("Updated By", text(field(v, "updated_by"))),
    ]
}

/// Runs a policy command.
pub(crate) fn run(cmd: PolicyCommand) -> Exit {
    let cmd = match cmd {
        PolicyCommand::Signing(cmd) => cmd,
        PolicyCommand::Release(cmd) => return super::release::run_policy(cmd),
        PolicyCommand::ReleaseSchema(cmd) => return super::release::run_schema(cmd),
    };
    block_on(async move {
        match cmd {
            SigningCommand::Put {
                kind,
                name,
                file,
                client,
            } => {
                let client = Client::new(&client)?;
                let document = read_document(&file)?;
                let v = client
                    .call(
                        reqwest::Method::PUT,
                        &policy_path(&kind, &name),
                        Some(document),
                    )
                    .await?;
                client.print(&v, &rows(&v));
            }
            SigningCommand::Get { kind, name, client } => {
                let client = Client::new(&client)?;
                let v = client
                    .call(reqwest::Method::GET, &policy_path(&kind, &name), None)
                    .await?;
                client.print(&v, &rows(&v));
            }
            SigningCommand::List { client } => {
                let client = Client::new(&client)?;
                let v = client
                    .call(reqwest::Method::GET, "/v1/policies/signing", None)
                    .await?;
                match client.format {
                    Format::Json => client.print(&v, &[]),
                    Format::Table => {
                        let mut out = std::io::stdout().lock();
                        let _ = writeln!(out, "{:<8}  {:<32}  UPDATED BY", "KIND", "NAME");
                        for p in field(&v, "policies").as_array().into_iter().flatten() {
                            let _ = writeln!(
                                out,
                                "{:<8}  {:<32}  {}",
                                text(field(p, "kind")),
                                text(field(p, "name")),
                                text(field(p, "updated_by"))
                            );
                        }
                    }
                }
            }
            SigningCommand::Delete { kind, name, client } => {
                let client = Client::new(&client)?;
                let v = client
                    .call(reqwest::Method::DELETE, &policy_path(&kind, &name), None)
                    .await?;
                client.print(&v, &[("Deleted", "true".to_owned())]);
            }
        }
        Ok(Exit::Ok)
    })
}
