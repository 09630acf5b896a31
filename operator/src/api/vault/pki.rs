//! The writing endpoints of the Vault API: `auth/kubernetes/login`,
//! `<mount>/issue/<role>`, `<mount>/sign/<role>` and `<mount>/revoke`.
//!
//! Owns: Vault's request fields and response `data` for these calls. Must
//! not: return a private key except in the `issue` response it belongs to.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use tlsmint_ca::ExposeSecret as _;
use tlsmint_ca::{KeyAlgorithm, KeyEncoding, NameRequest, PrivateKey, Serial, pem, x509};

use super::params::{self, IssueBody, LoginBody, RevokeBody, clip};
use super::{caller, envelope};
use crate::api::ApiState;
use crate::api::audit::{self, Channel};
use crate::api::error::ApiError;
use crate::api::issue::{self, Call, Kind, Outcome};
use crate::registry::MountEntry;

/// `POST /v1/auth/kubernetes/login` with `role` and `jwt`.
pub async fn login(state: &ApiState, body: &[u8]) -> Response {
    let result = async {
        let body: LoginBody = params::parse(body)?;
        let role = body
            .role
            .0
            .ok_or_else(|| ApiError::InvalidArgument("missing role".into()))?;
        let jwt = body
            .jwt
            .filter(|jwt| !jwt.expose_secret().is_empty())
            .ok_or_else(|| ApiError::InvalidArgument("missing jwt".into()))?;
        let caller = state
            .auth
            .authenticate(jwt.expose_secret())
            .await
            .map_err(|e| match ApiError::from(e) {
                ApiError::Unauthenticated(m) => {
                    ApiError::Unauthenticated(format!("permission denied: {m}"))
                }
                other => other,
            })
            .inspect_err(|e| audit::unauthenticated(Channel::Vault, "login", e))?;
        let ttl = state.settings.client_token_ttl;
        let expires = OffsetDateTime::now_utc() + ttl;
        let token = state.tokens.mint(&caller, &role, expires);
        tracing::info!(
            target: "tlsmint::audit",
            audit = true,
            audit.event = "login",
            audit.api = "vault",
            caller = %caller.key(),
            role = %clip(&role),
            "client token issued"
        );
        Ok::<_, ApiError>(envelope::auth(json!({
            "client_token": token,
            "accessor": super::tokens::accessor(&token),
            "policies": ["default"],
            "token_policies": ["default"],
            "metadata": {
                "role": role,
                "service_account_name": caller.service_account,
                "service_account_namespace": caller.namespace,
                "service_account_uid": "",
                "service_account_secret_name": "",
            },
            "lease_duration": ttl.as_secs(),
            "renewable": false,
            "entity_id": "",
            "token_type": "service",
            "orphan": true,
        })))
    }
    .await;
    result.unwrap_or_else(|e| envelope::error(&e))
}

/// `POST /v1/<mount>/issue/<role>` and `/sign/<role>`.
pub async fn issue(
    state: &Arc<ApiState>,
    headers: &HeaderMap,
    mount: &MountEntry,
    role: &str,
    body: &[u8],
    sign: bool,
) -> Response {
    let op = if sign { "sign" } else { "issue" };
    let result = async {
        let caller = caller(state, headers, op).await?;
        let params: IssueBody = params::parse(body)?;
        if !params.other_sans.0.is_empty() {
            return Err(ApiError::InvalidArgument(
                "other_sans is not supported by tlsmint".into(),
            ));
        }
        let format = Format::parse(params.format.get())?;
        let key_format = params.private_key_format.0.clone();
        let ttl = params.lifetime(OffsetDateTime::now_utc())?;
        let kind = if sign {
            let csr = params
                .csr
                .0
                .ok_or_else(|| ApiError::InvalidArgument("missing csr".into()))?;
            Kind::Sign(csr.into_bytes())
        } else {
            Kind::Issue
        };
        let call = Call {
            role: role.to_owned(),
            mount_path: Some(mount.path.clone()),
            names: NameRequest {
                common_name: params.common_name.0,
                dns_names: params.alt_names.0,
                ip_addresses: params.ip_sans.0,
                uris: params.uri_sans.0,
            },
            ttl,
            kind,
        };
        let outcome = issue::run(state, Channel::Vault, &caller, call).await?;
        Ok(envelope::data(
            issue_data(&outcome, format, key_format.as_deref())?,
            &outcome.issued.warnings,
        ))
    }
    .await;
    result.unwrap_or_else(|e| envelope::error(&e))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    Pem,
    Der,
    PemBundle,
}

