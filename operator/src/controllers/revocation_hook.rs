//! The hook through which the CertificateRequest controller reports a revoked certificate
//! so that its mount's CRL (and OCSP) includes it. `run` gives the controller the issuance
//! API's revocation records (`crate::revocation::Revocations`, ConfigMaps of the operator's
//! namespace), which implement [`RevocationSink`]; the request's own status
//! (`serialNumber` + `revocationTime`) records it too. This module must not build CRLs.

use std::future::Future;
use std::pin::Pin;

use time::OffsetDateTime;

/// One revoked certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    /// The mount that issued it.
    pub mount: String,
    /// Its serial, colon-separated hex (Vault's form).
    pub serial: String,
    /// When it was revoked.
    pub revoked_at: OffsetDateTime,
    /// When it expires (it may leave the CRL after that).
    pub not_after: OffsetDateTime,
    /// The CertificateRequest that held it, `namespace/name`.
    pub request: String,
}

/// The revocation could not be recorded; the controller retries.
#[derive(Debug, thiserror::Error)]
#[error("recording the revocation of serial {serial} on mount {mount} failed: {reason}")]
pub struct RevocationError {
    /// The mount.
    pub mount: String,
    /// The serial.
    pub serial: String,
    /// Why.
    pub reason: String,
}

/// A boxed future returned by [`RevocationSink::record`].
pub type RecordFuture<'a> = Pin<Box<dyn Future<Output = Result<(), RevocationError>> + Send + 'a>>;

/// Where revocations go. Must be idempotent: a retried reconcile may record one twice.
pub trait RevocationSink: Send + Sync + 'static {
    /// Records `revocation` durably before returning.
    fn record(&self, revocation: Revocation) -> RecordFuture<'_>;
}
