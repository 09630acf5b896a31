//! Per-ServiceAccount rate limiting of issuance: a token bucket per
//! `namespace/serviceAccount`, refilled at `rate` per second up to `burst`.
//!
//! Owns: the buckets. Must not: key buckets by anything a caller chooses
//! (only the verified identity), or grow without bound (idle buckets are
//! dropped).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets kept before idle ones are swept.
const SWEEP_AT: usize = 10_000;

/// A per-caller token-bucket limiter.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The caller must wait this long before the next request is allowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limited {
    /// Time until one token is available.
    pub retry_after: Duration,
}

impl RateLimiter {
    /// `rate` requests per second with bursts of `burst`; `rate <= 0` disables limiting.
    pub fn new(rate: f64, burst: u32) -> Self {
        RateLimiter {
            rate,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key` at `now`.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Limited> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= SWEEP_AT && !buckets.contains_key(key) {
            let full_after = Duration::from_secs_f64(self.burst / self.rate);
            buckets.retain(|_, b| now.saturating_duration_since(b.last) < full_after);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.rate;
            Err(Limited {
                retry_after: Duration::from_secs_f64(wait),
            })
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_then_limits_then_refills() {
        let limiter = RateLimiter::new(10.0, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.check("apps/web", t0).unwrap();
        }
        let limited = limiter.check("apps/web", t0).unwrap_err();
        assert!(limited.retry_after <= Duration::from_millis(100));
        limiter.check("apps/other", t0).unwrap();
        limiter
            .check("apps/web", t0 + Duration::from_millis(100))
            .unwrap();
    }

    #[test]
    fn zero_rate_disables_limiting() {
        let limiter = RateLimiter::new(0.0, 1);
        let t0 = Instant::now();
        for _ in 0..100 {
            limiter.check("a/b", t0).unwrap();
        }
    }
}
