//! Issuing leaf certificates: `issue` (the engine makes the key, Vault's
//! `pki/issue`) and `sign` (the caller's CSR, Vault's `pki/sign`).
//!
//! Both paths run the same steps: names through the role's [`Policy`], the
//! lifetime through [`leaf_window`], then one certificate shape built here:
//! a random serial, CA:FALSE, key usage fitting the key type, extended key
//! usage from the role's flags, SKI/AKI, and the mount's AIA / CRL URLs.
//! Only names that passed policy are written; nothing else is copied from a CSR.

use std::time::Duration;

use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, SanType};
use time::OffsetDateTime;

use crate::ca::{CaChain, CertificateAuthority};
use crate::csr;
use crate::error::{Error, Result};
use crate::key::{KeyAlgorithm, KeySpec, PrivateKey};
use crate::pem;
use crate::policy::{Identity, NameRequest, Policy, ValidatedNames};
use crate::serial::Serial;
use crate::subject::Subject;
use crate::validity::{Lifetimes, leaf_window};

/// Key usages a role may ask for on leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyUsage {
    /// digitalSignature
    DigitalSignature,
    /// contentCommitment (nonRepudiation)
    ContentCommitment,
    /// keyEncipherment (RSA only)
    KeyEncipherment,
    /// dataEncipherment (RSA only)
    DataEncipherment,
    /// keyAgreement (ECDSA only)
    KeyAgreement,
}

/// Extended key usages a role may add beyond the server/client flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExtKeyUsage {
    /// id-kp-serverAuth
    ServerAuth,
    /// id-kp-clientAuth
    ClientAuth,
    /// id-kp-codeSigning
    CodeSigning,
    /// id-kp-emailProtection
    EmailProtection,
    /// id-kp-timeStamping
    TimeStamping,
}

/// Which CSR keys a role accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CsrKeyRule {
    /// Any key type tlsmint supports.
    Any,
    /// The same family as this spec, at least its size.
    AtLeast(KeySpec),
}

/// The certificate shape and lifetimes of a role (`IssuerRole.spec` minus the
/// name policy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafProfile {
    /// ttl, maxTTL, notBeforeDuration.
    pub lifetimes: Lifetimes,
    /// Adds serverAuth.
    pub server_flag: bool,
    /// Adds clientAuth.
    pub client_flag: bool,
    /// Key usages; empty means the default for the key type.
    pub key_usages: Vec<KeyUsage>,
    /// Extra extended key usages.
    pub ext_key_usages: Vec<ExtKeyUsage>,
    /// Subject fields added to every leaf (its common name is ignored).
    pub subject: Subject,
    /// Key type for keys the engine generates (`issue`).
    pub key: KeySpec,
    /// Which CSR keys `sign` accepts.
    pub csr_keys: CsrKeyRule,
}

impl Default for LeafProfile {
    fn default() -> Self {
        LeafProfile {
            lifetimes: Lifetimes::default(),
            server_flag: true,
            client_flag: true,
            key_usages: Vec::new(),
            ext_key_usages: Vec::new(),
            subject: Subject::default(),
            key: KeySpec::default(),
            csr_keys: CsrKeyRule::AtLeast(KeySpec::default()),
        }
    }
}

/// A role as the engine sees it: name policy plus certificate profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    /// Which names may be issued.
    pub policy: Policy,
    /// What the certificates look like.
    pub profile: LeafProfile,
}

/// An `issue` request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IssueRequest {
    /// Requested names.
    pub names: NameRequest,
    /// Requested TTL; `None` uses the role's.
    pub ttl: Option<Duration>,
}

/// A `sign` request: a CSR plus optional names from the call itself (the
/// common name overrides the CSR's; other names are added to the CSR's).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignRequest {
    /// CSR as PEM text or DER bytes.
    pub csr: Vec<u8>,
    /// Names given beside the CSR.
    pub names: NameRequest,
    /// Requested TTL; `None` uses the role's.
    pub ttl: Option<Duration>,
}

/// An issued certificate and everything a caller returns with it.
#[derive(Debug)]
pub struct Issued {
    /// The leaf, DER.
    pub certificate_der: Vec<u8>,
    /// The leaf, PEM.
    pub certificate_pem: String,
    /// The issuing CA and its parents up to the root, nearest first, DER and PEM
    /// (shared with the CA: not encoded per certificate).
    pub ca_chain: CaChain,
    /// Serial.
    pub serial: Serial,
    /// notBefore.
    pub not_before: OffsetDateTime,
    /// notAfter.
    pub not_after: OffsetDateTime,
    /// The generated key (`issue` only).
    pub private_key: Option<PrivateKey>,
    /// Exactly the names written into the certificate.
    pub names: ValidatedNames,
    /// Notes for the caller (TTL clamped, notAfter truncated, usages dropped).
    pub warnings: Vec<String>,
}

