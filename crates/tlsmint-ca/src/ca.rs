//! Certificate authorities: generating a root, an intermediate signed by a
//! parent, an intermediate CSR for signing elsewhere (then accepting the
//! signed certificate back), and importing or reloading an existing CA.
//!
//! Every path ends in [`CertificateAuthority::from_parts`], which checks that
//! the certificate is a CA, that it holds the public key of the private key,
//! and that each link of the chain is signed by the next. A CA that fails
//! those checks is never built, so it can never issue.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyUsagePurpose};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::key::{KeySpec, PrivateKey};
use crate::pem;
use crate::serial::Serial;
use crate::subject::{Subject, Urls};
use crate::validity::{CaLimits, LeafNotAfterBehavior};
use crate::x509::{self, CertInfo};

/// How far a new CA certificate's notBefore is back-dated, to tolerate clock skew.
const CA_BACKDATE: Duration = Duration::from_secs(60);

/// What a new CA looks like (from `PkiMount.spec`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaConfig {
    /// The mount's name, used in messages.
    pub name: String,
    /// The CA's subject; `common_name` is required.
    pub subject: Subject,
    /// The CA's key type.
    pub key: KeySpec,
    /// Lifetime of the CA certificate.
    pub ttl: Duration,
}

/// Mount-wide settings that apply to every leaf the CA issues.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MountOptions {
    /// Ceiling for any leaf's lifetime (`spec.maxTTL`); `None` means only the role limits.
    pub max_ttl: Option<Duration>,
    /// What to do with leaves that would outlive the CA.
    pub leaf_not_after: LeafNotAfterBehavior,
    /// URLs written into leaves.
    pub urls: Urls,
}

/// A CA that can issue: its key, its certificate and the chain above it.
pub struct CertificateAuthority {
    name: String,
    key: PrivateKey,
    cert_der: Vec<u8>,
    chain_der: Vec<Vec<u8>>,
    /// This CA and its parents, nearest first, in both forms: encoded once here,
    /// shared by every certificate issued.
    ca_chain: CaChain,
    info: CertInfo,
    issuer: Issuer<'static, PrivateKey>,
    options: MountOptions,
}

/// A CA and every parent up to the root (or the last known one), nearest first, as DER
/// and as PEM. Cheap to clone: both lists are shared.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaChain {
    /// DER certificates.
    pub der: Arc<[Vec<u8>]>,
    /// The same certificates, PEM (Vault's `ca_chain`).
    pub pem: Arc<[String]>,
}

impl CaChain {
    fn new(ders: Vec<Vec<u8>>) -> Self {
        let pem: Vec<String> = ders.iter().map(|d| pem::encode_certificate(d)).collect();
        CaChain {
            der: ders.into(),
            pem: pem.into(),
        }
    }
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("name", &self.name)
            .field("subject", &self.info.subject)
            .field("serial", &self.info.serial)
            .field("not_after", &self.info.not_after)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Generates a self-signed root CA. Blocking for RSA keys.
    pub fn generate_root(cfg: &CaConfig, now: OffsetDateTime) -> Result<Self> {
        let key = PrivateKey::generate(cfg.key)?;
        let params = ca_params(cfg, now, None)?;
        let cert = params
            .self_signed(&key)
            .map_err(|e| Error::signing("root CA certificate", e))?;
        Self::from_parts(&cfg.name, key, cert.der().to_vec(), Vec::new())
    }

    /// Generates an intermediate CA signed by `parent`. Its lifetime is cut to
    /// the parent's notAfter. Blocking for RSA keys.
    pub fn generate_intermediate(
        cfg: &CaConfig,
        parent: &CertificateAuthority,
        now: OffsetDateTime,
    ) -> Result<Self> {
        parent.check_valid_at(now)?;
        let key = PrivateKey::generate(cfg.key)?;
        let mut params = ca_params(cfg, now, Some(parent.info.not_after))?;
        parent.options.urls.apply(&mut params)?;
        let cert = params
            .signed_by(&key, &parent.issuer)
            .map_err(|e| Error::signing("intermediate CA certificate", e))?;
        let mut chain = vec![parent.cert_der.clone()];
        chain.extend(parent.chain_der.iter().cloned());
        Self::from_parts(&cfg.name, key, cert.der().to_vec(), chain)
    }

