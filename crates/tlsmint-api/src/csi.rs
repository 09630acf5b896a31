//! CSI volume attributes of the `csi.tlsmint.io` driver (SPEC §4): the driver name, every
//! attribute key, the pod-info keys kubelet adds, the typed [`VolumeAttributes`] and the
//! `${POD_NAME}`-style template substitution.
//!
//! Owns names, defaults and validation of a volume's attributes. It must not generate keys,
//! write files or call the issuance API: the CSI driver's `manager.rs` does.

use std::collections::BTreeMap;
use std::net::IpAddr;

use secrecy::SecretString;
use serde::Deserialize;

use crate::v1alpha1::{KeyEncoding, KeySpec};
use crate::values::{self, InvalidValue, Templates};
use crate::{Duration, Fraction};

/// Name of the CSI driver (and of its CSIDriver object).
pub const DRIVER_NAME: &str = "csi.tlsmint.io";
/// Audience of the service-account tokens kubelet passes to the driver.
pub const TOKEN_AUDIENCE: &str = "tlsmint";

/// Prefix of every tlsmint volume attribute.
pub const PREFIX: &str = "csi.tlsmint.io/";
/// `csi.tlsmint.io/role`: the IssuerRole to issue through (required).
pub const ROLE: &str = "csi.tlsmint.io/role";
/// `csi.tlsmint.io/common-name`: the certificate's common name.
pub const COMMON_NAME: &str = "csi.tlsmint.io/common-name";
/// `csi.tlsmint.io/dns-names`: comma-separated DNS SANs.
pub const DNS_NAMES: &str = "csi.tlsmint.io/dns-names";
/// `csi.tlsmint.io/ip-sans`: comma-separated IP SANs.
pub const IP_SANS: &str = "csi.tlsmint.io/ip-sans";
/// `csi.tlsmint.io/uri-sans`: comma-separated URI SANs.
pub const URI_SANS: &str = "csi.tlsmint.io/uri-sans";
/// `csi.tlsmint.io/ttl`: requested lifetime (default: the role's ttl).
pub const TTL: &str = "csi.tlsmint.io/ttl";
/// `csi.tlsmint.io/key-algorithm`: `ECDSA`, `ECDSA-384`, `Ed25519`, `RSA`, `RSA-3072`...
pub const KEY_ALGORITHM: &str = "csi.tlsmint.io/key-algorithm";
/// `csi.tlsmint.io/key-encoding`: `PKCS8` (default), `PKCS1` or `SEC1`.
pub const KEY_ENCODING: &str = "csi.tlsmint.io/key-encoding";
/// `csi.tlsmint.io/renew-at`: share of the lifetime after which to renew (default 0.5).
pub const RENEW_AT: &str = "csi.tlsmint.io/renew-at";
/// `csi.tlsmint.io/certificate-file`: file name of the certificate (default `tls.crt`).
pub const CERTIFICATE_FILE: &str = "csi.tlsmint.io/certificate-file";
/// `csi.tlsmint.io/key-file`: file name of the private key (default `tls.key`).
pub const KEY_FILE: &str = "csi.tlsmint.io/key-file";
/// `csi.tlsmint.io/ca-file`: file name of the CA bundle (default `ca.crt`).
pub const CA_FILE: &str = "csi.tlsmint.io/ca-file";
/// `csi.tlsmint.io/bundle-file`: file name of one PEM file holding the key, the leaf and its
/// chain (off unless set). A reader of this one file never pairs a key with the wrong
/// certificate.
pub const BUNDLE_FILE: &str = "csi.tlsmint.io/bundle-file";
/// `csi.tlsmint.io/pkcs12-file`: file name of a PKCS#12 archive holding the key, the leaf and
/// its chain (off unless set). Its password is empty: a password in a pod spec would be no
/// secret, and the file is protected like the key file (mode 0400, or 0440 with a group).
pub const PKCS12_FILE: &str = "csi.tlsmint.io/pkcs12-file";
/// `csi.tlsmint.io/fs-group`: group id that owns the files (mode 0440 instead of 0400).
pub const FS_GROUP: &str = "csi.tlsmint.io/fs-group";

