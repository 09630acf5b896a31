//! The operator's edge between Kubernetes types and the CA engine: an
//! `IssuerRole` spec becomes a [`tlsmint_ca::Role`] (name policy plus leaf
//! profile), a `PkiMount` spec becomes a [`CaConfig`] and [`MountOptions`].
//!
//! Owns: field-by-field mapping and the errors for values the engine cannot
//! take. Must not: do I/O, generate keys, or decide who may use a role (that
//! is `IssuerRoleSpec::allows_subject`, applied through `registry::RoleEntry`).

use std::time::Duration;

use tlsmint_api::v1alpha1::{
    self as api, DistinguishedName, ExtKeyUsage, IssuerRoleSpec, KeyUsage, PkiMountSpec,
};
use tlsmint_ca::{
    CaConfig, CsrKeyRule, LeafNotAfterBehavior, LeafProfile, Lifetimes, MountOptions, Policy, Role,
    Subject, Urls,
};

/// A spec the engine cannot use. Each variant names the field.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// `spec.validate()` refused the object.
    #[error("{kind} {name}: {source}")]
    InvalidSpec {
        /// `IssuerRole` or `PkiMount`.
        kind: &'static str,
        /// Object name.
        name: String,
        /// What the API crate's validation said.
        source: Box<api::ValidationError>,
    },
    /// The key algorithm and size do not name a key the engine supports.
    #[error("{kind} {name}: {field}: {source}")]
    Key {
        /// `IssuerRole` or `PkiMount`.
        kind: &'static str,
        /// Object name.
        name: String,
        /// The field, e.g. `spec.key`.
        field: &'static str,
        /// What the engine said.
        source: Box<tlsmint_ca::Error>,
    },
    /// An extended key usage the engine does not put on leaves.
    #[error(
        "IssuerRole {name}: spec.extKeyUsages: {usage} is not issued on leaf certificates by tlsmint"
    )]
    UnsupportedExtKeyUsage {
        /// Role name.
        name: String,
        /// The usage.
        usage: &'static str,
    },
    /// The role's name policy is inconsistent (template syntax, glob entries).
    #[error(transparent)]
    Policy(Box<tlsmint_ca::PolicyError>),
    /// The subject or URLs cannot be encoded.
    #[error("{kind} {name}: {source}")]
    Engine {
        /// `IssuerRole` or `PkiMount`.
        kind: &'static str,
        /// Object name.
        name: String,
        /// What the engine said.
        source: Box<tlsmint_ca::Error>,
    },
}

/// Turns an `IssuerRole` spec into the engine's role. Runs the spec's own
/// `validate()` and the policy's static checks, so a role that converts is
/// usable.
pub fn role(name: &str, spec: &IssuerRoleSpec) -> Result<Role, ConvertError> {
    spec.validate()
        .map_err(|source| ConvertError::InvalidSpec {
            kind: "IssuerRole",
            name: name.to_owned(),
            source: Box::new(source),
        })?;
    let policy = Policy {
        role: name.to_owned(),
        allowed_domains: spec.allowed_domains.clone(),
        allow_bare_domains: spec.allow_bare_domains,
        allow_subdomains: spec.allow_subdomains,
        allow_glob_domains: spec.allow_glob_domains,
        allow_wildcard_certificates: spec.allow_wildcard_certificates,
        allow_localhost: spec.allow_localhost,
        allow_any_name: spec.allow_any_name,
        enforce_hostnames: spec.enforce_hostnames,
        allow_ip_sans: spec.allow_ip_sans,
        allowed_uri_sans: spec.allowed_uri_sans.clone(),
        require_common_name: spec.require_common_name,
    };
    policy
        .validate()
        .map_err(|e| ConvertError::Policy(Box::new(e)))?;
    let key = key_spec(&spec.key).map_err(|source| ConvertError::Key {
        kind: "IssuerRole",
        name: name.to_owned(),
        field: "spec.key",
        source: Box::new(source),
    })?;
    let subject = spec.subject.as_ref().map(subject).unwrap_or_default();
    subject.validate().map_err(|source| ConvertError::Engine {
        kind: "IssuerRole",
        name: name.to_owned(),
        source: Box::new(source),
    })?;
    let profile = LeafProfile {
        lifetimes: Lifetimes {
            ttl: spec.ttl.as_std(),
            max_ttl: spec.max_ttl.as_std(),
            not_before_duration: spec.not_before_duration.as_std(),
        },
        server_flag: spec.server_flag,
        client_flag: spec.client_flag,
        key_usages: spec.key_usages.iter().map(|u| key_usage(*u)).collect(),
        ext_key_usages: spec
            .ext_key_usages
            .iter()
            .map(|u| ext_key_usage(name, *u))
            .collect::<Result<_, _>>()?,
        subject,
        key,
        csr_keys: CsrKeyRule::AtLeast(key),
    };
    Ok(Role { policy, profile })
}

