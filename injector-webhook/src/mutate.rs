//! The mutation, pure: a typed Pod in, the Pod to admit (or the reason to refuse it) out.
//!
//! `mode: sidecar` adds an in-memory emptyDir, a projected ServiceAccount token for the
//! audience `tlsmint`, and the agent as a native sidecar placed first among the init
//! containers (`restartPolicy: Always`, startup probe `tlsmint-agent probe`), so that every
//! later init container and every app container starts with a valid certificate. `mode: csi`
//! adds an inline `csi.tlsmint.io` volume instead. Either way the volume is mounted read-only
//! at `mount-path` into the selected containers and the pod is marked
//! `tlsmint.io/status: injected`.
//!
//! The result is a function of the pod's annotations and the injector's settings alone, so
//! running it again on its own output changes nothing, and running it on a pod another
//! webhook changed afterwards repairs what that webhook undid (a container added without the
//! mount, `restartPolicy` stripped from the sidecar).
//!
//! Owns the shape of what is injected. Must not: do I/O, or take an image, a command or a
//! path from the pod's annotations (only mount-path, checked by `tlsmint_api`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    CSIVolumeSource, Capabilities, ClusterTrustBundleProjection, Container, EmptyDirVolumeSource,
    EnvVar, EnvVarSource, ExecAction, ObjectFieldSelector, Pod, PodCertificateProjection, PodSpec,
    Probe, ProjectedVolumeSource, ResourceRequirements, SecurityContext,
    ServiceAccountTokenProjection, Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use tlsmint_api::annotations::{self, InjectionMode, PodAnnotations};

use crate::config::Injection;

/// Name of the volume that holds the certificate files.
pub const VOLUME: &str = "tlsmint";
/// Name of the projected token volume of the agent.
pub const TOKEN_VOLUME: &str = "tlsmint-token";
/// Name of the agent's container.
pub const AGENT: &str = "tlsmint-agent";
/// Where the agent writes (inside its own container).
pub const AGENT_DIR: &str = annotations::DEFAULT_MOUNT_PATH;
/// Where the agent finds its token (the folder; the file is `token`).
pub const TOKEN_DIR: &str = "/var/run/secrets/tlsmint";
/// The audience of the agent's token.
pub const AUDIENCE: &str = "tlsmint";
/// The CSI driver of `mode: csi`.
pub const CSI_DRIVER: &str = "csi.tlsmint.io";

/// What to do with a pod.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// Not asked for: admit unchanged.
    Ignored,
    /// Admit this pod (which may equal the input, when it was already injected).
    Mutated(Box<Pod>),
}

/// Why a pod is refused. The message names what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// An annotation is invalid.
    #[error(transparent)]
    Annotation(#[from] annotations::AnnotationError),
    /// A Windows pod.
    #[error(
        "pods with spec.os.name: windows cannot get a tlsmint certificate (the agent runs on Linux only)"
    )]
    Windows,
    /// A subPath mount of the tlsmint volume.
    #[error(
        "container {container} mounts the {VOLUME} volume with subPath: files mounted with subPath never rotate; mount the whole volume"
    )]
    SubPath {
        /// The container.
        container: String,
    },
    /// `tlsmint.io/containers` names a container the pod does not have.
    #[error(
        "annotation {}: no container named {name:?} in the pod",
        annotations::CONTAINERS
    )]
    UnknownContainer {
        /// The name given.
        name: String,
    },
    /// A reload the injector's configuration does not allow.
    #[error(
        "annotation {key}: {value} is not allowed by the injector's configuration (allowed: {allowed})"
    )]
    ReloadNotAllowed {
        /// The annotation.
        key: &'static str,
        /// Its value.
        value: String,
        /// What is allowed, in words.
        allowed: String,
    },
    /// A reload signal on a pod that turned process sharing off.
    #[error(
        "annotation {}: the agent must see the app's processes, but the pod sets spec.shareProcessNamespace: false; remove it or use {}",
        annotations::RELOAD_SIGNAL,
        annotations::RELOAD_URL
    )]
    ProcessNamespace,
    /// The pod has no spec.
    #[error("the pod has no spec")]
    NoSpec,
}

