//! Both APIs over TLS on loopback, with the serving certificate swapped while
//! the servers run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use time::OffsetDateTime;
use tlsmint_ca::{CaConfig, CertificateAuthority, KeySpec, Subject};
use tlsmint_client::proto::GetCaBundleRequest;
use tlsmint_client::{Client, ClientConfig, Token, TokenSource};
use tokio_util::sync::CancellationToken;

use super::auth::DevAuthenticator;
use super::tls::ServingCert;
use super::{ApiArgs, Services};
use crate::registry::{MountEntry, MountStatus, Registry};
use crate::revocation::{MemoryStore, Revocations, Settings};

fn args() -> ApiArgs {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        api: ApiArgs,
    }
    Wrapper::parse_from([
        "x",
        "--http-addr",
        "127.0.0.1:0",
        "--grpc-addr",
        "127.0.0.1:0",
    ])
    .api
}

async fn peer_certificate(addr: std::net::SocketAddr, ca_pem: &str) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    let der = tlsmint_ca::pem::decode_certificate(ca_pem).unwrap();
    roots.add(der.into()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

#[tokio::test]
async fn grpc_and_https_serve_tls_and_pick_up_a_new_certificate_without_restart() {
    let cfg = CaConfig {
        name: "api".into(),
        subject: Subject::with_common_name("API CA"),
        key: KeySpec::EcdsaP256,
        ttl: Duration::from_secs(86400),
    };
    let ca =
        Arc::new(CertificateAuthority::generate_root(&cfg, OffsetDateTime::now_utc()).unwrap());
    let registry = Arc::new(Registry::new());
    registry
        .put_mount(MountEntry {
            name: "api".into(),
            path: "api".into(),
            status: MountStatus::Ready(ca.clone()),
            crl_expiry: Duration::from_secs(3600),
            trusted_roots: Vec::new(),
            other_generations: Vec::new(),
        })
        .unwrap();
    let serving = ServingCert::new();
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    serving
        .issue_from(&ca, &names, Duration::from_secs(3600))
        .unwrap();
    let args = args();
    let listeners = super::bind(&args, IpAddr::V4(Ipv4Addr::LOCALHOST)).unwrap();
    let (http, grpc) = listeners.addrs();
    let (http, grpc) = (http.unwrap(), grpc.unwrap());
    let shutdown = CancellationToken::new();
    let services = Services {
        registry,
        authenticator: Arc::new(DevAuthenticator::new("root", "default", "default")),
        rights: Arc::new(super::rights::DevRights),
        revocations: Revocations::new(Arc::new(MemoryStore::default()), Settings::default()),
        token_key: [1; 32],
        tls: Some(serving.clone()),
        cpu: tlsmint_runtime::cpu::CpuPool::new(2),
        metrics: std::sync::Arc::new(crate::api::metrics::ApiMetrics::unregistered()),
        dev_admin: false,
    };
    let server = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { super::serve(listeners, services, &args, shutdown).await }
    });

    let mut config = ClientConfig::new(
        format!("https://localhost:{}", grpc.port()),
        TokenSource::Static(Token::new("root").unwrap()),
    );
    config.ca_bundle_pem = Some(ca.certificate_pem());
    let client = Client::connect(config).await.unwrap();
    let bundle = client
        .ca_bundle(GetCaBundleRequest {
            role: String::new(),
            mount: "api".into(),
        })
        .await
        .unwrap();
    assert_eq!(bundle.ca_bundle_pem, ca.certificate_pem());

    let first = peer_certificate(http, &ca.certificate_pem()).await;
    serving
        .issue_from(&ca, &names, Duration::from_secs(3600))
        .unwrap();
    let second = peer_certificate(http, &ca.certificate_pem()).await;
    assert_ne!(first, second, "a new handshake sees the new certificate");
    assert_eq!(second, peer_certificate(grpc, &ca.certificate_pem()).await);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
