//! The `PkiMount` kind: a certificate authority, like a Vault `pki/` mount.
//!
//! Owns the spec and status types, their defaults and `validate()`. It must not create keys or
//! certificates, nor read Secrets: the operator's `pki_mount` controller does that.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{DistinguishedName, KeySpec, NameReference, SecretReference};
use super::defaults;
use super::validation::{ValidationError, http_url, positive, require, secret_key};
use crate::{Duration, Fraction};

/// Desired state of a PkiMount: the kind of CA, its subject, key and lifetime, and how leaves
/// issued under it behave. The CA private key lives in a Secret in the operator's namespace,
/// is created once and is never silently replaced.
// clippy reads the repeated keys of `printcolumn(...)` as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "pki.tlsmint.io",
    version = "v1alpha1",
    kind = "PkiMount",
    shortname = "pkimount",
    category = "tlsmint",
    status = "PkiMountStatus",
    derive = "PartialEq",
    doc = "A certificate authority, like a Vault pki/ mount: a Root CA, or an Intermediate CA signed by another PkiMount or by an outside CA. IssuerRoles issue certificates through it.",
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Path", type_ = "string", json_path = ".status.path"),
    printcolumn(name = "Rotation", type_ = "string", json_path = ".status.rotation.phase"),
    // `string`, not `date`: kubectl prints a future date column as "<invalid>".
    printcolumn(name = "Expires", type_ = "string", json_path = ".status.notAfter"),
    printcolumn(
        name = "Reason",
        type_ = "string",
        priority = 1,
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct PkiMountSpec {
    /// Kind of CA: `Root` (self-signed) or `Intermediate` (signed by `parentRef`, or by an
    /// outside CA through `status.csr` and `signedCertificateSecretRef`).
    #[serde(rename = "type")]
    pub mount_type: MountType,

    /// Subject of the CA certificate. `commonName` is required.
    pub subject: CaSubject,

    /// Algorithm and size of the CA key. Default: ECDSA P-256. Changing it later does not
    /// replace the existing CA's key; the next re-keying rotation (spec.rotation) uses it.
    #[serde(default)]
    pub key: KeySpec,

    /// Lifetime of the CA certificate, e.g. `87600h`. Default: 87600h (ten years) for a
    /// Root, 43800h (five years) for an Intermediate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Duration>,

    /// Ceiling for the lifetime of any leaf issued under this mount, applied on top of each
    /// role's own maxTTL (Vault's mount max_lease_ttl). Default: no extra ceiling; a leaf
    /// never outlives the CA (see leafNotAfterBehavior).
    #[serde(rename = "maxTTL", default, skip_serializing_if = "Option::is_none")]
    pub max_ttl: Option<Duration>,

    /// What happens when a leaf would outlive this CA's certificate: `Error` (default, the
    /// request fails) or `Truncate` (the leaf's notAfter is cut to the CA's). Vault's
    /// leaf_not_after_behavior.
    #[serde(default)]
    pub leaf_not_after_behavior: LeafNotAfterBehavior,

    /// For an Intermediate: the PkiMount that signs it. Without it the intermediate is signed
    /// outside: the operator publishes status.csr and waits for signedCertificateSecretRef
    /// (Vault's intermediate/generate then set-signed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_ref: Option<NameReference>,

    /// For an Intermediate signed outside: the Secret (in the operator's namespace) whose
    /// `tls.crt` holds the certificate an outside CA issued for status.csr, optionally
    /// followed by its chain up to the root (Vault's intermediate/set-signed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_certificate_secret_ref: Option<SecretReference>,

    /// Bring an existing CA instead of generating one, for migration: a Secret with
    /// `tls.crt` (the CA certificate, optionally followed by its chain) and `tls.key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_from: Option<ImportFrom>,

    /// URLs written into every leaf issued under this mount (Vault's config/urls). Default:
    /// the operator's own endpoints when it has a public base URL configured, else none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<MountUrls>,

    /// Certificate revocation list settings (Vault's config/crl).
    #[serde(default)]
    pub crl: CrlConfig,

    /// The mount's path in the Vault-compatible HTTP API: requests go to `/v1/<path>/...`.
    /// Default: the object's name. Unlike a Kubernetes name it may hold `_` (so `pki_int`
    /// works for clients written for Vault) and `/`; it must not start with `sys` or `auth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,

    /// When and how the CA is replaced by the next one (Active -> Prepared -> Published ->
    /// Activated -> Retired, in status.rotation). Applies to Root mounts and to
    /// Intermediates signed by a parentRef; imported and outside-signed CAs are rotated by
    /// the user.
    #[serde(default)]
    pub rotation: RotationSpec,

    /// Where the mount's trusted roots are published as the ConfigMap `tlsmint-<mount>-ca`
    /// (key `ca.crt`). Without it no ConfigMap is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_bundle: Option<TrustBundleSpec>,
}

/// CA rotation: by schedule (fractions of the CA lifetime) or on request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotationSpec {
    /// Share of the CA lifetime after which the next CA is prepared and published to every
    /// trust bundle. Default: 0.5.
    #[serde(default = "defaults::rotation_prepare_at")]
    pub prepare_at: Fraction,

    /// Share of the CA lifetime after which the next CA starts signing (once it was
    /// published for at least propagationDelay). Default: 0.8333 (5/6). Must be above
    /// prepareAt.
    #[serde(default = "defaults::rotation_activate_at")]
    pub activate_at: Fraction,

    /// `true` (default): the next CA has a new key, and both roots are trusted until the
    /// last leaf of the old one has expired. `false`: the next CA certificate keeps the
    /// key (a renewal), so every issued leaf stays valid and no overlap is needed.
    #[serde(default = "defaults::rotation_rekey")]
    pub rekey: bool,

    /// How long a new root stays Published (trusted, not yet signing) before it may be
    /// Activated: at least the CSI driver's and the agents' --trust-refresh-interval
    /// (60s by default) plus kubelet's sync period and ClusterTrustBundle propagation.
    /// Default: 5m.
    #[serde(default = "defaults::rotation_propagation_delay")]
    pub propagation_delay: Duration,

    /// Set or change to any RFC 3339 time to rotate now: the next CA is prepared at once
    /// and activated as soon as it has propagated, without waiting for activateAt. A
    /// request made while a rotation runs starts after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<Time>,

    /// How leaves move to a newly activated CA: `Natural` (default; at their normal
    /// renewal) or `Immediate` (CertificateRequest Secrets are re-issued within 30 s of
    /// the activation, spread by request). CSI volumes and agents always move at their
    /// renewal, which for their short lifetimes comes soon.
    #[serde(default)]
    pub reissue: ReissuePolicy,
}

