//! Smoke tests of the local cluster (e2e/cluster/up): everything later e2e
//! tests rely on. Run against a running cluster with
//! `cargo test -p tlsmint-e2e --test smoke` (one: append its name).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper::StatusCode;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, WebhookClientConfig,
};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::authentication::v1::{
    TokenRequest, TokenRequestSpec, TokenReview, TokenReviewSpec,
};
use k8s_openapi::api::core::v1::{
    Container, Namespace, Pod, PodSpec, PodTemplateSpec, ServiceAccount,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, DynamicObject, ObjectMeta, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use tlsmint_e2e::{
    DeleteOnDrop, Handler, HttpsServer, LoopbackCert, TIMEOUT, TestNamespace, client, kubectl,
    test_image, unique_name, wait_for, wait_for_running_pods,
};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A busybox container that prints a line and sleeps; killed at once.
fn busybox_pod_spec(name: &str, line: &str) -> PodSpec {
    PodSpec {
        containers: vec![Container {
            name: name.to_owned(),
            image: Some(test_image().expect("TEST_IMAGE")),
            image_pull_policy: Some("Never".to_owned()),
            command: Some(vec![
                "sh".into(),
                "-c".into(),
                format!("echo {line}; exec sleep 3600"),
            ]),
            ..Default::default()
        }],
        termination_grace_period_seconds: Some(0),
        ..Default::default()
    }
}

#[tokio::test]
async fn namespace_create_and_delete() {
    let client = client().await.expect("client");
    let ns = TestNamespace::create(&client, "smoke-ns")
        .await
        .expect("create namespace");
    let api = Api::<Namespace>::all(client.clone());
    let got = api.get(ns.name()).await.expect("get namespace");
    assert_eq!(got.metadata.name.as_deref(), Some(ns.name()));
    assert_eq!(
        got.metadata
            .labels
            .unwrap_or_default()
            .get("kubernetes.io/metadata.name")
            .map(String::as_str),
        Some(ns.name())
    );
}

#[tokio::test]
async fn crd_with_status_subresource() {
    let client = client().await.expect("client");
    let ns = TestNamespace::create(&client, "smoke-crd")
        .await
        .expect("create namespace");
    // A group of its own per run, so runs never collide.
    let group = format!("{}.smoke.e2e.tlsmint.dev", unique_name("g"));
    let crd_name = format!("widgets.{group}");
    // (Built from JSON: k8s-openapi's `Default` for the status subresource
    // is JSON null, which means "no status subresource".)
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": { "name": crd_name },
        "spec": {
            "group": group,
            "names": { "kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList" },
            "scope": "Namespaced",
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "subresources": { "status": {} },
                "schema": { "openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": { "type": "object", "properties": { "size": { "type": "integer" } } },
                        "status": { "type": "object", "properties": { "phase": { "type": "string" } } }
                    }
                }}
            }]
        }
    }))
    .expect("CRD JSON");
    let crds = Api::<CustomResourceDefinition>::all(client.clone());
    crds.create(&PostParams::default(), &crd)
        .await
        .expect("create CRD");
    let _delete_crd = DeleteOnDrop::new::<CustomResourceDefinition>(None, &crd_name);
    wait_for(
        &crds,
        &crd_name,
        TIMEOUT,
        "CRD Established",
        |c: &CustomResourceDefinition| {
            c.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                })
        },
    )
    .await
    .expect("CRD established");

    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(&group, "v1", "Widget"),
        "widgets",
    );
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns.name(), &ar);
    let mut widget = DynamicObject::new("w1", &ar).within(ns.name());
    widget.data = json!({ "spec": { "size": 3 } });
    // Right after Established the resource may take a moment to be served.
    let mut attempts = 0;
    loop {
        match widgets.create(&PostParams::default(), &widget).await {
            Ok(_) => break,
            Err(kube::Error::Api(e)) if e.code == 404 && attempts < 50 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("create Widget: {e}"),
        }
    }

    let patched = widgets
        .patch_status(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": { "phase": "Ready" } })),
        )
        .await
        .expect("patch status");
    assert_eq!(patched.data["status"]["phase"], "Ready");
    assert_eq!(patched.data["spec"]["size"], 3);

    // With the status subresource, the main resource ignores status changes.
    let patched = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "size": 4 }, "status": { "phase": "Ignored" } })),
        )
        .await
        .expect("patch spec");
    assert_eq!(patched.data["spec"]["size"], 4);
    assert_eq!(patched.data["status"]["phase"], "Ready");
}

