//! CA rotation on the real API server (SPEC §6, issue 12): a root re-keyed on request walks
//! Prepared -> Published -> Activated -> Retired while the intermediate under it is
//! re-signed; the new root reaches every ca.crt (CertificateRequest Secret, trust
//! ConfigMap) before it signs and the old one leaves only after the last old leaf expired;
//! the old key Secret goes, the new ones stay. A renewal (rekey: false) keeps the key and
//! an old leaf still verifies. An operator killed while Published, or while Activated,
//! continues the same rotation. `reissue: Immediate` moves a long-lived leaf at once.
//! The operator runs under the chart's RBAC.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::certificates::v1beta1::ClusterTrustBundle;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use tlsmint_api::v1alpha1::{
    CertificateRequest, IssuerRole, PkiMount, RotationPhase, RotationTrigger, TrustBundleSpec,
};
use tlsmint_e2e::operator::{OperatorEnv, name, openssl, secret_text};
use tlsmint_e2e::{DeleteOnDrop, TestNamespace, wait_for};

const LONG: Duration = Duration::from_secs(120);
const TRUST_LABEL: &str = "e2e.tlsmint.dev/trust";

fn certs_in(pem: &str) -> usize {
    pem.matches("BEGIN CERTIFICATE").count()
}

fn phase(m: &PkiMount) -> Option<RotationPhase> {
    m.status.as_ref()?.rotation.as_ref().map(|r| r.phase)
}

fn history(m: &PkiMount) -> Vec<RotationPhase> {
    m.status
        .as_ref()
        .and_then(|s| s.rotation.as_ref())
        .map(|r| r.history.iter().map(|h| h.phase).collect())
        .unwrap_or_default()
}

fn trusted(m: &PkiMount) -> Vec<String> {
    m.status
        .as_ref()
        .map(|s| s.trusted_roots.clone())
        .unwrap_or_default()
}

fn certificate(m: &PkiMount) -> String {
    m.status
        .as_ref()
        .and_then(|s| s.certificate.clone())
        .unwrap_or_default()
}

fn spki(pem: &str) -> Vec<u8> {
    let der = tlsmint_ca::pem::decode_certificate(pem).unwrap();
    tlsmint_ca::x509::parse_certificate(&der, "CA")
        .unwrap()
        .spki_der
}

