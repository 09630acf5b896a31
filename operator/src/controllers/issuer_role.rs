//! The IssuerRole controller: validates each role (its own spec, its templates, that the
//! engine can represent it, its mount, its maxTTL against the mount's) and reports `Ready`
//! only when the role is valid and its mount is Ready.
//!
//! observe -> [`decide`] (pure, table-tested) -> report. It must not issue anything, and it
//! does not compile roles: the loader compiles each once (on every replica) and this
//! controller reports that verdict from the registry.

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use tlsmint_api::conditions::{self, Verdict, reason};
use tlsmint_api::v1alpha1::{IssuerRole, PkiMount};

use super::Context;
use super::apply;
use super::error::{Error, Result};
use super::times;
use crate::registry::{RoleEntry, RoleStatus};

/// The kind, for metrics and logs.
pub const KIND: &str = "IssuerRole";

/// The mount as the role sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MountFacts {
    /// No PkiMount of that name.
    Missing,
    /// It exists; whether it can sign, and its maxTTL ceiling.
    Present {
        /// Its CA is loaded.
        ready: bool,
        /// `spec.maxTTL` of the mount.
        max_ttl: Option<tlsmint_api::Duration>,
    },
}

/// Decides a role's Ready condition. `compiled` is the loader's verdict on turning it into
/// the engine's role, its own `validate()` included (`Err` holds the reason).
pub fn decide(role: &IssuerRole, compiled: Result<(), String>, mount: &MountFacts) -> Verdict {
    let mount_name = &role.spec.mount_ref.name;
    if let Err(e) = compiled {
        return Verdict::no(reason::INVALID_SPEC, e);
    }
    match mount {
        MountFacts::Missing => Verdict::no(
            reason::MOUNT_NOT_FOUND,
            format!("PkiMount {mount_name} does not exist"),
        ),
        MountFacts::Present {
            max_ttl: Some(mount_max),
            ..
        } if role.spec.max_ttl > *mount_max => Verdict::no(
            reason::INVALID_SPEC,
            format!(
                "spec.maxTTL ({}) is longer than PkiMount {mount_name}'s spec.maxTTL ({mount_max})",
                role.spec.max_ttl
            ),
        ),
        MountFacts::Present { ready: false, .. } => Verdict::no(
            reason::MOUNT_NOT_READY,
            format!("PkiMount {mount_name} is not Ready"),
        ),
        MountFacts::Present { ready: true, .. } => Verdict::yes(
            reason::READY,
            format!("issues through PkiMount {mount_name}"),
        ),
    }
}

/// Reconciles one IssuerRole.
#[tracing::instrument(skip_all, fields(kind = KIND, name = %role.name_any()))]
pub async fn reconcile(role: Arc<IssuerRole>, ctx: Arc<Context>) -> Result<Action> {
    super::reconciled(KIND, &*role, &ctx, reconcile_inner(&role, &ctx)).await
}

/// Retry after a failed reconcile (API errors), with the object's own backoff.
pub fn error_policy(role: Arc<IssuerRole>, error: &Error, ctx: Arc<Context>) -> Action {
    super::retry(KIND, &*role, error, &ctx)
}

async fn reconcile_inner(role: &IssuerRole, ctx: &Context) -> Result<Action> {
    let name = role.name_any();
    let mount_name = &role.spec.mount_ref.name;
    let mount = ctx.caches.mounts.get(&ObjectRef::new(mount_name));
    let facts = match mount {
        None => MountFacts::Missing,
        Some(m) => MountFacts::Present {
            ready: ctx.registry.ca(mount_name).is_some() && mount_ready(&m),
            max_ttl: m.spec.max_ttl,
        },
    };
    let compiled = match ctx.registry.role(&name) {
        Some(entry) if entry.generation == role.metadata.generation => verdict_of(&entry),
        // The loader has not compiled this generation yet; its notice wakes us.
        _ => return Ok(Action::requeue(Duration::from_secs(5))),
    };
    let verdict = decide(role, compiled, &facts);
    tracing::debug!(
        ready = verdict.holds,
        reason = verdict.reason,
        ?facts,
        "decided"
    );

    let old = role.status.clone().unwrap_or_default();
    let mut status = old.clone();
    status.observed_generation = role.metadata.generation;
    let now = times::k8s_time(time::OffsetDateTime::now_utc());
    let condition = verdict.condition(conditions::READY, role.metadata.generation, now);
    let transition = conditions::set(&mut status.conditions, condition).is_transition();
    let Verdict {
        holds: ready,
        reason,
        message,
    } = verdict;
    if status != old {
        apply::apply_status(&Api::<IssuerRole>::all(ctx.client.clone()), &name, &status).await?;
    }
    if transition {
        let type_ = if ready || reason == reason::MOUNT_NOT_READY {
            EventType::Normal
        } else {
            EventType::Warning
        };
        ctx.publish(role.object_ref(&()), type_, reason, message, "Validate")
            .await;
    }
    // Watches and registry notices wake a waiting role; the requeue is only a safety net.
    Ok(Action::requeue(Duration::from_secs(if ready {
        600
    } else {
        15
    })))
}

