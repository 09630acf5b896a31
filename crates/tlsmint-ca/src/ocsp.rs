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
use der::asn1::{
    AnyRef, BitStringRef, GeneralizedTime, IntRef, Null, ObjectIdentifier, OctetStringRef,
    SequenceRef,
};
use der::{
    Choice, DateTime, Decode, Encode, Enumerated, Reader, Sequence, SliceReader, Tag, TagNumber,
};
use spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};
use time::OffsetDateTime;

use crate::ca::CertificateAuthority;
use crate::der::describe;
use crate::error::{Error, Result};
use crate::key::KeySpec;
use crate::serial::Serial;

/// Most `CertID`s answered in one request.
pub const MAX_REQUESTS: usize = 16;
/// Largest request accepted, in bytes.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

// OIDs as consts: `new_unwrap` runs at compile time, a typo fails the build.
const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
const ID_PKIX_OCSP_BASIC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
const ID_PKIX_OCSP_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
const ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const ECDSA_WITH_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const ID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");

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

// The ASN.1 of RFC 6960 (module OCSP-2013-88, EXPLICIT TAGS), as far as tlsmint
// reads or writes it. Parts that are read but not used are kept as `AnyRef` (any
// well-formed TLV), so they are checked for DER framing but not interpreted.
// Written here with the `der` derives because x509-ocsp's releases need der 0.7.

/// `OCSPRequest ::= SEQUENCE { tbsRequest, optionalSignature [0] EXPLICIT OPTIONAL }`
#[derive(Debug, Sequence)]
struct OcspRequestDer<'a> {
    tbs_request: TbsRequest<'a>,
    #[asn1(context_specific = "0", optional = "true")]
    optional_signature: Option<AnyRef<'a>>,
}

/// `TBSRequest`: version and requestorName are skipped; a nonce is looked for in
/// the requestExtensions.
#[derive(Debug, Sequence)]
struct TbsRequest<'a> {
    #[asn1(context_specific = "0", optional = "true")]
    version: Option<AnyRef<'a>>,
    #[asn1(context_specific = "1", optional = "true")]
    requestor_name: Option<AnyRef<'a>>,
    request_list: Vec<Request<'a>>,
    /// Each an [`Extension`], kept as read so that the nonce is echoed byte for byte.
    #[asn1(context_specific = "2", optional = "true")]
    request_extensions: Option<Vec<AnyRef<'a>>>,
}

/// `Request ::= SEQUENCE { reqCert CertID, singleRequestExtensions [0] EXPLICIT OPTIONAL }`
#[derive(Debug, Sequence)]
struct Request<'a> {
    req_cert: CertIdDer<'a>,
    #[asn1(context_specific = "0", optional = "true")]
    single_request_extensions: Option<AnyRef<'a>>,
}

/// `CertID`
#[derive(Debug, Sequence)]
struct CertIdDer<'a> {
    hash_algorithm: AlgorithmIdentifierRef<'a>,
    issuer_name_hash: &'a OctetStringRef,
    issuer_key_hash: &'a OctetStringRef,
    serial_number: IntRef<'a>,
}

/// `Extension` (RFC 5280)
#[derive(Debug, Sequence)]
struct Extension<'a> {
    extn_id: ObjectIdentifier,
    #[asn1(default = "Default::default")]
    critical: bool,
    extn_value: &'a OctetStringRef,
}

/// `OCSPResponseStatus` on the wire: [`ResponseStatus`] plus `successful (0)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enumerated)]
#[repr(u32)]
enum StatusDer {
    Successful = 0,
    MalformedRequest = 1,
    InternalError = 2,
    TryLater = 3,
    Unauthorized = 6,
}

/// `OCSPResponse ::= SEQUENCE { responseStatus, responseBytes [0] EXPLICIT OPTIONAL }`
#[derive(Debug, Sequence)]
struct OcspResponseDer<'a> {
    response_status: StatusDer,
    #[asn1(context_specific = "0", optional = "true")]
    response_bytes: Option<ResponseBytes<'a>>,
}

/// `ResponseBytes ::= SEQUENCE { responseType OID, response OCTET STRING }`
#[derive(Debug, Sequence)]
struct ResponseBytes<'a> {
    response_type: ObjectIdentifier,
    response: &'a OctetStringRef,
}

/// `BasicOCSPResponse`; the tbsResponseData is carried as the very bytes signed.
#[derive(Debug, Sequence)]
struct BasicOcspResponse<'a> {
    tbs_response_data: AnyRef<'a>,
    signature_algorithm: AlgorithmIdentifierRef<'a>,
    signature: BitStringRef<'a>,
    #[asn1(context_specific = "0", optional = "true")]
    certs: Option<Vec<AnyRef<'a>>>,
}

