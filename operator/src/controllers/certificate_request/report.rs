//! The report step of the CertificateRequest controller: turns what happened into the
//! status (conditions `Ready` and `Issuing`, the certificate fields, the failure count),
//! writes it only when it changed, publishes the Event, and picks the requeue.
//!
//! Owns the wording of conditions and Events. It must not call the CA or touch Secrets.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Api, Resource, ResourceExt};
use time::OffsetDateTime;
use tlsmint_api::conditions::{self, Change, Verdict, reason};
use tlsmint_api::v1alpha1::{CertificateRequest, CertificateRequestStatus};

use super::super::Context;
use super::super::apply;
use super::super::error::Result;
use super::super::times;
use super::decide::{Current, Facts, IssueReason, renewal_of};
use super::issue::Attempt;
use tlsmint_client::renewal as backoff;

use tlsmint_api::conditions::reason::SECRET_NOT_OWNED;

/// A condition to set: status, reason, message.
type Cond = Verdict;

/// The certificate fields of the status.
#[derive(Debug)]
struct Certificate {
    serial: String,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    renewal: OffsetDateTime,
    pem: Option<String>,
}

/// How the failure count changes.
#[derive(Debug, PartialEq, Eq)]
enum Failures {
    Keep,
    Reset,
    Increment,
}

/// What happened in this reconcile, for the status.
#[derive(Debug)]
pub struct Outcome {
    ready: Option<Cond>,
    issuing: Option<Cond>,
    certificate: Option<Certificate>,
    failures: Failures,
    revocation: Option<Option<Time>>,
    /// Published when set; `always` also when the Ready condition did not change.
    event: Option<(EventType, &'static str, String, bool)>,
    issued_by: Option<String>,
    requeue: Action,
}

impl Outcome {
    fn new(ready: Option<Cond>, issuing: Option<Cond>, requeue: Action) -> Self {
        Outcome {
            ready,
            issuing,
            certificate: None,
            failures: Failures::Keep,
            revocation: None,
            event: None,
            issued_by: None,
            requeue,
        }
    }

    /// The spec is invalid.
    pub fn invalid(message: String) -> Self {
        let mut o = Outcome::new(
            Some(Verdict::no(reason::INVALID_SPEC, message.clone())),
            Some(Verdict::no(reason::INVALID_SPEC, String::new())),
            Action::await_change(),
        );
        o.event = Some((EventType::Warning, reason::INVALID_SPEC, message, false));
        o
    }

    /// Revoked now (`Some`) or earlier / nothing to revoke (`None`).
    pub fn revoked(now: Option<(String, OffsetDateTime)>) -> Self {
        match now {
            Some((serial, at)) => {
                let message = format!(
                    "certificate {serial} was revoked at {}; it is no longer renewed",
                    tlsmint_ca::x509::rfc3339(at)
                );
                let mut o = Outcome::new(
                    Some(Verdict::no(reason::REVOKED, message.clone())),
                    Some(Verdict::no(reason::REVOKED, String::new())),
                    Action::await_change(),
                );
                o.revocation = Some(Some(times::k8s_time(at)));
                o.event = Some((EventType::Normal, reason::REVOKED, message, true));
                o
            }
            None => Outcome::new(None, None, Action::await_change()),
        }
    }

    /// The role refused the request.
    pub fn denied(message: String) -> Self {
        let mut o = Outcome::new(
            Some(Verdict::no(reason::DENIED, message.clone())),
            Some(Verdict::no(reason::DENIED, String::new())),
            Action::await_change(),
        );
        o.event = Some((EventType::Warning, reason::DENIED, message, false));
        o
    }

    /// The Secret belongs to something else.
    pub fn foreign_secret(secret: &str) -> Self {
        let message = format!(
            "Secret {secret} exists and is not owned by this CertificateRequest; it is left untouched (delete it or choose another spec.secretName)"
        );
        let mut o = Outcome::new(
            Some(Verdict::no(SECRET_NOT_OWNED, message.clone())),
            Some(Verdict::no(SECRET_NOT_OWNED, String::new())),
            Action::requeue(std::time::Duration::from_secs(300)),
        );
        o.event = Some((EventType::Warning, SECRET_NOT_OWNED, message, false));
        o
    }

    /// The role or mount cannot issue yet.
    pub fn waiting(reason: &'static str, message: String) -> Self {
        Outcome::new(
            Some(Verdict::no(reason, message.clone())),
            Some(Verdict::yes(reason, message)),
            Action::requeue(std::time::Duration::from_secs(30)),
        )
    }

    /// The last attempt failed recently.
    pub fn backing_off(retry_at: OffsetDateTime, now: OffsetDateTime) -> Self {
        Outcome::new(None, None, Action::requeue(until(retry_at, now)))
    }

