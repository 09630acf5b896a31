//! The digest of what a certificate was issued for: the parts of a CertificateRequest spec
//! that shape the certificate (role, names, ttl, key, CSR). It is stored on the Secret, so a
//! change to any of them (and only to them) triggers a new issuance.
//!
//! Owns the list of those fields. It must not include `renewAt` or `revoked`, which change
//! when and whether to renew, not what.

use serde::Serialize;
use sha2::{Digest, Sha256};
use tlsmint_api::v1alpha1::CertificateRequestSpec;

#[derive(Serialize)]
struct Shape<'a> {
    role: &'a str,
    common_name: Option<&'a str>,
    dns_names: &'a [String],
    ip_addresses: &'a [String],
    uris: &'a [String],
    ttl: Option<u64>,
    key_algorithm: Option<&'a str>,
    key_size: Option<u32>,
    key_encoding: &'a str,
    csr: Option<&'a str>,
}

/// The digest of the certificate-shaping fields of `spec`, as 32 hex digits.
pub fn request_digest(spec: &CertificateRequestSpec) -> String {
    let shape = Shape {
        role: &spec.role_ref.name,
        common_name: spec.common_name.as_deref(),
        dns_names: &spec.dns_names,
        ip_addresses: &spec.ip_addresses,
        uris: &spec.uris,
        ttl: spec.ttl.map(|t| t.as_std().as_secs()),
        key_algorithm: spec.private_key.algorithm.map(|a| a.as_str()),
        key_size: spec.private_key.size,
        key_encoding: spec.private_key.encoding.as_str(),
        csr: spec.csr.as_deref().map(str::trim),
    };
    let json = serde_json::to_vec(&shape).unwrap_or_default();
    short_hex(&json)
}

/// The first 16 bytes of SHA-256 of `bytes`, as hex.
pub fn short_hex(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use tlsmint_api::Fraction;

    #[test]
    fn digest_changes_with_the_certificate_shape_only() {
        let mut spec = CertificateRequestSpec::new("web", "web-tls");
        spec.dns_names = vec!["a.example.com".into()];
        let base = request_digest(&spec);
        assert_eq!(base.len(), 32);

        let mut same = spec.clone();
        same.renew_at = Fraction::new(0.7).unwrap();
        same.revoked = true;
        same.secret_name = "other".into();
        assert_eq!(request_digest(&same), base);

        let mut names = spec.clone();
        names.dns_names.push("b.example.com".into());
        let mut ttl = spec.clone();
        ttl.ttl = Some(tlsmint_api::Duration::from_mins(2));
        let mut role = spec.clone();
        role.role_ref.name = "db".into();
        for changed in [names, ttl, role] {
            assert_ne!(request_digest(&changed), base);
        }
    }
}
