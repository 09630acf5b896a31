//! The connection flags of the issuance APIs (timeouts, caps, HTTP/2 limits), shared by
//! `run` and `dev` and turned into `tlsmint_runtime::limits` values at start.
//!
//! Owns: the flag names, environment variables and defaults (docs/api.md, "Connection
//! limits"). Must not: count connections (the runtime's `ConnTracker` does).

use tlsmint_runtime::limits::{ConnLimits, H2Limits, cap_by_fd};

/// Connection flags of the issuance APIs.
#[derive(Clone, Debug, clap::Args)]
pub struct ConnArgs {
    /// A client must send its first bytes, and each HTTP/1.1 request its complete
    /// headers, within this time, or the connection is closed (slowloris). An HTTP/1.1
    /// keep-alive connection waiting for its next request is closed after it too. 0s: off.
    #[arg(long, env = "TLSMINT_API_HEADER_READ_TIMEOUT", default_value = "10s")]
    pub api_header_read_timeout: tlsmint_api::Duration,

    /// A connection on which nothing was read or written for this long is closed
    /// (HTTP/2 keep-alive pings count as traffic). 0s: off.
    #[arg(long, env = "TLSMINT_API_IDLE_TIMEOUT", default_value = "120s")]
    pub api_idle_timeout: tlsmint_api::Duration,

    /// Connections open at once on the two issuance APIs together (TLS handshakes
    /// included), never more than the file-descriptor limit less 128. Past it, new
    /// connections are closed at once. 0: only the file-descriptor bound.
    #[arg(long, env = "TLSMINT_API_MAX_CONNECTIONS", default_value_t = 4096)]
    pub api_max_connections: u64,

    /// Connections open at once from one client IP address; past it, that address's new
    /// connections are closed at once. 0: no per-address cap.
    #[arg(
        long,
        env = "TLSMINT_API_MAX_CONNECTIONS_PER_PEER",
        default_value_t = 256
    )]
    pub api_max_connections_per_peer: u64,

    /// HTTP/2: concurrent streams (requests) one connection may have open.
    #[arg(
        long,
        env = "TLSMINT_API_H2_MAX_CONCURRENT_STREAMS",
        default_value_t = 100
    )]
    pub api_h2_max_concurrent_streams: u32,

    /// HTTP/2: interval of the server's keep-alive pings.
    #[arg(long, env = "TLSMINT_API_H2_KEEPALIVE_INTERVAL", default_value = "30s")]
    pub api_h2_keepalive_interval: tlsmint_api::Duration,

    /// HTTP/2: a connection whose peer does not answer a keep-alive ping within this
    /// time is closed.
    #[arg(long, env = "TLSMINT_API_H2_KEEPALIVE_TIMEOUT", default_value = "20s")]
    pub api_h2_keepalive_timeout: tlsmint_api::Duration,

    /// HTTP/2: largest frame payload accepted, in bytes (16384 to 16777215).
    #[arg(long, env = "TLSMINT_API_H2_MAX_FRAME_SIZE", default_value_t = 16_384,
          value_parser = clap::value_parser!(u32).range(16_384..=16_777_215))]
    pub api_h2_max_frame_size: u32,

    /// HTTP/2: largest header list of one request, in bytes (as HTTP/2 counts it:
    /// names and values plus 32 per field).
    #[arg(
        long,
        env = "TLSMINT_API_H2_MAX_HEADER_LIST_SIZE",
        default_value_t = 16_384
    )]
    pub api_h2_max_header_list_size: u32,
}

impl ConnArgs {
    /// The limits for a process whose soft file-descriptor limit is `nofile`.
    pub fn limits(&self, nofile: Option<u64>) -> ConnLimits {
        let nonzero = |d: &tlsmint_api::Duration| Some(d.as_std()).filter(|d| !d.is_zero());
        ConnLimits {
            max_connections: cap_by_fd(Some(self.api_max_connections).filter(|n| *n > 0), nofile),
            max_per_peer: Some(self.api_max_connections_per_peer).filter(|n| *n > 0),
            header_read_timeout: nonzero(&self.api_header_read_timeout),
            idle_timeout: nonzero(&self.api_idle_timeout),
        }
    }

    /// The HTTP/2 settings.
    pub fn h2(&self) -> H2Limits {
        H2Limits {
            max_concurrent_streams: self.api_h2_max_concurrent_streams,
            keepalive_interval: self.api_h2_keepalive_interval.as_std(),
            keepalive_timeout: self.api_h2_keepalive_timeout.as_std(),
            max_frame_size: self.api_h2_max_frame_size,
            max_header_list_size: self.api_h2_max_header_list_size,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::time::Duration;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        conn: ConnArgs,
    }

    fn args(extra: &[&str]) -> ConnArgs {
        let mut argv = vec!["test"];
        argv.extend_from_slice(extra);
        Cli::parse_from(argv).conn
    }

    #[test]
    fn defaults_are_bounded_and_the_fd_limit_lowers_the_cap() {
        let limits = args(&[]).limits(None);
        assert_eq!(limits.max_connections, Some(4096));
        assert_eq!(limits.max_per_peer, Some(256));
        assert_eq!(limits.header_read_timeout, Some(Duration::from_secs(10)));
        assert_eq!(limits.idle_timeout, Some(Duration::from_secs(120)));
        assert_eq!(args(&[]).limits(Some(1024)).max_connections, Some(896));
        let off = args(&[
            "--api-max-connections",
            "0",
            "--api-max-connections-per-peer",
            "0",
            "--api-idle-timeout",
            "0s",
        ]);
        assert_eq!(off.limits(None).max_connections, None);
        assert_eq!(off.limits(Some(1024)).max_connections, Some(896));
        assert_eq!(off.limits(None).max_per_peer, None);
        assert_eq!(off.limits(None).idle_timeout, None);
        let h2 = args(&[]).h2();
        assert_eq!(h2.max_concurrent_streams, 100);
        assert_eq!(h2.keepalive_interval, Duration::from_secs(30));
        assert_eq!(h2.max_frame_size, 16_384);
    }

    #[test]
    fn refuses_frame_sizes_http2_does_not_allow() {
        let mut argv = vec!["test", "--api-h2-max-frame-size", "100"];
        assert!(Cli::try_parse_from(&argv).is_err());
        argv[2] = "16384";
        assert!(Cli::try_parse_from(&argv).is_ok());
    }
}
