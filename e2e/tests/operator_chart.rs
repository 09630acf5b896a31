//! The Helm chart on the real local cluster: `helm install` with `values-local.yaml` runs
//! two operator replicas from the tlsmint image on the kubelet (host network, API server on
//! the node's loopback); both turn Ready, one holds the Lease, a request gets its
//! certificate, and deleting the leader's pod hands the Lease to the other replica.
//! Needs TLSMINT_IMAGE (printed by `scripts/build-image --containerd ...`).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams};
use tlsmint_api::v1alpha1::CertificateRequest;
use tlsmint_e2e::chart::{free_port, helm, install_local, pod_ready};
use tlsmint_e2e::operator::{OperatorEnv, SELECTOR_LABEL, ready_of, workspace_root};
use tlsmint_e2e::{env, tool_path, wait_for};

#[tokio::test]
async fn helm_install_runs_two_replicas_that_elect_a_leader_and_issue() {
    let image =
        env("TLSMINT_IMAGE").expect("TLSMINT_IMAGE (run scripts/build-image --containerd ...)");
    // The env gives a namespace, the CRDs and the selector label; the chart brings its own
    // RBAC and ServiceAccount for the pods.
    let env = OperatorEnv::new("op-chart").await.unwrap();
    // Another release name than the env's own RBAC objects, so nothing collides.
    let release = format!("{}-c", env.id);
    let ns = env.namespace.name().to_owned();
    let (admin_port, http_port, grpc_port) = (
        free_port().unwrap(),
        free_port().unwrap(),
        free_port().unwrap(),
    );
    let _release = install_local(
        &release,
        &ns,
        &image,
        &[
            format!("operator.adminPort={admin_port}"),
            format!("api.httpPort={http_port}"),
            format!("api.grpcPort={grpc_port}"),
            format!("operator.labelSelector={SELECTOR_LABEL}={}", env.id),
            "operator.logLevel=info\\,tlsmint_operator=debug".into(),
            // The CSI node plugin is node-wide (one release per cluster): e2e/tests/csi.rs.
            "csi.enabled=false".into(),
            // The injector has its own test (injector.rs); here it would only add a webhook
            // for annotated pods of every namespace of the shared cluster.
            "injector.enabled=false".into(),
        ],
    )
    .await
    .unwrap();

    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &ns);
    let selector =
        format!("app.kubernetes.io/instance={release},app.kubernetes.io/component=operator");
    let deadline = Instant::now() + Duration::from_secs(120);
    let ready_pods = loop {
        let list = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .unwrap()
            .items;
        if list.len() == 2 && list.iter().all(pod_ready) {
            break list;
        }
        assert!(
            Instant::now() < deadline,
            "2 Ready operator pods: {:?}",
            list.iter().map(|p| &p.status).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let names: Vec<String> = ready_pods
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), &ns);
    let holder = wait_for(
        &leases,
        "tlsmint-operator",
        Duration::from_secs(60),
        "a leader",
        |l| {
            l.spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_ref())
                .is_some_and(|h| names.contains(h))
        },
    )
    .await
    .unwrap()
    .spec
    .unwrap()
    .holder_identity
    .unwrap();

    // The replicas in pods issue a certificate.
    let ca = env.root_with_role("E2E Chart Root", &[&ns]).await.unwrap();
    let role = ca.role.clone();
    let requests: Api<CertificateRequest> = Api::namespaced(env.client.clone(), &ns);
    env.create_request(&ns, "web", &role, &["web.example.com"])
        .await
        .unwrap();
    wait_for(&requests, "web", Duration::from_secs(90), "Ready", |cr| {
        cr.status
            .as_ref()
            .and_then(|s| ready_of(&s.conditions))
            .is_some_and(|(s, _, _)| s == "True")
    })
    .await
    .unwrap();

    // The leader's pod goes away: it releases the Lease on SIGTERM and another replica (the
    // other one, or the Deployment's replacement pod) takes over.
    pods.delete(&holder, &DeleteParams::default())
        .await
        .unwrap();
    let next = wait_for(
        &leases,
        "tlsmint-operator",
        Duration::from_secs(60),
        "a new leader",
        |l| {
            l.spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref())
                .is_some_and(|h| h != holder)
        },
    )
    .await
    .unwrap()
    .spec
    .unwrap();
    assert!(next.lease_transitions.unwrap_or(0) >= 1);
}

