//! Pod annotations read by the injector webhook (SPEC §3): every key, the defaults, and the
//! typed [`PodAnnotations`] parsed from a pod's annotation map.
//!
//! Owns the names and their validation at admission time. It must not mutate pods (the
//! webhook's `mutate.rs` does) and leaves `$(POD_NAME)`-style placeholders unresolved: the
//! agent or the CSI driver resolves them at run time.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use crate::Duration;
use crate::csi;
use crate::v1alpha1::KeySpec;
use crate::values::{self, InvalidValue, Templates};

/// Prefix of every tlsmint pod annotation.
pub const PREFIX: &str = "tlsmint.io/";

/// `tlsmint.io/inject`: must be `"true"` for the webhook to touch the pod.
pub const INJECT: &str = "tlsmint.io/inject";
/// `tlsmint.io/role`: the IssuerRole to issue through (required).
pub const ROLE: &str = "tlsmint.io/role";
/// `tlsmint.io/common-name`: the certificate's common name.
pub const COMMON_NAME: &str = "tlsmint.io/common-name";
/// `tlsmint.io/dns-names`: comma-separated DNS SANs.
pub const DNS_NAMES: &str = "tlsmint.io/dns-names";
/// `tlsmint.io/ip-sans`: comma-separated IP SANs.
pub const IP_SANS: &str = "tlsmint.io/ip-sans";
/// `tlsmint.io/uri-sans`: comma-separated URI SANs.
pub const URI_SANS: &str = "tlsmint.io/uri-sans";
/// `tlsmint.io/ttl`: requested lifetime, e.g. `24h` (default: the role's ttl).
pub const TTL: &str = "tlsmint.io/ttl";
/// `tlsmint.io/key-algorithm`: `ECDSA`, `ECDSA-384`, `Ed25519`, `RSA`, `RSA-3072`...
pub const KEY_ALGORITHM: &str = "tlsmint.io/key-algorithm";
/// `tlsmint.io/mount-path`: where the files appear in the containers.
pub const MOUNT_PATH: &str = "tlsmint.io/mount-path";
/// `tlsmint.io/containers`: comma-separated names of the containers that get the mount.
pub const CONTAINERS: &str = "tlsmint.io/containers";
/// `tlsmint.io/mode`: `sidecar` (default) or `csi`.
pub const MODE: &str = "tlsmint.io/mode";
/// `tlsmint.io/status`: set by the webhook to [`STATUS_INJECTED`] once it has injected.
pub const STATUS: &str = "tlsmint.io/status";

/// Value of [`STATUS`] on a pod the webhook has injected.
pub const STATUS_INJECTED: &str = "injected";
/// Default of [`MOUNT_PATH`].
pub const DEFAULT_MOUNT_PATH: &str = "/var/run/tlsmint";
/// File holding the certificate followed by its chain, inside the mount path.
pub const CERTIFICATE_FILE: &str = crate::TLS_CERT_FILE;
/// File holding the private key, inside the mount path.
pub const KEY_FILE: &str = crate::TLS_KEY_FILE;
/// File holding the CA bundle, inside the mount path.
pub const CA_FILE: &str = crate::CA_CERT_FILE;

/// Placeholder for the pod's name, resolved at run time.
pub const POD_NAME_PLACEHOLDER: &str = "$(POD_NAME)";
/// Placeholder for the pod's namespace, resolved at run time.
pub const POD_NAMESPACE_PLACEHOLDER: &str = "$(POD_NAMESPACE)";
/// Placeholder for the pod's service account, resolved at run time.
pub const SERVICE_ACCOUNT_PLACEHOLDER: &str = "$(SERVICE_ACCOUNT)";

/// Every annotation key the webhook reads (all but [`STATUS`], which it writes).
pub const KEYS: [&str; 11] = [
    INJECT,
    ROLE,
    COMMON_NAME,
    DNS_NAMES,
    IP_SANS,
    URI_SANS,
    TTL,
    KEY_ALGORITHM,
    MOUNT_PATH,
    CONTAINERS,
    MODE,
];

const TEMPLATES: Templates = Templates {
    open: "$(",
    close: ')',
    names: &["POD_NAME", "POD_NAMESPACE", "SERVICE_ACCOUNT"],
    example: "$(POD_NAME)",
};

/// How the certificate reaches the pod.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum InjectionMode {
    /// The agent runs as a (native) sidecar and writes into a shared in-memory volume.
    #[default]
    Sidecar,
    /// An inline CSI volume of the `csi.tlsmint.io` driver is added instead.
    Csi,
}

impl InjectionMode {
    /// The annotation value: `sidecar` or `csi`.
    pub const fn as_str(self) -> &'static str {
        match self {
            InjectionMode::Sidecar => "sidecar",
            InjectionMode::Csi => "csi",
        }
    }
}

