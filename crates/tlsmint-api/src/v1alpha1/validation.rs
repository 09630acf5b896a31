//! Validation errors shared by the `validate()` methods of the v1alpha1 specs, and the small
//! checks they share (Kubernetes names, URLs, IP addresses).
//!
//! Owns the wording of spec errors: each names the field path (`spec.key.size`) and the value.
//! It must not check issuance policy (names against a role): that is the CA engine's job.

use std::net::IpAddr;

use super::common::{KeyAlgorithm, KeyEncoding};
use crate::Duration;

/// A spec (or annotation-derived value) that the operator must refuse. Every variant names the
/// field by its path as a user writes it, e.g. `spec.privateKey.size`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// A required field is missing or empty.
    #[error("{field} is required")]
    Required {
        /// Path of the field.
        field: String,
    },
    /// A key size that the algorithm does not support.
    #[error("{field}: {size} is not a valid key size for {algorithm} ({allowed})")]
    KeySize {
        /// Path of the field.
        field: String,
        /// The algorithm the size was checked against.
        algorithm: KeyAlgorithm,
        /// The rejected size.
        size: u32,
        /// The sizes that would be accepted, in words.
        allowed: &'static str,
    },
    /// A private-key encoding that cannot hold keys of this algorithm.
    #[error("{field}: {encoding} cannot encode a {algorithm} key ({allowed})")]
    KeyEncoding {
        /// Path of the field.
        field: String,
        /// The rejected encoding.
        encoding: KeyEncoding,
        /// The key algorithm.
        algorithm: KeyAlgorithm,
        /// The encodings that would be accepted, in words.
        allowed: &'static str,
    },
    /// A duration that must be longer than zero.
    #[error("{field} must be longer than zero")]
    ZeroDuration {
        /// Path of the field.
        field: String,
    },
    /// A default or requested lifetime above the ceiling that applies to it.
    #[error("{field} ({value}) is longer than {max_field} ({max})")]
    AboveMaximum {
        /// Path of the field.
        field: String,
        /// The rejected value.
        value: Duration,
        /// Path of the ceiling.
        max_field: String,
        /// The ceiling.
        max: Duration,
    },
    /// A field that only makes sense for an `Intermediate` mount.
    #[error("{field} is only valid when spec.type is Intermediate")]
    OnlyForIntermediate {
        /// Path of the field.
        field: String,
    },
    /// Two fields that exclude each other.
    #[error("{field} cannot be used together with {other}")]
    Conflict {
        /// Path of the first field.
        field: String,
        /// Path of the conflicting field.
        other: String,
    },
    /// A value of the wrong shape.
    #[error("{field}: {value:?} {reason}")]
    Invalid {
        /// Path of the field.
        field: String,
        /// The rejected value.
        value: String,
        /// What is wrong with it and what to write instead.
        reason: String,
    },
}

impl ValidationError {
    /// The path of the field the error is about.
    pub fn field(&self) -> &str {
        match self {
            ValidationError::Required { field }
            | ValidationError::KeySize { field, .. }
            | ValidationError::KeyEncoding { field, .. }
            | ValidationError::ZeroDuration { field }
            | ValidationError::AboveMaximum { field, .. }
            | ValidationError::OnlyForIntermediate { field }
            | ValidationError::Conflict { field, .. }
            | ValidationError::Invalid { field, .. } => field,
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, value: &str, reason: &str) -> Self {
        ValidationError::Invalid {
            field: field.into(),
            value: value.to_owned(),
            reason: reason.to_owned(),
        }
    }
}

/// Fails with [`ValidationError::Required`] when `value` is empty.
pub(crate) fn require(field: &str, value: &str) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        return Err(ValidationError::Required {
            field: field.to_owned(),
        });
    }
    Ok(())
}

/// Fails with [`ValidationError::ZeroDuration`] when `value` is zero.
pub(crate) fn positive(field: &str, value: Duration) -> Result<(), ValidationError> {
    if value.is_zero() {
        return Err(ValidationError::ZeroDuration {
            field: field.to_owned(),
        });
    }
    Ok(())
}

