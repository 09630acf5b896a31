//! Against a real API server (ignored unless asked for; `run-api-tests` runs
//! them when KUBECONFIG points at a working cluster): TokenReview with real
//! projected tokens (pod-bound, wrong audience, garbage), both APIs with a
//! real ServiceAccount token, and the ConfigMap revocation store shared by
//! two "replicas". Everything lives in a throwaway namespace, deleted at the end.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Container, Namespace, Pod, PodSpec, ServiceAccount};
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use time::OffsetDateTime;
use tlsmint_api::v1alpha1::{IssuerRoleSpec, RoleSubject};
use tlsmint_ca::{CaConfig, CertificateAuthority, KeySpec, Serial, Subject};
use tlsmint_client::proto::{IssueRequest, Names};
use tlsmint_client::{Client, ClientConfig, ClientError, Token, TokenSource};
use tokio_util::sync::CancellationToken;

use super::auth::{AuthError, Authenticator};
use super::metrics::ApiMetrics;
use super::tokenreview::TokenReviewAuthenticator;
use super::{ApiArgs, Services};
use crate::registry::{MountEntry, MountStatus, Registry, RoleEntry};
use crate::revocation::kube::ConfigMapStore;
use crate::revocation::{RevocationStore, Revocations, Settings};

fn meta(name: &str, ns: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: ns.map(str::to_owned),
        ..ObjectMeta::default()
    }
}

async fn token(
    client: &kube::Client,
    ns: &str,
    sa: &str,
    audience: &str,
    pod: Option<&Pod>,
) -> String {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let req = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: Some(vec![audience.into()]),
            expiration_seconds: Some(600),
            bound_object_ref: pod.map(|p| BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: p.metadata.name.clone(),
                uid: p.metadata.uid.clone(),
            }),
        }),
        ..TokenRequest::default()
    };
    let resp: TokenRequest = api
        .create_subresource("token", sa, &PostParams::default(), &req)
        .await
        .unwrap();
    resp.status.unwrap().token.unwrap()
}

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

#[tokio::test]
#[ignore = "needs a cluster: KUBECONFIG (run by operator/tests/run-api-tests)"]
async fn real_serviceaccount_tokens_against_the_api_server() {
    let client = kube::Client::try_default().await.expect("KUBECONFIG");
    let ns = format!("tlsmint-api-test-{}", &Serial::random().to_hex()[..8]);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: meta(&ns, None),
                ..Namespace::default()
            },
        )
        .await
        .unwrap();
    let result = tokio::time::timeout(
        Duration::from_secs(120),
        scenario(client.clone(), ns.clone()),
    )
    .await;
    let _ = namespaces.delete(&ns, &DeleteParams::default()).await;
    result.expect("the scenario timed out");
}

