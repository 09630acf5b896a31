//! The in-memory view of usable CAs and roles that the issuance API and the
//! CertificateRequest controller read: every PkiMount whose CA is loaded and verified, and
//! every IssuerRole compiled into the engine's `Role`. The loader (on every replica) fills
//! it; [`CatalogSink`]s get every change, so the issuance API's registry can follow it
//! without knowing about watches.
//!
//! Owns the view and the hook. It must not talk to the API server and must not decide
//! readiness: the loader decides what is loaded.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tlsmint_api::v1alpha1::RoleSubject;
use tlsmint_ca::{CertificateAuthority, Role};

/// A mount whose CA can sign: its key Secret is present and matches the published
/// certificate, and its status is Ready.
#[derive(Debug)]
pub struct LoadedMount {
    /// The PkiMount's name.
    pub name: String,
    /// Its path in the Vault-compatible API (spec.path or the name).
    pub path: String,
    /// The CA, with the mount's options (maxTTL, leafNotAfterBehavior, URLs).
    pub ca: Arc<CertificateAuthority>,
    /// How long each CRL is valid (spec.crl.expiry).
    pub crl_expiry: Duration,
}

/// An IssuerRole compiled for the engine.
#[derive(Debug)]
pub struct LoadedRole {
    /// The IssuerRole's name.
    pub name: String,
    /// The PkiMount that signs for it.
    pub mount: String,
    /// Name policy and certificate profile.
    pub role: Arc<Role>,
    /// Who may use it.
    pub subjects: Vec<RoleSubject>,
}

/// Why a mount is not (or no longer) in the catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MountGone {
    /// The PkiMount was deleted.
    Deleted,
    /// It exists but cannot sign (not Ready, key missing or mismatched).
    NotReady {
        /// Its API path.
        path: String,
        /// Why, for callers (the mount's Ready reason and message when it has them).
        reason: crate::registry::NotReady,
        /// Its CRL validity.
        crl_expiry: Duration,
    },
}

/// Why a role is not (or no longer) in the catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleGone {
    /// The IssuerRole was deleted.
    Deleted,
    /// Its spec does not compile.
    Invalid {
        /// Its mount.
        mount: String,
        /// Its subjects.
        subjects: Vec<RoleSubject>,
        /// Why, for callers.
        reason: String,
    },
}

/// Receives every change of the catalog (e.g. the issuance API's registry). Called from the
/// loader's task: implementations must be quick and must not block.
pub trait CatalogSink: Send + Sync + 'static {
    /// `mount` can sign now (new, or its CA or options changed).
    fn mount_loaded(&self, mount: Arc<LoadedMount>);
    /// The mount `name` cannot sign (deleted, or not Ready: key missing or mismatched...).
    fn mount_removed(&self, name: &str, why: &MountGone);
    /// `role` is usable now (new or changed).
    fn role_loaded(&self, role: Arc<LoadedRole>);
    /// The role `name` is gone or does not compile.
    fn role_removed(&self, name: &str, why: &RoleGone);
}

#[derive(Default)]
struct State {
    mounts: BTreeMap<String, Arc<LoadedMount>>,
    roles: BTreeMap<String, Arc<LoadedRole>>,
    sinks: Vec<Arc<dyn CatalogSink>>,
}

