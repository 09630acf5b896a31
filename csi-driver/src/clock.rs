//! The driver's wall clock. In production it is the system clock; component tests use a
//! clock that starts at the real time and then moves with tokio's (pausable) clock, so a
//! paused test can cross a renewal instant without waiting.
//!
//! Owns "what time is it" and "sleep until then". It must not schedule anything itself.

use std::time::Duration;

use time::OffsetDateTime;

/// Longest single sleep: after it the wall clock is read again, so a suspended node or a
/// clock step is noticed within this time.
pub const MAX_SLEEP: Duration = Duration::from_secs(30);

/// A wall clock.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: Option<(OffsetDateTime, tokio::time::Instant)>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock { origin: None }
    }

    /// A clock that starts now and advances with tokio's clock (for paused tests).
    pub fn tokio() -> Self {
        Clock {
            origin: Some((OffsetDateTime::now_utc(), tokio::time::Instant::now())),
        }
    }

    /// The current time.
    pub fn now(&self) -> OffsetDateTime {
        match self.origin {
            None => OffsetDateTime::now_utc(),
            Some((wall, instant)) => wall + instant.elapsed(),
        }
    }

    /// Sleeps until `at`, or for [`MAX_SLEEP`] at most.
    pub async fn sleep_until(&self, at: OffsetDateTime) {
        let left = (at - self.now()).max(time::Duration::ZERO);
        let left = Duration::try_from(left).unwrap_or(MAX_SLEEP).min(MAX_SLEEP);
        tokio::time::sleep(left).await;
    }
}
