//! tlsmint's issuance API as a library: the `tlsmint.v1` protobuf messages,
//! the generated tonic client and server ([`proto`]), bearer tokens read from
//! projected ServiceAccount token files ([`token`]) and a small client that
//! connects over TLS (or plaintext to a dev server) and attaches the token to
//! every call ([`client`]).
//!
//! Beside the wire format it holds what every renewing client needs alike: the
//! renewal schedule ([`renewal`]), the atomic file writer ([`files`]) and the
//! mapping of user key settings to engine keys ([`keys`]).
//!
//! Shared by the operator (which implements the server trait), the CSI driver
//! and the agent. It must not contain issuance policy or any Kubernetes types.

pub mod client;
pub mod files;
pub mod keys;
pub mod proto;
pub mod renewal;
pub mod token;

pub use client::{Client, ClientConfig, ClientError};
pub use token::{Token, TokenError, TokenSource};
