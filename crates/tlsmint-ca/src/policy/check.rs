//! `Policy::check`: applies a role to one request and builds the exact names to
//! issue. The rules follow Vault's `validateNames` (see the module docs of
//! `policy` for every decision and every deliberate difference).
//!
//! Owns: the decision "is this name allowed", dedupe and order of the output,
//! and the wording of "allowed are ..." in denials. Must not: trust the request
//! for identity, or assume `Policy::validate` was run (bad entries match nothing).

use std::borrow::Cow;
use std::net::IpAddr;

use super::error::{NameKind, PolicyError, Problem, clip};
use super::glob::glob_match;
use super::hostname::{
    DnsName, MAX_COMMON_NAME, MAX_DNS_NAME, MAX_RAW_DNS_BYTES, NameError, check_free_text_cn,
    normalize_dns, normalize_domain_entry, parse_email,
};
use super::ip::{MAX_IP_TEXT, parse_ip};
use super::template::{self, Expanded};
use super::uri::{MAX_URI_BYTES, is_spiffe, normalize_uri_pattern, parse_uri};
use super::{Identity, MAX_NAMES, NameRequest, Policy, ValidatedNames};

/// Longest list of allowed entries quoted in a denial.
const MAX_LISTED: usize = 8;

/// The role with its templates filled for one caller and its entries normalised.
struct Rules<'p> {
    policy: &'p Policy,
    domains: Vec<Cow<'p, str>>,
    uri_patterns: Vec<Cow<'p, str>>,
}

pub(super) fn check(
    policy: &Policy,
    identity: &Identity,
    req: &NameRequest,
) -> Result<ValidatedNames, PolicyError> {
    let role = || clip(&policy.role);
    let cn = req.common_name.as_deref().filter(|c| !c.is_empty());
    let count =
        usize::from(cn.is_some()) + req.dns_names.len() + req.ip_addresses.len() + req.uris.len();
    if count > MAX_NAMES {
        return Err(PolicyError::TooManyNames {
            role: role(),
            count,
            max: MAX_NAMES,
        });
    }
    if cn.is_none() && policy.require_common_name {
        return Err(PolicyError::CommonNameRequired { role: role() });
    }
    if count == 0 {
        return Err(PolicyError::NoNames { role: role() });
    }
    let rules = Rules::new(policy, identity)?;
    let mut out = ValidatedNames::default();
    if let Some(cn) = cn {
        rules.common_name(cn, &mut out)?;
    }
    for raw in &req.dns_names {
        let name = rules.dns(raw, NameKind::DnsName)?;
        push_unique(&mut out.dns_names, name.name);
    }
    for raw in &req.ip_addresses {
        push_unique(&mut out.ip_addresses, rules.ip(raw, NameKind::IpAddress)?);
    }
    for raw in &req.uris {
        let uri = rules.uri(raw)?.into_owned();
        push_unique(&mut out.uris, uri);
    }
    if out.uris.len() > 1
        && let Some(spiffe) = out.uris.iter().find(|u| is_spiffe(u))
    {
        return Err(rules.invalid(NameKind::Uri, spiffe, Problem::SpiffeNotAlone));
    }
    Ok(out)
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if !list.contains(&item) {
        list.push(item);
    }
}

/// Fills and normalises one role entry; `None` when it does not apply to this
/// caller or is malformed (it then matches nothing).
fn effective<'a>(
    entry: &'a str,
    identity: &Identity,
    normalize: fn(&str) -> Result<Cow<'_, str>, Problem>,
) -> Option<Cow<'a, str>> {
    match template::expand(
        entry,
        &identity.namespace,
        identity.service_account.as_deref(),
    ) {
        Ok(Expanded::Value(Cow::Borrowed(s))) => normalize(s).ok(),
        Ok(Expanded::Value(Cow::Owned(s))) => {
            normalize(&s).ok().map(|n| Cow::Owned(n.into_owned()))
        }
        Ok(Expanded::NotApplicable) | Err(_) => None,
    }
}

/// Refuses identity values that would fill a template but are not one DNS label.
fn check_identity(policy: &Policy, identity: &Identity) -> Result<(), PolicyError> {
    let mut uses = template::Uses::default();
    for entry in policy
        .allowed_domains
        .iter()
        .chain(&policy.allowed_uri_sans)
    {
        let u = template::uses(entry);
        uses.namespace |= u.namespace;
        uses.service_account |= u.service_account;
    }
    let refuse = |variable: &'static str, value: &str, problem| PolicyError::TemplateValueRefused {
        role: clip(&policy.role),
        variable,
        value: clip(value),
        problem,
    };
    if uses.namespace {
        template::check_value(&identity.namespace)
            .map_err(|p| refuse("namespace", &identity.namespace, p))?;
    }
    if uses.service_account
        && let Some(sa) = &identity.service_account
    {
        template::check_value(sa).map_err(|p| refuse("serviceAccount", sa, p))?;
    }
    Ok(())
}

