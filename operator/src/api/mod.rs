//! The issuance APIs (SPEC §5): `tlsmint.v1.Issuer` over gRPC and the
//! Vault-compatible HTTP API, served by every replica from the shared
//! [`Registry`], for both `run` and `dev` modes.
//!
//! Owns: the API flags ([`ApiArgs`]), the shared request state
//! ([`ApiState`]) and the servers' lifecycle ([`bind`], [`serve`]). Must not:
//! write Kubernetes objects per certificate, or log tokens and keys.
//!
//! # Interface for `run` mode
//!
//! One call does everything (`RunArgs` flattens [`ApiArgs`]):
//!
//! ```text
//! let api = api::cluster::start(client.clone(), &namespace, registry.clone(), &args.api, cpu.clone(), shutdown.clone()).await?;
//! // ctx.revocations = api.revocations.clone();   // CertificateRequest `revoked: true` -> CRL/OCSP
//! // ... later: api.task.await
//! ```
//!
//! It creates (once) the internal CA in Secret `tlsmint-api-ca`, publishes
//! its certificate in ConfigMap `tlsmint-api-ca` (`ca.crt`) for clients,
//! serves gRPC and HTTPS with a rotating serving certificate, verifies tokens
//! with TokenReview, asks SubjectAccessReview who may revoke by serial
//! ([`rights`]) and keeps revocations in ConfigMaps. The pieces
//! ([`bind`], [`serve`], [`Services`]) remain available for other wiring.

pub mod audit;
pub mod auth;
pub mod cluster;
#[cfg(test)]
mod cluster_tests;
pub mod conn;
pub mod error;
pub mod grpc;
pub mod issue;
pub mod metrics;
pub mod ocsp;
pub mod ratelimit;
pub mod recent;
pub mod rights;
pub mod tls;
#[cfg(test)]
mod tls_tests;
pub mod tokenreview;
pub mod vault;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::registry::Registry;
use crate::revocation::{self, Revocations};
use auth::Authenticator;
use metrics::ApiMetrics;
use ratelimit::RateLimiter;
use recent::RecentCerts;
use rights::Rights;
use tls::ServingCert;
use vault::tokens::ClientTokens;

/// Default port of the Vault-compatible HTTP API.
pub const HTTP_PORT: u16 = 8200;
/// Default port of the gRPC API.
pub const GRPC_PORT: u16 = 8201;

