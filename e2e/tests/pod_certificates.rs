//! Kubernetes' own pod certificates (KEP-4317) with tlsmint as the signer, on the real
//! kubelet after `helm install` (one operator replica from the tlsmint image):
//!
//! - a pod with a `podCertificate` projected volume for `pki.tlsmint.io/<role>` starts with
//!   a chain that verifies to the mount's root, its SPIFFE ID from the role's template and a
//!   DNS name from its userAnnotations; a `clusterTrustBundle` source in the same volume
//!   holds the root (the signer-linked bundle the operator keeps); the request's status has
//!   `beginRefreshAt` at half of the lifetime;
//! - a ServiceAccount not in the subjects, a name outside the policy, an unknown annotation
//!   key and a key type the role does not take are Denied with the reason Kubernetes
//!   expects, and the pod's events say so;
//! - a request whose role's mount does not exist yet stays pending, and the pod starts
//!   once the mount is Ready; with the operator restarted while requests wait, every one is
//!   issued exactly once.
//!
//! Needs TLSMINT_IMAGE and a cluster with the PodCertificateRequest, ClusterTrustBundle
//! and ClusterTrustBundleProjection gates (e2e/cluster/up at v1.36). One release per test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::certificates::v1beta1::{ClusterTrustBundle, PodCertificateRequest};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use tlsmint_api::v1alpha1::{IssuerRole, PkiMount};
use tlsmint_ca::{PrivateKey, pem, x509};
use tlsmint_e2e::chart::{free_port, install_local};
use tlsmint_e2e::operator::{OperatorEnv, SELECTOR_LABEL, events_about, is_ready, name};
use tlsmint_e2e::{
    DeleteOnDrop, TestNamespace, env, kubectl, test_image, wait_for, wait_for_running_pods,
};

const SPIFFE: &str = "spiffe://cluster.local/ns/{{namespace}}/sa/{{serviceAccount}}";

/// A pod running as `sa` with one projected volume `tls` at /tls: the pod certificate
/// for `role` (key, chain and the single-file bundle) and the role's trust bundle.
fn pcr_pod(
    name: &str,
    app: &str,
    sa: &str,
    role: &str,
    key_type: &str,
    annotations: &[(&str, &str)],
) -> Pod {
    let annotations: BTreeMap<String, String> = annotations
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let signer = tlsmint_api::user_annotations::signer_name(role);
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {
            "serviceAccountName": sa,
            "terminationGracePeriodSeconds": 0,
            "containers": [{
                "name": "app",
                "image": test_image().unwrap(),
                "imagePullPolicy": "Never",
                "command": ["sleep", "3600"],
                "volumeMounts": [{"name": "tls", "mountPath": "/tls", "readOnly": true}],
            }],
            "volumes": [{
                "name": "tls",
                "projected": {"sources": [
                    {"podCertificate": {
                        "signerName": signer,
                        "keyType": key_type,
                        "credentialBundlePath": "credential-bundle.pem",
                        "keyPath": "tls.key",
                        "certificateChainPath": "tls.crt",
                        "userAnnotations": annotations,
                    }},
                    {"clusterTrustBundle": {
                        "signerName": signer,
                        "labelSelector": {},
                        "path": "ca.crt",
                    }},
                ]},
            }],
        },
    }))
    .unwrap()
}

/// The requests kubelet made for pod `pod`.
async fn requests_of(api: &Api<PodCertificateRequest>, pod: &str) -> Vec<PodCertificateRequest> {
    api.list(&ListParams::default().fields(&format!("spec.podName={pod}")))
        .await
        .unwrap()
        .items
}

/// The final condition (type, reason) of the request kubelet made for `pod`, once it has
/// one.
async fn verdict(api: &Api<PodCertificateRequest>, pod: &str) -> (String, String, String) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        for pcr in requests_of(api, pod).await {
            if let Some(c) = pcr
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.first())
            {
                return (c.type_.clone(), c.reason.clone(), c.message.clone());
            }
        }
        assert!(
            Instant::now() < deadline,
            "a verdict on the request of {pod}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn role(env: &OperatorEnv, name: &str, mount: &str, ns: &str) -> IssuerRole {
    let mut role = env.role(name, mount, "svc.cluster.local", &[]);
    role.spec.subjects = vec![tlsmint_api::v1alpha1::RoleSubject::new(ns, "web")];
    role.spec.allowed_uri_sans = vec![SPIFFE.into()];
    role
}

