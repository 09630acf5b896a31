//! The `tlsmint.v1.Issuer` gRPC service: bearer-token authentication, then
//! the shared issuance path ([`super::issue`]).
//!
//! Owns: proto <-> engine mapping and gRPC status codes. Must not: log
//! request bodies, tokens or keys.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tlsmint_ca::ExposeSecret as _;
use tlsmint_ca::{KeyEncoding, NameRequest};
use tlsmint_client::proto::issuer_server::{Issuer, IssuerServer};
use tlsmint_client::proto::{
    CheckPolicyRequest, CheckPolicyResponse, GetCaBundleRequest, GetCaBundleResponse, IssueRequest,
    IssueResponse, IssuedCertificate, Names, SignRequest, SignResponse, timestamp,
};
use tonic::{Request, Response, Status};

use super::ApiState;
use super::audit::{self, Channel};
use super::auth::Caller;
use super::error::ApiError;
use super::issue::{self, Call, Kind, Outcome};
use super::metrics::{Api, Endpoint, ResultClass};
use crate::registry::RoleStatus;

/// Largest gRPC message accepted (a CSR is a few KiB).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// The service implementation.
#[derive(Debug, Clone)]
pub struct IssuerService {
    state: Arc<ApiState>,
}

impl IssuerService {
    /// The tonic server for `state`.
    pub fn server(state: Arc<ApiState>) -> IssuerServer<Self> {
        IssuerServer::new(IssuerService { state }).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// Runs one call and counts its answer by endpoint, role and class.
    async fn observed<T>(
        &self,
        endpoint: Endpoint,
        role: &str,
        call: impl Future<Output = Result<T, Status>>,
    ) -> Result<T, Status> {
        let started = Instant::now();
        let result = call.await;
        let class = match &result {
            Ok(_) => ResultClass::OK,
            Err(status) => ResultClass::of_code(status.code()),
        };
        let role = (!role.is_empty()).then_some(role);
        self.state.metrics.record(
            &self.state.registry,
            Api::Grpc,
            endpoint,
            role,
            class,
            started.elapsed(),
        );
        result
    }

    async fn caller<T>(&self, op: &'static str, req: &Request<T>) -> Result<Caller, Status> {
        let token = bearer(req);
        let result = match token {
            None => Err(super::auth::AuthError::Missing),
            Some(token) => self.state.auth.authenticate(token).await,
        };
        result.map_err(|e| {
            let err = ApiError::from(e);
            audit::unauthenticated(Channel::Grpc, op, &err);
            Status::from(err)
        })
    }
}

/// The token of `authorization: Bearer <token>`, if any.
fn bearer<T>(req: &Request<T>) -> Option<&str> {
    super::auth::bearer_token(req.metadata().get("authorization")?.to_str().ok()?)
}

fn names(names: Option<Names>) -> NameRequest {
    let names = names.unwrap_or_default();
    NameRequest {
        common_name: Some(names.common_name).filter(|cn| !cn.is_empty()),
        dns_names: names.dns_names,
        ip_addresses: names.ip_addresses,
        uris: names.uris,
    }
}

fn ttl(seconds: u64) -> Option<Duration> {
    (seconds > 0).then(|| crate::api::vault::params::ttl_from_secs(seconds))
}

/// The deprecated text form (`key_encoding_name`); empty is unspecified.
fn encoding_by_name(text: &str) -> Result<Option<KeyEncoding>, Status> {
    match text.to_ascii_uppercase().as_str() {
        "" => Ok(None),
        "PKCS8" => Ok(Some(KeyEncoding::Pkcs8)),
        "PKCS1" => Ok(Some(KeyEncoding::Pkcs1)),
        "SEC1" => Ok(Some(KeyEncoding::Sec1)),
        _ => Err(Status::invalid_argument(format!(
            "key_encoding_name {:?} is not PKCS8, PKCS1 or SEC1",
            text.chars().take(32).collect::<String>()
        ))),
    }
}

/// The key encoding an `IssueRequest` asks for: the `key_encoding` enum, or the
/// deprecated `key_encoding_name` of older clients when the enum is unspecified; PKCS8
/// when neither is given. The two may not disagree.
fn encoding(req: &IssueRequest) -> Result<KeyEncoding, Status> {
    use tlsmint_client::proto::KeyEncoding as Wire;
    let by_enum = match Wire::try_from(req.key_encoding) {
        Ok(Wire::Unspecified) => None,
        Ok(Wire::Pkcs8) => Some(KeyEncoding::Pkcs8),
        Ok(Wire::Pkcs1) => Some(KeyEncoding::Pkcs1),
        Ok(Wire::Sec1) => Some(KeyEncoding::Sec1),
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "key_encoding {} is not a KeyEncoding (PKCS8 = 1, PKCS1 = 2, SEC1 = 3)",
                req.key_encoding
            )));
        }
    };
    let by_name = encoding_by_name(&req.key_encoding_name)?;
    match (by_enum, by_name) {
        (Some(a), Some(b)) if a != b => Err(Status::invalid_argument(format!(
            "key_encoding {} and key_encoding_name {} disagree; give key_encoding only",
            a.name(),
            b.name()
        ))),
        (Some(encoding), _) | (None, Some(encoding)) => Ok(encoding),
        (None, None) => Ok(KeyEncoding::Pkcs8),
    }
}

