//! CertificateRequest revocations (`spec.revoked: true`) into the same
//! records as API revocations: implements the controllers'
//! [`RevocationSink`] for [`Revocations`], so the CRL and OCSP list them.
//!
//! Owns: that adapter. Must not: decide whether a request is revoked.

use time::OffsetDateTime;
use tlsmint_ca::Serial;

use super::Revocations;
use crate::controllers::revocation_hook::{
    RecordFuture, Revocation, RevocationError, RevocationSink,
};

impl RevocationSink for Revocations {
    fn record(&self, revocation: Revocation) -> RecordFuture<'_> {
        Box::pin(async move {
            let fail = |reason: String| RevocationError {
                mount: revocation.mount.clone(),
                serial: revocation.serial.clone(),
                reason,
            };
            let serial = Serial::parse(&revocation.serial)
                .ok_or_else(|| fail("not a colon-separated hex serial".into()))?;
            let grace =
                time::Duration::try_from(self.settings.grace).unwrap_or(time::Duration::HOUR);
            let at = self
                .revoke(
                    &revocation.mount,
                    &serial,
                    revocation.not_after + grace,
                    revocation.revoked_at.min(OffsetDateTime::now_utc()),
                    super::Origin::Request,
                )
                .await
                .map_err(|e| fail(e.to_string()))?;
            tracing::info!(
                target: "tlsmint::audit",
                audit = true,
                audit.event = "revoked",
                audit.api = "certificaterequest",
                request = %revocation.request,
                mount = %revocation.mount,
                x509.serial = %serial,
                revoked_at = at.unix_timestamp(),
                "certificate revoked"
            );
            Ok(())
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::revocation::{MemoryStore, Settings};

    #[tokio::test]
    async fn records_are_visible_to_status_lookups() {
        let revocations = Revocations::new(Arc::new(MemoryStore::default()), Settings::default());
        let serial = Serial::random();
        let now = OffsetDateTime::now_utc();
        revocations
            .record(Revocation {
                mount: "pki".into(),
                serial: serial.to_colon_hex(),
                revoked_at: now,
                not_after: now + time::Duration::hours(1),
                request: "apps/web".into(),
            })
            .await
            .unwrap();
        assert!(revocations.status("pki", &serial).await.unwrap().is_some());
        let bad = revocations
            .record(Revocation {
                mount: "pki".into(),
                serial: "zz".into(),
                revoked_at: now,
                not_after: now,
                request: "apps/web".into(),
            })
            .await;
        assert!(bad.is_err());
    }
}
