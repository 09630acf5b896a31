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
pub mod loader;
pub mod metrics;
pub mod missed_injection;
pub mod pki_mount;
pub mod pod_certificate;
pub mod revocation_hook;
pub mod times;
pub mod trust_bundles;

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::runtime::controller::{self, Controller};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use tlsmint_api::v1alpha1::{CertificateRequest, IssuerRole, PkiMount};
use tlsmint_runtime::CancellationToken;

use crate::registry::Registry;
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
        // A parent's CA loaded by the loader (or a key Secret unloaded) wakes the mounts.
        .reconcile_all_on(ctx.registry.notices())
        .graceful_shutdown_on(stop.cancelled_owned())
        .run(pki_mount::reconcile, pki_mount::error_policy, ctx.clone())
        .for_each(|r| async move { log_result(pki_mount::KIND, r) })
        .await;
}

async fn role_controller(ctx: &Arc<Context>, stop: CancellationToken) {
    let client = ctx.client.clone();
    let controller = Controller::new(Api::<IssuerRole>::all(client.clone()), ctx.watch_config());
    let store = controller.store();
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
        // A mount's CA loaded (or unloaded) by the loader changes the roles on it.
        .reconcile_all_on(ctx.registry.notices())
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
        .reconcile_all_on(ctx.registry.notices())
        .graceful_shutdown_on(stop.cancelled_owned())
        .run(
            certificate_request::reconcile,
            certificate_request::error_policy,
            ctx.clone(),
        )
        .for_each(|r| async move { log_result(certificate_request::KIND, r) })
        .await;
}
