//! Listening sockets for tlsmint's servers (the admin server, the issuance APIs).
//!
//! Owns how a port is bound. It must not know what is served on it.

use std::net::SocketAddr;

use tokio::net::TcpListener;

/// Backlog of every listening socket: bursts of new connections (a node's worth of
/// pods starting) queue in the kernel instead of being refused.
const BACKLOG: u32 = 1024;

/// A listening socket on `addr`. With `reuse_port` (SO_REUSEPORT), several processes
/// on one host may listen on the same port and the kernel spreads new connections
/// over them: for replicas that share a host network on one node. Must be called
/// within a tokio runtime.
pub fn listen(addr: SocketAddr, reuse_port: bool) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    #[cfg(unix)]
    if reuse_port {
        socket.set_reuseport(true)?;
    }
    #[cfg(not(unix))]
    let _ = reuse_port;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn processes_share_a_port_only_when_asked() {
        let first = listen("127.0.0.1:0".parse().unwrap(), true).unwrap();
        let addr = first.local_addr().unwrap();
        let second = listen(addr, true).expect("a second listener with SO_REUSEPORT");
        assert_eq!(second.local_addr().unwrap(), addr);
        let err = listen(addr, false).expect_err("a listener without SO_REUSEPORT");
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    }
}
