//! The `keyward` command tree. Each noun is a module; a command returns an
//! [`Exit`] so `main` is the only place that terminates the process.

pub(crate) mod artifact;
pub(crate) mod audit;
pub(crate) mod debug;
pub(crate) mod host;
pub(crate) mod launch;
pub(crate) mod operator;
pub(crate) mod policy;
pub(crate) mod release;
pub(crate) mod server;
pub(crate) mod token;

use clap::{Parser, Subcommand};

/// Keyward: an attestation-gated secrets vault for non-human workloads.
///
/// Workloads receive short-lived secrets only after proving their host
/// (TPM quote, boot log), their container image and their model version
/// (Sigstore signatures).
#[derive(Debug, Parser)]
#[command(name = "keyward", version, long_about = None, propagate_version = true)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Top-level nouns.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Offline tools for operators chasing a failed attestation (no server needed).
    #[command(subcommand)]
    Debug(debug::DebugCommand),
    /// Run the vault server.
    Server(server::ServerArgs),
    /// Initialise, unseal, seal and inspect the vault.
    #[command(subcommand)]
    Operator(operator::OperatorCommand),
    /// Create, look up and revoke admin tokens.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Offline checks of the audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Enroll this host's TPM; approve, list, show and revoke hosts.
    #[command(subcommand)]
    Host(host::HostCommand),
    /// Register, list, show and revoke signed images and model versions.
    #[command(subcommand)]
    Artifact(artifact::ArtifactCommand),
    /// Signing policies and Cedar release policies.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Static secrets (the `kv` engine).
    #[command(subcommand)]
    Kv(release::KvCommand),
    /// Look up and revoke leases; list failed revocations.
    #[command(subcommand)]
    Lease(release::LeaseCommand),
    /// Configure secrets engines.
    #[command(subcommand)]
    Engine(release::EngineCommand),
    /// Start a workload instance: instance key, launch record, workload PCR, then exec CMD.
    Launch(launch::LaunchArgs),
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Success: exit code 0.
    Ok,
    /// The input was examined and rejected (invalid quote, …): exit code 1.
    Rejected,
    /// The command could not run (unreadable file, bad argument): exit code 1.
    Failed,
}

impl Exit {
    /// The process exit code.
    pub(crate) fn code(self) -> i32 {
        match self {
            Exit::Ok => 0,
            Exit::Rejected | Exit::Failed => 1,
        }
    }
}

/// Runs the parsed command.
pub(crate) fn run(cli: Cli) -> Exit {
    match cli.command {
        Command::Debug(cmd) => debug::run(cmd),
        Command::Server(args) => server::run(args),
        Command::Operator(cmd) => operator::run(cmd),
        Command::Token(cmd) => token::run(cmd),
        Command::Audit(cmd) => audit::run(cmd),
        Command::Host(cmd) => host::run(cmd),
        Command::Artifact(cmd) => artifact::run(cmd),
        Command::Policy(cmd) => policy::run(cmd),
        Command::Kv(cmd) => release::run_kv(cmd),
        Command::Lease(cmd) => release::run_lease(cmd),
        Command::Engine(cmd) => release::run_engine(cmd),
        Command::Launch(args) => launch::run(args),
    }
}

/// Reads a file named on the command line, capped so a wrong path (a
/// device, a huge log) cannot exhaust memory.
pub(crate) fn read_input(path: &std::path::Path, cap: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > cap {
        return Err(format!("{}: larger than {cap} bytes", path.display()));
    }
    Ok(bytes)
}
