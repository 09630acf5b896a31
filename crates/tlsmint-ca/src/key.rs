//! Private keys: generation, loading from PEM/DER in any common encoding, and
//! writing them back as PKCS#8, PKCS#1 or SEC1.
//!
//! A [`PrivateKey`] never shows its bytes: `Debug` prints the algorithm only
//! and there is no `Display`. PEM output comes back as [`SecretString`] (the
//! `secrecy` crate's, tlsmint's one redacted-secret type), which zeroes its
//! buffer when dropped, is redacted in `Debug` and has no `Display`.
//!
//! RSA generation is slow (100-400 ms on this class of machine); every
//! generating function is synchronous and documented as blocking, so async
//! callers run it on a blocking pool (`tokio::task::spawn_blocking`).

use std::fmt;

pub use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;

use aws_lc_rs::encoding::{AsDer, EcPrivateKeyRfc5915Der, Pkcs8V1Der};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair,
    EcdsaSigningAlgorithm, Ed25519KeyPair, RsaKeyPair,
};
use rcgen::{KeyPair, PublicKeyData, SignatureAlgorithm};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use zeroize::Zeroizing;

use crate::der;
use crate::error::{Error, Result};
use crate::pem;

/// The key family, as named in the CRDs (`ECDSA`, `Ed25519`, `RSA`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 or P-384.
    Ecdsa,
    /// Ed25519.
    Ed25519,
    /// RSA with PKCS#1 v1.5 signatures.
    Rsa,
}

/// A concrete key type: family and size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum KeySpec {
    /// ECDSA P-256 with SHA-256 (the default).
    #[default]
    EcdsaP256,
    /// ECDSA P-384 with SHA-384.
    EcdsaP384,
    /// Ed25519.
    Ed25519,
    /// RSA 2048 bits, SHA-256.
    Rsa2048,
    /// RSA 3072 bits, SHA-256.
    Rsa3072,
    /// RSA 4096 bits, SHA-256.
    Rsa4096,
}

impl KeySpec {
    /// Every supported key type, smallest first within a family.
    pub const ALL: [KeySpec; 6] = [
        KeySpec::EcdsaP256,
        KeySpec::EcdsaP384,
        KeySpec::Ed25519,
        KeySpec::Rsa2048,
        KeySpec::Rsa3072,
        KeySpec::Rsa4096,
    ];

    /// Builds a spec from a family and an optional size (bits for RSA, curve
    /// size for ECDSA). A missing size means the family's default: 256 for
    /// ECDSA, 2048 for RSA.
    pub fn from_parts(algorithm: KeyAlgorithm, size: Option<u32>) -> Result<Self> {
        match (algorithm, size) {
            (KeyAlgorithm::Ecdsa, None | Some(256)) => Ok(KeySpec::EcdsaP256),
            (KeyAlgorithm::Ecdsa, Some(384)) => Ok(KeySpec::EcdsaP384),
            (KeyAlgorithm::Ed25519, None) => Ok(KeySpec::Ed25519),
            (KeyAlgorithm::Rsa, None | Some(2048)) => Ok(KeySpec::Rsa2048),
            (KeyAlgorithm::Rsa, Some(3072)) => Ok(KeySpec::Rsa3072),
            (KeyAlgorithm::Rsa, Some(4096)) => Ok(KeySpec::Rsa4096),
            (KeyAlgorithm::Ed25519, Some(size)) => Err(Error::UnsupportedKey(format!(
                "Ed25519 has a fixed size; remove size {size}"
            ))),
            (KeyAlgorithm::Ecdsa, Some(size)) => Err(Error::UnsupportedKey(format!(
                "ECDSA size {size}: use 256 or 384"
            ))),
            (KeyAlgorithm::Rsa, Some(size)) => Err(Error::UnsupportedKey(format!(
                "RSA size {size}: use 2048, 3072 or 4096"
            ))),
        }
    }

    /// The key family.
    pub fn algorithm(self) -> KeyAlgorithm {
        match self {
            KeySpec::EcdsaP256 | KeySpec::EcdsaP384 => KeyAlgorithm::Ecdsa,
            KeySpec::Ed25519 => KeyAlgorithm::Ed25519,
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => KeyAlgorithm::Rsa,
        }
    }

    /// Size in bits as Vault reports it (`key_bits`): 256/384 for ECDSA, 0 for
    /// Ed25519, the modulus size for RSA.
    pub fn bits(self) -> u32 {
        match self {
            KeySpec::EcdsaP256 => 256,
            KeySpec::EcdsaP384 => 384,
            KeySpec::Ed25519 => 0,
            KeySpec::Rsa2048 => 2048,
            KeySpec::Rsa3072 => 3072,
            KeySpec::Rsa4096 => 4096,
        }
    }

