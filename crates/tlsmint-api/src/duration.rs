//! The validated [`Duration`] type used for every lifetime in the API.
//!
//! Owns parsing and printing of Go/Kubernetes duration notation (`90s`, `15m`, `1h30m`,
//! `500ms`), its serde and JSON-schema forms. It must not know what any duration means
//! (TTL, CRL expiry, ...): range checks belong to the `validate()` of the spec that uses it.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Hint appended to every parse error so that a user knows what to type instead.
const HINT: &str = "use e.g. 90s, 15m, 1h";

/// Regular expression (RE2 syntax, as the Kubernetes API server uses) that accepts exactly
/// the strings [`Duration::from_str`] accepts, apart from overflow.
pub const DURATION_PATTERN: &str = r"^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|μs|ms|s|m|h))+)$";

const NANOS_PER_MICRO: u128 = 1_000;
const NANOS_PER_MILLI: u128 = 1_000_000;
const NANOS_PER_SEC: u128 = 1_000_000_000;
const NANOS_PER_MIN: u128 = 60 * NANOS_PER_SEC;
const NANOS_PER_HOUR: u128 = 60 * NANOS_PER_MIN;

/// The largest duration accepted: Go's `time.Duration` limit (`i64::MAX` nanoseconds, about
/// 292 years), so that every value we accept is also valid for Go tooling.
const MAX_NANOS: u128 = i64::MAX as u128;

/// Units in the order they must be tried (longest match first: `ms` before `m`).
const UNITS: [(&str, u128); 8] = [
    ("ns", 1),
    ("us", NANOS_PER_MICRO),
    ("µs", NANOS_PER_MICRO),
    ("μs", NANOS_PER_MICRO),
    ("ms", NANOS_PER_MILLI),
    ("h", NANOS_PER_HOUR),
    ("m", NANOS_PER_MIN),
    ("s", NANOS_PER_SEC),
];

/// A non-negative length of time written in Go/Kubernetes notation.
///
/// Accepts one or more `<number><unit>` parts, such as `90s`, `15m`, `1h`, `720h`, `1h30m`,
/// `1.5h` or `500ms`, with units `h`, `m`, `s`, `ms`, `us` (or `µs`) and `ns`, and the bare `0`.
/// Negative values, empty strings, spaces, missing units and values above about 292 years are
/// rejected. It prints (and serialises) in a canonical form with the largest units first and no
/// zero parts: `90s` becomes `1m30s`, zero becomes `0s`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(std::time::Duration);

/// Why a string is not a [`Duration`]. Every message quotes the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The string was empty.
    #[error("an empty string is not a duration ({HINT})")]
    Empty,
    /// The string started with a minus sign.
    #[error("{value:?} is negative: a duration must be zero or more ({HINT})")]
    Negative {
        /// The rejected input.
        value: String,
    },
    /// The string is not in duration notation.
    #[error("{value:?} is not a duration ({HINT})")]
    Invalid {
        /// The rejected input.
        value: String,
    },
    /// The value is larger than the largest representable duration.
    #[error("{value:?} is too long: the maximum is {max}")]
    Overflow {
        /// The rejected input.
        value: String,
        /// The largest accepted duration, in canonical notation.
        max: Duration,
    },
    /// A [`std::time::Duration`] too large to convert.
    #[error("{seconds}s is too long: the maximum is {max}")]
    OutOfRange {
        /// Whole seconds of the rejected value.
        seconds: u64,
        /// The largest accepted duration, in canonical notation.
        max: Duration,
    },
}

impl Duration {
    /// Zero length.
    pub const ZERO: Duration = Duration(std::time::Duration::ZERO);
    /// The largest duration accepted (`i64::MAX` nanoseconds, Go's limit).
    pub const MAX: Duration = Duration(std::time::Duration::new(
        (MAX_NANOS / NANOS_PER_SEC) as u64,
        (MAX_NANOS % NANOS_PER_SEC) as u32,
    ));

    /// A duration of whole seconds (callers keep it below [`Duration::MAX`]).
    pub const fn from_secs(secs: u64) -> Self {
        Duration(std::time::Duration::from_secs(secs))
    }

    /// A duration of whole minutes.
    pub const fn from_mins(mins: u64) -> Self {
        Self::from_secs(mins * 60)
    }

    /// A duration of whole hours.
    pub const fn from_hours(hours: u64) -> Self {
        Self::from_secs(hours * 3600)
    }

    /// The value as a [`std::time::Duration`].
    pub const fn as_std(&self) -> std::time::Duration {
        self.0
    }

    /// Whether this is zero.
    pub const fn is_zero(&self) -> bool {
        self.0.is_zero()
    }

