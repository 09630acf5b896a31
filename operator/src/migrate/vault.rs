//! A minimal Vault HTTP client for `migrate from-vault`: token-authenticated `GET` and
//! `LIST` (as `GET ...?list=true`) of JSON, over HTTP or HTTPS (roots from `VAULT_CACERT`,
//! else the system's).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tlsmint_ca::{ExposeSecret as _, SecretString};

/// Largest answer read from Vault (a mount with many roles or a long CA chain is far
/// below this).
const MAX_BODY: usize = 16 << 20;
/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A Vault server and the token to read it with.
pub struct Vault {
    base: String,
    token: SecretString,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// A client for `address` (e.g. `https://vault.example.com:8200`), verifying TLS with
    /// the PEM certificates of `ca_cert` or the system's roots.
    pub fn new(
        address: &str,
        token: SecretString,
        ca_cert: Option<&Path>,
    ) -> anyhow::Result<Vault> {
        let base = address.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            bail!("VAULT_ADDR {base:?} must start with http:// or https://");
        }
        let mut roots = rustls::RootCertStore::empty();
        match ca_cert {
            Some(path) => {
                let pem = std::fs::read_to_string(path)
                    .with_context(|| format!("reading VAULT_CACERT {}", path.display()))?;
                let ders = tlsmint_ca::pem::decode_certificates(&pem).with_context(|| {
                    format!("VAULT_CACERT {} holds no PEM certificate", path.display())
                })?;
                for der in ders {
                    roots.add(der.into()).with_context(|| {
                        format!("a certificate in {} is unusable", path.display())
                    })?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                for cert in found.certs {
                    // A system store may hold a certificate rustls cannot use; skip it.
                    let _ = roots.add(cert);
                }
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .context("TLS setup")?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Vault {
            base,
            token,
            client: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    /// `GET /v1/<path>`: the answer's JSON, `None` on 404 (Vault's "nothing here").
    pub async fn read(&self, path: &str) -> anyhow::Result<Option<Value>> {
        let url = format!("{}/v1/{}", self.base, path.trim_start_matches('/'));
        let request = http::Request::get(&url)
            .header("X-Vault-Token", self.token.expose_secret())
            .header("X-Vault-Request", "true")
            .body(Empty::<Bytes>::new())
            .context("building the request")?;
        let response = tokio::time::timeout(TIMEOUT, self.client.request(request))
            .await
            .with_context(|| format!("GET {url}: no answer within {}s", TIMEOUT.as_secs()))?
            .with_context(|| format!("GET {url} failed (is VAULT_ADDR right and Vault up?)"))?;
        let status = response.status();
        let body = http_body_util::Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| anyhow::anyhow!("GET {url}: reading the answer failed: {e}"))?
            .to_bytes();
        if status == http::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            let errors = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("errors").cloned())
                .map(|e| e.to_string())
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(300).collect());
            if status == http::StatusCode::FORBIDDEN {
                bail!(
                    "GET {url}: 403 permission denied ({errors}): the token needs read and list on sys/mounts and the PKI mounts"
                );
            }
            bail!("GET {url}: {status} {errors}");
        }
        let value = serde_json::from_slice(&body)
            .with_context(|| format!("GET {url}: the answer is not JSON"))?;
        Ok(Some(value))
    }

    /// The `data` of `GET /v1/<path>`, `None` on 404.
    pub async fn data(&self, path: &str) -> anyhow::Result<Option<Value>> {
        Ok(self
            .read(path)
            .await?
            .map(|v| v.get("data").cloned().unwrap_or(Value::Null)))
    }

    /// `LIST /v1/<path>`: the keys, empty on 404 (Vault answers 404 for an empty list).
    pub async fn list(&self, path: &str) -> anyhow::Result<Vec<String>> {
        let Some(data) = self.data(&format!("{path}?list=true")).await? else {
            return Ok(Vec::new());
        };
        Ok(data
            .get("keys")
            .and_then(Value::as_array)
            .map(|keys| {
                keys.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The address, for messages.
    pub fn address(&self) -> &str {
        &self.base
    }
}
