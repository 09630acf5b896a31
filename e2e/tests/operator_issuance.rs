//! The operator on the real API server: a root, an intermediate signed by it, a role and a
//! CertificateRequest give a Secret whose chain `openssl verify` accepts; renewal at half
//! the lifetime; denials. The operator runs as a separate process under the chart's RBAC.
//! Needs the local cluster (`e2e/cluster/up`) and a built operator; see
//! `e2e/run-operator-tests`.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use tlsmint_api::v1alpha1::{CertificateRequest, PkiMount};
use tlsmint_e2e::operator::{
    LONG, OperatorEnv, events_about, is_ready, openssl, ready_of, secret_text,
};
use tlsmint_e2e::{TestNamespace, wait_for};

#[tokio::test]
async fn root_intermediate_role_and_request_give_a_secret_that_verifies_to_the_root() {
    let env = OperatorEnv::new("op-issue").await.unwrap();
    let _operator = env.start_operator("replica-a").await.unwrap();
    let apps = TestNamespace::create(&env.client, "op-issue-apps")
        .await
        .unwrap();
    let h = env.hierarchy(&[apps.name()]).await.unwrap();
    let (root, int, role) = (h.root.clone(), h.int.clone(), h.role.clone());

    let requests: Api<CertificateRequest> = Api::namespaced(env.client.clone(), apps.name());
    let cr = env.request(
        apps.name(),
        "web",
        &role,
        "web-tls",
        &["api.example.com", "www.example.com"],
    );
    requests.create(&PostParams::default(), &cr).await.unwrap();
    let cr = wait_for(&requests, "web", LONG, "CertificateRequest Ready", |cr| {
        is_ready(cr.status.as_ref().map(|s| &s.conditions))
    })
    .await
    .unwrap();
    let status = cr.status.unwrap();

    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), apps.name());
    let secret = secrets.get("web-tls").await.unwrap();
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
    let owner = &secret.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("CertificateRequest", Some(true))
    );
    let tls_crt = secret_text(&secret, "tls.crt");
    let tls_key = secret_text(&secret, "tls.key");
    let ca_crt = secret_text(&secret, "ca.crt");
    assert_eq!(
        tls_crt.matches("BEGIN CERTIFICATE").count(),
        3,
        "leaf, intermediate, root"
    );
    assert!(
        tls_key.contains("BEGIN PRIVATE KEY"),
        "PKCS8 key by default"
    );

    // Status matches the Secret: the leaf is the first certificate of tls.crt.
    let leaf = status.certificate.clone().unwrap();
    assert!(
        tls_crt.starts_with(leaf.trim_end()),
        "status.certificate is tls.crt's leaf"
    );
    let dir = env.dir.join("verify");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("leaf.pem"), &leaf).unwrap();
    std::fs::write(
        dir.join("chain.pem"),
        tls_crt.trim_start_matches(leaf.trim_end()),
    )
    .unwrap();
    std::fs::write(dir.join("ca.pem"), &ca_crt).unwrap();
    std::fs::write(dir.join("key.pem"), &tls_key).unwrap();
    let verified = openssl(
        &dir,
        &[
            "verify",
            "-x509_strict",
            "-purpose",
            "sslserver",
            "-verify_hostname",
            "api.example.com",
            "-CAfile",
            "ca.pem",
            "-untrusted",
            "chain.pem",
            "leaf.pem",
        ],
    )
    .await
    .unwrap();
    assert!(verified.contains("leaf.pem: OK"), "{verified}");
    let serial = openssl(&dir, &["x509", "-in", "leaf.pem", "-noout", "-serial"])
        .await
        .unwrap();
    let want = status
        .serial_number
        .clone()
        .unwrap()
        .replace(':', "")
        .to_uppercase();
    assert!(
        serial.trim().ends_with(&want),
        "openssl {serial} vs status {want}"
    );
    // The key in the Secret belongs to the certificate.
    let cert_pub = openssl(&dir, &["x509", "-in", "leaf.pem", "-noout", "-pubkey"])
        .await
        .unwrap();
    let key_pub = openssl(&dir, &["pkey", "-in", "key.pem", "-pubout"])
        .await
        .unwrap();
    assert_eq!(cert_pub, key_pub);
    // The root in ca.crt is the root mount's certificate.
    let mounts: Api<PkiMount> = Api::all(env.client.clone());
    let root_status = mounts.get(&root).await.unwrap().status.unwrap();
    assert_eq!(ca_crt.trim(), root_status.certificate.unwrap().trim());
    let int_status = mounts.get(&int).await.unwrap().status.unwrap();
    assert_eq!(int_status.ca_chain.len(), 2);
    assert_eq!(
        int_status.key_secret_name.as_deref(),
        Some(format!("{int}-ca-key").as_str())
    );
    assert!(status.renewal_time.is_some() && status.not_after.is_some());
    assert_eq!(status.observed_generation, Some(1));

    // An Issued Event was published for the request.
    let issued = events_about(&env.client, apps.name(), "web", "Issued")
        .await
        .unwrap();
    assert!(!issued.is_empty(), "an Issued Event");
}

