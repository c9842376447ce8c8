//! `keyward operator init|unseal|seal|status|rotate`, and the HTTP client the
//! server-facing commands share ([`ClientArgs`], [`Client`]).

use std::io::{BufRead, Write};
use std::path::PathBuf;

use clap::Subcommand;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::Exit;

/// Largest response body read from the server.
const MAX_RESPONSE_BYTES: usize = 4 << 20;

/// A secret from argv or the environment (token, unseal share): zeroized
/// on drop, redacted in `Debug`. `Clone` only because clap requires it of
/// parsed values.
#[derive(Clone)]
pub(crate) struct SecretArg(Zeroizing<String>);

impl std::fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretArg([redacted])")
    }
}

impl std::str::FromStr for SecretArg {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(Zeroizing::new(s.to_owned())))
    }
}

impl SecretArg {
    /// The value.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Aligned `key  value` lines.
    Table,
    /// The server's JSON.
    Json,
}

/// Where the server is and who is asking.
#[derive(Debug, clap::Args)]
pub(crate) struct ClientArgs {
    /// The server's address.
    #[arg(long, env = "KEYWARD_ADDR", default_value = "https://127.0.0.1:8200")]
    pub(crate) addr: String,
    /// The token (prefer the environment variable: argv is visible to other users).
    #[arg(long, env = "KEYWARD_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<SecretArg>,
    /// A PEM CA certificate to trust for the server's TLS certificate.
    #[arg(long, env = "KEYWARD_CACERT")]
    pub(crate) ca_cert: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub(crate) format: Format,
}

/// A client for one server.
pub(crate) struct Client {
    http: reqwest::Client,
    addr: String,
    token: Option<SecretArg>,
    pub(crate) format: Format,
}

impl Client {
    /// A client from the common arguments.
    pub(crate) fn new(args: &ClientArgs) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = &args.ca_cert {
            let pem = super::read_input(path, 1 << 20)?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            builder = builder.add_root_certificate(cert);
        }
        Ok(Self {
            http: builder.build().map_err(|e| format!("HTTP client: {e}"))?,
            addr: args.addr.trim_end_matches('/').to_owned(),
            token: args.token.clone(),
            format: args.format,
        })
    }

    /// Sends a request; a non-2xx answer becomes its `errors` joined.
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut request = self.http.request(method, format!("{}{path}", self.addr));
        if let Some(token) = &self.token {
            let mut value = reqwest::header::HeaderValue::from_str(token.expose())
                .map_err(|_| "the token contains characters not allowed in a header".to_owned())?;
            // Keeps it out of reqwest's and hyper's debug output.
            value.set_sensitive(true);
            request = request.header("x-keyward-token", value);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| format!("{}: {e}", self.addr))?;
        let status = response.status();
        let mut bytes = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("{}: {e}", self.addr))?
        {
            if bytes.len().saturating_add(chunk.len()) > MAX_RESPONSE_BYTES {
                return Err(format!(
                    "{}: response larger than {MAX_RESPONSE_BYTES} bytes",
                    self.addr
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            let errors = value
                .get("errors")
                .and_then(Value::as_array)
                .map(|e| {
                    e.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default();
            return Err(format!("server answered {status}: {errors}"));
        }
        Ok(value)
    }

    /// Prints `value` as JSON, or `rows` as a table.
    pub(crate) fn print(&self, value: &Value, rows: &[(&str, String)]) {
        let mut out = std::io::stdout().lock();
        let _ = match self.format {
            Format::Json => writeln!(out, "{value:#}"),
            Format::Table => {
                let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
                rows.iter()
                    .try_for_each(|(k, v)| writeln!(out, "{k:<width$}  {v}"))
            }
        };
    }
}

/// Runs an async command body on a small runtime; errors print and fail.
pub(crate) fn block_on<F: std::future::Future<Output = Result<Exit, String>>>(f: F) -> Exit {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Failed;
        }
    };
    match runtime.block_on(f) {
        Ok(exit) => exit,
        Err(message) => {
            eprintln!("error: {message}");
            Exit::Failed
        }
    }
}

/// A field of a JSON object, or null.
pub(crate) fn field<'a>(value: &'a Value, name: &str) -> &'a Value {
    value.get(name).unwrap_or(&Value::Null)
}

/// Text of a JSON field, for tables.
pub(crate) fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// `keyward operator init --type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum InitKind {
    /// Shamir unseal shares.
    Shamir,
    /// Sealed to the server's TPM, with recovery shares.
    Tpm,
}

