//! Who is calling: the [`Authenticator`] trait that turns a bearer token into
//! a verified [`Caller`], and the dev-mode implementation.
//!
//! Owns: the caller identity and the dev rules. Must not: log, store or echo
//! a token (only `token_hash` of one may be used as a cache or map key).
//!
//! # Dev mode (`tlsmint-operator dev`)
//!
//! There is no API server to ask, so [`DevAuthenticator`] accepts:
//! - the root token (printed at start, `--dev-root-token-id`): the caller is
//!   the dev identity (`--dev-namespace`/`--dev-service-account`, default
//!   `default`/`default`) and, like Vault's root token, passes every role's
//!   `subjects` check (names are still checked by the role's policy);
//! - `system:serviceaccount:<namespace>:<name>` typed out, or
//!   - a ServiceAccount JWT, whose claims are read **without checking the
//!     signature**: the caller is the namespace and service account it names.
//!     Its `exp`, `nbf` and `aud` (must name `tlsmint`) are checked as
//!     TokenReview would. These callers are checked against `subjects` like
//!     real ones.
//!
//! Dev mode therefore trusts whoever can reach its loopback port; it listens
//! elsewhere only with an explicit `--dev-listen-any`.

use base64::Engine as _;
use futures::future::BoxFuture;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tlsmint_api::csi::TOKEN_AUDIENCE;

/// A verified caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Namespace of its ServiceAccount.
    pub namespace: String,
    /// Name of its ServiceAccount.
    pub service_account: String,
    /// Pod name, from a pod-bound token.
    pub pod_name: Option<String>,
    /// Pod UID, from a pod-bound token.
    pub pod_uid: Option<String>,
    /// The dev root token: passes `subjects` checks.
    pub root: bool,
    /// Groups the API server reported in the TokenReview (empty when unknown:
    /// [`Caller::groups`] then gives a ServiceAccount's standard groups).
    pub groups: Vec<String>,
}

impl Caller {
    /// A caller for `namespace`/`service_account` without pod details.
    pub fn service_account(namespace: &str, service_account: &str) -> Self {
        Caller {
            namespace: namespace.to_owned(),
            service_account: service_account.to_owned(),
            pod_name: None,
            pod_uid: None,
            root: false,
            groups: Vec::new(),
        }
    }

    /// The Kubernetes user name, `system:serviceaccount:<namespace>:<name>`.
    pub fn username(&self) -> String {
        format!(
            "system:serviceaccount:{}:{}",
            self.namespace, self.service_account
        )
    }

    /// The caller's groups for authorization: those the TokenReview reported,
    /// else the ones Kubernetes gives every ServiceAccount.
    pub fn groups(&self) -> Vec<String> {
        if !self.groups.is_empty() {
            return self.groups.clone();
        }
        vec![
            "system:serviceaccounts".to_owned(),
            format!("system:serviceaccounts:{}", self.namespace),
            "system:authenticated".to_owned(),
        ]
    }

    /// The identity the policy fills templates from.
    pub fn identity(&self) -> tlsmint_ca::Identity {
        tlsmint_ca::Identity {
            namespace: self.namespace.clone(),
            service_account: Some(self.service_account.clone()),
        }
    }

    /// `namespace/serviceAccount`, the rate-limit key and the audit `caller`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.service_account)
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token at all.
    #[error(
        "no token: send a ServiceAccount token for audience \"tlsmint\" as `authorization: Bearer <token>`"
    )]
    Missing,
    /// The token is bad, expired, or for another audience. The reason never quotes the token.
    #[error("token rejected: {0}")]
    Rejected(String),
    /// The token could not be checked (the API server did not answer).
    #[error("the token could not be verified right now: {0}")]
    Unavailable(String),
}

impl From<AuthError> for super::error::ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Unavailable(_) => super::error::ApiError::Unavailable(err.to_string()),
            AuthError::Missing | AuthError::Rejected(_) => {
                super::error::ApiError::Unauthenticated(err.to_string())
            }
        }
    }
}

/// Verifies bearer tokens.
pub trait Authenticator: Send + Sync + 'static {
    /// The caller a token belongs to.
    fn authenticate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Caller, AuthError>>;
}

/// SHA-256 of a token: the only form of a token that may be kept as a key.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The dev-mode authenticator (see the module docs).
pub struct DevAuthenticator {
    root_hash: [u8; 32],
    identity: Caller,
}

impl std::fmt::Debug for DevAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevAuthenticator")
            .field("identity", &self.identity.key())
            .finish_non_exhaustive()
    }
}

impl DevAuthenticator {
    /// Accepts `root_token` as the dev identity `namespace`/`service_account`.
    pub fn new(root_token: &str, namespace: &str, service_account: &str) -> Self {
        DevAuthenticator {
            root_hash: token_hash(root_token),
            identity: Caller {
                root: true,
                ..Caller::service_account(namespace, service_account)
            },
        }
    }

