//! The engine's error type: one variant per failing step, each with a message a
//! person can act on, and its one classification ([`Error::class`]) that every
//! caller maps to its own answer (gRPC code, HTTP status, CertificateRequest
//! reason). Messages never carry key material or tokens, and never repeat the
//! text of their `source()`: [`report`] joins the chain for a person to read.

use crate::policy::{self, PolicyError};

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
    /// PEM input holds the wrong blocks (none, too many, another label).
    #[error("reading {what} PEM failed: {reason}")]
    Pem {
        /// What was expected, e.g. `certificate`.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// PEM input is not PEM at all (bad armour, a body that is not base64).
    #[error("reading {what} PEM failed")]
    PemSyntax {
        /// What was expected, e.g. `CSR`.
        what: &'static str,
        /// What the PEM decoder said (it never quotes the input).
        #[source]
        source: pem::PemError,
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

/// What kind of failure an [`Error`] is: the one classification every caller maps
/// (exhaustively) to its own answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The request itself is malformed (CSR, PEM, TTL, name syntax, key choice):
    /// the caller must change it.
    InvalidInput,
    /// The role's policy refuses the request.
    Denied,
    /// The role or the mount is configured in a way the engine cannot use.
    Misconfigured,
    /// The CA cannot issue now (not yet or no longer valid).
    NotReady,
    /// The crypto backend failed; retrying may help.
    Internal,
}

impl ErrorClass {
    /// A bounded label (metrics, logs).
    pub fn label(self) -> &'static str {
        match self {
            ErrorClass::InvalidInput => "invalid_input",
            ErrorClass::Denied => "denied",
            ErrorClass::Misconfigured => "misconfigured",
            ErrorClass::NotReady => "not_ready",
            ErrorClass::Internal => "internal",
        }
    }
}

/// The message of `err` followed by the messages of its sources, joined by `: `,
/// for a person to read (API answers, condition messages). A source whose text the
/// previous message already ends with (some libraries repeat their cause) is skipped.
pub fn report(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let part = inner.to_string();
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = inner.source();
    }
    text
}

/// Shorthand for results of the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The one classification of this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Policy(p) => match p.class() {
                policy::ErrorClass::InvalidRequest => ErrorClass::InvalidInput,
                policy::ErrorClass::Denied => ErrorClass::Denied,
                policy::ErrorClass::RoleInvalid => ErrorClass::Misconfigured,
            },
            Error::UnsupportedKey(_)
            | Error::KeyParse(_)
            | Error::KeyEncode { .. }
            | Error::Pem { .. }
            | Error::PemSyntax { .. }
            | Error::KeyMismatch { .. }
            | Error::NotCa { .. }
            | Error::ChainInvalid { .. }
            | Error::CsrTooLarge { .. }
            | Error::CsrMalformed(_)
            | Error::CsrSignature(_)
            | Error::CsrRequestsCa
            | Error::CsrCriticalExtension { .. }
            | Error::CsrKeyNotAllowed { .. }
            | Error::InvalidTtl(_)
            | Error::LeafOutlivesCa { .. } => ErrorClass::InvalidInput,
            Error::InvalidConfig { .. } => ErrorClass::Misconfigured,
            Error::CaNotValid { .. } => ErrorClass::NotReady,
            Error::KeyGeneration { .. }
            | Error::CertificateParse { .. }
            | Error::Signing { .. } => ErrorClass::Internal,
        }
    }

    /// This error and its sources, for a person to read (see [`report`]).
    pub fn report(&self) -> String {
        report(self)
    }

    pub(crate) fn signing(what: &'static str, err: impl std::fmt::Display) -> Self {
        Error::Signing {
            what,
            reason: err.to_string(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn pem_whose_body_is_not_base64_is_invalid_input_with_its_cause_once() {
        let text = "-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n";
        let err = crate::pem::decode_csr(text).unwrap_err();
        assert_eq!(err.class(), ErrorClass::InvalidInput);
        assert!(std::error::Error::source(&err).is_some(), "{err:?}");
        let shown = err.to_string();
        let cause = std::error::Error::source(&err).unwrap().to_string();
        assert!(!shown.contains(&cause), "{shown}");
        assert_eq!(err.report(), format!("{shown}: {cause}"));
        assert_eq!(
            err.report().matches("Invalid symbol").count(),
            1,
            "{}",
            err.report()
        );
    }

    #[test]
    fn an_expired_ca_is_not_ready_and_a_backend_failure_internal() {
        let expired = Error::CaNotValid {
            ca: "x".into(),
            not_before: "a".into(),
            not_after: "b".into(),
        };
        assert_eq!(expired.class(), ErrorClass::NotReady);
        assert_eq!(Error::signing("CRL", "boom").class(), ErrorClass::Internal);
        assert_eq!(Error::CsrRequestsCa.class(), ErrorClass::InvalidInput);
    }
}