/// `ResponseData` as tlsmint writes it: version v1 (the DEFAULT, so absent), the
/// responder `byKey [2] KeyHash`, and the nonce extension echoed back if asked.
#[derive(Debug, Sequence)]
struct ResponseData<'a> {
    #[asn1(context_specific = "2")]
    responder_key_hash: &'a OctetStringRef,
    produced_at: GeneralizedTime,
    responses: Vec<SingleResponse<'a>>,
    #[asn1(context_specific = "1", optional = "true")]
    response_extensions: Option<Vec<AnyRef<'a>>>,
}

/// `SingleResponse`; the certID is the requester's, echoed as read.
#[derive(Debug, Sequence)]
struct SingleResponse<'a> {
    cert_id: AnyRef<'a>,
    cert_status: CertStatusDer,
    this_update: GeneralizedTime,
    #[asn1(context_specific = "0", optional = "true")]
    next_update: Option<GeneralizedTime>,
}

/// `CertStatus ::= CHOICE { good [0] IMPLICIT NULL, revoked [1] IMPLICIT RevokedInfo,
/// unknown [2] IMPLICIT UnknownInfo }`
#[derive(Debug, Choice)]
#[asn1(tag_mode = "IMPLICIT")]
enum CertStatusDer {
    #[asn1(context_specific = "0")]
    Good(Null),
    #[asn1(context_specific = "1", constructed = "true")]
    Revoked(RevokedInfo),
    #[asn1(context_specific = "2")]
    Unknown(Null),
}

/// `RevokedInfo` without a revocationReason.
#[derive(Debug, Sequence)]
struct RevokedInfo {
    revocation_time: GeneralizedTime,
}

/// Parses a DER `OCSPRequest`. Bytes after it are ignored; inside it, everything
/// must be DER (definite lengths, canonical encodings).
pub fn parse_request(input: &[u8]) -> std::result::Result<OcspRequest, OcspError> {
    let malformed = |e: der::Error| OcspError::Malformed(describe(&e));
    if input.len() > MAX_REQUEST_BYTES {
        return Err(OcspError::TooLarge("more than 16 KiB"));
    }
    let (request, _) = OcspRequestDer::from_der_partial(input).map_err(malformed)?;
    let tbs = request.tbs_request;
    if tbs.request_list.len() > MAX_REQUESTS {
        return Err(OcspError::TooLarge("more than 16 certificates"));
    }
    if tbs.request_list.is_empty() {
        return Err(OcspError::Malformed("the request names no certificate"));
    }
    let certs = tbs
        .request_list
        .iter()
        .map(|request| cert_id(&request.req_cert))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let mut nonce = None;
    for ext in tbs.request_extensions.iter().flatten() {
        let parsed: Extension<'_> = ext.decode_as().map_err(malformed)?;
        if parsed.extn_id == ID_PKIX_OCSP_NONCE && nonce.is_none() {
            nonce = Some(ext.to_der().map_err(malformed)?);
        }
    }
    Ok(OcspRequest { certs, nonce })
}

fn cert_id(id: &CertIdDer<'_>) -> std::result::Result<CertId, OcspError> {
    let oid = id.hash_algorithm.oid;
    let hash = [
        (SHA1, HashAlgorithm::Sha1),
        (SHA256, HashAlgorithm::Sha256),
        (SHA384, HashAlgorithm::Sha384),
        (SHA512, HashAlgorithm::Sha512),
    ]
    .into_iter()
    .find(|(known, _)| *known == oid)
    .map(|(_, h)| h)
    .ok_or(OcspError::Malformed("unsupported hash algorithm in CertID"))?;
    let serial = id.serial_number.as_bytes();
    if serial.is_empty() || serial.len() > 21 {
        return Err(OcspError::Malformed("bad serial number"));
    }
    let raw = id
        .to_der()
        .map_err(|e| OcspError::Malformed(describe(&e)))?;
    Ok(CertId {
        hash,
        issuer_name_hash: id.issuer_name_hash.as_bytes().to_vec(),
        issuer_key_hash: id.issuer_key_hash.as_bytes().to_vec(),
        serial: Serial::from_bytes(serial),
        raw,
    })
}

/// An unsuccessful, unsigned `OCSPResponse`.
pub fn error_response(status: ResponseStatus) -> Vec<u8> {
    let response_status = match status {
        ResponseStatus::MalformedRequest => StatusDer::MalformedRequest,
        ResponseStatus::InternalError => StatusDer::InternalError,
        ResponseStatus::TryLater => StatusDer::TryLater,
        ResponseStatus::Unauthorized => StatusDer::Unauthorized,
    };
    let response = OcspResponseDer {
        response_status,
        response_bytes: None,
    };
    // Cannot fail: a SEQUENCE holding one one-byte ENUMERATED.
    response.to_der().unwrap_or_default()
}

