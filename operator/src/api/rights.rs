//! Administrative rights of API callers, beyond a role's `subjects`: today
//! one, revoking a certificate of a mount by serial (or by certificate
//! without its key). In cluster mode Kubernetes RBAC decides, through a
//! SubjectAccessReview for the custom verb `revoke` on the PkiMount
//! (`pki.tlsmint.io`, resource `pkimounts`, name = the mount), for the
//! caller's user and groups from the TokenReview; so administrators grant
//! it with a ClusterRole like any other right (the chart ships
//! `<release>-tlsmint-revoker`). In dev mode only the root token has it.
//!
//! Owns: the review and its cache. Must not: grant anything on error (an
//! API server that does not answer is `Unavailable`, never a yes).

// Cluster-mode pieces: `run` (operator/src/run.rs) wires them in; dev mode does not.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

use futures::future::BoxFuture;

use super::auth::Caller;
use super::error::ApiError;

/// API group of the PkiMount resource.
pub const GROUP: &str = "pki.tlsmint.io";
/// Resource the revoke right is on.
pub const RESOURCE: &str = "pkimounts";
/// The custom RBAC verb that allows revoking by serial.
pub const VERB_REVOKE: &str = "revoke";

/// Cache entries kept before expired ones are swept.
const MAX_ENTRIES: usize = 10_000;
/// How long a refusal is remembered (a granted right is remembered for the
/// configured TTL): short, so a new binding takes effect quickly.
const NEGATIVE_TTL: Duration = Duration::from_secs(2);
/// Longest API-server message repeated to a caller.
const MAX_REASON: usize = 200;

/// The message of a refusal: names the missing right and the way around it.
pub fn missing_revoke_right(caller: &Caller, mount: &str, why: &str) -> ApiError {
    let why = if why.is_empty() {
        String::new()
    } else {
        format!(" ({why})")
    };
    ApiError::PermissionDenied(format!(
        "permission denied: revoking by serial needs the right to \"{VERB_REVOKE}\" \
         {RESOURCE}.{GROUP} \"{mount}\", which {} does not have{why}; \
         a certificate's holder can revoke it without that right through \
         revoke-with-key (certificate and private_key)",
        caller.username()
    ))
}

/// Decides administrative rights.
pub trait Rights: Send + Sync + 'static {
    /// `Ok` when `caller` may revoke any certificate of `mount` by serial,
    /// `PermissionDenied` naming the missing right when not, `Unavailable`
    /// when it cannot be decided now.
    fn may_revoke<'a>(
        &'a self,
        caller: &'a Caller,
        mount: &'a str,
    ) -> BoxFuture<'a, Result<(), ApiError>>;
}

/// Dev mode: the root token is the administrator, nobody else is.
#[derive(Debug, Default, Clone, Copy)]
pub struct DevRights;

impl Rights for DevRights {
    fn may_revoke<'a>(
        &'a self,
        caller: &'a Caller,
        mount: &'a str,
    ) -> BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(async move {
            if caller.root {
                Ok(())
            } else {
                Err(missing_revoke_right(
                    caller,
                    mount,
                    "in dev mode only the root token has it",
                ))
            }
        })
    }
}

/// Cluster mode: a SubjectAccessReview per (caller, mount), cached.
pub struct SubjectAccessReviewRights {
    api: Api<SubjectAccessReview>,
    ttl: Duration,
    cache: Mutex<HashMap<CacheKey, CacheEntry>>,
}

/// (user name, mount).
type CacheKey = (String, String);
type CacheEntry = (Instant, Result<(), ApiError>);