/// Operator commands.
#[derive(Debug, Subcommand)]
pub(crate) enum OperatorCommand {
    /// Initialise the vault: prints the unseal (or, with `--type tpm`,
    /// recovery) shares and the root token once.
    Init {
        /// How the root key is protected: `tpm` seals it to the server's
        /// TPM (`seal.tcti` in its config) and issues recovery shares.
        #[arg(long = "type", value_enum, default_value = "shamir")]
        kind: InitKind,
        /// PCRs to seal to with `--type tpm`, `bank:i,j,…` (server default `sha256:0,2,4,7`).
        #[arg(long, requires = "kind")]
        pcrs: Option<String>,
        /// Shares to issue.
        #[arg(long, default_value_t = 5)]
        shares: u8,
        /// Shares needed to unseal.
        #[arg(long, default_value_t = 3)]
        threshold: u8,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Submit one unseal share (read from stdin when not given).
    Unseal {
        /// The hex share; prefer stdin, argv is visible to other users.
        key: Option<SecretArg>,
        /// Discard the shares submitted so far.
        #[arg(long, conflicts_with = "key")]
        reset: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Seal the vault (admin token).
    Seal {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show initialisation, seal state and unseal progress.
    Status {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Rotate the barrier keyring (admin token): new writes use a new key term.
    Rotate {
        #[command(flatten)]
        client: ClientArgs,
    },
}

fn status_rows(v: &Value) -> Vec<(&'static str, String)> {
    vec![
        ("Initialized", text(field(v, "initialized"))),
        ("Sealed", text(field(v, "sealed"))),
        ("Seal Type", text(field(v, "type"))),
        ("Threshold", text(field(v, "threshold"))),
        ("Total Shares", text(field(v, "shares"))),
        ("Unseal Progress", text(field(v, "progress"))),
    ]
}

/// Runs an operator command.
pub(crate) fn run(cmd: OperatorCommand) -> Exit {
    block_on(async move {
        match cmd {
            OperatorCommand::Init {
                kind,
                pcrs,
                shares,
                threshold,
                client,
            } => {
                let client = Client::new(&client)?;
                let body = match kind {
                    InitKind::Shamir => {
                        if pcrs.is_some() {
                            return Err("--pcrs applies only to --type tpm".to_owned());
                        }
                        json!({"secret_shares": shares, "secret_threshold": threshold})
                    }
                    InitKind::Tpm => {
                        let mut body = json!({
                            "type": "tpm",
                            "recovery_shares": shares,
                            "recovery_threshold": threshold,
                        });
                        if let (Some(pcrs), Some(map)) = (pcrs, body.as_object_mut()) {
                            map.insert("pcrs".to_owned(), Value::String(pcrs));
                        }
                        body
                    }
                };
                let v = client
                    .call(reqwest::Method::POST, "/v1/sys/init", Some(body))
                    .await?;
                let (list, label) = match kind {
                    InitKind::Shamir => ("keys", "Unseal Key"),
                    InitKind::Tpm => ("recovery_keys", "Recovery Key"),
                };
                let keys: Vec<String> = field(&v, list)
                    .as_array()
                    .map(|k| k.iter().map(text).collect())
                    .unwrap_or_default();
                let labels: Vec<String> =
                    (1..=keys.len()).map(|i| format!("{label} {i}")).collect();
                let mut rows: Vec<(&str, String)> = labels
                    .iter()
                    .map(String::as_str)
                    .zip(keys.iter().cloned())
                    .collect();
                rows.push(("Root Token", text(field(&v, "root_token"))));
                rows.push((
                    "Root Token Accessor",
                    text(field(&v, "root_token_accessor")),
                ));
                client.print(&v, &rows);
                if client.format == Format::Table {
                    match kind {
                        InitKind::Shamir => eprintln!(
                            "\nThe shares and the root token are shown only now. Give each share \
                             to a different operator; {threshold} of them unseal the vault."
                        ),
                        InitKind::Tpm => eprintln!(
                            "\nThe vault unseals itself with its TPM while the sealed PCRs keep \
                             their values. The recovery shares and the root token are shown only \
                             now; {threshold} recovery shares unseal the vault when the TPM refuses."
                        ),
                    }
                }
                Ok(Exit::Ok)
            }
            OperatorCommand::Unseal { key, reset, client } => {
                let client = Client::new(&client)?;
                let body = if reset {
                    json!({"reset": true})
                } else {
                    let key = match key {
                        Some(k) => k.0,
                        None => {
                            let mut line = Zeroizing::new(String::new());
                            std::io::stdin()
                                .lock()
                                .read_line(&mut line)
                                .map_err(|e| format!("reading the share from stdin: {e}"))?;
                            line
                        }
                    };
                    json!({"key": key.trim()})
                };
                let v = client
                    .call(reqwest::Method::POST, "/v1/sys/unseal", Some(body))
                    .await?;
                client.print(&v, &status_rows(&v));
                Ok(Exit::Ok)
            }
            OperatorCommand::Seal { client } => {
                let client = Client::new(&client)?;
                let v = client
                    .call(reqwest::Method::POST, "/v1/sys/seal", None)
                    .await?;
                client.print(&v, &status_rows(&v));
                Ok(Exit::Ok)
            }
            OperatorCommand::Status { client } => {
                let client = Client::new(&client)?;
                let v = client
                    .call(reqwest::Method::GET, "/v1/sys/seal-status", None)
                    .await?;
                client.print(&v, &status_rows(&v));
                Ok(Exit::Ok)
            }
            OperatorCommand::Rotate { client } => {
                let client = Client::new(&client)?;
                let v = client
                    .call(reqwest::Method::POST, "/v1/sys/rotate", None)
                    .await?;
                client.print(&v, &[("Key Term", text(field(&v, "term")))]);
                Ok(Exit::Ok)
            }
        }
    })
}