impl Issued {
    /// The issuing CA's certificate, PEM (Vault's `issuing_ca`).
    pub fn issuing_ca_pem(&self) -> &str {
        self.ca_chain
            .pem
            .first()
            .map(String::as_str)
            .unwrap_or_default()
    }
}

impl CertificateAuthority {
    /// Vault's `issue`: checks the names, generates a key of the role's type
    /// and signs a certificate for it. Blocking when the role's key is RSA.
    pub fn issue(
        &self,
        role: &Role,
        identity: &Identity,
        req: &IssueRequest,
        now: OffsetDateTime,
    ) -> Result<Issued> {
        let names = role.policy.check(identity, &req.names)?;
        let window = leaf_window(self.limits(), &role.profile.lifetimes, req.ttl, now)?;
        let key = PrivateKey::generate(role.profile.key)?;
        let spki = key.public_key_der();
        let mut issued = self.build_leaf(role, names, window, key.spec(), &spki)?;
        issued.private_key = Some(key);
        Ok(issued)
    }

    /// `issue` with a key the caller already holds (a CertificateRequest that
    /// keeps its key across renewals, or one generated off the async threads).
    /// The key must pass the role's CSR key rule, as a CSR's key would.
    pub fn issue_with_key(
        &self,
        role: &Role,
        identity: &Identity,
        req: &IssueRequest,
        key: PrivateKey,
        now: OffsetDateTime,
    ) -> Result<Issued> {
        check_csr_key(&role.policy.role, role.profile.csr_keys, key.spec())?;
        let names = role.policy.check(identity, &req.names)?;
        let window = leaf_window(self.limits(), &role.profile.lifetimes, req.ttl, now)?;
        let spki = key.public_key_der();
        let mut issued = self.build_leaf(role, names, window, key.spec(), &spki)?;
        issued.private_key = Some(key);
        Ok(issued)
    }

    /// Signs a certificate for a public key whose possession the caller proved some other
    /// way (Kubernetes' PodCertificateRequest: kube-apiserver checked the proof, see
    /// [`crate::csr::verify_proof`]). The key must pass the role's CSR key rule, the names
    /// its policy.
    pub fn issue_for_public_key(
        &self,
        role: &Role,
        identity: &Identity,
        req: &IssueRequest,
        spki_der: &[u8],
        now: OffsetDateTime,
    ) -> Result<Issued> {
        let key = csr::public_key_spec(spki_der)?;
        check_csr_key(&role.policy.role, role.profile.csr_keys, key)?;
        let names = role.policy.check(identity, &req.names)?;
        let window = leaf_window(self.limits(), &role.profile.lifetimes, req.ttl, now)?;
        self.build_leaf(role, names, window, key, spki_der)
    }

    /// Vault's `sign`: verifies the CSR's proof of possession, checks its key
    /// against the role and every name (from the CSR and the call) against
    /// the policy, then signs.
    pub fn sign(
        &self,
        role: &Role,
        identity: &Identity,
        req: &SignRequest,
        now: OffsetDateTime,
    ) -> Result<Issued> {
        let parsed = csr::parse(&req.csr)?;
        check_csr_key(&role.policy.role, role.profile.csr_keys, parsed.key)?;
        let mut wanted = parsed.names;
        if req.names.common_name.is_some() {
            wanted.common_name.clone_from(&req.names.common_name);
        }
        wanted.dns_names.extend(req.names.dns_names.iter().cloned());
        wanted
            .ip_addresses
            .extend(req.names.ip_addresses.iter().cloned());
        wanted.uris.extend(req.names.uris.iter().cloned());
        let names = role.policy.check(identity, &wanted)?;
        let window = leaf_window(self.limits(), &role.profile.lifetimes, req.ttl, now)?;
        self.build_leaf(role, names, window, parsed.key, &parsed.spki_der)
    }

    fn build_leaf(
        &self,
        role: &Role,
        names: ValidatedNames,
        window: crate::validity::Window,
        key: KeySpec,
        spki_der: &[u8],
    ) -> Result<Issued> {
        let mut warnings = window.warnings;
        let serial = Serial::random();
        let mut params = CertificateParams::default();
        params.not_before = window.not_before;
        params.not_after = window.not_after;
        params.serial_number = Some(serial.to_rcgen());
        params.distinguished_name = role
            .profile
            .subject
            .to_distinguished_name(Some(names.common_name.as_deref().unwrap_or_default()))?;
        params.subject_alt_names = subject_alt_names(&names)?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = key_usages(&role.profile.key_usages, key, &mut warnings);
        params.extended_key_usages = ext_key_usages(&role.profile);
        params.use_authority_key_identifier_extension = true;
        self.options().urls.apply(&mut params)?;
        let public_key = rcgen::SubjectPublicKeyInfo::from_der(spki_der)
            .map_err(|e| Error::CsrMalformed(format!("unsupported public key: {e}")))?;
        let cert = params
            .signed_by(&public_key, self.issuer())
            .map_err(|e| Error::signing("certificate", e))?;
        let der = cert.der().to_vec();
        Ok(Issued {
            certificate_pem: pem::encode_certificate(&der),
            certificate_der: der,
            ca_chain: self.ca_chain().clone(),
            serial,
            not_before: window.not_before,
            not_after: window.not_after,
            private_key: None,
            names,
            warnings,
        })
    }
}