/// Every tlsmint attribute key.
pub const KEYS: [&str; 15] = [
    ROLE,
    COMMON_NAME,
    DNS_NAMES,
    IP_SANS,
    URI_SANS,
    TTL,
    KEY_ALGORITHM,
    KEY_ENCODING,
    RENEW_AT,
    CERTIFICATE_FILE,
    KEY_FILE,
    CA_FILE,
    BUNDLE_FILE,
    PKCS12_FILE,
    FS_GROUP,
];

/// Kubelet pod info (CSIDriver `podInfoOnMount: true`): the pod's name.
pub const POD_NAME_KEY: &str = "csi.storage.k8s.io/pod.name";
/// Kubelet pod info: the pod's namespace.
pub const POD_NAMESPACE_KEY: &str = "csi.storage.k8s.io/pod.namespace";
/// Kubelet pod info: the pod's UID.
pub const POD_UID_KEY: &str = "csi.storage.k8s.io/pod.uid";
/// Kubelet pod info: the pod's service account name.
pub const SERVICE_ACCOUNT_NAME_KEY: &str = "csi.storage.k8s.io/serviceAccount.name";
/// Kubelet (CSIDriver `tokenRequests`): JSON map of audience to `{token, expirationTimestamp}`.
pub const SERVICE_ACCOUNT_TOKENS_KEY: &str = "csi.storage.k8s.io/serviceAccount.tokens";
/// Kubelet: `"true"` for an inline ephemeral volume.
pub const EPHEMERAL_KEY: &str = "csi.storage.k8s.io/ephemeral";

/// Default of [`RENEW_AT`].
pub const DEFAULT_RENEW_AT: Fraction = Fraction::HALF;
/// Default of [`CERTIFICATE_FILE`].
pub const DEFAULT_CERTIFICATE_FILE: &str = crate::TLS_CERT_FILE;
/// Default of [`KEY_FILE`].
pub const DEFAULT_KEY_FILE: &str = crate::TLS_KEY_FILE;
/// Default of [`CA_FILE`].
pub const DEFAULT_CA_FILE: &str = crate::CA_CERT_FILE;

const TEMPLATES: Templates = Templates {
    open: "${",
    close: '}',
    names: &[
        "POD_NAME",
        "POD_NAMESPACE",
        "POD_UID",
        "SERVICE_ACCOUNT_NAME",
    ],
    example: "${POD_NAME}",
};

/// A volume attribute the driver must refuse; the message names the attribute.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("volume attribute {key}: {problem}")]
pub struct AttributeError {
    /// The attribute key.
    pub key: String,
    /// What is wrong with its value.
    pub problem: InvalidValue,
}

/// What a volume asked for through its `csi.tlsmint.io/` attributes, validated, with defaults
/// applied. `role`, `common_name`, `dns_names` and `uri_sans` may hold `${...}` templates until
/// [`VolumeAttributes::resolve`] replaces them.
#[derive(Clone, Debug, PartialEq)]
pub struct VolumeAttributes {
    /// The IssuerRole (`csi.tlsmint.io/role`).
    pub role: String,
    /// The common name.
    pub common_name: Option<String>,
    /// DNS SANs.
    pub dns_names: Vec<String>,
    /// IP SANs.
    pub ip_sans: Vec<IpAddr>,
    /// URI SANs.
    pub uri_sans: Vec<String>,
    /// Requested lifetime; `None` means the role's ttl.
    pub ttl: Option<Duration>,
    /// Key algorithm and size; `None` means the role's key.
    pub key: Option<KeySpec>,
    /// PEM encoding of the key file (default PKCS8).
    pub key_encoding: KeyEncoding,
    /// Share of the lifetime after which to renew (default 0.5).
    pub renew_at: Fraction,
    /// File name of the certificate followed by its chain (default `tls.crt`).
    pub certificate_file: String,
    /// File name of the private key (default `tls.key`).
    pub key_file: String,
    /// File name of the CA bundle (default `ca.crt`).
    pub ca_file: String,
    /// File name of the single-file bundle (key, leaf, chain), if asked for.
    pub bundle_file: Option<String>,
    /// File name of the PKCS#12 archive (key, leaf, chain; empty password), if asked for.
    pub pkcs12_file: Option<String>,
    /// Group id that owns the files, if any.
    pub fs_group: Option<u32>,
}