impl fmt::Display for InjectionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A pod annotation the webhook must refuse; the message names the annotation, e.g.
/// `annotation tlsmint.io/ttl: "abc" is not a duration (use e.g. 90s, 15m, 1h)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("annotation {key}: {problem}")]
pub struct AnnotationError {
    /// The annotation key.
    pub key: String,
    /// What is wrong with its value.
    pub problem: InvalidValue,
}

/// What a pod asked for through its `tlsmint.io/` annotations, validated, with defaults
/// applied. Values may still hold `$(POD_NAME)`, `$(POD_NAMESPACE)` and `$(SERVICE_ACCOUNT)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodAnnotations {
    /// The IssuerRole (`tlsmint.io/role`).
    pub role: String,
    /// The common name (`tlsmint.io/common-name`).
    pub common_name: Option<String>,
    /// DNS SANs (`tlsmint.io/dns-names`).
    pub dns_names: Vec<String>,
    /// IP SANs (`tlsmint.io/ip-sans`).
    pub ip_sans: Vec<IpAddr>,
    /// URI SANs (`tlsmint.io/uri-sans`).
    pub uri_sans: Vec<String>,
    /// Requested lifetime (`tlsmint.io/ttl`); `None` means the role's ttl.
    pub ttl: Option<Duration>,
    /// Key algorithm and size (`tlsmint.io/key-algorithm`); `None` means the role's key.
    pub key: Option<KeySpec>,
    /// Where the files appear (`tlsmint.io/mount-path`, default `/var/run/tlsmint`).
    pub mount_path: String,
    /// Containers that get the mount (`tlsmint.io/containers`); `None` means all.
    pub containers: Option<Vec<String>>,
    /// Sidecar or CSI volume (`tlsmint.io/mode`, default sidecar).
    pub mode: InjectionMode,
}

/// Whether the webhook already injected this pod (`tlsmint.io/status: injected`).
pub fn is_injected(annotations: &BTreeMap<String, String>) -> bool {
    annotations.get(STATUS).map(String::as_str) == Some(STATUS_INJECTED)
}

impl PodAnnotations {
    /// Reads the annotations of a pod. `Ok(None)` when `tlsmint.io/inject` is absent or
    /// `"false"`: such pods are never changed. Any other value than `"true"` is an error, as
    /// is an unknown `tlsmint.io/` key on a pod that asks for injection.
    pub fn parse(annotations: &BTreeMap<String, String>) -> Result<Option<Self>, AnnotationError> {
        let get = |key: &str| annotations.get(key).map(String::as_str);
        match get(INJECT).map(str::trim) {
            None | Some("false") => return Ok(None),
            Some("true") => {}
            Some(other) => {
                return Err(error(
                    INJECT,
                    InvalidValue::NotOneOf {
                        value: other.to_owned(),
                        allowed: "\"true\" or \"false\"",
                    },
                ));
            }
        }
        for key in annotations.keys() {
            if key.starts_with(PREFIX) && key != STATUS && !KEYS.contains(&key.as_str()) {
                return Err(error(key, unknown_key()));
            }
        }
        let at = |key: &'static str| move |problem| error(key, problem);
        Ok(Some(PodAnnotations {
            role: parse_role(get(ROLE)).map_err(at(ROLE))?,
            common_name: values::optional(get(COMMON_NAME), parse_common_name)
                .map_err(at(COMMON_NAME))?,
            dns_names: values::parse_list(get(DNS_NAMES), parse_dns_name).map_err(at(DNS_NAMES))?,
            ip_sans: values::parse_list(get(IP_SANS), values::ip).map_err(at(IP_SANS))?,
            uri_sans: values::parse_list(get(URI_SANS), parse_uri).map_err(at(URI_SANS))?,
            ttl: values::optional(get(TTL), |v| Ok(v.parse()?)).map_err(at(TTL))?,
            key: values::optional(get(KEY_ALGORITHM), values::key_spec)
                .map_err(at(KEY_ALGORITHM))?,
            mount_path: values::optional(get(MOUNT_PATH), parse_mount_path)
                .map_err(at(MOUNT_PATH))?
                .unwrap_or_else(|| DEFAULT_MOUNT_PATH.to_owned()),
            containers: parse_containers(get(CONTAINERS)).map_err(at(CONTAINERS))?,
            mode: values::optional(get(MODE), parse_mode)
                .map_err(at(MODE))?
                .unwrap_or_default(),
        }))
    }

    /// Whether the container called `name` gets the mount.
    pub fn applies_to_container(&self, name: &str) -> bool {
        self.containers
            .as_ref()
            .is_none_or(|list| list.iter().any(|c| c == name))
    }