/// Flags of the issuance APIs, shared by `run` and `dev`.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiArgs {
    /// Address of the Vault-compatible HTTP API [default: 0.0.0.0:8200 in
    /// `run`, 127.0.0.1:8200 in `dev`].
    #[arg(long, env = "TLSMINT_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,

    /// Address of the gRPC API (`tlsmint.v1.Issuer`) [default: 0.0.0.0:8201
    /// in `run`, 127.0.0.1:8201 in `dev`].
    #[arg(long, env = "TLSMINT_GRPC_ADDR")]
    pub grpc_addr: Option<SocketAddr>,

    /// Issuance requests per second allowed to one ServiceAccount (both APIs
    /// together); 0 turns rate limiting off. Over it, callers get
    /// ResourceExhausted (gRPC) or 429 (HTTP).
    #[arg(long, env = "TLSMINT_RATE_LIMIT", default_value_t = 50.0)]
    pub rate_limit: f64,

    /// Burst of requests one ServiceAccount may make above the rate.
    #[arg(long, env = "TLSMINT_RATE_BURST", default_value_t = 100)]
    pub rate_burst: u32,

    /// Lifetime of the client tokens `auth/kubernetes/login` returns.
    #[arg(long, env = "TLSMINT_CLIENT_TOKEN_TTL", default_value = "1h")]
    pub client_token_ttl: tlsmint_api::Duration,

    /// How long a verified ServiceAccount token is trusted before it is
    /// reviewed again (cluster mode; never longer than the token's own expiry).
    #[arg(long, env = "TLSMINT_TOKEN_CACHE_TTL", default_value = "10s")]
    pub token_cache_ttl: tlsmint_api::Duration,

    /// Wait after a revocation before the CRL is rebuilt, so that a burst of
    /// revocations makes one CRL.
    #[arg(long, env = "TLSMINT_CRL_BATCH_WINDOW", default_value = "1s")]
    pub crl_batch_window: tlsmint_api::Duration,

    /// How often each replica re-reads revocations made by other replicas.
    #[arg(long, env = "TLSMINT_REVOCATION_REFRESH", default_value = "30s")]
    pub revocation_refresh: tlsmint_api::Duration,

    /// Validity (nextUpdate) of OCSP responses.
    #[arg(long, env = "TLSMINT_OCSP_VALIDITY", default_value = "1h")]
    pub ocsp_validity: tlsmint_api::Duration,

    /// How long a revoked certificate stays on the CRL after it has expired.
    #[arg(long, env = "TLSMINT_REVOKED_GRACE", default_value = "1h")]
    pub revoked_grace: tlsmint_api::Duration,

    /// Most live revocations one mount keeps for API callers (about 110 bytes
    /// each in the mount's ConfigMap); past it revocations are refused with
    /// 503 until entries expire. CertificateRequest revocations may use a
    /// quarter more.
    #[arg(long, env = "TLSMINT_MAX_REVOCATIONS", default_value_t = revocation::DEFAULT_MAX_ENTRIES)]
    pub max_revocations: usize,

    /// Name of the Service in front of the APIs; the serving certificate covers
    /// `<service>`, `<service>.<ns>`, `<service>.<ns>.svc`,
    /// `<service>.<ns>.svc.cluster.local`, `localhost` and `127.0.0.1` (cluster mode).
    #[arg(long, env = "TLSMINT_SERVICE_NAME", default_value = "tlsmint-operator")]
    pub service_name: String,

    /// DNS names and IPs of the APIs' serving certificate, instead of those
    /// derived from `--service-name` (cluster mode).
    #[arg(long, env = "TLSMINT_SERVING_NAMES", value_delimiter = ',')]
    pub serving_names: Option<Vec<String>>,

    /// Lifetime of the serving certificate; each replica renews its own at
    /// half of it, without a restart (cluster mode).
    #[arg(long, env = "TLSMINT_SERVING_CERT_TTL", default_value = "24h")]
    pub serving_cert_ttl: tlsmint_api::Duration,

    /// Certificates each replica remembers for `GET /v1/<mount>/cert/<serial>`
    /// (tlsmint stores no certificates).
    #[arg(long, env = "TLSMINT_RECENT_CERTS", default_value_t = 10_000)]
    pub recent_certs: usize,

    /// Let several replicas on one host share the API ports (SO_REUSEPORT): the
    /// kernel spreads connections over them. Only for replicas that share the
    /// host network on one node (the local test cluster).
    #[arg(long, env = "TLSMINT_API_REUSE_PORT", default_value_t = false)]
    pub api_reuse_port: bool,

    /// Connection timeouts and caps.
    #[command(flatten)]
    pub conn: conn::ConnArgs,
    /// ServiceAccounts (`namespace/name`, comma-separated) that may call `CheckPolicy`:
    /// the injector's, so it can refuse at admission a pod that would be denied. Empty:
    /// nobody.
    #[arg(long, env = "TLSMINT_POLICY_CHECK_CALLERS", value_delimiter = ',')]
    pub policy_check_callers: Vec<String>,
}

impl ApiArgs {
    /// Revocation timing from the flags.
    pub fn revocation_settings(&self) -> revocation::Settings {
        revocation::Settings {
            batch_window: self.crl_batch_window.as_std(),
            refresh_interval: self.revocation_refresh.as_std().max(Duration::from_secs(1)),
            grace: self.revoked_grace.as_std(),
            max_entries: self.max_revocations.max(1),
        }
    }

    /// How long TokenReview results are cached.
    #[allow(dead_code)] // Used by `run` mode.
    pub fn token_cache_ttl(&self) -> Duration {
        self.token_cache_ttl.as_std()
    }
}

/// Timing settings read on the request path.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Lifetime of Vault client tokens.
    pub client_token_ttl: Duration,
    /// Validity of OCSP responses.
    pub ocsp_validity: Duration,
    /// Time a revoked certificate stays on the CRL after its notAfter.
    pub revoked_grace: Duration,
}

