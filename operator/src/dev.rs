//! `tlsmint-operator dev`: the issuance APIs on one machine, in memory.

/// Flags of `tlsmint-operator dev`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {}

/// Runs dev mode until interrupted.
pub async fn run(_args: DevArgs) -> anyhow::Result<()> {
    anyhow::bail!("`tlsmint-operator dev` is not implemented yet")
}
