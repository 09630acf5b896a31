//! The API's error: one variant per answer a caller can get, each mapped to
//! a gRPC code (SPEC §5) and a Vault HTTP status, plus a bounded label for
//! metrics and the audit line.
//!
//! Owns: the mapping from engine and lookup errors to codes. Must not: put a
//! token or key into a message (engine and policy messages never carry them).

use tlsmint_ca::ErrorClass;

use crate::registry::LookupError;

/// What went wrong, as the caller sees it. The text is shown to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Missing, bad, expired or wrong-audience token.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller may not do this: not in the role's subjects, no right to revoke.
    #[error("{0}")]
    PermissionDenied(String),
    /// The request asks for something the role's policy does not allow (a name, a
    /// TTL, a key type). gRPC `PermissionDenied` (SPEC §5); HTTP 400 as Vault answers
    /// it, which clients written for Vault depend on (hvac's `InvalidRequest`).
    #[error("{0}")]
    PolicyDenied(String),
    /// Malformed CSR, bad signature, bad TTL, bad name syntax, bad body.
    #[error("{0}")]
    InvalidArgument(String),
    /// Unknown mount, path or certificate.
    #[error("{0}")]
    NotFound(String),
    /// Unknown role: gRPC `NotFound`; HTTP 400, as Vault answers `unknown role` (a
    /// mount path that exists, with a role it does not have).
    #[error("{0}")]
    UnknownRole(String),
    /// The mount or the role is not ready.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The caller's ServiceAccount is over its rate limit; it may retry after
    /// the delay (HTTP `Retry-After`, gRPC `retry-after` metadata).
    #[error("{0}")]
    ResourceExhausted(String, std::time::Duration),
    /// A dependency (the API server's TokenReview, the revocation store) is down.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or a crypto backend failure.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// A bounded label (metrics, audit).
    pub fn label(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated(_) => "unauthenticated",
            ApiError::PermissionDenied(_) | ApiError::PolicyDenied(_) => "permission_denied",
            ApiError::InvalidArgument(_) => "invalid_argument",
            ApiError::NotFound(_) | ApiError::UnknownRole(_) => "not_found",
            ApiError::FailedPrecondition(_) => "failed_precondition",
            ApiError::ResourceExhausted(..) => "resource_exhausted",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The HTTP status the Vault-compatible API answers with (Vault's choices:
    /// 400 bad input, a request outside the role's policy or an unknown role; 403
    /// only for a bad token or a caller without the right; 404 unknown path or
    /// certificate, 429 rate limited, 503 not ready or unavailable, 500 otherwise).
    pub fn http_status(&self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            ApiError::Unauthenticated(_) | ApiError::PermissionDenied(_) => S::FORBIDDEN,
            ApiError::InvalidArgument(_) | ApiError::PolicyDenied(_) | ApiError::UnknownRole(_) => {
                S::BAD_REQUEST
            }
            ApiError::NotFound(_) => S::NOT_FOUND,
            ApiError::FailedPrecondition(_) | ApiError::Unavailable(_) => S::SERVICE_UNAVAILABLE,
            ApiError::ResourceExhausted(..) => S::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => S::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message alone.
    pub fn message(&self) -> &str {
        match self {
            ApiError::Unauthenticated(m)
            | ApiError::PermissionDenied(m)
            | ApiError::PolicyDenied(m)
            | ApiError::InvalidArgument(m)
            | ApiError::NotFound(m)
            | ApiError::UnknownRole(m)
            | ApiError::FailedPrecondition(m)
            | ApiError::ResourceExhausted(m, _)
            | ApiError::Unavailable(m)
            | ApiError::Internal(m) => m,
        }
    }

    /// How long a rate-limited caller should wait, in whole seconds rounded
    /// up (at least 1): the value of `Retry-After`.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            ApiError::ResourceExhausted(_, wait) => {
                Some(wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).map(|s| s.max(1))
            }
            _ => None,
        }
    }
}

impl From<ApiError> for tonic::Status {
    fn from(err: ApiError) -> Self {
        use tonic::Code;
        let code = match &err {
            ApiError::Unauthenticated(_) => Code::Unauthenticated,
            ApiError::PermissionDenied(_) | ApiError::PolicyDenied(_) => Code::PermissionDenied,
            ApiError::InvalidArgument(_) => Code::InvalidArgument,
            ApiError::NotFound(_) | ApiError::UnknownRole(_) => Code::NotFound,
            ApiError::FailedPrecondition(_) => Code::FailedPrecondition,
            ApiError::ResourceExhausted(..) => Code::ResourceExhausted,
            ApiError::Unavailable(_) => Code::Unavailable,
            ApiError::Internal(_) => Code::Internal,
        };
        let mut status = tonic::Status::new(code, err.message());
        if let ApiError::ResourceExhausted(_, wait) = &err {
            let md = status.metadata_mut();
            if let Some(secs) = err.retry_after_secs() {
                md.insert("retry-after", secs.into());
            }
            let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
            md.insert("retry-after-ms", ms.into());
        }
        status
    }
}