    /// Vault's `private_key_type` value: `ec`, `ed25519` or `rsa`.
    pub fn vault_type(self) -> &'static str {
        match self.algorithm() {
            KeyAlgorithm::Ecdsa => "ec",
            KeyAlgorithm::Ed25519 => "ed25519",
            KeyAlgorithm::Rsa => "rsa",
        }
    }

    /// True when generating this key takes long enough (RSA: 100-400 ms) that
    /// it must never run on an async worker thread.
    pub fn is_slow_to_generate(self) -> bool {
        self.algorithm() == KeyAlgorithm::Rsa
    }

    /// The signature algorithm a key of this type signs with.
    pub(crate) fn signature_algorithm(self) -> &'static SignatureAlgorithm {
        match self {
            KeySpec::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeySpec::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeySpec::Ed25519 => &rcgen::PKCS_ED25519,
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => &rcgen::PKCS_RSA_SHA256,
        }
    }

    fn ecdsa_signing(self) -> Option<&'static EcdsaSigningAlgorithm> {
        match self {
            KeySpec::EcdsaP256 => Some(&ECDSA_P256_SHA256_ASN1_SIGNING),
            KeySpec::EcdsaP384 => Some(&ECDSA_P384_SHA384_ASN1_SIGNING),
            _ => None,
        }
    }
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeySpec::EcdsaP256 => "ECDSA P-256",
            KeySpec::EcdsaP384 => "ECDSA P-384",
            KeySpec::Ed25519 => "Ed25519",
            KeySpec::Rsa2048 => "RSA 2048",
            KeySpec::Rsa3072 => "RSA 3072",
            KeySpec::Rsa4096 => "RSA 4096",
        })
    }
}

/// How a private key is written out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum KeyEncoding {
    /// PKCS#8 `PRIVATE KEY` (the default; every key type).
    #[default]
    Pkcs8,
    /// PKCS#1 `RSA PRIVATE KEY` (RSA only).
    Pkcs1,
    /// SEC1 `EC PRIVATE KEY` (ECDSA only).
    Sec1,
}

impl KeyEncoding {
    /// The name used in the CRDs and in errors.
    pub fn name(self) -> &'static str {
        match self {
            KeyEncoding::Pkcs8 => "PKCS8",
            KeyEncoding::Pkcs1 => "PKCS1",
            KeyEncoding::Sec1 => "SEC1",
        }
    }
}

/// A private key with its type. Holds the PKCS#8 form (zeroed on drop) and a
/// shared signing handle, so cloning is cheap.
#[derive(Clone)]
pub struct PrivateKey {
    spec: KeySpec,
    pkcs8: Zeroizing<Vec<u8>>,
    pair: Arc<KeyPair>,
}

impl PublicKeyData for PrivateKey {
    fn der_bytes(&self) -> &[u8] {
        self.pair.der_bytes()
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.pair.algorithm()
    }
}

