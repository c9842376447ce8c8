//! `keyward audit verify FILE`: checks the audit log's hash chain offline.

use std::path::PathBuf;

use clap::Subcommand;
use keyward_vault::audit::{VerifyError, verify};

use super::Exit;

/// Audit commands.
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Check the chain; exit 0 when intact, 1 naming the first broken line.
    Verify {
        /// The audit log file.
        file: PathBuf,
    },
}

/// Runs an audit command.
pub(crate) fn run(cmd: AuditCommand) -> Exit {
    match cmd {
        AuditCommand::Verify { file } => {
            let opened = match std::fs::File::open(&file) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("error: {}: {e}", file.display());
                    return Exit::Failed;
                }
            };
            match verify(opened) {
                Ok(head) => {
                    println!(
                        "{}: intact, {} records (chain head {})",
                        file.display(),
                        head.last_seq,
                        hex::encode(head.last_hash)
                    );
                    Exit::Ok
                }
                Err(VerifyError::Broken(broken)) => {
                    println!("{}: broken at {broken}", file.display());
                    Exit::Rejected
                }
                Err(e) => {
                    eprintln!("error: {}: {e}", file.display());
                    Exit::Failed
                }
            }
        }
    }
}
