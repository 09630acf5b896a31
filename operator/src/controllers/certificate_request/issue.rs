//! The act step of the CertificateRequest controller that issues: builds the engine
//! order from the spec (which key: generated, kept or the CSR's), makes the certificate
//! through [`crate::issuance`] (the one engine step), and writes the `kubernetes.io/tls` Secret (create, or server-side apply
//! when it is already ours) in one write, so a reader never sees a new certificate with an
//! old key.
//!
//! It must not write status (the controller reports) and must never put key material
//! anywhere but the Secret's `tls.key`.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};
use tlsmint_api::v1alpha1::{CertificateRequest, RotationPolicy};
use tlsmint_ca::ExposeSecret as _;
use tlsmint_ca::{CertificateAuthority, Identity, Issued, NameRequest, PrivateKey, Role};

use super::super::apply::{
    self, MANAGED_BY, MANAGED_BY_LABEL, REQUEST_DIGEST_ANNOTATION, REQUEST_LABEL,
    SERIAL_ANNOTATION, text,
};
use super::super::error::Result;
use crate::issuance::{self, Failure, Key, Order};
use crate::registry::RoleEntry;

/// Annotation on a certificate Secret: warnings from its issuance (e.g. TTL clamped).
pub use tlsmint_api::labels::WARNINGS_ANNOTATION;

/// The result of one issuance attempt.
#[derive(Debug)]
pub enum Attempt {
    /// Issued and stored in the Secret.
    Issued(Box<Issued>),
    /// The role or the engine refused the request; retrying will not help.
    Denied(String),
    /// The CA cannot sign now (e.g. expired or not yet valid).
    MountNotReady(String),
    /// Something that may work next time failed.
    Failed(String),
}

/// What an attempt needs.
pub struct Request<'a> {
    pub cr: &'a CertificateRequest,
    /// The role's registry entry (its spec gives the default key).
    pub role: Arc<RoleEntry>,
    /// Its compiled form.
    pub compiled: Arc<Role>,
    /// The CA of its mount.
    pub ca: Arc<CertificateAuthority>,
    /// The mount's trusted roots, for `ca.crt` (empty: the root above the CA).
    pub trust_pem: String,
    pub secrets: &'a Api<Secret>,
    pub existing: Option<&'a Secret>,
    pub digest: &'a str,
    pub cpu: &'a tlsmint_runtime::cpu::CpuPool,
}

/// Issues (or signs the CSR) and writes the Secret.
pub async fn attempt(req: Request<'_>) -> Result<Attempt> {
    let spec = &req.cr.spec;
    let namespace = req.cr.namespace().unwrap_or_default();
    let identity = Identity {
        namespace: namespace.clone(),
        service_account: None,
    };
    let names = NameRequest {
        common_name: spec.common_name.clone(),
        dns_names: spec.dns_names.clone(),
        ip_addresses: spec.ip_addresses.clone(),
        uris: spec.uris.clone(),
    };
    let key = match &spec.csr {
        Some(csr) => Key::Csr(csr.as_bytes().to_vec()),
        None => {
            let resolved = spec.private_key.resolve(&req.role.spec.key);
            if let Err(e) = spec
                .private_key
                .encoding
                .validate("spec.privateKey.encoding", resolved.algorithm)
            {
                return Ok(Attempt::Denied(tlsmint_ca::report(&e)));
            }
            let key_spec = match crate::convert::key_spec(&resolved) {
                Ok(k) => k,
                Err(e) => return Ok(Attempt::Denied(format!("spec.privateKey: {e}"))),
            };
            let kept = (spec.private_key.rotation_policy == RotationPolicy::Never)
                .then(|| {
                    req.existing
                        .and_then(|s| text(s, tlsmint_api::TLS_KEY_FILE))
                })
                .flatten()
                .and_then(|pem| PrivateKey::from_pem(pem).ok())
                .filter(|key| key.spec() == key_spec);
            match kept {
                Some(key) => Key::Keep(key),
                None => Key::Generate(key_spec),
            }
        }
    };
    let order = Order {
        ca: req.ca.clone(),
        role: req.compiled.clone(),
        identity,
        names,
        ttl: spec.ttl.map(|t| t.as_std()),
        key,
    };
    let signed = match issuance::issue(req.cpu, order).await {
        Ok(issued) => Ok(issued),
        Err(Failure::Engine(e)) => Err(e),
        Err(Failure::Cpu(e)) => return Err(e.into()),
    };
    let issued = match signed {
        Ok(issued) => issued,
        Err(e) => return Ok(classify(&e)),
    };
    let secret = match certificate_secret(&req, &namespace, &issued) {
        Ok(secret) => secret,
        Err(e) => return Ok(Attempt::Failed(e)),
    };
    if !apply::apply_secret(req.secrets, &secret, req.existing.is_some()).await? {
        return Ok(Attempt::Failed(format!(
            "Secret {} appeared while the certificate was being issued; checking it again",
            spec.secret_name
        )));
    }
    Ok(Attempt::Issued(Box::new(issued)))
}

