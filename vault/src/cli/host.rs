//! `keyward host enroll|approve|list|show|revoke|set-boot-policy|set-labels|status`.
//!
//! `enroll` is the host side of enrollment (design brief §2): it reads the
//! EK and its certificate from the TPM, creates an AK under the EK, sends
//! them to the vault, runs TPM2_ActivateCredential on the challenge and
//! returns the secret. It then keeps the AK blob (`ak.blob`, 0600) and the
//! host id (`host.json`) in the state directory, for later quotes.
//! `status` reads that host id and shows what the vault thinks of this host
//! (through the admin route `GET /v1/hosts/{id}`, so it needs a platform or
//! auditor token until the vault offers a host-authenticated route).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::Subcommand;
use keyward_hardware::{AkAlgorithm, EkKind, Tpm};
use serde_json::{Value, json};

use super::Exit;
use super::operator::{Client, ClientArgs, Format, block_on, field, text};

/// Largest boot policy file read.
const MAX_POLICY_FILE: u64 = 256 * 1024;

/// Which EK to enroll with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum EkChoice {
    /// RSA 2048 (NV index 0x01c00002).
    Rsa,
    /// ECC NIST P-384 (NV index 0x01c00016).
    Ecc,
}

/// Host commands.
#[derive(Debug, Subcommand)]
pub(crate) enum HostCommand {
    /// Enroll this host's TPM (needs a platform token).
    Enroll {
        /// The vault's address (overrides --addr / KEYWARD_ADDR).
        #[arg(long)]
        vault: Option<String>,
        /// The TPM to use, e.g. `device:/dev/tpmrm0` or `swtpm:path=…`.
        #[arg(long, default_value = "device:/dev/tpmrm0")]
        tcti: String,
        /// Labels, `k=v,k=v`.
        #[arg(long, value_parser = parse_labels)]
        labels: Option<BTreeMap<String, String>>,
        /// The host name to request.
        #[arg(long)]
        name: Option<String>,
        /// Where the AK blob and host id are kept.
        #[arg(long, default_value = "/var/lib/keyward")]
        state_dir: PathBuf,
        /// Which EK.
        #[arg(long, value_enum, default_value = "rsa")]
        ek: EkChoice,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Approve a pending host (platform).
    Approve {
        /// The host id.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List hosts (platform, auditor).
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show a host (platform, auditor).
    Show {
        /// The host id.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revoke a host at once (platform).
    Revoke {
        /// The host id.
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Set a host's boot policy from a JSON file (platform).
    SetBootPolicy {
        /// The host id.
        id: String,
        /// JSON: `{"golden_pcrs": …}` or `{"rules": …}`.
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// What the vault thinks of this host: state, labels, boot policy, last
    /// attestation. Reads the host id from `<state-dir>/host.json`. Needs a
    /// platform or auditor token (`--token` / KEYWARD_TOKEN) today, because
    /// `GET /v1/hosts/{id}` is an admin route.
    Status {
        /// Where `keyward host enroll` kept host.json.
        #[arg(long, default_value = "/var/lib/keyward")]
        state_dir: PathBuf,
        /// The vault's address (default: the one recorded at enrollment,
        /// else --addr / KEYWARD_ADDR).
        #[arg(long)]
        vault: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Replace a host's labels (platform).
    SetLabels {
        /// The host id.
        id: String,
        /// Labels, `k=v,k=v` (empty: none).
        #[arg(long, value_parser = parse_labels)]
        labels: BTreeMap<String, String>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| format!("label {pair:?} is not k=v"))
        })
        .collect()
}

fn host_rows(v: &Value) -> Vec<(&'static str, String)> {
    let cert = field(v, "ek_certificate");
    let labels = field(v, "labels")
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", text(v)))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    vec![
        ("Host ID", text(field(v, "id"))),
        ("Name", text(field(v, "name"))),
        ("State", text(field(v, "state"))),
        ("EK Hash", text(field(v, "ek_hash"))),
        ("EK Issuer", text(field(cert, "issuer"))),
        ("TPM Manufacturer", text(field(cert, "tpm_manufacturer"))),
        ("TPM Model", text(field(cert, "tpm_model"))),
        ("AK Name", text(field(v, "ak_name"))),
        ("Labels", labels),
        (
            "Boot Policy",
            if field(v, "boot_policy").is_null() {
                "-".to_owned()
            } else {
                "set".to_owned()
            },
        ),
        ("Enrolled At", text(field(v, "enrolled_at"))),
        ("Last Attested At", text(field(v, "last_attested_at"))),
    ]
}

fn print_list(client: &Client, v: &Value) {
    if client.format == Format::Json {
        client.print(v, &[]);
        return;
    }
    let hosts = field(v, "hosts").as_array().cloned().unwrap_or_default();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{:<32}  {:<8}  {:<24}  EK ISSUER",
        "ID", "STATE", "NAME"
    );
    for h in &hosts {
        let _ = writeln!(
            out,
            "{:<32}  {:<8}  {:<24}  {}",
            text(field(h, "id")),
            text(field(h, "state")),
            text(field(h, "name")),
            text(field(field(h, "ek_certificate"), "issuer")),
        );
    }
}

/// Writes `bytes` to `path` with mode 0600.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn b64(v: &Value, name: &str) -> Result<Vec<u8>, String> {
    field(v, name)
        .as_str()
        .and_then(|s| STANDARD.decode(s).ok())
        .ok_or_else(|| format!("the vault's answer has no valid {name}"))
}

async fn enroll(
    vault: Option<String>,
    tcti: &str,
    labels: Option<BTreeMap<String, String>>,
    name: Option<String>,
    state_dir: &Path,
    ek: EkChoice,
    mut args: ClientArgs,
) -> Result<Exit, String> {
    if let Some(vault) = vault {
        args.addr = vault;
    }
    let client = Client::new(&args)?;
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)
            .map_err(|e| format!("{}: {e}", state_dir.display()))?;
    }
    let kind = match ek {
        EkChoice::Rsa => EkKind::Rsa2048,
        EkChoice::Ecc => EkKind::EccP384,
    };
    let tpm = Tpm::open(tcti).map_err(|e| format!("TPM {tcti}: {e}"))?;
    let ek_public = tpm
        .ek_public(kind)
        .map_err(|e| format!("reading the EK: {e}"))?;
    // A TPM without an EK certificate may still enroll when the vault has
    // its EK hash on the allowlist.
    let certificate = match tpm.ek_certificate(kind) {
        Ok(der) => Some(der),
        Err(e) => {
            eprintln!("warning: no EK certificate ({e}); relying on the vault's EK allowlist");
            None
        }
    };
    let ak = tpm
        .create_ak(kind, AkAlgorithm::RsaSsaSha256)
        .map_err(|e| format!("creating the AK: {e}"))?;
    let ak_public = ak.public().map_err(|e| format!("AK: {e}"))?;

    let body = json!({
        "ek_public": STANDARD.encode(&ek_public.tpm2b_public),
        "ek_certificate": certificate.map(|der| STANDARD.encode(der)),
        "ak_public": STANDARD.encode(&ak_public.tpm2b_public),
        "labels": labels.unwrap_or_default(),
        "name": name,
    });
    let challenge = client
        .call(reqwest::Method::POST, "/v1/hosts/enroll", Some(body))
        .await?;
    let id = field(&challenge, "enrollment_id")
        .as_str()
        .filter(|id| keyward_vault::hosts::valid_id(id))
        .ok_or("the vault's answer has no valid enrollment_id")?
        .to_owned();
    let secret = tpm
        .activate_credential(
            &ak,
            &b64(&challenge, "credential_blob")?,
            &b64(&challenge, "encrypted_secret")?,
        )
        .map_err(|e| format!("TPM2_ActivateCredential: {e}"))?;
    let mut encoded = zeroize::Zeroizing::new(STANDARD.encode(secret.as_slice()));
    let record = client
        .call(
            reqwest::Method::POST,
            &format!("/v1/hosts/enroll/{id}/activate"),
            Some(json!({ "secret": encoded.as_str() })),
        )
        .await?;
    zeroize::Zeroize::zeroize(&mut *encoded);
    let ak_path = state_dir.join("ak.blob");
    ak.save(&ak_path)
        .map_err(|e| format!("{}: {e}", ak_path.display()))?;
    let host = json!({
        "host_id": field(&record, "id"),
        "vault": args.addr,
        "ek": match ek { EkChoice::Rsa => "rsa", EkChoice::Ecc => "ecc" },
    });
    write_private(
        &state_dir.join("host.json"),
        format!("{host:#}\n").as_bytes(),
    )?;
    client.print(&record, &host_rows(&record));
    Ok(Exit::Ok)
}

