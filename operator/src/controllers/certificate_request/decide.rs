//! The decide step of the CertificateRequest controller: from the observed request, role
//! and Secret to the one thing to do. Pure and table-tested; time is passed in.
//!
//! The Secret is the source of truth for the current certificate (status mirrors it), so a
//! restart between writing the Secret and writing the status never causes a second
//! issuance.

use time::OffsetDateTime;

use tlsmint_api::conditions::reason;
use tlsmint_client::renewal as backoff;

/// The role as this request sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleState {
    /// No IssuerRole of that name.
    Missing,
    /// The role exists but cannot issue now (invalid, or its mount is not Ready).
    NotReady {
        /// A `conditions::reason` value.
        reason: &'static str,
        /// For people.
        message: String,
    },
    /// The request's namespace is not among the role's subjects.
    Denied(String),
    /// The role and its mount can issue.
    Ready,
}

/// The certificate currently in the Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Current {
    /// Serial, colon hex.
    pub serial: String,
    /// Validity.
    pub not_before: OffsetDateTime,
    /// Validity.
    pub not_after: OffsetDateTime,
    /// The request digest it was issued for (Secret annotation).
    pub digest: Option<String>,
}

/// The target Secret as observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretState {
    /// No Secret of that name.
    Missing,
    /// A Secret of that name not controlled by this request: never overwritten.
    Foreign,
    /// Ours; the certificate in it, if readable.
    Owned(Option<Current>),
}

/// Everything `decide` looks at.
#[derive(Clone, Debug, PartialEq)]
pub struct Facts {
    /// Why the spec is invalid, if it is.
    pub spec_error: Option<String>,
    /// `spec.revoked`.
    pub revoked: bool,
    /// `status.revocationTime` is set: the status serial was revoked already.
    pub revocation_recorded: bool,
    /// Serial and notAfter in status (used when the Secret cannot say).
    pub status_certificate: Option<(String, OffsetDateTime)>,
    /// The role.
    pub role: RoleState,
    /// The Secret.
    pub secret: SecretState,
    /// Digest of the current spec.
    pub digest: String,
    /// `spec.renewAt`.
    pub renew_at: f64,
    /// Failed attempts in a row (status.failureCount) and when the last one failed.
    pub failures: Option<(u32, OffsetDateTime)>,
    /// Seed for the backoff jitter (the object's UID).
    pub seed: u64,
    /// Now.
    pub now: OffsetDateTime,
}

/// Why a certificate is (re)issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssueReason {
    /// None was issued yet.
    Initial,
    /// Renewal time reached.
    Renewal,
    /// The certificate expired (e.g. the operator was down past renewal).
    Expired,
    /// The spec asks for a different certificate.
    SpecChanged,
    /// The Secret lost the certificate (deleted or edited).
    SecretMismatch,
    /// `revoked` was set back to false after a revocation: a new certificate replaces the
    /// revoked one.
    AfterRevocation,
    /// The mount activated a new CA and its `spec.rotation.reissue` is `Immediate`.
    CaRotated,
}

impl IssueReason {
    /// Whether a certificate existed before (the Event says Renewed rather than Issued).
    pub fn is_renewal(self) -> bool {
        !matches!(self, IssueReason::Initial)
    }
}

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The spec is invalid: report, wait for a change.
    InvalidSpec(String),
    /// Revoke this serial (record it for the CRL), then stop renewing.
    Revoke {
        /// Serial, colon hex.
        serial: String,
        /// Its notAfter.
        not_after: OffsetDateTime,
    },
    /// Revoked already (or nothing to revoke): nothing more to do.
    Revoked,
    /// The role refuses this namespace: report, wait for a change.
    Denied(String),
    /// The Secret belongs to something else: report, wait for a change.
    ForeignSecret,
    /// A certificate is needed but the role or mount cannot issue now.
    Wait {
        /// A `conditions::reason` value.
        reason: &'static str,
        /// For people.
        message: String,
    },
    /// A certificate is needed but the last attempt failed recently: retry at `retry_at`.
    Backoff {
        /// When to try again.
        retry_at: OffsetDateTime,
    },
    /// Issue a certificate now.
    Issue(IssueReason),
    /// The Secret holds a valid certificate for this spec; renew at `renewal`.
    UpToDate {
        /// The current certificate.
        current: Current,
        /// When to renew it.
        renewal: OffsetDateTime,
    },
}

/// When `current` should be renewed.
pub fn renewal_of(current: &Current, renew_at: f64) -> OffsetDateTime {
    backoff::renewal_time(
        current.not_before,
        current.not_after,
        renew_at,
        backoff::seed_of(current.serial.as_bytes()),
    )
}

/// Decides the next step for one request.
pub fn decide(facts: &Facts) -> Decision {
    if let Some(error) = &facts.spec_error {
        return Decision::InvalidSpec(error.clone());
    }
    let current = match &facts.secret {
        SecretState::Owned(current) => current.as_ref(),
        _ => None,
    };
    if facts.revoked {
        if facts.revocation_recorded {
            return Decision::Revoked;
        }
        let target = current
            .map(|c| (c.serial.clone(), c.not_after))
            .or_else(|| facts.status_certificate.clone());
        return match target {
            Some((serial, not_after)) => Decision::Revoke { serial, not_after },
            None => Decision::Revoked,
        };
    }
    if let RoleState::Denied(message) = &facts.role {
        return Decision::Denied(message.clone());
    }
    if facts.secret == SecretState::Foreign {
        return Decision::ForeignSecret;
    }
    let why = match current {
        None if facts.status_certificate.is_some() => IssueReason::SecretMismatch,
        None => IssueReason::Initial,
        Some(_) if facts.revocation_recorded => IssueReason::AfterRevocation,
        Some(c) if c.digest.as_deref() != Some(facts.digest.as_str()) => IssueReason::SpecChanged,
        Some(c) if facts.now >= c.not_after => IssueReason::Expired,
        Some(c) => {
            let renewal = renewal_of(c, facts.renew_at);
            if facts.now < renewal {
                return Decision::UpToDate {
                    current: c.clone(),
                    renewal,
                };
            }
            IssueReason::Renewal
        }
    };
    match &facts.role {
        RoleState::Missing => {
            return Decision::Wait {
                reason: reason::ROLE_NOT_FOUND,
                message: "the IssuerRole in spec.roleRef does not exist".into(),
            };
        }
        RoleState::NotReady { reason, message } => {
            return Decision::Wait {
                reason,
                message: message.clone(),
            };
        }
        RoleState::Denied(_) | RoleState::Ready => {}
    }
    if let Some((failures, last)) = facts.failures
        && failures > 0
    {
        let wait = backoff::failure_backoff(failures, facts.seed);
        let retry_at = last + wait;
        if facts.now < retry_at {
            return Decision::Backoff { retry_at };
        }
    }
    Decision::Issue(why)
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