/// `t` as a DER GeneralizedTime (UTC, whole seconds, years 1970 to 9999).
fn generalized_time(t: OffsetDateTime) -> der::Result<GeneralizedTime> {
    let t = t.to_offset(time::UtcOffset::UTC);
    let year = u16::try_from(t.year()).map_err(|_| der::ErrorKind::DateTime)?;
    let at = DateTime::new(
        year,
        t.month().into(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
    )?;
    Ok(GeneralizedTime::from_date_time(at))
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
        let fail = |e: der::Error| Error::signing("OCSP response", e);
        let now = now.replace_nanosecond(0).unwrap_or(now);
        let validity = time::Duration::try_from(validity).unwrap_or(time::Duration::HOUR);
        let next = now
            .checked_add(validity)
            .ok_or_else(|| Error::signing("OCSP response", "nextUpdate is out of range"))?;
        let this_update = generalized_time(now).map_err(fail)?;
        let next_update = generalized_time(next).map_err(fail)?;
        let key_hash = HashAlgorithm::Sha1.digest(self.public_key_bits()?);
        let mut responses = Vec::with_capacity(request.certs.len());
        for (id, status) in request.certs.iter().zip(answers) {
            let cert_status = match status {
                CertStatus::Good => CertStatusDer::Good(Null),
                CertStatus::Revoked(at) => CertStatusDer::Revoked(RevokedInfo {
                    revocation_time: generalized_time(*at).map_err(fail)?,
                }),
                CertStatus::Unknown => CertStatusDer::Unknown(Null),
            };
            responses.push(SingleResponse {
                cert_id: AnyRef::from_der(&id.raw).map_err(fail)?,
                cert_status,
                this_update,
                next_update: Some(next_update),
            });
        }
        let nonce = match &request.nonce {
            Some(ext) => Some(vec![AnyRef::from_der(ext).map_err(fail)?]),
            None => None,
        };
        let tbs = ResponseData {
            responder_key_hash: OctetStringRef::new(&key_hash).map_err(fail)?,
            produced_at: this_update,
            responses,
            response_extensions: nonce,
        }
        .to_der()
        .map_err(fail)?;
        let signature = rcgen::SigningKey::sign(self.key(), &tbs)
            .map_err(|e| Error::signing("OCSP response", e))?;
        let certificate =
            AnyRef::from_der(self.certificate_der()).map_err(|e| Error::CertificateParse {
                what: "CA",
                reason: describe(&e).into(),
            })?;
        let basic = BasicOcspResponse {
            tbs_response_data: AnyRef::from_der(&tbs).map_err(fail)?,
            signature_algorithm: signature_algorithm(self.key().spec()),
            signature: BitStringRef::from_bytes(&signature).map_err(fail)?,
            certs: Some(vec![certificate]),
        }
        .to_der()
        .map_err(fail)?;
        OcspResponseDer {
            response_status: StatusDer::Successful,
            response_bytes: Some(ResponseBytes {
                response_type: ID_PKIX_OCSP_BASIC,
                response: OctetStringRef::new(&basic).map_err(fail)?,
            }),
        }
        .to_der()
        .map_err(fail)
    }

    /// The DER subject Name of the CA certificate, exactly as the certificate
    /// holds it (what OCSP name hashes cover).
    fn subject_der(&self) -> Result<&[u8]> {
        let fail = |_| Error::CertificateParse {
            what: "CA",
            reason: "cannot find the subject".into(),
        };
        let (cert, _) = <&SequenceRef>::from_der_partial(self.certificate_der()).map_err(fail)?;
        let (tbs, _) = <&SequenceRef>::from_der_partial(cert.as_bytes()).map_err(fail)?;
        let mut fields = SliceReader::new(tbs.as_bytes()).map_err(fail)?;
        if Tag::peek(&fields).map_err(fail)? == VERSION_TAG {
            fields.tlv_bytes().map_err(fail)?;
        }
        // serial, signature algorithm, issuer, validity, then subject.
        for _ in 0..4 {
            fields.tlv_bytes().map_err(fail)?;
        }
        fields.tlv_bytes().map_err(fail)
    }

    /// The subjectPublicKey bits of the CA key (what OCSP key hashes cover).
    fn public_key_bits(&self) -> Result<&[u8]> {
        let spki = SubjectPublicKeyInfoRef::from_der(&self.info().spki_der).map_err(|_| {
            Error::CertificateParse {
                what: "CA",
                reason: "cannot read the public key".into(),
            }
        })?;
        Ok(spki.subject_public_key.raw_bytes())
    }
}

/// `version [0] EXPLICIT` of a TBSCertificate.
const VERSION_TAG: Tag = Tag::ContextSpecific {
    constructed: true,
    number: TagNumber(0),
};

fn signature_algorithm(spec: KeySpec) -> AlgorithmIdentifierRef<'static> {
    let (oid, parameters) = match spec {
        KeySpec::EcdsaP256 => (ECDSA_WITH_SHA256, None),
        KeySpec::EcdsaP384 => (ECDSA_WITH_SHA384, None),
        KeySpec::Ed25519 => (ID_ED25519, None),
        KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
            (SHA256_WITH_RSA, Some(AnyRef::NULL))
        }
    };
    AlgorithmIdentifierRef { oid, parameters }
}

#[cfg(test)]
#[path = "ocsp_tests.rs"]
mod tests;
