//! The admission endpoint through its router, and the serving certificate's reload.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;
use tlsmint_ca::ExposeSecret as _;

use axum::body::Body;
use http_body_util::BodyExt;
use tlsmint_ca::{CaConfig, CertificateAuthority, KeyEncoding, KeySpec, Subject};
use tlsmint_injector::server::{CertFiles, Metrics, router};
use tlsmint_runtime::prometheus_client::registry::Registry;
use tlsmint_runtime::tls::CertSwap;
use tower::ServiceExt;

mod common;
use common::{FakeOperator, injection};

async fn review(annotations: serde_json::Value) -> serde_json::Value {
    let body = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "abc-123",
            "operation": "CREATE",
            "namespace": "default",
            "object": {
                "metadata": {"name": "p", "annotations": annotations},
                "spec": {"containers": [{"name": "app", "image": "busybox"}]}
            }
        }
    });
    let app = router(
        Arc::new(injection()),
        Metrics::new(&mut Registry::default()),
    );
    let req = axum::http::Request::post("/mutate")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn answers_reviews_with_a_patch_a_refusal_or_nothing() {
    let injected =
        review(serde_json::json!({"tlsmint.io/inject": "true", "tlsmint.io/role": "web"})).await;
    let resp = &injected["response"];
    assert_eq!(resp["uid"], "abc-123");
    assert_eq!(resp["allowed"], true);
    assert_eq!(resp["patchType"], "JSONPatch");
    assert_eq!(injected["apiVersion"], "admission.k8s.io/v1");

    let refused = review(serde_json::json!({"tlsmint.io/inject": "true"})).await;
    assert_eq!(refused["response"]["allowed"], false);
    let message = refused["response"]["status"]["message"].as_str().unwrap();
    assert!(message.contains("tlsmint.io/role"), "{message}");

    let plain = review(serde_json::json!({"other": "x"})).await;
    assert_eq!(plain["response"]["allowed"], true);
    assert!(plain["response"].get("patch").is_none());
}

fn self_signed(cn: &str) -> (String, String) {
    let ca = CertificateAuthority::generate_root(
        &CaConfig {
            name: cn.into(),
            subject: Subject::with_common_name(cn),
            key: KeySpec::EcdsaP256,
            ttl: Duration::from_secs(3600),
        },
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    let key = ca.key().to_pem(KeyEncoding::Pkcs8).unwrap();
    (ca.certificate_pem(), key.expose_secret().to_owned())
}

#[test]
fn reloads_the_serving_certificate_only_when_the_files_change() {
    let dir = std::env::temp_dir().join(format!("tlsmint-injector-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let files = CertFiles {
        cert: dir.join("tls.crt"),
        key: dir.join("tls.key"),
    };
    let (cert, key) = self_signed("one");
    std::fs::write(&files.cert, &cert).unwrap();
    std::fs::write(&files.key, &key).unwrap();
    let swap = CertSwap::new();
    let first = files.load_if_changed(&swap, None).unwrap().unwrap();
    let served = swap.current().unwrap();
    assert!(
        files
            .load_if_changed(&swap, Some(&first))
            .unwrap()
            .is_none()
    );

    // A half-written pair (new certificate, old key) is refused; the old one keeps serving.
    let (cert2, key2) = self_signed("two");
    std::fs::write(&files.cert, &cert2).unwrap();
    assert!(files.load_if_changed(&swap, Some(&first)).is_err());
    assert!(Arc::ptr_eq(&served, &swap.current().unwrap()));
    std::fs::write(&files.key, &key2).unwrap();
    assert!(
        files
            .load_if_changed(&swap, Some(&first))
            .unwrap()
            .is_some()
    );
    assert!(!Arc::ptr_eq(&served, &swap.current().unwrap()));
    std::fs::remove_dir_all(&dir).unwrap();
}

async fn review_with(app: axum::Router, role: &str) -> serde_json::Value {
    let body = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "operation": "CREATE",
            "namespace": "shop",
            "object": {
                "metadata": {"name": "p", "annotations": {"tlsmint.io/inject": "true", "tlsmint.io/role": role}},
                "spec": {"serviceAccountName": "api", "containers": [{"name": "app", "image": "busybox"}]}
            }
        }
    });
    let req = axum::http::Request::post("/mutate")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn refuses_at_admission_what_the_operator_would_deny_and_fails_open() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(tlsmint_client::proto::issuer_server::IssuerServer::new(
                FakeOperator,
            ))
            .serve(addr),
    );
    let token = std::env::temp_dir().join(format!("tlsmint-injector-token-{}", std::process::id()));
    std::fs::write(&token, "a.b.c").unwrap();
    let checker = |endpoint: String| {
        tlsmint_injector::policy::Checker::new(
            &endpoint,
            None,
            None,
            token.clone(),
            Duration::from_secs(2),
        )
        .unwrap()
    };
    let app = |endpoint: String| {
        tlsmint_injector::server::router_with_check(
            Arc::new(injection()),
            Metrics::new(&mut Registry::default()),
            Some(checker(endpoint)),
        )
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let endpoint = format!("http://{addr}");

    let denied = review_with(app(endpoint.clone()), "strict").await;
    assert_eq!(denied["response"]["allowed"], false, "{denied}");
    let message = denied["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("shop/api") && message.contains("strict"),
        "{message}"
    );

    let allowed = review_with(app(endpoint), "web").await;
    assert_eq!(allowed["response"]["allowed"], true, "{allowed}");
    assert_eq!(allowed["response"]["patchType"], "JSONPatch");

    // Nobody answers: the pod is admitted (fail open).
    let open = review_with(app("http://127.0.0.1:1".into()), "strict").await;
    assert_eq!(open["response"]["allowed"], true, "{open}");
    std::fs::remove_file(&token).unwrap();
}
