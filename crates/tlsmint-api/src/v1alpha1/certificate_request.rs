//! The `CertificateRequest` kind: a certificate kept valid in a Secret of the same namespace.
//!
//! Owns the spec and status types, their defaults and `validate()`. It must not check the
//! request against its role (the CA engine's policy does) nor touch the Secret (the operator's
//! `certificate_request` controller does).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{KeyAlgorithm, KeyEncoding, KeySpec, NameReference};
use super::defaults;
use super::validation::{ValidationError, ip_address, object_name, positive, require, uri};
use crate::{Duration, Fraction};

/// Desired state of a CertificateRequest: the role to issue through, the names, the lifetime,
/// the Secret to keep the certificate in and when to renew or revoke it.
// clippy reads the repeated keys of `printcolumn(...)` as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pki.tlsmint.io",
    version = "v1alpha1",
    kind = "CertificateRequest",
    shortname = "pkicr",
    category = "tlsmint",
    namespaced,
    status = "CertificateRequestStatus",
    derive = "PartialEq",
    doc = "A certificate kept valid in a kubernetes.io/tls Secret: the operator issues it through an IssuerRole, renews it at renewAt of its lifetime, and revokes it on request.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Role", type_ = "string", json_path = ".spec.roleRef.name"),
    printcolumn(name = "Secret", type_ = "string", json_path = ".spec.secretName"),
    // `string`, not `date`: kubectl prints a future date column as "<invalid>".
    printcolumn(name = "Expires", type_ = "string", json_path = ".status.notAfter"),
    printcolumn(
        name = "Renews",
        type_ = "string",
        priority = 1,
        json_path = ".status.renewalTime"
    ),
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
pub struct CertificateRequestSpec {
    /// The IssuerRole to issue through. Its subjects must include this object's namespace.
    pub role_ref: NameReference,

    /// Common name (CN) of the certificate, e.g. `api.example.com`. Optional unless the role
    /// sets requireCommonName.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_name: Option<String>,

    /// DNS names (subject alternative names), e.g. `api.example.com`, `*.example.com`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_names: Vec<String>,

    /// IP address SANs, IPv4 or IPv6, e.g. `10.0.0.7`. The role must set allowIPSANs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_addresses: Vec<String>,

    /// URI SANs, e.g. `spiffe://cluster.local/ns/default/sa/web`. Each must match the role's
    /// allowedURISANs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uris: Vec<String>,

    /// Requested lifetime, e.g. `24h`. Default: the role's ttl. Above the role's maxTTL it is
    /// clamped, and the Ready condition says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Duration>,

    /// Name of the `kubernetes.io/tls` Secret, in this namespace, that receives `tls.crt`
    /// (the certificate followed by its chain), `tls.key` (absent when csr is set) and
    /// `ca.crt` (the root CA).
    pub secret_name: String,

    /// The private key the operator generates when csr is not set.
    #[serde(default)]
    pub private_key: PrivateKeySpec,

    /// A PEM certificate signing request. When set the operator signs it (Vault's sign) and
    /// the Secret holds no key; names in it pass the same policy as names in this spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csr: Option<String>,

    /// Share of the lifetime after which the certificate is renewed, strictly between 0 and
    /// 1. Default: 0.5 (renew at half of the lifetime).
    #[serde(default = "defaults::renew_at")]
    pub renew_at: Fraction,

    /// `true` revokes the current certificate (it appears on the mount's CRL and OCSP) and
    /// stops renewal. It cannot be undone for that certificate. Default: false.
    #[serde(default)]
    pub revoked: bool,
}

/// The private key the operator generates for a CertificateRequest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.size) || !has(self.algorithm) || (self.algorithm == 'ECDSA' ? self.size in [256, 384] : (self.algorithm == 'RSA' ? self.size in [2048, 3072, 4096] : false))",
    "message": "size must be 256 or 384 for ECDSA, 2048, 3072 or 4096 for RSA, and unset for Ed25519",
}]))]
pub struct PrivateKeySpec {
    /// Key algorithm: `ECDSA`, `Ed25519` or `RSA`. Default: the role's key algorithm (ECDSA
    /// unless the role says otherwise). The role must allow it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<KeyAlgorithm>,

    /// Key size in bits: 256 or 384 for ECDSA; 2048, 3072 or 4096 for RSA; unset for
    /// Ed25519. Default: the role's size when the algorithms match, else 256 for ECDSA and
    /// 2048 for RSA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,

    /// PEM encoding of `tls.key`: `PKCS8` (default), `PKCS1` (RSA only) or `SEC1` (ECDSA
    /// only).
    #[serde(default)]
    pub encoding: KeyEncoding,

    /// Whether renewal makes a new key: `Always` (default) or `Never` (keep the key in the
    /// Secret as long as it matches this spec).
    #[serde(default)]
    pub rotation_policy: RotationPolicy,
}

