//! The two Unix-socket gRPC servers: CSI (Identity + Node) on the plugin socket, and
//! kubelet's plugin registration on a socket in its `plugins_registry` folder.
//!
//! Owns binding (replacing a stale socket file of a previous run) and serving until
//! shutdown. It must not implement any call.

use std::io;
use std::path::Path;

use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;

use crate::node::{IdentityService, NodeService};
use crate::proto::csi::identity_server::IdentityServer;
use crate::proto::csi::node_server::NodeServer;
use crate::proto::registration::registration_server::RegistrationServer;
use crate::registration::RegistrationService;

/// A socket could not be bound.
#[derive(Debug, thiserror::Error)]
#[error("binding the socket {path} failed: {source}")]
pub struct BindError {
    /// The socket's path.
    pub path: String,
    /// What the kernel said.
    #[source]
    pub source: io::Error,
}

/// Binds a Unix socket at `path`, creating its folder and removing a stale socket file.
pub fn bind(path: &Path) -> Result<UnixListener, BindError> {
    let err = |source| BindError {
        path: path.display().to_string(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(err(e)),
        _ => {}
    }
    UnixListener::bind(path).map_err(err)
}

/// Serves CSI on `listener` until `cancel`.
pub async fn serve_csi(
    listener: UnixListener,
    identity: IdentityService,
    node: NodeService,
    cancel: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    Server::builder()
        .add_service(IdentityServer::new(identity))
        .add_service(NodeServer::new(node))
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), cancel.cancelled_owned())
        .await
}

/// Serves plugin registration on `listener` until `cancel`.
pub async fn serve_registration(
    listener: UnixListener,
    service: RegistrationService,
    cancel: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    Server::builder()
        .add_service(RegistrationServer::new(service))
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), cancel.cancelled_owned())
        .await
}