impl Format {
    pub(super) fn parse(text: Option<&str>) -> Result<Self, ApiError> {
        match text.unwrap_or("pem") {
            "pem" => Ok(Format::Pem),
            "der" => Ok(Format::Der),
            "pem_bundle" => Ok(Format::PemBundle),
            other => Err(ApiError::InvalidArgument(format!(
                "format {:?} is not pem, der or pem_bundle",
                clip(other)
            ))),
        }
    }

    /// A certificate in this format, from the engine's two forms (no PEM round trip,
    /// no copy of a PEM).
    pub(super) fn cert<'a>(self, der: &[u8], pem_text: &'a str) -> Cow<'a, str> {
        match self {
            Format::Pem | Format::PemBundle => Cow::Borrowed(pem_text.trim_end()),
            Format::Der => Cow::Owned(STANDARD.encode(der)),
        }
    }
}

/// The `data` of an issue or sign answer, as Vault names its fields.
#[derive(Serialize)]
struct IssueData<'a> {
    certificate: Cow<'a, str>,
    issuing_ca: Cow<'a, str>,
    ca_chain: Vec<Cow<'a, str>>,
    serial_number: String,
    expiration: i64,
    not_before: i64,
    /// The signing CA's subject key id, colon hex (Vault 1.16+).
    authority_key_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    private_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    private_key_type: Option<&'static str>,
}

fn issue_data<'a>(
    outcome: &'a Outcome,
    format: Format,
    key_format: Option<&str>,
) -> Result<IssueData<'a>, ApiError> {
    let issued = &outcome.issued;
    let ca_chain: Vec<Cow<'a, str>> = issued
        .ca_chain
        .der
        .iter()
        .zip(issued.ca_chain.pem.iter())
        .map(|(der, pem)| format.cert(der, pem))
        .collect();
    let issuing_ca = ca_chain.first().cloned().unwrap_or_default();
    let leaf = format.cert(&issued.certificate_der, &issued.certificate_pem);
    let (certificate, private_key, private_key_type) = match &outcome.private_key {
        Some(key) => {
            let key_text = private_key(key, format, key_format)?;
            let certificate = if format == Format::PemBundle {
                Cow::Owned(format!("{}\n{leaf}\n{issuing_ca}", key_text.trim_end()))
            } else {
                leaf
            };
            (certificate, Some(key_text), Some(key.spec().vault_type()))
        }
        None if format == Format::PemBundle => {
            (Cow::Owned(format!("{leaf}\n{issuing_ca}")), None, None)
        }
        None => (leaf, None, None),
    };
    Ok(IssueData {
        certificate,
        issuing_ca,
        ca_chain,
        serial_number: issued.serial.to_colon_hex(),
        expiration: issued.not_after.unix_timestamp(),
        not_before: issued.not_before.unix_timestamp(),
        authority_key_id: outcome
            .mount
            .ca()
            .map(|ca| super::inventory::key_id(ca))
            .unwrap_or_default(),
        private_key,
        private_key_type,
    })
}

