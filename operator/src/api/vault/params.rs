//! Request parameters of the Vault API: a JSON object whose values may be
//! strings, numbers, booleans or lists (`alt_names` as `"a,b"` or
//! `["a","b"]`), and Vault's TTL notation (`"24h"`, `"1d"`, `"90"`, `90`).
//!
//! Owns: parsing and its error messages. Must not: echo a value unbounded.

use std::time::Duration;

use serde_json::{Map, Value};

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
}

/// Vault's TTL notation: whole seconds, or a Go duration that may also use `d` (days).
pub fn parse_ttl(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Some(days) = text.strip_suffix('d')
        && let Ok(days) = days.parse::<u64>()
    {
        return days.checked_mul(86_400).map(Duration::from_secs);
    }
    text.parse::<tlsmint_api::Duration>()
        .ok()
        .map(|d| d.as_std())
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
