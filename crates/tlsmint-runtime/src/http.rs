//! Serving an axum router on accepted connections ([`crate::listen::Incoming`]) with the
//! limits `axum::serve` has no knobs for: the HTTP/1.1 header-read timeout (which also
//! bounds the wait for a keep-alive connection's next request) and the HTTP/2 limits
//! ([`H2Limits`]). Stops accepting on shutdown and lets open requests finish for a while.
//!
//! Owns: the hyper connection settings. Must not: route or read requests.

use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio_util::sync::CancellationToken;

use crate::limits::H2Limits;
use crate::listen::Incoming;

/// How long open connections may take to finish after shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest number of headers in one HTTP/1.1 request.
const MAX_HEADERS: usize = 100;

/// The connection settings of an HTTP server.
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    /// HTTP/1.1: time for a request's headers (and the wait for the next request).
    pub header_read_timeout: Option<Duration>,
    /// HTTP/2 settings.
    pub h2: H2Limits,
}

fn builder(limits: &HttpLimits) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(MAX_HEADERS);
    let h2 = &limits.h2;
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(h2.max_concurrent_streams)
        .keep_alive_interval(Some(h2.keepalive_interval).filter(|d| !d.is_zero()))
        .keep_alive_timeout(h2.keepalive_timeout)
        .max_frame_size(h2.max_frame_size)
        .max_header_list_size(h2.max_header_list_size);
    builder
}

/// Serves `router` on `incoming` until `shutdown`, then waits up to ten seconds for
/// open connections to finish.
pub async fn serve(
    mut incoming: Incoming,
    router: axum::Router,
    limits: HttpLimits,
    shutdown: CancellationToken,
) {
    let builder = builder(&limits);
    let graceful = GracefulShutdown::new();
    loop {
        let conn = tokio::select! {
            () = shutdown.cancelled() => break,
            conn = incoming.next_conn() => conn,
        };
        let Some(conn) = conn else { break };
        let service = TowerToHyperService::new(router.clone());
        let served = builder
            .serve_connection_with_upgrades(TokioIo::new(conn), service)
            .into_owned();
        let served = graceful.watch(served);
        tokio::spawn(async move {
            if let Err(err) = served.await {
                tracing::debug!(error = %err, "HTTP connection ended with an error");
            }
        });
    }
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("some HTTP connections were still open after the drain timeout");
    }
}