impl From<LookupError> for ApiError {
    fn from(err: LookupError) -> Self {
        let text = err.to_string();
        match err {
            LookupError::RoleNotFound { .. } => ApiError::UnknownRole(text),
            LookupError::MountNotFound(_) => ApiError::NotFound(text),
            LookupError::RoleNotReady { .. } | LookupError::MountNotReady { .. } => {
                ApiError::FailedPrecondition(text)
            }
        }
    }
}

impl From<tlsmint_ca::Error> for ApiError {
    fn from(err: tlsmint_ca::Error) -> Self {
        let text = err.report();
        match err.class() {
            ErrorClass::InvalidInput => ApiError::InvalidArgument(text),
            ErrorClass::Denied => ApiError::PolicyDenied(text),
            ErrorClass::Misconfigured | ErrorClass::NotReady => ApiError::FailedPrecondition(text),
            ErrorClass::Internal => ApiError::Internal(text),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn lookup_errors_map_to_not_found_and_failed_precondition() {
        let nf: ApiError = LookupError::MountNotFound("x".into()).into();
        assert_eq!(nf.http_status(), http::StatusCode::NOT_FOUND);
        assert_eq!(tonic::Status::from(nf).code(), tonic::Code::NotFound);
        // An unknown role: gRPC NotFound, and Vault's 400 "unknown role" over HTTP.
        let role: ApiError = LookupError::RoleNotFound {
            role: "nope".into(),
            mount: Some("pki_int".into()),
        }
        .into();
        assert_eq!(role.http_status(), http::StatusCode::BAD_REQUEST);
        assert_eq!(role.label(), "not_found");
        assert_eq!(tonic::Status::from(role).code(), tonic::Code::NotFound);
        // Not being among the role's subjects is an authorization problem: 403.
        let who = ApiError::PermissionDenied("service account a/b is not a subject".into());
        assert_eq!(who.http_status(), http::StatusCode::FORBIDDEN);
        let fp: ApiError = LookupError::MountNotReady {
            mount: "x".into(),
            reason: crate::registry::NotReady::new("KeyMissing", "the key Secret is gone"),
        }
        .into();
        assert_eq!(fp.http_status(), http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            tonic::Status::from(fp).code(),
            tonic::Code::FailedPrecondition
        );
    }

    #[test]
    fn rate_limited_answers_carry_the_retry_delay() {
        let err = ApiError::ResourceExhausted("slow down".into(), Duration::from_millis(1500));
        assert_eq!(err.retry_after_secs(), Some(2));
        let tiny = ApiError::ResourceExhausted("x".into(), Duration::from_micros(10));
        assert_eq!(tiny.retry_after_secs(), Some(1));
        let status = tonic::Status::from(err);
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(status.metadata().get("retry-after").unwrap(), "2");
        assert_eq!(status.metadata().get("retry-after-ms").unwrap(), "1500");
        assert_eq!(ApiError::Internal("x".into()).retry_after_secs(), None);
    }

    #[test]
    fn engine_errors_map_by_kind() {
        let bad: ApiError = tlsmint_ca::Error::CsrSignature("x".into()).into();
        assert_eq!(bad.label(), "invalid_argument");
        let denied: ApiError = tlsmint_ca::Error::Policy(tlsmint_ca::PolicyError::NameNotAllowed {
            role: "r".into(),
            kind: tlsmint_ca::policy::NameKind::DnsName,
            value: "evil.com".into(),
            rules: "subdomains of example.com".into(),
        })
        .into();
        assert_eq!(denied.label(), "permission_denied");
        assert!(denied.message().contains("evil.com"));
        // Vault answers a request outside the role's policy with 400; gRPC keeps its code.
        assert_eq!(denied.http_status(), http::StatusCode::BAD_REQUEST);
        assert_eq!(
            tonic::Status::from(denied).code(),
            tonic::Code::PermissionDenied
        );
    }

    #[test]
    fn every_engine_class_has_its_code_and_status() {
        use tlsmint_ca::Error as E;
        let cases = [
            (E::CsrRequestsCa, tonic::Code::InvalidArgument, 400),
            (
                E::CaNotValid {
                    ca: "c".into(),
                    not_before: "a".into(),
                    not_after: "b".into(),
                },
                tonic::Code::FailedPrecondition,
                503,
            ),
            (
                E::Signing {
                    what: "CRL",
                    reason: "boom".into(),
                },
                tonic::Code::Internal,
                500,
            ),
        ];
        for (err, code, status) in cases {
            let api = ApiError::from(err);
            assert_eq!(api.http_status().as_u16(), status, "{api}");
            assert_eq!(tonic::Status::from(api).code(), code);
        }
        let pem = tlsmint_ca::pem::decode_csr(
            "-----BEGIN CERTIFICATE REQUEST-----\n!!\n-----END CERTIFICATE REQUEST-----\n",
        )
        .unwrap_err();
        let api = ApiError::from(pem);
        assert_eq!(api.http_status(), http::StatusCode::BAD_REQUEST);
        assert!(api.message().contains("Invalid symbol"), "{api}");
    }
}
