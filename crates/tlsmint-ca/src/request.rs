//! Building PKCS#10 requests for leaf keys made outside the CA (the agent and the CSI driver
//! make the key where it is used and send only a CSR to `Sign`).
//!
//! Owns the CSR's shape: the key and its self-signature, with an empty subject. The names go
//! in the `Sign` call beside the CSR, where the role's policy checks them; the CSR carries none
//! so that the two can never disagree. Must not: decide names or lifetimes.

use rcgen::{CertificateParams, DistinguishedName};

use crate::error::{Error, Result};
use crate::key::PrivateKey;
use crate::pem;

/// A PEM `CERTIFICATE REQUEST` for `key`, signed by it, with an empty subject and no
/// extensions.
pub fn leaf_csr_pem(key: &PrivateKey) -> Result<String> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    let csr = params
        .serialize_request(key)
        .map_err(|e| Error::signing("leaf CSR", e))?;
    Ok(pem::encode(pem::CERTIFICATE_REQUEST, csr.der()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::key::KeySpec;

    #[test]
    fn csr_carries_the_key_and_verifies() {
        for spec in [KeySpec::EcdsaP256, KeySpec::Ed25519] {
            let key = PrivateKey::generate(spec).unwrap();
            let pem = leaf_csr_pem(&key).unwrap();
            let parsed = crate::csr::parse(pem.as_bytes()).unwrap();
            assert_eq!(parsed.spki_der, key.public_key_der());
            assert_eq!(parsed.key, spec);
        }
    }
}
