//! The CertificateRequest controller: keeps a valid certificate for each request in its
//! `kubernetes.io/tls` Secret. It checks the request's namespace against the role's
//! subjects, issues (or signs `spec.csr`) through the mount's CA, writes the Secret with an
//! owner reference by server-side apply (never a Secret it does not own), renews at
//! `renewAt` of the lifetime with a little jitter, rotates the key unless
//! `rotationPolicy: Never`, revokes on `revoked: true`, and reports status and Events.
//!
//! observe ([`observe`]) -> decide ([`decide::decide`], pure) -> act -> report
//! ([`report`]). Denials and invalid specs wait for a change (no retry loop); transient
//! failures back off with `status.failureCount`; success requeues at the renewal time.

pub mod decide;
pub mod digest;
mod issue;
mod report;

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use time::OffsetDateTime;
use tlsmint_api::conditions::reason;
use tlsmint_api::v1alpha1::CertificateRequest;

use super::Context;
use super::apply::{self, REQUEST_DIGEST_ANNOTATION, is_controlled_by, text};
use super::error::{Error, Result};
use super::revocation_hook::Revocation;
use super::times;
use crate::registry::RoleEntry;
use decide::{Current, Decision, Facts, RoleState, SecretState};
use report::Outcome;
use tlsmint_client::renewal as backoff;

/// The kind, for metrics and logs.
pub const KIND: &str = "CertificateRequest";

/// Reconciles one CertificateRequest.
#[tracing::instrument(skip_all, fields(kind = KIND, namespace = cr.namespace().unwrap_or_default(), name = %cr.name_any()))]
pub async fn reconcile(cr: Arc<CertificateRequest>, ctx: Arc<Context>) -> Result<Action> {
    super::reconciled(KIND, &*cr, &ctx, reconcile_inner(&cr, &ctx)).await
}

/// Retry after a failed reconcile (API errors), with the object's own backoff.
pub fn error_policy(cr: Arc<CertificateRequest>, error: &Error, ctx: Arc<Context>) -> Action {
    super::retry(KIND, &*cr, error, &ctx)
}

async fn reconcile_inner(cr: &CertificateRequest, ctx: &Context) -> Result<Action> {
    let namespace = cr.namespace().ok_or_else(|| Error::MissingNamespace {
        kind: KIND,
        name: cr.name_any(),
    })?;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    let secret = apply::get_secret(&secrets, &namespace, &cr.spec.secret_name).await?;
    // The one source for the role: the registry entry the loader compiled.
    let role = ctx.registry.role(&cr.spec.role_ref.name);
    let facts = observe(cr, ctx, &namespace, role.as_deref(), secret.as_ref());
    let decision = decide::decide(&facts);
    let decision = reissue_after_rotation(decision, ctx, role.as_deref(), secret.as_ref(), &facts);
    tracing::debug!(decision = ?decision_name(&decision), "decided");
    let outcome = act(decision, cr, ctx, &facts, role, &secrets, secret.as_ref()).await?;
    report::report(cr, ctx, outcome).await
}

fn observe(
    cr: &CertificateRequest,
    ctx: &Context,
    namespace: &str,
    role: Option<&RoleEntry>,
    secret: Option<&Secret>,
) -> Facts {
    let status = cr.status.as_ref();
    let role_name = &cr.spec.role_ref.name;
    let role = match role {
        None => RoleState::Missing,
        Some(r) if !r.allows_namespace(namespace) => RoleState::Denied(format!(
            "namespace {namespace} is not among the subjects of IssuerRole {role_name}"
        )),
        Some(r) if r.compiled().is_none() => RoleState::NotReady {
            reason: reason::ROLE_NOT_READY,
            message: format!("IssuerRole {role_name} is not valid; see its status"),
        },
        Some(r) if ctx.registry.ca(&r.mount).is_none() => RoleState::NotReady {
            reason: reason::MOUNT_NOT_READY,
            message: format!(
                "PkiMount {} of IssuerRole {role_name} is not Ready",
                r.mount
            ),
        },
        Some(_) => RoleState::Ready,
    };
    let uid = cr.uid().unwrap_or_default();
    let secret = match secret {
        None => SecretState::Missing,
        Some(s) if !is_controlled_by(s, &uid) => SecretState::Foreign,
        Some(s) => SecretState::Owned(current_certificate(s)),
    };
    Facts {
        spec_error: cr.spec.validate().err().map(|e| e.to_string()),
        revoked: cr.spec.revoked,
        revocation_recorded: status.is_some_and(|s| s.revocation_time.is_some()),
        status_certificate: status.and_then(|s| {
            Some((
                s.serial_number.clone()?,
                times::engine_time(s.not_after.as_ref()?),
            ))
        }),
        role,
        secret,
        digest: digest::request_digest(&cr.spec),
        renew_at: cr.spec.renew_at.get(),
        failures: status.and_then(|s| {
            Some((
                s.failure_count?,
                times::engine_time(s.last_failure_time.as_ref()?),
            ))
        }),
        seed: backoff::seed_of(uid.as_bytes()),
        now: OffsetDateTime::now_utc(),
    }
}

