//! The `IssuerRole` kind: issuance policy, like a Vault PKI role.
//!
//! Owns the spec and status types, their defaults, `validate()` and the check of who may use
//! a role. It must not decide whether a name is allowed: the CA engine's policy does that after
//! the operator turns an IssuerRole into a `tlsmint_ca::Policy`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{DistinguishedName, KeySpec, NameReference};
use super::defaults;
use super::validation::{ValidationError, positive, require};
use crate::Duration;

/// Desired state of an IssuerRole: the mount that signs, who may ask, which names and
/// lifetimes are allowed (with Vault's role semantics) and what the certificates look like.
// clippy reads the repeated keys of `printcolumn(...)` as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pki.tlsmint.io",
    version = "v1alpha1",
    kind = "IssuerRole",
    shortname = "pkirole",
    category = "tlsmint",
    status = "IssuerRoleStatus",
    derive = "PartialEq",
    doc = "Issuance policy, like a Vault PKI role: which PkiMount signs, who may ask, which names and lifetimes are allowed and what the certificates look like.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Mount", type_ = "string", json_path = ".spec.mountRef.name"),
    printcolumn(name = "TTL", type_ = "string", json_path = ".spec.ttl"),
    printcolumn(name = "MaxTTL", type_ = "string", json_path = ".spec.maxTTL"),
    printcolumn(
        name = "Reason",
        type_ = "string",
        priority = 1,
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct IssuerRoleSpec {
    /// The PkiMount that signs certificates issued through this role. The role is served
    /// only under that mount's path in the Vault-compatible API.
    pub mount_ref: NameReference,

    /// Who may use the role: a list of {namespace, serviceAccount}, either of which may be
    /// `*`. Empty (the default) means nobody. CertificateRequests are checked by their
    /// namespace; API, CSI and agent requests by the namespace and service account of a
    /// verified token.
    #[serde(default)]
    pub subjects: Vec<RoleSubject>,

    /// Base domains for the common name and DNS SANs (Vault's allowed_domains), e.g.
    /// `example.com`. What they allow depends on allowBareDomains, allowSubdomains and
    /// allowGlobDomains. May contain `{{namespace}}` and `{{serviceAccount}}`, replaced by the
    /// caller's, e.g. `{{namespace}}.svc.cluster.local`.
    #[serde(default)]
    pub allowed_domains: Vec<String>,

    /// Allow a name equal to an allowed domain itself (`example.com`). Default: false.
    #[serde(default)]
    pub allow_bare_domains: bool,

    /// Allow names below an allowed domain (`api.example.com`, `a.b.example.com`), including
    /// wildcards when allowWildcardCertificates is set. Default: false.
    #[serde(default)]
    pub allow_subdomains: bool,

    /// Treat allowed domains as shell-style globs (`*` may span labels, e.g.
    /// `web-*.example.com`). Default: false.
    #[serde(default)]
    pub allow_glob_domains: bool,

    /// Allow wildcard names (`*.example.com`) when the rest of the policy allows the name.
    /// Default: false (Vault's default is true).
    #[serde(default = "defaults::allow_wildcard_certificates")]
    pub allow_wildcard_certificates: bool,

    /// Allow `localhost` and `localdomain` names regardless of allowedDomains. Default: false
    /// (Vault's default is true; tlsmint denies by default).
    #[serde(default = "defaults::allow_localhost")]
    pub allow_localhost: bool,

    /// Allow any name (still subject to enforceHostnames and the wildcard rule). Default:
    /// false.
    #[serde(default)]
    pub allow_any_name: bool,

    /// Require the common name and DNS SANs to be valid hostnames. Default: true.
    #[serde(default = "defaults::enforce_hostnames")]
    pub enforce_hostnames: bool,

    /// Allow IP address SANs (there is no ownership check). Default: false (Vault's default is
    /// true; tlsmint denies by default).
    #[serde(rename = "allowIPSANs", default = "defaults::allow_ip_sans")]
    pub allow_ip_sans: bool,

    /// Allowed URI SANs as globs (Vault's allowed_uri_sans), with the same templates as
    /// allowedDomains, e.g. `spiffe://cluster.local/ns/{{namespace}}/sa/{{serviceAccount}}`.
    /// Empty (the default) allows none.
    #[serde(rename = "allowedURISANs", default)]
    pub allowed_uri_sans: Vec<String>,

    /// Require a common name in every request (Vault's require_cn). Default: false (Vault's
    /// default is true): modern TLS clients check SANs only.
    #[serde(default = "defaults::require_common_name")]
    pub require_common_name: bool,

    /// Add the serverAuth extended key usage (TLS server certificates). Default: true.
    #[serde(default = "defaults::server_flag")]
    pub server_flag: bool,

    /// Add the clientAuth extended key usage (TLS client certificates). Default: true.
    #[serde(default = "defaults::client_flag")]
    pub client_flag: bool,

    /// Key usages of issued certificates. Empty (the default) means the usages that fit the
    /// key type: DigitalSignature, plus KeyEncipherment for RSA keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_usages: Vec<KeyUsage>,

    /// Extended key usages added to those of serverFlag and clientFlag.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ext_key_usages: Vec<ExtKeyUsage>,

    /// Subject fields (organization, country, ...) added to every certificate issued
    /// through this role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<DistinguishedName>,

    /// Algorithm and size of keys the server generates for this role (Vault's key_type and
    /// key_bits). A CSR signed through this role must use the same algorithm, and for ECDSA
    /// and RSA a key at least this large. Default: ECDSA P-256.
    #[serde(default)]
    pub key: KeySpec,

    /// Lifetime of a certificate when the request names none. Default: 1h.
    #[serde(default = "defaults::role_ttl")]
    pub ttl: Duration,

    /// Longest lifetime a request may get; a longer requested TTL is clamped to it and the
    /// response says so. Default: 24h.
    #[serde(rename = "maxTTL", default = "defaults::role_max_ttl")]
    pub max_ttl: Duration,

    /// How far notBefore is set back in time, to tolerate clock skew. Default: 30s.
    #[serde(default = "defaults::not_before_duration")]
    pub not_before_duration: Duration,
}

/// Who may use a role: a namespace and a service account, either of which may be `*`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleSubject {
    /// Namespace of the caller, or `*` for any namespace.
    pub namespace: String,
    /// Name of the caller's service account, or `*` for any. CertificateRequests have no
    /// service account: they match a subject by namespace alone.
    pub service_account: String,
}

