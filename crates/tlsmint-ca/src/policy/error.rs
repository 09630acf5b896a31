//! Errors of the name policy: one `PolicyError` variant per kind of failure, the
//! `Problem` that says what exactly is malformed, and `clip`, which makes any
//! caller-supplied value safe to echo (escaped, at most `MAX_ECHO_CHARS` characters).
//!
//! Owns: wording of every policy message. Must not: hold an unbounded copy of a
//! request value, or print control characters from one.

use std::fmt;

/// Longest part of a caller-supplied value that an error message repeats.
pub const MAX_ECHO_CHARS: usize = 256;

/// Which field of the request a value came from, as named in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// The subject common name (also used for an email address given as CN).
    CommonName,
    /// A DNS subject alternative name.
    DnsName,
    /// An IP address subject alternative name.
    IpAddress,
    /// A URI subject alternative name.
    Uri,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::CommonName => "common name",
            NameKind::DnsName => "dns name",
            NameKind::IpAddress => "ip address",
            NameKind::Uri => "uri",
        })
    }
}

/// The IssuerRole list a role-validation error is about (CRD field names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleField {
    /// `allowedDomains`.
    AllowedDomains,
    /// `allowedURISANs`.
    AllowedUriSans,
}

impl fmt::Display for RoleField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RoleField::AllowedDomains => "allowedDomains",
            RoleField::AllowedUriSans => "allowedURISANs",
        })
    }
}

/// What is wrong with a value, independent of the role's allow-lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    // --- any name ---
    #[error("it is empty")]
    Empty,
    #[error("it contains whitespace or a control character")]
    ControlOrWhitespace,
    // --- DNS names ---
    #[error("it contains '@': only the common name may be an email address")]
    EmailInDnsName,
    #[error("it is not a valid internationalized domain name (IDNA rejects it)")]
    Idna,
    #[error("it has an empty label")]
    EmptyLabel,
    #[error("it has a label longer than 63 characters")]
    LabelTooLong,
    #[error("it contains a character that is not allowed in a host name (only a-z, 0-9, '-')")]
    BadHostnameChar,
    #[error("it contains '_', which is only allowed when enforceHostnames is false")]
    Underscore,
    #[error(
        "a label starts or ends with '-', which is only allowed when enforceHostnames is false"
    )]
    HyphenAtLabelEdge,
    #[error("it looks like an IP address (its last label is numeric): use the IP address field")]
    NumericTld,
    // --- wildcards ---
    #[error("it has more than one '*'")]
    MultipleWildcards,
    #[error("'*' is only allowed as the whole left-most label")]
    WildcardNotLeftmost,
    #[error(
        "'*' must be the whole left-most label (partial wildcards like 'a*.example.com' are not issued)"
    )]
    PartialWildcard,
    #[error("a wildcard needs at least two labels after it (like '*.example.com')")]
    WildcardTooBroad,
    // --- common name ---
    #[error(
        "it is longer than 64 characters, the X.509 limit for a common name: put it in the DNS names instead"
    )]
    CommonNameTooLong,
    #[error(
        "it contains one of , + = ; < > \" \\ # which are not allowed in a free-text common name"
    )]
    DnSpecialChar,
    // --- email ---
    #[error("an email address must contain exactly one '@'")]
    EmailShape,
    #[error(
        "the part before '@' is empty, longer than 64 characters or has characters that are not allowed"
    )]
    EmailLocalPart,
    #[error("an email address cannot have a wildcard domain")]
    WildcardEmail,
    // --- IP addresses ---
    #[error("it is not an IP address (IPv4 must be four decimal octets without leading zeros)")]
    NotAnIp,
    #[error("IPv6 zone identifiers ('%eth0') are not allowed")]
    IpZone,
    #[error("a network ('/prefix') is not an address")]
    IpNetwork,
    #[error("IPv4-mapped IPv6 addresses are not allowed: give the IPv4 address")]
    IpV4Mapped,
    #[error("the unspecified address cannot be certified")]
    IpUnspecified,
    // --- URIs ---
    #[error(
        "it contains a character that must be percent-encoded (space, control, non-ASCII, or one of \" < > \\ ^ ` {{ | }})"
    )]
    UriBadChar,
    #[error("it is not an absolute URI (it needs a scheme such as 'spiffe:')")]
    UriNoScheme,
    #[error("fragments ('#') are not allowed in URI SANs")]
    UriFragment,
    #[error("'%' must be followed by two hex digits")]
    UriBadPercent,
    #[error("dot segments ('.' or '..') are not allowed in the path")]
    UriDotSegment,
    #[error("user information ('user@') is not allowed in URI SANs")]
    UriUserinfo,
    #[error("'*' is not allowed in a requested URI")]
    UriWildcard,
    #[error(
        "it is not a valid SPIFFE ID (spiffe://<lowercase trust domain>/<path>; no port, query, fragment, percent-encoding, empty or dot segments)"
    )]
    SpiffeId,
    #[error("a SPIFFE ID must be the only URI SAN of a certificate")]
    SpiffeNotAlone,
    // --- role entries (validate) ---
    #[error(
        "it is not a valid template: use {{{{namespace}}}} or {{{{serviceAccount}}}}, with balanced braces"
    )]
    BadTemplate,
    #[error("it contains '*' but allowGlobDomains is false, so it matches nothing")]
    GlobNotEnabled,
    #[error("it matches every name: use allowAnyName instead")]
    GlobTooBroad,
    #[error("a URI pattern must start with a literal scheme such as 'spiffe://'")]
    UriPatternScheme,
    // --- template values (identity) ---
    #[error("it contains uppercase letters")]
    ValueUppercase,
    #[error("it contains characters other than a-z, 0-9 and '-'")]
    ValueBadChar,
    #[error("it is longer than 63 characters")]
    ValueTooLong,
    #[error("it starts or ends with '-'")]
    ValueHyphenEdge,
}

