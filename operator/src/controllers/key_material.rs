//! A CA's key pair as its key Secret holds it: `tls.crt` (the CA certificate, then its
//! chain) and `tls.key`, or for `spec.importFrom.pkcs12` a PKCS#12 bundle and its
//! password. The one reader of key Secrets for the PkiMount controller and the loader, so
//! both accept the same Secrets and name the same faults.
//!
//! PKCS#12 is decoded with `p12-keystore` (PBES2/AES as OpenSSL 3 and Java write it, and
//! the legacy PBES1 3DES/RC2 of older exports). The password never leaves this module:
//! errors name the Secret entries, not their content.

use k8s_openapi::api::core::v1::Secret;
use tlsmint_api::v1alpha1::ImportFrom;
use tlsmint_ca::{CertificateAuthority, PrivateKey};

use super::apply::text;

/// The certificates (DER) and private key read from a key Secret.
#[derive(Debug)]
pub struct KeyMaterial {
    /// The CA certificate.
    pub certificate: Vec<u8>,
    /// The chain above it (may be empty).
    pub chain: Vec<Vec<u8>>,
    key: PrivateKey,
}

/// Why a key Secret does not hold a usable key pair. Never carries secret material.
#[derive(Debug, thiserror::Error)]
pub enum MaterialError {
    /// An entry the Secret must have is absent (or, for a certificate or key, empty).
    #[error("Secret {secret} has no {entry}")]
    Missing {
        /// The Secret's name.
        secret: String,
        /// The missing entry.
        entry: String,
    },
    /// `tls.crt` is not a PEM certificate chain.
    #[error("Secret {secret}: tls.crt is unreadable")]
    Certificates {
        /// The Secret's name.
        secret: String,
        /// The engine's reason.
        #[source]
        source: tlsmint_ca::Error,
    },
    /// `tls.key`, or the key inside the bundle, is not a private key tlsmint can use.
    #[error("Secret {secret}: the private key is unreadable")]
    Key {
        /// The Secret's name.
        secret: String,
        /// The engine's reason.
        #[source]
        source: tlsmint_ca::Error,
    },
    /// The bundle cannot be opened: not PKCS#12, a wrong password, or an unsupported
    /// encryption.
    #[error(
        "Secret {secret}: {entry} cannot be opened as PKCS#12 with the password in {password_entry} (wrong password, not a PKCS#12 file, or an unsupported encryption)"
    )]
    Pkcs12 {
        /// The Secret's name.
        secret: String,
        /// The bundle's entry.
        entry: String,
        /// The password's entry.
        password_entry: String,
        /// The decoder's reason (names no secret).
        #[source]
        source: Box<p12_keystore::error::Error>,
    },
    /// The bundle opened but does not hold exactly one private key with its certificate.
    #[error(
        "Secret {secret}: the PKCS#12 bundle in {entry} {found}; a CA import needs exactly one private key with its certificate"
    )]
    Pkcs12Content {
        /// The Secret's name.
        secret: String,
        /// The bundle's entry.
        entry: String,
        /// What it holds instead, for people.
        found: String,
    },
}

impl KeyMaterial {
    /// Reads the key pair of `secret` (named `name`, for messages) as `import` says: the
    /// bundle of `import.pkcs12`, else `tls.crt` and `tls.key`.
    pub fn read(
        secret: &Secret,
        name: &str,
        import: Option<&ImportFrom>,
    ) -> Result<KeyMaterial, MaterialError> {
        match import.and_then(|i| i.pkcs12.as_ref()) {
            Some(p12) => read_pkcs12(secret, name, &p12.key, &p12.password_key),
            None => read_pem(secret, name),
        }
    }

    /// Builds the CA after the engine's checks (CA certificate, key matches, chain links).
    pub fn into_ca(self, name: &str) -> tlsmint_ca::Result<CertificateAuthority> {
        CertificateAuthority::from_parts(name, self.key, self.certificate, self.chain)
    }
}

