//! The files in the shared volume: writing a new generation atomically (a new certificate,
//! or new roots beside the same certificate), and judging what is already there when the
//! agent starts (reuse only a pair that is whole, matching, chained, in its lifetime and not
//! yet due for renewal; anything else is replaced).
//!
//! Owns the file set and the checks. Must not: talk to the API or log file contents.

use std::path::Path;

use time::OffsetDateTime;
use tlsmint_ca::ExposeSecret as _;
use tlsmint_ca::{PrivateKey, pem, x509};
use tlsmint_client::files::{AtomicDir, File, Owner, WriteError};
use tlsmint_client::renewal;

use crate::config::FileArgs;

/// A certificate, its chain, the CA bundle and the key, as obtained from the API.
pub struct Material {
    /// The leaf, PEM.
    pub certificate_pem: String,
    /// The issuing CA and its parents, PEM, nearest first.
    pub chain_pem: Vec<String>,
    /// The roots to trust, PEM.
    pub ca_pem: String,
    /// The private key.
    pub key: PrivateKey,
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Material")
            .field("chain", &self.chain_pem.len())
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// What the agent knows of the certificate in place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Current {
    /// Serial, colon-hex.
    pub serial: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// When to renew it.
    pub renew_at: OffsetDateTime,
}

/// Why the files in place cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Unusable {
    /// A file is missing or unreadable.
    #[error("{file} cannot be read: {reason}")]
    Unreadable {
        /// The file.
        file: String,
        /// What the kernel said.
        reason: String,
    },
    /// A file does not parse.
    #[error("{file} is not valid: {reason}")]
    Malformed {
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// The key is not the certificate's.
    #[error("the key in {key_file} does not belong to the certificate in {cert_file}")]
    KeyMismatch {
        /// The key file.
        key_file: String,
        /// The certificate file.
        cert_file: String,
    },
    /// The chain does not lead to a root of the CA bundle.
    #[error("the chain does not verify: {0}")]
    Chain(String),
    /// The certificate is not valid yet.
    #[error("the certificate is not valid before {0}")]
    NotYetValid(String),
    /// The certificate has expired.
    #[error("the certificate expired at {0}")]
    Expired(String),
    /// The certificate is valid but due for renewal.
    #[error("the certificate is due for renewal since {0}")]
    DueForRenewal(String),
}

/// The files of one generation, named by `files`.
pub fn generation(files: &FileArgs, material: &Material) -> Result<Vec<File>, tlsmint_ca::Error> {
    let key_pem = material.key.to_pem(tlsmint_ca::KeyEncoding::Pkcs8)?;
    let mut chain = material.certificate_pem.clone();
    // The chain up to, not including, the trust anchor: peers have the roots already. The
    // bundle may hold several roots (during a CA rotation), so compare certificate by
    // certificate.
    let roots = pem::decode_certificates(&material.ca_pem).unwrap_or_default();
    for ca in &material.chain_pem {
        let is_root = pem::decode_certificates(ca)
            .is_ok_and(|ders| !ders.is_empty() && ders.iter().all(|der| roots.contains(der)));
        if !is_root {
            push_pem(&mut chain, ca);
        }
    }
    let mut out = vec![
        File::public(&files.cert_file, chain.clone()),
        File::secret(&files.key_file, key_pem.expose_secret().as_bytes(), true),
        File::public(&files.ca_file, material.ca_pem.clone()),
    ];
    if !files.bundle_file.is_empty() {
        let mut bundle = zeroize::Zeroizing::new(key_pem.expose_secret().to_owned());
        push_pem(&mut bundle, &chain);
        out.push(File::secret(&files.bundle_file, bundle.as_bytes(), true));
    }
    Ok(out)
}

fn push_pem(out: &mut String, pem: &str) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(pem);
}