/// The loader's verdict on a role: compiled, or why not.
fn verdict_of(entry: &RoleEntry) -> Result<(), String> {
    match &entry.status {
        RoleStatus::Ready(_) => Ok(()),
        RoleStatus::Invalid(why) => Err(why.clone()),
    }
}

fn mount_ready(mount: &PkiMount) -> bool {
    mount
        .status
        .as_ref()
        .is_some_and(|s| conditions::is_ready(&s.conditions))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tlsmint_api::Duration as D;
    use tlsmint_api::v1alpha1::{IssuerRoleSpec, RoleSubject};

    fn role(f: impl FnOnce(&mut IssuerRoleSpec)) -> IssuerRole {
        let mut spec = IssuerRoleSpec::new("pki");
        spec.subjects = vec![RoleSubject::new("*", "*")];
        spec.allowed_domains = vec!["example.com".into()];
        f(&mut spec);
        IssuerRole::new("web", spec)
    }

    const READY: MountFacts = MountFacts::Present {
        ready: true,
        max_ttl: None,
    };

    #[test]
    fn decides_role_readiness() {
        type Row = (
            IssuerRole,
            Result<(), String>,
            MountFacts,
            bool,
            &'static str,
        );
        let table: Vec<Row> = vec![
            (role(|_| {}), Ok(()), READY, true, "Ready"),
            (
                role(|_| {}),
                Ok(()),
                MountFacts::Missing,
                false,
                "MountNotFound",
            ),
            (
                role(|_| {}),
                Ok(()),
                MountFacts::Present {
                    ready: false,
                    max_ttl: None,
                },
                false,
                "MountNotReady",
            ),
            (
                role(|s| s.ttl = D::from_hours(48)),
                Ok(()),
                READY,
                false,
                "InvalidSpec",
            ),
            (
                role(|s| s.allowed_domains = vec!["{{pod}}.example.com".into()]),
                Ok(()),
                READY,
                false,
                "InvalidSpec",
            ),
            (
                role(|_| {}),
                Err("spec.extKeyUsages: OCSPSigning is not supported".into()),
                READY,
                false,
                "InvalidSpec",
            ),
            (
                role(|s| s.max_ttl = D::from_hours(48)),
                Ok(()),
                MountFacts::Present {
                    ready: true,
                    max_ttl: Some(D::from_hours(24)),
                },
                false,
                "InvalidSpec",
            ),
            (
                role(|s| s.max_ttl = D::from_hours(12)),
                Ok(()),
                MountFacts::Present {
                    ready: true,
                    max_ttl: Some(D::from_hours(24)),
                },
                true,
                "Ready",
            ),
        ];
        for (role, compiled, mount, ready, reason) in table {
            // What the loader would have reported, then what the row adds.
            let compiled = verdict_of(&RoleEntry::from_object(&role)).and(compiled);
            let Verdict {
                holds: got_ready,
                reason: got_reason,
                message,
            } = decide(&role, compiled, &mount);
            assert_eq!((got_ready, got_reason), (ready, reason), "{message}");
        }
    }

    #[test]
    fn messages_name_the_field_and_the_mount() {
        let Verdict { message, .. } = decide(
            &role(|s| s.max_ttl = D::from_hours(48)),
            Ok(()),
            &MountFacts::Present {
                ready: true,
                max_ttl: Some(D::from_hours(24)),
            },
        );
        assert_eq!(
            message,
            "spec.maxTTL (48h) is longer than PkiMount pki's spec.maxTTL (24h)"
        );
        let invalid = role(|s| s.ttl = D::from_hours(48));
        let compiled = verdict_of(&RoleEntry::from_object(&invalid));
        let Verdict { message, .. } = decide(&invalid, compiled, &READY);
        assert!(message.contains("spec.ttl (48h)"), "{message}");
    }
}
