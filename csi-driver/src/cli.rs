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

    /// Kubelet's plugin registration folder; empty: do not register.
    #[arg(
        long,
        env = "TLSMINT_CSI_REGISTRATION_DIR",
        default_value = "/var/lib/kubelet/plugins_registry"
    )]
    pub registration_dir: PathBuf,

    /// Post pod Events when a renewal is overdue or a certificate expired (needs the
    /// in-cluster config; without it, or with false, they are only logged).
    #[arg(long, env = "TLSMINT_CSI_EVENTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub events: bool,

    /// Per-volume metadata (on the node's disk, not /tmp).
    #[arg(
        long,
        env = "TLSMINT_CSI_STATE_DIR",
        default_value = "/var/lib/tlsmint-csi"
    )]
    pub state_dir: PathBuf,
}
