//! A CA for the agent's tests: the real engine (root and intermediate) behind the agent's
//! `Source` seam and behind a fake `tlsmint.v1.Issuer` tonic server.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use time::OffsetDateTime;
use tlsmint_agent::config::FileArgs;
use tlsmint_agent::disk::Material;
use tlsmint_agent::renew::Clock;
use tlsmint_agent::source::{ObtainError, Source};
use tlsmint_ca::{
    CaConfig, CertificateAuthority, Identity, KeySpec, LeafProfile, NameRequest, Policy,
    PrivateKey, Role, SignRequest, Subject,
};
use tlsmint_client::proto::{self, issuer_server};

pub struct FakeCa {
    pub root: CertificateAuthority,
    pub ca: CertificateAuthority,
    pub role: Role,
}

impl FakeCa {
    pub fn new(now: OffsetDateTime) -> Arc<Self> {
        let cfg = |name: &str, cn: &str| CaConfig {
            name: name.into(),
            subject: Subject::with_common_name(cn),
            key: KeySpec::EcdsaP256,
            ttl: Duration::from_secs(86400 * 365),
        };
        let root = CertificateAuthority::generate_root(&cfg("root", "Test Root"), now).unwrap();
        let ca = CertificateAuthority::generate_intermediate(&cfg("int", "Test Int"), &root, now)
            .unwrap();
        let role = Role {
            policy: Policy {
                role: "web".into(),
                allowed_domains: vec![],
                allow_bare_domains: false,
                allow_subdomains: false,
                allow_glob_domains: false,
                allow_wildcard_certificates: false,
                allow_localhost: true,
                allow_any_name: true,
                enforce_hostnames: true,
                allow_ip_sans: true,
                allowed_uri_sans: vec![],
                require_common_name: false,
            },
            profile: LeafProfile::default(),
        };
        Arc::new(FakeCa { root, ca, role })
    }

    pub fn sign(
        &self,
        csr: &[u8],
        names: NameRequest,
        ttl: Duration,
        now: OffsetDateTime,
    ) -> Result<proto::IssuedCertificate, String> {
        let identity = Identity {
            namespace: "default".into(),
            service_account: Some("web".into()),
        };
        let req = SignRequest {
            csr: csr.to_vec(),
            names,
            ttl: Some(ttl),
        };
        let issued = self
            .ca
            .sign(&self.role, &identity, &req, now)
            .map_err(|e| e.to_string())?;
        Ok(proto::IssuedCertificate {
            certificate_pem: issued.certificate_pem,
            ca_chain_pem: issued.ca_chain.pem.to_vec(),
            ca_bundle_pem: self.root.certificate_pem(),
            serial_number: issued.serial.to_string(),
            not_before: None,
            not_after: None,
            warnings: vec![],
        })
    }
}

/// The engine behind the `Source` seam, on the test's clock; can be told to fail.
pub struct EngineSource {
    pub ca: Arc<FakeCa>,
    pub clock: Clock,
    pub ttl: Duration,
    pub failing: Arc<AtomicBool>,
    pub calls: Arc<AtomicU32>,
    /// The roots `trust` answers with; `None`: the root alone.
    pub bundle: Arc<std::sync::Mutex<Option<String>>>,
}

impl EngineSource {
    pub fn new(ca: Arc<FakeCa>, clock: Clock, ttl: Duration) -> Self {
        EngineSource {
            ca,
            clock,
            ttl,
            failing: Arc::new(AtomicBool::new(false)),
            calls: Arc::new(AtomicU32::new(0)),
            bundle: Arc::default(),
        }
    }
}

impl Source for EngineSource {
    async fn obtain(&self) -> Result<Material, ObtainError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(ObtainError::Answer("the test says no".into()));
        }
        let key = PrivateKey::generate(KeySpec::EcdsaP256).unwrap();
        let csr = tlsmint_ca::request::leaf_csr_pem(&key).unwrap();
        let names = NameRequest {
            common_name: Some("web.default.svc".into()),
            ..NameRequest::default()
        };
        let cert = self
            .ca
            .sign(csr.as_bytes(), names, self.ttl, self.clock.now())
            .map_err(ObtainError::Answer)?;
        Ok(Material {
            certificate_pem: cert.certificate_pem,
            chain_pem: cert.ca_chain_pem,
            ca_pem: cert.ca_bundle_pem,
            key,
        })
    }

    async fn trust(&self) -> Result<String, ObtainError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(ObtainError::Answer("the test says no".into()));
        }
        let bundle = self.bundle.lock().unwrap().clone();
        Ok(bundle.unwrap_or_else(|| self.ca.root.certificate_pem()))
    }
}

