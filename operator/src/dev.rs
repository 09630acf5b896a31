//! `tlsmint-operator dev`: the whole issuance API on one machine, in memory,
//! with no cluster (the analogue of `vault server -dev`).
//!
//! HTTP (Vault-compatible) on 127.0.0.1:8200 without TLS, gRPC on
//! 127.0.0.1:8201, a printed `Root Token: <token>`. Mounts and roles come from
//! PkiMount/IssuerRole YAML files in the CRD format (`--config DIR`,
//! multi-document files allowed), or the classic Vault tutorial set: mount
//! `pki` (Root, "Example Root CA"), mount `pki-int` at path `pki_int`
//! (Intermediate signed by `pki`) and role `web-server` on it (subdomains of
//! example.com, maxTTL 720h, any subject). How tokens work here is described
//! in `api::auth` (the root token, or any ServiceAccount JWT taken at its word).
//!
//! Owns: dev flags, loading the YAML, building the CAs, the banner. Must not:
//! listen beyond loopback by default, or persist anything.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use rand::RngCore;
use serde::Deserialize;
use time::OffsetDateTime;
use tlsmint_api::v1alpha1::{
    IssuerRole, IssuerRoleSpec, MountType, NameReference, PkiMount, PkiMountSpec, RoleSubject,
};
use tlsmint_ca::{CertificateAuthority, PendingIntermediate};
use tlsmint_runtime::cli::LogFormat;

use crate::api::auth::DevAuthenticator;
use crate::api::{self, ApiArgs, Services};
use crate::registry::{MountEntry, MountStatus, NotReady, Registry, RoleEntry};
use crate::revocation::{MemoryStore, Revocations};
use tlsmint_api::conditions::reason;