/// Writes `material` as the new generation.
pub fn write(dir: &AtomicDir, files: &FileArgs, material: &Material) -> Result<(), WriteFailed> {
    let generation = generation(files, material).map_err(WriteFailed::Encode)?;
    std::fs::create_dir_all(dir.root()).map_err(|source| {
        WriteFailed::Write(WriteError::Io {
            op: "creating",
            path: dir.root().to_owned(),
            source,
        })
    })?;
    dir.write(&generation, Owner::default())
        .map_err(WriteFailed::Write)?;
    Ok(())
}

/// Writes a new generation with `ca_pem` as the CA file and every other file of the current
/// generation byte for byte (the same key, leaf, chain and bundle: none of them holds the
/// roots), unless the CA file already holds exactly `ca_pem`. Returns whether it wrote.
pub fn write_trust(dir: &AtomicDir, files: &FileArgs, ca_pem: &str) -> Result<bool, WriteFailed> {
    if dir
        .read(&files.ca_file)
        .is_ok_and(|current| current.as_slice() == ca_pem.as_bytes())
    {
        return Ok(false);
    }
    let read = |name: &str| {
        dir.read(name).map_err(|source| WriteFailed::Read {
            file: name.to_owned(),
            source,
        })
    };
    let mut out = vec![
        File::public(&files.cert_file, read(&files.cert_file)?.to_vec()),
        File::secret(&files.key_file, read(&files.key_file)?.to_vec(), true),
        File::public(&files.ca_file, ca_pem.as_bytes()),
    ];
    if !files.bundle_file.is_empty() {
        let bundle = read(&files.bundle_file)?;
        out.push(File::secret(&files.bundle_file, bundle.to_vec(), true));
    }
    dir.write(&out, Owner::default())
        .map_err(WriteFailed::Write)?;
    Ok(true)
}

/// Why the files could not be written (the previous generation stays in place).
#[derive(Debug, thiserror::Error)]
pub enum WriteFailed {
    /// A file of the current generation could not be read to carry it over.
    #[error("reading {file} of the current files failed: {source}")]
    Read {
        /// The file.
        file: String,
        /// What the kernel said.
        #[source]
        source: std::io::Error,
    },
    /// The key could not be encoded.
    #[error("encoding the key failed: {0}")]
    Encode(tlsmint_ca::Error),
    /// The folder could not be written.
    #[error(transparent)]
    Write(WriteError),
}

/// Whether the agent may keep the files in `root` at start-up: [`inspect`], and not yet due
/// for renewal at `fraction` of the lifetime.
pub fn reusable(
    root: &Path,
    files: &FileArgs,
    now: OffsetDateTime,
    fraction: f64,
) -> Result<Current, Unusable> {
    let current = inspect(root, files, now, fraction)?;
    if now >= current.renew_at {
        return Err(Unusable::DueForRenewal(x509::rfc3339(current.renew_at)));
    }
    Ok(current)
}

