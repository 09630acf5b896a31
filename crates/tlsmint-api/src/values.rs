//! Parsing of the string values shared by pod annotations and CSI volume attributes: comma
//! lists, IP addresses, URIs, names, file names and `$(...)` / `${...}` templates.
//!
//! Owns the [`InvalidValue`] wording; the `annotations` and `csi` modules add the key. It must
//! not know any key names, and it only checks what can be checked before templates are
//! resolved.

use std::net::IpAddr;

use crate::duration::DurationError;
use crate::fraction::FractionError;
use crate::v1alpha1::{
    KeyAlgorithm, KeyAlgorithmError, KeyEncoding, KeyEncodingError, KeySpec, ValidationError,
};

/// What is wrong with one annotation or attribute value. Every message quotes the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidValue {
    /// A required key is absent.
    #[error("is required")]
    Missing,
    /// The value is empty or only spaces.
    #[error("must not be empty")]
    Empty,
    /// A comma-separated list has an empty item (e.g. `a,,b` or a trailing comma).
    #[error("{value:?} has an empty item at position {position} (items are separated by commas)")]
    EmptyItem {
        /// The whole list.
        value: String,
        /// 1-based position of the empty item.
        position: usize,
    },
    /// Not a duration.
    #[error(transparent)]
    Duration(#[from] DurationError),
    /// Not a fraction between 0 and 1.
    #[error(transparent)]
    Fraction(#[from] FractionError),
    /// Not a key algorithm.
    #[error(transparent)]
    KeyAlgorithm(#[from] KeyAlgorithmError),
    /// Not a key encoding.
    #[error(transparent)]
    KeyEncoding(#[from] KeyEncodingError),
    /// A key size that does not fit the algorithm.
    #[error("{value:?}: {size} is not a valid key size for {algorithm} ({allowed})")]
    KeySize {
        /// The rejected value.
        value: String,
        /// The key algorithm.
        algorithm: KeyAlgorithm,
        /// The rejected size.
        size: u32,
        /// The sizes that would be accepted, in words.
        allowed: &'static str,
    },
    /// A key encoding that cannot hold keys of the algorithm.
    #[error("{value:?} cannot encode a {algorithm} key ({allowed})")]
    KeyEncodingMismatch {
        /// The rejected encoding.
        value: String,
        /// The key algorithm.
        algorithm: KeyAlgorithm,
        /// The encodings that would be accepted, in words.
        allowed: &'static str,
    },
    /// Not an IP address.
    #[error("{value:?} is not an IPv4 or IPv6 address")]
    Ip {
        /// The rejected item.
        value: String,
    },
    /// Not a URI.
    #[error("{value:?} is not a URI (e.g. spiffe://cluster.local/ns/default/sa/web)")]
    Uri {
        /// The rejected item.
        value: String,
    },
    /// A value of the wrong shape; `expected` says what it should be.
    #[error("{value:?} is not {expected}")]
    Shape {
        /// The rejected value or item.
        value: String,
        /// What was expected, e.g. "a Kubernetes name".
        expected: &'static str,
    },
    /// A `$(...)` or `${...}` template that is not one of the known ones.
    #[error("{value:?} uses the unknown template {template} (known: {known})")]
    UnknownTemplate {
        /// The value holding it.
        value: String,
        /// The template as written, e.g. `$(POD_IP)`.
        template: String,
        /// The known templates, comma-separated.
        known: String,
    },
    /// A `$(` or `${` without its closing bracket.
    #[error("{value:?} has an unclosed template (write e.g. {example})")]
    UnclosedTemplate {
        /// The value holding it.
        value: String,
        /// An example of a correct template.
        example: &'static str,
    },
    /// A pod annotation holding the CSI driver's `${` template syntax: the webhook would
    /// pass it on and the driver would read it as a template, so the volume would fail.
    #[error(
        "{value:?} holds \"${{\", which the CSI driver reads as a template: annotations use $(...), e.g. {example}"
    )]
    ForeignTemplate {
        /// The value holding it.
        value: String,
        /// An example of a correct template.
        example: &'static str,
    },
    /// A template in a value that does not take templates.
    #[error("{value:?} cannot use templates")]
    TemplateNotAllowed {
        /// The value holding it.
        value: String,
    },
    /// A value outside the closed set; `allowed` lists the set.
    #[error("{value:?} is not one of {allowed}")]
    NotOneOf {
        /// The rejected value.
        value: String,
        /// The accepted values, in words.
        allowed: &'static str,
    },
    /// A key that only makes sense together with another one that is absent.
    #[error("is required when {other} is set")]
    RequiredWith {
        /// The key that needs this one.
        other: &'static str,
    },
    /// A key that cannot be combined with another key's value.
    #[error("cannot be used with {other} ({why})")]
    NotWith {
        /// The other key and its value, e.g. `tlsmint.io/mode: csi`.
        other: &'static str,
        /// Why, and what to do instead.
        why: &'static str,
    },
    /// A key this version does not know (a typo, or a newer tlsmint's key).
    #[error("is not a known key (known: {known})")]
    UnknownKey {
        /// The known keys, comma-separated.
        known: String,
    },
    /// Two keys that must differ have the same value.
    #[error("{value:?} is also used by {other}")]
    Duplicate {
        /// The repeated value.
        value: String,
        /// The other key with the same value.
        other: &'static str,
    },
}

/// Parses a compact key spec (`ECDSA`, `ECDSA-384`, `RSA-3072`, `Ed25519`) and checks the size.
pub(crate) fn key_spec(value: &str) -> Result<KeySpec, InvalidValue> {
    let key: KeySpec = value.parse()?;
    match key.validate("key") {
        Ok(()) => Ok(key),
        Err(ValidationError::KeySize {
            algorithm,
            size,
            allowed,
            ..
        }) => Err(InvalidValue::KeySize {
            value: value.to_owned(),
            algorithm,
            size,
            allowed,
        }),
        Err(_) => Err(InvalidValue::KeyAlgorithm(KeyAlgorithmError {
            value: value.to_owned(),
        })),
    }
}

/// Checks that `encoding` can hold keys of `algorithm`.
pub(crate) fn key_encoding(
    encoding: KeyEncoding,
    algorithm: KeyAlgorithm,
) -> Result<(), InvalidValue> {
    match encoding.validate("encoding", algorithm) {
        Ok(()) => Ok(()),
        Err(ValidationError::KeyEncoding { allowed, .. }) => {
            Err(InvalidValue::KeyEncodingMismatch {
                value: encoding.to_string(),
                algorithm,
                allowed,
            })
        }
        Err(_) => Err(InvalidValue::KeyEncodingMismatch {
            value: encoding.to_string(),
            algorithm,
            allowed: "use PKCS8",
        }),
    }
}

/// Template syntax: `$(NAME)` for annotations (like container env), `${NAME}` for CSI
/// attributes (like cert-manager's csi-driver).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Templates {
    pub open: &'static str,
    pub close: char,
    pub names: &'static [&'static str],
    pub example: &'static str,
}

