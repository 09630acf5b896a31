//! URI SANs: the syntax a requested URI must have, the SPIFFE ID rules for
//! `spiffe:` URIs, and the shape of an `allowedURISANs` glob pattern.
//!
//! Comparison is byte-exact (case-sensitive) after one normalisation: the scheme
//! is lowercased (RFC 3986 §3.1), in requests and patterns alike.
//!
//! Owns: URI syntax. Must not: decide what a role allows (see `check`).

use std::borrow::Cow;

use super::error::Problem;

/// Longest URI accepted (also the SPIFFE ID limit).
pub const MAX_URI_BYTES: usize = 2048;

/// RFC 3986 characters that may appear literally (besides `%XX`): unreserved,
/// gen-delims and sub-delims.
fn is_uri_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=".contains(&b)
}

/// Splits `scheme:rest`, checking the scheme syntax; `None` if there is no scheme.
fn split_scheme(s: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = s.split_once(':')?;
    let mut bytes = scheme.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphabetic());
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    (first_ok && rest_ok).then_some((scheme, rest))
}

/// `s` with its scheme lowercased (borrowed when it already is).
fn lowercase_scheme<'a>(s: &'a str, scheme: &str) -> Cow<'a, str> {
    if scheme.bytes().any(|b| b.is_ascii_uppercase()) {
        let mut out = scheme.to_ascii_lowercase();
        out.push_str(&s[scheme.len()..]);
        Cow::Owned(out)
    } else {
        Cow::Borrowed(s)
    }
}

/// Checks that every `%` starts a `%XX` escape.
fn check_percent(s: &str) -> Result<(), Problem> {
    let b = s.as_bytes();
    for (i, _) in s.match_indices('%') {
        let hex = |j: usize| b.get(j).is_some_and(u8::is_ascii_hexdigit);
        if !hex(i + 1) || !hex(i + 2) {
            return Err(Problem::UriBadPercent);
        }
    }
    Ok(())
}

/// True for a path segment that is `.` or `..`, also when written with `%2e`.
fn is_dot_segment(seg: &str) -> bool {
    let mut dots = 0;
    let mut rest = seg;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            rest = r;
        } else if rest.len() >= 3 && rest[..3].eq_ignore_ascii_case("%2e") {
            rest = &rest[3..];
        } else {
            return false;
        }
        dots += 1;
    }
    dots == 1 || dots == 2
}

/// Normalises and checks a requested URI SAN: an absolute URI of printable
/// RFC 3986 characters, no fragment, no userinfo, no dot segments, no `*`, and
/// for `spiffe:` the SPIFFE ID rules.
pub fn parse_uri(raw: &str) -> Result<Cow<'_, str>, Problem> {
    if raw.is_empty() {
        return Err(Problem::Empty);
    }
    if raw.bytes().any(|b| !b.is_ascii_graphic())
        || !raw.bytes().all(|b| is_uri_char(b) || b == b'%')
    {
        return Err(Problem::UriBadChar);
    }
    if raw.contains('#') {
        return Err(Problem::UriFragment);
    }
    if raw.contains('*') {
        return Err(Problem::UriWildcard);
    }
    check_percent(raw)?;
    let (scheme, rest) = split_scheme(raw).ok_or(Problem::UriNoScheme)?;
    let (authority, path) = match rest.strip_prefix("//") {
        Some(after) => after.split_at(after.find(['/', '?']).unwrap_or(after.len())),
        None => ("", rest),
    };
    if authority.contains('@') {
        return Err(Problem::UriUserinfo);
    }
    let path_only = path.split('?').next().unwrap_or("");
    if path_only.split('/').any(is_dot_segment) {
        return Err(Problem::UriDotSegment);
    }
    if scheme.eq_ignore_ascii_case("spiffe") {
        check_spiffe(rest)?;
    }
    Ok(lowercase_scheme(raw, scheme))
}

/// True if `uri` (already normalised) is a SPIFFE ID.
pub fn is_spiffe(uri: &str) -> bool {
    uri.starts_with("spiffe:")
}

/// SPIFFE ID rules (SPIFFE-ID spec §2): `//` + trust domain of `a-z 0-9 . - _`,
/// then a non-empty path of segments of `A-Z a-z 0-9 . - _`, none empty, none
/// `.` or `..`; no port, userinfo, query, fragment or percent-encoding.
fn check_spiffe(after_scheme: &str) -> Result<(), Problem> {
    let rest = after_scheme.strip_prefix("//").ok_or(Problem::SpiffeId)?;
    let (trust_domain, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let td_ok = !trust_domain.is_empty()
        && trust_domain
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".-_".contains(&b));
    if !td_ok || path.is_empty() {
        return Err(Problem::SpiffeId);
    }
    let seg_ok = |seg: &str| {
        !seg.is_empty()
            && seg != "."
            && seg != ".."
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-_".contains(&b))
    };
    if !path[1..].split('/').all(seg_ok) {
        return Err(Problem::SpiffeId);
    }
    Ok(())
}

/// Normalises and checks an `allowedURISANs` glob (templates already filled):
/// printable RFC 3986 characters plus `*`, no fragment, and a literal scheme so
/// that a pattern can never match URIs of any scheme. Patterns that fail match
/// nothing.
pub fn normalize_uri_pattern(pattern: &str) -> Result<Cow<'_, str>, Problem> {
    if pattern.is_empty() {
        return Err(Problem::Empty);
    }
    if pattern.len() > MAX_URI_BYTES || !pattern.bytes().all(|b| is_uri_char(b) || b == b'%') {
        return Err(Problem::UriBadChar);
    }
    if pattern.contains('#') {
        return Err(Problem::UriFragment);
    }
    check_percent(pattern)?;
    let (scheme, _) = split_scheme(pattern).ok_or(Problem::UriPatternScheme)?;
    Ok(lowercase_scheme(pattern, scheme))
}
