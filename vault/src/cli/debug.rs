//! `keyward debug …`: offline verification of evidence, using only
//! `keyward-attest`, for people and tests chasing a failed attestation.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;
use keyward_attest::digest::HashAlg;
use keyward_attest::eventlog::{BootLog, SecureBoot};
use keyward_attest::key::PublicKey;
use keyward_attest::quote::{QuoteKey, verify_quote};
use keyward_attest::sigstore::Signer;
use keyward_attest::sigstore::cli::{
    CommandArtifact, CommandSigner, verify_bundle_command, verify_model_signature_command,
};
use keyward_attest::tpm::pcr::PcrFile;
use keyward_attest::tpm::public::TpmPublic;
use serde_json::json;

use super::{Exit, read_input};

/// Largest structure file accepted (quotes, signatures, keys, PCR files).
const MAX_STRUCTURE_FILE: u64 = 64 * 1024;
/// Largest event log accepted: the parser's own cap (checked by a test).
const MAX_EVENT_LOG_FILE: u64 = 4 << 20;

/// Offline debugging commands.
#[derive(Debug, Subcommand)]
pub(crate) enum DebugCommand {
    /// Verify a TPM quote as `tpm2_checkquote` does; exit 0 when valid, 1 with the reason when not.
    Quote(QuoteArgs),
    /// Parse and replay a TCG PC Client boot event log; print PCR banks, events and facts as JSON.
    Eventlog(EventlogArgs),
    /// Verify a Sigstore bundle (the Sigstore conformance CLI protocol); exit 0 when verified.
    VerifyBundle(VerifyBundleArgs),
    /// Verify an OpenSSF model-signing signature over a model directory; print the model version id.
    VerifyModel(VerifyModelArgs),
}

/// Arguments of `keyward debug verify-bundle`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("signer").required(true).args(["certificate_identity", "key"])))]
pub(crate) struct VerifyBundleArgs {
    /// The Sigstore bundle (JSON).
    #[arg(long)]
    pub(crate) bundle: PathBuf,
    /// The certificate's subject alternative name, exactly.
    #[arg(long, requires = "certificate_oidc_issuer")]
    pub(crate) certificate_identity: Option<String>,
    /// The OIDC issuer in the certificate, exactly.
    #[arg(long, requires = "certificate_identity")]
    pub(crate) certificate_oidc_issuer: Option<String>,
    /// A PEM public key (managed-key signatures).
    #[arg(long, conflicts_with = "certificate_identity")]
    pub(crate) key: Option<PathBuf>,
    /// A trusted_root.json; default: the Sigstore public-good root.
    #[arg(long)]
    pub(crate) trusted_root: Option<PathBuf>,
    /// The signed file, or `sha256:<hex>` of it.
    pub(crate) artifact: String,
}

/// Arguments of `keyward debug verify-model`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("signer").required(true).args(["identity", "key", "certificate_chain"])))]
pub(crate) struct VerifyModelArgs {
    /// The model-signing signature (a Sigstore bundle, `model.sig`).
    #[arg(long)]
    pub(crate) signature: PathBuf,
    /// Keyless: the signer identity (certificate SAN), exactly.
    #[arg(long, requires = "issuer")]
    pub(crate) identity: Option<String>,
    /// Keyless: the OIDC issuer, exactly.
    #[arg(long, requires = "identity")]
    pub(crate) issuer: Option<String>,
    /// Key mode: the signer's PEM public key.
    #[arg(long)]
    pub(crate) key: Option<PathBuf>,
    /// Certificate mode: PEM CA certificates the signing certificate must chain to.
    #[arg(long)]
    pub(crate) certificate_chain: Option<PathBuf>,
    /// A path (relative to the model directory) left out of the comparison; repeat for more.
    #[arg(long)]
    pub(crate) ignore_paths: Vec<String>,
    /// A trusted_root.json; default: the Sigstore public-good root.
    #[arg(long)]
    pub(crate) trusted_root: Option<PathBuf>,
    /// The model directory.
    pub(crate) model_dir: PathBuf,
}

/// Arguments of `keyward debug eventlog`.
#[derive(Debug, clap::Args)]
pub(crate) struct EventlogArgs {
    /// The binary event log (e.g. /sys/kernel/security/tpm0/binary_bios_measurements).
    pub(crate) file: PathBuf,
    /// Quoted PCR values (tpm2-tools serialized format) to check the replay
    /// against. Without it, event data and facts are checked against the
    /// log's own replay, which proves consistency, not provenance.
    #[arg(long)]
    pub(crate) pcrs: Option<PathBuf>,
}