/// How leaves move to a newly activated CA.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ReissuePolicy {
    /// At their normal renewal time: no burst of issuance.
    #[default]
    Natural,
    /// CertificateRequest Secrets at once, each within 30 s of the activation.
    Immediate,
}

impl Default for RotationSpec {
    fn default() -> Self {
        RotationSpec {
            prepare_at: defaults::ROTATION_PREPARE_AT,
            activate_at: defaults::ROTATION_ACTIVATE_AT,
            rekey: defaults::ROTATION_REKEY,
            propagation_delay: defaults::ROTATION_PROPAGATION_DELAY,
            requested_at: None,
            reissue: ReissuePolicy::Natural,
        }
    }
}

/// Publication of the mount's trusted roots as ConfigMaps.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrustBundleSpec {
    /// Namespaces that get the ConfigMap `tlsmint-<mount>-ca`. An empty selector (`{}`)
    /// selects every namespace.
    pub namespace_selector: LabelSelector,
    /// Also publish the roots as a PKCS#12 truststore (binaryData), for Java and other
    /// runtimes that read no PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkcs12: Option<TrustStorePkcs12>,
}

/// A PKCS#12 truststore next to `ca.crt`: every trusted root as a trusted-certificate
/// entry (Java's keytool and `KeyStore.getInstance("PKCS12")` read it as a truststore).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrustStorePkcs12 {
    /// The ConfigMap key of the truststore.
    #[serde(default = "TrustStorePkcs12::default_key")]
    pub key: String,
    /// The truststore's password (it protects integrity, not secrecy: a truststore holds
    /// only public certificates). Default empty, as Java 18+ and trust-manager use.
    #[serde(default)]
    pub password: String,
}

