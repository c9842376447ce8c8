//! `keyward`: the vault server and the command line for operators,
//! platform teams, release engineers and hosts.
//!
//! Subcommands arrive with the features they drive; the command tree
//! mirrors the API (`keyward <noun> <verb>`).

use clap::Parser;

/// Keyward: an attestation-gated secrets vault for non-human workloads.
///
/// Workloads receive short-lived secrets only after proving their host
/// (TPM quote, boot log), their container image and their model version
/// (Sigstore signatures).
#[derive(Debug, Parser)]
#[command(name = "keyward", version, about, long_about = None, propagate_version = true)]
struct Cli {}

fn main() {
    keyward_hardware::silence_libtss2_logs_at_startup();
    let Cli {} = Cli::parse();
}