/// Arguments of `keyward debug quote`.
#[derive(Debug, clap::Args)]
pub(crate) struct QuoteArgs {
    /// The AK: PEM public key, or TPM2B_PUBLIC as `tpm2_createak -u` writes it.
    #[arg(long)]
    pub(crate) ak: PathBuf,
    /// The quoted TPMS_ATTEST (`tpm2_quote -m`).
    #[arg(long)]
    pub(crate) quote: PathBuf,
    /// The TPMT_SIGNATURE (`tpm2_quote -s`).
    #[arg(long)]
    pub(crate) sig: PathBuf,
    /// PCR values in tpm2-tools' serialized format (`tpm2_quote -o`).
    #[arg(long)]
    pub(crate) pcrs: PathBuf,
    /// The expected qualifying data (nonce), hex.
    #[arg(long)]
    pub(crate) nonce: String,
}

/// Runs a debug command.
pub(crate) fn run(cmd: DebugCommand) -> Exit {
    match cmd {
        DebugCommand::Quote(args) => quote(&args),
        DebugCommand::Eventlog(args) => eventlog(&args),
        DebugCommand::VerifyBundle(args) => verify_bundle(&args),
        DebugCommand::VerifyModel(args) => verify_model(&args),
    }
}

fn quote(args: &QuoteArgs) -> Exit {
    let inputs = (|| {
        let ak = read_input(&args.ak, MAX_STRUCTURE_FILE)?;
        let attest = read_input(&args.quote, MAX_STRUCTURE_FILE)?;
        let signature = read_input(&args.sig, MAX_STRUCTURE_FILE)?;
        let pcrs = read_input(&args.pcrs, MAX_STRUCTURE_FILE)?;
        let nonce = hex::decode(args.nonce.trim()).map_err(|e| format!("--nonce: {e}"))?;
        Ok::<_, String>((ak, attest, signature, pcrs, nonce))
    })();
    let (ak, attest, signature, pcrs, nonce) = match inputs {
        Ok(inputs) => inputs,
        Err(reason) => return fail(Exit::Failed, &reason),
    };
    let pcrs = match PcrFile::parse(&pcrs) {
        Ok(file) => file.into_values(),
        Err(e) => return fail(Exit::Rejected, &format!("PCR file: {e}")),
    };
    enum AkKey {
        Tpm(TpmPublic),
        Pem(PublicKey),
    }
    let ak = if ak.starts_with(b"-----BEGIN") {
        match std::str::from_utf8(&ak)
            .map_err(|e| e.to_string())
            .and_then(|pem| PublicKey::from_pem(pem).map_err(|e| e.to_string()))
        {
            Ok(key) => AkKey::Pem(key),
            Err(e) => return fail(Exit::Rejected, &format!("AK: {e}")),
        }
    } else {
        match TpmPublic::parse(&ak) {
            Ok(public) => AkKey::Tpm(public),
            Err(e) => return fail(Exit::Rejected, &format!("AK: {e}")),
        }
    };
    let key = match &ak {
        AkKey::Tpm(public) => QuoteKey::Tpm(public),
        AkKey::Pem(key) => QuoteKey::Public(key),
    };
    match verify_quote(key, &attest, &signature, &pcrs, &nonce) {
        Ok(verified) => {
            let clock = verified.clock_info();
            let banks = pcr_json(verified.pcr_values());
            let report = json!({
                "valid": true,
                "signature_hash": verified.signature_hash().name(),
                "pcrs": banks,
                "clock": {
                    "clock": clock.clock,
                    "reset_count": clock.reset_count,
                    "restart_count": clock.restart_count,
                    "safe": clock.safe,
                },
                "firmware_version": format!("{:#018x}", verified.firmware_version()),
                "qualified_signer": hex::encode(verified.qualified_signer()),
            });
            print_json(&report);
            Exit::Ok
        }
        Err(e) => fail(Exit::Rejected, &format!("invalid quote: {e}")),
    }
}