impl TrustStorePkcs12 {
    /// The default ConfigMap key of the truststore.
    pub const DEFAULT_KEY: &'static str = "truststore.p12";

    fn default_key() -> String {
        Self::DEFAULT_KEY.to_owned()
    }
}

impl Default for TrustStorePkcs12 {
    fn default() -> Self {
        TrustStorePkcs12 {
            key: Self::default_key(),
            password: String::new(),
        }
    }
}

/// The phase of a CA rotation (status.rotation.phase).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum RotationPhase {
    /// One CA signs and is trusted; no rotation is under way.
    #[default]
    Active,
    /// The next CA exists (key Secret created, certificate signed) but is neither trusted
    /// nor signing yet.
    Prepared,
    /// The next CA is in every trust bundle; waiting for it to propagate before it signs.
    Published,
    /// The next CA signs new leaves; the old one is still trusted until its last leaf
    /// expires.
    Activated,
    /// The old CA was dropped from the trust bundles and its key Secret deleted; the
    /// rotation is complete.
    Retired,
}

impl RotationPhase {
    /// The phase's name as it appears in status.
    pub const fn as_str(self) -> &'static str {
        match self {
            RotationPhase::Active => "Active",
            RotationPhase::Prepared => "Prepared",
            RotationPhase::Published => "Published",
            RotationPhase::Activated => "Activated",
            RotationPhase::Retired => "Retired",
        }
    }

    /// Whether a rotation is under way (a next or a previous CA exists).
    pub const fn in_progress(self) -> bool {
        matches!(
            self,
            RotationPhase::Prepared | RotationPhase::Published | RotationPhase::Activated
        )
    }
}

/// Why a rotation started (status.rotation.trigger).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum RotationTrigger {
    /// spec.rotation.prepareAt of the CA lifetime was reached; activation waits for
    /// activateAt.
    Schedule,
    /// spec.rotation.requestedAt changed; activation follows as soon as the next CA has
    /// propagated.
    Request,
    /// The parent mount activated a new CA: this intermediate is re-signed by it (same
    /// key).
    ParentRotated,
}

/// One CA generation of a mount other than the active one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaGeneration {
    /// The CA certificate, PEM.
    pub certificate: String,
    /// PEM certificates from this CA up to the root, this CA first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ca_chain: Vec<String>,
    /// Serial number, colon-separated hex.
    pub serial_number: String,
    /// Start of the certificate's validity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<Time>,
    /// End of the certificate's validity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<Time>,
    /// The Secret (operator's namespace) holding this generation's key. Kept until the
    /// generation is retired.
    pub key_secret_name: String,
    /// For the previous CA: when it stopped signing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deactivated_at: Option<Time>,
}

/// One step of the rotation history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhaseChange {
    /// The phase entered.
    pub phase: RotationPhase,
    /// When.
    pub time: Time,
    /// Serial number of the CA the phase is about (the next CA, or for Retired the old
    /// one).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub serial_number: String,
}

/// Where a rotation stands.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotationStatus {
    /// The current phase.
    #[serde(default)]
    pub phase: RotationPhase,
    /// Completed activations: the active CA is generation `rotations` (0 = the first).
    #[serde(default)]
    pub rotations: u32,
    /// Whether the rotation under way re-keys (false: same key, new certificate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rekey: Option<bool>,
    /// Why the rotation under way (or the last one) started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<RotationTrigger>,
    /// The spec.rotation.requestedAt this mount last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<Time>,
    /// When the current phase was entered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase_time: Option<Time>,
    /// The prepared CA (phases Prepared and Published).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<CaGeneration>,
    /// The CA that signed before the last activation, trusted until retired (phase
    /// Activated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<CaGeneration>,
    /// The last phase changes, oldest first (at most 20).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<PhaseChange>,
}

/// Kind of CA: `Root` or `Intermediate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum MountType {
    /// A self-signed root CA.
    Root,
    /// A CA signed by a parent PkiMount or an outside CA.
    Intermediate,
}

