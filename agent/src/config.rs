//! The agent's command line: `tlsmint-agent [FLAGS]` runs the agent, `tlsmint-agent probe`
//! checks the files (the native sidecar's startup probe). Every flag is also an environment
//! variable, which is how the injector configures the sidecar.
//!
//! Owns flag names, environment variables, defaults and their validation into [`Settings`].
//! Must not: do I/O beyond reading the API's CA file.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tlsmint_api::v1alpha1::KeySpec;
use tlsmint_api::{Fraction, annotations};
use tlsmint_runtime::cli::LogFormat;

/// Gets a pod's certificate from tlsmint and keeps it valid.
///
/// Writes tls.crt (leaf and chain), tls.key, ca.crt and a single-file bundle (key, leaf,
/// chain) atomically into --dir, renews at --renew-at of the lifetime with jitter, retries
/// failures with backoff while the old pair stays in place until it expires, keeps ca.crt
/// equal to the roots trusted now (checked every --trust-refresh-interval), and optionally
/// tells the application after each rotation or trust change (a signal or an HTTP call).
#[derive(Debug, Parser)]
#[command(
    name = "tlsmint-agent",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    /// `probe`: check the files instead of running the agent.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Flags of the agent itself (when no subcommand is given).
    #[command(flatten)]
    pub run: RunArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Exit 0 when --dir holds a valid certificate (key matches, chain verifies, not
    /// expired), 1 otherwise. Used as the sidecar's startupProbe.
    Probe(ProbeArgs),
}

/// Logging flags (the agent has no admin server: it shares the pod's ports with the app).
#[derive(Clone, Debug, Args)]
pub struct LogArgs {
    /// Log filter in tracing's EnvFilter syntax, e.g. `info` or `debug`.
    #[arg(long = "log-level", env = "TLSMINT_LOG", default_value = "info")]
    pub log_filter: String,

    /// Log line format.
    #[arg(long, env = "TLSMINT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Plain)]
    pub log_format: LogFormat,
}

/// Where the files are and what they are called.
#[derive(Clone, Debug, Args)]
pub struct FileArgs {
    /// Folder the files are written into (the shared in-memory volume).
    #[arg(long, env = "TLSMINT_DIR", default_value = annotations::DEFAULT_MOUNT_PATH)]
    pub dir: PathBuf,

    /// Name of the certificate file (leaf followed by its chain).
    #[arg(long, env = "TLSMINT_CERT_FILE", default_value = tlsmint_api::TLS_CERT_FILE)]
    pub cert_file: String,

    /// Name of the private key file (PKCS#8 PEM).
    #[arg(long, env = "TLSMINT_KEY_FILE", default_value = tlsmint_api::TLS_KEY_FILE)]
    pub key_file: String,

    /// Name of the CA bundle file (the roots to trust).
    #[arg(long, env = "TLSMINT_CA_FILE", default_value = tlsmint_api::CA_CERT_FILE)]
    pub ca_file: String,

    /// Name of the single-file bundle (key, leaf, chain in one PEM file: a reader of this one
    /// file never sees a key that does not match its certificate). Empty: not written.
    #[arg(long, env = "TLSMINT_BUNDLE_FILE", default_value = "tls-bundle.pem")]
    pub bundle_file: String,
}

/// `tlsmint-agent probe`.
#[derive(Clone, Debug, Args)]
pub struct ProbeArgs {
    /// Files to check.
    #[command(flatten)]
    pub files: FileArgs,
}

/// `tlsmint-agent`: the agent.
#[derive(Clone, Debug, Args)]
pub struct RunArgs {
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,

    /// Files.
    #[command(flatten)]
    pub files: FileArgs,

