//! `keyward token create|lookup|revoke`.

use clap::Subcommand;
use keyward_vault::auth::Role;
use serde_json::{Value, json};

use super::Exit;
use super::operator::{Client, ClientArgs, block_on, field, text};

/// Token commands.
#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Create a token (admin); prints its value once.
    Create {
        /// A role of the new token (repeat for several).
        #[arg(long = "role", required = true, value_parser = parse_role)]
        roles: Vec<Role>,
        /// Lifetime: seconds or "90s", "5m", "2h", "7d" (default 24h).
        #[arg(long)]
        ttl: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Describe a token by accessor (admin, auditor), or the presented one.
    Lookup {
        /// The accessor; omitted: the token in use.
        accessor: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revoke a token by accessor (admin), or the presented one with --self.
    Revoke {
        /// The accessor.
        #[arg(required_unless_present = "self_")]
        accessor: Option<String>,
        /// Revoke the token in use.
        #[arg(long = "self", conflicts_with = "accessor")]
        self_: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    serde_json::from_value(Value::String(s.to_owned()))
        .map_err(|_| format!("unknown role {s:?}: admin, platform, release or auditor"))
}

fn info_rows(v: &Value) -> Vec<(&'static str, String)> {
    vec![
        ("Accessor", text(field(v, "accessor"))),
        ("Roles", text(field(v, "roles"))),
        ("Created At", text(field(v, "created_at"))),
        ("Expires At", text(field(v, "expires_at"))),
    ]
}

/// Runs a token command.
pub(crate) fn run(cmd: TokenCommand) -> Exit {
    block_on(async move {
        match cmd {
            TokenCommand::Create { roles, ttl, client } => {
                let client = Client::new(&client)?;
                let body = match ttl {
                    None => json!({ "roles": roles }),
                    Some(ttl) => match ttl.parse::<u64>() {
                        Ok(secs) => json!({ "roles": roles, "ttl": secs }),
                        Err(_) => json!({ "roles": roles, "ttl": ttl }),
                    },
                };
                let v = client
                    .call(reqwest::Method::POST, "/v1/auth/token/create", Some(body))
                    .await?;
                let mut rows = vec![("Token", text(field(&v, "token")))];
                rows.extend(info_rows(&v));
                client.print(&v, &rows);
                Ok(Exit::Ok)
            }
            TokenCommand::Lookup { accessor, client } => {
                let client = Client::new(&client)?;
                let v = match accessor {
                    Some(a) => {
                        client
                            .call(
                                reqwest::Method::POST,
                                "/v1/auth/token/lookup",
                                Some(json!({ "accessor": a })),
                            )
                            .await?
                    }
                    None => {
                        client
                            .call(reqwest::Method::GET, "/v1/auth/token/lookup-self", None)
                            .await?
                    }
                };
                client.print(&v, &info_rows(&v));
                Ok(Exit::Ok)
            }
            TokenCommand::Revoke {
                accessor,
                self_,
                client,
            } => {
                let client = Client::new(&client)?;
                let v = match (accessor, self_) {
                    (Some(a), false) => {
                        client
                            .call(
                                reqwest::Method::POST,
                                "/v1/auth/token/revoke",
                                Some(json!({ "accessor": a })),
                            )
                            .await?
                    }
                    _ => {
                        client
                            .call(reqwest::Method::POST, "/v1/auth/token/revoke-self", None)
                            .await?
                    }
                };
                client.print(&v, &[("Revoked", "true".to_owned())]);
                Ok(Exit::Ok)
            }
        }
    })
}
