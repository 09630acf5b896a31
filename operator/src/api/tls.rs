//! The operator's own serving certificate for the API ports: issued by a
//! tlsmint CA (the internal mount the operator bootstraps), held in
//! [`tlsmint_runtime::tls::CertSwap`] and swapped in place when it is renewed
//! (at half of its lifetime, by [`tlsmint_client::renewal::renewal_time`]), so
//! TLS never needs a restart.
//!
//! Owns: the current certificate and its renewal at half of its lifetime.
//! Must not: write the key anywhere (it lives only in memory).

// Cluster-mode pieces: `run` (operator/src/run.rs) wires them in; dev mode does not.
#![allow(dead_code)]

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use time::OffsetDateTime;
use tlsmint_ca::{
    CertificateAuthority, Identity, IssueRequest, LeafProfile, Lifetimes, NameRequest, Policy, Role,
};
use tlsmint_client::renewal;
use tlsmint_runtime::tls::CertSwap;
use tokio_util::sync::CancellationToken;

/// The serving certificate, swappable at any time.
pub struct ServingCert {
    current: CertSwap,
    not_before: RwLock<Option<OffsetDateTime>>,
    not_after: RwLock<Option<OffsetDateTime>>,
}

impl fmt::Debug for ServingCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServingCert")
            .field(
                "not_after",
                &*self.not_after.read().unwrap_or_else(|e| e.into_inner()),
            )
            .finish_non_exhaustive()
    }
}

/// Issuing or loading the serving certificate failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The CA refused to issue it.
    #[error("issuing the API serving certificate failed: {0}")]
    Issue(#[from] tlsmint_ca::Error),
    /// rustls refused the key.
    #[error("loading the API serving key into rustls failed: {0}")]
    Key(String),
    /// The certificate and key could not be installed.
    #[error("installing the API serving certificate failed: {0}")]
    Install(#[from] tlsmint_runtime::tls::TlsError),
}

impl Default for ServingCert {
    fn default() -> Self {
        ServingCert {
            current: CertSwap::default(),
            not_before: RwLock::new(None),
            not_after: RwLock::new(None),
        }
    }
}

impl ServingCert {
    /// An empty holder (handshakes fail until a certificate is set).
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Issues a certificate for `dns_names` from `ca`, valid for `ttl`, and swaps it in.
    pub fn issue_from(
        &self,
        ca: &CertificateAuthority,
        dns_names: &[String],
        ttl: Duration,
    ) -> Result<(), TlsError> {
        let mut issued = issue_serving(ca, dns_names, ttl, OffsetDateTime::now_utc())?;
        let key = issued
            .private_key
            .take()
            .ok_or_else(|| TlsError::Key("no key was generated".into()))?;
        let mut chain = vec![CertificateDer::from(issued.certificate_der.clone())];
        for parent in issued.ca_chain.der.iter() {
            chain.push(CertificateDer::from(parent.clone()));
        }
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.pkcs8_der().to_vec()));
        self.current.set_der(chain, &der)?;
        *self.not_before.write().unwrap_or_else(|e| e.into_inner()) = Some(issued.not_before);
        *self.not_after.write().unwrap_or_else(|e| e.into_inner()) = Some(issued.not_after);
        tracing::info!(x509.serial = %issued.serial, x509.not_after = issued.not_after.unix_timestamp(), "API serving certificate installed");
        Ok(())
    }

    /// When the current certificate is renewed: at half of its lifetime, with the jitter
    /// every tlsmint renewal uses (seeded by the start of its validity, so replicas spread).
    pub fn renewal_time(&self) -> Option<OffsetDateTime> {
        let not_before = (*self.not_before.read().unwrap_or_else(|e| e.into_inner()))?;
        let not_after = self.not_after()?;
        let seed = renewal::seed_of(&not_before.unix_timestamp_nanos().to_le_bytes());
        Some(renewal::renewal_time(not_before, not_after, 0.5, seed))
    }

    /// When the current certificate expires.
    pub fn not_after(&self) -> Option<OffsetDateTime> {
        *self.not_after.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Re-issues the certificate at half of its lifetime until `shutdown`,
    /// taking the CA from `ca` each time (it may have been replaced).
    pub async fn keep_fresh(
        self: Arc<Self>,
        ca: impl Fn() -> Option<Arc<CertificateAuthority>> + Send + 'static,
        names: Vec<String>,
        ttl: Duration,
        shutdown: CancellationToken,
    ) {
        loop {
            let wait = self
                .renewal_time()
                .map(|at| (at - OffsetDateTime::now_utc()).max(time::Duration::ZERO))
                .map(|d| Duration::try_from(d).unwrap_or_default())
                .unwrap_or_default();
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            let result = match ca() {
                Some(ca) => self.issue_from(&ca, &names, ttl),
                None => Err(TlsError::Key("the internal mount is not ready".into())),
            };
            if let Err(err) = result {
                tracing::warn!(error = %err, "renewing the API serving certificate failed; retrying in 30s");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(30)) => {}
                }
            }
        }
    }
}

/// Issues a TLS server certificate (no client usage) for `names` (DNS names, and IP
/// addresses written as such) from `ca`, valid for `ttl` from `now`, with a key made here.
/// Shared by the APIs' own certificate and the injector's (`crate::injector_tls`).
pub fn issue_serving(
    ca: &CertificateAuthority,
    names: &[String],
    ttl: Duration,
    now: OffsetDateTime,
) -> Result<tlsmint_ca::Issued, tlsmint_ca::Error> {
    let role = Role {
        policy: Policy {
            role: "tlsmint-serving".into(),
            allow_any_name: true,
            allow_localhost: true,
            allow_ip_sans: true,
            ..Policy::default()
        },
        profile: LeafProfile {
            lifetimes: Lifetimes {
                ttl,
                max_ttl: ttl,
                ..Lifetimes::default()
            },
            client_flag: false,
            ..LeafProfile::default()
        },
    };
    let (ips, dns): (Vec<String>, Vec<String>) = names
        .iter()
        .cloned()
        .partition(|n| n.parse::<std::net::IpAddr>().is_ok());
    let req = IssueRequest {
        names: NameRequest {
            common_name: dns.first().cloned(),
            dns_names: dns,
            ip_addresses: ips,
            uris: Vec::new(),
        },
        ttl: Some(ttl),
    };
    let identity = Identity {
        namespace: "tlsmint-system".into(),
        service_account: None,
    };
    ca.issue(&role, &identity, &req, now)
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.resolve(hello)
    }
}
