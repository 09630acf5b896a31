//! Vault's response shapes: the success envelope (`request_id`, `lease_id`,
//! `renewable`, `lease_duration`, `data`, `wrap_info`, `warnings`, `auth`),
//! the `{"errors": [...]}` error body, and raw PEM/DER bodies.
//!
//! Owns: those shapes. Must not: put a token or key anywhere but the field
//! the caller asked for.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use serde_json::{Value, json};

use crate::api::error::ApiError;

/// A Vault-style request id (random UUID v4 text).
pub fn request_id() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn envelope(data: Value, warnings: &[String], auth: Value) -> Value {
    json!({
        "request_id": request_id(),
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": data,
        "wrap_info": null,
        "warnings": if warnings.is_empty() { Value::Null } else { json!(warnings) },
        "auth": auth,
        "mount_type": if auth.is_null() { "pki" } else { "kubernetes" },
    })
}

/// `200` with `data` in the envelope.
pub fn data(data: Value, warnings: &[String]) -> Response {
    json_response(StatusCode::OK, envelope(data, warnings, Value::Null))
}

/// `200` with an `auth` block (login).
pub fn auth(auth: Value) -> Response {
    json_response(StatusCode::OK, envelope(Value::Null, &[], auth))
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
        let v = envelope(json!({"a": 1}), &["w".into()], Value::Null);
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
    }
}
