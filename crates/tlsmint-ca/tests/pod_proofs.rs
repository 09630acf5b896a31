//! Public keys without a CSR (Kubernetes' PodCertificateRequest `pkixPublicKey`): the key
//! type is read, the proof of possession checked against vectors made by Go's crypto (as
//! kubelet makes them), and a certificate is issued for the key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use tlsmint_ca::{Error, KeySpec, csr};

const POD_UID: &[u8] = b"0d9d4f8e-5b1e-4c4a-9f0e-3a2b1c0d9e8f";

fn vectors() -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let b64 = base64::engine::general_purpose::STANDARD;
    include_str!("data/pod-proofs.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut f = l.split_whitespace();
            let name = f.next().unwrap().to_owned();
            let spki = b64.decode(f.next().unwrap()).unwrap();
            let proof = b64.decode(f.next().unwrap()).unwrap();
            (name, spki, proof)
        })
        .collect()
}

#[test]
fn go_made_proofs_verify_for_every_supported_key() {
    let want = [
        ("p256", KeySpec::EcdsaP256),
        ("p384", KeySpec::EcdsaP384),
        ("ed25519", KeySpec::Ed25519),
        ("rsa3072", KeySpec::Rsa3072),
    ];
    let vectors = vectors();
    for (name, spec) in want {
        let (_, spki, proof) = vectors.iter().find(|v| v.0 == name).unwrap();
        assert_eq!(csr::public_key_spec(spki).unwrap(), spec, "{name}");
        assert_eq!(
            csr::verify_proof(spki, POD_UID, proof).unwrap(),
            spec,
            "{name}"
        );
        // The proof is bound to the pod: another UID does not verify.
        let err = csr::verify_proof(spki, b"another-pod-uid", proof).unwrap_err();
        assert!(matches!(err, Error::CsrSignature(_)), "{name}: {err}");
        let mut bent = proof.clone();
        let last = bent.len() - 1;
        bent[last] ^= 1;
        assert!(csr::verify_proof(spki, POD_UID, &bent).is_err(), "{name}");
    }
}

#[test]
fn p521_is_an_unsupported_key_that_names_what_is_supported() {
    let vectors = vectors();
    let (_, spki, proof) = vectors.iter().find(|v| v.0 == "p521").unwrap();
    for err in [
        csr::public_key_spec(spki).unwrap_err(),
        csr::verify_proof(spki, POD_UID, proof).unwrap_err(),
    ] {
        assert!(matches!(err, Error::UnsupportedKey(_)), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("P-521") && msg.contains("ECDSA P-256"),
            "{msg}"
        );
    }
}

#[test]
fn garbage_public_keys_are_refused_not_panicked_on() {
    for bad in [
        &b""[..],
        b"\x30\x00",
        b"not der at all",
        &[0x30, 0x82, 0xff, 0xff],
    ] {
        let err = csr::public_key_spec(bad).unwrap_err();
        assert!(matches!(err, Error::CsrMalformed(_)), "{err}");
    }
    let (_, spki, _) = vectors().into_iter().next().unwrap();
    let mut trailing = spki.clone();
    trailing.push(0);
    assert!(csr::public_key_spec(&trailing).is_err());
}
