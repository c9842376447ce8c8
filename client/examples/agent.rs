//! A minimal agent: attests with the host's TPM and releases one kv secret,
//! printing its field names (never its values).
//!
//! Environment: `KEYWARD_VAULT` (vault URL), `KEYWARD_STATE_DIR` (the host
//! state directory `keyward host enroll` wrote), `KEYWARD_TCTI` (default
//! `device:/dev/tpmrm0`), `KEYWARD_INSTANCE_KEY` (the instance key file
//! `keyward launch` wrote), optionally `KEYWARD_CACERT` (PEM roots for
//! https) and `KEYWARD_KV_PATH` (default `app/config`).

use std::process::ExitCode;

use keyward_client::{Client, ClientError, DEFAULT_TCTI};

async fn run() -> Result<(), ClientError> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut builder = Client::builder()
        .instance_key_from_env()
        .tpm(env("KEYWARD_TCTI").unwrap_or_else(|| DEFAULT_TCTI.to_owned()));
    if let Some(vault) = env("KEYWARD_VAULT") {
        builder = builder.vault(vault);
    }
    if let Some(dir) = env("KEYWARD_STATE_DIR") {
        builder = builder.host_state_dir(dir);
    }
    if let Some(path) = env("KEYWARD_CACERT") {
        let pem = std::fs::read(&path).map_err(|source| ClientError::File {
            path: path.into(),
            source,
        })?;
        builder = builder.ca_roots(pem);
    }
    let client = builder.build()?;
    let path = env("KEYWARD_KV_PATH").unwrap_or_else(|| "app/config".to_owned());
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
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("agent: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("agent: {e}");
            ExitCode::FAILURE
        }
    }
}
