//! Table tests of the CertificateRequest decide step.

use super::*;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2030-06-01 12:00 UTC);

fn cert(issued_minutes_ago: i64, lifetime_minutes: i64, digest: &str) -> Current {
    let not_before = NOW - time::Duration::minutes(issued_minutes_ago);
    Current {
        serial: "01:02".into(),
        not_before,
        not_after: not_before + time::Duration::minutes(lifetime_minutes),
        digest: Some(digest.into()),
    }
}

fn facts(secret: SecretState) -> Facts {
    Facts {
        spec_error: None,
        revoked: false,
        revocation_recorded: false,
        status_certificate: None,
        role: RoleState::Ready,
        secret,
        digest: "d1".into(),
        renew_at: 0.5,
        failures: None,
        seed: 7,
        now: NOW,
    }
}

fn owned(c: Current) -> SecretState {
    SecretState::Owned(Some(c))
}

fn kind(d: &Decision) -> String {
    match d {
        Decision::InvalidSpec(_) => "InvalidSpec".into(),
        Decision::Revoke { serial, .. } => format!("Revoke {serial}"),
        Decision::Revoked => "Revoked".into(),
        Decision::Denied(_) => "Denied".into(),
        Decision::ForeignSecret => "ForeignSecret".into(),
        Decision::Wait { reason, .. } => format!("Wait {reason}"),
        Decision::Backoff { .. } => "Backoff".into(),
        Decision::Issue(why) => format!("Issue {why:?}"),
        Decision::UpToDate { .. } => "UpToDate".into(),
    }
}

#[test]
fn issues_keeps_and_renews() {
    let table: Vec<(&str, Facts, &str)> = vec![
        ("nothing yet", facts(SecretState::Missing), "Issue Initial"),
        (
            "empty secret of ours",
            facts(SecretState::Owned(None)),
            "Issue Initial",
        ),
        ("fresh", facts(owned(cert(10, 60, "d1"))), "UpToDate"),
        (
            "past half",
            facts(owned(cert(31, 60, "d1"))),
            "Issue Renewal",
        ),
        ("expired", facts(owned(cert(90, 60, "d1"))), "Issue Expired"),
        (
            "spec changed",
            facts(owned(cert(1, 60, "d0"))),
            "Issue SpecChanged",
        ),
        (
            "secret lost its certificate",
            Facts {
                status_certificate: Some(("01:02".into(), NOW)),
                ..facts(SecretState::Missing)
            },
            "Issue SecretMismatch",
        ),
        (
            "renewAt 0.9 keeps a half-used certificate",
            Facts {
                renew_at: 0.9,
                ..facts(owned(cert(31, 60, "d1")))
            },
            "UpToDate",
        ),
    ];
    for (name, f, want) in table {
        assert_eq!(kind(&decide(&f)), want, "{name}");
    }
}

#[test]
fn renewal_happens_at_half_lifetime_minus_jitter() {
    // A 2-minute certificate renews between 54 s and 60 s after its notBefore.
    let c = cert(0, 2, "d1");
    let renewal = renewal_of(&c, 0.5);
    let offset = (renewal - c.not_before).whole_seconds();
    assert!((54..=60).contains(&offset), "{offset}");
    match decide(&facts(owned(c.clone()))) {
        Decision::UpToDate { renewal: r, .. } => assert_eq!(r, renewal),
        other => panic!("{other:?}"),
    }
}

#[test]
fn denies_waits_and_refuses_foreign_secrets() {
    let table: Vec<(&str, Facts, &str)> = vec![
        (
            "namespace not in subjects",
            Facts {
                role: RoleState::Denied("namespace x".into()),
                ..facts(owned(cert(1, 60, "d1")))
            },
            "Denied",
        ),
        (
            "foreign secret",
            facts(SecretState::Foreign),
            "ForeignSecret",
        ),
        (
            "role missing",
            Facts {
                role: RoleState::Missing,
                ..facts(SecretState::Missing)
            },
            "Wait RoleNotFound",
        ),
        (
            "mount not ready",
            Facts {
                role: RoleState::NotReady {
                    reason: reason::MOUNT_NOT_READY,
                    message: "m".into(),
                },
                ..facts(SecretState::Missing)
            },
            "Wait MountNotReady",
        ),
        (
            "a valid certificate stays while the mount is down",
            Facts {
                role: RoleState::NotReady {
                    reason: reason::MOUNT_NOT_READY,
                    message: "m".into(),
                },
                ..facts(owned(cert(1, 60, "d1")))
            },
            "UpToDate",
        ),
        (
            "invalid spec wins",
            Facts {
                spec_error: Some("spec.secretName is required".into()),
                ..facts(SecretState::Foreign)
            },
            "InvalidSpec",
        ),
    ];
    for (name, f, want) in table {
        assert_eq!(kind(&decide(&f)), want, "{name}");
    }
}

#[test]
fn revocation_records_once_then_stops() {
    let table: Vec<(&str, Facts, &str)> = vec![
        (
            "revoke the secret's certificate",
            Facts {
                revoked: true,
                ..facts(owned(cert(1, 60, "d1")))
            },
            "Revoke 01:02",
        ),
        (
            "revoke from status when the secret is gone",
            Facts {
                revoked: true,
                status_certificate: Some(("0a:0b".into(), NOW)),
                ..facts(SecretState::Missing)
            },
            "Revoke 0a:0b",
        ),
        (
            "already revoked, even past renewal",
            Facts {
                revoked: true,
                revocation_recorded: true,
                ..facts(owned(cert(59, 60, "d1")))
            },
            "Revoked",
        ),
        (
            "nothing to revoke",
            Facts {
                revoked: true,
                ..facts(SecretState::Missing)
            },
            "Revoked",
        ),
        (
            "un-revoking issues a new certificate",
            Facts {
                revocation_recorded: true,
                ..facts(owned(cert(1, 60, "d1")))
            },
            "Issue AfterRevocation",
        ),
    ];
    for (name, f, want) in table {
        assert_eq!(kind(&decide(&f)), want, "{name}");
    }
}

#[test]
fn failures_back_off_before_the_next_attempt() {
    let recent = Facts {
        failures: Some((3, NOW - time::Duration::seconds(5))),
        ..facts(SecretState::Missing)
    };
    match decide(&recent) {
        Decision::Backoff { retry_at } => {
            let wait = (retry_at - (NOW - time::Duration::seconds(5))).whole_seconds();
            assert!((20..=22).contains(&wait), "{wait}");
        }
        other => panic!("{other:?}"),
    }
    let old = Facts {
        failures: Some((3, NOW - time::Duration::minutes(5))),
        ..facts(SecretState::Missing)
    };
    assert_eq!(kind(&decide(&old)), "Issue Initial");
    let reset = Facts {
        failures: Some((0, NOW)),
        ..facts(SecretState::Missing)
    };
    assert_eq!(kind(&decide(&reset)), "Issue Initial");
}
