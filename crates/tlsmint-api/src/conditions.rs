//! Condition types, reasons and the named constructors every controller uses to build them.
//!
//! Owns the vocabulary of `status.conditions` (the standard Kubernetes `Condition` shape) and
//! the rule that `lastTransitionTime` moves only when the status changes. It must not read the
//! clock: callers pass `now`, so everything here is a pure function.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// `Ready`: the object does its job (a mount can sign, a role is usable, a certificate is
/// valid and stored). Set on every kind.
pub const READY: &str = "Ready";
/// `Issuing`: a CertificateRequest is being issued or renewed right now.
pub const ISSUING: &str = "Issuing";
/// `Rotating`: a PkiMount's CA rotation is under way; the reason is the phase.
pub const ROTATING: &str = "Rotating";

/// Reasons (the machine-readable `reason` of a condition; CamelCase as Kubernetes requires).
pub mod reason {
    /// The certificate was issued (or the CA created) and is valid.
    pub const ISSUED: &str = "Issued";
    /// The role's policy or subjects refused the request.
    pub const DENIED: &str = "Denied";
    /// Waiting for something that will happen on its own (first reconcile, renewal due).
    pub const PENDING: &str = "Pending";
    /// The CA key Secret is missing; the mount will not create a new CA in its place.
    pub const KEY_MISSING: &str = "KeyMissing";
    /// The CA key Secret does not match the CA certificate (tampered or replaced).
    pub const KEY_MISMATCH: &str = "KeyMismatch";
    /// The parent mount of an intermediate does not exist or is not Ready.
    pub const PARENT_NOT_READY: &str = "ParentNotReady";
    /// An externally signed intermediate waits for `spec.signedCertificateSecretRef`.
    pub const WAITING_FOR_SIGNED_CERTIFICATE: &str = "WaitingForSignedCertificate";
    /// The signed certificate given for an intermediate is not valid for its key or CSR.
    pub const INVALID_SIGNED_CERTIFICATE: &str = "InvalidSignedCertificate";
    /// The Secret given in `spec.importFrom` is missing or does not hold a matching pair.
    pub const IMPORT_FAILED: &str = "ImportFailed";
    /// The spec fails validation; the message names the field.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// The mount a role or request depends on is not Ready.
    pub const MOUNT_NOT_READY: &str = "MountNotReady";
    /// The mount a role refers to does not exist.
    pub const MOUNT_NOT_FOUND: &str = "MountNotFound";
    /// The role a request refers to does not exist.
    pub const ROLE_NOT_FOUND: &str = "RoleNotFound";
    /// The role is not Ready.
    pub const ROLE_NOT_READY: &str = "RoleNotReady";
    /// The CA or the certificate has expired.
    pub const EXPIRED: &str = "Expired";
    /// The certificate was revoked through `spec.revoked` and is no longer renewed.
    pub const REVOKED: &str = "Revoked";
    /// The certificate is being renewed (Issuing) because its renewal time was reached.
    pub const RENEWING: &str = "Renewing";
    /// The spec changed so that a new certificate is needed (Issuing).
    pub const SPEC_CHANGED: &str = "SpecChanged";
    /// The target Secret is missing or does not hold the current certificate (Issuing).
    pub const SECRET_MISMATCH: &str = "SecretMismatch";
    /// The target Secret exists and is not owned by the CertificateRequest: it is left
    /// untouched.
    pub const SECRET_NOT_OWNED: &str = "SecretNotOwned";
    /// An issuance attempt failed; the controller retries with backoff.
    pub const FAILED: &str = "Failed";
    /// Everything checked out (a role whose mount is Ready, a mount whose CA is valid).
    pub const READY: &str = "Ready";
}

/// The value of a condition's `status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConditionStatus {
    /// `True`.
    True,
    /// `False`.
    False,
    /// `Unknown`.
    Unknown,
}

impl ConditionStatus {
    /// The string Kubernetes stores (`True`, `False`, `Unknown`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

/// Kubernetes caps `message` at 32768 bytes; longer messages are cut at a character boundary.
pub const MAX_MESSAGE_BYTES: usize = 32768;

/// A condition of `type_` with the given status, reason and message, observed at
/// `observed_generation`, with `lastTransitionTime = now`.
pub fn new_condition(
    type_: &str,
    status: ConditionStatus,
    reason: &str,
    message: impl Into<String>,
    observed_generation: Option<i64>,
    now: Time,
) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: status.as_str().to_owned(),
        reason: reason.to_owned(),
        message: truncate(message.into()),
        observed_generation,
        last_transition_time: now,
    }
}