#[tokio::test]
async fn deployment_runs_with_logs_and_exec() {
    let client = client().await.expect("client");
    let ns = TestNamespace::create(&client, "smoke-deploy")
        .await
        .expect("create namespace");
    let name = "hello";
    let line = format!("hello from {}", ns.name());
    let selector = labels(&[("app", name)]);
    let deployment = Deployment {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(2),
            selector: LabelSelector {
                match_labels: Some(selector.clone()),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(selector),
                    ..Default::default()
                }),
                spec: Some(busybox_pod_spec(name, &line)),
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    let deployments = Api::<Deployment>::namespaced(client.clone(), ns.name());
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create Deployment");

    let pods = Api::<Pod>::namespaced(client.clone(), ns.name());
    let running = wait_for_running_pods(&pods, "app=hello", 2, TIMEOUT)
        .await
        .expect("pods running");
    wait_for(
        &deployments,
        name,
        TIMEOUT,
        "Deployment available",
        |d: &Deployment| d.status.as_ref().and_then(|s| s.available_replicas) == Some(2),
    )
    .await
    .expect("Deployment available");

    let pod = running[0].metadata.name.clone().expect("pod name");
    let pod_ip = running[0]
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .unwrap_or_default();
    assert!(
        pod_ip.starts_with("127.0.100."),
        "pod IP {pod_ip:?} is not from the no-op CNI range"
    );

    // kubectl logs (kubelet -> container log): poll, the line may lag.
    let mut logs = String::new();
    for _ in 0..50 {
        logs = kubectl(["-n", ns.name(), "logs", &pod])
            .await
            .expect("kubectl logs");
        if logs.contains(&line) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        logs.contains(&line),
        "kubectl logs of {pod} = {logs:?}, want {line:?}"
    );

    // kubectl exec (apiserver -> kubelet -> containerd stream server).
    let out = kubectl([
        "-n",
        ns.name(),
        "exec",
        &pod,
        "--",
        "sh",
        "-c",
        "echo $((6 * 7)) $(id -u)",
    ])
    .await
    .expect("kubectl exec");
    assert_eq!(out.trim(), "42 0");

    // The same logs through the API (kube-rs).
    let api_logs = pods
        .logs(&pod, &Default::default())
        .await
        .expect("pod logs via API");
    assert!(api_logs.contains(&line), "API logs of {pod} = {api_logs:?}");
}

