//! `tlsmint-operator` as a library: the CA's controllers, its issuance APIs
//! and dev mode, so that tests and benchmarks can start them in process. The
//! binary (`main.rs`) only parses the command line and runs a mode.
//!
//! Modes: [`run::run`] (in a cluster: leader-elected controllers plus the
//! APIs on every replica) and [`dev::run`] (in memory, no cluster, like
//! `vault server -dev`).

pub mod api;
pub mod cli;
pub mod controllers;
pub mod convert;
pub mod dev;
pub mod injector_tls;
pub mod issuance;
pub mod leader;
pub mod migrate;
pub mod registry;
pub mod revocation;
pub mod run;
