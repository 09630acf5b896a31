//! Identity templates in `allowedDomains` and `allowedURISANs`: `{{namespace}}`
//! and `{{serviceAccount}}`, filled from the *verified* caller identity.
//!
//! Owns: template syntax, expansion, and the check that a substituted value is a
//! single RFC 1123 label (so it can never add a glob `*`, a label separator `.`,
//! a path `/`, a list separator `,` or another template: the injection class of
//! OpenBao GHSA-59w7-v8rr-pr4p). Must not: read anything from the request.

use std::borrow::Cow;

use super::error::Problem;

/// The template for the caller's namespace.
pub const NAMESPACE: &str = "{{namespace}}";
/// The template for the caller's service account.
pub const SERVICE_ACCOUNT: &str = "{{serviceAccount}}";

/// Which identity values an entry refers to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Uses {
    pub namespace: bool,
    pub service_account: bool,
}

/// Cheap scan: which templates appear in `entry` (syntax is not checked here).
pub fn uses(entry: &str) -> Uses {
    if !entry.contains("{{") {
        return Uses::default();
    }
    Uses {
        namespace: entry.contains(NAMESPACE),
        service_account: entry.contains(SERVICE_ACCOUNT),
    }
}

/// Outcome of filling an entry's templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expanded<'a> {
    /// The entry after substitution (borrowed when it has no template).
    Value(Cow<'a, str>),
    /// The entry needs `{{serviceAccount}}` but the caller has none (a
    /// CertificateRequest object): the entry does not apply to this caller.
    NotApplicable,
}

/// Fills the templates of `entry`. Fails with [`Problem::BadTemplate`] on an
/// unknown variable or a brace that is not part of `{{...}}`.
///
/// The values are substituted as given: the caller checks them with
/// [`check_value`] first.
pub fn expand<'a>(
    entry: &'a str,
    namespace: &str,
    service_account: Option<&str>,
) -> Result<Expanded<'a>, Problem> {
    if !entry.contains(['{', '}']) {
        return Ok(Expanded::Value(Cow::Borrowed(entry)));
    }
    let mut out = String::with_capacity(entry.len() + 32);
    let mut rest = entry;
    let mut not_applicable = false;
    while let Some(open) = rest.find(['{', '}']) {
        out.push_str(&rest[..open]);
        let from_open = &rest[open..];
        let value = if let Some(after) = from_open.strip_prefix(NAMESPACE) {
            rest = after;
            namespace
        } else if let Some(after) = from_open.strip_prefix(SERVICE_ACCOUNT) {
            rest = after;
            match service_account {
                Some(sa) => sa,
                None => {
                    not_applicable = true;
                    ""
                }
            }
        } else {
            return Err(Problem::BadTemplate);
        };
        out.push_str(value);
    }
    out.push_str(rest);
    if not_applicable {
        return Ok(Expanded::NotApplicable);
    }
    Ok(Expanded::Value(Cow::Owned(out)))
}

/// A value may fill a template only if it is one RFC 1123 label: 1 to 63
/// characters from `a-z`, `0-9` and `-`, not starting or ending with `-`.
/// Everything else is refused, not escaped.
pub fn check_value(value: &str) -> Result<(), Problem> {
    if value.is_empty() {
        return Err(Problem::Empty);
    }
    let bytes = value.as_bytes();
    if bytes.iter().any(u8::is_ascii_uppercase) {
        return Err(Problem::ValueUppercase);
    }
    if !bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
    {
        return Err(Problem::ValueBadChar);
    }
    if bytes.len() > 63 {
        return Err(Problem::ValueTooLong);
    }
    if bytes.first() == Some(&b'-') || bytes.last() == Some(&b'-') {
        return Err(Problem::ValueHyphenEdge);
    }
    Ok(())
}
