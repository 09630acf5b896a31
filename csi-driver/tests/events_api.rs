//! The kube-rs event sink against a real API server (opt-in: `-- --ignored`, with
//! KUBECONFIG pointing at a cluster where the caller may create namespaces and
//! events.k8s.io events). It posts one Event in a namespace of its own, reads it back,
//! and deletes the namespace.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use tlsmint_csi::events::{EventSink, KubeEvents, PodEvent, PodRef, Trouble};

#[tokio::test]
#[ignore = "needs a cluster (KUBECONFIG)"]
async fn posts_one_event_regarding_the_pod() {
    let client = kube::Client::try_default().await.expect("KUBECONFIG");
    let ns = format!("tlsmint-csi-events-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let body: Namespace = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}
    }))
    .unwrap();
    namespaces
        .create(&PostParams::default(), &body)
        .await
        .unwrap();

    let sink = KubeEvents::with_client(client.clone(), "node-1");
    let event = PodEvent {
        pod: PodRef {
            namespace: ns.clone(),
            name: "web-0".into(),
            uid: "0b1c2d3e-0000-4000-8000-000000000001".into(),
        },
        trouble: Trouble::RenewalOverdue,
        note: "tlsmint volume v: renewal of certificate 01 is overdue; retrying: down".into(),
    };
    let posted = sink.post(&event).await;
    // And through the sink's fire-and-forget path: a second one.
    sink.emit(event);
    let events: Api<Event> = Api::namespaced(client, &ns);
    let mut found = Vec::new();
    for _ in 0..50 {
        found = events.list(&ListParams::default()).await.unwrap().items;
        if found.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    namespaces
        .delete(&ns, &DeleteParams::default())
        .await
        .unwrap();
    posted.unwrap();
    assert_eq!(found.len(), 2, "{found:?}");
    let event = &found[0];
    assert_eq!(event.reason.as_deref(), Some("CertificateRenewalOverdue"));
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert_eq!(
        event.reporting_controller.as_deref(),
        Some("csi.tlsmint.io")
    );
    let regarding = event.regarding.as_ref().unwrap();
    assert_eq!(regarding.kind.as_deref(), Some("Pod"));
    assert_eq!(regarding.name.as_deref(), Some("web-0"));
}