/// Flags of `tlsmint-operator dev`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// Directory of PkiMount and IssuerRole YAML files (CRD format; several
    /// documents per file allowed). Without it, the Vault tutorial setup is
    /// used: mounts `pki` and `pki-int` (path `pki_int`), role `web-server`.
    #[arg(long, env = "TLSMINT_DEV_CONFIG", conflicts_with = "empty")]
    pub config: Option<PathBuf>,

    /// Start with no mounts and no roles, as `vault server -dev` does, and set
    /// them up through the Vault API: `vault secrets enable pki`,
    /// `vault write pki/root/generate/internal ...`, `vault write pki/roles/<name> ...`.
    #[arg(long, env = "TLSMINT_DEV_EMPTY")]
    pub empty: bool,

    /// The root token to accept and print, as with `vault server -dev
    /// -dev-root-token-id` [default: random].
    #[arg(long, env = "TLSMINT_DEV_ROOT_TOKEN_ID")]
    pub dev_root_token_id: Option<String>,

    /// Namespace of the identity the root token stands for (fills
    /// `{{namespace}}` in role templates).
    #[arg(long, env = "TLSMINT_DEV_NAMESPACE", default_value = "default")]
    pub dev_namespace: String,

    /// ServiceAccount of the identity the root token stands for (fills
    /// `{{serviceAccount}}`).
    #[arg(long, env = "TLSMINT_DEV_SERVICE_ACCOUNT", default_value = "default")]
    pub dev_service_account: String,

    /// Log filter in tracing's EnvFilter syntax.
    #[arg(long = "log-level", env = "TLSMINT_LOG", default_value = "info")]
    pub log_filter: String,

    /// Log line format (audit lines use the `tlsmint::audit` target).
    #[arg(long, env = "TLSMINT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Plain)]
    pub log_format: LogFormat,

    /// Serve both APIs over TLS with a certificate for localhost/127.0.0.1
    /// from an in-memory dev CA (written to --tls-ca-file for clients).
    #[arg(long, env = "TLSMINT_DEV_TLS")]
    pub tls: bool,

    /// Where --tls writes the dev CA certificate (PEM) that clients must trust.
    #[arg(
        long,
        env = "TLSMINT_DEV_TLS_CA_FILE",
        default_value = "tlsmint-dev-ca.pem"
    )]
    pub tls_ca_file: PathBuf,

    /// Allow --http-addr/--grpc-addr to name a non-loopback address. Dev mode
    /// trusts unsigned tokens and hands out a root token, so anyone who can
    /// reach the port can issue: without this flag such an address is refused,
    /// and with it a warning is printed.
    #[arg(long, env = "TLSMINT_DEV_LISTEN_ANY")]
    pub dev_listen_any: bool,

    /// Address of an admin server (`/healthz`, `/readyz`, `/metrics`) on its own port,
    /// as in `run` mode; none by default in dev mode.
    #[arg(long, env = "TLSMINT_ADMIN_ADDR")]
    pub admin_addr: Option<std::net::SocketAddr>,

    /// API flags (addresses default to 127.0.0.1 in dev mode).
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Runs dev mode until interrupted.
pub async fn run(args: DevArgs) -> anyhow::Result<()> {
    tlsmint_runtime::telemetry::init(&args.log_filter, args.log_format)?;
    for warning in check_listen(&args.api, args.dev_listen_any)? {
        eprintln!("WARNING: {warning}");
        tracing::warn!("{warning}");
    }
    let (mounts, roles) = match &args.config {
        Some(dir) => load_dir(dir)?,
        None if args.empty => (Vec::new(), Vec::new()),
        None => default_setup(),
    };
    let registry = Arc::new(Registry::new());
    let mut built = tokio::task::spawn_blocking(move || build_mounts(&mounts))
        .await
        .context("building the dev CAs")??;
    built.sort_by(|a, b| a.name.cmp(&b.name));
    let summary: Vec<String> = built
        .iter()
        .map(|m| match &m.status {
            MountStatus::Ready(_) => format!("mount {} at /v1/{}/ (ready)", m.name, m.path),
            MountStatus::NotReady(why) => {
                format!("mount {} at /v1/{}/ (not ready: {why})", m.name, m.path)
            }
        })
        .collect();
    for mount in built {
        registry.put_mount(mount)?;
    }
    let mut role_lines = Vec::new();
    for role in &roles {
        let name = role.metadata.name.clone().unwrap_or_default();
        let entry = RoleEntry::from_spec(&name, &role.spec);
        let ready = matches!(entry.status, crate::registry::RoleStatus::Ready(_));
        role_lines.push(match &entry.status {
            crate::registry::RoleStatus::Ready(_) => {
                format!("role {name} on mount {}", entry.mount)
            }
            crate::registry::RoleStatus::Invalid(why) => format!("role {name} (invalid: {why})"),
        });
        registry.put_role(entry);
        // A valid role on a missing or not-ready mount cannot issue: say so.
        if ready
            && let Err(why) = registry.resolve(&name)
            && let Some(line) = role_lines.last_mut()
        {
            line.push_str(&format!(" (not ready: {why})"));
        }
    }

    let root_token = args.dev_root_token_id.clone().unwrap_or_else(random_token);
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let listeners = api::bind(&args.api, loopback)?;
    let (http, grpc) = listeners.addrs();
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    let mut prometheus = tlsmint_runtime::prometheus_client::registry::Registry::default();
    let services = Services {
        registry,
        authenticator: Arc::new(DevAuthenticator::new(
            &root_token,
            &args.dev_namespace,
            &args.dev_service_account,
        )),
        rights: Arc::new(api::rights::DevRights),
        revocations: Revocations::new(
            Arc::new(MemoryStore::default()),
            args.api.revocation_settings(),
        ),
        token_key: key,
        tls: if args.tls {
            Some(dev_tls(&args.tls_ca_file)?)
        } else {
            None
        },
        cpu: tlsmint_runtime::cpu::CpuPool::per_core(),
        metrics: Arc::new(api::metrics::ApiMetrics::register(&mut prometheus)),
        dev_admin: true,
    };
    let shutdown = tlsmint_runtime::shutdown::on_signal();
    if let Some(addr) = args.admin_addr {
        let (bound, _task) = tlsmint_runtime::admin::serve(
            addr,
            tlsmint_runtime::admin::AdminState {
                registry: Arc::new(prometheus),
                readiness: tlsmint_runtime::health::Readiness::new(),
                reuse_port: false,
            },
            shutdown.clone(),
        )
        .await?;
        println!("Admin:      http://{bound}   (/healthz, /readyz, /metrics)");
    }
    let scheme = if args.tls { "https" } else { "http" };
    let limits = limits_line(args.api.rate_limit, args.api.rate_burst);
    print_banner(
        scheme,
        &root_token,
        http,
        grpc,
        &summary,
        &role_lines,
        &limits,
    );
    if args.tls {
        println!("TLS CA file: {}", args.tls_ca_file.display());
    }
    api::serve(listeners, services, &args.api, shutdown).await?;
    Ok(())
}

