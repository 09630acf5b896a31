//! Reading PKCS#10 requests: size cap first, then structure, proof of
//! possession (the self-signature), the key type, and the names. Nothing
//! else from the request is used: its other extensions are ignored unless
//! critical (refused), and a request for a CA certificate is refused.

use std::net::IpAddr;

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, ParsedCriAttribute};
use x509_parser::public_key::PublicKey;

use crate::error::{Error, Result};
use crate::key::{KeySpec, PrivateKey};
use crate::pem;
use crate::policy::NameRequest;

/// Largest CSR accepted, PEM or DER. A CSR with an RSA-4096 key and a few
/// dozen names is under 4 KiB.
pub const MAX_CSR_BYTES: usize = 16 * 1024;

const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";
const OID_P521: &str = "1.3.132.0.35";
const OID_ED25519: &str = "1.3.101.112";
const OID_RSA_PSS: &str = "1.2.840.113549.1.1.10";

/// Signature algorithms a CSR may be signed with, by dotted OID.
const SIGNATURE_ALGORITHMS: [(&str, &str); 7] = [
    ("1.2.840.113549.1.1.11", "sha256WithRSAEncryption"),
    ("1.2.840.113549.1.1.12", "sha384WithRSAEncryption"),
    ("1.2.840.113549.1.1.13", "sha512WithRSAEncryption"),
    ("1.2.840.10045.4.3.2", "ecdsa-with-SHA256"),
    ("1.2.840.10045.4.3.3", "ecdsa-with-SHA384"),
    ("1.2.840.10045.4.3.4", "ecdsa-with-SHA512"),
    (OID_ED25519, "Ed25519"),
];

/// Signature algorithms refused by name, so the answer says what they are.
const REFUSED_SIGNATURE_ALGORITHMS: [(&str, &str); 5] = [
    ("1.2.840.113549.1.1.4", "md5WithRSAEncryption"),
    ("1.2.840.113549.1.1.5", "sha1WithRSAEncryption (SHA-1)"),
    ("1.2.840.10045.4.1", "ecdsa-with-SHA1 (SHA-1)"),
    (OID_RSA_PSS, "RSASSA-PSS"),
    ("1.3.101.113", "Ed448"),
];

const SUPPORTED_SIGNATURES: &str =
    "RSA PKCS#1 v1.5 or ECDSA with SHA-256, SHA-384 or SHA-512, or Ed25519";
const SUPPORTED_KEYS: &str = "RSA 2048, 3072 or 4096 bits, ECDSA P-256 or P-384, or Ed25519";

/// What the engine takes from a CSR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedCsr {
    /// DER SubjectPublicKeyInfo of the requester's key.
    pub spki_der: Vec<u8>,
    /// The key's type.
    pub key: KeySpec,
    /// Subject CN and SANs, unchecked (the role's policy checks them).
    pub names: NameRequest,
}

/// A PKCS#10 request (DER) for `key` with an empty subject and no extensions: only the
/// proof of possession. Callers that get their names from the issuance API's `Sign` call
/// (the CSI driver, the agent) send the names beside it, so the request carries none.
///
/// Fast for every key type (one signature); the key is generated elsewhere.
pub fn proof_of_possession(key: &PrivateKey) -> Result<Vec<u8>> {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params
        .serialize_request(key)
        .map_err(|e| Error::signing("CSR", e))?;
    Ok(csr.der().to_vec())
}

/// Parses and verifies a CSR given as PEM text or DER bytes.
pub fn parse(input: &[u8]) -> Result<ParsedCsr> {
    parse_request(input, false)
}

/// Parses and verifies a CA's CSR (Vault's `root/sign-intermediate`): the
/// extensions it requests are not read, as the signer sets a CA's
/// extensions itself; key, signature algorithm and signature are checked as
/// for a leaf. `names` holds only the subject's common name.
pub fn parse_ca_request(input: &[u8]) -> Result<ParsedCsr> {
    parse_request(input, true)
}

