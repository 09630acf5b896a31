//! Request parameters of the Vault API: a JSON object whose values may be
//! strings, numbers, booleans or lists (`alt_names` as `"a,b"` or
//! `["a","b"]`), and Vault's TTL notation (`"24h"`, `"1d"`, `"90"`, `90`).
//!
//! Owns: parsing and its error messages. Must not: echo a value unbounded.

use std::time::Duration;

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tlsmint_ca::SecretString;

use crate::api::error::ApiError;

/// Longest value echoed in an error message.
const ECHO: usize = 64;

/// Reads a Vault request body into its typed form `T`: an empty body is
/// `T::default()`, anything but a JSON object is refused, and a field of the
/// wrong shape is refused naming the field. Unknown fields are ignored, as Vault does.
pub fn parse<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let value = match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => value,
        Ok(_) => {
            return Err(ApiError::InvalidArgument(
                "the request body must be a JSON object".into(),
            ));
        }
        Err(e) => {
            return Err(ApiError::InvalidArgument(format!(
                "failed to parse JSON input: {e}"
            )));
        }
    };
    serde_path_to_error::deserialize(value).map_err(|e| {
        ApiError::InvalidArgument(format!("{}: {}", e.path(), clip(&e.inner().to_string())))
    })
}

/// A Vault text field: a string, or a number or boolean read as text. Empty
/// and `null` are absent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Text(pub Option<String>);