/// Refuses a non-loopback API address unless `listen_any`; with it, returns
/// one warning per such address.
fn check_listen(api: &ApiArgs, listen_any: bool) -> anyhow::Result<Vec<String>> {
    let mut warnings = Vec::new();
    for (flag, addr) in [
        ("--http-addr", api.http_addr),
        ("--grpc-addr", api.grpc_addr),
    ] {
        let Some(addr) = addr.filter(|a| !a.ip().is_loopback()) else {
            continue;
        };
        if !listen_any {
            anyhow::bail!(
                "{flag} {addr} is not a loopback address: dev mode accepts unsigned tokens and a root token, \
                 so it listens only on loopback unless --dev-listen-any is given"
            );
        }
        warnings.push(format!(
            "dev mode listens on {addr} ({flag}): anyone who can reach it can issue certificates with unsigned tokens"
        ));
    }
    Ok(warnings)
}

fn random_token() -> String {
    let mut bytes = [0u8; 12];
    rand::rng().fill_bytes(&mut bytes);
    format!("tlsm-dev-{}", hex::encode(bytes))
}

/// A serving certificate for localhost from a fresh in-memory CA, whose
/// certificate is written to `ca_file`.
fn dev_tls(ca_file: &Path) -> anyhow::Result<Arc<api::tls::ServingCert>> {
    let cfg = tlsmint_ca::CaConfig {
        name: "tlsmint-dev-api".into(),
        subject: tlsmint_ca::Subject::with_common_name("tlsmint dev API CA"),
        key: tlsmint_ca::KeySpec::EcdsaP256,
        ttl: std::time::Duration::from_secs(7 * 24 * 3600),
    };
    let ca = CertificateAuthority::generate_root(&cfg, OffsetDateTime::now_utc())?;
    std::fs::write(ca_file, ca.certificate_pem())
        .with_context(|| format!("writing the dev TLS CA to {}", ca_file.display()))?;
    let serving = api::tls::ServingCert::new();
    let names = ["localhost".to_owned(), "127.0.0.1".to_owned()];
    serving.issue_from(&ca, &names, std::time::Duration::from_secs(24 * 3600))?;
    Ok(serving)
}

