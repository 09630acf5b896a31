//! The audit trail: one structured log line (target `tlsmint::audit`) per
//! issuance, denial and revocation, with the caller, role, names, serial and
//! notAfter.
//!
//! Owns: the field names of audit lines. Must not: log a private key, a
//! token, or a whole request.

use tlsmint_ca::{Issued, Serial, ValidatedNames};

use super::auth::Caller;
use super::error::ApiError;

/// Which API a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// `tlsmint.v1.Issuer` over gRPC.
    Grpc,
    /// The Vault-compatible HTTP API.
    Vault,
    /// Kubernetes' PodCertificateRequests, signed by the operator.
    PodCertificate,
}

impl Channel {
    fn as_str(self) -> &'static str {
        match self {
            Channel::Grpc => "grpc",
            Channel::Vault => "vault",
            Channel::PodCertificate => "pod-certificate",
        }
    }
}

/// Names as one comma-separated field.
pub fn names(names: &ValidatedNames) -> String {
    let mut out: Vec<String> = Vec::new();
    out.extend(names.common_name.iter().map(|cn| format!("cn={cn}")));
    out.extend(names.dns_names.iter().map(|n| format!("dns={n}")));
    out.extend(names.ip_addresses.iter().map(|n| format!("ip={n}")));
    out.extend(names.uris.iter().map(|n| format!("uri={n}")));
    out.extend(names.email_addresses.iter().map(|n| format!("email={n}")));
    out.join(",")
}

/// A certificate was issued.
pub fn issued(
    channel: Channel,
    op: &'static str,
    caller: &Caller,
    role: &str,
    mount: &str,
    issued: &Issued,
) {
    tracing::info!(
        target: "tlsmint::audit",
        audit = true,
        audit.event = "issued",
        audit.api = channel.as_str(),
        audit.op = op,
        caller = %caller.key(),
        caller.root = caller.root,
        pod.name = caller.pod_name.as_deref().unwrap_or(""),
        pod.uid = caller.pod_uid.as_deref().unwrap_or(""),
        role,
        mount,
        x509.names = %names(&issued.names),
        x509.serial = %issued.serial,
        x509.not_after = issued.not_after.unix_timestamp(),
        "certificate issued"
    );
}

/// A request was refused after authentication.
pub fn denied(channel: Channel, op: &'static str, caller: &Caller, role: &str, err: &ApiError) {
    tracing::warn!(
        target: "tlsmint::audit",
        audit = true,
        audit.event = "denied",
        audit.api = channel.as_str(),
        audit.op = op,
        caller = %caller.key(),
        pod.name = caller.pod_name.as_deref().unwrap_or(""),
        pod.uid = caller.pod_uid.as_deref().unwrap_or(""),
        role,
        error.kind = err.label(),
        error.message = %err.message(),
        "request denied"
    );
}

/// A request was refused before the caller was known (bad token).
pub fn unauthenticated(channel: Channel, op: &'static str, err: &ApiError) {
    tracing::warn!(
        target: "tlsmint::audit",
        audit = true,
        audit.event = "unauthenticated",
        audit.api = channel.as_str(),
        audit.op = op,
        error.kind = err.label(),
        error.message = %err.message(),
        "request not authenticated"
    );
}

/// What the audit line of a revocation says.
#[derive(Debug)]
pub struct Revoked<'a> {
    /// `revoke` or `revoke-with-key`.
    pub op: &'static str,
    /// Who revoked.
    pub caller: &'a Caller,
    /// The mount.
    pub mount: &'a str,
    /// The revoked serial.
    pub serial: &'a Serial,
    /// What identified the certificate: `serial` or `certificate`.
    pub by: &'static str,
    /// What allowed it: `rbac` (the `revoke` right), `root_token` (dev) or
    /// `private_key` (proof of possession).
    pub proof: &'static str,
    /// When the entry may leave the revocation list.
    pub keep_until: time::OffsetDateTime,
}

/// A certificate was revoked: who did it, how the certificate was named and
/// what allowed it.
pub fn revoked(channel: Channel, r: Revoked<'_>) {
    tracing::info!(
        target: "tlsmint::audit",
        audit = true,
        audit.event = "revoked",
        audit.api = channel.as_str(),
        audit.op = r.op,
        caller = %r.caller.key(),
        caller.root = r.caller.root,
        pod.name = r.caller.pod_name.as_deref().unwrap_or(""),
        pod.uid = r.caller.pod_uid.as_deref().unwrap_or(""),
        mount = r.mount,
        x509.serial = %r.serial,
        revoke.by = r.by,
        revoke.proof = r.proof,
        revoke.keep_until = r.keep_until.unix_timestamp(),
        "certificate revoked"
    );
}
