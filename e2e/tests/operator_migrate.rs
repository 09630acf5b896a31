//! `tlsmint-operator migrate from-vault` end to end: a Vault-API server set up with the
//! commands of Vault's PKI tutorial (a root with its key exported, an intermediate signed
//! by it, a role), migrated with the root's key, applied to the real API server, served by
//! the operator; a certificate from the migrated role verifies to the same root as one
//! the source issued.
//!
//! Two sources, the same test: a real Vault server (v1.21.4 in dev mode, built from the Go
//! module proxy by `scripts/install-vault`, cached; `TLSMINT_VAULT_BIN` names another
//! binary), and `tlsmint-operator dev --empty`, which answers the tutorial's calls as Vault
//! does (docs/api.md).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use tlsmint_api::v1alpha1::{CertificateRequest, IssuerRole, PkiMount};
use tlsmint_e2e::operator::{
    OperatorEnv, SELECTOR_LABEL, is_ready, name, openssl, operator_bin, secret_text,
};
use tlsmint_e2e::{DeleteOnDrop, TestNamespace, wait_for};

const LONG: Duration = Duration::from_secs(120);
const TOKEN: &str = "e2e-root-token";

/// Which server plays Vault.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// HashiCorp Vault, `vault server -dev`.
    Vault,
    /// `tlsmint-operator dev --empty`.
    TlsmintDev,
}

/// The Vault binary: `TLSMINT_VAULT_BIN`, else what `scripts/install-vault` prints (cached
/// by scripts/install-deps; built here, with its progress on stderr, if it was not).
fn vault_bin() -> std::path::PathBuf {
    if let Some(bin) = std::env::var_os("TLSMINT_VAULT_BIN") {
        return bin.into();
    }
    let script = tlsmint_e2e::operator::workspace_root().join("scripts/install-vault");
    let out = std::process::Command::new(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("running scripts/install-vault");
    assert!(out.status.success(), "scripts/install-vault failed");
    let path = String::from_utf8(out.stdout).unwrap();
    path.lines()
        .last()
        .expect("install-vault printed no path")
        .trim()
        .into()
}

/// A Vault-API server, killed on drop.
struct Source {
    addr: SocketAddr,
    _child: tokio::process::Child,
}

impl Source {
    async fn start(kind: Kind, dir: &Path) -> Source {
        let port = |_: ()| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
        };
        let (http, grpc) = (port(()), port(()));
        let log = std::fs::File::create(dir.join("source.log")).unwrap();
        let mut command = match kind {
            Kind::TlsmintDev => {
                let mut c = tokio::process::Command::new(operator_bin().unwrap());
                c.args(["dev", "--empty", "--dev-root-token-id", TOKEN])
                    .arg("--http-addr")
                    .arg(http.to_string())
                    .arg("--grpc-addr")
                    .arg(grpc.to_string());
                c
            }
            Kind::Vault => {
                let mut c = tokio::process::Command::new(vault_bin());
                c.args(["server", "-dev"])
                    .arg(format!("-dev-root-token-id={TOKEN}"))
                    .arg(format!("-dev-listen-address={http}"))
                    .env("HOME", dir)
                    .env_remove("VAULT_ADDR")
                    .env_remove("VAULT_TOKEN");
                c
            }
        };
        let child = command
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(http).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the source did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Source {
            addr: http,
            _child: child,
        }
    }

    /// `POST /v1/<path>` with `body`; the answer's JSON (panics on a non-2xx status).
    async fn write(&self, path: &str, body: Value) -> Value {
        let out = tokio::process::Command::new("curl")
            .args(["-sS", "--max-time", "30", "-X", "POST"])
            .arg("-H")
            .arg(format!("X-Vault-Token: {TOKEN}"))
            .arg("--data-binary")
            .arg(body.to_string())
            .args(["-w", "\n%{http_code}"])
            .arg(format!("http://{}/v1/{path}", self.addr))
            .output()
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (json, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        assert!(code.starts_with('2'), "POST {path}: {code} {json}");
        if json.trim().is_empty() {
            return Value::Null;
        }
        serde_json::from_str(json).unwrap()
    }
}

fn data<'a>(answer: &'a Value, key: &str) -> &'a str {
    answer["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("no data.{key} in {answer}"))
}

