//! The one mapping from the key settings users write (IssuerRole, CertificateRequest, CSI
//! attributes, pod annotations: `tlsmint_api` types) to the CA engine's key types, used by
//! the operator, the CSI driver and the agent (both make keys themselves).
//!
//! Owns the mapping. Must not: generate keys or decide policy (the engine does).

use tlsmint_api::v1alpha1 as api;
use tlsmint_ca::{KeyAlgorithm, KeyEncoding, KeySpec};

/// The engine's key type for an API key spec (the size is checked by the engine).
pub fn key_spec(spec: &api::KeySpec) -> Result<KeySpec, tlsmint_ca::Error> {
    let algorithm = match spec.algorithm {
        api::KeyAlgorithm::Ecdsa => KeyAlgorithm::Ecdsa,
        api::KeyAlgorithm::Ed25519 => KeyAlgorithm::Ed25519,
        api::KeyAlgorithm::Rsa => KeyAlgorithm::Rsa,
    };
    KeySpec::from_parts(algorithm, spec.size)
}

/// The engine's key encoding for an API encoding.
pub fn key_encoding(encoding: api::KeyEncoding) -> KeyEncoding {
    match encoding {
        api::KeyEncoding::Pkcs8 => KeyEncoding::Pkcs8,
        api::KeyEncoding::Pkcs1 => KeyEncoding::Pkcs1,
        api::KeyEncoding::Sec1 => KeyEncoding::Sec1,
    }
}

/// Whether `encoding` can hold a key of `algorithm` (PKCS#1 is RSA only, SEC1 ECDSA only).
pub fn encoding_fits(encoding: KeyEncoding, algorithm: KeyAlgorithm) -> bool {
    match encoding {
        KeyEncoding::Pkcs8 => true,
        KeyEncoding::Pkcs1 => algorithm == KeyAlgorithm::Rsa,
        KeyEncoding::Sec1 => algorithm == KeyAlgorithm::Ecdsa,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn maps_every_algorithm_and_checks_sizes() {
        let spec = |algorithm, size| api::KeySpec { algorithm, size };
        assert_eq!(
            key_spec(&spec(api::KeyAlgorithm::Ecdsa, Some(384)))
                .unwrap()
                .algorithm(),
            KeyAlgorithm::Ecdsa
        );
        assert_eq!(
            key_spec(&spec(api::KeyAlgorithm::Ed25519, None))
                .unwrap()
                .algorithm(),
            KeyAlgorithm::Ed25519
        );
        assert!(key_spec(&spec(api::KeyAlgorithm::Rsa, Some(1024))).is_err());
    }

    #[test]
    fn encodings_fit_only_their_algorithms() {
        assert!(encoding_fits(KeyEncoding::Pkcs8, KeyAlgorithm::Ed25519));
        assert!(encoding_fits(KeyEncoding::Pkcs1, KeyAlgorithm::Rsa));
        assert!(!encoding_fits(KeyEncoding::Pkcs1, KeyAlgorithm::Ecdsa));
        assert!(encoding_fits(KeyEncoding::Sec1, KeyAlgorithm::Ecdsa));
        assert!(!encoding_fits(KeyEncoding::Sec1, KeyAlgorithm::Rsa));
        assert_eq!(key_encoding(api::KeyEncoding::Sec1), KeyEncoding::Sec1);
    }
}