    fn check(&self, token: &str) -> Result<Caller, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        if constant_time_eq(&token_hash(token), &self.root_hash) {
            return Ok(self.identity.clone());
        }
        if let Some(rest) = token.strip_prefix("system:serviceaccount:") {
            return parse_username(rest).ok_or_else(|| {
                AuthError::Rejected("expected system:serviceaccount:<namespace>:<name>".into())
            });
        }
        let claims = jwt_claims(token).ok_or_else(|| {
            AuthError::Rejected(
                "not the dev root token, a ServiceAccount JWT, or system:serviceaccount:<namespace>:<name>"
                    .into(),
            )
        })?;
        check_claims(&claims, OffsetDateTime::now_utc().unix_timestamp())?;
        claims_caller(&claims)
            .ok_or_else(|| AuthError::Rejected("the JWT names no ServiceAccount".into()))
    }
}

/// Clock skew tolerated on `exp` and `nbf`, as the API server allows.
const CLOCK_SKEW_SECS: i64 = 60;

/// Dev mode's checks of an unsigned JWT: what TokenReview would refuse
/// apart from the signature. `exp` must be in the future, `nbf` (when
/// present) not in the future, and `aud` must name [`TOKEN_AUDIENCE`].
pub fn check_claims(claims: &JwtClaims, now: i64) -> Result<(), AuthError> {
    let exp = claims
        .exp
        .ok_or_else(|| AuthError::Rejected("the JWT has no exp claim".into()))?;
    if exp + CLOCK_SKEW_SECS <= now {
        return Err(AuthError::Rejected("the JWT has expired".into()));
    }
    if let Some(nbf) = claims.nbf
        && nbf - CLOCK_SKEW_SECS > now
    {
        return Err(AuthError::Rejected("the JWT is not valid yet (nbf)".into()));
    }
    if !claims.aud.iter().any(|aud| aud == TOKEN_AUDIENCE) {
        return Err(AuthError::Rejected(format!(
            "the JWT is not for audience \"{TOKEN_AUDIENCE}\""
        )));
    }
    Ok(())
}

impl Authenticator for DevAuthenticator {
    fn authenticate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Caller, AuthError>> {
        Box::pin(async move { self.check(token) })
    }
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `<namespace>:<name>` of a ServiceAccount username (after the `system:serviceaccount:` prefix).
pub fn parse_username(rest: &str) -> Option<Caller> {
    let (namespace, name) = rest.split_once(':')?;
    if namespace.is_empty() || name.is_empty() || name.contains(':') {
        return None;
    }
    Some(Caller::service_account(namespace, name))
}

/// The claims of a ServiceAccount JWT that tlsmint reads. Unknown claims are
/// ignored; a claim of the wrong type makes the whole token unreadable.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
pub struct JwtClaims {
    /// `system:serviceaccount:<namespace>:<name>`.
    #[serde(default)]
    pub sub: Option<String>,
    /// Audiences: one string or a list of them.
    #[serde(default, deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    /// Expiry, seconds since the epoch.
    #[serde(default)]
    pub exp: Option<i64>,
    /// Not before, seconds since the epoch.
    #[serde(default)]
    pub nbf: Option<i64>,
    /// The API server's private claims.
    #[serde(rename = "kubernetes.io", default)]
    pub kubernetes: Option<KubernetesClaims>,
}

/// The `kubernetes.io` claims of a ServiceAccount token.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
pub struct KubernetesClaims {
    /// The ServiceAccount's namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// The ServiceAccount.
    #[serde(default)]
    pub serviceaccount: Option<ObjectClaim>,
    /// The pod a pod-bound token is bound to.
    #[serde(default)]
    pub pod: Option<ObjectClaim>,
}

/// An object named in the `kubernetes.io` claims.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
pub struct ObjectClaim {
    /// Its name.
    #[serde(default)]
    pub name: Option<String>,
    /// Its UID.
    #[serde(default)]
    pub uid: Option<String>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::One(aud)) => vec![aud],
        Some(OneOrMany::Many(auds)) => auds,
    })
}