/// Longest spread of the re-issuance after a CA activation (`reissue: Immediate`).
const REISSUE_SPREAD: std::time::Duration = std::time::Duration::from_secs(30);

/// With `spec.rotation.reissue: Immediate` on the role's mount, a certificate that the
/// signing CA did not issue is renewed now: at the activation plus a spread of up to
/// [`REISSUE_SPREAD`] taken from the request's UID, so that a mount's requests do not
/// all arrive at once. Anything else is left as decided.
fn reissue_after_rotation(
    decision: Decision,
    ctx: &Context,
    role: Option<&RoleEntry>,
    secret: Option<&Secret>,
    facts: &Facts,
) -> Decision {
    let Decision::UpToDate { current, renewal } = decision else {
        return decision;
    };
    let keep = |renewal| Decision::UpToDate {
        current: current.clone(),
        renewal,
    };
    let Some(role) = role else {
        return keep(renewal);
    };
    let mount = ctx
        .caches
        .mounts
        .state()
        .into_iter()
        .find(|m| m.name_any() == role.mount);
    let Some(mount) = mount
        .filter(|m| m.spec.rotation.reissue == tlsmint_api::v1alpha1::ReissuePolicy::Immediate)
    else {
        return keep(renewal);
    };
    let (Some(ca), Some(secret)) = (ctx.registry.ca(&role.mount), secret) else {
        return keep(renewal);
    };
    let issuer = text(secret, tlsmint_api::TLS_CERT_FILE)
        .and_then(|c| tlsmint_ca::pem::decode_certificates(c).ok())
        .and_then(|certs| certs.into_iter().nth(1));
    if issuer.as_deref() == Some(ca.certificate_der()) {
        return keep(renewal);
    }
    let activated = mount
        .status
        .as_ref()
        .and_then(|s| s.rotation.as_ref())
        .and_then(|r| {
            r.history
                .iter()
                .rev()
                .find(|h| h.phase == tlsmint_api::v1alpha1::RotationPhase::Activated)
        })
        .map(|h| times::engine_time(&h.time))
        .unwrap_or(facts.now);
    let spread = REISSUE_SPREAD.as_millis() as u64;
    let offset = time::Duration::milliseconds((facts.seed % spread.max(1)) as i64);
    let due = activated + offset;
    if facts.now >= due {
        Decision::Issue(decide::IssueReason::CaRotated)
    } else {
        keep(renewal.min(due))
    }
}

/// The certificate in `secret`'s `tls.crt`, if it parses.
fn current_certificate(secret: &Secret) -> Option<Current> {
    let certs = text(secret, tlsmint_api::TLS_CERT_FILE)?;
    let der = tlsmint_ca::pem::decode_certificates(certs)
        .ok()?
        .into_iter()
        .next()?;
    let info = tlsmint_ca::x509::parse_certificate(&der, "leaf").ok()?;
    Some(Current {
        serial: info.serial.to_colon_hex(),
        not_before: info.not_before,
        not_after: info.not_after,
        digest: secret.annotations().get(REQUEST_DIGEST_ANNOTATION).cloned(),
    })
}

