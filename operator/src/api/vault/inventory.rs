//! What a Vault user reads to find their way around: `sys/mounts`,
//! `<mount>/roles` (LIST) and `roles/<name>`, `config/urls`, `config/crl`,
//! `certs` (LIST), `issuers` (LIST) and `issuer/<ref>` (plus `/json`, `/pem`,
//! `/der`), answered from the registry in Vault's field names.
//!
//! A mount has one issuer: its current CA. Its id is derived from the
//! certificate (so every replica gives the same one) and its name is the
//! PkiMount's name; `default` names it too. Roles are rendered from the
//! IssuerRole spec, with the value Vault would show for the behaviour
//! tlsmint has where the spec has no field (`use_csr_sans: true`, ...).
//!
//! Owns: rendering mounts, roles, issuers and configs in Vault's shapes.
//! Must not: show a CA key, or a role's `subjects` to an unauthenticated caller.

use std::time::Duration;

use axum::response::Response;
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tlsmint_api::v1alpha1::{ExtKeyUsage, IssuerRoleSpec, KeyAlgorithm, KeyUsage};
use tlsmint_ca::{CertificateAuthority, LeafNotAfterBehavior, Serial};

use super::envelope;
use super::params::clip;
use super::read::ready;
use crate::api::ApiState;
use crate::api::error::ApiError;
use crate::registry::{MountEntry, OtherGeneration, RoleEntry};

/// Vault's answer to a LIST with nothing in it: 404 and no error text.
fn empty_list() -> Response {
    envelope::json_response(http::StatusCode::NOT_FOUND, json!({ "errors": [] }))
}

/// `{"keys": [...]}` (and `key_info` when given), or Vault's empty answer.
fn list(keys: Vec<String>, key_info: Option<Map<String, Value>>) -> Response {
    if keys.is_empty() {
        return empty_list();
    }
    let mut data = json!({ "keys": keys });
    if let Some(info) = key_info {
        data["key_info"] = Value::Object(info);
    }
    envelope::data(data, &[])
}

/// Seconds, as Vault prints durations in reads.
fn secs(d: Duration) -> u64 {
    d.as_secs()
}

