//! From what a Vault server said about its PKI mounts to tlsmint objects, with a report
//! of everything that does not carry over as it was. Pure: no I/O, table-testable.
//!
//! Per Vault mount: a `PkiMount` (name from the path, `spec.path` = the Vault path so
//! Vault clients keep their URLs), its default issuer's subject and key type, URLs, CRL
//! expiry and max lease TTL; with the CA key given, an import Secret in the operator's
//! namespace and `importFrom`; without it, a new CA: a root makes its own, an intermediate
//! is signed by its migrated parent mount when that parent is imported, else publishes a
//! CSR for the old parent to sign. Per Vault role: an `IssuerRole` from
//! [`crate::api::vault::from_vault_role`].

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use tlsmint_api::v1alpha1::{
    CaSubject, DistinguishedName, ImportFrom, IssuerRole, KeyAlgorithm, KeySpec as ApiKeySpec,
    MountType, MountUrls, NameReference, PkiMount, PkiMountSpec, RoleSubject, SecretReference,
};
use tlsmint_ca::{CertificateAuthority, ExposeSecret as _, SecretString};
use x509_parser::prelude::{FromDer as _, X509Certificate};

/// One Vault PKI mount as read from the server.
#[derive(Clone, Debug, Default)]
pub struct VaultMount {
    /// The mount's path without the trailing `/` (e.g. `pki_int`).
    pub path: String,
    /// `config.max_lease_ttl` of `sys/mounts`, seconds (0: the system default).
    pub max_lease_ttl: u64,
    /// The default issuer, if the mount has one.
    pub issuer: Option<VaultIssuer>,
    /// Names (or IDs) of the mount's other issuers.
    pub other_issuers: Vec<String>,
    /// `config/urls` data.
    pub urls: Map<String, Value>,
    /// `config/crl` data.
    pub crl: Map<String, Value>,
    /// `(name, roles/<name> data)` of every role.
    pub roles: Vec<(String, Map<String, Value>)>,
}

/// A Vault issuer: its certificate and the chain above it.
#[derive(Clone, Debug, Default)]
pub struct VaultIssuer {
    /// The issuer's ID.
    pub id: String,
    /// `issuer_name` (may be empty).
    pub name: String,
    /// The CA certificate, PEM.
    pub certificate: String,
    /// `ca_chain`: the issuer's certificate, then its parents (PEM each).
    pub ca_chain: Vec<String>,
}

/// What the migration writes: YAML documents and the report.
#[derive(Debug, Default)]
pub struct Plan {
    /// The PkiMounts.
    pub mounts: Vec<PkiMount>,
    /// The import Secrets (name, `tls.crt`, `tls.key`), in the operator's namespace.
    pub secrets: Vec<ImportSecret>,
    /// The IssuerRoles.
    pub roles: Vec<IssuerRole>,
    /// One line per thing that does not carry over as it was, for people.
    pub report: Vec<String>,
}

/// A Secret with a CA's certificate chain and key for `importFrom`.
#[derive(Debug)]
pub struct ImportSecret {
    /// The Secret's name.
    pub name: String,
    /// `tls.crt`: the CA certificate and its chain.
    pub certificates: String,
    /// `tls.key`.
    pub key: SecretString,
}

/// The inputs besides Vault's answers.
#[derive(Debug, Default)]
pub struct Options {
    /// CA private keys given by the user, PEM, by Vault mount path.
    pub keys: BTreeMap<String, SecretString>,
    /// Who may use the migrated roles.
    pub subjects: Vec<RoleSubject>,
}

/// The Kubernetes object name for a Vault path (`pki_int` -> `pki-int`), if one can be
/// made.
pub fn object_name(path: &str) -> Option<String> {
    let name: String = path
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name = name
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned();
    (!name.is_empty() && name.len() <= 63).then_some(name)
}