impl rcgen::SigningKey for PrivateKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        rcgen::SigningKey::sign(self.pair.as_ref(), msg)
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("spec", &self.spec)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl PrivateKey {
    /// Generates a new key.
    ///
    /// Blocking: RSA takes 100-400 ms. Async callers must use a blocking pool.
    pub fn generate(spec: KeySpec) -> Result<Self> {
        let failed = |reason: String| Error::KeyGeneration {
            algorithm: spec.to_string(),
            reason,
        };
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8: Vec<u8> = match spec {
            KeySpec::EcdsaP256 | KeySpec::EcdsaP384 => {
                let alg = spec
                    .ecdsa_signing()
                    .ok_or_else(|| failed("not an ECDSA key".into()))?;
                EcdsaKeyPair::generate_pkcs8(alg, &rng)
                    .map_err(|e| failed(e.to_string()))?
                    .as_ref()
                    .to_vec()
            }
            KeySpec::Ed25519 => Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|e| failed(e.to_string()))?
                .as_ref()
                .to_vec(),
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
                let size = match spec {
                    KeySpec::Rsa2048 => KeySize::Rsa2048,
                    KeySpec::Rsa3072 => KeySize::Rsa3072,
                    _ => KeySize::Rsa4096,
                };
                let pair = RsaKeyPair::generate(size).map_err(|e| failed(e.to_string()))?;
                let der: Pkcs8V1Der<'static> = pair.as_der().map_err(|e| failed(e.to_string()))?;
                der.as_ref().to_vec()
            }
        };
        Self::from_pkcs8(spec, Zeroizing::new(pkcs8))
    }

    /// Reads a key from PEM: `PRIVATE KEY` (PKCS#8), `RSA PRIVATE KEY`
    /// (PKCS#1) or `EC PRIVATE KEY` (SEC1).
    pub fn from_pem(text: &str) -> Result<Self> {
        let der = pem::decode_private_key(text)?;
        Self::from_der(&der)
    }

    /// Reads a key from DER in PKCS#8, PKCS#1 or SEC1 form.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let parsed = PrivateKeyDer::try_from(der)
            .map_err(|_| Error::KeyParse("not a PKCS#8, PKCS#1 or SEC1 private key".into()))?;
        let rejected = |what: &str| Error::KeyParse(format!("the {what} key was rejected"));
        match parsed {
            PrivateKeyDer::Pkcs8(p8) => {
                let bytes = p8.secret_pkcs8_der();
                let spec = detect_pkcs8(bytes)?;
                Self::from_pkcs8(spec, Zeroizing::new(bytes.to_vec()))
            }
            PrivateKeyDer::Pkcs1(p1) => {
                let pair =
                    RsaKeyPair::from_der(p1.secret_pkcs1_der()).map_err(|_| rejected("RSA"))?;
                let spec = rsa_spec(pair.public_modulus_len() * 8)?;
                let doc: Pkcs8V1Der<'static> = pair.as_der().map_err(|_| rejected("RSA"))?;
                Self::from_pkcs8(spec, Zeroizing::new(doc.as_ref().to_vec()))
            }
            PrivateKeyDer::Sec1(sec1) => {
                for spec in [KeySpec::EcdsaP256, KeySpec::EcdsaP384] {
                    let Some(alg) = spec.ecdsa_signing() else {
                        continue;
                    };
                    if let Ok(pair) =
                        EcdsaKeyPair::from_private_key_der(alg, sec1.secret_sec1_der())
                    {
                        let doc = pair.to_pkcs8v1().map_err(|_| rejected("EC"))?;
                        return Self::from_pkcs8(spec, Zeroizing::new(doc.as_ref().to_vec()));
                    }
                }
                Err(Error::KeyParse(
                    "the EC key is not on P-256 or P-384, the curves tlsmint supports".into(),
                ))
            }
            _ => Err(Error::KeyParse("unsupported private key format".into())),
        }
    }

    fn from_pkcs8(spec: KeySpec, pkcs8: Zeroizing<Vec<u8>>) -> Result<Self> {
        let der = PrivatePkcs8KeyDer::from(pkcs8.as_slice());
        let pair = KeyPair::from_pkcs8_der_and_sign_algo(&der, spec.signature_algorithm())
            .map_err(|e| Error::KeyParse(format!("the {spec} key was rejected: {e}")))?;
        Ok(PrivateKey {
            spec,
            pkcs8,
            pair: Arc::new(pair),
        })
    }

    /// The key's type.
    pub fn spec(&self) -> KeySpec {
        self.spec
    }

    /// The public key as a DER SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.pair.subject_public_key_info()
    }

    /// Writes the key as PEM in the requested encoding. PKCS#1 holds only RSA
    /// keys and SEC1 only ECDSA keys.
    pub fn to_pem(&self, encoding: KeyEncoding) -> Result<SecretString> {
        let refuse = |reason: &str| Error::KeyEncode {
            encoding: encoding.name(),
            reason: reason.to_owned(),
        };
        let (label, der): (&str, Zeroizing<Vec<u8>>) = match (encoding, self.spec.algorithm()) {
            (KeyEncoding::Pkcs8, _) => ("PRIVATE KEY", self.pkcs8.clone()),
            (KeyEncoding::Pkcs1, KeyAlgorithm::Rsa) => {
                let inner = der::pkcs8_private_key_octets(&self.pkcs8)
                    .map_err(|_| refuse("the PKCS#8 structure could not be read"))?;
                ("RSA PRIVATE KEY", Zeroizing::new(inner.to_vec()))
            }
            (KeyEncoding::Sec1, KeyAlgorithm::Ecdsa) => {
                let alg = self
                    .spec
                    .ecdsa_signing()
                    .ok_or_else(|| refuse("not an ECDSA key"))?;
                let pair = EcdsaKeyPair::from_pkcs8(alg, &self.pkcs8)
                    .map_err(|_| refuse("the EC key was rejected"))?;
                let sec1: EcPrivateKeyRfc5915Der<'static> = pair
                    .private_key()
                    .as_der()
                    .map_err(|_| refuse("the EC key could not be encoded"))?;
                ("EC PRIVATE KEY", Zeroizing::new(sec1.as_ref().to_vec()))
            }
            (KeyEncoding::Pkcs1, _) => return Err(refuse("PKCS1 holds only RSA keys")),
            (KeyEncoding::Sec1, _) => return Err(refuse("SEC1 holds only ECDSA keys")),
        };
        // Copied once into an exact-size secret buffer; the encoder's own buffer is
        // zeroed when `pem` drops.
        let pem = Zeroizing::new(pem::encode(label, &der));
        Ok(SecretString::from(pem.as_str()))
    }

    /// The key in PKCS#8 DER. Secret: never log it.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }
}

