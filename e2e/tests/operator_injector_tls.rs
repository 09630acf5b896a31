//! The injector's serving certificate and its webhook's caBundle, kept by the operator's
//! leader against the real API server with the chart's RBAC (the webhook configuration by
//! name only): the Secret appears, is signed by the internal API CA (ConfigMap
//! `tlsmint-api-ca`), is renewed at half of a short lifetime, comes back when deleted, and
//! the caBundle is set to the CA and restored when someone changes it. The missed-injection
//! reporter flags an annotated pod no injector saw (Event `NotInjected`, gauge).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use tlsmint_e2e::operator::{OperatorEnv, OperatorProcess, events_about, secret_text};
use tlsmint_e2e::{DeleteOnDrop, wait_for};

fn bundle_of(config: &MutatingWebhookConfiguration) -> Option<String> {
    config
        .webhooks
        .as_ref()?
        .first()?
        .client_config
        .ca_bundle
        .as_ref()
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
}

/// A webhook configuration that never applies to anything (its objectSelector matches a
/// label no pod has), with a stale caBundle.
fn never_matching(name: &str) -> MutatingWebhookConfiguration {
    MutatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        webhooks: Some(vec![MutatingWebhook {
            name: "inject.tlsmint.io".into(),
            admission_review_versions: vec!["v1".into()],
            side_effects: "None".into(),
            failure_policy: Some("Ignore".into()),
            client_config: WebhookClientConfig {
                url: Some("https://127.0.0.1:1/mutate".into()),
                ca_bundle: Some(ByteString(b"stale".to_vec())),
                ..WebhookClientConfig::default()
            },
            object_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    "e2e.tlsmint.dev/never".to_owned(),
                    name.to_owned(),
                )])),
                ..LabelSelector::default()
            }),
            ..MutatingWebhook::default()
        }]),
    }
}

