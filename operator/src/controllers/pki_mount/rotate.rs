//! The act step of CA rotation: observes where a Ready mount's rotation stands, asks
//! [`rotation::decide`] for the next step and carries it out. Runs after the mount's CA was
//! loaded and checked, on the leader.
//!
//! Key material goes only into the generation's key Secret, `<mount>-ca-key-<n>` for
//! generation `n`, created create-only; a Secret of that name that exists already (a
//! restart between creating it and recording it) is reused, so a rotation never makes a
//! second next CA. The only delete is of the previous generation's key Secret, at
//! retirement, and only if this mount controls it and it is not the active one.
//!
//! Imported and outside-signed CAs are not rotated here (their next CA comes from outside);
//! their trusted roots are still computed.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::api::DeleteParams;
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use time::OffsetDateTime;
use tlsmint_api::conditions::Verdict;
use tlsmint_api::v1alpha1::{
    CaGeneration, PhaseChange, PkiMount, RotationPhase, RotationStatus, RotationTrigger,
};
use tlsmint_ca::CertificateAuthority;

use super::super::Context;
use super::super::apply::{self, is_controlled_by, text};
use super::super::error::{Error, Result};
use super::super::times;
use super::act::{ca_key_secret, mount_options};
use super::decide::Origin;
use super::rotation::{self, Facts, Span, Step};

/// Most phase changes kept in status.rotation.history.
const HISTORY: usize = 20;
/// Added to the longest leaf lifetime before the old CA is retired: replicas that had not
/// yet loaded the new CA, and clock skew.
const RETIRE_MARGIN: time::Duration = time::Duration::seconds(60);
/// How a CA certificate's notBefore is back-dated (the engine's `CA_BACKDATE`).
const CA_BACKDATE: time::Duration = time::Duration::seconds(60);

