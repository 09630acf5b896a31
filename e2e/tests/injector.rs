//! tlsmint-injector and tlsmint-agent on the real local cluster after `helm install`
//! (values-local.yaml, one operator replica, the injector on the node's loopback):
//!
//! - an annotated Deployment's app container, and a user init container, find a non-empty
//!   certificate, key and CA on their very first start (they exit non-zero otherwise);
//! - with `ttl: 2m` the agent renews the certificate (about 45 s after issue: half of the
//!   2m30s lifetime, back-dating included), and its SIGHUP reaches the app's process in the
//!   other container (`tlsmint.io/reload-signal`, shared process namespace);
//! - an invalid annotation is refused at admission with a message naming it, and so are a
//!   name outside the role's policy and a ServiceAccount outside its subjects, with the
//!   operator's reason (CheckPolicy: nothing is issued);
//! - a Job with the annotation completes (the agent is a native sidecar);
//! - the webhook's serving certificate (lifetime 3m) rotates while annotated pods are
//!   admitted every second, without a failed admission;
//! - with the injector scaled to zero an unannotated pod is admitted untouched (and an
//!   annotated one is refused: failurePolicy Fail).
//!
//! Needs TLSMINT_IMAGE (printed by `scripts/build-image --containerd ...`).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use tlsmint_api::v1alpha1::{IssuerRole, RoleSubject};
use tlsmint_e2e::chart::{Release, free_port, pod_ready};
use tlsmint_e2e::operator::{OperatorEnv, SELECTOR_LABEL, is_ready, secret_text, workspace_root};
use tlsmint_e2e::{TestNamespace, env, kubectl, test_image, tool_path, wait_for};

