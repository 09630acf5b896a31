//! Leaf lifetimes: the requested TTL, clamped to the role's (and mount's)
//! maximum, back-dated by `notBeforeDuration`, and checked against the CA's
//! own validity. Pure: the caller passes `now`.

use std::time::Duration;

use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::x509::rfc3339;

/// What to do when a leaf would outlive its CA (`PkiMount.spec.leafNotAfterBehavior`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LeafNotAfterBehavior {
    /// Refuse to issue (the default).
    #[default]
    Error,
    /// Cut the leaf's notAfter to the CA's notAfter.
    Truncate,
}

/// Lifetime policy of a role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetimes {
    /// TTL used when the request names none (role `ttl`, default 1h).
    pub ttl: Duration,
    /// Ceiling (role `maxTTL`, default 24h).
    pub max_ttl: Duration,
    /// Back-dating of notBefore (role `notBeforeDuration`, default 30s).
    pub not_before_duration: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            ttl: Duration::from_secs(3600),
            max_ttl: Duration::from_secs(24 * 3600),
            not_before_duration: Duration::from_secs(30),
        }
    }
}

/// The computed validity window and any warnings for the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    /// notBefore.
    pub not_before: OffsetDateTime,
    /// notAfter.
    pub not_after: OffsetDateTime,
    /// Human-readable notes (clamping, truncation) returned to the caller.
    pub warnings: Vec<String>,
}

/// The CA-side limits that apply to every leaf of a mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CaLimits<'a> {
    pub name: &'a str,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub max_ttl: Option<Duration>,
    pub behavior: LeafNotAfterBehavior,
}

pub(crate) fn leaf_window(
    ca: CaLimits<'_>,
    role: &Lifetimes,
    requested: Option<Duration>,
    now: OffsetDateTime,
) -> Result<Window> {
    if now < ca.not_before || now >= ca.not_after {
        return Err(Error::CaNotValid {
            ca: ca.name.to_owned(),
            not_before: rfc3339(ca.not_before),
            not_after: rfc3339(ca.not_after),
        });
    }
    let mut warnings = Vec::new();
    let mut ttl = requested.unwrap_or(role.ttl);
    if ttl.is_zero() {
        return Err(Error::InvalidTtl("ttl must be greater than zero".into()));
    }
    let (max, source) = match ca.max_ttl {
        Some(mount_max) if mount_max < role.max_ttl => (mount_max, "the mount's maxTTL"),
        _ => (role.max_ttl, "the role's maxTTL"),
    };
    if ttl > max {
        warnings.push(format!(
            "ttl {} is more than {source} {}: clamped to {}",
            format_duration(ttl),
            format_duration(max),
            format_duration(max)
        ));
        ttl = max;
    }
    let ttl = time::Duration::try_from(ttl)
        .map_err(|_| Error::InvalidTtl(format!("{} is too large", format_duration(ttl))))?;
    let mut not_after = now
        .checked_add(ttl)
        .ok_or_else(|| Error::InvalidTtl("ttl overflows the calendar".into()))?;
    if not_after > ca.not_after {
        match ca.behavior {
            LeafNotAfterBehavior::Error => {
                return Err(Error::LeafOutlivesCa {
                    ca: ca.name.to_owned(),
                    leaf_not_after: rfc3339(not_after),
                    ca_not_after: rfc3339(ca.not_after),
                });
            }
            LeafNotAfterBehavior::Truncate => {
                warnings.push(format!(
                    "notAfter truncated to the CA's notAfter {}",
                    rfc3339(ca.not_after)
                ));
                not_after = ca.not_after;
            }
        }
    }
    let back = time::Duration::try_from(role.not_before_duration).unwrap_or(time::Duration::ZERO);
    let not_before = now
        .checked_sub(back)
        .unwrap_or(now)
        .max(ca.not_before)
        .replace_nanosecond(0)
        .unwrap_or(now);
    Ok(Window {
        not_before,
        not_after: not_after.replace_nanosecond(0).unwrap_or(not_after),
        warnings,
    })
}

