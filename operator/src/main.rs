//! `tlsmint-operator`: the CA, its controllers and its issuance APIs.
//!
//! Thin on purpose: parse the command line, run the chosen mode, exit with
//! its error.

use clap::Parser;
use tlsmint_operator::{cli, dev, migrate, run};

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    // Before anything opens files: let the connection caps, not EMFILE, refuse clients.
    if let Err(err) = tlsmint_runtime::limits::raise_nofile_limit() {
        eprintln!("raising the open-file limit failed: {err}");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            cli::Command::Run(args) => run::run(args).await,
            cli::Command::Dev(args) => dev::run(args).await,
            cli::Command::Migrate(args) => migrate::run(args).await,
        }
    })
}