/// Checks that `name` is a Kubernetes object name (RFC 1123 subdomain: lower-case letters,
/// digits, `-` and `.`, at most 253 characters, starting and ending alphanumeric).
pub(crate) fn object_name(field: &str, name: &str) -> Result<(), ValidationError> {
    require(field, name)?;
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let ok = name.len() <= 253
        && name.starts_with(alnum)
        && name.ends_with(alnum)
        && name.chars().all(|c| alnum(c) || c == '-' || c == '.');
    if !ok {
        return Err(ValidationError::invalid(
            field,
            name,
            "is not a valid Kubernetes name (lower-case letters, digits, '-' and '.')",
        ));
    }
    Ok(())
}

/// Checks that `key` is a valid key of a Secret's or ConfigMap's data (letters, digits,
/// `-`, `_` and `.`, at most 253 characters, not `.` or `..`).
pub(crate) fn secret_key(field: &str, key: &str) -> Result<(), ValidationError> {
    require(field, key)?;
    let ok = key.len() <= 253
        && key != "."
        && key != ".."
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(ValidationError::invalid(
            field,
            key,
            "is not a valid Secret or ConfigMap key (letters, digits, '-', '_' and '.')",
        ));
    }
    Ok(())
}

/// Checks that `url` is an absolute `http://` or `https://` URL with a host and no spaces.
pub(crate) fn http_url(field: &str, url: &str) -> Result<(), ValidationError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    let ok = rest.is_some_and(|rest| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty() && !url.chars().any(|c| c.is_whitespace() || c.is_control())
    });
    if !ok {
        return Err(ValidationError::invalid(
            field,
            url,
            "is not an absolute http:// or https:// URL",
        ));
    }
    Ok(())
}

/// Parses an IPv4 or IPv6 address.
pub(crate) fn ip_address(field: &str, value: &str) -> Result<IpAddr, ValidationError> {
    value
        .parse()
        .map_err(|_| ValidationError::invalid(field, value, "is not an IPv4 or IPv6 address"))
}

/// Checks the shape of a URI SAN: `scheme:rest` with an RFC 3986 scheme and no spaces.
pub(crate) fn uri(field: &str, value: &str) -> Result<(), ValidationError> {
    if !crate::values::is_uri(value) {
        return Err(ValidationError::invalid(
            field,
            value,
            "is not a URI (e.g. spiffe://cluster.local/ns/default/sa/web)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_follow_rfc_1123() {
        for ok in ["a", "web-tls", "a.b-c", "0abc"] {
            assert_eq!(object_name("f", ok), Ok(()), "{ok}");
        }
        for bad in ["", "Web", "-a", "a-", "a_b", "a/b", &"a".repeat(254)] {
            assert!(object_name("f", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_must_be_absolute_http() {
        assert_eq!(http_url("f", "https://ca.example.com/v1/pki/ca"), Ok(()));
        assert_eq!(http_url("f", "http://10.0.0.1:8200/crl"), Ok(()));
        for bad in [
            "ca.example.com",
            "ftp://x",
            "https://",
            "https:///x",
            "http://a b",
        ] {
            assert!(http_url("f", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn uris_need_a_scheme() {
        assert_eq!(uri("f", "spiffe://cluster.local/ns/a/sa/b"), Ok(()));
        assert_eq!(uri("f", "urn:example:x"), Ok(()));
        for bad in ["", "no-scheme", "://x", "1a://x", "spiffe:", "a b:c"] {
            assert!(uri("f", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn error_names_field_and_value() {
        let err = ip_address("spec.ipAddresses[1]", "10.0.0.300").unwrap_err();
        assert_eq!(err.field(), "spec.ipAddresses[1]");
        assert_eq!(
            err.to_string(),
            r#"spec.ipAddresses[1]: "10.0.0.300" is not an IPv4 or IPv6 address"#
        );
    }
}
