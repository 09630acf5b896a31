//! The CSI node plugin on the real kubelet, after `helm install` of the chart (one operator
//! replica and the `tlsmint-csi` DaemonSet, both from the tlsmint image):
//!
//! - the driver registers itself with kubelet (CSINode lists `csi.tlsmint.io`);
//! - a pod with an inline `csi.tlsmint.io` volume gets a certificate for its templated name
//!   that chains to the mount's root, with the key made on the node (the operator's audit
//!   line says `sign`); with `ttl: 2m` the serial changes after about a minute, and a reader
//!   of the single-file bundle never sees a key that does not match its certificate;
//! - the driver pod is deleted and kubelet restarted three times meanwhile: renewal goes
//!   on and the node's mount count does not change;
//! - a forbidden name and a bad attribute keep the pod ContainerCreating with an Event
//!   naming the reason;
//! - a burst of pods all start with no FailedMount, with zero Secret, ConfigMap or
//!   CertificateRequest writes on the API server;
//! - deleting a pod unmounts its tmpfs and removes its metadata.
//!
//! Needs TLSMINT_IMAGE (printed by `scripts/build-image --containerd ...`) and the cluster's
//! `cluster.env` (KUBELET_DIR, E2E_STATE). One release with the CSI driver per cluster: this
//! file has one test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::storage::v1::CSINode;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use tlsmint_api::v1alpha1::PkiMount;
use tlsmint_ca::{PrivateKey, pem, x509};
use tlsmint_e2e::chart::{free_port, install_local, pod_ready};
use tlsmint_e2e::operator::{OperatorEnv, SELECTOR_LABEL, events_about, workspace_root};
use tlsmint_e2e::{
    TestNamespace, cluster_env, env, kubectl, test_image, wait_for, wait_for_running_pods,
};

/// How many pods the burst starts at once (TLSMINT_E2E_CSI_PODS, default 50).
fn burst_size() -> usize {
    std::env::var("TLSMINT_E2E_CSI_PODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50)
}

/// The driver's tmpfs mounts on this node, as the kernel lists them.
fn tlsmint_mounts() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(" - tmpfs tlsmint-csi "))
        .map(|l| l.split(' ').nth(4).unwrap_or_default().to_owned())
        .collect()
}

/// The API server's create/update/patch/apply requests on the kinds an issuance could write
/// (Secrets, ConfigMaps, CertificateRequests), by resource.
async fn api_writes() -> BTreeMap<String, u64> {
    let metrics = kubectl(["get", "--raw", "/metrics"]).await.unwrap();
    let mut total = BTreeMap::<String, f64>::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let label = |k: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{k}=\"")))
                .map(|v| v.trim_end_matches('"').to_owned())
                .unwrap_or_default()
        };
        let write = matches!(label("verb").as_str(), "POST" | "PUT" | "PATCH" | "APPLY");
        let kind = matches!(
            label("resource").as_str(),
            "secrets" | "configmaps" | "certificaterequests"
        );
        if write && kind && label("subresource").is_empty() {
            *total.entry(label("resource")).or_default() +=
                value.trim().parse::<f64>().unwrap_or(0.0);
        }
    }
    total.into_iter().map(|(k, v)| (k, v as u64)).collect()
}

/// What grew from `before` to `after`.
fn grown(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0).min(*v)))
        .filter(|(_, d)| *d > 0)
        .collect()
}

/// The PEM blocks of `text`, as (label, whole block).
fn pem_blocks(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let Some(label_end) = after.find("-----") else {
            break;
        };
        let label = after[..label_end].to_owned();
        let end_marker = format!("-----END {label}-----");
        let Some(end) = rest[start..].find(&end_marker) else {
            break;
        };
        let stop = start + end + end_marker.len();
        out.push((label, rest[start..stop].to_owned()));
        rest = &rest[stop..];
    }
    out
}

