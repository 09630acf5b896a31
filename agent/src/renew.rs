//! The renewal loop: reuse a valid pair found on disk or get a first one, then renew at the
//! renewal instant; on failure retry with backoff while the old pair stays in place (it is
//! still valid until it expires); after each rotation tell the application. Between
//! renewals, every trust interval, compare the roots trusted now (a CA rotation changes
//! them) with `ca.crt`; when they differ, write them beside the same key and certificate and
//! tell the application too.
//!
//! Owns the schedule. Must not: decide the renewal instant itself (`disk::renew_time` and
//! `tlsmint_client::renewal` do) or read the wall clock except through [`Clock`].

use std::path::PathBuf;
use std::time::Duration;

use time::OffsetDateTime;
use tlsmint_ca::x509;
use tlsmint_client::files::AtomicDir;
use tlsmint_client::renewal;
use tlsmint_runtime::CancellationToken;

use crate::config::FileArgs;
use crate::disk::{self, Current};
use crate::reload::Reload;
use crate::source::Source;

/// Longest sleep before the wall clock is read again (a suspended VM or a clock step must
/// not delay a renewal by more than this).
pub const MAX_NAP: Duration = Duration::from_secs(60);

/// The wall clock. `Tokio` follows tokio's (pausable) clock from a starting instant, so that
/// tests can advance time.
#[derive(Clone, Copy, Debug)]
pub enum Clock {
    /// `OffsetDateTime::now_utc()`.
    System,
    /// `start` plus the tokio time elapsed since `at`.
    Tokio {
        /// Wall time at `at`.
        start: OffsetDateTime,
        /// The tokio instant it corresponds to.
        at: tokio::time::Instant,
    },
}

impl Clock {
    /// A clock that follows tokio's time from `start`.
    pub fn tokio(start: OffsetDateTime) -> Self {
        Clock::Tokio {
            start,
            at: tokio::time::Instant::now(),
        }
    }

    /// Now.
    pub fn now(&self) -> OffsetDateTime {
        match self {
            Clock::System => OffsetDateTime::now_utc(),
            Clock::Tokio { start, at } => *start + at.elapsed(),
        }
    }
}

/// What the loop works with.
#[derive(Debug)]
pub struct Agent<S> {
    /// Where certificates come from.
    pub source: S,
    /// The folder and file names.
    pub files: FileArgs,
    /// Fraction of the lifetime at which to renew.
    pub renew_at: f64,
    /// The clock.
    pub clock: Clock,
    /// What to do after a rotation or a trust change.
    pub reload: Reload,
    /// How often the roots to trust are checked (GetCABundle) between renewals.
    pub trust_interval: Duration,
}

/// Something observable about the loop (for tests and logs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The pair on disk was valid and kept.
    Reused(Current),
    /// A new certificate was written.
    Written(Current),
    /// The roots to trust changed: a new `ca.crt` beside the same key and certificate.
    TrustUpdated(Current),
    /// An attempt failed; the next one follows after the delay.
    Failed {
        /// Consecutive failures so far.
        failures: u32,
        /// Delay before the next attempt.
        retry_in: Duration,
        /// What went wrong.
        reason: String,
    },
}

impl<S: Source> Agent<S> {
    fn dir(&self) -> PathBuf {
        self.files.dir.clone()
    }

