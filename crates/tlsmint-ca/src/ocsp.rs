//! OCSP (RFC 6960) in DER: parsing an `OCSPRequest`, matching its `CertID`s
//! against a CA, and building the CA-signed `BasicOCSPResponse` that answers
//! good / revoked / unknown, or an unsigned error response.
//!
//! Owns: the OCSP wire format. Must not: decide a certificate's status (the
//! caller looks serials up in its revocation records) or do any I/O. The
//! responder is the CA itself (RFC 6960 4.2.2.2), identified by key hash; a
//! request nonce is echoed back.

use std::time::Duration;

use aws_lc_rs::digest;
use time::OffsetDateTime;

use crate::ca::CertificateAuthority;
use crate::der::{self, tag};
use crate::error::{Error, Result};
use crate::key::KeySpec;
use crate::serial::Serial;

/// Most `CertID`s answered in one request.
pub const MAX_REQUESTS: usize = 16;
/// Largest request accepted, in bytes.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

const CTX0: u8 = 0xa0;
const CTX1: u8 = 0xa1;
const CTX2: u8 = 0xa2;

const SHA1: &[u64] = &[1, 3, 14, 3, 2, 26];
const SHA256: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 1];
const SHA384: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 2];
const SHA512: &[u64] = &[2, 16, 840, 1, 101, 3, 4, 2, 3];
const ID_PKIX_OCSP_BASIC: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1, 1];
const ID_PKIX_OCSP_NONCE: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1, 2];

/// Why a request could not be answered. Maps to an OCSP `responseStatus`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcspError {
    /// Not a well-formed `OCSPRequest` (`malformedRequest`).
    #[error("malformed OCSP request: {0}")]
    Malformed(&'static str),
    /// Too many certificates or bytes (`malformedRequest`).
    #[error("OCSP request too large: {0}")]
    TooLarge(&'static str),
}

/// The `responseStatus` of an unsuccessful response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseStatus {
    /// 1
    MalformedRequest = 1,
    /// 2
    InternalError = 2,
    /// 3
    TryLater = 3,
    /// 6
    Unauthorized = 6,
}

/// The hash a `CertID` was built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgorithm {
    /// SHA-1 (OpenSSL's default).
    Sha1,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlgorithm {
    fn digest(self, data: &[u8]) -> Vec<u8> {
        let alg = match self {
            HashAlgorithm::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            HashAlgorithm::Sha256 => &digest::SHA256,
            HashAlgorithm::Sha384 => &digest::SHA384,
            HashAlgorithm::Sha512 => &digest::SHA512,
        };
        digest::digest(alg, data).as_ref().to_vec()
    }
}

/// One certificate asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertId {
    /// The hash of the name and key hashes.
    pub hash: HashAlgorithm,
    /// Hash of the issuer's subject name.
    pub issuer_name_hash: Vec<u8>,
    /// Hash of the issuer's public key.
    pub issuer_key_hash: Vec<u8>,
    /// The certificate's serial.
    pub serial: Serial,
    raw: Vec<u8>,
}

/// A parsed `OCSPRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspRequest {
    /// The certificates asked about, in order.
    pub certs: Vec<CertId>,
    nonce: Option<Vec<u8>>,
}

/// The answer for one certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    /// Not revoked.
    Good,
    /// Revoked at this time.
    Revoked(OffsetDateTime),
    /// Not issued by this responder's CA.
    Unknown,
}

/// Parses a DER `OCSPRequest`.
pub fn parse_request(input: &[u8]) -> std::result::Result<OcspRequest, OcspError> {
    let bad = |_| OcspError::Malformed("not a DER OCSPRequest");
    if input.len() > MAX_REQUEST_BYTES {
        return Err(OcspError::TooLarge("more than 16 KiB"));
    }
    let (outer, _) = der::expect(input, tag::SEQUENCE).map_err(bad)?;
    let (tbs, _) = der::expect(outer, tag::SEQUENCE).map_err(bad)?;
    let mut rest = tbs;
    let (mut t, _, _) = der::read_tlv(rest).map_err(bad)?;
    if t == CTX0 {
        rest = der::read_tlv(rest).map_err(bad)?.2;
        t = der::read_tlv(rest).map_err(bad)?.0;
    }
    if t == CTX1 {
        rest = der::read_tlv(rest).map_err(bad)?.2;
    }
    let (list, rest) = der::expect(rest, tag::SEQUENCE).map_err(bad)?;
    let mut certs = Vec::new();
    let mut items = list;
    while !items.is_empty() {
        if certs.len() == MAX_REQUESTS {
            return Err(OcspError::TooLarge("more than 16 certificates"));
        }
        let (request, next) = der::expect(items, tag::SEQUENCE).map_err(bad)?;
        certs.push(parse_cert_id(request)?);
        items = next;
    }
    if certs.is_empty() {
        return Err(OcspError::Malformed("the request names no certificate"));
    }
    let nonce = if rest.is_empty() {
        None
    } else {
        let (exts, _) = der::expect(rest, CTX2).map_err(bad)?;
        find_nonce(exts).map_err(bad)?
    };
    Ok(OcspRequest { certs, nonce })
}

