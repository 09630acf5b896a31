//! The issuance API's own Prometheus metrics (prefix `tlsmint_api_`), served on the
//! admin port with the operator's: requests by API, endpoint, role and result class, a
//! latency histogram per endpoint, rate-limited answers, and the TokenReview cache.
//!
//! Owns metric names and label sets. Labels are bounded: `api` (2 values), `endpoint`
//! (a fixed list), `result` ([`ApiError::label`] or `ok`), and `role` only when the
//! registry knows the role (IssuerRoles are admin-created); a role name a caller made up
//! is counted as `role=""`, so no request can create a series of its own. Never label
//! with error text, names or tokens.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::error::ApiError;
use crate::registry::Registry as IssuanceRegistry;

/// Which API answered.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Api {
    /// `tlsmint.v1.Issuer`.
    Grpc,
    /// The Vault-compatible HTTP API.
    Http,
}

impl Api {
    fn label(self) -> &'static str {
        match self {
            Api::Grpc => "grpc",
            Api::Http => "http",
        }
    }
}

/// What was asked: the `endpoint` label.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Endpoint {
    /// Issue (a key made by the server).
    Issue,
    /// Sign (a CSR).
    Sign,
    /// `auth/kubernetes/login`.
    Login,
    /// `auth/token/lookup-self`, `auth/token/lookup`.
    Token,
    /// Inventory and setup: `sys/mounts`, roles, config, certs, issuers.
    Admin,
    /// Revocation, by serial or with the key.
    Revoke,
    /// The CRL, DER or PEM.
    Crl,
    /// OCSP, GET or POST.
    Ocsp,
    /// CA certificate and chain reads (`ca`, `ca/pem`, `ca_chain`, `GetCaBundle`).
    Ca,
    /// `cert/<serial>`.
    Cert,
    /// `CheckPolicy` (the injector's admission-time dry run).
    CheckPolicy,
    /// `sys/health`.
    Health,
    /// Anything else (unknown routes and methods, refused bodies).
    Other,
}

impl Endpoint {
    fn label(self) -> &'static str {
        match self {
            Endpoint::Issue => "issue",
            Endpoint::Sign => "sign",
            Endpoint::Login => "login",
            Endpoint::Token => "token",
            Endpoint::Admin => "admin",
            Endpoint::Revoke => "revoke",
            Endpoint::Crl => "crl",
            Endpoint::Ocsp => "ocsp",
            Endpoint::Ca => "ca",
            Endpoint::Cert => "cert",
            Endpoint::CheckPolicy => "check_policy",
            Endpoint::Health => "health",
            Endpoint::Other => "other",
        }
    }
}

/// The result class of an answer: `ok` or one of [`ApiError::label`]'s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResultClass(pub &'static str);

impl ResultClass {
    /// A successful answer.
    pub const OK: ResultClass = ResultClass("ok");
    /// A caller over its rate limit ([`ApiError::ResourceExhausted`]).
    pub const RATE_LIMITED: ResultClass = ResultClass("resource_exhausted");

    /// The class of an API error.
    pub fn of(err: &ApiError) -> Self {
        ResultClass(err.label())
    }

    /// The class of a gRPC answer's code (the codes [`ApiError`] maps to, one to one).
    pub fn of_code(code: tonic::Code) -> Self {
        use tonic::Code as C;
        ResultClass(match code {
            C::Ok => "ok",
            C::Unauthenticated => "unauthenticated",
            C::PermissionDenied => "permission_denied",
            C::InvalidArgument | C::OutOfRange => "invalid_argument",
            C::NotFound => "not_found",
            C::FailedPrecondition => "failed_precondition",
            C::ResourceExhausted => "resource_exhausted",
            C::Unavailable | C::DeadlineExceeded | C::Cancelled | C::Aborted => "unavailable",
            _ => "internal",
        })
    }

    /// The class of an HTTP answer that was not built from an [`ApiError`] (those carry
    /// their class in the response's extensions): by status.
    pub fn of_status(status: http::StatusCode) -> Self {
        ResultClass(match status.as_u16() {
            200..=399 => "ok",
            401 => "unauthenticated",
            403 => "permission_denied",
            404 => "not_found",
            429 => "resource_exhausted",
            400..=499 => "invalid_argument",
            503 => "unavailable",
            _ => "internal",
        })
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    api: &'static str,
    endpoint: &'static str,
    role: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    api: &'static str,
    endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    api: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    result: &'static str,
}

/// The API's counters and histograms. Cheap to update from every request.
#[derive(Debug)]
pub struct ApiMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    rate_limited: Family<ApiLabels, Counter>,
    token_cache: Family<CacheLabels, Counter>,
}

fn latency_histogram() -> Histogram {
    // 100 µs to ~1.6 s: a P-256 sign is ~0.2 ms, an RSA-4096 issue a second.
    Histogram::new(exponential_buckets(0.0001, 2.0, 15))
}

impl Default for ApiMetrics {
    fn default() -> Self {
        ApiMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(latency_histogram),
            rate_limited: Family::default(),
            token_cache: Family::default(),
        }
    }
}

impl ApiMetrics {
    /// Metrics that are counted but not exported (tests, in-process servers).
    pub fn unregistered() -> Self {
        Self::default()
    }