fn certificate(outcome: &Outcome) -> IssuedCertificate {
    let issued = &outcome.issued;
    IssuedCertificate {
        certificate_pem: issued.certificate_pem.clone(),
        ca_chain_pem: issued.ca_chain.pem.to_vec(),
        ca_bundle_pem: outcome.ca_bundle_pem(),
        serial_number: issued.serial.to_colon_hex(),
        not_before: Some(timestamp(issued.not_before.unix_timestamp())),
        not_after: Some(timestamp(issued.not_after.unix_timestamp())),
        warnings: issued.warnings.clone(),
    }
}

fn require_role(role: &str) -> Result<(), Status> {
    if role.is_empty() {
        return Err(Status::invalid_argument("role is required"));
    }
    Ok(())
}

/// Every call is timed and counted (`tlsmint_api_*`) around its inner method.
#[tonic::async_trait]
impl Issuer for IssuerService {
    async fn check_policy(
        &self,
        req: Request<CheckPolicyRequest>,
    ) -> Result<Response<CheckPolicyResponse>, Status> {
        let role = req.get_ref().role.clone();
        self.observed(Endpoint::CheckPolicy, &role, self.check_policy_inner(req))
            .await
    }

    async fn issue(&self, req: Request<IssueRequest>) -> Result<Response<IssueResponse>, Status> {
        let role = req.get_ref().role.clone();
        self.observed(Endpoint::Issue, &role, self.issue_inner(req))
            .await
    }

    async fn sign(&self, req: Request<SignRequest>) -> Result<Response<SignResponse>, Status> {
        let role = req.get_ref().role.clone();
        self.observed(Endpoint::Sign, &role, self.sign_inner(req))
            .await
    }

    async fn get_ca_bundle(
        &self,
        req: Request<GetCaBundleRequest>,
    ) -> Result<Response<GetCaBundleResponse>, Status> {
        let role = req.get_ref().role.clone();
        self.observed(Endpoint::Ca, &role, self.get_ca_bundle_inner(req))
            .await
    }
}

impl IssuerService {
    async fn check_policy_inner(
        &self,
        req: Request<CheckPolicyRequest>,
    ) -> Result<Response<CheckPolicyResponse>, Status> {
        let caller = self.caller("check_policy", &req).await?;
        if !caller.root && !self.state.policy_checkers.contains(&caller.key()) {
            return Err(Status::permission_denied(format!(
                "service account {} may not call CheckPolicy (the operator's --policy-check-callers lists who may)",
                caller.key()
            )));
        }
        let body = req.into_inner();
        require_role(&body.role)?;
        if body.namespace.is_empty() || body.service_account.is_empty() {
            return Err(Status::invalid_argument(
                "namespace and service_account are required",
            ));
        }
        let asked = Caller::service_account(&body.namespace, &body.service_account);
        let answer = issue::check_policy(&self.state, &asked, &body.role, &names(body.names));
        let response = match answer {
            Ok(()) => CheckPolicyResponse {
                allowed: true,
                reason: String::new(),
            },
            Err(err @ (ApiError::Internal(_) | ApiError::Unavailable(_))) => {
                return Err(Status::from(err));
            }
            Err(err) => CheckPolicyResponse {
                allowed: false,
                reason: err.message().to_owned(),
            },
        };
        Ok(Response::new(response))
    }

