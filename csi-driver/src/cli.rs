//! The command line of `tlsmint-csi`: every flag also an environment variable.
//!
//! Owns flag names and defaults. It must not start anything.

use std::path::PathBuf;

use tlsmint_runtime::cli::CommonArgs;

/// `tlsmint-csi`: the CSI node plugin for `csi.tlsmint.io` ephemeral inline volumes.
#[derive(Debug, clap::Parser)]
#[command(name = "tlsmint-csi", version, about)]
pub struct Args {
    /// Logging and the admin (metrics/health) server.
    #[command(flatten)]
    pub common: CommonArgs,

    /// This node's name (NodeGetInfo's node id; the DaemonSet passes spec.nodeName).
    #[arg(long, env = "NODE_NAME")]
    pub node_name: String,

    /// The issuance API (tlsmint.v1.Issuer), e.g. https://tlsmint-operator.tlsmint-system.svc:8201.
    #[arg(long, env = "TLSMINT_API_ENDPOINT")]
    pub api_endpoint: String,

    /// PEM file with the CA that signs the issuance API's certificate (ConfigMap tlsmint-api-ca).
    #[arg(long, env = "TLSMINT_API_CA_FILE")]
    pub api_ca_file: Option<PathBuf>,

    /// Name to verify in the API's certificate when it differs from the endpoint's host.
    #[arg(long, env = "TLSMINT_API_SERVER_NAME")]
    pub api_server_name: Option<String>,

    /// Timeout of each Sign call, seconds.
    #[arg(long, env = "TLSMINT_API_TIMEOUT_SECONDS", default_value_t = 10)]
    pub api_timeout_seconds: u64,

    /// The kubelet's root folder; targets must lie below its `pods` folder.
    #[arg(
        long,
        env = "TLSMINT_CSI_KUBELET_DIR",
        default_value = "/var/lib/kubelet"
    )]
    pub kubelet_dir: PathBuf,

    /// Where the CSI socket is created.
    #[arg(
        long,
        env = "TLSMINT_CSI_SOCKET",
        default_value = "/var/lib/kubelet/plugins/csi.tlsmint.io/csi.sock"
    )]
    pub csi_socket: PathBuf,

    /// The CSI socket's path as kubelet sees it (default: --csi-socket).
    #[arg(long, env = "TLSMINT_CSI_KUBELET_SOCKET")]
    pub kubelet_socket: Option<PathBuf>,

    /// Kubelet's plugin registration folder; empty (`--registration-dir=`): do not register.
    #[arg(
        long,
        env = "TLSMINT_CSI_REGISTRATION_DIR",
        default_value = "/var/lib/kubelet/plugins_registry",
        value_parser = path_or_empty
    )]
    pub registration_dir: PathBuf,

    /// Post pod Events when a renewal is overdue or a certificate expired (needs the
    /// in-cluster config; without it, or with false, they are only logged).
    #[arg(long, env = "TLSMINT_CSI_EVENTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub events: bool,

    /// How often every ready volume's CA file is compared with the roots its role trusts
    /// now (one GetCABundle per role), and rewritten with the same key and certificate when
    /// they changed (a CA rotation), e.g. 60s or 5m.
    #[arg(
        long,
        env = "TLSMINT_CSI_TRUST_REFRESH_INTERVAL",
        default_value = "60s",
        value_parser = positive_duration
    )]
    pub trust_refresh_interval: tlsmint_api::Duration,

    /// Per-volume metadata (on the node's disk, not /tmp).
    #[arg(
        long,
        env = "TLSMINT_CSI_STATE_DIR",
        default_value = "/var/lib/tlsmint-csi"
    )]
    pub state_dir: PathBuf,
}

/// A duration longer than zero (a zero interval would spin).
fn positive_duration(value: &str) -> Result<tlsmint_api::Duration, String> {
    let parsed: tlsmint_api::Duration = value.parse().map_err(|e| format!("{e}"))?;
    if std::time::Duration::from(parsed).is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(parsed)
}

/// A path, where empty means "none" (clap's own path parser refuses empty values).
fn path_or_empty(value: &str) -> Result<PathBuf, std::convert::Infallible> {
    Ok(PathBuf::from(value))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::path::Path;

    use clap::Parser;

    use super::*;

    const BASE: [&str; 5] = [
        "tlsmint-csi",
        "--node-name",
        "n1",
        "--api-endpoint",
        "http://127.0.0.1:8201",
    ];

    #[test]
    fn registration_can_be_turned_off_with_an_empty_folder() {
        let args = Args::try_parse_from(BASE).unwrap();
        assert_eq!(
            args.registration_dir,
            Path::new("/var/lib/kubelet/plugins_registry")
        );
        let off =
            Args::try_parse_from(BASE.iter().copied().chain(["--registration-dir="])).unwrap();
        assert!(off.registration_dir.as_os_str().is_empty());
        let args = Args::try_parse_from(BASE.iter().copied().chain(["--events", "false"])).unwrap();
        assert!(!args.events);
    }

    #[test]
    fn trust_refresh_defaults_to_a_minute_and_refuses_zero() {
        let args = Args::try_parse_from(BASE).unwrap();
        let every = std::time::Duration::from(args.trust_refresh_interval);
        assert_eq!(every, std::time::Duration::from_secs(60));
        let args = Args::try_parse_from(
            BASE.iter()
                .copied()
                .chain(["--trust-refresh-interval", "5m"]),
        )
        .unwrap();
        let every = std::time::Duration::from(args.trust_refresh_interval);
        assert_eq!(every, std::time::Duration::from_secs(300));
        assert!(
            Args::try_parse_from(BASE.iter().copied().chain(["--trust-refresh-interval=0s"]))
                .is_err()
        );
    }
}
