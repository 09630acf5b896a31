//! tlsmint-csi: the CSI node plugin of `csi.tlsmint.io` ephemeral inline volumes (SPEC §4).
//!
//! ```text
//! kubelet ──csi.v1 (unix socket)──> node.rs ──> manager/ ──> issue.rs ──Sign, GetCABundle──> operator
//!    │                                            │  ├─ mount.rs (tmpfs)
//!    └─pluginregistration──> registration.rs      │  ├─ files::AtomicDir (..data swap)
//!                                                 │  ├─ store/ (metadata, no secrets)
//!                                                 └──── schedule.rs (one renewal queue)
//! ```
//!
//! The key is made on the node and written only into the volume's tmpfs; the operator sees
//! a CSR. The driver writes no Kubernetes object.

pub mod app;
pub mod authority;
pub mod cli;
pub mod clock;
pub mod events;
pub mod issue;
pub mod manager;
pub mod metrics;
pub mod mount;
pub mod node;
pub mod paths;
pub mod proto;
pub mod registration;
pub mod schedule;
pub mod server;
pub mod store;
