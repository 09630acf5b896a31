//! Benchmark: 1,000 CertificateRequests created at once reach Ready on the local control
//! plane. Prints the time from the first create to the last Ready and the operator's peak
//! RSS. Ignored by default (run by `e2e/run-operator-tests --bench` with a release build).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use kube::api::{Api, ListParams, PostParams};
use tlsmint_api::v1alpha1::CertificateRequest;
use tlsmint_e2e::operator::{OperatorEnv, ready_of};

fn count() -> usize {
    std::env::var("TLSMINT_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

#[tokio::test]
#[ignore = "benchmark: run with e2e/run-operator-tests --bench"]
async fn thousand_certificate_requests_reach_ready() {
    let n = count();
    let env = OperatorEnv::new("op-bench").await.unwrap();
    let operator = env.start_operator("replica-a").await.unwrap();
    let (apps, ca) = env
        .apps_with_ca("op-bench-apps", "E2E Bench Root")
        .await
        .unwrap();
    let role = ca.role.clone();
    let rss_before = operator.peak_rss_kib().unwrap_or(0);

    let requests: Api<CertificateRequest> = Api::namespaced(env.client.clone(), apps.name());
    let started = Instant::now();
    let created: Vec<_> = stream::iter(0..n)
        .map(|i| {
            let requests = requests.clone();
            let cr = env.request(
                apps.name(),
                &format!("r{i}"),
                &role,
                &format!("r{i}-tls"),
                &[&format!("r{i}.example.com")],
            );
            async move { requests.create(&PostParams::default(), &cr).await }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    assert!(created.iter().all(Result::is_ok), "all created");
    let created_after = started.elapsed();
    let mut peak = rss_before;
    let mut ready = 0;
    let deadline = Instant::now() + Duration::from_secs(300);
    while ready < n {
        assert!(
            Instant::now() < deadline,
            "only {ready}/{n} Ready after 300 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        peak = peak.max(operator.peak_rss_kib().unwrap_or(0));
        ready = requests
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter(|cr| {
                cr.status
                    .as_ref()
                    .and_then(|s| ready_of(&s.conditions))
                    .is_some_and(|(s, _, _)| s == "True")
            })
            .count();
    }
    let elapsed = started.elapsed();
    peak = peak.max(operator.peak_rss_kib().unwrap_or(0));
    let issued = operator
        .metric("tlsmint_operator_certificates_issued_total")
        .await
        .unwrap();
    let summary = format!(
        "operator benchmark: {n} CertificateRequests created in {:.1} s, all Ready after {:.1} s; operator peak RSS {:.1} MiB (before the burst {:.1} MiB); certificates_issued_total {:?}",
        created_after.as_secs_f64(),
        elapsed.as_secs_f64(),
        peak as f64 / 1024.0,
        rss_before as f64 / 1024.0,
        issued
    );
    println!("{summary}");
    if let Ok(path) = std::env::var("TLSMINT_BENCH_OUT") {
        std::fs::write(path, format!("{summary}\n")).unwrap();
    }
    assert!(
        elapsed < Duration::from_secs(60),
        "target: under 60 s ({summary})"
    );
    assert!(peak < 64 * 1024, "target: under 64 MiB ({summary})");
}