/// Everything a request handler needs.
#[derive(Debug)]
pub struct ApiState {
    /// Mounts and roles.
    pub registry: Arc<Registry>,
    /// Verifies bearer tokens.
    pub auth: Arc<dyn Authenticator>,
    /// Decides administrative rights (revoking by serial).
    pub rights: Arc<dyn Rights>,
    /// Revocation records and CRLs.
    pub revocations: Arc<Revocations>,
    /// Per-ServiceAccount rate limits.
    pub limiter: RateLimiter,
    /// Vault client tokens.
    pub tokens: ClientTokens,
    /// Recently issued certificates.
    pub recent: RecentCerts,
    /// Timing.
    pub settings: Settings,
    /// `namespace/name` of the ServiceAccounts that may call `CheckPolicy`.
    pub policy_checkers: Vec<String>,
    /// Where slow issuance work (RSA key generation) runs; shared with the controllers.
    pub cpu: tlsmint_runtime::cpu::CpuPool,
    /// The API's own metrics (`tlsmint_api_*`).
    pub metrics: Arc<ApiMetrics>,
    /// Dev mode's write state for Vault's setup endpoints; `None` in a
    /// cluster, where those writes are PkiMount and IssuerRole objects.
    pub admin: Option<Arc<vault::DevAdmin>>,
}

impl std::fmt::Debug for dyn Rights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rights")
    }
}

impl std::fmt::Debug for dyn Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticator")
    }
}

