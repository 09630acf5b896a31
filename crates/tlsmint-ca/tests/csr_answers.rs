//! What the CSR reader answers for requests it does not take: each answer
//! says what is wrong and what is supported. The fixtures in data/csr were
//! made once with the openssl CLI (valid, self-signed requests).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tlsmint_ca::{Error, KeySpec, csr};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/csr/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).expect("fixture")
}

fn refusal(name: &str) -> String {
    let err = csr::parse(&fixture(name)).unwrap_err();
    assert!(
        !matches!(err, Error::CsrSignature(_)),
        "{name}: a valid request must not be called a bad signature: {err}"
    );
    err.to_string()
}

#[test]
fn a_valid_p256_request_is_read() {
    let parsed = csr::parse(&fixture("p256.csr")).expect("parses");
    assert_eq!(parsed.key, KeySpec::EcdsaP256);
}

#[test]
fn rsa_1024_is_called_too_small() {
    let msg = refusal("rsa1024.csr");
    assert!(msg.contains("RSA 1024 bits is too small"), "{msg}");
    assert!(msg.contains("2048, 3072 or 4096"), "{msg}");
}

#[test]
fn rsa_pss_is_called_unsupported() {
    for name in ["rsa-pss-sig.csr", "rsa-pss-key.csr"] {
        let msg = refusal(name);
        assert!(msg.contains("RSASSA-PSS"), "{name}: {msg}");
        assert!(msg.contains("accept"), "{name}: {msg}");
    }
}

#[test]
fn p521_is_called_unsupported_with_the_supported_curves() {
    let msg = refusal("p521.csr");
    assert!(msg.contains("P-521"), "{msg}");
    assert!(msg.contains("P-256 or P-384"), "{msg}");
}

#[test]
fn sha1_signatures_are_called_unsupported() {
    for name in ["rsa-sha1.csr", "ecdsa-sha1.csr"] {
        let msg = refusal(name);
        assert!(msg.contains("SHA-1"), "{name}: {msg}");
        assert!(msg.contains("SHA-256"), "{name}: {msg}");
    }
}

#[test]
fn text_after_the_pem_block_is_refused() {
    let mut input = fixture("p256.csr");
    input.extend_from_slice(b"\n\t  \n");
    csr::parse(&input).expect("whitespace after the block is fine");
    input.extend_from_slice(b"garbage");
    let err = csr::parse(&input).unwrap_err();
    assert!(matches!(err, Error::Pem { .. }), "{err}");
    assert!(err.to_string().contains("only whitespace"), "{err}");
}
