//! Where certificates come from: the issuance API's `Sign` (a key made here, only a CSR
//! sent) or `Issue` (the server makes the key); and the roots to trust (`GetCABundle`). [`Source`] is the seam the renewal loop is
//! tested through.
//!
//! Owns the request's shape and the connection. Must not: retry (the loop does), log keys or
//! tokens.

use std::future::Future;
use std::net::IpAddr;

use tlsmint_ca::{KeySpec, PrivateKey};
use tlsmint_client::proto::{
    GetCaBundleRequest, IssueRequest, IssuedCertificate, Names, SignRequest,
};
use tlsmint_client::{Client, ClientConfig, ClientError};
use tokio::sync::Mutex;

use crate::disk::Material;

/// Something that hands out certificates.
pub trait Source: Send + Sync {
    /// One attempt at a new certificate.
    fn obtain(&self) -> impl Future<Output = Result<Material, ObtainError>> + Send;

    /// The roots trusted now (PEM, one or more certificates), as `ca.crt` holds them. Nothing
    /// is issued.
    fn trust(&self) -> impl Future<Output = Result<String, ObtainError>> + Send;
}

/// Why an attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum ObtainError {
    /// The key could not be made or the CSR built.
    #[error("making the key and CSR failed: {0}")]
    Key(String),
    /// The API could not be reached or refused.
    #[error("the issuance API: {0}")]
    Api(#[from] ClientError),
    /// The answer was incomplete or did not hold the key.
    #[error("the issuance API's answer is unusable: {0}")]
    Answer(String),
}

/// What to ask for.
#[derive(Clone, Debug)]
pub struct Request {
    /// The IssuerRole.
    pub role: String,
    /// Names, placeholders resolved.
    pub names: Names,
    /// Lifetime in seconds; 0: the role's.
    pub ttl_seconds: u64,
    /// Key to make (Sign).
    pub key: KeySpec,
    /// Use Issue instead of Sign.
    pub server_key: bool,
}

impl Request {
    /// Builds the names, checking IP SANs.
    pub fn names(
        common_name: Option<String>,
        dns: Vec<String>,
        ips: &[String],
        uris: Vec<String>,
    ) -> Result<Names, String> {
        let mut ip_addresses = Vec::with_capacity(ips.len());
        for ip in ips.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            let parsed: IpAddr = ip
                .parse()
                .map_err(|_| format!("--ip-sans: {ip:?} is not an IP address"))?;
            ip_addresses.push(parsed.to_string());
        }
        let clean = |v: Vec<String>| -> Vec<String> {
            v.into_iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        };
        Ok(Names {
            common_name: common_name.unwrap_or_default(),
            dns_names: clean(dns),
            ip_addresses,
            uris: clean(uris),
        })
    }
}

/// The issuance API, connected on first use and again after a failed call.
#[derive(Debug)]
pub struct Api {
    config: ClientConfig,
    request: Request,
    client: Mutex<Option<Client>>,
}

impl Api {
    /// A source that connects with `config` and asks for `request`.
    pub fn new(config: ClientConfig, request: Request) -> Self {
        Api {
            config,
            request,
            client: Mutex::new(None),
        }
    }

    /// A source over an existing client (tests).
    pub fn with_client(client: Client, config: ClientConfig, request: Request) -> Self {
        Api {
            config,
            request,
            client: Mutex::new(Some(client)),
        }
    }

    async fn client(&self) -> Result<Client, ClientError> {
        let mut guard = self.client.lock().await;
        if let Some(client) = guard.as_ref() {
            return Ok(client.clone());
        }
        let client = Client::connect(self.config.clone()).await?;
        *guard = Some(client.clone());
        Ok(client)
    }

    async fn attempt(&self) -> Result<Material, ObtainError> {
        let client = self.client().await?;
        let req = &self.request;
        if req.server_key {
            let resp = client
                .issue(IssueRequest {
                    role: req.role.clone(),
                    names: Some(req.names.clone()),
                    ttl_seconds: req.ttl_seconds,
                    key_encoding: tlsmint_client::proto::KeyEncoding::Pkcs8.into(),
                    ..IssueRequest::default()
                })
                .await?;
            let key = PrivateKey::from_pem(&resp.private_key_pem).map_err(|_| {
                ObtainError::Answer("the returned private key does not parse".into())
            })?;
            return material(resp.certificate, key);
        }
        let spec = req.key;
        let (key, csr) = tokio::task::spawn_blocking(move || {
            let key = PrivateKey::generate(spec)?;
            let csr = tlsmint_ca::request::leaf_csr_pem(&key)?;
            Ok::<_, tlsmint_ca::Error>((key, csr))
        })
        .await
        .map_err(|e| ObtainError::Key(e.to_string()))?
        .map_err(|e| ObtainError::Key(e.to_string()))?;
        let resp = client
            .sign(SignRequest {
                role: req.role.clone(),
                csr: csr.into_bytes(),
                names: Some(req.names.clone()),
                ttl_seconds: req.ttl_seconds,
            })
            .await?;
        material(resp.certificate, key)
    }
}

impl Api {
    async fn ca_bundle(&self) -> Result<String, ObtainError> {
        let client = self.client().await?;
        let resp = client
            .ca_bundle(GetCaBundleRequest {
                role: self.request.role.clone(),
                mount: String::new(),
            })
            .await?;
        if resp.ca_bundle_pem.trim().is_empty() {
            return Err(ObtainError::Answer("the CA bundle is empty".into()));
        }
        Ok(resp.ca_bundle_pem)
    }

    /// Forgets the connection after a failure to connect, so the next call connects afresh
    /// (the Service may route to another replica).
    async fn after<T>(&self, result: Result<T, ObtainError>) -> Result<T, ObtainError> {
        if let Err(ObtainError::Api(ClientError::Connect { .. })) = &result {
            *self.client.lock().await = None;
        }
        result
    }
}

impl Source for Api {
    async fn obtain(&self) -> Result<Material, ObtainError> {
        let result = self.attempt().await;
        self.after(result).await
    }

    async fn trust(&self) -> Result<String, ObtainError> {
        let result = self.ca_bundle().await;
        self.after(result).await
    }
}

fn material(cert: Option<IssuedCertificate>, key: PrivateKey) -> Result<Material, ObtainError> {
    let cert = cert.ok_or_else(|| ObtainError::Answer("no certificate".into()))?;
    if cert.certificate_pem.is_empty() || cert.ca_bundle_pem.is_empty() {
        return Err(ObtainError::Answer(
            "the certificate or the CA bundle is empty".into(),
        ));
    }
    Ok(Material {
        certificate_pem: cert.certificate_pem,
        chain_pem: cert.ca_chain_pem,
        ca_pem: cert.ca_bundle_pem,
        key,
    })
}