async fn wait_role_and_mount(client: &kube::Client, mount: &str, role: &str) {
    let mounts: Api<PkiMount> = Api::all(client.clone());
    let roles: Api<IssuerRole> = Api::all(client.clone());
    let long = Duration::from_secs(90);
    wait_for(&mounts, mount, long, "mount Ready", |m| {
        is_ready(m.status.as_ref().map(|s| &s.conditions))
    })
    .await
    .unwrap();
    wait_for(&roles, role, long, "role Ready", |r| {
        is_ready(r.status.as_ref().map(|s| &s.conditions))
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn tlsmint_signs_pod_certificates_through_the_real_kubelet() {
    let image =
        env("TLSMINT_IMAGE").expect("TLSMINT_IMAGE (run scripts/build-image --containerd ...)");
    let env = OperatorEnv::new("pcr").await.unwrap();
    let release = format!("{}-p", env.id);
    let ns = env.namespace.name().to_owned();
    let client = env.client.clone();
    let _release = install_local(
        &release,
        &ns,
        &image,
        &[
            "operator.replicas=1".into(),
            format!("operator.adminPort={}", free_port().unwrap()),
            format!("api.httpPort={}", free_port().unwrap()),
            format!("api.grpcPort={}", free_port().unwrap()),
            format!("operator.labelSelector={SELECTOR_LABEL}={}", env.id),
            // Node-wide and webhook parts have their own tests (csi.rs, injector.rs).
            "csi.enabled=false".into(),
            "injector.enabled=false".into(),
        ],
    )
    .await
    .unwrap();

    let apps = TestNamespace::create(&client, "pcr-apps").await.unwrap();
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), apps.name());
    for sa in ["web", "intruder"] {
        let mut account = ServiceAccount::default();
        account.metadata.name = Some(sa.into());
        sas.create(&PostParams::default(), &account).await.unwrap();
    }
    let mounts: Api<PkiMount> = Api::all(client.clone());
    let roles: Api<IssuerRole> = Api::all(client.clone());
    let pp = PostParams::default();
    let (root, web) = (name("root"), name("pods"));
    let _guards = [
        DeleteOnDrop::new::<IssuerRole>(None, &web),
        DeleteOnDrop::new::<PkiMount>(None, &root),
    ];
    mounts
        .create(&pp, &env.root_mount(&root, "E2E Pod Certificates Root"))
        .await
        .unwrap();
    roles
        .create(&pp, &role(&env, &web, &root, apps.name()))
        .await
        .unwrap();
    wait_role_and_mount(&client, &root, &web).await;
    let root_pem = mounts
        .get(&root)
        .await
        .unwrap()
        .status
        .unwrap()
        .certificate
        .unwrap();
    let root_der = pem::decode_certificate(&root_pem).unwrap();

    // The signer-linked bundle the pods' clusterTrustBundle source reads.
    let bundles: Api<ClusterTrustBundle> = Api::all(client.clone());
    let bundle_name = format!("pki.tlsmint.io:{web}:{root}");
    let bundle = wait_for(
        &bundles,
        &bundle_name,
        Duration::from_secs(60),
        "the role's ClusterTrustBundle",
        |b| !b.spec.trust_bundle.is_empty(),
    )
    .await
    .unwrap();
    assert_eq!(
        bundle.spec.signer_name.as_deref(),
        Some(format!("pki.tlsmint.io/{web}").as_str())
    );
    assert_eq!(bundle.spec.trust_bundle.trim(), root_pem.trim());
    assert!(
        bundles
            .get_opt(&format!("tlsmint-{root}"))
            .await
            .unwrap()
            .is_some()
    );

    // A pod with its certificate from kubelet and tlsmint.
    let pods: Api<Pod> = Api::namespaced(client.clone(), apps.name());
    let started = Instant::now();
    pods.create(
        &pp,
        &pcr_pod(
            "good",
            "good",
            "web",
            &web,
            "ECDSAP256",
            &[(
                "tlsmint.io/dns-names",
                "$(POD_NAME).$(POD_NAMESPACE).svc.cluster.local",
            )],
        ),
    )
    .await
    .unwrap();
    wait_for_running_pods(&pods, "app=good", 1, Duration::from_secs(120))
        .await
        .unwrap();
    eprintln!(
        "pod-certificates e2e: pod Running {:.1}s after create",
        started.elapsed().as_secs_f64()
    );
    let read = |file: &str| {
        let ns = apps.name().to_owned();
        let file = format!("/tls/{file}");
        async move {
            kubectl(["exec", "-n", &ns, "good", "--", "cat", &file])
                .await
                .unwrap()
        }
    };
    let chain_pem = read("tls.crt").await;
    let chain = pem::decode_certificates(&chain_pem).unwrap();
    x509::verify_issued_by(&chain[0], &root_der).unwrap();
    let leaf = x509::parse_certificate(&chain[0], "leaf").unwrap();
    let key = PrivateKey::from_pem(&read("tls.key").await).unwrap();
    assert_eq!(leaf.spki_der, key.public_key_der(), "the key is the leaf's");
    let bundle_file = read("credential-bundle.pem").await;
    assert!(
        bundle_file.starts_with("-----BEGIN PRIVATE KEY-----"),
        "key first"
    );
    assert!(bundle_file.contains(chain_pem.trim()), "then the chain");
    assert_eq!(
        read("ca.crt").await.trim(),
        root_pem.trim(),
        "the trust bundle"
    );
    std::fs::write(env.dir.join("pcr-leaf.pem"), &chain_pem).unwrap();
    let san = tlsmint_e2e::operator::openssl(
        &env.dir,
        &[
            "x509",
            "-in",
            "pcr-leaf.pem",
            "-noout",
            "-ext",
            "subjectAltName",
        ],
    )
    .await
    .unwrap();
    assert!(
        san.contains(&format!(
            "URI:spiffe://cluster.local/ns/{}/sa/web",
            apps.name()
        )),
        "the role's SPIFFE template: {san}"
    );
    assert!(
        san.contains(&format!("DNS:good.{}.svc.cluster.local", apps.name())),
        "the userAnnotation's name: {san}"
    );
    // Status: times of the leaf, refresh at half of the lifetime (minus the jitter).
    let pcrs: Api<PodCertificateRequest> = Api::namespaced(client.clone(), apps.name());
    let issued = requests_of(&pcrs, "good").await;
    let status = issued
        .iter()
        .find_map(|p| p.status.clone().filter(|s| s.certificate_chain.is_some()))
        .expect("an issued request");
    let nb = status.not_before.unwrap().0.as_second();
    let na = status.not_after.unwrap().0.as_second();
    assert_eq!(nb, leaf.not_before.unix_timestamp());
    assert_eq!(na, leaf.not_after.unix_timestamp());
    let lifetime = na - nb;
    assert!(lifetime >= 3600, "{lifetime}");
    let refresh = status.begin_refresh_at.unwrap().0.as_second() - nb;
    assert!(
        refresh <= lifetime / 2 && refresh >= lifetime / 2 - (lifetime / 20).min(600) - 1,
        "beginRefreshAt {refresh}s into a {lifetime}s lifetime"
    );

    // Final refusals, each with Kubernetes' reason and an Event on the pod.
    for (pod, sa, key_type, annotations, reason) in [
        (
            "intruder",
            "intruder",
            "ECDSAP256",
            vec![],
            "SubjectNotAllowed",
        ),
        (
            "outside",
            "web",
            "ECDSAP256",
            vec![("tlsmint.io/dns-names", "evil.example.com")],
            "NameNotAllowed",
        ),
        (
            "unknown-key",
            "web",
            "ECDSAP256",
            vec![("tlsmint.io/dns-name", "x.svc.cluster.local")],
            "InvalidUnverifiedUserAnnotations",
        ),
        ("ed25519", "web", "ED25519", vec![], "UnsupportedKeyType"),
    ] {
        pods.create(&pp, &pcr_pod(pod, pod, sa, &web, key_type, &annotations))
            .await
            .unwrap();
        let (type_, got, message) = verdict(&pcrs, pod).await;
        assert_eq!(
            (type_.as_str(), got.as_str()),
            ("Denied", reason),
            "{pod}: {message}"
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while events_about(&client, apps.name(), pod, reason)
            .await
            .unwrap()
            .is_empty()
        {
            assert!(Instant::now() < deadline, "an Event {reason} on pod {pod}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        eprintln!("pod-certificates e2e: {pod} denied: {reason}: {message}");
    }

    // Waiting is not failing: requests of a role whose mount does not exist yet stay
    // pending, across an operator restart, and are issued once the mount is Ready.
    let (later_root, later) = (name("later"), name("later-pods"));
    let _later_guards = [
        DeleteOnDrop::new::<IssuerRole>(None, &later),
        DeleteOnDrop::new::<PkiMount>(None, &later_root),
    ];
    roles
        .create(&pp, &role(&env, &later, &later_root, apps.name()))
        .await
        .unwrap();
    let waiting = 5;
    for i in 0..waiting {
        pods.create(
            &pp,
            &pcr_pod(
                &format!("wait-{i}"),
                "wait",
                "web",
                &later,
                "ECDSAP256",
                &[],
            ),
        )
        .await
        .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut made = 0;
        for i in 0..waiting {
            let list = requests_of(&pcrs, &format!("wait-{i}")).await;
            assert!(
                list.iter().all(|p| p
                    .status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_none_or(Vec::is_empty)),
                "a request of a role without a mount is left pending: {:?}",
                list.iter().map(|p| &p.status).collect::<Vec<_>>()
            );
            made += usize::from(!list.is_empty());
        }
        if made == waiting {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "kubelet made {made} of {waiting} requests"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let operator_pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let selector =
        format!("app.kubernetes.io/instance={release},app.kubernetes.io/component=operator");
    let old = operator_pods
        .list(&ListParams::default().labels(&selector))
        .await
        .unwrap()
        .items;
    for pod in &old {
        operator_pods
            .delete(
                &pod.metadata.name.clone().unwrap(),
                &DeleteParams::default(),
            )
            .await
            .unwrap();
    }
    mounts
        .create(&pp, &env.root_mount(&later_root, "E2E Late Root"))
        .await
        .unwrap();
    wait_role_and_mount(&client, &later_root, &later).await;
    wait_for_running_pods(&pods, "app=wait", waiting, Duration::from_secs(180))
        .await
        .unwrap();
    let mut serials = Vec::new();
    for i in 0..waiting {
        let list = requests_of(&pcrs, &format!("wait-{i}")).await;
        assert_eq!(list.len(), 1, "one request for wait-{i}");
        let chain = list[0]
            .status
            .as_ref()
            .and_then(|s| s.certificate_chain.clone())
            .expect("issued");
        serials.push(
            x509::parse_certificate(&pem::decode_certificates(&chain).unwrap()[0], "leaf")
                .unwrap()
                .serial
                .to_string(),
        );
    }
    // Issued once each: the audit lines of the new operator name each serial once.
    let logs = kubectl(["logs", "-n", &ns, "-l", &selector, "--tail=-1"])
        .await
        .unwrap();
    for serial in &serials {
        let lines = logs
            .lines()
            .filter(|l| l.contains("tlsmint::audit") && l.contains(serial.as_str()))
            .count();
        assert_eq!(lines, 1, "one audit line for serial {serial}");
    }
    let signed_for_later = logs
        .lines()
        .filter(|l| {
            l.contains("tlsmint::audit") && l.contains("pod-certificate") && l.contains(&later)
        })
        .filter(|l| l.contains("issued"))
        .count();
    assert_eq!(signed_for_later, waiting, "{logs}");

    // A burst of pods at once (TLSMINT_E2E_PCR_PODS, default 20; the benchmark in
    // docs/benchmarks.md uses 200): time to all Running and the signer's rate.
    let burst: usize = std::env::var("TLSMINT_E2E_PCR_PODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let started = Instant::now();
    let creates = (0..burst).map(|i| {
        let pods = pods.clone();
        let pod = pcr_pod(
            &format!("burst-{i}"),
            "burst",
            "web",
            &web,
            "ECDSAP256",
            &[],
        );
        async move { pods.create(&PostParams::default(), &pod).await.unwrap() }
    });
    futures::future::join_all(creates).await;
    wait_for_running_pods(&pods, "app=burst", burst, Duration::from_secs(600))
        .await
        .unwrap();
    let running = started.elapsed().as_secs_f64();
    let mut created = Vec::new();
    let mut issued_at = Vec::new();
    for i in 0..burst {
        for pcr in requests_of(&pcrs, &format!("burst-{i}")).await {
            created.push(
                pcr.metadata
                    .creation_timestamp
                    .clone()
                    .unwrap()
                    .0
                    .as_second(),
            );
            let conditions = pcr.status.and_then(|s| s.conditions).unwrap_or_default();
            let issued = conditions
                .iter()
                .find(|c| c.type_ == "Issued")
                .expect("issued");
            issued_at.push(issued.last_transition_time.0.as_second());
        }
    }
    assert_eq!(issued_at.len(), burst, "one issued request per pod");
    let first = created.iter().min().copied().unwrap_or_default();
    let last = issued_at.iter().max().copied().unwrap_or_default();
    let lag = created
        .iter()
        .zip(&issued_at)
        .map(|(c, i)| i - c)
        .max()
        .unwrap_or_default();
    eprintln!(
        "pod-certificates e2e: burst of {burst} pods all Running after {running:.1}s; requests created to last issued {}s ({:.1}/s), longest create-to-issued {lag}s",
        last - first,
        burst as f64 / ((last - first).max(1) as f64)
    );
}
