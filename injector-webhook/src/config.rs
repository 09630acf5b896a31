//! The injector's command line and the [`Injection`] settings the mutation reads: images,
//! commands, paths and resources come only from here, never from a pod's annotations.
//!
//! Owns flag names, environment variables and defaults. Must not: serve or mutate.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use tlsmint_api::annotations::ReloadSignal;
use tlsmint_runtime::cli::CommonArgs;

/// Mutating admission webhook: injects the tlsmint-agent native sidecar, or an inline
/// csi.tlsmint.io volume, into pods annotated tlsmint.io/inject: "true".
#[derive(Clone, Debug, Parser)]
#[command(name = "tlsmint-injector", version)]
pub struct Cli {
    /// Logging and the admin server.
    #[command(flatten)]
    pub common: CommonArgs,

    /// Address of the HTTPS admission endpoint (POST /mutate).
    #[arg(long, env = "TLSMINT_INJECTOR_ADDR", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,

    /// Serving certificate (PEM, leaf first). Re-read when it changes.
    #[arg(long, env = "TLSMINT_INJECTOR_TLS_CERT_FILE")]
    pub tls_cert_file: PathBuf,

    /// Serving key (PEM). Re-read when it changes.
    #[arg(long, env = "TLSMINT_INJECTOR_TLS_KEY_FILE")]
    pub tls_key_file: PathBuf,

    /// How often the serving certificate files are checked for changes.
    #[arg(
        long,
        env = "TLSMINT_INJECTOR_TLS_RELOAD_INTERVAL",
        default_value = "10s"
    )]
    pub tls_reload_interval: tlsmint_api::Duration,

    /// Ask the operator (`CheckPolicy`, nothing issued) whether an annotated pod's
    /// ServiceAccount may use its role for its names, and refuse it at admission with the
    /// operator's reason if not. An operator that does not answer admits the pod (fail open).
    #[arg(
        long,
        env = "TLSMINT_INJECTOR_POLICY_CHECK",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub policy_check: bool,

    /// The injector's own ServiceAccount token for the audience `tlsmint` (re-read for each
    /// check; the operator must list this ServiceAccount in --policy-check-callers).
    #[arg(
        long,
        env = "TLSMINT_INJECTOR_TOKEN_FILE",
        default_value = "/var/run/secrets/tlsmint/token"
    )]
    pub policy_check_token_file: PathBuf,

    /// How long an admission waits for the operator's answer before admitting the pod.
    #[arg(
        long,
        env = "TLSMINT_INJECTOR_POLICY_CHECK_TIMEOUT",
        default_value = "2s"
    )]
    pub policy_check_timeout: tlsmint_api::Duration,

    /// What is injected.
    #[command(flatten)]
    pub injection: InjectionArgs,
}

/// What the injector puts into pods.
#[derive(Clone, Debug, clap::Args)]
pub struct InjectionArgs {
    /// Image of the agent sidecar (the tlsmint image).
    #[arg(long, env = "TLSMINT_AGENT_IMAGE", default_value = "tlsmint:latest")]
    pub agent_image: String,

    /// Pull policy of the agent image.
    #[arg(
        long,
        env = "TLSMINT_AGENT_IMAGE_PULL_POLICY",
        default_value = "IfNotPresent"
    )]
    pub agent_image_pull_policy: String,

    /// Path of the agent binary inside the image.
    #[arg(
        long,
        env = "TLSMINT_AGENT_COMMAND",
        default_value = "/usr/local/bin/tlsmint-agent"
    )]
    pub agent_command: String,

    /// The issuance API the agent calls (gRPC).
    #[arg(
        long,
        env = "TLSMINT_API_ENDPOINT",
        default_value = "https://tlsmint-api.tlsmint-system.svc:8201"
    )]
    pub api_endpoint: String,

    /// PEM file of the CA of the API's serving certificate; passed to the agent.
    #[arg(long, env = "TLSMINT_API_CA_FILE")]
    pub api_ca_file: Option<PathBuf>,

    /// Name to check in the API's certificate, when it differs from the endpoint's host.
    #[arg(long, env = "TLSMINT_API_SERVER_NAME")]
    pub api_server_name: Option<String>,

    /// CPU request of the agent.
    #[arg(long, env = "TLSMINT_AGENT_CPU_REQUEST", default_value = "5m")]
    pub agent_cpu_request: String,

    /// Memory request of the agent.
    #[arg(long, env = "TLSMINT_AGENT_MEMORY_REQUEST", default_value = "16Mi")]
    pub agent_memory_request: String,

    /// Memory limit of the agent.
    #[arg(long, env = "TLSMINT_AGENT_MEMORY_LIMIT", default_value = "64Mi")]
    pub agent_memory_limit: String,

    /// Lifetime of the projected ServiceAccount token the agent uses (seconds, >= 600).
    #[arg(long, env = "TLSMINT_TOKEN_EXPIRATION_SECONDS", default_value_t = 3600)]
    pub token_expiration_seconds: i64,

    /// Log level of the agent.
    #[arg(long, env = "TLSMINT_AGENT_LOG", default_value = "info")]
    pub agent_log_level: String,

    /// Signals a pod may ask the agent to send after a rotation (tlsmint.io/reload-signal),
    /// comma-separated; an empty value allows none. TERM restarts the app and is off by default.
    #[arg(
        long,
        env = "TLSMINT_INJECTOR_RELOAD_SIGNALS",
        value_delimiter = ',',
        default_value = "HUP,USR1,USR2"
    )]
    pub reload_signals: Vec<String>,

    /// Whether a pod may ask the agent to POST to a URL inside the pod after a rotation
    /// (tlsmint.io/reload-url; loopback addresses only).
    #[arg(
        long,
        env = "TLSMINT_INJECTOR_ALLOW_RELOAD_URL",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub allow_reload_url: bool,

    /// How often the agent re-reads the mount's trusted roots and rewrites ca.crt when
    /// they change (its --trust-refresh-interval, e.g. 30s). Unset: the agent's default
    /// (60s). Keep it below the PkiMounts' spec.rotation.propagationDelay.
    #[arg(long, env = "TLSMINT_AGENT_TRUST_REFRESH_INTERVAL")]
    pub agent_trust_refresh_interval: Option<tlsmint_api::Duration>,
}

