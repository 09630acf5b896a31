//! The pure half of the PodCertificateRequest signer: what to do with one request, given
//! the CA state. No I/O, no clock (time is passed in), so every rule has a table test.
//!
//! Denied is final for the pod (kubelet gives up on the volume), so it is kept for what
//! cannot change for this request: who asked, what it asked for, its key. Everything that
//! an administrator can fix while the request waits (the role or mount missing or not
//! Ready) leaves it pending.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::certificates::v1beta1::{PodCertificateRequest, PodCertificateRequestSpec};
use time::OffsetDateTime;
use tlsmint_api::user_annotations::{self, Pod, RequestedNames};
use tlsmint_api::v1alpha1::IssuerRoleSpec;
use tlsmint_ca::{CsrKeyRule, Identity, KeySpec, NameRequest, Role};

use crate::issuance::{Key, Order};
use crate::registry::{LookupError, Registry};

/// Kubernetes' shortest pod-certificate lifetime (kube-apiserver refuses shorter).
pub const MIN_LIFETIME: Duration = Duration::from_secs(3600);
/// `spec.maxExpirationSeconds` when kube-apiserver did not default it (24 h).
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(86400);
/// kube-apiserver wants `beginRefreshAt` at least this far from either end.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(600);

/// `status.conditions[].reason` values of a denial.
pub mod reason {
    /// An annotation key the signer does not know, or a bad value (Kubernetes' name).
    pub const INVALID_ANNOTATIONS: &str = "InvalidUnverifiedUserAnnotations";
    /// A key type the role does not take (Kubernetes' name).
    pub const UNSUPPORTED_KEY_TYPE: &str = "UnsupportedKeyType";
    /// The ServiceAccount is not in the role's subjects.
    pub const SUBJECT_NOT_ALLOWED: &str = "SubjectNotAllowed";
    /// A name outside the role's policy, or no name at all.
    pub const NAME_NOT_ALLOWED: &str = "NameNotAllowed";
    /// The role cannot issue a certificate Kubernetes accepts (e.g. maxTTL under 1 h), or
    /// the request itself is malformed.
    pub const INVALID_REQUEST: &str = "InvalidRequest";
}

/// What the signer does with one request.
#[derive(Debug)]
pub enum Decision {
    /// Not for tlsmint, or already Issued, Denied or Failed.
    Skip,
    /// Final refusal.
    Deny {
        /// A [`reason`] value.
        reason: &'static str,
        /// For people (shown in the pod's events by kubelet).
        message: String,
    },
    /// Leave pending and try again later.
    Wait {
        /// CamelCase, for the Event.
        reason: &'static str,
        /// For people.
        message: String,
    },
    /// Sign.
    Sign(Box<Plan>),
}

/// Everything the engine needs to sign one request.
#[derive(Debug)]
pub struct Plan {
    /// The IssuerRole.
    pub role_name: String,
    /// Its mount.
    pub mount: String,
    /// The certificate to make: the pod's identity and names, the key kubelet made (its
    /// CSR or its SubjectPublicKeyInfo), and the TTL that puts the lifetime (TTL plus the
    /// role's back-dating) within Kubernetes' bounds.
    pub order: Order,
}

/// Whether the request already has its final condition.
pub fn is_final(pcr: &PodCertificateRequest) -> bool {
    pcr.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions.iter().any(|c| {
                matches!(c.type_.as_str(), "Issued" | "Denied" | "Failed") && c.status == "True"
            })
        })
}