async fn request_rotation(mounts: &Api<PkiMount>, mount: &str) {
    let at = Time(k8s_openapi::jiff::Timestamp::now());
    let patch = serde_json::json!({"spec": {"rotation": {"requestedAt": at}}});
    mounts
        .patch(mount, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

/// A namespace for requests whose label the mounts' trustBundle selector picks.
async fn apps(env: &OperatorEnv, prefix: &str) -> TestNamespace {
    let apps = TestNamespace::create(&env.client, prefix).await.unwrap();
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    let patch = serde_json::json!({"metadata": {"labels": {TRUST_LABEL: env.id}}});
    namespaces
        .patch(apps.name(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    apps
}

fn trust_bundle(env: &OperatorEnv) -> Option<TrustBundleSpec> {
    Some(TrustBundleSpec {
        namespace_selector: LabelSelector {
            match_labels: Some(BTreeMap::from([(TRUST_LABEL.to_owned(), env.id.clone())])),
            ..LabelSelector::default()
        },
        pkcs12: None,
    })
}

/// Verifies the leaf and chain in `tls_crt` against the roots in `ca_crt` with openssl.
async fn verifies(env: &OperatorEnv, tag: &str, tls_crt: &str, ca_crt: &str) -> bool {
    let dir = env.dir.join(tag);
    std::fs::create_dir_all(&dir).unwrap();
    let certs = tlsmint_ca::pem::decode_certificates(tls_crt).unwrap();
    let leaf = tlsmint_ca::pem::encode_certificate(&certs[0]);
    let chain: String = certs[1..]
        .iter()
        .map(|c| tlsmint_ca::pem::encode_certificate(c))
        .collect();
    std::fs::write(dir.join("leaf.pem"), leaf).unwrap();
    std::fs::write(dir.join("chain.pem"), chain).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_crt).unwrap();
    openssl(
        &dir,
        &[
            "verify",
            "-CAfile",
            "ca.pem",
            "-untrusted",
            "chain.pem",
            "leaf.pem",
        ],
    )
    .await
    .is_ok()
}

#[tokio::test]
async fn a_rekeyed_root_is_trusted_before_it_signs_and_retired_after_the_last_old_leaf() {
    let env = OperatorEnv::new("op-rot").await.unwrap();
    let mut operator = env.start_operator("replica-a").await.unwrap();
    let apps = apps(&env, "rot-apps").await;
    let mounts: Api<PkiMount> = Api::all(env.client.clone());
    let roles: Api<IssuerRole> = Api::all(env.client.clone());
    let pp = PostParams::default();
    let (root, int, role) = (name("root"), name("int"), name("web"));
    let _g = [
        DeleteOnDrop::new::<IssuerRole>(None, &role),
        DeleteOnDrop::new::<PkiMount>(None, &int),
        DeleteOnDrop::new::<PkiMount>(None, &root),
    ];
    let mut root_mount = env.root_mount(&root, "E2E Rotating Root");
    root_mount.spec.rotation.propagation_delay = tlsmint_api::Duration::from_secs(20);
    root_mount.spec.trust_bundle = trust_bundle(&env);
    mounts.create(&pp, &root_mount).await.unwrap();
    let mut int_mount = env.intermediate_mount(&int, "E2E Rotating Intermediate", Some(&root));
    int_mount.spec.trust_bundle = trust_bundle(&env);
    mounts.create(&pp, &int_mount).await.unwrap();
    let mut web = env.role(&role, &int, "example.com", &[apps.name()]);
    web.spec.ttl = tlsmint_api::Duration::from_secs(20);
    web.spec.max_ttl = tlsmint_api::Duration::from_secs(20);
    roles.create(&pp, &web).await.unwrap();
    env.create_request(apps.name(), "app", &role, &["app.example.com"])
        .await
        .unwrap();
    let requests: Api<CertificateRequest> = Api::namespaced(env.client.clone(), apps.name());
    wait_for(&requests, "app", LONG, "the request Ready", |cr| {
        tlsmint_e2e::operator::is_ready(cr.status.as_ref().map(|s| &s.conditions))
    })
    .await
    .unwrap();
    let app_secrets: Api<Secret> = Api::namespaced(env.client.clone(), apps.name());
    let config_maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), apps.name());
    let int_cm = format!("tlsmint-{int}-ca");
    let before = wait_for(&mounts, &root, LONG, "the root's trusted roots", |m| {
        trusted(m).len() == 1
    })
    .await
    .unwrap();
    let old_root = certificate(&before);
    let cm = wait_for(&config_maps, &int_cm, LONG, "the trust ConfigMap", |c| {
        c.data
            .as_ref()
            .and_then(|d| d.get("ca.crt"))
            .is_some_and(|v| v.trim() == old_root.trim())
    })
    .await
    .unwrap();
    assert_eq!(
        cm.metadata.labels.as_ref().unwrap()["pki.tlsmint.io/mount"],
        int
    );
    let old_int_key = secret_text(
        &env.secrets().get(&format!("{int}-ca-key")).await.unwrap(),
        "tls.key",
    );

    request_rotation(&mounts, &root).await;

    // Published: the new root is trusted everywhere while the old one still signs.
    let published = wait_for(&mounts, &root, LONG, "the root Published", |m| {
        phase(m) == Some(RotationPhase::Published)
    })
    .await
    .unwrap();
    assert_eq!(
        certificate(&published).trim(),
        old_root.trim(),
        "not yet signing"
    );
    let roots = trusted(&published);
    assert_eq!(roots.len(), 2, "old and new root are trusted");
    let new_root = roots[1].clone();
    wait_for(
        &mounts,
        &int,
        LONG,
        "the intermediate trusts both roots",
        |m| trusted(m).len() == 2,
    )
    .await
    .unwrap();
    wait_for(
        &app_secrets,
        "app-tls",
        LONG,
        "ca.crt holds both roots",
        |s| certs_in(&secret_text(s, "ca.crt")) == 2,
    )
    .await
    .unwrap();
    wait_for(
        &config_maps,
        &int_cm,
        LONG,
        "the ConfigMap holds both roots",
        |c| {
            c.data
                .as_ref()
                .and_then(|d| d.get("ca.crt"))
                .is_some_and(|v| certs_in(v) == 2)
        },
    )
    .await
    .unwrap();
    // The ClusterTrustBundles too: the mount's own and the role's signer-linked one.
    let bundles: Api<ClusterTrustBundle> = Api::all(env.client.clone());
    let bundle_names = [
        format!("tlsmint-{int}"),
        format!("pki.tlsmint.io:{role}:{int}"),
    ];
    for bundle in &bundle_names {
        wait_for(
            &bundles,
            bundle,
            LONG,
            "the ClusterTrustBundle holds both roots",
            |b| certs_in(&b.spec.trust_bundle) == 2,
        )
        .await
        .unwrap();
    }
    let still = mounts.get(&root).await.unwrap();
    assert_eq!(
        phase(&still),
        Some(RotationPhase::Published),
        "propagationDelay (20s) holds the activation back"
    );

    // Activated: the new root signs; the intermediate is re-signed by it, same key.
    let activated = wait_for(&mounts, &root, LONG, "the root Activated", |m| {
        matches!(
            phase(m),
            Some(RotationPhase::Activated | RotationPhase::Retired)
        )
    })
    .await
    .unwrap();
    assert_eq!(certificate(&activated).trim(), new_root.trim());
    assert_ne!(spki(&new_root), spki(&old_root), "a re-key has a new key");
    let resigned = wait_for(&mounts, &int, LONG, "the intermediate re-signed", |m| {
        m.status
            .as_ref()
            .and_then(|s| s.ca_chain.get(1))
            .is_some_and(|c| c.trim() == new_root.trim())
    })
    .await
    .unwrap();
    let int_rotation = resigned.status.as_ref().unwrap().rotation.clone().unwrap();
    assert_eq!(int_rotation.trigger, Some(RotationTrigger::ParentRotated));
    assert_eq!(int_rotation.rekey, Some(false));
    let new_int_key = secret_text(
        &env.secrets().get(&format!("{int}-ca-key-1")).await.unwrap(),
        "tls.key",
    );
    assert_eq!(new_int_key, old_int_key, "the intermediate kept its key");
    // The operator is killed while Activated (the old root waits for its last leaf): the
    // next leader retires it on time and starts no second rotation.
    operator.kill().await.unwrap();
    let _second = env.start_operator("replica-b").await.unwrap();
    // Leaves move to the new chain at their normal renewal (every 10 s here) and verify
    // against the trusted roots of the moment.
    let moved = wait_for(
        &app_secrets,
        "app-tls",
        LONG,
        "a leaf under the new root",
        |s| {
            let crt = secret_text(s, "tls.crt");
            tlsmint_ca::pem::decode_certificates(&crt)
                .ok()
                .and_then(|c| c.last().cloned())
                .is_some_and(|top| {
                    tlsmint_ca::pem::encode_certificate(&top).trim() == new_root.trim()
                })
        },
    )
    .await
    .unwrap();
    assert!(
        verifies(
            &env,
            "moved",
            &secret_text(&moved, "tls.crt"),
            &secret_text(&moved, "ca.crt")
        )
        .await
    );

    // Retired: after the last old leaf (20 s maxTTL + 60 s margin), the old root leaves
    // every bundle and its key Secret goes.
    let retired = wait_for(
        &mounts,
        &root,
        Duration::from_secs(240),
        "the root Retired",
        |m| phase(m) == Some(RotationPhase::Retired),
    )
    .await
    .unwrap();
    let walked = history(&retired);
    assert_eq!(
        walked,
        [
            RotationPhase::Prepared,
            RotationPhase::Published,
            RotationPhase::Activated,
            RotationPhase::Retired
        ],
        "the phases in order, once, across the restart"
    );
    assert!(
        env.secrets()
            .get_opt(&format!("{root}-ca-key-2"))
            .await
            .unwrap()
            .is_none(),
        "no second next CA after the restart"
    );
    let times: Vec<_> = retired
        .status
        .as_ref()
        .unwrap()
        .rotation
        .as_ref()
        .unwrap()
        .history
        .iter()
        .map(|h| h.time.0)
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let published_at = times[1];
    let activated_at = times[2];
    assert!(
        activated_at.duration_since(published_at).as_secs() >= 19,
        "activation waited for propagation: {published_at} -> {activated_at}"
    );
    assert_eq!(trusted(&retired), std::slice::from_ref(&new_root));
    assert!(
        env.secrets()
            .get_opt(&format!("{root}-ca-key"))
            .await
            .unwrap()
            .is_none(),
        "the retired key Secret is deleted"
    );
    assert!(
        env.secrets()
            .get_opt(&format!("{root}-ca-key-1"))
            .await
            .unwrap()
            .is_some(),
        "the active key Secret stays"
    );
    wait_for(
        &app_secrets,
        "app-tls",
        LONG,
        "ca.crt holds only the new root",
        |s| secret_text(s, "ca.crt").trim() == new_root.trim(),
    )
    .await
    .unwrap();
    wait_for(
        &config_maps,
        &int_cm,
        LONG,
        "the ConfigMap holds only the new root",
        |c| {
            c.data
                .as_ref()
                .and_then(|d| d.get("ca.crt"))
                .is_some_and(|v| v.trim() == new_root.trim())
        },
    )
    .await
    .unwrap();
    for bundle in &bundle_names {
        wait_for(
            &bundles,
            bundle,
            LONG,
            "the ClusterTrustBundle holds only the new root",
            |b| b.spec.trust_bundle.trim() == new_root.trim(),
        )
        .await
        .unwrap();
    }
    let int_now = mounts.get(&int).await.unwrap();
    assert_eq!(trusted(&int_now), std::slice::from_ref(&new_root));
    assert_eq!(phase(&int_now), Some(RotationPhase::Retired));
}

#[tokio::test]
async fn a_renewal_keeps_the_key_and_a_restart_mid_rotation_makes_no_second_ca() {
    let env = OperatorEnv::new("op-rot2").await.unwrap();
    let mut operator = env.start_operator("replica-a").await.unwrap();
    let apps = apps(&env, "rot2-apps").await;
    let mounts: Api<PkiMount> = Api::all(env.client.clone());
    let roles: Api<IssuerRole> = Api::all(env.client.clone());
    let pp = PostParams::default();
    let (renewing, rekeying, role) = (name("renew"), name("rekey"), name("web"));
    let _g = [
        DeleteOnDrop::new::<IssuerRole>(None, &role),
        DeleteOnDrop::new::<PkiMount>(None, &renewing),
        DeleteOnDrop::new::<PkiMount>(None, &rekeying),
    ];
    let mut renew = env.root_mount(&renewing, "E2E Renewing Root");
    renew.spec.rotation.rekey = false;
    mounts.create(&pp, &renew).await.unwrap();
    let mut rekey = env.root_mount(&rekeying, "E2E Restarted Root");
    rekey.spec.rotation.propagation_delay = tlsmint_api::Duration::from_secs(45);
    rekey.spec.rotation.reissue = tlsmint_api::v1alpha1::ReissuePolicy::Immediate;
    mounts.create(&pp, &rekey).await.unwrap();
    let mut web = env.role(&role, &renewing, "example.com", &[apps.name()]);
    web.spec.ttl = tlsmint_api::Duration::from_secs(600);
    web.spec.max_ttl = tlsmint_api::Duration::from_secs(600);
    roles.create(&pp, &web).await.unwrap();
    // A 10-minute leaf under the re-keyed root, whose mount says reissue: Immediate.
    let pinned_role = name("pinned");
    let _pinned_guard = DeleteOnDrop::new::<IssuerRole>(None, &pinned_role);
    let mut pinned = env.role(&pinned_role, &rekeying, "example.com", &[apps.name()]);
    pinned.spec.ttl = tlsmint_api::Duration::from_secs(600);
    pinned.spec.max_ttl = tlsmint_api::Duration::from_secs(600);
    roles.create(&pp, &pinned).await.unwrap();
    env.create_request(apps.name(), "pinned", &pinned_role, &["pinned.example.com"])
        .await
        .unwrap();
    env.create_request(apps.name(), "old", &role, &["old.example.com"])
        .await
        .unwrap();
    let app_secrets: Api<Secret> = Api::namespaced(env.client.clone(), apps.name());
    let old_leaf = wait_for(&app_secrets, "old-tls", LONG, "a leaf", |s| {
        !secret_text(s, "tls.crt").is_empty()
    })
    .await
    .unwrap();
    for m in [&renewing, &rekeying] {
        wait_for(&mounts, m, LONG, "Ready", |m| {
            tlsmint_e2e::operator::is_ready(m.status.as_ref().map(|s| &s.conditions))
        })
        .await
        .unwrap();
    }
    let before = mounts.get(&renewing).await.unwrap();

    // Renewal: same key, new certificate, no overlap to wait for; the old leaf verifies
    // under the new certificate alone.
    request_rotation(&mounts, &renewing).await;
    let renewed = wait_for(&mounts, &renewing, LONG, "the renewal Retired", |m| {
        phase(m) == Some(RotationPhase::Retired)
    })
    .await
    .unwrap();
    assert_ne!(certificate(&renewed), certificate(&before));
    assert_eq!(spki(&certificate(&renewed)), spki(&certificate(&before)));
    assert_eq!(trusted(&renewed), [certificate(&renewed)]);
    assert!(
        verifies(
            &env,
            "renewed",
            &secret_text(&old_leaf, "tls.crt"),
            &certificate(&renewed)
        )
        .await,
        "an old leaf verifies under the renewed root"
    );

    // Restart while Published: the same next CA is activated, none other is made.
    request_rotation(&mounts, &rekeying).await;
    let published = wait_for(&mounts, &rekeying, LONG, "Published", |m| {
        phase(m) == Some(RotationPhase::Published)
    })
    .await
    .unwrap();
    let next_serial = published
        .status
        .as_ref()
        .and_then(|s| s.rotation.as_ref())
        .and_then(|r| r.next.as_ref())
        .map(|n| n.serial_number.clone())
        .unwrap();
    operator.kill().await.unwrap();
    let _second = env.start_operator("replica-b").await.unwrap();
    let activated = wait_for(
        &mounts,
        &rekeying,
        LONG,
        "Activated after the restart",
        |m| {
            matches!(
                phase(m),
                Some(RotationPhase::Activated | RotationPhase::Retired)
            )
        },
    )
    .await
    .unwrap();
    assert_eq!(
        activated.status.as_ref().unwrap().serial_number.as_deref(),
        Some(next_serial.as_str()),
        "the CA prepared before the restart is the one activated"
    );
    let history = history(&activated);
    assert_eq!(
        history
            .iter()
            .filter(|p| **p == RotationPhase::Prepared)
            .count(),
        1,
        "{history:?}"
    );
    let keys: Vec<String> = env
        .ca_key_secrets()
        .await
        .unwrap()
        .iter()
        .map(|s| s.metadata.name.clone().unwrap_or_default())
        .filter(|n| n.starts_with(&rekeying))
        .collect();
    assert!(
        keys.len() <= 2 && keys.contains(&format!("{rekeying}-ca-key-1")),
        "{keys:?}"
    );
    assert!(!keys.iter().any(|k| k.ends_with("-ca-key-2")), "{keys:?}");

    // reissue: Immediate: the 10-minute leaf moves under the new root within the 30 s
    // spread, long before its renewal time.
    let new_root = certificate(&activated);
    let moved = wait_for(
        &app_secrets,
        "pinned-tls",
        Duration::from_secs(60),
        "the leaf re-issued under the new root",
        |s| {
            let certs = tlsmint_ca::pem::decode_certificates(&secret_text(s, "tls.crt"))
                .unwrap_or_default();
            certs.get(1).is_some_and(|issuer| {
                tlsmint_ca::pem::encode_certificate(issuer).trim() == new_root.trim()
            })
        },
    )
    .await
    .unwrap();
    assert!(
        verifies(&env, "pinned", &secret_text(&moved, "tls.crt"), &new_root).await,
        "the re-issued leaf verifies under the new root"
    );
}
