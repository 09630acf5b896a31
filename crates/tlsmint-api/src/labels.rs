//! Every label, annotation, field manager and Secret type the operator writes on the
//! objects it creates, defined once (the keys of files inside Secrets are
//! [`crate::TLS_CERT_FILE`], [`crate::TLS_KEY_FILE`] and [`crate::CA_CERT_FILE`]).
//! Tools that select tlsmint's objects, and tlsmint's own watches, use these.

/// On everything the operator creates.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "tlsmint-operator";
/// On a CA key Secret, a revocation ConfigMap and a ClusterTrustBundle: the PkiMount.
pub const MOUNT_LABEL: &str = "pki.tlsmint.io/mount";
/// On a ClusterTrustBundle: the namespace of the operator installation that owns it.
pub const OPERATOR_LABEL: &str = "pki.tlsmint.io/operator";
/// On a certificate Secret: the CertificateRequest that writes it.
pub const REQUEST_LABEL: &str = "pki.tlsmint.io/certificate-request";
/// On a certificate Secret: digest of the request spec it was issued for.
pub const REQUEST_DIGEST_ANNOTATION: &str = "pki.tlsmint.io/request-digest";
/// On a certificate Secret: serial of the certificate it holds.
pub const SERIAL_ANNOTATION: &str = "pki.tlsmint.io/serial";
/// On a certificate Secret: the engine's warnings when the certificate was issued.
pub const WARNINGS_ANNOTATION: &str = "pki.tlsmint.io/issue-warnings";
/// On the injector's serving-certificate Secret: the names it was issued for.
pub const SERVING_NAMES_ANNOTATION: &str = "tlsmint.io/serving-names";
/// Field manager of every server-side apply by the operator's controllers.
pub const FIELD_MANAGER: &str = "tlsmint-operator";
/// Field manager of the injector serving-certificate keeper.
pub const INJECTOR_TLS_FIELD_MANAGER: &str = "tlsmint-operator/injector-tls";
/// Type of every Secret the operator writes.
pub const TLS_SECRET_TYPE: &str = "kubernetes.io/tls";
/// On a trust ConfigMap (`tlsmint-<mount>-ca`): marks it as tlsmint's.
pub const TRUST_BUNDLE_LABEL: &str = "pki.tlsmint.io/trust-bundle";
/// On a trust ConfigMap with a PKCS#12 truststore: digest of the roots, key and password
/// it was written for (the file itself differs on every write: random salts).
pub const TRUSTSTORE_DIGEST_ANNOTATION: &str = "pki.tlsmint.io/truststore-digest";
