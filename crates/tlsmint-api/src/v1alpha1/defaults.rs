//! Every default of the v1alpha1 kinds, in one place, as constants and as the functions serde
//! and the generated CRD schema use.
//!
//! Owns the values only. The doc comments on the fields repeat them for `kubectl explain`;
//! `tests::docs_match_defaults` in the kinds' modules keeps both in step.

use super::common::{KeyEncoding, KeySpec};
use crate::{Duration, Fraction};

/// Default lifetime of a root CA certificate (`PkiMount.spec.ttl`): 87600h, ten years.
pub const ROOT_TTL: Duration = Duration::from_hours(87600);
/// Default lifetime of an intermediate CA certificate (`PkiMount.spec.ttl`): 43800h, five years.
pub const INTERMEDIATE_TTL: Duration = Duration::from_hours(43800);
/// Default validity of each CRL a mount publishes (`PkiMount.spec.crl.expiry`): 72h, as Vault.
pub const CRL_EXPIRY: Duration = Duration::from_hours(72);

/// Default lifetime of a leaf issued through a role (`IssuerRole.spec.ttl`): 1h.
pub const ROLE_TTL: Duration = Duration::from_hours(1);
/// Default ceiling of a leaf's lifetime through a role (`IssuerRole.spec.maxTTL`): 24h.
pub const ROLE_MAX_TTL: Duration = Duration::from_hours(24);
/// Default back-dating of a leaf's notBefore (`IssuerRole.spec.notBeforeDuration`): 30s, as Vault.
pub const NOT_BEFORE_DURATION: Duration = Duration::from_secs(30);
/// Default of `IssuerRole.spec.serverFlag`: true (serverAuth extended key usage).
pub const SERVER_FLAG: bool = true;
/// Default of `IssuerRole.spec.clientFlag`: true (clientAuth extended key usage).
pub const CLIENT_FLAG: bool = true;
/// Default of `IssuerRole.spec.enforceHostnames`: true.
pub const ENFORCE_HOSTNAMES: bool = true;
/// Default of `IssuerRole.spec.allowWildcardCertificates`: false (Vault's default is true).
pub const ALLOW_WILDCARD_CERTIFICATES: bool = false;
/// Default of `IssuerRole.spec.allowLocalhost`: false (Vault's default is true).
pub const ALLOW_LOCALHOST: bool = false;
/// Default of `IssuerRole.spec.allowIPSANs`: false (Vault's default is true).
pub const ALLOW_IP_SANS: bool = false;
/// Default of `IssuerRole.spec.requireCommonName`: false (Vault's default is true).
pub const REQUIRE_COMMON_NAME: bool = false;

/// Default key of a mount, a role and a request: ECDSA P-256.
pub const KEY: KeySpec = KeySpec::DEFAULT;
/// Default private-key encoding (`CertificateRequest.spec.privateKey.encoding`): PKCS8.
pub const KEY_ENCODING: KeyEncoding = KeyEncoding::Pkcs8;
/// Default share of the lifetime after which a certificate is renewed: 0.5.
pub const RENEW_AT: Fraction = Fraction::HALF;

/// Default of `PkiMount.spec.rotation.prepareAt`: 0.5 (SPIRE's schedule).
pub const ROTATION_PREPARE_AT: Fraction = Fraction::HALF;
/// Default of `PkiMount.spec.rotation.activateAt`: 0.8333, five sixths (SPIRE's schedule).
pub const ROTATION_ACTIVATE_AT: Fraction = Fraction::FIVE_SIXTHS;
/// Default of `PkiMount.spec.rotation.rekey`: true (a new key on every rotation).
pub const ROTATION_REKEY: bool = true;
/// Default of `PkiMount.spec.rotation.propagationDelay`: 5m.
pub const ROTATION_PROPAGATION_DELAY: Duration = Duration::from_secs(300);

pub(crate) fn rotation_prepare_at() -> Fraction {
    ROTATION_PREPARE_AT
}

pub(crate) fn rotation_activate_at() -> Fraction {
    ROTATION_ACTIVATE_AT
}

pub(crate) fn rotation_rekey() -> bool {
    ROTATION_REKEY
}

pub(crate) fn rotation_propagation_delay() -> Duration {
    ROTATION_PROPAGATION_DELAY
}

pub(crate) fn crl_expiry() -> Duration {
    CRL_EXPIRY
}

pub(crate) fn role_ttl() -> Duration {
    ROLE_TTL
}

pub(crate) fn role_max_ttl() -> Duration {
    ROLE_MAX_TTL
}

pub(crate) fn not_before_duration() -> Duration {
    NOT_BEFORE_DURATION
}

pub(crate) fn renew_at() -> Fraction {
    RENEW_AT
}

pub(crate) fn server_flag() -> bool {
    SERVER_FLAG
}

pub(crate) fn client_flag() -> bool {
    CLIENT_FLAG
}

pub(crate) fn enforce_hostnames() -> bool {
    ENFORCE_HOSTNAMES
}

pub(crate) fn allow_wildcard_certificates() -> bool {
    ALLOW_WILDCARD_CERTIFICATES
}

pub(crate) fn allow_localhost() -> bool {
    ALLOW_LOCALHOST
}

pub(crate) fn allow_ip_sans() -> bool {
    ALLOW_IP_SANS
}

pub(crate) fn require_common_name() -> bool {
    REQUIRE_COMMON_NAME
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1alpha1::KeyAlgorithm;

    #[test]
    fn default_values_are_the_documented_ones() {
        assert_eq!(ROOT_TTL.to_string(), "87600h");
        assert_eq!(INTERMEDIATE_TTL.to_string(), "43800h");
        assert_eq!(CRL_EXPIRY.to_string(), "72h");
        assert_eq!(ROLE_TTL.to_string(), "1h");
        assert_eq!(ROLE_MAX_TTL.to_string(), "24h");
        assert_eq!(NOT_BEFORE_DURATION.to_string(), "30s");
        assert_eq!(RENEW_AT.get(), 0.5);
        assert_eq!(KEY.algorithm, KeyAlgorithm::Ecdsa);
        assert_eq!(KEY.effective_size(), Some(256));
        assert_eq!(KEY_ENCODING, KeyEncoding::Pkcs8);
        let flags = [SERVER_FLAG, CLIENT_FLAG, ENFORCE_HOSTNAMES];
        assert_eq!(flags, [true; 3]);
        let off = [
            ALLOW_WILDCARD_CERTIFICATES,
            ALLOW_LOCALHOST,
            ALLOW_IP_SANS,
            REQUIRE_COMMON_NAME,
        ];
        assert_eq!(off, [false; 4]);
    }
}
