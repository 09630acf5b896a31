//! `Policy::validate`: the static check the operator runs when it accepts an
//! IssuerRole (a failure makes the role not Ready, with the message).
//!
//! Owns: which role entries are refused. Must not: be needed for safety;
//! `check` treats any entry this refuses as matching nothing.

use super::Policy;
use super::error::{PolicyError, Problem, RoleField, clip};
use super::hostname::{normalize_dns, normalize_domain_entry};
use super::template::{self, Expanded};
use super::uri::normalize_uri_pattern;

/// Placeholder used to check the shape of templated entries.
const SAMPLE: &str = "x";

pub(super) fn validate(policy: &Policy) -> Result<(), PolicyError> {
    let refuse = |field, entry: &str, problem| PolicyError::InvalidRoleEntry {
        role: clip(&policy.role),
        field,
        entry: clip(entry),
        problem,
    };
    for entry in &policy.allowed_domains {
        domain_entry(policy, entry).map_err(|p| refuse(RoleField::AllowedDomains, entry, p))?;
    }
    for entry in &policy.allowed_uri_sans {
        uri_entry(entry).map_err(|p| refuse(RoleField::AllowedUriSans, entry, p))?;
    }
    Ok(())
}

/// `entry` with every template replaced by a sample label.
fn sample(entry: &str) -> Result<String, Problem> {
    if entry.is_empty() {
        return Err(Problem::Empty);
    }
    match template::expand(entry, SAMPLE, Some(SAMPLE))? {
        Expanded::Value(v) => Ok(v.into_owned()),
        Expanded::NotApplicable => Err(Problem::BadTemplate),
    }
}

fn domain_entry(policy: &Policy, entry: &str) -> Result<(), Problem> {
    let filled = sample(entry)?;
    let domain = normalize_domain_entry(&filled)?;
    if !domain.contains('*') {
        return Ok(());
    }
    if domain.bytes().all(|b| b == b'*' || b == b'.') {
        return Err(Problem::GlobTooBroad);
    }
    if policy.allow_glob_domains {
        return Ok(());
    }
    // Without globs, `*.example.com` can still be allowed literally, as the one
    // wildcard name it spells (bare match, as in Vault).
    let literal_wildcard = normalize_dns(&domain, false).is_ok_and(|n| n.wildcard);
    if literal_wildcard && policy.allow_bare_domains && policy.allow_wildcard_certificates {
        return Ok(());
    }
    Err(Problem::GlobNotEnabled)
}

fn uri_entry(entry: &str) -> Result<(), Problem> {
    let filled = sample(entry)?;
    normalize_uri_pattern(&filled).map(|_| ())
}