/// True if `name` is strictly below `domain` (label boundary required).
fn is_subdomain(name: &str, domain: &str) -> bool {
    name.len() > domain.len()
        && name.ends_with(domain)
        && name.as_bytes()[name.len() - domain.len() - 1] == b'.'
}

impl<'p> Rules<'p> {
    fn new(policy: &'p Policy, identity: &Identity) -> Result<Self, PolicyError> {
        check_identity(policy, identity)?;
        let domains = (policy.allowed_domains.iter())
            .filter_map(|e| effective(e, identity, normalize_domain_entry))
            .collect();
        let uri_patterns = (policy.allowed_uri_sans.iter())
            .filter_map(|e| effective(e, identity, normalize_uri_pattern))
            .collect();
        Ok(Rules {
            policy,
            domains,
            uri_patterns,
        })
    }

    fn role(&self) -> String {
        clip(&self.policy.role)
    }

    fn invalid(&self, kind: NameKind, raw: &str, problem: Problem) -> PolicyError {
        PolicyError::InvalidName {
            role: self.role(),
            kind,
            value: clip(raw),
            problem,
        }
    }

    fn too_long(&self, kind: NameKind, raw: &str, max: usize) -> PolicyError {
        PolicyError::NameTooLong {
            role: self.role(),
            kind,
            value: clip(raw),
            max,
        }
    }

    fn denied(&self, kind: NameKind, raw: &str, rules: String) -> PolicyError {
        PolicyError::NameNotAllowed {
            role: self.role(),
            kind,
            value: clip(raw),
            rules,
        }
    }

    fn name_error(&self, kind: NameKind, raw: &str, err: NameError, max: usize) -> PolicyError {
        match err {
            NameError::TooLong => self.too_long(kind, raw, max),
            NameError::Malformed(problem) => self.invalid(kind, raw, problem),
        }
    }

    /// A requested DNS name (or a host-name CN): normalised, then checked.
    fn dns(&self, raw: &str, kind: NameKind) -> Result<DnsName, PolicyError> {
        let name = normalize_dns(raw, self.policy.enforce_hostnames)
            .map_err(|e| self.name_error(kind, raw, e, MAX_DNS_NAME))?;
        self.allow_dns(name, kind, raw)
    }

    /// Applies the wildcard switch and the allow-lists to a normalised name.
    fn allow_dns(&self, name: DnsName, kind: NameKind, raw: &str) -> Result<DnsName, PolicyError> {
        if name.wildcard && !self.policy.allow_wildcard_certificates {
            let rules = "allowWildcardCertificates is false".to_owned();
            return Err(self.denied(kind, raw, rules));
        }
        if !self.dns_allowed(&name) {
            return Err(self.denied(kind, raw, self.dns_rules()));
        }
        Ok(name)
    }

    /// Vault's order: any name; localhost/localdomain (and below them with
    /// subdomains); then per allowed domain: bare, subdomain (a wildcard's base may
    /// equal the domain), glob over the full name.
    fn dns_allowed(&self, name: &DnsName) -> bool {
        let p = self.policy;
        if p.allow_any_name {
            return true;
        }
        let base = name.base();
        if p.allow_localhost {
            if !name.wildcard && (base == "localhost" || base == "localdomain") {
                return true;
            }
            if p.allow_subdomains
                && (is_subdomain(base, "localhost") || is_subdomain(base, "localdomain"))
            {
                return true;
            }
        }
        self.domains.iter().any(|d| {
            (p.allow_bare_domains && name.name == **d)
                || (p.allow_subdomains
                    && (is_subdomain(base, d) || (name.wildcard && base == &**d)))
                || (p.allow_glob_domains && d.contains('*') && glob_match(d, &name.name))
        })
    }

