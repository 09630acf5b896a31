//! Fixtures for the injector's tests and its admission benchmark (which includes this file
//! by path): the injector's settings, and a fake operator whose `CheckPolicy` refuses role
//! `strict` and allows any other (the other calls are not served).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use tlsmint_api::annotations::ReloadSignal;
use tlsmint_injector::config::Injection;

/// The injector's settings the golden files were written with.
pub fn injection() -> Injection {
    Injection {
        agent_image: "registry.example/tlsmint:1.0".into(),
        agent_image_pull_policy: "IfNotPresent".into(),
        agent_command: "/usr/local/bin/tlsmint-agent".into(),
        api_endpoint: "https://tlsmint-api.tlsmint-system.svc:8201".into(),
        api_ca_pem: Some("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into()),
        api_server_name: None,
        cpu_request: "5m".into(),
        memory_request: "16Mi".into(),
        memory_limit: "64Mi".into(),
        token_expiration_seconds: 3600,
        agent_log_level: "info".into(),
        reload_signals: vec![ReloadSignal::Hup, ReloadSignal::Usr1, ReloadSignal::Usr2],
        allow_reload_url: true,
        agent_trust_refresh_interval: None,
    }
}

/// A fake operator whose `CheckPolicy` refuses role `strict` and allows any other.
pub struct FakeOperator;

#[tonic::async_trait]
impl tlsmint_client::proto::issuer_server::Issuer for FakeOperator {
    async fn issue(
        &self,
        _: tonic::Request<tlsmint_client::proto::IssueRequest>,
    ) -> Result<tonic::Response<tlsmint_client::proto::IssueResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("issue"))
    }
    async fn sign(
        &self,
        _: tonic::Request<tlsmint_client::proto::SignRequest>,
    ) -> Result<tonic::Response<tlsmint_client::proto::SignResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("sign"))
    }
    async fn get_ca_bundle(
        &self,
        _: tonic::Request<tlsmint_client::proto::GetCaBundleRequest>,
    ) -> Result<tonic::Response<tlsmint_client::proto::GetCaBundleResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("bundle"))
    }
    async fn check_policy(
        &self,
        req: tonic::Request<tlsmint_client::proto::CheckPolicyRequest>,
    ) -> Result<tonic::Response<tlsmint_client::proto::CheckPolicyResponse>, tonic::Status> {
        assert!(
            req.metadata().get("authorization").is_some(),
            "the token is sent"
        );
        let req = req.into_inner();
        let allowed = req.role != "strict";
        Ok(tonic::Response::new(
            tlsmint_client::proto::CheckPolicyResponse {
                allowed,
                reason: if allowed {
                    String::new()
                } else {
                    format!(
                        "service account {}/{} may not use role \"strict\"",
                        req.namespace, req.service_account
                    )
                },
            },
        ))
    }
}