impl Templates {
    /// The known templates as written, comma-separated.
    fn known(&self) -> String {
        self.names
            .iter()
            .map(|n| format!("{}{n}{}", self.open, self.close))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Replaces every template in `value` by `lookup(name)`; unknown or unclosed templates are
    /// errors.
    pub fn expand(
        &self,
        value: &str,
        mut lookup: impl FnMut(&str) -> String,
    ) -> Result<String, InvalidValue> {
        let mut out = String::with_capacity(value.len());
        let mut rest = value;
        while let Some(start) = rest.find(self.open) {
            out.push_str(&rest[..start]);
            let after = &rest[start + self.open.len()..];
            let Some(end) = after.find(self.close) else {
                return Err(InvalidValue::UnclosedTemplate {
                    value: value.to_owned(),
                    example: self.example,
                });
            };
            let name = &after[..end];
            if !self.names.contains(&name) {
                return Err(InvalidValue::UnknownTemplate {
                    value: value.to_owned(),
                    template: format!("{}{name}{}", self.open, self.close),
                    known: self.known(),
                });
            }
            out.push_str(&lookup(name));
            rest = &after[end + self.close.len_utf8()..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Checks the templates of `value` and returns it with each replaced by `x`, so that its
    /// shape can be checked before the real values are known.
    pub fn check(&self, value: &str) -> Result<String, InvalidValue> {
        self.expand(value, |_| "x".to_owned())
    }

    /// Fails if `value` contains the opening of a template.
    pub fn forbid(&self, value: &str) -> Result<(), InvalidValue> {
        if value.contains(self.open) {
            return Err(InvalidValue::TemplateNotAllowed {
                value: value.to_owned(),
            });
        }
        Ok(())
    }
}

/// A required, non-blank value.
pub(crate) fn required(value: Option<&str>) -> Result<&str, InvalidValue> {
    match value {
        None => Err(InvalidValue::Missing),
        Some(v) if v.trim().is_empty() => Err(InvalidValue::Empty),
        Some(v) => Ok(v.trim()),
    }
}

/// Splits a comma-separated list, trimming each item; empty items are errors, an empty or
/// blank value is an empty list.
pub(crate) fn list(value: &str) -> Result<Vec<&str>, InvalidValue> {
    if value.trim().is_empty() {
        return Ok(Vec::new());
    }
    value
        .split(',')
        .enumerate()
        .map(|(i, item)| match item.trim() {
            "" => Err(InvalidValue::EmptyItem {
                value: value.to_owned(),
                position: i + 1,
            }),
            item => Ok(item),
        })
        .collect()
}

/// Applies `parse` to a present value; blank values count as absent.
pub(crate) fn optional<T>(
    value: Option<&str>,
    parse: impl Fn(&str) -> Result<T, InvalidValue>,
) -> Result<Option<T>, InvalidValue> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => parse(v).map(Some),
    }
}

/// Splits a comma-separated value (absent means empty) and parses each item.
pub(crate) fn parse_list<T>(
    value: Option<&str>,
    parse: impl Fn(&str) -> Result<T, InvalidValue>,
) -> Result<Vec<T>, InvalidValue> {
    list(value.unwrap_or_default())?
        .into_iter()
        .map(parse)
        .collect()
}

/// A value without whitespace or control characters (after trimming).
pub(crate) fn no_spaces(value: &str, expected: &'static str) -> Result<(), InvalidValue> {
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(InvalidValue::Shape {
            value: value.to_owned(),
            expected,
        });
    }
    Ok(())
}

pub(crate) fn ip(value: &str) -> Result<IpAddr, InvalidValue> {
    value.parse().map_err(|_| InvalidValue::Ip {
        value: value.to_owned(),
    })
}

/// The one shape check of a URI SAN (CRD fields, annotations, CSI attributes):
/// `scheme:rest` with an RFC 3986 scheme, something after the colon, and no
/// whitespace or control characters. The engine's policy parses URIs fully.
pub(crate) fn is_uri(value: &str) -> bool {
    value.split_once(':').is_some_and(|(scheme, rest)| {
        scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            && !rest.is_empty()
    }) && !value.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// `checked` is the value with templates replaced; `original` goes into the error.
pub(crate) fn uri(original: &str, checked: &str) -> Result<(), InvalidValue> {
    if !is_uri(checked) {
        return Err(InvalidValue::Uri {
            value: original.to_owned(),
        });
    }
    Ok(())
}

/// A Kubernetes object name (RFC 1123 subdomain); `checked` has templates replaced.
pub(crate) fn object_name(original: &str, checked: &str) -> Result<(), InvalidValue> {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let ok = !checked.is_empty()
        && checked.len() <= 253
        && checked.starts_with(alnum)
        && checked.ends_with(alnum)
        && checked.chars().all(|c| alnum(c) || c == '-' || c == '.');
    if !ok {
        return Err(InvalidValue::Shape {
            value: original.to_owned(),
            expected: "a Kubernetes name (lower-case letters, digits, '-' and '.')",
        });
    }
    Ok(())
}

/// A container name (RFC 1123 label).
pub(crate) fn container_name(value: &str) -> Result<(), InvalidValue> {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let ok = value.len() <= 63
        && value.starts_with(alnum)
        && value.ends_with(alnum)
        && value.chars().all(|c| alnum(c) || c == '-');
    if !ok {
        return Err(InvalidValue::Shape {
            value: value.to_owned(),
            expected: "a container name (lower-case letters, digits and '-')",
        });
    }
    Ok(())
}

/// A plain file name: not empty, no `/`, not `.` or `..`, not starting with `..` (kubelet-
/// style writers keep their `..data` folders next to the files), at most 255 bytes.
pub(crate) fn file_name(value: &str) -> Result<(), InvalidValue> {
    let ok = !value.is_empty()
        && value.len() <= 255
        && value != "."
        && !value.starts_with("..")
        && !value.contains(['/', '\\', '\0']);
    if !ok {
        return Err(InvalidValue::Shape {
            value: value.to_owned(),
            expected: "a plain file name (no '/', not starting with '..'; e.g. tls.crt)",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAREN: Templates = Templates {
        open: "$(",
        close: ')',
        names: &["POD_NAME", "POD_NAMESPACE"],
        example: "$(POD_NAME)",
    };

    #[test]
    fn lists_are_split_and_trimmed() {
        assert_eq!(list("a, b ,c"), Ok(vec!["a", "b", "c"]));
        assert_eq!(list("a"), Ok(vec!["a"]));
        assert_eq!(list(""), Ok(vec![]));
        assert_eq!(list("  "), Ok(vec![]));
        for (input, position) in [("a,,b", 2), ("a,", 2), (",a", 1), ("a, ,b", 2)] {
            assert_eq!(
                list(input),
                Err(InvalidValue::EmptyItem {
                    value: input.into(),
                    position
                })
            );
        }
    }

    #[test]
    fn templates_expand_known_names_only() {
        let expanded = PAREN.expand("$(POD_NAME).$(POD_NAMESPACE).svc", |n| n.to_lowercase());
        assert_eq!(expanded, Ok("pod_name.pod_namespace.svc".into()));
        assert_eq!(PAREN.check("$(POD_NAME)-x"), Ok("x-x".into()));
        assert_eq!(PAREN.check("no templates"), Ok("no templates".into()));
        let err = PAREN.check("$(POD_IP).svc").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#""$(POD_IP).svc" uses the unknown template $(POD_IP) (known: $(POD_NAME), $(POD_NAMESPACE))"#
        );
        assert!(matches!(
            PAREN.check("$(POD_NAME"),
            Err(InvalidValue::UnclosedTemplate { .. })
        ));
        assert!(PAREN.forbid("/var/$(POD_NAME)").is_err());
        assert_eq!(PAREN.forbid("/var/run"), Ok(()));
    }

    #[test]
    fn file_names_must_be_plain() {
        for ok in ["tls.crt", "key.pem", ".hidden", "a..b"] {
            assert_eq!(file_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "..data",
            "a/b",
            "/etc/passwd",
            "../x",
            "a\\b",
            "a\0b",
        ] {
            assert!(file_name(bad).is_err(), "{bad:?}");
        }
        assert!(file_name(&"a".repeat(256)).is_err());
    }

    #[test]
    fn names_and_uris() {
        assert_eq!(object_name("web", "web"), Ok(()));
        assert!(object_name("Web", "Web").is_err());
        assert_eq!(container_name("app-1"), Ok(()));
        assert!(container_name("app.1").is_err());
        assert_eq!(uri("x", "spiffe://a/b"), Ok(()));
        assert!(uri("x", "nope").is_err());
        assert_eq!(ip("::1").map(|ip| ip.is_loopback()), Ok(true));
        assert!(ip("1.2.3").is_err());
        assert_eq!(required(Some(" a ")), Ok("a"));
        assert_eq!(required(Some(" ")), Err(InvalidValue::Empty));
        assert_eq!(required(None), Err(InvalidValue::Missing));
    }

    #[test]
    fn key_specs_and_encodings() {
        assert_eq!(key_spec("ECDSA-384").map(|k| k.size), Ok(Some(384)));
        let err = key_spec("ECDSA-521").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#""ECDSA-521": 521 is not a valid key size for ECDSA (use 256 or 384)"#
        );
        assert!(matches!(
            key_spec("DSA"),
            Err(InvalidValue::KeyAlgorithm(_))
        ));
        assert_eq!(key_encoding(KeyEncoding::Sec1, KeyAlgorithm::Ecdsa), Ok(()));
        let err = key_encoding(KeyEncoding::Sec1, KeyAlgorithm::Rsa).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#""SEC1" cannot encode a RSA key (use PKCS8 or PKCS1)"#
        );
    }
}
