//! The PkiMount controller: makes each mount's CA exist exactly once and reports whether it
//! can sign. Root: generate once, key in a Secret of the operator's namespace, created
//! create-only so that two replicas (or a restarted one) can never publish two CAs.
//! Intermediate with parentRef: signed by the parent once it is Ready. Intermediate without
//! it: publish `status.csr`, then accept `spec.signedCertificateSecretRef` only if it holds
//! this key. Import: validate the pair. Afterwards every reconcile re-checks the key
//! Secret against the published certificate (`KeyMissing` / `KeyMismatch`).
//!
//! observe ([`observe`]) -> decide ([`decide::decide`], pure) -> act ([`act`]) -> report
//! ([`report`]). It must not issue leaf certificates and must never overwrite a key Secret.

mod act;
pub mod decide;
mod rotate;
pub mod rotation;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use tlsmint_api::conditions::{self, Verdict, reason};
use tlsmint_api::v1alpha1::{MountType, PkiMount, PkiMountStatus};

use super::Context;
use super::apply::{self, is_controlled_by, text};
use super::error::{Error, Result};
use super::times;
use decide::{Decision, Facts, KeySecret, Origin, Parent};

/// The kind, for metrics and logs.
pub const KIND: &str = "PkiMount";
/// How often a Ready mount is re-checked even when nothing changes.
const RECHECK: Duration = Duration::from_secs(600);
/// How soon a mount that waits for something is re-checked (watches usually come first).
const WAIT_RECHECK: Duration = Duration::from_secs(30);

/// Reconciles one PkiMount.
#[tracing::instrument(skip_all, fields(kind = KIND, name = %mount.name_any()))]
pub async fn reconcile(mount: Arc<PkiMount>, ctx: Arc<Context>) -> Result<Action> {
    super::reconciled(KIND, &*mount, &ctx, reconcile_inner(&mount, &ctx)).await
}

/// Retry after a failed reconcile (API errors), with the object's own backoff.
pub fn error_policy(mount: Arc<PkiMount>, error: &Error, ctx: Arc<Context>) -> Action {
    super::retry(KIND, &*mount, error, &ctx)
}

async fn reconcile_inner(mount: &PkiMount, ctx: &Context) -> Result<Action> {
    let name = mount.name_any();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let key_name = key_secret_name(mount);
    let key_secret = apply::get_secret(&secrets, &ctx.namespace, &key_name).await?;
    let signed_secret = match (&mount.spec.signed_certificate_secret_ref, origin(mount)) {
        (Some(reference), Origin::External) => {
            apply::get_secret(&secrets, &ctx.namespace, &reference.name).await?
        }
        _ => None,
    };
    let facts = observe(mount, ctx, key_secret.as_ref(), signed_secret.as_ref());
    let parent_name = mount
        .spec
        .parent_ref
        .as_ref()
        .map(|p| p.name.as_str())
        .unwrap_or_default();
    let import_entries = mount
        .spec
        .import_from
        .as_ref()
        .map(|i| i.entries())
        .unwrap_or_default();
    let decision = decide::decide(&facts, &key_name, parent_name, &import_entries);
    tracing::debug!(?decision, "decided");
    let outcome = act::act(
        decision,
        act::Inputs {
            mount,
            ctx,
            secrets: &secrets,
            key_name: &key_name,
            key_secret: key_secret.as_ref(),
            signed_secret: signed_secret.as_ref(),
            published: facts.published,
        },
    )
    .await?;
    let rotation = match &outcome.ca {
        Some(ca) => Some(rotate::rotate(mount, ctx, &secrets, ca, &key_name).await?),
        None => None,
    };
    report(mount, ctx, &name, &key_name, outcome, rotation).await
}

/// Where the mount's CA comes from.
pub fn origin(mount: &PkiMount) -> Origin {
    match (
        mount.spec.mount_type,
        &mount.spec.import_from,
        &mount.spec.parent_ref,
    ) {
        (_, Some(_), _) => Origin::Import,
        (MountType::Root, None, _) => Origin::Root,
        (MountType::Intermediate, None, Some(_)) => Origin::Parent,
        (MountType::Intermediate, None, None) => Origin::External,
    }
}

/// The Secret (in the operator's namespace) that holds the mount's key: the import Secret,
/// the one named in status, or `<name>-ca-key`.
pub fn key_secret_name(mount: &PkiMount) -> String {
    if let Some(import) = &mount.spec.import_from {
        return import.secret_ref.name.clone();
    }
    if let Some(name) = mount
        .status
        .as_ref()
        .and_then(|s| s.key_secret_name.clone())
    {
        return name;
    }
    rotate::generation_secret_name(mount, 0)
}

fn observe(
    mount: &PkiMount,
    ctx: &Context,
    key_secret: Option<&Secret>,
    signed_secret: Option<&Secret>,
) -> Facts {
    let origin = origin(mount);
    let uid = mount.uid().unwrap_or_default();
    let filled = |s: &Secret, key: &str| text(s, key).is_some_and(|v| !v.trim().is_empty());
    let key_secret = match key_secret {
        None => KeySecret::Missing,
        Some(s) if origin != Origin::Import && !is_controlled_by(s, &uid) => KeySecret::Foreign,
        Some(s) => {
            let (has_key, has_cert) =
                super::key_material::entries_present(s, mount.spec.import_from.as_ref());
            KeySecret::Present { has_key, has_cert }
        }
    };
    let parent = match &mount.spec.parent_ref {
        None => Parent::Missing,
        Some(p) if ctx.registry.ca(&p.name).is_some() => Parent::Ready,
        Some(p)
            if ctx
                .caches
                .mounts
                .state()
                .iter()
                .any(|m| m.name_any() == p.name) =>
        {
            Parent::NotReady
        }
        Some(_) => Parent::Missing,
    };
    let status = mount.status.as_ref();
    Facts {
        spec_error: mount.validate().err().map(|e| e.to_string()),
        origin,
        published: status.is_some_and(|s| {
            s.certificate.is_some() || s.csr.is_some() || s.key_secret_name.is_some()
        }),
        key_secret,
        parent,
        signed_certificate: mount
            .spec
            .signed_certificate_secret_ref
            .as_ref()
            .map(|_| signed_secret.is_some_and(|s| filled(s, tlsmint_api::TLS_CERT_FILE))),
    }
}