    /// Signs another CA's request as an intermediate of this one (Vault's
    /// `root/sign-intermediate`): the CSR's signature is checked, the subject
    /// is `common_name` when given, else the CSR's common name; the lifetime
    /// is cut to this CA's notAfter. Returns the certificate, DER.
    pub fn sign_intermediate(
        &self,
        csr_input: &[u8],
        common_name: Option<&str>,
        ttl: Duration,
        now: OffsetDateTime,
    ) -> Result<Vec<u8>> {
        self.check_valid_at(now)?;
        let parsed = crate::csr::parse_ca_request(csr_input)?;
        let common_name = common_name
            .map(str::trim)
            .filter(|cn| !cn.is_empty())
            .map(str::to_owned)
            .or(parsed.names.common_name)
            .ok_or_else(|| Error::InvalidConfig {
                field: "common_name",
                reason: "the request has no common name and none was given".into(),
            })?;
        let cfg = CaConfig {
            name: self.name.clone(),
            subject: Subject::with_common_name(common_name),
            key: parsed.key,
            ttl,
        };
        let mut params = ca_params(&cfg, now, Some(self.info.not_after))?;
        self.options.urls.apply(&mut params)?;
        let public_key = rcgen::SubjectPublicKeyInfo::from_der(&parsed.spki_der)
            .map_err(|e| Error::CsrMalformed(format!("unsupported public key: {e}")))?;
        let cert = params
            .signed_by(&public_key, &self.issuer)
            .map_err(|e| Error::signing("intermediate CA certificate", e))?;
        Ok(cert.der().to_vec())
    }

    /// A new certificate for this CA's key (a renewal, not a re-key): self-signed
    /// when `parent` is `None`, else signed by `parent` and cut to its notAfter. Leaves
    /// signed by this CA verify under the new certificate too (same subject and key).
    /// The subject must stay the same: a `cfg` that names another one is refused, since
    /// old leaves would no longer chain. Keeps the mount options. Blocking for RSA parents.
    pub fn renewed(
        &self,
        cfg: &CaConfig,
        parent: Option<&CertificateAuthority>,
        now: OffsetDateTime,
    ) -> Result<Self> {
        let params = |cap| ca_params(cfg, now, cap);
        let (der, chain) = match parent {
            None => {
                let params = params(None)?;
                let cert = params
                    .self_signed(&self.key)
                    .map_err(|e| Error::signing("renewed root CA certificate", e))?;
                (cert.der().to_vec(), Vec::new())
            }
            Some(parent) => {
                parent.check_valid_at(now)?;
                let mut params = params(Some(parent.info.not_after))?;
                parent.options.urls.apply(&mut params)?;
                let cert = params
                    .signed_by(&self.key, &parent.issuer)
                    .map_err(|e| Error::signing("renewed intermediate CA certificate", e))?;
                let mut chain = vec![parent.cert_der.clone()];
                chain.extend(parent.chain_der.iter().cloned());
                (cert.der().to_vec(), chain)
            }
        };
        let renewed = Self::from_parts(&cfg.name, self.key.clone(), der, chain)?;
        if renewed.info.subject_der != self.info.subject_der {
            return Err(Error::InvalidConfig {
                field: "subject",
                reason: format!(
                    "a renewal keeps the CA's subject ({}), but the configuration names {}; restore the subject or rotate with a new key",
                    self.info.subject, renewed.info.subject
                ),
            });
        }
        renewed.with_options(self.options.clone())
    }

    /// Fails unless `now` is inside this CA's validity.
    fn check_valid_at(&self, now: OffsetDateTime) -> Result<()> {
        if now < self.info.not_before || now >= self.info.not_after {
            return Err(Error::CaNotValid {
                ca: self.name.clone(),
                not_before: x509::rfc3339(self.info.not_before),
                not_after: x509::rfc3339(self.info.not_after),
            });
        }
        Ok(())
    }

