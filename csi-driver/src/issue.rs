//! One issuance for a volume: a key made on the node (on the CPU pool), a CSR that only
//! proves possession, `Sign` with the pod's token, and the files to write. The key never
//! leaves this process except into the volume's tmpfs. Also the trust check's two steps:
//! `GetCABundle` for a role, and the files of a generation with only the CA file changed.
//!
//! Owns the steps of one issuance and the file contents. It must not mount, schedule or
//! keep state; errors carry the server's message but never the token or the key.

use std::time::Duration;

use time::OffsetDateTime;
use tlsmint_api::csi::VolumeAttributes;
use tlsmint_ca::ExposeSecret as _;
use tlsmint_ca::{KeySpec, PrivateKey};
use tlsmint_client::files::File;
use tlsmint_client::proto::{GetCaBundleRequest, Names, SignRequest};
use tlsmint_client::{Client, ClientError, Token, TokenSource, keys};
use tlsmint_runtime::cpu::{CpuError, CpuPool};
use tonic::transport::Channel;
use zeroize::Zeroizing;

/// Why an issuance failed.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The key type cannot be made.
    #[error("making the {what} failed: {source}")]
    Key {
        /// "key" or "CSR".
        what: &'static str,
        /// The engine's error.
        #[source]
        source: tlsmint_ca::Error,
    },
    /// The CPU pool lost the job.
    #[error(transparent)]
    Cpu(#[from] CpuError),
    /// The issuance API said no (or could not be reached).
    #[error("Sign for role {role} failed: {source}")]
    Sign {
        /// The role.
        role: String,
        /// The client's error (the server's status and message).
        #[source]
        source: ClientError,
    },
    /// GetCABundle failed (the trust check retries at its next interval).
    #[error("GetCABundle for role {role} failed: {source}")]
    CaBundle {
        /// The role.
        role: String,
        /// The client's error (the server's status and message).
        #[source]
        source: ClientError,
    },
    /// The PKCS#12 archive could not be built.
    #[error("building the PKCS#12 file failed: {reason}")]
    Pkcs12 {
        /// What went wrong (never key material).
        reason: String,
    },
    /// The answer lacked a part.
    #[error("the issuance API's answer for role {role} has no {missing}")]
    Answer {
        /// The role.
        role: String,
        /// What is missing.
        missing: &'static str,
    },
}

impl IssueError {
    /// The gRPC status the issuance API answered with, if it answered.
    pub fn status(&self) -> Option<&tonic::Status> {
        match self {
            IssueError::Sign {
                source: ClientError::Status(status),
                ..
            }
            | IssueError::CaBundle {
                source: ClientError::Status(status),
                ..
            } => Some(status),
            _ => None,
        }
    }
}

/// A certificate and the files that hold it.
#[derive(Debug)]
pub struct Issued {
    /// The files, in the order the atomic writer gets them.
    pub files: Vec<File>,
    /// Serial, colon-separated hex.
    pub serial: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

/// Issues certificates through one shared connection to the issuance API.
#[derive(Clone, Debug)]
pub struct Issuer {
    channel: Channel,
    cpu: CpuPool,
}

impl Issuer {
    /// An issuer over `channel` (one HTTP/2 connection shared by every volume).
    pub fn new(channel: Channel, cpu: CpuPool) -> Self {
        Issuer { channel, cpu }
    }

    /// Makes a key, has it signed for `attrs` (templates already resolved) with the pod's
    /// `token`, and returns the files.
    pub async fn issue(
        &self,
        attrs: &VolumeAttributes,
        token: Token,
    ) -> Result<Issued, IssueError> {
        let spec = match &attrs.key {
            Some(spec) => keys::key_spec(spec).map_err(|source| IssueError::Key {
                what: "key",
                source,
            })?,
            None => KeySpec::default(),
        };
        let (key, csr) = self
            .cpu
            .run("a volume's key", move || {
                let key = PrivateKey::generate(spec).map_err(|source| IssueError::Key {
                    what: "key",
                    source,
                })?;
                let csr = tlsmint_ca::csr::proof_of_possession(&key).map_err(|source| {
                    IssueError::Key {
                        what: "CSR",
                        source,
                    }
                })?;
                Ok::<_, IssueError>((key, csr))
            })
            .await??;
        let client = Client::from_channel(self.channel.clone(), TokenSource::Static(token));
        let request = SignRequest {
            role: attrs.role.clone(),
            csr,
            names: Some(Names {
                common_name: attrs.common_name.clone().unwrap_or_default(),
                dns_names: attrs.dns_names.clone(),
                ip_addresses: attrs.ip_sans.iter().map(ToString::to_string).collect(),
                uris: attrs.uri_sans.clone(),
            }),
            ttl_seconds: attrs.ttl.map_or(0, |ttl| Duration::from(ttl).as_secs()),
        };
        let answer = client
            .sign(request)
            .await
            .map_err(|source| IssueError::Sign {
                role: attrs.role.clone(),
                source,
            })?;
        if attrs.pkcs12_file.is_none() {
            return files(attrs, &key, answer.certificate);
        }
        // PKCS#12 runs PBKDF2 for its encryption and its MAC: CPU work, off the async threads.
        let attrs = attrs.clone();
        self.cpu
            .run("a volume's PKCS#12 file", move || {
                files(&attrs, &key, answer.certificate)
            })
            .await?
    }

