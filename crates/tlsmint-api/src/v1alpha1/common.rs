//! Types shared by more than one v1alpha1 kind: key algorithm and size, private-key encoding,
//! subject name fields and object references.
//!
//! Owns their schema, defaults and per-value validation. It must not generate or encode keys:
//! that is the CA engine's job (`tlsmint-ca`).

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::validation::{ValidationError, object_name, require};

/// Key algorithm of a private key: `ECDSA` (default), `Ed25519` or `RSA`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256 (size 256, the default) or P-384 (size 384).
    #[default]
    #[serde(rename = "ECDSA")]
    Ecdsa,
    /// Ed25519 (no size). Fast and small, but not accepted by every TLS client.
    Ed25519,
    /// RSA with a 2048 (default), 3072 or 4096 bit modulus. Generating RSA keys is slow.
    #[serde(rename = "RSA")]
    Rsa,
}

impl KeyAlgorithm {
    /// Every algorithm, in the order the documentation lists them.
    pub const ALL: [KeyAlgorithm; 3] = [
        KeyAlgorithm::Ecdsa,
        KeyAlgorithm::Ed25519,
        KeyAlgorithm::Rsa,
    ];

    /// The name used in the API (`ECDSA`, `Ed25519`, `RSA`).
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::Ecdsa => "ECDSA",
            KeyAlgorithm::Ed25519 => "Ed25519",
            KeyAlgorithm::Rsa => "RSA",
        }
    }

    /// The key sizes this algorithm accepts (empty for Ed25519, which has none).
    pub const fn allowed_sizes(self) -> &'static [u32] {
        match self {
            KeyAlgorithm::Ecdsa => &[256, 384],
            KeyAlgorithm::Ed25519 => &[],
            KeyAlgorithm::Rsa => &[2048, 3072, 4096],
        }
    }

    /// The size used when none is given: 256 for ECDSA, 2048 for RSA, none for Ed25519.
    pub const fn default_size(self) -> Option<u32> {
        match self {
            KeyAlgorithm::Ecdsa => Some(256),
            KeyAlgorithm::Ed25519 => None,
            KeyAlgorithm::Rsa => Some(2048),
        }
    }

    const fn allowed_sizes_text(self) -> &'static str {
        match self {
            KeyAlgorithm::Ecdsa => "use 256 or 384",
            KeyAlgorithm::Ed25519 => "Ed25519 keys take no size",
            KeyAlgorithm::Rsa => "use 2048, 3072 or 4096",
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The value is not `ECDSA`, `Ed25519` or `RSA` (optionally with a size, see [`KeySpec`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a key algorithm (use ECDSA, ECDSA-384, Ed25519, RSA or RSA-3072)")]
pub struct KeyAlgorithmError {
    /// The rejected input.
    pub value: String,
}

impl FromStr for KeyAlgorithm {
    type Err = KeyAlgorithmError;

    /// Case-insensitive: `ecdsa`, `ECDSA`, `ed25519`, `rsa` ...
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        KeyAlgorithm::ALL
            .into_iter()
            .find(|alg| alg.as_str().eq_ignore_ascii_case(input))
            .ok_or_else(|| KeyAlgorithmError {
                value: input.to_owned(),
            })
    }
}

/// Algorithm and size of a private key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.size) || ((!has(self.algorithm) || self.algorithm == 'ECDSA') ? self.size in [256, 384] : (self.algorithm == 'RSA' ? self.size in [2048, 3072, 4096] : false))",
    "message": "size must be 256 or 384 for ECDSA, 2048, 3072 or 4096 for RSA, and unset for Ed25519",
}]))]
pub struct KeySpec {
    /// Key algorithm: `ECDSA` (default), `Ed25519` or `RSA`.
    #[serde(default)]
    pub algorithm: KeyAlgorithm,
    /// Key size in bits: 256 (default) or 384 for ECDSA; 2048 (default), 3072 or 4096 for
    /// RSA; unset for Ed25519.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
}

impl KeySpec {
    /// The default key: ECDSA P-256.
    pub const DEFAULT: KeySpec = KeySpec {
        algorithm: KeyAlgorithm::Ecdsa,
        size: None,
    };