/// Decides what to do with `pcr`.
pub fn decide(pcr: &PodCertificateRequest, registry: &Registry) -> Decision {
    let spec = &pcr.spec;
    let Some(role_name) = user_annotations::role_of_signer(&spec.signer_name) else {
        return Decision::Skip;
    };
    if is_final(pcr) {
        return Decision::Skip;
    }
    let namespace = pcr.metadata.namespace.as_deref().unwrap_or_default();
    let resolved = match registry.resolve(role_name) {
        Ok(resolved) => resolved,
        Err(err) => {
            let reason = match err {
                LookupError::RoleNotFound { .. } => "RoleNotFound",
                LookupError::MountNotFound(_) => "MountNotFound",
                LookupError::RoleNotReady { .. } => "RoleNotReady",
                LookupError::MountNotReady { .. } => "MountNotReady",
            };
            return Decision::Wait {
                reason,
                message: format!("{err}; the request waits until it is"),
            };
        }
    };
    let deny = |reason: &'static str, message: String| Decision::Deny { reason, message };
    if !resolved.entry.allows(namespace, &spec.service_account_name) {
        return deny(
            reason::SUBJECT_NOT_ALLOWED,
            format!(
                "service account {namespace}/{} may not use role \"{role_name}\": it is not in the role's subjects",
                spec.service_account_name
            ),
        );
    }
    let suggested = kubelet_key_type(resolved.role.profile.key).unwrap_or("RSA3072");
    let key = match kubelet_key(spec, suggested) {
        Ok((key, found)) if key_allowed(&resolved.role, found) => key,
        Ok((_, found)) => {
            return deny(
                reason::UNSUPPORTED_KEY_TYPE,
                format!("role \"{role_name}\" does not take {found} keys; use keyType {suggested}"),
            );
        }
        Err(denial) => return denial,
    };
    let empty = BTreeMap::new();
    let pod = Pod {
        name: &spec.pod_name,
        namespace,
        service_account: &spec.service_account_name,
    };
    let asked = match RequestedNames::parse(
        spec.unverified_user_annotations.as_ref().unwrap_or(&empty),
        pod,
    ) {
        Ok(asked) => asked,
        Err(err) => return deny(reason::INVALID_ANNOTATIONS, err.to_string()),
    };
    let names = with_role_defaults(asked, &resolved.entry.spec, pod);
    if names.common_name.is_none()
        && names.dns_names.is_empty()
        && names.ip_addresses.is_empty()
        && names.uris.is_empty()
    {
        return deny(
            reason::NAME_NOT_ALLOWED,
            format!(
                "no names: role \"{role_name}\" has no templated name in allowedURISANs or allowedDomains, and the pod gave none (userAnnotations tlsmint.io/dns-names, tlsmint.io/uri-sans, tlsmint.io/ip-sans, tlsmint.io/common-name)"
            ),
        );
    }
    let max = spec
        .max_expiration_seconds
        .and_then(|s| u64::try_from(s).ok())
        .map_or(DEFAULT_MAX_LIFETIME, Duration::from_secs);
    let ttl = match ttl_for(&resolved.role, max) {
        Ok(ttl) => ttl,
        Err(message) => return deny(reason::INVALID_REQUEST, message),
    };
    Decision::Sign(Box::new(Plan {
        role_name: role_name.to_owned(),
        mount: resolved.mount.name.clone(),
        order: Order {
            ca: resolved.ca,
            role: resolved.role,
            identity: Identity {
                namespace: namespace.to_owned(),
                service_account: Some(spec.service_account_name.clone()),
            },
            names,
            ttl: Some(ttl),
            key,
        },
    }))
}

/// The key kubelet made, from either form of the request. The stub CSR's signature was
/// checked by kube-apiserver and is checked again by the engine; the deprecated
/// `pkixPublicKey` comes with a proof of possession over the pod's UID, checked here.
fn kubelet_key(
    spec: &PodCertificateRequestSpec,
    suggested: &str,
) -> Result<(Key, KeySpec), Decision> {
    let deny = |reason: &'static str, message: String| Decision::Deny { reason, message };
    let unsupported = |err: tlsmint_ca::Error| {
        deny(
            reason::UNSUPPORTED_KEY_TYPE,
            format!("{err}; use keyType {suggested}"),
        )
    };
    if !spec.stub_pkc_s10_request.0.is_empty() {
        return match tlsmint_ca::csr::parse(&spec.stub_pkc_s10_request.0) {
            Ok(parsed) => Ok((Key::Csr(spec.stub_pkc_s10_request.0.clone()), parsed.key)),
            Err(err @ tlsmint_ca::Error::UnsupportedKey(_)) => Err(unsupported(err)),
            Err(err) => Err(deny(reason::INVALID_REQUEST, err.report())),
        };
    }
    let (Some(spki), Some(proof)) = (&spec.pkix_public_key, &spec.proof_of_possession) else {
        return Err(deny(
            reason::INVALID_REQUEST,
            "the request has neither stubPKCS10Request nor pkixPublicKey with proofOfPossession"
                .into(),
        ));
    };
    match tlsmint_ca::csr::verify_proof(&spki.0, spec.pod_uid.as_bytes(), &proof.0) {
        Ok(found) => Ok((Key::Spki(spki.0.clone()), found)),
        Err(err @ tlsmint_ca::Error::UnsupportedKey(_)) => Err(unsupported(err)),
        Err(err) => Err(deny(reason::INVALID_REQUEST, err.report())),
    }
}

/// Whether the role's key rule takes a key of type `found` (as the engine will check).
fn key_allowed(role: &Role, found: KeySpec) -> bool {
    match role.profile.csr_keys {
        CsrKeyRule::Any => true,
        CsrKeyRule::AtLeast(min) => {
            found.algorithm() == min.algorithm() && found.bits() >= min.bits()
        }
    }
}

