//! Admission latency of tlsmint-injector (issue 10's targets: p99 under 5 ms without the
//! dry-run policy check, under 10 ms with it), measured in process on the webhook's own
//! handler: one AdmissionReview for an annotated two-container pod, the response (JSON
//! Patch) read back whole, one at a time.
//!
//! - `no check`: the mutation, the JSON Patch diff and both JSON codecs.
//! - `with check`: the same plus `CheckPolicy` over gRPC (HTTP/2 on loopback, one kept
//!   channel, as the injector keeps it) to the fake operator of `tests/common`, which answers
//!   at once: the injector's side of the check, not the operator's policy work (that is
//!   covered by the operator's own benchmarks and by the cluster figure in
//!   docs/benchmarks.md).
//!
//! Run: `cargo run --release -p tlsmint-injector --example admission_bench [-- REVIEWS]`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use http_body_util::BodyExt;
use tlsmint_injector::policy::Checker;
use tlsmint_injector::server::{Metrics, router_with_check};
use tlsmint_runtime::prometheus_client::registry::Registry;
use tower::ServiceExt;

#[path = "../tests/common/mod.rs"]
mod common;
use common::injection;

/// An AdmissionReview like the API server sends for a Deployment's pod.
fn review_body(i: usize) -> String {
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("bench-{i}"),
            "operation": "CREATE",
            "namespace": "shop",
            "object": {
                "metadata": {
                    "generateName": "web-7d9f8c-",
                    "labels": {"app": "web", "pod-template-hash": "7d9f8c"},
                    "annotations": {
                        "tlsmint.io/inject": "true",
                        "tlsmint.io/role": "web",
                        "tlsmint.io/common-name": "web.shop.svc",
                        "tlsmint.io/dns-names": "web,web.shop,web.shop.svc,$(POD_NAME).web.shop.svc",
                        "tlsmint.io/ttl": "24h",
                    },
                },
                "spec": {
                    "serviceAccountName": "web",
                    "containers": [
                        {"name": "app", "image": "registry.example/shop/web:2.3.1",
                         "ports": [{"containerPort": 8443}],
                         "env": [{"name": "MODE", "value": "prod"}],
                         "volumeMounts": [{"name": "config", "mountPath": "/etc/web"}]},
                        {"name": "metrics", "image": "registry.example/exporter:1.0"},
                    ],
                    "volumes": [{"name": "config", "configMap": {"name": "web"}}],
                },
            },
        },
    })
    .to_string()
}

async fn one(app: &axum::Router, body: String) -> Duration {
    let req = axum::http::Request::post("/mutate")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let started = Instant::now();
    let resp = app.clone().oneshot(req).await.unwrap();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let elapsed = started.elapsed();
    let answer: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    assert_eq!(answer["response"]["patchType"], "JSONPatch", "{answer}");
    elapsed
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((sorted.len() as f64) * q).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn run(label: &str, app: axum::Router, reviews: usize) {
    for i in 0..200 {
        one(&app, review_body(i)).await;
    }
    let mut times = Vec::with_capacity(reviews);
    for i in 0..reviews {
        times.push(one(&app, review_body(i)).await);
    }
    times.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{label:<11} reviews {reviews:>6}  p50 {:>6.3} ms  p99 {:>6.3} ms  max {:>6.3} ms",
        ms(quantile(&times, 0.50)),
        ms(quantile(&times, 0.99)),
        ms(quantile(&times, 1.0)),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let reviews: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("REVIEWS must be a number"))
        .unwrap_or(5000);
    let injection = Arc::new(injection());

    let plain = router_with_check(
        injection.clone(),
        Metrics::new(&mut Registry::default()),
        None,
    );
    run("no check", plain, reviews).await;

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(tlsmint_client::proto::issuer_server::IssuerServer::new(
                common::FakeOperator,
            ))
            .serve(addr),
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let token = std::env::temp_dir().join(format!("tlsmint-bench-token-{}", std::process::id()));
    std::fs::write(&token, "a.b.c").unwrap();
    let checker = Checker::new(
        &format!("http://{addr}"),
        None,
        None,
        token.clone(),
        Duration::from_secs(2),
    )
    .unwrap();
    let checked = router_with_check(
        injection,
        Metrics::new(&mut Registry::default()),
        Some(checker),
    );
    run("with check", checked, reviews).await;
    std::fs::remove_file(&token).ok();
}
