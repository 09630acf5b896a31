//! tlsmint's public Kubernetes API: the CRD types (`v1alpha1`), condition names, every pod
//! annotation key (`annotations`) and CSI volume attribute key (`csi`) with typed parsers, and
//! the validated value types they share (`Duration`, `Fraction`).
//!
//! This crate is the one home of every name users and other crates rely on (see SPEC.md). It
//! does no I/O: the `crdgen` binary is the only part that writes files.

#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod annotations;
pub mod conditions;
pub mod crdgen;
pub mod csi;
pub mod duration;
pub mod fraction;
pub mod labels;
pub mod user_annotations;
pub mod v1alpha1;
mod values;

pub use duration::{Duration, DurationError};
pub use fraction::{Fraction, FractionError};
pub use values::InvalidValue;

/// File (and Secret key) of the certificate followed by its chain: `tls.crt`.
pub const TLS_CERT_FILE: &str = "tls.crt";
/// File (and Secret key) of the private key: `tls.key`.
pub const TLS_KEY_FILE: &str = "tls.key";
/// File (and Secret key) of the CA bundle: `ca.crt`.
pub const CA_CERT_FILE: &str = "ca.crt";
