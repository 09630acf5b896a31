//! tlsmint's issuance API as a library: the `tlsmint.v1` protobuf messages,
//! the generated tonic client and server ([`proto`]), bearer tokens read from
//! projected ServiceAccount token files ([`token`]) and a small client that
//! connects over TLS (or plaintext to a dev server) and attaches the token to
//! every call ([`client`]).
//!
//! Shared by the operator (which implements the server trait), the CSI driver
//! and the agent. It owns the wire format; it must not contain issuance policy
//! or any Kubernetes types.

pub mod client;
pub mod proto;
pub mod token;

pub use client::{Client, ClientConfig, ClientError};
pub use token::{Token, TokenError, TokenSource};