/// A duration as Vault's config reads print it (`72h`, `90s`).
fn duration_text(d: Duration) -> String {
    let s = d.as_secs();
    if s > 0 && s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s > 0 && s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// A UUID-shaped id derived from `bytes` (stable across replicas and restarts).
fn derived_id(bytes: &[u8]) -> String {
    let mut first = [0u8; 16];
    first.copy_from_slice(&Sha256::digest(bytes)[..16]);
    envelope::uuid_text(first)
}

/// Colon-separated hex, as Vault prints key ids.
pub fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The issuer id of a CA: derived from its certificate.
pub fn issuer_id(ca: &CertificateAuthority) -> String {
    derived_id(ca.certificate_der())
}

/// The key id of a CA (its subject key identifier), Vault's `authority_key_id`
/// of what it signs.
pub fn key_id(ca: &CertificateAuthority) -> String {
    ca.info()
        .subject_key_id
        .as_deref()
        .map(colon_hex)
        .unwrap_or_default()
}

/// One mount as `sys/mounts` lists it.
fn mount_info(mount: &MountEntry) -> Value {
    let max_ttl = mount
        .ca()
        .and_then(|ca| ca.options().max_ttl)
        .map_or(0, secs);
    json!({
        "accessor": format!("pki_{}", &derived_id(mount.name.as_bytes())[..8]),
        "config": {
            "default_lease_ttl": 0,
            "force_no_cache": false,
            "max_lease_ttl": max_ttl,
        },
        "description": format!("tlsmint PkiMount {}", mount.name),
        "external_entropy_access": false,
        "local": false,
        "options": null,
        "plugin_version": "",
        "running_plugin_version": concat!("tlsmint-", env!("CARGO_PKG_VERSION")),
        "running_sha256": "",
        "seal_wrap": false,
        "type": "pki",
        "uuid": derived_id(format!("mount/{}", mount.name).as_bytes()),
    })
}

/// `GET /v1/sys/mounts`: every PKI mount, keyed `<path>/` as Vault keys them
/// (only PKI mounts: tlsmint serves no other secrets engine).
pub fn sys_mounts(state: &ApiState) -> Response {
    let mut mounts = state.registry.mounts();
    mounts.sort_by(|a, b| a.path.cmp(&b.path));
    let data: Map<String, Value> = mounts
        .iter()
        .map(|m| (format!("{}/", m.path), mount_info(m)))
        .collect();
    envelope::data_from("system", Value::Object(data))
}

/// `GET /v1/sys/mounts/<path>` and `sys/mounts/<path>/tune` (the mount's config).
pub fn sys_mount(state: &ApiState, path: &str) -> Response {
    let path = path.trim_matches('/');
    let (path, tune) = match path.strip_suffix("/tune") {
        Some(path) => (path, true),
        None => (path, false),
    };
    match state.registry.mount_by_path(path) {
        Some(mount) => {
            let mut info = mount_info(&mount);
            if tune {
                let mut config = info["config"].take();
                config["description"] = info["description"].take();
                config["options"] = Value::Null;
                info = config;
            }
            envelope::data_from("system", info)
        }
        None => envelope::error(&ApiError::InvalidArgument(format!(
            "No secret engine mount at {}/",
            clip(path)
        ))),
    }
}

/// `LIST /v1/<mount>/roles`.
pub fn list_roles(state: &ApiState, mount: &MountEntry) -> Response {
    let mut names: Vec<String> = state
        .registry
        .roles_of(&mount.name)
        .iter()
        .map(|r| r.name.clone())
        .collect();
    names.sort();
    list(names, None)
}

/// `GET /v1/<mount>/roles/<name>`: 404 without a body, as Vault, for a role
/// that is not on this mount.
pub fn read_role(state: &ApiState, mount: &MountEntry, name: &str) -> Response {
    match state.registry.role(name).filter(|r| r.mount == mount.name) {
        Some(role) => envelope::data(role_data(&role), &[]),
        None => empty_list(),
    }
}

fn key_usage_name(usage: KeyUsage) -> &'static str {
    match usage {
        KeyUsage::DigitalSignature => "DigitalSignature",
        KeyUsage::ContentCommitment => "ContentCommitment",
        KeyUsage::KeyEncipherment => "KeyEncipherment",
        KeyUsage::DataEncipherment => "DataEncipherment",
        KeyUsage::KeyAgreement => "KeyAgreement",
    }
}

fn ext_key_usage_name(usage: ExtKeyUsage) -> &'static str {
    match usage {
        ExtKeyUsage::ServerAuth => "ServerAuth",
        ExtKeyUsage::ClientAuth => "ClientAuth",
        ExtKeyUsage::CodeSigning => "CodeSigning",
        ExtKeyUsage::EmailProtection => "EmailProtection",
        ExtKeyUsage::TimeStamping => "TimeStamping",
        ExtKeyUsage::OcspSigning => "OcspSigning",
    }
}

