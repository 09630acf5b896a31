//! `tlsmint-operator run`: the operator in a cluster. Wires, in order: tracing, the
//! Kubernetes client, metrics and the admin server (`/metrics`, `/healthz`, `/readyz`), the
//! loader (every replica: the one CA state the issuance API and the controllers read), then the
//! controllers under leader election. Each piece is started by one small function.
//!
//! Owns the flags of `run` and the wiring. It must not hold controller logic.

use std::sync::Arc;

use anyhow::Context as _;
use kube::runtime::events::{Recorder, Reporter};
use prometheus_client::registry::Registry;
use tlsmint_runtime::admin::{self, AdminState};
use tlsmint_runtime::cli::CommonArgs;
use tlsmint_runtime::health::Readiness;
use tlsmint_runtime::{CancellationToken, shutdown, telemetry};

use crate::api::metrics::ApiMetrics;
use crate::controllers::loader::{self, LoaderConfig};
use crate::controllers::metrics::Metrics;
use crate::controllers::{self, Context};
use crate::leader::{self, LeaderConfig};
use crate::registry::Registry as IssuanceRegistry;
use tlsmint_runtime::cpu::CpuPool;

/// Flags of `tlsmint-operator run`. The cluster is found through the in-cluster service
/// account, or `KUBECONFIG` / `~/.kube/config` outside a cluster.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "The API client is not rate-limited (kube-rs has no client-side QPS limit), so a burst of \
                  CertificateRequests is limited only by the API server."
)]
pub struct RunArgs {
    #[command(flatten)]
    common: CommonArgs,

    /// The operator's namespace: CA key Secrets and the leader Lease live there.
    #[arg(long, env = "POD_NAMESPACE", default_value = "tlsmint-system")]
    namespace: String,

    /// This replica's identity in the leader Lease (default: the host name).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,

    /// Name of the leader-election Lease in the operator's namespace.
    #[arg(long, env = "TLSMINT_LEASE_NAME", default_value = "tlsmint-operator")]
    lease_name: String,

    /// How long the lease is valid without renewal; a peer takes over after that.
    #[arg(long, env = "TLSMINT_LEASE_DURATION", default_value = "15s")]
    lease_duration: tlsmint_api::Duration,

    /// How long the leader keeps going while it cannot renew (must be shorter than the
    /// lease duration); after that it stops its controllers.
    #[arg(long, env = "TLSMINT_LEASE_RENEW_DEADLINE", default_value = "10s")]
    renew_deadline: tlsmint_api::Duration,

    /// Time between attempts to acquire or renew the lease.
    #[arg(long, env = "TLSMINT_LEASE_RETRY_PERIOD", default_value = "2s")]
    retry_period: tlsmint_api::Duration,

    /// Reconcile only PkiMounts, IssuerRoles and CertificateRequests with these labels
    /// (e.g. `team=a`), to run several operators side by side on one cluster.
    #[arg(long, env = "TLSMINT_LABEL_SELECTOR")]
    label_selector: Option<String>,

    /// Most reconciles of one kind at once (each object is still reconciled by one at a
    /// time). Bounds memory, connections and the load a burst puts on the API server.
    #[arg(long, env = "TLSMINT_CONCURRENCY", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,

    #[command(flatten, next_help_heading = "Issuance APIs (every replica)")]
    api: crate::api::ApiArgs,

    /// Report pods annotated `tlsmint.io/inject: "true"` that were admitted without the
    /// injector: a Warning Event `NotInjected` on each and the gauge
    /// `tlsmint_operator_pods_not_injected` (the leader watches pod metadata cluster-wide).
    #[arg(long, env = "TLSMINT_REPORT_MISSED_INJECTION", default_value_t = false)]
    report_missed_injection: bool,

    #[command(flatten, next_help_heading = "Injector serving certificate (leader)")]
    injector_tls: crate::injector_tls::InjectorTlsArgs,
}