/// The pod's names plus the role's defaults: every `allowedURISANs` entry and (with
/// `allowBareDomains`) every `allowedDomains` entry that holds a `{{namespace}}` or
/// `{{serviceAccount}}` template and no glob, filled for this pod. So a role allowing
/// `spiffe://cluster.local/ns/{{namespace}}/sa/{{serviceAccount}}` gives each pod its
/// SPIFFE ID without any annotation.
pub fn with_role_defaults(
    asked: RequestedNames,
    role: &IssuerRoleSpec,
    pod: Pod<'_>,
) -> NameRequest {
    let fill = |pattern: &str| {
        (pattern.contains("{{") && !pattern.contains('*')).then(|| {
            pattern
                .replace("{{namespace}}", pod.namespace)
                .replace("{{serviceAccount}}", pod.service_account)
        })
    };
    let mut uris = asked.uri_sans;
    for uri in role.allowed_uri_sans.iter().filter_map(|p| fill(p)) {
        if !uris.contains(&uri) {
            uris.push(uri);
        }
    }
    let mut dns_names = asked.dns_names;
    if role.allow_bare_domains {
        for name in role.allowed_domains.iter().filter_map(|p| fill(p)) {
            if !dns_names.contains(&name) {
                dns_names.push(name);
            }
        }
    }
    NameRequest {
        common_name: asked.common_name,
        dns_names,
        ip_addresses: asked.ip_sans.iter().map(ToString::to_string).collect(),
        uris,
    }
}

/// The TTL to ask the engine for: the role's, so that the certificate's whole lifetime
/// (TTL plus back-dating) is within `[1 h, max]`, and never above the role's maxTTL.
pub fn ttl_for(role: &Role, max: Duration) -> Result<Duration, String> {
    let lifetimes = &role.profile.lifetimes;
    let back = Duration::from_secs(lifetimes.not_before_duration.as_secs());
    let floor = MIN_LIFETIME.saturating_sub(back);
    if max < MIN_LIFETIME {
        return Err(format!(
            "maxExpirationSeconds {} is under Kubernetes' minimum of 3600",
            max.as_secs()
        ));
    }
    let ceiling = max.saturating_sub(back).min(lifetimes.max_ttl);
    if ceiling < floor || ceiling.is_zero() {
        return Err(format!(
            "role \"{}\" allows at most {} (maxTTL), under the 1h that Kubernetes requires of a pod certificate; raise the role's maxTTL",
            role.policy.role,
            tlsmint_ca::validity::format_duration(lifetimes.max_ttl)
        ));
    }
    let wanted = Duration::from_secs(lifetimes.ttl.as_secs());
    Ok(wanted.clamp(floor, ceiling))
}

/// The denial reason for an engine refusal, or `None` when the engine's trouble may pass
/// (the CA not valid now, an internal failure) and the request should wait.
pub fn engine_denial(err: &tlsmint_ca::Error) -> Option<&'static str> {
    use tlsmint_ca::ErrorClass as C;
    match err {
        tlsmint_ca::Error::UnsupportedKey(_) | tlsmint_ca::Error::CsrKeyNotAllowed { .. } => {
            return Some(reason::UNSUPPORTED_KEY_TYPE);
        }
        _ => {}
    }
    match err.class() {
        C::Denied => Some(reason::NAME_NOT_ALLOWED),
        C::InvalidInput | C::Misconfigured => Some(reason::INVALID_REQUEST),
        C::NotReady | C::Internal => None,
    }
}

/// `beginRefreshAt`: at `fraction` of the lifetime with the shared jitter, kept at least
/// 10 minutes from either end (kube-apiserver's rule).
pub fn begin_refresh_at(
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    fraction: f64,
    seed: u64,
) -> OffsetDateTime {
    let at = tlsmint_client::renewal::renewal_time(not_before, not_after, fraction, seed);
    let margin = time::Duration::try_from(REFRESH_MARGIN).unwrap_or(time::Duration::ZERO);
    at.clamp(
        not_before + margin,
        (not_after - margin).max(not_before + margin),
    )
}

/// A key type kubelet offers that tlsmint signs (`keyType` of a podCertificate volume).
pub fn kubelet_key_type(spec: KeySpec) -> Option<&'static str> {
    match spec {
        KeySpec::EcdsaP256 => Some("ECDSAP256"),
        KeySpec::EcdsaP384 => Some("ECDSAP384"),
        KeySpec::Ed25519 => Some("ED25519"),
        KeySpec::Rsa3072 => Some("RSA3072"),
        KeySpec::Rsa4096 => Some("RSA4096"),
        KeySpec::Rsa2048 => None,
    }
}