/// Builds the plan for `mounts`.
pub fn plan(mounts: &[VaultMount], options: &Options) -> Plan {
    let mut out = Plan::default();
    // Mounts whose CA is imported (same key, same certificate): their DER, by mount name,
    // so an intermediate without a key can be re-made under its imported parent.
    let mut imported: BTreeMap<Vec<u8>, String> = BTreeMap::new();
    let mut ordered: Vec<&VaultMount> = mounts.iter().collect();
    // Roots first, so their intermediates find them.
    ordered.sort_by_key(|m| {
        !m.issuer
            .as_ref()
            .is_some_and(|i| self_signed(&i.certificate))
    });
    let mut role_names: BTreeMap<String, usize> = BTreeMap::new();
    for mount in mounts {
        for (role, _) in &mount.roles {
            *role_names.entry(role.clone()).or_default() += 1;
        }
    }
    for mount in ordered {
        let Some(name) = object_name(&mount.path) else {
            out.report.push(format!(
                "{}: no Kubernetes name can be made from this path; not migrated",
                mount.path
            ));
            continue;
        };
        match mount_of(mount, &name, options, &imported, &mut out) {
            Some((object, issuer_der)) => {
                if let Some(der) = issuer_der {
                    imported.insert(der, name.clone());
                }
                out.mounts.push(object);
            }
            None => continue,
        }
        for (role, fields) in &mount.roles {
            let role_name = if role_names.get(role).copied().unwrap_or_default() > 1 {
                let unique = object_name(&format!("{name}-{role}"));
                out.report.push(format!(
                    "{}/roles/{role}: another mount has a role of this name; IssuerRole names are cluster-wide, so it is {}",
                    mount.path,
                    unique.as_deref().unwrap_or("(none)")
                ));
                unique
            } else {
                object_name(role).filter(|n| n == role).or_else(|| {
                    let n = object_name(role);
                    out.report.push(format!(
                        "{}/roles/{role}: renamed {} (a Kubernetes name); Vault clients calling {}/issue/{role} must use the new name",
                        mount.path,
                        n.as_deref().unwrap_or("(none)"),
                        mount.path
                    ));
                    n
                })
            };
            let Some(role_name) = role_name else {
                continue;
            };
            let (mut spec, notes) = crate::api::vault::from_vault_role(&name, fields);
            spec.subjects = options.subjects.clone();
            for note in notes {
                out.report
                    .push(format!("{}/roles/{role}: {note}", mount.path));
            }
            out.roles.push(IssuerRole::new(&role_name, spec));
        }
        if options.subjects.is_empty() && !mount.roles.is_empty() {
            out.report.push(format!(
                "{}: the roles' spec.subjects are empty, so no workload may use them yet: Vault policies do not carry over; set subjects (or pass --allow-subject NAMESPACE/SERVICEACCOUNT)",
                mount.path
            ));
        }
    }
    for path in options.keys.keys() {
        if !mounts.iter().any(|m| &m.path == path) {
            out.report.push(format!(
                "--key {path}=...: no PKI mount of that path was migrated; the key is unused"
            ));
        }
    }
    out
}

