//! The decide step of CA rotation (SPEC §6): from where the rotation stands and the clock
//! to the one thing to do next. Pure and table-tested; `rotate` carries the step out.
//!
//! Active (or Retired) -> Prepared: the next CA exists, is neither trusted nor signing.
//! Prepared -> Published: it is added to every trust bundle. Published -> Activated: it
//! signs new leaves, once a new root had `propagationDelay` to reach every bundle (no wait
//! when the trusted roots do not change: a renewal, or an intermediate re-keyed under the
//! same root), and for a scheduled rotation once `activateAt` of the CA lifetime passed.
//! Activated -> Retired: the old CA leaves the bundles and its key Secret goes, after the
//! last leaf it (or an intermediate under it) signed has expired.
//!
//! The rule that matters most: the next CA is never made twice. `rotate` names its key
//! Secret after the generation number, creates it create-only and reuses one that exists,
//! so a restart in any phase continues the same rotation.

use time::OffsetDateTime;
use tlsmint_api::v1alpha1::{RotationPhase, RotationTrigger};

/// A certificate's validity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// notBefore.
    pub not_before: OffsetDateTime,
    /// notAfter.
    pub not_after: OffsetDateTime,
}

impl Span {
    /// The instant `fraction` of the way through the validity.
    pub fn at(&self, fraction: f64) -> OffsetDateTime {
        self.not_before + (self.not_after - self.not_before) * fraction
    }
}

/// Everything `decide` looks at.
#[derive(Clone, Debug, PartialEq)]
pub struct Facts {
    /// Now.
    pub now: OffsetDateTime,
    /// status.rotation.phase.
    pub phase: RotationPhase,
    /// When that phase was entered (`now` when unknown).
    pub phase_time: OffsetDateTime,
    /// Why the rotation under way started.
    pub trigger: Option<RotationTrigger>,
    /// The active CA's validity.
    pub active: Span,
    /// spec.rotation.prepareAt.
    pub prepare_at: f64,
    /// spec.rotation.activateAt.
    pub activate_at: f64,
    /// spec.rotation.rekey.
    pub rekey: bool,
    /// spec.rotation.requestedAt differs from the one last acted on.
    pub request_pending: bool,
    /// An intermediate whose parent now signs with another CA than the one that signed it.
    pub parent_moved: bool,
    /// status.rotation.next is recorded.
    pub has_next: bool,
    /// status.rotation.previous is recorded.
    pub has_previous: bool,
    /// Publishing the next CA adds a root that is not trusted yet.
    pub trust_changes: bool,
    /// spec.rotation.propagationDelay.
    pub propagation_delay: time::Duration,
    /// When the old CA may be retired (its last leaf expired), for phase Activated.
    pub retire_at: Option<OffsetDateTime>,
    /// An intermediate under this mount that the new CA has not re-signed yet.
    pub waiting_child: Option<String>,
}

/// What to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing to do until `wake_at` (the scheduled preparation).
    Idle {
        /// When to look again.
        wake_at: OffsetDateTime,
    },
    /// Make the next CA (new key with `rekey`, else a new certificate for the key).
    Prepare {
        /// Whether to re-key.
        rekey: bool,
        /// Why.
        trigger: RotationTrigger,
    },
    /// Put the next CA into every trust bundle.
    Publish,
    /// Let the next CA sign; keep the old one trusted.
    Activate,
    /// Drop the old CA from the bundles and delete its key Secret.
    Retire,
    /// Wait in this phase.
    Wait {
        /// When to look again (`None`: when something changes, or at the recheck).
        until: Option<OffsetDateTime>,
        /// For people: what the phase waits for.
        waiting_for: String,
    },
}

/// Decides the next rotation step.
pub fn decide(facts: &Facts) -> Step {
    match facts.phase {
        RotationPhase::Active | RotationPhase::Retired => start(facts),
        RotationPhase::Prepared if facts.has_next => Step::Publish,
        RotationPhase::Published if facts.has_next => activation(facts),
        // The next CA was lost from status (edited by hand): prepare it again; the
        // generation's key Secret is reused if it exists.
        RotationPhase::Prepared | RotationPhase::Published => Step::Prepare {
            rekey: facts.rekey,
            trigger: facts.trigger.unwrap_or(RotationTrigger::Request),
        },
        RotationPhase::Activated => retirement(facts),
    }
}

