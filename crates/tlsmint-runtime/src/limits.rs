//! Connection limits of tlsmint's servers: how many connections may be open at once (in
//! total and per peer address), how long a connection may stay silent, how long a client
//! has to send its first bytes and request headers, the HTTP/2 limits, and the process's
//! file-descriptor limit. The operator's two APIs share one [`ConnTracker`], so together
//! they stay under the cap; the flags that fill [`ConnLimits`] belong to the binary.
//!
//! Owns: the counting and the limit values. Must not: read what a connection carries.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// File descriptors kept out of the connection cap for everything else the process opens:
/// the admin server and its clients, the Kubernetes client, listeners, files.
pub const FD_RESERVE: u64 = 128;

/// Seconds between two "refusing connections" warnings.
const WARN_EVERY_SECS: u64 = 10;

/// The limits in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnLimits {
    /// Connections open at once; `None`: no cap.
    pub max_connections: Option<u64>,
    /// Connections open at once from one IP address; `None`: no cap.
    pub max_per_peer: Option<u64>,
    /// Time to the first byte (and, in HTTP/1.1, to the end of each request's headers).
    pub header_read_timeout: Option<Duration>,
    /// Longest silence on a connection.
    pub idle_timeout: Option<Duration>,
}

impl ConnLimits {
    /// No limits: what servers that do not face clients use.
    pub const UNLIMITED: ConnLimits = ConnLimits {
        max_connections: None,
        max_per_peer: None,
        header_read_timeout: None,
        idle_timeout: None,
    };
}

/// HTTP/2 settings of a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct H2Limits {
    /// Concurrent streams per connection.
    pub max_concurrent_streams: u32,
    /// Keep-alive ping interval.
    pub keepalive_interval: Duration,
    /// Keep-alive ping answer timeout.
    pub keepalive_timeout: Duration,
    /// Largest frame payload.
    pub max_frame_size: u32,
    /// Largest header list.
    pub max_header_list_size: u32,
}

/// `max` (`None`: no cap), lowered to keep [`FD_RESERVE`] descriptors free under a soft
/// file-descriptor limit of `nofile`.
pub fn cap_by_fd(max: Option<u64>, nofile: Option<u64>) -> Option<u64> {
    let by_fd = nofile.map(|n| n.saturating_sub(FD_RESERVE).max(1));
    match (max, by_fd) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Counts open connections against [`ConnLimits`]; cheap to clone, shared by servers.
#[derive(Clone, Debug)]
pub struct ConnTracker {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limits: ConnLimits,
    open: Mutex<Counts>,
    refused: AtomicU64,
    last_warned: AtomicU64,
}

#[derive(Debug, Default)]
struct Counts {
    total: u64,
    per_peer: HashMap<IpAddr, u64>,
}

/// Why a connection was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The total cap was reached.
    Total(u64),
    /// The peer's cap was reached.
    Peer(u64),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Total(n) => write!(f, "{n} connections are open (the cap)"),
            Refusal::Peer(n) => write!(f, "{n} connections from this address are open (the cap)"),
        }
    }
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct ConnPermit {
    tracker: ConnTracker,
    peer: IpAddr,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let mut open = self.tracker.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_peer.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.per_peer.remove(&self.peer);
            }
        }
    }
}

impl ConnTracker {
    /// A tracker enforcing `limits`.
    pub fn new(limits: ConnLimits) -> Self {
        ConnTracker {
            inner: Arc::new(Inner {
                limits,
                open: Mutex::new(Counts::default()),
                refused: AtomicU64::new(0),
                last_warned: AtomicU64::new(0),
            }),
        }
    }

