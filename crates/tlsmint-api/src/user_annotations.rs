//! The names a pod asks for through Kubernetes' own pod certificates: the
//! `userAnnotations` of a `podCertificate` projected volume, which kubelet copies into
//! `spec.unverifiedUserAnnotations` of each PodCertificateRequest for tlsmint's signer
//! (`pki.tlsmint.io/<IssuerRole>`).
//!
//! The keys are the pod annotations' name keys (`tlsmint.io/common-name`,
//! `tlsmint.io/dns-names`, `tlsmint.io/ip-sans`, `tlsmint.io/uri-sans`) with the same
//! values and `$(POD_NAME)`, `$(POD_NAMESPACE)`, `$(SERVICE_ACCOUNT)` templates, which the
//! signer fills from the request (kube-apiserver verified the pod, its namespace and its
//! ServiceAccount). Any other key is refused, as Kubernetes asks of signers: a key the
//! signer does not know may be a name the pod expects and would not get.
//!
//! Owns the syntax. The names are still only requests: the role's policy decides.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::annotations::{
    AnnotationError, COMMON_NAME, DNS_NAMES, IP_SANS, TEMPLATES, URI_SANS, templated,
};
use crate::v1alpha1::{KeyAlgorithm, KeySpec};
use crate::values::{self, InvalidValue};

/// Every key a PodCertificateRequest for a tlsmint signer may carry.
pub const KEYS: [&str; 4] = [COMMON_NAME, DNS_NAMES, IP_SANS, URI_SANS];

/// Prefix of tlsmint's signer names: `pki.tlsmint.io/<IssuerRole name>`.
pub const SIGNER_PREFIX: &str = "pki.tlsmint.io/";

/// The signer name of an IssuerRole.
pub fn signer_name(role: &str) -> String {
    format!("{SIGNER_PREFIX}{role}")
}

/// The IssuerRole a signer name asks for, if it is one of tlsmint's.
pub fn role_of_signer(signer: &str) -> Option<&str> {
    signer
        .strip_prefix(SIGNER_PREFIX)
        .filter(|role| !role.is_empty() && !role.contains('/'))
}

/// The single-file bundle of a `podCertificate` volume the injector adds (key, then chain).
pub const CREDENTIAL_BUNDLE_FILE: &str = "credential-bundle.pem";

/// Kubernetes' shortest pod-certificate lifetime, in seconds (`maxExpirationSeconds`).
pub const MIN_EXPIRATION_SECONDS: i32 = 3600;
/// Kubernetes' longest pod-certificate lifetime, in seconds (91 days).
pub const MAX_EXPIRATION_SECONDS: i32 = 7_862_400;

/// The kubelet `keyType` for a pod's `tlsmint.io/key-algorithm` (`None`: ECDSA P-256).
/// Kubelet does not make RSA 2048 keys.
pub fn pod_certificate_key_type(key: Option<KeySpec>) -> Result<&'static str, InvalidValue> {
    let Some(key) = key else {
        return Ok("ECDSAP256");
    };
    match (key.algorithm, key.size) {
        (KeyAlgorithm::Ecdsa, None | Some(256)) => Ok("ECDSAP256"),
        (KeyAlgorithm::Ecdsa, Some(384)) => Ok("ECDSAP384"),
        (KeyAlgorithm::Ed25519, _) => Ok("ED25519"),
        (KeyAlgorithm::Rsa, Some(3072)) => Ok("RSA3072"),
        (KeyAlgorithm::Rsa, Some(4096)) => Ok("RSA4096"),
        _ => Err(InvalidValue::Shape {
            value: key.to_string(),
            expected: "a key kubelet makes for pod certificates: ECDSA, ECDSA-384, Ed25519, RSA-3072 or RSA-4096 (not RSA 2048)",
        }),
    }
}

