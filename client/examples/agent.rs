//! A minimal agent: attests with the host's TPM and releases one kv secret,
//! printing its field names (never its values).
//!
//! Run it under `keyward launch`, which sets everything the client needs
//! (`KEYWARD_INSTANCE_KEY`, `KEYWARD_STATE_DIR`, `KEYWARD_TCTI`,
//! `KEYWARD_WORKLOAD_LOG`, `KEYWARD_WORKLOAD_PCR`); `KEYWARD_VAULT` names the
//! vault when the host's state directory does not, `KEYWARD_CACERT` a PEM
//! file of CA roots for its TLS certificate, and `KEYWARD_KV_PATH` the
//! secret (default `app/config`):
//!
//! ```sh
//! keyward launch --image REF@sha256:… --model-digest sha256:… -- \
//!     target/debug/examples/agent
//! ```

use std::process::ExitCode;

use keyward_client::{Client, ClientError};

async fn run() -> Result<(), ClientError> {
    let client = Client::builder().from_launch_env().build()?;
    let path = std::env::var("KEYWARD_KV_PATH")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "app/config".to_owned());
    let secret = client.kv(&path).await?;
    println!("{} (version {}):", secret.path(), secret.version());
    for key in secret.keys() {
        println!("  {key}");
    }
    Ok(())
}

fn main() -> ExitCode {
    // libtss2 logs to stderr unless told otherwise; quiet it as the
    // `keyward` binary does, while the process has one thread.
    keyward_client::silence_libtss2_logs_at_startup();
    agent()
}

#[tokio::main(flavor = "current_thread")]
async fn agent() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agent: {e}");
            ExitCode::FAILURE
        }
    }
}