/// Checks a single-file bundle (key, leaf, chain): the key is the leaf's. Returns the
/// leaf's serial, or what is wrong.
fn check_bundle(text: &str) -> Result<String, String> {
    let blocks = pem_blocks(text);
    let (label, key) = blocks.first().ok_or("empty bundle")?;
    if !label.ends_with("PRIVATE KEY") {
        return Err(format!("the bundle starts with {label}, not the key"));
    }
    let key = PrivateKey::from_pem(key).map_err(|e| e.to_string())?;
    let (_, leaf) = blocks.get(1).ok_or("no certificate after the key")?;
    let der = pem::decode_certificate(leaf).map_err(|e| e.to_string())?;
    let info = x509::parse_certificate(&der, "leaf").map_err(|e| e.to_string())?;
    if info.spki_der != key.public_key_der() {
        return Err(format!("key does not match certificate {}", info.serial));
    }
    Ok(info.serial.to_string())
}

fn leaf_serial(chain_pem: &str) -> String {
    let der = pem::decode_certificates(chain_pem).unwrap();
    x509::parse_certificate(&der[0], "leaf")
        .unwrap()
        .serial
        .to_string()
}

/// A pod with one inline tlsmint volume `tls` at /tls, running `sleep`.
fn csi_pod(name: &str, app: &str, attributes: &[(&str, &str)]) -> Pod {
    let attributes: BTreeMap<String, String> = attributes
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {
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
                "csi": {
                    "driver": "csi.tlsmint.io",
                    "readOnly": true,
                    "volumeAttributes": attributes,
                },
            }],
        },
    }))
    .unwrap()
}

/// Where kubelet has the driver mount a pod's volume `tls`.
fn target_of(pod: &Pod) -> PathBuf {
    let uid = pod.metadata.uid.as_deref().unwrap();
    Path::new(&cluster_env("KUBELET_DIR").unwrap())
        .join("pods")
        .join(uid)
        .join("volumes/kubernetes.io~csi/tls/mount")
}