/// What a `PkiMount` spec says about its CA and its leaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountSettings {
    /// How to generate the CA.
    pub ca: CaConfig,
    /// Mount-wide leaf settings.
    pub options: MountOptions,
    /// Validity of each CRL (`spec.crl.expiry`).
    pub crl_expiry: Duration,
}

/// Turns a `PkiMount` spec into the engine's CA config and mount options.
pub fn mount(name: &str, spec: &PkiMountSpec) -> Result<MountSettings, ConvertError> {
    spec.validate()
        .map_err(|source| ConvertError::InvalidSpec {
            kind: "PkiMount",
            name: name.to_owned(),
            source: Box::new(source),
        })?;
    let key = key_spec(&spec.key).map_err(|source| ConvertError::Key {
        kind: "PkiMount",
        name: name.to_owned(),
        field: "spec.key",
        source: Box::new(source),
    })?;
    let mut ca_subject = subject(&spec.subject.names);
    ca_subject.common_name = spec.subject.common_name.clone();
    let urls = spec
        .urls
        .as_ref()
        .map(|u| Urls {
            issuing_certificates: u.issuing_certificates.clone(),
            crl_distribution_points: u.crl_distribution_points.clone(),
            ocsp_servers: u.ocsp_servers.clone(),
        })
        .unwrap_or_default();
    urls.validate().map_err(|source| ConvertError::Engine {
        kind: "PkiMount",
        name: name.to_owned(),
        source: Box::new(source),
    })?;
    Ok(MountSettings {
        ca: CaConfig {
            name: name.to_owned(),
            subject: ca_subject,
            key,
            ttl: spec.effective_ttl().as_std(),
        },
        options: MountOptions {
            max_ttl: spec.max_ttl.map(|d| d.as_std()),
            leaf_not_after: match spec.leaf_not_after_behavior {
                api::LeafNotAfterBehavior::Error => LeafNotAfterBehavior::Error,
                api::LeafNotAfterBehavior::Truncate => LeafNotAfterBehavior::Truncate,
            },
            urls,
        },
        crl_expiry: spec.crl.expiry.as_std(),
    })
}

pub use tlsmint_client::keys::{key_encoding, key_spec};

fn subject(dn: &DistinguishedName) -> Subject {
    Subject {
        common_name: String::new(),
        organization: dn.organization.clone(),
        organizational_unit: dn.organizational_unit.clone(),
        country: dn.country.clone(),
        province: dn.province.clone(),
        locality: dn.locality.clone(),
    }
}

fn key_usage(usage: KeyUsage) -> tlsmint_ca::KeyUsage {
    match usage {
        KeyUsage::DigitalSignature => tlsmint_ca::KeyUsage::DigitalSignature,
        KeyUsage::ContentCommitment => tlsmint_ca::KeyUsage::ContentCommitment,
        KeyUsage::KeyEncipherment => tlsmint_ca::KeyUsage::KeyEncipherment,
        KeyUsage::DataEncipherment => tlsmint_ca::KeyUsage::DataEncipherment,
        KeyUsage::KeyAgreement => tlsmint_ca::KeyUsage::KeyAgreement,
    }
}