    /// The same CA with its key and certificates, and `options` (the
    /// options cannot be changed in place: leaves being signed hold `&self`).
    pub fn rebuilt_with(&self, options: MountOptions) -> Result<Self> {
        Self::from_parts(
            &self.name,
            self.key.clone(),
            self.cert_der.clone(),
            self.chain_der.clone(),
        )?
        .with_options(options)
    }

    /// Imports a CA from PEM: `certs` holds the CA certificate first, then
    /// optionally its parents; `key` its private key. Checks they match.
    pub fn from_pem(name: &str, certs: &str, key: &str) -> Result<Self> {
        let mut ders = pem::decode_certificates(certs)?;
        let key = PrivateKey::from_pem(key)?;
        let cert = ders.remove(0);
        Self::from_parts(name, key, cert, ders)
    }

    /// Builds a CA from its parts after checking them: the certificate is a
    /// CA allowed to sign certificates, it holds `key`'s public key, and every
    /// chain link is signed by the next.
    pub fn from_parts(
        name: &str,
        key: PrivateKey,
        cert_der: Vec<u8>,
        chain_der: Vec<Vec<u8>>,
    ) -> Result<Self> {
        let what = "CA";
        let info = x509::parse_certificate(&cert_der, what)?;
        if !info.is_ca {
            return Err(Error::NotCa {
                what,
                reason: "basicConstraints CA:TRUE is missing".into(),
            });
        }
        if !info.can_sign_certificates {
            return Err(Error::NotCa {
                what,
                reason: "keyUsage does not include keyCertSign".into(),
            });
        }
        if info.spki_der != key.public_key_der() {
            return Err(Error::KeyMismatch { what });
        }
        let mut child = &cert_der;
        for parent in &chain_der {
            x509::parse_certificate(parent, "chain")?;
            x509::verify_issued_by(child, parent)
                .map_err(|reason| Error::ChainInvalid { what: "CA", reason })?;
            child = parent;
        }
        let issuer =
            Issuer::from_ca_cert_der(&CertificateDer::from(cert_der.as_slice()), key.clone())
                .map_err(|e| Error::CertificateParse {
                    what,
                    reason: e.to_string(),
                })?;
        let ca_chain = CaChain::new(
            std::iter::once(&cert_der)
                .chain(&chain_der)
                .cloned()
                .collect(),
        );
        Ok(CertificateAuthority {
            name: name.to_owned(),
            key,
            cert_der,
            chain_der,
            ca_chain,
            info,
            issuer,
            options: MountOptions::default(),
        })
    }

    /// Sets the mount-wide options, after checking the URLs.
    pub fn with_options(mut self, options: MountOptions) -> Result<Self> {
        options.urls.validate()?;
        self.options = options;
        Ok(self)
    }

    /// The mount name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The CA's private key. Secret: never log it.
    pub fn key(&self) -> &PrivateKey {
        &self.key
    }

    /// Parsed facts about the CA certificate.
    pub fn info(&self) -> &CertInfo {
        &self.info
    }

    /// The mount-wide options.
    pub fn options(&self) -> &MountOptions {
        &self.options
    }

    /// The CA certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA certificate, PEM.
    pub fn certificate_pem(&self) -> String {
        pem::encode_certificate(&self.cert_der)
    }

    /// The certificates above this CA, nearest first (empty for a root).
    pub fn parents_der(&self) -> &[Vec<u8>] {
        &self.chain_der
    }

    /// This CA and every parent, as a list of PEM certificates (Vault's `ca_chain`).
    pub fn ca_chain_pem(&self) -> Vec<String> {
        self.ca_chain.pem.to_vec()
    }

    /// This CA and every parent, nearest first, DER and PEM, encoded once.
    pub fn ca_chain(&self) -> &CaChain {
        &self.ca_chain
    }

    /// The top of the chain: the root if the chain reaches it, else the last known parent.
    pub fn root_der(&self) -> &[u8] {
        self.chain_der.last().unwrap_or(&self.cert_der)
    }