    /// The volume attributes of the inline CSI volume that `mode: csi` injects, with the
    /// `$(...)` placeholders rewritten to the driver's `${...}` templates.
    pub fn csi_volume_attributes(&self) -> BTreeMap<String, String> {
        let to_csi = |value: &str| {
            value
                .replace(POD_NAME_PLACEHOLDER, "${POD_NAME}")
                .replace(POD_NAMESPACE_PLACEHOLDER, "${POD_NAMESPACE}")
                .replace(SERVICE_ACCOUNT_PLACEHOLDER, "${SERVICE_ACCOUNT_NAME}")
        };
        let join = |items: &[String]| to_csi(&items.join(","));
        let mut attrs = BTreeMap::new();
        attrs.insert(csi::ROLE.to_owned(), to_csi(&self.role));
        if let Some(cn) = &self.common_name {
            attrs.insert(csi::COMMON_NAME.to_owned(), to_csi(cn));
        }
        if !self.dns_names.is_empty() {
            attrs.insert(csi::DNS_NAMES.to_owned(), join(&self.dns_names));
        }
        if !self.ip_sans.is_empty() {
            let ips: Vec<String> = self.ip_sans.iter().map(IpAddr::to_string).collect();
            attrs.insert(csi::IP_SANS.to_owned(), ips.join(","));
        }
        if !self.uri_sans.is_empty() {
            attrs.insert(csi::URI_SANS.to_owned(), join(&self.uri_sans));
        }
        if let Some(ttl) = self.ttl {
            attrs.insert(csi::TTL.to_owned(), ttl.to_string());
        }
        if let Some(key) = self.key {
            attrs.insert(csi::KEY_ALGORITHM.to_owned(), key.to_string());
        }
        attrs
    }
}

fn error(key: &str, problem: InvalidValue) -> AnnotationError {
    AnnotationError {
        key: key.to_owned(),
        problem,
    }
}

fn unknown_key() -> InvalidValue {
    InvalidValue::UnknownKey {
        known: KEYS.join(", "),
    }
}

/// Checks the `$(...)` templates of a value the webhook copies into a CSI volume attribute,
/// and returns it with each replaced by `x`. `${` is refused: the driver would read it as one
/// of its own templates and refuse the volume, leaving the pod stuck in ContainerCreating.
fn templated(value: &str) -> Result<String, InvalidValue> {
    if value.contains("${") {
        return Err(InvalidValue::ForeignTemplate {
            value: value.to_owned(),
            example: TEMPLATES.example,
        });
    }
    TEMPLATES.check(value)
}

fn parse_role(value: Option<&str>) -> Result<String, InvalidValue> {
    let role = values::required(value)?;
    values::object_name(role, &templated(role)?)?;
    Ok(role.to_owned())
}

fn parse_common_name(value: &str) -> Result<String, InvalidValue> {
    templated(value)?;
    Ok(value.to_owned())
}

fn parse_dns_name(value: &str) -> Result<String, InvalidValue> {
    values::no_spaces(&templated(value)?, "a DNS name")?;
    Ok(value.to_owned())
}

fn parse_uri(value: &str) -> Result<String, InvalidValue> {
    values::uri(value, &templated(value)?)?;
    Ok(value.to_owned())
}

/// An absolute path without `..` segments or `:`, and without templates.
fn parse_mount_path(value: &str) -> Result<String, InvalidValue> {
    TEMPLATES.forbid(value)?;
    let ok = value.starts_with('/')
        && value != "/"
        && !value.contains(':')
        && !value.split('/').any(|s| s == "..");
    values::no_spaces(value, "an absolute path")?;
    if !ok {
        return Err(InvalidValue::Shape {
            value: value.to_owned(),
            expected: "an absolute path other than / (e.g. /var/run/tlsmint)",
        });
    }
    Ok(value.trim_end_matches('/').to_owned())
}

fn parse_containers(value: Option<&str>) -> Result<Option<Vec<String>>, InvalidValue> {
    let Some(value) = value else {
        return Ok(None);
    };
    let names = values::list(value)?;
    if names.is_empty() {
        return Err(InvalidValue::Empty);
    }
    for name in &names {
        values::container_name(name)?;
    }
    Ok(Some(names.into_iter().map(str::to_owned).collect()))
}

fn parse_mode(value: &str) -> Result<InjectionMode, InvalidValue> {
    [InjectionMode::Sidecar, InjectionMode::Csi]
        .into_iter()
        .find(|mode| mode.as_str().eq_ignore_ascii_case(value))
        .ok_or_else(|| InvalidValue::NotOneOf {
            value: value.to_owned(),
            allowed: "sidecar or csi",
        })
}

#[cfg(test)]
#[path = "annotations_tests.rs"]
mod tests;