/// Runs the operator until SIGTERM/SIGINT.
pub async fn run(args: Box<RunArgs>) -> anyhow::Result<()> {
    let RunArgs {
        common,
        namespace,
        identity,
        lease_name,
        lease_duration,
        renew_deadline,
        retry_period,
        label_selector,
        concurrency,
        api,
        report_missed_injection,
        injector_tls,
    } = *args;
    telemetry::init(&common.log_filter, common.log_format)?;
    // kube and the issuance API both use rustls with aws-lc; one provider for the process.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    anyhow::ensure!(
        renew_deadline < lease_duration,
        "--renew-deadline ({renew_deadline}) must be shorter than --lease-duration ({lease_duration})"
    );
    let injector_tls = injector_tls.settings(&namespace)?;
    let identity = identity.unwrap_or_else(default_identity);
    let shutdown = shutdown::on_signal();
    let client = kube::Client::try_default()
        .await
        .context("connecting to the Kubernetes API (in-cluster config or KUBECONFIG)")?;

    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let api_metrics = Arc::new(ApiMetrics::register(&mut registry));
    let readiness = Readiness::new();
    let (_, admin_task) = admin::serve(
        common.admin_addr,
        AdminState {
            registry: Arc::new(registry),
            readiness: readiness.clone(),
            reuse_port: common.admin_reuse_port,
        },
        shutdown.clone(),
    )
    .await?;

    // The issuance API (issue 5) serves from this registry; the loader keeps it current.
    let registry = Arc::new(IssuanceRegistry::new());
    let (caches, loader_task) = loader::start(
        client.clone(),
        LoaderConfig {
            namespace: namespace.clone(),
            label_selector: label_selector.clone(),
        },
        registry.clone(),
        readiness.register("catalog"),
        shutdown.clone(),
    );
    metrics.mounts.set(Some(caches.mounts.clone()));
    // The issuance APIs of this replica (issue 5): they serve from the registry the loader
    // keeps, and their revocation records are where CertificateRequest revocations go.
    // One CPU pool for every issuance of this replica: APIs, controllers and signer.
    let cpu = CpuPool::per_core();
    let apis = crate::api::cluster::start(
        client.clone(),
        &namespace,
        registry.clone(),
        &api,
        cpu.clone(),
        api_metrics,
        shutdown.clone(),
    )
    .await
    .context("starting the issuance APIs")?;

    let ctx = Arc::new(Context {
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: "tlsmint-operator".into(),
                instance: Some(identity.clone()),
            },
        ),
        client: client.clone(),
        metrics: metrics.clone(),
        namespace: namespace.clone(),
        registry,
        caches,
        revocations: apis.revocations.clone(),
        label_selector,
        concurrency,
        cpu,
        failures: Default::default(),
    });
    tracing::info!(namespace = %namespace, identity = %identity, "tlsmint operator starting");
    // The Lease gets its own client (its own connections), so renewals never queue behind
    // the controllers' requests.
    let lease_client = kube::Client::try_default()
        .await
        .context("connecting to the Kubernetes API for leader election")?;
    let injector = injector_tls.map(|settings| Injector {
        client: client.clone(),
        ca: apis.ca.clone(),
        settings,
    });
    spawn_controllers(
        lease_client,
        LeaderConfig {
            namespace,
            lease_name,
            identity,
            lease_duration: lease_duration.as_std(),
            renew_deadline: renew_deadline.as_std(),
            retry_period: retry_period.as_std(),
        },
        ctx,
        injector,
        report_missed_injection,
        shutdown.clone(),
    )
    .await;
    shutdown.cancel();
    let (_, _, served) = tokio::join!(loader_task, admin_task, apis.task);
    if let Ok(Err(error)) = served {
        tracing::warn!(
            error = &error as &dyn std::error::Error,
            "the issuance APIs stopped with an error"
        );
    }
    tracing::info!("tlsmint operator stopped");
    Ok(())
}

/// What the leader keeps for the injector webhook (`crate::injector_tls`).
struct Injector {
    client: kube::Client,
    ca: Arc<tlsmint_ca::CertificateAuthority>,
    settings: crate::injector_tls::Settings,
}

/// Runs the controllers (and the injector's certificate keeper) whenever this replica
/// leads, until shutdown.
async fn spawn_controllers(
    client: kube::Client,
    config: LeaderConfig,
    ctx: Arc<Context>,
    injector: Option<Injector>,
    report_missed_injection: bool,
    shutdown: CancellationToken,
) {
    let injector = injector.map(Arc::new);
    let metrics = ctx.metrics.clone();
    leader::run(
        client,
        config,
        shutdown,
        move |leading| {
            metrics.set_leader(leading);
            if !leading {
                // The request cache of the lost term is stale: stop exporting it.
                metrics.requests.set(None);
            }
        },
        move |stop: CancellationToken| {
            let controllers = controllers::run(ctx.clone(), stop.clone());
            let reporter = report_missed_injection
                .then(|| controllers::missed_injection::run(ctx.clone(), stop.clone()));
            let injector = injector.clone();
            async move {
                let keeper = async {
                    if let Some(i) = injector {
                        crate::injector_tls::run(
                            i.client.clone(),
                            i.ca.clone(),
                            i.settings.clone(),
                            stop,
                        )
                        .await;
                    }
                };
                let reporter = async {
                    if let Some(reporter) = reporter {
                        reporter.await;
                    }
                };
                tokio::join!(controllers, keeper, reporter);
            }
        },
    )
    .await;
}

fn default_identity() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("tlsmint-operator-{}", std::process::id()))
}