impl RoleSubject {
    /// The wildcard that matches any namespace or service account.
    pub const ANY: &'static str = "*";

    /// A subject for `namespace` and `service_account` (either may be `*`).
    pub fn new(namespace: impl Into<String>, service_account: impl Into<String>) -> Self {
        RoleSubject {
            namespace: namespace.into(),
            service_account: service_account.into(),
        }
    }

    /// Whether a caller in `namespace` running as `service_account` matches.
    pub fn matches(&self, namespace: &str, service_account: &str) -> bool {
        self.matches_namespace(namespace)
            && (self.service_account == Self::ANY || self.service_account == service_account)
    }

    /// Whether `namespace` matches, whatever the service account.
    pub fn matches_namespace(&self, namespace: &str) -> bool {
        self.namespace == Self::ANY || self.namespace == namespace
    }
}

/// A key usage bit of a leaf certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum KeyUsage {
    /// digitalSignature.
    DigitalSignature,
    /// contentCommitment (formerly nonRepudiation).
    ContentCommitment,
    /// keyEncipherment (RSA key transport).
    KeyEncipherment,
    /// dataEncipherment.
    DataEncipherment,
    /// keyAgreement (ECDH).
    KeyAgreement,
}

/// An extended key usage of a leaf certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ExtKeyUsage {
    /// TLS server authentication (also set by serverFlag).
    ServerAuth,
    /// TLS client authentication (also set by clientFlag).
    ClientAuth,
    /// Code signing.
    CodeSigning,
    /// E-mail protection (S/MIME).
    EmailProtection,
    /// Time stamping.
    TimeStamping,
    /// OCSP response signing.
    #[serde(rename = "OCSPSigning")]
    OcspSigning,
}

/// Observed state of an IssuerRole.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuerRoleStatus {
    /// Current state. `Ready=True` means the spec is valid and its mount is Ready; otherwise
    /// the reason says why not (e.g. InvalidSpec, MountNotFound, MountNotReady).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// The metadata.generation this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The templates allowedDomains and allowedURISANs may contain.
pub const ROLE_TEMPLATES: [&str; 2] = ["{{namespace}}", "{{serviceAccount}}"];

