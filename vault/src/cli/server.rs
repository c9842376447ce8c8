//! `keyward server --config FILE`: runs the vault until SIGINT or SIGTERM.

use std::path::PathBuf;

use keyward_vault::api::{init_dev, open_state, serve};
use keyward_vault::config::Config;

use super::Exit;

/// Arguments of `keyward server`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServerArgs {
    /// The TOML configuration file (see docs/config.md).
    #[arg(long)]
    pub(crate) config: PathBuf,
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            // Without a SIGTERM handler, wait for Ctrl-C alone.
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// Runs the server.
pub(crate) fn run(args: ServerArgs) -> Exit {
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Failed;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Failed;
        }
    };
    let result = runtime.block_on(async {
        let state = open_state(&config).await?;
        if config.dev {
            let (warning, token) = init_dev(&state, config.listen).await?;
            eprintln!("\n{warning}\n");
            println!("Root Token: {}", token.expose());
        }
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        eprintln!("keyward: listening on {scheme}://{}", config.listen);
        serve(&config, state, shutdown_signal()).await
    });
    match result {
        Ok(()) => Exit::Ok,
        Err(e) => {
            eprintln!("error: {e}");
            Exit::Failed
        }
    }
}