fn start(facts: &Facts) -> Step {
    let scheduled = facts.active.at(facts.prepare_at);
    if facts.parent_moved {
        Step::Prepare {
            rekey: false,
            trigger: RotationTrigger::ParentRotated,
        }
    } else if facts.request_pending {
        Step::Prepare {
            rekey: facts.rekey,
            trigger: RotationTrigger::Request,
        }
    } else if facts.now >= scheduled {
        Step::Prepare {
            rekey: facts.rekey,
            trigger: RotationTrigger::Schedule,
        }
    } else {
        Step::Idle { wake_at: scheduled }
    }
}

fn activation(facts: &Facts) -> Step {
    let propagated = if facts.trust_changes {
        facts.phase_time + facts.propagation_delay
    } else {
        facts.phase_time
    };
    let scheduled = facts.active.at(facts.activate_at);
    let due = match facts.trigger {
        Some(RotationTrigger::Schedule) | None => propagated.max(scheduled),
        Some(RotationTrigger::Request | RotationTrigger::ParentRotated) => propagated,
    };
    if facts.now >= due {
        return Step::Activate;
    }
    let waiting_for = if facts.now < propagated {
        format!(
            "the new root to reach every trust bundle (spec.rotation.propagationDelay, until {})",
            rfc3339(propagated)
        )
    } else {
        format!(
            "spec.rotation.activateAt of the CA lifetime ({})",
            rfc3339(scheduled)
        )
    };
    Step::Wait {
        until: Some(due),
        waiting_for,
    }
}

fn retirement(facts: &Facts) -> Step {
    if !facts.has_previous {
        return Step::Retire;
    }
    if let Some(child) = &facts.waiting_child {
        return Step::Wait {
            until: None,
            waiting_for: format!("intermediate PkiMount {child} to be re-signed by the new CA"),
        };
    }
    match facts.retire_at {
        Some(at) if facts.now < at => Step::Wait {
            until: Some(at),
            waiting_for: format!(
                "the last leaf signed by the old CA to expire ({})",
                rfc3339(at)
            ),
        },
        _ => Step::Retire,
    }
}

fn rfc3339(at: OffsetDateTime) -> String {
    tlsmint_ca::x509::rfc3339(at)
}