fn eventlog(args: &EventlogArgs) -> Exit {
    let bytes = match read_input(&args.file, MAX_EVENT_LOG_FILE) {
        Ok(bytes) => bytes,
        Err(reason) => return fail(Exit::Failed, &reason),
    };
    let log = match BootLog::parse(&bytes) {
        Ok(log) => log,
        Err(e) => return fail(Exit::Rejected, &format!("event log: {e}")),
    };
    let replayed = log.replay();
    let (reference, checked_against) = match &args.pcrs {
        None => (replayed.clone(), "replay"),
        Some(path) => match read_input(path, MAX_STRUCTURE_FILE)
            .and_then(|b| PcrFile::parse(&b).map_err(|e| format!("PCR file: {e}")))
        {
            Ok(file) => (file.into_values(), "quote"),
            Err(reason) => return fail(Exit::Failed, &reason),
        },
    };
    let verified = match log.verify(&reference) {
        Ok(verified) => verified,
        Err(e) => {
            return fail(
                Exit::Rejected,
                &format!("event log does not match the PCRs: {e}"),
            );
        }
    };
    let events: Vec<serde_json::Value> = verified
        .events()
        .map(|event| {
            let raw = event.event();
            let mut digests = serde_json::Map::new();
            for alg in HashAlg::ALL {
                if let Some(d) = raw.digest(alg) {
                    digests.insert(alg.name().into(), json!(hex::encode(d)));
                }
            }
            let event_type = raw.event_type();
            json!({
                "index": raw.index(),
                "offset": raw.offset(),
                "pcr": raw.pcr(),
                "type": event_type.name().map_or_else(|| format!("{:#010x}", event_type.0), str::to_owned),
                "digests": digests,
                "data": hex::encode(raw.unverified_data()),
                "data_verification": format!("{:?}", event.data_verification()),
            })
        })
        .collect();
    let facts = verified.facts();
    let secure_boot = match facts.secure_boot() {
        SecureBoot::Enabled { event_index } => json!({"state": "enabled", "event": event_index}),
        SecureBoot::Disabled { event_index } => json!({"state": "disabled", "event": event_index}),
        _ => json!({"state": "not_measured"}),
    };
    let report = json!({
        "format": format!("{:?}", log.format()),
        "checked_against": checked_against,
        "pcrs": pcr_json(&replayed),
        "events": events,
        "facts": {
            "secure_boot": secure_boot,
            "efi_applications": facts.efi_applications().map(|apps| apps.iter().map(|a| json!({
                "event": a.event_index,
                "sha256": hex::encode(a.digest.0),
            })).collect::<Vec<_>>()),
            "kernel_command_lines": facts.kernel_command_lines().iter().map(|c| json!({
                "event": c.event_index,
                "source": format!("{:?}", c.source),
                "text": c.text,
            })).collect::<Vec<_>>(),
            "scrtm_versions": facts.scrtm_versions().iter().map(|v| json!({
                "event": v.event_index,
                "text": v.text(),
            })).collect::<Vec<_>>(),
            "separators": facts.separators().iter().map(|s| json!({
                "event": s.event_index,
                "pcr": s.pcr,
                "value": s.value,
            })).collect::<Vec<_>>(),
        },
    });
    print_json(&report);
    Exit::Ok
}

/// Largest signature, bundle, key or trusted-root file accepted.
const MAX_SIGSTORE_FILE: u64 = 16 << 20;
/// Largest artifact read into memory for `verify-bundle` (larger ones: pass `sha256:<hex>`).
const MAX_ARTIFACT_FILE: u64 = 1 << 30;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn read_text(path: &std::path::Path) -> Result<String, String> {
    String::from_utf8(read_input(path, MAX_SIGSTORE_FILE)?)
        .map_err(|_| format!("{}: not UTF-8 text", path.display()))
}

fn verify_bundle(args: &VerifyBundleArgs) -> Exit {
    let inputs = (|| {
        let bundle = read_input(&args.bundle, MAX_SIGSTORE_FILE)?;
        let root = args
            .trusted_root
            .as_deref()
            .map(|p| read_input(p, MAX_SIGSTORE_FILE))
            .transpose()?;
        let key = args.key.as_deref().map(read_text).transpose()?;
        let artifact = if CommandArtifact::is_digest_argument(&args.artifact) {
            None
        } else {
            Some(read_input(
                std::path::Path::new(&args.artifact),
                MAX_ARTIFACT_FILE,
            )?)
        };
        Ok::<_, String>((bundle, root, key, artifact))
    })();
    let (bundle, root, key, artifact) = match inputs {
        Ok(inputs) => inputs,
        Err(reason) => return fail(Exit::Failed, &reason),
    };
    let signer = match (
        &key,
        &args.certificate_identity,
        &args.certificate_oidc_issuer,
    ) {
        (Some(pem), _, _) => CommandSigner::Key(pem),
        (None, Some(identity), Some(issuer)) => CommandSigner::Identity { identity, issuer },
        _ => {
            return fail(
                Exit::Failed,
                "give --key or --certificate-identity with --certificate-oidc-issuer",
            );
        }
    };
    let artifact = match &artifact {
        Some(bytes) => CommandArtifact::File(bytes),
        None => CommandArtifact::Digest(&args.artifact),
    };
    match verify_bundle_command(&bundle, signer, root.as_deref(), artifact, now()) {
        Ok(verified) => {
            print_json(&artifact_json(&verified));
            Exit::Ok
        }
        Err(e) => fail(Exit::Rejected, &e.report()),
    }
}

