//! The one in-memory CA state of a replica: mounts (by name and by Vault
//! path), each with its CA or the reason it is not ready, and roles (by name)
//! with their spec, compiled once into the engine's [`Role`] (or the reason
//! they do not compile). The loader writes it (dev mode does, once); the
//! issuance APIs and the controllers read it.
//!
//! Owns: lookups, their errors, the one subject check ([`RoleEntry::allows`],
//! by `IssuerRoleSpec`) and the change notices. Must not: talk to Kubernetes,
//! generate CAs, or check names (the API does that with the engine).
//!
//! # Interface for the loader (and for dev mode)
//!
//! The registry is shared as `Arc<Registry>`. Writers call, from watch events:
//!
//! ```text
//! registry.put_mount(MountEntry { name, path, status, crl_expiry, trusted_roots, .. }) -> Result<(), PathConflict>
//!     MountStatus::Ready(Arc<CertificateAuthority>)  once the CA is loaded/generated
//!     MountStatus::NotReady(NotReady { reason, message })  e.g. KeyMissing (answers FailedPrecondition)
//! registry.remove_mount(name)
//! registry.put_role(RoleEntry::from_spec(name, &spec))   // compiles the spec; an invalid
//!                                                         // spec is kept as Invalid(reason)
//! registry.remove_role(name)
//! ```
//!
//! `put_*` replaces the whole entry (it is cheap: entries are `Arc`s). A
//! role only refers to its mount by name, so mounts and roles may arrive in
//! any order. Readers never block writers for long: every read clones an
//! `Arc` under a short lock. [`Registry::changes`] lets background tasks (the
//! CRL builder) wake up when anything changes; [`Registry::notices`] names what
//! changed ([`Notice`]), so a controller wakes only the objects that depend on it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use tlsmint_api::v1alpha1::{IssuerRole, IssuerRoleSpec};
use tlsmint_ca::{CertificateAuthority, Role};
use tokio::sync::{broadcast, watch};

/// A mount as the API sees it.
#[derive(Debug)]
pub struct MountEntry {
    /// The PkiMount's name.
    pub name: String,
    /// Its Vault path (`spec.path` or the name), without slashes around it.
    pub path: String,
    /// Its CA, or why it cannot sign.
    pub status: MountStatus,
    /// Validity of each CRL (`spec.crl.expiry`).
    pub crl_expiry: Duration,
    /// Every root to trust for this mount, PEM (`status.trustedRoots`: old and new during a
    /// CA rotation). Empty: the root above the CA.
    pub trusted_roots: Vec<String>,
    /// The CA generations other than the signing one, during a rotation
    /// (`status.rotation.next` and `.previous`).
    pub other_generations: Vec<OtherGeneration>,
}

/// A CA generation of a mount that does not sign right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherGeneration {
    /// `next` (prepared, not signing yet) or `previous` (trusted until retired).
    pub state: &'static str,
    /// The rotation phase, e.g. `Published`.
    pub phase: &'static str,
    /// Its certificate, DER.
    pub certificate_der: Vec<u8>,
    /// Its chain, PEM, this CA first.
    pub ca_chain_pem: Vec<String>,
}

/// Whether a mount can sign.
#[derive(Debug, Clone)]
pub enum MountStatus {
    /// The CA is loaded and checked.
    Ready(Arc<CertificateAuthority>),
    /// The mount cannot sign; the reason says why (shown to callers).
    NotReady(NotReady),
}

/// Why a mount cannot sign: a `conditions::reason` value (e.g. `KeyMissing`) and a
/// message for people, kept apart until they are shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReady {
    /// A `conditions::reason` value.
    pub reason: String,
    /// For people.
    pub message: String,
}

impl NotReady {
    /// A reason and its message.
    pub fn new(reason: impl Into<String>, message: impl Into<String>) -> Self {
        NotReady {
            reason: reason.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.message.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.reason, self.message)
        }
    }
}

