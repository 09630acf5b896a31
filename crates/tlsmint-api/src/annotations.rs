//! Pod annotations read by the injector webhook (SPEC §3): every key, the defaults, and the
//! typed [`PodAnnotations`] parsed from a pod's annotation map.
//!
//! Owns the names and their validation at admission time. It must not mutate pods (the
//! webhook's `mutate.rs` does) and leaves `$(POD_NAME)`-style placeholders unresolved: the
//! agent or the CSI driver resolves them at run time.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

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
/// `tlsmint.io/mode`: `sidecar` (default), `csi` or `podcertificate`.
pub const MODE: &str = "tlsmint.io/mode";
/// `tlsmint.io/reload-signal`: signal sent after each rotation to the processes named by
/// [`RELOAD_PROCESS`] (`HUP`, `USR1`, `USR2` or `TERM`, as the injector allows).
pub const RELOAD_SIGNAL: &str = "tlsmint.io/reload-signal";
/// `tlsmint.io/reload-process`: the process name (as `ps` shows it) that gets the signal.
pub const RELOAD_PROCESS: &str = "tlsmint.io/reload-process";
/// `tlsmint.io/reload-url`: `http://127.0.0.1:PORT/PATH` called with POST after each rotation.
pub const RELOAD_URL: &str = "tlsmint.io/reload-url";
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
pub const KEYS: [&str; 14] = [
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
    RELOAD_SIGNAL,
    RELOAD_PROCESS,
    RELOAD_URL,
];

pub(crate) const TEMPLATES: Templates = Templates {
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
    /// Kubernetes' own `podCertificate` and `clusterTrustBundle` projected sources for the
    /// signer `pki.tlsmint.io/<role>`: kubelet makes the key and writes the files.
    PodCertificate,
}

impl InjectionMode {
    /// The annotation value: `sidecar`, `csi` or `podcertificate`.
    pub const fn as_str(self) -> &'static str {
        match self {
            InjectionMode::Sidecar => "sidecar",
            InjectionMode::Csi => "csi",
            InjectionMode::PodCertificate => "podcertificate",
        }
    }
}

impl fmt::Display for InjectionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signal the agent may send to the application after a rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReloadSignal {
    /// SIGHUP (nginx, haproxy: reload the configuration and certificates).
    Hup,
    /// SIGUSR1.
    Usr1,
    /// SIGUSR2.
    Usr2,
    /// SIGTERM (the container restarts; only for apps that cannot reload).
    Term,
}

impl ReloadSignal {
    /// Every signal, in the order of their names' documentation.
    pub const ALL: [ReloadSignal; 4] = [
        ReloadSignal::Hup,
        ReloadSignal::Usr1,
        ReloadSignal::Usr2,
        ReloadSignal::Term,
    ];

    /// The name without `SIG`: `HUP`, `USR1`, `USR2`, `TERM`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ReloadSignal::Hup => "HUP",
            ReloadSignal::Usr1 => "USR1",
            ReloadSignal::Usr2 => "USR2",
            ReloadSignal::Term => "TERM",
        }
    }
}

impl FromStr for ReloadSignal {
    type Err = InvalidValue;

    /// Accepts `HUP` or `SIGHUP`, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim().to_ascii_uppercase();
        let bare = name.strip_prefix("SIG").unwrap_or(&name);
        ReloadSignal::ALL
            .into_iter()
            .find(|signal| signal.as_str() == bare)
            .ok_or_else(|| InvalidValue::NotOneOf {
                value: s.to_owned(),
                allowed: "HUP, USR1, USR2 or TERM",
            })
    }
}