/// Largest host.json read.
const MAX_HOST_FILE: u64 = 64 * 1024;

/// The rows `host status` shows.
fn status_rows(v: &Value, vault: &str) -> Vec<(&'static str, String)> {
    let wanted = [
        "Host ID",
        "Name",
        "State",
        "Labels",
        "Boot Policy",
        "Last Attested At",
    ];
    let mut rows: Vec<_> = host_rows(v)
        .into_iter()
        .filter(|(name, _)| wanted.contains(name))
        .collect();
    rows.push(("Vault", vault.to_owned()));
    rows
}

/// `host status`: the host id from host.json, then `GET /v1/hosts/{id}`.
async fn status(
    state_dir: &Path,
    vault: Option<String>,
    mut args: ClientArgs,
) -> Result<Exit, String> {
    let path = state_dir.join("host.json");
    let bytes = super::read_input(&path, MAX_HOST_FILE)
        .map_err(|e| format!("{e} (has this host been enrolled with `keyward host enroll`?)"))?;
    let host: Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    let id = field(&host, "host_id")
        .as_str()
        .ok_or_else(|| format!("{}: no host_id", path.display()))?;
    let host_path = host_path(id, "")?;
    if let Some(vault) = vault.or_else(|| field(&host, "vault").as_str().map(str::to_owned)) {
        args.addr = vault;
    }
    let client = Client::new(&args)?;
    let v = client.call(reqwest::Method::GET, &host_path, None).await?;
    client.print(&v, &status_rows(&v, &args.addr));
    Ok(Exit::Ok)
}