    /// Runs until `shutdown`, reporting each [`Event`] to `events`.
    pub async fn run(
        self,
        shutdown: CancellationToken,
        events: Option<tokio::sync::mpsc::UnboundedSender<Event>>,
    ) {
        let report = |event: Event| {
            if let Some(tx) = &events {
                let _ = tx.send(event);
            }
        };
        let mut current =
            match disk::reusable(&self.dir(), &self.files, self.clock.now(), self.renew_at) {
                Ok(found) => {
                    tracing::info!(
                        x509.serial = %found.serial,
                        x509.not_after = %x509::rfc3339(found.not_after),
                        renew_at = %x509::rfc3339(found.renew_at),
                        "the certificate on disk is valid; keeping it"
                    );
                    report(Event::Reused(found.clone()));
                    Some(found)
                }
                Err(reason) => {
                    if self.dir().join(tlsmint_client::files::DATA_LINK).exists() {
                        tracing::info!(reason = %reason, "replacing the files on disk");
                    }
                    None
                }
            };
        let mut failures = 0u32;
        let mut next_trust = self.clock.now() + self.trust_interval;
        loop {
            let now = self.clock.now();
            if now >= next_trust {
                next_trust = now + self.trust_interval;
                if let Some(c) = current.as_mut().filter(|c| now < c.renew_at)
                    && self.check_trust(c, now).await
                {
                    report(Event::TrustUpdated(c.clone()));
                    self.reload.run().await;
                }
            }
            let due = current.as_ref().is_none_or(|c| now >= c.renew_at);
            let wait = if due {
                match self.rotate().await {
                    Ok(next) => {
                        failures = 0;
                        let rotated = current.is_some();
                        tracing::info!(
                            x509.serial = %next.serial,
                            x509.not_after = %x509::rfc3339(next.not_after),
                            renew_at = %x509::rfc3339(next.renew_at),
                            "certificate written"
                        );
                        report(Event::Written(next.clone()));
                        current = Some(next);
                        // The answer carried the roots trusted now.
                        next_trust = self.clock.now() + self.trust_interval;
                        if rotated {
                            self.reload.run().await;
                        }
                        continue;
                    }
                    Err(err) => {
                        failures = failures.saturating_add(1);
                        let retry_in = renewal::failure_backoff(failures, seed(&self.files));
                        match &current {
                            Some(c) if now < c.not_after => tracing::warn!(
                                error = %err, failures, retry_in = ?retry_in,
                                x509.not_after = %x509::rfc3339(c.not_after),
                                "renewal failed; the current certificate stays in place"
                            ),
                            Some(_) => tracing::error!(
                                error = %err, failures, retry_in = ?retry_in,
                                "renewal failed and the certificate has expired"
                            ),
                            None => tracing::warn!(
                                error = %err, failures, retry_in = ?retry_in,
                                "getting the first certificate failed"
                            ),
                        }
                        report(Event::Failed {
                            failures,
                            retry_in,
                            reason: err.clone(),
                        });
                        retry_in
                    }
                }
            } else {
                let until = current
                    .as_ref()
                    .map_or(time::Duration::ZERO, |c| c.renew_at.min(next_trust) - now);
                Duration::try_from(until).unwrap_or(Duration::ZERO)
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait.min(MAX_NAP)) => {}
            }
        }
    }

    /// Compares the roots trusted now with `ca.crt` and, when they differ, writes them
    /// beside the same key and certificate. Returns whether it wrote. A failure is logged
    /// and retried at the next interval; the files stay. If the certificate no longer chains
    /// to the new roots, it is renewed now.
    async fn check_trust(&self, current: &mut Current, now: OffsetDateTime) -> bool {
        let bundle = match self.source.trust().await {
            Ok(bundle) => bundle,
            Err(err) => {
                tracing::warn!(error = %err, retry_in = ?self.trust_interval,
                    "trust check failed; ca.crt stays");
                return false;
            }
        };
        let dir = AtomicDir::new(self.dir());
        match disk::write_trust(&dir, &self.files, &bundle) {
            Ok(false) => return false,
            Ok(true) => {}
            Err(err) => {
                tracing::warn!(error = %err, retry_in = ?self.trust_interval,
                    "writing the new roots failed; ca.crt stays");
                return false;
            }
        }
        let roots = bundle.matches("-----BEGIN CERTIFICATE-----").count();
        match disk::inspect(&self.dir(), &self.files, now, self.renew_at) {
            Ok(checked) => {
                tracing::info!(x509.serial = %checked.serial, roots,
                    "the roots to trust changed; ca.crt updated (same key and certificate)");
                *current = checked;
            }
            Err(reason) => {
                tracing::warn!(x509.serial = %current.serial, roots, reason = %reason,
                    "ca.crt updated, but the certificate no longer checks out against it; renewing now");
                current.renew_at = now;
            }
        }
        true
    }

    async fn rotate(&self) -> Result<Current, String> {
        let material = self.source.obtain().await.map_err(|e| e.to_string())?;
        let dir = AtomicDir::new(self.dir());
        disk::write(&dir, &self.files, &material).map_err(|e| e.to_string())?;
        // Read back what readers will see: the same checks as at start-up.
        disk::inspect(&self.dir(), &self.files, self.clock.now(), self.renew_at)
            .map_err(|e| format!("the new files do not check out: {e}"))
    }
}

fn seed(files: &FileArgs) -> u64 {
    renewal::seed_of(files.dir.as_os_str().as_encoded_bytes()) ^ u64::from(std::process::id())
}