impl MountEntry {
    /// What every `ca.crt` for this mount holds: all trusted roots, one PEM after the
    /// other (empty when the mount has neither trusted roots nor a CA).
    pub fn trust_bundle_pem(&self) -> String {
        if !self.trusted_roots.is_empty() {
            return self.trusted_roots.concat();
        }
        self.ca()
            .map(|ca| tlsmint_ca::pem::encode_certificate(ca.root_der()))
            .unwrap_or_default()
    }

    /// The CA when the mount is ready.
    pub fn ca(&self) -> Option<&Arc<CertificateAuthority>> {
        match &self.status {
            MountStatus::Ready(ca) => Some(ca),
            MountStatus::NotReady(_) => None,
        }
    }
}

/// A role as the API sees it.
#[derive(Debug)]
pub struct RoleEntry {
    /// The IssuerRole's name.
    pub name: String,
    /// The PkiMount it issues through (`spec.mountRef.name`).
    pub mount: String,
    /// The spec it was compiled from (subjects, default key).
    pub spec: Arc<IssuerRoleSpec>,
    /// `metadata.generation` of that spec (`None` in dev mode).
    pub generation: Option<i64>,
    /// The compiled role, or why the spec cannot be used.
    pub status: RoleStatus,
}

/// Whether a role's spec compiled.
#[derive(Debug, Clone)]
pub enum RoleStatus {
    /// Ready to check requests.
    Ready(Arc<Role>),
    /// The spec is invalid; the text says why.
    Invalid(String),
}

impl RoleEntry {
    /// Compiles an `IssuerRole` spec (the only place roles are compiled); an invalid one
    /// becomes [`RoleStatus::Invalid`].
    pub fn from_spec(name: &str, spec: &IssuerRoleSpec) -> Self {
        let status = match crate::convert::role(name, spec) {
            Ok(role) => RoleStatus::Ready(Arc::new(role)),
            Err(err) => RoleStatus::Invalid(tlsmint_ca::report(&err)),
        };
        RoleEntry {
            name: name.to_owned(),
            mount: spec.mount_ref.name.clone(),
            spec: Arc::new(spec.clone()),
            generation: None,
            status,
        }
    }

    /// Compiles an `IssuerRole` object, remembering its generation.
    pub fn from_object(role: &IssuerRole) -> Self {
        let name = role.metadata.name.as_deref().unwrap_or_default();
        RoleEntry {
            generation: role.metadata.generation,
            ..Self::from_spec(name, &role.spec)
        }
    }

    /// The compiled role, when the spec compiled.
    pub fn compiled(&self) -> Option<&Arc<Role>> {
        match &self.status {
            RoleStatus::Ready(role) => Some(role),
            RoleStatus::Invalid(_) => None,
        }
    }

    /// Whether a caller in `namespace` as `service_account` is one of the subjects.
    pub fn allows(&self, namespace: &str, service_account: &str) -> bool {
        self.spec.allows_subject(namespace, service_account)
    }

    /// Whether a CertificateRequest in `namespace` may use the role.
    pub fn allows_namespace(&self, namespace: &str) -> bool {
        self.spec.allows_namespace(namespace)
    }
}

/// Two mounts claim the same Vault path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("path {path:?} of PkiMount {mount} is already served by PkiMount {other}")]
pub struct PathConflict {
    /// The mount being put.
    pub mount: String,
    /// The path.
    pub path: String,
    /// The mount already there.
    pub other: String,
}

/// Why a role cannot be used right now. Maps to NotFound / FailedPrecondition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// No such role (or not under the mount the Vault path names).
    #[error("role {role:?} not found{}", under(.mount))]
    RoleNotFound {
        /// The role asked for.
        role: String,
        /// The mount path it was asked under (Vault API), if any.
        mount: Option<String>,
    },
    /// No such mount.
    #[error("mount {0:?} not found")]
    MountNotFound(String),
    /// The role's spec is invalid.
    #[error("role {role:?} is not ready: {reason}")]
    RoleNotReady {
        /// The role.
        role: String,
        /// Why.
        reason: String,
    },
    /// The mount cannot sign.
    #[error("mount {mount:?} is not ready: {reason}")]
    MountNotReady {
        /// The mount.
        mount: String,
        /// Why.
        reason: NotReady,
    },
}

