//! Process plumbing shared by tlsmint's binaries: the common command-line flags, tracing
//! setup, the admin server (`/metrics`, `/healthz`, `/readyz` on port 9090 by default),
//! readiness flags, the shutdown signal, the bounded CPU pool ([`cpu`]) and TLS serving with
//! a certificate that can be swapped while serving ([`tls`], [`listen`]).
//!
//! Owns how a tlsmint process starts, serves and stops. It must not issue certificates or
//! know Kubernetes objects or any one binary's metrics: binaries register their own metrics in
//! the [`prometheus_client::registry::Registry`] they pass to [`admin::serve`].

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod admin;
pub mod cli;
pub mod cpu;
pub mod health;
pub mod http;
pub mod limits;
pub mod listen;
pub mod net;
pub mod shutdown;
pub mod telemetry;
pub mod tls;

pub use prometheus_client;
pub use tokio_util::sync::CancellationToken;