/// Settings the mutation reads (flags plus the API's CA, read once at start).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Injection {
    /// The agent's image.
    pub agent_image: String,
    /// Its pull policy.
    pub agent_image_pull_policy: String,
    /// The agent binary.
    pub agent_command: String,
    /// The API endpoint.
    pub api_endpoint: String,
    /// The API's CA, PEM.
    pub api_ca_pem: Option<String>,
    /// The API's server name.
    pub api_server_name: Option<String>,
    /// CPU request.
    pub cpu_request: String,
    /// Memory request.
    pub memory_request: String,
    /// Memory limit.
    pub memory_limit: String,
    /// Token lifetime.
    pub token_expiration_seconds: i64,
    /// Agent log level.
    pub agent_log_level: String,
    /// Signals pods may ask for.
    pub reload_signals: Vec<ReloadSignal>,
    /// Whether pods may ask for a reload call.
    pub allow_reload_url: bool,
    /// The agent's trust refresh interval, if not its default.
    pub agent_trust_refresh_interval: Option<tlsmint_api::Duration>,
}

impl InjectionArgs {
    /// The settings, with the API's CA read from its file.
    pub fn load(&self) -> anyhow::Result<Injection> {
        let api_ca_pem =
            match &self.api_ca_file {
                Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                    anyhow::anyhow!("reading --api-ca-file {}: {e}", path.display())
                })?),
                None => None,
            };
        let reload_signals = self
            .reload_signals
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<ReloadSignal>()
                    .map_err(|e| anyhow::anyhow!("--reload-signals: {e}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        if self.token_expiration_seconds < 600 {
            anyhow::bail!("--token-expiration-seconds must be at least 600 (Kubernetes' minimum)");
        }
        Ok(Injection {
            agent_image: self.agent_image.clone(),
            agent_image_pull_policy: self.agent_image_pull_policy.clone(),
            agent_command: self.agent_command.clone(),
            api_endpoint: self.api_endpoint.clone(),
            api_ca_pem,
            api_server_name: self.api_server_name.clone(),
            cpu_request: self.agent_cpu_request.clone(),
            memory_request: self.agent_memory_request.clone(),
            memory_limit: self.agent_memory_limit.clone(),
            token_expiration_seconds: self.token_expiration_seconds,
            agent_log_level: self.agent_log_level.clone(),
            reload_signals,
            allow_reload_url: self.allow_reload_url,
            agent_trust_refresh_interval: self.agent_trust_refresh_interval,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    fn injection(args: &[&str]) -> anyhow::Result<Injection> {
        let mut argv = vec!["tlsmint-injector", "--tls-cert-file=c", "--tls-key-file=k"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)?.injection.load()
    }

    #[test]
    fn reload_signals_default_to_the_harmless_ones_and_can_be_narrowed() {
        let default = injection(&[]).unwrap();
        assert_eq!(
            default.reload_signals,
            [ReloadSignal::Hup, ReloadSignal::Usr1, ReloadSignal::Usr2]
        );
        assert!(default.allow_reload_url);
        let none = injection(&["--reload-signals=", "--allow-reload-url=false"]).unwrap();
        assert!(none.reload_signals.is_empty());
        assert!(!none.allow_reload_url);
        let err = injection(&["--reload-signals=HUP,KILL"]).unwrap_err();
        assert!(err.to_string().contains("--reload-signals"), "{err}");
    }
}