/// The PkiMount for `mount` (and its import Secret into `out`), with the DER of its CA
/// certificate when that CA is imported unchanged.
fn mount_of(
    mount: &VaultMount,
    name: &str,
    options: &Options,
    imported: &BTreeMap<Vec<u8>, String>,
    out: &mut Plan,
) -> Option<(PkiMount, Option<Vec<u8>>)> {
    let path = &mount.path;
    let note = |out: &mut Plan, text: String| out.report.push(format!("{path}: {text}"));
    let Some(issuer) = &mount.issuer else {
        note(
            out,
            "has no issuer (no CA was generated or imported); not migrated".into(),
        );
        return None;
    };
    let parsed = tlsmint_ca::pem::decode_certificate(&issuer.certificate)
        .ok()
        .and_then(|der| {
            let cert = X509Certificate::from_der(&der).ok()?.1;
            Some((
                common_name(&cert),
                distinguished_name(&cert),
                key_spec(&cert),
                der,
            ))
        });
    let Some((cn, names, key, der)) = parsed else {
        note(
            out,
            format!(
                "issuer {}: its certificate is unreadable; not migrated",
                issuer.id
            ),
        );
        return None;
    };
    let root = self_signed(&issuer.certificate);
    let mut spec = PkiMountSpec::new(
        if root {
            MountType::Root
        } else {
            MountType::Intermediate
        },
        cn.unwrap_or_else(|| name.to_owned()),
    );
    spec.subject = CaSubject {
        common_name: spec.subject.common_name.clone(),
        names,
    };
    if let Some(key) = key {
        spec.key = key;
    }
    if name != path {
        spec.path = Some(path.clone());
    }
    if mount.max_lease_ttl > 0
        && let Ok(max) =
            tlsmint_api::Duration::from_std(std::time::Duration::from_secs(mount.max_lease_ttl))
    {
        spec.max_ttl = Some(max);
    }
    urls(&mut spec, &mount.urls, path, out);
    crl(&mut spec, &mount.crl, path, out);
    for other in &mount.other_issuers {
        note(
            out,
            format!(
                "issuer {other} is not the default issuer and is not migrated: a tlsmint mount has one active CA (the others' leaves keep verifying where their roots are trusted)"
            ),
        );
    }
    let mut imported_der = None;
    match options.keys.get(path) {
        Some(key) => {
            let chain: Vec<&String> = issuer.ca_chain.iter().skip(1).collect();
            let certificates = std::iter::once(&issuer.certificate)
                .chain(chain)
                .map(|pem| format!("{}\n", pem.trim_end()))
                .collect::<String>();
            if let Err(e) = CertificateAuthority::from_pem(name, &certificates, key.expose_secret()) {
                note(
                    out,
                    format!("the key given with --key does not fit the issuer's certificate ({}); not migrated", tlsmint_ca::report(&e)),
                );
                return None;
            }
            let secret = format!("{name}-vault-import");
            spec.import_from = Some(ImportFrom {
                secret_ref: SecretReference::new(&secret),
                pkcs12: None,
            });
            out.secrets.push(ImportSecret {
                name: secret,
                certificates,
                key: key.clone(),
            });
            imported_der = Some(der);
        }
        None if root => note(
            out,
            "no CA key given (--key): this PkiMount makes a NEW root CA; clients must trust it. Vault exports a key only once, when it is generated with root/generate/exported".into(),
        ),
        None => {
            let parent = issuer
                .ca_chain
                .get(1)
                .and_then(|pem| tlsmint_ca::pem::decode_certificate(pem).ok())
                .and_then(|parent| imported.get(&parent));
            match parent {
                Some(parent) => {
                    spec.parent_ref = Some(NameReference::new(parent));
                    note(
                        out,
                        format!("no CA key given (--key): a NEW intermediate, signed by the imported root {parent}; existing leaves keep verifying to the same root"),
                    );
                }
                None => note(
                    out,
                    format!("no CA key given (--key): a NEW intermediate that publishes status.csr; sign it with its parent, e.g. `kubectl get pkimount {name} -o jsonpath='{{.status.csr}}' > {name}.csr; vault write -format=json <parent mount>/root/sign-intermediate csr=@{name}.csr format=pem_bundle`, store the certificate as tls.crt in a Secret and set spec.signedCertificateSecretRef"),
                ),
            }
        }
    }
    Some((PkiMount::new(name, spec), imported_der))
}