fn verify_model(args: &VerifyModelArgs) -> Exit {
    let inputs = (|| {
        let signature = read_input(&args.signature, MAX_SIGSTORE_FILE)?;
        let root = args
            .trusted_root
            .as_deref()
            .map(|p| read_input(p, MAX_SIGSTORE_FILE))
            .transpose()?;
        let key = args.key.as_deref().map(read_text).transpose()?;
        let chain = args
            .certificate_chain
            .as_deref()
            .map(read_text)
            .transpose()?;
        Ok::<_, String>((signature, root, key, chain))
    })();
    let (signature, root, key, chain) = match inputs {
        Ok(inputs) => inputs,
        Err(reason) => return fail(Exit::Failed, &reason),
    };
    let signer = match (&key, &chain, &args.identity, &args.issuer) {
        (Some(pem), None, None, None) => CommandSigner::Key(pem),
        (None, Some(pem), None, None) => CommandSigner::CertificateChain(pem),
        (None, None, Some(identity), Some(issuer)) => CommandSigner::Identity { identity, issuer },
        _ => {
            return fail(
                Exit::Failed,
                "give exactly one of --key, --certificate-chain, --identity/--issuer",
            );
        }
    };
    let verified = match verify_model_signature_command(&signature, signer, root.as_deref(), now())
    {
        Ok(verified) => verified,
        Err(e) => return fail(Exit::Rejected, &e.report()),
    };
    // The signature file itself is not part of the model when it lies inside it.
    let mut ignore: Vec<String> = args.ignore_paths.clone();
    if let (Ok(sig), Ok(dir)) = (args.signature.canonicalize(), args.model_dir.canonicalize())
        && let Ok(relative) = sig.strip_prefix(&dir)
        && let Some(relative) = relative.to_str()
    {
        ignore.push(relative.to_owned());
    }
    let ignore: Vec<&str> = ignore.iter().map(String::as_str).collect();
    // Git files are ignored, as `model_signing verify` does by default.
    let mut hasher = match verified.hasher(&ignore, true) {
        Ok(hasher) => hasher,
        Err(e) => return fail(Exit::Failed, &format!("--ignore-paths: {e}")),
    };
    if let Err(e) = keyward_vault::model_dir::hash_model_dir(&args.model_dir, &mut hasher) {
        return fail(Exit::Failed, &format!("model directory: {e}"));
    }
    match verified.check_hashed(hasher) {
        Ok(artifact) => {
            if let Some(model) = artifact.model() {
                let _ = writeln!(std::io::stdout(), "{}", model.id());
            }
            let _ = writeln!(
                std::io::stderr(),
                "{}",
                serde_json::to_string(&artifact_json(&artifact)).unwrap_or_default()
            );
            Exit::Ok
        }
        Err(e) => fail(Exit::Rejected, &format!("model verification failed: {e}")),
    }
}

/// What a verified artifact proves, for people.
fn artifact_json(artifact: &keyward_attest::sigstore::VerifiedArtifact) -> serde_json::Value {
    let signer = match artifact.signer() {
        Signer::Keyless {
            issuer, subject, ..
        } => json!({"keyless": {"issuer": issuer, "subject": subject}}),
        Signer::Key { key_id } => json!({"key": key_id}),
        Signer::Certificate { ca_id, .. } => json!({"certificate": {"ca": ca_id}}),
        _ => json!("other"),
    };
    json!({
        "verified": true,
        "digest": artifact.digest_string(),
        "predicate_type": artifact.predicate_type(),
        "signer": signer,
        "tlog": artifact.tlog().map(|t| json!({"log_index": t.log_index, "integrated_time": t.integrated_time})),
        "model_version": artifact.model().map(|m| m.id()),
    })
}

/// `{"sha256": {"0": "hex", …}, …}`
fn pcr_json(values: &keyward_attest::digest::PcrValues) -> serde_json::Value {
    let mut banks = serde_json::Map::new();
    for (alg, index, value) in values.iter() {
        let bank = banks
            .entry(alg.name())
            .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
        if let Some(bank) = bank.as_object_mut() {
            bank.insert(index.to_string(), json!(hex::encode(value)));
        }
    }
    serde_json::Value::Object(banks)
}

fn print_json(value: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut out, value);
    let _ = writeln!(out);
}

fn fail(exit: Exit, reason: &str) -> Exit {
    let _ = writeln!(std::io::stderr(), "keyward: {reason}");
    exit
}

#[cfg(test)]
mod tests {
    #[test]
    fn event_log_file_cap_is_the_parser_cap() {
        assert_eq!(
            usize::try_from(super::MAX_EVENT_LOG_FILE),
            Ok(keyward_attest::eventlog::MAX_LOG_LEN)
        );
    }
}
