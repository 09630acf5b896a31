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

/// A CA exported by another store as PKCS#12 (`openssl pkcs12 -export`, OpenSSL 3's
/// default encryption) is imported through `spec.importFrom.pkcs12`: a wrong password is
/// reported by entry name (never the password), the right one makes the mount Ready with
/// the same certificate, and a leaf it issues verifies to the imported root.
#[tokio::test]
async fn a_pkcs12_bundle_is_imported_and_signs() {
    let env = OperatorEnv::new("op-p12").await.unwrap();
    let _operator = env.start_operator("replica-a").await.unwrap();
    let mounts: Api<PkiMount> = Api::all(env.client.clone());
    let roles: Api<IssuerRole> = Api::all(env.client.clone());
    let pp = PostParams::default();

    let dir = env.dir.join("p12");
    std::fs::create_dir_all(&dir).unwrap();
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
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "30",
            "-subj",
            "/CN=E2E Legacy Store Root",
            "-extensions",
            "v3_ca",
            "-config",
            "ext.cnf",
        ],
    )
    .await
    .unwrap();
    openssl(
        &dir,
        &[
            "pkcs12",
            "-export",
            "-in",
            "ca.pem",
            "-inkey",
            "ca.key",
            "-out",
            "ca.p12",
            "-passout",
            "pass:right-horse-battery",
        ],
    )
    .await
    .unwrap();
    let bundle = std::fs::read(dir.join("ca.p12")).unwrap();
    let ca_pem = std::fs::read_to_string(dir.join("ca.pem")).unwrap();

    let secret_name = name("legacy-ca");
    let secret = |password: &str| Secret {
        metadata: ObjectMeta {
            name: Some(secret_name.clone()),
            ..ObjectMeta::default()
        },
        data: Some(
            [
                ("keystore.p12".to_owned(), ByteString(bundle.clone())),
                (
                    "password".to_owned(),
                    ByteString(password.as_bytes().to_vec()),
                ),
            ]
            .into(),
        ),
        ..Secret::default()
    };
    env.secrets()
        .create(&pp, &secret("wrong-guess-staple"))
        .await
        .unwrap();
    let root = name("imported");
    let _g = DeleteOnDrop::new::<PkiMount>(None, &root);
    let mut mount = env.root_mount(&root, "E2E Legacy Store Root");
    mount.spec.import_from = Some(tlsmint_api::v1alpha1::ImportFrom {
        secret_ref: SecretReference::new(&secret_name),
        pkcs12: Some(tlsmint_api::v1alpha1::Pkcs12Import::default()),
    });
    mounts.create(&pp, &mount).await.unwrap();
    let refused = wait_for(&mounts, &root, LONG, "ImportFailed", |m| {
        reason(m.status.as_ref().map(|s| &s.conditions))
            .is_some_and(|(s, r, _)| s == "False" && r == "ImportFailed")
    })
    .await
    .unwrap();
    let (_, _, message) = reason(refused.status.as_ref().map(|s| &s.conditions)).unwrap();
    assert!(
        message.contains("keystore.p12 cannot be opened as PKCS#12 with the password in password"),
        "{message}"
    );
    assert!(!message.contains("wrong-guess"), "{message}");

    // The right password: Ready, with the bundle's certificate.
    env.secrets()
        .replace(&secret_name, &pp, &{
            let mut s = secret("right-horse-battery\n");
            s.metadata.resource_version = env
                .secrets()
                .get(&secret_name)
                .await
                .unwrap()
                .metadata
                .resource_version;
            s
        })
        .await
        .unwrap();
    let ready = wait_for(&mounts, &root, LONG, "Ready", |m| {
        reason(m.status.as_ref().map(|s| &s.conditions)).is_some_and(|(s, _, _)| s == "True")
    })
    .await
    .unwrap();
    let published = ready.status.as_ref().unwrap().certificate.clone().unwrap();
    assert_eq!(published.trim(), ca_pem.trim());

    // A leaf from it verifies to the imported root.
    let apps = TestNamespace::create(&env.client, "op-p12-apps")
        .await
        .unwrap();
    let role = name("web");
    let _r = DeleteOnDrop::new::<IssuerRole>(None, &role);
    roles
        .create(&pp, &env.role(&role, &root, "example.com", &[apps.name()]))
        .await
        .unwrap();
    env.create_request(apps.name(), "leaf", &role, &["p12.example.com"])
        .await
        .unwrap();
    let requests: Api<CertificateRequest> = Api::namespaced(env.client.clone(), apps.name());
    wait_for(&requests, "leaf", LONG, "Ready", |cr| {
        reason(cr.status.as_ref().map(|s| &s.conditions)).is_some_and(|(s, _, _)| s == "True")
    })
    .await
    .unwrap();
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), apps.name());
    let leaf = secrets.get("leaf-tls").await.unwrap();
    std::fs::write(dir.join("leaf.pem"), secret_text(&leaf, "tls.crt")).unwrap();
    assert_eq!(secret_text(&leaf, "ca.crt").trim(), ca_pem.trim());
    let verified = openssl(&dir, &["verify", "-CAfile", "ca.pem", "leaf.pem"])
        .await
        .unwrap();
    assert!(verified.contains("leaf.pem: OK"), "{verified}");
}

