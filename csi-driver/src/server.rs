//! The two Unix-socket gRPC servers: CSI (Identity + Node) on the plugin socket, and
//! kubelet's plugin registration on a socket in its `plugins_registry` folder.
//!
//! Owns binding (replacing a stale socket file of a previous run) and serving until
//! shutdown. It must not implement any call.

use std::io;
use std::path::Path;

use tokio::io::DuplexStream;
use tokio::net::UnixListener;
use tokio_stream::wrappers::{ReceiverStream, UnixListenerStream};
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

/// Serves plugin registration on `listener` until `cancel`. Every connection goes through
/// the [`crate::authority`] shim, which makes kubelet's requests acceptable to tonic.
pub async fn serve_registration(
    listener: UnixListener,
    service: RegistrationService,
    cancel: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let (connections, incoming) = tokio::sync::mpsc::channel::<io::Result<DuplexStream>>(8);
    let accept = tokio::spawn(accept_through_shim(listener, connections, cancel.clone()));
    let served = Server::builder()
        .add_service(RegistrationServer::new(service))
        .serve_with_incoming_shutdown(ReceiverStream::new(incoming), cancel.cancelled_owned())
        .await;
    accept.abort();
    served
}

/// Accepts kubelet's connections and joins each to an in-memory stream the gRPC server
/// reads: the client's frames through [`crate::authority::rewrite_client`], the server's
/// unchanged.
async fn accept_through_shim(
    listener: UnixListener,
    connections: tokio::sync::mpsc::Sender<io::Result<DuplexStream>>,
    cancel: CancellationToken,
) {
    loop {
        let socket = tokio::select! {
            () = cancel.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((socket, _)) => socket,
                Err(error) => {
                    tracing::warn!(error = %error, "accepting a registration connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (inner, outer) = tokio::io::duplex(64 * 1024);
        if connections.send(Ok(inner)).await.is_err() {
            return;
        }
        tokio::spawn(async move {
            let (client_read, mut client_write) = socket.into_split();
            let (mut server_read, server_write) = tokio::io::split(outer);
            let upstream = crate::authority::rewrite_client(client_read, server_write);
            let downstream = tokio::io::copy(&mut server_read, &mut client_write);
            let (up, _) = tokio::join!(upstream, downstream);
            if let Err(error) = up {
                tracing::warn!(error = %error, "a registration connection was dropped");
            }
        });
    }
}
