//! PkiMount lifecycles on the real API server: an intermediate signed outside (status.csr
//! signed with openssl; a wrong certificate refused), and a CA whose key Secret is deleted
//! (not Ready, nothing issued, no new CA). The operator runs under the chart's RBAC.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use tlsmint_api::v1alpha1::{CertificateRequest, IssuerRole, PkiMount, SecretReference};
use tlsmint_e2e::operator::{OperatorEnv, name, openssl, ready_of, secret_text};
use tlsmint_e2e::{DeleteOnDrop, TestNamespace, wait_for};

const LONG: Duration = Duration::from_secs(90);

fn reason(
    conditions: Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>,
) -> Option<(String, String, String)> {
    conditions.and_then(|c| ready_of(c))
}

fn tls_secret(name: &str, cert: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(
            [
                ("tls.crt".to_owned(), ByteString(cert.as_bytes().to_vec())),
                ("tls.key".to_owned(), ByteString(Vec::new())),
            ]
            .into(),
        ),
        ..Secret::default()
    }
}

const CA_EXTENSIONS: &str = "[v3_ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n";

#[tokio::test]
async fn external_intermediate_publishes_a_csr_and_accepts_only_its_own_certificate() {
    let env = OperatorEnv::new("op-ext").await.unwrap();
    let _operator = env.start_operator("replica-a").await.unwrap();
    let mounts: Api<PkiMount> = Api::all(env.client.clone());
    let pp = PostParams::default();
    let ext = name("ext");
    let _g = DeleteOnDrop::new::<PkiMount>(None, &ext);
    mounts
        .create(
            &pp,
            &env.intermediate_mount(&ext, "E2E External Intermediate", None),
        )
        .await
        .unwrap();
    let waiting = wait_for(&mounts, &ext, LONG, "status.csr", |m| {
        m.status.as_ref().is_some_and(|s| s.csr.is_some())
    })
    .await
    .unwrap();
    let (status, why, _) = reason(waiting.status.as_ref().map(|s| &s.conditions)).unwrap();
    assert_eq!(
        (status.as_str(), why.as_str()),
        ("False", "WaitingForSignedCertificate")
    );

    // An outside root, made with openssl, signs the CSR.
    let dir = env.dir.join("ext");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("int.csr"), waiting.status.unwrap().csr.unwrap()).unwrap();
    std::fs::write(dir.join("ext.cnf"), CA_EXTENSIONS).unwrap();
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "root.key",
            "-out",
            "root.pem",
            "-subj",
            "/CN=Outside Root",
            "-days",
            "30",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    )
    .await
    .unwrap();
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "int.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-out",
            "int.pem",
            "-days",
            "20",
            "-extfile",
            "ext.cnf",
            "-extensions",
            "v3_ca",
        ],
    )
    .await
    .unwrap();
    // ...and a certificate for some other key.
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
            "other.key",
            "-out",
            "other.csr",
            "-subj",
            "/CN=E2E External Intermediate",
        ],
    )
    .await
    .unwrap();
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "other.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-out",
            "other.pem",
            "-days",
            "20",
            "-extfile",
            "ext.cnf",
            "-extensions",
            "v3_ca",
        ],
    )
    .await
    .unwrap();
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();

    // The wrong certificate is refused.
    let signed_name = format!("{ext}-signed");
    env.secrets()
        .create(
            &pp,
            &tls_secret(
                &signed_name,
                &format!("{}{}", read("other.pem"), read("root.pem")),
            ),
        )
        .await
        .unwrap();
    let patch = serde_json::json!({"spec": {"signedCertificateSecretRef": SecretReference::new(&signed_name)}});
    mounts
        .patch(&ext, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let refused = wait_for(&mounts, &ext, LONG, "InvalidSignedCertificate", |m| {
        reason(m.status.as_ref().map(|s| &s.conditions))
            .is_some_and(|(_, r, _)| r == "InvalidSignedCertificate")
    })
    .await
    .unwrap();
    let (_, _, message) = reason(refused.status.as_ref().map(|s| &s.conditions)).unwrap();
    assert!(message.contains("does not match"), "{message}");
    assert!(refused.status.unwrap().certificate.is_none());

    // The right one completes the mount.
    let fixed = serde_json::json!({"data": {"tls.crt": ByteString(format!("{}{}", read("int.pem"), read("root.pem")).into_bytes())}});
    env.secrets()
        .patch(&signed_name, &PatchParams::default(), &Patch::Merge(&fixed))
        .await
        .unwrap();
    let ready = wait_for(&mounts, &ext, LONG, "Ready", |m| {
        reason(m.status.as_ref().map(|s| &s.conditions)).is_some_and(|(s, _, _)| s == "True")
    })
    .await
    .unwrap();
    let status = ready.status.unwrap();
    assert_eq!(status.ca_chain.len(), 2);
    assert!(status.csr.is_none());

    // It issues, and the chain verifies to the outside root.
    let apps = TestNamespace::create(&env.client, "op-ext-apps")
        .await
        .unwrap();
    let role = name("ext-web");
    let _r = DeleteOnDrop::new::<IssuerRole>(None, &role);
    Api::<IssuerRole>::all(env.client.clone())
        .create(&pp, &env.role(&role, &ext, "example.org", &[apps.name()]))
        .await
        .unwrap();
    let requests: Api<CertificateRequest> = Api::namespaced(env.client.clone(), apps.name());
    env.create_request(apps.name(), "svc", &role, &["svc.example.org"])
        .await
        .unwrap();
    wait_for(&requests, "svc", LONG, "Ready", |cr| {
        reason(cr.status.as_ref().map(|s| &s.conditions)).is_some_and(|(s, _, _)| s == "True")
    })
    .await
    .unwrap();
    let secret = Api::<Secret>::namespaced(env.client.clone(), apps.name())
        .get("svc-tls")
        .await
        .unwrap();
    std::fs::write(dir.join("bundle.pem"), secret_text(&secret, "tls.crt")).unwrap();
    std::fs::write(dir.join("ca.crt"), secret_text(&secret, "ca.crt")).unwrap();
    assert_eq!(
        read("ca.crt").trim(),
        read("root.pem").trim(),
        "ca.crt is the outside root"
    );
    let out = openssl(
        &dir,
        &[
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "int.pem",
            "bundle.pem",
        ],
    )
    .await
    .unwrap();
    assert!(out.contains("bundle.pem: OK"), "{out}");
}