    /// A key of `algorithm` with its default size.
    pub const fn new(algorithm: KeyAlgorithm) -> Self {
        KeySpec {
            algorithm,
            size: None,
        }
    }

    /// The size that will be used: the given one, else the algorithm's default (none for
    /// Ed25519).
    pub fn effective_size(&self) -> Option<u32> {
        self.size.or(self.algorithm.default_size())
    }

    /// Checks the size against the algorithm; `field` is the path used in the error
    /// (e.g. `spec.key`).
    pub fn validate(&self, field: &str) -> Result<(), ValidationError> {
        let Some(size) = self.size else {
            return Ok(());
        };
        if !self.algorithm.allowed_sizes().contains(&size) {
            return Err(ValidationError::KeySize {
                field: format!("{field}.size"),
                algorithm: self.algorithm,
                size,
                allowed: self.algorithm.allowed_sizes_text(),
            });
        }
        Ok(())
    }
}

impl fmt::Display for KeySpec {
    /// `ECDSA`, `ECDSA-384`, `Ed25519`, `RSA-4096`: the form [`KeySpec::from_str`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.size {
            Some(size) => write!(f, "{}-{size}", self.algorithm),
            None => write!(f, "{}", self.algorithm),
        }
    }
}

impl FromStr for KeySpec {
    type Err = KeyAlgorithmError;

    /// Reads the compact form used by annotations and CSI attributes: an algorithm name,
    /// optionally followed by `-<size>` (`ECDSA`, `ecdsa-384`, `Ed25519`, `RSA-3072`).
    /// The size is checked by [`KeySpec::validate`], not here.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let error = || KeyAlgorithmError {
            value: input.to_owned(),
        };
        let (name, size) = match input.split_once('-') {
            Some((name, size)) => (name, Some(size.parse::<u32>().map_err(|_| error())?)),
            None => (input, None),
        };
        let algorithm = name.parse().map_err(|_| error())?;
        Ok(KeySpec { algorithm, size })
    }
}

/// How a private key is encoded in PEM: `PKCS8` (default), `PKCS1` (RSA only) or `SEC1`
/// (ECDSA only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum KeyEncoding {
    /// PKCS #8 (`BEGIN PRIVATE KEY`): works for every algorithm. The default.
    #[default]
    #[serde(rename = "PKCS8")]
    Pkcs8,
    /// PKCS #1 (`BEGIN RSA PRIVATE KEY`): RSA keys only.
    #[serde(rename = "PKCS1")]
    Pkcs1,
    /// SEC 1 (`BEGIN EC PRIVATE KEY`): ECDSA keys only.
    #[serde(rename = "SEC1")]
    Sec1,
}

impl KeyEncoding {
    /// Every encoding.
    pub const ALL: [KeyEncoding; 3] = [KeyEncoding::Pkcs8, KeyEncoding::Pkcs1, KeyEncoding::Sec1];

    /// The name used in the API (`PKCS8`, `PKCS1`, `SEC1`).
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyEncoding::Pkcs8 => "PKCS8",
            KeyEncoding::Pkcs1 => "PKCS1",
            KeyEncoding::Sec1 => "SEC1",
        }
    }

    /// Whether this encoding can hold a key of `algorithm`.
    pub const fn supports(self, algorithm: KeyAlgorithm) -> bool {
        match self {
            KeyEncoding::Pkcs8 => true,
            KeyEncoding::Pkcs1 => matches!(algorithm, KeyAlgorithm::Rsa),
            KeyEncoding::Sec1 => matches!(algorithm, KeyAlgorithm::Ecdsa),
        }
    }

    /// Fails when this encoding cannot hold a key of `algorithm`.
    pub fn validate(self, field: &str, algorithm: KeyAlgorithm) -> Result<(), ValidationError> {
        if self.supports(algorithm) {
            return Ok(());
        }
        Err(ValidationError::KeyEncoding {
            field: field.to_owned(),
            encoding: self,
            algorithm,
            allowed: match algorithm {
                KeyAlgorithm::Ecdsa => "use PKCS8 or SEC1",
                KeyAlgorithm::Ed25519 => "use PKCS8",
                KeyAlgorithm::Rsa => "use PKCS8 or PKCS1",
            },
        })
    }
}