/// `maxExpirationSeconds` for a pod's `tlsmint.io/ttl` (`None`: Kubernetes' default, 24h),
/// within Kubernetes' limits of 1h to 91 days.
pub fn pod_certificate_max_expiration(
    ttl: Option<crate::Duration>,
) -> Result<Option<i32>, InvalidValue> {
    let Some(ttl) = ttl else {
        return Ok(None);
    };
    let secs = ttl.as_std().as_secs();
    match i32::try_from(secs) {
        Ok(secs) if (MIN_EXPIRATION_SECONDS..=MAX_EXPIRATION_SECONDS).contains(&secs) => {
            Ok(Some(secs))
        }
        _ => Err(InvalidValue::Shape {
            value: ttl.to_string(),
            expected: "a pod-certificate lifetime from 1h to 2184h (91 days), Kubernetes' limits",
        }),
    }
}

/// Who the request is for, from the PodCertificateRequest's verified spec.
#[derive(Clone, Copy, Debug)]
pub struct Pod<'a> {
    /// `spec.podName`.
    pub name: &'a str,
    /// The request's namespace.
    pub namespace: &'a str,
    /// `spec.serviceAccountName`.
    pub service_account: &'a str,
}

/// The names asked for, templates filled in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestedNames {
    /// `tlsmint.io/common-name`.
    pub common_name: Option<String>,
    /// `tlsmint.io/dns-names`.
    pub dns_names: Vec<String>,
    /// `tlsmint.io/ip-sans`.
    pub ip_sans: Vec<IpAddr>,
    /// `tlsmint.io/uri-sans`.
    pub uri_sans: Vec<String>,
}

impl RequestedNames {
    /// Reads `spec.unverifiedUserAnnotations` for `pod`. An unknown key, a bad value or a
    /// template that is not one of the three is an error naming the key.
    pub fn parse(
        annotations: &BTreeMap<String, String>,
        pod: Pod<'_>,
    ) -> Result<Self, AnnotationError> {
        if let Some(key) = annotations.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(error(
                key,
                InvalidValue::UnknownKey {
                    known: KEYS.join(", "),
                },
            ));
        }
        let fill = |key: &'static str, value: &str| -> Result<String, AnnotationError> {
            templated(value).map_err(|p| error(key, p))?;
            TEMPLATES
                .expand(value, |name| match name {
                    "POD_NAME" => pod.name.to_owned(),
                    "POD_NAMESPACE" => pod.namespace.to_owned(),
                    _ => pod.service_account.to_owned(),
                })
                .map_err(|p| error(key, p))
        };
        let list = |key: &'static str| -> Result<Vec<String>, AnnotationError> {
            let Some(value) = annotations.get(key) else {
                return Ok(Vec::new());
            };
            values::list(value)
                .map_err(|p| error(key, p))?
                .into_iter()
                .map(|item| fill(key, item))
                .collect()
        };
        let common_name = match annotations.get(COMMON_NAME) {
            Some(cn) if !cn.trim().is_empty() => Some(fill(COMMON_NAME, cn.trim())?),
            Some(_) => return Err(error(COMMON_NAME, InvalidValue::Empty)),
            None => None,
        };
        let dns_names = list(DNS_NAMES)?;
        for name in &dns_names {
            values::no_spaces(name, "a DNS name").map_err(|p| error(DNS_NAMES, p))?;
        }
        let ip_sans = list(IP_SANS)?
            .iter()
            .map(|ip| values::ip(ip).map_err(|p| error(IP_SANS, p)))
            .collect::<Result<_, _>>()?;
        let uri_sans = list(URI_SANS)?;
        for uri in &uri_sans {
            values::uri(uri, uri).map_err(|p| error(URI_SANS, p))?;
        }
        Ok(RequestedNames {
            common_name,
            dns_names,
            ip_sans,
            uri_sans,
        })
    }
}

