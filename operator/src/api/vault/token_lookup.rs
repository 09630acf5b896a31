//! Vault's token backend, the reading part: `auth/token/lookup-self` (GET or
//! POST) and `auth/token/lookup` (POST `{"token": ...}`), so that
//! `hvac.Client.is_authenticated()`, `vault login` and `vault token lookup`
//! work with the dev root token, with client tokens from
//! `auth/kubernetes/login`, and with a ServiceAccount token sent as is.
//!
//! The answer has Vault's fields. What a tlsmint token cannot know is given
//! as Vault gives it for a token without it: no entity (`entity_id: ""`), no
//! use limit (`num_uses: 0`), never renewable. Policies are `["root"]` for
//! the root token and `["default"]` otherwise: what a caller may do is decided
//! per request by the IssuerRole's `subjects`, not by policies.
//!
//! Owns: rendering a token's description. Must not: log tokens; show a token
//! to anyone but its holder or the root token.

use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tlsmint_ca::x509;

use super::params;
use super::tokens::{self, TokenInfo};
use super::{authenticate, envelope, presented_token};
use crate::api::ApiState;
use crate::api::auth::{AuthError, Caller};
use crate::api::error::ApiError;
use tlsmint_ca::{ExposeSecret, SecretString};

/// The body of `auth/token/lookup`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LookupBody {
    /// The token to describe: redacted in `Debug`, never logged.
    token: Option<SecretString>,
}

/// `GET|POST /v1/auth/token/lookup-self`.
pub async fn lookup_self(state: &ApiState, headers: &HeaderMap) -> Response {
    let token = presented_token(headers);
    let result = async {
        let token = token.ok_or_else(|| ApiError::from(AuthError::Missing))?;
        describe(state, token, "lookup-self").await
    }
    .await;
    result.unwrap_or_else(|e| envelope::error(&e))
}

/// `POST /v1/auth/token/lookup`: the root token may describe any token, any
/// other caller only the one it presents (Vault needs a policy on
/// `auth/token/lookup` for other tokens; tlsmint has no policies to grant it).
pub async fn lookup(state: &ApiState, headers: &HeaderMap, body: &[u8]) -> Response {
    let result = async {
        let presented = presented_token(headers);
        let caller = authenticate(state, presented, "lookup").await?;
        let body: LookupBody = params::parse(body)?;
        let wanted = body
            .token
            .filter(|t| !t.expose_secret().trim().is_empty())
            .ok_or_else(|| ApiError::InvalidArgument("missing token".into()))?;
        let wanted = wanted.expose_secret().trim();
        if !caller.root && Some(wanted) != presented {
            return Err(ApiError::PermissionDenied(
                "permission denied: only the root token may look up another token".into(),
            ));
        }
        describe(state, wanted, "lookup").await
    }
    .await;
    result.unwrap_or_else(|e| envelope::error(&e))
}

/// Vault's description of `token`, or the refusal of it.
async fn describe(state: &ApiState, token: &str, op: &'static str) -> Result<Response, ApiError> {
    let now = OffsetDateTime::now_utc();
    let data = if token.starts_with(tokens::PREFIX) {
        let info = state
            .tokens
            .inspect(token, now)
            .map_err(|e| ApiError::Unauthenticated(format!("permission denied: {e}")))?;
        let fallback_ttl = state.settings.client_token_ttl.as_secs();
        client_token(token, &info, fallback_ttl, now)
    } else {
        let caller = authenticate(state, Some(token), op).await?;
        if caller.root {
            root_token(token)
        } else {
            service_account_token(token, &caller)
        }
    };
    Ok(envelope::data_from("token", data))
}