fn check_csr_key(role: &str, rule: CsrKeyRule, found: KeySpec) -> Result<()> {
    let CsrKeyRule::AtLeast(min) = rule else {
        return Ok(());
    };
    if found.algorithm() == min.algorithm() && found.bits() >= min.bits() {
        return Ok(());
    }
    let allowed = match min.algorithm() {
        KeyAlgorithm::Ed25519 => "Ed25519".to_owned(),
        KeyAlgorithm::Ecdsa => format!("ECDSA of at least {} bits", min.bits()),
        KeyAlgorithm::Rsa => format!("RSA of at least {} bits", min.bits()),
    };
    Err(Error::CsrKeyNotAllowed {
        role: role.to_owned(),
        found: found.to_string(),
        allowed,
    })
}

fn subject_alt_names(names: &ValidatedNames) -> Result<Vec<SanType>> {
    let ia5 = |value: &str| {
        rcgen::string::Ia5String::try_from(value)
            .map_err(|_| Error::CsrMalformed(format!("name \"{value}\" is not ASCII")))
    };
    let mut sans =
        Vec::with_capacity(names.dns_names.len() + names.ip_addresses.len() + names.uris.len());
    for dns in &names.dns_names {
        sans.push(SanType::DnsName(ia5(dns)?));
    }
    for ip in &names.ip_addresses {
        sans.push(SanType::IpAddress(*ip));
    }
    for uri in &names.uris {
        sans.push(SanType::URI(ia5(uri)?));
    }
    for email in &names.email_addresses {
        sans.push(SanType::Rfc822Name(ia5(email)?));
    }
    Ok(sans)
}

fn key_usages(
    asked: &[KeyUsage],
    key: KeySpec,
    warnings: &mut Vec<String>,
) -> Vec<KeyUsagePurpose> {
    let defaults: &[KeyUsage] = match key.algorithm() {
        KeyAlgorithm::Rsa => &[KeyUsage::DigitalSignature, KeyUsage::KeyEncipherment],
        KeyAlgorithm::Ecdsa | KeyAlgorithm::Ed25519 => &[KeyUsage::DigitalSignature],
    };
    let wanted = if asked.is_empty() { defaults } else { asked };
    let mut out = Vec::new();
    for usage in wanted {
        let fits = match usage {
            KeyUsage::DigitalSignature | KeyUsage::ContentCommitment => true,
            KeyUsage::KeyEncipherment | KeyUsage::DataEncipherment => {
                key.algorithm() == KeyAlgorithm::Rsa
            }
            KeyUsage::KeyAgreement => key.algorithm() == KeyAlgorithm::Ecdsa,
        };
        if !fits {
            warnings.push(format!(
                "key usage {usage:?} does not fit a {key} key and was left out"
            ));
            continue;
        }
        let purpose = match usage {
            KeyUsage::DigitalSignature => KeyUsagePurpose::DigitalSignature,
            KeyUsage::ContentCommitment => KeyUsagePurpose::ContentCommitment,
            KeyUsage::KeyEncipherment => KeyUsagePurpose::KeyEncipherment,
            KeyUsage::DataEncipherment => KeyUsagePurpose::DataEncipherment,
            KeyUsage::KeyAgreement => KeyUsagePurpose::KeyAgreement,
        };
        if !out.contains(&purpose) {
            out.push(purpose);
        }
    }
    if out.is_empty() {
        out.push(KeyUsagePurpose::DigitalSignature);
    }
    out
}

fn ext_key_usages(profile: &LeafProfile) -> Vec<ExtendedKeyUsagePurpose> {
    let mut out = Vec::new();
    let mut add = |eku: ExtendedKeyUsagePurpose| {
        if !out.contains(&eku) {
            out.push(eku);
        }
    };
    if profile.server_flag {
        add(ExtendedKeyUsagePurpose::ServerAuth);
    }
    if profile.client_flag {
        add(ExtendedKeyUsagePurpose::ClientAuth);
    }
    for eku in &profile.ext_key_usages {
        add(match eku {
            ExtKeyUsage::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
            ExtKeyUsage::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
            ExtKeyUsage::CodeSigning => ExtendedKeyUsagePurpose::CodeSigning,
            ExtKeyUsage::EmailProtection => ExtendedKeyUsagePurpose::EmailProtection,
            ExtKeyUsage::TimeStamping => ExtendedKeyUsagePurpose::TimeStamping,
        });
    }
    out
}
