//! The decide step of the PkiMount controller: from what was observed (the spec, the
//! published status, the key Secret, the parent, the signed certificate) to the one thing
//! to do next. Pure and table-tested.
//!
//! The rule that matters most: once a CA was published (status has a certificate, a CSR or
//! a key Secret name), a missing or foreign key Secret is reported (`KeyMissing` /
//! `KeyMismatch`) and never answered with a new key.

/// Where the CA comes from, by spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A self-signed root generated here.
    Root,
    /// An intermediate signed by another PkiMount (`spec.parentRef`).
    Parent,
    /// An intermediate signed outside (`status.csr` + `spec.signedCertificateSecretRef`).
    External,
    /// An existing CA from `spec.importFrom`.
    Import,
}

/// The key Secret as observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySecret {
    /// No Secret of that name.
    Missing,
    /// A Secret of that name controlled by another object (or by nothing): never touched.
    Foreign,
    /// Ours (or, for an import, the user's): whether it holds a key and a certificate.
    Present {
        /// `tls.key` is present and not empty.
        has_key: bool,
        /// `tls.crt` is present and not empty.
        has_cert: bool,
    },
}

/// The parent of an intermediate, as observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parent {
    /// No PkiMount of that name.
    Missing,
    /// It exists but cannot sign yet.
    NotReady,
    /// Its CA is loaded.
    Ready,
}

/// Everything `decide` looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    /// Why the spec is invalid, if it is.
    pub spec_error: Option<String>,
    /// Where the CA comes from.
    pub origin: Origin,
    /// Whether a CA (certificate, CSR or key Secret) was published in status before.
    pub published: bool,
    /// The key Secret.
    pub key_secret: KeySecret,
    /// The parent, for [`Origin::Parent`].
    pub parent: Parent,
    /// For [`Origin::External`]: `None` when no signedCertificateSecretRef is set, else
    /// whether that Secret exists with a `tls.crt`.
    pub signed_certificate: Option<bool>,
}

/// What to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Report `Ready=False` with this reason and message; nothing else to do.
    NotReady {
        /// A `conditions::reason` value.
        reason: &'static str,
        /// For people.
        message: String,
    },
    /// Generate a root CA and create its key Secret (create-only).
    CreateRoot,
    /// Have the parent sign a new intermediate and create its key Secret (create-only).
    CreateIntermediate,
    /// Generate the key of an externally signed intermediate and create its Secret.
    CreateExternalKey,
    /// Publish the CSR of an external intermediate and wait for the signed certificate;
    /// with `complete`, try the signed certificate now.
    AwaitSigned {
        /// The signed certificate Secret is there: check it and complete the CA.
        complete: bool,
    },
    /// Load the CA from its key Secret, check it against what was published, report.
    Load,
}

use tlsmint_api::conditions::reason;