/// What the servers are built from.
pub struct Services {
    /// Mounts and roles (filled by the controllers, or by dev mode).
    pub registry: Arc<Registry>,
    /// TokenReview in cluster mode, [`auth::DevAuthenticator`] in dev mode.
    pub authenticator: Arc<dyn Authenticator>,
    /// SubjectAccessReview in cluster mode, [`rights::DevRights`] (the root
    /// token is the administrator) in dev mode.
    pub rights: Arc<dyn Rights>,
    /// Revocations ([`revocation::MemoryStore`] in dev, ConfigMaps in cluster).
    pub revocations: Arc<Revocations>,
    /// HMAC key of Vault client tokens; the same on every replica.
    pub token_key: [u8; 32],
    /// The serving certificate; `None` serves plaintext (dev mode only).
    pub tls: Option<Arc<ServingCert>>,
    /// Where slow issuance work runs (the controllers' pool in cluster mode).
    pub cpu: tlsmint_runtime::cpu::CpuPool,
    /// The API's own metrics (`tlsmint_api_*`), registered on the admin port by the caller.
    pub metrics: Arc<ApiMetrics>,
    /// Dev mode: serve Vault's setup writes (`sys/mounts`, `root/generate`,
    /// `roles/<name>`, ...) against the registry.
    pub dev_admin: bool,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// Starting the servers failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A port could not be bound.
    #[error("binding the {api} API to {addr} failed: {source}")]
    Bind {
        /// `HTTP` or `gRPC`.
        api: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// TLS could not be configured.
    #[error("configuring TLS for the {api} API failed: {reason}")]
    Tls {
        /// `HTTP` or `gRPC`.
        api: &'static str,
        /// Why.
        reason: String,
    },
    /// A server stopped with an error.
    #[error("the {api} API server failed: {reason}")]
    Server {
        /// `HTTP` or `gRPC`.
        api: &'static str,
        /// What it said.
        reason: String,
    },
}

/// The bound API ports.
#[derive(Debug)]
pub struct Listeners {
    /// The Vault-compatible HTTP API.
    pub http: TcpListener,
    /// The gRPC API.
    pub grpc: TcpListener,
}

impl Listeners {
    /// The actual addresses (useful with port 0).
    pub fn addrs(&self) -> (Option<SocketAddr>, Option<SocketAddr>) {
        (self.http.local_addr().ok(), self.grpc.local_addr().ok())
    }
}

/// Binds both API ports; flags override `default_ip` with the default ports.
pub fn bind(args: &ApiArgs, default_ip: IpAddr) -> Result<Listeners, ServeError> {
    let http = args
        .http_addr
        .unwrap_or(SocketAddr::new(default_ip, HTTP_PORT));
    let grpc = args
        .grpc_addr
        .unwrap_or(SocketAddr::new(default_ip, GRPC_PORT));
    let reuse_port = args.api_reuse_port;
    let bind = |api, addr| {
        tlsmint_runtime::net::listen(addr, reuse_port).map_err(|source| ServeError::Bind {
            api,
            addr,
            source,
        })
    };
    Ok(Listeners {
        http: bind("HTTP", http)?,
        grpc: bind("gRPC", grpc)?,
    })
}

/// Serves both APIs until `shutdown`, and runs the CRL builder.
pub async fn serve(
    listeners: Listeners,
    services: Services,
    args: &ApiArgs,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let state = Arc::new(ApiState {
        registry: services.registry.clone(),
        auth: services.authenticator,
        rights: services.rights,
        revocations: services.revocations.clone(),
        limiter: RateLimiter::new(args.rate_limit, args.rate_burst),
        tokens: ClientTokens::new(&services.token_key),
        recent: RecentCerts::new(args.recent_certs),
        settings: Settings {
            client_token_ttl: args.client_token_ttl.as_std(),
            ocsp_validity: args.ocsp_validity.as_std(),
            revoked_grace: args.revoked_grace.as_std(),
        },
        policy_checkers: args
            .policy_check_callers
            .iter()
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .collect(),
        cpu: services.cpu,
        metrics: services.metrics,
        admin: services.dev_admin.then(vault::DevAdmin::new),
    });
    tokio::spawn(
        services
            .revocations
            .clone()
            .run(services.registry.clone(), shutdown.clone()),
    );
    let acceptor = |api: &'static str, alpn: &[&[u8]]| -> Result<_, ServeError> {
        services
            .tls
            .clone()
            .map(|cert| tlsmint_runtime::tls::acceptor(cert, alpn))
            .transpose()
            .map_err(|e| ServeError::Tls {
                api,
                reason: e.to_string(),
            })
    };
    let accept_err = |api| {
        move |e: std::io::Error| ServeError::Server {
            api,
            reason: e.to_string(),
        }
    };
    let nofile = tlsmint_runtime::limits::nofile_limit().ok();
    let limits = args.conn.limits(nofile);
    let h2 = args.conn.h2();
    // One tracker for both APIs: together they stay under the cap.
    let tracker = tlsmint_runtime::limits::ConnTracker::new(limits);
    let http_in = tlsmint_runtime::listen::accept_limited(
        listeners.http,
        acceptor("HTTP", &[b"h2", b"http/1.1"])?,
        Some(tracker.clone()),
        shutdown.clone(),
    )
    .map_err(accept_err("HTTP"))?;
    let grpc_in = tlsmint_runtime::listen::accept_limited(
        listeners.grpc,
        acceptor("gRPC", &[b"h2"])?,
        Some(tracker),
        shutdown.clone(),
    )
    .map_err(accept_err("gRPC"))?;
    tracing::info!(
        http.addr = %http_in.local_addr(),
        grpc.addr = %grpc_in.local_addr(),
        tls = services.tls.is_some(),
        fd.limit = nofile.unwrap_or(0),
        connections.max = limits.max_connections.unwrap_or(0),
        connections.max_per_peer = limits.max_per_peer.unwrap_or(0),
        "issuance APIs listening"
    );

    let http = tlsmint_runtime::http::serve(
        http_in,
        vault::router(state.clone()),
        tlsmint_runtime::http::HttpLimits {
            header_read_timeout: limits.header_read_timeout,
            h2,
        },
        shutdown.clone(),
    );
    let grpc = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(h2.keepalive_interval).filter(|d| !d.is_zero()))
        .http2_keepalive_timeout(Some(h2.keepalive_timeout))
        .max_concurrent_streams(h2.max_concurrent_streams)
        .max_frame_size(h2.max_frame_size)
        .http2_max_header_list_size(h2.max_header_list_size)
        .add_service(grpc::IssuerService::server(state))
        .serve_with_incoming_shutdown(grpc_in, shutdown.clone().cancelled_owned());
    let ((), grpc) = tokio::join!(http, grpc);
    grpc.map_err(|e| ServeError::Server {
        api: "gRPC",
        reason: e.to_string(),
    })?;
    Ok(())
}