    /// Registers every metric in `registry` (under `tlsmint_api_`).
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        let sub = registry.sub_registry_with_prefix("tlsmint_api");
        sub.register(
            "requests",
            "Issuance API answers by API, endpoint, role (known roles only) and result class",
            metrics.requests.clone(),
        );
        sub.register(
            "request_duration_seconds",
            "Time from a request's arrival at its handler to its answer, by API and endpoint",
            metrics.duration.clone(),
        );
        sub.register(
            "rate_limited",
            "Issuance requests refused because the caller's ServiceAccount was over its rate limit",
            metrics.rate_limited.clone(),
        );
        sub.register(
            "token_review_cache",
            "ServiceAccount token verifications answered from the TokenReview cache (hit) or by a TokenReview (miss)",
            metrics.token_cache.clone(),
        );
        metrics
    }

    /// Counts one answer. `role` is the role the caller named, if any; it becomes a
    /// label only when `registry` knows it.
    pub fn record(
        &self,
        registry: &IssuanceRegistry,
        api: Api,
        endpoint: Endpoint,
        role: Option<&str>,
        result: ResultClass,
        elapsed: Duration,
    ) {
        let role = match role {
            Some(name) if registry.role(name).is_some() => name.to_owned(),
            _ => String::new(),
        };
        self.requests
            .get_or_create(&RequestLabels {
                api: api.label(),
                endpoint: endpoint.label(),
                role,
                result: result.0,
            })
            .inc();
        self.duration
            .get_or_create(&EndpointLabels {
                api: api.label(),
                endpoint: endpoint.label(),
            })
            .observe(elapsed.as_secs_f64());
        if result == ResultClass::RATE_LIMITED {
            self.rate_limited
                .get_or_create(&ApiLabels { api: api.label() })
                .inc();
        }
    }

    /// Counts a token verification answered from the TokenReview cache (`true`) or not.
    pub fn token_review(&self, cache_hit: bool) {
        let result = if cache_hit { "hit" } else { "miss" };
        self.token_cache
            .get_or_create(&CacheLabels { result })
            .inc();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    fn text(registry: &Registry) -> String {
        let mut out = String::new();
        encode(&mut out, registry).unwrap();
        out
    }

    #[test]
    fn counts_by_endpoint_known_role_and_class() {
        let mut prom = Registry::default();
        let metrics = ApiMetrics::register(&mut prom);
        let roles = IssuanceRegistry::new();
        let spec = tlsmint_api::v1alpha1::IssuerRoleSpec::new("pki");
        roles.put_role(crate::registry::RoleEntry::from_spec("web", &spec));
        let ms = Duration::from_millis(1);
        for _ in 0..2 {
            metrics.record(
                &roles,
                Api::Http,
                Endpoint::Issue,
                Some("web"),
                ResultClass::OK,
                ms,
            );
        }
        // A role nobody created must not become a label value.
        let made_up = "x".repeat(40);
        let denied = ResultClass::of(&ApiError::NotFound(String::new()));
        metrics.record(
            &roles,
            Api::Grpc,
            Endpoint::Sign,
            Some(&made_up),
            denied,
            ms,
        );
        let limited = ResultClass::of_code(tonic::Code::ResourceExhausted);
        metrics.record(&roles, Api::Grpc, Endpoint::Sign, Some("web"), limited, ms);
        metrics.token_review(true);
        metrics.token_review(false);
        metrics.token_review(false);

        let out = text(&prom);
        assert!(
            out.contains(r#"tlsmint_api_requests_total{api="http",endpoint="issue",role="web",result="ok"} 2"#),
            "{out}"
        );
        assert!(
            out.contains(r#"tlsmint_api_requests_total{api="grpc",endpoint="sign",role="",result="not_found"} 1"#),
            "{out}"
        );
        assert!(!out.contains(&made_up), "{out}");
        assert!(
            out.contains(r#"tlsmint_api_rate_limited_total{api="grpc"} 1"#),
            "{out}"
        );
        assert!(
            out.contains(r#"tlsmint_api_token_review_cache_total{result="miss"} 2"#),
            "{out}"
        );
        assert!(
            out.contains(
                r#"tlsmint_api_request_duration_seconds_count{api="http",endpoint="issue"} 2"#
            ),
            "{out}"
        );
    }

    #[test]
    fn classes_agree_between_error_code_and_status() {
        let errors = [
            ApiError::Unauthenticated(String::new()),
            ApiError::PermissionDenied(String::new()),
            ApiError::InvalidArgument(String::new()),
            ApiError::NotFound(String::new()),
            ApiError::FailedPrecondition(String::new()),
            ApiError::ResourceExhausted(String::new(), Duration::ZERO),
            ApiError::Unavailable(String::new()),
            ApiError::Internal(String::new()),
        ];
        for err in errors {
            let code = tonic::Status::from(err.clone()).code();
            assert_eq!(ResultClass::of_code(code), ResultClass::of(&err), "{err:?}");
        }
        let limited = ApiError::ResourceExhausted(String::new(), Duration::ZERO);
        assert_eq!(ResultClass::of(&limited), ResultClass::RATE_LIMITED);
        assert_eq!(
            ResultClass::of_status(http::StatusCode::OK),
            ResultClass::OK
        );
        assert_eq!(
            ResultClass::of_status(http::StatusCode::METHOD_NOT_ALLOWED).0,
            "invalid_argument"
        );
    }
}
