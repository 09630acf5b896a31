//! The loader: runs on every replica (leader or not) and keeps the [`Registry`] (the one
//! CA state, which the issuance API and the controllers read) equal to what the cluster
//! says. It compiles each IssuerRole once, here. It watches PkiMounts, IssuerRoles and the Secrets of the
//! operator's namespace, and loads a mount's CA only when the mount is Ready, its key
//! Secret is present and that Secret holds exactly the published certificate with a
//! matching key. A key Secret that disappears or changes unloads the mount at once, so
//! nothing more is issued under it, even before the mount's status says so.
//!
//! Owns the watch caches it shares with the controllers. It must not write anything to
//! the API server: the leader's controllers do.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::{FutureExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tlsmint_api::conditions;
use tlsmint_api::v1alpha1::{IssuerRole, PkiMount};
use tlsmint_runtime::CancellationToken;
use tlsmint_runtime::health::Check;

use tlsmint_api::conditions::reason;

use super::key_material::KeyMaterial;
use crate::registry::NotReady;
use crate::registry::{MountEntry, MountStatus, OtherGeneration, Registry, RoleEntry};

/// The watch caches the loader keeps (shared read-only with the controllers).
#[derive(Clone)]
pub struct Caches {
    /// Every PkiMount (matching the label selector).
    pub mounts: Store<PkiMount>,
    /// Every IssuerRole (matching the label selector).
    pub roles: Store<IssuerRole>,
    /// The Secrets of the operator's namespace (CA keys, imports, signed intermediates).
    pub secrets: Store<Secret>,
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches")
            .field("mounts", &self.mounts.len())
            .field("roles", &self.roles.len())
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

/// Where the loader watches.
#[derive(Clone, Debug)]
pub struct LoaderConfig {
    /// The operator's namespace (CA key Secrets live there).
    pub namespace: String,
    /// Only PkiMounts and IssuerRoles matching this label selector.
    pub label_selector: Option<String>,
}

/// Starts the watches and the loading task; it stops when `shutdown` is cancelled.
/// `ready` turns true once the first full load is done.
pub fn start(
    client: Client,
    config: LoaderConfig,
    registry: Arc<Registry>,
    ready: Check,
    shutdown: CancellationToken,
) -> (Caches, tokio::task::JoinHandle<()>) {
    let mut selected = watcher::Config::default().any_semantic();
    if let Some(selector) = &config.label_selector {
        selected = selected.labels(selector);
    }
    let (mounts, mounts_writer) = reflector::store();
    let (roles, roles_writer) = reflector::store();
    let (secrets, secrets_writer) = reflector::store();
    let changes = futures::stream::select_all([
        watcher(Api::<PkiMount>::all(client.clone()), selected.clone())
            .default_backoff()
            .reflect(mounts_writer)
            .map_ok(|_| ())
            .boxed(),
        watcher(Api::<IssuerRole>::all(client.clone()), selected)
            .default_backoff()
            .reflect(roles_writer)
            .map_ok(|_| ())
            .boxed(),
        watcher(
            Api::<Secret>::namespaced(client, &config.namespace),
            watcher::Config::default().any_semantic(),
        )
        .default_backoff()
        .reflect(secrets_writer)
        .map_ok(|_| ())
        .boxed(),
    ]);
    let caches = Caches {
        mounts,
        roles,
        secrets,
    };
    let task = tokio::spawn(run(
        caches.clone(),
        config.namespace,
        registry,
        changes,
        ready,
        shutdown,
    ));
    (caches, task)
}

async fn run(
    caches: Caches,
    namespace: String,
    registry: Arc<Registry>,
    mut changes: futures::stream::SelectAll<
        futures::stream::BoxStream<'static, Result<(), watcher::Error>>,
    >,
    ready: Check,
    shutdown: CancellationToken,
) {
    let mut loaded = Loaded::default();
    let mut synced = false;
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => return,
            event = changes.next() => event,
        };
        match event {
            None => return,
            Some(Err(error)) => {
                tracing::warn!(
                    error = &error as &dyn std::error::Error,
                    "loader watch failed; retrying"
                );
                continue;
            }
            Some(Ok(())) => {}
        }
        if !synced {
            let all_ready = [
                is_ready(&caches.mounts),
                is_ready(&caches.roles),
                is_ready(&caches.secrets),
            ];
            if all_ready.contains(&false) {
                continue;
            }
            synced = true;
        }
        // Let a burst of watch events land before recomputing.
        while let Some(Some(Ok(()))) = changes.next().now_or_never() {}
        loaded.refresh(&caches, &namespace, &registry);
        ready.set(true);
    }
}

