//! `keyward debug …`: offline verification of evidence, using only
//! `keyward-attest`, for people and tests chasing a failed attestation.

use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;
use keyward_attest::digest::HashAlg;
use keyward_attest::eventlog::{BootLog, SecureBoot};
use keyward_attest::key::PublicKey;
use keyward_attest::quote::{QuoteKey, verify_quote};
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
