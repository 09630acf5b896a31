//! Several operator replicas on the real API server: two replicas that both think they
//! lead still make exactly one CA per mount (create-only key Secrets); with a shared Lease
//! the leader changes hands when it dies and no request is lost; a restart in the middle of
//! a burst of requests loses none and keeps every Secret consistent with its status.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use tlsmint_api::v1alpha1::{CertificateRequest, PkiMount};
use tlsmint_e2e::operator::{OperatorEnv, OperatorProcess, is_ready, name, secret_text};
use tlsmint_e2e::{DeleteOnDrop, wait_for};

const LONG: Duration = Duration::from_secs(120);

async fn leader_of(replicas: &[&OperatorProcess]) -> Option<usize> {
    for (i, r) in replicas.iter().enumerate() {
        if r.is_leader().await {
            return Some(i);
        }
    }
    None
}

#[tokio::test]
async fn two_replicas_that_both_lead_still_make_one_ca_per_mount() {
    let env = OperatorEnv::new("op-split").await.unwrap();
    // Different Lease names: both replicas lead at once (the worst case for the CA).
    let a = env.start_operator("replica-a").await.unwrap();
    let b = OperatorProcess::start_with_lease(&env, "replica-b", &format!("{}-other", env.id))
        .await
        .unwrap();
    assert!(a.is_leader().await && b.is_leader().await);
    let mounts: Api<PkiMount> = Api::all(env.client.clone());
    let names: Vec<String> = (0..5).map(|_| name("root")).collect();
    let _guards: Vec<_> = names
        .iter()
        .map(|n| DeleteOnDrop::new::<PkiMount>(None, n))
        .collect();
    for n in &names {
        mounts
            .create(&PostParams::default(), &env.root_mount(n, "E2E Split Root"))
            .await
            .unwrap();
    }
    for n in &names {
        wait_for(&mounts, n, LONG, "Ready", |m| {
            is_ready(m.status.as_ref().map(|s| &s.conditions))
        })
        .await
        .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    for n in &names {
        let status = mounts.get(n).await.unwrap().status.unwrap();
        let key = env
            .secrets()
            .get(&status.key_secret_name.clone().unwrap())
            .await
            .unwrap();
        let held = secret_text(&key, "tls.crt");
        assert_eq!(
            held.trim(),
            status.certificate.clone().unwrap().trim(),
            "{n}: status shows the CA in the key Secret"
        );
        let version: u64 = key
            .metadata
            .resource_version
            .clone()
            .unwrap()
            .parse()
            .unwrap();
        let created = key.metadata.managed_fields.unwrap();
        assert_eq!(
            created.len(),
            1,
            "{n}: the key Secret was written once: {created:?}"
        );
        assert!(is_ready(Some(&status.conditions)), "{n}");
        let _ = version;
    }
    let ca_secrets = env.ca_key_secrets().await.unwrap();
    assert_eq!(ca_secrets.len(), names.len(), "one key Secret per mount");
}

#[tokio::test]
async fn leadership_changes_hands_and_no_request_is_lost_across_restarts() {
    let env = OperatorEnv::new("op-ha").await.unwrap();
    let (a, b) = tokio::join!(
        env.start_operator("replica-a"),
        env.start_operator("replica-b")
    );
    let (mut a, mut b) = (a.unwrap(), b.unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = loop {
        if let Some(i) = leader_of(&[&a, &b]).await {
            break i;
        }
        assert!(Instant::now() < deadline, "no leader");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(
        !(a.is_leader().await && b.is_leader().await),
        "one leader at a time"
    );

    let pp = PostParams::default();
    let (apps, ca) = env.apps_with_ca("op-ha-apps", "E2E HA Root").await.unwrap();
    let role = ca.role.clone();
    let requests: Api<CertificateRequest> = Api::namespaced(env.client.clone(), apps.name());

    // A burst of requests, and the leader dies in the middle of it.
    for i in 0..20 {
        let cr = env.request(
            apps.name(),
            &format!("burst-{i}"),
            &role,
            &format!("burst-{i}-tls"),
            &[&format!("b{i}.example.com")],
        );
        requests.create(&pp, &cr).await.unwrap();
    }
    let lease_api: Api<Lease> = Api::namespaced(env.client.clone(), env.namespace.name());
    let before = lease_api.get(&env.id).await.unwrap().spec.unwrap();
    let killed_at = Instant::now();
    let (leader, survivor) = if first == 0 {
        (&mut a, &b)
    } else {
        (&mut b, &a)
    };
    let dead_name = leader.name.clone();
    leader.kill().await.unwrap();
    // A request made while nobody leads.
    env.create_request(apps.name(), "orphan", &role, &["orphan.example.com"])
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !survivor.is_leader().await {
        assert!(Instant::now() < deadline, "the survivor did not take over");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let takeover = killed_at.elapsed();
    let after = lease_api.get(&env.id).await.unwrap().spec.unwrap();
    assert_eq!(
        after.holder_identity.as_deref(),
        Some(survivor.name.as_str())
    );
    assert_ne!(before.holder_identity, after.holder_identity);
    assert!(after.lease_transitions.unwrap_or(0) > before.lease_transitions.unwrap_or(0));
    eprintln!(
        "leader {dead_name} killed; {} took over after {takeover:?}",
        survivor.name
    );

    // The dead replica comes back as a follower.
    let restarted = env.start_operator(&dead_name).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!restarted.is_leader().await);
    assert!(survivor.is_leader().await);

    let mut all: Vec<String> = (0..20).map(|i| format!("burst-{i}")).collect();
    all.push("orphan".into());
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), apps.name());
    for n in &all {
        let cr = wait_for(&requests, n, LONG, &format!("{n} Ready"), |cr| {
            is_ready(cr.status.as_ref().map(|s| &s.conditions))
        })
        .await
        .unwrap();
        let status = cr.status.unwrap();
        let secret = secrets.get(&cr.spec.secret_name).await.unwrap();
        assert!(
            secret_text(&secret, "tls.crt").starts_with(status.certificate.unwrap().trim_end()),
            "{n}: status matches the Secret"
        );
        let serial = secret.metadata.annotations.unwrap()["pki.tlsmint.io/serial"].clone();
        assert_eq!(Some(serial), status.serial_number, "{n}");
    }
    // Still one CA.
    let ca_secrets = env.ca_key_secrets().await.unwrap();
    assert_eq!(ca_secrets.len(), 1);
}

#[tokio::test]
async fn a_leader_that_loses_its_lease_stops_reconciling_at_once() {
    let env = OperatorEnv::new("op-lose").await.unwrap();
    let operator = env.start_operator("replica-a").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !operator.is_leader().await {
        assert!(Instant::now() < deadline, "no leader");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let pp = PostParams::default();
    let (apps, ca) = env
        .apps_with_ca("op-lose-apps", "E2E Lose Root")
        .await
        .unwrap();
    let role = ca.role.clone();

    // Someone else takes the Lease (as a partitioned leader would find on its next renewal).
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), env.namespace.name());
    let mut lease = leases.get(&env.id).await.unwrap();
    let spec = lease.spec.as_mut().unwrap();
    spec.holder_identity = Some("intruder".into());
    spec.renew_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        k8s_openapi::jiff::Timestamp::now(),
    ));
    leases.replace(&env.id, &pp, &lease).await.unwrap();
    let lost_at = Instant::now();
    while operator.is_leader().await {
        assert!(lost_at.elapsed() < Duration::from_secs(5), "still leading");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "stopped leading {:?} after the lease was taken",
        lost_at.elapsed()
    );

    // Nothing is reconciled while another holder's lease is valid...
    let requests: Api<CertificateRequest> = Api::namespaced(env.client.clone(), apps.name());
    env.create_request(apps.name(), "waits", &role, &["w.example.com"])
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        requests.get("waits").await.unwrap().status.is_none(),
        "reconciled without the lease"
    );
    // ...and once that holder stops renewing, the replica takes the lease back and catches up.
    wait_for(&requests, "waits", LONG, "Ready", |cr| {
        is_ready(cr.status.as_ref().map(|s| &s.conditions))
    })
    .await
    .unwrap();
    assert!(operator.is_leader().await);
}
