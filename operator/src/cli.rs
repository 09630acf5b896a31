//! The command line: `tlsmint-operator run`, `tlsmint-operator dev` and
//! `tlsmint-operator migrate`.
//! Each mode owns its own argument struct, next to its code.

use clap::{Parser, Subcommand};

/// tlsmint's operator: the certificate authority for a Kubernetes cluster.
#[derive(Debug, Parser)]
#[command(name = "tlsmint-operator", version, about, long_about = None)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The operator's modes.
// Parsed once at start-up: the size difference between the variants is harmless.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controllers and the issuance APIs inside a cluster (in-cluster
    /// config or KUBECONFIG).
    Run(Box<crate::run::RunArgs>),
    /// Run the issuance APIs on this machine with no cluster, in memory, like
    /// `vault server -dev`.
    Dev(crate::dev::DevArgs),
    /// Write tlsmint objects from another PKI's configuration (`migrate from-vault`).
    Migrate(crate::migrate::MigrateArgs),
}