impl std::fmt::Debug for SubjectAccessReviewRights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubjectAccessReviewRights")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl SubjectAccessReviewRights {
    /// Reviews with `client`, remembering a granted right for `ttl`.
    pub fn new(client: kube::Client, ttl: Duration) -> Self {
        SubjectAccessReviewRights {
            api: Api::all(client),
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, key: &CacheKey, now: Instant) -> Option<Result<(), ApiError>> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let (until, result) = cache.get(key)?;
        (now < *until).then(|| result.clone())
    }

    fn remember(&self, key: CacheKey, until: Instant, result: &Result<(), ApiError>) {
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

    async fn review(&self, caller: &Caller, mount: &str) -> Result<(), ApiError> {
        let review = review_for(caller, mount);
        let answer = self
            .api
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| {
                ApiError::Unavailable(clip(&format!(
                    "the revoke right could not be checked (SubjectAccessReview failed: {e})"
                )))
            })?;
        let status = answer.status.unwrap_or_default();
        if status.allowed && status.denied != Some(true) {
            return Ok(());
        }
        let why = status
            .reason
            .filter(|r| !r.is_empty())
            .or(status.evaluation_error)
            .unwrap_or_default();
        Err(missing_revoke_right(caller, mount, &clip(&why)))
    }
}

/// The SubjectAccessReview asking whether `caller` may `revoke` the PkiMount `mount`.
pub fn review_for(caller: &Caller, mount: &str) -> SubjectAccessReview {
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(caller.username()),
            groups: Some(caller.groups()),
            resource_attributes: Some(ResourceAttributes {
                group: Some(GROUP.to_owned()),
                resource: Some(RESOURCE.to_owned()),
                verb: Some(VERB_REVOKE.to_owned()),
                name: Some(mount.to_owned()),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    }
}

impl Rights for SubjectAccessReviewRights {
    fn may_revoke<'a>(
        &'a self,
        caller: &'a Caller,
        mount: &'a str,
    ) -> BoxFuture<'a, Result<(), ApiError>> {
        Box::pin(async move {
            let key = (caller.username(), mount.to_owned());
            let now = Instant::now();
            if let Some(hit) = self.cached(&key, now) {
                return hit;
            }
            let result = self.review(caller, mount).await;
            let until = match &result {
                Ok(()) => now + self.ttl,
                Err(ApiError::PermissionDenied(_)) => now + NEGATIVE_TTL,
                Err(_) => return result,
            };
            self.remember(key, until, &result);
            result
        })
    }
}

fn clip(text: &str) -> String {
    let mut out: String = text.chars().take(MAX_REASON).collect();
    if text.chars().count() > MAX_REASON {
        out.push('…');
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_review_asks_for_revoke_on_the_named_mount_for_the_callers_user_and_groups() {
        let mut caller = Caller::service_account("team-b", "api");
        let review = review_for(&caller, "pki-int");
        let spec = &review.spec;
        assert_eq!(
            spec.user.as_deref(),
            Some("system:serviceaccount:team-b:api")
        );
        assert!(
            spec.groups
                .as_ref()
                .unwrap()
                .contains(&"system:serviceaccounts:team-b".to_owned())
        );
        let attrs = spec.resource_attributes.as_ref().unwrap();
        assert_eq!(attrs.group.as_deref(), Some("pki.tlsmint.io"));
        assert_eq!(attrs.resource.as_deref(), Some("pkimounts"));
        assert_eq!(attrs.verb.as_deref(), Some("revoke"));
        assert_eq!(attrs.name.as_deref(), Some("pki-int"));
        assert_eq!(attrs.namespace, None, "PkiMounts are cluster-scoped");
        caller.groups = vec!["reviewed".into()];
        assert_eq!(
            review_for(&caller, "x").spec.groups,
            Some(vec!["reviewed".to_owned()])
        );
    }

    #[tokio::test]
    async fn dev_mode_grants_the_root_token_only_and_names_the_right() {
        let mut root = Caller::service_account("default", "default");
        root.root = true;
        DevRights.may_revoke(&root, "pki").await.unwrap();
        let other = Caller::service_account("apps", "web");
        let err = DevRights.may_revoke(&other, "pki").await.unwrap_err();
        assert_eq!(err.label(), "permission_denied");
        let text = err.to_string();
        for part in [
            "\"revoke\"",
            "pkimounts.pki.tlsmint.io",
            "\"pki\"",
            "apps:web",
        ] {
            assert!(text.contains(part), "{part} missing from {text}");
        }
    }
}
