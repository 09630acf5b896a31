//! Table-driven tests of the name policy. This file holds the harness: role and
//! request builders, the expected-outcome type, and a runner that reports every
//! failing case by name. The tables live in the sibling files.

mod cn_ip;
mod domains;
mod globs;
mod messages;
mod templates;
mod uris;
mod validate;
mod wildcard;

use std::net::IpAddr;

use super::{Identity, NameKind, NameRequest, Policy, PolicyError, Problem, ValidatedNames};

/// A role named "web" over `domains`, every switch at its CRD default.
pub(super) fn role(domains: &[&str]) -> Policy {
    Policy {
        role: "web".to_owned(),
        allowed_domains: domains.iter().map(|d| (*d).to_owned()).collect(),
        ..Policy::default()
    }
}

/// Switches, so a table row reads `role(&["a.com"]).sub().wild()`.
pub(super) trait Switches: Sized {
    fn set(self, f: impl FnOnce(&mut Policy)) -> Self;
    fn bare(self) -> Self {
        self.set(|p| p.allow_bare_domains = true)
    }
    fn sub(self) -> Self {
        self.set(|p| p.allow_subdomains = true)
    }
    fn glob(self) -> Self {
        self.set(|p| p.allow_glob_domains = true)
    }
    fn wild(self) -> Self {
        self.set(|p| p.allow_wildcard_certificates = true)
    }
    fn localhost(self) -> Self {
        self.set(|p| p.allow_localhost = true)
    }
    fn any(self) -> Self {
        self.set(|p| p.allow_any_name = true)
    }
    fn loose(self) -> Self {
        self.set(|p| p.enforce_hostnames = false)
    }
    fn ips(self) -> Self {
        self.set(|p| p.allow_ip_sans = true)
    }
    fn require_cn(self) -> Self {
        self.set(|p| p.require_common_name = true)
    }
    fn uri_sans(self, patterns: &[&str]) -> Self {
        self.set(|p| p.allowed_uri_sans = patterns.iter().map(|u| (*u).to_owned()).collect())
    }
}

impl Switches for Policy {
    fn set(mut self, f: impl FnOnce(&mut Policy)) -> Self {
        f(&mut self);
        self
    }
}

/// The usual caller: service account `web` in namespace `default`.
pub(super) fn caller() -> Identity {
    who("default", Some("web"))
}

pub(super) fn who(namespace: &str, service_account: Option<&str>) -> Identity {
    Identity {
        namespace: namespace.to_owned(),
        service_account: service_account.map(str::to_owned),
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

pub(super) fn dns(names: &[&str]) -> NameRequest {
    NameRequest {
        dns_names: strings(names),
        ..NameRequest::default()
    }
}

pub(super) fn cn(name: &str) -> NameRequest {
    NameRequest {
        common_name: Some(name.to_owned()),
        ..NameRequest::default()
    }
}

pub(super) fn ips(addrs: &[&str]) -> NameRequest {
    NameRequest {
        ip_addresses: strings(addrs),
        ..NameRequest::default()
    }
}

pub(super) fn uris(list: &[&str]) -> NameRequest {
    NameRequest {
        uris: strings(list),
        ..NameRequest::default()
    }
}

/// Expected outcome of one case; every variant is exact.
#[derive(Debug)]
pub(super) enum Want {
    /// Exactly these names are issued.
    Issued(ValidatedNames),
    /// `NameNotAllowed` for a value of this kind.
    Denied(NameKind),
    /// `InvalidName` of this kind with this problem.
    Invalid(NameKind, Problem),
    /// `NameTooLong` of this kind.
    TooLong(NameKind),
    /// `TemplateValueRefused` for this variable with this problem.
    Refused(&'static str, Problem),
    NoNames,
    CnRequired,
    TooMany,
}

/// Issued: only these DNS names.
pub(super) fn only_dns(names: &[&str]) -> Want {
    Want::Issued(ValidatedNames {
        dns_names: strings(names),
        ..ValidatedNames::default()
    })
}

/// Issued: this CN, and the DNS names given.
pub(super) fn cn_dns(common_name: &str, names: &[&str]) -> Want {
    Want::Issued(ValidatedNames {
        common_name: Some(common_name.to_owned()),
        dns_names: strings(names),
        ..ValidatedNames::default()
    })
}

pub(super) fn only_ips(addrs: &[&str]) -> Want {
    let ip_addresses = addrs
        .iter()
        .filter_map(|a| a.parse::<IpAddr>().ok())
        .collect();
    Want::Issued(ValidatedNames {
        ip_addresses,
        ..ValidatedNames::default()
    })
}

pub(super) fn only_uris(list: &[&str]) -> Want {
    Want::Issued(ValidatedNames {
        uris: strings(list),
        ..ValidatedNames::default()
    })
}

/// One row of a table.
pub(super) struct Case {
    pub name: &'static str,
    pub policy: Policy,
    pub identity: Identity,
    pub req: NameRequest,
    pub want: Want,
}

/// A row with the usual caller.
pub(super) fn case(name: &'static str, policy: Policy, req: NameRequest, want: Want) -> Case {
    Case {
        name,
        policy,
        identity: caller(),
        req,
        want,
    }
}

fn matches(want: &Want, got: &Result<ValidatedNames, PolicyError>) -> bool {
    match (want, got) {
        (Want::Issued(w), Ok(g)) => w == g,
        (Want::Denied(k), Err(PolicyError::NameNotAllowed { kind, .. })) => k == kind,
        (Want::Invalid(k, p), Err(PolicyError::InvalidName { kind, problem, .. })) => {
            k == kind && p == problem
        }
        (Want::TooLong(k), Err(PolicyError::NameTooLong { kind, .. })) => k == kind,
        (
            Want::Refused(v, p),
            Err(PolicyError::TemplateValueRefused {
                variable, problem, ..
            }),
        ) => v == variable && p == problem,
        (Want::NoNames, Err(PolicyError::NoNames { .. }))
        | (Want::CnRequired, Err(PolicyError::CommonNameRequired { .. }))
        | (Want::TooMany, Err(PolicyError::TooManyNames { .. })) => true,
        _ => false,
    }
}

/// Runs every case, then fails listing all mismatches; returns the case count.
pub(super) fn run(cases: Vec<Case>) -> usize {
    let mut failures = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for c in &cases {
        assert!(seen.insert(c.name), "duplicate case name {}", c.name);
        let got = c.policy.check(&c.identity, &c.req);
        if !matches(&c.want, &got) {
            failures.push(format!(
                "{}:\n    want {:?}\n    got  {:?}",
                c.name, c.want, got
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    cases.len()
}