    /// The Secret holds a valid certificate for the spec.
    pub fn up_to_date(
        current: Current,
        pem: Option<String>,
        renewal: OffsetDateTime,
        warnings: Option<String>,
        now: OffsetDateTime,
    ) -> Self {
        let mut o = Outcome::new(
            Some(Verdict::yes(
                reason::ISSUED,
                issued_message(
                    &current.serial,
                    current.not_after,
                    renewal,
                    warnings.as_deref(),
                ),
            )),
            Some(Verdict::no(reason::ISSUED, String::new())),
            Action::requeue(until(renewal, now)),
        );
        o.certificate = Some(Certificate {
            serial: current.serial,
            not_before: current.not_before,
            not_after: current.not_after,
            renewal,
            pem,
        });
        o.failures = Failures::Reset;
        o
    }

    /// The result of an issuance attempt.
    pub fn from_attempt(
        attempt: Attempt,
        why: IssueReason,
        role: &str,
        cr: &CertificateRequest,
        ctx: &Context,
        facts: &Facts,
    ) -> Self {
        match attempt {
            Attempt::Issued(issued) => {
                let serial = issued.serial.to_colon_hex();
                let current = Current {
                    serial: serial.clone(),
                    not_before: issued.not_before,
                    not_after: issued.not_after,
                    digest: None,
                };
                let renewal = renewal_of(&current, facts.renew_at);
                let warnings = (!issued.warnings.is_empty()).then(|| issued.warnings.join("; "));
                let mut o = Outcome::up_to_date(
                    current,
                    Some(issued.certificate_pem.clone()),
                    renewal,
                    warnings.clone(),
                    facts.now,
                );
                let verb = if why.is_renewal() {
                    "Renewed"
                } else {
                    "Issued"
                };
                let mut note = format!(
                    "{} certificate {serial} through IssuerRole {role}, valid until {}",
                    verb.to_lowercase(),
                    tlsmint_ca::x509::rfc3339(issued.not_after)
                );
                if let Some(w) = warnings {
                    note.push_str(&format!(" ({w})"));
                }
                tracing::info!(x509.serial = %serial, x509.not_after = %tlsmint_ca::x509::rfc3339(issued.not_after), role, "certificate {}", verb.to_lowercase());
                o.event = Some((EventType::Normal, verb, note, true));
                o.issued_by = Some(role.to_owned());
                o.revocation = Some(None);
                o
            }
            Attempt::Denied(message) => {
                ctx.metrics.denied(role);
                Outcome::denied(message)
            }
            Attempt::MountNotReady(message) => Outcome::waiting(reason::MOUNT_NOT_READY, message),
            Attempt::Failed(message) => {
                let failures = cr
                    .status
                    .as_ref()
                    .and_then(|s| s.failure_count)
                    .unwrap_or(0)
                    + 1;
                let wait = backoff::failure_backoff(failures, facts.seed);
                let message = format!(
                    "{message} (attempt {failures}; retrying in {}s)",
                    wait.as_secs()
                );
                let still_valid = cr
                    .status
                    .as_ref()
                    .and_then(|s| s.not_after.as_ref())
                    .is_some_and(|t| times::engine_time(t) > facts.now);
                let ready = (!still_valid).then(|| Verdict::no(reason::FAILED, message.clone()));
                let mut o = Outcome::new(
                    ready,
                    Some(Verdict::yes(reason::FAILED, message.clone())),
                    Action::requeue(wait),
                );
                o.failures = Failures::Increment;
                o.event = Some((EventType::Warning, reason::FAILED, message, true));
                o
            }
        }
    }
}

fn until(at: OffsetDateTime, now: OffsetDateTime) -> std::time::Duration {
    let seconds = (at - now).as_seconds_f64().clamp(1.0, 36_000.0);
    std::time::Duration::from_secs_f64(seconds)
}

fn issued_message(
    serial: &str,
    not_after: OffsetDateTime,
    renewal: OffsetDateTime,
    warnings: Option<&str>,
) -> String {
    let mut message = format!(
        "certificate {serial} is valid until {}; renews at {}",
        tlsmint_ca::x509::rfc3339(not_after),
        tlsmint_ca::x509::rfc3339(renewal)
    );
    if let Some(w) = warnings {
        message.push_str(&format!(". Note: {w}"));
    }
    message
}

/// Writes the status if it changed, publishes the Event, counts, and returns the requeue.
pub async fn report(cr: &CertificateRequest, ctx: &Context, outcome: Outcome) -> Result<Action> {
    let old = cr.status.clone().unwrap_or_default();
    let mut status = old.clone();
    let generation = cr.metadata.generation;
    let now = time::OffsetDateTime::now_utc();
    let ready_changed = apply_outcome(&mut status, &outcome, generation, now).is_transition();
    if status != old {
        let api: Api<CertificateRequest> =
            Api::namespaced(ctx.client.clone(), &cr.namespace().unwrap_or_default());
        apply::apply_status(&api, &cr.name_any(), &status).await?;
    }
    if let Some(role) = &outcome.issued_by {
        ctx.metrics.issued(role);
    }
    if let Some((type_, reason, note, always)) = outcome.event
        && (always || ready_changed)
    {
        ctx.publish(cr.object_ref(&()), type_, reason, note, "Issue")
            .await;
    }
    Ok(outcome.requeue)
}

/// Applies the outcome to `status`; returns what happened to the Ready condition.
fn apply_outcome(
    status: &mut CertificateRequestStatus,
    outcome: &Outcome,
    generation: Option<i64>,
    now: OffsetDateTime,
) -> Change {
    status.observed_generation = generation;
    let t = times::k8s_time(now);
    let ready = if let Some(ready) = &outcome.ready {
        let c = ready.condition(conditions::READY, generation, t.clone());
        conditions::set(&mut status.conditions, c)
    } else if conditions::find(&status.conditions, conditions::READY).is_none() {
        conditions::set(
            &mut status.conditions,
            conditions::ready_unknown(reason::PENDING, "", generation, t.clone()),
        )
    } else {
        Change::Unchanged
    };
    if let Some(issuing) = &outcome.issuing {
        let c = issuing.condition(conditions::ISSUING, generation, t.clone());
        conditions::set(&mut status.conditions, c);
    }
    if let Some(cert) = &outcome.certificate {
        status.serial_number = Some(cert.serial.clone());
        status.not_before = Some(times::k8s_time(cert.not_before));
        status.not_after = Some(times::k8s_time(cert.not_after));
        status.renewal_time = Some(times::k8s_time(cert.renewal));
        if cert.pem.is_some() {
            status.certificate.clone_from(&cert.pem);
        }
    }
    match outcome.failures {
        Failures::Keep => {}
        Failures::Reset => {
            status.failure_count = None;
            status.last_failure_time = None;
        }
        Failures::Increment => {
            status.failure_count = Some(status.failure_count.unwrap_or(0) + 1);
            status.last_failure_time = Some(t);
        }
    }
    if let Some(revocation) = &outcome.revocation {
        status.revocation_time.clone_from(revocation);
    }
    ready
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2030-06-01 12:00 UTC);