impl MountType {
    /// The CA certificate lifetime used when `spec.ttl` is not set.
    pub const fn default_ttl(self) -> Duration {
        match self {
            MountType::Root => defaults::ROOT_TTL,
            MountType::Intermediate => defaults::INTERMEDIATE_TTL,
        }
    }
}

/// What happens when a leaf would outlive the CA: `Error` (default) or `Truncate`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum LeafNotAfterBehavior {
    /// The request fails with an error that says when the CA expires.
    #[default]
    Error,
    /// The leaf's notAfter is cut to the CA's notAfter.
    Truncate,
}

/// Subject of a CA certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CaSubject {
    /// Common name (CN) of the CA, e.g. `Example Root CA`. Required.
    pub common_name: String,
    /// The other distinguished-name fields.
    #[serde(flatten)]
    pub names: DistinguishedName,
}

/// Where to import an existing CA from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportFrom {
    /// The Secret, in the operator's namespace, with `tls.crt` (the CA certificate,
    /// optionally followed by its chain) and `tls.key` (its private key); or, with
    /// `pkcs12`, a PKCS#12 bundle and its password.
    pub secret_ref: SecretReference,
    /// Read the CA from a PKCS#12 bundle (`.p12`/`.pfx`, the format other stores export)
    /// in the Secret instead of `tls.crt`/`tls.key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkcs12: Option<Pkcs12Import>,
}

impl ImportFrom {
    /// The Secret entries this import reads, for messages (`tls.crt and tls.key`).
    pub fn entries(&self) -> String {
        match &self.pkcs12 {
            None => format!("{} and {}", crate::TLS_CERT_FILE, crate::TLS_KEY_FILE),
            Some(p12) => format!("{} and {}", p12.key, p12.password_key),
        }
    }
}

/// A PKCS#12 bundle to import: one private key with its certificate (and optionally the
/// chain above it), encrypted with a password. Both entries are read from the Secret of
/// `importFrom.secretRef`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pkcs12Import {
    /// The Secret entry holding the bundle (binary, as `kubectl create secret generic
    /// --from-file=keystore.p12=ca.p12` stores it).
    #[serde(default = "Pkcs12Import::default_key")]
    pub key: String,
    /// The Secret entry holding the bundle's password (may be empty for a bundle without
    /// one, but must exist).
    #[serde(default = "Pkcs12Import::default_password_key")]
    pub password_key: String,
}

impl Pkcs12Import {
    /// The default entry of the bundle.
    pub const DEFAULT_KEY: &'static str = "keystore.p12";
    /// The default entry of the password.
    pub const DEFAULT_PASSWORD_KEY: &'static str = "password";

    fn default_key() -> String {
        Self::DEFAULT_KEY.to_owned()
    }

    fn default_password_key() -> String {
        Self::DEFAULT_PASSWORD_KEY.to_owned()
    }
}

impl Default for Pkcs12Import {
    fn default() -> Self {
        Pkcs12Import {
            key: Self::default_key(),
            password_key: Self::default_password_key(),
        }
    }
}

/// URLs written into leaves (authority information access and CRL distribution points).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MountUrls {
    /// URLs where the issuing CA certificate can be fetched (AIA caIssuers), e.g.
    /// `https://tlsmint.example.com/v1/pki/ca`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issuing_certificates: Vec<String>,
    /// URLs of the CRL (CRL distribution points), e.g. `https://tlsmint.example.com/v1/pki/crl`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crl_distribution_points: Vec<String>,
    /// URLs of the OCSP responder (AIA OCSP), e.g. `https://tlsmint.example.com/v1/pki/ocsp`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ocsp_servers: Vec<String>,
}

/// Certificate revocation list settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CrlConfig {
    /// How long each published CRL is valid (its nextUpdate); it is rebuilt before that and
    /// on every revocation. Default: 72h.
    #[serde(default = "defaults::crl_expiry")]
    pub expiry: Duration,
}

impl Default for CrlConfig {
    fn default() -> Self {
        CrlConfig {
            expiry: defaults::CRL_EXPIRY,
        }
    }
}

