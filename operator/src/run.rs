//! `tlsmint-operator run`: controllers and issuance APIs in a cluster.

/// Flags of `tlsmint-operator run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {}

/// Runs the operator until shutdown.
pub async fn run(_args: RunArgs) -> anyhow::Result<()> {
    anyhow::bail!("`tlsmint-operator run` is not implemented yet")
}