async fn wait_pod_gone(pods: &Api<Pod>, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while pods.get_opt(name).await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "pod {name} still exists");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Waits for a FailedMount Event on pod `name` whose message contains `needle`.
async fn failed_mount_naming(client: &kube::Client, ns: &str, name: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let events = events_about(client, ns, name, "FailedMount").await.unwrap();
        if let Some(note) = events
            .iter()
            .filter_map(|e| e.note.clone())
            .find(|n| n.contains(needle))
        {
            return note;
        }
        assert!(
            Instant::now() < deadline,
            "a FailedMount Event on {name} naming {needle:?}; saw {:?}",
            events.iter().map(|e| &e.note).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn driver_pod(pods: &Api<Pod>, release: &str) -> Pod {
    let selector = format!("app.kubernetes.io/instance={release},app.kubernetes.io/component=csi");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let list = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .unwrap()
            .items;
        if let [pod] = list.as_slice()
            && pod_ready(pod)
            && pod.metadata.deletion_timestamp.is_none()
        {
            return pod.clone();
        }
        assert!(
            Instant::now() < deadline,
            "one Ready CSI driver pod: {:?}",
            list.iter().map(|p| &p.status).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn csi_volumes_on_the_real_kubelet() {
    let image =
        env("TLSMINT_IMAGE").expect("TLSMINT_IMAGE (run scripts/build-image --containerd ...)");
    let env = OperatorEnv::new("csi").await.unwrap();
    let release = format!("{}-c", env.id);
    let ns = env.namespace.name().to_owned();
    let client = env.client.clone();
    let kubelet_dir = cluster_env("KUBELET_DIR").unwrap();
    let state_dir = Path::new(&cluster_env("E2E_STATE").unwrap()).join("tlsmint-csi");
    let ports = [free_port().unwrap(), free_port().unwrap()];
    let (admin_port, http_port, grpc_port, csi_admin) = (
        ports[0],
        free_port().unwrap(),
        free_port().unwrap(),
        ports[1],
    );
    let mounts_before = tlsmint_mounts().len();
    let _release = install_local(
        &release,
        &ns,
        &image,
        &[
            "operator.replicas=1".into(),
            format!("operator.adminPort={admin_port}"),
            format!("api.httpPort={http_port}"),
            format!("api.grpcPort={grpc_port}"),
            format!("operator.labelSelector={SELECTOR_LABEL}={}", env.id),
            format!("csi.kubeletDir={kubelet_dir}"),
            format!("csi.stateDir={}", state_dir.display()),
            format!("csi.adminPort={csi_admin}"),
            "csi.logLevel=info\\,tlsmint_csi=debug".into(),
            // The injector has its own test (injector.rs).
            "injector.enabled=false".into(),
        ],
    )
    .await
    .unwrap();
    let system_pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let first_driver = driver_pod(&system_pods, &release).await;
    let node = first_driver
        .spec
        .as_ref()
        .unwrap()
        .node_name
        .clone()
        .unwrap();
    // kubelet registered the driver through its plugin registration socket.
    let csinodes: Api<CSINode> = Api::all(client.clone());
    wait_for(
        &csinodes,
        &node,
        Duration::from_secs(60),
        "csi.tlsmint.io in CSINode",
        |n| {
            n.spec
                .drivers
                .iter()
                .any(|d| d.name == "csi.tlsmint.io" && d.node_id == node)
        },
    )
    .await
    .unwrap();
    eprintln!("csi e2e: driver registered on node {node}");

    let apps = TestNamespace::create(&client, "csi-apps").await.unwrap();
    let ca = env
        .root_with_role("E2E CSI Root", &[apps.name()])
        .await
        .unwrap();
    let mounts_api: Api<PkiMount> = Api::all(client.clone());
    let root_pem = mounts_api
        .get(&ca.root)
        .await
        .unwrap()
        .status
        .unwrap()
        .certificate
        .unwrap();
    let root_der = pem::decode_certificate(&root_pem).unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), apps.name());

    // A pod with a two-minute certificate for its templated name.
    let role = ca.role.clone();
    let attrs = [
        ("csi.tlsmint.io/role", role.as_str()),
        (
            "csi.tlsmint.io/dns-names",
            "${POD_NAME}.${POD_NAMESPACE}.example.com",
        ),
        ("csi.tlsmint.io/ttl", "2m"),
        ("csi.tlsmint.io/bundle-file", "bundle.pem"),
    ];
    pods.create(&PostParams::default(), &csi_pod("reader", "reader", &attrs))
        .await
        .unwrap();
    let reader = wait_for_running_pods(&pods, "app=reader", 1, Duration::from_secs(90))
        .await
        .unwrap()
        .remove(0);
    let target = target_of(&reader);
    let read = |name: &str| std::fs::read_to_string(target.join(name)).unwrap();
    let chain_pem = read("tls.crt");
    let chain = pem::decode_certificates(&chain_pem).unwrap();
    x509::verify_issued_by(chain.last().unwrap(), &root_der).unwrap();
    let first_serial = leaf_serial(&chain_pem);
    assert_eq!(check_bundle(&read("bundle.pem")), Ok(first_serial.clone()));
    assert!(
        read("ca.crt").contains(root_pem.trim()),
        "ca.crt holds the root"
    );
    let leaf_file = env.dir.join("leaf.pem");
    std::fs::write(&leaf_file, &chain_pem).unwrap();
    let san = tlsmint_e2e::operator::openssl(
        &env.dir,
        &[
            "x509",
            "-in",
            "leaf.pem",
            "-noout",
            "-ext",
            "subjectAltName",
        ],
    )
    .await
    .unwrap();
    assert!(
        san.contains(&format!("DNS:reader.{}.example.com", apps.name())),
        "the templates resolved: {san}"
    );
    // The key is 0400 (no fsGroup), the certificates world-readable, all in the tmpfs.
    use std::os::unix::fs::PermissionsExt;
    let mode = |name: &str| {
        std::fs::metadata(target.join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("tls.key"), 0o400);
    assert_eq!(mode("tls.crt"), 0o444);
    assert!(
        tlsmint_mounts().contains(&target.display().to_string()),
        "the target is the driver's tmpfs"
    );
    // The pod sees the same files.
    let in_pod = kubectl([
        "exec",
        "-n",
        apps.name(),
        "reader",
        "--",
        "cat",
        "/tls/tls.crt",
    ])
    .await
    .unwrap();
    assert_eq!(in_pod, chain_pem);
    // The key never left the node: the operator signed a CSR.
    let logs = kubectl([
        "logs",
        "-n",
        &ns,
        "-l",
        "app.kubernetes.io/component=operator",
        "--tail=-1",
    ])
    .await
    .unwrap();
    let audit = logs
        .lines()
        .find(|l| l.contains("tlsmint::audit") && l.contains(&first_serial))
        .unwrap_or_else(|| panic!("an audit line for {first_serial} in {logs}"));
    assert!(audit.contains("sign"), "a Sign, not an Issue: {audit}");
    assert!(!audit.contains("\"issue\""), "{audit}");
    eprintln!("csi e2e: first certificate {first_serial} in place");

    // A reader of the single-file bundle, for the whole renewal.
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let reader_thread = {
        let (stop, reads, bundle) = (stop.clone(), reads.clone(), target.join("bundle.pem"));
        std::thread::spawn(move || {
            let mut mismatches = Vec::new();
            let mut serials = Vec::<String>::new();
            while !stop.load(Ordering::Relaxed) {
                match std::fs::read_to_string(&bundle) {
                    Ok(text) => match check_bundle(&text) {
                        Ok(serial) => {
                            if serials.last() != Some(&serial) {
                                serials.push(serial);
                            }
                        }
                        Err(e) => mismatches.push(e),
                    },
                    Err(e) => mismatches.push(format!("reading: {e}")),
                }
                reads.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
            (mismatches, serials)
        })
    };

    // The driver pod goes away mid-way; the DaemonSet brings a new one, which resumes. A
    // volume mounted twice shows as a second mount at the same target.
    let target_text = target.display().to_string();
    let mounts_at_target = || {
        tlsmint_mounts()
            .iter()
            .filter(|m| **m == target_text)
            .count()
    };
    assert_eq!(mounts_at_target(), 1);
    system_pods
        .delete(
            first_driver.metadata.name.as_deref().unwrap(),
            &DeleteParams::default(),
        )
        .await
        .unwrap();
    let second_driver = loop {
        let pod = driver_pod(&system_pods, &release).await;
        if pod.metadata.uid != first_driver.metadata.uid {
            break pod;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(
        mounts_at_target(),
        1,
        "a driver restart mounts nothing twice"
    );
    eprintln!(
        "csi e2e: driver pod replaced by {}",
        second_driver.metadata.name.as_deref().unwrap()
    );
    // kubelet restarted three times: republishes of a live volume mount nothing again.
    let restart = workspace_root().join("e2e/cluster/restart-kubelet");
    let status = tokio::process::Command::new(&restart)
        .args(["--times", "3"])
        .status()
        .await
        .unwrap();
    assert!(status.success(), "{} --times 3", restart.display());
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        mounts_at_target(),
        1,
        "kubelet restarts mount nothing twice"
    );

    // Renewal at about half of 2m30s (with back-dating): a new serial within two minutes.
    let deadline = Instant::now() + Duration::from_secs(150);
    let renewed = loop {
        let serial = leaf_serial(&read("tls.crt"));
        if serial != first_serial {
            break serial;
        }
        assert!(
            Instant::now() < deadline,
            "the certificate was not renewed; driver logs: {}",
            kubectl(["logs", "-n", &ns, "-l", "app.kubernetes.io/component=csi"])
                .await
                .unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let (mismatches, serials) = reader_thread.join().unwrap();
    let reads = reads.load(Ordering::Relaxed);
    eprintln!(
        "csi e2e: renewed to {renewed}; the bundle reader made {reads} reads, saw {serials:?}"
    );
    assert!(
        mismatches.is_empty(),
        "mismatched reads: {:?}",
        &mismatches[..mismatches.len().min(5)]
    );
    assert!(reads > 1000, "{reads} reads");
    assert!(serials.contains(&renewed), "{serials:?}");
    assert_eq!(check_bundle(&read("bundle.pem")), Ok(renewed.clone()));

    // A forbidden name: the pod stays ContainerCreating, the Event names the name.
    let forbidden = [
        ("csi.tlsmint.io/role", role.as_str()),
        ("csi.tlsmint.io/dns-names", "www.forbidden.test"),
    ];
    pods.create(
        &PostParams::default(),
        &csi_pod("forbidden", "forbidden", &forbidden),
    )
    .await
    .unwrap();
    let bad = [
        ("csi.tlsmint.io/role", role.as_str()),
        ("csi.tlsmint.io/colour", "blue"),
    ];
    pods.create(
        &PostParams::default(),
        &csi_pod("bad-attr", "bad-attr", &bad),
    )
    .await
    .unwrap();
    let note = failed_mount_naming(&client, apps.name(), "forbidden", "www.forbidden.test").await;
    eprintln!("csi e2e: forbidden name refused: {note}");
    let note = failed_mount_naming(&client, apps.name(), "bad-attr", "csi.tlsmint.io/colour").await;
    eprintln!("csi e2e: bad attribute refused: {note}");
    for name in ["forbidden", "bad-attr"] {
        let pod = pods.get(name).await.unwrap();
        assert_eq!(
            pod.status.and_then(|s| s.phase).as_deref(),
            Some("Pending"),
            "{name} does not start"
        );
    }

    // A burst of pods: all Running, no FailedMount, no API write for any issuance. (Measured
    // around the burst alone: a new namespace gets its kube-root-ca.crt ConfigMap from the
    // controller manager, a write that is not ours.)
    let n = burst_size();
    let writes_before = api_writes().await;
    let started = Instant::now();
    for i in 0..n {
        let attrs = [
            ("csi.tlsmint.io/role", role.as_str()),
            ("csi.tlsmint.io/dns-names", "${POD_NAME}.example.com"),
        ];
        pods.create(
            &PostParams::default(),
            &csi_pod(&format!("burst-{i}"), "burst", &attrs),
        )
        .await
        .unwrap();
    }
    wait_for_running_pods(&pods, "app=burst", n, Duration::from_secs(300))
        .await
        .unwrap();
    let took = started.elapsed();
    for i in 0..n {
        let failed: Vec<_> =
            events_about(&client, apps.name(), &format!("burst-{i}"), "FailedMount")
                .await
                .unwrap()
                .into_iter()
                // Kubernetes' own race, not the driver's: the kubelet asked for the pod's
                // token before the API server's node authorizer had seen the pod bound to
                // this node. It hits the kube-api-access volume too, and the kubelet's
                // retry mounts both (the pod is Running). Every other FailedMount fails.
                .filter(|e| {
                    !e.note.as_deref().unwrap_or_default().contains(
                        "node requested token bound to a pod scheduled on a different node",
                    )
                })
                .collect();
        assert!(failed.is_empty(), "burst-{i}: {failed:?}");
    }
    let writes = grown(&writes_before, &api_writes().await);
    eprintln!(
        "csi e2e: {n} pods Running {took:?} after creation, no FailedMount; \
         Secret/ConfigMap/CertificateRequest writes during the burst: {writes:?}"
    );
    assert!(
        writes.is_empty(),
        "the driver writes no object per issuance: {writes:?}"
    );

    // Deleting a pod unmounts its volume and forgets it.
    let reader_uid = reader.metadata.uid.clone().unwrap();
    pods.delete("reader", &DeleteParams::default())
        .await
        .unwrap();
    wait_pod_gone(&pods, "reader").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mounted = tlsmint_mounts().contains(&target.display().to_string());
        let recorded = std::fs::read_dir(state_dir.join("volumes"))
            .unwrap()
            .flatten()
            .any(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains(&reader_uid)));
        if !mounted && !recorded && !target.exists() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after the pod's deletion: mounted {mounted}, metadata {recorded}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    pods.delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while tlsmint_mounts().len() > mounts_before {
        assert!(
            Instant::now() < deadline,
            "mounts left after every pod is gone: {:?}",
            tlsmint_mounts()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("csi e2e: every volume unmounted");
}
