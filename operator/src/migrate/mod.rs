//! `tlsmint-operator migrate from-vault`: reads a live Vault's PKI mounts (issuers, roles,
//! URLs, CRL config, max lease TTL) with a token, like the vault CLI (`VAULT_ADDR`,
//! `VAULT_TOKEN`, `VAULT_CACERT`), and writes the PkiMount and IssuerRole YAML that
//! serves the same paths, plus an `importFrom` Secret for each mount whose CA key the user
//! gives. Prints a report of every field that does not carry over as it was.
//!
//! Vault never hands out a CA's private key after it was generated (only
//! `root/generate/exported` or `intermediate/generate/exported` show it, once), so the key
//! comes from the user (`--key MOUNT=FILE`); without it the plan makes a new CA and says
//! how it relates to the old one (see [`plan`]).
//!
//! Reads only; writes nothing to Vault or to a cluster: the output is for `kubectl apply`.

pub mod plan;
pub mod vault;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use k8s_openapi::api::core::v1::Secret;
use serde_json::{Map, Value};
use tlsmint_api::v1alpha1::RoleSubject;
use tlsmint_ca::{ExposeSecret as _, SecretString};

use plan::{Options, Plan, VaultIssuer, VaultMount};
use vault::Vault;

/// `tlsmint-operator migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Where to migrate from.
    #[command(subcommand)]
    pub source: Source,
}

/// The systems `migrate` reads.
#[derive(Debug, Subcommand)]
pub enum Source {
    /// Read a Vault server's PKI mounts and roles and print the PkiMount, IssuerRole and
    /// import Secret YAML that serve the same paths (`kubectl apply -f` it), with a report
    /// of what does not carry over.
    FromVault(FromVaultArgs),
}

/// `tlsmint-operator migrate from-vault`.
#[derive(Debug, Args)]
pub struct FromVaultArgs {
    /// Vault's address, as the vault CLI takes it.
    #[arg(long, env = "VAULT_ADDR", default_value = "https://127.0.0.1:8200")]
    pub address: String,
    /// A Vault token that may read and list sys/mounts and the PKI mounts (their issuers,
    /// roles and config).
    #[arg(long, env = "VAULT_TOKEN", hide_env_values = true, value_parser = secret)]
    pub token: SecretString,
    /// PEM file with the CA certificates that verify Vault's TLS certificate (default: the
    /// system's roots).
    #[arg(long, env = "VAULT_CACERT")]
    pub ca_cert: Option<PathBuf>,
    /// Migrate only this Vault mount path (e.g. pki_int); repeatable. Default: every mount
    /// of type pki.
    #[arg(long = "mount", value_name = "PATH")]
    pub mounts: Vec<String>,
    /// The CA private key of a mount, to import its CA unchanged: MOUNT=FILE, FILE a PEM key
    /// (PKCS#8, PKCS#1 or SEC1; e.g. the private_key root/generate/exported printed).
    /// Repeatable. Without it, the mount gets a new CA (the report says which).
    #[arg(long = "key", value_name = "MOUNT=FILE")]
    pub keys: Vec<String>,
    /// Who may use the migrated roles, NAMESPACE/SERVICEACCOUNT (either may be *);
    /// repeatable. Vault policies do not carry over: without it the roles allow nobody.
    #[arg(long = "allow-subject", value_name = "NAMESPACE/SERVICEACCOUNT")]
    pub subjects: Vec<String>,
    /// The operator's namespace, where the import Secrets must live.
    #[arg(long, env = "TLSMINT_NAMESPACE", default_value = "tlsmint-system")]
    pub namespace: String,
    /// Write the YAML to this file (mode 0600: it may hold CA keys) instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// A token from the command line, kept redacted from then on.
fn secret(text: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(text))
}

/// Runs `migrate`.
pub async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    match args.source {
        Source::FromVault(args) => from_vault(args).await,
    }
}