/// Whether a cache has received its first full list.
pub fn is_ready<K>(store: &Store<K>) -> bool
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    store
        .wait_until_ready()
        .now_or_never()
        .is_some_and(|r| r.is_ok())
}

/// What is loaded, by name, with the inputs it was built from (so an unchanged object is
/// not rebuilt on every event).
#[derive(Default)]
struct Loaded {
    mounts: BTreeMap<String, String>,
    roles: BTreeMap<String, String>,
}

impl Loaded {
    fn refresh(&mut self, caches: &Caches, namespace: &str, registry: &Registry) {
        let secrets: BTreeMap<String, Arc<Secret>> = caches
            .secrets
            .state()
            .into_iter()
            .map(|s| (s.name_any(), s))
            .collect();
        let mut seen = Vec::new();
        for mount in caches.mounts.state() {
            let name = mount.name_any();
            seen.push(name.clone());
            let key_secret = key_secret_name(&mount).and_then(|n| secrets.get(n));
            let fingerprint = mount_fingerprint(&mount, key_secret.map(|s| s.as_ref()));
            if self.mounts.get(&name) == Some(&fingerprint) {
                continue;
            }
            match load_mount(&mount, key_secret.map(|s| s.as_ref())) {
                Ok(loaded) => {
                    if let Some(ca) = loaded.ca() {
                        tracing::info!(mount = %name, x509.serial = %ca.info().serial.to_colon_hex(), "CA loaded");
                    }
                    put_mount(registry, loaded);
                }
                Err(why) => {
                    if registry.ca(&name).is_some() {
                        tracing::warn!(mount = %name, namespace, error = &why as &dyn std::error::Error, "CA unloaded: issuance under this mount stops");
                    }
                    let ready = mount
                        .status
                        .as_ref()
                        .and_then(|s| conditions::find(&s.conditions, conditions::READY));
                    let reason = match ready {
                        Some(c) if c.status != "True" => NotReady::new(&c.reason, &c.message),
                        _ => NotReady::new(
                            why.reason(),
                            format!(
                                "the CA of PkiMount {name} cannot sign: {}",
                                tlsmint_ca::report(&why)
                            ),
                        ),
                    };
                    put_mount(
                        registry,
                        MountEntry {
                            name: name.clone(),
                            path: mount.mount_path().to_owned(),
                            status: MountStatus::NotReady(reason),
                            crl_expiry: mount.spec.crl.expiry.as_std(),
                            trusted_roots: trusted_roots(&mount),
                            other_generations: Vec::new(),
                        },
                    );
                }
            }
            self.mounts.insert(name, fingerprint);
        }
        for gone in self.mounts.keys().filter(|n| !seen.contains(n)) {
            tracing::info!(mount = %gone, "PkiMount deleted: CA unloaded");
            registry.remove_mount(gone);
        }
        self.mounts.retain(|name, _| seen.contains(name));
        self.refresh_roles(caches, registry);
    }

    fn refresh_roles(&mut self, caches: &Caches, registry: &Registry) {
        let mut seen = Vec::new();
        for role in caches.roles.state() {
            let name = role.name_any();
            seen.push(name.clone());
            let fingerprint = format!(
                "{}/{}",
                role.uid().unwrap_or_default(),
                role.metadata.generation.unwrap_or_default()
            );
            if self.roles.get(&name) == Some(&fingerprint) {
                continue;
            }
            registry.put_role(RoleEntry::from_object(&role));
            self.roles.insert(name, fingerprint);
        }
        for gone in self.roles.keys().filter(|n| !seen.contains(n)) {
            registry.remove_role(gone);
        }
        self.roles.retain(|name, _| seen.contains(name));
    }
}

/// The name of the Secret that holds `mount`'s key, from its status.
fn key_secret_name(mount: &PkiMount) -> Option<&str> {
    mount.status.as_ref()?.key_secret_name.as_deref()
}

