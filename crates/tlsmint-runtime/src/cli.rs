//! Flags every tlsmint binary shares: logging and the admin (metrics/health) address.
//!
//! Owns their names, environment variables and defaults. Binaries `#[command(flatten)]` it
//! into their own argument struct; it must not hold flags only one binary uses.

use std::net::SocketAddr;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Plain,
    /// One JSON object per line (for log collectors).
    Json,
}

/// Logging and admin-server flags, shared by every binary.
#[derive(Clone, Debug, clap::Args)]
pub struct CommonArgs {
    /// Log filter in tracing's EnvFilter syntax, e.g. `info` or
    /// `info,tlsmint_operator=debug,kube=warn`.
    #[arg(long = "log-level", env = "TLSMINT_LOG", default_value = "info")]
    pub log_filter: String,

    /// Log line format.
    #[arg(long, env = "TLSMINT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Plain)]
    pub log_format: LogFormat,

    /// Address of the admin server: Prometheus `/metrics`, `/healthz` (the process is
    /// alive) and `/readyz` (the process can serve).
    #[arg(long, env = "TLSMINT_ADMIN_ADDR", default_value = "0.0.0.0:9090")]
    pub admin_addr: SocketAddr,

    /// Let several processes on one host share the admin port (SO_REUSEPORT). Only for
    /// replicas that share the host network on one node (the local test cluster); the
    /// kernel then spreads requests, so a probe may be answered by a sibling replica.
    #[arg(long, env = "TLSMINT_ADMIN_REUSE_PORT", default_value_t = false)]
    pub admin_reuse_port: bool,
}