fn print_banner(
    scheme: &str,
    token: &str,
    http: Option<std::net::SocketAddr>,
    grpc: Option<std::net::SocketAddr>,
    mounts: &[String],
    roles: &[String],
    limits: &str,
) {
    let http = http.map(|a| a.to_string()).unwrap_or_default();
    let grpc = grpc.map(|a| a.to_string()).unwrap_or_default();
    let mut text = String::from(
        "==> tlsmint dev server started! Everything is in memory; do not use it in production.\n\n",
    );
    text.push_str(&format!(
        "    Vault API:  {scheme}://{http}   (export VAULT_ADDR='{scheme}://{http}')\n"
    ));
    text.push_str(&format!(
        "    gRPC API:   {scheme}://{grpc}   (tlsmint.v1.Issuer)\n\n"
    ));
    if mounts.is_empty() {
        text.push_str("    No mounts yet (--empty): set them up through the Vault API, as with vault server -dev\n");
    }
    for line in mounts.iter().chain(roles) {
        text.push_str(&format!("    {line}\n"));
    }
    text.push_str(&format!("\n    {limits}\n"));
    text.push_str(&format!("\nRoot Token: {token}\n\n"));
    if mounts.is_empty() {
        text.push_str(&format!(
            "Try: export VAULT_ADDR='{scheme}://{http}' VAULT_TOKEN='{token}'; \
             vault secrets enable pki; vault write pki/root/generate/internal common_name=example.com ttl=87600h\n"
        ));
    } else {
        text.push_str(&format!(
            "Try: curl -s -H 'X-Vault-Token: {token}' -d '{{\"common_name\":\"api.example.com\",\"ttl\":\"24h\"}}' {scheme}://{http}/v1/pki_int/issue/web-server\n"
        ));
    }
    print!("{text}");
}

/// Which rate limits apply, for the banner: none on the root token (as in Vault),
/// `--rate-limit` per ServiceAccount on every other caller.
fn limits_line(rate: f64, burst: u32) -> String {
    if rate <= 0.0 {
        "Limits:     none (--rate-limit 0)".to_owned()
    } else {
        format!(
            "Limits:     root token unlimited; each ServiceAccount {rate}/s, bursts of {burst} (--rate-limit, --rate-burst)"
        )
    }
}

/// The Vault tutorial setup.
pub(crate) fn default_setup() -> (Vec<PkiMount>, Vec<IssuerRole>) {
    let mount = |name: &str, spec: PkiMountSpec| PkiMount::new(name, spec);
    let spec = |mount_type, cn: &str, parent: Option<&str>, path: Option<&str>| PkiMountSpec {
        parent_ref: parent.map(NameReference::new),
        path: path.map(str::to_owned),
        ..PkiMountSpec::new(mount_type, cn)
    };
    let mut role = IssuerRoleSpec::new("pki-int");
    role.subjects = vec![RoleSubject::new("*", "*")];
    role.allowed_domains = vec!["example.com".into()];
    role.allow_subdomains = true;
    role.max_ttl = tlsmint_api::Duration::from_hours(720);
    (
        vec![
            mount("pki", spec(MountType::Root, "Example Root CA", None, None)),
            mount(
                "pki-int",
                spec(
                    MountType::Intermediate,
                    "Example Intermediate CA",
                    Some("pki"),
                    Some("pki_int"),
                ),
            ),
        ],
        vec![IssuerRole::new("web-server", role)],
    )
}

#[derive(Deserialize)]
struct TypeMeta {
    #[serde(rename = "apiVersion", default)]
    api_version: String,
    #[serde(default)]
    kind: String,
}

/// Deserializes one object, refusing any field the type does not know (a
/// typo such as `allowedDomain` would otherwise give a role that allows
/// nothing). The CRD types stay lenient, as the API server's pruning is their
/// schema; only this loader is strict. Fields under a flattened struct (the
/// subject's distinguished-name fields) are not seen by this check.
fn strict<T: serde::de::DeserializeOwned>(value: serde_yaml_ng::Value) -> anyhow::Result<T> {
    let name = value["metadata"]["name"]
        .as_str()
        .unwrap_or("<unnamed>")
        .to_owned();
    let mut unknown = Vec::new();
    let parsed: T = serde_ignored::deserialize(value, |path| {
        let path = path.to_string();
        // The type meta is read by the loader, not the object's type.
        if path != "apiVersion" && path != "kind" {
            unknown.push(path);
        }
    })
    .with_context(|| format!("object {name:?}"))?;
    if !unknown.is_empty() {
        bail!("object {name:?}: unknown field {}", unknown.join(", "));
    }
    Ok(parsed)
}

