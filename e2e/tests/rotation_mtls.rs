//! CA rotation under live mTLS traffic on the real kubelet, after `helm install` (issue 12):
//! a server pod and a client pod get their certificates from inline `csi.tlsmint.io`
//! volumes (30 s leaves under an intermediate under a root). While an mTLS loop shakes
//! hands between them every 250 ms, the intermediate is re-keyed, then the root. Result:
//! zero failed handshakes, every leaf ends under the new root through the new
//! intermediate, the old root left every ca.crt, and both mounts walked the phases in order.
//!
//! The loop runs in this test process, not inside the pods: each handshake reads the
//! server's and the client's files afresh from their volumes (one `..data` generation
//! each, as an application that follows the atomic swap does) and runs rustls on both
//! sides over an in-memory pipe, with each side trusting exactly its own `ca.crt`. What is
//! tested is what reaches the pods; the test image (busybox) has no TLS tool.
//!
//! Needs TLSMINT_IMAGE and the cluster's `cluster.env`. Installs its own release with the
//! CSI driver: run it after csi.rs, not beside it.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams, PostParams};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tlsmint_api::v1alpha1::{IssuerRole, PkiMount, RotationPhase};
use tlsmint_e2e::chart::free_port;
use tlsmint_e2e::chart::install_local;
use tlsmint_e2e::operator::{OperatorEnv, SELECTOR_LABEL, name};
use tlsmint_e2e::{
    DeleteOnDrop, TestNamespace, cluster_env, env, test_image, wait_for, wait_for_running_pods,
};

const LONG: Duration = Duration::from_secs(300);

/// One pod's files, read from one generation.
struct Files {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    roots: Vec<CertificateDer<'static>>,
}

/// Reads tls.crt, tls.key and ca.crt from the generation `..data` points at. The writer
/// deletes the old generation right after the swap, so a read that straddles it finds a
/// file gone: like an application following the swap, read the new generation then.
fn read_files(dir: &Path) -> Result<Files, String> {
    let mut last = String::new();
    for _ in 0..5 {
        match read_generation(dir) {
            Ok(files) => return Ok(files),
            Err((true, why)) => last = why,
            Err((false, why)) => return Err(why),
        }
    }
    Err(format!("the generation kept changing while read: {last}"))
}

/// One attempt; the error says whether a file had vanished (a swap happened).
fn read_generation(dir: &Path) -> Result<Files, (bool, String)> {
    let generation = std::fs::read_link(dir.join("..data"))
        .map(|target| dir.join(target))
        .unwrap_or_else(|_| dir.to_owned());
    let read = |f: &str| {
        std::fs::read(generation.join(f)).map_err(|e| {
            (
                e.kind() == std::io::ErrorKind::NotFound,
                format!("{}: {e}", generation.join(f).display()),
            )
        })
    };
    let certs = |bytes: Vec<u8>| -> Result<Vec<CertificateDer<'static>>, (bool, String)> {
        CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| (false, e.to_string()))
    };
    Ok(Files {
        chain: certs(read("tls.crt")?)?,
        key: PrivateKeyDer::from_pem_slice(&read("tls.key")?)
            .map_err(|e| (false, e.to_string()))?,
        roots: certs(read("ca.crt")?)?,
    })
}

/// One mTLS handshake: the server (its files) requires a client certificate that chains
/// to its ca.crt; the client (its files) checks the server's name against its ca.crt.
async fn handshake(server: Files, client: Files) -> Result<(), String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let store = |roots: Vec<CertificateDer<'static>>| {
        let mut store = rustls::RootCertStore::empty();
        for root in roots {
            store.add(root).map_err(|e| e.to_string())?;
        }
        Ok::<_, String>(Arc::new(store))
    };
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        store(server.roots)?,
        provider.clone(),
    )
    .build()
    .map_err(|e| e.to_string())?;
    let server_config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(server.chain, server.key)
        .map_err(|e| format!("server files: {e}"))?;
    let client_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(store(client.roots)?)
        .with_client_auth_cert(client.chain, client.key)
        .map_err(|e| format!("client files: {e}"))?;
    let (a, b) = tokio::io::duplex(64 * 1024);
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
    let server_name = ServerName::try_from("server.example.com").map_err(|e| e.to_string())?;
    let (served, connected) = tokio::join!(acceptor.accept(a), connector.connect(server_name, b));
    served.map_err(|e| format!("server side: {e}"))?;
    connected.map_err(|e| format!("client side: {e}"))?;
    Ok(())
}