    fn common_name(&self, raw: &str, out: &mut ValidatedNames) -> Result<(), PolicyError> {
        let kind = NameKind::CommonName;
        let enforce = self.policy.enforce_hostnames;
        if raw.len() > MAX_RAW_DNS_BYTES {
            return Err(self.too_long(kind, raw, MAX_COMMON_NAME));
        }
        if raw.contains('@') {
            let email = parse_email(raw, enforce)
                .map_err(|e| self.name_error(kind, raw, e, MAX_COMMON_NAME))?;
            if email.address.len() > MAX_COMMON_NAME {
                return Err(self.invalid(kind, raw, Problem::CommonNameTooLong));
            }
            if !self.dns_allowed(&email.domain) {
                return Err(self.denied(kind, raw, self.dns_rules()));
            }
            out.common_name = Some(email.address.clone());
            out.email_addresses.push(email.address);
            return Ok(());
        }
        if raw.parse::<IpAddr>().is_ok() {
            let ip = self.ip(raw, kind)?;
            out.common_name = Some(ip.to_string());
            out.ip_addresses.push(ip);
            return Ok(());
        }
        match normalize_dns(raw, enforce) {
            Ok(name) if name.name.len() > MAX_COMMON_NAME => {
                Err(self.invalid(kind, raw, Problem::CommonNameTooLong))
            }
            Ok(name) => {
                let name = self.allow_dns(name, kind, raw)?;
                out.common_name = Some(name.name.clone());
                out.dns_names.push(name.name);
                Ok(())
            }
            Err(NameError::Malformed(
                Problem::ControlOrWhitespace | Problem::BadHostnameChar | Problem::Idna,
            )) if !enforce && self.policy.allow_any_name && !raw.contains('*') => {
                check_free_text_cn(raw).map_err(|p| self.invalid(kind, raw, p))?;
                if raw.chars().count() > MAX_COMMON_NAME {
                    return Err(self.invalid(kind, raw, Problem::CommonNameTooLong));
                }
                out.common_name = Some(raw.to_owned());
                Ok(())
            }
            Err(e) => Err(self.name_error(kind, raw, e, MAX_COMMON_NAME)),
        }
    }

    fn ip(&self, raw: &str, kind: NameKind) -> Result<IpAddr, PolicyError> {
        if raw.len() > MAX_IP_TEXT {
            return Err(self.too_long(kind, raw, MAX_IP_TEXT));
        }
        let ip = parse_ip(raw).map_err(|p| self.invalid(kind, raw, p))?;
        if !self.policy.allow_ip_sans {
            return Err(self.denied(kind, raw, "allowIPSANs is false".to_owned()));
        }
        Ok(ip)
    }

    fn uri<'r>(&self, raw: &'r str) -> Result<Cow<'r, str>, PolicyError> {
        let kind = NameKind::Uri;
        if raw.len() > MAX_URI_BYTES {
            return Err(self.too_long(kind, raw, MAX_URI_BYTES));
        }
        let uri = parse_uri(raw).map_err(|p| self.invalid(kind, raw, p))?;
        if !self.uri_patterns.iter().any(|p| glob_match(p, &uri)) {
            return Err(self.denied(kind, raw, self.uri_rules()));
        }
        Ok(uri)
    }

    /// "allowed domains are a.com, b.com (bare, subdomains); localhost is allowed".
    fn dns_rules(&self) -> String {
        let p = self.policy;
        let mut parts = Vec::new();
        if !self.domains.is_empty() {
            let list = listing(&self.domains);
            let flags: Vec<&str> = [
                (p.allow_bare_domains, "bare"),
                (p.allow_subdomains, "subdomains"),
                (p.allow_glob_domains, "globs"),
            ]
            .iter()
            .filter_map(|(on, f)| on.then_some(*f))
            .collect();
            parts.push(if flags.is_empty() {
                format!(
                    "allowed domains are {list}, but none of allowBareDomains, \
                     allowSubdomains, allowGlobDomains is true"
                )
            } else {
                format!("allowed domains are {list} ({})", flags.join(", "))
            });
        } else if !p.allowed_domains.is_empty() {
            parts.push("none of the allowed domains applies to this caller".to_owned());
        }
        if p.allow_localhost {
            parts.push("localhost is allowed".to_owned());
        }
        if parts.is_empty() {
            "the role allows no DNS names".to_owned()
        } else {
            parts.join("; ")
        }
    }

    fn uri_rules(&self) -> String {
        if !self.uri_patterns.is_empty() {
            format!("allowed URI SANs are {}", listing(&self.uri_patterns))
        } else if !self.policy.allowed_uri_sans.is_empty() {
            "none of the allowed URI SANs applies to this caller".to_owned()
        } else {
            "the role allows no URI SANs".to_owned()
        }
    }
}

/// "a, b, c" with at most `MAX_LISTED` entries, each clipped.
fn listing(items: &[Cow<'_, str>]) -> String {
    let mut out: Vec<String> = items.iter().take(MAX_LISTED).map(|i| clip(i)).collect();
    if items.len() > MAX_LISTED {
        out.push(format!("and {} more", items.len() - MAX_LISTED));
    }
    out.join(", ")
}