/// The pod a volume is published for, from the kubelet's `csi.storage.k8s.io/` keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodInfo {
    /// The pod's name.
    pub name: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's UID.
    pub uid: String,
    /// The pod's service account name.
    pub service_account_name: String,
}

impl PodInfo {
    /// Reads the pod info kubelet passes in the volume context (requires
    /// `podInfoOnMount: true`); a missing key is an error naming it.
    pub fn from_volume_context<'a, I>(context: I) -> Result<Self, AttributeError>
    where
        I: IntoIterator<Item = (&'a String, &'a String)>,
    {
        let map: BTreeMap<&str, &str> = context
            .into_iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let get = |key: &str| {
            values::required(map.get(key).copied())
                .map(str::to_owned)
                .map_err(|problem| attr_error(key, problem))
        };
        Ok(PodInfo {
            name: get(POD_NAME_KEY)?,
            namespace: get(POD_NAMESPACE_KEY)?,
            uid: get(POD_UID_KEY)?,
            service_account_name: get(SERVICE_ACCOUNT_NAME_KEY)?,
        })
    }

    fn lookup(&self, template: &str) -> String {
        match template {
            "POD_NAME" => self.name.clone(),
            "POD_NAMESPACE" => self.namespace.clone(),
            "POD_UID" => self.uid.clone(),
            _ => self.service_account_name.clone(),
        }
    }
}

/// Replaces `${POD_NAME}`, `${POD_NAMESPACE}`, `${POD_UID}` and `${SERVICE_ACCOUNT_NAME}` in
/// `value`; any other `${...}` (or an unclosed one) is an error. A pod value that is not a
/// DNS label (a pod name with dots or a `/`, say) is refused, never substituted: it could
/// otherwise add labels or names the volume did not ask for.
pub fn substitute_templates(value: &str, pod: &PodInfo) -> Result<String, InvalidValue> {
    let mut refused = None;
    let out = TEMPLATES.expand(value, |name| {
        let v = pod.lookup(name);
        if refused.is_none() && !is_dns_label(&v) {
            refused = Some(v.clone());
        }
        v
    })?;
    match refused {
        Some(v) => Err(InvalidValue::Shape {
            value: v,
            expected: "a DNS label (at most 63 of a-z, 0-9 and '-'), so the pod's value is not substituted into the template",
        }),
        None => Ok(out),
    }
}

/// An RFC 1123 label: 1 to 63 of `a-z`, `0-9` and `-`, starting and ending alphanumeric.
fn is_dns_label(value: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = value.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            bytes.len() <= 63
                && alnum(first)
                && alnum(last)
                && bytes.iter().all(|&b| alnum(b) || b == b'-')
        }
        _ => false,
    }
}

/// One service-account token kubelet requested for the driver. The token is
/// a [`SecretString`]: `Debug` hides it and it has no `Display`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountToken {
    /// The bearer token (a JWT).
    pub token: SecretString,
    /// When it expires, RFC 3339.
    pub expiration_timestamp: String,
}