/// `helm lint` and `helm template` (no cluster needed, only helm from K8S_BIN): any tag
/// renders, even one YAML reads as a number; `latest` is refused; local mode shares the
/// API ports on loopback and real clusters get a Service whose names the serving
/// certificate covers.
#[tokio::test]
async fn chart_renders_for_both_modes_and_refuses_latest() {
    let chart = workspace_root().join("charts/tlsmint");
    let chart = chart.to_string_lossy();
    helm(&["lint", &chart, "--set", "image.tag=1"])
        .await
        .unwrap();

    let real = helm(&["template", "r", &chart, "-n", "ns", "--set", "image.tag=2"])
        .await
        .unwrap();
    assert!(
        real.contains("image: \"tlsmint.local/tlsmint:2\""),
        "{real}"
    );
    assert!(real.contains("kind: Service\n"), "{real}");
    assert!(real.contains("name: r-tlsmint-operator\n"), "{real}");
    assert!(
        real.contains("name: TLSMINT_SERVICE_NAME\n              value: \"r-tlsmint-operator\""),
        "{real}"
    );
    assert!(real.contains("value: \"0.0.0.0:8200\""), "{real}");
    // The CSI node plugin: its driver object and DaemonSet, reaching the API by Service.
    assert!(real.contains("kind: CSIDriver\n"), "{real}");
    assert!(real.contains("requiresRepublish: true"), "{real}");
    assert!(real.contains("- Ephemeral"), "{real}");
    assert!(real.contains("audience: tlsmint"), "{real}");
    assert!(real.contains("kind: DaemonSet\n"), "{real}");
    assert!(
        real.contains("value: \"https://r-tlsmint-operator.ns.svc:8201\""),
        "{real}"
    );
    assert!(real.contains("mountPropagation: Bidirectional"), "{real}");
    assert!(
        real.contains("path: \"/var/lib/kubelet/plugins_registry\""),
        "{real}"
    );
    let without_csi = helm(&[
        "template",
        "r",
        &chart,
        "--set",
        "image.tag=2",
        "--set",
        "csi.enabled=false",
    ])
    .await
    .unwrap();
    assert!(!without_csi.contains("CSIDriver"), "{without_csi}");
    assert!(!real.contains("TLSMINT_API_REUSE_PORT"), "{real}");

    let values = workspace_root().join("charts/tlsmint/values-local.yaml");
    let local = helm(&[
        "template",
        "r",
        &chart,
        "-n",
        "ns",
        "-f",
        &values.to_string_lossy(),
        "--set",
        "image.tag=v3",
        "--set",
        "api.httpPort=18200",
    ])
    .await
    .unwrap();
    assert!(local.contains("hostNetwork: true"), "{local}");
    assert!(local.contains("value: \"127.0.0.1:18200\""), "{local}");
    assert!(local.contains("value: \"127.0.0.1:8201\""), "{local}");
    assert!(local.contains("TLSMINT_API_REUSE_PORT"), "{local}");
    assert!(
        local.contains("value: \"https://127.0.0.1:8201\""),
        "the CSI driver reaches the API on the node's loopback: {local}"
    );

    check_injector_real(&real);
    check_injector_local(&local);

    let refused = tokio::process::Command::new(tool_path("helm").unwrap())
        .args(["template", "r", &chart, "--set", "image.tag=latest"])
        .output()
        .await
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("must not be latest"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

/// The documents of a rendered chart.
fn documents(rendered: &str) -> Vec<serde_json::Value> {
    rendered
        .split("\n---")
        .filter_map(|doc| serde_yaml_ng::from_str::<serde_json::Value>(doc).ok())
        .filter(|v| v.is_object())
        .collect()
}

fn find<'a>(docs: &'a [serde_json::Value], kind: &str, name: &str) -> &'a serde_json::Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} rendered"))
}

fn env_of<'a>(container: &'a serde_json::Value, name: &str) -> &'a str {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["value"].as_str())
        .unwrap_or_else(|| panic!("no env {name} in {container}"))
}