    /// The issuance API (gRPC), e.g. https://tlsmint-api.tlsmint-system.svc:8201.
    #[arg(
        long,
        env = "TLSMINT_ENDPOINT",
        default_value = "https://tlsmint-api.tlsmint-system.svc:8201"
    )]
    pub endpoint: String,

    /// PEM file of the CA that signs the API's serving certificate.
    #[arg(long, env = "TLSMINT_API_CA_FILE", conflicts_with = "api_ca")]
    pub api_ca_file: Option<PathBuf>,

    /// The same CA as PEM text (the injector passes it this way).
    #[arg(long, env = "TLSMINT_API_CA", hide_env_values = true)]
    pub api_ca: Option<String>,

    /// Name to check in the API's certificate when it differs from the endpoint's host.
    #[arg(long, env = "TLSMINT_API_SERVER_NAME")]
    pub api_server_name: Option<String>,

    /// Projected ServiceAccount token for the audience `tlsmint` (re-read for every call).
    #[arg(long, env = "TLSMINT_TOKEN_FILE", default_value = tlsmint_client::token::DEFAULT_TOKEN_PATH)]
    pub token_file: PathBuf,

    /// The IssuerRole to issue through.
    #[arg(long, env = "TLSMINT_ROLE", required = true)]
    pub role: Option<String>,

    /// Common name. `$(POD_NAME)`, `$(POD_NAMESPACE)` and `$(SERVICE_ACCOUNT)` are resolved.
    #[arg(long, env = "TLSMINT_COMMON_NAME")]
    pub common_name: Option<String>,

    /// Comma-separated DNS SANs (placeholders resolved).
    #[arg(long, env = "TLSMINT_DNS_NAMES", value_delimiter = ',')]
    pub dns_names: Vec<String>,

    /// Comma-separated IP SANs.
    #[arg(long, env = "TLSMINT_IP_SANS", value_delimiter = ',')]
    pub ip_sans: Vec<String>,

    /// Comma-separated URI SANs (placeholders resolved).
    #[arg(long, env = "TLSMINT_URI_SANS", value_delimiter = ',')]
    pub uri_sans: Vec<String>,

    /// Requested lifetime, e.g. 1h or 2m (default: the role's ttl).
    #[arg(long, env = "TLSMINT_TTL")]
    pub ttl: Option<tlsmint_api::Duration>,

    /// Key to make in the pod: ECDSA (P-256), ECDSA-384, Ed25519, RSA (2048), RSA-3072...
    #[arg(long, env = "TLSMINT_KEY_ALGORITHM", default_value = "ECDSA")]
    pub key_algorithm: KeySpec,

    /// Let the server make the key (Issue) instead of making it here and sending a CSR
    /// (Sign). With Issue the private key crosses the network.
    #[arg(long, env = "TLSMINT_ISSUE", default_value_t = false)]
    pub issue: bool,

    /// Renew at this fraction of the certificate's lifetime (jitter brings it forward by up
    /// to 5% of the lifetime, at most 10 minutes).
    #[arg(long, env = "TLSMINT_RENEW_AT", default_value = "0.5")]
    pub renew_at: Fraction,

    /// How often the roots to trust are fetched (GetCABundle for --role) between renewals;
    /// when they changed (a CA rotation), ca.crt is rewritten beside the same key and
    /// certificate and the reload action runs.
    #[arg(
        long,
        env = "TLSMINT_TRUST_REFRESH_INTERVAL",
        default_value = "60s",
        value_parser = positive_duration
    )]
    pub trust_refresh_interval: tlsmint_api::Duration,

    /// Timeout of each call to the API.
    #[arg(long, env = "TLSMINT_API_TIMEOUT", default_value = "10s")]
    pub api_timeout: tlsmint_api::Duration,

    /// The pod's name, for `$(POD_NAME)` (downward API).
    #[arg(long, env = "POD_NAME", default_value = "")]
    pub pod_name: String,

    /// The pod's namespace, for `$(POD_NAMESPACE)` (downward API).
    #[arg(long, env = "POD_NAMESPACE", default_value = "")]
    pub pod_namespace: String,

    /// The pod's ServiceAccount, for `$(SERVICE_ACCOUNT)` (downward API).
    #[arg(long, env = "SERVICE_ACCOUNT", default_value = "")]
    pub service_account: String,

    /// Signal sent after each rotation or trust change to the processes named by
    /// --reload-process, e.g. HUP for nginx (needs shareProcessNamespace: true on the pod).
    #[arg(long, env = "TLSMINT_RELOAD_SIGNAL", requires = "reload_process")]
    pub reload_signal: Option<crate::reload::SignalName>,

    /// Name of the processes to signal (as in /proc/PID/comm, e.g. nginx).
    #[arg(long, env = "TLSMINT_RELOAD_PROCESS", requires = "reload_signal")]
    pub reload_process: Option<String>,

    /// URL called with POST after each rotation or trust change, e.g.
    /// http://127.0.0.1:8080/-/reload (plain HTTP inside the pod only).
    #[arg(long, env = "TLSMINT_RELOAD_URL")]
    pub reload_url: Option<String>,
}

/// A duration longer than zero (a zero interval would spin).
fn positive_duration(value: &str) -> Result<tlsmint_api::Duration, String> {
    let parsed: tlsmint_api::Duration = value.parse().map_err(|e| format!("{e}"))?;
    if Duration::from(parsed).is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(parsed)
}

impl RunArgs {
    /// The per-call timeout.
    pub fn timeout(&self) -> Duration {
        self.api_timeout.into()
    }

    /// `value` with `$(POD_NAME)`, `$(POD_NAMESPACE)` and `$(SERVICE_ACCOUNT)` resolved.
    pub fn resolve(&self, value: &str) -> String {
        value
            .replace(annotations::POD_NAME_PLACEHOLDER, &self.pod_name)
            .replace(annotations::POD_NAMESPACE_PLACEHOLDER, &self.pod_namespace)
            .replace(
                annotations::SERVICE_ACCOUNT_PLACEHOLDER,
                &self.service_account,
            )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_the_run_flags_and_resolves_placeholders() {
        let cli = Cli::try_parse_from([
            "tlsmint-agent",
            "--role=web",
            "--dns-names=$(POD_NAME).$(POD_NAMESPACE).svc,web",
            "--pod-name=p",
            "--pod-namespace=ns",
            "--ttl=2m",
            "--renew-at=0.6",
        ])
        .unwrap();
        assert!(cli.command.is_none());
        let run = cli.run;
        assert_eq!(run.resolve(&run.dns_names[0]), "p.ns.svc");
        assert_eq!(run.dns_names[1], "web");
        assert_eq!(f64::from(run.renew_at), 0.6);
        assert_eq!(run.timeout(), Duration::from_secs(10));
        assert_eq!(
            Duration::from(run.trust_refresh_interval),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn trust_refresh_interval_must_be_positive() {
        let parse = |v: &str| {
            Cli::try_parse_from([
                "tlsmint-agent",
                "--role=web",
                &format!("--trust-refresh-interval={v}"),
            ])
        };
        let cli = parse("5m").unwrap();
        assert_eq!(
            Duration::from(cli.run.trust_refresh_interval),
            Duration::from_secs(300)
        );
        assert!(parse("0s").is_err());
    }

    #[test]
    fn probe_needs_no_role() {
        let cli = Cli::try_parse_from(["tlsmint-agent", "probe", "--dir=/x"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Probe(_))));
    }
}
