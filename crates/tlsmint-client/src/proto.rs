//! The generated `tlsmint.v1` messages, client (`issuer_client`) and server
//! (`issuer_server`), plus the few hand-written helpers around them.
//!
//! Owns: the Rust view of `proto/tlsmint/v1/issuer.proto`. Must not: print a
//! private key (`IssueResponse` has a redacted `Debug`).

#![allow(missing_docs, missing_debug_implementations, clippy::all)]

use std::fmt;

tonic::include_proto!("tlsmint.v1");

impl fmt::Debug for IssueResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssueResponse")
            .field("certificate", &self.certificate)
            .field("private_key_pem", &"<redacted>")
            .field("private_key_type", &self.private_key_type)
            .finish()
    }
}

/// A protobuf timestamp from Unix seconds.
pub fn timestamp(unix_seconds: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: unix_seconds,
        nanos: 0,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn issue_response_debug_hides_the_key() {
        let resp = IssueResponse {
            certificate: None,
            private_key_pem: "-----BEGIN PRIVATE KEY-----\nsecret\n".into(),
            private_key_type: "ec".into(),
        };
        let shown = format!("{resp:?}");
        assert!(shown.contains("redacted"), "{shown}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    }
}
