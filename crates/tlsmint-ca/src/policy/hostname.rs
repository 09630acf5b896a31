//! Normalising and checking host names, email-address common names, free-text
//! common names, and the entries of `allowedDomains`.
//!
//! Normal form: IDNA (UTS #46) A-labels, lowercase, one trailing dot removed. The
//! normal form is what the policy compares and what gets issued.
//!
//! Owns: the syntax of names. Must not: decide what a role allows (see `check`).

use std::borrow::Cow;

use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};

use super::error::Problem;

/// Longest DNS name (RFC 1035, without the trailing dot).
pub const MAX_DNS_NAME: usize = 253;
/// Longest raw (pre-IDNA) input considered at all; Unicode input can be longer
/// than its A-label form, but never by this much.
pub const MAX_RAW_DNS_BYTES: usize = 1024;
/// Longest common name (RFC 5280 `ub-common-name`).
pub const MAX_COMMON_NAME: usize = 64;

/// Why a name was refused before any rule was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    TooLong,
    Malformed(Problem),
}

impl From<Problem> for NameError {
    fn from(p: Problem) -> Self {
        NameError::Malformed(p)
    }
}

/// A normalised DNS name; `wildcard` means it starts with `*.`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsName {
    pub name: String,
    pub wildcard: bool,
}

impl DnsName {
    /// The name without its wildcard label (`a.com` for `*.a.com`).
    pub fn base(&self) -> &str {
        if self.wildcard {
            self.name.get(2..).unwrap_or("")
        } else {
            &self.name
        }
    }
}

/// Lowercase A-label form of `raw`, one trailing dot removed; no structure checks.
fn to_ascii(raw: &str) -> Result<Cow<'_, str>, Problem> {
    let plain_ascii = raw.is_ascii()
        && !raw
            .split('.')
            .any(|l| l.len() >= 4 && l[..4].eq_ignore_ascii_case("xn--"));
    let mut out: Cow<'_, str> = if plain_ascii {
        // UTS #46 only lowercases such input; skip the general machinery.
        if raw.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(raw.to_ascii_lowercase())
        } else {
            Cow::Borrowed(raw)
        }
    } else {
        Uts46::new()
            .to_ascii(
                raw.as_bytes(),
                AsciiDenyList::URL,
                Hyphens::Allow,
                DnsLength::Ignore,
            )
            .map_err(|_| Problem::Idna)?
    };
    if out.ends_with('.') {
        match &mut out {
            Cow::Borrowed(s) => *s = &s[..s.len() - 1],
            Cow::Owned(s) => {
                s.pop();
            }
        }
    }
    Ok(out)
}

/// Checks one label of a normalised name; `*` is handled by the caller.
fn check_label(label: &str, enforce_hostnames: bool) -> Result<(), Problem> {
    if label.is_empty() {
        return Err(Problem::EmptyLabel);
    }
    if label.len() > 63 {
        return Err(Problem::LabelTooLong);
    }
    for b in label.bytes() {
        match b {
            b'a'..=b'z' | b'0'..=b'9' | b'-' => {}
            b'_' if !enforce_hostnames => {}
            b'_' => return Err(Problem::Underscore),
            _ => return Err(Problem::BadHostnameChar),
        }
    }
    if enforce_hostnames && (label.starts_with('-') || label.ends_with('-')) {
        return Err(Problem::HyphenAtLabelEdge);
    }
    Ok(())
}

/// Normalises and checks a requested DNS name.
///
/// Always: no whitespace/control characters, no `@`, valid IDNA, labels of 1..=63
/// characters, at most 253 characters, last label not all digits, and a `*` only
/// as the whole left-most label followed by at least two labels. With
/// `enforce_hostnames` labels are RFC 1123 (`a-z 0-9 -`, no `-` at either end);
/// without it `_` and edge hyphens are also accepted.
pub fn normalize_dns(raw: &str, enforce_hostnames: bool) -> Result<DnsName, NameError> {
    if raw.len() > MAX_RAW_DNS_BYTES {
        return Err(NameError::TooLong);
    }
    if raw.is_empty() {
        return Err(Problem::Empty.into());
    }
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Problem::ControlOrWhitespace.into());
    }
    if raw.contains('@') {
        return Err(Problem::EmailInDnsName.into());
    }
    let ascii = to_ascii(raw)?;
    if ascii.is_empty() {
        return Err(Problem::Empty.into());
    }
    if ascii.len() > MAX_DNS_NAME {
        return Err(NameError::TooLong);
    }
    let wildcard = check_wildcard_shape(&ascii)?;
    let base = if wildcard { &ascii[2..] } else { &ascii[..] };
    for label in base.split('.') {
        check_label(label, enforce_hostnames)?;
    }
    if base
        .rsplit('.')
        .next()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(Problem::NumericTld.into());
    }
    Ok(DnsName {
        name: ascii.into_owned(),
        wildcard,
    })
}