#[tokio::test]
async fn renews_at_half_lifetime_with_a_new_key_and_one_secret_update() {
    let env = OperatorEnv::new("op-renew").await.unwrap();
    let _operator = env.start_operator("replica-a").await.unwrap();
    let apps = TestNamespace::create(&env.client, "op-renew-apps")
        .await
        .unwrap();
    let h = env.hierarchy(&[apps.name()]).await.unwrap();
    let (_root, _int, role) = (h.root.clone(), h.int.clone(), h.role.clone());

    let requests: Api<CertificateRequest> = Api::namespaced(env.client.clone(), apps.name());
    let mut cr = env.request(
        apps.name(),
        "short",
        &role,
        "short-tls",
        &["short.example.com"],
    );
    cr.spec.ttl = Some("2m".parse().unwrap());
    requests.create(&PostParams::default(), &cr).await.unwrap();
    let mut kept = env.request(
        apps.name(),
        "kept",
        &role,
        "kept-tls",
        &["kept.example.com"],
    );
    kept.spec.ttl = Some("2m".parse().unwrap());
    kept.spec.private_key.rotation_policy = tlsmint_api::v1alpha1::RotationPolicy::Never;
    requests
        .create(&PostParams::default(), &kept)
        .await
        .unwrap();
    let first = wait_for(&requests, "short", LONG, "Ready", |cr| {
        is_ready(cr.status.as_ref().map(|s| &s.conditions))
    })
    .await
    .unwrap();
    let first_status = first.status.unwrap();
    let first_serial = first_status.serial_number.clone().unwrap();
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), apps.name());
    let first_secret = secrets.get("short-tls").await.unwrap();
    let first_key = secret_text(&first_secret, "tls.key");
    let kept_first = wait_for(&requests, "kept", LONG, "Ready", |cr| {
        cr.status
            .as_ref()
            .and_then(|s| s.serial_number.as_ref())
            .is_some()
    })
    .await
    .unwrap();
    let kept_serial = kept_first.status.unwrap().serial_number.unwrap();
    let kept_key = secret_text(&secrets.get("kept-tls").await.unwrap(), "tls.key");

    // Count the Secret's modifications until the serial changes.
    let watch = watcher(
        secrets.clone(),
        watcher::Config::default().fields("metadata.name=short-tls"),
    )
    .applied_objects()
    .try_filter(|s| futures::future::ready(secret_text(s, "tls.key") != first_key));
    let started = std::time::Instant::now();
    let renewed_secret = tokio::time::timeout(Duration::from_secs(150), watch.boxed().try_next())
        .await
        .expect("renewed within 150 s")
        .unwrap()
        .unwrap();
    let waited = started.elapsed();
    let renewed = wait_for(
        &requests,
        "short",
        Duration::from_secs(30),
        "status renewed",
        |cr| {
            cr.status
                .as_ref()
                .and_then(|s| s.serial_number.as_deref())
                .is_some_and(|s| s != first_serial)
        },
    )
    .await
    .unwrap()
    .status
    .unwrap();
    // Renewal at half of 2m30s (2m + 30s back-dating) brought forward by at most 5% of the
    // lifetime of jitter, truncated to whole seconds: 45-50% of the lifetime, less 1 s.
    let not_before = first_status.not_before.unwrap().0.as_second();
    let renewal = first_status.renewal_time.unwrap().0.as_second();
    let lifetime = first_status.not_after.unwrap().0.as_second() - not_before;
    let offset = renewal - not_before;
    assert!(
        offset >= lifetime * 45 / 100 - 1 && offset <= lifetime / 2,
        "renewal at about half the lifetime: {offset} s of {lifetime} s"
    );
    assert!(
        waited < Duration::from_secs(120),
        "renewed after {waited:?}"
    );
    assert_ne!(
        renewed.serial_number.as_deref(),
        Some(first_serial.as_str())
    );
    assert_ne!(
        secret_text(&renewed_secret, "tls.key"),
        first_key,
        "the key rotates"
    );
    assert!(
        secret_text(&renewed_secret, "tls.crt")
            .starts_with(renewed.certificate.unwrap().trim_end())
    );
    // One write per issuance: the Secret moved from its first version straight to the renewed one.
    let versions = |s: &Secret| {
        s.metadata
            .resource_version
            .clone()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert!(versions(&renewed_secret) > versions(&first_secret));
    let history = secrets.get("short-tls").await.unwrap();
    assert_eq!(
        versions(&history),
        versions(&renewed_secret),
        "no further write after the renewal"
    );
    // rotationPolicy: Never renews with the same key.
    wait_for(
        &requests,
        "kept",
        Duration::from_secs(90),
        "kept renewed",
        |cr| {
            cr.status
                .as_ref()
                .and_then(|s| s.serial_number.as_deref())
                .is_some_and(|s| s != kept_serial)
        },
    )
    .await
    .unwrap();
    assert_eq!(
        secret_text(&secrets.get("kept-tls").await.unwrap(), "tls.key"),
        kept_key
    );
    let managed = history.metadata.managed_fields.unwrap();
    assert!(
        managed
            .iter()
            .all(|m| m.manager.as_deref() == Some("tlsmint-operator")),
        "only the operator writes it"
    );
    // The renewal is announced as such, naming the new serial.
    let new_serial = renewed.serial_number.clone().unwrap();
    let renewals = events_about(&env.client, apps.name(), "short", "Renewed")
        .await
        .unwrap();
    assert!(
        renewals
            .iter()
            .any(|e| e.note.as_deref().is_some_and(|n| n.contains(&new_serial))),
        "a Renewed Event naming {new_serial}: {renewals:?}"
    );
}

