//! The Vault-compatible HTTP API (SPEC §5): `auth/kubernetes/login`, and per
//! mount `issue`, `sign`, `revoke`, `revoke-with-key`, `ca`, `ca/pem`, `ca_chain`, `cert/...`,
//! `crl`, `crl/pem`, `ocsp`, plus `sys/health` and `auth/token/lookup(-self)`,
//! the inventory reads (`inventory`: `sys/mounts`, roles, config, certs,
//! issuers) and the setup writes (`admin`: served in dev mode, refused with
//! the `kubectl` that does it in a cluster), with Vault's field names,
//! envelope and status codes.
//!
//! Mount paths may contain `/`, so routing is by longest registered mount
//! path, then the endpoint after it. Owns: routing and authentication of
//! Vault requests. Must not: log tokens, keys or bodies.

mod admin;
pub mod envelope;
#[cfg(test)]
mod fuzz_tests;
mod inventory;
pub mod params;
mod pki;
mod read;
mod role_write;
mod token_lookup;
pub mod tokens;

pub use admin::DevAdmin;
pub(crate) use role_write::from_vault_role;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use axum::routing::any;
use std::time::Instant;

use time::OffsetDateTime;

use super::ApiState;
use super::audit::{self, Channel};
use super::auth::{AuthError, Caller};
use super::error::ApiError;
use super::metrics::{Api, Endpoint, ResultClass};
use crate::registry::MountEntry;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The router of the Vault-compatible API.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/v1/{*rest}", any(dispatch))
        .fallback(|| async { not_found_route("") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

fn not_found_route(path: &str) -> Response {
    envelope::error(&ApiError::NotFound(format!(
        "no handler for route \"{}\". route entry not found.",
        params::clip(path)
    )))
}

fn unsupported(method: &Method, path: &str) -> Response {
    let mut resp = envelope::json_response(
        http::StatusCode::METHOD_NOT_ALLOWED,
        serde_json::json!({ "errors": [format!("unsupported operation {method} on {}", params::clip(path))] }),
    );
    resp.headers_mut().insert(
        http::header::ALLOW,
        http::HeaderValue::from_static("GET, POST, PUT"),
    );
    resp
}

/// A request axum refused before routing (a path that is not UTF-8, a body over
/// [`MAX_BODY_BYTES`]), answered in Vault's error shape with axum's status code.
/// `reason` is axum's own text, which never echoes the request.
fn rejected(status: http::StatusCode, what: &str, reason: &str) -> Response {
    envelope::json_response(
        status,
        serde_json::json!({ "errors": [format!("{what} rejected: {reason}")] }),
    )
}

/// Says what happened to a body that could not be read: over the limit
/// (413, whether announced by Content-Length or found while reading chunks),
/// or broken on the wire (bad chunk framing, connection closed early).
fn body_rejected(e: &BytesRejection) -> Response {
    let status = e.status();
    let reason = if status == http::StatusCode::PAYLOAD_TOO_LARGE {
        format!("the body is larger than the {MAX_BODY_BYTES}-byte limit; reading stopped there")
    } else {
        format!("the body could not be read ({})", e.body_text())
    };
    rejected(status, "request body", &reason)
}

async fn dispatch(
    State(state): State<Arc<ApiState>>,
    method: Method,
    rest: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let mut seen = Seen {
        endpoint: Endpoint::Other,
        role: None,
    };
    // Vault's LIST verb, or GET with `list=true` as the vault CLI and hvac send it.
    let list = method.as_str() == "LIST"
        || (method == Method::GET && query.as_deref().is_some_and(asks_for_list));
    let verb = Verb { method, list };
    let response = route(&state, &mut seen, verb, rest, &headers, body).await;
    // Answers built from an ApiError carry its class; the rest are classed by status.
    let class = response
        .extensions()
        .get::<ResultClass>()
        .copied()
        .unwrap_or_else(|| ResultClass::of_status(response.status()));
    state.metrics.record(
        &state.registry,
        Api::Http,
        seen.endpoint,
        seen.role.as_deref(),
        class,
        started.elapsed(),
    );
    response
}

/// Whether a query string holds `list=true` (Vault's LIST over GET).
fn asks_for_list(query: &str) -> bool {
    query
        .split('&')
        .any(|pair| matches!(pair.split_once('='), Some(("list", "true" | "1"))))
}

/// The HTTP method, and whether it means Vault's LIST.
struct Verb {
    method: Method,
    list: bool,
}

/// What [`route`] found out about a request, for the metrics.
struct Seen {
    endpoint: Endpoint,
    role: Option<String>,
}

async fn route(
    state: &Arc<ApiState>,
    seen: &mut Seen,
    verb: Verb,
    rest: Result<Path<String>, PathRejection>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Path(rest) = match rest {
        Ok(rest) => rest,
        Err(e) => return rejected(e.status(), "request path", &e.body_text()),
    };
    let body = match body {
        Ok(body) => body,
        Err(e) => return body_rejected(&e),
    };
    let path = rest.trim_matches('/');
    let Verb { method, list } = verb;
    let write = method == Method::POST || method == Method::PUT;
    let read = method == Method::GET && !list;
    if path == "sys/mounts" || path.starts_with("sys/mounts/") {
        seen.endpoint = Endpoint::Admin;
        if let Some(rest) = path.strip_prefix("sys/mounts/")
            && let Some(op) = admin::sys_op(rest, &method)
        {
            return admin::handle(state, headers, None, op, &body).await;
        }
        if !read {
            return unsupported(&method, path);
        }
        if let Err(e) = caller(state, headers, "sys/mounts").await {
            return envelope::error(&e);
        }
        return match path.strip_prefix("sys/mounts/") {
            Some(mount_path) => inventory::sys_mount(state, mount_path),
            None => inventory::sys_mounts(state),
        };
    }
    match path {
        "sys/health" => {
            seen.endpoint = Endpoint::Health;
            return read::health();
        }
        "auth/kubernetes/login" if write => {
            seen.endpoint = Endpoint::Login;
            return pki::login(state, &body).await;
        }
        "auth/kubernetes/login" => return unsupported(&method, path),
        "auth/token/lookup-self" if write || method == Method::GET => {
            seen.endpoint = Endpoint::Token;
            return token_lookup::lookup_self(state, headers).await;
        }
        "auth/token/lookup" if write => {
            seen.endpoint = Endpoint::Token;
            return token_lookup::lookup(state, headers, &body).await;
        }
        "auth/token/lookup-self" | "auth/token/lookup" => return unsupported(&method, path),
        _ => {}
    }
    let Some((mount, endpoint)) = find_mount(state, path) else {
        return not_found_route(path);
    };
    let segments: Vec<&str> = endpoint.split('/').collect();
    seen.endpoint = match segments.first().copied() {
        Some("issue") => Endpoint::Issue,
        Some("sign") => Endpoint::Sign,
        Some("revoke" | "revoke-with-key") => Endpoint::Revoke,
        Some("ocsp") => Endpoint::Ocsp,
        Some("ca" | "ca_chain") => Endpoint::Ca,
        Some("crl") => Endpoint::Crl,
        Some("cert") => Endpoint::Cert,
        Some(
            "roles" | "config" | "certs" | "issuers" | "issuer" | "root" | "intermediate" | "tidy",
        ) => Endpoint::Admin,
        _ => Endpoint::Other,
    };
    if let Some(op) = admin::mount_op(&segments, &method) {
        seen.endpoint = Endpoint::Admin;
        return admin::handle(state, headers, Some(mount.clone()), op, &body).await;
    }
    if let Some(answer) = inventory_route(state, headers, &mount, &segments, read, list).await {
        return answer;
    }
    if let ["issue" | "sign", role] = segments.as_slice() {
        seen.role = Some((*role).to_owned());
    }
    match (segments.as_slice(), write, method == Method::GET) {
        (["issue", role], true, _) => pki::issue(state, headers, &mount, role, &body, false).await,
        (["sign", role], true, _) => pki::issue(state, headers, &mount, role, &body, true).await,
        (["revoke"], true, _) => pki::revoke(state, headers, &mount, &body, false).await,
        (["revoke-with-key"], true, _) => pki::revoke(state, headers, &mount, &body, true).await,
        (["ocsp"], true, _) => read::ocsp_post(state, &mount, &body).await,
        (["ocsp", ..], _, true) => read::ocsp_get(state, &mount, &endpoint["ocsp/".len()..]).await,
        (["ca"], _, true) => read::ca_der(&mount),
        (["ca", "pem"], _, true) => read::ca_pem(&mount),
        (["ca_chain"], _, true) => read::ca_chain(&mount),
        (["crl"], _, true) => read::crl(state, &mount, false).await,
        (["crl", "pem"], _, true) => read::crl(state, &mount, true).await,
        (["cert", serial], _, true) => read::cert(state, &mount, serial).await,
        (["issue" | "sign", _] | ["revoke" | "revoke-with-key"] | ["ocsp"], false, _)
        | (["ca" | "ca_chain" | "crl" | "cert", ..], true, _) => unsupported(&method, path),
        _ => not_found_route(path),
    }
}

/// The inventory reads of a mount (roles, config, certs, issuers), or `None`
/// when `segments` is none of them. Issuer certificates are public, as in
/// Vault; the rest needs a token.
async fn inventory_route(
    state: &ApiState,
    headers: &HeaderMap,
    mount: &MountEntry,
    segments: &[&str],
    read: bool,
    list: bool,
) -> Option<Response> {
    use inventory::IssuerForm;
    let public = match (segments, read, list) {
        (["issuers"], _, true) => Some(inventory::list_issuers(mount)),
        (["issuer", reference, form], true, _) => {
            let form = match *form {
                "json" => IssuerForm::Json,
                "pem" => IssuerForm::Pem,
                "der" => IssuerForm::Der,
                _ => return None,
            };
            let alias = state
                .admin
                .as_ref()
                .and_then(|a| a.issuer_name(&mount.name));
            Some(inventory::read_issuer(
                mount,
                alias.as_deref(),
                reference,
                form,
            ))
        }
        _ => None,
    };
    if public.is_some() {
        return public;
    }
    let known = matches!(
        (segments, read, list),
        (["roles"], _, true)
            | (["roles", _], true, _)
            | (["config", "urls" | "crl" | "issuers"], true, _)
            | (["certs"] | ["certs", "revoked"], _, true)
            | (["issuer", _], true, _)
    );
    if !known {
        return None;
    }
    if let Err(e) = caller(state, headers, "read").await {
        return Some(envelope::error(&e));
    }
    Some(match segments {
        ["roles"] => inventory::list_roles(state, mount),
        ["roles", name] => inventory::read_role(state, mount, name),
        ["config", "urls"] => inventory::config_urls(mount),
        ["config", "issuers"] => inventory::config_issuers(mount),
        ["config", _] => inventory::config_crl(mount),
        ["certs"] => inventory::list_certs(state, mount, false).await,
        ["certs", _] => inventory::list_certs(state, mount, true).await,
        [_, reference] => {
            let alias = state
                .admin
                .as_ref()
                .and_then(|a| a.issuer_name(&mount.name));
            inventory::read_issuer(mount, alias.as_deref(), reference, IssuerForm::Full)
        }
        _ => not_found_route(&mount.path),
    })
}

/// The mount with the longest path that `path` starts with, and the rest.
fn find_mount(state: &ApiState, path: &str) -> Option<(Arc<MountEntry>, String)> {
    let mut cut = path.len();
    loop {
        let prefix = &path[..cut];
        if let Some(mount) = state.registry.mount_by_path(prefix) {
            let rest = path[cut..].trim_start_matches('/').to_owned();
            return Some((mount, rest));
        }
        cut = prefix.rfind('/')?;
    }
}

/// The caller of a Vault request: `X-Vault-Token` (or `Authorization: Bearer`)
/// holding a client token from login, the dev root token, or a ServiceAccount token.
async fn caller(
    state: &ApiState,
    headers: &HeaderMap,
    op: &'static str,
) -> Result<Caller, ApiError> {
    authenticate(state, presented_token(headers), op).await
}

/// The token a Vault request carries: `X-Vault-Token`, else `Authorization: Bearer`.
fn presented_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("x-vault-token")
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            super::auth::bearer_token(headers.get(http::header::AUTHORIZATION)?.to_str().ok()?)
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The caller `token` stands for; refusals are audited under `op`.
async fn authenticate(
    state: &ApiState,
    token: Option<&str>,
    op: &'static str,
) -> Result<Caller, ApiError> {
    let result = match token {
        None => Err(ApiError::from(AuthError::Missing)),
        Some(t) if t.starts_with(tokens::PREFIX) => state
            .tokens
            .verify(t, OffsetDateTime::now_utc())
            .map_err(|e| ApiError::Unauthenticated(format!("permission denied: {e}"))),
        Some(t) => state.auth.authenticate(t).await.map_err(ApiError::from),
    };
    result.inspect_err(|err| audit::unauthenticated(Channel::Vault, op, err))
}