#[tokio::test]
async fn a_deleted_key_secret_stops_issuance_and_never_makes_a_new_ca() {
    let env = OperatorEnv::new("op-keyloss").await.unwrap();
    let _operator = env.start_operator("replica-a").await.unwrap();
    let mounts: Api<PkiMount> = Api::all(env.client.clone());
    let (apps, ca) = env
        .apps_with_ca("op-keyloss-apps", "E2E Root CA")
        .await
        .unwrap();
    let (root, role) = (ca.root.clone(), ca.role.clone());
    let ready = mounts.get(&root).await.unwrap().status.unwrap();
    let key_secret = ready.key_secret_name.clone().unwrap();
    let requests: Api<CertificateRequest> = Api::namespaced(env.client.clone(), apps.name());
    env.create_request(apps.name(), "before", &role, &["a.example.com"])
        .await
        .unwrap();
    wait_for(&requests, "before", LONG, "Ready", |cr| {
        reason(cr.status.as_ref().map(|s| &s.conditions)).is_some_and(|(s, _, _)| s == "True")
    })
    .await
    .unwrap();

    env.secrets()
        .delete(&key_secret, &DeleteParams::default())
        .await
        .unwrap();
    let missing = wait_for(&mounts, &root, LONG, "KeyMissing", |m| {
        reason(m.status.as_ref().map(|s| &s.conditions))
            .is_some_and(|(s, r, _)| s == "False" && r == "KeyMissing")
    })
    .await
    .unwrap();
    let (_, _, message) = reason(missing.status.as_ref().map(|s| &s.conditions)).unwrap();
    assert!(message.contains(&key_secret), "{message}");

    // Nothing new is issued under it.
    env.create_request(apps.name(), "after", &role, &["b.example.com"])
        .await
        .unwrap();
    let blocked = wait_for(&requests, "after", LONG, "not Ready", |cr| {
        reason(cr.status.as_ref().map(|s| &s.conditions)).is_some_and(|(s, _, _)| s == "False")
    })
    .await
    .unwrap();
    let (_, why, _) = reason(blocked.status.as_ref().map(|s| &s.conditions)).unwrap();
    assert_eq!(why, "MountNotReady");
    tokio::time::sleep(Duration::from_secs(8)).await;
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), apps.name());
    assert!(
        secrets.get_opt("after-tls").await.unwrap().is_none(),
        "nothing issued"
    );
    // No new CA: no key Secret came back, and the published CA is unchanged.
    assert!(
        env.secrets().get_opt(&key_secret).await.unwrap().is_none(),
        "no new key Secret"
    );
    let later = mounts.get(&root).await.unwrap().status.unwrap();
    assert_eq!(later.serial_number, ready.serial_number);
    assert_eq!(later.certificate, ready.certificate);
    let (s, r, _) = reason(Some(&later.conditions)).unwrap();
    assert_eq!((s.as_str(), r.as_str()), ("False", "KeyMissing"));
}