#[tokio::test]
async fn token_request_and_review_with_custom_audience() {
    let client = client().await.expect("client");
    let ns = TestNamespace::create(&client, "smoke-token")
        .await
        .expect("create namespace");
    let sas = Api::<ServiceAccount>::namespaced(client.clone(), ns.name());
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some("workload".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    sas.create(&PostParams::default(), &sa)
        .await
        .expect("create ServiceAccount");

    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: Some(vec!["tlsmint".into()]),
            expiration_seconds: Some(600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let token = sas
        .create_token_request("workload", &PostParams::default(), &request)
        .await
        .expect("TokenRequest")
        .status
        .expect("TokenRequest status")
        .token
        .expect("TokenRequest token");
    assert!(!token.is_empty());

    let reviews = Api::<TokenReview>::all(client.clone());
    let review = |audience: &str| TokenReview {
        spec: TokenReviewSpec {
            token: token.clone(),
            audiences: Some(vec![audience.into()]),
        },
        ..Default::default()
    };
    let status = reviews
        .create(&PostParams::default(), &review("tlsmint"))
        .await
        .expect("TokenReview")
        .status
        .expect("TokenReview status");
    assert_eq!(status.authenticated, Some(true), "review: {status:?}");
    assert_eq!(status.audiences, Some(vec!["tlsmint".to_owned()]));
    let user = status.user.expect("user");
    assert_eq!(
        user.username.as_deref(),
        Some(format!("system:serviceaccount:{}:workload", ns.name()).as_str())
    );

    // The token is bound to its audience.
    let status = reviews
        .create(&PostParams::default(), &review("someone-else"))
        .await
        .expect("TokenReview (other audience)")
        .status
        .expect("TokenReview status");
    assert_ne!(
        status.authenticated,
        Some(true),
        "token accepted for another audience: {status:?}"
    );
}

const MUTATED_LABEL: &str = "smoke.e2e.tlsmint.dev/mutated";

/// An admission webhook that adds [`MUTATED_LABEL`] to every pod.
fn label_adding_webhook(calls: Arc<AtomicUsize>) -> Handler {
    Arc::new(move |_path, body| {
        let calls = calls.clone();
        Box::pin(async move {
            let Ok(review) = serde_json::from_slice::<Value>(&body) else {
                return (StatusCode::BAD_REQUEST, b"{}".to_vec());
            };
            calls.fetch_add(1, Ordering::SeqCst);
            let request = &review["request"];
            let has_labels = request["object"]["metadata"]["labels"].is_object();
            let label_path = format!(
                "/metadata/labels/{}",
                MUTATED_LABEL.replace('~', "~0").replace('/', "~1")
            );
            let patch = if has_labels {
                json!([{ "op": "add", "path": label_path, "value": "true" }])
            } else {
                json!([{ "op": "add", "path": "/metadata/labels", "value": { MUTATED_LABEL: "true" } }])
            };
            let response = json!({
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "response": {
                    "uid": request["uid"],
                    "allowed": true,
                    "patchType": "JSONPatch",
                    "patch": ByteString(serde_json::to_vec(&patch).unwrap()),
                }
            });
            (StatusCode::OK, serde_json::to_vec(&response).unwrap())
        })
    })
}

#[tokio::test]
async fn mutating_webhook_served_by_the_test() {
    let client = client().await.expect("client");
    let ns = TestNamespace::create(&client, "smoke-webhook")
        .await
        .expect("create namespace");
    let cert = LoopbackCert::generate().expect("webhook certificate");
    let calls = Arc::new(AtomicUsize::new(0));
    let server = HttpsServer::start(
        cert.server_config.clone(),
        label_adding_webhook(calls.clone()),
    )
    .await
    .expect("start webhook server");

    let config_name = unique_name("smoke-webhook");
    let config = MutatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(config_name.clone()),
            ..Default::default()
        },
        webhooks: Some(vec![MutatingWebhook {
            name: "label.smoke.e2e.tlsmint.dev".into(),
            admission_review_versions: vec!["v1".into()],
            side_effects: "None".into(),
            failure_policy: Some("Fail".into()),
            timeout_seconds: Some(5),
            client_config: WebhookClientConfig {
                url: Some(server.url("/mutate")),
                ca_bundle: Some(ByteString(cert.ca_pem.clone().into_bytes())),
                ..Default::default()
            },
            // Only this test's namespace: a failing webhook cannot hurt others.
            namespace_selector: Some(LabelSelector {
                match_labels: Some(labels(&[("kubernetes.io/metadata.name", ns.name())])),
                ..Default::default()
            }),
            rules: Some(vec![RuleWithOperations {
                api_groups: Some(vec!["".into()]),
                api_versions: Some(vec!["v1".into()]),
                operations: Some(vec!["CREATE".into()]),
                resources: Some(vec!["pods".into()]),
                scope: Some("Namespaced".into()),
            }]),
            ..Default::default()
        }]),
    };
    let configs = Api::<MutatingWebhookConfiguration>::all(client.clone());
    configs
        .create(&PostParams::default(), &config)
        .await
        .expect("create MutatingWebhookConfiguration");
    let _delete_config = DeleteOnDrop::new::<MutatingWebhookConfiguration>(None, &config_name);

    let pods = Api::<Pod>::namespaced(client.clone(), ns.name());
    let pod = |name: &str| Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels(&[("app", "webhook-target")])),
            ..Default::default()
        },
        spec: Some(busybox_pod_spec("main", "mutated")),
        ..Default::default()
    };
    let mutated = |p: &Pod| {
        p.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(MUTATED_LABEL))
            .map(String::as_str)
            == Some("true")
    };

    // The API server picks up a new webhook configuration within moments;
    // dry runs (the webhook has no side effects) tell when it is active.
    let dry_run = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let mut active = false;
    for _ in 0..100 {
        let created = pods
            .create(&dry_run, &pod("probe"))
            .await
            .expect("dry-run create pod");
        if mutated(&created) {
            active = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        active,
        "the webhook at {} never mutated a pod",
        server.url("/mutate")
    );

    let created = pods
        .create(&PostParams::default(), &pod("target"))
        .await
        .expect("create pod");
    assert!(
        mutated(&created),
        "created pod not mutated: {:?}",
        created.metadata.labels
    );
    assert_eq!(
        created
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("app"))
            .map(String::as_str),
        Some("webhook-target"),
        "the webhook must keep existing labels"
    );
    let stored = pods.get("target").await.expect("get pod");
    assert!(
        mutated(&stored),
        "stored pod not mutated: {:?}",
        stored.metadata.labels
    );
    assert!(
        calls.load(Ordering::SeqCst) >= 2,
        "webhook calls: {}",
        calls.load(Ordering::SeqCst)
    );
}