/// Runs a host command.
pub(crate) fn run(cmd: HostCommand) -> Exit {
    block_on(async move {
        match cmd {
            HostCommand::Enroll {
                vault,
                tcti,
                labels,
                name,
                state_dir,
                ek,
                client,
            } => enroll(vault, &tcti, labels, name, &state_dir, ek, client).await,
            HostCommand::Approve { id, client } => {
                simple(
                    &client,
                    reqwest::Method::POST,
                    &host_path(&id, "/approve")?,
                    None,
                )
                .await
            }
            HostCommand::Show { id, client } => {
                simple(&client, reqwest::Method::GET, &host_path(&id, "")?, None).await
            }
            HostCommand::Revoke { id, client } => {
                simple(
                    &client,
                    reqwest::Method::POST,
                    &host_path(&id, "/revoke")?,
                    None,
                )
                .await
            }
            HostCommand::SetBootPolicy { id, file, client } => {
                let bytes = super::read_input(&file, MAX_POLICY_FILE)?;
                let policy: Value = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("{}: {e}", file.display()))?;
                simple(
                    &client,
                    reqwest::Method::PUT,
                    &host_path(&id, "/boot-policy")?,
                    Some(json!({ "boot_policy": policy })),
                )
                .await
            }
            HostCommand::Status {
                state_dir,
                vault,
                client,
            } => status(&state_dir, vault, client).await,
            HostCommand::SetLabels { id, labels, client } => {
                simple(
                    &client,
                    reqwest::Method::PUT,
                    &host_path(&id, "/labels")?,
                    Some(json!({ "labels": labels })),
                )
                .await
            }
            HostCommand::List { client } => {
                let client = Client::new(&client)?;
                let v = client.call(reqwest::Method::GET, "/v1/hosts", None).await?;
                print_list(&client, &v);
                Ok(Exit::Ok)
            }
        }
    })
}

/// `/v1/hosts/{id}{suffix}`, for a well-formed id only (an id with `/` or
/// `..` would name another route).
fn host_path(id: &str, suffix: &str) -> Result<String, String> {
    if !keyward_vault::hosts::valid_id(id) {
        return Err(format!("host id {id:?} is not 32 hex digits"));
    }
    Ok(format!("/v1/hosts/{id}{suffix}"))
}

/// One call answered by a host record.
async fn simple(
    args: &ClientArgs,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Result<Exit, String> {
    let client = Client::new(args)?;
    let v = client.call(method, path, body).await?;
    client.print(&v, &host_rows(&v));
    Ok(Exit::Ok)
}
