//! Client tokens of the Vault-compatible API: what `auth/kubernetes/login`
//! returns and `X-Vault-Token` carries afterwards.
//!
//! A token is self-contained and tamper-proof: `tlsm.<payload>.<mac>`, where
//! the payload (base64url JSON) names the verified ServiceAccount, the login
//! role and an expiry, and the mac is HMAC-SHA256 under a key every replica
//! shares. So any replica accepts a token another one issued, and nothing is
//! stored per token. A token grants nothing by itself: each request is still
//! checked against the role's `subjects`.
//!
//! Owns: the token format and its key. Must not: log tokens or the key.

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::api::auth::Caller;

/// Prefix of every client token.
pub const PREFIX: &str = "tlsm.";

#[derive(Serialize, Deserialize)]
struct Payload {
    ns: String,
    sa: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pod: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    uid: Option<String>,
    #[serde(default)]
    root: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    grp: Vec<String>,
    role: String,
    exp: i64,
    /// Issue time (Unix seconds); absent in tokens minted before it was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<i64>,
}

/// What a genuine, unexpired client token says (`auth/token/lookup-self`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// Who logged in.
    pub caller: Caller,
    /// The login role.
    pub role: String,
    /// Issue time, Unix seconds (`None` for tokens from before it was recorded).
    pub issued: Option<i64>,
    /// Expiry, Unix seconds.
    pub expires: i64,
}

/// A token's accessor: a stable, non-reversible handle derived from it (the
/// first 12 bytes of its SHA-256, hex), as Vault gives every token one.
pub fn accessor(token: &str) -> String {
    hex::encode(&crate::api::auth::token_hash(token)[..12])
}

/// Mints and checks client tokens.
pub struct ClientTokens {
    key: hmac::Key,
}

impl std::fmt::Debug for ClientTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientTokens(<key redacted>)")
    }
}

/// A client token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token this API issued, or altered.
    #[error("invalid client token")]
    Invalid,
    /// Past its expiry: log in again.
    #[error("client token expired: log in again with auth/kubernetes/login")]
    Expired,
}

impl ClientTokens {
    /// Tokens signed with `key` (32 random bytes shared by all replicas).
    pub fn new(key: &[u8]) -> Self {
        ClientTokens {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        }
    }

    /// A token for `caller`, logged in through `role`, valid until `expires`.
    pub fn mint(&self, caller: &Caller, role: &str, expires: OffsetDateTime) -> String {
        let payload = Payload {
            ns: caller.namespace.clone(),
            sa: caller.service_account.clone(),
            pod: caller.pod_name.clone(),
            uid: caller.pod_uid.clone(),
            root: caller.root,
            grp: caller.groups.clone(),
            role: role.to_owned(),
            exp: expires.unix_timestamp(),
            iat: Some(OffsetDateTime::now_utc().unix_timestamp()),
        };
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap_or_default());
        let tag = hmac::sign(&self.key, body.as_bytes());
        format!("{PREFIX}{body}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The caller of a token, if it is genuine and not expired at `now`.
    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Result<Caller, TokenError> {
        self.inspect(token, now).map(|info| info.caller)
    }

    /// Everything a genuine token unexpired at `now` says.
    pub fn inspect(&self, token: &str, now: OffsetDateTime) -> Result<TokenInfo, TokenError> {
        let rest = token.strip_prefix(PREFIX).ok_or(TokenError::Invalid)?;
        let (body, tag) = rest.split_once('.').ok_or(TokenError::Invalid)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenError::Invalid)?;
        hmac::verify(&self.key, body.as_bytes(), &tag).map_err(|_| TokenError::Invalid)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| TokenError::Invalid)?;
        let p: Payload = serde_json::from_slice(&bytes).map_err(|_| TokenError::Invalid)?;
        if now.unix_timestamp() >= p.exp {
            return Err(TokenError::Expired);
        }
        Ok(TokenInfo {
            caller: Caller {
                namespace: p.ns,
                service_account: p.sa,
                pod_name: p.pod,
                pod_uid: p.uid,
                root: p.root,
                groups: p.grp,
            },
            role: p.role,
            issued: p.iat,
            expires: p.exp,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_tampering_and_expiry() {
        let tokens = ClientTokens::new(&[7u8; 32]);
        let now = OffsetDateTime::now_utc();
        let caller = Caller::service_account("apps", "web");
        let token = tokens.mint(&caller, "web-server", now + time::Duration::minutes(5));
        assert_eq!(tokens.verify(&token, now).unwrap(), caller);
        assert_eq!(
            tokens.verify(&token, now + time::Duration::minutes(6)),
            Err(TokenError::Expired)
        );
        let other = ClientTokens::new(&[8u8; 32]);
        assert_eq!(other.verify(&token, now), Err(TokenError::Invalid));
        let mut forged = token.clone();
        forged.insert(8, 'x');
        assert_eq!(tokens.verify(&forged, now), Err(TokenError::Invalid));
        assert_eq!(tokens.verify("root", now), Err(TokenError::Invalid));
    }

    #[test]
    fn inspect_gives_role_and_times_and_the_accessor_hides_the_token() {
        let tokens = ClientTokens::new(&[7u8; 32]);
        let now = OffsetDateTime::now_utc();
        let expires = now + time::Duration::minutes(5);
        let token = tokens.mint(
            &Caller::service_account("apps", "web"),
            "web-server",
            expires,
        );
        let info = tokens.inspect(&token, now).unwrap();
        assert_eq!(info.role, "web-server");
        assert_eq!(info.expires, expires.unix_timestamp());
        let issued = info.issued.unwrap();
        assert!((issued - now.unix_timestamp()).abs() <= 2, "{issued}");
        let handle = accessor(&token);
        assert_eq!(handle.len(), 24);
        assert!(!token.contains(&handle));
        assert_eq!(handle, accessor(&token));
        assert_ne!(handle, accessor("other"));
    }
}
