//! `keyward`: the vault server and the command line for operators,
//! platform teams, release engineers and hosts. The command tree mirrors
//! the API (`keyward <noun> <verb>`).
#![forbid(unsafe_code)]

mod cli;

use clap::Parser;

fn main() {
    // Before any thread exists: libtss2 reads TSS2_LOG once.
    keyward_hardware::silence_libtss2_logs_at_startup();
    let exit = cli::run(cli::Cli::parse());
    std::process::exit(exit.code());
}
