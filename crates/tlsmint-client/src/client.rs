//! A small client of `tlsmint.v1.Issuer`: connects over TLS with a CA bundle
//! (or plaintext to `tlsmint-operator dev` on loopback) and attaches
//! `authorization: Bearer <token>` to every call.
//!
//! Owns: connection set-up and token attachment. Must not: retry or schedule
//! renewals (the CSI driver and the agent decide that), or log tokens and keys.

use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Status};

use crate::proto::issuer_client::IssuerClient;
use crate::proto::{
    CheckPolicyRequest, CheckPolicyResponse, GetCaBundleRequest, GetCaBundleResponse, IssueRequest,
    IssueResponse, SignRequest, SignResponse,
};
use crate::token::{TokenError, TokenSource};

/// How to reach the issuance API.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// `https://host:8201`, or `http://127.0.0.1:8201` for a dev server.
    pub endpoint: String,
    /// PEM CA certificates that sign the server's certificate (needed for https).
    pub ca_bundle_pem: Option<String>,
    /// The name to check in the server's certificate, when it differs from the endpoint's host.
    pub server_name: Option<String>,
    /// Where each call's bearer token comes from.
    pub token: TokenSource,
    /// Timeout for connecting and for each call.
    pub timeout: Duration,
}

impl ClientConfig {
    /// A config with a 10 s timeout and no TLS overrides.
    pub fn new(endpoint: impl Into<String>, token: TokenSource) -> Self {
        ClientConfig {
            endpoint: endpoint.into(),
            ca_bundle_pem: None,
            server_name: None,
            token,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Why a client could not be built or a call could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The endpoint is not a valid URI.
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    Endpoint {
        /// The endpoint given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An https endpoint without a CA bundle.
    #[error("endpoint {endpoint} uses https but no CA bundle was given to verify the server")]
    MissingCaBundle {
        /// The endpoint given.
        endpoint: String,
    },
    /// The TLS settings were rejected.
    #[error("configuring TLS for {endpoint} failed: {reason}")]
    Tls {
        /// The endpoint.
        endpoint: String,
        /// What tonic said.
        reason: String,
    },
    /// The connection could not be made.
    #[error("connecting to {endpoint} failed: {reason}")]
    Connect {
        /// The endpoint.
        endpoint: String,
        /// What the transport said.
        reason: String,
    },
    /// The token could not be loaded.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The server answered with an error status.
    #[error("{code:?}: {message}", code = .0.code(), message = .0.message())]
    Status(#[from] Status),
}

/// A connected client. Cheap to clone; calls may run concurrently.
#[derive(Clone, Debug)]
pub struct Client {
    inner: IssuerClient<Channel>,
    token: TokenSource,
}

impl Client {
    /// Connects to the server (one HTTP/2 connection, kept alive and reused).
    pub async fn connect(config: ClientConfig) -> Result<Self, ClientError> {
        let endpoint = endpoint(&config)?;
        let channel = endpoint.connect().await.map_err(|e| ClientError::Connect {
            endpoint: config.endpoint.clone(),
            reason: error_chain(&e),
        })?;
        Ok(Self::from_channel(channel, config.token))
    }

    /// A channel to the server that connects on first use and reconnects when needed, for
    /// processes that make calls with many different tokens over one connection (the CSI
    /// driver: one [`Client::from_channel`] per call, each with the pod's token). The token
    /// source of `config` is not used.
    pub fn lazy_channel(config: &ClientConfig) -> Result<Channel, ClientError> {
        Ok(endpoint(config)?.connect_lazy())
    }

    /// A client over an existing channel (tests, Unix sockets, shared channels).
    pub fn from_channel(channel: Channel, token: TokenSource) -> Self {
        Client {
            inner: IssuerClient::new(channel),
            token,
        }
    }

    /// `Issue`: the server generates the key.
    pub async fn issue(&self, req: IssueRequest) -> Result<IssueResponse, ClientError> {
        let req = self.authorized(req)?;
        Ok(self.inner.clone().issue(req).await?.into_inner())
    }

    /// `Sign`: the server signs the caller's CSR.
    pub async fn sign(&self, req: SignRequest) -> Result<SignResponse, ClientError> {
        let req = self.authorized(req)?;
        Ok(self.inner.clone().sign(req).await?.into_inner())
    }

    /// `GetCABundle`: the chain and trust anchor of a role's or a mount's CA.
    pub async fn ca_bundle(
        &self,
        req: GetCaBundleRequest,
    ) -> Result<GetCaBundleResponse, ClientError> {
        let req = self.authorized(req)?;
        Ok(self.inner.clone().get_ca_bundle(req).await?.into_inner())
    }

    /// `CheckPolicy`: whether a ServiceAccount may get these names through a role (nothing
    /// is issued; only callers the operator allows may ask).
    pub async fn check_policy(
        &self,
        req: CheckPolicyRequest,
    ) -> Result<CheckPolicyResponse, ClientError> {
        let req = self.authorized(req)?;
        Ok(self.inner.clone().check_policy(req).await?.into_inner())
    }

    fn authorized<T>(&self, message: T) -> Result<Request<T>, ClientError> {
        let mut req = Request::new(message);
        let bearer = self.token.current()?.bearer()?;
        req.metadata_mut().insert("authorization", bearer);
        Ok(req)
    }
}

fn endpoint(config: &ClientConfig) -> Result<Endpoint, ClientError> {
    let bad = |reason: String| ClientError::Endpoint {
        endpoint: config.endpoint.clone(),
        reason,
    };
    let mut endpoint = Endpoint::from_shared(config.endpoint.clone())
        .map_err(|e| bad(e.to_string()))?
        .connect_timeout(config.timeout)
        .timeout(config.timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    if config.endpoint.starts_with("https://") {
        let Some(ca) = &config.ca_bundle_pem else {
            return Err(ClientError::MissingCaBundle {
                endpoint: config.endpoint.clone(),
            });
        };
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
        if let Some(name) = &config.server_name {
            tls = tls.domain_name(name.clone());
        }
        endpoint = endpoint.tls_config(tls).map_err(|e| ClientError::Tls {
            endpoint: config.endpoint.clone(),
            reason: error_chain(&e),
        })?;
    } else if !config.endpoint.starts_with("http://") {
        return Err(bad("use an https:// (or, for dev mode, http://) URL".into()));
    }
    Ok(endpoint)
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        out.push_str(": ");
        out.push_str(&inner.to_string());
        source = inner.source();
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::token::Token;

    fn config(endpoint: &str) -> ClientConfig {
        ClientConfig::new(endpoint, TokenSource::Static(Token::new("t").unwrap()))
    }

    #[test]
    fn https_needs_a_ca_bundle() {
        let err = endpoint(&config("https://tlsmint:8201")).unwrap_err();
        assert!(matches!(err, ClientError::MissingCaBundle { .. }), "{err}");
    }

    #[test]
    fn rejects_other_schemes() {
        let err = endpoint(&config("ftp://x")).unwrap_err();
        assert!(err.to_string().contains("https://"), "{err}");
        assert!(endpoint(&config("http://127.0.0.1:8201")).is_ok());
    }
}
