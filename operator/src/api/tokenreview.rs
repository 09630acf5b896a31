//! The cluster-mode authenticator: verifies a ServiceAccount token with a
//! TokenReview for the audience `tlsmint` (so a token minted for the API
//! server or another service is refused) and reads the pod name and UID of
//! pod-bound tokens. Results are cached briefly, keyed by the SHA-256 of the
//! token, never beyond the token's own expiry.
//!
//! Owns: the TokenReview call and its cache. Must not: keep, log or echo a
//! token (the API server's error text is passed on, clipped; it does not
//! contain the token).

// Cluster-mode pieces: `run` (operator/src/run.rs) wires them in; dev mode does not.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::api::{Api, PostParams};
use tlsmint_api::csi::TOKEN_AUDIENCE;

use super::auth::{AuthError, Authenticator, Caller, jwt_claims, parse_username, token_hash};
use super::metrics::ApiMetrics;

/// Cache entries kept before expired ones are swept.
const MAX_ENTRIES: usize = 10_000;
/// How long a refusal is remembered (so a bad token cannot hammer the API server).
const NEGATIVE_TTL: Duration = Duration::from_secs(2);
/// Longest API-server message repeated to a caller.
const MAX_REASON: usize = 200;

/// Verifies tokens with the Kubernetes TokenReview API.
pub struct TokenReviewAuthenticator {
    api: Api<TokenReview>,
    audience: String,
    ttl: Duration,
    cache: Mutex<HashMap<[u8; 32], CacheEntry>>,
    metrics: Arc<ApiMetrics>,
}

type CacheEntry = (Instant, Result<Caller, AuthError>);

impl std::fmt::Debug for TokenReviewAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenReviewAuthenticator")
            .field("audience", &self.audience)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl TokenReviewAuthenticator {
    /// Reviews tokens for the `tlsmint` audience, caching results for `ttl`;
    /// counts cache hits and misses in `metrics`.
    pub fn new(client: kube::Client, ttl: Duration, metrics: Arc<ApiMetrics>) -> Self {
        TokenReviewAuthenticator {
            api: Api::all(client),
            audience: TOKEN_AUDIENCE.to_owned(),
            ttl,
            cache: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    fn cached(&self, key: &[u8; 32], now: Instant) -> Option<Result<Caller, AuthError>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let (until, result) = cache.get(key)?;
        (now < *until).then(|| result.clone())
    }

    fn remember(&self, key: [u8; 32], until: Instant, result: &Result<Caller, AuthError>) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_ENTRIES {
            let now = Instant::now();
            cache.retain(|_, (u, _)| *u > now);
            if cache.len() >= MAX_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(key, (until, result.clone()));
    }

    async fn review(&self, token: &str) -> Result<Caller, AuthError> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_owned(),
                audiences: Some(vec![self.audience.clone()]),
            },
            ..TokenReview::default()
        };
        let answer = self
            .api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| AuthError::Unavailable(clip(&format!("TokenReview failed: {e}"))))?;
        let status = answer.status.unwrap_or_default();
        if status.authenticated != Some(true) {
            let reason = status.error.unwrap_or_else(|| "not authenticated".into());
            return Err(AuthError::Rejected(clip(&reason)));
        }
        if !status
            .audiences
            .unwrap_or_default()
            .contains(&self.audience)
        {
            return Err(AuthError::Rejected(format!(
                "the token is not for audience \"{}\"",
                self.audience
            )));
        }
        let user = status.user.unwrap_or_default();
        let username = user.username.unwrap_or_default();
        let mut caller = username
            .strip_prefix("system:serviceaccount:")
            .and_then(parse_username)
            .ok_or_else(|| {
                AuthError::Rejected(format!(
                    "user {:?} is not a ServiceAccount",
                    clip(&username)
                ))
            })?;
        let extra = user.extra.unwrap_or_default();
        let first = |key: &str| extra.get(key).and_then(|v| v.first()).cloned();
        caller.pod_name = first("authentication.kubernetes.io/pod-name");
        caller.pod_uid = first("authentication.kubernetes.io/pod-uid");
        caller.groups = user.groups.unwrap_or_default();
        Ok(caller)
    }
}

impl Authenticator for TokenReviewAuthenticator {
    fn authenticate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Caller, AuthError>> {
        Box::pin(async move {
            if token.is_empty() {
                return Err(AuthError::Missing);
            }
            let key = token_hash(token);
            let now = Instant::now();
            if let Some(hit) = self.cached(&key, now) {
                self.metrics.token_review(true);
                return hit;
            }
            self.metrics.token_review(false);
            let result = self.review(token).await;
            let until = match &result {
                Ok(_) => now + self.ttl.min(time_left(token).unwrap_or(self.ttl)),
                Err(AuthError::Rejected(_)) => now + NEGATIVE_TTL,
                Err(_) => return result,
            };
            self.remember(key, until, &result);
            result
        })
    }
}

/// Time until the token's `exp` claim (read without verification: it only shortens caching).
fn time_left(token: &str) -> Option<Duration> {
    let exp = jwt_claims(token)?.exp?;
    let left = exp - time::OffsetDateTime::now_utc().unix_timestamp();
    Some(Duration::from_secs(u64::try_from(left).unwrap_or(0)))
}

fn clip(text: &str) -> String {
    let mut out: String = text.chars().take(MAX_REASON).collect();
    if text.chars().count() > MAX_REASON {
        out.push('…');
    }
    out
}
