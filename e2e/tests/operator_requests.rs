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

/// `POST https://<addr><path>` with `X-Vault-Token: token` through curl, trusting `ca`:
/// (status, JSON body).
async fn vault_post(
    ca: &std::path::Path,
    addr: std::net::SocketAddr,
    path: &str,
    token: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(ca)
        .args(["-X", "POST", "-H", "content-type: application/json"])
        .arg("-H")
        .arg(format!("x-vault-token: {token}"))
        .arg("--data-binary")
        .arg(body.to_string())
        .args(["-w", "\n%{http_code}"])
        .arg(format!("https://{addr}{path}"))
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (json, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    let code: u16 = code.trim().parse().unwrap_or_else(|_| {
        panic!(
            "curl gave no status: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (
        code,
        serde_json::from_str(json).unwrap_or(serde_json::Value::Null),
    )
}

/// Revocation rights on the real API server, under the chart's RBAC: revoking by serial
/// needs the `revoke` verb on the PkiMount (a SubjectAccessReview the operator makes with
/// the chart's `subjectaccessreviews create`), granted by binding the chart's
/// `<release>-revoker` ClusterRole; a holder revokes with its key without it.
#[tokio::test]
async fn revoking_by_serial_needs_the_rbac_revoke_right_and_a_holder_uses_its_key() {
    use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
    use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
    use tlsmint_e2e::DeleteOnDrop;

    let env = OperatorEnv::new("op-revoke").await.unwrap();
    let operator = env.start_operator("replica-a").await.unwrap();
    let apps = TestNamespace::create(&env.client, "op-revoke-apps")
        .await
        .unwrap();
    let h = env.hierarchy(&[apps.name()]).await.unwrap();
    let (int, role) = (h.int.clone(), h.role.clone());
    let pp = PostParams::default();
    let sas: Api<ServiceAccount> = Api::namespaced(env.client.clone(), apps.name());
    for sa in ["tenant-a", "tenant-b"] {
        let account = ServiceAccount {
            metadata: kube::api::ObjectMeta {
                name: Some(sa.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        sas.create(&pp, &account).await.unwrap();
    }
    let token = |sa: &'static str| {
        let ns = apps.name().to_owned();
        async move {
            tlsmint_e2e::kubectl([
                "create",
                "token",
                sa,
                "-n",
                &ns,
                "--audience",
                "tlsmint",
                "--duration=1h",
            ])
            .await
            .unwrap()
            .trim()
            .to_owned()
        }
    };
    let (a, b) = (token("tenant-a").await, token("tenant-b").await);
    let maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), env.namespace.name());
    let ca_pem = maps
        .get("tlsmint-api-ca")
        .await
        .unwrap()
        .data
        .unwrap()
        .remove("ca.crt")
        .unwrap();
    let ca = env.dir.join("api-ca.crt");
    std::fs::write(&ca, ca_pem).unwrap();
    let addr = operator.http_api_addr().unwrap();

    let issue = |cn: &'static str| {
        let (ca, a) = (ca.clone(), a.clone());
        let path = format!("/v1/{int}/issue/{role}");
        async move {
            let (code, body) = vault_post(
                &ca,
                addr,
                &path,
                &a,
                &serde_json::json!({"common_name": cn}),
            )
            .await;
            assert_eq!(code, 200, "{body}");
            body["data"].clone()
        }
    };
    let first = issue("first.example.com").await;
    let serial = first["serial_number"].as_str().unwrap().to_owned();
    let revoke_path = format!("/v1/{int}/revoke");

    // Tenant B (also a subject of the role) may not revoke tenant A's certificate by serial.
    let (code, body) = vault_post(
        &ca,
        addr,
        &revoke_path,
        &b,
        &serde_json::json!({"serial_number": serial}),
    )
    .await;
    assert_eq!(code, 403, "{body}");
    let text = body["errors"].to_string();
    assert!(
        text.contains("pkimounts.pki.tlsmint.io") && text.contains("revoke"),
        "{text}"
    );

    // The holder revokes its other certificate with its key, without any right.
    let second = issue("second.example.com").await;
    let (code, body) = vault_post(
        &ca,
        addr,
        &format!("/v1/{int}/revoke-with-key"),
        &a,
        &serde_json::json!({"certificate": second["certificate"], "private_key": second["private_key"]}),
    )
    .await;
    assert_eq!(code, 200, "{body}");

    // Binding the chart's revoker ClusterRole to tenant B gives it the right.
    let binding_name = format!("{}-revoker-b", env.id);
    let _binding = DeleteOnDrop::new::<ClusterRoleBinding>(None, &binding_name);
    let bindings: Api<ClusterRoleBinding> = Api::all(env.client.clone());
    bindings
        .create(
            &pp,
            &ClusterRoleBinding {
                metadata: kube::api::ObjectMeta {
                    name: Some(binding_name.clone()),
                    ..Default::default()
                },
                role_ref: RoleRef {
                    api_group: Some("rbac.authorization.k8s.io".into()),
                    kind: "ClusterRole".into(),
                    name: format!("{}-tlsmint-revoker", env.id),
                },
                subjects: Some(vec![Subject {
                    kind: "ServiceAccount".into(),
                    name: "tenant-b".into(),
                    namespace: Some(apps.name().to_owned()),
                    ..Default::default()
                }]),
            },
        )
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + LONG;
    loop {
        let (code, body) = vault_post(
            &ca,
            addr,
            &revoke_path,
            &b,
            &serde_json::json!({"serial_number": serial}),
        )
        .await;
        if code == 200 {
            break;
        }
        assert_eq!(code, 403, "{body}");
        assert!(
            std::time::Instant::now() < deadline,
            "the binding never took effect: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    // Both revocations are in the mount's records.
    let stored = maps
        .get(&format!("tlsmint-revocations-{int}"))
        .await
        .unwrap()
        .data
        .unwrap_or_default()
        .into_values()
        .collect::<String>();
    assert!(stored.contains(&serial), "{stored}");
    assert!(
        stored.contains(second["serial_number"].as_str().unwrap()),
        "{stored}"
    );
    // The audit line says who revoked by serial.
    let log = std::fs::read_to_string(&operator.log).unwrap();
    assert!(
        log.lines().any(|l| l.contains("certificate revoked")
            && l.contains(&serial)
            && l.contains(&format!("{}/tenant-b", apps.name()))
            && l.contains("rbac")),
        "no audit line for {serial} by tenant-b"
    );
}
