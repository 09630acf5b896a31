//! The validated [`Fraction`] type: a number strictly between 0 and 1, such as `renewAt`.
//!
//! Owns parsing (from JSON numbers and from strings such as CSI attributes), printing and
//! the JSON schema. It must not compute renewal times: that is the client's schedule code.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A number strictly between 0 and 1, e.g. `0.5` or `0.75`: the share of a certificate's
/// lifetime after which it is renewed.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Fraction(f64);

/// Why a value is not a [`Fraction`]. Every message quotes the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FractionError {
    /// Not a decimal number.
    #[error("{value:?} is not a number (use a fraction such as 0.5)")]
    NotANumber {
        /// The rejected input.
        value: String,
    },
    /// A number, but not strictly between 0 and 1.
    #[error("{value} is not between 0 and 1 (exclusive; use a fraction such as 0.5)")]
    OutOfRange {
        /// The rejected input.
        value: String,
    },
}

impl Fraction {
    /// One half: renew at 50 % of the lifetime, the tlsmint default.
    pub const HALF: Fraction = Fraction(0.5);
    /// Five sixths (0.8333): when the next CA starts signing by default.
    pub const FIVE_SIXTHS: Fraction = Fraction(0.8333);

    /// Checks that `value` is finite and strictly between 0 and 1.
    pub fn new(value: f64) -> Result<Self, FractionError> {
        if value.is_finite() && value > 0.0 && value < 1.0 {
            Ok(Fraction(value))
        } else {
            Err(FractionError::OutOfRange {
                value: value.to_string(),
            })
        }
    }

    /// The value as a float, strictly between 0 and 1.
    pub const fn get(self) -> f64 {
        self.0
    }
}

impl Default for Fraction {
    fn default() -> Self {
        Fraction::HALF
    }
}

impl fmt::Display for Fraction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for Fraction {
    type Err = FractionError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let looks_decimal = !input.is_empty()
            && input.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && input.bytes().filter(|b| *b == b'.').count() <= 1;
        let value: f64 = match input.parse() {
            Ok(value) if looks_decimal => value,
            _ => {
                return Err(FractionError::NotANumber {
                    value: input.to_owned(),
                });
            }
        };
        Fraction::new(value).map_err(|_| FractionError::OutOfRange {
            value: input.to_owned(),
        })
    }
}

impl From<Fraction> for f64 {
    fn from(value: Fraction) -> Self {
        value.0
    }
}

impl Serialize for Fraction {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.0)
    }
}

impl<'de> Deserialize<'de> for Fraction {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = f64::deserialize(deserializer)?;
        Fraction::new(value).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Fraction {
    fn schema_name() -> Cow<'static, str> {
        "Fraction".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        // OpenAPI 3.0 (what Kubernetes speaks) uses boolean exclusiveMinimum/Maximum.
        json_schema!({
            "type": "number",
            "minimum": 0.0,
            "exclusiveMinimum": true,
            "maximum": 1.0,
            "exclusiveMaximum": true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_values_strictly_between_zero_and_one() {
        for (input, want) in [("0.5", 0.5), ("0.01", 0.01), ("0.999", 0.999), (".5", 0.5)] {
            assert_eq!(input.parse::<Fraction>().map(Fraction::get), Ok(want));
        }
        assert_eq!(Fraction::new(0.75).map(f64::from), Ok(0.75));
    }

    #[test]
    fn rejects_values_out_of_range() {
        for input in ["0", "1", "1.5", "0.0", "1.0", "100"] {
            assert_eq!(
                input.parse::<Fraction>(),
                Err(FractionError::OutOfRange {
                    value: input.into()
                }),
                "input {input:?}"
            );
        }
        for value in [f64::NAN, f64::INFINITY, -0.5, 0.0, 1.0] {
            assert!(Fraction::new(value).is_err(), "value {value}");
        }
    }

    #[test]
    fn rejects_non_numbers() {
        for input in [
            "", "half", "-0.5", "1e-1", "0.5.1", " 0.5", "50%", "NaN", "inf",
        ] {
            assert_eq!(
                input.parse::<Fraction>(),
                Err(FractionError::NotANumber {
                    value: input.into()
                }),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn defaults_to_one_half() {
        assert_eq!(Fraction::default(), Fraction::HALF);
        assert_eq!(Fraction::HALF.get(), 0.5);
    }

    #[test]
    fn serde_uses_a_plain_number() {
        let value: Fraction = serde_json::from_str("0.25").unwrap();
        assert_eq!(value.get(), 0.25);
        assert_eq!(serde_json::to_string(&value).unwrap(), "0.25");
        let err = serde_json::from_str::<Fraction>("1.5").unwrap_err();
        assert!(
            err.to_string().contains("1.5 is not between 0 and 1"),
            "{err}"
        );
    }

    #[test]
    fn error_messages_are_actionable() {
        let err = "abc".parse::<Fraction>().unwrap_err().to_string();
        assert_eq!(err, r#""abc" is not a number (use a fraction such as 0.5)"#);
    }
}