#[tokio::test]
async fn a_hierarchy_migrated_from_vault_issues_under_the_same_root() {
    migrated_hierarchy_issues_under_the_same_root(Kind::Vault, "op-mig-vault").await;
}

#[tokio::test]
async fn a_hierarchy_migrated_from_tlsmint_dev_issues_under_the_same_root() {
    migrated_hierarchy_issues_under_the_same_root(Kind::TlsmintDev, "op-mig-dev").await;
}

async fn migrated_hierarchy_issues_under_the_same_root(kind: Kind, prefix: &str) {
    let env = OperatorEnv::new(prefix).await.unwrap();
    let _operator = env.start_operator("replica-a").await.unwrap();
    let apps = TestNamespace::create(&env.client, &format!("{prefix}-apps"))
        .await
        .unwrap();
    let dir = env.dir.join("migrate");
    std::fs::create_dir_all(&dir).unwrap();
    let source = Source::start(kind, &dir).await;
    // IssuerRoles are cluster-wide: a name of its own per test.
    let role = name("web");

    // Vault's PKI tutorial, command for command (as HTTP calls).
    let root = name("pki");
    let int = format!("{root}_int");
    source
        .write(&format!("sys/mounts/{root}"), json!({"type": "pki"}))
        .await;
    source
        .write(
            &format!("sys/mounts/{root}/tune"),
            json!({"max_lease_ttl": "87600h"}),
        )
        .await;
    let generated = source
        .write(
            &format!("{root}/root/generate/exported"),
            json!({"common_name": "example.com", "issuer_name": "root-2023", "ttl": "87600h"}),
        )
        .await;
    std::fs::write(dir.join("root.key"), data(&generated, "private_key")).unwrap();
    let root_pem = data(&generated, "certificate").to_owned();
    std::fs::write(dir.join("root.pem"), &root_pem).unwrap();
    source
        .write(
            &format!("{root}/config/urls"),
            json!({
                "issuing_certificates": format!("http://127.0.0.1:8200/v1/{root}/ca"),
                "crl_distribution_points": format!("http://127.0.0.1:8200/v1/{root}/crl"),
            }),
        )
        .await;
    source
        .write(&format!("sys/mounts/{int}"), json!({"type": "pki"}))
        .await;
    source
        .write(
            &format!("sys/mounts/{int}/tune"),
            json!({"max_lease_ttl": "43800h"}),
        )
        .await;
    let csr = source
        .write(
            &format!("{int}/intermediate/generate/internal"),
            json!({"common_name": "example.com Intermediate Authority"}),
        )
        .await;
    let signed = source
        .write(
            &format!("{root}/root/sign-intermediate"),
            json!({"csr": data(&csr, "csr"), "format": "pem_bundle", "ttl": "43800h"}),
        )
        .await;
    source
        .write(
            &format!("{int}/intermediate/set-signed"),
            json!({"certificate": data(&signed, "certificate")}),
        )
        .await;
    source
        .write(
            &format!("{int}/roles/{role}"),
            json!({"allowed_domains": "example.com", "allow_subdomains": true, "max_ttl": "720h"}),
        )
        .await;
    let issued = source
        .write(
            &format!("{int}/issue/{role}"),
            json!({"common_name": "before.example.com", "ttl": "24h"}),
        )
        .await;
    std::fs::write(dir.join("source-leaf.pem"), data(&issued, "certificate")).unwrap();
    std::fs::write(dir.join("source-int.pem"), data(&issued, "issuing_ca")).unwrap();

    // Migrate.
    let out = tokio::process::Command::new(operator_bin().unwrap())
        .args(["migrate", "from-vault", "--address"])
        .arg(format!("http://{}", source.addr))
        .args(["--token", TOKEN, "--key"])
        .arg(format!("{root}={}", dir.join("root.key").display()))
        .arg("--allow-subject")
        .arg(format!("{}/*", apps.name()))
        .arg("--namespace")
        .arg(env.namespace.name())
        .arg("-o")
        .arg(dir.join("migrated.yaml"))
        .env_remove("VAULT_ADDR")
        .env_remove("VAULT_TOKEN")
        .output()
        .await
        .unwrap();
    let report = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "migrate failed: {report}");
    assert!(
        report.contains("migrate: 2 PkiMount(s), 1 IssuerRole(s), 1 import Secret(s)"),
        "{report}"
    );
    assert!(
        report.contains("a NEW intermediate, signed by the imported root"),
        "{report}"
    );
    assert!(!report.contains("PRIVATE KEY"), "{report}");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(dir.join("migrated.yaml"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o077,
        0,
        "the YAML holds a CA key: only its owner may read it"
    );

    // Apply, in this test operator's view (its label).
    let yaml = std::fs::read_to_string(dir.join("migrated.yaml")).unwrap();
    let pp = PostParams::default();
    let mounts: Api<PkiMount> = Api::all(env.client.clone());
    let roles: Api<IssuerRole> = Api::all(env.client.clone());
    let mut guards = Vec::new();
    let mut mount_names = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(&yaml) {
        let mut value: Value = serde::Deserialize::deserialize(doc).unwrap();
        let labels = value["metadata"]
            .as_object_mut()
            .unwrap()
            .entry("labels")
            .or_insert_with(|| json!({}));
        labels[SELECTOR_LABEL] = json!(env.id);
        let object_name = value["metadata"]["name"].as_str().unwrap().to_owned();
        match value["kind"].as_str().unwrap() {
            "Secret" => {
                let secret: Secret = serde_json::from_value(value).unwrap();
                env.secrets().create(&pp, &secret).await.unwrap();
            }
            "PkiMount" => {
                guards.push(DeleteOnDrop::new::<PkiMount>(None, &object_name));
                mount_names.push(object_name);
                mounts
                    .create(&pp, &serde_json::from_value(value).unwrap())
                    .await
                    .unwrap();
            }
            "IssuerRole" => {
                guards.push(DeleteOnDrop::new::<IssuerRole>(None, &object_name));
                roles
                    .create(&pp, &serde_json::from_value(value).unwrap())
                    .await
                    .unwrap();
            }
            other => panic!("unexpected kind {other}"),
        }
    }
    let int_name = format!("{root}-int");
    assert_eq!(mount_names, vec![root.clone(), int_name.clone()]);
    for m in &mount_names {
        wait_for(&mounts, m, LONG, "the migrated mount Ready", |m| {
            is_ready(m.status.as_ref().map(|s| &s.conditions))
        })
        .await
        .unwrap();
    }
    let imported = mounts.get(&root).await.unwrap().status.unwrap();
    assert_eq!(
        imported.certificate.unwrap().trim(),
        root_pem.trim(),
        "the same root"
    );
    let int_status = mounts.get(&int_name).await.unwrap();
    assert_eq!(int_status.spec.path.as_deref(), Some(int.as_str()));
    wait_for(&roles, &role, LONG, "the migrated role Ready", |r| {
        is_ready(r.status.as_ref().map(|s| &s.conditions))
    })
    .await
    .unwrap();

    // A certificate from the migrated role verifies to the same root as the source's.
    // With a common name: Vault's roles default to require_cn=true, and the migrated
    // IssuerRole keeps it (requireCommonName), so a request without one is Denied.
    let requests: Api<CertificateRequest> = Api::namespaced(env.client.clone(), apps.name());
    let mut request = env.request(
        apps.name(),
        "after",
        &role,
        "after-tls",
        &["after.example.com"],
    );
    request.spec.common_name = Some("after.example.com".into());
    requests.create(&pp, &request).await.unwrap();
    wait_for(&requests, "after", LONG, "the request Ready", |cr| {
        is_ready(cr.status.as_ref().map(|s| &s.conditions))
    })
    .await
    .unwrap();
    let secrets: Api<Secret> = Api::namespaced(env.client.clone(), apps.name());
    let leaf = secrets.get("after-tls").await.unwrap();
    std::fs::write(dir.join("leaf.pem"), secret_text(&leaf, "tls.crt")).unwrap();
    assert_eq!(secret_text(&leaf, "ca.crt").trim(), root_pem.trim());
    let ours = openssl(
        &dir,
        &[
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "leaf.pem",
            "leaf.pem",
        ],
    )
    .await
    .unwrap();
    assert!(ours.contains("leaf.pem: OK"), "{ours}");
    let theirs = openssl(
        &dir,
        &[
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "source-int.pem",
            "source-leaf.pem",
        ],
    )
    .await
    .unwrap();
    assert!(theirs.contains("source-leaf.pem: OK"), "{theirs}");
    drop(guards);
}
