//! The operator's controllers (PkiMount, IssuerRole, CertificateRequest), the loader that
//! keeps the in-memory CA state (`crate::registry`) on every replica, and what they share: the [`Context`],
//! errors, backoff, metrics and the write helpers.
//!
//! Owns the wiring of the kube-runtime controllers and their watches. The controllers run
//! only on the leader ([`run`] is started and aborted by `crate::leader`); the loader runs
//! on every replica. Nothing here serves the issuance API: it reads the `crate::registry::Registry`.

pub mod apply;
pub mod certificate_request;
pub mod error;
pub mod issuer_role;
pub mod key_material;
pub mod loader;
pub mod metrics;
pub mod missed_injection;
pub mod pki_mount;
pub mod pod_certificate;
pub mod revocation_hook;
pub mod times;
pub mod trust_bundles;
pub mod trust_config_maps;

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::runtime::controller::{self, Controller};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use tlsmint_api::v1alpha1::{CertificateRequest, IssuerRole, PkiMount};
use tlsmint_runtime::CancellationToken;

use crate::registry::{Notice, Registry};
use loader::Caches;
use metrics::Metrics;
use revocation_hook::RevocationSink;

/// What every reconcile gets.
pub struct Context {
    /// The API client (not rate-limited: kube-rs has no client-side QPS limit).
    pub client: Client,
    /// Publishes Events.
    pub recorder: Recorder,
    /// The operator's metrics.
    pub metrics: Arc<Metrics>,
    /// The operator's namespace (CA key Secrets, the Lease).
    pub namespace: String,
    /// The one CA state (mounts and compiled roles), kept by the loader.
    pub registry: Arc<Registry>,
    /// The loader's watch caches of mounts, roles and the operator namespace's Secrets.
    pub caches: Caches,
    /// Where revocations are recorded for the CRL.
    pub revocations: Arc<dyn RevocationSink>,
    /// Only objects matching this label selector are reconciled.
    pub label_selector: Option<String>,
    /// Most reconciles of one kind running at once.
    pub concurrency: u16,
    /// Where key generation and signing run.
    pub cpu: tlsmint_runtime::cpu::CpuPool,
    /// Failed reconciles in a row, per object, for [`retry`]'s backoff.
    pub failures: Failures,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("namespace", &self.namespace)
            .field("registry", &self.registry)
            .field("label_selector", &self.label_selector)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// Publishes an Event about `object`; a failure is logged, never fatal. Notes must not
    /// carry key material.
    pub async fn publish(
        &self,
        object: ObjectReference,
        type_: EventType,
        reason: &str,
        note: String,
        action: &str,
    ) {
        let mut note = note;
        if note.len() > 1000 {
            let mut cut = 1000;
            while !note.is_char_boundary(cut) {
                cut -= 1;
            }
            note.truncate(cut);
        }
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: action.to_owned(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, &object).await {
            tracing::warn!(
                k8s.kind = object.kind.as_deref().unwrap_or_default(),
                k8s.name = object.name.as_deref().unwrap_or_default(),
                error = &error as &dyn std::error::Error,
                "publishing an Event failed"
            );
        }
    }

    /// Runtime settings of every controller: bounded concurrency keeps memory, open
    /// connections and API-server latency (so Lease renewals) in check during a burst.
    fn controller_config(&self) -> controller::Config {
        controller::Config::default().concurrency(self.concurrency)
    }

    fn watch_config(&self) -> watcher::Config {
        let config = watcher::Config::default().any_semantic();
        match &self.label_selector {
            Some(selector) => config.labels(selector),
            None => config,
        }
    }
}

/// Runs the three controllers until `stop` is cancelled (or the task is aborted when the
/// lease is lost).
pub async fn run(ctx: Arc<Context>, stop: CancellationToken) {
    let mounts = mount_controller(&ctx, stop.clone());
    let roles = role_controller(&ctx, stop.clone());
    let requests = request_controller(&ctx, stop.clone());
    let signer = pod_certificate::run(ctx.clone(), stop.clone());
    let bundles = trust_bundles::run(ctx.clone(), stop);
    tokio::join!(mounts, roles, requests, signer, bundles);
    ctx.metrics.requests.set(None);
}

/// Failed reconciles in a row, per object (`kind/namespace/name`). An entry goes when the
/// object next reconciles cleanly; past [`Failures::MAX`] objects the table starts over.
#[derive(Debug, Default)]
pub struct Failures(std::sync::Mutex<std::collections::HashMap<String, u32>>);

impl Failures {
    /// Most objects remembered.
    pub const MAX: usize = 10_000;