/// What both modes share: Pod CREATE only, scoped by matchConditions and namespaceSelector,
/// Fail, 5 s, IfNeeded, no side effects, no caBundle (the operator sets it), and RBAC on
/// this one MutatingWebhookConfiguration by name.
fn check_injector_common(docs: &[serde_json::Value]) -> serde_json::Value {
    let mwc = find(docs, "MutatingWebhookConfiguration", "r-tlsmint-injector");
    let hooks = mwc["webhooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 1, "{mwc}");
    let hook = &hooks[0];
    assert_eq!(hook["failurePolicy"], "Fail");
    assert_eq!(hook["timeoutSeconds"], 5);
    assert_eq!(hook["reinvocationPolicy"], "IfNeeded");
    assert_eq!(hook["sideEffects"], "None");
    assert!(hook["clientConfig"].get("caBundle").is_none(), "{hook}");
    let rules = hook["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["operations"], serde_json::json!(["CREATE"]));
    assert_eq!(rules[0]["resources"], serde_json::json!(["pods"]));
    let expr = &hook["namespaceSelector"]["matchExpressions"][0];
    assert_eq!(expr["key"], "kubernetes.io/metadata.name");
    assert_eq!(expr["operator"], "NotIn");
    assert_eq!(expr["values"], serde_json::json!(["ns", "kube-system"]));
    let condition = hook["matchConditions"][0]["expression"].as_str().unwrap();
    assert!(condition.contains("'tlsmint.io/inject'"), "{condition}");

    let role = find(docs, "ClusterRole", "r-tlsmint-operator");
    let rule = role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resources"] == serde_json::json!(["mutatingwebhookconfigurations"]))
        .expect("a rule for the webhook configuration");
    assert_eq!(
        rule["resourceNames"],
        serde_json::json!(["r-tlsmint-injector"])
    );
    assert_eq!(rule["verbs"], serde_json::json!(["get", "patch"]));

    let operator = &find(docs, "Deployment", "r-tlsmint-operator")["spec"]["template"]["spec"]["containers"]
        [0];
    assert_eq!(
        env_of(operator, "TLSMINT_INJECTOR_TLS_SECRET"),
        "r-tlsmint-injector-tls"
    );
    assert_eq!(
        env_of(operator, "TLSMINT_INJECTOR_WEBHOOK_CONFIG"),
        "r-tlsmint-injector"
    );
    assert_eq!(
        env_of(operator, "TLSMINT_POLICY_CHECK_CALLERS"),
        "ns/r-tlsmint-injector"
    );
    hook.clone()
}

fn check_injector_real(rendered: &str) {
    let docs = documents(rendered);
    let hook = check_injector_common(&docs);
    assert_eq!(
        hook["clientConfig"]["service"],
        serde_json::json!({"namespace": "ns", "name": "r-tlsmint-injector", "port": 443, "path": "/mutate"})
    );
    find(&docs, "Service", "r-tlsmint-injector");
    let deployment = find(&docs, "Deployment", "r-tlsmint-injector");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        env_of(container, "TLSMINT_API_ENDPOINT"),
        "https://r-tlsmint-operator.ns.svc:8201"
    );
    assert_eq!(
        env_of(container, "TLSMINT_AGENT_IMAGE"),
        "tlsmint.local/tlsmint:2"
    );
    let operator = &find(&docs, "Deployment", "r-tlsmint-operator")["spec"]["template"]["spec"]["containers"]
        [0];
    let names = env_of(operator, "TLSMINT_INJECTOR_SERVING_NAMES");
    assert!(names.contains("r-tlsmint-injector.ns.svc,"), "{names}");
    assert!(!names.contains("127.0.0.1"), "{names}");
}

fn check_injector_local(rendered: &str) {
    let docs = documents(rendered);
    let hook = check_injector_common(&docs);
    assert_eq!(
        hook["clientConfig"],
        serde_json::json!({"url": "https://127.0.0.1:8443/mutate"})
    );
    assert!(
        !docs
            .iter()
            .any(|d| d["kind"] == "Service" && d["metadata"]["name"] == "r-tlsmint-injector"),
        "no injector Service in local mode"
    );
    let deployment = find(&docs, "Deployment", "r-tlsmint-injector");
    assert_eq!(deployment["spec"]["replicas"], 1);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    let container = &pod["containers"][0];
    assert_eq!(env_of(container, "TLSMINT_INJECTOR_ADDR"), "127.0.0.1:8443");
    assert_eq!(
        env_of(container, "TLSMINT_API_ENDPOINT"),
        "https://127.0.0.1:8201"
    );
    let operator = &find(&docs, "Deployment", "r-tlsmint-operator")["spec"]["template"]["spec"]["containers"]
        [0];
    assert!(env_of(operator, "TLSMINT_INJECTOR_SERVING_NAMES").ends_with(",127.0.0.1"));
}
