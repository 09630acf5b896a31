//! Accepting connections for tlsmint's servers (the operator's two issuance
//! APIs, the injector's webhook): plain TCP, or TLS handshaked off the accept
//! loop (a slow client cannot stall others) with the certificate chosen per
//! handshake by a resolver such as [`crate::tls::CertSwap`], so a rotated
//! certificate is used without a restart. With [`accept_limited`], connections
//! count against a [`ConnTracker`] (over its caps they are closed at once) and
//! a connection that stays silent too long fails its next read or write.
//!
//! Owns: the accept loop and the connection type. Must not: look at what is
//! sent over the connections.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::limits::{ConnLimits, ConnPermit, ConnTracker};

/// Longest a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// An accepted connection.
#[derive(Debug)]
pub struct Conn {
    io: Stream,
    silence: Silence,
    _permit: Option<ConnPermit>,
}

#[derive(Debug)]
enum Stream {
    /// Plaintext (dev mode on loopback).
    Plain(TcpStream),
    /// TLS.
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// Closes connections that stay silent: until the first byte arrives the allowance is the
/// header-read timeout, then the idle timeout, restarted by every byte read or written.
#[derive(Debug)]
struct Silence {
    first: Option<Duration>,
    idle: Option<Duration>,
    seen_bytes: bool,
    deadline: Option<Instant>,
    read_timer: Option<Pin<Box<Sleep>>>,
    write_timer: Option<Pin<Box<Sleep>>>,
}

impl Silence {
    fn new(limits: &ConnLimits, started: Instant) -> Self {
        let first = limits.header_read_timeout.or(limits.idle_timeout);
        Silence {
            first,
            idle: limits.idle_timeout,
            seen_bytes: false,
            deadline: first.map(|d| started + d),
            read_timer: None,
            write_timer: None,
        }
    }

    fn activity(&mut self, read: bool) {
        if read {
            self.seen_bytes = true;
        }
        let allowance = if self.seen_bytes {
            self.idle
        } else {
            self.first
        };
        self.deadline = allowance.map(|d| Instant::now() + d);
    }

    /// After the stream said Pending: an error once the deadline has passed, else arms the
    /// timer so the task is woken then.
    fn check(&mut self, cx: &mut Context<'_>, read: bool) -> Poll<io::Result<()>> {
        let Some(deadline) = self.deadline else {
            return Poll::Pending;
        };
        let slot = if read {
            &mut self.read_timer
        } else {
            &mut self.write_timer
        };
        let timer = slot.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                if self.seen_bytes {
                    "the connection was idle too long"
                } else {
                    "the client sent nothing in time"
                },
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Conn {
    fn new(io: Stream, limits: &ConnLimits, started: Instant, permit: Option<ConnPermit>) -> Self {
        Conn {
            io,
            silence: Silence::new(limits, started),
            _permit: permit,
        }
    }

    /// The ALPN protocol the TLS handshake chose, if any.
    pub fn alpn(&self) -> Option<&[u8]> {
        match &self.io {
            Stream::Plain(_) => None,
            Stream::Tls(s) => s.get_ref().1.alpn_protocol(),
        }
    }
}

use std::future::Future;

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = match &mut this.io {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        match polled {
            Poll::Pending => this.silence.check(cx, true),
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.silence.activity(true);
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl Conn {
    fn wrote(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match polled {
            Poll::Pending => self.silence.check(cx, false).map_ok(|()| 0),
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.silence.activity(false);
                }
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = match &mut this.io {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        };
        this.wrote(cx, polled)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = match &mut this.io {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        };
        match polled {
            Poll::Pending => this.silence.check(cx, false),
            other => other,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = match &mut this.io {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        };
        this.wrote(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

/// Connections accepted (and handshaked) in the background.
#[derive(Debug)]
pub struct Incoming {
    rx: mpsc::Receiver<Conn>,
    local: SocketAddr,
}

/// Starts accepting on `listener` until `shutdown`; with `tls`, each
/// connection is handshaked in its own task first. No connection limits.
pub fn accept(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shutdown: CancellationToken,
) -> io::Result<Incoming> {
    accept_limited(listener, tls, None, shutdown)
}

/// [`accept`], with each connection counted by `tracker` (closed at once when over its
/// caps) and closed when silent longer than its timeouts.
pub fn accept_limited(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    tracker: Option<ConnTracker>,
    shutdown: CancellationToken,
) -> io::Result<Incoming> {
    let local = listener.local_addr()?;
    let (tx, rx) = mpsc::channel(256);
    let limits = tracker
        .as_ref()
        .map(ConnTracker::limits)
        .unwrap_or(ConnLimits::UNLIMITED);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let permit = match tracker.as_ref().map(|t| t.admit(peer.ip())).transpose() {
                Ok(permit) => permit,
                // Over a cap: closing at once is the cheapest answer, and the client
                // learns it at once.
                Err(_) => continue,
            };
            let _ = stream.set_nodelay(true);
            match &tls {
                None => {
                    let conn = Conn::new(Stream::Plain(stream), &limits, Instant::now(), permit);
                    if tx.send(conn).await.is_err() {
                        return;
                    }
                }
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    let tx = tx.clone();
                    let handshake_timeout = limits
                        .header_read_timeout
                        .map_or(HANDSHAKE_TIMEOUT, |t| t.min(HANDSHAKE_TIMEOUT));
                    tokio::spawn(async move {
                        match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await
                        {
                            Ok(Ok(tls)) => {
                                let io = Stream::Tls(Box::new(tls));
                                let _ = tx
                                    .send(Conn::new(io, &limits, Instant::now(), permit))
                                    .await;
                            }
                            Ok(Err(err)) => tracing::debug!(error = %err, "TLS handshake failed"),
                            Err(_) => tracing::debug!("TLS handshake timed out"),
                        }
                    });
                }
            }
        }
    });
    Ok(Incoming { rx, local })
}

impl Incoming {
    /// The next connection; `None` once the accept loop has stopped.
    pub async fn next_conn(&mut self) -> Option<Conn> {
        self.rx.recv().await
    }

    /// The address listened on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

impl futures::Stream for Incoming {
    type Item = io::Result<Conn>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx).map(|c| c.map(Ok))
    }
}

impl axum::serve::Listener for Incoming {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => (conn, self.local),
            // The accept loop stopped (shutdown): wait for the server to notice.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}
