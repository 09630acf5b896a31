//! Component tests of the gRPC API (`tlsmint.v1.Issuer`) against a real
//! `tlsmint-operator dev` on loopback: one test per SPEC §5 error code, and
//! the happy paths.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use tlsmint_client::proto::{
    CheckPolicyRequest, GetCaBundleRequest, IssueRequest, Names, SignRequest,
};
use tlsmint_client::{Client, ClientConfig, ClientError, Token, TokenSource};
use tonic::Code;

async fn client(server: &common::DevServer, token: &str) -> Client {
    let config = ClientConfig::new(
        server.grpc.clone(),
        TokenSource::Static(Token::new(token).unwrap()),
    );
    Client::connect(config).await.unwrap()
}

fn code(err: ClientError) -> (Code, String) {
    match err {
        ClientError::Status(s) => (s.code(), s.message().to_owned()),
        other => panic!("expected a status, got {other}"),
    }
}

fn names(cn: &str) -> Option<Names> {
    Some(Names {
        common_name: cn.into(),
        ..Names::default()
    })
}

const WEB: &str = "system:serviceaccount:apps:web";

#[tokio::test]
async fn sign_returns_leaf_chain_bundle_and_serial() {
    let server = common::start(&[]);
    let c = client(&server, WEB).await;
    let resp = c
        .sign(SignRequest {
            role: "web".into(),
            csr: common::csr(&["api.example.com"]).into_bytes(),
            names: None,
            ttl_seconds: 600,
        })
        .await
        .unwrap();
    let cert = resp.certificate.unwrap();
    assert!(
        cert.certificate_pem
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    assert_eq!(cert.ca_chain_pem.len(), 2);
    assert_eq!(cert.ca_bundle_pem, cert.ca_chain_pem[1]);
    assert_eq!(cert.serial_number.split(':').count(), 16);
    let lifetime = cert.not_after.unwrap().seconds - cert.not_before.unwrap().seconds;
    assert_eq!(lifetime, 600 + 30, "ttl plus the 30s back-dating");
    assert!(cert.warnings.is_empty());
}

#[tokio::test]
async fn issue_returns_a_key_and_warns_when_ttl_is_clamped() {
    let server = common::start(&[]);
    let c = client(&server, WEB).await;
    let resp = c
        .issue(IssueRequest {
            role: "web".into(),
            names: names("api.example.com"),
            ttl_seconds: 100 * 3600,
            key_encoding: tlsmint_client::proto::KeyEncoding::Sec1.into(),
            ..IssueRequest::default()
        })
        .await
        .unwrap();
    assert!(resp.private_key_pem.contains("BEGIN EC PRIVATE KEY"));
    assert_eq!(resp.private_key_type, "ec");
    assert!(!format!("{resp:?}").contains("PRIVATE KEY"));
    let cert = resp.certificate.unwrap();
    assert!(
        cert.warnings.iter().any(|w| w.contains("clamped")),
        "{:?}",
        cert.warnings
    );
    let lifetime = cert.not_after.unwrap().seconds - cert.not_before.unwrap().seconds;
    assert_eq!(lifetime, 2 * 3600 + 30);
}

#[tokio::test]
async fn a_key_encoding_that_cannot_hold_the_key_is_refused_before_issuing() {
    let server = common::start(&[]);
    let c = client(&server, WEB).await;
    let (code, msg) = code(
        c.issue(IssueRequest {
            role: "web".into(),
            names: names("api.example.com"),
            ttl_seconds: 0,
            // The deprecated text form still works (and is still checked).
            key_encoding_name: "PKCS1".into(),
            ..IssueRequest::default()
        })
        .await
        .unwrap_err(),
    );
    assert_eq!(code, Code::InvalidArgument);
    assert!(msg.contains("PKCS1"), "{msg}");
}

#[tokio::test]
async fn missing_bad_and_unknown_tokens_are_unauthenticated() {
    let server = common::start(&[]);
    for token in ["not-a-token", "system:serviceaccount:broken"] {
        let c = client(&server, token).await;
        let (code, msg) = code(
            c.issue(IssueRequest {
                role: "web".into(),
                names: names("api.example.com"),
                ..IssueRequest::default()
            })
            .await
            .unwrap_err(),
        );
        assert_eq!(code, Code::Unauthenticated, "{msg}");
        assert!(!msg.contains(token), "the token must not be echoed: {msg}");
    }
    // No authorization header at all.
    let channel = tonic::transport::Endpoint::from_shared(server.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut raw = tlsmint_client::proto::issuer_client::IssuerClient::new(channel);
    let status = raw
        .get_ca_bundle(GetCaBundleRequest {
            role: "web".into(),
            mount: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn caller_outside_subjects_is_permission_denied() {
    let server = common::start(&[]);
    let c = client(&server, "system:serviceaccount:apps:intruder").await;
    let (code, msg) = code(
        c.issue(IssueRequest {
            role: "web".into(),
            names: names("api.example.com"),
            ..IssueRequest::default()
        })
        .await
        .unwrap_err(),
    );
    assert_eq!(code, Code::PermissionDenied);
    assert!(
        msg.contains("apps/intruder") && msg.contains("subjects"),
        "{msg}"
    );
}

#[tokio::test]
async fn name_outside_policy_is_permission_denied_and_named() {
    let server = common::start(&[]);
    let c = client(&server, WEB).await;
    let (code, msg) = code(
        c.sign(SignRequest {
            role: "web".into(),
            csr: common::csr(&["api.example.com", "evil.org"]).into_bytes(),
            ..SignRequest::default()
        })
        .await
        .unwrap_err(),
    );
    assert_eq!(code, Code::PermissionDenied);
    assert!(msg.contains("evil.org"), "{msg}");
}

#[tokio::test]
async fn templates_come_from_the_verified_identity() {
    let server = common::start(&[]);
    let c = client(&server, "system:serviceaccount:shop:cart").await;
    let ok = c
        .issue(IssueRequest {
            role: "svc".into(),
            names: names("cart.shop.svc"),
            ..IssueRequest::default()
        })
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    let (code, msg) = code(
        c.issue(IssueRequest {
            role: "svc".into(),
            names: names("payments.shop.svc"),
            ..IssueRequest::default()
        })
        .await
        .unwrap_err(),
    );
    assert_eq!(code, Code::PermissionDenied, "{msg}");
}

#[tokio::test]
async fn malformed_and_forged_csrs_are_invalid_argument() {
    let server = common::start(&[]);
    let c = client(&server, WEB).await;
    let sign = |csr: Vec<u8>| SignRequest {
        role: "web".into(),
        csr,
        ..SignRequest::default()
    };
    let (code1, _) = code(c.sign(sign(b"hello".to_vec())).await.unwrap_err());
    assert_eq!(code1, Code::InvalidArgument);
    // Flip one byte inside the signature of a valid CSR (DER).
    let pem = common::csr(&["api.example.com"]);
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let mut der = base64_decode(&body);
    let last = der.len() - 3;
    der[last] ^= 0x01;
    let (code2, msg) = code(c.sign(sign(der)).await.unwrap_err());
    assert_eq!(code2, Code::InvalidArgument, "{msg}");
    let (code3, msg) = code(
        c.issue(IssueRequest {
            role: "web".into(),
            names: names("bad..example.com"),
            ..IssueRequest::default()
        })
        .await
        .unwrap_err(),
    );
    assert_eq!(code3, Code::InvalidArgument, "{msg}");
    // A message over the server's 256 KiB limit is refused before anything is parsed, and
    // the connection goes on serving.
    let (code4, msg) = code(c.sign(sign(vec![0x30; 300 * 1024])).await.unwrap_err());
    assert_eq!(code4, Code::OutOfRange, "{msg}");
    let (code5, _) = code(c.sign(sign(b"hello".to_vec())).await.unwrap_err());
    assert_eq!(code5, Code::InvalidArgument);
}

#[tokio::test]
async fn unknown_role_is_not_found_and_unready_mount_is_failed_precondition() {
    let server = common::start(&[]);
    let c = client(&server, WEB).await;
    let issue = |role: &str| IssueRequest {
        role: role.into(),
        names: names("x.example.com"),
        ..IssueRequest::default()
    };
    let (nf, _) = code(c.issue(issue("nope")).await.unwrap_err());
    assert_eq!(nf, Code::NotFound);
    let (fp, msg) = code(c.issue(issue("stuck")).await.unwrap_err());
    assert_eq!(fp, Code::FailedPrecondition);
    assert!(msg.contains("WaitingForSignedCertificate"), "{msg}");
}

#[tokio::test]
async fn rate_limit_is_per_service_account() {
    let server = common::start(&["--rate-limit", "0.5", "--rate-burst", "3"]);
    let busy = client(&server, "system:serviceaccount:shop:busy").await;
    let req = || IssueRequest {
        role: "svc".into(),
        names: names("busy.shop.svc"),
        ..IssueRequest::default()
    };
    for _ in 0..3 {
        busy.issue(req()).await.unwrap();
    }
    let (c, msg) = code(busy.issue(req()).await.unwrap_err());
    assert_eq!(c, Code::ResourceExhausted);
    assert!(msg.contains("shop/busy"), "{msg}");
    // Another ServiceAccount is not affected.
    let calm = client(&server, "system:serviceaccount:shop:calm").await;
    calm.issue(IssueRequest {
        role: "svc".into(),
        names: names("calm.shop.svc"),
        ..IssueRequest::default()
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn ca_bundle_by_role_and_by_mount() {
    let server = common::start(&[]);
    let c = client(&server, WEB).await;
    let by_role = c
        .ca_bundle(GetCaBundleRequest {
            role: "web".into(),
            mount: String::new(),
        })
        .await
        .unwrap();
    let by_mount = c
        .ca_bundle(GetCaBundleRequest {
            role: String::new(),
            mount: "root".into(),
        })
        .await
        .unwrap();
    assert_eq!(by_role.ca_chain_pem.len(), 2);
    assert_eq!(by_role.ca_bundle_pem, by_mount.ca_bundle_pem);
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

#[tokio::test]
async fn resource_exhausted_carries_the_retry_delay() {
    let server = common::start(&["--rate-limit", "0.5", "--rate-burst", "1"]);
    let c = client(&server, WEB).await;
    let sign = || SignRequest {
        role: "web".into(),
        csr: common::csr(&["api.example.com"]).into_bytes(),
        names: None,
        ttl_seconds: 600,
    };
    c.sign(sign()).await.unwrap();
    let ClientError::Status(status) = c.sign(sign()).await.unwrap_err() else {
        panic!("expected a status");
    };
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status.message().contains("retry in"),
        "{}",
        status.message()
    );
    let secs: u64 = status
        .metadata()
        .get("retry-after")
        .expect("retry-after")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&secs), "{secs}");
    assert!(status.metadata().get("retry-after-ms").is_some());
}

#[tokio::test]
async fn check_policy_answers_without_issuing_and_only_to_listed_callers() {
    let server = common::start(&["--policy-check-callers", "tlsmint-system/injector"]);
    let injector = client(&server, "system:serviceaccount:tlsmint-system:injector").await;
    let ask = |role: &str, sa: &str, cn: &str| CheckPolicyRequest {
        role: role.into(),
        names: names(cn),
        namespace: "apps".into(),
        service_account: sa.into(),
    };
    let ok = injector
        .check_policy(ask("web", "web", "api.example.com"))
        .await
        .unwrap();
    assert!(ok.allowed, "{ok:?}");
    assert!(ok.reason.is_empty());

    let stranger = injector
        .check_policy(ask("web", "other", "api.example.com"))
        .await
        .unwrap();
    assert!(!stranger.allowed);
    assert!(
        stranger.reason.contains("apps/other") && stranger.reason.contains("subjects"),
        "{}",
        stranger.reason
    );

    let outside = injector
        .check_policy(ask("web", "web", "evil.other.org"))
        .await
        .unwrap();
    assert!(!outside.allowed);
    assert!(
        outside.reason.contains("evil.other.org"),
        "{}",
        outside.reason
    );

    let unknown = injector
        .check_policy(ask("nope", "web", "api.example.com"))
        .await
        .unwrap();
    assert!(!unknown.allowed);
    assert!(unknown.reason.contains("nope"), "{}", unknown.reason);

    // A caller the operator does not list may not ask.
    let (code, message) = code(
        client(&server, WEB)
            .await
            .check_policy(ask("web", "web", "api.example.com"))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, Code::PermissionDenied);
    assert!(message.contains("--policy-check-callers"), "{message}");
}