async fn ready_pods(api: &Api<Pod>, selector: &str, count: usize, timeout: Duration) -> Vec<Pod> {
    let deadline = Instant::now() + timeout;
    loop {
        let list = api
            .list(&ListParams::default().labels(selector))
            .await
            .unwrap()
            .items;
        if list.len() == count && list.iter().all(pod_ready) {
            return list;
        }
        assert!(
            Instant::now() < deadline,
            "{count} Ready pods ({selector}): {}",
            serde_json::to_string(&list.iter().map(|p| &p.status).collect::<Vec<_>>()).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Checks the three files and exits 1 when one is missing or empty.
const CHECK: &str = "for f in tls.crt tls.key ca.crt; do test -s /var/run/tlsmint/$f || { echo missing $f; exit 1; }; done";

/// What the app prints when it gets SIGHUP.
const RELOADED: &str = "reloaded-on-sighup";

/// An app that waits and prints [`RELOADED`] on each SIGHUP (`wait` returns at once on a
/// trapped signal, `sleep` in the foreground would delay it).
const RELOADING_APP: &str =
    "trap 'echo reloaded-on-sighup' HUP; while true; do sleep 1 & wait $!; done";

/// An annotated pod template (host network: the agent reaches the API on the node's
/// loopback) with a user init container and an app container that both check the files.
fn annotated_pod(annotations: &[(&str, &str)], app_command: &str) -> serde_json::Value {
    let annotations: BTreeMap<&str, &str> = annotations.iter().copied().collect();
    let image = test_image().unwrap();
    serde_json::json!({
        "metadata": {"annotations": annotations, "labels": {"app": "web"}},
        "spec": {
            "hostNetwork": true,
            "terminationGracePeriodSeconds": 0,
            "initContainers": [{
                "name": "check-init",
                "image": image,
                "imagePullPolicy": "Never",
                "command": ["sh", "-c", CHECK],
            }],
            "containers": [{
                "name": "app",
                "image": image,
                "imagePullPolicy": "Never",
                "command": ["sh", "-c", format!("{CHECK}; {app_command}")],
            }],
        },
    })
}

fn annotations(role: &str) -> Vec<(&'static str, String)> {
    vec![
        ("tlsmint.io/inject", "true".into()),
        ("tlsmint.io/role", role.to_owned()),
        ("tlsmint.io/common-name", "web.example.com".into()),
        (
            "tlsmint.io/dns-names",
            "web.example.com,$(POD_NAME).example.com".into(),
        ),
        ("tlsmint.io/ttl", "2m".into()),
    ]
}

fn pod_of(template: serde_json::Value, name: &str) -> Pod {
    let mut v = template;
    v["apiVersion"] = "v1".into();
    v["kind"] = "Pod".into();
    v["metadata"]["name"] = name.into();
    serde_json::from_value(v).unwrap()
}

/// Everything `helm install` needs for this test, as a values file.
fn values(env: &OperatorEnv, release: &str, image: &str, ports: &Ports) -> String {
    let (repository, tag) = image.rsplit_once(':').expect("name:tag");
    let csi = std::fs::read_to_string(workspace_root().join("charts/tlsmint/values.yaml"))
        .unwrap()
        .lines()
        .any(|l| l.starts_with("csi:"));
    let mut values = serde_json::json!({
        "image": {"repository": repository, "tag": tag},
        "operator": {
            "replicas": 1,
            "adminPort": ports.admin,
            "labelSelector": format!("{SELECTOR_LABEL}={}", env.id),
            "logLevel": "info,tlsmint_operator=debug",
        },
        "api": {"httpPort": ports.http, "grpcPort": ports.grpc},
        "injector": {
            "port": ports.injector,
            "adminPort": ports.injector_admin,
            "certTTL": "3m",
            "logLevel": "info,tlsmint_injector=debug",
            "agent": {"logLevel": "info,tlsmint_agent=debug"},
            // Only this test's namespace: other tests on the shared cluster never see it.
            "namespaceLabels": {"e2e.tlsmint.dev/injector": release},
        },
    });
    if csi {
        values["csi"] = serde_json::json!({"enabled": false});
    }
    serde_json::to_string_pretty(&values).unwrap()
}

struct Ports {
    admin: u16,
    http: u16,
    grpc: u16,
    injector: u16,
    injector_admin: u16,
}

async fn helm(args: &[&str]) {
    let out = tokio::process::Command::new(tool_path("helm").unwrap())
        .args(args)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "helm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn annotated_pods_start_with_a_certificate_that_renews() {
    let image =
        env("TLSMINT_IMAGE").expect("TLSMINT_IMAGE (run scripts/build-image --containerd ...)");
    let env = OperatorEnv::new("inj").await.unwrap();
    let release = format!("{}-c", env.id);
    let ns = env.namespace.name().to_owned();
    let fullname = format!("{release}-tlsmint");
    let ports = Ports {
        admin: free_port().unwrap(),
        http: free_port().unwrap(),
        grpc: free_port().unwrap(),
        injector: free_port().unwrap(),
        injector_admin: free_port().unwrap(),
    };
    let values_file = env.dir.join("values-injector.json");
    std::fs::write(&values_file, values(&env, &release, &image, &ports)).unwrap();
    let chart = workspace_root().join("charts/tlsmint");
    let _release = Release {
        name: release.clone(),
        namespace: ns.clone(),
    };
    helm(&[
        "install",
        &release,
        &chart.to_string_lossy(),
        "-n",
        &ns,
        "-f",
        &chart.join("values-local.yaml").to_string_lossy(),
        "-f",
        &values_file.to_string_lossy(),
    ])
    .await;

    // The apps' namespace carries the label the webhook's namespaceSelector asks for.
    let apps = TestNamespace::create(&env.client, "inj-app").await.unwrap();
    let app_ns = apps.name().to_owned();
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    namespaces
        .patch(
            &app_ns,
            &PatchParams::default(),
            &Patch::Merge(
                serde_json::json!({"metadata": {"labels": {"e2e.tlsmint.dev/injector": release}}}),
            ),
        )
        .await
        .unwrap();

    let pods: Api<Pod> = Api::namespaced(env.client.clone(), &ns);
    let component =
        |c: &str| format!("app.kubernetes.io/instance={release},app.kubernetes.io/component={c}");
    ready_pods(&pods, &component("operator"), 1, Duration::from_secs(120)).await;
    ready_pods(&pods, &component("injector"), 1, Duration::from_secs(120)).await;

    // The leader set the webhook's caBundle to the internal API CA.
    let configs: Api<MutatingWebhookConfiguration> = Api::all(env.client.clone());
    let ca_pem = wait_for(
        &configs,
        &format!("{fullname}-injector"),
        Duration::from_secs(60),
        "caBundle set",
        |c| {
            c.webhooks
                .as_ref()
                .and_then(|w| w.first())
                .and_then(|w| w.client_config.ca_bundle.as_ref())
                .is_some_and(|b| !b.0.is_empty())
        },
    )
    .await
    .unwrap();
    let ca_pem = String::from_utf8(
        ca_pem.webhooks.unwrap()[0]
            .client_config
            .ca_bundle
            .clone()
            .unwrap()
            .0,
    )
    .unwrap();
    assert!(ca_pem.contains("BEGIN CERTIFICATE"), "{ca_pem}");

    let ca = env
        .root_with_role("E2E Injector Root", &[&app_ns])
        .await
        .unwrap();
    let role = ca.role.clone();
    let ann = annotations(&role);
    let ann_refs: Vec<(&str, &str)> = ann.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // Admissions every second from here on, while the webhook's certificate rotates.
    let app_pods: Api<Pod> = Api::namespaced(env.client.clone(), &app_ns);
    let failures = Arc::new(AtomicUsize::new(0));
    let admitted = Arc::new(AtomicUsize::new(0));
    let stop = tlsmint_e2e_stop();
    let latencies = Arc::new(std::sync::Mutex::new(Vec::<Duration>::new()));
    let prober = {
        let latencies = latencies.clone();
        let (api, failures, admitted, stop) = (
            app_pods.clone(),
            failures.clone(),
            admitted.clone(),
            stop.clone(),
        );
        let template = annotated_pod(&ann_refs, "sleep 3600");
        tokio::spawn(async move {
            let dry = PostParams {
                dry_run: true,
                ..PostParams::default()
            };
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let pod = pod_of(template.clone(), &format!("probe-{i}"));
                let sent = Instant::now();
                let result = api.create(&dry, &pod).await;
                latencies.lock().unwrap().push(sent.elapsed());
                match result {
                    Ok(p) if is_injected(&p) => {
                        admitted.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {
                        eprintln!("admission {i}: not injected");
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        eprintln!("admission {i}: {e}");
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), &ns);
    let serving_secret = format!("{fullname}-injector-tls");
    let first_serving = secret_text(&secrets.get(&serving_secret).await.unwrap(), "tls.crt");

    // An annotated Deployment: its init container and app container check the files at their
    // first start and exit 1 if any is missing. The app's shell reloads on SIGHUP (it says so
    // on stdout); the agent signals it after each rotation. Both run as the pod's user, the
    // one a signal needs.
    let mut web_ann = ann_refs.clone();
    web_ann.extend([
        ("tlsmint.io/reload-signal", "HUP"),
        ("tlsmint.io/reload-process", "sh"),
    ]);
    let mut template = annotated_pod(&web_ann, RELOADING_APP);
    template["spec"]["securityContext"] = serde_json::json!({"runAsUser": 65532});
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), &app_ns);
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": template,
        },
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let web = ready_pods(&app_pods, "app=web", 1, Duration::from_secs(120))
        .await
        .remove(0);
    let web_name = web.metadata.name.clone().unwrap();
    assert!(is_injected(&web), "the pod is marked injected");
    let status = web.status.as_ref().unwrap();
    // No container ever failed (a check that found no file exits 1 and would show here as
    // the last state; a restart of the shared kubelet re-runs init containers without one).
    let failed = |c: &k8s_openapi::api::core::v1::ContainerStatus| {
        c.last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .is_some_and(|t| t.exit_code != 0)
    };
    for c in status
        .container_statuses
        .iter()
        .flatten()
        .chain(status.init_container_statuses.iter().flatten())
    {
        assert!(!failed(c), "{} failed before: {c:?}", c.name);
        if c.restart_count != 0 {
            eprintln!(
                "{} restarted {} times without failing",
                c.name, c.restart_count
            );
        }
    }
    let init = status
        .init_container_statuses
        .iter()
        .flatten()
        .find(|c| c.name == "check-init")
        .expect("the user init container");
    let exit = init
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .map(|t| t.exit_code);
    assert_eq!(
        exit,
        Some(0),
        "the init container found the files: {init:?}"
    );

    // Renewal: the certificate the app sees changes (ttl 2m: at about 45 s).
    let read_cert = || async {
        kubectl([
            "exec",
            "-n",
            &app_ns,
            &web_name,
            "-c",
            "app",
            "--",
            "cat",
            "/var/run/tlsmint/tls.crt",
        ])
        .await
        .unwrap()
    };
    let first_cert = read_cert().await;
    assert!(first_cert.contains("BEGIN CERTIFICATE"), "{first_cert}");
    let since = Instant::now();
    loop {
        let now = read_cert().await;
        if now != first_cert && now.contains("BEGIN CERTIFICATE") {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(120),
            "the certificate was not renewed in 2 minutes"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let renewed_after = since.elapsed();
    eprintln!("renewed {renewed_after:?} after the pod was Ready");
    let logs = kubectl(["logs", "-n", &app_ns, &web_name, "-c", "tlsmint-agent"])
        .await
        .unwrap();
    eprintln!("agent log:\n{logs}");

    // The rotation's SIGHUP reached the app in the other container.
    let since = Instant::now();
    loop {
        let app_log = kubectl(["logs", "-n", &app_ns, &web_name, "-c", "app"])
            .await
            .unwrap();
        if app_log.contains(RELOADED) {
            break;
        }
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "the app got no SIGHUP after the rotation; app log:\n{app_log}\nagent log:\n{logs}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let web_now = app_pods.get(&web_name).await.unwrap();
    assert_eq!(
        web_now
            .spec
            .as_ref()
            .and_then(|s| s.share_process_namespace),
        Some(true),
        "the injector turned process sharing on for the reload signal"
    );

    // The agent's resident memory (figure only: the image may hold debug builds;
    // docs/benchmarks.md says which), read from /proc of its process on this node.
    let agent_id = status
        .init_container_statuses
        .iter()
        .flatten()
        .find(|c| c.name == "tlsmint-agent")
        .and_then(|c| c.container_id.clone())
        .unwrap_or_default();
    let agent_id = agent_id.rsplit('/').next().unwrap_or_default().to_owned();
    eprintln!("agent memory: {}", process_memory(&agent_id));

    // An invalid annotation is refused with a message that names it.
    let mut bad = ann_refs.clone();
    bad.retain(|(k, _)| *k != "tlsmint.io/ttl");
    bad.push(("tlsmint.io/ttl", "banana"));
    let refused = app_pods
        .create(
            &PostParams::default(),
            &pod_of(annotated_pod(&bad, "sleep 1"), "bad-ttl"),
        )
        .await
        .expect_err("an invalid ttl is refused");
    assert!(refused.to_string().contains("tlsmint.io/ttl"), "{refused}");

    // Per pod, Kubernetes' own delivery instead of the agent: mode podcertificate gives a
    // podCertificate + clusterTrustBundle volume, kubelet makes the key, the operator signs.
    let mut native = ann_refs.clone();
    native.retain(|(k, _)| *k != "tlsmint.io/ttl");
    native.push(("tlsmint.io/mode", "podcertificate"));
    let mut template = annotated_pod(&native, "sleep 3600");
    template["metadata"]["labels"]["app"] = "podcert".into();
    app_pods
        .create(&PostParams::default(), &pod_of(template, "podcert"))
        .await
        .unwrap();
    let podcert = ready_pods(&app_pods, "app=podcert", 1, Duration::from_secs(120))
        .await
        .remove(0);
    let podcert_spec = podcert.spec.as_ref().unwrap();
    assert!(
        podcert_spec
            .init_containers
            .iter()
            .flatten()
            .all(|c| c.name != "tlsmint-agent"),
        "no agent in mode podcertificate"
    );
    let read = |file: &'static str| {
        let ns = app_ns.clone();
        async move {
            kubectl([
                "exec",
                "-n",
                &ns,
                "podcert",
                "-c",
                "app",
                "--",
                "cat",
                &format!("/var/run/tlsmint/{file}"),
            ])
            .await
            .unwrap()
        }
    };
    let chain = tlsmint_ca::pem::decode_certificates(&read("tls.crt").await).unwrap();
    let trust = tlsmint_ca::pem::decode_certificates(&read("ca.crt").await).unwrap();
    tlsmint_ca::x509::verify_issued_by(&chain[0], trust.last().unwrap()).unwrap();
    let leaf = tlsmint_ca::x509::parse_certificate(&chain[0], "leaf").unwrap();
    let key = tlsmint_ca::PrivateKey::from_pem(&read("tls.key").await).unwrap();
    assert_eq!(
        leaf.spki_der,
        key.public_key_der(),
        "kubelet's key is the leaf's"
    );
    assert!(
        read("credential-bundle.pem")
            .await
            .starts_with("-----BEGIN PRIVATE KEY-----")
    );
    eprintln!(
        "injector e2e: mode podcertificate pod Ready, leaf serial {}",
        leaf.serial
    );

    // Denial explained at admission (the operator's CheckPolicy, nothing issued): a name
    // outside the role's policy, and a ServiceAccount that is not in a role's subjects.
    let mut outside = ann_refs.clone();
    outside.retain(|(k, _)| *k != "tlsmint.io/dns-names");
    outside.push(("tlsmint.io/dns-names", "evil.other.org"));
    let refused = app_pods
        .create(
            &PostParams::default(),
            &pod_of(annotated_pod(&outside, "sleep 1"), "outside-policy"),
        )
        .await
        .expect_err("a name outside the role's policy is refused at admission");
    assert!(refused.to_string().contains("evil.other.org"), "{refused}");
    let roles: Api<IssuerRole> = Api::all(env.client.clone());
    let strict = format!("{release}-strict");
    let mut strict_role = env.role(&strict, &ca.root, "example.com", &[]);
    strict_role.spec.subjects = vec![RoleSubject::new(&app_ns, "only-this-one")];
    roles
        .create(&PostParams::default(), &strict_role)
        .await
        .unwrap();
    let _strict_guard = tlsmint_e2e::DeleteOnDrop::new::<IssuerRole>(None, &strict);
    wait_for(
        &roles,
        &strict,
        Duration::from_secs(60),
        "strict role Ready",
        |r| is_ready(r.status.as_ref().map(|s| &s.conditions)),
    )
    .await
    .unwrap();
    let mut stranger = ann_refs.clone();
    stranger.retain(|(k, _)| *k != "tlsmint.io/role");
    stranger.push(("tlsmint.io/role", strict.as_str()));
    let refused = app_pods
        .create(
            &PostParams::default(),
            &pod_of(annotated_pod(&stranger, "sleep 1"), "not-a-subject"),
        )
        .await
        .expect_err("a ServiceAccount outside the role's subjects is refused at admission");
    let text = refused.to_string();
    assert!(
        text.contains(&format!("{app_ns}/default")) && text.contains("subjects"),
        "{text}"
    );
    eprintln!("refused at admission: {text}");

    // A Job with the annotation completes although the agent keeps running as a sidecar.
    let jobs: Api<Job> = Api::namespaced(env.client.clone(), &app_ns);
    let mut job_pod = annotated_pod(&ann_refs, "echo done");
    job_pod["spec"]["restartPolicy"] = "Never".into();
    job_pod["metadata"]["labels"] = serde_json::json!({"app": "batch"});
    let job: Job = serde_json::from_value(serde_json::json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "batch"},
        "spec": {"backoffLimit": 0, "template": job_pod},
    }))
    .unwrap();
    jobs.create(&PostParams::default(), &job).await.unwrap();
    wait_for(
        &jobs,
        "batch",
        Duration::from_secs(120),
        "the Job complete",
        |j| {
            j.status
                .as_ref()
                .and_then(|s| s.succeeded)
                .is_some_and(|n| n >= 1)
        },
    )
    .await
    .unwrap();

    // The webhook's certificate rotated (lifetime 3m) and the injector loaded the new one,
    // while every admission went through.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let current = secret_text(&secrets.get(&serving_secret).await.unwrap(), "tls.crt");
        let injector_log = kubectl(["logs", "-n", &ns, &format!("deploy/{fullname}-injector")])
            .await
            .unwrap_or_default();
        if current != first_serving && injector_log.contains("serving certificate reloaded") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the injector's certificate did not rotate and reload; log:\n{injector_log}"
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    // A few more admissions with the new certificate in place.
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::Relaxed);
    prober.await.unwrap();
    let (ok, failed) = (
        admitted.load(Ordering::Relaxed),
        failures.load(Ordering::Relaxed),
    );
    eprintln!("admissions during rotation: {ok} injected, {failed} failed");
    let mut times = latencies.lock().unwrap().clone();
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    eprintln!(
        "dry-run create of an annotated pod through the API server and the webhook: \
         p50 {:?}, p99 {:?}, max {:?} ({} requests)",
        at(0.5),
        at(0.99),
        at(1.0),
        times.len()
    );
    let metrics = reqwest_free_get(ports.injector_admin, "/metrics").await;
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("tlsmint_injector_admission"))
    {
        eprintln!("injector metric: {line}");
    }
    assert_eq!(failed, 0, "no admission failed during the rotation");
    assert!(ok >= 30, "admissions ran all along: {ok}");

    // The injector scaled to zero: an unannotated pod is admitted untouched, an annotated one
    // is refused (it would otherwise start without its certificate).
    let injectors: Api<Deployment> = Api::namespaced(env.client.clone(), &ns);
    injectors
        .patch(
            &format!("{fullname}-injector"),
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": 0}})),
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pods
        .list(&ListParams::default().labels(&component("injector")))
        .await
        .unwrap()
        .items
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "the injector pods did not go away"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let plain = pod_of(
        serde_json::json!({
            "metadata": {"labels": {"app": "plain"}},
            "spec": {
                "terminationGracePeriodSeconds": 0,
                "containers": [{
                    "name": "app",
                    "image": test_image().unwrap(),
                    "imagePullPolicy": "Never",
                    "command": ["sleep", "3600"],
                }],
            },
        }),
        "plain",
    );
    let plain = app_pods
        .create(&PostParams::default(), &plain)
        .await
        .expect("an unannotated pod is admitted while the injector is down");
    let spec = plain.spec.as_ref().unwrap();
    assert!(spec.init_containers.is_none(), "untouched: {spec:?}");
    assert!(
        spec.volumes
            .iter()
            .flatten()
            .all(|v| !v.name.starts_with("tlsmint"))
    );
    assert!(!is_injected(&plain));
    let refused = app_pods
        .create(
            &PostParams::default(),
            &pod_of(annotated_pod(&ann_refs, "sleep 1"), "while-down"),
        )
        .await
        .expect_err("an annotated pod is refused while the injector is down");
    eprintln!("refused while down: {refused}");
}

fn is_injected(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("tlsmint.io/status"))
        .is_some_and(|s| s == "injected")
        && pod
            .spec
            .as_ref()
            .and_then(|s| s.init_containers.as_ref())
            .and_then(|c| c.first())
            .is_some_and(|c| {
                c.name == "tlsmint-agent" && c.restart_policy.as_deref() == Some("Always")
            })
}

fn tlsmint_e2e_stop() -> Arc<std::sync::atomic::AtomicBool> {
    Arc::new(std::sync::atomic::AtomicBool::new(false))
}

/// `GET http://127.0.0.1:<port><path>` (the injector's admin server), body as text.
async fn reqwest_free_get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return String::new();
    };
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut body = String::new();
    let _ = stream.read_to_string(&mut body).await;
    body
}