    fn key<K: kube::Resource<DynamicType = ()>>(kind: &str, obj: &K) -> String {
        format!(
            "{kind}/{}/{}",
            obj.namespace().unwrap_or_default(),
            obj.name_any()
        )
    }

    /// Counts one more failure of `key` and returns how many in a row.
    fn next(&self, key: String) -> u32 {
        let mut table = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if table.len() >= Self::MAX && !table.contains_key(&key) {
            table.clear();
        }
        let count = table.entry(key).or_insert(0);
        *count = count.saturating_add(1);
        *count
    }

    fn clear(&self, key: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

/// The one reconcile wrapper of the three controllers: times and counts each reconcile,
/// and forgets the object's failures when it succeeds.
pub async fn reconciled<K>(
    kind: &'static str,
    obj: &K,
    ctx: &Context,
    work: impl std::future::Future<Output = error::Result<controller::Action>>,
) -> error::Result<controller::Action>
where
    K: kube::Resource<DynamicType = ()>,
{
    let started = std::time::Instant::now();
    let result = work.await;
    ctx.metrics
        .reconciled(kind, started.elapsed().as_secs_f64());
    if result.is_ok() {
        ctx.failures.clear(&Failures::key(kind, obj));
    }
    result
}

/// The one error policy: counts and logs the failure, and retries the object after
/// `failure_backoff` of its failures in a row (5 s, 10 s, 20 s, ... 5 min, spread by up
/// to 10% from its UID), instead of every 5 s for ever.
pub fn retry<K>(
    kind: &'static str,
    obj: &K,
    error: &error::Error,
    ctx: &Context,
) -> controller::Action
where
    K: kube::Resource<DynamicType = ()>,
{
    ctx.metrics.failed(kind, error.category());
    let failures = ctx.failures.next(Failures::key(kind, obj));
    let seed = tlsmint_client::renewal::seed_of(obj.uid().unwrap_or_default().as_bytes());
    let delay = tlsmint_client::renewal::failure_backoff(failures, seed);
    tracing::warn!(
        kind,
        namespace = obj.namespace().unwrap_or_default(),
        name = %obj.name_any(),
        failures,
        retry_in = ?delay,
        error = error as &dyn std::error::Error,
        "reconcile failed"
    );
    controller::Action::requeue(delay)
}

/// Turns the registry's notices into reconcile requests for the objects of `store` that
/// `depends` says read the mount or role named (every object on [`Notice::Everything`]).
/// One role compiling thus wakes its CertificateRequests, not every object of every kind.
fn wake_dependents<K>(
    notices: impl futures::Stream<Item = Notice> + Send + 'static,
    store: Store<K>,
    depends: impl Fn(&Notice, &K) -> bool + Send + 'static,
) -> impl futures::Stream<Item = ObjectRef<K>> + Send + 'static
where
    K: kube::Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    notices.flat_map(move |notice| {
        let woken: Vec<ObjectRef<K>> = store
            .state()
            .into_iter()
            .filter(|obj| depends(&notice, obj))
            .map(|obj| ObjectRef::from_obj(&*obj))
            .collect();
        futures::stream::iter(woken)
    })
}

/// A PkiMount reads the registry for itself and for its parent.
fn mount_depends(notice: &Notice, mount: &PkiMount) -> bool {
    let parent = mount.spec.parent_ref.as_ref().map(|p| p.name.as_str());
    notice.concerns(Some(&mount.name_any()), None) || notice.concerns(parent, None)
}

/// An IssuerRole reads its own compiled entry and its mount.
fn role_depends(notice: &Notice, role: &IssuerRole) -> bool {
    notice.concerns(Some(&role.spec.mount_ref.name), Some(&role.name_any()))
}

/// A CertificateRequest reads its role and the mount that role is on.
fn request_depends(registry: &Registry, notice: &Notice, cr: &CertificateRequest) -> bool {
    let role = &cr.spec.role_ref.name;
    let mount = registry.role(role).map(|r| r.mount.clone());
    notice.concerns(mount.as_deref(), Some(role))
}

fn log_result<K, E: std::fmt::Debug>(
    kind: &'static str,
    result: Result<(ObjectRef<K>, controller::Action), E>,
) where
    K: kube::Resource,
{
    if let Err(error) = result {
        tracing::debug!(kind, ?error, "controller event");
    }
}

async fn mount_controller(ctx: &Arc<Context>, stop: CancellationToken) {
    let client = ctx.client.clone();
    let controller = Controller::new(Api::<PkiMount>::all(client.clone()), ctx.watch_config());
    let store = controller.store();
    let by_secret = store.clone();
    let by_parent = store.clone();
    let notified = store.clone();
    controller
        .with_config(ctx.controller_config())
        // Key, import and signed-certificate Secrets of the operator's namespace.
        .watches(
            Api::<Secret>::namespaced(client.clone(), &ctx.namespace),
            watcher::Config::default().any_semantic(),
            move |secret| {
                let name = secret.name_any();
                by_secret
                    .state()
                    .into_iter()
                    .filter(|m| {
                        pki_mount::key_secret_name(m) == name
                            || m.spec
                                .signed_certificate_secret_ref
                                .as_ref()
                                .is_some_and(|r| r.name == name)
                    })
                    .map(|m| ObjectRef::from_obj(&*m))
                    .collect::<Vec<_>>()
            },
        )
        // Intermediates wait for their parent.
        .watches(
            Api::<PkiMount>::all(client),
            ctx.watch_config(),
            move |parent| {
                let parent = parent.name_any();
                by_parent
                    .state()
                    .into_iter()
                    .filter(|m| m.spec.parent_ref.as_ref().is_some_and(|p| p.name == parent))
                    .map(|m| ObjectRef::from_obj(&*m))
                    .collect::<Vec<_>>()
            },
        )
        // A CA loaded by the loader (or a key Secret unloaded) wakes that mount and its
        // intermediates.
        .reconcile_on(wake_dependents(
            ctx.registry.notices(),
            notified,
            mount_depends,
        ))
        .graceful_shutdown_on(stop.cancelled_owned())
        .run(pki_mount::reconcile, pki_mount::error_policy, ctx.clone())
        .for_each(|r| async move { log_result(pki_mount::KIND, r) })
        .await;
}

async fn role_controller(ctx: &Arc<Context>, stop: CancellationToken) {
    let client = ctx.client.clone();
    let controller = Controller::new(Api::<IssuerRole>::all(client.clone()), ctx.watch_config());
    let store = controller.store();
    let notified = store.clone();
    controller
        .with_config(ctx.controller_config())
        .watches(
            Api::<PkiMount>::all(client),
            ctx.watch_config(),
            move |mount| {
                let mount = mount.name_any();
                store
                    .state()
                    .into_iter()
                    .filter(|r| r.spec.mount_ref.name == mount)
                    .map(|r| ObjectRef::from_obj(&*r))
                    .collect::<Vec<_>>()
            },
        )
        // A role compiled by the loader, or its mount's CA loaded or unloaded.
        .reconcile_on(wake_dependents(
            ctx.registry.notices(),
            notified,
            role_depends,
        ))
        .graceful_shutdown_on(stop.cancelled_owned())
        .run(
            issuer_role::reconcile,
            issuer_role::error_policy,
            ctx.clone(),
        )
        .for_each(|r| async move { log_result(issuer_role::KIND, r) })
        .await;
}

async fn request_controller(ctx: &Arc<Context>, stop: CancellationToken) {
    let client = ctx.client.clone();
    let controller = Controller::new(
        Api::<CertificateRequest>::all(client.clone()),
        ctx.watch_config(),
    );
    let store = controller.store();
    ctx.metrics.requests.set(Some(store.clone()));
    let by_role = store.clone();
    let notified = store.clone();
    let by_mount = store;
    let roles = ctx.caches.roles.clone();
    controller
        .with_config(ctx.controller_config())
        // Our Secrets only (labelled); a deleted or edited one is rewritten.
        .owns(
            Api::<Secret>::all(client.clone()),
            watcher::Config::default()
                .any_semantic()
                .labels(apply::REQUEST_LABEL),
        )
        .watches(
            Api::<IssuerRole>::all(client.clone()),
            ctx.watch_config(),
            move |role| {
                let role = role.name_any();
                by_role
                    .state()
                    .into_iter()
                    .filter(|cr| cr.spec.role_ref.name == role)
                    .map(|cr| ObjectRef::from_obj(&*cr))
                    .collect::<Vec<_>>()
            },
        )
        .watches(
            Api::<PkiMount>::all(client),
            ctx.watch_config(),
            move |mount| {
                let mount = mount.name_any();
                let role_names: Vec<String> = roles
                    .state()
                    .into_iter()
                    .filter(|r| r.spec.mount_ref.name == mount)
                    .map(|r| r.name_any())
                    .collect();
                by_mount
                    .state()
                    .into_iter()
                    .filter(|cr| role_names.contains(&cr.spec.role_ref.name))
                    .map(|cr| ObjectRef::from_obj(&*cr))
                    .collect::<Vec<_>>()
            },
        )
        // Requests waiting for their role or mount go as soon as the loader has it.
        .reconcile_on(wake_dependents(ctx.registry.notices(), notified, {
            let registry = ctx.registry.clone();
            move |notice, cr| request_depends(&registry, notice, cr)
        }))
        .graceful_shutdown_on(stop.cancelled_owned())
        .run(
            certificate_request::reconcile,
            certificate_request::error_policy,
            ctx.clone(),
        )
        .for_each(|r| async move { log_result(certificate_request::KIND, r) })
        .await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod wake_tests {
    use super::*;
    use crate::registry::RoleEntry;
    use kube::runtime::reflector;
    use tlsmint_api::v1alpha1::CertificateRequestSpec;

    fn store_of<K>(objects: Vec<K>) -> Store<K>
    where
        K: kube::Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
    {
        let (store, mut writer) = reflector::store::<K>();
        for obj in objects {
            writer.apply_watcher_event(&watcher::Event::Apply(obj));
        }
        store
    }

    async fn woken<K>(
        notice: Notice,
        store: &Store<K>,
        depends: impl Fn(&Notice, &K) -> bool + Send + 'static,
    ) -> Vec<String>
    where
        K: kube::Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
    {
        let notices = futures::stream::iter([notice]);
        let mut names: Vec<String> = wake_dependents(notices, store.clone(), depends)
            .map(|r| r.name)
            .collect()
            .await;
        names.sort();
        names
    }

    fn request(name: &str, role: &str) -> CertificateRequest {
        let mut cr = CertificateRequest::new(name, CertificateRequestSpec::new(role, name));
        cr.metadata.namespace = Some("apps".into());
        cr
    }

    #[test]
    fn failures_count_in_a_row_per_object_and_clear_on_success() {
        let failures = Failures::default();
        let a = request("a", "web");
        let b = request("b", "web");
        let key = |cr: &CertificateRequest| Failures::key("CertificateRequest", cr);
        assert_eq!(key(&a), "CertificateRequest/apps/a");
        assert_eq!(failures.next(key(&a)), 1);
        assert_eq!(failures.next(key(&a)), 2);
        assert_eq!(failures.next(key(&b)), 1);
        failures.clear(&key(&a));
        assert_eq!(failures.next(key(&a)), 1);
        // The backoff it feeds grows with the count (5 s, 10 s, ...), capped at 5 min.
        let delay = |n| tlsmint_client::renewal::failure_backoff(n, 7);
        assert!(delay(1) < delay(2) && delay(2) < delay(3));
        assert!(delay(30) <= std::time::Duration::from_secs(330));
        for i in 0..Failures::MAX {
            failures.next(format!("x/{i}"));
        }
        assert!(failures.0.lock().unwrap().len() <= Failures::MAX);
    }

    #[tokio::test]
    async fn a_notice_wakes_only_the_objects_that_depend_on_it() {
        // Vault's tutorial: root `pki`, intermediate `pki-int` under it, role
        // `web-server` on `pki-int`.
        let (mounts, roles) = crate::dev::default_setup();
        let registry = Arc::new(Registry::new());
        for role in &roles {
            registry.put_role(RoleEntry::from_object(role));
        }
        let mounts = store_of(mounts);
        let roles = store_of(roles);
        let requests = store_of(vec![request("a", "web-server"), request("b", "other")]);
        let mount = |name: &str| Notice::Mount(name.into());
        let role = |name: &str| Notice::Role(name.into());

        assert_eq!(
            woken(mount("pki"), &mounts, mount_depends).await,
            ["pki", "pki-int"]
        );
        assert_eq!(
            woken(mount("pki-int"), &mounts, mount_depends).await,
            ["pki-int"]
        );
        assert!(
            woken(role("web-server"), &mounts, mount_depends)
                .await
                .is_empty()
        );

        assert_eq!(
            woken(mount("pki-int"), &roles, role_depends).await,
            ["web-server"]
        );
        assert_eq!(
            woken(role("web-server"), &roles, role_depends).await,
            ["web-server"]
        );
        assert!(woken(mount("pki"), &roles, role_depends).await.is_empty());

        let by_request = |registry: Arc<Registry>| {
            move |n: &Notice, cr: &CertificateRequest| request_depends(&registry, n, cr)
        };
        assert_eq!(
            woken(role("web-server"), &requests, by_request(registry.clone())).await,
            ["a"]
        );
        assert_eq!(
            woken(mount("pki-int"), &requests, by_request(registry.clone())).await,
            ["a"]
        );
        assert!(
            woken(mount("pki"), &requests, by_request(registry.clone()))
                .await
                .is_empty()
        );
        assert_eq!(
            woken(Notice::Everything, &requests, by_request(registry)).await,
            ["a", "b"]
        );
    }
}
