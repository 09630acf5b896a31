//! The OCSP responder of each mount (RFC 6960, `POST` and `GET`): parses the
//! request, looks every serial up in the revocation records, and returns the
//! CA-signed answer (good / revoked / unknown) or an error response.
//!
//! "good" means "not revoked": tlsmint does not store the certificates it
//! issues, so it vouches for any serial under a CA it holds (RFC 6960 allows
//! this reading of "good"). "unknown" is for a `CertID` naming another
//! issuer. Owns: that decision. Must not: build DER (the engine does).

use std::time::Duration;

use base64::Engine as _;
use time::OffsetDateTime;
use tlsmint_ca::ocsp::{self, CertStatus, ResponseStatus};

use crate::api::ApiState;
use crate::registry::MountEntry;

/// Answers a DER `OCSPRequest` for `mount`; always returns a DER `OCSPResponse`.
pub async fn answer(state: &ApiState, mount: &MountEntry, der: &[u8]) -> Vec<u8> {
    let Some(ca) = mount.ca() else {
        return ocsp::error_response(ResponseStatus::TryLater);
    };
    let request = match ocsp::parse_request(der) {
        Ok(request) => request,
        Err(err) => {
            tracing::debug!(mount = %mount.name, error = %err, "OCSP request refused");
            return ocsp::error_response(ResponseStatus::MalformedRequest);
        }
    };
    let mut answers = Vec::with_capacity(request.certs.len());
    for id in &request.certs {
        let status = if !ca.ocsp_matches(id) {
            CertStatus::Unknown
        } else {
            match state.revocations.status(&mount.name, &id.serial).await {
                Ok(Some(at)) => CertStatus::Revoked(at),
                Ok(None) => CertStatus::Good,
                Err(err) => {
                    tracing::warn!(mount = %mount.name, error = %err, "OCSP: revocation state unavailable");
                    return ocsp::error_response(ResponseStatus::TryLater);
                }
            }
        };
        answers.push(status);
    }
    let validity: Duration = state.settings.ocsp_validity;
    match ca.ocsp_response(&request, &answers, OffsetDateTime::now_utc(), validity) {
        Ok(der) => der,
        Err(err) => {
            tracing::warn!(mount = %mount.name, error = %err, "OCSP: signing failed");
            ocsp::error_response(ResponseStatus::InternalError)
        }
    }
}

/// Answers `GET <mount>/ocsp/<base64>`: the request is base64 (standard or
/// URL-safe alphabet, percent-encoded or not) of the DER request.
pub async fn answer_get(state: &ApiState, mount: &MountEntry, encoded: &str) -> Vec<u8> {
    match decode_get(encoded) {
        Some(der) => answer(state, mount, &der).await,
        None => ocsp::error_response(ResponseStatus::MalformedRequest),
    }
}

fn decode_get(encoded: &str) -> Option<Vec<u8>> {
    if encoded.len() > 4 * ocsp::MAX_REQUEST_BYTES {
        return None;
    }
    // A GET request's path segment may be percent-encoded (RFC 6960 A.1), and
    // a literal '+' in it is still '+', never a space.
    let text = percent_encoding::percent_decode_str(encoded).collect::<Vec<u8>>();
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE,
    ];
    engines.iter().find_map(|e| e.decode(&text).ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn decodes_get_requests_in_both_alphabets() {
        assert_eq!(decode_get("MAA%3D").unwrap(), vec![0x30, 0x00]);
        assert_eq!(decode_get("MAA=").unwrap(), vec![0x30, 0x00]);
        assert_eq!(decode_get("_-8=").unwrap(), vec![0xff, 0xef]);
        assert_eq!(decode_get("MAA%3d").unwrap(), vec![0x30, 0x00]);
        assert_eq!(decode_get("%2B%2f8%3D").unwrap(), vec![0xfb, 0xff]);
        assert!(decode_get("!!").is_none());
        assert!(decode_get("%ZZ").is_none());
    }
}