/// The key as Vault returns it: PEM in the key's own form (`EC PRIVATE KEY`,
/// `RSA PRIVATE KEY`, PKCS#8 for Ed25519), PKCS#8 with
/// `private_key_format=pkcs8`, base64 DER with `format=der`.
pub(super) fn private_key(
    key: &PrivateKey,
    format: Format,
    key_format: Option<&str>,
) -> Result<String, ApiError> {
    let encoding = match key_format.unwrap_or("pem") {
        "pkcs8" => KeyEncoding::Pkcs8,
        "pem" | "der" => match key.spec().algorithm() {
            KeyAlgorithm::Ecdsa => KeyEncoding::Sec1,
            KeyAlgorithm::Rsa => KeyEncoding::Pkcs1,
            KeyAlgorithm::Ed25519 => KeyEncoding::Pkcs8,
        },
        other => {
            return Err(ApiError::InvalidArgument(format!(
                "private_key_format {:?} is not pem, der or pkcs8",
                clip(other)
            )));
        }
    };
    if format == Format::Der || key_format == Some("der") {
        return Ok(STANDARD.encode(key.pkcs8_der()));
    }
    Ok(key.to_pem(encoding)?.expose_secret().trim_end().to_owned())
}

/// `POST /v1/<mount>/revoke` (`serial_number` or `certificate`; needs the
/// `revoke` right on the mount, see [`crate::api::rights`]) and
/// `POST /v1/<mount>/revoke-with-key` (`certificate`, or the `serial_number`
/// of a certificate this replica issued, plus its `private_key`; proof of
/// possession, no right needed). Both count against the caller's rate limit.
pub async fn revoke(
    state: &ApiState,
    headers: &HeaderMap,
    mount: &MountEntry,
    body: &[u8],
    with_key: bool,
) -> Response {
    let op = if with_key {
        "revoke-with-key"
    } else {
        "revoke"
    };
    let result = async {
        let caller = caller(state, headers, op).await?;
        revoke_checked(state, &caller, mount, body, with_key)
            .await
            .inspect_err(|e| audit::denied(Channel::Vault, op, &caller, "", e))
    }
    .await;
    result.unwrap_or_else(|e| envelope::error(&e))
}

