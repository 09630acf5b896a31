//! Name policy: decides which names a certificate issued under an IssuerRole may
//! carry, with the meaning of Vault's PKI role fields. Pure functions: no I/O, no
//! Kubernetes types (the operator turns an `IssuerRole` into a [`Policy`] and a
//! verified token into an [`Identity`]). The same [`Policy::check`] applies to
//! names given as API parameters and to names taken from a CSR.
//!
//! Owns: name syntax, normalisation, the allow rules and their error messages.
//! Must not: read identity from the request, or issue anything the checked
//! [`ValidatedNames`] does not contain.
//!
//! # Semantics
//!
//! **Default deny.** Nothing is allowed unless a rule allows it: a role with no
//! `allowed_domains`, no `allowed_uri_sans` and every switch off issues nothing.
//! A request with no names is refused ([`PolicyError::NoNames`]); so is a
//! missing common name when `require_common_name` is set. An empty-string CN
//! counts as no CN. At most [`MAX_NAMES`] names per request (CN included).
//!
//! **Normalise once.** DNS names (and the domain of an email CN) are converted
//! with IDNA UTS #46 (non-transitional) to lowercase A-labels, and one trailing
//! dot is removed: `Bücher.Example.COM.` becomes `xn--bcher-kva.example.com`.
//! What IDNA rejects is refused. The normal form is what is matched *and* what
//! is returned for issuance. `allowed_domains` entries are normalised the same
//! way, so matching is case-insensitive (Vault #20562). Output lists keep the
//! request order without duplicates; a host-name CN comes first in `dns_names`
//! (Vault puts the CN in the DNS SANs too).
//!
//! **DNS name syntax**, always: no whitespace, control characters or `@`; labels
//! of 1..=63 characters; at most 253 characters; the last label not all digits
//! (`1.2.3.4` in a DNS field is refused: use the IP field). With
//! `enforce_hostnames` labels are RFC 1123 (`a-z 0-9 -`, no `-` at either end);
//! without it `_` and edge hyphens are accepted too. (Vault with
//! `enforce_hostnames=false` checks nothing and silently drops non-host-name
//! `alt_names` from the certificate; we refuse them instead.)
//!
//! **Allowed domains** (Vault `validateNames`; the switches add up):
//! - `allow_any_name`: any name that passes the syntax and wildcard rules.
//! - `allow_localhost`: `localhost` and `localdomain` (as Vault), and with
//!   `allow_subdomains` names below them.
//! - `allow_bare_domains`: the entry itself (exact, after normalisation).
//! - `allow_subdomains`: names strictly below the entry at a label boundary, any
//!   depth (`a.com` allows `x.y.a.com`, not `a.com` nor `evila.com`).
//! - `allow_glob_domains`: entries containing `*` are globs over the whole name;
//!   `*` matches any run of characters *including dots* (Vault's glob), so
//!   `*.a.com` allows `x.y.a.com` but not `a.com`. Globs do not combine with
//!   subdomains (`x*x.foo` does not allow `*.xyx.foo` through the subdomain
//!   rule). An entry with `*` and globs off only matches itself literally.
//!
//! **Wildcard certificates.** A name with `*` is a wildcard request. It is
//! refused unless `allow_wildcard_certificates` (this wins over
//! `allow_any_name`, as in Vault). Its shape must be `*.` followed by at least two
//! labels: `*.*.a.com`, `x.*.a.com`, `*` and `*.com` are refused. *Difference from
//! Vault:* Vault follows RFC 6125 and also issues partial-label wildcards
//! (`a*.a.com`, `*x.a.com`); we follow RFC 9525, which obsoletes it, and the
//! CA/Browser Forum rules, and refuse them (rustls/webpki would not match them
//! anyway). Without a public-suffix list, "at least two labels" is the only
//! public-suffix guard (`*.co.uk` passes the shape rule and still needs a rule
//! that allows it). An allowed wildcard must still fall under a rule: with
//! `allow_subdomains` `*.a.com` and `*.x.a.com` are under `a.com`; with globs the
//! glob is matched against the name including its `*` (so `*.a.com` allows
//! `*.x.a.com`); with `allow_bare_domains` an entry `*.a.com` allows exactly
//! `*.a.com`.
//!
//! **Common name.** A CN containing `@` is an email address: exactly one `@`, an
//! RFC 5322 dot-atom local part (kept as given), a domain checked like a DNS
//! name (never a wildcard); it is returned in `email_addresses`, never in
//! `dns_names` (Vault puts it in the email SANs). A CN that `std` parses as an
//! IP address is treated as one: it needs `allow_ip_sans` and is added to
//! `ip_addresses`. *Difference from Vault*, which would treat `10.0.0.1` as a host
//! name and put it in the DNS SANs. Any other CN must be a DNS name. A CN longer
//! than 64 characters (RFC 5280 `ub-common-name`) is refused. Only with
//! `allow_any_name` and `enforce_hostnames=false` may a CN be free text (such as
//! `John Doe`, as Vault allows): printable, no DN special characters, no `*`,
//! and kept in the subject only, never in a SAN.
//!
//! **IP addresses** are allowed only with `allow_ip_sans` (for SANs and CNs
//! alike, whatever their source). Parsing is `std::net`'s strict form: `01.2.3.4`,
//! `1.2.3`, zones (`fe80::1%eth0`), brackets and prefixes are refused; so are
//! IPv4-mapped IPv6 and the unspecified addresses (our addition).
//!
//! **URIs** must be absolute RFC 3986 URIs of printable ASCII (anything else must
//! be percent-encoded), without fragment, userinfo, dot segments or `*`; a
//! `spiffe:` URI must be a valid SPIFFE ID and the only URI of the request. Each
//! must match an `allowed_uri_sans` glob (`*` matches anything, `/` included, as
//! in Vault: `spiffe://td/ns/a/sa/*` allows `spiffe://td/ns/a/sa/x/y`).
//! Comparison is case-sensitive except the scheme, which is lowercased in
//! requests and patterns. A pattern without a literal scheme matches nothing.
//!
//! **Templates.** `{{namespace}}` and `{{serviceAccount}}` in `allowed_domains`
//! and `allowed_uri_sans` are filled from the verified [`Identity`], never from
//! the request. A value used by any entry of the role must be one RFC 1123 label
//! (`a-z 0-9 -`, 1..=63, no edge `-`); anything else (`*`, `.`, `/`, `,`, braces,
//! uppercase, empty, ...) refuses the whole request with
//! [`PolicyError::TemplateValueRefused`] rather than being escaped. An entry that
//! needs `{{serviceAccount}}` does not apply to a caller without one (a
//! CertificateRequest object, checked by namespace only). Unknown variables or
//! unbalanced braces are reported by [`Policy::validate`]; [`Policy::check`]
//! never relies on it and treats such entries as matching nothing. Templates are
//! always active: Vault needs `allowed_domains_template` /
//! `allowed_uri_sans_template` switches, but braces can never be part of a valid
//! name or URI, so there is nothing to switch off. There is no equivalent of
//! OpenBao's `allow_globs_in_identity_templates`: a value can never bring a `*`.
//!
//! **Email globs.** Vault matches a glob entry against the whole email address;
//! we match it against the domain part only, like the bare and subdomain rules.
//!
//! **Order and limits.** Names are checked CN first, then DNS names, IPs and
//! URIs in request order; the first failure is returned and nothing is issued.
//! [`MAX_NAMES`] counts the raw entries, before dedupe. DNS names are limited to
//! [`MAX_DNS_NAME`] bytes after normalisation (raw input over 1024 bytes is
//! refused before any work), IP text to 45 bytes, URIs to [`MAX_URI_BYTES`].
//!
//! **Messages** name the role, the field, and the offending value (escaped, at
//! most 256 characters, then `…`), and say what the role allows.