fn csi_pod(name: &str, dns: &str, role: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "hostNetwork": true,
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
                    "volumeAttributes": {
                        "csi.tlsmint.io/role": role,
                        "csi.tlsmint.io/dns-names": dns,
                        "csi.tlsmint.io/ttl": "30s",
                    },
                },
            }],
        },
    }))
    .unwrap()
}

fn target_of(pod: &Pod) -> PathBuf {
    Path::new(&cluster_env("KUBELET_DIR").unwrap())
        .join("pods")
        .join(pod.metadata.uid.as_deref().unwrap())
        .join("volumes/kubernetes.io~csi/tls/mount")
}

fn phase(m: &PkiMount) -> Option<RotationPhase> {
    m.status.as_ref()?.rotation.as_ref().map(|r| r.phase)
}

async fn rotate_and_wait(mounts: &Api<PkiMount>, mount: &str) -> PkiMount {
    let patch = serde_json::json!({"spec": {"rotation": {
        "requestedAt": Time(k8s_openapi::jiff::Timestamp::now()),
    }}});
    mounts
        .patch(mount, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait_for(mounts, mount, LONG, "the rotation under way", |m| {
        phase(m).is_some_and(|p| p.in_progress())
    })
    .await
    .unwrap();
    wait_for(mounts, mount, LONG, "the rotation Retired", |m| {
        phase(m) == Some(RotationPhase::Retired)
    })
    .await
    .unwrap()
}

fn walked(m: &PkiMount) -> Vec<RotationPhase> {
    let history = &m
        .status
        .as_ref()
        .unwrap()
        .rotation
        .as_ref()
        .unwrap()
        .history;
    history.iter().map(|h| h.phase).collect()
}

fn top_of_chain(files: &Files) -> Vec<u8> {
    files.chain.last().unwrap().to_vec()
}

#[tokio::test]
async fn rotating_the_intermediate_then_the_root_fails_no_handshake() {
    let image =
        env("TLSMINT_IMAGE").expect("TLSMINT_IMAGE (run scripts/build-image --containerd ...)");
    let env = OperatorEnv::new("rot-mtls").await.unwrap();
    let release = format!("{}-r", env.id);
    let ns = env.namespace.name().to_owned();
    let state_dir = Path::new(&cluster_env("E2E_STATE").unwrap()).join("tlsmint-csi-rotation");
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
            format!("csi.kubeletDir={}", cluster_env("KUBELET_DIR").unwrap()),
            format!("csi.stateDir={}", state_dir.display()),
            format!("csi.adminPort={}", free_port().unwrap()),
            "injector.enabled=false".into(),
        ],
    )
    .await
    .unwrap();

    let apps = TestNamespace::create(&env.client, "rot-mtls-apps")
        .await
        .unwrap();
    let mounts: Api<PkiMount> = Api::all(env.client.clone());
    let roles: Api<IssuerRole> = Api::all(env.client.clone());
    let pp = PostParams::default();
    let (root, int, role) = (name("root"), name("int"), name("mtls"));
    let _g = [
        DeleteOnDrop::new::<IssuerRole>(None, &role),
        DeleteOnDrop::new::<PkiMount>(None, &int),
        DeleteOnDrop::new::<PkiMount>(None, &root),
    ];
    // The new root must reach every volume before it signs: the CSI driver refreshes
    // trust every 60 s (and renews these leaves every 15 s).
    let mut root_mount = env.root_mount(&root, "E2E mTLS Root");
    root_mount.spec.rotation.propagation_delay = tlsmint_api::Duration::from_secs(75);
    mounts.create(&pp, &root_mount).await.unwrap();
    mounts
        .create(
            &pp,
            &env.intermediate_mount(&int, "E2E mTLS Intermediate", Some(&root)),
        )
        .await
        .unwrap();
    let mut mtls = env.role(&role, &int, "example.com", &[apps.name()]);
    mtls.spec.ttl = tlsmint_api::Duration::from_secs(30);
    mtls.spec.max_ttl = tlsmint_api::Duration::from_secs(30);
    roles.create(&pp, &mtls).await.unwrap();
    wait_for(&roles, &role, LONG, "the role Ready", |r| {
        tlsmint_e2e::operator::is_ready(r.status.as_ref().map(|s| &s.conditions))
    })
    .await
    .unwrap();
    let old_root = mounts.get(&root).await.unwrap();
    let old_int = mounts.get(&int).await.unwrap();

    let pods: Api<Pod> = Api::namespaced(env.client.clone(), apps.name());
    for (pod, dns) in [
        ("server", "server.example.com"),
        ("client", "client.example.com"),
    ] {
        pods.create(&pp, &csi_pod(pod, dns, &role)).await.unwrap();
    }
    let server = wait_for_running_pods(&pods, "app=server", 1, LONG)
        .await
        .unwrap()
        .remove(0);
    let client = wait_for_running_pods(&pods, "app=client", 1, LONG)
        .await
        .unwrap()
        .remove(0);
    let (server_dir, client_dir) = (target_of(&server), target_of(&client));
    handshake(
        read_files(&server_dir).unwrap(),
        read_files(&client_dir).unwrap(),
    )
    .await
    .expect("the first handshake");

    // The loop: a handshake every 250 ms until told to stop; every failure is kept.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let looper = {
        let (stop, ok, failures) = (stop.clone(), ok.clone(), failures.clone());
        let (server_dir, client_dir) = (server_dir.clone(), client_dir.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let outcome = match (read_files(&server_dir), read_files(&client_dir)) {
                    (Ok(s), Ok(c)) => handshake(s, c).await,
                    (Err(e), _) | (_, Err(e)) => Err(format!("reading files: {e}")),
                };
                match outcome {
                    Ok(()) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => failures.lock().unwrap().push(e),
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };

    let int_done = rotate_and_wait(&mounts, &int).await;
    eprintln!(
        "rotation e2e: intermediate rotated, {} handshakes so far",
        ok.load(Ordering::Relaxed)
    );
    let root_done = rotate_and_wait(&mounts, &root).await;
    // The intermediate follows its parent: re-signed, then retired in its turn.
    let int_final = wait_for(&mounts, &int, LONG, "the intermediate re-signed", |m| {
        let signer = m.status.as_ref().and_then(|s| s.ca_chain.get(1)).cloned();
        signer
            == root_done
                .status
                .as_ref()
                .and_then(|s| s.certificate.clone())
            && phase(m) == Some(RotationPhase::Retired)
    })
    .await
    .unwrap();
    // Every leaf ends under the new chain, with only the new root trusted.
    let new_root_pem = root_done
        .status
        .as_ref()
        .unwrap()
        .certificate
        .clone()
        .unwrap();
    let new_root = tlsmint_ca::pem::decode_certificate(&new_root_pem).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (s, c) = (
            read_files(&server_dir).unwrap(),
            read_files(&client_dir).unwrap(),
        );
        let settled = [&s, &c].iter().all(|f| {
            top_of_chain(f) == new_root && f.roots.len() == 1 && f.roots[0].as_ref() == new_root
        });
        if settled {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the volumes did not settle on the new root"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    // A few more handshakes on the settled files, then stop.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    looper.await.unwrap();

    let failures = failures.lock().unwrap().clone();
    let handshakes = ok.load(Ordering::Relaxed);
    eprintln!(
        "rotation e2e: {handshakes} handshakes, {} failed",
        failures.len()
    );
    assert!(failures.is_empty(), "failed handshakes: {failures:#?}");
    assert!(handshakes > 300, "the loop ran: {handshakes}");

    let in_order = [
        RotationPhase::Prepared,
        RotationPhase::Published,
        RotationPhase::Activated,
        RotationPhase::Retired,
    ];
    assert_eq!(walked(&root_done), in_order);
    // The intermediate: its own re-key, then its re-signing under the new root.
    assert_eq!(walked(&int_final), [in_order, in_order].concat());
    let serial = |m: &PkiMount| m.status.as_ref().unwrap().serial_number.clone();
    assert_ne!(serial(&root_done), serial(&old_root));
    assert_ne!(serial(&int_final), serial(&old_int));
    assert_ne!(
        int_done.status.as_ref().unwrap().certificate,
        old_int.status.as_ref().unwrap().certificate
    );
    // No CA key was lost: the active generations' Secrets are there, the retired are gone.
    let keys: BTreeMap<String, ()> = env
        .ca_key_secrets()
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.metadata.name.unwrap_or_default(), ()))
        .collect();
    for mount in [&root_done, &int_final] {
        let active = mount
            .status
            .as_ref()
            .unwrap()
            .key_secret_name
            .clone()
            .unwrap();
        assert!(keys.contains_key(&active), "{active} in {keys:?}");
    }
    assert!(!keys.contains_key(&format!("{root}-ca-key")), "{keys:?}");
    assert!(!keys.contains_key(&format!("{int}-ca-key")), "{keys:?}");
}