fn mount_fingerprint(mount: &PkiMount, secret: Option<&Secret>) -> String {
    let status = mount.status.as_ref();
    let trust = status
        .map(|s| {
            let phase = s
                .rotation
                .as_ref()
                .map(|r| r.phase.as_str())
                .unwrap_or_default();
            format!("{phase}{}", s.trusted_roots.concat())
        })
        .unwrap_or_default();
    format!(
        "{}/{}/{}/{}/{}/{}/{}",
        mount.uid().unwrap_or_default(),
        mount.metadata.generation.unwrap_or_default(),
        status.is_some_and(|s| conditions::is_ready(&s.conditions)),
        status
            .and_then(|s| s.serial_number.as_deref())
            .unwrap_or_default(),
        key_secret_name(mount).unwrap_or_default(),
        secret
            .and_then(|s| s.resource_version())
            .unwrap_or_default(),
        super::certificate_request::digest::short_hex(trust.as_bytes()),
    )
}

/// Why a mount's CA is not loaded (for logs and, when the mount's status has no reason
/// of its own, for callers). Each variant names the step, with the engine's cause kept as
/// its `source()`.
#[derive(Debug, thiserror::Error)]
enum LoadError {
    #[error("the mount has no status yet")]
    NoStatus,
    #[error("the mount is not Ready")]
    NotReady,
    #[error("the mount's status has no certificate")]
    NoCertificate,
    #[error("the key Secret is missing")]
    SecretMissing,
    #[error("reading the key Secret failed")]
    Material(#[source] super::key_material::MaterialError),
    #[error("status.certificate is unreadable")]
    PublishedUnreadable(#[source] tlsmint_ca::Error),
    #[error("the key Secret holds another certificate than the published one")]
    OtherCertificate,
    #[error("the spec is invalid")]
    InvalidSpec(#[source] crate::convert::ConvertError),
    #[error("loading the CA key pair from the key Secret failed")]
    KeyPair(#[source] tlsmint_ca::Error),
    #[error("the mount's options are invalid")]
    Options(#[source] tlsmint_ca::Error),
}

impl LoadError {
    /// The `conditions::reason` value callers see when the mount's status has none.
    fn reason(&self) -> &'static str {
        match self {
            LoadError::NoStatus | LoadError::NotReady => reason::PENDING,
            LoadError::NoCertificate
            | LoadError::SecretMissing
            | LoadError::Material(super::key_material::MaterialError::Missing { .. }) => {
                reason::KEY_MISSING
            }
            LoadError::Material(_)
            | LoadError::PublishedUnreadable(_)
            | LoadError::OtherCertificate
            | LoadError::KeyPair(_) => reason::KEY_MISMATCH,
            LoadError::InvalidSpec(_) | LoadError::Options(_) => reason::INVALID_SPEC,
        }
    }
}

/// Builds the CA of `mount` if it may sign; otherwise says why not.
fn load_mount(mount: &PkiMount, secret: Option<&Secret>) -> Result<MountEntry, LoadError> {
    let status = mount.status.as_ref().ok_or(LoadError::NoStatus)?;
    if !conditions::is_ready(&status.conditions) {
        return Err(LoadError::NotReady);
    }
    let published = status
        .certificate
        .as_deref()
        .ok_or(LoadError::NoCertificate)?;
    let secret = secret.ok_or(LoadError::SecretMissing)?;
    let material = KeyMaterial::read(
        secret,
        key_secret_name(mount).unwrap_or_default(),
        mount.spec.import_from.as_ref(),
    )
    .map_err(LoadError::Material)?;
    let expected =
        tlsmint_ca::pem::decode_certificate(published).map_err(LoadError::PublishedUnreadable)?;
    if material.certificate != expected {
        return Err(LoadError::OtherCertificate);
    }
    let settings =
        crate::convert::mount(&mount.name_any(), &mount.spec).map_err(LoadError::InvalidSpec)?;
    let ca = material
        .into_ca(&mount.name_any())
        .map_err(LoadError::KeyPair)?
        .with_options(settings.options)
        .map_err(LoadError::Options)?;
    Ok(MountEntry {
        name: mount.name_any(),
        path: mount.mount_path().to_owned(),
        status: MountStatus::Ready(Arc::new(ca)),
        crl_expiry: mount.spec.crl.expiry.as_std(),
        trusted_roots: trusted_roots(mount),
        other_generations: other_generations(mount),
    })
}

/// The generations of a rotation under way that do not sign (for the Vault API's issuer
/// listing). An unreadable certificate is left out: status is written by the operator.
fn other_generations(mount: &PkiMount) -> Vec<OtherGeneration> {
    let Some(rotation) = mount.status.as_ref().and_then(|s| s.rotation.as_ref()) else {
        return Vec::new();
    };
    [("next", &rotation.next), ("previous", &rotation.previous)]
        .into_iter()
        .filter_map(|(state, generation)| {
            let generation = generation.as_ref()?;
            let der = tlsmint_ca::pem::decode_certificate(&generation.certificate).ok()?;
            Some(OtherGeneration {
                state,
                phase: rotation.phase.as_str(),
                certificate_der: der,
                ca_chain_pem: generation.ca_chain.clone(),
            })
        })
        .collect()
}

/// The roots the mount's status says to trust (empty before the operator computed them).
fn trusted_roots(mount: &PkiMount) -> Vec<String> {
    mount
        .status
        .as_ref()
        .map(|s| s.trusted_roots.clone())
        .unwrap_or_default()
}

/// Puts a mount; a path another mount already serves is logged and not served.
fn put_mount(registry: &Registry, entry: MountEntry) {
    let name = entry.name.clone();
    if let Err(conflict) = registry.put_mount(entry) {
        tracing::warn!(mount = %name, error = &conflict as &dyn std::error::Error, "mount not served");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use tlsmint_api::v1alpha1::{PkiMountSpec, PkiMountStatus};
    use tlsmint_ca::CertificateAuthority;
    use tlsmint_ca::ExposeSecret as _;

    fn ready_mount(certificate: &str) -> PkiMount {
        let mut mount = PkiMount::new(
            "pki",
            serde_json::from_value::<PkiMountSpec>(serde_json::json!({
                "type": "Root",
                "subject": { "commonName": "Test Root" },
            }))
            .unwrap(),
        );
        mount.status = Some(PkiMountStatus {
            certificate: Some(certificate.to_owned()),
            key_secret_name: Some("pki-ca".into()),
            conditions: vec![conditions::ready(
                "Ready",
                "ok",
                None,
                crate::controllers::times::k8s_time(time::OffsetDateTime::now_utc()),
            )],
            ..PkiMountStatus::default()
        });
        mount
    }

    fn secret(cert: &str, key: &str) -> Secret {
        Secret {
            data: Some(BTreeMap::from([
                (
                    tlsmint_api::TLS_CERT_FILE.to_owned(),
                    ByteString(cert.as_bytes().to_vec()),
                ),
                (
                    tlsmint_api::TLS_KEY_FILE.to_owned(),
                    ByteString(key.as_bytes().to_vec()),
                ),
            ])),
            ..Secret::default()
        }
    }

    /// A key that is not PEM is reported as such, not as "does not match".
    #[test]
    fn names_the_real_cause_of_a_key_pair_failure() {
        let config = tlsmint_ca::CaConfig {
            name: "pki".into(),
            subject: tlsmint_ca::Subject::with_common_name("Test Root"),
            key: tlsmint_ca::KeySpec::EcdsaP256,
            ttl: std::time::Duration::from_secs(24 * 3600),
        };
        let ca =
            CertificateAuthority::generate_root(&config, time::OffsetDateTime::now_utc()).unwrap();
        let cert = ca.certificate_pem().to_owned();
        let mount = ready_mount(&cert);
        let bad_key = "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n";
        let err = load_mount(&mount, Some(&secret(&cert, bad_key))).unwrap_err();
        assert!(matches!(err, LoadError::Material(_)), "{err}");
        let shown = tlsmint_ca::report(&err);
        assert!(shown.contains("private key PEM"), "{shown}");
        assert!(!shown.contains("does not match"), "{shown}");

        let other =
            CertificateAuthority::generate_root(&config, time::OffsetDateTime::now_utc()).unwrap();
        let other_key = other
            .key()
            .to_pem(tlsmint_ca::KeyEncoding::Pkcs8)
            .unwrap()
            .expose_secret()
            .to_owned();
        let err = load_mount(&mount, Some(&secret(&cert, &other_key))).unwrap_err();
        assert!(tlsmint_ca::report(&err).contains("does not match"), "{err}");

        assert!(matches!(
            load_mount(&mount, None),
            Err(LoadError::SecretMissing)
        ));
    }
}