/// What the rotation step decided, for the status.
#[derive(Debug)]
pub struct Rotation {
    /// The new status.rotation (`None`: the mount is not rotated here).
    pub status: Option<RotationStatus>,
    /// status.trustedRoots.
    pub trusted_roots: Vec<String>,
    /// The CA that signs from now on and its key Secret, when this step activated it.
    pub activated: Option<(Arc<CertificateAuthority>, String)>,
    /// The `Rotating` condition.
    pub condition: Verdict,
    /// An Event to publish.
    pub event: Option<(EventType, &'static str, String)>,
    /// How soon to look again.
    pub requeue: Option<std::time::Duration>,
}

/// The name of generation `n`'s key Secret (`n` = 0 is the mount's first CA).
pub fn generation_secret_name(mount: &PkiMount, n: u32) -> String {
    let base = format!("{}-ca-key", mount.name_any());
    let name = if n == 0 { base } else { format!("{base}-{n}") };
    if name.len() <= 253 {
        return name;
    }
    let digest = super::super::certificate_request::digest::short_hex(mount.name_any().as_bytes());
    let short = &mount.name_any()[..200];
    if n == 0 {
        format!("{short}-{digest}-ca-key")
    } else {
        format!("{short}-{digest}-ca-key-{n}")
    }
}

/// Runs one rotation step for `mount`, whose `active` CA (key in `key_name`) is loaded.
pub async fn rotate(
    mount: &PkiMount,
    ctx: &Context,
    secrets: &Api<Secret>,
    active: &Arc<CertificateAuthority>,
    key_name: &str,
) -> Result<Rotation> {
    let now = OffsetDateTime::now_utc();
    let origin = super::origin(mount);
    let parent = parent_view(mount, ctx);
    let active_root = tlsmint_ca::pem::encode_certificate(active.root_der());
    let rotatable = matches!(origin, Origin::Root | Origin::Parent);
    let mut status = mount
        .status
        .as_ref()
        .and_then(|s| s.rotation.clone())
        .unwrap_or_default();
    if !rotatable {
        return Ok(Rotation {
            status: None,
            trusted_roots: rotation::trusted_roots(&active_root, &parent.trusted, None, None),
            activated: None,
            condition: Verdict::no(
                RotationPhase::Active.as_str(),
                "imported and outside-signed CAs are rotated by replacing them (spec.importFrom or spec.signedCertificateSecretRef)",
            ),
            event: None,
            requeue: None,
        });
    }
    let facts = observe(mount, ctx, active, &parent, &status, now);
    let step = rotation::decide(&facts);
    tracing::debug!(?step, phase = status.phase.as_str(), "rotation step");
    let mut activated = None;
    let mut event = None;
    let mut waiting_for = None;
    let requeue;
    match step {
        Step::Idle { wake_at } => {
            requeue = Some(until(now, wake_at));
        }
        Step::Wait {
            until: at,
            waiting_for: why,
        } => {
            requeue = Some(at.map_or(std::time::Duration::from_secs(15), |at| {
                until(now, at).min(std::time::Duration::from_secs(15))
            }));
            waiting_for = Some(why);
        }
        Step::Prepare { rekey, trigger } => {
            let n = status.rotations + 1;
            let name = generation_secret_name(mount, n);
            let next =
                match prepare(mount, ctx, secrets, active, &parent, &name, rekey, now).await? {
                    Ok(next) => next,
                    Err(why) => {
                        return Ok(Rotation {
                            condition: Verdict::no(status.phase.as_str(), why.clone()),
                            status: Some(status),
                            trusted_roots: current_roots(&active_root, &parent, mount),
                            activated: None,
                            event: failure_event(mount, why),
                            requeue: Some(std::time::Duration::from_secs(30)),
                        });
                    }
                };
            let serial = next.info().serial.to_colon_hex();
            event = Some((
                EventType::Normal,
                "RotationPrepared",
                format!(
                    "prepared the next CA (serial {serial}, {}, {trigger:?}); key in Secret {}/{name}",
                    if rekey { "new key" } else { "same key" },
                    ctx.namespace
                ),
            ));
            status.next = Some(generation(&next, name, None));
            status.rekey = Some(rekey);
            status.trigger = Some(trigger);
            if trigger == RotationTrigger::Request {
                status.requested_at = mount.spec.rotation.requested_at.clone();
            }
            enter(&mut status, RotationPhase::Prepared, now, serial);
            requeue = Some(std::time::Duration::ZERO);
        }
        Step::Publish => {
            let serial = status
                .next
                .as_ref()
                .map(|n| n.serial_number.clone())
                .unwrap_or_default();
            event = Some((
                EventType::Normal,
                "RotationPublished",
                format!("the next CA (serial {serial}) is in every trust bundle of this mount"),
            ));
            enter(&mut status, RotationPhase::Published, now, serial);
            requeue = Some(std::time::Duration::ZERO);
        }
        Step::Activate => {
            let next = status.next.clone().unwrap_or_default();
            match load_generation(mount, ctx, secrets, &next).await? {
                Ok(ca) => {
                    let old = generation(active, key_name.to_owned(), Some(now));
                    event = Some((
                        EventType::Normal,
                        "RotationActivated",
                        format!(
                            "the CA with serial {} signs from now on; the old one (serial {}) stays trusted until its last leaf expires",
                            next.serial_number, old.serial_number
                        ),
                    ));
                    status.previous = Some(old);
                    status.next = None;
                    status.rotations += 1;
                    enter(
                        &mut status,
                        RotationPhase::Activated,
                        now,
                        next.serial_number.clone(),
                    );
                    activated = Some((Arc::new(ca), next.key_secret_name));
                    requeue = Some(std::time::Duration::from_secs(1));
                }
                Err(why) => {
                    waiting_for = Some(why.clone());
                    event = failure_event(mount, why);
                    requeue = Some(std::time::Duration::from_secs(30));
                }
            }
        }
        Step::Retire => {
            let old = status.previous.take();
            let serial = old
                .as_ref()
                .map(|o| o.serial_number.clone())
                .unwrap_or_default();
            if let Some(old) = &old {
                retire_secret(ctx, secrets, mount, &old.key_secret_name, key_name).await?;
            }
            event = Some((
                EventType::Normal,
                "RotationRetired",
                format!(
                    "the old CA (serial {serial}) left the trust bundles and its key Secret was deleted"
                ),
            ));
            enter(&mut status, RotationPhase::Retired, now, serial);
            requeue = Some(std::time::Duration::ZERO);
        }
    }
    let signing_root = activated
        .as_ref()
        .map(|(ca, _)| tlsmint_ca::pem::encode_certificate(ca.root_der()))
        .unwrap_or(active_root);
    let published_next = (status.phase == RotationPhase::Published)
        .then(|| status.next.as_ref().map(root_of))
        .flatten();
    let previous = status.previous.as_ref().map(root_of);
    let trusted_roots = rotation::trusted_roots(
        &signing_root,
        &parent.trusted,
        published_next.as_deref(),
        previous.as_deref(),
    );
    let condition = condition(&status, waiting_for, &facts);
    Ok(Rotation {
        status: Some(status),
        trusted_roots,
        activated,
        condition,
        event,
        requeue,
    })
}

/// What the mount knows of its parent: the CA that signs there now, and what it trusts.
#[derive(Debug, Default)]
struct ParentView {
    ca: Option<Arc<CertificateAuthority>>,
    trusted: Vec<String>,
}

fn parent_view(mount: &PkiMount, ctx: &Context) -> ParentView {
    let Some(parent) = &mount.spec.parent_ref else {
        return ParentView::default();
    };
    let trusted = ctx
        .caches
        .mounts
        .state()
        .iter()
        .find(|m| m.name_any() == parent.name)
        .and_then(|m| m.status.as_ref().map(|s| s.trusted_roots.clone()))
        .unwrap_or_default();
    ParentView {
        ca: ctx.registry.ca(&parent.name),
        trusted,
    }
}

/// The roots trusted before this step (for a failed preparation).
fn current_roots(active_root: &str, parent: &ParentView, mount: &PkiMount) -> Vec<String> {
    let rotation = mount.status.as_ref().and_then(|s| s.rotation.as_ref());
    let published = rotation
        .filter(|r| r.phase == RotationPhase::Published)
        .and_then(|r| r.next.as_ref())
        .map(root_of);
    let previous = rotation.and_then(|r| r.previous.as_ref()).map(root_of);
    rotation::trusted_roots(
        active_root,
        &parent.trusted,
        published.as_deref(),
        previous.as_deref(),
    )
}

fn observe(
    mount: &PkiMount,
    ctx: &Context,
    active: &CertificateAuthority,
    parent: &ParentView,
    status: &RotationStatus,
    now: OffsetDateTime,
) -> Facts {
    let spec = &mount.spec.rotation;
    let info = active.info();
    let active_root = tlsmint_ca::pem::encode_certificate(active.root_der());
    let parent_moved = parent.ca.as_ref().is_some_and(|p| {
        active.parents_der().first().map(Vec::as_slice) != Some(p.certificate_der())
    });
    // What was trusted before the next CA was published (the active, the parent's and the
    // previous roots): a next root outside it must propagate before it signs.
    let previous_root = status.previous.as_ref().map(root_of);
    let trusted_now = rotation::trusted_roots(
        &active_root,
        &parent.trusted,
        None,
        previous_root.as_deref(),
    );
    // A renewal keeps key and subject: clients holding the old root verify the new chain,
    // so only a re-key has to wait for the new root to propagate.
    let trust_changes = status.rekey.unwrap_or(spec.rekey)
        && status.next.as_ref().is_some_and(|next| {
            let root = root_of(next);
            !trusted_now.iter().any(|have| have.trim() == root.trim())
        });
    let rekey = status.rekey.unwrap_or(spec.rekey);
    let expired = |p: &CaGeneration| {
        p.not_after
            .as_ref()
            .is_some_and(|t| times::engine_time(t) <= now)
    };
    let (retire_at, waiting_child) = match &status.previous {
        // Past its notAfter nothing verifies under the old CA any more: retire it even if
        // an intermediate under it was never re-signed.
        Some(previous) if expired(previous) => (Some(now), None),
        Some(previous) if rekey => retirement(mount, ctx, active, previous),
        Some(previous) => (
            previous.deactivated_at.as_ref().map(times::engine_time),
            None,
        ),
        None => (None, None),
    };
    Facts {
        now,
        phase: status.phase,
        phase_time: status
            .phase_time
            .as_ref()
            .map(times::engine_time)
            .unwrap_or(now),
        trigger: status.trigger,
        active: Span {
            not_before: info.not_before,
            not_after: info.not_after,
        },
        prepare_at: spec.prepare_at.get(),
        activate_at: spec.activate_at.get(),
        rekey: spec.rekey,
        request_pending: spec.requested_at.is_some() && spec.requested_at != status.requested_at,
        parent_moved,
        has_next: status.next.is_some(),
        has_previous: status.previous.is_some(),
        trust_changes,
        propagation_delay: time::Duration::try_from(spec.propagation_delay.as_std())
            .unwrap_or(time::Duration::ZERO),
        retire_at,
        waiting_child,
    }
}

/// When the previous CA may go: after the longest leaf that it, or an intermediate it
/// signed before being re-signed, can have issued; never later than its own expiry.
/// Also names an intermediate under this mount that the new CA has not re-signed yet.
fn retirement(
    mount: &PkiMount,
    ctx: &Context,
    active: &CertificateAuthority,
    previous: &CaGeneration,
) -> (Option<OffsetDateTime>, Option<String>) {
    let name = mount.name_any();
    let deactivated = previous
        .deactivated_at
        .as_ref()
        .map(times::engine_time)
        .unwrap_or_else(OffsetDateTime::now_utc);
    let mut last_signed = deactivated;
    let mut waiting = None;
    let mut mounts = vec![name.clone()];
    let active_pem = active.certificate_pem();
    for child in ctx.caches.mounts.state() {
        if child.spec.parent_ref.as_ref().map(|p| p.name.as_str()) != Some(name.as_str()) {
            continue;
        }
        let Some(child_status) = child.status.as_ref() else {
            continue;
        };
        mounts.push(child.name_any());
        let signer = child_status.ca_chain.get(1).map(|c| c.trim());
        if signer != Some(active_pem.trim()) {
            waiting = Some(child.name_any());
        } else if let Some(nb) = &child_status.not_before {
            last_signed = last_signed.max(times::engine_time(nb) + CA_BACKDATE);
        }
    }
    let longest = mounts
        .iter()
        .flat_map(|m| ctx.registry.roles_of(m))
        .map(|role| role.spec.max_ttl.as_std())
        .max()
        .unwrap_or_default();
    let longest = mount
        .spec
        .max_ttl
        .map_or(longest, |cap| longest.min(cap.as_std()));
    let longest = time::Duration::try_from(longest).unwrap_or(time::Duration::ZERO);
    let mut at = last_signed + longest + RETIRE_MARGIN;
    if let Some(not_after) = &previous.not_after {
        at = at.min(times::engine_time(not_after));
    }
    (Some(at), waiting)
}

#[allow(clippy::too_many_arguments)]
async fn prepare(
    mount: &PkiMount,
    ctx: &Context,
    secrets: &Api<Secret>,
    active: &Arc<CertificateAuthority>,
    parent: &ParentView,
    name: &str,
    rekey: bool,
    now: OffsetDateTime,
) -> Result<std::result::Result<CertificateAuthority, String>> {
    // A restart after the Secret was created but before status recorded it: reuse it.
    if let Some(existing) = apply::get_secret(secrets, &ctx.namespace, name).await? {
        return Ok(from_secret(mount, &existing, name));
    }
    let settings = match crate::convert::mount(&mount.name_any(), &mount.spec) {
        Ok(settings) => settings,
        Err(e) => return Ok(Err(tlsmint_ca::report(&e))),
    };
    let cfg = settings.ca;
    let parent_ca = parent.ca.clone();
    if mount.spec.parent_ref.is_some() && parent_ca.is_none() {
        return Ok(Err(
            "the parent mount cannot sign; the rotation waits for it".into(),
        ));
    }
    let active = active.clone();
    let made = ctx
        .cpu
        .run("next CA generation", move || match (rekey, parent_ca) {
            (true, None) => CertificateAuthority::generate_root(&cfg, now),
            (true, Some(parent)) => CertificateAuthority::generate_intermediate(&cfg, &parent, now),
            (false, parent) => active.renewed(&cfg, parent.as_deref(), now),
        })
        .await?;
    let next = match made.and_then(|ca| ca.with_options(mount_options(mount))) {
        Ok(next) => next,
        Err(e) => {
            return Ok(Err(format!(
                "preparing the next CA failed: {}",
                tlsmint_ca::report(&e)
            )));
        }
    };
    let secret = match ca_key_secret(
        mount,
        &ctx.namespace,
        name,
        next.ca_chain_pem().concat(),
        next.key(),
    ) {
        Ok(secret) => secret,
        Err(e) => return Ok(Err(e)),
    };
    if !apply::create_secret(secrets, &secret).await? {
        // Created concurrently (another replica that was leader a moment ago): its CA wins.
        let existing = apply::get_secret(secrets, &ctx.namespace, name).await?;
        return Ok(match existing {
            Some(existing) => from_secret(mount, &existing, name),
            None => Err(format!("Secret {name} changed concurrently; retrying")),
        });
    }
    tracing::info!(x509.serial = %next.info().serial.to_colon_hex(), secret = name, rekey, "next CA prepared");
    Ok(Ok(next))
}

/// A generation's CA from its key Secret, if this mount controls it.
fn from_secret(
    mount: &PkiMount,
    secret: &Secret,
    name: &str,
) -> std::result::Result<CertificateAuthority, String> {
    if !is_controlled_by(secret, &mount.uid().unwrap_or_default()) {
        return Err(format!(
            "Secret {name} exists but does not belong to this PkiMount; the rotation is paused (delete or rename that Secret)"
        ));
    }
    let (Some(certs), Some(key)) = (
        text(secret, tlsmint_api::TLS_CERT_FILE),
        text(secret, tlsmint_api::TLS_KEY_FILE),
    ) else {
        return Err(format!("Secret {name} must hold tls.crt and tls.key"));
    };
    CertificateAuthority::from_pem(&mount.name_any(), certs, key)
        .and_then(|ca| ca.with_options(mount_options(mount)))
        .map_err(|e| format!("Secret {name}: {}", tlsmint_ca::report(&e)))
}

/// Loads the recorded next CA from its key Secret and checks it is the one published.
async fn load_generation(
    mount: &PkiMount,
    ctx: &Context,
    secrets: &Api<Secret>,
    next: &CaGeneration,
) -> Result<std::result::Result<CertificateAuthority, String>> {
    let name = &next.key_secret_name;
    let Some(secret) = apply::get_secret(secrets, &ctx.namespace, name).await? else {
        return Ok(Err(format!(
            "the next CA's key Secret {name} is missing; the rotation stops here (restore it, or clear status.rotation.next to prepare another)"
        )));
    };
    let ca = match from_secret(mount, &secret, name) {
        Ok(ca) => ca,
        Err(why) => return Ok(Err(why)),
    };
    let same = tlsmint_ca::pem::decode_certificate(&next.certificate)
        .is_ok_and(|der| der == ca.certificate_der());
    if !same {
        return Ok(Err(format!(
            "Secret {name} holds another CA than the published next one (serial {}); the rotation stops here",
            next.serial_number
        )));
    }
    Ok(Ok(ca))
}

async fn retire_secret(
    ctx: &Context,
    secrets: &Api<Secret>,
    mount: &PkiMount,
    name: &str,
    active_key: &str,
) -> Result<()> {
    if name == active_key {
        return Ok(());
    }
    let Some(secret) = apply::get_secret(secrets, &ctx.namespace, name).await? else {
        return Ok(());
    };
    if !is_controlled_by(&secret, &mount.uid().unwrap_or_default()) {
        tracing::warn!(
            secret = name,
            "the retired CA's key Secret does not belong to this mount; leaving it"
        );
        return Ok(());
    }
    match secrets.delete(name, &DeleteParams::default()).await {
        Ok(_) => {
            tracing::info!(secret = name, "retired CA key Secret deleted");
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(source) => Err(Error::DeleteSecret {
            namespace: ctx.namespace.clone(),
            name: name.to_owned(),
            source,
        }),
    }
}

/// A `RotationFailed` Event, unless the `Rotating` condition already says the same (the
/// step is retried every 30 s; one Event per distinct failure is enough).
fn failure_event(mount: &PkiMount, why: String) -> Option<(EventType, &'static str, String)> {
    let said = mount
        .status
        .as_ref()
        .and_then(|s| {
            tlsmint_api::conditions::find(&s.conditions, tlsmint_api::conditions::ROTATING)
        })
        .is_some_and(|c| c.message == why);
    (!said).then_some((EventType::Warning, "RotationFailed", why))
}

fn generation(
    ca: &CertificateAuthority,
    key_secret_name: String,
    deactivated: Option<OffsetDateTime>,
) -> CaGeneration {
    let info = ca.info();
    CaGeneration {
        certificate: ca.certificate_pem(),
        ca_chain: ca.ca_chain_pem(),
        serial_number: info.serial.to_colon_hex(),
        not_before: Some(times::k8s_time(info.not_before)),
        not_after: Some(times::k8s_time(info.not_after)),
        key_secret_name,
        deactivated_at: deactivated.map(times::k8s_time),
    }
}

/// The root above a generation (its own certificate for a root).
fn root_of(generation: &CaGeneration) -> String {
    generation
        .ca_chain
        .last()
        .unwrap_or(&generation.certificate)
        .clone()
}

fn enter(status: &mut RotationStatus, phase: RotationPhase, now: OffsetDateTime, serial: String) {
    status.phase = phase;
    status.phase_time = Some(times::k8s_time(now));
    status.history.push(PhaseChange {
        phase,
        time: times::k8s_time(now),
        serial_number: serial,
    });
    let extra = status.history.len().saturating_sub(HISTORY);
    status.history.drain(..extra);
}

fn condition(status: &RotationStatus, waiting_for: Option<String>, facts: &Facts) -> Verdict {
    let phase = status.phase;
    if phase.in_progress() {
        let message = waiting_for.unwrap_or_else(|| match phase {
            RotationPhase::Prepared => "the next CA is prepared; publishing it".into(),
            RotationPhase::Published => "the next CA is trusted; activating it".into(),
            _ => "the new CA signs; the old one is trusted until its last leaf expires".into(),
        });
        return Verdict::yes(phase.as_str(), message);
    }
    let next = facts.active.at(facts.prepare_at);
    Verdict::no(
        phase.as_str(),
        format!(
            "no rotation under way; the next is prepared at {} (spec.rotation.prepareAt) or when spec.rotation.requestedAt changes",
            tlsmint_ca::x509::rfc3339(next)
        ),
    )
}

fn until(now: OffsetDateTime, at: OffsetDateTime) -> std::time::Duration {
    std::time::Duration::try_from(at - now).unwrap_or(std::time::Duration::ZERO)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tlsmint_api::v1alpha1::{MountType, PkiMountSpec};

    #[test]
    fn generation_secrets_are_named_after_their_number_and_fit() {
        let mount = PkiMount::new("pki", PkiMountSpec::new(MountType::Root, "R"));
        assert_eq!(generation_secret_name(&mount, 0), "pki-ca-key");
        assert_eq!(generation_secret_name(&mount, 3), "pki-ca-key-3");
        let long = "a".repeat(250);
        let mount = PkiMount::new(&long, PkiMountSpec::new(MountType::Root, "R"));
        let first = generation_secret_name(&mount, 0);
        let second = generation_secret_name(&mount, 1);
        assert!(first.len() <= 253 && second.len() <= 253);
        assert_ne!(first, second);
    }

    #[test]
    fn history_keeps_the_last_changes_in_order() {
        let mut status = RotationStatus::default();
        let now = OffsetDateTime::now_utc();
        for i in 0..25 {
            enter(&mut status, RotationPhase::Prepared, now, i.to_string());
        }
        assert_eq!(status.history.len(), HISTORY);
        assert_eq!(status.history[0].serial_number, "5");
        assert_eq!(status.history[19].serial_number, "24");
    }
}