mod check;
mod error;
mod glob;
mod hostname;
mod ip;
mod template;
mod uri;
mod validate;

#[cfg(test)]
mod tests;

use std::net::IpAddr;

pub use error::{ErrorClass, MAX_ECHO_CHARS, NameKind, PolicyError, Problem, RoleField};
pub use hostname::{MAX_COMMON_NAME, MAX_DNS_NAME};
pub use template::{NAMESPACE as NAMESPACE_TEMPLATE, SERVICE_ACCOUNT as SERVICE_ACCOUNT_TEMPLATE};
pub use uri::MAX_URI_BYTES;

/// Most names (CN + DNS + IP + URI) one request may carry.
pub const MAX_NAMES: usize = 100;

/// The name policy of one IssuerRole (Vault role fields, camelCase in the CRD).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Role name, used in messages.
    pub role: String,
    /// Base domains; may contain `{{namespace}}` and `{{serviceAccount}}`.
    pub allowed_domains: Vec<String>,
    pub allow_bare_domains: bool,
    pub allow_subdomains: bool,
    pub allow_glob_domains: bool,
    pub allow_wildcard_certificates: bool,
    pub allow_localhost: bool,
    pub allow_any_name: bool,
    pub enforce_hostnames: bool,
    pub allow_ip_sans: bool,
    /// URI globs; may contain the same templates.
    pub allowed_uri_sans: Vec<String>,
    pub require_common_name: bool,
}

impl Default for Policy {
    /// The CRD defaults: allows nothing, `enforce_hostnames` on.
    fn default() -> Self {
        Policy {
            role: String::new(),
            allowed_domains: Vec::new(),
            allow_bare_domains: false,
            allow_subdomains: false,
            allow_glob_domains: false,
            allow_wildcard_certificates: false,
            allow_localhost: false,
            allow_any_name: false,
            enforce_hostnames: true,
            allow_ip_sans: false,
            allowed_uri_sans: Vec::new(),
            require_common_name: false,
        }
    }
}

/// The verified caller (from a TokenReview or the CertificateRequest's namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub namespace: String,
    /// `None` for CertificateRequest objects, which are checked by namespace only.
    pub service_account: Option<String>,
}

/// The names asked for, raw, from API parameters or extracted from a CSR.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameRequest {
    pub common_name: Option<String>,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<String>,
    pub uris: Vec<String>,
}

/// Exactly what will be issued: normalised, deduplicated, in a stable order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidatedNames {
    /// Subject CN (normalised host name, email address, IP text or free text).
    pub common_name: Option<String>,
    /// DNS SANs; a host-name CN first.
    pub dns_names: Vec<String>,
    /// IP SANs; an IP CN first.
    pub ip_addresses: Vec<IpAddr>,
    /// URI SANs (scheme lowercased).
    pub uris: Vec<String>,
    /// Email SANs: only an email-address CN, as Vault does.
    pub email_addresses: Vec<String>,
}

impl Policy {
    /// Static check of the role itself: template syntax and the shape of every
    /// `allowed_domains` and `allowed_uri_sans` entry.
    pub fn validate(&self) -> Result<(), PolicyError> {
        validate::validate(self)
    }

    /// Checks one request from `identity`, returning the names to issue.
    pub fn check(
        &self,
        identity: &Identity,
        req: &NameRequest,
    ) -> Result<ValidatedNames, PolicyError> {
        check::check(self, identity, req)
    }
}