impl IssuerRoleSpec {
    /// A role on `mount` with every other field at its default (so it allows nothing).
    pub fn new(mount: impl Into<String>) -> Self {
        IssuerRoleSpec {
            mount_ref: NameReference::new(mount),
            subjects: Vec::new(),
            allowed_domains: Vec::new(),
            allow_bare_domains: false,
            allow_subdomains: false,
            allow_glob_domains: false,
            allow_wildcard_certificates: defaults::ALLOW_WILDCARD_CERTIFICATES,
            allow_localhost: defaults::ALLOW_LOCALHOST,
            allow_any_name: false,
            enforce_hostnames: defaults::ENFORCE_HOSTNAMES,
            allow_ip_sans: defaults::ALLOW_IP_SANS,
            allowed_uri_sans: Vec::new(),
            require_common_name: defaults::REQUIRE_COMMON_NAME,
            server_flag: defaults::SERVER_FLAG,
            client_flag: defaults::CLIENT_FLAG,
            key_usages: Vec::new(),
            ext_key_usages: Vec::new(),
            subject: None,
            key: defaults::KEY,
            ttl: defaults::ROLE_TTL,
            max_ttl: defaults::ROLE_MAX_TTL,
            not_before_duration: defaults::NOT_BEFORE_DURATION,
        }
    }

    /// Whether a caller in `namespace` running as `service_account` may use the role.
    pub fn allows_subject(&self, namespace: &str, service_account: &str) -> bool {
        self.subjects
            .iter()
            .any(|s| s.matches(namespace, service_account))
    }

    /// Whether a CertificateRequest in `namespace` may use the role.
    pub fn allows_namespace(&self, namespace: &str) -> bool {
        self.subjects.iter().any(|s| s.matches_namespace(namespace))
    }

    /// Checks everything that can be checked without other objects.
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.mount_ref.validate("spec.mountRef")?;
        for (i, subject) in self.subjects.iter().enumerate() {
            validate_subject(i, subject)?;
        }
        for (i, domain) in self.allowed_domains.iter().enumerate() {
            validate_pattern(&format!("spec.allowedDomains[{i}]"), domain)?;
        }
        for (i, uri) in self.allowed_uri_sans.iter().enumerate() {
            validate_pattern(&format!("spec.allowedURISANs[{i}]"), uri)?;
        }
        if let Some(subject) = &self.subject {
            subject.validate("spec.subject")?;
        }
        self.key.validate("spec.key")?;
        positive("spec.ttl", self.ttl)?;
        positive("spec.maxTTL", self.max_ttl)?;
        if self.ttl > self.max_ttl {
            return Err(ValidationError::AboveMaximum {
                field: "spec.ttl".into(),
                value: self.ttl,
                max_field: "spec.maxTTL".into(),
                max: self.max_ttl,
            });
        }
        Ok(())
    }
}

fn validate_subject(i: usize, subject: &RoleSubject) -> Result<(), ValidationError> {
    let field = format!("spec.subjects[{i}].namespace");
    require(&field, &subject.namespace)?;
    let label_ok = |s: &str| {
        s.len() <= 63
            && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && s.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    if subject.namespace != RoleSubject::ANY && !label_ok(&subject.namespace) {
        return Err(ValidationError::invalid(
            field,
            &subject.namespace,
            "is not a namespace name or *",
        ));
    }
    let field = format!("spec.subjects[{i}].serviceAccount");
    require(&field, &subject.service_account)?;
    if subject.service_account != RoleSubject::ANY {
        super::validation::object_name(&field, &subject.service_account).map_err(|_| {
            ValidationError::invalid(
                field.clone(),
                &subject.service_account,
                "is not a service account name or *",
            )
        })?;
    }
    Ok(())
}

/// Checks an allowedDomains / allowedURISANs entry: not empty, no spaces, and only the known
/// `{{...}}` templates.
fn validate_pattern(field: &str, value: &str) -> Result<(), ValidationError> {
    require(field, value)?;
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ValidationError::invalid(
            field,
            value,
            "must not contain spaces",
        ));
    }
    let mut rest = value;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start..];
        let Some(template) = ROLE_TEMPLATES.iter().find(|t| after.starts_with(**t)) else {
            return Err(ValidationError::invalid(
                field,
                value,
                "has an unknown template (use {{namespace}} or {{serviceAccount}})",
            ));
        };
        rest = &after[template.len()..];
    }
    if rest.contains("}}") || value.matches("}}").count() != value.matches("{{").count() {
        return Err(ValidationError::invalid(
            field,
            value,
            "has an unbalanced template (use {{namespace}} or {{serviceAccount}})",
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "issuer_role_tests.rs"]
mod tests;
