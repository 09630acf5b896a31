//! Renewal of one volume when the schedule says it is due: a new key and certificate with
//! the freshest token kubelet passed; on failure the current files keep being served and
//! the next attempt is scheduled with backoff, never later than the certificate's expiry
//! would warrant.

use super::Manager;
use super::publish::result_of;

/// A token closer to expiry than this is not used: kubelet will pass a new one.
const TOKEN_MARGIN: time::Duration = time::Duration::seconds(10);

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
                let next = now + delay;
                let expired = now >= volume.record.certificate.not_after;
                tracing::warn!(volume.id = %id, error = %error, failures = volume.failures,
                    retry_in_s = delay.as_secs(), expired, "renewal failed; the current files stay");
                self.inner.schedule.set(id, next);
            }
        }
    }
}