fn ext_key_usage(role: &str, usage: ExtKeyUsage) -> Result<tlsmint_ca::ExtKeyUsage, ConvertError> {
    Ok(match usage {
        ExtKeyUsage::ServerAuth => tlsmint_ca::ExtKeyUsage::ServerAuth,
        ExtKeyUsage::ClientAuth => tlsmint_ca::ExtKeyUsage::ClientAuth,
        ExtKeyUsage::CodeSigning => tlsmint_ca::ExtKeyUsage::CodeSigning,
        ExtKeyUsage::EmailProtection => tlsmint_ca::ExtKeyUsage::EmailProtection,
        ExtKeyUsage::TimeStamping => tlsmint_ca::ExtKeyUsage::TimeStamping,
        ExtKeyUsage::OcspSigning => {
            return Err(ConvertError::UnsupportedExtKeyUsage {
                name: role.to_owned(),
                usage: "OCSPSigning",
            });
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use tlsmint_api::v1alpha1::{MountType, RoleSubject};
    use tlsmint_ca::KeySpec;

    fn web_server() -> IssuerRoleSpec {
        let mut spec = IssuerRoleSpec::new("pki-int");
        spec.subjects = vec![RoleSubject::new("*", "*")];
        spec.allowed_domains = vec!["example.com".into()];
        spec.allow_subdomains = true;
        spec.max_ttl = tlsmint_api::Duration::from_hours(720);
        spec
    }

    #[test]
    fn role_keeps_policy_and_lifetimes() {
        let role = role("web-server", &web_server()).unwrap();
        assert_eq!(role.policy.role, "web-server");
        assert!(role.policy.allow_subdomains);
        assert_eq!(role.policy.allowed_domains, vec!["example.com"]);
        assert_eq!(
            role.profile.lifetimes.max_ttl,
            Duration::from_secs(720 * 3600)
        );
        assert_eq!(role.profile.lifetimes.ttl, Duration::from_secs(3600));
        assert_eq!(role.profile.key, KeySpec::EcdsaP256);
        assert_eq!(
            role.profile.csr_keys,
            CsrKeyRule::AtLeast(KeySpec::EcdsaP256)
        );
    }

    #[test]
    fn role_with_bad_template_is_refused() {
        let mut spec = web_server();
        spec.allowed_domains = vec!["{{pod}}.example.com".into()];
        let err = role("r", &spec).unwrap_err();
        assert!(err.to_string().contains("{{pod}}"), "{err}");
    }

    #[test]
    fn role_with_ocsp_signing_is_refused() {
        let mut spec = web_server();
        spec.ext_key_usages = vec![ExtKeyUsage::OcspSigning];
        let err = role("r", &spec).unwrap_err();
        assert!(err.to_string().contains("OCSPSigning"), "{err}");
    }

    #[test]
    fn mount_maps_subject_ttl_and_behavior() {
        let mut spec = PkiMountSpec::new(MountType::Intermediate, "Example Intermediate");
        spec.subject.names = DistinguishedName {
            organization: vec!["Example".into()],
            ..Default::default()
        };
        spec.key = api::KeySpec::new(api::KeyAlgorithm::Ecdsa);
        spec.max_ttl = Some(tlsmint_api::Duration::from_hours(48));
        spec.leaf_not_after_behavior = api::LeafNotAfterBehavior::Truncate;
        spec.parent_ref = Some(api::NameReference::new("pki"));
        spec.path = Some("pki_int".into());
        let settings = mount("pki-int", &spec).unwrap();
        assert_eq!(settings.ca.subject.common_name, "Example Intermediate");
        assert_eq!(settings.ca.subject.organization, vec!["Example"]);
        assert_eq!(settings.ca.ttl, Duration::from_secs(43800 * 3600));
        assert_eq!(
            settings.options.max_ttl,
            Some(Duration::from_secs(48 * 3600))
        );
        assert_eq!(
            settings.options.leaf_not_after,
            LeafNotAfterBehavior::Truncate
        );
        assert_eq!(settings.crl_expiry, Duration::from_secs(72 * 3600));
    }
}