/// Decides the next step for a mount. `key_secret_name`, `parent_name` and
/// `import_entries` (what an import Secret must hold, e.g. `tls.crt and tls.key`) are only
/// used in messages.
pub fn decide(
    facts: &Facts,
    key_secret_name: &str,
    parent_name: &str,
    import_entries: &str,
) -> Decision {
    let not_ready = |reason: &'static str, message: String| Decision::NotReady { reason, message };
    if let Some(error) = &facts.spec_error {
        return not_ready(reason::INVALID_SPEC, error.clone());
    }
    if facts.origin == Origin::Import {
        return match facts.key_secret {
            KeySecret::Present {
                has_key: true,
                has_cert: true,
            } => Decision::Load,
            KeySecret::Missing if facts.published => not_ready(
                reason::KEY_MISSING,
                format!(
                    "the imported CA's Secret {key_secret_name} was deleted; restore it (the mount will not make a new CA)"
                ),
            ),
            KeySecret::Missing => not_ready(
                reason::IMPORT_FAILED,
                format!(
                    "Secret {key_secret_name} (spec.importFrom.secretRef) does not exist in the operator's namespace"
                ),
            ),
            KeySecret::Foreign | KeySecret::Present { .. } => not_ready(
                if facts.published {
                    reason::KEY_MISSING
                } else {
                    reason::IMPORT_FAILED
                },
                format!("Secret {key_secret_name} must hold both {import_entries}"),
            ),
        };
    }
    match facts.key_secret {
        KeySecret::Foreign => not_ready(
            reason::KEY_MISMATCH,
            format!(
                "Secret {key_secret_name} exists but does not belong to this PkiMount; it is left untouched (delete it, or rename the mount)"
            ),
        ),
        KeySecret::Missing if facts.published => not_ready(
            reason::KEY_MISSING,
            format!(
                "the CA key Secret {key_secret_name} is missing; issuance has stopped. Restore the Secret from a backup; the operator never replaces a published CA"
            ),
        ),
        KeySecret::Missing => match facts.origin {
            Origin::Root => Decision::CreateRoot,
            Origin::External => Decision::CreateExternalKey,
            Origin::Parent => match facts.parent {
                Parent::Ready => Decision::CreateIntermediate,
                Parent::Missing => not_ready(
                    reason::PARENT_NOT_READY,
                    format!("parent PkiMount {parent_name} does not exist"),
                ),
                Parent::NotReady => not_ready(
                    reason::PARENT_NOT_READY,
                    format!("waiting for parent PkiMount {parent_name} to be Ready"),
                ),
            },
            Origin::Import => Decision::Load,
        },
        KeySecret::Present { has_key: false, .. } => not_ready(
            reason::KEY_MISSING,
            format!("the CA key Secret {key_secret_name} holds no tls.key; issuance has stopped"),
        ),
        KeySecret::Present {
            has_key: true,
            has_cert: true,
        } => Decision::Load,
        KeySecret::Present {
            has_key: true,
            has_cert: false,
        } => match facts.origin {
            Origin::External => Decision::AwaitSigned {
                complete: facts.signed_certificate == Some(true),
            },
            _ => not_ready(
                reason::KEY_MISMATCH,
                format!(
                    "the CA key Secret {key_secret_name} holds a key but no certificate; it was changed outside tlsmint"
                ),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(origin: Origin, published: bool, key_secret: KeySecret) -> Facts {
        Facts {
            spec_error: None,
            origin,
            published,
            key_secret,
            parent: Parent::Ready,
            signed_certificate: None,
        }
    }

    const BOTH: KeySecret = KeySecret::Present {
        has_key: true,
        has_cert: true,
    };
    const KEY_ONLY: KeySecret = KeySecret::Present {
        has_key: true,
        has_cert: false,
    };
    const EMPTY: KeySecret = KeySecret::Present {
        has_key: false,
        has_cert: false,
    };

    fn reason_of(d: &Decision) -> &'static str {
        match d {
            Decision::NotReady { reason, .. } => reason,
            _ => "-",
        }
    }

    #[test]
    fn decides_every_origin_and_key_state() {
        use KeySecret::*;
        use Origin::*;
        let table: Vec<(Facts, Decision)> = vec![
            (facts(Root, false, Missing), Decision::CreateRoot),
            (facts(Root, false, BOTH), Decision::Load),
            (facts(Root, true, BOTH), Decision::Load),
            (facts(Parent, false, Missing), Decision::CreateIntermediate),
            (facts(External, false, Missing), Decision::CreateExternalKey),
            (
                facts(External, true, KEY_ONLY),
                Decision::AwaitSigned { complete: false },
            ),
            (
                Facts {
                    signed_certificate: Some(false),
                    ..facts(External, true, KEY_ONLY)
                },
                Decision::AwaitSigned { complete: false },
            ),
            (
                Facts {
                    signed_certificate: Some(true),
                    ..facts(External, true, KEY_ONLY)
                },
                Decision::AwaitSigned { complete: true },
            ),
            (facts(External, true, BOTH), Decision::Load),
            (facts(Import, false, BOTH), Decision::Load),
        ];
        for (f, want) in table {
            assert_eq!(decide(&f, "k", "p", "tls.crt and tls.key"), want, "{f:?}");
        }
    }

    #[test]
    fn never_makes_a_new_ca_once_one_was_published() {
        use KeySecret::*;
        use Origin::*;
        let table = [
            (facts(Root, true, Missing), "KeyMissing"),
            (facts(Parent, true, Missing), "KeyMissing"),
            (facts(External, true, Missing), "KeyMissing"),
            (facts(Import, true, Missing), "KeyMissing"),
            (facts(Root, true, EMPTY), "KeyMissing"),
            (facts(Root, false, Foreign), "KeyMismatch"),
            (facts(Root, true, Foreign), "KeyMismatch"),
            (facts(Root, true, KEY_ONLY), "KeyMismatch"),
            (facts(Parent, false, KEY_ONLY), "KeyMismatch"),
        ];
        for (f, want) in table {
            let d = decide(&f, "k", "p", "tls.crt and tls.key");
            assert_eq!(reason_of(&d), want, "{f:?} -> {d:?}");
        }
    }

    #[test]
    fn waits_for_the_parent_and_reports_bad_specs_and_imports() {
        use KeySecret::*;
        use Origin::*;
        let table = [
            (
                Facts {
                    parent: super::Parent::NotReady,
                    ..facts(Parent, false, Missing)
                },
                "ParentNotReady",
            ),
            (
                Facts {
                    parent: super::Parent::Missing,
                    ..facts(Parent, false, Missing)
                },
                "ParentNotReady",
            ),
            (
                Facts {
                    spec_error: Some("spec.ttl must be longer than zero".into()),
                    ..facts(Root, true, BOTH)
                },
                "InvalidSpec",
            ),
            (facts(Import, false, Missing), "ImportFailed"),
            (facts(Import, false, KEY_ONLY), "ImportFailed"),
            (facts(Import, false, Foreign), "ImportFailed"),
        ];
        for (f, want) in table {
            let d = decide(&f, "k", "p", "tls.crt and tls.key");
            assert_eq!(reason_of(&d), want, "{f:?} -> {d:?}");
        }
    }
}
