//! `keyward artifact register image|model`, `list`, `show`, `revoke`.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::{Value, json};

use super::Exit;
use super::operator::{Client, ClientArgs, Format, block_on, field, text};

/// Largest bundle or signature file read (`keyward-attest`'s bundle cap;
/// the server's body limit usually bites first).
const MAX_BUNDLE_FILE: u64 = 16 * 1024 * 1024;

/// Artifact commands.
#[derive(Debug, Subcommand)]
pub(crate) enum ArtifactCommand {
    /// Register a signed image or model version (release).
    #[command(subcommand)]
    Register(RegisterCommand),
    /// List registered artifacts (release, auditor).
    List {
        /// Only `image` or `model`.
        #[arg(long)]
        kind: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show an artifact by digest (`sha256:…`).
    Show {
        /// The digest.
        digest: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revoke an artifact, at once (release).
    Revoke {
        /// The digest.
        digest: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// What to register.
#[derive(Debug, Subcommand)]
pub(crate) enum RegisterCommand {
    /// A container image, by reference (or digest and repository).
    Image {
        /// `registry/repo:tag` or `registry/repo@sha256:…`.
        #[arg(
            long = "ref",
            required_unless_present = "digest",
            conflicts_with = "digest"
        )]
        reference: Option<String>,
        /// The manifest digest, `sha256:…` (instead of --ref).
        #[arg(long)]
        digest: Option<String>,
        /// `registry/repo`, with --digest --discover.
        #[arg(long, requires = "digest")]
        repository: Option<String>,
        /// A cosign v3 Sigstore bundle file.
        #[arg(
            long,
            required_unless_present = "discover",
            conflicts_with = "discover"
        )]
        bundle: Option<PathBuf>,
        /// Discover the signature in the OCI registry.
        #[arg(long)]
        discover: bool,
        /// The image signing policy's name.
        #[arg(long)]
        policy: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// A model version by id, with its model-signing signature.
    // `--version` is the model version here, not the program's.
    #[command(disable_version_flag = true)]
    Model {
        /// The model version id, `sha256:<root digest>`.
        #[arg(long = "version", id = "model_version")]
        version: String,
        /// The signature file (`model.sig`).
        #[arg(long)]
        signature: PathBuf,
        /// The model signing policy's name.
        #[arg(long)]
        policy: String,
        /// A name for the model.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

fn read_json(path: &Path) -> Result<Value, String> {
    let bytes = super::read_input(path, MAX_BUNDLE_FILE)?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{}: not JSON: {e}", path.display()))
}

fn rows(v: &Value) -> Vec<(&'static str, String)> {
    let signer = field(v, "signer");
    let signer_text = match text(field(signer, "type")).as_str() {
        "keyless" => format!(
            "{} ({})",
            text(field(signer, "subject")),
            text(field(signer, "issuer"))
        ),
        "key" => format!("key {}", text(field(signer, "key_id"))),
        "certificate" => format!("certificate from CA {}", text(field(signer, "ca_id"))),
        _ => "-".to_owned(),
    };
    vec![
        ("Digest", text(field(v, "digest"))),
        ("Kind", text(field(v, "kind"))),
        ("Name", text(field(v, "name"))),
        ("Repository", text(field(v, "repository"))),
        ("State", text(field(v, "state"))),
        ("Policy", text(field(v, "policy"))),
        ("Signer", signer_text),
        ("Predicate Type", text(field(v, "predicate_type"))),
        ("Log Index", text(field(field(v, "tlog"), "log_index"))),
        (
            "Integrated Time",
            text(field(field(v, "tlog"), "integrated_time")),
        ),
        ("Source", text(field(v, "source"))),
        ("Registered At", text(field(v, "registered_at"))),
        ("Registered By", text(field(v, "registered_by"))),
        ("Revoked At", text(field(v, "revoked_at"))),
    ]
}

/// Runs an artifact command.
pub(crate) fn run(cmd: ArtifactCommand) -> Exit {
    block_on(async move {
        match cmd {
            ArtifactCommand::Register(RegisterCommand::Image {
                reference,
                digest,
                repository,
                bundle,
                discover,
                policy,
                client,
            }) => {
                let client = Client::new(&client)?;
                let mut body = json!({ "policy": policy });
                let put = |body: &mut Value, k: &str, v: Value| {
                    if let Some(obj) = body.as_object_mut() {
                        obj.insert(k.to_owned(), v);
                    }
                };
                if let Some(r) = reference {
                    put(&mut body, "reference", Value::String(r));
                }
                if let Some(d) = digest {
                    put(&mut body, "digest", Value::String(d));
                }
                if let Some(r) = repository {
                    put(&mut body, "repository", Value::String(r));
                }
                match bundle {
                    Some(path) => put(&mut body, "bundle", read_json(&path)?),
                    None => put(&mut body, "discover", Value::Bool(discover)),
                }
                let v = client
                    .call(reqwest::Method::POST, "/v1/artifacts/images", Some(body))
                    .await?;
                client.print(&v, &rows(&v));
            }
            ArtifactCommand::Register(RegisterCommand::Model {
                version,
                signature,
                policy,
                name,
                client,
            }) => {
                let client = Client::new(&client)?;
                let mut body = json!({
                    "version": version, "policy": policy, "signature": read_json(&signature)?,
                });
                if let (Some(n), Some(obj)) = (name, body.as_object_mut()) {
                    obj.insert("name".to_owned(), Value::String(n));
                }
                let v = client
                    .call(reqwest::Method::POST, "/v1/artifacts/models", Some(body))
                    .await?;
                client.print(&v, &rows(&v));
            }
            ArtifactCommand::List { kind, client } => {
                let client = Client::new(&client)?;
                let path = match kind {
                    Some(k) => format!("/v1/artifacts?kind={k}"),
                    None => "/v1/artifacts".to_owned(),
                };
                let v = client.call(reqwest::Method::GET, &path, None).await?;
                match client.format {
                    Format::Json => client.print(&v, &[]),
                    Format::Table => {
                        let mut out = std::io::stdout().lock();
                        let _ = writeln!(
                            out,
                            "{:<71}  {:<5}  {:<7}  {:<16}  NAME",
                            "DIGEST", "KIND", "STATE", "POLICY"
                        );
                        for a in field(&v, "artifacts").as_array().into_iter().flatten() {
                            let _ = writeln!(
                                out,
                                "{:<71}  {:<5}  {:<7}  {:<16}  {}",
                                text(field(a, "digest")),
                                text(field(a, "kind")),
                                text(field(a, "state")),
                                text(field(a, "policy")),
                                text(field(a, "name"))
                            );
                        }
                    }
                }
            }
            ArtifactCommand::Show { digest, client } => {
                let client = Client::new(&client)?;
                let v = client
                    .call(
                        reqwest::Method::GET,
                        &format!("/v1/artifacts/{digest}"),
                        None,
                    )
                    .await?;
                client.print(&v, &rows(&v));
            }
            ArtifactCommand::Revoke { digest, client } => {
                let client = Client::new(&client)?;
                let v = client
                    .call(
                        reqwest::Method::POST,
                        &format!("/v1/artifacts/{digest}/revoke"),
                        None,
                    )
                    .await?;
                client.print(&v, &rows(&v));
            }
        }
        Ok(Exit::Ok)
    })
}