/// Decides what to admit for `pod`.
pub fn mutate(pod: &Pod, cfg: &Injection) -> Result<Outcome, Refusal> {
    let empty = BTreeMap::new();
    let found = pod.metadata.annotations.as_ref().unwrap_or(&empty);
    let Some(ann) = PodAnnotations::parse(found)? else {
        return Ok(Outcome::Ignored);
    };
    let mut pod = pod.clone();
    let spec = pod.spec.as_mut().ok_or(Refusal::NoSpec)?;
    if spec
        .os
        .as_ref()
        .is_some_and(|os| os.name.eq_ignore_ascii_case("windows"))
    {
        return Err(Refusal::Windows);
    }
    check_sub_paths(spec)?;
    check_reload(&ann.reload, spec, cfg)?;
    if let Some(names) = &ann.containers {
        for name in names {
            let known = spec
                .containers
                .iter()
                .chain(spec.init_containers.iter().flatten());
            if !known.clone().any(|c| &c.name == name) {
                return Err(Refusal::UnknownContainer { name: name.clone() });
            }
        }
    }
    // A signal crosses containers only between processes of one user: with a reload signal,
    // the agent runs as the pod's runAsUser (when it sets one) instead of its own.
    let pod_user = spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.run_as_user)
        .filter(|uid| *uid != 0 && ann.reload.signal.is_some());
    let volumes = spec.volumes.get_or_insert_with(Vec::new);
    match ann.mode {
        InjectionMode::Sidecar => {
            put(volumes, memory_volume());
            put(volumes, token_volume(cfg));
            let init = spec.init_containers.get_or_insert_with(Vec::new);
            init.retain(|c| c.name != AGENT);
            init.insert(0, agent(&ann, cfg, pod_user));
            if ann.reload.signal.is_some() {
                spec.share_process_namespace = Some(true);
            }
        }
        InjectionMode::Csi | InjectionMode::PodCertificate => {
            volumes.retain(|v| v.name != TOKEN_VOLUME);
            let volume = if ann.mode == InjectionMode::Csi {
                csi_volume(&ann)
            } else {
                pod_certificate_volume(&ann)
            };
            put(volumes, volume);
            if let Some(init) = spec.init_containers.as_mut() {
                init.retain(|c| c.name != AGENT);
            }
        }
    }
    if spec.init_containers.as_ref().is_some_and(Vec::is_empty) {
        spec.init_containers = None;
    }
    for container in spec.containers.iter_mut() {
        mount(container, &ann);
    }
    for container in spec.init_containers.iter_mut().flatten() {
        if container.name != AGENT {
            mount(container, &ann);
        }
    }
    pod.metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(
            annotations::STATUS.into(),
            annotations::STATUS_INJECTED.into(),
        );
    Ok(Outcome::Mutated(Box::new(pod)))
}

fn check_sub_paths(spec: &PodSpec) -> Result<(), Refusal> {
    let all = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    for container in all {
        for m in container.volume_mounts.iter().flatten() {
            let sub = m.sub_path.as_deref().is_some_and(|s| !s.is_empty())
                || m.sub_path_expr.as_deref().is_some_and(|s| !s.is_empty());
            if m.name == VOLUME && sub {
                return Err(Refusal::SubPath {
                    container: container.name.clone(),
                });
            }
        }
    }
    Ok(())
}

/// Whether the injector's configuration allows what the pod asks for after a rotation.
fn check_reload(
    reload: &annotations::Reload,
    spec: &PodSpec,
    cfg: &Injection,
) -> Result<(), Refusal> {
    if let Some((signal, _)) = &reload.signal {
        if !cfg.reload_signals.contains(signal) {
            let allowed: Vec<&str> = cfg.reload_signals.iter().map(|s| s.as_str()).collect();
            return Err(Refusal::ReloadNotAllowed {
                key: annotations::RELOAD_SIGNAL,
                value: signal.to_string(),
                allowed: if allowed.is_empty() {
                    "no signals".into()
                } else {
                    allowed.join(", ")
                },
            });
        }
        if spec.share_process_namespace == Some(false) {
            return Err(Refusal::ProcessNamespace);
        }
    }
    if let Some(url) = &reload.url
        && !cfg.allow_reload_url
    {
        return Err(Refusal::ReloadNotAllowed {
            key: annotations::RELOAD_URL,
            value: url.clone(),
            allowed: "no reload calls".into(),
        });
    }
    Ok(())
}

/// Replaces the volume of the same name, or appends it.
fn put(volumes: &mut Vec<Volume>, volume: Volume) {
    match volumes.iter_mut().find(|v| v.name == volume.name) {
        Some(existing) => *existing = volume,
        None => volumes.push(volume),
    }
}