async fn scenario(client: kube::Client, ns: String) {
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
    for sa in ["web", "intruder"] {
        sas.create(
            &PostParams::default(),
            &ServiceAccount {
                metadata: meta(sa, Some(&ns)),
                ..ServiceAccount::default()
            },
        )
        .await
        .unwrap();
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let image =
        std::env::var("TEST_IMAGE").unwrap_or_else(|_| "tlsmint.local/busybox:1.35.0".into());
    let pod = Pod {
        metadata: meta("web-0", Some(&ns)),
        spec: Some(PodSpec {
            service_account_name: Some("web".into()),
            containers: vec![Container {
                name: "main".into(),
                image: Some(image),
                command: Some(vec!["sleep".into(), "3600".into()]),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        ..Pod::default()
    };
    // The ServiceAccount admission may need a moment after the SA exists.
    let mut created = None;
    for _ in 0..20 {
        match pods.create(&PostParams::default(), &pod).await {
            Ok(p) => {
                created = Some(p);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
    let pod = created.expect("pod created");

    // TokenReview: pod-bound token for our audience, wrong audience, garbage.
    let mut prometheus = prometheus_client::registry::Registry::default();
    let api_metrics = Arc::new(ApiMetrics::register(&mut prometheus));
    let metrics_text = |registry: &prometheus_client::registry::Registry| {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, registry).unwrap();
        out
    };
    let auth =
        TokenReviewAuthenticator::new(client.clone(), Duration::from_secs(10), api_metrics.clone());
    let web_token = token(&client, &ns, "web", "tlsmint", Some(&pod)).await;
    let caller = auth.authenticate(&web_token).await.unwrap();
    assert_eq!(
        (caller.namespace.as_str(), caller.service_account.as_str()),
        (ns.as_str(), "web")
    );
    assert_eq!(caller.pod_name.as_deref(), Some("web-0"));
    assert_eq!(caller.pod_uid, pod.metadata.uid);
    let cached = auth.authenticate(&web_token).await.unwrap();
    assert_eq!(cached, caller);
    // One real TokenReview, then the cache: both counted.
    let text = metrics_text(&prometheus);
    assert!(
        text.contains(r#"tlsmint_api_token_review_cache_total{result="miss"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"tlsmint_api_token_review_cache_total{result="hit"} 1"#),
        "{text}"
    );
    let other_audience = token(&client, &ns, "web", "https://kubernetes.default.svc", None).await;
    let err = auth.authenticate(&other_audience).await.unwrap_err();
    assert!(matches!(err, AuthError::Rejected(_)), "{err}");
    let err = auth.authenticate("not-a-token").await.unwrap_err();
    assert!(matches!(err, AuthError::Rejected(_)), "{err}");
    assert!(!err.to_string().contains("not-a-token"));

    // Both APIs with the real token.
    let ca_cfg = CaConfig {
        name: "pki".into(),
        subject: Subject::with_common_name("Cluster Test CA"),
        key: KeySpec::EcdsaP256,
        ttl: Duration::from_secs(86400),
    };
    let ca =
        Arc::new(CertificateAuthority::generate_root(&ca_cfg, OffsetDateTime::now_utc()).unwrap());
    let registry = Arc::new(Registry::new());
    registry
        .put_mount(MountEntry {
            name: "pki".into(),
            path: "pki".into(),
            status: MountStatus::Ready(ca.clone()),
            crl_expiry: Duration::from_secs(3600),
            trusted_roots: Vec::new(),
            other_generations: Vec::new(),
        })
        .unwrap();
    let mut role = IssuerRoleSpec::new("pki");
    role.subjects = vec![RoleSubject::new(&ns, "web")];
    role.allowed_domains = vec!["{{serviceAccount}}.{{namespace}}.svc".into()];
    role.allow_bare_domains = true;
    registry.put_role(RoleEntry::from_spec("web", &role));
    let store = Arc::new(ConfigMapStore::new(client.clone(), &ns));
    let args = args();
    let listeners = super::bind(&args, IpAddr::V4(Ipv4Addr::LOCALHOST)).unwrap();
    let (http, grpc) = listeners.addrs();
    let shutdown = CancellationToken::new();
    let services = Services {
        registry,
        authenticator: Arc::new(auth),
        rights: Arc::new(super::rights::SubjectAccessReviewRights::new(
            client.clone(),
            Duration::from_secs(1),
        )),
        revocations: Revocations::new(store.clone(), Settings::default()),
        token_key: [3; 32],
        tls: None,
        cpu: tlsmint_runtime::cpu::CpuPool::new(2),
        metrics: api_metrics.clone(),
        dev_admin: false,
    };
    let server = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { super::serve(listeners, services, &args, shutdown).await }
    });
    let name = format!("web.{ns}.svc");
    let grpc_client = |t: &str| {
        let t = t.to_owned();
        async move {
            Client::connect(ClientConfig::new(
                format!("http://{}", grpc.unwrap()),
                TokenSource::Static(Token::new(t).unwrap()),
            ))
            .await
            .unwrap()
        }
    };
    let issue = IssueRequest {
        role: "web".into(),
        names: Some(Names {
            common_name: name.clone(),
            ..Names::default()
        }),
        ..IssueRequest::default()
    };
    let resp = grpc_client(&web_token)
        .await
        .issue(issue.clone())
        .await
        .unwrap();
    assert!(
        resp.certificate
            .unwrap()
            .certificate_pem
            .contains("BEGIN CERTIFICATE")
    );
    let intruder = token(&client, &ns, "intruder", "tlsmint", None).await;
    match grpc_client(&intruder)
        .await
        .issue(issue.clone())
        .await
        .unwrap_err()
    {
        ClientError::Status(s) => assert_eq!(s.code(), tonic::Code::PermissionDenied, "{s:?}"),
        other => panic!("{other}"),
    }
    match grpc_client(&other_audience)
        .await
        .issue(issue)
        .await
        .unwrap_err()
    {
        ClientError::Status(s) => assert_eq!(s.code(), tonic::Code::Unauthenticated, "{s:?}"),
        other => panic!("{other}"),
    }

    // Vault login with the real JWT, then issue with the client token.
    let url = format!("http://{}", http.unwrap());
    let login = post(
        &format!("{url}/v1/auth/kubernetes/login"),
        None,
        &serde_json::json!({"role": "web", "jwt": web_token}),
    )
    .await;
    let client_token = login["auth"]["client_token"].as_str().unwrap().to_owned();
    let issued = post(
        &format!("{url}/v1/pki/issue/web"),
        Some(&client_token),
        &serde_json::json!({"common_name": name}),
    )
    .await;
    let serial = issued["data"]["serial_number"].as_str().unwrap().to_owned();
    // The API's own metrics saw each answer with its class.
    let text = metrics_text(&prometheus);
    for line in [
        r#"tlsmint_api_requests_total{api="grpc",endpoint="issue",role="web",result="ok"} 1"#,
        r#"tlsmint_api_requests_total{api="grpc",endpoint="issue",role="web",result="permission_denied"} 1"#,
        r#"tlsmint_api_requests_total{api="grpc",endpoint="issue",role="web",result="unauthenticated"} 1"#,
        r#"tlsmint_api_requests_total{api="http",endpoint="login",role="",result="ok"} 1"#,
        r#"tlsmint_api_requests_total{api="http",endpoint="issue",role="web",result="ok"} 1"#,
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }

    // Revoking by serial needs the RBAC verb `revoke` on the PkiMount, which `web` lacks:
    // the SubjectAccessReview says no, and the answer names the missing right.
    let (status, denied) = post_status(
        &format!("{url}/v1/pki/revoke"),
        Some(&client_token),
        &serde_json::json!({"serial_number": serial}),
    )
    .await;
    assert_eq!(status, 403, "{denied}");
    assert!(
        denied["errors"]
            .to_string()
            .contains("pkimounts.pki.tlsmint.io"),
        "{denied}"
    );
    // The holder revokes with its key; the revocation lands in the ConfigMap, and
    // another replica's store sees it.
    post(
        &format!("{url}/v1/pki/revoke-with-key"),
        Some(&client_token),
        &serde_json::json!({
            "certificate": issued["data"]["certificate"],
            "private_key": issued["data"]["private_key"],
        }),
    )
    .await;
    let other_replica = ConfigMapStore::new(client.clone(), &ns);
    let doc = other_replica.load("pki").await.unwrap();
    assert!(doc.revoked.iter().any(|e| e.serial == serial), "{doc:?}");
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
}

async fn post(url: &str, token: Option<&str>, body: &serde_json::Value) -> serde_json::Value {
    let (status, value) = post_status(url, token, body).await;
    assert!((200..300).contains(&status), "{url}: {status} {value}");
    value
}

async fn post_status(
    url: &str,
    token: Option<&str>,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client as HttpClient;
    use hyper_util::rt::TokioExecutor;
    let client: HttpClient<_, Full<bytes::Bytes>> =
        HttpClient::builder(TokioExecutor::new()).build_http();
    let mut req = http::Request::post(url).header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("x-vault-token", t);
    }
    let req = req
        .body(Full::new(bytes::Bytes::from(body.to_string())))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    (status.as_u16(), value)
}