fn parse_request(input: &[u8], for_ca: bool) -> Result<ParsedCsr> {
    if input.len() > MAX_CSR_BYTES {
        return Err(Error::CsrTooLarge {
            size: input.len(),
            max: MAX_CSR_BYTES,
        });
    }
    let trimmed = input.trim_ascii_start();
    let der_owned;
    let der: &[u8] = if trimmed.starts_with(b"-----BEGIN") {
        let text = std::str::from_utf8(trimmed)
            .map_err(|_| Error::CsrMalformed("PEM text is not UTF-8".into()))?;
        der_owned = pem::decode_csr(text)?;
        &der_owned
    } else {
        input
    };
    let (rest, csr) = X509CertificationRequest::from_der(der)
        .map_err(|e| Error::CsrMalformed(format!("not a PKCS#10 request ({e})")))?;
    if !rest.is_empty() {
        return Err(Error::CsrMalformed(
            "trailing bytes after the request".into(),
        ));
    }
    let info = &csr.certification_request_info;
    // Key and algorithm first: a valid request with a key or signature
    // tlsmint does not take is told so, not that its signature is bad.
    let key = key_spec(&info.subject_pki)?;
    check_signature_algorithm(&csr.signature_algorithm.algorithm.to_id_string())?;
    csr.verify_signature()
        .map_err(|e| Error::CsrSignature(e.to_string()))?;
    let mut names = NameRequest::default();
    let mut cns = info.subject.iter_common_name();
    if let Some(cn) = cns.next() {
        let cn = cn
            .as_str()
            .map_err(|_| Error::CsrMalformed("the subject common name is not a string".into()))?;
        names.common_name = Some(cn.to_owned());
    }
    if cns.next().is_some() {
        return Err(Error::CsrMalformed(
            "the subject has more than one common name".into(),
        ));
    }
    for attr in info.iter_attributes().filter(|_| !for_ca) {
        let ParsedCriAttribute::ExtensionRequest(req) = attr.parsed_attribute() else {
            continue;
        };
        for ext in &req.extensions {
            match ext.parsed_extension() {
                ParsedExtension::SubjectAlternativeName(san) => {
                    for name in &san.general_names {
                        add_general_name(&mut names, name)?;
                    }
                }
                ParsedExtension::BasicConstraints(bc) if bc.ca => return Err(Error::CsrRequestsCa),
                _ if ext.critical => {
                    return Err(Error::CsrCriticalExtension {
                        oid: ext.oid.to_id_string(),
                    });
                }
                _ => {}
            }
        }
    }
    Ok(ParsedCsr {
        spki_der: info.subject_pki.raw.to_vec(),
        key,
        names,
    })
}

fn add_general_name(names: &mut NameRequest, name: &GeneralName<'_>) -> Result<()> {
    match name {
        GeneralName::DNSName(dns) => names.dns_names.push((*dns).to_owned()),
        GeneralName::URI(uri) => names.uris.push((*uri).to_owned()),
        GeneralName::IPAddress(bytes) => {
            let ip = match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes).map(IpAddr::from).ok(),
                16 => <[u8; 16]>::try_from(*bytes).map(IpAddr::from).ok(),
                _ => None,
            };
            let ip =
                ip.ok_or_else(|| Error::CsrMalformed("an IP address SAN has a bad length".into()))?;
            names.ip_addresses.push(ip.to_string());
        }
        other => {
            let kind = match other {
                GeneralName::RFC822Name(_) => "email",
                GeneralName::OtherName(..) => "otherName",
                GeneralName::DirectoryName(_) => "directoryName",
                GeneralName::RegisteredID(_) => "registeredID",
                _ => "unsupported",
            };
            return Err(Error::CsrMalformed(format!(
                "the CSR asks for a {kind} subject alternative name; tlsmint issues DNS, IP and URI names only"
            )));
        }
    }
    Ok(())
}