    /// The limits enforced.
    pub fn limits(&self) -> ConnLimits {
        self.inner.limits
    }

    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.lock().total
    }

    /// Connections refused so far.
    pub fn refused(&self) -> u64 {
        self.inner.refused.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // The counts stay consistent even if a holder panicked: each update is one step.
        self.inner.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a connection from `peer`, or says which cap it hit.
    pub fn admit(&self, peer: IpAddr) -> Result<ConnPermit, Refusal> {
        let limits = self.inner.limits;
        let refusal = {
            let mut open = self.lock();
            let from_peer = open.per_peer.get(&peer).copied().unwrap_or(0);
            match (limits.max_connections, limits.max_per_peer) {
                (Some(max), _) if open.total >= max => Some(Refusal::Total(max)),
                (_, Some(max)) if from_peer >= max => Some(Refusal::Peer(max)),
                _ => {
                    open.total += 1;
                    *open.per_peer.entry(peer).or_insert(0) += 1;
                    None
                }
            }
        };
        match refusal {
            None => Ok(ConnPermit {
                tracker: self.clone(),
                peer,
            }),
            Some(refusal) => {
                self.note_refusal(peer, refusal);
                Err(refusal)
            }
        }
    }

    /// Counts a refusal, and warns at most every few seconds (a flood must not flood the log).
    fn note_refusal(&self, peer: IpAddr, refusal: Refusal) {
        let refused = self.inner.refused.fetch_add(1, Ordering::Relaxed) + 1;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let last = self.inner.last_warned.load(Ordering::Relaxed);
        if now >= last + WARN_EVERY_SECS
            && self
                .inner
                .last_warned
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                net.peer.ip = %peer,
                connections.refused_total = refused,
                "refusing new connections: {refusal}"
            );
        }
    }
}

/// Raises the soft limit of open files (RLIMIT_NOFILE) to the hard limit, so that the
/// connection cap, not the kernel, decides when connections are refused. Returns the soft
/// limit in force afterwards.
#[cfg(unix)]
pub fn raise_nofile_limit() -> std::io::Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(std::io::Error::from)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(std::io::Error::from)?;
    }
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).map_err(std::io::Error::from)?;
    Ok(soft)
}

/// Elsewhere there is no such limit to raise.
#[cfg(not(unix))]
pub fn raise_nofile_limit() -> std::io::Result<u64> {
    Err(std::io::Error::other("no RLIMIT_NOFILE on this platform"))
}

/// The soft limit of open files in force.
#[cfg(unix)]
pub fn nofile_limit() -> std::io::Result<u64> {
    use nix::sys::resource::{Resource, getrlimit};
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).map_err(std::io::Error::from)?;
    Ok(soft)
}

/// Elsewhere there is no such limit.
#[cfg(not(unix))]
pub fn nofile_limit() -> std::io::Result<u64> {
    Err(std::io::Error::other("no RLIMIT_NOFILE on this platform"))
}

#[cfg(test)]
mod tests {
    use super::*;
    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    #[test]
    fn the_fd_limit_lowers_the_cap() {
        assert_eq!(cap_by_fd(Some(4096), Some(1024)), Some(896));
        assert_eq!(cap_by_fd(Some(100), Some(1024)), Some(100));
        assert_eq!(cap_by_fd(None, Some(1024)), Some(896));
        assert_eq!(cap_by_fd(Some(5), None), Some(5));
        assert_eq!(cap_by_fd(None, None), None);
        assert_eq!(cap_by_fd(None, Some(10)), Some(1));
    }

    #[test]
    fn caps_total_and_per_peer_and_frees_on_drop() {
        let tracker = ConnTracker::new(ConnLimits {
            max_connections: Some(3),
            max_per_peer: Some(2),
            ..ConnLimits::UNLIMITED
        });
        let a = tracker.admit(LOCAL).unwrap();
        let b = tracker.admit(LOCAL).unwrap();
        assert_eq!(tracker.admit(LOCAL).unwrap_err(), Refusal::Peer(2));
        let c = tracker.admit(OTHER).unwrap();
        assert_eq!(tracker.admit(OTHER).unwrap_err(), Refusal::Total(3));
        assert_eq!(tracker.open(), 3);
        assert_eq!(tracker.refused(), 2);
        drop(a);
        let _d = tracker.admit(LOCAL).unwrap();
        drop((b, c));
        assert_eq!(tracker.open(), 1);
    }

    #[test]
    fn raising_the_fd_limit_reaches_the_hard_limit() {
        let soft = raise_nofile_limit().unwrap();
        let (_, hard) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(soft, hard);
    }
}