/// Mounts the volume read-only at the mount path into `container` if it is selected, and
/// removes a mount of it from a container that is not (the annotation changed).
fn mount(container: &mut Container, ann: &PodAnnotations) {
    let mounts = container.volume_mounts.get_or_insert_with(Vec::new);
    mounts.retain(|m| m.name != VOLUME);
    if ann.applies_to_container(&container.name) {
        mounts.push(VolumeMount {
            name: VOLUME.into(),
            mount_path: ann.mount_path.clone(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
    }
    if mounts.is_empty() {
        container.volume_mounts = None;
    }
}

fn memory_volume() -> Volume {
    Volume {
        name: VOLUME.into(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: Some("Memory".into()),
            size_limit: Some(Quantity("1Mi".into())),
        }),
        ..Volume::default()
    }
}

fn token_volume(cfg: &Injection) -> Volume {
    Volume {
        name: TOKEN_VOLUME.into(),
        projected: Some(ProjectedVolumeSource {
            default_mode: Some(0o444),
            sources: Some(vec![VolumeProjection {
                service_account_token: Some(ServiceAccountTokenProjection {
                    audience: Some(AUDIENCE.into()),
                    expiration_seconds: Some(cfg.token_expiration_seconds),
                    path: "token".into(),
                }),
                ..VolumeProjection::default()
            }]),
        }),
        ..Volume::default()
    }
}

fn csi_volume(ann: &PodAnnotations) -> Volume {
    Volume {
        name: VOLUME.into(),
        csi: Some(CSIVolumeSource {
            driver: CSI_DRIVER.into(),
            read_only: Some(true),
            volume_attributes: Some(ann.csi_volume_attributes()),
            ..CSIVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// Kubernetes' own delivery (`mode: podcertificate`): kubelet makes the key and asks the
/// signer `pki.tlsmint.io/<role>` through a PodCertificateRequest, with the pod's name
/// annotations as userAnnotations (the signer fills their `$(...)` templates); the role's
/// signer-linked ClusterTrustBundle gives `ca.crt`.
fn pod_certificate_volume(ann: &PodAnnotations) -> Volume {
    use tlsmint_api::user_annotations as ua;
    let signer = ua::signer_name(&ann.role);
    let mut names = BTreeMap::new();
    if let Some(cn) = &ann.common_name {
        names.insert(annotations::COMMON_NAME.to_owned(), cn.clone());
    }
    let lists = [
        (annotations::DNS_NAMES, ann.dns_names.clone()),
        (
            annotations::IP_SANS,
            ann.ip_sans.iter().map(ToString::to_string).collect(),
        ),
        (annotations::URI_SANS, ann.uri_sans.clone()),
    ];
    for (key, list) in lists {
        if !list.is_empty() {
            names.insert(key.to_owned(), list.join(","));
        }
    }
    Volume {
        name: VOLUME.into(),
        projected: Some(ProjectedVolumeSource {
            default_mode: None,
            sources: Some(vec![
                VolumeProjection {
                    pod_certificate: Some(PodCertificateProjection {
                        signer_name: signer.clone(),
                        // Both were checked when the annotations were read.
                        key_type: ua::pod_certificate_key_type(ann.key)
                            .unwrap_or("ECDSAP256")
                            .to_owned(),
                        max_expiration_seconds: ua::pod_certificate_max_expiration(ann.ttl)
                            .ok()
                            .flatten(),
                        credential_bundle_path: Some(ua::CREDENTIAL_BUNDLE_FILE.to_owned()),
                        key_path: Some(tlsmint_api::TLS_KEY_FILE.to_owned()),
                        certificate_chain_path: Some(tlsmint_api::TLS_CERT_FILE.to_owned()),
                        user_annotations: (!names.is_empty()).then_some(names),
                    }),
                    ..VolumeProjection::default()
                },
                VolumeProjection {
                    cluster_trust_bundle: Some(ClusterTrustBundleProjection {
                        signer_name: Some(signer),
                        // Empty selects every bundle of the signer; absent would select none.
                        label_selector: Some(LabelSelector::default()),
                        path: tlsmint_api::CA_CERT_FILE.to_owned(),
                        ..ClusterTrustBundleProjection::default()
                    }),
                    ..VolumeProjection::default()
                },
            ]),
        }),
        ..Volume::default()
    }
}

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                api_version: None,
            }),
            ..EnvVarSource::default()
        }),
        value: None,
    }
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn agent(ann: &PodAnnotations, cfg: &Injection, pod_user: Option<i64>) -> Container {
    // The downward-API variables first: kubelet resolves $(POD_NAME) and friends in the
    // values below from them, and the agent resolves any that are left.
    let mut vars = vec![
        field_env("POD_NAME", "metadata.name"),
        field_env("POD_NAMESPACE", "metadata.namespace"),
        field_env("SERVICE_ACCOUNT", "spec.serviceAccountName"),
        env("TLSMINT_LOG", cfg.agent_log_level.clone()),
        env("TLSMINT_ENDPOINT", cfg.api_endpoint.clone()),
        env("TLSMINT_DIR", AGENT_DIR),
        env("TLSMINT_TOKEN_FILE", format!("{TOKEN_DIR}/token")),
        env("TLSMINT_ROLE", ann.role.clone()),
    ];
    if let Some(interval) = cfg.agent_trust_refresh_interval {
        vars.push(env("TLSMINT_TRUST_REFRESH_INTERVAL", interval.to_string()));
    }
    if let Some(ca) = &cfg.api_ca_pem {
        vars.push(env("TLSMINT_API_CA", ca.clone()));
    }
    if let Some(name) = &cfg.api_server_name {
        vars.push(env("TLSMINT_API_SERVER_NAME", name.clone()));
    }
    if let Some(cn) = &ann.common_name {
        vars.push(env("TLSMINT_COMMON_NAME", cn.clone()));
    }
    let list = |items: Vec<String>| items.join(",");
    if !ann.dns_names.is_empty() {
        vars.push(env("TLSMINT_DNS_NAMES", list(ann.dns_names.clone())));
    }
    if !ann.ip_sans.is_empty() {
        vars.push(env(
            "TLSMINT_IP_SANS",
            list(ann.ip_sans.iter().map(ToString::to_string).collect()),
        ));
    }
    if !ann.uri_sans.is_empty() {
        vars.push(env("TLSMINT_URI_SANS", list(ann.uri_sans.clone())));
    }
    if let Some(ttl) = ann.ttl {
        vars.push(env("TLSMINT_TTL", ttl.to_string()));
    }
    if let Some(key) = ann.key {
        vars.push(env("TLSMINT_KEY_ALGORITHM", key.to_string()));
    }
    if let Some((signal, process)) = &ann.reload.signal {
        vars.push(env("TLSMINT_RELOAD_SIGNAL", signal.as_str()));
        vars.push(env("TLSMINT_RELOAD_PROCESS", process.clone()));
    }
    if let Some(url) = &ann.reload.url {
        vars.push(env("TLSMINT_RELOAD_URL", url.clone()));
    }
    let resources = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Quantity((*v).to_owned())))
            .collect::<BTreeMap<_, _>>()
    };
    Container {
        name: AGENT.into(),
        image: Some(cfg.agent_image.clone()),
        image_pull_policy: Some(cfg.agent_image_pull_policy.clone()),
        command: Some(vec![cfg.agent_command.clone()]),
        env: Some(vars),
        restart_policy: Some("Always".into()),
        startup_probe: Some(Probe {
            exec: Some(ExecAction {
                command: Some(vec![
                    cfg.agent_command.clone(),
                    "probe".into(),
                    format!("--dir={AGENT_DIR}"),
                ]),
            }),
            period_seconds: Some(1),
            failure_threshold: Some(300),
            timeout_seconds: Some(5),
            ..Probe::default()
        }),
        resources: Some(ResourceRequirements {
            requests: Some(resources(&[
                ("cpu", cfg.cpu_request.as_str()),
                ("memory", cfg.memory_request.as_str()),
            ])),
            limits: Some(resources(&[("memory", cfg.memory_limit.as_str())])),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            // With the pod's user the agent inherits the pod's group too (its files stay
            // readable through fsGroup either way).
            run_as_user: Some(pod_user.unwrap_or(65532)),
            run_as_group: pod_user.is_none().then_some(65532),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                add: None,
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![
            VolumeMount {
                name: VOLUME.into(),
                mount_path: AGENT_DIR.into(),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: TOKEN_VOLUME.into(),
                mount_path: TOKEN_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
        ]),
        ..Container::default()
    }
}