/// Whether `secret` has the entries `import` reads, non-empty (a password may be empty):
/// `(has_key, has_cert)` in the sense of the decide step (for PKCS#12, the bundle and its
/// password).
pub fn entries_present(secret: &Secret, import: Option<&ImportFrom>) -> (bool, bool) {
    let filled = |key: &str| text(secret, key).is_some_and(|v| !v.trim().is_empty());
    match import.and_then(|i| i.pkcs12.as_ref()) {
        Some(p12) => (
            bytes(secret, &p12.key).is_some_and(|b| !b.is_empty()),
            text(secret, &p12.password_key).is_some(),
        ),
        None => (
            filled(tlsmint_api::TLS_KEY_FILE),
            filled(tlsmint_api::TLS_CERT_FILE),
        ),
    }
}

fn missing(secret: &str, entry: &str) -> MaterialError {
    MaterialError::Missing {
        secret: secret.to_owned(),
        entry: entry.to_owned(),
    }
}

fn read_pem(secret: &Secret, name: &str) -> Result<KeyMaterial, MaterialError> {
    let non_empty = |key: &str| text(secret, key).filter(|v| !v.trim().is_empty());
    let certs = non_empty(tlsmint_api::TLS_CERT_FILE)
        .ok_or_else(|| missing(name, tlsmint_api::TLS_CERT_FILE))?;
    let key = non_empty(tlsmint_api::TLS_KEY_FILE)
        .ok_or_else(|| missing(name, tlsmint_api::TLS_KEY_FILE))?;
    let mut chain = tlsmint_ca::pem::decode_certificates(certs).map_err(|source| {
        MaterialError::Certificates {
            secret: name.to_owned(),
            source,
        }
    })?;
    // decode_certificates refuses a text without a certificate, so the chain has a first.
    let certificate = chain.remove(0);
    let key = PrivateKey::from_pem(key).map_err(|source| MaterialError::Key {
        secret: name.to_owned(),
        source,
    })?;
    Ok(KeyMaterial {
        certificate,
        chain,
        key,
    })
}

fn read_pkcs12(
    secret: &Secret,
    name: &str,
    entry: &str,
    password_entry: &str,
) -> Result<KeyMaterial, MaterialError> {
    let bundle = bytes(secret, entry)
        .filter(|b| !b.is_empty())
        .ok_or_else(|| missing(name, entry))?;
    let password = text(secret, password_entry).ok_or_else(|| missing(name, password_entry))?;
    // A password stored with `--from-literal` has no newline, one from `--from-file` often
    // does; neither is part of a PKCS#12 password in practice.
    let password = password.trim_end_matches(['\n', '\r']);
    let store = p12_keystore::KeyStore::from_pkcs12(
        bundle,
        password,
        p12_keystore::Pkcs12ImportPolicy::Strict,
    )
    .map_err(|source| MaterialError::Pkcs12 {
        secret: name.to_owned(),
        entry: entry.to_owned(),
        password_entry: password_entry.to_owned(),
        source: Box::new(source),
    })?;
    let content = |found: String| MaterialError::Pkcs12Content {
        secret: name.to_owned(),
        entry: entry.to_owned(),
        found,
    };
    let chains: Vec<&p12_keystore::PrivateKeyChain> = store
        .entries()
        .filter_map(|(_, e)| match e {
            p12_keystore::KeyStoreEntry::PrivateKeyChain(chain) => Some(chain),
            _ => None,
        })
        .collect();
    let chain = match chains.as_slice() {
        [one] => *one,
        [] => return Err(content("holds no private key with a certificate".into())),
        many => return Err(content(format!("holds {} private keys", many.len()))),
    };
    let Some((certificate, above)) = chain.certs().split_first() else {
        return Err(content(
            "holds a private key without its certificate".into(),
        ));
    };
    let key = PrivateKey::from_der(chain.key().as_der()).map_err(|source| MaterialError::Key {
        secret: name.to_owned(),
        source,
    })?;
    Ok(KeyMaterial {
        certificate: certificate.as_der().to_vec(),
        chain: above.iter().map(|c| c.as_der().to_vec()).collect(),
        key,
    })
}

/// The raw bytes of a Secret entry (`data`, else `stringData`).
fn bytes<'a>(secret: &'a Secret, key: &str) -> Option<&'a [u8]> {
    if let Some(value) = secret.data.as_ref().and_then(|d| d.get(key)) {
        return Some(&value.0);
    }
    secret
        .string_data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(String::as_bytes)
}

#[cfg(test)]
#[path = "key_material_tests.rs"]
mod tests;
