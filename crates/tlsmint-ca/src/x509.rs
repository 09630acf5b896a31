//! Reading certificates: the few facts the engine needs from a DER
//! certificate, and signature checks between a certificate and its issuer.

use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate};

use crate::error::{Error, Result};
use crate::serial::Serial;

/// What the engine knows about a parsed certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// Serial number.
    pub serial: Serial,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// DER SubjectPublicKeyInfo.
    pub spki_der: Vec<u8>,
    /// basicConstraints cA.
    pub is_ca: bool,
    /// keyUsage keyCertSign present (or no keyUsage at all).
    pub can_sign_certificates: bool,
    /// Subject in RFC 4514 form, for messages.
    pub subject: String,
    /// Subject exactly as encoded (chain building compares these bytes).
    pub subject_der: Vec<u8>,
    /// Subject key identifier, when the certificate has one.
    pub subject_key_id: Option<Vec<u8>>,
}

/// Parses a DER certificate; `what` names it in errors.
pub fn parse_certificate(der: &[u8], what: &'static str) -> Result<CertInfo> {
    let fail = |reason: String| Error::CertificateParse { what, reason };
    let (rest, cert) = X509Certificate::from_der(der).map_err(|e| fail(e.to_string()))?;
    if !rest.is_empty() {
        return Err(fail("trailing bytes after the certificate".into()));
    }
    let is_ca = cert
        .basic_constraints()
        .map_err(|e| fail(e.to_string()))?
        .is_some_and(|bc| bc.value.ca);
    let can_sign_certificates = cert
        .key_usage()
        .map_err(|e| fail(e.to_string()))?
        .is_none_or(|ku| ku.value.key_cert_sign());
    Ok(CertInfo {
        serial: Serial::from_bytes(cert.raw_serial()),
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
        spki_der: cert.public_key().raw.to_vec(),
        is_ca,
        can_sign_certificates,
        subject: cert.subject().to_string(),
        subject_der: cert.subject().as_raw().to_vec(),
        subject_key_id: cert
            .iter_extensions()
            .find_map(|ext| match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
                _ => None,
            }),
    })
}

/// Checks that `child` carries a valid signature by `issuer`'s key and names
/// `issuer`'s subject as its issuer.
pub fn verify_issued_by(child: &[u8], issuer: &[u8]) -> std::result::Result<(), String> {
    let (_, child) = X509Certificate::from_der(child).map_err(|e| e.to_string())?;
    let (_, issuer) = X509Certificate::from_der(issuer).map_err(|e| e.to_string())?;
    if child.issuer().as_raw() != issuer.subject().as_raw() {
        return Err(format!(
            "issuer \"{}\" does not match the next certificate's subject \"{}\"",
            child.issuer(),
            issuer.subject()
        ));
    }
    child
        .verify_signature(Some(issuer.public_key()))
        .map_err(|_| {
            format!(
                "\"{}\" is not signed by \"{}\"",
                child.subject(),
                issuer.subject()
            )
        })
}

/// Checks that `key` is the private key of the DER certificate `cert`: the
/// same key algorithm, parameters (the curve) and public key. The key was
/// already checked to be a consistent key pair when it was read
/// ([`crate::PrivateKey::from_pem`]), so this proves possession. Messages
/// never include key material.
pub fn key_matches_certificate(
    cert: &[u8],
    key: &crate::PrivateKey,
) -> std::result::Result<(), String> {
    use x509_parser::prelude::SubjectPublicKeyInfo;
    use x509_parser::public_key::PublicKey;
    let (_, cert) = X509Certificate::from_der(cert).map_err(|e| format!("the certificate: {e}"))?;
    let key_spki = key.public_key_der();
    let (_, ours) = SubjectPublicKeyInfo::from_der(&key_spki)
        .map_err(|e| format!("the private key's public part: {e}"))?;
    let theirs = cert.public_key();
    if ours.algorithm.algorithm != theirs.algorithm.algorithm {
        return Err(format!(
            "the private key is {} but the certificate holds another kind of key",
            key.spec()
        ));
    }
    let same = match (ours.parsed(), theirs.parsed()) {
        (Ok(PublicKey::RSA(a)), Ok(PublicKey::RSA(b))) => {
            let trim =
                |v: &[u8]| -> Vec<u8> { v.iter().copied().skip_while(|b| *b == 0).collect() };
            trim(a.modulus) == trim(b.modulus) && trim(a.exponent) == trim(b.exponent)
        }
        _ => {
            let params = |p: &Option<x509_parser::der_parser::asn1_rs::Any<'_>>| {
                p.as_ref().map(|a| a.data.to_vec())
            };
            params(&ours.algorithm.parameters) == params(&theirs.algorithm.parameters)
                && ours.subject_public_key.data == theirs.subject_public_key.data
        }
    };
    if same {
        Ok(())
    } else {
        Err("the private key does not belong to the certificate (its public key differs)".into())
    }
}

/// Formats a time as RFC 3339 (UTC, seconds).
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::{KeySpec, PrivateKey};

    fn self_signed(key: &PrivateKey) -> Vec<u8> {
        let params = rcgen::CertificateParams::new(vec!["a.example.com".to_owned()]).unwrap();
        params.self_signed(key).unwrap().der().to_vec()
    }

    #[test]
    fn a_key_matches_only_its_own_certificate() {
        for spec in [KeySpec::EcdsaP256, KeySpec::Ed25519, KeySpec::Rsa2048] {
            let key = PrivateKey::generate(spec).unwrap();
            let cert = self_signed(&key);
            key_matches_certificate(&cert, &key).unwrap();
            let other = PrivateKey::generate(spec).unwrap();
            let err = key_matches_certificate(&cert, &other).unwrap_err();
            assert!(err.contains("does not belong"), "{spec}: {err}");
        }
        let p256 = PrivateKey::generate(KeySpec::EcdsaP256).unwrap();
        let p384 = PrivateKey::generate(KeySpec::EcdsaP384).unwrap();
        let err = key_matches_certificate(&self_signed(&p256), &p384).unwrap_err();
        assert!(err.contains("does not belong"), "{err}");
        let ed = PrivateKey::generate(KeySpec::Ed25519).unwrap();
        let err = key_matches_certificate(&self_signed(&p256), &ed).unwrap_err();
        assert!(err.contains("another kind of key"), "{err}");
        assert!(key_matches_certificate(b"junk", &p256).is_err());
    }
}