/// An IssuerRole in Vault's role fields. Key usages are the ones the leaves
/// get (the spec's, or the per-algorithm default when it names none).
pub fn role_data(role: &RoleEntry) -> VaultRole {
    let spec: &IssuerRoleSpec = &role.spec;
    let key_usage: Vec<&str> = if spec.key_usages.is_empty() {
        match spec.key.algorithm {
            KeyAlgorithm::Rsa => vec!["DigitalSignature", "KeyEncipherment"],
            KeyAlgorithm::Ecdsa | KeyAlgorithm::Ed25519 => vec!["DigitalSignature"],
        }
    } else {
        spec.key_usages.iter().map(|u| key_usage_name(*u)).collect()
    };
    let key_type = match spec.key.algorithm {
        KeyAlgorithm::Ecdsa => "ec",
        KeyAlgorithm::Rsa => "rsa",
        KeyAlgorithm::Ed25519 => "ed25519",
    };
    let subject = spec.subject.clone().unwrap_or_default();
    let subjects: Vec<String> = spec
        .subjects
        .iter()
        .map(|s| format!("{}/{}", s.namespace, s.service_account))
        .collect();
    let empty = Vec::new;
    VaultRole {
        allow_any_name: spec.allow_any_name,
        allow_bare_domains: spec.allow_bare_domains,
        allow_glob_domains: spec.allow_glob_domains,
        allow_ip_sans: spec.allow_ip_sans,
        allow_localhost: spec.allow_localhost,
        allow_subdomains: spec.allow_subdomains,
        allow_token_displayname: false,
        allow_wildcard_certificates: spec.allow_wildcard_certificates,
        allowed_domains: spec.allowed_domains.clone(),
        allowed_domains_template: spec.allowed_domains.iter().any(|d| {
            tlsmint_api::v1alpha1::ROLE_TEMPLATES
                .iter()
                .any(|t| d.contains(t))
        }),
        allowed_other_sans: empty(),
        allowed_serial_numbers: empty(),
        allowed_uri_sans: spec.allowed_uri_sans.clone(),
        allowed_uri_sans_template: false,
        allowed_user_ids: empty(),
        basic_constraints_valid_for_non_ca: false,
        client_flag: spec.client_flag,
        code_signing_flag: spec.ext_key_usages.contains(&ExtKeyUsage::CodeSigning),
        country: subject.country,
        email_protection_flag: spec.ext_key_usages.contains(&ExtKeyUsage::EmailProtection),
        enforce_hostnames: spec.enforce_hostnames,
        ext_key_usage: spec
            .ext_key_usages
            .iter()
            .map(|u| ext_key_usage_name(*u))
            .collect(),
        ext_key_usage_oids: empty(),
        generate_lease: false,
        issuer_ref: "default",
        key_bits: spec.key.effective_size().unwrap_or(0),
        key_type,
        key_usage,
        locality: subject.locality,
        max_ttl: secs(spec.max_ttl.as_std()),
        no_store: true,
        not_after: "",
        not_before_duration: secs(spec.not_before_duration.as_std()),
        organization: subject.organization,
        ou: subject.organizational_unit,
        policy_identifiers: empty(),
        postal_code: empty(),
        province: subject.province,
        require_cn: spec.require_common_name,
        server_flag: spec.server_flag,
        signature_bits: 0,
        street_address: empty(),
        ttl: secs(spec.ttl.as_std()),
        use_csr_common_name: true,
        use_csr_sans: true,
        use_pss: false,
        tlsmint_subjects: subjects,
    }
}

/// A role in Vault's read shape (`GET <mount>/roles/<name>`), plus
/// `tlsmint_subjects` (`namespace/serviceAccount` patterns of who may use it).
#[derive(Debug, Serialize)]
pub struct VaultRole {
    allow_any_name: bool,
    allow_bare_domains: bool,
    allow_glob_domains: bool,
    allow_ip_sans: bool,
    allow_localhost: bool,
    allow_subdomains: bool,
    allow_token_displayname: bool,
    allow_wildcard_certificates: bool,
    allowed_domains: Vec<String>,
    allowed_domains_template: bool,
    allowed_other_sans: Vec<String>,
    allowed_serial_numbers: Vec<String>,
    allowed_uri_sans: Vec<String>,
    allowed_uri_sans_template: bool,
    allowed_user_ids: Vec<String>,
    basic_constraints_valid_for_non_ca: bool,
    client_flag: bool,
    code_signing_flag: bool,
    country: Vec<String>,
    email_protection_flag: bool,
    enforce_hostnames: bool,
    ext_key_usage: Vec<&'static str>,
    ext_key_usage_oids: Vec<String>,
    generate_lease: bool,
    issuer_ref: &'static str,
    key_bits: u32,
    key_type: &'static str,
    key_usage: Vec<&'static str>,
    locality: Vec<String>,
    max_ttl: u64,
    no_store: bool,
    not_after: &'static str,
    not_before_duration: u64,
    organization: Vec<String>,
    ou: Vec<String>,
    policy_identifiers: Vec<String>,
    postal_code: Vec<String>,
    province: Vec<String>,
    require_cn: bool,
    server_flag: bool,
    signature_bits: u32,
    street_address: Vec<String>,
    ttl: u64,
    use_csr_common_name: bool,
    use_csr_sans: bool,
    use_pss: bool,
    tlsmint_subjects: Vec<String>,
}

/// `GET /v1/<mount>/config/urls`.
pub fn config_urls(mount: &MountEntry) -> Response {
    let result = ready(mount).map(|ca| {
        let urls = &ca.options().urls;
        envelope::data(
            json!({
                "issuing_certificates": urls.issuing_certificates,
                "crl_distribution_points": urls.crl_distribution_points,
                "ocsp_servers": urls.ocsp_servers,
                "enable_templating": false,
            }),
            &[],
        )
    });
    result.unwrap_or_else(|e| envelope::error(&e))
}

