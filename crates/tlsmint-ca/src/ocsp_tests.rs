#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::ca::CaConfig;
use crate::subject::Subject;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use der::asn1::UintRef;

fn ca() -> CertificateAuthority {
    let cfg = CaConfig {
        name: "pki".into(),
        subject: Subject::with_common_name("OCSP Test CA"),
        key: KeySpec::EcdsaP256,
        ttl: Duration::from_secs(86400),
    };
    CertificateAuthority::generate_root(&cfg, OffsetDateTime::now_utc()).unwrap()
}

fn request_for(
    ca: &CertificateAuthority,
    serial: &Serial,
    hash: HashAlgorithm,
    nonce: bool,
) -> Vec<u8> {
    let alg = match hash {
        HashAlgorithm::Sha1 => SHA1,
        HashAlgorithm::Sha256 => SHA256,
        HashAlgorithm::Sha384 => SHA384,
        HashAlgorithm::Sha512 => SHA512,
    };
    let name_hash = hash.digest(ca.subject_der().unwrap());
    let key_hash = hash.digest(ca.public_key_bits().unwrap());
    // The serial as a non-negative INTEGER (a leading zero where the top bit is set).
    let serial = UintRef::new(serial.as_bytes()).unwrap().to_der().unwrap();
    let cert_id = CertIdDer {
        hash_algorithm: AlgorithmIdentifierRef {
            oid: alg,
            parameters: Some(AnyRef::NULL),
        },
        issuer_name_hash: OctetStringRef::new(&name_hash).unwrap(),
        issuer_key_hash: OctetStringRef::new(&key_hash).unwrap(),
        serial_number: IntRef::from_der(&serial).unwrap(),
    };
    let nonce_value = OctetStringRef::new(b"0123456789abcdef")
        .unwrap()
        .to_der()
        .unwrap();
    let nonce_ext = Extension {
        extn_id: ID_PKIX_OCSP_NONCE,
        critical: false,
        extn_value: OctetStringRef::new(&nonce_value).unwrap(),
    }
    .to_der()
    .unwrap();
    let request_extensions = nonce.then(|| vec![AnyRef::from_der(&nonce_ext).unwrap()]);
    OcspRequestDer {
        tbs_request: TbsRequest {
            version: None,
            requestor_name: None,
            request_list: vec![Request {
                req_cert: cert_id,
                single_request_extensions: None,
            }],
            request_extensions,
        },
        optional_signature: None,
    }
    .to_der()
    .unwrap()
}

/// Returns (tbsResponseData, signature) from an OCSPResponse.
fn open(response: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let response = OcspResponseDer::from_der(response).unwrap();
    assert_eq!(response.response_status as u32, 0);
    let bytes = response.response_bytes.unwrap();
    assert_eq!(bytes.response_type, ID_PKIX_OCSP_BASIC);
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes()).unwrap();
    (
        basic.tbs_response_data.to_der().unwrap(),
        basic.signature.raw_bytes().to_vec(),
    )
}

#[test]
fn answers_good_revoked_and_unknown_with_a_valid_signature() {
    let ca = ca();
    let serial = Serial::random();
    for hash in [HashAlgorithm::Sha1, HashAlgorithm::Sha256] {
        let req = parse_request(&request_for(&ca, &serial, hash, true)).unwrap();
        assert_eq!(req.certs.len(), 1);
        assert_eq!(req.certs[0].serial, serial);
        assert!(ca.ocsp_matches(&req.certs[0]));
        assert!(req.nonce.is_some());
        let now = OffsetDateTime::now_utc();
        for status in [
            CertStatus::Good,
            CertStatus::Revoked(now),
            CertStatus::Unknown,
        ] {
            let resp = ca
                .ocsp_response(&req, &[status], now, Duration::from_secs(3600))
                .unwrap();
            let (tbs, sig) = open(&resp);
            let key = ca.public_key_bits().unwrap();
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key)
                .verify(&tbs, &sig)
                .expect("signature verifies");
        }
    }
}

#[test]
fn another_cas_cert_id_does_not_match() {
    let ours = ca();
    let theirs = ca();
    let req = parse_request(&request_for(
        &theirs,
        &Serial::random(),
        HashAlgorithm::Sha1,
        false,
    ))
    .unwrap();
    assert!(!ours.ocsp_matches(&req.certs[0]));
    assert!(req.nonce.is_none());
}

#[test]
fn malformed_requests_are_refused() {
    assert!(parse_request(b"").is_err());
    assert!(parse_request(&[0x30, 0x00]).is_err());
    // SEQUENCE { SEQUENCE { SEQUENCE {} } }: a request list naming no certificate.
    assert!(parse_request(&[0x30, 0x04, 0x30, 0x02, 0x30, 0x00]).is_err());
    assert!(parse_request(&vec![0u8; MAX_REQUEST_BYTES + 1]).is_err());
    assert_eq!(
        error_response(ResponseStatus::MalformedRequest),
        vec![0x30, 0x03, 0x0a, 0x01, 0x01]
    );
}

#[test]
fn truncated_and_indefinite_length_requests_are_refused() {
    let ca = ca();
    let whole = request_for(&ca, &Serial::random(), HashAlgorithm::Sha256, true);
    assert!(parse_request(&whole).is_ok());
    for len in 0..whole.len() {
        let err = parse_request(&whole[..len]).unwrap_err();
        assert!(
            matches!(err, OcspError::Malformed(_)),
            "cut at {len}: {err}"
        );
        assert!(
            err.to_string().starts_with("malformed OCSP request: "),
            "{err}"
        );
    }
    let err = parse_request(&whole[..whole.len() - 1]).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    // The same request with its outer SEQUENCE in BER's indefinite-length form.
    let (_, contents, _) = crate::der::read_tlv(&whole).unwrap();
    let mut indefinite = vec![0x30, 0x80];
    indefinite.extend_from_slice(contents);
    indefinite.extend_from_slice(&[0x00, 0x00]);
    let err = parse_request(&indefinite).unwrap_err();
    assert_eq!(
        err,
        OcspError::Malformed("indefinite length (BER), not DER"),
        "{err}"
    );
}

#[test]
fn the_nonce_extension_is_echoed_as_sent() {
    let ca = ca();
    let plain = request_for(&ca, &Serial::random(), HashAlgorithm::Sha1, false);
    // Extension { nonce, critical FALSE (spelt out), OCTET STRING { OCTET STRING "nonce" } }
    let ext = [
        0x30, 0x19, 0x06, 0x09, 0x2b, 6, 1, 5, 5, 7, 0x30, 1, 2, 0x01, 0x01, 0x00, 0x04, 0x09,
        0x04, 0x07, b'n', b'o', b'n', b'c', b'e', b'-', b'1',
    ];
    let mut outer = OcspRequestDer::from_der(&plain).unwrap();
    outer.tbs_request.request_extensions = Some(vec![AnyRef::from_der(&ext).unwrap()]);
    let request = parse_request(&outer.to_der().unwrap()).unwrap();
    assert_eq!(request.nonce.as_deref(), Some(&ext[..]));
    let resp = ca
        .ocsp_response(
            &request,
            &[CertStatus::Good],
            OffsetDateTime::now_utc(),
            Duration::from_secs(60),
        )
        .unwrap();
    let (tbs, _) = open(&resp);
    let data = ResponseData::from_der(&tbs).unwrap();
    let echoed = data.response_extensions.unwrap();
    assert_eq!(echoed.len(), 1);
    assert_eq!(echoed[0].to_der().unwrap(), ext);
}