/// Finds the key type of a PKCS#8 key by trying each backend parser.
fn detect_pkcs8(bytes: &[u8]) -> Result<KeySpec> {
    if Ed25519KeyPair::from_pkcs8_maybe_unchecked(bytes).is_ok() {
        return Ok(KeySpec::Ed25519);
    }
    for spec in [KeySpec::EcdsaP256, KeySpec::EcdsaP384] {
        if let Some(alg) = spec.ecdsa_signing()
            && EcdsaKeyPair::from_pkcs8(alg, bytes).is_ok()
        {
            return Ok(spec);
        }
    }
    if let Ok(pair) = RsaKeyPair::from_pkcs8(bytes) {
        return rsa_spec(pair.public_modulus_len() * 8);
    }
    Err(Error::KeyParse(
        "the PKCS#8 key is not ECDSA P-256/P-384, Ed25519 or RSA 2048/3072/4096".into(),
    ))
}

fn rsa_spec(bits: usize) -> Result<KeySpec> {
    match bits {
        2048 => Ok(KeySpec::Rsa2048),
        3072 => Ok(KeySpec::Rsa3072),
        4096 => Ok(KeySpec::Rsa4096),
        other => Err(Error::UnsupportedKey(format!(
            "RSA key of {other} bits: use 2048, 3072 or 4096"
        ))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn generates_and_round_trips_every_key_type_in_every_encoding() {
        for spec in KeySpec::ALL {
            let key = PrivateKey::generate(spec).expect("generate");
            assert_eq!(key.spec(), spec);
            for encoding in [KeyEncoding::Pkcs8, KeyEncoding::Pkcs1, KeyEncoding::Sec1] {
                let allowed = match encoding {
                    KeyEncoding::Pkcs8 => true,
                    KeyEncoding::Pkcs1 => spec.algorithm() == KeyAlgorithm::Rsa,
                    KeyEncoding::Sec1 => spec.algorithm() == KeyAlgorithm::Ecdsa,
                };
                let out = key.to_pem(encoding);
                assert_eq!(out.is_ok(), allowed, "{spec} as {}", encoding.name());
                if let Ok(pem) = out {
                    let back = PrivateKey::from_pem(pem.expose_secret()).expect("reload");
                    assert_eq!(back.spec(), spec);
                    assert_eq!(back.public_key_der(), key.public_key_der());
                }
            }
        }
    }

    #[test]
    fn debug_never_shows_key_material() {
        let key = PrivateKey::generate(KeySpec::EcdsaP256).expect("generate");
        let pem = key.to_pem(KeyEncoding::Pkcs8).expect("pem");
        let shown = format!("{key:?} {pem:?}");
        assert!(shown.contains("redacted"));
        assert!(!shown.contains("PRIVATE KEY"));
        let body: String = pem
            .expose_secret()
            .lines()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        assert!(!shown.contains(&body[..16]));
    }

    #[test]
    fn rejects_bad_sizes_with_a_named_reason() {
        let err = KeySpec::from_parts(KeyAlgorithm::Rsa, Some(1024)).unwrap_err();
        assert!(err.to_string().contains("2048, 3072 or 4096"), "{err}");
        let err = KeySpec::from_parts(KeyAlgorithm::Ecdsa, Some(521)).unwrap_err();
        assert!(err.to_string().contains("256 or 384"), "{err}");
        assert!(KeySpec::from_parts(KeyAlgorithm::Ed25519, Some(256)).is_err());
        assert_eq!(
            KeySpec::from_parts(KeyAlgorithm::Ecdsa, None).ok(),
            Some(KeySpec::EcdsaP256)
        );
    }

    #[test]
    fn garbage_key_is_rejected_without_echoing_it() {
        let err = PrivateKey::from_der(b"not a key at all").unwrap_err();
        assert!(!err.to_string().contains("not a key at all"));
        let err =
            PrivateKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
                .unwrap_err();
        assert!(matches!(err, Error::KeyParse(_)), "{err}");
    }
}