#[tokio::test]
async fn leader_keeps_the_injector_certificate_and_ca_bundle() {
    let env = OperatorEnv::new("op-injtls").await.unwrap();
    let ns = env.namespace.name().to_owned();
    // The chart's names for a release called `env.id`: its RBAC allows this one object.
    let webhook = format!("{}-tlsmint-injector", env.id);
    let secret_name = format!("{webhook}-tls");
    let configs: Api<MutatingWebhookConfiguration> = Api::all(env.client.clone());
    configs
        .create(&PostParams::default(), &never_matching(&webhook))
        .await
        .unwrap();
    let _cleanup = DeleteOnDrop::new::<MutatingWebhookConfiguration>(None, &webhook);

    let operator = OperatorProcess::start_with_env(
        &env,
        "op-0",
        &[
            ("TLSMINT_INJECTOR_TLS_SECRET", secret_name.as_str()),
            ("TLSMINT_INJECTOR_WEBHOOK_CONFIG", webhook.as_str()),
            (
                "TLSMINT_INJECTOR_SERVING_NAMES",
                "injector.example.svc,127.0.0.1",
            ),
            ("TLSMINT_INJECTOR_CERT_TTL", "2m"),
            ("TLSMINT_INJECTOR_CHECK_INTERVAL", "1s"),
            ("TLSMINT_REPORT_MISSED_INJECTION", "true"),
        ],
    )
    .await
    .unwrap();

    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &ns);
    let has_pair = |s: &Secret| {
        s.data
            .as_ref()
            .is_some_and(|d| d.contains_key("tls.crt") && d.contains_key("tls.key"))
    };
    let first = wait_for(
        &secrets,
        &secret_name,
        Duration::from_secs(60),
        "the injector Secret",
        has_pair,
    )
    .await
    .unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), &ns);
    let ca = maps.get("tlsmint-api-ca").await.unwrap().data.unwrap()["ca.crt"].clone();
    assert_eq!(
        secret_text(&first, "ca.crt"),
        ca,
        "ca.crt is the internal API CA"
    );
    assert_eq!(first.type_.as_deref(), Some("kubernetes.io/tls"));
    // The leaf verifies against the CA (openssl, outside our code).
    let dir = env.dir.join("injector-tls");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.crt"), &ca).unwrap();
    std::fs::write(dir.join("tls.crt"), secret_text(&first, "tls.crt")).unwrap();
    let verified = tlsmint_e2e::operator::openssl(
        &dir,
        &[
            "verify",
            "-CAfile",
            "ca.crt",
            "-verify_ip",
            "127.0.0.1",
            "tls.crt",
        ],
    )
    .await
    .unwrap();
    assert!(verified.contains("OK"), "{verified}");

    // The caBundle is set to the internal CA.
    wait_for(
        &configs,
        &webhook,
        Duration::from_secs(30),
        "caBundle = internal CA",
        |c| bundle_of(c).as_deref() == Some(ca.as_str()),
    )
    .await
    .unwrap();

    // Renewed at half of its lifetime: 2m plus the CA's 30 s back-dating make 150 s, whose
    // half is 45 s after issue (less up to 5 % jitter).
    let first_crt = secret_text(&first, "tls.crt");
    let started = std::time::Instant::now();
    let renewed = wait_for(
        &secrets,
        &secret_name,
        Duration::from_secs(90),
        "a renewed certificate",
        |s| has_pair(s) && secret_text(s, "tls.crt") != first_crt,
    )
    .await
    .unwrap();
    let took = started.elapsed();
    eprintln!("renewed {took:?} after the first certificate was seen");
    assert!(
        took >= Duration::from_secs(25),
        "renewed too early: {took:?}"
    );
    assert_ne!(
        secret_text(&renewed, "tls.key"),
        secret_text(&first, "tls.key"),
        "a new key with the new certificate"
    );

    // Someone changes the caBundle: it is set back.
    let mut edited = configs.get(&webhook).await.unwrap();
    edited.webhooks.as_mut().unwrap()[0].client_config.ca_bundle =
        Some(ByteString(b"stale again".to_vec()));
    configs
        .replace(&webhook, &PostParams::default(), &edited)
        .await
        .unwrap();
    wait_for(
        &configs,
        &webhook,
        Duration::from_secs(30),
        "caBundle restored",
        |c| bundle_of(c).as_deref() == Some(ca.as_str()),
    )
    .await
    .unwrap();

    // A pod annotated for injection that no injector saw (no webhook serves this namespace)
    // is reported by an Event and the gauge; an unannotated one is not.
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &ns);
    let pod = |name: &str, annotations: serde_json::Value| -> Pod {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "annotations": annotations},
            "spec": {
                "terminationGracePeriodSeconds": 0,
                "containers": [{
                    "name": "app",
                    "image": tlsmint_e2e::test_image().unwrap(),
                    "imagePullPolicy": "Never",
                    "command": ["sleep", "3600"],
                }],
            },
        }))
        .unwrap()
    };
    pods.create(
        &PostParams::default(),
        &pod(
            "bypassed",
            serde_json::json!({"tlsmint.io/inject": "true", "tlsmint.io/role": "web"}),
        ),
    )
    .await
    .unwrap();
    pods.create(&PostParams::default(), &pod("plain", serde_json::json!({})))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let events = events_about(&env.client, &ns, "bypassed", "NotInjected")
            .await
            .unwrap();
        let gauge = operator
            .metric("tlsmint_operator_pods_not_injected")
            .await
            .unwrap();
        if !events.is_empty() && gauge == Some(1.0) {
            let note = events[0].note.clone().unwrap_or_default();
            assert!(note.contains("tlsmint.io/inject"), "{note}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no NotInjected Event or gauge for the bypassed pod: {events:?} {gauge:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        events_about(&env.client, &ns, "plain", "NotInjected")
            .await
            .unwrap()
            .is_empty()
    );

    // Deleted: it comes back.
    secrets
        .delete(&secret_name, &DeleteParams::default())
        .await
        .unwrap();
    wait_for(
        &secrets,
        &secret_name,
        Duration::from_secs(30),
        "the Secret recreated",
        has_pair,
    )
    .await
    .unwrap();
}