    fn current() -> Current {
        Current {
            serial: "0a:0b".into(),
            not_before: NOW,
            not_after: NOW + time::Duration::minutes(2),
            digest: None,
        }
    }

    #[test]
    fn an_up_to_date_certificate_writes_the_same_status_twice() {
        let renewal = NOW + time::Duration::minutes(1);
        let mut status = CertificateRequestStatus::default();
        let outcome = Outcome::up_to_date(
            current(),
            Some("PEM".into()),
            renewal,
            Some("ttl clamped".into()),
            NOW,
        );
        apply_outcome(&mut status, &outcome, Some(1), NOW);
        assert!(conditions::is_ready(&status.conditions));
        assert_eq!(status.serial_number.as_deref(), Some("0a:0b"));
        let ready = conditions::find(&status.conditions, conditions::READY).unwrap();
        assert!(
            ready.message.contains("Note: ttl clamped"),
            "{}",
            ready.message
        );
        let first = status.clone();
        apply_outcome(
            &mut status,
            &outcome,
            Some(1),
            NOW + time::Duration::seconds(30),
        );
        assert_eq!(status, first, "no change, no patch");
    }

    #[test]
    fn failures_count_up_and_reset_on_success() {
        let mut status = CertificateRequestStatus::default();
        let mut failing = Outcome::new(
            None,
            Some(Verdict::yes(reason::FAILED, "x")),
            Action::await_change(),
        );
        failing.failures = Failures::Increment;
        apply_outcome(&mut status, &failing, Some(1), NOW);
        apply_outcome(&mut status, &failing, Some(1), NOW);
        assert_eq!(status.failure_count, Some(2));
        assert!(conditions::is_true(&status.conditions, conditions::ISSUING));
        let ok = Outcome::up_to_date(current(), None, NOW, None, NOW);
        apply_outcome(&mut status, &ok, Some(1), NOW);
        assert_eq!(status.failure_count, None);
        assert_eq!(status.last_failure_time, None);
        assert!(!conditions::is_true(
            &status.conditions,
            conditions::ISSUING
        ));
    }

    #[test]
    fn denial_and_revocation_stop_without_requeue() {
        let mut status = CertificateRequestStatus::default();
        let denied = Outcome::denied("namespace x is not among the subjects".into());
        apply_outcome(&mut status, &denied, Some(2), NOW);
        let ready = conditions::find(&status.conditions, conditions::READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "Denied")
        );
        assert_eq!(
            format!("{:?}", denied.requeue),
            format!("{:?}", Action::await_change())
        );
        let revoked = Outcome::revoked(Some(("0a".into(), NOW)));
        apply_outcome(&mut status, &revoked, Some(3), NOW);
        assert!(status.revocation_time.is_some());
        assert_eq!(
            conditions::find(&status.conditions, conditions::READY)
                .unwrap()
                .reason,
            "Revoked"
        );
    }
}