/// Reads every `*.yaml`/`*.yml` file of `dir` (sorted), keeping PkiMounts and IssuerRoles.
fn load_dir(dir: &Path) -> anyhow::Result<(Vec<PkiMount>, Vec<IssuerRole>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading --config directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    let (mut mounts, mut roles) = (Vec::new(), Vec::new());
    for file in &files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        for (i, doc) in serde_yaml_ng::Deserializer::from_str(&text).enumerate() {
            let value = serde_yaml_ng::Value::deserialize(doc)
                .with_context(|| format!("{}: document {} is not YAML", file.display(), i + 1))?;
            if value.is_null() {
                continue;
            }
            let meta: TypeMeta = serde_yaml_ng::from_value(value.clone())
                .with_context(|| format!("{}: document {}", file.display(), i + 1))?;
            let at = || format!("{}: document {} ({})", file.display(), i + 1, meta.kind);
            if meta.api_version != tlsmint_api::v1alpha1::API_VERSION {
                tracing::warn!(file = %file.display(), kind = %meta.kind, "skipping a document that is not pki.tlsmint.io/v1alpha1");
                continue;
            }
            match meta.kind.as_str() {
                "PkiMount" => mounts.push(strict::<PkiMount>(value).with_context(at)?),
                "IssuerRole" => roles.push(strict::<IssuerRole>(value).with_context(at)?),
                other => {
                    tracing::warn!(file = %file.display(), kind = other, "dev mode uses only PkiMount and IssuerRole; skipped")
                }
            }
        }
    }
    if mounts.is_empty() {
        bail!(
            "no PkiMount found in {} (*.yaml, *.yml); to start with nothing and set mounts up through the Vault API, use --empty",
            dir.display()
        );
    }
    Ok((mounts, roles))
}

/// Generates every mount's CA, parents before children. Blocking (RSA keys).
fn build_mounts(mounts: &[PkiMount]) -> anyhow::Result<Vec<MountEntry>> {
    let by_name: HashMap<String, &PkiMount> = mounts
        .iter()
        .map(|m| (m.metadata.name.clone().unwrap_or_default(), m))
        .collect();
    let mut cas: HashMap<String, Result<Arc<CertificateAuthority>, NotReady>> = HashMap::new();
    let mut out = Vec::new();
    let now = OffsetDateTime::now_utc();
    for name in by_name.keys() {
        build_one(name, &by_name, &mut cas, now, 0);
    }
    for (name, mount) in &by_name {
        let settings = crate::convert::mount(name, &mount.spec);
        let status = match cas.get(name) {
            Some(Ok(ca)) => MountStatus::Ready(ca.clone()),
            Some(Err(why)) => MountStatus::NotReady(why.clone()),
            None => MountStatus::NotReady(NotReady::new(reason::PENDING, "not built")),
        };
        out.push(MountEntry {
            name: name.clone(),
            path: mount.mount_path().to_owned(),
            status,
            crl_expiry: settings.map(|s| s.crl_expiry).unwrap_or_default(),
            trusted_roots: Vec::new(),
            other_generations: Vec::new(),
        });
    }
    Ok(out)
}

/// An engine failure while building a dev CA, as a mount reason.
fn failed(err: tlsmint_ca::Error) -> NotReady {
    NotReady::new(reason::FAILED, err.report())
}