fn under(mount: &Option<String>) -> String {
    mount
        .as_ref()
        .map(|m| format!(" under mount path {m:?}"))
        .unwrap_or_default()
}

/// A role ready to issue, with its mount's CA.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The role entry (subjects, name).
    pub entry: Arc<RoleEntry>,
    /// The compiled role.
    pub role: Arc<Role>,
    /// The mount entry.
    pub mount: Arc<MountEntry>,
    /// The mount's CA.
    pub ca: Arc<CertificateAuthority>,
}

#[derive(Debug, Default)]
struct State {
    mounts: HashMap<String, Arc<MountEntry>>,
    paths: HashMap<String, String>,
    roles: HashMap<String, Arc<RoleEntry>>,
}

/// What changed in the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// The mount of this name was put, replaced or removed.
    Mount(String),
    /// The role of this name was put, replaced or removed.
    Role(String),
    /// Notices were lost (a reader fell more than [`NOTICE_BACKLOG`] behind):
    /// anything may have changed.
    Everything,
}

impl Notice {
    /// Whether an object that reads `mount` and (when given) `role` must look again.
    pub fn concerns(&self, mount: Option<&str>, role: Option<&str>) -> bool {
        match self {
            Notice::Mount(name) => mount == Some(name.as_str()),
            Notice::Role(name) => role == Some(name.as_str()),
            Notice::Everything => true,
        }
    }
}

/// Notices a slow reader may fall behind by before it is told [`Notice::Everything`].
pub const NOTICE_BACKLOG: usize = 1024;