    async fn issue_inner(
        &self,
        req: Request<IssueRequest>,
    ) -> Result<Response<IssueResponse>, Status> {
        let caller = self.caller("issue", &req).await?;
        let body = req.into_inner();
        require_role(&body.role)?;
        let key_encoding = encoding(&body)?;
        let call = Call {
            role: body.role,
            mount_path: None,
            names: names(body.names),
            ttl: ttl(body.ttl_seconds),
            kind: Kind::Issue,
        };
        // Refuse before issuing: a certificate whose key cannot be returned is useless.
        if let Some(entry) = self.state.registry.role(&call.role)
            && let RoleStatus::Ready(role) = &entry.status
            && !tlsmint_client::keys::encoding_fits(key_encoding, role.profile.key.algorithm())
        {
            return Err(Status::invalid_argument(format!(
                "key_encoding {} cannot hold the {} key of role \"{}\" (PKCS1 is RSA only, SEC1 ECDSA only)",
                key_encoding.name(),
                role.profile.key,
                call.role
            )));
        }
        let outcome = issue::run(&self.state, Channel::Grpc, &caller, call).await?;
        let (key, key_type) = match &outcome.private_key {
            Some(key) => (
                key.to_pem(key_encoding)
                    .map_err(|e| Status::from(ApiError::from(e)))?
                    .expose_secret()
                    .to_owned(),
                key.spec().vault_type().to_owned(),
            ),
            None => (String::new(), String::new()),
        };
        Ok(Response::new(IssueResponse {
            certificate: Some(certificate(&outcome)),
            private_key_pem: key,
            private_key_type: key_type,
        }))
    }

    async fn sign_inner(
        &self,
        req: Request<SignRequest>,
    ) -> Result<Response<SignResponse>, Status> {
        let caller = self.caller("sign", &req).await?;
        let body = req.into_inner();
        require_role(&body.role)?;
        if body.csr.is_empty() {
            return Err(Status::invalid_argument("csr is required (PEM or DER)"));
        }
        let call = Call {
            role: body.role,
            mount_path: None,
            names: names(body.names),
            ttl: ttl(body.ttl_seconds),
            kind: Kind::Sign(body.csr),
        };
        let outcome = issue::run(&self.state, Channel::Grpc, &caller, call).await?;
        Ok(Response::new(SignResponse {
            certificate: Some(certificate(&outcome)),
        }))
    }

    async fn get_ca_bundle_inner(
        &self,
        req: Request<GetCaBundleRequest>,
    ) -> Result<Response<GetCaBundleResponse>, Status> {
        self.caller("ca_bundle", &req).await?;
        let body = req.into_inner();
        let mount = match (body.role.is_empty(), body.mount.is_empty()) {
            (false, true) => {
                let role =
                    self.state.registry.role(&body.role).ok_or_else(|| {
                        Status::not_found(format!("role {:?} not found", body.role))
                    })?;
                role.mount.clone()
            }
            (true, false) => body.mount,
            _ => {
                return Err(Status::invalid_argument(
                    "give exactly one of role and mount",
                ));
            }
        };
        let entry = self
            .state
            .registry
            .mount(&mount)
            .ok_or_else(|| Status::not_found(format!("mount {mount:?} not found")))?;
        let ca = entry
            .ca()
            .ok_or_else(|| Status::failed_precondition(format!("mount {mount:?} is not ready")))?;
        Ok(Response::new(GetCaBundleResponse {
            ca_bundle_pem: entry.trust_bundle_pem(),
            ca_chain_pem: ca.ca_chain_pem(),
        }))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_bearer_tokens_only() {
        let mut req = Request::new(());
        assert_eq!(bearer(&req), None);
        req.metadata_mut()
            .insert("authorization", "Bearer abc".parse().unwrap());
        assert_eq!(bearer(&req), Some("abc"));
        req.metadata_mut()
            .insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(bearer(&req), None);
    }

    #[test]
    fn parses_key_encodings_by_enum_and_by_the_deprecated_name() {
        use tlsmint_client::proto::KeyEncoding as Wire;
        let req = |wire: i32, name: &str| IssueRequest {
            key_encoding: wire,
            key_encoding_name: name.into(),
            ..IssueRequest::default()
        };
        assert_eq!(encoding(&req(0, "")).unwrap(), KeyEncoding::Pkcs8);
        assert_eq!(
            encoding(&req(Wire::Sec1.into(), "")).unwrap(),
            KeyEncoding::Sec1
        );
        assert_eq!(
            encoding(&req(Wire::Pkcs1.into(), "PKCS1")).unwrap(),
            KeyEncoding::Pkcs1
        );
        // Older clients send only the text form.
        assert_eq!(encoding(&req(0, "sec1")).unwrap(), KeyEncoding::Sec1);
        for bad in [req(0, "DER"), req(9, ""), req(Wire::Sec1.into(), "PKCS8")] {
            let err = encoding(&bad).unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
        }
        assert!(
            encoding(&req(Wire::Sec1.into(), "PKCS8"))
                .unwrap_err()
                .message()
                .contains("disagree")
        );
    }
}
