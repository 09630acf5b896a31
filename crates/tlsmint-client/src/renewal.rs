//! Retry timing: the backoff after failed issuance attempts and the renewal instant of a
//! certificate. Pure functions of their inputs (no clock, no randomness: jitter is derived
//! from a seed such as the serial, so every reconcile computes the same instant and status
//! stays calm).
//!
//! Owns the numbers. It must not sleep or read the clock. Shared by everything that renews a
//! certificate: the operator's CertificateRequest controller and serving certificates, the
//! CSI driver and the agent, so that all of them renew at the same instant for the same
//! certificate.

use std::time::Duration;

use time::OffsetDateTime;

/// First retry delay after a failed issuance.
pub const FAILURE_BASE: Duration = Duration::from_secs(5);
/// Longest retry delay after failed issuances.
pub const FAILURE_CAP: Duration = Duration::from_secs(300);
/// Largest share of a certificate's lifetime by which renewal is brought forward.
pub const RENEWAL_JITTER: f64 = 0.05;
/// Renewal is never brought forward by more than this, whatever the lifetime.
pub const RENEWAL_JITTER_CAP: Duration = Duration::from_secs(600);

/// Delay before retry number `failures` (1 for the first failure): 5s, 10s, 20s, ... up to
/// 5 minutes, plus up to 10% from `seed` so that many failing objects spread out.
pub fn failure_backoff(failures: u32, seed: u64) -> Duration {
    let exponent = failures.saturating_sub(1).min(16);
    let base = FAILURE_BASE
        .saturating_mul(1u32 << exponent)
        .min(FAILURE_CAP);
    base + base.mul_f64(unit(seed) * 0.1)
}

/// When to renew a certificate valid from `not_before` to `not_after`: at `fraction` of its
/// lifetime, brought forward by a jitter of up to [`RENEWAL_JITTER`] of the lifetime (at
/// most [`RENEWAL_JITTER_CAP`]) derived from `seed`, and never before `not_before`.
pub fn renewal_time(
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    fraction: f64,
    seed: u64,
) -> OffsetDateTime {
    let lifetime = (not_after - not_before).max(time::Duration::ZERO);
    let target = not_before + lifetime * fraction.clamp(0.0, 1.0);
    let max_jitter = (lifetime * RENEWAL_JITTER)
        .min(time::Duration::try_from(RENEWAL_JITTER_CAP).unwrap_or(time::Duration::ZERO));
    let at = target - max_jitter * unit(seed);
    at.max(not_before).replace_nanosecond(0).unwrap_or(at)
}

/// A number in [0, 1) spread evenly from `seed` (splitmix64).
fn unit(seed: u64) -> f64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// A seed from bytes (e.g. a serial number or an object's UID).
pub fn seed_of(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn failure_backoff_doubles_up_to_five_minutes_with_bounded_jitter() {
        let table = [
            (0, 5),
            (1, 5),
            (2, 10),
            (3, 20),
            (4, 40),
            (7, 300),
            (60, 300),
        ];
        for (failures, base) in table {
            for seed in [0, 1, 42, u64::MAX] {
                let d = failure_backoff(failures, seed);
                let base = Duration::from_secs(base);
                assert!(d >= base && d <= base + base / 10, "{failures}: {d:?}");
            }
        }
    }

    #[test]
    fn renews_at_half_lifetime_with_jitter_bounds() {
        let nb = datetime!(2030-01-01 0:00 UTC);
        let table = [
            // lifetime, fraction, earliest, latest (seconds after notBefore)
            (120, 0.5, 54, 60),
            (3600, 0.5, 1620, 1800),
            (3600, 0.9, 3060, 3240),
            (30 * 86400, 0.5, 1_296_000 - 600, 1_296_000),
            (0, 0.5, 0, 0),
        ];
        for (lifetime, fraction, earliest, latest) in table {
            let na = nb + time::Duration::seconds(lifetime);
            for seed in [0, 7, 1 << 40, u64::MAX] {
                let at = renewal_time(nb, na, fraction, seed);
                let offset = (at - nb).whole_seconds();
                assert!(
                    (earliest..=latest).contains(&offset),
                    "{lifetime}s x {fraction}: {offset}"
                );
            }
        }
    }

    #[test]
    fn renewal_time_is_stable_for_a_seed() {
        let nb = datetime!(2030-01-01 0:00 UTC);
        let na = nb + time::Duration::hours(1);
        let seed = seed_of(b"1a:2b:3c");
        assert_eq!(
            renewal_time(nb, na, 0.5, seed),
            renewal_time(nb, na, 0.5, seed)
        );
        assert_ne!(seed_of(b"a"), seed_of(b"b"));
    }
}