/// What `act` found out, for the status.
#[derive(Debug)]
pub struct Outcome {
    /// The `Ready` condition.
    pub ready: Verdict,
    /// The CA, when it is loaded and valid.
    pub ca: Option<Arc<tlsmint_ca::CertificateAuthority>>,
    /// The CSR to publish (external intermediates waiting for their certificate).
    pub csr: Option<String>,
    /// Whether the key Secret exists and is ours to name in status.
    pub key_secret_known: bool,
    /// An extra Event to publish (e.g. "CA created").
    pub event: Option<(EventType, &'static str, String)>,
}

impl Outcome {
    fn not_ready(reason: &'static str, message: String) -> Self {
        Outcome {
            ready: Verdict::no(reason, message),
            ca: None,
            csr: None,
            key_secret_known: false,
            event: None,
        }
    }
}

impl From<Decision> for Outcome {
    fn from(decision: Decision) -> Self {
        match decision {
            Decision::NotReady { reason, message } => Outcome::not_ready(reason, message),
            other => Outcome::not_ready(reason::PENDING, pending_message(&other).to_owned()),
        }
    }
}

/// What a person reads while the mount waits on a step (never a `Debug` dump).
fn pending_message(decision: &Decision) -> &'static str {
    match decision {
        Decision::NotReady { .. } => "the mount is not ready",
        Decision::CreateRoot => "generating the root CA",
        Decision::CreateIntermediate => "having the parent sign the intermediate CA",
        Decision::CreateExternalKey => "generating the intermediate's key",
        Decision::AwaitSigned { complete: false } => "waiting for the signed certificate",
        Decision::AwaitSigned { complete: true } => "checking the signed certificate",
        Decision::Load => "loading the CA from its key Secret",
    }
}

async fn report(
    mount: &PkiMount,
    ctx: &Context,
    name: &str,
    key_name: &str,
    mut outcome: Outcome,
    rotation: Option<rotate::Rotation>,
) -> Result<Action> {
    let old = mount.status.clone().unwrap_or_default();
    let mut status = old.clone();
    let now = times::k8s_time(time::OffsetDateTime::now_utc());
    let mut key_name = key_name.to_owned();
    let mut rotation_event = None;
    let mut rotation_requeue = None;
    if let Some(rotation) = rotation {
        if let Some((ca, key)) = rotation.activated {
            outcome.ready = Verdict::yes(reason::READY, act::ready_message(&ca));
            outcome.ca = Some(ca);
            key_name = key;
        }
        status.rotation = rotation.status;
        status.trusted_roots = rotation.trusted_roots;
        let condition = rotation.condition.condition(
            conditions::ROTATING,
            mount.metadata.generation,
            now.clone(),
        );
        conditions::set(&mut status.conditions, condition);
        rotation_event = rotation.event;
        rotation_requeue = rotation.requeue;
    }
    let key_name = key_name.as_str();
    let generation = mount.metadata.generation;
    status.observed_generation = generation;
    status.path = Some(mount.mount_path().to_owned());
    if outcome.key_secret_known || outcome.ca.is_some() {
        status.key_secret_name = Some(key_name.to_owned());
    }
    if let Some(csr) = &outcome.csr {
        status.csr = Some(csr.clone());
    }
    if let Some(ca) = &outcome.ca {
        fill_from_ca(&mut status, ca);
    }
    let condition = outcome.ready.condition(conditions::READY, generation, now);
    let change = conditions::set(&mut status.conditions, condition);
    let Verdict {
        holds: ready,
        reason,
        message,
    } = outcome.ready;
    if status != old {
        let api: Api<PkiMount> = Api::all(ctx.client.clone());
        apply::apply_status(&api, name, &status).await?;
    }
    for (type_, reason, note) in outcome.event.into_iter().chain(rotation_event) {
        ctx.publish(mount.object_ref(&()), type_, reason, note, "Reconcile")
            .await;
    }
    if change.is_transition() {
        let type_ = if ready
            || matches!(
                reason,
                reason::PARENT_NOT_READY | reason::WAITING_FOR_SIGNED_CERTIFICATE
            ) {
            EventType::Normal
        } else {
            EventType::Warning
        };
        ctx.publish(mount.object_ref(&()), type_, reason, message, "Reconcile")
            .await;
    }
    let recheck = if ready { RECHECK } else { WAIT_RECHECK };
    Ok(Action::requeue(
        rotation_requeue.map_or(recheck, |r| r.min(recheck)),
    ))
}

fn fill_from_ca(status: &mut PkiMountStatus, ca: &tlsmint_ca::CertificateAuthority) {
    let info = ca.info();
    status.certificate = Some(ca.certificate_pem());
    status.ca_chain = ca.ca_chain_pem();
    status.serial_number = Some(info.serial.to_colon_hex());
    status.not_before = Some(times::k8s_time(info.not_before));
    status.not_after = Some(times::k8s_time(info.not_after));
    status.csr = None;
}