fn check_signature_algorithm(oid: &str) -> Result<()> {
    if SIGNATURE_ALGORITHMS.iter().any(|(o, _)| *o == oid) {
        return Ok(());
    }
    let name = REFUSED_SIGNATURE_ALGORITHMS
        .iter()
        .find(|(o, _)| *o == oid)
        .map_or_else(|| format!("OID {oid}"), |(_, n)| (*n).to_owned());
    Err(Error::CsrMalformed(format!(
        "the CSR is signed with {name}, which tlsmint does not accept; sign it with {SUPPORTED_SIGNATURES}"
    )))
}

fn key_spec(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> Result<KeySpec> {
    let unsupported =
        |what: String| Error::UnsupportedKey(format!("{what}; tlsmint accepts {SUPPORTED_KEYS}"));
    if spki.algorithm.algorithm.to_id_string() == OID_RSA_PSS {
        return Err(unsupported("an RSASSA-PSS key (id-RSASSA-PSS)".into()));
    }
    let parsed = spki
        .parsed()
        .map_err(|e| unsupported(format!("the public key cannot be read ({e})")))?;
    match parsed {
        PublicKey::RSA(rsa) => match rsa.key_size() {
            2048 => Ok(KeySpec::Rsa2048),
            3072 => Ok(KeySpec::Rsa3072),
            4096 => Ok(KeySpec::Rsa4096),
            bits if bits < 2048 => Err(unsupported(format!("RSA {bits} bits is too small"))),
            bits => Err(unsupported(format!(
                "RSA {bits} bits is not a supported size"
            ))),
        },
        PublicKey::EC(_) => {
            let alg = &spki.algorithm;
            if alg.algorithm.to_id_string() != OID_EC_PUBLIC_KEY {
                return Err(unsupported("EC key with an unexpected algorithm".into()));
            }
            let curve = alg
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|oid| oid.to_id_string())
                .unwrap_or_default();
            match curve.as_str() {
                OID_P256 => Ok(KeySpec::EcdsaP256),
                OID_P384 => Ok(KeySpec::EcdsaP384),
                OID_P521 => Err(unsupported("EC curve P-521".into())),
                other => Err(unsupported(format!("EC curve {other}"))),
            }
        }
        PublicKey::Unknown(_) if spki.algorithm.algorithm.to_id_string() == OID_ED25519 => {
            Ok(KeySpec::Ed25519)
        }
        _ => Err(unsupported(format!(
            "algorithm {}",
            spki.algorithm.algorithm.to_id_string()
        ))),
    }
}

/// The type of a public key given without a CSR (DER SubjectPublicKeyInfo), e.g. the
/// `pkixPublicKey` of a Kubernetes PodCertificateRequest. An unsupported type is
/// [`Error::UnsupportedKey`], naming what is supported.
pub fn public_key_spec(spki_der: &[u8]) -> Result<KeySpec> {
    let spki = read_spki(spki_der)?;
    key_spec(&spki)
}

/// Verifies that the holder of the key in `spki_der` signed `message`: Kubernetes'
/// `proofOfPossession` (the pod's UID signed with the key kubelet made). ECDSA (ASN.1)
/// and RSASSA-PSS are over SHA-256, Ed25519 over the message itself, as kubelet and
/// kube-apiserver make and check them. Returns the key's type.
pub fn verify_proof(spki_der: &[u8], message: &[u8], signature: &[u8]) -> Result<KeySpec> {
    use aws_lc_rs::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
    let spki = read_spki(spki_der)?;
    let key = key_spec(&spki)?;
    let refused = || {
        Error::CsrSignature(format!(
            "the proof of possession is not a {key} signature by the given public key"
        ))
    };
    let algorithm: &'static dyn VerificationAlgorithm = match key {
        KeySpec::EcdsaP256 => &sig::ECDSA_P256_SHA256_ASN1,
        KeySpec::EcdsaP384 => &sig::ECDSA_P384_SHA256_ASN1,
        KeySpec::Ed25519 => &sig::ED25519,
        KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
            let Ok(PublicKey::RSA(rsa)) = spki.parsed() else {
                return Err(refused());
            };
            return pss_sha256_any_salt(rsa.modulus, rsa.exponent, message, signature)
                .then_some(key)
                .ok_or_else(refused);
        }
    };
    UnparsedPublicKey::new(algorithm, &spki.subject_public_key.data)
        .verify(message, signature)
        .map_err(|_| refused())?;
    Ok(key)
}