/// Checks the files in `root` at `now`: every file readable, the key is the certificate's,
/// the chain leads to a root of the CA bundle, and `now` is within the lifetime. The renewal
/// instant is computed at `fraction` of the lifetime but not checked.
pub fn inspect(
    root: &Path,
    files: &FileArgs,
    now: OffsetDateTime,
    fraction: f64,
) -> Result<Current, Unusable> {
    let dir = AtomicDir::new(root);
    let read = |name: &str| {
        let bytes = dir.read(name).map_err(|e| Unusable::Unreadable {
            file: name.to_owned(),
            reason: e.kind().to_string(),
        })?;
        String::from_utf8(bytes.to_vec()).map_err(|_| Unusable::Malformed {
            file: name.to_owned(),
            reason: "not UTF-8 text".into(),
        })
    };
    let malformed = |file: &str| {
        let file = file.to_owned();
        move |e: tlsmint_ca::Error| Unusable::Malformed {
            file,
            reason: e.to_string(),
        }
    };
    let chain =
        pem::decode_certificates(&read(&files.cert_file)?).map_err(malformed(&files.cert_file))?;
    let roots =
        pem::decode_certificates(&read(&files.ca_file)?).map_err(malformed(&files.ca_file))?;
    let key_pem = zeroize::Zeroizing::new(read(&files.key_file)?);
    let key = PrivateKey::from_pem(&key_pem).map_err(|_| Unusable::Malformed {
        file: files.key_file.clone(),
        reason: "not a private key".into(),
    })?;
    let leaf = chain.first().ok_or_else(|| Unusable::Malformed {
        file: files.cert_file.clone(),
        reason: "no certificate".into(),
    })?;
    let info =
        x509::parse_certificate(leaf, "the certificate").map_err(malformed(&files.cert_file))?;
    if info.spki_der != key.public_key_der() {
        return Err(Unusable::KeyMismatch {
            key_file: files.key_file.clone(),
            cert_file: files.cert_file.clone(),
        });
    }
    verify_chain(&chain, &roots).map_err(Unusable::Chain)?;
    if now < info.not_before {
        return Err(Unusable::NotYetValid(x509::rfc3339(info.not_before)));
    }
    if now >= info.not_after {
        return Err(Unusable::Expired(x509::rfc3339(info.not_after)));
    }
    Ok(Current {
        serial: info.serial.to_string(),
        not_before: info.not_before,
        not_after: info.not_after,
        renew_at: renew_time(info.not_before, info.not_after, leaf, fraction),
    })
}

/// The renewal instant of a certificate, with jitter seeded by its DER bytes (stable across
/// restarts of the agent).
pub fn renew_time(
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    leaf_der: &[u8],
    fraction: f64,
) -> OffsetDateTime {
    renewal::renewal_time(not_before, not_after, fraction, renewal::seed_of(leaf_der))
}

/// Each certificate of `chain` is signed by the next, and the last by (or is) a root.
fn verify_chain(chain: &[Vec<u8>], roots: &[Vec<u8>]) -> Result<(), String> {
    if roots.is_empty() {
        return Err("the CA bundle is empty".into());
    }
    for pair in chain.windows(2) {
        x509::verify_issued_by(&pair[0], &pair[1])?;
    }
    let Some(last) = chain.last() else {
        return Err("no certificate".into());
    };
    if roots.iter().any(|root| root == last) {
        return Ok(());
    }
    let mut last_err = String::new();
    for root in roots {
        match x509::verify_issued_by(last, root) {
            Ok(()) => return Ok(()),
            Err(e) => last_err = e,
        }
    }
    Err(format!(
        "no root of the CA bundle signed the chain ({last_err})"
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use tlsmint_ca::{CaConfig, CertificateAuthority, KeySpec, Subject};

    fn root(cn: &str) -> CertificateAuthority {
        let cfg = CaConfig {
            name: cn.into(),
            subject: Subject::with_common_name(cn),
            key: KeySpec::EcdsaP256,
            ttl: std::time::Duration::from_secs(86400),
        };
        CertificateAuthority::generate_root(&cfg, OffsetDateTime::now_utc()).unwrap()
    }

    #[test]
    fn the_chain_leaves_out_a_root_of_a_bundle_with_several() {
        let (old, new) = (root("old"), root("new"));
        let dir = std::env::temp_dir().join(format!("tlsmint-agent-disk-{}", std::process::id()));
        let files = FileArgs {
            dir: dir.clone(),
            cert_file: "tls.crt".into(),
            key_file: "tls.key".into(),
            ca_file: "ca.crt".into(),
            bundle_file: String::new(),
        };
        let material = Material {
            certificate_pem: "LEAF\n".into(),
            chain_pem: vec![old.certificate_pem()],
            ca_pem: format!("{}{}", old.certificate_pem(), new.certificate_pem()),
            key: PrivateKey::generate(KeySpec::EcdsaP256).unwrap(),
        };
        write(&AtomicDir::new(&dir), &files, &material).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("tls.crt")).unwrap(),
            "LEAF\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