fn parse_cert_id(request: &[u8]) -> std::result::Result<CertId, OcspError> {
    let bad = |_| OcspError::Malformed("bad CertID");
    let (tag_, id, _) = der::read_tlv(request).map_err(bad)?;
    if tag_ != tag::SEQUENCE {
        return Err(OcspError::Malformed("bad CertID"));
    }
    let raw_len = request.len() - der::read_tlv(request).map_err(bad)?.2.len();
    let raw = request[..raw_len].to_vec();
    let (alg, rest) = der::expect(id, tag::SEQUENCE).map_err(bad)?;
    let (oid_tag, oid_body, _) = der::read_tlv(alg).map_err(bad)?;
    if oid_tag != tag::OID {
        return Err(OcspError::Malformed("bad hash algorithm"));
    }
    let oid_tlv = der::tlv(tag::OID, oid_body);
    let hash = [
        (SHA1, HashAlgorithm::Sha1),
        (SHA256, HashAlgorithm::Sha256),
        (SHA384, HashAlgorithm::Sha384),
        (SHA512, HashAlgorithm::Sha512),
    ]
    .into_iter()
    .find(|(arcs, _)| der::oid(arcs) == oid_tlv)
    .map(|(_, h)| h)
    .ok_or(OcspError::Malformed("unsupported hash algorithm in CertID"))?;
    let (name_hash, rest) = der::expect(rest, tag::OCTET_STRING).map_err(bad)?;
    let (key_hash, rest) = der::expect(rest, tag::OCTET_STRING).map_err(bad)?;
    let (serial, _) = der::expect(rest, tag::INTEGER).map_err(bad)?;
    if serial.is_empty() || serial.len() > 21 {
        return Err(OcspError::Malformed("bad serial number"));
    }
    Ok(CertId {
        hash,
        issuer_name_hash: name_hash.to_vec(),
        issuer_key_hash: key_hash.to_vec(),
        serial: Serial::from_bytes(serial),
        raw,
    })
}

fn find_nonce(exts: &[u8]) -> std::result::Result<Option<Vec<u8>>, der::DerError> {
    let (mut list, _) = der::expect(exts, tag::SEQUENCE)?;
    let nonce_oid = der::oid(ID_PKIX_OCSP_NONCE);
    while !list.is_empty() {
        let (ext, next) = der::expect(list, tag::SEQUENCE)?;
        let whole = &list[..list.len() - next.len()];
        let (t, body, _) = der::read_tlv(ext)?;
        if t == tag::OID && der::tlv(tag::OID, body) == nonce_oid {
            return Ok(Some(whole.to_vec()));
        }
        list = next;
    }
    Ok(None)
}

/// An unsuccessful, unsigned `OCSPResponse`.
pub fn error_response(status: ResponseStatus) -> Vec<u8> {
    der::sequence(&[&der::tlv(tag::ENUMERATED, &[status as u8])])
}

fn generalized_time(t: OffsetDateTime) -> Vec<u8> {
    let t = t.to_offset(time::UtcOffset::UTC);
    let text = format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    der::tlv(tag::GENERALIZED_TIME, text.as_bytes())
}

impl CertificateAuthority {
    /// Whether `id` names a certificate issued by this CA (its name and key hashes match).
    pub fn ocsp_matches(&self, id: &CertId) -> bool {
        let (Ok(name), Ok(key)) = (self.subject_der(), self.public_key_bits()) else {
            return false;
        };
        id.hash.digest(name) == id.issuer_name_hash && id.hash.digest(key) == id.issuer_key_hash
    }

