//! Errors of the controllers: one variant per failing step, naming the object it concerns.
//! These are the failures worth a retry with backoff (API calls, the blocking pool); what a
//! user must fix (invalid spec, denial, missing key) is reported in status conditions, not
//! returned as an error.
//!
//! Owns the variants and their bounded `category()` (metric label). It must not carry key
//! material: messages name objects and fields only.

/// A reconcile step that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object has no namespace although its kind is namespaced.
    #[error("{kind} {name} has no namespace")]
    MissingNamespace {
        /// Kind of the object.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// Reading a Secret failed.
    #[error("reading Secret {namespace}/{name} failed")]
    GetSecret {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// What the API server said.
        #[source]
        source: kube::Error,
    },
    /// Creating a Secret failed (other than "it already exists").
    #[error("creating Secret {namespace}/{name} failed")]
    CreateSecret {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// What the API server said.
        #[source]
        source: kube::Error,
    },
    /// Updating a Secret (server-side apply or conditional patch) failed.
    #[error("writing Secret {namespace}/{name} failed")]
    WriteSecret {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// What the API server said.
        #[source]
        source: kube::Error,
    },
    /// Deleting a Secret (a retired CA's key) failed.
    #[error("deleting Secret {namespace}/{name} failed")]
    DeleteSecret {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// What the API server said.
        #[source]
        source: kube::Error,
    },
    /// Writing an object's status failed.
    #[error("writing the status of {kind} {name} failed")]
    PatchStatus {
        /// Kind of the object.
        kind: &'static str,
        /// `namespace/name` or `name`.
        name: String,
        /// What the API server said.
        #[source]
        source: kube::Error,
    },
    /// Serializing a status for a patch failed.
    #[error("encoding the status of {kind} {name} failed")]
    EncodeStatus {
        /// Kind of the object.
        kind: &'static str,
        /// Name.
        name: String,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// Key generation or signing on the blocking pool did not finish.
    #[error(transparent)]
    Blocking(#[from] tlsmint_runtime::cpu::CpuError),
    /// The revocation could not be recorded.
    #[error(transparent)]
    Revocation(#[from] super::revocation_hook::RevocationError),
}

impl Error {
    /// A bounded label for metrics and logs: the failing step.
    pub fn category(&self) -> &'static str {
        match self {
            Error::MissingNamespace { .. } => "missing_namespace",
            Error::GetSecret { .. } => "get_secret",
            Error::CreateSecret { .. } => "create_secret",
            Error::WriteSecret { .. } => "write_secret",
            Error::DeleteSecret { .. } => "delete_secret",
            Error::PatchStatus { .. } => "patch_status",
            Error::EncodeStatus { .. } => "encode_status",
            Error::Blocking(_) => "blocking_task",
            Error::Revocation(_) => "record_revocation",
        }
    }
}

/// Result of a reconcile step.
pub type Result<T, E = Error> = std::result::Result<T, E>;
