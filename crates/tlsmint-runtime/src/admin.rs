//! The admin server: `GET /metrics` (Prometheus text format), `GET /healthz` (200 while the
//! process runs) and `GET /readyz` (200 when every readiness check is ready, else 503 with
//! the names of those that are not). Plain HTTP/1.1, meant for the kubelet and Prometheus.
//!
//! Owns the listener and the three routes. It must not serve anything else (no pprof, no
//! secrets) and must not register metrics: the binary owns its registry.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::health::Readiness;

/// Time a client has for its request headers (and between keep-alive requests): a
/// half-sent request must not hold an admin connection open.
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Content type of the Prometheus text exposition format written by prometheus-client.
const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The admin server could not start.
#[derive(Debug, thiserror::Error)]
#[error("binding the admin server to {addr} failed: {source}")]
pub struct BindError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// What the OS said.
    #[source]
    pub source: std::io::Error,
}

/// What the admin server serves.
#[derive(Clone, Debug)]
pub struct AdminState {
    /// Metrics of the whole process.
    pub registry: Arc<Registry>,
    /// Readiness checks for `/readyz`.
    pub readiness: Readiness,
    /// Bind with SO_REUSEPORT (see `CommonArgs::admin_reuse_port`).
    pub reuse_port: bool,
}

/// Binds `addr` and serves until `shutdown` is cancelled. Returns the bound address (useful
/// with port 0) and the task.
pub async fn serve(
    addr: SocketAddr,
    state: AdminState,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), BindError> {
    let listener =
        crate::net::listen(addr, state.reuse_port).map_err(|source| BindError { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| BindError { addr, source })?;
    tracing::info!(admin.addr = %bound, "admin server listening (/metrics, /healthz, /readyz)");
    let task = tokio::spawn(accept_loop(listener, state, shutdown));
    Ok((bound, task))
}

async fn accept_loop(listener: TcpListener, state: AdminState, shutdown: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((tcp, _peer)) = accepted else {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(route(&state, req.method(), req.uri().path())) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

/// Answers one request. Pure apart from reading the registry and the readiness flags.
fn route(state: &AdminState, method: &Method, path: &str) -> Response<Full<Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
    }
    match path {
        "/metrics" => {
            let mut body = String::new();
            match prometheus_client::encoding::text::encode(&mut body, &state.registry) {
                Ok(()) => Response::builder()
                    .header("content-type", METRICS_CONTENT_TYPE)
                    .body(Full::new(Bytes::from(body)))
                    .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))),
                Err(_) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "encoding metrics failed\n".into(),
                ),
            }
        }
        "/healthz" | "/livez" => text(StatusCode::OK, "ok\n".into()),
        "/readyz" => match state.readiness.status() {
            Ok(()) => text(StatusCode::OK, "ok\n".into()),
            Err(waiting) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {}\n", waiting.join(", ")),
            ),
        },
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::metrics::counter::Counter;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        tcp.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serves_metrics_health_and_readiness() {
        let mut registry = Registry::with_prefix("test");
        let counter = Counter::<u64>::default();
        registry.register("things", "Things counted", counter.clone());
        counter.inc();
        let readiness = Readiness::new();
        let check = readiness.register("catalog");
        let state = AdminState {
            registry: Arc::new(registry),
            readiness,
            reuse_port: true,
        };
        let shutdown = CancellationToken::new();
        let (addr, task) = serve("127.0.0.1:0".parse().unwrap(), state, shutdown.clone())
            .await
            .unwrap();

        let metrics = get(addr, "/metrics").await;
        assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
        assert!(metrics.contains("test_things_total 1"), "{metrics}");
        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
        let ready = get(addr, "/readyz").await;
        assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
        assert!(ready.contains("not ready: catalog"), "{ready}");
        check.set(true);
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 200"));
        assert!(get(addr, "/nope").await.starts_with("HTTP/1.1 404"));

        shutdown.cancel();
        task.await.unwrap();
    }
}