/// Reads the token for [`TOKEN_AUDIENCE`] from the value of [`SERVICE_ACCOUNT_TOKENS_KEY`].
/// Errors never contain the token text.
pub fn audience_token(tokens_json: &str) -> Result<ServiceAccountToken, AttributeError> {
    let mut tokens: BTreeMap<String, ServiceAccountToken> = serde_json::from_str(tokens_json)
        .map_err(|_| {
            attr_error(
                SERVICE_ACCOUNT_TOKENS_KEY,
                InvalidValue::Shape {
                    value: "<hidden>".into(),
                    expected: "a JSON map of audience to {token, expirationTimestamp}",
                },
            )
        })?;
    tokens.remove(TOKEN_AUDIENCE).ok_or_else(|| {
        attr_error(
            SERVICE_ACCOUNT_TOKENS_KEY,
            InvalidValue::Shape {
                value: "<hidden>".into(),
                expected: "a map with a token for audience tlsmint (check the CSIDriver's tokenRequests)",
            },
        )
    })
}

impl VolumeAttributes {
    /// Reads the volume attributes (the CSI volume context). Keys outside `csi.tlsmint.io/`
    /// (such as kubelet's `csi.storage.k8s.io/` pod info) are ignored; an unknown
    /// `csi.tlsmint.io/` key is an error naming it.
    pub fn parse<'a, I>(attributes: I) -> Result<Self, AttributeError>
    where
        I: IntoIterator<Item = (&'a String, &'a String)>,
    {
        let mut map: BTreeMap<&str, &str> = BTreeMap::new();
        for (key, value) in attributes {
            if key.starts_with(PREFIX) {
                if !KEYS.contains(&key.as_str()) {
                    let known = KEYS.join(", ");
                    return Err(attr_error(key, InvalidValue::UnknownKey { known }));
                }
                map.insert(key.as_str(), value.as_str());
            }
        }
        let get = |key: &str| map.get(key).copied();
        let at = |key: &'static str| move |problem| attr_error(key, problem);
        let attrs = VolumeAttributes {
            role: parse_role(get(ROLE)).map_err(at(ROLE))?,
            common_name: values::optional(get(COMMON_NAME), |v| Ok(check(v)?.0))
                .map_err(at(COMMON_NAME))?,
            dns_names: values::parse_list(get(DNS_NAMES), parse_dns_name).map_err(at(DNS_NAMES))?,
            ip_sans: values::parse_list(get(IP_SANS), values::ip).map_err(at(IP_SANS))?,
            uri_sans: values::parse_list(get(URI_SANS), parse_uri).map_err(at(URI_SANS))?,
            ttl: values::optional(get(TTL), |v| Ok(v.parse()?)).map_err(at(TTL))?,
            key: values::optional(get(KEY_ALGORITHM), values::key_spec)
                .map_err(at(KEY_ALGORITHM))?,
            key_encoding: values::optional(get(KEY_ENCODING), |v| Ok(v.parse()?))
                .map_err(at(KEY_ENCODING))?
                .unwrap_or_default(),
            renew_at: values::optional(get(RENEW_AT), |v| Ok(v.parse()?))
                .map_err(at(RENEW_AT))?
                .unwrap_or(DEFAULT_RENEW_AT),
            certificate_file: file(get(CERTIFICATE_FILE), DEFAULT_CERTIFICATE_FILE)
                .map_err(at(CERTIFICATE_FILE))?,
            key_file: file(get(KEY_FILE), DEFAULT_KEY_FILE).map_err(at(KEY_FILE))?,
            ca_file: file(get(CA_FILE), DEFAULT_CA_FILE).map_err(at(CA_FILE))?,
            bundle_file: values::optional(get(BUNDLE_FILE), |v| file(Some(v), ""))
                .map_err(at(BUNDLE_FILE))?,
            pkcs12_file: values::optional(get(PKCS12_FILE), |v| file(Some(v), ""))
                .map_err(at(PKCS12_FILE))?,
            fs_group: values::optional(get(FS_GROUP), parse_fs_group).map_err(at(FS_GROUP))?,
        };
        if let Some(key) = attrs.key {
            values::key_encoding(attrs.key_encoding, key.algorithm).map_err(at(KEY_ENCODING))?;
        }
        attrs.check_distinct_files()?;
        Ok(attrs)
    }

