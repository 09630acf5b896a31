//! A TLS server certificate that can be replaced while serving: a rustls resolver holding
//! the current chain and key, read on every handshake. The operator's API ports (which
//! issue their own certificate) and the injector's webhook (which loads it from files that
//! the operator rotates) both serve through it, so a renewal never needs a restart.
//!
//! Owns: the current certificate and turning PEM or DER into rustls' form. Must not: issue
//! certificates, or keep a private key anywhere but in memory.

use std::fmt;
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// Why a certificate could not be installed. Never contains key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate PEM held no `CERTIFICATE` block, or one that does not parse.
    #[error("the serving certificate PEM holds no readable CERTIFICATE block")]
    NoCertificate,
    /// The key PEM held no private key block.
    #[error("the serving key PEM holds no readable PRIVATE KEY block")]
    NoKey,
    /// rustls could not use the key (unsupported algorithm, or it does not match).
    #[error("the serving key cannot be used: {0}")]
    Key(#[source] rustls::Error),
    /// The acceptor could not be configured.
    #[error("configuring TLS failed: {0}")]
    Config(#[source] rustls::Error),
}

/// The serving certificate, swappable at any time. Until one is set, handshakes fail.
#[derive(Default)]
pub struct CertSwap {
    current: RwLock<Option<Arc<CertifiedKey>>>,
}

impl fmt::Debug for CertSwap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertSwap")
            .field("loaded", &self.current().is_some())
            .finish_non_exhaustive()
    }
}

impl CertSwap {
    /// An empty holder.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Installs `chain` (leaf first) with its private key; the next handshake uses them.
    pub fn set_der(
        &self,
        chain: Vec<CertificateDer<'static>>,
        key: &PrivateKeyDer<'_>,
    ) -> Result<(), TlsError> {
        if chain.is_empty() {
            return Err(TlsError::NoCertificate);
        }
        let signer =
            rustls::crypto::aws_lc_rs::sign::any_supported_type(key).map_err(TlsError::Key)?;
        let certified = CertifiedKey::new(chain, signer);
        // A key that does not match the leaf would fail every handshake: refuse it here.
        match certified.keys_match() {
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(err) => return Err(TlsError::Key(err)),
        }
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(certified));
        Ok(())
    }

    /// Installs a PEM chain (leaf first) and a PEM private key (PKCS#8, SEC1 or PKCS#1).
    pub fn set_pem(&self, chain_pem: &[u8], key_pem: &[u8]) -> Result<(), TlsError> {
        let chain = CertificateDer::pem_slice_iter(chain_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| TlsError::NoCertificate)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| TlsError::NoKey)?;
        self.set_der(chain, &key)
    }

    /// The certificate handshakes get now.
    pub fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl ResolvesServerCert for CertSwap {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
    }
}

/// A TLS acceptor (TLS 1.2 and 1.3, aws-lc-rs) offering `alpn` protocols, with the
/// certificate chosen per handshake by `resolver`.
pub fn acceptor(
    resolver: Arc<dyn ResolvesServerCert>,
    alpn: &[&[u8]],
) -> Result<TlsAcceptor, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn swaps_the_certificate_in_place() {
        let swap = CertSwap::new();
        assert!(swap.current().is_none());
        let (cert_a, key_a) = self_signed("a.example");
        swap.set_pem(cert_a.as_bytes(), key_a.as_bytes()).unwrap();
        let first = swap.current().unwrap();
        let (cert_b, key_b) = self_signed("b.example");
        swap.set_pem(cert_b.as_bytes(), key_b.as_bytes()).unwrap();
        let second = swap.current().unwrap();
        assert_ne!(first.cert[0], second.cert[0]);
    }

    #[test]
    fn refuses_a_key_that_does_not_match_and_keeps_the_old_pair() {
        let swap = CertSwap::new();
        let (cert_a, key_a) = self_signed("a.example");
        let (_, key_b) = self_signed("b.example");
        swap.set_pem(cert_a.as_bytes(), key_a.as_bytes()).unwrap();
        let err = swap
            .set_pem(cert_a.as_bytes(), key_b.as_bytes())
            .unwrap_err();
        assert!(matches!(err, TlsError::Key(_)), "{err}");
        assert!(!err.to_string().contains("PRIVATE KEY-----"));
        assert!(swap.current().is_some());
    }

    #[test]
    fn names_what_is_missing() {
        let swap = CertSwap::new();
        let (cert, key) = self_signed("a.example");
        assert!(matches!(
            swap.set_pem(b"garbage", key.as_bytes()),
            Err(TlsError::NoCertificate)
        ));
        assert!(matches!(
            swap.set_pem(cert.as_bytes(), b"garbage"),
            Err(TlsError::NoKey)
        ));
    }
}