async fn revoke_checked(
    state: &ApiState,
    caller: &crate::api::auth::Caller,
    mount: &MountEntry,
    body: &[u8],
    with_key: bool,
) -> Result<Response, ApiError> {
    issue::check_limit(state, caller)?;
    let ca = mount.ca().ok_or_else(|| {
        ApiError::FailedPrecondition(format!("mount {:?} is not ready", mount.name))
    })?;
    let params: RevokeBody = params::parse(body)?;
    let now = OffsetDateTime::now_utc();
    let grace = state.settings.revoked_grace;
    let serial_text = params.serial_number.0;
    let cert_text = params.certificate.0;
    if serial_text.is_some() && cert_text.is_some() {
        return Err(ApiError::InvalidArgument(
            "give serial_number or certificate, not both".into(),
        ));
    }
    let serial_given = match &serial_text {
        Some(text) => Some(Serial::parse(text).ok_or_else(|| {
            ApiError::InvalidArgument(format!(
                "serial_number {:?} is not colon-separated hex",
                clip(text)
            ))
        })?),
        None => None,
    };
    let (serial, not_after, by, proof) = if with_key {
        // Zeroed when dropped; neither it nor a parse error of it is logged or echoed.
        let key_text = params
            .private_key
            .filter(|k| !k.expose_secret().is_empty())
            .ok_or_else(|| {
                ApiError::InvalidArgument(
                "missing private_key: revoke-with-key needs the certificate's private key (PEM)"
                    .into(),
            )
            })?;
        let (pem_text, by) = match (cert_text, &serial_given) {
            (Some(cert), _) => (cert, "certificate"),
            (None, Some(serial)) => match state.recent.get(serial) {
                Some(known) if known.mount == mount.name => {
                    (known.certificate_pem.clone(), "serial")
                }
                _ => {
                    return Err(ApiError::InvalidArgument(format!(
                        "certificate {serial} is not known to this server: give the certificate itself (PEM) with its private_key"
                    )));
                }
            },
            (None, None) => {
                return Err(ApiError::InvalidArgument(
                    "missing certificate (or serial_number) to revoke".into(),
                ));
            }
        };
        let der = pem::decode_certificate(&pem_text)?;
        issued_by_mount(&der, ca.certificate_der(), mount)?;
        let key = PrivateKey::from_pem(key_text.expose_secret()).map_err(|e| {
            ApiError::InvalidArgument(format!(
                "private_key is not a usable private key: {}",
                e.report()
            ))
        })?;
        x509::key_matches_certificate(&der, &key).map_err(|reason| {
            ApiError::InvalidArgument(format!(
                "private_key does not prove possession of the certificate: {reason}"
            ))
        })?;
        let info = x509::parse_certificate(&der, "revoked")?;
        (info.serial, info.not_after, by, "private_key")
    } else {
        let missing = || ApiError::InvalidArgument("missing serial_number or certificate".into());
        if serial_given.is_none() && cert_text.is_none() {
            return Err(missing());
        }
        state.rights.may_revoke(caller, &mount.name).await?;
        let proof = if caller.root { "root_token" } else { "rbac" };
        match (serial_given, cert_text) {
            (_, Some(cert)) => {
                let der = pem::decode_certificate(&cert)?;
                issued_by_mount(&der, ca.certificate_der(), mount)?;
                let info = x509::parse_certificate(&der, "revoked")?;
                (info.serial, info.not_after, "certificate", proof)
            }
            (Some(serial), None) => {
                let not_after = match state.recent.get(&serial) {
                    Some(known) if known.mount == mount.name => known.not_after,
                    Some(known) => {
                        return Err(ApiError::InvalidArgument(format!(
                            "certificate {serial} was issued by mount {:?}, not by {:?}",
                            known.mount, mount.name
                        )));
                    }
                    None => now + longest_leaf(state, mount),
                };
                (serial, not_after, "serial", proof)
            }
            (None, None) => return Err(missing()),
        }
    };
    let at = state
        .revocations
        .revoke(
            &mount.name,
            &serial,
            not_after + grace,
            now,
            crate::revocation::Origin::Api,
        )
        .await
        .map_err(|e| match e {
            crate::revocation::RevocationError::Store(
                full @ crate::revocation::StoreError::Full { .. },
            ) => ApiError::FailedPrecondition(full.to_string()),
            other => ApiError::Unavailable(other.to_string()),
        })?;
    audit::revoked(
        Channel::Vault,
        audit::Revoked {
            op: if with_key {
                "revoke-with-key"
            } else {
                "revoke"
            },
            caller,
            mount: &mount.name,
            serial: &serial,
            by,
            proof,
            keep_until: not_after + grace,
        },
    );
    Ok(envelope::data(
        json!({
            "revocation_time": at.unix_timestamp(),
            "revocation_time_rfc3339": x509::rfc3339(at),
            "state": "revoked",
        }),
        &[],
    ))
}

/// Refuses a certificate the mount did not sign.
fn issued_by_mount(der: &[u8], ca_der: &[u8], mount: &MountEntry) -> Result<(), ApiError> {
    x509::verify_issued_by(der, ca_der).map_err(|reason| {
        ApiError::InvalidArgument(format!(
            "the certificate was not issued by mount {:?}: {reason}",
            mount.name
        ))
    })
}

/// The longest lifetime a leaf of `mount` can have: the mount's maxTTL, else
/// the largest maxTTL of its roles (24h when it has none), never past the CA.
fn longest_leaf(state: &ApiState, mount: &MountEntry) -> time::Duration {
    let roles = state.registry.roles_of(&mount.name);
    let from_roles = roles
        .iter()
        .filter_map(|r| match &r.status {
            crate::registry::RoleStatus::Ready(role) => Some(role.profile.lifetimes.max_ttl),
            crate::registry::RoleStatus::Invalid(_) => None,
        })
        .max()
        .unwrap_or(Duration::from_secs(24 * 3600));
    let longest = mount
        .ca()
        .and_then(|ca| ca.options().max_ttl)
        .map_or(from_roles, |m| m.min(from_roles));
    time::Duration::try_from(longest).unwrap_or(time::Duration::DAY)
}