/// Returns whether `name` is a wildcard, after checking that its only `*` is the
/// whole left-most label with at least two labels after it (RFC 9525 §6.3; `*.com`
/// and a bare `*` are refused).
fn check_wildcard_shape(name: &str) -> Result<bool, Problem> {
    match name.bytes().filter(|b| *b == b'*').count() {
        0 => return Ok(false),
        1 => {}
        _ => return Err(Problem::MultipleWildcards),
    }
    let (first, rest) = name.split_once('.').unwrap_or((name, ""));
    if !first.contains('*') {
        return Err(Problem::WildcardNotLeftmost);
    }
    if first != "*" {
        return Err(Problem::PartialWildcard);
    }
    if !rest.contains('.') {
        return Err(Problem::WildcardTooBroad);
    }
    Ok(true)
}

/// A common name that is an email address: `local@domain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// `local@normalised-domain`.
    pub address: String,
    pub domain: DnsName,
}

/// Parses an email-address common name. The local part is kept as given (it is
/// case-sensitive) and must be dot-atom text (RFC 5322, ASCII); the domain is
/// normalised like any DNS name and may not be a wildcard.
pub fn parse_email(raw: &str, enforce_hostnames: bool) -> Result<Email, NameError> {
    let (local, domain) = raw.split_once('@').ok_or(Problem::EmailShape)?;
    if domain.contains('@') {
        return Err(Problem::EmailShape.into());
    }
    let atext = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b);
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(atext));
    if !local_ok {
        return Err(Problem::EmailLocalPart.into());
    }
    if domain.contains('*') {
        return Err(Problem::WildcardEmail.into());
    }
    let domain = normalize_dns(domain, enforce_hostnames)?;
    let address = format!("{local}@{}", domain.name);
    Ok(Email { address, domain })
}

/// Checks a common name that is not a host name, email or IP (allowed only with
/// `allowAnyName` and `enforceHostnames: false`, and then never put in a SAN):
/// printable, no leading/trailing space, no DN special characters.
pub fn check_free_text_cn(raw: &str) -> Result<(), Problem> {
    if raw.chars().any(char::is_control) || raw.trim() != raw {
        return Err(Problem::ControlOrWhitespace);
    }
    if raw.contains([',', '+', '=', ';', '<', '>', '"', '\\', '#']) {
        return Err(Problem::DnSpecialChar);
    }
    Ok(())
}

/// Normalises an `allowedDomains` entry (templates already filled): same form as
/// requested names; `*` is kept as a glob character anywhere. Entries that fail
/// match nothing.
pub fn normalize_domain_entry(entry: &str) -> Result<Cow<'_, str>, Problem> {
    if entry.is_empty() {
        return Err(Problem::Empty);
    }
    if entry.len() > MAX_RAW_DNS_BYTES || entry.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(Problem::ControlOrWhitespace);
    }
    let ascii = to_ascii(entry)?;
    if ascii.is_empty() {
        return Err(Problem::Empty);
    }
    if ascii.len() > MAX_DNS_NAME {
        return Err(Problem::LabelTooLong);
    }
    for label in ascii.split('.') {
        if label.is_empty() {
            return Err(Problem::EmptyLabel);
        }
        if label.len() > 63 {
            return Err(Problem::LabelTooLong);
        }
        let ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_*".contains(&b);
        if !label.bytes().all(ok) {
            return Err(Problem::BadHostnameChar);
        }
    }
    let last = ascii.rsplit('.').next().unwrap_or("");
    if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Problem::NumericTld);
    }
    Ok(ascii)
}