impl Text {
    /// The value, if given.
    pub fn get(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text((!v.is_empty()).then(|| v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text, E> {
                Ok(Text((!v.is_empty()).then_some(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Text, E> {
                Ok(Text(Some(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Text, E> {
                Ok(Text(Some(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Text, E> {
                Ok(Text(Some(
                    serde_json::Number::from_f64(v)
                        .map_or_else(|| v.to_string(), |n| n.to_string()),
                )))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Text, E> {
                Ok(Text(Some(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Text, E> {
                Ok(Text(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Text, E> {
                Ok(Text(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A Vault list field: a comma-separated string (`"a,b"`) or a JSON list of
/// strings; items are trimmed and empty ones dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommaList(pub Vec<String>);

impl<'de> Deserialize<'de> for CommaList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vec<String>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a comma-separated string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<String>, E> {
                Ok(v.split(',').map(str::to_owned).collect())
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    items.push(item);
                }
                Ok(items)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Vec<String>, E> {
                Ok(Vec::new())
            }
            fn visit_none<E: de::Error>(self) -> Result<Vec<String>, E> {
                Ok(Vec::new())
            }
        }
        let items = d.deserialize_any(V)?;
        Ok(CommaList(
            items
                .into_iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
        ))
    }
}

/// The body of `issue/<role>` and `sign/<role>`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct IssueBody {
    /// The certificate's CN.
    pub common_name: Text,
    /// DNS (and email) SANs.
    pub alt_names: CommaList,
    /// IP SANs.
    pub ip_sans: CommaList,
    /// URI SANs.
    pub uri_sans: CommaList,
    /// Vault's `other_sans`; refused when given.
    pub other_sans: CommaList,
    /// Requested lifetime in Vault's notation.
    pub ttl: Text,
    /// Absolute expiry, RFC 3339 (instead of `ttl`).
    pub not_after: Text,
    /// `pem`, `der` or `pem_bundle`.
    pub format: Text,
    /// `der`, `pem` or `pkcs8` (issue only).
    pub private_key_format: Text,
    /// The CSR (sign only).
    pub csr: Text,
}

/// The body of `auth/kubernetes/login`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoginBody {
    /// The role the client token is for.
    pub role: Text,
    /// The ServiceAccount JWT: redacted in `Debug`, never logged.
    pub jwt: Option<SecretString>,
}

/// The body of `revoke` and `revoke-with-key`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RevokeBody {
    /// Colon-separated hex serial.
    pub serial_number: Text,
    /// The certificate, PEM.
    pub certificate: Text,
    /// Its private key, PEM (`revoke-with-key`): redacted in `Debug`, zeroed on
    /// drop, never logged or echoed.
    pub private_key: Option<SecretString>,
}

/// A TTL field in Vault's notation; `key` names it in the error.
pub fn ttl(key: &str, value: &Text) -> Result<Option<Duration>, ApiError> {
    let Some(text) = value.get() else {
        return Ok(None);
    };
    parse_ttl(text).map(Some).ok_or_else(|| {
        ApiError::InvalidArgument(format!(
            "{key} {:?} is not a duration: use seconds (3600) or a duration such as 90s, 15m, 24h, 7d",
            clip(text)
        ))
    })
}

impl IssueBody {
    /// The requested lifetime: `ttl`, or `not_after` (an absolute RFC 3339
    /// expiry, as Vault takes it) turned into the TTL that ends then, so the
    /// role's and mount's maxTTL and the CA's notAfter apply to it exactly as
    /// to a `ttl` (clamped with a warning, or refused). Both at once, an
    /// unreadable date, or a date not in the future are refused.
    pub fn lifetime(&self, now: OffsetDateTime) -> Result<Option<Duration>, ApiError> {
        let ttl = ttl("ttl", &self.ttl)?;
        let Some(text) = self.not_after.get() else {
            return Ok(ttl);
        };
        if ttl.is_some() {
            return Err(ApiError::InvalidArgument(
                "either ttl or not_after may be given, not both".into(),
            ));
        }
        let not_after = OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|_| {
            ApiError::InvalidArgument(format!(
                "not_after {:?} is not a date: use UTC RFC 3339, such as 2030-01-31T23:59:59Z",
                clip(text)
            ))
        })?;
        let left = not_after - now;
        if !left.is_positive() {
            return Err(ApiError::InvalidArgument(format!(
                "not_after {:?} is not in the future",
                clip(text)
            )));
        }
        Ok(Some(
            Duration::try_from(left).unwrap_or(tlsmint_api::Duration::MAX.as_std()),
        ))
    }
}

/// Vault's TTL notation: whole seconds, or a Go duration that may also use `d` (days).
///
/// A well-formed value too large to represent saturates at
/// [`tlsmint_api::Duration::MAX`] (about 292 years) instead of being refused:
/// the CA then clamps it to maxTTL with a warning, as it does any TTL above
/// the maximum, and as the gRPC API does with its `ttl_seconds`.
pub fn parse_ttl(text: &str) -> Option<Duration> {
    let text = text.trim();
    let max = tlsmint_api::Duration::MAX.as_std();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return Some(text.parse::<u64>().map_or(max, ttl_from_secs));
    }
    if let Some(days) = text.strip_suffix('d')
        && !days.is_empty()
        && days.bytes().all(|b| b.is_ascii_digit())
    {
        let secs = days.parse::<u64>().ok().and_then(|d| d.checked_mul(86_400));
        return Some(secs.map_or(max, ttl_from_secs));
    }
    match text.parse::<tlsmint_api::Duration>() {
        Ok(d) => Some(d.as_std()),
        Err(tlsmint_api::DurationError::Overflow { .. }) => Some(max),
        Err(_) => None,
    }
}

/// A TTL of whole seconds, saturating at [`tlsmint_api::Duration::MAX`]: the
/// one conversion both APIs use (gRPC's `ttl_seconds`, Vault's `ttl`).
pub fn ttl_from_secs(secs: u64) -> Duration {
    Duration::from_secs(secs).min(tlsmint_api::Duration::MAX.as_std())
}

/// A value shortened for an error message.
pub fn clip(text: &str) -> String {
    text.chars().take(ECHO).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_vault_ttls() {
        assert_eq!(parse_ttl("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_ttl("24h"), Some(Duration::from_secs(86400)));
        assert_eq!(parse_ttl("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_ttl("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(parse_ttl("soon"), None);
        assert_eq!(parse_ttl("-5s"), None);
        assert_eq!(parse_ttl(""), None);
        assert_eq!(parse_ttl("d"), None);
    }

    #[test]
    fn not_after_becomes_the_ttl_that_ends_then() {
        let now = OffsetDateTime::parse("2030-01-01T00:00:00Z", &Rfc3339).unwrap();
        let p: IssueBody = parse(br#"{"not_after":"2030-01-01T02:00:00Z"}"#).unwrap();
        assert_eq!(p.lifetime(now).unwrap(), Some(Duration::from_secs(7200)));
        let p: IssueBody = parse(br#"{"ttl":"1h"}"#).unwrap();
        assert_eq!(p.lifetime(now).unwrap(), Some(Duration::from_secs(3600)));
        assert_eq!(IssueBody::default().lifetime(now).unwrap(), None);
        for (body, says) in [
            (
                &br#"{"not_after":"2029-12-31T00:00:00Z"}"#[..],
                "not in the future",
            ),
            (br#"{"not_after":"tomorrow"}"#, "is not a date"),
            (
                br#"{"not_after":"2030-01-02T00:00:00Z","ttl":"1h"}"#,
                "not both",
            ),
        ] {
            let err = parse::<IssueBody>(body).unwrap().lifetime(now).unwrap_err();
            assert!(err.message().contains(says), "{}", err.message());
        }
    }

    #[test]
    fn huge_ttls_saturate_instead_of_being_refused() {
        let max = tlsmint_api::Duration::MAX.as_std();
        assert_eq!(parse_ttl("99999999h"), Some(max));
        assert_eq!(parse_ttl("99999999999999999999999"), Some(max));
        assert_eq!(parse_ttl("999999999999999d"), Some(max));
        assert_eq!(ttl_from_secs(u64::MAX), max);
        let p: IssueBody = parse(br#"{"ttl":"99999999h"}"#).unwrap();
        assert_eq!(ttl("ttl", &p.ttl).unwrap(), Some(max));
    }

    #[test]
    fn reads_strings_lists_and_numbers() {
        let p: IssueBody = parse(br#"{"alt_names":"a.example.com, b.example.com","ip_sans":["10.0.0.1"],"ttl":3600,"common_name":"","format":true,"unknown":{"x":1}}"#).unwrap();
        assert_eq!(p.alt_names.0, vec!["a.example.com", "b.example.com"]);
        assert_eq!(p.ip_sans.0, vec!["10.0.0.1"]);
        assert_eq!(ttl("ttl", &p.ttl).unwrap(), Some(Duration::from_secs(3600)));
        assert_eq!(p.common_name.get(), None);
        assert_eq!(p.format.get(), Some("true"));
        assert!(parse::<IssueBody>(b"[1]").is_err());
        assert!(parse::<IssueBody>(b"{").is_err());
        assert!(parse::<LoginBody>(b"").unwrap().role.get().is_none());
        let bad: IssueBody = parse(br#"{"ttl":"forever"}"#).unwrap();
        assert!(
            ttl("ttl", &bad.ttl)
                .unwrap_err()
                .message()
                .contains("forever")
        );
        let t: IssueBody = parse(br#"{"ttl":1.5,"uri_sans":null}"#).unwrap();
        assert_eq!((t.ttl.get(), t.uri_sans.0.len()), (Some("1.5"), 0));
    }

    #[test]
    fn a_field_of_the_wrong_shape_is_refused_by_name() {
        let err = parse::<IssueBody>(br#"{"alt_names":{"a":1}}"#).unwrap_err();
        assert!(
            err.message().starts_with("alt_names: ") && err.message().contains("comma-separated"),
            "{err}"
        );
        let err = parse::<IssueBody>(br#"{"ip_sans":["10.0.0.1", 7]}"#).unwrap_err();
        assert!(err.message().starts_with("ip_sans"), "{err}");
        let err = parse::<LoginBody>(br#"{"role":["web"]}"#).unwrap_err();
        assert_eq!(
            err.message(),
            "role: invalid type: sequence, expected a string"
        );
        let err = parse::<RevokeBody>(br#"{"private_key":{"pem":"-----BEGIN"}}"#).unwrap_err();
        assert!(!err.message().contains("BEGIN"), "{err}");
        let body: RevokeBody = parse(br#"{"private_key":"-----BEGIN PRIVATE KEY-----"}"#).unwrap();
        assert!(!format!("{body:?}").contains("BEGIN"));
        let body: LoginBody = parse(br#"{"role":"web","jwt":"eyJ.secret.sig"}"#).unwrap();
        assert!(!format!("{body:?}").contains("secret"));
    }
}
