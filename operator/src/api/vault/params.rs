//! Request parameters of the Vault API: a JSON object whose values may be
//! strings, numbers, booleans or lists (`alt_names` as `"a,b"` or
//! `["a","b"]`), and Vault's TTL notation (`"24h"`, `"1d"`, `"90"`, `90`).
//!
//! Owns: parsing and its error messages. Must not: echo a value unbounded.

use std::time::Duration;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::api::error::ApiError;

/// Longest value echoed in an error message.
const ECHO: usize = 64;

/// A request body.
#[derive(Debug, Default)]
pub struct Params(Map<String, Value>);

impl Params {
    /// Parses a JSON object body; an empty body is an empty object.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Params::default());
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(Params(map)),
            Ok(_) => Err(ApiError::InvalidArgument(
                "the request body must be a JSON object".into(),
            )),
            Err(e) => Err(ApiError::InvalidArgument(format!(
                "failed to parse JSON input: {e}"
            ))),
        }
    }

    /// A string parameter (numbers and booleans are accepted as text); empty is none.
    pub fn string(&self, key: &str) -> Result<Option<String>, ApiError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(ApiError::InvalidArgument(format!("{key} must be a string"))),
        }
    }

    /// A list parameter: a comma-separated string or a JSON list of strings.
    pub fn list(&self, key: &str) -> Result<Vec<String>, ApiError> {
        let items: Vec<String> = match self.0.get(key) {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::String(s)) => s.split(',').map(str::to_owned).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(ApiError::InvalidArgument(format!(
                        "{key} must be a list of strings"
                    ))),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(ApiError::InvalidArgument(format!(
                    "{key} must be a comma-separated string or a list of strings"
                )));
            }
        };
        Ok(items
            .into_iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect())
    }

    /// A TTL parameter in Vault's notation.
    pub fn ttl(&self, key: &str) -> Result<Option<Duration>, ApiError> {
        let Some(text) = self.string(key)? else {
            return Ok(None);
        };
        parse_ttl(&text).map(Some).ok_or_else(|| {
            ApiError::InvalidArgument(format!(
                "{key} {:?} is not a duration: use seconds (3600) or a duration such as 90s, 15m, 24h, 7d",
                clip(&text)
            ))
        })
    }

    /// The requested lifetime: `ttl`, or `not_after` (an absolute RFC 3339
    /// expiry, as Vault takes it) turned into the TTL that ends then, so the
    /// role's and mount's maxTTL and the CA's notAfter apply to it exactly as
    /// to a `ttl` (clamped with a warning, or refused). Both at once, an
    /// unreadable date, or a date not in the future are refused.
    pub fn lifetime(&self, now: OffsetDateTime) -> Result<Option<Duration>, ApiError> {
        let ttl = self.ttl("ttl")?;
        let Some(text) = self.string("not_after")? else {
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
                clip(&text)
            ))
        })?;
        let left = not_after - now;
        if !left.is_positive() {
            return Err(ApiError::InvalidArgument(format!(
                "not_after {:?} is not in the future",
                clip(&text)
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
        let p = Params::parse(br#"{"not_after":"2030-01-01T02:00:00Z"}"#).unwrap();
        assert_eq!(p.lifetime(now).unwrap(), Some(Duration::from_secs(7200)));
        let p = Params::parse(br#"{"ttl":"1h"}"#).unwrap();
        assert_eq!(p.lifetime(now).unwrap(), Some(Duration::from_secs(3600)));
        assert_eq!(Params::default().lifetime(now).unwrap(), None);
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
            let err = Params::parse(body).unwrap().lifetime(now).unwrap_err();
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
        let p = Params::parse(br#"{"ttl":"99999999h"}"#).unwrap();
        assert_eq!(p.ttl("ttl").unwrap(), Some(max));
    }

    #[test]
    fn reads_strings_lists_and_numbers() {
        let p = Params::parse(br#"{"alt_names":"a.example.com, b.example.com","ip_sans":["10.0.0.1"],"ttl":3600,"common_name":""}"#).unwrap();
        assert_eq!(
            p.list("alt_names").unwrap(),
            vec!["a.example.com", "b.example.com"]
        );
        assert_eq!(p.list("ip_sans").unwrap(), vec!["10.0.0.1"]);
        assert_eq!(p.ttl("ttl").unwrap(), Some(Duration::from_secs(3600)));
        assert_eq!(p.string("common_name").unwrap(), None);
        assert!(Params::parse(b"[1]").is_err());
        assert!(Params::parse(b"{").is_err());
        assert!(Params::parse(b"").unwrap().string("x").unwrap().is_none());
        let bad = Params::parse(br#"{"ttl":"forever"}"#).unwrap();
        assert!(bad.ttl("ttl").unwrap_err().message().contains("forever"));
    }
}