async fn from_vault(args: FromVaultArgs) -> anyhow::Result<()> {
    let options = options(&args)?;
    let vault = Vault::new(&args.address, args.token.clone(), args.ca_cert.as_deref())?;
    eprintln!("migrate: reading PKI mounts from {}", vault.address());
    let mounts = read_mounts(&vault, &args.mounts).await?;
    if mounts.is_empty() {
        bail!(
            "{} has no PKI mount{}",
            vault.address(),
            if args.mounts.is_empty() {
                String::new()
            } else {
                format!(" among {}", args.mounts.join(", "))
            }
        );
    }
    let plan = plan::plan(&mounts, &options);
    let yaml = render(&plan, &args.namespace)?;
    match &args.output {
        Some(path) => write_private(path, &yaml)?,
        None => std::io::stdout()
            .write_all(yaml.as_bytes())
            .context("writing the YAML to stdout")?,
    }
    eprint!("{}", summary(&plan, args.output.as_deref()));
    Ok(())
}

fn options(args: &FromVaultArgs) -> anyhow::Result<Options> {
    let mut keys = BTreeMap::new();
    for item in &args.keys {
        let Some((mount, file)) = item.split_once('=') else {
            bail!("--key {item:?}: expected MOUNT=FILE, e.g. --key pki=root-key.pem");
        };
        let pem = std::fs::read_to_string(file)
            .with_context(|| format!("--key {mount}=: reading {file}"))?;
        keys.insert(mount.trim_matches('/').to_owned(), SecretString::from(pem));
    }
    let subjects = args
        .subjects
        .iter()
        .map(|s| match s.split_once('/') {
            Some((ns, sa)) if !ns.is_empty() && !sa.is_empty() => Ok(RoleSubject::new(ns, sa)),
            _ => {
                bail!("--allow-subject {s:?}: expected NAMESPACE/SERVICEACCOUNT (either may be *)")
            }
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Options { keys, subjects })
}

/// Reads every PKI mount (or those of `only`) with its issuers, config and roles.
async fn read_mounts(vault: &Vault, only: &[String]) -> anyhow::Result<Vec<VaultMount>> {
    let answer = vault
        .read("sys/mounts")
        .await?
        .context("sys/mounts answered 404")?;
    // Vault answers with the mounts in `data` and, for old clients, at the top level too.
    let table = answer
        .get("data")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_else(|| answer.as_object().cloned().unwrap_or_default());
    let mut out = Vec::new();
    for (path, info) in &table {
        if info.get("type").and_then(Value::as_str) != Some("pki") {
            continue;
        }
        let path = path.trim_end_matches('/').to_owned();
        if !only.is_empty() && !only.iter().any(|o| o.trim_matches('/') == path) {
            continue;
        }
        eprintln!("migrate: reading {path}/");
        let max_lease_ttl = info
            .pointer("/config/max_lease_ttl")
            .and_then(Value::as_u64)
            .unwrap_or_default();
        let (issuer, other_issuers) = read_issuers(vault, &path).await?;
        let urls = object(vault.data(&format!("{path}/config/urls")).await?);
        let crl = object(vault.data(&format!("{path}/config/crl")).await?);
        let mut roles = Vec::new();
        for role in vault.list(&format!("{path}/roles")).await? {
            let fields = object(vault.data(&format!("{path}/roles/{role}")).await?);
            roles.push((role, fields));
        }
        out.push(VaultMount {
            path,
            max_lease_ttl,
            issuer,
            other_issuers,
            urls,
            crl,
            roles,
        });
    }
    for wanted in only {
        if !out.iter().any(|m| m.path == wanted.trim_matches('/')) {
            bail!(
                "--mount {wanted}: no PKI mount of that path at {}",
                vault.address()
            );
        }
    }
    Ok(out)
}

/// The default issuer and the names of the others; Vault before 1.11 (no issuers API)
/// has one CA at `cert/ca`.
async fn read_issuers(
    vault: &Vault,
    path: &str,
) -> anyhow::Result<(Option<VaultIssuer>, Vec<String>)> {
    let ids = vault.list(&format!("{path}/issuers")).await?;
    if ids.is_empty() {
        let Some(data) = vault.data(&format!("{path}/cert/ca")).await? else {
            return Ok((None, Vec::new()));
        };
        let certificate = text(&data, "certificate");
        if certificate.trim().is_empty() {
            return Ok((None, Vec::new()));
        }
        let chain = vault
            .data(&format!("{path}/cert/ca_chain"))
            .await?
            .map(|d| text(&d, "ca_chain"))
            .unwrap_or_default();
        let ca_chain = tlsmint_ca::pem::decode_certificates(&chain)
            .map(|ders| {
                ders.iter()
                    .map(|d| tlsmint_ca::pem::encode_certificate(d))
                    .collect()
            })
            .unwrap_or_else(|_| vec![certificate.clone()]);
        return Ok((
            Some(VaultIssuer {
                id: "default".into(),
                name: String::new(),
                certificate,
                ca_chain,
            }),
            Vec::new(),
        ));
    }
    let default = vault
        .data(&format!("{path}/config/issuers"))
        .await?
        .map(|d| text(&d, "default"))
        .filter(|d| !d.is_empty());
    let Some(default) = default else {
        return Ok((None, ids));
    };
    let data = vault
        .data(&format!("{path}/issuer/{default}"))
        .await?
        .with_context(|| format!("{path}/issuer/{default}: the default issuer answered 404"))?;
    let ca_chain = data
        .get("ca_chain")
        .and_then(Value::as_array)
        .map(|c| {
            c.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let issuer = VaultIssuer {
        id: default.clone(),
        name: text(&data, "issuer_name"),
        certificate: text(&data, "certificate"),
        ca_chain,
    };
    let others = ids.into_iter().filter(|id| *id != default).collect();
    Ok((Some(issuer), others))
}

fn object(value: Option<Value>) -> Map<String, Value> {
    match value {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

fn text(data: &Value, key: &str) -> String {
    data.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The plan as one YAML stream: import Secrets, PkiMounts, IssuerRoles.
pub fn render(plan: &Plan, namespace: &str) -> anyhow::Result<String> {
    let mut docs = Vec::new();
    for secret in &plan.secrets {
        let mut object = Secret {
            type_: Some(tlsmint_api::labels::TLS_SECRET_TYPE.to_owned()),
            string_data: Some(BTreeMap::from([
                (
                    tlsmint_api::TLS_CERT_FILE.to_owned(),
                    secret.certificates.clone(),
                ),
                (
                    tlsmint_api::TLS_KEY_FILE.to_owned(),
                    secret.key.expose_secret().to_owned(),
                ),
            ])),
            ..Secret::default()
        };
        object.metadata.name = Some(secret.name.clone());
        object.metadata.namespace = Some(namespace.to_owned());
        docs.push(serde_yaml_ng::to_string(&object).context("rendering a Secret")?);
    }
    for mount in &plan.mounts {
        docs.push(serde_yaml_ng::to_string(mount).context("rendering a PkiMount")?);
    }
    for role in &plan.roles {
        docs.push(serde_yaml_ng::to_string(role).context("rendering an IssuerRole")?);
    }
    Ok(docs.iter().map(|d| format!("---\n{d}")).collect::<String>())
}

fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// The human summary printed to stderr after the YAML.
fn summary(plan: &Plan, output: Option<&std::path::Path>) -> String {
    let mut text = format!(
        "migrate: {} PkiMount(s), {} IssuerRole(s), {} import Secret(s){}\n",
        plan.mounts.len(),
        plan.roles.len(),
        plan.secrets.len(),
        output
            .map(|p| format!(" written to {}", p.display()))
            .unwrap_or_default()
    );
    if !plan.secrets.is_empty() {
        text.push_str("migrate: the output holds CA private keys: keep it as you keep the keys, and delete it after `kubectl apply`\n");
    }
    if plan.report.is_empty() {
        text.push_str("migrate: every field carried over\n");
    } else {
        text.push_str(&format!(
            "migrate: {} difference(s) to review:\n",
            plan.report.len()
        ));
        for line in &plan.report {
            text.push_str(&format!("  - {line}\n"));
        }
    }
    text
}