impl fmt::Display for KeyEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The value is not `PKCS8`, `PKCS1` or `SEC1`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a key encoding (use PKCS8, PKCS1 or SEC1)")]
pub struct KeyEncodingError {
    /// The rejected input.
    pub value: String,
}

impl FromStr for KeyEncoding {
    type Err = KeyEncodingError;

    /// Case-insensitive: `pkcs8`, `PKCS1`, `sec1` ...
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        KeyEncoding::ALL
            .into_iter()
            .find(|enc| enc.as_str().eq_ignore_ascii_case(input))
            .ok_or_else(|| KeyEncodingError {
                value: input.to_owned(),
            })
    }
}

/// Distinguished-name fields of a certificate subject, other than the common name. Each is a
/// list because X.509 allows a field to repeat.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DistinguishedName {
    /// Organization (O) values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub organization: Vec<String>,
    /// Organizational unit (OU) values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub organizational_unit: Vec<String>,
    /// Country (C) values: two-letter ISO 3166 codes such as `DE` or `US`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub country: Vec<String>,
    /// State or province (ST) values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub province: Vec<String>,
    /// Locality or city (L) values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locality: Vec<String>,
}

impl DistinguishedName {
    /// Checks that no value is empty and countries are two-letter codes; `field` is the path
    /// of the object (e.g. `spec.subject`).
    pub fn validate(&self, field: &str) -> Result<(), ValidationError> {
        for (name, values) in [
            ("organization", &self.organization),
            ("organizationalUnit", &self.organizational_unit),
            ("country", &self.country),
            ("province", &self.province),
            ("locality", &self.locality),
        ] {
            for (i, value) in values.iter().enumerate() {
                require(&format!("{field}.{name}[{i}]"), value)?;
            }
        }
        for (i, country) in self.country.iter().enumerate() {
            if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(ValidationError::invalid(
                    format!("{field}.country[{i}]"),
                    country,
                    "is not a two-letter upper-case ISO 3166 country code (e.g. DE, US)",
                ));
            }
        }
        Ok(())
    }
}

/// A reference to another cluster-scoped tlsmint object by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct NameReference {
    /// Name of the referenced object.
    pub name: String,
}

impl NameReference {
    /// A reference to `name`.
    pub fn new(name: impl Into<String>) -> Self {
        NameReference { name: name.into() }
    }

    /// Checks that the name is a valid Kubernetes name; `field` is the reference's path.
    pub fn validate(&self, field: &str) -> Result<(), ValidationError> {
        object_name(&format!("{field}.name"), &self.name)
    }
}

/// A reference to a Secret in the operator's namespace (the one it runs in, usually
/// `tlsmint-system`). Keeping every CA Secret there means the operator needs no access to
/// Secrets in other namespaces for its CAs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct SecretReference {
    /// Name of the Secret, in the operator's namespace.
    pub name: String,
}

impl SecretReference {
    /// A reference to the Secret `name`.
    pub fn new(name: impl Into<String>) -> Self {
        SecretReference { name: name.into() }
    }