/// `GET /v1/<mount>/config/issuers`: the default issuer (the only one).
pub fn config_issuers(mount: &MountEntry) -> Response {
    match ready(mount) {
        Ok(ca) => envelope::data(
            json!({ "default": issuer_id(ca), "default_follows_latest_issuer": false }),
            &[],
        ),
        Err(e) => envelope::error(&e),
    }
}

/// `GET /v1/<mount>/config/crl`: tlsmint always keeps a full CRL (no delta
/// CRLs, never disabled) and rebuilds it on every revocation and at half of
/// its validity.
pub fn config_crl(mount: &MountEntry) -> Response {
    envelope::data(
        json!({
            "expiry": duration_text(mount.crl_expiry),
            "disable": false,
            "ocsp_disable": false,
            "ocsp_expiry": "0s",
            "auto_rebuild": true,
            "auto_rebuild_grace_period": duration_text(mount.crl_expiry / 2),
            "enable_delta": false,
            "delta_rebuild_interval": "0s",
            "cross_cluster_revocation": false,
            "unified_crl": false,
            "unified_crl_on_existing_paths": false,
        }),
        &[],
    )
}

/// `LIST /v1/<mount>/certs` (and `certs/revoked`): what this replica knows,
/// the CA itself, the certificates it issued recently (a bounded, in-memory
/// index: tlsmint stores no certificates) and the revoked serials on the CRL.
pub async fn list_certs(state: &ApiState, mount: &MountEntry, revoked_only: bool) -> Response {
    let result = async {
        let revoked = state
            .revocations
            .revoked(&mount.name)
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))?;
        let mut serials: Vec<Serial> = revoked;
        if !revoked_only {
            if let Some(ca) = mount.ca() {
                serials.push(ca.info().serial.clone());
            }
            serials.extend(state.recent.serials_of(&mount.name));
        }
        let mut keys: Vec<String> = serials.iter().map(Serial::to_colon_hex).collect();
        keys.sort();
        keys.dedup();
        Ok::<_, ApiError>(list(keys, None))
    }
    .await;
    result.unwrap_or_else(|e| envelope::error(&e))
}

/// `LIST /v1/<mount>/issuers`: the signing CA (the default), and during a CA rotation the
/// next and the previous generation, each with `tlsmint_state` (`active`, `next`,
/// `previous`) and the rotation phase.
pub fn list_issuers(mount: &MountEntry) -> Response {
    let Some(ca) = mount.ca() else {
        return empty_list();
    };
    let id = issuer_id(ca);
    let mut keys = vec![id.clone()];
    let mut info = Map::new();
    info.insert(
        id,
        json!({
            "issuer_name": mount.name,
            "is_default": true,
            "serial_number": ca.info().serial.to_colon_hex(),
            "key_id": key_id(ca),
            "tlsmint_state": "active",
        }),
    );
    for generation in &mount.other_generations {
        let Ok(parsed) = tlsmint_ca::x509::parse_certificate(&generation.certificate_der, "CA")
        else {
            continue;
        };
        let id = derived_id(&generation.certificate_der);
        keys.push(id.clone());
        info.insert(
            id,
            json!({
                "issuer_name": generation_name(mount, generation),
                "is_default": false,
                "serial_number": parsed.serial.to_colon_hex(),
                "key_id": parsed.subject_key_id.as_deref().map(colon_hex).unwrap_or_default(),
                "tlsmint_state": generation.state,
                "tlsmint_rotation_phase": generation.phase,
            }),
        );
    }
    list(keys, Some(info))
}

/// The name a non-signing generation is listed under: `<mount>-next` or `<mount>-previous`.
fn generation_name(mount: &MountEntry, generation: &OtherGeneration) -> String {
    format!("{}-{}", mount.name, generation.state)
}