impl fmt::Display for ReloadSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the agent does after each rotation (`tlsmint.io/reload-*`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reload {
    /// The signal and the name of the processes that get it.
    pub signal: Option<(ReloadSignal, String)>,
    /// A loopback `http://` URL called with POST.
    pub url: Option<String>,
}

impl Reload {
    /// Whether anything is to be done.
    pub fn is_empty(&self) -> bool {
        self.signal.is_none() && self.url.is_none()
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
    /// What the agent does after a rotation (`tlsmint.io/reload-*`; sidecar mode only).
    pub reload: Reload,
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
        let mode = values::optional(get(MODE), parse_mode)
            .map_err(at(MODE))?
            .unwrap_or_default();
        let reload = parse_reload(&get, mode)?;
        let parsed = PodAnnotations {
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
            mode,
            reload,
        };
        if mode == InjectionMode::PodCertificate {
            crate::user_annotations::pod_certificate_key_type(parsed.key)
                .map_err(at(KEY_ALGORITHM))?;
            crate::user_annotations::pod_certificate_max_expiration(parsed.ttl).map_err(at(TTL))?;
        }
        Ok(Some(parsed))
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
pub(crate) fn templated(value: &str) -> Result<String, InvalidValue> {
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
    [
        InjectionMode::Sidecar,
        InjectionMode::Csi,
        InjectionMode::PodCertificate,
    ]
    .into_iter()
    .find(|mode| mode.as_str().eq_ignore_ascii_case(value))
    .ok_or_else(|| InvalidValue::NotOneOf {
        value: value.to_owned(),
        allowed: "sidecar, csi or podcertificate",
    })
}

/// `reload-signal` and `reload-process` go together; none of the three works with the CSI
/// driver, which cannot reach the pod's processes or network.
fn parse_reload<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
    mode: InjectionMode,
) -> Result<Reload, AnnotationError> {
    let signal = values::optional(get(RELOAD_SIGNAL), str::parse::<ReloadSignal>)
        .map_err(|p| error(RELOAD_SIGNAL, p))?;
    let process = values::optional(get(RELOAD_PROCESS), parse_process_name)
        .map_err(|p| error(RELOAD_PROCESS, p))?;
    let url =
        values::optional(get(RELOAD_URL), parse_reload_url).map_err(|p| error(RELOAD_URL, p))?;
    let signal = match (signal, process) {
        (Some(signal), Some(process)) => Some((signal, process)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(error(
                RELOAD_PROCESS,
                InvalidValue::RequiredWith {
                    other: RELOAD_SIGNAL,
                },
            ));
        }
        (None, Some(_)) => {
            return Err(error(
                RELOAD_SIGNAL,
                InvalidValue::RequiredWith {
                    other: RELOAD_PROCESS,
                },
            ));
        }
    };
    let reload = Reload { signal, url };
    let refused = match mode {
        InjectionMode::Sidecar => None,
        InjectionMode::Csi => Some((
            "tlsmint.io/mode: csi",
            "the CSI driver cannot reach the pod's processes; use mode: sidecar, or have the app watch the files",
        )),
        InjectionMode::PodCertificate => Some((
            "tlsmint.io/mode: podcertificate",
            "kubelet writes the files and signals nothing; use mode: sidecar, or have the app watch the files",
        )),
    };
    if let Some((other, why)) = refused
        && !reload.is_empty()
    {
        let key = if reload.signal.is_some() {
            RELOAD_SIGNAL
        } else {
            RELOAD_URL
        };
        return Err(error(key, InvalidValue::NotWith { other, why }));
    }
    Ok(reload)
}

/// A process name as the kernel keeps it (`/proc/<pid>/comm`: at most 15 bytes).
fn parse_process_name(value: &str) -> Result<String, InvalidValue> {
    TEMPLATES.forbid(value)?;
    values::no_spaces(value, "a process name")?;
    if value.len() > 15 || value.contains('/') {
        return Err(InvalidValue::Shape {
            value: value.to_owned(),
            expected: "a process name as ps shows it (at most 15 characters, no /), e.g. nginx",
        });
    }
    Ok(value.to_owned())
}

/// `http://` to a loopback host with a port: the agent shares the pod's network namespace,
/// and an annotation must not make it call anything outside the pod.
fn parse_reload_url(value: &str) -> Result<String, InvalidValue> {
    TEMPLATES.forbid(value)?;
    values::no_spaces(value, "a URL")?;
    let shape = || InvalidValue::Shape {
        value: value.to_owned(),
        expected: "an http:// URL to the pod itself with a port, e.g. http://127.0.0.1:8080/-/reload",
    };
    let rest = value.strip_prefix("http://").ok_or_else(shape)?;
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = authority.rsplit_once(':').ok_or_else(shape)?;
    let loopback = matches!(host, "127.0.0.1" | "localhost" | "[::1]");
    if !loopback || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(shape());
    }
    Ok(value.to_owned())
}

#[cfg(test)]
#[path = "annotations_tests.rs"]
mod tests;