/// RSASSA-PSS verification (RFC 8017 §8.1.2 and §9.1.2) with SHA-256 and MGF1-SHA-256,
/// for any salt length. Go's `rsa.SignPSS` with nil options, which kubelet uses, salts with
/// as many bytes as fit; aws-lc-rs only verifies a salt as long as the hash. Public
/// values only, so no constant-time care is needed.
fn pss_sha256_any_salt(modulus: &[u8], exponent: &[u8], message: &[u8], signature: &[u8]) -> bool {
    use num_bigint::BigUint;
    use sha2::{Digest, Sha256};
    const H_LEN: usize = 32;
    let n = BigUint::from_bytes_be(modulus);
    let e = BigUint::from_bytes_be(exponent);
    let mod_bits = n.bits() as usize;
    let k = mod_bits.div_ceil(8);
    if signature.len() != k || mod_bits < 2048 {
        return false;
    }
    let s = BigUint::from_bytes_be(signature);
    if s >= n {
        return false;
    }
    let m = s.modpow(&e, &n).to_bytes_be();
    let em_bits = mod_bits - 1;
    let em_len = em_bits.div_ceil(8);
    if m.len() > em_len || em_len < H_LEN + 2 {
        return false;
    }
    let mut em = vec![0u8; em_len - m.len()];
    em.extend_from_slice(&m);
    if em[em_len - 1] != 0xbc {
        return false;
    }
    let db_len = em_len - H_LEN - 1;
    let (masked_db, rest) = em.split_at(db_len);
    let h = &rest[..H_LEN];
    let unused_bits = 8 * em_len - em_bits;
    let top_mask = 0xffu8 >> unused_bits;
    if masked_db[0] & !top_mask != 0 {
        return false;
    }
    // MGF1 with SHA-256 over H, xor-ed into maskedDB.
    let mut db = masked_db.to_vec();
    for (counter, chunk) in db.chunks_mut(H_LEN).enumerate() {
        let block = Sha256::new()
            .chain_update(h)
            .chain_update((counter as u32).to_be_bytes())
            .finalize();
        for (byte, mask) in chunk.iter_mut().zip(block) {
            *byte ^= mask;
        }
    }
    db[0] &= top_mask;
    let Some(one) = db.iter().position(|&b| b != 0) else {
        return false;
    };
    if db[one] != 0x01 {
        return false;
    }
    let salt = &db[one + 1..];
    let m_hash = Sha256::digest(message);
    let expected = Sha256::new()
        .chain_update([0u8; 8])
        .chain_update(m_hash)
        .chain_update(salt)
        .finalize();
    expected.as_slice() == h
}

fn read_spki(spki_der: &[u8]) -> Result<x509_parser::x509::SubjectPublicKeyInfo<'_>> {
    let (rest, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(spki_der)
        .map_err(|e| Error::CsrMalformed(format!("not a DER SubjectPublicKeyInfo ({e})")))?;
    if !rest.is_empty() {
        return Err(Error::CsrMalformed(
            "trailing bytes after the public key".into(),
        ));
    }
    Ok(spki)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn proof_of_possession_round_trips_for_every_fast_key() {
        for spec in [KeySpec::EcdsaP256, KeySpec::EcdsaP384, KeySpec::Ed25519] {
            let key = PrivateKey::generate(spec).unwrap();
            let der = proof_of_possession(&key).unwrap();
            let parsed = parse(&der).unwrap();
            assert_eq!(parsed.key, spec);
            assert_eq!(parsed.spki_der, key.public_key_der());
            assert_eq!(parsed.names, NameRequest::default());
        }
    }
}
