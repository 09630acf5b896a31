//! Version `v1alpha1` of the `pki.tlsmint.io` API: the `PkiMount`, `IssuerRole` and
//! `CertificateRequest` kinds with their specs, statuses, defaults and validation.
//!
//! Owns the shape of the custom resources (and so the generated CRDs in `crds/`). It must not
//! do I/O or issue anything: controllers read these types and act.

mod certificate_request;
mod common;
pub mod defaults;
mod issuer_role;
mod pki_mount;
mod validation;

pub use certificate_request::{
    CertificateRequest, CertificateRequestSpec, CertificateRequestStatus, PrivateKeySpec,
    RotationPolicy,
};
pub use common::{
    DistinguishedName, KeyAlgorithm, KeyAlgorithmError, KeyEncoding, KeyEncodingError, KeySpec,
    NameReference, SecretReference,
};
pub use issuer_role::{
    ExtKeyUsage, IssuerRole, IssuerRoleSpec, IssuerRoleStatus, KeyUsage, ROLE_TEMPLATES,
    RoleSubject,
};
pub use pki_mount::{
    CaGeneration, CaSubject, CrlConfig, ImportFrom, LeafNotAfterBehavior, MountType, MountUrls,
    PhaseChange, Pkcs12Import, PkiMount, PkiMountSpec, PkiMountStatus, RESERVED_PATHS,
    ReissuePolicy, RotationPhase, RotationSpec, RotationStatus, RotationTrigger, TrustBundleSpec,
    TrustStorePkcs12,
};
pub use validation::ValidationError;

/// The API group of every tlsmint custom resource.
pub const GROUP: &str = "pki.tlsmint.io";
/// This module's API version.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of objects of this version: `pki.tlsmint.io/v1alpha1`.
pub const API_VERSION: &str = "pki.tlsmint.io/v1alpha1";