/// The roots a client must trust: the active CA's root first, then the parent's other
/// trusted roots (an intermediate trusts what its parent trusts), the next CA's root once
/// published, and the previous CA's root until retired; each PEM once.
pub fn trusted_roots<'a>(
    active_root: &'a str,
    parent: &'a [String],
    published_next: Option<&'a str>,
    previous: Option<&'a str>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let candidates = std::iter::once(active_root)
        .chain(parent.iter().map(String::as_str))
        .chain(published_next)
        .chain(previous);
    for pem in candidates {
        let pem = pem.trim();
        if !pem.is_empty() && !out.iter().any(|have| have.trim() == pem) {
            out.push(format!("{pem}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use RotationPhase::*;
    use RotationTrigger::*;
    use time::Duration;

    fn t(secs: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + Duration::seconds(secs)
    }

    /// A CA valid from 0 to 6000 s: prepare at 3000, activate at 5000.
    fn facts(phase: RotationPhase, now: i64) -> Facts {
        Facts {
            now: t(now),
            phase,
            phase_time: t(now),
            trigger: None,
            active: Span {
                not_before: t(0),
                not_after: t(6000),
            },
            prepare_at: 0.5,
            activate_at: 5.0 / 6.0,
            rekey: true,
            request_pending: false,
            parent_moved: false,
            has_next: matches!(phase, Prepared | Published),
            has_previous: phase == Activated,
            trust_changes: true,
            propagation_delay: Duration::seconds(300),
            retire_at: Some(t(7000)),
            waiting_child: None,
        }
    }

    fn step_name(step: &Step) -> String {
        match step {
            Step::Idle { wake_at } => format!("Idle@{}", (*wake_at - t(0)).whole_seconds()),
            Step::Prepare { rekey, trigger } => format!("Prepare({rekey},{trigger:?})"),
            Step::Publish => "Publish".into(),
            Step::Activate => "Activate".into(),
            Step::Retire => "Retire".into(),
            Step::Wait { until, .. } => {
                format!("Wait@{}", until.map_or(-1, |u| (u - t(0)).whole_seconds()))
            }
        }
    }

    #[test]
    fn the_phase_table() {
        let published = |now, since, trigger, trust_changes| Facts {
            phase_time: t(since),
            trigger,
            trust_changes,
            ..facts(Published, now)
        };
        let table: Vec<(Facts, &str)> = vec![
            // Active: idle until prepareAt, then prepare; a request or a moved parent first.
            (facts(Active, 100), "Idle@3000"),
            (facts(Active, 3000), "Prepare(true,Schedule)"),
            (facts(Retired, 3500), "Prepare(true,Schedule)"),
            (
                Facts {
                    request_pending: true,
                    ..facts(Active, 100)
                },
                "Prepare(true,Request)",
            ),
            (
                Facts {
                    request_pending: true,
                    rekey: false,
                    ..facts(Active, 100)
                },
                "Prepare(false,Request)",
            ),
            (
                Facts {
                    parent_moved: true,
                    request_pending: true,
                    ..facts(Active, 100)
                },
                "Prepare(false,ParentRotated)",
            ),
            // Prepared: publish; a lost next CA is prepared again.
            (facts(Prepared, 10), "Publish"),
            (
                Facts {
                    has_next: false,
                    trigger: Some(Request),
                    ..facts(Prepared, 10)
                },
                "Prepare(true,Request)",
            ),
            // Published by schedule: activateAt and the propagation delay, whichever later.
            (published(4000, 3000, Some(Schedule), true), "Wait@5000"),
            (published(5000, 3000, Some(Schedule), true), "Activate"),
            (published(5000, 4900, Some(Schedule), true), "Wait@5200"),
            (published(5200, 4900, Some(Schedule), true), "Activate"),
            // On request: as soon as the new root propagated; at once if no root is new.
            (published(150, 100, Some(Request), true), "Wait@400"),
            (published(400, 100, Some(Request), true), "Activate"),
            (published(100, 100, Some(Request), false), "Activate"),
            (published(100, 100, Some(ParentRotated), false), "Activate"),
            // Activated: children re-signed first, then the last old leaf must expire.
            (facts(Activated, 6500), "Wait@7000"),
            (facts(Activated, 7000), "Retire"),
            (
                Facts {
                    waiting_child: Some("pki-int".into()),
                    ..facts(Activated, 8000)
                },
                "Wait@-1",
            ),
            (
                Facts {
                    has_previous: false,
                    ..facts(Activated, 10)
                },
                "Retire",
            ),
        ];
        for (f, want) in table {
            assert_eq!(step_name(&decide(&f)), want, "{f:?}");
        }
    }

    #[test]
    fn a_wait_says_what_it_waits_for() {
        let f = Facts {
            trigger: Some(Request),
            ..facts(Published, 10)
        };
        let Step::Wait { waiting_for, .. } = decide(&f) else {
            panic!("expected a wait");
        };
        assert!(waiting_for.contains("propagationDelay"), "{waiting_for}");
        let f = Facts {
            waiting_child: Some("pki-int".into()),
            ..facts(Activated, 10)
        };
        let Step::Wait { waiting_for, .. } = decide(&f) else {
            panic!("expected a wait");
        };
        assert!(waiting_for.contains("pki-int"), "{waiting_for}");
    }

    #[test]
    fn trusted_roots_keep_order_and_drop_duplicates() {
        let parent = vec!["OLD\n".to_owned(), "NEW\n".to_owned()];
        assert_eq!(
            trusted_roots("OLD\n", &parent, Some("OLD"), None),
            ["OLD\n", "NEW\n"]
        );
        assert_eq!(
            trusted_roots("NEW", &[], None, Some("OLD")),
            ["NEW\n", "OLD\n"]
        );
        assert_eq!(trusted_roots("A", &[], Some("B"), None), ["A\n", "B\n"]);
    }
}
