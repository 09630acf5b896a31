//! `tlsmint-csi`: parse the flags, run, exit with the error.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tlsmint_csi::app::run(tlsmint_csi::cli::Args::parse()).await
}