/// Sorts an engine error into "retrying will not help" (the request or the role must
/// change), "the CA cannot sign now" and "may work next time", by its one class.
fn classify(error: &tlsmint_ca::Error) -> Attempt {
    use tlsmint_ca::ErrorClass as C;
    let message = error.report();
    match error.class() {
        C::InvalidInput | C::Denied | C::Misconfigured => Attempt::Denied(message),
        C::NotReady => Attempt::MountNotReady(message),
        C::Internal => Attempt::Failed(message),
    }
}

fn certificate_secret(
    req: &Request<'_>,
    namespace: &str,
    issued: &Issued,
) -> Result<Secret, String> {
    let spec = &req.cr.spec;
    let chain = issued.ca_chain.pem.concat();
    let root = if req.trust_pem.is_empty() {
        issued.ca_chain.pem.last().cloned().unwrap_or_default()
    } else {
        req.trust_pem.clone()
    };
    let key = match (&issued.private_key, spec.csr.is_some()) {
        (Some(key), false) => key
            .to_pem(crate::convert::key_encoding(spec.private_key.encoding))
            .map_err(|e| tlsmint_ca::report(&e))?
            .expose_secret()
            .to_owned(),
        // Signed CSRs: the key stays with the requester. `tls.key` must exist in a
        // kubernetes.io/tls Secret, so it is empty.
        _ => String::new(),
    };
    let labels = BTreeMap::from([
        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
        (REQUEST_LABEL.to_owned(), req.cr.name_any()),
    ]);
    let mut annotations = BTreeMap::from([
        (REQUEST_DIGEST_ANNOTATION.to_owned(), req.digest.to_owned()),
        (SERIAL_ANNOTATION.to_owned(), issued.serial.to_colon_hex()),
    ]);
    if !issued.warnings.is_empty() {
        annotations.insert(WARNINGS_ANNOTATION.to_owned(), issued.warnings.join("; "));
    }
    Ok(apply::tls_secret(
        namespace,
        &spec.secret_name,
        labels,
        annotations,
        apply::controller_reference(req.cr),
        BTreeMap::from([
            (
                tlsmint_api::TLS_CERT_FILE.to_owned(),
                format!("{}{chain}", issued.certificate_pem),
            ),
            (tlsmint_api::TLS_KEY_FILE.to_owned(), key),
            (tlsmint_api::CA_CERT_FILE.to_owned(), root),
        ]),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Seen on the cluster: PEM armour around a body that is not base64 was retried as a
    /// transient failure forever; it is as final as garbage DER.
    #[test]
    fn denies_a_csr_whose_pem_body_is_not_base64() {
        let csr = "-----BEGIN CERTIFICATE REQUEST-----\n!!!!not base64!!!!\n-----END CERTIFICATE REQUEST-----\n";
        let err = tlsmint_ca::pem::decode_csr(csr).unwrap_err();
        match classify(&err) {
            Attempt::Denied(message) => {
                assert!(message.contains("CSR PEM"), "{message}");
                assert_eq!(message.matches("Invalid symbol").count(), 1, "{message}");
            }
            other => panic!("expected Denied, got {other:?}"),
        }
        let garbage = tlsmint_ca::pem::encode(tlsmint_ca::pem::CERTIFICATE_REQUEST, b"garbage");
        let ca = tlsmint_ca::Error::CsrMalformed(garbage);
        assert!(matches!(classify(&ca), Attempt::Denied(_)));
    }

    #[test]
    fn an_expired_ca_waits_and_a_backend_failure_retries() {
        let expired = tlsmint_ca::Error::CaNotValid {
            ca: "c".into(),
            not_before: "a".into(),
            not_after: "b".into(),
        };
        assert!(matches!(classify(&expired), Attempt::MountNotReady(_)));
        let backend = tlsmint_ca::Error::KeyGeneration {
            algorithm: "RSA 2048".into(),
            reason: "entropy".into(),
        };
        assert!(matches!(classify(&backend), Attempt::Failed(_)));
    }
}