/// Whether renewal makes a new key: `Always` (default) or `Never`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum RotationPolicy {
    /// A new key at every issuance.
    #[default]
    Always,
    /// Reuse the key in the Secret while it matches algorithm and size.
    Never,
}

/// Observed state of a CertificateRequest: the current certificate and the issuance progress.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRequestStatus {
    /// Current state. `Ready=True` means the Secret holds a valid certificate for this spec;
    /// `Issuing=True` means a (re)issuance is under way. Reasons include Issued, Denied,
    /// Pending, RoleNotFound, MountNotReady, InvalidSpec, Revoked and Failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// The metadata.generation this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Serial number of the current certificate, as colon-separated lower-case hex (Vault's
    /// form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,

    /// Start of the current certificate's validity (back-dated by the role's
    /// notBeforeDuration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<Time>,

    /// End of the current certificate's validity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<Time>,

    /// When the certificate will be renewed: notBefore plus renewAt of its lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_time: Option<Time>,

    /// The current certificate, PEM (the leaf only; the Secret also holds the chain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,

    /// Failed issuance attempts in a row; it sets the retry backoff and resets to zero on
    /// success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_count: Option<u32>,

    /// When the last issuance attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_time: Option<Time>,

    /// When the certificate in serialNumber was revoked (after spec.revoked was set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_time: Option<Time>,
}

impl PrivateKeySpec {
    /// The key to generate, filling unset fields from the role's key: the role's algorithm,
    /// and its size when the algorithms match, else the algorithm's default size.
    pub fn resolve(&self, role_key: &KeySpec) -> KeySpec {
        let algorithm = self.algorithm.unwrap_or(role_key.algorithm);
        let size = match self.size {
            Some(size) => Some(size),
            None if algorithm == role_key.algorithm => role_key.effective_size(),
            None => algorithm.default_size(),
        };
        KeySpec { algorithm, size }
    }

    /// Checks the size and encoding against the algorithm, when the algorithm is given
    /// (otherwise the operator checks them once the role's algorithm is known).
    pub fn validate(&self) -> Result<(), ValidationError> {
        let Some(algorithm) = self.algorithm else {
            return Ok(());
        };
        KeySpec {
            algorithm,
            size: self.size,
        }
        .validate("spec.privateKey")?;
        self.encoding
            .validate("spec.privateKey.encoding", algorithm)
    }
}

/// PEM labels a `spec.csr` may start with.
const CSR_LABELS: [&str; 2] = [
    "-----BEGIN CERTIFICATE REQUEST-----",
    "-----BEGIN NEW CERTIFICATE REQUEST-----",
];

impl CertificateRequestSpec {
    /// A request through `role` for a Secret named `secret_name`, every other field at its
    /// default (names must still be added).
    pub fn new(role: impl Into<String>, secret_name: impl Into<String>) -> Self {
        CertificateRequestSpec {
            role_ref: NameReference::new(role),
            common_name: None,
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
            uris: Vec::new(),
            ttl: None,
            secret_name: secret_name.into(),
            private_key: PrivateKeySpec::default(),
            csr: None,
            renew_at: defaults::RENEW_AT,
            revoked: false,
        }
    }

    /// Checks everything that can be checked without the role.
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.role_ref.validate("spec.roleRef")?;
        object_name("spec.secretName", &self.secret_name)?;
        if let Some(cn) = &self.common_name {
            require("spec.commonName", cn)?;
        }
        for (i, name) in self.dns_names.iter().enumerate() {
            let field = format!("spec.dnsNames[{i}]");
            require(&field, name)?;
            if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(ValidationError::invalid(
                    field,
                    name,
                    "must not contain spaces",
                ));
            }
        }
        for (i, ip) in self.ip_addresses.iter().enumerate() {
            ip_address(&format!("spec.ipAddresses[{i}]"), ip)?;
        }
        for (i, value) in self.uris.iter().enumerate() {
            uri(&format!("spec.uris[{i}]"), value)?;
        }
        if let Some(ttl) = self.ttl {
            positive("spec.ttl", ttl)?;
        }
        self.private_key.validate()?;
        match &self.csr {
            Some(csr) => {
                if !CSR_LABELS
                    .iter()
                    .any(|label| csr.trim_start().starts_with(label))
                {
                    return Err(ValidationError::Invalid {
                        field: "spec.csr".into(),
                        value: first_line(csr),
                        reason:
                            "is not a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----)"
                                .into(),
                    });
                }
            }
            None => {
                let has_name = self.common_name.is_some()
                    || !self.dns_names.is_empty()
                    || !self.ip_addresses.is_empty()
                    || !self.uris.is_empty();
                if !has_name {
                    return Err(ValidationError::Required {
                        field: "one of spec.commonName, spec.dnsNames, spec.ipAddresses, spec.uris"
                            .into(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// The first line of `text`, cut to 64 characters, for error messages.
fn first_line(text: &str) -> String {
    text.trim_start()
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(64)
        .collect()
}

#[cfg(test)]
#[path = "certificate_request_tests.rs"]
mod tests;