/// Observed state of a PkiMount: the CA certificate and where its key is kept.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PkiMountStatus {
    /// Current state. `Ready=True` means the mount can sign; otherwise the reason says why
    /// not (e.g. KeyMissing, KeyMismatch, ParentNotReady, WaitingForSignedCertificate).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// The metadata.generation this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// The path this mount is served at in the Vault-compatible API (`/v1/<path>/...`):
    /// spec.path, or the object's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,

    /// The CA certificate, PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,

    /// PEM certificates from this CA up to and including the root, this CA first (Vault's
    /// ca_chain). For a Root it holds only its own certificate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ca_chain: Vec<String>,

    /// Serial number of the CA certificate, as colon-separated lower-case hex (Vault's form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,

    /// Start of the CA certificate's validity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<Time>,

    /// End of the CA certificate's validity. No leaf outlives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<Time>,

    /// For an Intermediate signed outside: the PEM certificate signing request to have signed.
    /// Put the result in the Secret named by spec.signedCertificateSecretRef.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csr: Option<String>,

    /// Name of the Secret, in the operator's namespace, that holds the CA private key. It is
    /// created once and never replaced; if it goes missing or stops matching the
    /// certificate, the mount turns not Ready instead of making a new CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_secret_name: Option<String>,

    /// Every root a client must trust for this mount, PEM, the active one first: during
    /// a rotation the old and the new. Every `ca.crt` tlsmint writes for this mount holds
    /// exactly these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_roots: Vec<String>,

    /// Where the CA rotation stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<RotationStatus>,
}

impl PkiMountSpec {
    /// A mount of `mount_type` named `common_name`, everything else at its default.
    pub fn new(mount_type: MountType, common_name: impl Into<String>) -> Self {
        PkiMountSpec {
            mount_type,
            subject: CaSubject {
                common_name: common_name.into(),
                names: DistinguishedName::default(),
            },
            key: KeySpec::default(),
            ttl: None,
            max_ttl: None,
            leaf_not_after_behavior: LeafNotAfterBehavior::default(),
            parent_ref: None,
            signed_certificate_secret_ref: None,
            import_from: None,
            urls: None,
            crl: CrlConfig::default(),
            path: None,
            rotation: RotationSpec::default(),
            trust_bundle: None,
        }
    }

    /// The CA certificate lifetime: spec.ttl, or the default for the mount type.
    pub fn effective_ttl(&self) -> Duration {
        self.ttl.unwrap_or(self.mount_type.default_ttl())
    }

    /// Checks everything that can be checked without other objects.
    pub fn validate(&self) -> Result<(), ValidationError> {
        require("spec.subject.commonName", &self.subject.common_name)?;
        self.subject.names.validate("spec.subject")?;
        self.key.validate("spec.key")?;
        if let Some(ttl) = self.ttl {
            positive("spec.ttl", ttl)?;
        }
        if let Some(max_ttl) = self.max_ttl {
            positive("spec.maxTTL", max_ttl)?;
        }
        positive("spec.crl.expiry", self.crl.expiry)?;
        if self.rotation.activate_at <= self.rotation.prepare_at {
            return Err(ValidationError::invalid(
                "spec.rotation.activateAt",
                &self.rotation.activate_at.to_string(),
                "must be above spec.rotation.prepareAt (the next CA is published before it signs)",
            ));
        }
        self.validate_origin()?;
        if let Some(p12) = self.trust_bundle.as_ref().and_then(|b| b.pkcs12.as_ref()) {
            secret_key("spec.trustBundle.pkcs12.key", &p12.key)?;
            if p12.key == crate::CA_CERT_FILE {
                return Err(ValidationError::invalid(
                    "spec.trustBundle.pkcs12.key",
                    &p12.key,
                    "is the key of the PEM bundle; choose another (e.g. truststore.p12)",
                ));
            }
        }
        if let Some(urls) = &self.urls {
            for (name, list) in [
                ("issuingCertificates", &urls.issuing_certificates),
                ("crlDistributionPoints", &urls.crl_distribution_points),
                ("ocspServers", &urls.ocsp_servers),
            ] {
                for (i, url) in list.iter().enumerate() {
                    http_url(&format!("spec.urls.{name}[{i}]"), url)?;
                }
            }
        }
        if let Some(path) = &self.path {
            validate_path("spec.path", path)?;
        }
        Ok(())
    }

