//! tlsmint-injector: the mutating admission webhook for Pod CREATE (SPEC.md §3).
//!
//! ```text
//! POST /mutate (TLS, certificate swapped on file change: server.rs)
//!   -> review::decide -> mutate::mutate (pure Pod -> Pod) -> patch::diff (JSON Patch)
//! ```
//!
//! Owns admission. Must not: call the Kubernetes API (everything it needs is in the review
//! and in its own configuration); the one outside call is the operator's `CheckPolicy`
//! (policy.rs), which fails open.

pub mod config;
pub mod mutate;
pub mod patch;
pub mod policy;
pub mod review;
pub mod server;

use std::sync::Arc;

use anyhow::Context as _;
use tlsmint_runtime::admin::{AdminState, serve};
use tlsmint_runtime::health::Readiness;
use tlsmint_runtime::prometheus_client::registry::Registry;
use tlsmint_runtime::tls::CertSwap;

use crate::config::Cli;

/// Runs the webhook until SIGTERM.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    tlsmint_runtime::telemetry::init(&cli.common.log_filter, cli.common.log_format)?;
    let injection = Arc::new(cli.injection.load()?);
    let shutdown = tlsmint_runtime::shutdown::on_signal();

    let mut registry = Registry::default();
    let metrics = server::Metrics::new(&mut registry);
    let readiness = Readiness::new();
    let serving = readiness.register("serving certificate");
    let (_, admin) = serve(
        cli.common.admin_addr,
        AdminState {
            registry: Arc::new(registry),
            readiness,
            reuse_port: cli.common.admin_reuse_port,
        },
        shutdown.clone(),
    )
    .await?;

    let swap = CertSwap::new();
    let files = server::CertFiles {
        cert: cli.tls_cert_file.clone(),
        key: cli.tls_key_file.clone(),
    };
    let first = files
        .load_if_changed(&swap, None)
        .map_err(anyhow::Error::msg)
        .context("loading the serving certificate")?;
    serving.set(true);
    tokio::spawn(files.watch(
        swap.clone(),
        first,
        cli.tls_reload_interval.into(),
        shutdown.clone(),
    ));

    let listener = tlsmint_runtime::net::listen(cli.listen, false)
        .with_context(|| format!("binding {}", cli.listen))?;
    let acceptor = tlsmint_runtime::tls::acceptor(swap, &[b"h2", b"http/1.1"])?;
    let incoming = tlsmint_runtime::listen::accept(listener, Some(acceptor), shutdown.clone())?;
    tracing::info!(addr = %cli.listen, agent.image = %injection.agent_image, "tlsmint-injector listening");
    let checker = if cli.policy_check {
        Some(
            policy::Checker::new(
                &injection.api_endpoint,
                injection.api_ca_pem.clone(),
                injection.api_server_name.clone(),
                cli.policy_check_token_file.clone(),
                cli.policy_check_timeout.into(),
            )
            .context("configuring the policy check")?,
        )
    } else {
        None
    };
    axum::serve(
        incoming,
        server::router_with_check(injection, metrics, checker),
    )
    .with_graceful_shutdown(shutdown.clone().cancelled_owned())
    .await?;
    let _ = admin.await;
    Ok(())
}
