//! The unauthenticated reading endpoints of the Vault API: the CA (`ca`,
//! `ca/pem`, `ca_chain`, `cert/ca`, `cert/ca_chain`), the CRL (`crl`,
//! `crl/pem`, `cert/crl`), one certificate (`cert/<serial>`), OCSP and
//! `sys/health`.
//!
//! Owns: content types and JSON of these reads. Must not: require or read a
//! token (Vault serves these without one).

use axum::response::Response;
use serde_json::json;
use time::OffsetDateTime;
use tlsmint_ca::{Serial, x509};

use super::envelope;
use super::params::clip;
use crate::api::ApiState;
use crate::api::error::ApiError;
use crate::registry::MountEntry;

const PEM_CHAIN: &str = "application/pem-certificate-chain";

/// `GET /v1/sys/health`.
pub fn health() -> Response {
    envelope::json_response(
        http::StatusCode::OK,
        json!({
            "initialized": true,
            "sealed": false,
            "standby": false,
            "performance_standby": false,
            "replication_performance_mode": "disabled",
            "replication_dr_mode": "disabled",
            "server_time_utc": OffsetDateTime::now_utc().unix_timestamp(),
            "version": concat!("tlsmint-", env!("CARGO_PKG_VERSION")),
            "cluster_name": "tlsmint",
            "cluster_id": "",
        }),
    )
}

pub(super) fn ready(mount: &MountEntry) -> Result<&tlsmint_ca::CertificateAuthority, ApiError> {
    match &mount.status {
        crate::registry::MountStatus::Ready(ca) => Ok(ca),
        crate::registry::MountStatus::NotReady(why) => Err(ApiError::FailedPrecondition(format!(
            "mount {:?} is not ready: {why}",
            mount.name
        ))),
    }
}

/// `GET <mount>/ca`: the CA certificate, DER.
pub fn ca_der(mount: &MountEntry) -> Response {
    match ready(mount) {
        Ok(ca) => envelope::raw("application/pkix-cert", ca.certificate_der().to_vec()),
        Err(e) => envelope::error(&e),
    }
}

/// `GET <mount>/ca/pem`.
pub fn ca_pem(mount: &MountEntry) -> Response {
    match ready(mount) {
        Ok(ca) => envelope::raw(PEM_CHAIN, ca.certificate_pem().into_bytes()),
        Err(e) => envelope::error(&e),
    }
}

/// `GET <mount>/ca_chain`: the CA and its parents, PEM.
pub fn ca_chain(mount: &MountEntry) -> Response {
    match ready(mount) {
        Ok(ca) => envelope::raw(PEM_CHAIN, ca.ca_chain_pem().concat().into_bytes()),
        Err(e) => envelope::error(&e),
    }
}

/// `GET <mount>/crl` (DER) and `<mount>/crl/pem`.
pub async fn crl(state: &ApiState, mount: &MountEntry, as_pem: bool) -> Response {
    let result = async {
        let ca = ready(mount)?;
        let published = state
            .revocations
            .crl(mount, ca, OffsetDateTime::now_utc())
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        Ok::<_, ApiError>(if as_pem {
            envelope::raw(
                "application/x-pem-file",
                published.crl.pem.clone().into_bytes(),
            )
        } else {
            envelope::raw("application/pkix-crl", published.crl.der.clone())
        })
    }
    .await;
    result.unwrap_or_else(|e| envelope::error(&e))
}

/// `GET <mount>/cert/<serial>` (and the special `ca`, `ca_chain`, `crl`).
pub async fn cert(state: &ApiState, mount: &MountEntry, serial: &str) -> Response {
    let result = async {
        let ca = ready(mount)?;
        let data = match serial {
            "ca" => json!({
                "certificate": ca.certificate_pem(),
                "revocation_time": 0,
                "revocation_time_rfc3339": "",
                "authority_key_id": ca_authority_key_id(ca),
                "issuer_id": super::inventory::issuer_id(ca),
            }),
            "ca_chain" => json!({
                "certificate": ca.certificate_pem(),
                "ca_chain": ca.ca_chain_pem().concat(),
                "revocation_time": 0,
                "revocation_time_rfc3339": "",
                "authority_key_id": ca_authority_key_id(ca),
                "issuer_id": super::inventory::issuer_id(ca),
            }),
            "crl" => {
                let published = state
                    .revocations
                    .crl(mount, ca, OffsetDateTime::now_utc())
                    .await
                    .map_err(|e| ApiError::Unavailable(e.to_string()))?;
                json!({ "certificate": published.crl.pem, "revocation_time": 0 })
            }
            text => {
                let serial = Serial::parse(text).ok_or_else(|| {
                    ApiError::InvalidArgument(format!(
                        "{:?} is not a serial number (colon-separated hex)",
                        clip(text)
                    ))
                })?;
                let revoked = state
                    .revocations
                    .status(&mount.name, &serial)
                    .await
                    .map_err(|e| ApiError::Unavailable(e.to_string()))?;
                let known = state.recent.get(&serial).filter(|c| c.mount == mount.name);
                if known.is_none() && revoked.is_none() {
                    return Err(ApiError::NotFound(format!(
                        "certificate with serial {} not found on this replica (tlsmint keeps only recently issued certificates in memory)",
                        serial.to_colon_hex()
                    )));
                }
                json!({
                    "certificate": known.map(|c| c.certificate_pem.clone()).unwrap_or_default(),
                    "revocation_time": revoked.map_or(0, |t| t.unix_timestamp()),
                    "revocation_time_rfc3339": revoked.map(x509::rfc3339).unwrap_or_default(),
                    "issuer_id": "",
                })
            }
        };
        Ok::<_, ApiError>(envelope::data(data, &[]))
    }
    .await;
    result.unwrap_or_else(|e| envelope::error(&e))
}

/// The authority key id of a CA certificate: its parent's key id, or its own
/// for a self-signed root.
fn ca_authority_key_id(ca: &tlsmint_ca::CertificateAuthority) -> String {
    match ca.parents_der().first() {
        None => super::inventory::key_id(ca),
        Some(parent) => x509::parse_certificate(parent, "parent CA certificate")
            .ok()
            .and_then(|info| info.subject_key_id)
            .map(|id| super::inventory::colon_hex(&id))
            .unwrap_or_default(),
    }
}

/// `POST <mount>/ocsp` with a DER `OCSPRequest` body.
pub async fn ocsp_post(state: &ApiState, mount: &MountEntry, body: &[u8]) -> Response {
    ocsp_reply(crate::api::ocsp::answer(state, mount, body).await)
}

/// `GET <mount>/ocsp/<base64 request>` (RFC 6960 appendix A.1).
pub async fn ocsp_get(state: &ApiState, mount: &MountEntry, encoded: &str) -> Response {
    ocsp_reply(crate::api::ocsp::answer_get(state, mount, encoded).await)
}

fn ocsp_reply(der: Vec<u8>) -> Response {
    let mut resp = envelope::raw("application/ocsp-response", der);
    resp.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache"),
    );
    resp
}