    /// A signed, successful `OCSPResponse` with one answer per request entry,
    /// valid for `validity` from `now`.
    pub fn ocsp_response(
        &self,
        request: &OcspRequest,
        answers: &[CertStatus],
        now: OffsetDateTime,
        validity: Duration,
    ) -> Result<Vec<u8>> {
        let now = now.replace_nanosecond(0).unwrap_or(now);
        let next = now + time::Duration::try_from(validity).unwrap_or(time::Duration::HOUR);
        let key_hash = HashAlgorithm::Sha1.digest(self.public_key_bits()?);
        let responder = der::tlv(CTX2, &der::tlv(tag::OCTET_STRING, &key_hash));
        let mut singles = Vec::new();
        for (id, status) in request.certs.iter().zip(answers) {
            let status = match status {
                CertStatus::Good => vec![0x80, 0x00],
                CertStatus::Revoked(at) => der::tlv(CTX1, &generalized_time(*at)),
                CertStatus::Unknown => vec![0x82, 0x00],
            };
            singles.push(der::sequence(&[
                &id.raw,
                &status,
                &generalized_time(now),
                &der::tlv(CTX0, &generalized_time(next)),
            ]));
        }
        let singles: Vec<&[u8]> = singles.iter().map(Vec::as_slice).collect();
        let mut data = vec![responder, generalized_time(now), der::sequence(&singles)];
        if let Some(nonce) = &request.nonce {
            data.push(der::tlv(CTX1, &der::sequence(&[nonce])));
        }
        let data: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let tbs = der::sequence(&data);
        let signature = rcgen::SigningKey::sign(self.key(), &tbs)
            .map_err(|e| Error::signing("OCSP response", e))?;
        let mut bits = vec![0u8];
        bits.extend_from_slice(&signature);
        let certs = der::tlv(CTX0, &der::sequence(&[self.certificate_der()]));
        let basic = der::sequence(&[
            &tbs,
            &signature_algorithm(self.key().spec()),
            &der::tlv(tag::BIT_STRING, &bits),
            &certs,
        ]);
        let bytes = der::sequence(&[
            &der::oid(ID_PKIX_OCSP_BASIC),
            &der::tlv(tag::OCTET_STRING, &basic),
        ]);
        Ok(der::sequence(&[
            &der::tlv(tag::ENUMERATED, &[0]),
            &der::tlv(CTX0, &bytes),
        ]))
    }

    /// The DER subject Name of the CA certificate.
    fn subject_der(&self) -> Result<&[u8]> {
        let fail = |_| Error::CertificateParse {
            what: "CA",
            reason: "cannot find the subject".into(),
        };
        let (cert, _) = der::expect(self.certificate_der(), tag::SEQUENCE).map_err(fail)?;
        let (tbs, _) = der::expect(cert, tag::SEQUENCE).map_err(fail)?;
        let mut rest = tbs;
        if der::read_tlv(rest).map_err(fail)?.0 == CTX0 {
            rest = der::read_tlv(rest).map_err(fail)?.2;
        }
        // serial, signature algorithm, issuer, validity, then subject.
        for _ in 0..4 {
            rest = der::read_tlv(rest).map_err(fail)?.2;
        }
        let (_, _, after) = der::read_tlv(rest).map_err(fail)?;
        Ok(&rest[..rest.len() - after.len()])
    }

    /// The subjectPublicKey bits of the CA key (what OCSP key hashes cover).
    fn public_key_bits(&self) -> Result<&[u8]> {
        let fail = |_| Error::CertificateParse {
            what: "CA",
            reason: "cannot read the public key".into(),
        };
        let (spki, _) = der::expect(&self.info().spki_der, tag::SEQUENCE).map_err(fail)?;
        let (_, rest) = der::expect(spki, tag::SEQUENCE).map_err(fail)?;
        let (bits, _) = der::expect(rest, tag::BIT_STRING).map_err(fail)?;
        bits.get(1..).ok_or(Error::CertificateParse {
            what: "CA",
            reason: "empty public key".into(),
        })
    }
}

fn signature_algorithm(spec: KeySpec) -> Vec<u8> {
    match spec {
        KeySpec::EcdsaP256 => der::sequence(&[&der::oid(&[1, 2, 840, 10045, 4, 3, 2])]),
        KeySpec::EcdsaP384 => der::sequence(&[&der::oid(&[1, 2, 840, 10045, 4, 3, 3])]),
        KeySpec::Ed25519 => der::sequence(&[&der::oid(&[1, 3, 101, 112])]),
        KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => der::sequence(&[
            &der::oid(&[1, 2, 840, 113549, 1, 1, 11]),
            &der::tlv(tag::NULL, &[]),
        ]),
    }
}

#[cfg(test)]
#[path = "ocsp_tests.rs"]
mod tests;