fn build_one(
    name: &str,
    all: &HashMap<String, &PkiMount>,
    cas: &mut HashMap<String, Result<Arc<CertificateAuthority>, NotReady>>,
    now: OffsetDateTime,
    depth: usize,
) {
    if cas.contains_key(name) {
        return;
    }
    let result = (|| {
        let mount = all.get(name).ok_or_else(|| {
            NotReady::new(
                reason::MOUNT_NOT_FOUND,
                format!("PkiMount {name} not found"),
            )
        })?;
        let settings = crate::convert::mount(name, &mount.spec)
            .map_err(|e| NotReady::new(reason::INVALID_SPEC, tlsmint_ca::report(&e)))?;
        if mount.spec.import_from.is_some() {
            return Err(NotReady::new(
                reason::IMPORT_FAILED,
                "dev mode cannot read Secrets; importFrom needs a cluster",
            ));
        }
        let ca = match (mount.spec.mount_type, &mount.spec.parent_ref) {
            (MountType::Root, _) => CertificateAuthority::generate_root(&settings.ca, now),
            (MountType::Intermediate, Some(parent)) => {
                if depth > 16 {
                    return Err(NotReady::new(
                        reason::PARENT_NOT_READY,
                        "parentRef chain is too deep or circular",
                    ));
                }
                build_one(&parent.name, all, cas, now, depth + 1);
                let parent_ca = match cas.get(&parent.name) {
                    Some(Ok(ca)) => ca.clone(),
                    _ => {
                        return Err(NotReady::new(
                            reason::PARENT_NOT_READY,
                            format!("parent {} is not ready", parent.name),
                        ));
                    }
                };
                CertificateAuthority::generate_intermediate(&settings.ca, &parent_ca, now)
            }
            (MountType::Intermediate, None) => {
                let pending = PendingIntermediate::generate(&settings.ca).map_err(failed)?;
                return Err(NotReady::new(
                    reason::WAITING_FOR_SIGNED_CERTIFICATE,
                    format!(
                        "the intermediate is signed outside tlsmint; dev mode cannot accept the signed certificate (CSR of {} bytes generated)",
                        pending.csr_pem().len()
                    ),
                ));
            }
        }
        .and_then(|ca| ca.with_options(settings.options))
        .map_err(failed)?;
        Ok(Arc::new(ca))
    })();
    cas.insert(name.to_owned(), result);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_banner_says_which_limits_apply() {
        let on = limits_line(50.0, 100);
        assert!(on.contains("root token unlimited"), "{on}");
        assert!(on.contains("50/s") && on.contains("100"), "{on}");
        assert!(limits_line(0.0, 100).contains("none"));
    }

    #[test]
    fn default_setup_builds_the_vault_tutorial() {
        let (mounts, roles) = default_setup();
        let built = build_mounts(&mounts).unwrap();
        let int = built.iter().find(|m| m.name == "pki-int").unwrap();
        assert_eq!(int.path, "pki_int");
        let ca = int.ca().unwrap();
        assert_eq!(ca.ca_chain_pem().len(), 2);
        assert_eq!(roles[0].spec.max_ttl.to_string(), "720h");
    }

    #[test]
    fn loads_multi_document_yaml_and_reports_unready_mounts() {
        let dir = std::env::temp_dir().join(format!("tlsmint-dev-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("all.yaml"),
            r#"
apiVersion: pki.tlsmint.io/v1alpha1
kind: PkiMount
metadata: {name: root}
spec: {type: Root, subject: {commonName: Root}}
---
apiVersion: pki.tlsmint.io/v1alpha1
kind: PkiMount
metadata: {name: outside}
spec: {type: Intermediate, subject: {commonName: Outside}}
---
apiVersion: pki.tlsmint.io/v1alpha1
kind: IssuerRole
metadata: {name: svc}
spec:
  mountRef: {name: root}
  subjects: [{namespace: apps, serviceAccount: "*"}]
  allowedDomains: ["{{namespace}}.svc"]
  allowSubdomains: true
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ignored}
"#,
        )
        .unwrap();
        let (mounts, roles) = load_dir(&dir).unwrap();
        assert_eq!((mounts.len(), roles.len()), (2, 1));
        let built = build_mounts(&mounts).unwrap();
        let outside = built.iter().find(|m| m.name == "outside").unwrap();
        match &outside.status {
            MountStatus::NotReady(why) => {
                assert!(why.to_string().starts_with("WaitingForSignedCertificate"))
            }
            MountStatus::Ready(_) => panic!("an outside-signed intermediate cannot be ready"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
