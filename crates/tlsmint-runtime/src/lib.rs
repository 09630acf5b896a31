//! Process plumbing shared by tlsmint's binaries: the common command-line flags, tracing
//! setup, the admin server (`/metrics`, `/healthz`, `/readyz` on port 9090 by default),
//! readiness flags and the shutdown signal.
//!
//! Owns how a tlsmint process starts and stops. It must not know about certificates,
//! Kubernetes objects or any one binary's metrics: binaries register their own metrics in
//! the [`prometheus_client::registry::Registry`] they pass to [`admin::serve`].

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod admin;
pub mod cli;
pub mod health;
pub mod net;
pub mod shutdown;
pub mod telemetry;

pub use prometheus_client;
pub use tokio_util::sync::CancellationToken;