/// `issuer/<ref>` for a generation that does not sign: its certificate and chain only.
fn read_other_generation(
    mount: &MountEntry,
    generation: &OtherGeneration,
    form: IssuerForm,
) -> Response {
    let der = &generation.certificate_der;
    let certificate = tlsmint_ca::pem::encode_certificate(der)
        .trim_end()
        .to_owned();
    let chain: Vec<String> = generation
        .ca_chain_pem
        .iter()
        .map(|p| p.trim_end().to_owned())
        .collect();
    let serial = tlsmint_ca::x509::parse_certificate(der, "CA")
        .map(|p| p.serial.to_colon_hex())
        .unwrap_or_default();
    match form {
        IssuerForm::Pem => envelope::raw(
            "application/pem-certificate-chain",
            certificate.into_bytes(),
        ),
        IssuerForm::Der => envelope::raw("application/pkix-cert", der.clone()),
        IssuerForm::Json | IssuerForm::Full => envelope::data(
            json!({
                "certificate": certificate,
                "ca_chain": chain,
                "issuer_id": derived_id(der),
                "issuer_name": generation_name(mount, generation),
                "serial_number": serial,
                "usage": "read-only",
                "tlsmint_state": generation.state,
                "tlsmint_rotation_phase": generation.phase,
            }),
            &[],
        ),
    }
}

/// What `GET issuer/<ref>/...` answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssuerForm {
    /// The whole description (`issuer/<ref>`).
    Full,
    /// Certificate, chain, id and name (`issuer/<ref>/json`).
    Json,
    /// The certificate, PEM (`issuer/<ref>/pem`).
    Pem,
    /// The certificate, DER (`issuer/<ref>/der`).
    Der,
}