/// A client token from `auth/kubernetes/login`.
fn client_token(token: &str, info: &TokenInfo, fallback_ttl: u64, now: OffsetDateTime) -> Value {
    let issued = info
        .issued
        .unwrap_or_else(|| info.expires.saturating_sub_unsigned(fallback_ttl));
    let time = |secs: i64| {
        OffsetDateTime::from_unix_timestamp(secs)
            .map(x509::rfc3339)
            .unwrap_or_default()
    };
    let caller = &info.caller;
    json!({
        "accessor": tokens::accessor(token),
        "creation_time": issued,
        "creation_ttl": info.expires.saturating_sub(issued).max(0),
        "display_name": format!("kubernetes-{}-{}", caller.namespace, caller.service_account),
        "entity_id": "",
        "expire_time": time(info.expires),
        "explicit_max_ttl": 0,
        "id": token,
        "issue_time": time(issued),
        "meta": {
            "role": info.role,
            "service_account_name": caller.service_account,
            "service_account_namespace": caller.namespace,
        },
        "num_uses": 0,
        "orphan": true,
        "path": "auth/kubernetes/login",
        "policies": ["default"],
        "renewable": false,
        "ttl": info.expires.saturating_sub(now.unix_timestamp()).max(0),
        "type": "service",
    })
}

/// The dev root token: no expiry, as Vault's root token.
fn root_token(token: &str) -> Value {
    json!({
        "accessor": tokens::accessor(token),
        "creation_time": 0,
        "creation_ttl": 0,
        "display_name": "root",
        "entity_id": "",
        "expire_time": null,
        "explicit_max_ttl": 0,
        "id": token,
        "issue_time": null,
        "meta": null,
        "num_uses": 0,
        "orphan": true,
        "path": "auth/token/root",
        "policies": ["root"],
        "renewable": false,
        "ttl": 0,
        "type": "service",
    })
}

/// A ServiceAccount token sent as `X-Vault-Token` without logging in first (a
/// tlsmint extension): its lifetime is the API server's business, so no expiry
/// is claimed here.
fn service_account_token(token: &str, caller: &Caller) -> Value {
    json!({
        "accessor": tokens::accessor(token),
        "creation_time": 0,
        "creation_ttl": 0,
        "display_name": format!("serviceaccount-{}-{}", caller.namespace, caller.service_account),
        "entity_id": "",
        "expire_time": null,
        "explicit_max_ttl": 0,
        "id": token,
        "issue_time": null,
        "meta": {
            "service_account_name": caller.service_account,
            "service_account_namespace": caller.namespace,
        },
        "num_uses": 0,
        "orphan": true,
        "path": "auth/kubernetes/login",
        "policies": ["default"],
        "renewable": false,
        "ttl": 0,
        "type": "service",
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_client_token_is_described_with_vaults_fields() {
        let now = OffsetDateTime::now_utc();
        let info = TokenInfo {
            caller: Caller::service_account("apps", "web"),
            role: "web-server".into(),
            issued: Some(now.unix_timestamp() - 60),
            expires: now.unix_timestamp() + 540,
        };
        let v = client_token("tlsm.x.y", &info, 600, now);
        assert_eq!(v["creation_ttl"], 600);
        let ttl = v["ttl"].as_i64().unwrap();
        assert!((539..=540).contains(&ttl), "{ttl}");
        assert_eq!(v["display_name"], "kubernetes-apps-web");
        assert_eq!(v["meta"]["role"], "web-server");
        assert_eq!(v["policies"], json!(["default"]));
        assert!(v["expire_time"].as_str().unwrap().ends_with('Z'));
        // A token from before issue times were recorded: derived from the TTL.
        let old = TokenInfo {
            issued: None,
            ..info
        };
        assert_eq!(
            client_token("tlsm.x.y", &old, 600, now)["creation_ttl"],
            600
        );
    }

    #[test]
    fn the_root_token_never_expires() {
        let v = root_token("root");
        assert_eq!(v["policies"], json!(["root"]));
        assert_eq!(
            (v["ttl"].as_i64(), v["expire_time"].is_null()),
            (Some(0), true)
        );
        assert_eq!(v["path"], "auth/token/root");
    }
}
