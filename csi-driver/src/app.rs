//! Wiring of the `tlsmint-csi` process: telemetry, metrics and health, the issuance API
//! channel, the manager (resumed from metadata) with its renewal and trust-check tasks, the CSI
//! socket and kubelet registration.
//! Each step is one small function.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tlsmint_api::csi::DRIVER_NAME;
use tlsmint_client::{Client, ClientConfig, Token, TokenSource};
use tlsmint_runtime::admin::{self, AdminState};
use tlsmint_runtime::cpu::CpuPool;
use tlsmint_runtime::health::Readiness;
use tlsmint_runtime::prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::cli::Args;
use crate::clock::Clock;
use crate::events::{EventSink, KubeEvents, LogEvents};
use crate::issue::Issuer;
use crate::manager::{Config, Manager};
use crate::metrics::Metrics;
use crate::mount::LinuxMounter;
use crate::node::{IdentityService, NodeService, Plugin};
use crate::registration::RegistrationService;
use crate::server;
use crate::store::Store;

/// Runs the driver until SIGTERM.
pub async fn run(args: Args) -> anyhow::Result<()> {
    tlsmint_runtime::telemetry::init(&args.common.log_filter, args.common.log_format)?;
    let cancel = tlsmint_runtime::shutdown::on_signal();
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let readiness = Readiness::new();
    let ready = readiness.register("csi-socket");
    let admin_state = AdminState {
        registry: Arc::new(registry),
        readiness,
        reuse_port: args.common.admin_reuse_port,
    };
    let (_, admin) = admin::serve(args.common.admin_addr, admin_state, cancel.clone()).await?;

    let manager = manager(&args, metrics)?;
    let resumed = manager.resume().context("loading the volume metadata")?;
    tracing::info!(volumes = resumed, "resumed volumes from metadata");
    let renewals = manager.run(cancel.clone());
    let trust = manager.run_trust_refresh(args.trust_refresh_interval.into(), cancel.clone());

    let plugin = Plugin {
        name: DRIVER_NAME.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        node_id: args.node_name.clone(),
    };
    let csi_listener = server::bind(&args.csi_socket)?;
    let csi = tokio::spawn(server::serve_csi(
        csi_listener,
        IdentityService::new(plugin.clone()),
        NodeService::new(plugin, manager),
        cancel.clone(),
    ));
    let registration = register(&args, cancel.clone())?;
    ready.set(true);
    tracing::info!(csi.socket = %args.csi_socket.display(), "tlsmint-csi serving");

    csi.await?.context("serving CSI")?;
    if let Some(task) = registration {
        task.await?.context("serving plugin registration")?;
    }
    renewals.await?;
    trust.await?;
    admin.await?;
    Ok(())
}

fn manager(args: &Args, metrics: Arc<Metrics>) -> anyhow::Result<Manager> {
    let ca = match &args.api_ca_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the API CA file {}", path.display()))?,
        ),
        None => None,
    };
    // The token here is never sent: every call carries the pod's own token.
    let mut config = ClientConfig::new(
        args.api_endpoint.clone(),
        TokenSource::Static(Token::new("unused")?),
    );
    config.ca_bundle_pem = ca;
    config.server_name = args.api_server_name.clone();
    config.timeout = Duration::from_secs(args.api_timeout_seconds);
    let channel = Client::lazy_channel(&config)?;
    let store = Store::open(&args.state_dir)?;
    Ok(Manager::new(
        Config {
            pods_dir: args.kubelet_dir.join("pods"),
            events: events(args),
        },
        store,
        Arc::new(LinuxMounter::default()),
        Issuer::new(channel, CpuPool::per_core()),
        Clock::system(),
        metrics,
    ))
}

/// The pod-event sink: the API server with in-cluster config, else the log.
fn events(args: &Args) -> Arc<dyn EventSink> {
    if !args.events {
        tracing::info!("pod events are off (--events=false): trouble is only logged");
        return Arc::new(LogEvents);
    }
    match KubeEvents::in_cluster(&args.node_name) {
        Ok(sink) => Arc::new(sink),
        Err(error) => {
            tracing::info!(error = %error, "no in-cluster config: pod events are only logged");
            Arc::new(LogEvents)
        }
    }
}

type Task = tokio::task::JoinHandle<Result<(), tonic::transport::Error>>;

fn register(args: &Args, cancel: CancellationToken) -> anyhow::Result<Option<Task>> {
    if args.registration_dir.as_os_str().is_empty() {
        return Ok(None);
    }
    let socket = args
        .registration_dir
        .join(format!("{DRIVER_NAME}-reg.sock"));
    let endpoint = args.kubelet_socket.as_ref().unwrap_or(&args.csi_socket);
    let service = RegistrationService {
        driver_name: DRIVER_NAME.into(),
        endpoint: endpoint.display().to_string(),
    };
    let listener = server::bind(&socket)?;
    tracing::info!(registration.socket = %socket.display(), "serving kubelet plugin registration");
    Ok(Some(tokio::spawn(server::serve_registration(
        listener, service, cancel,
    ))))
}