    /// A copy with every `${...}` template in role, common name, DNS names and URI SANs
    /// replaced from `pod`, and the results checked again.
    pub fn resolve(&self, pod: &PodInfo) -> Result<Self, AttributeError> {
        let sub = |key: &'static str, value: &str| {
            substitute_templates(value, pod).map_err(|problem| attr_error(key, problem))
        };
        let role = sub(ROLE, &self.role)?;
        values::object_name(&role, &role).map_err(|problem| attr_error(ROLE, problem))?;
        let common_name = match &self.common_name {
            Some(cn) => Some(sub(COMMON_NAME, cn)?),
            None => None,
        };
        let sub_all = |key: &'static str, items: &[String]| {
            items
                .iter()
                .map(|v| sub(key, v))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(VolumeAttributes {
            role,
            common_name,
            dns_names: sub_all(DNS_NAMES, &self.dns_names)?,
            uri_sans: sub_all(URI_SANS, &self.uri_sans)?,
            ..self.clone()
        })
    }

    fn check_distinct_files(&self) -> Result<(), AttributeError> {
        let mut files = vec![
            (CERTIFICATE_FILE, &self.certificate_file),
            (KEY_FILE, &self.key_file),
            (CA_FILE, &self.ca_file),
        ];
        if let Some(bundle) = &self.bundle_file {
            files.push((BUNDLE_FILE, bundle));
        }
        if let Some(pkcs12) = &self.pkcs12_file {
            files.push((PKCS12_FILE, pkcs12));
        }
        for (i, (key, name)) in files.iter().enumerate() {
            if let Some((other, _)) = files[..i].iter().find(|(_, n)| n == name) {
                let problem = InvalidValue::Duplicate {
                    value: name.to_string(),
                    other,
                };
                return Err(attr_error(key, problem));
            }
        }
        Ok(())
    }
}

fn attr_error(key: &str, problem: InvalidValue) -> AttributeError {
    AttributeError {
        key: key.to_owned(),
        problem,
    }
}

/// Checks templates; returns the value and its shape-checkable form.
fn check(value: &str) -> Result<(String, String), InvalidValue> {
    Ok((value.to_owned(), TEMPLATES.check(value)?))
}

fn parse_role(value: Option<&str>) -> Result<String, InvalidValue> {
    let role = values::required(value)?;
    let (role, checked) = check(role)?;
    values::object_name(&role, &checked)?;
    Ok(role)
}

fn parse_dns_name(value: &str) -> Result<String, InvalidValue> {
    let (value, checked) = check(value)?;
    values::no_spaces(&checked, "a DNS name")?;
    Ok(value)
}

fn parse_uri(value: &str) -> Result<String, InvalidValue> {
    let (value, checked) = check(value)?;
    values::uri(&value, &checked)?;
    Ok(value)
}

fn file(value: Option<&str>, default: &str) -> Result<String, InvalidValue> {
    match value {
        None => Ok(default.to_owned()),
        Some(name) => {
            values::file_name(name)?;
            // The volume's folder uses kubelet's layout: names starting with '.' are its
            // own (`..data`, the generations), so the writer refuses them. Refuse them here,
            // before a certificate is issued for nothing.
            if name.starts_with('.') {
                return Err(InvalidValue::Shape {
                    value: name.to_owned(),
                    expected: "a file name that does not start with '.' (e.g. tls.crt)",
                });
            }
            Ok(name.to_owned())
        }
    }
}

fn parse_fs_group(value: &str) -> Result<u32, InvalidValue> {
    value.parse().map_err(|_| InvalidValue::Shape {
        value: value.to_owned(),
        expected: "a group id (a whole number from 0 to 4294967295)",
    })
}

#[cfg(test)]
#[path = "csi_tests.rs"]
mod tests;