/// `spec.trustBundle.pkcs12` publishes the roots as a PKCS#12 truststore next to `ca.crt`
/// that Java's keytool reads; changing its password rewrites it, removing it drops it.
#[tokio::test]
async fn the_trust_config_map_carries_a_pkcs12_truststore() {
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    use tlsmint_api::v1alpha1::{TrustBundleSpec, TrustStorePkcs12};
    let env = OperatorEnv::new("op-truststore").await.unwrap();
    let _operator = env.start_operator("replica-a").await.unwrap();
    let mounts: Api<PkiMount> = Api::all(env.client.clone());
    let pp = PostParams::default();
    let apps = TestNamespace::create(&env.client, "op-truststore-apps")
        .await
        .unwrap();
    let label = "e2e.tlsmint.dev/truststore";
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    namespaces
        .patch(
            apps.name(),
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {label: env.id}}})),
        )
        .await
        .unwrap();
    let root = name("root");
    let _g = DeleteOnDrop::new::<PkiMount>(None, &root);
    let mut mount = env.root_mount(&root, "E2E Truststore Root");
    mount.spec.trust_bundle = Some(TrustBundleSpec {
        namespace_selector: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
            match_labels: Some([(label.to_owned(), env.id.clone())].into()),
            ..Default::default()
        },
        pkcs12: Some(TrustStorePkcs12 {
            password: "changeit".into(),
            ..TrustStorePkcs12::default()
        }),
    });
    mounts.create(&pp, &mount).await.unwrap();
    let config_maps: Api<ConfigMap> = Api::namespaced(env.client.clone(), apps.name());
    let cm_name = format!("tlsmint-{root}-ca");
    let has_store = |c: &ConfigMap| {
        c.binary_data
            .as_ref()
            .is_some_and(|b| b.contains_key("truststore.p12"))
    };
    let first = wait_for(&config_maps, &cm_name, LONG, "the truststore", has_store)
        .await
        .unwrap();
    let root_pem = mounts
        .get(&root)
        .await
        .unwrap()
        .status
        .unwrap()
        .certificate
        .unwrap();
    assert_eq!(
        first.data.as_ref().unwrap()["ca.crt"].trim(),
        root_pem.trim()
    );
    let dir = env.dir.join("truststore");
    std::fs::create_dir_all(&dir).unwrap();
    let keytool_list = |c: &ConfigMap, password: &str| {
        let path = dir.join("truststore.p12");
        std::fs::write(&path, &c.binary_data.as_ref().unwrap()["truststore.p12"].0).unwrap();
        let out = std::process::Command::new("keytool")
            .args([
                "-list",
                "-rfc",
                "-storetype",
                "PKCS12",
                "-storepass",
                password,
                "-keystore",
            ])
            .arg(&path)
            .output()
            .expect("keytool (OpenJDK) must be installed");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "keytool: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let listed = keytool_list(&first, "changeit");
    assert_eq!(listed.matches("trustedCertEntry").count(), 1, "{listed}");
    let body = |pem: &str| {
        pem.lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<String>()
    };
    assert!(body(&listed).contains(&body(&root_pem)), "{listed}");

    // A new password: rewritten, readable only with it.
    let digest = |c: &ConfigMap| {
        c.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("pki.tlsmint.io/truststore-digest"))
            .cloned()
    };
    let before = digest(&first).expect("digest annotation");
    mounts
        .patch(
            &root,
            &PatchParams::default(),
            &Patch::Merge(
                serde_json::json!({"spec": {"trustBundle": {"pkcs12": {"password": "s3cond"}}}}),
            ),
        )
        .await
        .unwrap();
    let second = wait_for(
        &config_maps,
        &cm_name,
        LONG,
        "the truststore rewritten",
        |c| digest(c).is_some_and(|d| d != before),
    )
    .await
    .unwrap();
    assert_eq!(
        keytool_list(&second, "s3cond")
            .matches("trustedCertEntry")
            .count(),
        1
    );

    // Without pkcs12 only ca.crt remains.
    mounts
        .patch(
            &root,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"trustBundle": {"pkcs12": null}}})),
        )
        .await
        .unwrap();
    let plain = wait_for(
        &config_maps,
        &cm_name,
        LONG,
        "the truststore removed",
        |c| !has_store(c),
    )
    .await
    .unwrap();
    assert_eq!(
        plain.data.as_ref().unwrap()["ca.crt"].trim(),
        root_pem.trim()
    );
    assert_eq!(digest(&plain), None);
}