fn error(key: &str, problem: InvalidValue) -> AnnotationError {
    AnnotationError {
        key: key.to_owned(),
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POD: Pod<'static> = Pod {
        name: "web-7d9f",
        namespace: "shop",
        service_account: "web",
    };

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn names_are_read_and_templates_filled_from_the_request() {
        let names = RequestedNames::parse(
            &map(&[
                (COMMON_NAME, "$(POD_NAME).$(POD_NAMESPACE).svc"),
                (DNS_NAMES, "web.shop.svc, $(SERVICE_ACCOUNT).internal"),
                (IP_SANS, "10.0.0.7"),
                (
                    URI_SANS,
                    "spiffe://cluster.local/ns/$(POD_NAMESPACE)/sa/$(SERVICE_ACCOUNT)",
                ),
            ]),
            POD,
        )
        .unwrap();
        assert_eq!(names.common_name.as_deref(), Some("web-7d9f.shop.svc"));
        assert_eq!(names.dns_names, ["web.shop.svc", "web.internal"]);
        assert_eq!(names.ip_sans, ["10.0.0.7".parse::<IpAddr>().unwrap()]);
        assert_eq!(names.uri_sans, ["spiffe://cluster.local/ns/shop/sa/web"]);
        assert_eq!(
            RequestedNames::parse(&BTreeMap::new(), POD).unwrap(),
            RequestedNames::default()
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        for (pairs, key, says) in [
            (
                vec![("tlsmint.io/dns-name", "a")],
                "tlsmint.io/dns-name",
                "tlsmint.io/dns-names",
            ),
            (
                vec![("example.com/anything", "a")],
                "example.com/anything",
                "known",
            ),
            (vec![(IP_SANS, "not-an-ip")], IP_SANS, "not-an-ip"),
            (vec![(URI_SANS, "no scheme")], URI_SANS, "no scheme"),
            (vec![(DNS_NAMES, "$(POD_UID).x")], DNS_NAMES, "$(POD_UID)"),
            (vec![(DNS_NAMES, "${POD_NAME}.x")], DNS_NAMES, "${POD_NAME}"),
            (vec![(COMMON_NAME, "  ")], COMMON_NAME, ""),
        ] {
            let err = RequestedNames::parse(&map(&pairs), POD).unwrap_err();
            assert_eq!(err.key, key, "{err}");
            assert!(err.to_string().contains(says), "{err}");
        }
    }

    #[test]
    fn pod_annotations_map_to_kubelet_key_types_and_lifetimes() {
        let spec = |algorithm, size| Some(KeySpec { algorithm, size });
        for (key, want) in [
            (None, "ECDSAP256"),
            (spec(KeyAlgorithm::Ecdsa, None), "ECDSAP256"),
            (spec(KeyAlgorithm::Ecdsa, Some(384)), "ECDSAP384"),
            (spec(KeyAlgorithm::Ed25519, None), "ED25519"),
            (spec(KeyAlgorithm::Rsa, Some(3072)), "RSA3072"),
            (spec(KeyAlgorithm::Rsa, Some(4096)), "RSA4096"),
        ] {
            assert_eq!(pod_certificate_key_type(key).unwrap(), want);
        }
        for rsa2048 in [
            spec(KeyAlgorithm::Rsa, None),
            spec(KeyAlgorithm::Rsa, Some(2048)),
        ] {
            let err = pod_certificate_key_type(rsa2048).unwrap_err().to_string();
            assert!(
                err.contains("RSA-3072") && err.contains("not RSA 2048"),
                "{err}"
            );
        }
        let hours = |h: u64| Some(crate::Duration::from_hours(h));
        assert_eq!(pod_certificate_max_expiration(None).unwrap(), None);
        assert_eq!(
            pod_certificate_max_expiration(hours(1)).unwrap(),
            Some(3600)
        );
        assert_eq!(
            pod_certificate_max_expiration(hours(2184)).unwrap(),
            Some(7_862_400)
        );
        for bad in [Some(crate::Duration::from_mins(59)), hours(2185)] {
            let err = pod_certificate_max_expiration(bad).unwrap_err().to_string();
            assert!(err.contains("1h to 2184h"), "{err}");
        }
    }

    #[test]
    fn signer_names_map_to_roles_and_back() {
        assert_eq!(signer_name("web"), "pki.tlsmint.io/web");
        assert_eq!(role_of_signer("pki.tlsmint.io/web"), Some("web"));
        for foreign in [
            "pki.tlsmint.io/",
            "pki.tlsmint.io/a/b",
            "kubernetes.io/kube-apiserver-client-pod",
            "example.com/web",
        ] {
            assert_eq!(role_of_signer(foreign), None, "{foreign}");
        }
    }
}