    /// Checks parentRef / signedCertificateSecretRef / importFrom against the type and each
    /// other: a CA comes from exactly one place.
    fn validate_origin(&self) -> Result<(), ValidationError> {
        const PARENT: &str = "spec.parentRef";
        const SIGNED: &str = "spec.signedCertificateSecretRef";
        const IMPORT: &str = "spec.importFrom";
        let conflict = |field: &str, other: &str| ValidationError::Conflict {
            field: field.to_owned(),
            other: other.to_owned(),
        };
        if self.mount_type == MountType::Root {
            for (field, set) in [
                (PARENT, self.parent_ref.is_some()),
                (SIGNED, self.signed_certificate_secret_ref.is_some()),
            ] {
                if set {
                    return Err(ValidationError::OnlyForIntermediate {
                        field: field.to_owned(),
                    });
                }
            }
        }
        if self.parent_ref.is_some() && self.signed_certificate_secret_ref.is_some() {
            return Err(conflict(PARENT, SIGNED));
        }
        if self.import_from.is_some() {
            if self.parent_ref.is_some() {
                return Err(conflict(IMPORT, PARENT));
            }
            if self.signed_certificate_secret_ref.is_some() {
                return Err(conflict(IMPORT, SIGNED));
            }
        }
        if let Some(parent) = &self.parent_ref {
            parent.validate(PARENT)?;
        }
        if let Some(secret) = &self.signed_certificate_secret_ref {
            secret.validate(SIGNED)?;
        }
        if let Some(import) = &self.import_from {
            import.secret_ref.validate("spec.importFrom.secretRef")?;
            if let Some(p12) = &import.pkcs12 {
                secret_key("spec.importFrom.pkcs12.key", &p12.key)?;
                secret_key("spec.importFrom.pkcs12.passwordKey", &p12.password_key)?;
                if p12.key == p12.password_key {
                    return Err(ValidationError::invalid(
                        "spec.importFrom.pkcs12.passwordKey",
                        &p12.password_key,
                        "must name another Secret entry than spec.importFrom.pkcs12.key",
                    ));
                }
            }
        }
        Ok(())
    }
}

impl PkiMount {
    /// The path this mount is served at in the Vault-compatible API: spec.path, else the
    /// object's name.
    pub fn mount_path(&self) -> &str {
        match (&self.spec.path, &self.metadata.name) {
            (Some(path), _) => path,
            (None, Some(name)) => name,
            (None, None) => "",
        }
    }

    /// Validates the spec and what depends on the object's name (its effective path, a
    /// parentRef pointing at itself).
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.spec.validate()?;
        let name = self.metadata.name.as_deref().unwrap_or_default();
        if let Some(parent) = &self.spec.parent_ref
            && parent.name == name
        {
            return Err(ValidationError::invalid(
                "spec.parentRef.name",
                name,
                "is this PkiMount itself: an intermediate needs another mount as its parent",
            ));
        }
        if self.spec.path.is_none() {
            validate_path("metadata.name (the default spec.path)", name)?;
        }
        Ok(())
    }
}

/// First path segments that the Vault-compatible API keeps for itself.
pub const RESERVED_PATHS: [&str; 2] = ["sys", "auth"];

/// Checks a Vault mount path: segments of letters, digits, `_`, `-` and `.`, each starting
/// with a letter or digit, separated by single `/`; at most 128 characters; not `sys/...` or
/// `auth/...`.
fn validate_path(field: &str, path: &str) -> Result<(), ValidationError> {
    let segment_ok = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    if path.len() > 128 || !path.split('/').all(segment_ok) {
        return Err(ValidationError::invalid(
            field,
            path,
            "is not a mount path (letters, digits, '_', '-', '.', segments separated by '/', e.g. pki_int)",
        ));
    }
    let first = path.split('/').next().unwrap_or_default();
    if RESERVED_PATHS.contains(&first) {
        return Err(ValidationError::invalid(
            field,
            path,
            "is reserved by the Vault-compatible API (sys/ and auth/)",
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "pki_mount_tests.rs"]
mod tests;
