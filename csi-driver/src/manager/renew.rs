//! Renewal of one volume when the schedule says it is due: a new key and certificate with
//! the freshest token kubelet passed; on failure the current files keep being served and
//! the next attempt is scheduled with backoff, never later than the certificate's expiry
//! would warrant.
//!
//! Trouble is reported once per change of state with a pod Event: `RenewalOverdue` when the
//! renewal still fails [`overdue_grace`] after it was due, `Expired` past notAfter. A
//! successful renewal clears the state (no Event: Events are for trouble only).

use time::OffsetDateTime;

use super::publish::result_of;
use super::{Manager, Volume};
use crate::events::{PodEvent, PodRef, Trouble};
use crate::store::CertificateRecord;

/// A token closer to expiry than this is not used: kubelet will pass a new one.
pub(super) const TOKEN_MARGIN: time::Duration = time::Duration::seconds(10);

/// How long after its renewal time a failing renewal is reported as overdue: a tenth of
/// the lifetime, at most 15 minutes. A short outage (an operator restart) that the
/// retries ride out causes no Event on every pod of the cluster.
pub fn overdue_grace(cert: &CertificateRecord) -> time::Duration {
    ((cert.not_after - cert.not_before) / 10_i32)
        .clamp(time::Duration::ZERO, time::Duration::minutes(15))
}

impl Manager {
    /// Renews `id` (called by the schedule). Always reschedules unless the volume is gone.
    pub async fn renew(&self, id: &str) {
        let Some(slot) = self.existing_slot(id) else {
            return;
        };
        let mut guard = slot.lock().await;
        let Some(volume) = guard.as_mut() else {
            return;
        };
        if !volume.ready {
            return;
        }
        let now = self.inner.clock.now();
        let token_ok = volume
            .token
            .as_ref()
            .is_some_and(|t| t.expires > now + TOKEN_MARGIN);
        let was_failing = volume.failures > 0;
        let outcome = if token_ok {
            self.issue_into(volume).await
        } else {
            volume.token = None;
            Err(super::VolumeError::Retry {
                volume: id.to_owned(),
                reason: "no valid token of the pod yet (kubelet passes one at the next republish)"
                    .into(),
            })
        };
        match outcome {
            Ok(()) => {
                volume.failures = 0;
                volume.trouble = None;
                self.inner.metrics.issuance("renewal", "ok");
                self.inner.metrics.failing(false, was_failing);
                tracing::info!(volume.id = %id, x509.serial = %volume.record.certificate.serial,
                    "certificate renewed");
            }
            Err(error) => {
                volume.failures += 1;
                self.inner.metrics.issuance("renewal", result_of(&error));
                self.inner.metrics.failing(true, was_failing);
                let seed = tlsmint_client::renewal::seed_of(id.as_bytes());
                let delay = tlsmint_client::renewal::failure_backoff(volume.failures, seed);
                let expired = now >= volume.record.certificate.not_after;
                tracing::warn!(volume.id = %id, error = %error, failures = volume.failures,
                    retry_in_s = delay.as_secs(), expired, "renewal failed; the current files stay");
                let overdue_at = self.overdue_at(volume);
                self.report(volume, now, overdue_at, &error.to_string());
                // Retry after the backoff, but notice the moments that change the state.
                let mut next = now + delay;
                for moment in [overdue_at, volume.record.certificate.not_after] {
                    if now < moment {
                        next = next.min(moment);
                    }
                }
                self.inner.schedule.set(id, next);
            }
        }
    }
}

impl Manager {
    /// When a failing renewal of `volume`'s certificate counts as overdue.
    fn overdue_at(&self, volume: &Volume) -> OffsetDateTime {
        let cert = &volume.record.certificate;
        let seed = tlsmint_client::renewal::seed_of(cert.serial.as_bytes());
        let due = tlsmint_client::renewal::renewal_time(
            cert.not_before,
            cert.not_after,
            volume.attrs.renew_at.get(),
            seed,
        );
        due + overdue_grace(cert)
    }

    /// Emits a pod Event if the volume's trouble got worse since the last one.
    fn report(
        &self,
        volume: &mut Volume,
        now: OffsetDateTime,
        overdue_at: OffsetDateTime,
        error: &str,
    ) {
        let cert = &volume.record.certificate;
        let trouble = if now >= cert.not_after {
            Some(Trouble::Expired)
        } else if now >= overdue_at {
            Some(Trouble::RenewalOverdue)
        } else {
            None
        };
        if trouble <= volume.trouble {
            return;
        }
        volume.trouble = trouble;
        let Some(trouble) = trouble else { return };
        let rfc = |t: OffsetDateTime| tlsmint_ca::x509::rfc3339(t);
        let note = match trouble {
            Trouble::Expired => format!(
                "tlsmint volume {}: certificate {} expired at {}; renewal keeps failing: {error}",
                volume.record.volume_id,
                cert.serial,
                rfc(cert.not_after)
            ),
            Trouble::RenewalOverdue => format!(
                "tlsmint volume {}: renewal of certificate {} is overdue (it expires at {}); retrying: {error}",
                volume.record.volume_id,
                cert.serial,
                rfc(cert.not_after)
            ),
        };
        let pod = &volume.record.pod;
        tracing::warn!(volume.id = %volume.record.volume_id, reason = trouble.reason(),
            "reporting trouble in a pod event");
        self.inner.config.events.emit(PodEvent {
            pod: PodRef {
                namespace: pod.namespace.clone(),
                name: pod.name.clone(),
                uid: pod.uid.clone(),
            },
            trouble,
            note,
        });
    }
}