#[allow(clippy::too_many_arguments)]
async fn act(
    decision: Decision,
    cr: &CertificateRequest,
    ctx: &Context,
    facts: &Facts,
    role: Option<Arc<RoleEntry>>,
    secrets: &Api<Secret>,
    secret: Option<&Secret>,
) -> Result<Outcome> {
    Ok(match decision {
        Decision::InvalidSpec(message) => Outcome::invalid(message),
        Decision::Revoked => Outcome::revoked(None),
        Decision::Revoke { serial, not_after } => {
            let mount = role.map(|r| r.mount.clone()).unwrap_or_default();
            ctx.revocations
                .record(Revocation {
                    mount,
                    serial: serial.clone(),
                    revoked_at: facts.now,
                    not_after,
                    request: format!("{}/{}", cr.namespace().unwrap_or_default(), cr.name_any()),
                })
                .await?;
            Outcome::revoked(Some((serial, facts.now)))
        }
        Decision::Denied(message) => Outcome::denied(message),
        Decision::ForeignSecret => Outcome::foreign_secret(&cr.spec.secret_name),
        Decision::Wait { reason, message } => Outcome::waiting(reason, message),
        Decision::Backoff { retry_at } => Outcome::backing_off(retry_at, facts.now),
        Decision::UpToDate { current, renewal } => {
            if let Some(secret) = secret {
                keep_trust(cr, ctx, secrets, secret, role.as_deref()).await?;
            }
            let warnings =
                secret.and_then(|s| s.annotations().get(issue::WARNINGS_ANNOTATION).cloned());
            let pem = secret
                .and_then(|s| text(s, tlsmint_api::TLS_CERT_FILE))
                .and_then(|c| tlsmint_ca::pem::decode_certificates(c).ok())
                .and_then(|ders| ders.into_iter().next())
                .map(|der| tlsmint_ca::pem::encode_certificate(&der));
            Outcome::up_to_date(current, pem, renewal, warnings, facts.now)
        }
        Decision::Issue(why) => {
            let Some((role, compiled)) = role.and_then(|r| {
                let compiled = r.compiled()?.clone();
                Some((r, compiled))
            }) else {
                return Ok(Outcome::waiting(
                    reason::ROLE_NOT_READY,
                    "the role changed; retrying".into(),
                ));
            };
            let Some(ca) = ctx.registry.ca(&role.mount) else {
                return Ok(Outcome::waiting(
                    reason::MOUNT_NOT_READY,
                    format!("PkiMount {} is not Ready", role.mount),
                ));
            };
            let role_name = role.name.clone();
            let trust_pem = ctx
                .registry
                .mount(&role.mount)
                .map(|m| m.trust_bundle_pem())
                .unwrap_or_default();
            let attempt = issue::attempt(issue::Request {
                cr,
                role,
                compiled,
                ca,
                trust_pem,
                secrets,
                existing: secret,
                digest: &facts.digest,
                cpu: &ctx.cpu,
            })
            .await?;
            Outcome::from_attempt(attempt, why, &role_name, cr, ctx, facts)
        }
    })
}

/// Keeps the Secret's `ca.crt` equal to the mount's trusted roots while the certificate is
/// not due (a CA rotation adds and later drops a root): only that key changes, conditional
/// on the Secret's resourceVersion, so a concurrent renewal is never overwritten.
async fn keep_trust(
    cr: &CertificateRequest,
    ctx: &Context,
    secrets: &Api<Secret>,
    secret: &Secret,
    role: Option<&RoleEntry>,
) -> Result<()> {
    let Some(mount) = role.and_then(|r| ctx.registry.mount(&r.mount)) else {
        return Ok(());
    };
    let want = mount.trust_bundle_pem();
    if want.is_empty() || text(secret, tlsmint_api::CA_CERT_FILE) == Some(want.as_str()) {
        return Ok(());
    }
    let patch = serde_json::json!({
        "metadata": { "resourceVersion": secret.resource_version() },
        "stringData": { (tlsmint_api::CA_CERT_FILE): want },
    });
    let name = secret.name_any();
    match secrets
        .patch(
            &name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
    {
        Ok(_) => {
            tracing::info!(secret = %name, mount = %mount.name, "ca.crt updated to the mount's trusted roots");
            Ok(())
        }
        // Changed since it was read: the next reconcile sees the new Secret.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(source) => Err(Error::WriteSecret {
            namespace: cr.namespace().unwrap_or_default(),
            name,
            source,
        }),
    }
}

fn decision_name(decision: &Decision) -> &'static str {
    match decision {
        Decision::InvalidSpec(_) => "invalid_spec",
        Decision::Revoke { .. } => "revoke",
        Decision::Revoked => "revoked",
        Decision::Denied(_) => "denied",
        Decision::ForeignSecret => "foreign_secret",
        Decision::Wait { .. } => "wait",
        Decision::Backoff { .. } => "backoff",
        Decision::Issue(_) => "issue",
        Decision::UpToDate { .. } => "up_to_date",
    }
}