/// The claims of a JWT, read without checking its signature (used only to
/// shorten cache lifetimes and, in dev mode, as the identity).
pub fn jwt_claims(token: &str) -> Option<JwtClaims> {
    let mut parts = token.split('.');
    let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The caller named by ServiceAccount token claims (`kubernetes.io` or `sub`).
pub fn claims_caller(claims: &JwtClaims) -> Option<Caller> {
    let k8s = claims.kubernetes.clone().unwrap_or_default();
    let service_account = k8s.serviceaccount.and_then(|sa| sa.name);
    let mut caller = match (k8s.namespace, service_account) {
        (Some(ns), Some(sa)) => Caller::service_account(&ns, &sa),
        _ => parse_username(
            claims
                .sub
                .as_deref()?
                .strip_prefix("system:serviceaccount:")?,
        )?,
    };
    if let Some(pod) = k8s.pod {
        caller.pod_name = pod.name;
        caller.pod_uid = pod.uid;
    }
    Some(caller)
}

/// The token of an `Authorization: Bearer <token>` header value (scheme in any
/// case), trimmed; `None` for another scheme or an empty token. The one parser
/// of both APIs.
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn jwt(claims: serde_json::Value) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            b64.encode(br#"{"alg":"RS256"}"#),
            b64.encode(claims.to_string())
        )
    }

    #[test]
    fn one_bearer_parser_and_typed_claims() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
        let one = jwt_claims(&jwt(serde_json::json!({"aud": "tlsmint", "exp": 5}))).unwrap();
        assert_eq!((one.aud, one.exp), (vec!["tlsmint".to_owned()], Some(5)));
        let many = jwt_claims(&jwt(serde_json::json!({"aud": ["a", "tlsmint"]}))).unwrap();
        assert_eq!(many.aud, ["a", "tlsmint"]);
        // A claim of the wrong type makes the token unreadable, not a partial identity.
        assert!(jwt_claims(&jwt(serde_json::json!({"exp": "soon"}))).is_none());
        let pod = jwt_claims(&jwt(serde_json::json!({
            "kubernetes.io": {"namespace": "apps", "serviceaccount": {"name": "web"},
                              "pod": {"name": "web-0", "uid": "u-1"}}
        })))
        .unwrap();
        let caller = claims_caller(&pod).unwrap();
        assert_eq!(caller.key(), "apps/web");
        assert_eq!(caller.pod_name.as_deref(), Some("web-0"));
        assert_eq!(caller.pod_uid.as_deref(), Some("u-1"));
    }

    #[tokio::test]
    async fn dev_accepts_root_token_usernames_and_jwts() {
        let auth = DevAuthenticator::new("root-t", "default", "default");
        let root = auth.authenticate("root-t").await.unwrap();
        assert!(root.root);
        assert_eq!(root.key(), "default/default");
        let named = auth
            .authenticate("system:serviceaccount:apps:web")
            .await
            .unwrap();
        assert_eq!((named.key(), named.root), ("apps/web".into(), false));
        let token = jwt(serde_json::json!({
            "sub": "system:serviceaccount:apps:api",
            "aud": ["tlsmint"],
            "exp": OffsetDateTime::now_utc().unix_timestamp() + 600,
            "kubernetes.io": {"namespace": "apps", "serviceaccount": {"name": "api"},
                              "pod": {"name": "api-0", "uid": "u-1"}}
        }));
        let from_jwt = auth.authenticate(&token).await.unwrap();
        assert_eq!(from_jwt.key(), "apps/api");
        assert_eq!(from_jwt.pod_name.as_deref(), Some("api-0"));
    }

    #[tokio::test]
    async fn dev_checks_exp_nbf_and_aud() {
        let auth = DevAuthenticator::new("root-t", "default", "default");
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let sub = "system:serviceaccount:apps:api";
        for (claims, says) in [
            (serde_json::json!({"sub": sub, "aud": "tlsmint"}), "no exp"),
            (
                serde_json::json!({"sub": sub, "aud": "tlsmint", "exp": now - 3600}),
                "expired",
            ),
            (
                serde_json::json!({"sub": sub, "aud": "tlsmint", "exp": now + 7200, "nbf": now + 3600}),
                "not valid yet",
            ),
            (
                serde_json::json!({"sub": sub, "aud": ["vault"], "exp": now + 600}),
                "audience",
            ),
            (
                serde_json::json!({"sub": sub, "exp": now + 600}),
                "audience",
            ),
        ] {
            let err = auth.authenticate(&jwt(claims)).await.unwrap_err();
            assert!(err.to_string().contains(says), "{err}");
        }
        let ok = serde_json::json!({"sub": sub, "aud": "tlsmint", "exp": now + 600, "nbf": now});
        assert_eq!(auth.authenticate(&jwt(ok)).await.unwrap().key(), "apps/api");
    }

    #[tokio::test]
    async fn dev_rejects_other_tokens_without_echoing_them() {
        let auth = DevAuthenticator::new("root-t", "default", "default");
        let err = auth.authenticate("canary-secret").await.unwrap_err();
        assert!(!err.to_string().contains("canary"), "{err}");
        assert_eq!(auth.authenticate("").await.unwrap_err(), AuthError::Missing);
    }
}
