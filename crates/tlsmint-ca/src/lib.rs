//! tlsmint's CA engine: keys, CA generation, name policy, issue and sign, CRL
//! and PEM. It knows nothing of Kubernetes or the network: the operator turns
//! an `IssuerRole` into a [`Role`] at its edge and passes the verified caller
//! as an [`Identity`].
//!
//! Every operation that may take long (RSA key generation) is a plain
//! blocking function, documented as such; async callers run it on a blocking
//! pool. Time is always passed in (`now`), so lifetimes are testable.
//!
//! ```text
//!  IssueRequest / SignRequest
//!        |
//!   Policy::check ── names normalised and validated once
//!        |
//!   leaf_window ──── ttl clamped to maxTTL, back-dated, checked against the CA
//!        |
//!   build_leaf ───── serial, CA:FALSE, KU/EKU, SKI/AKI, AIA/CRL DP, signed
//! ```

pub mod ca;
pub mod crl;
pub mod csr;
pub mod der;
pub mod error;
pub mod key;
pub mod leaf;
pub mod ocsp;
pub mod pem;
pub mod policy;
pub mod request;
pub mod serial;
pub mod subject;
pub mod validity;
pub mod x509;

pub use ca::{CaChain, CaConfig, CertificateAuthority, MountOptions, PendingIntermediate};
pub use crl::{Crl, RevokedEntry};
pub use error::{Error, ErrorClass, Result, report};
pub use key::{ExposeSecret, KeyAlgorithm, KeyEncoding, KeySpec, PrivateKey, SecretString};
pub use leaf::{
    CsrKeyRule, ExtKeyUsage, IssueRequest, Issued, KeyUsage, LeafProfile, Role, SignRequest,
};
pub use policy::{Identity, NameRequest, Policy, PolicyError, ValidatedNames};
pub use serial::Serial;
pub use subject::{Subject, Urls};
pub use validity::{LeafNotAfterBehavior, Lifetimes};