    /// The roots currently trusted for `role` (`GetCABundle`, authenticated with the pod's
    /// `token`), as the CA file holds them. No key is made and nothing is issued.
    pub async fn ca_bundle(&self, role: &str, token: Token) -> Result<String, IssueError> {
        let client = Client::from_channel(self.channel.clone(), TokenSource::Static(token));
        let answer = client
            .ca_bundle(GetCaBundleRequest {
                role: role.to_owned(),
                mount: String::new(),
            })
            .await
            .map_err(|source| IssueError::CaBundle {
                role: role.to_owned(),
                source,
            })?;
        if answer.ca_bundle_pem.trim().is_empty() {
            return Err(IssueError::Answer {
                role: role.to_owned(),
                missing: "CA bundle",
            });
        }
        Ok(pem_block(&answer.ca_bundle_pem))
    }
}

/// The files of the current generation with only the CA file replaced by `ca_file` (text
/// from [`Issuer::ca_bundle`]): the same key and leaf, byte for byte. `read` reads a file of
/// the current generation. The bundle file and the PKCS#12 file hold the key, the leaf and
/// its issuing chain but not the trust bundle, so they are carried over unchanged.
pub fn with_trust(
    attrs: &VolumeAttributes,
    mut read: impl FnMut(&str) -> std::io::Result<Zeroizing<Vec<u8>>>,
    ca_file: &str,
) -> Result<Vec<File>, (String, std::io::Error)> {
    let shared = attrs.fs_group.is_some();
    let mut copy = |name: &str| read(name).map_err(|e| (name.to_owned(), e));
    let mut files = vec![
        File::public(
            &attrs.certificate_file,
            copy(&attrs.certificate_file)?.to_vec(),
        ),
        File::secret(&attrs.key_file, copy(&attrs.key_file)?.to_vec(), shared),
        File::public(&attrs.ca_file, ca_file.as_bytes().to_vec()),
    ];
    for name in [&attrs.bundle_file, &attrs.pkcs12_file]
        .into_iter()
        .flatten()
    {
        files.push(File::secret(name, copy(name)?.to_vec(), shared));
    }
    Ok(files)
}

fn files(
    attrs: &VolumeAttributes,
    key: &PrivateKey,
    cert: Option<tlsmint_client::proto::IssuedCertificate>,
) -> Result<Issued, IssueError> {
    let missing = |missing| IssueError::Answer {
        role: attrs.role.clone(),
        missing,
    };
    let cert = cert.ok_or_else(|| missing("certificate"))?;
    let not_before = timestamp(cert.not_before).ok_or_else(|| missing("notBefore"))?;
    let not_after = timestamp(cert.not_after).ok_or_else(|| missing("notAfter"))?;
    if cert.certificate_pem.is_empty() {
        return Err(missing("certificate PEM"));
    }
    let mut chain = pem_block(&cert.certificate_pem);
    for ca in &cert.ca_chain_pem {
        chain.push_str(&pem_block(ca));
    }
    let key_pem = key
        .to_pem(keys::key_encoding(attrs.key_encoding))
        .map_err(|source| IssueError::Key {
            what: "key",
            source,
        })?;
    let shared = attrs.fs_group.is_some();
    let mut files = vec![
        File::public(&attrs.certificate_file, chain.clone()),
        File::secret(
            &attrs.key_file,
            key_pem.expose_secret().as_bytes().to_vec(),
            shared,
        ),
        File::public(&attrs.ca_file, pem_block(&cert.ca_bundle_pem)),
    ];
    if let Some(bundle) = &attrs.bundle_file {
        let mut text = pem_block(key_pem.expose_secret());
        text.push_str(&chain);
        files.push(File::secret(bundle, text.into_bytes(), shared));
    }
    if let Some(name) = &attrs.pkcs12_file {
        files.push(File::secret(name, pkcs12(key, &chain)?, shared));
    }
    Ok(Issued {
        files,
        serial: cert.serial_number,
        not_before,
        not_after,
    })
}

/// PBKDF2 iterations of the PKCS#12 encryption and MAC: OpenSSL's default. The password is
/// empty, so more would only cost CPU; the file is protected by its mode like the key file.
const PKCS12_ITERATIONS: u32 = 2048;

/// A PKCS#12 archive with an empty password: the key (PKCS#8, PBES2 with AES-256-CBC) and
/// `chain_pem` (leaf first, then its chain), with an HMAC-SHA-256 MAC. The leaf carries
/// the key's local key id, so readers pair them.
fn pkcs12(key: &PrivateKey, chain_pem: &str) -> Result<Vec<u8>, IssueError> {
    let fail = |reason: String| IssueError::Pkcs12 { reason };
    let ders = tlsmint_ca::pem::decode_certificates(chain_pem).map_err(|e| fail(e.to_string()))?;
    let certs = ders
        .iter()
        .map(|der| p12_keystore::Certificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    let p12_key =
        p12_keystore::PrivateKey::from_der(key.pkcs8_der()).map_err(|e| fail(e.to_string()))?;
    let local_key_id = key_id(&key.public_key_der());
    let chain = p12_keystore::PrivateKeyChain::new(local_key_id, p12_key, certs);
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry("tls", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
    store
        .writer("")
        .encryption_algorithm(p12_keystore::EncryptionAlgorithm::PbeWithHmacSha256AndAes256)
        .encryption_iterations(PKCS12_ITERATIONS)
        .mac_algorithm(p12_keystore::MacAlgorithm::HmacSha256)
        .mac_iterations(PKCS12_ITERATIONS)
        .write()
        .map_err(|e| fail(e.to_string()))
}

/// The local key id of a key: the SHA-256 of its public key (public, stable per key).
fn key_id(spki_der: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(spki_der).to_vec()
}

fn pem_block(text: &str) -> String {
    let mut out = text.trim_end().to_owned();
    out.push('\n');
    out
}

fn timestamp(ts: Option<prost_types::Timestamp>) -> Option<OffsetDateTime> {
    let ts = ts?;
    let nanos = i128::from(ts.seconds) * 1_000_000_000 + i128::from(ts.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()
}