/// `Ready=True` with `reason`.
pub fn ready(
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    now: Time,
) -> Condition {
    new_condition(
        READY,
        ConditionStatus::True,
        reason,
        message,
        generation,
        now,
    )
}

/// `Ready=False` with `reason`.
pub fn not_ready(
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    now: Time,
) -> Condition {
    new_condition(
        READY,
        ConditionStatus::False,
        reason,
        message,
        generation,
        now,
    )
}

/// `Ready=Unknown` with `reason` (e.g. [`reason::PENDING`] before the first reconcile ends).
pub fn ready_unknown(
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    now: Time,
) -> Condition {
    new_condition(
        READY,
        ConditionStatus::Unknown,
        reason,
        message,
        generation,
        now,
    )
}

/// `Issuing=True` with `reason` (e.g. [`reason::RENEWING`]).
pub fn issuing(
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    now: Time,
) -> Condition {
    new_condition(
        ISSUING,
        ConditionStatus::True,
        reason,
        message,
        generation,
        now,
    )
}

/// `Issuing=False` with `reason` (e.g. [`reason::ISSUED`] once done).
pub fn not_issuing(
    reason: &str,
    message: impl Into<String>,
    generation: Option<i64>,
    now: Time,
) -> Condition {
    new_condition(
        ISSUING,
        ConditionStatus::False,
        reason,
        message,
        generation,
        now,
    )
}

/// The condition of `type_`, if present.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether `type_` is present with status `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == ConditionStatus::True.as_str())
}

/// Whether the `Ready` condition is `True`.
pub fn is_ready(conditions: &[Condition]) -> bool {
    is_true(conditions, READY)
}

/// A two-valued condition as a controller decides it, before it is stamped with a
/// generation and a time: whether it holds, its `reason` and the message for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// `True` or `False`.
    pub holds: bool,
    /// A [`reason`] value.
    pub reason: &'static str,
    /// For people.
    pub message: String,
}

impl Verdict {
    /// The condition holds (`True`).
    pub fn yes(reason: &'static str, message: impl Into<String>) -> Self {
        Verdict {
            holds: true,
            reason,
            message: message.into(),
        }
    }

    /// The condition does not hold (`False`).
    pub fn no(reason: &'static str, message: impl Into<String>) -> Self {
        Verdict {
            holds: false,
            reason,
            message: message.into(),
        }
    }

    /// The condition of `type_` this verdict makes.
    pub fn condition(&self, type_: &str, generation: Option<i64>, now: Time) -> Condition {
        let status = if self.holds {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        };
        new_condition(
            type_,
            status,
            self.reason,
            self.message.clone(),
            generation,
            now,
        )
    }
}

/// What [`set`] changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Nothing: the condition was already so.
    Unchanged,
    /// Only its message or observed generation: worth writing, not worth an Event.
    Detail,
    /// A new condition, or a new status or reason: a transition, worth an Event.
    Transition,
}

impl Change {
    /// Whether the status or reason changed (or the condition is new).
    pub fn is_transition(self) -> bool {
        self == Change::Transition
    }
}

/// Inserts or replaces the condition of the same type. If the status is unchanged the old
/// `lastTransitionTime` is kept, so status stays calm. Says what changed: nothing, a detail,
/// or a transition (what controllers publish an Event for).
pub fn set(conditions: &mut Vec<Condition>, mut new: Condition) -> Change {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(old) => {
            if old.status == new.status {
                new.last_transition_time = old.last_transition_time.clone();
            }
            if *old == new {
                return Change::Unchanged;
            }
            let change = if old.status == new.status && old.reason == new.reason {
                Change::Detail
            } else {
                Change::Transition
            };
            *old = new;
            change
        }
        None => {
            conditions.push(new);
            Change::Transition
        }
    }
}