    /// Checks that the name is a valid Kubernetes name; `field` is the reference's path.
    pub fn validate(&self, field: &str) -> Result<(), ValidationError> {
        object_name(&format!("{field}.name"), &self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_sizes_are_checked_per_algorithm() {
        let ok = [
            (KeyAlgorithm::Ecdsa, None),
            (KeyAlgorithm::Ecdsa, Some(256)),
            (KeyAlgorithm::Ecdsa, Some(384)),
            (KeyAlgorithm::Rsa, None),
            (KeyAlgorithm::Rsa, Some(2048)),
            (KeyAlgorithm::Rsa, Some(3072)),
            (KeyAlgorithm::Rsa, Some(4096)),
            (KeyAlgorithm::Ed25519, None),
        ];
        for (algorithm, size) in ok {
            assert_eq!(KeySpec { algorithm, size }.validate("spec.key"), Ok(()));
        }
        let bad = [
            (KeyAlgorithm::Ecdsa, 521),
            (KeyAlgorithm::Ecdsa, 2048),
            (KeyAlgorithm::Rsa, 1024),
            (KeyAlgorithm::Rsa, 256),
            (KeyAlgorithm::Rsa, 8192),
            (KeyAlgorithm::Ed25519, 256),
        ];
        for (algorithm, size) in bad {
            let err = KeySpec {
                algorithm,
                size: Some(size),
            }
            .validate("spec.key")
            .unwrap_err();
            assert_eq!(err.field(), "spec.key.size");
        }
    }

    #[test]
    fn key_size_error_says_what_to_use() {
        let err = KeySpec {
            algorithm: KeyAlgorithm::Rsa,
            size: Some(1024),
        }
        .validate("spec.privateKey")
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "spec.privateKey.size: 1024 is not a valid key size for RSA (use 2048, 3072 or 4096)"
        );
    }

    #[test]
    fn key_defaults_to_ecdsa_p256() {
        assert_eq!(KeySpec::default(), KeySpec::DEFAULT);
        assert_eq!(KeySpec::default().algorithm, KeyAlgorithm::Ecdsa);
        assert_eq!(KeySpec::default().effective_size(), Some(256));
        assert_eq!(KeySpec::new(KeyAlgorithm::Rsa).effective_size(), Some(2048));
        assert_eq!(KeySpec::new(KeyAlgorithm::Ed25519).effective_size(), None);
        assert_eq!(KeyEncoding::default(), KeyEncoding::Pkcs8);
    }

    #[test]
    fn key_spec_parses_compact_form() {
        let table = [
            ("ECDSA", KeyAlgorithm::Ecdsa, None),
            ("ecdsa-384", KeyAlgorithm::Ecdsa, Some(384)),
            ("Ed25519", KeyAlgorithm::Ed25519, None),
            ("RSA-4096", KeyAlgorithm::Rsa, Some(4096)),
            ("rsa", KeyAlgorithm::Rsa, None),
        ];
        for (input, algorithm, size) in table {
            let spec: KeySpec = input.parse().unwrap();
            assert_eq!(spec, KeySpec { algorithm, size }, "{input}");
        }
        for bad in ["", "DSA", "ECDSA-", "ECDSA-abc", "RSA 2048", "P-256"] {
            assert!(bad.parse::<KeySpec>().is_err(), "{bad}");
        }
        let spec = KeySpec {
            algorithm: KeyAlgorithm::Ecdsa,
            size: Some(384),
        };
        assert_eq!(spec.to_string().parse::<KeySpec>(), Ok(spec));
    }

    #[test]
    fn key_encodings_match_algorithms() {
        use KeyAlgorithm::*;
        use KeyEncoding::*;
        for (enc, alg, ok) in [
            (Pkcs8, Ecdsa, true),
            (Pkcs8, Ed25519, true),
            (Pkcs8, Rsa, true),
            (Pkcs1, Rsa, true),
            (Pkcs1, Ecdsa, false),
            (Pkcs1, Ed25519, false),
            (Sec1, Ecdsa, true),
            (Sec1, Rsa, false),
            (Sec1, Ed25519, false),
        ] {
            assert_eq!(enc.validate("f", alg).is_ok(), ok, "{enc} {alg}");
        }
        assert_eq!("sec1".parse(), Ok(Sec1));
        assert!("DER".parse::<KeyEncoding>().is_err());
    }

    #[test]
    fn distinguished_name_checks_countries_and_empty_values() {
        let mut dn = DistinguishedName {
            country: vec!["DE".into()],
            organization: vec!["Example".into()],
            ..Default::default()
        };
        assert_eq!(dn.validate("spec.subject"), Ok(()));
        dn.country = vec!["Germany".into()];
        assert_eq!(
            dn.validate("spec.subject").unwrap_err().field(),
            "spec.subject.country[0]"
        );
        dn.country.clear();
        dn.locality = vec![" ".into()];
        assert_eq!(
            dn.validate("spec.subject").unwrap_err(),
            ValidationError::Required {
                field: "spec.subject.locality[0]".into()
            }
        );
    }

    #[test]
    fn references_need_kubernetes_names() {
        assert_eq!(NameReference::new("pki").validate("spec.mountRef"), Ok(()));
        assert_eq!(
            NameReference::new("")
                .validate("spec.mountRef")
                .unwrap_err()
                .field(),
            "spec.mountRef.name"
        );
        assert!(SecretReference::new("Bad_Name").validate("x").is_err());
    }
}