/// Formats a duration in Go notation, largest units first (`1h30m`, `90s`).
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00:00 UTC);

    fn ca(behavior: LeafNotAfterBehavior) -> CaLimits<'static> {
        CaLimits {
            name: "pki",
            not_before: datetime!(2026-01-01 0:00 UTC),
            not_after: datetime!(2026-06-02 0:00 UTC),
            max_ttl: None,
            behavior,
        }
    }

    fn hours(h: u64) -> Duration {
        Duration::from_secs(h * 3600)
    }

    #[test]
    fn uses_role_ttl_and_backdates_not_before() {
        let w = leaf_window(
            ca(LeafNotAfterBehavior::Error),
            &Lifetimes::default(),
            None,
            NOW,
        )
        .unwrap();
        assert_eq!(w.not_after, datetime!(2026-06-01 13:00:00 UTC));
        assert_eq!(w.not_before, datetime!(2026-06-01 11:59:30 UTC));
        assert!(w.warnings.is_empty());
    }

    #[test]
    fn clamps_ttl_above_max_ttl_with_a_warning() {
        let role = Lifetimes {
            max_ttl: hours(2),
            ..Lifetimes::default()
        };
        let w = leaf_window(ca(LeafNotAfterBehavior::Error), &role, Some(hours(5)), NOW).unwrap();
        assert_eq!(w.not_after, datetime!(2026-06-01 14:00:00 UTC));
        assert_eq!(w.warnings.len(), 1);
        assert!(w.warnings[0].contains("clamped to 2h"), "{:?}", w.warnings);
    }

    #[test]
    fn mount_max_ttl_is_a_ceiling_too() {
        let mut limits = ca(LeafNotAfterBehavior::Error);
        limits.max_ttl = Some(Duration::from_secs(600));
        let w = leaf_window(limits, &Lifetimes::default(), None, NOW).unwrap();
        assert_eq!(w.not_after, datetime!(2026-06-01 12:10:00 UTC));
        assert!(
            w.warnings[0].contains("mount's maxTTL 10m"),
            "{:?}",
            w.warnings
        );
    }

    #[test]
    fn leaf_past_ca_expiry_is_an_error_by_default() {
        let role = Lifetimes {
            max_ttl: hours(48),
            ..Lifetimes::default()
        };
        let err =
            leaf_window(ca(LeafNotAfterBehavior::Error), &role, Some(hours(24)), NOW).unwrap_err();
        assert!(matches!(err, Error::LeafOutlivesCa { .. }), "{err}");
        assert!(err.to_string().contains("Truncate"));
    }

    #[test]
    fn leaf_past_ca_expiry_is_truncated_when_asked() {
        let role = Lifetimes {
            max_ttl: hours(48),
            ..Lifetimes::default()
        };
        let w = leaf_window(
            ca(LeafNotAfterBehavior::Truncate),
            &role,
            Some(hours(24)),
            NOW,
        )
        .unwrap();
        assert_eq!(w.not_after, datetime!(2026-06-02 0:00 UTC));
        assert!(w.warnings[0].contains("truncated"));
    }

    #[test]
    fn expired_or_future_ca_refuses() {
        let later = datetime!(2026-07-01 0:00 UTC);
        let err = leaf_window(
            ca(LeafNotAfterBehavior::Truncate),
            &Lifetimes::default(),
            None,
            later,
        )
        .unwrap_err();
        assert!(matches!(err, Error::CaNotValid { .. }), "{err}");
        let earlier = datetime!(2025-07-01 0:00 UTC);
        assert!(
            leaf_window(
                ca(LeafNotAfterBehavior::Error),
                &Lifetimes::default(),
                None,
                earlier
            )
            .is_err()
        );
    }

    #[test]
    fn zero_ttl_is_invalid() {
        let err = leaf_window(
            ca(LeafNotAfterBehavior::Error),
            &Lifetimes::default(),
            Some(Duration::ZERO),
            NOW,
        )
        .unwrap_err();
        assert!(matches!(err, Error::InvalidTtl(_)));
    }

    #[test]
    fn not_before_never_precedes_the_ca() {
        let mut limits = ca(LeafNotAfterBehavior::Error);
        limits.not_before = datetime!(2026-06-01 11:59:50 UTC);
        let w = leaf_window(limits, &Lifetimes::default(), None, NOW).unwrap();
        assert_eq!(w.not_before, limits.not_before);
    }

    #[test]
    fn formats_durations_like_go() {
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
    }
}