fn truncate(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    #[test]
    fn constructors_set_type_status_and_reason() {
        let c = ready(reason::ISSUED, "certificate issued", Some(3), at(10));
        assert_eq!(
            (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
            ("Ready", "True", "Issued")
        );
        assert_eq!(c.observed_generation, Some(3));
        assert_eq!(c.last_transition_time, at(10));
        assert_eq!(
            not_ready(reason::KEY_MISSING, "", None, at(0)).status,
            "False"
        );
        assert_eq!(
            ready_unknown(reason::PENDING, "", None, at(0)).status,
            "Unknown"
        );
        let c = issuing(reason::RENEWING, "", None, at(0));
        assert_eq!((c.type_.as_str(), c.status.as_str()), ("Issuing", "True"));
        assert_eq!(not_issuing(reason::ISSUED, "", None, at(0)).status, "False");
    }

    #[test]
    fn set_keeps_transition_time_when_status_is_unchanged() {
        let mut conditions = vec![];
        let set = |c: &mut Vec<Condition>, new| set(c, new);
        assert_eq!(
            set(&mut conditions, ready(reason::ISSUED, "a", Some(1), at(10))),
            Change::Transition
        );
        assert_eq!(
            set(&mut conditions, ready(reason::ISSUED, "a", Some(1), at(20))),
            Change::Unchanged
        );
        assert_eq!(conditions[0].last_transition_time, at(10));
        // A new message alone is a detail, not a transition.
        assert_eq!(
            set(&mut conditions, ready(reason::ISSUED, "b", Some(2), at(30))),
            Change::Detail
        );
        assert_eq!(conditions[0].last_transition_time, at(10));
        assert_eq!(conditions[0].message, "b");
        assert!(
            set(
                &mut conditions,
                not_ready(reason::FAILED, "x", Some(2), at(40))
            )
            .is_transition()
        );
        assert_eq!(conditions[0].last_transition_time, at(40));
        // Same status, new reason: a transition too.
        assert!(
            set(
                &mut conditions,
                not_ready(reason::DENIED, "x", Some(2), at(45))
            )
            .is_transition()
        );
        assert_eq!(conditions[0].last_transition_time, at(40));
        let made = Verdict::no(reason::DENIED, "x").condition(READY, Some(2), at(46));
        assert_eq!(
            (
                made.status.as_str(),
                made.reason.as_str(),
                made.message.as_str()
            ),
            ("False", reason::DENIED, "x")
        );
        assert_eq!(
            Verdict::yes(reason::READY, "")
                .condition(READY, None, at(1))
                .status,
            "True"
        );
        assert!(
            set(
                &mut conditions,
                issuing(reason::RENEWING, "", Some(2), at(50))
            )
            .is_transition()
        );
        assert_eq!(conditions.len(), 2);
        assert!(!is_ready(&conditions));
        assert!(is_true(&conditions, ISSUING));
        assert_eq!(
            find(&conditions, ISSUING).map(|c| c.reason.as_str()),
            Some("Renewing")
        );
    }

    #[test]
    fn long_messages_are_truncated_on_a_char_boundary() {
        let message = "é".repeat(MAX_MESSAGE_BYTES);
        let c = not_ready(reason::FAILED, message, None, at(0));
        assert!(c.message.len() <= MAX_MESSAGE_BYTES);
        assert!(c.message.len() >= MAX_MESSAGE_BYTES - 1);
    }

    #[test]
    fn reasons_are_valid_kubernetes_reasons() {
        for r in [
            reason::ISSUED,
            reason::DENIED,
            reason::PENDING,
            reason::KEY_MISSING,
            reason::KEY_MISMATCH,
            reason::PARENT_NOT_READY,
            reason::WAITING_FOR_SIGNED_CERTIFICATE,
            reason::INVALID_SIGNED_CERTIFICATE,
            reason::IMPORT_FAILED,
            reason::INVALID_SPEC,
            reason::MOUNT_NOT_READY,
            reason::MOUNT_NOT_FOUND,
            reason::ROLE_NOT_FOUND,
            reason::ROLE_NOT_READY,
            reason::EXPIRED,
            reason::REVOKED,
            reason::RENEWING,
            reason::SPEC_CHANGED,
            reason::SECRET_MISMATCH,
            reason::SECRET_NOT_OWNED,
            reason::FAILED,
            reason::READY,
        ] {
            assert!(r.starts_with(|c: char| c.is_ascii_uppercase()), "{r}");
            assert!(r.chars().all(|c| c.is_ascii_alphanumeric()), "{r}");
        }
    }
}
