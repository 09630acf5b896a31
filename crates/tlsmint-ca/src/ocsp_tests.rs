#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::ca::CaConfig;
use crate::subject::Subject;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};

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
    let cert_id = der::sequence(&[
        &der::sequence(&[&der::oid(alg), &der::tlv(tag::NULL, &[])]),
        &der::tlv(tag::OCTET_STRING, &hash.digest(ca.subject_der().unwrap())),
        &der::tlv(
            tag::OCTET_STRING,
            &hash.digest(ca.public_key_bits().unwrap()),
        ),
        &der::unsigned_integer(serial.as_bytes()),
    ]);
    let list = der::sequence(&[&der::sequence(&[&cert_id])]);
    let mut tbs = vec![list];
    if nonce {
        let ext = der::sequence(&[
            &der::oid(ID_PKIX_OCSP_NONCE),
            &der::tlv(
                tag::OCTET_STRING,
                &der::tlv(tag::OCTET_STRING, b"0123456789abcdef"),
            ),
        ]);
        tbs.push(der::tlv(CTX2, &der::sequence(&[&ext])));
    }
    let tbs: Vec<&[u8]> = tbs.iter().map(Vec::as_slice).collect();
    der::sequence(&[&der::sequence(&tbs)])
}

/// Returns (tbsResponseData, signature, responseStatus) from an OCSPResponse.
fn open(response: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (outer, _) = der::expect(response, tag::SEQUENCE).unwrap();
    let (status, rest) = der::expect(outer, tag::ENUMERATED).unwrap();
    assert_eq!(status, &[0]);
    let (bytes, _) = der::expect(rest, CTX0).unwrap();
    let (bytes, _) = der::expect(bytes, tag::SEQUENCE).unwrap();
    let (_oid, rest) = der::expect(bytes, tag::OID).unwrap();
    let (basic, _) = der::expect(rest, tag::OCTET_STRING).unwrap();
    let (basic, _) = der::expect(basic, tag::SEQUENCE).unwrap();
    let (_, _, after_tbs) = der::read_tlv(basic).unwrap();
    let tbs = basic[..basic.len() - after_tbs.len()].to_vec();
    let (_alg, rest) = der::expect(after_tbs, tag::SEQUENCE).unwrap();
    let (sig, _) = der::expect(rest, tag::BIT_STRING).unwrap();
    (tbs, sig[1..].to_vec())
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
    assert!(parse_request(&der::sequence(&[&der::sequence(&[&der::sequence(&[])])])).is_err());
    assert!(parse_request(&vec![0u8; MAX_REQUEST_BYTES + 1]).is_err());
    assert_eq!(
        error_response(ResponseStatus::MalformedRequest),
        vec![0x30, 0x03, 0x0a, 0x01, 0x01]
    );
}
