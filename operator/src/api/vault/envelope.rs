//! Vault's response shapes: the success envelope (`request_id`, `lease_id`,
//! `renewable`, `lease_duration`, `data`, `wrap_info`, `warnings`, `auth`),
//! the `{"errors": [...]}` error body, and raw PEM/DER bodies.
//!
//! Owns: those shapes. Must not: put a token or key anywhere but the field
//! the caller asked for.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use serde::Serialize;
use serde_json::{Value, json};

use crate::api::error::ApiError;

/// A Vault-style request id (random UUID v4 text).
pub fn request_id() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid_text(b)
}

/// 16 bytes in UUID text form (`8-4-4-4-12` hex digits).
pub fn uuid_text(bytes: [u8; 16]) -> String {
    let h = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `204 No Content`, as Vault answers most writes.
pub fn no_content() -> Response {
    let mut resp = Response::default();
    *resp.status_mut() = StatusCode::NO_CONTENT;
    resp
}

/// Vault's success envelope, serialized straight from borrowed parts (no
/// intermediate `Value` tree: the issue path answers thousands of these a second).
#[derive(Serialize)]
struct Envelope<'a, D: Serialize, A: Serialize> {
    request_id: String,
    lease_id: &'static str,
    renewable: bool,
    lease_duration: u64,
    data: Option<D>,
    wrap_info: Option<()>,
    warnings: Option<&'a [String]>,
    auth: Option<A>,
    mount_type: &'static str,
}

fn envelope<'a, D: Serialize, A: Serialize>(
    data: Option<D>,
    warnings: &'a [String],
    auth: Option<A>,
) -> Envelope<'a, D, A> {
    let mount_type = if auth.is_none() { "pki" } else { "kubernetes" };
    envelope_of(mount_type, data, warnings, auth)
}

fn envelope_of<'a, D: Serialize, A: Serialize>(
    mount_type: &'static str,
    data: Option<D>,
    warnings: &'a [String],
    auth: Option<A>,
) -> Envelope<'a, D, A> {
    Envelope {
        request_id: request_id(),
        lease_id: "",
        renewable: false,
        lease_duration: 0,
        mount_type,
        data,
        wrap_info: None,
        warnings: (!warnings.is_empty()).then_some(warnings),
        auth,
    }
}

/// `200` with `data` in the envelope.
pub fn data(data: impl Serialize, warnings: &[String]) -> Response {
    serialized(envelope(Some(data), warnings, None::<()>))
}

/// `200` with `data` from a backend of another type (`token`, `system`).
pub fn data_from(mount_type: &'static str, data: impl Serialize) -> Response {
    serialized(envelope_of(mount_type, Some(data), &[], None::<()>))
}

/// `200` with an `auth` block (login).
pub fn auth(auth: impl Serialize) -> Response {
    serialized(envelope(None::<()>, &[], Some(auth)))
}

fn serialized(body: impl Serialize) -> Response {
    match serde_json::to_vec(&body) {
        Ok(bytes) => {
            let mut resp = (StatusCode::OK, bytes).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
        // Only a non-string map key or a failing Serialize impl can get here; ours have neither.
        Err(e) => error(&ApiError::Internal(format!(
            "encoding the answer failed: {e}"
        ))),
    }
}

/// Vault's error body with the status of `err`.
/// A rate-limited answer carries `Retry-After` (whole seconds).
pub fn error(err: &ApiError) -> Response {
    let mut resp = json_response(err.http_status(), json!({ "errors": [err.message()] }));
    // The class the metrics count this answer under (two errors share a status).
    resp.extensions_mut()
        .insert(crate::api::metrics::ResultClass::of(err));
    if let Some(secs) = err.retry_after_secs() {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// Any JSON body.
pub fn json_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// A raw body with a content type (PEM text, DER).
pub fn raw(content_type: &'static str, body: Vec<u8>) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(&self)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_look_like_uuids() {
        let id = request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
        assert_ne!(id, request_id());
    }

    #[test]
    fn envelope_has_vaults_fields() {
        let warnings = ["w".to_owned()];
        let v =
            serde_json::to_value(envelope(Some(json!({"a": 1})), &warnings, None::<()>)).unwrap();
        for key in [
            "request_id",
            "lease_id",
            "renewable",
            "lease_duration",
            "data",
            "warnings",
            "auth",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert_eq!(v["warnings"], json!(["w"]));
        assert_eq!(
            (v["data"]["a"].as_i64(), v["auth"].is_null()),
            (Some(1), true)
        );
        assert_eq!(v["mount_type"], "pki");
        let login = serde_json::to_value(envelope(None::<()>, &[], Some(json!({"t": 1})))).unwrap();
        assert!(login["data"].is_null() && login["warnings"].is_null());
        assert_eq!(login["mount_type"], "kubernetes");
    }
}