/// Mounts and roles, shared by the controllers (writers) and the APIs (readers).
#[derive(Debug)]
pub struct Registry {
    state: RwLock<State>,
    changed: watch::Sender<u64>,
    notices: broadcast::Sender<Notice>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            state: RwLock::new(State::default()),
            changed: watch::channel(0).0,
            notices: broadcast::channel(NOTICE_BACKLOG).0,
        }
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn bump(&self, notice: Notice) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
        // No receiver is fine: nobody is waiting.
        let _ = self.notices.send(notice);
    }

    /// A stream of what changed, one [`Notice`] per mount or role put, replaced or
    /// removed, so controllers can re-check only what depends on it. A reader that falls
    /// behind gets [`Notice::Everything`] in place of what it missed.
    pub fn notices(&self) -> impl futures::Stream<Item = Notice> + Send + 'static {
        let rx = self.notices.subscribe();
        futures::stream::unfold(rx, |mut rx| async move {
            match rx.recv().await {
                Ok(notice) => Some((notice, rx)),
                Err(broadcast::error::RecvError::Lagged(_)) => Some((Notice::Everything, rx)),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        })
    }

    /// The CA of mount `name`, when it can sign.
    pub fn ca(&self, name: &str) -> Option<Arc<CertificateAuthority>> {
        self.read().mounts.get(name)?.ca().cloned()
    }

    /// Adds or replaces a mount. Fails, changing nothing, when another mount
    /// already serves the same path.
    pub fn put_mount(&self, entry: MountEntry) -> Result<(), PathConflict> {
        let path = normalize_path(&entry.path).to_owned();
        let name = {
            let mut state = self.write();
            if let Some(other) = state.paths.get(&path)
                && *other != entry.name
            {
                return Err(PathConflict {
                    mount: entry.name.clone(),
                    path,
                    other: other.clone(),
                });
            }
            if let Some(old) = state.mounts.get(&entry.name) {
                let old_path = old.path.clone();
                state.paths.remove(&old_path);
            }
            state.paths.insert(path.clone(), entry.name.clone());
            let entry = MountEntry { path, ..entry };
            let name = entry.name.clone();
            state.mounts.insert(name.clone(), Arc::new(entry));
            name
        };
        self.bump(Notice::Mount(name));
        Ok(())
    }

    /// Removes a mount (its roles stay, answering "mount not found").
    pub fn remove_mount(&self, name: &str) {
        let removed = {
            let mut state = self.write();
            let old = state.mounts.remove(name);
            if let Some(old) = &old {
                state.paths.remove(&old.path);
            }
            old.is_some()
        };
        if removed {
            self.bump(Notice::Mount(name.to_owned()));
        }
    }

    /// Adds or replaces a role.
    pub fn put_role(&self, entry: RoleEntry) {
        let name = entry.name.clone();
        self.write().roles.insert(name.clone(), Arc::new(entry));
        self.bump(Notice::Role(name));
    }

    /// Removes a role.
    pub fn remove_role(&self, name: &str) {
        if self.write().roles.remove(name).is_some() {
            self.bump(Notice::Role(name.to_owned()));
        }
    }

    /// A mount by name.
    pub fn mount(&self, name: &str) -> Option<Arc<MountEntry>> {
        self.read().mounts.get(name).cloned()
    }

    /// A mount by its Vault path.
    pub fn mount_by_path(&self, path: &str) -> Option<Arc<MountEntry>> {
        let state = self.read();
        let name = state.paths.get(normalize_path(path))?;
        state.mounts.get(name).cloned()
    }

    /// Every mount.
    pub fn mounts(&self) -> Vec<Arc<MountEntry>> {
        self.read().mounts.values().cloned().collect()
    }

    /// A role by name.
    pub fn role(&self, name: &str) -> Option<Arc<RoleEntry>> {
        self.read().roles.get(name).cloned()
    }

    /// Every role of a mount.
    pub fn roles_of(&self, mount: &str) -> Vec<Arc<RoleEntry>> {
        self.read()
            .roles
            .values()
            .filter(|r| r.mount == mount)
            .cloned()
            .collect()
    }

    /// Wakes up when mounts or roles are put or removed.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The names of every role (ready or not).
    pub fn role_names(&self) -> Vec<String> {
        self.read().roles.keys().cloned().collect()
    }

    /// The role and its mount's CA, ready to issue (gRPC: roles by name).
    pub fn resolve(&self, role: &str) -> Result<Resolved, LookupError> {
        let (entry, mount) = {
            let state = self.read();
            let entry =
                state
                    .roles
                    .get(role)
                    .cloned()
                    .ok_or_else(|| LookupError::RoleNotFound {
                        role: role.to_owned(),
                        mount: None,
                    })?;
            let mount = state.mounts.get(&entry.mount).cloned();
            (entry, mount)
        };
        finish(entry, mount)
    }

    /// The role under the mount served at `path` (Vault API). A role of
    /// another mount is "not found" here, as Vault answers.
    pub fn resolve_at_path(&self, path: &str, role: &str) -> Result<Resolved, LookupError> {
        let not_found = || LookupError::RoleNotFound {
            role: role.to_owned(),
            mount: Some(normalize_path(path).to_owned()),
        };
        let (entry, mount) = {
            let state = self.read();
            let mount_name = state
                .paths
                .get(normalize_path(path))
                .ok_or_else(not_found)?;
            let entry = state.roles.get(role).cloned().ok_or_else(not_found)?;
            if entry.mount != *mount_name {
                return Err(not_found());
            }
            let mount = state.mounts.get(mount_name).cloned();
            (entry, mount)
        };
        finish(entry, mount)
    }
}

fn finish(entry: Arc<RoleEntry>, mount: Option<Arc<MountEntry>>) -> Result<Resolved, LookupError> {
    let role = match &entry.status {
        RoleStatus::Ready(role) => role.clone(),
        RoleStatus::Invalid(reason) => {
            return Err(LookupError::RoleNotReady {
                role: entry.name.clone(),
                reason: reason.clone(),
            });
        }
    };
    let mount = mount.ok_or_else(|| LookupError::MountNotFound(entry.mount.clone()))?;
    let ca = match &mount.status {
        MountStatus::Ready(ca) => ca.clone(),
        MountStatus::NotReady(reason) => {
            return Err(LookupError::MountNotReady {
                mount: mount.name.clone(),
                reason: reason.clone(),
            });
        }
    };
    Ok(Resolved {
        entry,
        role,
        mount,
        ca,
    })
}

/// A Vault path without leading or trailing slashes.
pub fn normalize_path(path: &str) -> &str {
    path.trim_matches('/')
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