    pub(crate) fn issuer(&self) -> &Issuer<'static, PrivateKey> {
        &self.issuer
    }

    pub(crate) fn limits(&self) -> CaLimits<'_> {
        CaLimits {
            name: &self.name,
            not_before: self.info.not_before,
            not_after: self.info.not_after,
            max_ttl: self.options.max_ttl,
            behavior: self.options.leaf_not_after,
        }
    }
}

/// An intermediate whose key exists but whose certificate is signed outside
/// tlsmint (Vault's `intermediate/generate` then `set-signed`).
pub struct PendingIntermediate {
    name: String,
    key: PrivateKey,
    csr_pem: String,
}

impl fmt::Debug for PendingIntermediate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingIntermediate")
            .field("name", &self.name)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl PendingIntermediate {
    /// Generates the key and a CSR for it. Blocking for RSA keys.
    pub fn generate(cfg: &CaConfig) -> Result<Self> {
        Self::with_key(cfg, PrivateKey::generate(cfg.key)?)
    }

    /// Builds the CSR for an existing key (e.g. reloaded after a restart).
    pub fn with_key(cfg: &CaConfig, key: PrivateKey) -> Result<Self> {
        let mut params = CertificateParams::default();
        params.distinguished_name = ca_subject(cfg)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = ca_key_usages();
        let csr = params
            .serialize_request(&key)
            .map_err(|e| Error::signing("intermediate CSR", e))?;
        let csr_pem = pem::encode(pem::CERTIFICATE_REQUEST, csr.der());
        Ok(PendingIntermediate {
            name: cfg.name.clone(),
            key,
            csr_pem,
        })
    }

    /// The CSR to have signed, PEM.
    pub fn csr_pem(&self) -> &str {
        &self.csr_pem
    }

    /// The pending key. Secret: never log it.
    pub fn key(&self) -> &PrivateKey {
        &self.key
    }

    /// Accepts the signed certificate (PEM, optionally followed by its
    /// chain). Refuses a certificate that does not hold this key.
    pub fn complete(self, signed: &str) -> Result<CertificateAuthority> {
        self.complete_with(signed)
    }

    /// [`complete`](Self::complete) without giving the pending key up, so
    /// that a refused certificate can be followed by a corrected one.
    pub fn complete_with(&self, signed: &str) -> Result<CertificateAuthority> {
        let mut ders = pem::decode_certificates(signed)?;
        let cert = ders.remove(0);
        CertificateAuthority::from_parts(&self.name, self.key.clone(), cert, ders)
    }
}

fn ca_subject(cfg: &CaConfig) -> Result<rcgen::DistinguishedName> {
    if cfg.subject.common_name.trim().is_empty() {
        return Err(Error::InvalidConfig {
            field: "subject.commonName",
            reason: "a CA needs a common name".into(),
        });
    }
    cfg.subject.to_distinguished_name(None)
}

fn ca_key_usages() -> Vec<KeyUsagePurpose> {
    vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ]
}

fn ca_params(
    cfg: &CaConfig,
    now: OffsetDateTime,
    cap: Option<OffsetDateTime>,
) -> Result<CertificateParams> {
    if cfg.ttl.is_zero() {
        return Err(Error::InvalidTtl(
            "a CA's ttl must be greater than zero".into(),
        ));
    }
    let ttl = time::Duration::try_from(cfg.ttl)
        .map_err(|_| Error::InvalidTtl("the CA's ttl is too large".into()))?;
    let now = now.replace_nanosecond(0).unwrap_or(now);
    let mut not_after = now
        .checked_add(ttl)
        .ok_or_else(|| Error::InvalidTtl("the CA's ttl overflows the calendar".into()))?;
    if let Some(cap) = cap {
        not_after = not_after.min(cap);
    }
    let back = time::Duration::try_from(CA_BACKDATE).unwrap_or(time::Duration::ZERO);
    let mut params = CertificateParams::default();
    params.distinguished_name = ca_subject(cfg)?;
    params.not_before = now - back;
    params.not_after = not_after;
    params.serial_number = Some(Serial::random().to_rcgen());
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = ca_key_usages();
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}