/// `VmRSS` and `VmHWM` of the processes of container `id` (cgroup v1 memory hierarchy of the
/// local cluster, `/sys/fs/cgroup/memory/tlsmint-e2e/...`), or why they are unknown.
fn process_memory(id: &str) -> String {
    fn find(dir: &std::path::Path, id: &str, depth: u32) -> Option<std::path::PathBuf> {
        for entry in std::fs::read_dir(dir).ok()?.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            if entry.file_name().to_string_lossy() == id {
                return Some(path);
            }
            if depth > 0
                && let Some(found) = find(&path, id, depth - 1)
            {
                return Some(found);
            }
        }
        None
    }
    if id.is_empty() {
        return "unknown (no container id)".into();
    }
    let Some(cgroup) = find(
        std::path::Path::new("/sys/fs/cgroup/memory/tlsmint-e2e"),
        id,
        4,
    ) else {
        return "unknown (cgroup not found)".into();
    };
    let procs = std::fs::read_to_string(cgroup.join("cgroup.procs")).unwrap_or_default();
    procs
        .lines()
        .map(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let field = |name: &str| {
                status
                    .lines()
                    .find(|l| l.starts_with(name))
                    .map(|l| l.trim_start_matches(name).trim().to_owned())
                    .unwrap_or_default()
            };
            format!(
                "pid {pid}: VmRSS {}, VmHWM {}",
                field("VmRSS:"),
                field("VmHWM:")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}