/// `GET /v1/<mount>/issuer/<ref>[/json|/pem|/der]`: `ref` is `default`, the
/// issuer id or its name.
pub fn read_issuer(
    mount: &MountEntry,
    alias: Option<&str>,
    reference: &str,
    form: IssuerForm,
) -> Response {
    let other = mount.other_generations.iter().find(|g| {
        reference == derived_id(&g.certificate_der) || reference == generation_name(mount, g)
    });
    if let Some(generation) = other {
        return read_other_generation(mount, generation, form);
    }
    let result = ready(mount).and_then(|ca| {
        let id = issuer_id(ca);
        let known = [
            Some("default"),
            Some(id.as_str()),
            Some(mount.name.as_str()),
            alias,
        ];
        if !known.contains(&Some(reference)) {
            return Err(ApiError::InvalidArgument(format!(
                "unable to find PKI issuer for reference: {}",
                clip(reference)
            )));
        }
        let chain: Vec<String> = ca
            .ca_chain()
            .pem
            .iter()
            .map(|p| p.trim_end().to_owned())
            .collect();
        let certificate = ca.certificate_pem().trim_end().to_owned();
        Ok(match form {
            IssuerForm::Pem => envelope::raw(
                "application/pem-certificate-chain",
                certificate.into_bytes(),
            ),
            IssuerForm::Der => {
                envelope::raw("application/pkix-cert", ca.certificate_der().to_vec())
            }
            IssuerForm::Json => envelope::data(
                json!({
                    "certificate": certificate,
                    "ca_chain": chain,
                    "issuer_id": id,
                    "issuer_name": alias.unwrap_or(&mount.name),
                }),
                &[],
            ),
            IssuerForm::Full => {
                let urls = &ca.options().urls;
                envelope::data(
                    json!({
                        "ca_chain": chain,
                        "certificate": certificate,
                        "crl_distribution_points": urls.crl_distribution_points,
                        "enable_aia_url_templating": false,
                        "issuer_id": id,
                        "issuer_name": alias.unwrap_or(&mount.name),
                        "issuing_certificates": urls.issuing_certificates,
                        "key_id": key_id(ca),
                        "leaf_not_after_behavior": match ca.options().leaf_not_after {
                            LeafNotAfterBehavior::Error => "err",
                            LeafNotAfterBehavior::Truncate => "truncate",
                        },
                        "manual_chain": null,
                        "ocsp_servers": urls.ocsp_servers,
                        "revocation_signature_algorithm": "",
                        "revoked": false,
                        "serial_number": ca.info().serial.to_colon_hex(),
                        "usage": "crl-signing,issuing-certificates,ocsp-signing,read-only",
                    }),
                    &[],
                )
            }
        })
    });
    result.unwrap_or_else(|e| envelope::error(&e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_vault_prints_them() {
        assert_eq!(duration_text(Duration::from_secs(72 * 3600)), "72h");
        assert_eq!(duration_text(Duration::from_secs(90 * 60)), "90m");
        assert_eq!(duration_text(Duration::from_secs(45)), "45s");
        assert_eq!(duration_text(Duration::ZERO), "0s");
    }

    async fn body(response: Response) -> Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn issuers_list_every_generation_of_a_rotation_with_its_state() {
        let cfg = |cn: &str| tlsmint_ca::CaConfig {
            name: "pki".into(),
            subject: tlsmint_ca::Subject::with_common_name(cn),
            key: tlsmint_ca::KeySpec::EcdsaP256,
            ttl: Duration::from_secs(86400),
        };
        let now = time::OffsetDateTime::now_utc();
        let active = CertificateAuthority::generate_root(&cfg("Active"), now).unwrap();
        let next = CertificateAuthority::generate_root(&cfg("Next"), now).unwrap();
        let mount = MountEntry {
            name: "pki".into(),
            path: "pki".into(),
            status: crate::registry::MountStatus::Ready(std::sync::Arc::new(active)),
            crl_expiry: Duration::from_secs(3600),
            trusted_roots: Vec::new(),
            other_generations: vec![OtherGeneration {
                state: "next",
                phase: "Published",
                certificate_der: next.certificate_der().to_vec(),
                ca_chain_pem: next.ca_chain_pem(),
            }],
        };
        let listed = body(list_issuers(&mount)).await;
        let keys = listed["data"]["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2);
        let next_id = derived_id(next.certificate_der());
        let info = &listed["data"]["key_info"];
        assert_eq!(info[&next_id]["tlsmint_state"], "next");
        assert_eq!(info[&next_id]["tlsmint_rotation_phase"], "Published");
        assert_eq!(info[&next_id]["is_default"], false);
        assert_eq!(info[keys[0].as_str().unwrap()]["tlsmint_state"], "active");
        for reference in [next_id.as_str(), "pki-next"] {
            let read = body(read_issuer(&mount, None, reference, IssuerForm::Json)).await;
            assert_eq!(
                read["data"]["certificate"].as_str().unwrap(),
                next.certificate_pem().trim_end()
            );
            assert_eq!(read["data"]["issuer_name"], "pki-next");
        }
        let default = body(read_issuer(&mount, None, "default", IssuerForm::Json)).await;
        assert_ne!(default["data"]["issuer_id"], Value::String(next_id));
    }

    #[test]
    fn derived_ids_are_stable_uuid_shaped_and_distinct() {
        let a = derived_id(b"one");
        assert_eq!(a, derived_id(b"one"));
        assert_ne!(a, derived_id(b"two"));
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
    }

    #[test]
    fn a_role_is_shown_in_vaults_fields() {
        let mut spec: IssuerRoleSpec =
            serde_json::from_value(json!({"mountRef": {"name": "pki"}})).unwrap();
        spec.allowed_domains = vec!["{{namespace}}.example.com".into()];
        spec.allow_subdomains = true;
        spec.key.algorithm = KeyAlgorithm::Rsa;
        spec.ext_key_usages = vec![ExtKeyUsage::CodeSigning];
        spec.subjects = vec![tlsmint_api::v1alpha1::RoleSubject::new("apps", "*")];
        let role = RoleEntry::from_spec("web", &spec);
        let v = serde_json::to_value(role_data(&role)).unwrap();
        assert_eq!(v["allowed_domains"], json!(["{{namespace}}.example.com"]));
        assert_eq!(v["allowed_domains_template"], true);
        assert_eq!(v["allow_subdomains"], true);
        assert_eq!(
            (v["key_type"].as_str(), v["key_bits"].as_u64()),
            (Some("rsa"), Some(2048))
        );
        assert_eq!(
            v["key_usage"],
            json!(["DigitalSignature", "KeyEncipherment"])
        );
        assert_eq!(v["code_signing_flag"], true);
        assert_eq!(v["ttl"], 3600);
        assert_eq!(v["max_ttl"].as_u64(), Some(spec.max_ttl.as_std().as_secs()));
        assert_eq!(v["tlsmint_subjects"], json!(["apps/*"]));
    }
}