    /// Converts a [`std::time::Duration`], refusing values above [`Duration::MAX`].
    pub fn from_std(value: std::time::Duration) -> Result<Self, DurationError> {
        if value > Self::MAX.0 {
            return Err(DurationError::OutOfRange {
                seconds: value.as_secs(),
                max: Self::MAX,
            });
        }
        Ok(Duration(value))
    }
}

impl From<Duration> for std::time::Duration {
    fn from(value: Duration) -> Self {
        value.0
    }
}

impl TryFrom<std::time::Duration> for Duration {
    type Error = DurationError;

    fn try_from(value: std::time::Duration) -> Result<Self, Self::Error> {
        Duration::from_std(value)
    }
}

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let invalid = || DurationError::Invalid {
            value: input.to_owned(),
        };
        if input.is_empty() {
            return Err(DurationError::Empty);
        }
        if input.starts_with('-') {
            return Err(DurationError::Negative {
                value: input.to_owned(),
            });
        }
        if input == "0" {
            return Ok(Duration::ZERO);
        }
        let mut rest = input;
        let mut total: u128 = 0;
        while !rest.is_empty() {
            let (nanos, tail) = parse_part(rest).ok_or_else(invalid)?;
            total = total.saturating_add(nanos);
            if total > MAX_NANOS {
                return Err(DurationError::Overflow {
                    value: input.to_owned(),
                    max: Duration::MAX,
                });
            }
            rest = tail;
        }
        let secs = u64::try_from(total / NANOS_PER_SEC).map_err(|_| invalid())?;
        let nanos = u32::try_from(total % NANOS_PER_SEC).map_err(|_| invalid())?;
        Ok(Duration(std::time::Duration::new(secs, nanos)))
    }
}