#[tokio::test]
async fn denies_namespaces_and_names_outside_the_role_and_clamps_ttl() {
    let env = OperatorEnv::new("op-deny").await.unwrap();
    let operator = env.start_operator("replica-a").await.unwrap();
    let allowed = TestNamespace::create(&env.client, "op-deny-ok")
        .await
        .unwrap();
    let other = TestNamespace::create(&env.client, "op-deny-no")
        .await
        .unwrap();
    let h = env.hierarchy(&[allowed.name()]).await.unwrap();
    let (_root, _int, role) = (h.root.clone(), h.int.clone(), h.role.clone());
    let pp = PostParams::default();

    // Namespace not among the subjects.
    let foreign: Api<CertificateRequest> = Api::namespaced(env.client.clone(), other.name());
    foreign
        .create(
            &pp,
            &env.request(other.name(), "nope", &role, "nope-tls", &["a.example.com"]),
        )
        .await
        .unwrap();
    let denied = wait_for(&foreign, "nope", LONG, "Denied", |cr| {
        cr.status
            .as_ref()
            .and_then(|s| ready_of(&s.conditions))
            .is_some_and(|(s, r, _)| s == "False" && r == "Denied")
    })
    .await
    .unwrap();
    let (_, _, message) = ready_of(&denied.status.unwrap().conditions).unwrap();
    assert!(
        message.contains(other.name()) && message.contains("subjects"),
        "{message}"
    );

    // A DNS name outside the allowed domains.
    let ok: Api<CertificateRequest> = Api::namespaced(env.client.clone(), allowed.name());
    ok.create(
        &pp,
        &env.request(
            allowed.name(),
            "evil",
            &role,
            "evil-tls",
            &["www.evil.test"],
        ),
    )
    .await
    .unwrap();
    let denied = wait_for(&ok, "evil", LONG, "Denied", |cr| {
        cr.status
            .as_ref()
            .and_then(|s| ready_of(&s.conditions))
            .is_some_and(|(s, r, _)| s == "False" && r == "Denied")
    })
    .await
    .unwrap();
    let (_, _, message) = ready_of(&denied.status.unwrap().conditions).unwrap();
    assert!(
        message.contains("www.evil.test"),
        "the message names the refused name: {message}"
    );
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), allowed.name());
    assert!(
        secrets.get_opt("evil-tls").await.unwrap().is_none(),
        "nothing issued"
    );

    // A Warning Event with the exact reason, published once (no hot loop).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let denials = events_about(&env.client, allowed.name(), "evil", "Denied")
        .await
        .unwrap();
    assert_eq!(denials.len(), 1, "{denials:?}");
    assert!(
        denials[0]
            .note
            .as_deref()
            .unwrap_or_default()
            .contains("www.evil.test")
    );
    assert_eq!(denials[0].type_.as_deref(), Some("Warning"));
    let reconciles = operator
        .metric("tlsmint_operator_reconciles_total{kind=\"CertificateRequest\"}")
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let later = operator
        .metric("tlsmint_operator_reconciles_total{kind=\"CertificateRequest\"}")
        .await
        .unwrap()
        .unwrap();
    assert!(
        later - reconciles <= 2.0,
        "denied requests are not retried in a loop: {reconciles} -> {later}"
    );

    // A ttl above the role's maxTTL (24h) is clamped, and the status says so.
    let mut long = env.request(
        allowed.name(),
        "long",
        &role,
        "long-tls",
        &["long.example.com"],
    );
    long.spec.ttl = Some("100h".parse().unwrap());
    ok.create(&pp, &long).await.unwrap();
    let long = wait_for(&ok, "long", LONG, "Ready", |cr| {
        is_ready(cr.status.as_ref().map(|s| &s.conditions))
    })
    .await
    .unwrap();
    let status = long.status.unwrap();
    let (_, _, message) = ready_of(&status.conditions).unwrap();
    assert!(message.to_lowercase().contains("ttl"), "{message}");
    let lifetime =
        status.not_after.unwrap().0.as_second() - status.not_before.unwrap().0.as_second();
    assert_eq!(
        lifetime,
        24 * 3600 + 30,
        "clamped to maxTTL (plus the 30 s back-dating)"
    );
}
