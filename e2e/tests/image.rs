//! The tlsmint image (scripts/build-image) runs on the local cluster's
//! kubelet: a pod from it starts the operator binary, which prints its help.
//! Needs TLSMINT_IMAGE (printed by scripts/build-image) besides the cluster
//! variables. Run: `cargo test -p tlsmint-e2e --test image`.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use kube::api::{Api, LogParams, ObjectMeta, PostParams};
use tlsmint_e2e::{TIMEOUT, TestNamespace, client, env, unique_name, wait_for};

#[tokio::test]
async fn tlsmint_image_runs_the_operator_binary_on_the_kubelet() {
    let image = env("TLSMINT_IMAGE").expect("TLSMINT_IMAGE (run scripts/build-image)");
    let client = client().await.expect("client");
    let ns = TestNamespace::create(&client, "image")
        .await
        .expect("namespace");
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns.name());
    let name = unique_name("tlsmint-help");
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "operator".into(),
                image: Some(image),
                image_pull_policy: Some("Never".into()),
                args: Some(vec!["--help".into()]),
                ..Default::default()
            }],
            restart_policy: Some("Never".into()),
            termination_grace_period_seconds: Some(0),
            ..Default::default()
        }),
        ..Default::default()
    };
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    let done = wait_for(&pods, &name, TIMEOUT, "pod to finish", |p| {
        matches!(
            p.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        )
    })
    .await
    .expect("pod finished");
    let phase = done.status.and_then(|s| s.phase).unwrap_or_default();
    let logs = pods.logs(&name, &LogParams::default()).await.expect("logs");
    assert_eq!(phase, "Succeeded", "pod failed; logs:\n{logs}");
    assert!(
        logs.contains("Usage: tlsmint-operator"),
        "unexpected output:\n{logs}"
    );
}