/// Parses one `<digits>[.<digits>]<unit>` part; returns its length in nanoseconds (saturated
/// far above [`MAX_NANOS`] on overflow) and the rest of the input.
fn parse_part(input: &str) -> Option<(u128, &str)> {
    let int_len = input.bytes().take_while(u8::is_ascii_digit).count();
    if int_len == 0 {
        return None;
    }
    let (int_digits, mut rest) = input.split_at(int_len);
    let mut frac_digits = "";
    if let Some(after_dot) = rest.strip_prefix('.') {
        let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
        if frac_len == 0 {
            return None;
        }
        (frac_digits, rest) = after_dot.split_at(frac_len);
    }
    let (unit, rest) = UNITS
        .iter()
        .find_map(|(name, nanos)| rest.strip_prefix(name).map(|tail| (*nanos, tail)))?;
    let mut value: u128 = 0;
    for digit in int_digits.bytes() {
        value = value
            .saturating_mul(10)
            .saturating_add(u128::from(digit - b'0'));
    }
    let mut nanos = value.saturating_mul(unit);
    // Fractions finer than a nanosecond are dropped (as Go does); 20 digits are plenty.
    let mut scale: u128 = 1;
    let mut frac: u128 = 0;
    for digit in frac_digits.bytes().take(20) {
        frac = frac * 10 + u128::from(digit - b'0');
        scale *= 10;
    }
    nanos = nanos.saturating_add(frac.saturating_mul(unit) / scale);
    Some((nanos, rest))
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut nanos = self.0.as_nanos();
        if nanos == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [
            ("h", NANOS_PER_HOUR),
            ("m", NANOS_PER_MIN),
            ("s", NANOS_PER_SEC),
            ("ms", NANOS_PER_MILLI),
            ("us", NANOS_PER_MICRO),
            ("ns", 1),
        ] {
            let count = nanos / size;
            if count > 0 {
                write!(f, "{count}{unit}")?;
            }
            nanos %= size;
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<'de, str>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(secs: u64, nanos: u32) -> Duration {
        Duration(std::time::Duration::new(secs, nanos))
    }

    #[test]
    fn parses_go_notation() {
        let table = [
            ("0", d(0, 0)),
            ("0s", d(0, 0)),
            ("90s", d(90, 0)),
            ("15m", d(900, 0)),
            ("1h", d(3600, 0)),
            ("720h", d(720 * 3600, 0)),
            ("87600h", d(87600 * 3600, 0)),
            ("1h30m", d(5400, 0)),
            ("1h30m15s", d(5415, 0)),
            ("500ms", d(0, 500_000_000)),
            ("1s500ms", d(1, 500_000_000)),
            ("1.5h", d(5400, 0)),
            ("0.5s", d(0, 500_000_000)),
            ("10us", d(0, 10_000)),
            ("10µs", d(0, 10_000)),
            ("10μs", d(0, 10_000)),
            ("7ns", d(0, 7)),
            ("1m1m", d(120, 0)),
            ("30m1h", d(5400, 0)),
            ("0.0000000001s", d(0, 0)),
            ("2562047h47m16.854775807s", Duration::MAX),
        ];
        for (input, want) in table {
            assert_eq!(input.parse::<Duration>(), Ok(want), "input {input:?}");
        }
    }

    #[test]
    fn rejects_bad_input() {
        let table = [
            ("", DurationError::Empty),
            ("-1h", negative("-1h")),
            ("-0s", negative("-0s")),
            ("abc", invalid("abc")),
            ("1", invalid("1")),
            ("10", invalid("10")),
            ("h", invalid("h")),
            ("1d", invalid("1d")),
            ("1 h", invalid("1 h")),
            (" 1h", invalid(" 1h")),
            ("1h ", invalid("1h ")),
            ("1.h", invalid("1.h")),
            (".5h", invalid(".5h")),
            ("+1h", invalid("+1h")),
            ("1H", invalid("1H")),
            ("1hh", invalid("1hh")),
            ("1e3s", invalid("1e3s")),
        ];
        for (input, want) in table {
            assert_eq!(input.parse::<Duration>(), Err(want), "input {input:?}");
        }
    }

    fn negative(value: &str) -> DurationError {
        DurationError::Negative {
            value: value.into(),
        }
    }

    fn invalid(value: &str) -> DurationError {
        DurationError::Invalid {
            value: value.into(),
        }
    }

    #[test]
    fn rejects_overflow() {
        for input in [
            "2562048h",
            "2562047h47m16.854775808s",
            "99999999999999999999999999999999999999999h",
            "9223372036854775807s",
        ] {
            assert!(
                matches!(
                    input.parse::<Duration>(),
                    Err(DurationError::Overflow { .. })
                ),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn prints_canonical_form() {
        let table = [
            ("0", "0s"),
            ("90s", "1m30s"),
            ("1h", "1h"),
            ("60m", "1h"),
            ("1h30m", "1h30m"),
            ("1.5h", "1h30m"),
            ("720h", "720h"),
            ("500ms", "500ms"),
            ("1s500ms", "1s500ms"),
            ("1001us", "1ms1us"),
            ("1h0m0.000000001s", "1h1ns"),
        ];
        for (input, want) in table {
            let parsed: Duration = input.parse().unwrap_or_default();
            assert_eq!(parsed.to_string(), want, "input {input:?}");
            assert_eq!(parsed.to_string().parse::<Duration>(), Ok(parsed));
        }
    }

    #[test]
    fn error_messages_name_the_value() {
        let err = "abc".parse::<Duration>().unwrap_err().to_string();
        assert_eq!(err, r#""abc" is not a duration (use e.g. 90s, 15m, 1h)"#);
        let err = "-5m".parse::<Duration>().unwrap_err().to_string();
        assert!(err.contains(r#""-5m" is negative"#), "{err}");
        let err = "3000000h".parse::<Duration>().unwrap_err().to_string();
        assert!(err.contains("2562047h47m16s854ms775us807ns"), "{err}");
    }

    #[test]
    fn serde_round_trips_through_canonical_string() {
        let value: Duration = serde_json::from_str(r#""90s""#).unwrap();
        assert_eq!(value, Duration::from_secs(90));
        assert_eq!(serde_json::to_string(&value).unwrap(), r#""1m30s""#);
    }

    #[test]
    fn serde_error_names_the_value() {
        let err = serde_json::from_str::<Duration>(r#""ten minutes""#).unwrap_err();
        assert!(
            err.to_string()
                .contains(r#""ten minutes" is not a duration"#),
            "{err}"
        );
        assert!(serde_json::from_str::<Duration>("600").is_err());
    }

    #[test]
    fn converts_to_and_from_std() {
        let std_value: std::time::Duration = Duration::from_hours(2).into();
        assert_eq!(std_value, std::time::Duration::from_secs(7200));
        assert_eq!(Duration::from_std(std_value), Ok(Duration::from_mins(120)));
        assert!(Duration::try_from(std::time::Duration::from_secs(u64::MAX)).is_err());
        assert_eq!(Duration::from_hours(1).as_std().as_secs(), 3600);
    }

    #[test]
    fn schema_is_a_string_with_the_pattern() {
        let schema = schemars::schema_for!(Duration);
        assert_eq!(schema.get("type"), Some(&serde_json::json!("string")));
        assert_eq!(
            schema.get("pattern"),
            Some(&serde_json::json!(DURATION_PATTERN))
        );
    }
}
