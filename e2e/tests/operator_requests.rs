//! CertificateRequests beyond plain issuance, on the real API server: signing `spec.csr`,
//! revocation, refusing a Secret the request does not own, and the metrics. The operator
//! runs as a separate process under the chart's RBAC; see `e2e/run-operator-tests`.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use tlsmint_api::v1alpha1::CertificateRequest;
use tlsmint_e2e::operator::{LONG, OperatorEnv, is_ready, openssl, ready_of, secret_text};
use tlsmint_e2e::{TestNamespace, wait_for};

#[tokio::test]
async fn signs_csrs_revokes_refuses_foreign_secrets_and_exports_metrics() {
    let env = OperatorEnv::new("op-csr").await.unwrap();
    let operator = env.start_operator("replica-a").await.unwrap();
    let apps = TestNamespace::create(&env.client, "op-csr-apps")
        .await
        .unwrap();
    let h = env.hierarchy(&[apps.name()]).await.unwrap();
    let (_root, int, role) = (h.root.clone(), h.int.clone(), h.role.clone());
    let pp = PostParams::default();
    let requests: Api<CertificateRequest> = Api::namespaced(env.client.clone(), apps.name());
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), apps.name());

    // spec.csr: the operator signs it; the Secret holds no key.
    let dir = env.dir.join("csr");
    std::fs::create_dir_all(&dir).unwrap();
    openssl(
        &dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "own.key",
            "-out",
            "own.csr",
            "-subj",
            "/CN=own.example.com",
        ],
    )
    .await
    .unwrap();
    let mut signed = env.request(apps.name(), "own", &role, "own-tls", &[]);
    signed.spec.csr = Some(std::fs::read_to_string(dir.join("own.csr")).unwrap());
    requests.create(&pp, &signed).await.unwrap();
    wait_for(&requests, "own", LONG, "signed", |cr| {
        is_ready(cr.status.as_ref().map(|s| &s.conditions))
    })
    .await
    .unwrap();
    let secret = secrets.get("own-tls").await.unwrap();
    assert_eq!(
        secret_text(&secret, "tls.key"),
        "",
        "the key stays with the requester"
    );
    std::fs::write(dir.join("own.pem"), secret_text(&secret, "tls.crt")).unwrap();
    let cert_pub = openssl(&dir, &["x509", "-in", "own.pem", "-noout", "-pubkey"])
        .await
        .unwrap();
    let key_pub = openssl(&dir, &["pkey", "-in", "own.key", "-pubout"])
        .await
        .unwrap();
    assert_eq!(cert_pub, key_pub, "the certificate is for the CSR's key");

    // A Secret of that name that the request does not own is never overwritten.
    let foreign = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("taken".into()),
            ..Default::default()
        },
        string_data: Some([("note".to_owned(), "not yours".to_owned())].into()),
        ..Default::default()
    };
    secrets.create(&pp, &foreign).await.unwrap();
    requests
        .create(
            &pp,
            &env.request(apps.name(), "grabby", &role, "taken", &["grab.example.com"]),
        )
        .await
        .unwrap();
    let refused = wait_for(&requests, "grabby", LONG, "SecretNotOwned", |cr| {
        cr.status
            .as_ref()
            .and_then(|s| ready_of(&s.conditions))
            .is_some_and(|(_, r, _)| r == "SecretNotOwned")
    })
    .await
    .unwrap();
    assert!(refused.status.unwrap().serial_number.is_none());
    let untouched = secrets.get("taken").await.unwrap();
    assert_eq!(secret_text(&untouched, "note"), "not yours");
    assert!(untouched.metadata.owner_references.is_none());

    // revoked: true records the serial and stops renewal.
    let revoked = wait_for(&requests, "own", LONG, "Ready", |_| true)
        .await
        .unwrap();
    let serial = revoked
        .status
        .as_ref()
        .unwrap()
        .serial_number
        .clone()
        .unwrap();
    let patch = serde_json::json!({"spec": {"revoked": true}});
    requests
        .patch(
            "own",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
    let revoked = wait_for(&requests, "own", LONG, "Revoked", |cr| {
        cr.status
            .as_ref()
            .is_some_and(|s| s.revocation_time.is_some())
    })
    .await
    .unwrap()
    .status
    .unwrap();
    let (status, reason, message) = ready_of(&revoked.conditions).unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("False", "Revoked"));
    assert!(message.contains(&serial), "{message}");
    assert_eq!(revoked.serial_number.as_deref(), Some(serial.as_str()));
    // ...into the mount's revocation records, which the CRL and OCSP are built from.
    let maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(env.client.clone(), env.namespace.name());
    let plain = serial.replace(':', "").to_lowercase();
    let deadline = std::time::Instant::now() + LONG;
    loop {
        let text = maps
            .get_opt(&format!("tlsmint-revocations-{int}"))
            .await
            .unwrap()
            .and_then(|cm| cm.data)
            .map(|d| d.into_values().collect::<String>().to_lowercase())
            .unwrap_or_default();
        if text.contains(&serial.to_lowercase()) || text.contains(&plain) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serial {serial} not in the revocation records: {text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }

    // Metrics: expiry per request, the CA's notAfter per mount, issued per role.
    let (_, metrics) = operator.get("/metrics").await.unwrap();
    assert!(
        metrics.contains(&format!(
            "tlsmint_operator_certificate_expiry_seconds{{namespace=\"{}\",name=\"own\"",
            apps.name()
        )),
        "{metrics}"
    );
    assert!(metrics.contains(&format!(
        "tlsmint_operator_ca_not_after_timestamp_seconds{{mount=\"{int}\"}}"
    )));
    assert!(metrics.contains(&format!(
        "tlsmint_operator_certificates_issued_total{{role=\"{role}\"}} 1"
    )));
}