/// Broad class of a failure, for mapping to gRPC/HTTP status codes and metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The request is malformed or too big (gRPC `InvalidArgument`).
    InvalidRequest,
    /// The request is well formed but the role does not allow it (`PermissionDenied`).
    Denied,
    /// The role itself is broken (`FailedPrecondition`; the IssuerRole is not Ready).
    RoleInvalid,
}

/// Every way a role check or a role validation can fail.
///
/// Values taken from the request or from the identity are stored already clipped
/// (escaped, truncated with `…`), so messages stay bounded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error(
        "request to role \"{role}\" names nothing to issue: give a common name, DNS names, IP addresses or URIs"
    )]
    NoNames { role: String },

    #[error("role \"{role}\" requires a common name (requireCommonName is true)")]
    CommonNameRequired { role: String },

    #[error("request to role \"{role}\" has {count} names; at most {max} are accepted")]
    TooManyNames {
        role: String,
        count: usize,
        max: usize,
    },

    #[error("{kind} \"{value}\" is too long for role \"{role}\": at most {max} bytes")]
    NameTooLong {
        role: String,
        kind: NameKind,
        value: String,
        max: usize,
    },

    #[error("{kind} \"{value}\" is invalid for role \"{role}\": {problem}")]
    InvalidName {
        role: String,
        kind: NameKind,
        value: String,
        problem: Problem,
    },

    #[error("{kind} \"{value}\" is not allowed by role \"{role}\": {rules}")]
    NameNotAllowed {
        role: String,
        kind: NameKind,
        value: String,
        rules: String,
    },

    #[error(
        "role \"{role}\" cannot use the caller's {variable} \"{value}\" in a template: {problem}"
    )]
    TemplateValueRefused {
        role: String,
        variable: &'static str,
        value: String,
        problem: Problem,
    },

    #[error("role \"{role}\": {field} entry \"{entry}\" is invalid: {problem}")]
    InvalidRoleEntry {
        role: String,
        field: RoleField,
        entry: String,
        problem: Problem,
    },
}

impl PolicyError {
    /// The broad class of this error (status code mapping).
    pub fn class(&self) -> ErrorClass {
        match self {
            PolicyError::NoNames { .. }
            | PolicyError::CommonNameRequired { .. }
            | PolicyError::TooManyNames { .. }
            | PolicyError::NameTooLong { .. }
            | PolicyError::InvalidName { .. } => ErrorClass::InvalidRequest,
            PolicyError::NameNotAllowed { .. } | PolicyError::TemplateValueRefused { .. } => {
                ErrorClass::Denied
            }
            PolicyError::InvalidRoleEntry { .. } => ErrorClass::RoleInvalid,
        }
    }

    /// A short, bounded label for metrics (never built from request data).
    pub fn label(&self) -> &'static str {
        match self {
            PolicyError::NoNames { .. } => "no_names",
            PolicyError::CommonNameRequired { .. } => "common_name_required",
            PolicyError::TooManyNames { .. } => "too_many_names",
            PolicyError::NameTooLong { .. } => "name_too_long",
            PolicyError::InvalidName { .. } => "invalid_name",
            PolicyError::NameNotAllowed { .. } => "name_not_allowed",
            PolicyError::TemplateValueRefused { .. } => "template_value_refused",
            PolicyError::InvalidRoleEntry { .. } => "invalid_role_entry",
        }
    }
}

/// Makes `value` safe to put in a message: control characters, quotes and
/// backslashes escaped, at most [`MAX_ECHO_CHARS`] characters, then `…`.
pub fn clip(value: &str) -> String {
    let mut out = String::with_capacity(value.len().min(MAX_ECHO_CHARS) + 3);
    for (shown, c) in value.chars().enumerate() {
        if shown >= MAX_ECHO_CHARS {
            out.push('…');
            break;
        }
        out.extend(c.escape_debug());
    }
    out
}
