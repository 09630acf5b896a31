//! The issuance APIs' side of gRPC `Issue`/`Sign` and Vault `issue`/`sign`: rate
//! limit, role lookup, subjects check, the engine step ([`crate::issuance`], shared
//! with the controllers and the pod-certificate signer), and the audit line.
//!
//! Owns: the order of those checks. Must not: take identity from the request
//! (only from the verified [`Caller`]), or return a key anywhere but the
//! response.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tlsmint_ca::{Issued, NameRequest, PrivateKey};

use super::ApiState;
use super::audit::{self, Channel};
use super::auth::Caller;
use super::error::ApiError;
use super::recent::RecentCert;
use crate::issuance::{self, Failure, Key, Order};
use crate::registry::{MountEntry, Resolved};

/// Issue (server-made key) or sign (caller's CSR).
#[derive(Debug, Clone)]
pub enum Kind {
    /// Vault `issue`, gRPC `Issue`: the engine generates the key.
    Issue,
    /// Vault `sign`, gRPC `Sign`: the CSR, PEM or DER.
    Sign(Vec<u8>),
}

/// One issuance request, whichever API it came from.
#[derive(Debug, Clone)]
pub struct Call {
    /// The role's name.
    pub role: String,
    /// The Vault mount path it was asked under (None for gRPC).
    pub mount_path: Option<String>,
    /// Requested names.
    pub names: NameRequest,
    /// Requested TTL.
    pub ttl: Option<Duration>,
    /// Issue or sign.
    pub kind: Kind,
}

/// What a successful call returns.
#[derive(Debug)]
pub struct Outcome {
    /// The certificate and its chain.
    pub issued: Issued,
    /// The generated key (issue only); each API encodes it as asked.
    pub private_key: Option<PrivateKey>,
    /// The mount that signed.
    pub mount: Arc<MountEntry>,
}

impl Outcome {
    /// What `ca.crt` holds: every root the mount trusts (old and new during a CA
    /// rotation), else the top of the chain.
    pub fn ca_bundle_pem(&self) -> String {
        match self.mount.trust_bundle_pem() {
            trust if !trust.is_empty() => trust,
            _ => self.issued.ca_chain.pem.last().cloned().unwrap_or_default(),
        }
    }
}

/// Runs one call for `caller` and writes the audit line.
pub async fn run(
    state: &ApiState,
    channel: Channel,
    caller: &Caller,
    call: Call,
) -> Result<Outcome, ApiError> {
    let op = match call.kind {
        Kind::Issue => "issue",
        Kind::Sign(_) => "sign",
    };
    let role = call.role.clone();
    let result = run_checked(state, caller, call).await;
    match &result {
        Ok(outcome) => audit::issued(
            channel,
            op,
            caller,
            &role,
            &outcome.mount.name,
            &outcome.issued,
        ),
        Err(err) => audit::denied(channel, op, caller, &role, err),
    }
    result
}

/// The answer to a caller over its rate limit (issuance and revocation share it).
pub fn over_limit(caller: &Caller, limited: super::ratelimit::Limited) -> ApiError {
    ApiError::ResourceExhausted(
        format!(
            "service account {} is over its rate limit; retry in {} ms",
            caller.key(),
            limited.retry_after.as_millis().max(1)
        ),
        limited.retry_after,
    )
}

/// Counts a call against the caller's rate limit. The dev root token has none, as
/// Vault's root token has none: a first load test against dev mode measures the
/// server, not the limiter (dev mode's banner says so).
pub fn check_limit(state: &ApiState, caller: &Caller) -> Result<(), ApiError> {
    if caller.root {
        return Ok(());
    }
    state
        .limiter
        .check(&caller.key(), Instant::now())
        .map_err(|limited| over_limit(caller, limited))
}

async fn run_checked(state: &ApiState, caller: &Caller, call: Call) -> Result<Outcome, ApiError> {
    check_limit(state, caller)?;
    let resolved = match &call.mount_path {
        Some(path) => state.registry.resolve_at_path(path, &call.role)?,
        None => state.registry.resolve(&call.role)?,
    };
    authorize(caller, &resolved)?;
    let Resolved {
        role, mount, ca, ..
    } = resolved;
    let key = match call.kind {
        Kind::Issue => Key::RoleDefault,
        Kind::Sign(csr) => Key::Csr(csr),
    };
    let order = Order {
        ca,
        role,
        identity: caller.identity(),
        names: call.names,
        ttl: call.ttl,
        key,
    };
    let mut issued = issuance::issue(&state.cpu, order)
        .await
        .map_err(|failure| match failure {
            Failure::Engine(e) => ApiError::from(e),
            Failure::Cpu(e) => ApiError::Internal(format!("issuing failed: {e}")),
        })?;
    let key = issued.private_key.take();
    state.recent.insert(
        issued.serial.clone(),
        RecentCert {
            mount: mount.name.clone(),
            certificate_pem: issued.certificate_pem.clone(),
            not_after: issued.not_after,
        },
    );
    Ok(Outcome {
        issued,
        private_key: key,
        mount,
    })
}

/// Whether `asked` (a pod's ServiceAccount) could get a certificate for `names` through
/// `role`: the role is found and Ready, `asked` is in its subjects, and the names pass its
/// policy. Nothing is signed, rate-limited or recorded (`CheckPolicy`).
pub fn check_policy(
    state: &ApiState,
    asked: &Caller,
    role: &str,
    names: &NameRequest,
) -> Result<(), ApiError> {
    let resolved = state.registry.resolve(role)?;
    authorize(asked, &resolved)?;
    resolved
        .role
        .policy
        .check(&asked.identity(), names)
        .map(|_| ())
        .map_err(|e| ApiError::from(tlsmint_ca::Error::from(e)))
}

/// The caller must be one of the role's subjects (the dev root token passes).
fn authorize(caller: &Caller, resolved: &Resolved) -> Result<(), ApiError> {
    if caller.root
        || resolved
            .entry
            .allows(&caller.namespace, &caller.service_account)
    {
        return Ok(());
    }
    Err(ApiError::PermissionDenied(format!(
        "service account {} may not use role \"{}\": it is not in the role's subjects",
        caller.key(),
        resolved.entry.name
    )))
}