fn urls(spec: &mut PkiMountSpec, data: &Map<String, Value>, path: &str, out: &mut Plan) {
    let list = |key: &str| -> Vec<String> {
        match data.get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(Value::String(s)) if !s.is_empty() => s.split(',').map(str::to_owned).collect(),
            _ => Vec::new(),
        }
    };
    let urls = MountUrls {
        issuing_certificates: list("issuing_certificates"),
        crl_distribution_points: list("crl_distribution_points"),
        ocsp_servers: list("ocsp_servers"),
    };
    if data.get("enable_templating").and_then(Value::as_bool) == Some(true) {
        out.report.push(format!(
            "{path}: config/urls enable_templating: tlsmint writes URLs as given, without {{{{cluster_path}}}} templates"
        ));
    }
    if urls != MountUrls::default() {
        out.report.push(format!(
            "{path}: spec.urls are Vault's config/urls; they are written into new leaves, so point them at tlsmint (e.g. https://<tlsmint>/v1/{path}/ca, /crl, /ocsp) once clients use it"
        ));
        spec.urls = Some(urls);
    }
}

fn crl(spec: &mut PkiMountSpec, data: &Map<String, Value>, path: &str, out: &mut Plan) {
    if let Some(expiry) = data.get("expiry").and_then(Value::as_str)
        && !expiry.is_empty()
    {
        match crate::api::vault::params::parse_ttl(expiry).map(tlsmint_api::Duration::from_std) {
            Some(Ok(d)) => spec.crl.expiry = d,
            _ => out.report.push(format!(
                "{path}: config/crl expiry {expiry:?} is unreadable; the default is kept"
            )),
        }
    }
    for (field, meaning) in [
        ("disable", "tlsmint always publishes a CRL"),
        ("ocsp_disable", "tlsmint always answers OCSP"),
        (
            "auto_rebuild",
            "tlsmint rebuilds the CRL before it expires and on every revocation",
        ),
        ("enable_delta", "tlsmint publishes no delta CRLs"),
        ("unified_crl", "tlsmint has one CRL per mount"),
        (
            "cross_cluster_revocation",
            "tlsmint replicas share revocations through the cluster",
        ),
    ] {
        if data.get(field).and_then(Value::as_bool) == Some(true) {
            out.report
                .push(format!("{path}: config/crl {field}=true: {meaning}"));
        }
    }
}

/// Whether `pem` is a self-signed certificate (subject = issuer and its own signature
/// verifies).
fn self_signed(pem: &str) -> bool {
    let Ok(der) = tlsmint_ca::pem::decode_certificate(pem) else {
        return false;
    };
    let Ok((_, cert)) = X509Certificate::from_der(&der) else {
        return false;
    };
    cert.subject().as_raw() == cert.issuer().as_raw() && cert.verify_signature(None).is_ok()
}

fn common_name(cert: &X509Certificate<'_>) -> Option<String> {
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned)
}

fn distinguished_name(cert: &X509Certificate<'_>) -> DistinguishedName {
    let texts = |iter: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue<'_>>| {
        iter.filter_map(|a| a.as_str().ok().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    let subject = cert.subject();
    DistinguishedName {
        organization: texts(&mut subject.iter_organization()),
        organizational_unit: texts(&mut subject.iter_organizational_unit()),
        country: texts(&mut subject.iter_country()),
        province: texts(&mut subject.iter_state_or_province()),
        locality: texts(&mut subject.iter_locality()),
    }
}

fn key_spec(cert: &X509Certificate<'_>) -> Option<ApiKeySpec> {
    use x509_parser::public_key::PublicKey;
    let spki = cert.public_key();
    match spki.parsed().ok()? {
        PublicKey::RSA(rsa) => {
            let bits = u32::try_from(rsa.key_size()).ok()?;
            Some(ApiKeySpec {
                algorithm: KeyAlgorithm::Rsa,
                size: Some(bits),
            })
        }
        PublicKey::EC(point) => {
            let size = match point.key_size() {
                256 => 256,
                384 => 384,
                _ => return None,
            };
            Some(ApiKeySpec {
                algorithm: KeyAlgorithm::Ecdsa,
                size: Some(size),
            })
        }
        _ if spki.algorithm.algorithm == x509_parser::oid_registry::OID_SIG_ED25519 => {
            Some(ApiKeySpec::new(KeyAlgorithm::Ed25519))
        }
        _ => None,
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