/// A fake `tlsmint.v1.Issuer` that signs with the engine (real time) and records the
/// bearer token it saw. `bundle`, when set, is the trust bundle of Sign and GetCABundle.
pub struct FakeIssuer {
    pub ca: Arc<FakeCa>,
    pub tokens: Arc<std::sync::Mutex<Vec<String>>>,
    pub bundle: Arc<std::sync::Mutex<Option<String>>>,
    pub bundle_calls: Arc<AtomicU32>,
}

impl FakeIssuer {
    pub fn new(ca: Arc<FakeCa>) -> Self {
        FakeIssuer {
            ca,
            tokens: Arc::default(),
            bundle: Arc::default(),
            bundle_calls: Arc::default(),
        }
    }

    fn bundle(&self) -> String {
        let bundle = self.bundle.lock().unwrap().clone();
        bundle.unwrap_or_else(|| self.ca.root.certificate_pem())
    }
}

#[tonic::async_trait]
impl issuer_server::Issuer for FakeIssuer {
    async fn issue(
        &self,
        _req: tonic::Request<proto::IssueRequest>,
    ) -> Result<tonic::Response<proto::IssueResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("issue"))
    }

    async fn sign(
        &self,
        req: tonic::Request<proto::SignRequest>,
    ) -> Result<tonic::Response<proto::SignResponse>, tonic::Status> {
        if let Some(auth) = req.metadata().get("authorization") {
            self.tokens
                .lock()
                .unwrap()
                .push(auth.to_str().unwrap_or_default().to_owned());
        }
        let req = req.into_inner();
        if req.role != "web" {
            return Err(tonic::Status::not_found(format!(
                "role {} not found",
                req.role
            )));
        }
        let names = req.names.unwrap_or_default();
        let names = NameRequest {
            common_name: Some(names.common_name).filter(|c| !c.is_empty()),
            dns_names: names.dns_names,
            ip_addresses: names.ip_addresses,
            uris: names.uris,
        };
        let ttl = Duration::from_secs(req.ttl_seconds.max(60));
        let mut cert = self
            .ca
            .sign(&req.csr, names, ttl, OffsetDateTime::now_utc())
            .map_err(tonic::Status::permission_denied)?;
        cert.ca_bundle_pem = self.bundle();
        Ok(tonic::Response::new(proto::SignResponse {
            certificate: Some(cert),
        }))
    }

    async fn get_ca_bundle(
        &self,
        req: tonic::Request<proto::GetCaBundleRequest>,
    ) -> Result<tonic::Response<proto::GetCaBundleResponse>, tonic::Status> {
        self.bundle_calls.fetch_add(1, Ordering::SeqCst);
        if let Some(auth) = req.metadata().get("authorization") {
            self.tokens
                .lock()
                .unwrap()
                .push(auth.to_str().unwrap_or_default().to_owned());
        }
        if req.get_ref().role != "web" {
            return Err(tonic::Status::not_found("role not found"));
        }
        Ok(tonic::Response::new(proto::GetCaBundleResponse {
            ca_chain_pem: self.ca.ca.ca_chain_pem(),
            ca_bundle_pem: self.bundle(),
        }))
    }

    async fn check_policy(
        &self,
        _req: tonic::Request<proto::CheckPolicyRequest>,
    ) -> Result<tonic::Response<proto::CheckPolicyResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("check_policy"))
    }
}

pub fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tlsmint-agent-{tag}-{}-{}",
        std::process::id(),
        OffsetDateTime::now_utc().unix_timestamp_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn files(dir: &std::path::Path) -> FileArgs {
    FileArgs {
        dir: dir.to_owned(),
        cert_file: "tls.crt".into(),
        key_file: "tls.key".into(),
        ca_file: "ca.crt".into(),
        bundle_file: "tls-bundle.pem".into(),
    }
}
