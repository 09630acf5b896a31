//! The renewal loop: reuse a valid pair found on disk or get a first one, then renew at the
//! renewal instant; on failure retry with backoff while the old pair stays in place (it is
//! still valid until it expires); after each rotation tell the application.
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
    /// What to do after a rotation.
    pub reload: Reload,
}

/// Something observable about the loop (for tests and logs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The pair on disk was valid and kept.
    Reused(Current),
    /// A new certificate was written.
    Written(Current),
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
        loop {
            let now = self.clock.now();
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
                    .map_or(time::Duration::ZERO, |c| c.renew_at - now);
                Duration::try_from(until).unwrap_or(Duration::ZERO)
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait.min(MAX_NAP)) => {}
            }
        }
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
