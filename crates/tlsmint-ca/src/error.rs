//! The engine's error type: one variant per failing step, each with a message a
//! person can act on. Messages never carry key material or tokens.

use crate::policy::PolicyError;

/// Everything that can go wrong inside the CA engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The system random source or the crypto backend failed to make a key.
    #[error("generating a {algorithm} key failed: {reason}")]
    KeyGeneration {
        /// The key that was asked for, e.g. `ECDSA P-256`.
        algorithm: String,
        /// What the backend said.
        reason: String,
    },
    /// A key size that does not exist for the algorithm.
    #[error("unsupported key: {0}")]
    UnsupportedKey(String),
    /// A private key could not be read. The key itself is never quoted.
    #[error("reading the private key failed: {0}")]
    KeyParse(String),
    /// A private key could not be written in the requested encoding.
    #[error("encoding the private key as {encoding} failed: {reason}")]
    KeyEncode {
        /// The requested encoding (`PKCS8`, `PKCS1`, `SEC1`).
        encoding: &'static str,
        /// Why not, e.g. `PKCS1 holds only RSA keys`.
        reason: String,
    },
    /// PEM input could not be decoded.
    #[error("reading {what} PEM failed: {reason}")]
    Pem {
        /// What was expected, e.g. `certificate`.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// A certificate could not be parsed.
    #[error("parsing the {what} certificate failed: {reason}")]
    CertificateParse {
        /// Which certificate, e.g. `CA`, `signed intermediate`.
        what: &'static str,
        /// What the parser said.
        reason: String,
    },
    /// A certificate does not hold the public key of the private key it is paired with.
    #[error("the {what} certificate does not match its private key (public keys differ)")]
    KeyMismatch {
        /// Which certificate, e.g. `imported CA`.
        what: &'static str,
    },
    /// A certificate offered as a CA is not one.
    #[error("the {what} certificate is not a CA certificate: {reason}")]
    NotCa {
        /// Which certificate.
        what: &'static str,
        /// What is missing (basic constraints, key usage).
        reason: String,
    },
    /// A signed intermediate certificate was not signed by the chain offered with it.
    #[error("the {what} certificate chain does not verify: {reason}")]
    ChainInvalid {
        /// Which chain.
        what: &'static str,
        /// Why it does not verify.
        reason: String,
    },
    /// The CSR is larger than the engine accepts.
    #[error("CSR is {size} bytes; the limit is {max} bytes")]
    CsrTooLarge {
        /// Size of the offered input.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The CSR is not a well-formed PKCS#10 request.
    #[error("CSR is malformed: {0}")]
    CsrMalformed(String),
    /// The CSR's self-signature does not verify: no proof of possession.
    #[error("CSR signature does not verify: {0} (the CSR must be signed by the key it carries)")]
    CsrSignature(String),
    /// The CSR asks for a CA certificate.
    #[error(
        "CSR requests a CA certificate (basicConstraints CA:TRUE); tlsmint signs only leaf certificates"
    )]
    CsrRequestsCa,
    /// The CSR carries a critical extension the engine does not understand.
    #[error("CSR carries critical extension {oid}, which tlsmint does not understand")]
    CsrCriticalExtension {
        /// Dotted OID of the extension.
        oid: String,
    },
    /// The CSR's key type or size is not allowed by the role.
    #[error("CSR key {found} is not allowed by role \"{role}\": the role allows {allowed}")]
    CsrKeyNotAllowed {
        /// Role name.
        role: String,
        /// Key found in the CSR.
        found: String,
        /// What the role allows.
        allowed: String,
    },
    /// A name is outside the role's policy.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A TTL that cannot be used.
    #[error("invalid ttl: {0}")]
    InvalidTtl(String),
    /// The CA is not (or no longer, or not yet) valid.
    #[error(
        "CA \"{ca}\" is not valid now (valid from {not_before} until {not_after}); it cannot issue"
    )]
    CaNotValid {
        /// CA (mount) name.
        ca: String,
        /// Start of its validity, RFC 3339.
        not_before: String,
        /// End of its validity, RFC 3339.
        not_after: String,
    },
    /// The leaf would outlive its CA and the mount says `Error`.
    #[error(
        "certificate would expire at {leaf_not_after}, after CA \"{ca}\" expires at {ca_not_after}; \
         request a shorter ttl or set the mount's leafNotAfterBehavior to Truncate"
    )]
    LeafOutlivesCa {
        /// CA (mount) name.
        ca: String,
        /// Requested leaf notAfter, RFC 3339.
        leaf_not_after: String,
        /// CA notAfter, RFC 3339.
        ca_not_after: String,
    },
    /// The crypto backend failed while building or signing a certificate.
    #[error("signing the {what} failed: {reason}")]
    Signing {
        /// What was being signed (`certificate`, `CRL`, `CSR`).
        what: &'static str,
        /// What the backend said.
        reason: String,
    },
    /// A configuration value (URL, subject field) the engine cannot encode.
    #[error("invalid {field}: {reason}")]
    InvalidConfig {
        /// The field, e.g. `urls.ocspServers`.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

/// Shorthand for results of the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn signing(what: &'static str, err: impl std::fmt::Display) -> Self {
        Error::Signing {
            what,
            reason: err.to_string(),
        }
    }
}
