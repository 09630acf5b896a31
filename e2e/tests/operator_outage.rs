//! An API-server outage as the operator sees it (SPEC §7): the operator reaches the real
//! API server through a proxy, the proxy drops every connection and refuses new ones for
//! a while, then comes back. The operator must survive it on its own (no restart), stop
//! leading while it cannot renew its Lease, and afterwards catch up on what was asked
//! meanwhile, with the same CA (no new key, no second key Secret) and no certificate
//! issued again.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use tlsmint_api::v1alpha1::{CertificateRequest, PkiMount};
use tlsmint_e2e::operator::{OperatorEnv, OperatorProcess, api_server_addr, is_ready, secret_text};
use tlsmint_e2e::proxy::ApiProxy;
use tlsmint_e2e::wait_for;

const LONG: Duration = Duration::from_secs(120);
/// Longer than the tests' lease (6 s) and renew deadline (4 s).
const OUTAGE: Duration = Duration::from_secs(15);

async fn wait_leading(operator: &OperatorProcess, leading: bool, within: Duration) {
    let deadline = Instant::now() + within;
    while operator.is_leader().await != leading {
        assert!(
            Instant::now() < deadline,
            "leader={leading} not reached in {within:?}; log:\n{}",
            operator.log_tail(40)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_operator_rides_out_an_api_server_outage_and_catches_up() {
    let env = OperatorEnv::new("op-outage").await.unwrap();
    let proxy = ApiProxy::start(api_server_addr().unwrap()).await.unwrap();
    let kubeconfig = env.kubeconfig_via(proxy.addr()).unwrap();
    let operator = OperatorProcess::start_with(&env, "replica-a", &env.id, &kubeconfig)
        .await
        .unwrap();
    wait_leading(&operator, true, Duration::from_secs(30)).await;

    let (apps, ca) = env
        .apps_with_ca("op-outage-apps", "E2E Outage Root")
        .await
        .unwrap();
    let (root, role) = (ca.root.clone(), ca.role.clone());
    let mounts: Api<PkiMount> = Api::all(env.client.clone());
    let requests: Api<CertificateRequest> = Api::namespaced(env.client.clone(), apps.name());
    env.create_request(apps.name(), "before", &role, &["before.example.com"])
        .await
        .unwrap();
    let before = wait_for(&requests, "before", LONG, "Ready", |cr| {
        is_ready(cr.status.as_ref().map(|s| &s.conditions))
    })
    .await
    .unwrap()
    .status
    .unwrap();
    let mount = mounts.get(&root).await.unwrap().status.unwrap();
    let key_secret_name = mount.key_secret_name.clone().unwrap();
    let key_secret = env.secrets().get(&key_secret_name).await.unwrap();

    // The outage: the operator loses the API server; the cluster itself goes on.
    proxy.cut();
    let cut_at = Instant::now();
    wait_leading(&operator, false, OUTAGE).await;
    eprintln!("stopped leading {:?} into the outage", cut_at.elapsed());
    // Asked for while the operator cannot see it.
    env.create_request(apps.name(), "during", &role, &["during.example.com"])
        .await
        .unwrap();
    tokio::time::sleep(OUTAGE.saturating_sub(cut_at.elapsed())).await;
    assert!(
        operator.pid().is_some() && operator.get("/healthz").await.unwrap().0 == 200,
        "the operator is alive through the outage; log:\n{}",
        operator.log_tail(40)
    );
    assert!(
        requests.get("during").await.unwrap().status.is_none(),
        "reconciled without the API server?"
    );

    // The API server is back: the operator leads again and catches up by itself.
    proxy.restore();
    let restored_at = Instant::now();
    let during = wait_for(&requests, "during", LONG, "Ready", |cr| {
        is_ready(cr.status.as_ref().map(|s| &s.conditions))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", operator.log_tail(60)))
    .status
    .unwrap();
    eprintln!(
        "the request made during the outage was Ready {:?} after it ended",
        restored_at.elapsed()
    );
    assert!(operator.is_leader().await);

    // Same CA: same certificate in the status, the same key Secret, written once.
    let after = mounts.get(&root).await.unwrap().status.unwrap();
    assert_eq!(after.serial_number, mount.serial_number);
    assert_eq!(after.certificate, mount.certificate);
    let key_after = env.secrets().get(&key_secret_name).await.unwrap();
    assert_eq!(key_after.metadata.uid, key_secret.metadata.uid);
    assert_eq!(
        key_after.metadata.resource_version,
        key_secret.metadata.resource_version
    );
    let ca_secrets = env.ca_key_secrets().await.unwrap();
    assert_eq!(ca_secrets.len(), 1, "one key Secret");

    // The request from before was not issued again; both Secrets match their status.
    let before_now = requests.get("before").await.unwrap().status.unwrap();
    assert_eq!(before_now.serial_number, before.serial_number);
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), apps.name());
    for (secret, status) in [("before-tls", &before_now), ("during-tls", &during)] {
        let held = secrets.get(secret).await.unwrap();
        assert!(
            secret_text(&held, "tls.crt")
                .starts_with(status.certificate.clone().unwrap().trim_end()),
            "{secret}: status matches the Secret"
        );
    }
    assert_ne!(during.serial_number, before.serial_number);
}