/// The catalog. Cheap to clone; all clones share one view.
#[derive(Clone)]
pub struct Catalog {
    state: Arc<RwLock<State>>,
    version: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog {
            state: Arc::default(),
            version: Arc::new(tokio::sync::watch::channel(0).0),
        }
    }
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.read();
        f.debug_struct("Catalog")
            .field("mounts", &state.mounts.keys().collect::<Vec<_>>())
            .field("roles", &state.roles.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a sink; it is first told about everything already loaded.
    pub fn subscribe(&self, sink: Arc<dyn CatalogSink>) {
        let mut state = self.write();
        for mount in state.mounts.values() {
            sink.mount_loaded(mount.clone());
        }
        for role in state.roles.values() {
            sink.role_loaded(role.clone());
        }
        state.sinks.push(sink);
    }

    /// A stream that yields once after every change of what is loaded (a mount or role
    /// loaded, replaced or unloaded), so controllers can re-check what waited for it.
    pub fn changes(&self) -> impl futures::Stream<Item = ()> + Send + 'static {
        let rx = self.version.subscribe();
        futures::stream::unfold(rx, |mut rx| async move {
            rx.changed().await.ok()?;
            Some(((), rx))
        })
    }

    fn bump(&self) {
        self.version.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// The loaded mount `name`.
    pub fn mount(&self, name: &str) -> Option<Arc<LoadedMount>> {
        self.read().mounts.get(name).cloned()
    }

    /// The loaded role `name`.
    pub fn role(&self, name: &str) -> Option<Arc<LoadedRole>> {
        self.read().roles.get(name).cloned()
    }

    /// Loads or replaces a mount.
    pub fn put_mount(&self, mount: Arc<LoadedMount>) {
        let mut state = self.write();
        for sink in &state.sinks {
            sink.mount_loaded(mount.clone());
        }
        state.mounts.insert(mount.name.clone(), mount);
        drop(state);
        self.bump();
    }

    /// Marks a mount as unable to sign (sinks are told every time, so they can show the
    /// latest reason).
    pub fn remove_mount(&self, name: &str, why: &MountGone) {
        let mut state = self.write();
        let removed = state.mounts.remove(name).is_some();
        for sink in &state.sinks {
            sink.mount_removed(name, why);
        }
        drop(state);
        if removed {
            self.bump();
        }
    }

    /// Loads or replaces a role.
    pub fn put_role(&self, role: Arc<LoadedRole>) {
        let mut state = self.write();
        for sink in &state.sinks {
            sink.role_loaded(role.clone());
        }
        state.roles.insert(role.name.clone(), role);
        drop(state);
        self.bump();
    }

    /// Marks a role as unusable (sinks are told every time).
    pub fn remove_role(&self, name: &str, why: &RoleGone) {
        let mut state = self.write();
        let removed = state.roles.remove(name).is_some();
        for sink in &state.sinks {
            sink.role_removed(name, why);
        }
        drop(state);
        if removed {
            self.bump();
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl CatalogSink for Recorder {
        fn mount_loaded(&self, mount: Arc<LoadedMount>) {
            self.0
                .lock()
                .unwrap()
                .push(format!("+mount {}", mount.name));
        }
        fn mount_removed(&self, name: &str, _why: &MountGone) {
            self.0.lock().unwrap().push(format!("-mount {name}"));
        }
        fn role_loaded(&self, role: Arc<LoadedRole>) {
            self.0.lock().unwrap().push(format!("+role {}", role.name));
        }
        fn role_removed(&self, name: &str, _why: &RoleGone) {
            self.0.lock().unwrap().push(format!("-role {name}"));
        }
    }

    fn role(name: &str) -> Arc<LoadedRole> {
        Arc::new(LoadedRole {
            name: name.into(),
            mount: "pki".into(),
            role: Arc::new(Role {
                policy: tlsmint_ca::Policy::default(),
                profile: tlsmint_ca::LeafProfile::default(),
            }),
            subjects: vec![RoleSubject::new("team-a", "*")],
        })
    }

    #[tokio::test]
    async fn changes_are_announced_only_when_the_view_changes() {
        use futures::StreamExt;
        let catalog = Catalog::new();
        let mut changes = Box::pin(catalog.changes());
        catalog.remove_role("absent", &RoleGone::Deleted);
        catalog.put_role(role("web"));
        assert_eq!(changes.next().await, Some(()));
        let pending = futures::FutureExt::now_or_never(changes.next());
        assert_eq!(pending, None, "one change, one wake-up");
    }

    #[test]
    fn sinks_see_the_current_view_then_every_change() {
        let catalog = Catalog::new();
        catalog.put_role(role("web"));
        let sink = Arc::new(Recorder::default());
        catalog.subscribe(sink.clone());
        catalog.put_role(role("db"));
        catalog.remove_role("web", &RoleGone::Deleted);
        catalog.remove_mount("absent", &MountGone::Deleted);
        assert_eq!(
            *sink.0.lock().unwrap(),
            vec!["+role web", "+role db", "-role web", "-mount absent"]
        );
        assert!(catalog.role("db").is_some());
        assert!(catalog.role("web").is_none());
    }
}
