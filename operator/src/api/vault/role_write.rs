//! `POST <mount>/roles/<name>` and `DELETE <mount>/roles/<name>` in dev
//! mode: Vault's role fields written into an IssuerRole spec.
//!
//! As in Vault, a write to an existing role changes only the fields it
//! names, and a new role starts from Vault's defaults where they differ from
//! IssuerRole's (`key_type rsa`, `allow_localhost`, `allow_ip_sans` on; the
//! mount's tuned max lease TTL as `max_ttl`). A field tlsmint has no knob
//! for is accepted when its value is the behaviour tlsmint has, and refused
//! naming the difference otherwise; a field Vault does not know either is
//! ignored with Vault's warning. The spec is compiled before it is stored: an
//! invalid role changes nothing.
//!
//! Owns: the Vault-field to IssuerRole-field mapping. Must not: store a role
//! that does not compile.

use axum::response::Response;
use serde_json::{Map, Value};
use tlsmint_api::v1alpha1::{
    DistinguishedName, ExtKeyUsage, IssuerRoleSpec, KeyAlgorithm, KeySpec as ApiKeySpec, KeyUsage,
    RoleSubject,
};

use super::envelope;
use super::params::{self, CommaList, Text, clip};
use crate::api::ApiState;
use crate::api::error::ApiError;
use crate::registry::{MountEntry, RoleEntry, RoleStatus};

/// Vault role fields tlsmint accepts only with the value that is its
/// behaviour (tlsmint keeps no certificate store and always takes the CSR's
/// names, ...): `(field, value tlsmint has, why)`.
const FIXED: [(&str, bool, &str); 7] = [
    ("no_store", true, "tlsmint keeps no certificate store"),
    ("generate_lease", false, "tlsmint issues no leases"),
    (
        "use_csr_common_name",
        true,
        "sign always takes the CSR's common name",
    ),
    ("use_csr_sans", true, "sign always takes the CSR's SANs"),
    (
        "allow_token_displayname",
        false,
        "tokens carry no display name",
    ),
    (
        "basic_constraints_valid_for_non_ca",
        false,
        "leaves get no basicConstraints",
    ),
    ("use_pss", false, "tlsmint signs with PKCS#1 v1.5 or ECDSA"),
];

/// Vault role fields whose only supported value is empty (a list or text).
const EMPTY_ONLY: [&str; 7] = [
    "allowed_other_sans",
    "allowed_serial_numbers",
    "allowed_user_ids",
    "policy_identifiers",
    "ext_key_usage_oids",
    "street_address",
    "postal_code",
];

/// Vault role fields accepted and without effect in tlsmint.
const NO_EFFECT: [&str; 6] = [
    "allowed_domains_template",
    "allowed_uri_sans_template",
    "signature_bits",
    "issuer_ref",
    "cn_validations",
    "not_after",
];

/// `POST <mount>/roles/<name>`.
pub fn write(
    state: &ApiState,
    mount: &MountEntry,
    name: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    check_name(name)?;
    let fields: Map<String, Value> = if body.iter().all(u8::is_ascii_whitespace) {
        Map::new()
    } else {
        match serde_json::from_slice(body) {
            Ok(Value::Object(map)) => map,
            _ => {
                return Err(ApiError::InvalidArgument(
                    "the request body must be a JSON object".into(),
                ));
            }
        }
    };
    let existing = state.registry.role(name);
    if let Some(other) = &existing
        && other.mount != mount.name
    {
        return Err(ApiError::InvalidArgument(format!(
            "role {name:?} already exists on mount {}: tlsmint role names are unique on a server \
             (they are IssuerRole names), pick another name",
            other.mount
        )));
    }
    let mut spec = match &existing {
        Some(role) => (*role.spec).clone(),
        None => vault_defaults(mount),
    };
    let mut warnings = Vec::new();
    apply(&mut spec, &fields, &mut warnings)?;
    let entry = RoleEntry::from_spec(name, &spec);
    if let RoleStatus::Invalid(why) = &entry.status {
        return Err(ApiError::InvalidArgument(format!("role {name:?}: {why}")));
    }
    state.registry.put_role(entry);
    let role = state
        .registry
        .role(name)
        .ok_or_else(|| ApiError::Internal("the role was not stored".into()))?;
    Ok(envelope::data(
        super::inventory::role_data(&role),
        &warnings,
    ))
}

/// `DELETE <mount>/roles/<name>`: gone (a missing role is no error, as in Vault).
pub fn delete(state: &ApiState, mount: &MountEntry, name: &str) -> Result<Response, ApiError> {
    if let Some(role) = state.registry.role(name)
        && role.mount == mount.name
    {
        state.registry.remove_role(name);
    }
    Ok(envelope::no_content())
}

/// A role name must be an object name (it is an IssuerRole's).
fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::InvalidArgument(format!(
            "role name {:?} may hold only letters, digits, '-', '_' and '.' (at most 253)",
            clip(name)
        )))
    }
}

/// A new role's spec with Vault's defaults where they differ from IssuerRole's.
fn vault_defaults(mount: &MountEntry) -> IssuerRoleSpec {
    let mut spec = IssuerRoleSpec::new(mount.name.clone());
    // Dev mode: anyone with a token may use it, as a Vault policy-less dev server.
    spec.subjects = vec![RoleSubject::new("*", "*")];
    spec.allow_localhost = true;
    spec.allow_ip_sans = true;
    spec.key = ApiKeySpec::new(KeyAlgorithm::Rsa);
    if let Some(max) = mount.ca().and_then(|ca| ca.options().max_ttl)
        && let Ok(max) = tlsmint_api::Duration::from_std(max)
    {
        spec.max_ttl = max;
    }
    spec
}

/// Applies Vault's role fields to `spec`; a field whose value tlsmint cannot honour is
/// an error.
fn apply(
    spec: &mut IssuerRoleSpec,
    fields: &Map<String, Value>,
    warnings: &mut Vec<String>,
) -> Result<(), ApiError> {
    let unknown = apply_fields(spec, fields, warnings, None)?;
    if !unknown.is_empty() {
        warnings.push(format!(
            "Endpoint ignored these unrecognized parameters: [{}]",
            unknown.join(" ")
        ));
    }
    Ok(())
}

/// A Vault role as Vault reads it back (`GET <mount>/roles/<name>`, every field with its
/// value) turned into an IssuerRole spec on `mount` for `tlsmint-operator migrate`: what
/// carries over is set, and every field that has no tlsmint equivalent, differs, or was
/// refused is a line of the returned report instead of an error. Vault's defaults that
/// are tlsmint's behaviour (e.g. `use_csr_sans: true`) produce no line.
pub(crate) fn from_vault_role(
    mount: &str,
    fields: &Map<String, Value>,
) -> (IssuerRoleSpec, Vec<String>) {
    let mut spec = IssuerRoleSpec::new(mount);
    let mut warnings = Vec::new();
    let mut report = Vec::new();
    // With a report, faults go into it; an error here would be a bug, still reported.
    match apply_fields(&mut spec, fields, &mut warnings, Some(&mut report)) {
        Ok(unknown) if !unknown.is_empty() => warnings.push(format!(
            "no tlsmint equivalent, not carried over: [{}]",
            unknown.join(" ")
        )),
        Ok(_) => {}
        Err(e) => report.push(e.to_string()),
    }
    report.extend(warnings);
    (spec, report)
}

/// The field loop of [`apply`] and [`from_vault_role`]: with `report`, a field that
/// cannot be honoured is recorded there and skipped; without, it is an error. Returns the
/// fields tlsmint does not know, sorted.
fn apply_fields(
    spec: &mut IssuerRoleSpec,
    fields: &Map<String, Value>,
    warnings: &mut Vec<String>,
    mut report: Option<&mut Vec<String>>,
) -> Result<Vec<String>, ApiError> {
    let mut unknown = Vec::new();
    let mut key_type = None;
    let mut key_bits = None;
    for (field, value) in fields {
        let f = field.as_str();
        let applied = match f {
            "key_type" => text(f, value).map(|t| key_type = Some(t)),
            "key_bits" => text(f, value).map(|t| key_bits = Some(t)),
            _ => apply_field(spec, f, value, warnings, &mut unknown),
        };
        match (applied, report.as_deref_mut()) {
            (Ok(()), _) => {}
            (Err(e), Some(report)) => report.push(format!("{e} (not carried over)")),
            (Err(e), None) => return Err(e),
        }
    }
    if key_type.is_some() || key_bits.is_some() {
        match (role_key(spec.key, key_type, key_bits, warnings), report) {
            (Ok(key), _) => spec.key = key,
            (Err(e), Some(report)) => report.push(format!("{e} (not carried over)")),
            (Err(e), None) => return Err(e),
        }
    }
    unknown.sort();
    Ok(unknown)
}

/// Applies one Vault role field (other than `key_type`/`key_bits`) to `spec`.
fn apply_field(
    spec: &mut IssuerRoleSpec,
    f: &str,
    value: &Value,
    warnings: &mut Vec<String>,
    unknown: &mut Vec<String>,
) -> Result<(), ApiError> {
    match f {
        "allowed_domains" => spec.allowed_domains = list(f, value)?,
        "allow_bare_domains" => spec.allow_bare_domains = flag(f, value)?,
        "allow_subdomains" => spec.allow_subdomains = flag(f, value)?,
        "allow_glob_domains" => spec.allow_glob_domains = flag(f, value)?,
        "allow_wildcard_certificates" => spec.allow_wildcard_certificates = flag(f, value)?,
        "allow_localhost" => spec.allow_localhost = flag(f, value)?,
        "allow_any_name" => spec.allow_any_name = flag(f, value)?,
        "enforce_hostnames" => spec.enforce_hostnames = flag(f, value)?,
        "allow_ip_sans" => spec.allow_ip_sans = flag(f, value)?,
        "allowed_uri_sans" => spec.allowed_uri_sans = list(f, value)?,
        "require_cn" => spec.require_common_name = flag(f, value)?,
        "server_flag" => spec.server_flag = flag(f, value)?,
        "client_flag" => spec.client_flag = flag(f, value)?,
        "code_signing_flag" => set_ext(spec, ExtKeyUsage::CodeSigning, flag(f, value)?),
        "email_protection_flag" => set_ext(spec, ExtKeyUsage::EmailProtection, flag(f, value)?),
        "key_usage" => spec.key_usages = key_usages(&list(f, value)?)?,
        "ext_key_usage" => ext_key_usages(spec, &list(f, value)?)?,
        // 0 is Vault's "the mount's default"; tlsmint's role defaults stay.
        "ttl" | "max_ttl" => {
            let d = duration(f, value)?;
            if d.as_std().is_zero() {
                if f == "ttl" {
                    warnings.push(
                        "ttl 0 (in Vault: the mount's default lease TTL) keeps tlsmint's role default of 1h".into(),
                    );
                }
            } else if f == "ttl" {
                spec.ttl = d;
            } else {
                spec.max_ttl = d;
            }
        }
        "not_before_duration" => spec.not_before_duration = duration(f, value)?,
        "organization" | "ou" | "country" | "locality" | "province" => {
            subject_field(spec, f, list(f, value)?)
        }
        "tlsmint_subjects" => spec.subjects = subjects(&list(f, value)?)?,
        _ => {
            if let Some((_, want, why)) = FIXED.iter().find(|(name, ..)| *name == f) {
                if flag(f, value)? != *want {
                    return Err(ApiError::InvalidArgument(format!(
                        "{f}={}: tlsmint supports only {f}={want} ({why})",
                        !want
                    )));
                }
            } else if EMPTY_ONLY.contains(&f) {
                if !list(f, value)?.is_empty() {
                    return Err(ApiError::InvalidArgument(format!(
                        "{f}: tlsmint has no equivalent; only an empty value is accepted"
                    )));
                }
            } else if NO_EFFECT.contains(&f) {
                if !is_empty_value(value) {
                    warnings.push(format!("{f} has no effect in tlsmint"));
                }
            } else {
                unknown.push(clip(f));
            }
        }
    }
    Ok(())
}

/// Whether a field's value is its "not set" form (`""`, `[]`, `null`, `false`, `0`), for
/// which "has no effect" is not worth a warning.
fn is_empty_value(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

fn text(field: &str, value: &Value) -> Result<String, ApiError> {
    let text: Text = serde_json::from_value(value.clone())
        .map_err(|_| ApiError::InvalidArgument(format!("{field}: expected a string")))?;
    Ok(text.0.unwrap_or_default())
}

fn flag(field: &str, value: &Value) -> Result<bool, ApiError> {
    let text = text(field, value)?;
    match text.as_str() {
        "true" | "1" | "t" | "T" | "TRUE" | "True" => Ok(true),
        "false" | "0" | "f" | "F" | "FALSE" | "False" | "" => Ok(false),
        other => Err(ApiError::InvalidArgument(format!(
            "{field}: {:?} is not a boolean",
            clip(other)
        ))),
    }
}

fn list(field: &str, value: &Value) -> Result<Vec<String>, ApiError> {
    let list: CommaList = serde_json::from_value(value.clone()).map_err(|_| {
        ApiError::InvalidArgument(format!(
            "{field}: expected a comma-separated string or a list of strings"
        ))
    })?;
    Ok(list.0)
}

fn duration(field: &str, value: &Value) -> Result<tlsmint_api::Duration, ApiError> {
    let text = Text(Some(text(field, value)?).filter(|t| !t.is_empty()));
    let d = params::ttl(field, &text)?.unwrap_or_default();
    tlsmint_api::Duration::from_std(d)
        .map_err(|e| ApiError::InvalidArgument(format!("{field}: {e}")))
}

fn set_ext(spec: &mut IssuerRoleSpec, usage: ExtKeyUsage, on: bool) {
    spec.ext_key_usages.retain(|u| *u != usage);
    if on {
        spec.ext_key_usages.push(usage);
    }
}

fn key_usages(names: &[String]) -> Result<Vec<KeyUsage>, ApiError> {
    names
        .iter()
        .map(|n| match n.trim_start_matches("KeyUsage") {
            "DigitalSignature" => Ok(KeyUsage::DigitalSignature),
            "ContentCommitment" | "NonRepudiation" => Ok(KeyUsage::ContentCommitment),
            "KeyEncipherment" => Ok(KeyUsage::KeyEncipherment),
            "DataEncipherment" => Ok(KeyUsage::DataEncipherment),
            "KeyAgreement" => Ok(KeyUsage::KeyAgreement),
            other => Err(ApiError::InvalidArgument(format!(
                "key_usage {:?}: leaves may have DigitalSignature, ContentCommitment, \
                 KeyEncipherment, DataEncipherment or KeyAgreement",
                clip(other)
            ))),
        })
        .collect()
}

fn ext_key_usages(spec: &mut IssuerRoleSpec, names: &[String]) -> Result<(), ApiError> {
    let mut usages = Vec::new();
    for name in names {
        let usage = match name.trim_start_matches("ExtKeyUsage") {
            "ServerAuth" => ExtKeyUsage::ServerAuth,
            "ClientAuth" => ExtKeyUsage::ClientAuth,
            "CodeSigning" => ExtKeyUsage::CodeSigning,
            "EmailProtection" => ExtKeyUsage::EmailProtection,
            "TimeStamping" => ExtKeyUsage::TimeStamping,
            "OCSPSigning" | "OcspSigning" => ExtKeyUsage::OcspSigning,
            other => {
                return Err(ApiError::InvalidArgument(format!(
                    "ext_key_usage {:?}: tlsmint knows ServerAuth, ClientAuth, CodeSigning, \
                     EmailProtection, TimeStamping and OCSPSigning",
                    clip(other)
                )));
            }
        };
        usages.push(usage);
    }
    // serverFlag and clientFlag stay the switches for the two TLS usages.
    spec.ext_key_usages = usages;
    Ok(())
}

fn subject_field(spec: &mut IssuerRoleSpec, field: &str, values: Vec<String>) {
    let subject = spec.subject.get_or_insert_with(DistinguishedName::default);
    let slot = match field {
        "organization" => &mut subject.organization,
        "ou" => &mut subject.organizational_unit,
        "country" => &mut subject.country,
        "locality" => &mut subject.locality,
        _ => &mut subject.province,
    };
    *slot = values;
}

/// `namespace/serviceAccount` patterns (`*` for any).
fn subjects(items: &[String]) -> Result<Vec<RoleSubject>, ApiError> {
    items
        .iter()
        .map(|item| match item.split_once('/') {
            Some((ns, sa)) if !ns.is_empty() && !sa.is_empty() => Ok(RoleSubject::new(ns, sa)),
            _ => Err(ApiError::InvalidArgument(format!(
                "tlsmint_subjects {:?}: expected namespace/serviceAccount (either may be *)",
                clip(item)
            ))),
        })
        .collect()
}

/// The role's key from Vault's `key_type` and `key_bits`; `any` keeps the
/// current key type as the default and says so.
fn role_key(
    current: ApiKeySpec,
    key_type: Option<String>,
    key_bits: Option<String>,
    warnings: &mut Vec<String>,
) -> Result<ApiKeySpec, ApiError> {
    let kind = key_type.unwrap_or_else(|| {
        match current.algorithm {
            KeyAlgorithm::Ecdsa => "ec",
            KeyAlgorithm::Ed25519 => "ed25519",
            KeyAlgorithm::Rsa => "rsa",
        }
        .to_owned()
    });
    if kind == "any" {
        warnings.push(format!(
            "key_type any: tlsmint roles name one key type; issue generates {} keys and sign \
             accepts the keys that role allows",
            current.algorithm.as_str()
        ));
        return Ok(current);
    }
    let spec = super::admin::key_spec(&Text(Some(kind)), &Text(key_bits))?;
    Ok(match spec {
        tlsmint_ca::KeySpec::EcdsaP256 => ApiKeySpec {
            algorithm: KeyAlgorithm::Ecdsa,
            size: Some(256),
        },
        tlsmint_ca::KeySpec::EcdsaP384 => ApiKeySpec {
            algorithm: KeyAlgorithm::Ecdsa,
            size: Some(384),
        },
        tlsmint_ca::KeySpec::Ed25519 => ApiKeySpec::new(KeyAlgorithm::Ed25519),
        tlsmint_ca::KeySpec::Rsa2048 => ApiKeySpec {
            algorithm: KeyAlgorithm::Rsa,
            size: Some(2048),
        },
        tlsmint_ca::KeySpec::Rsa3072 => ApiKeySpec {
            algorithm: KeyAlgorithm::Rsa,
            size: Some(3072),
        },
        tlsmint_ca::KeySpec::Rsa4096 => ApiKeySpec {
            algorithm: KeyAlgorithm::Rsa,
            size: Some(4096),
        },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn applied(
        base: IssuerRoleSpec,
        body: Value,
    ) -> Result<(IssuerRoleSpec, Vec<String>), ApiError> {
        let mut spec = base;
        let mut warnings = Vec::new();
        let Value::Object(map) = body else {
            panic!("object")
        };
        apply(&mut spec, &map, &mut warnings)?;
        Ok((spec, warnings))
    }

    #[test]
    fn the_tutorial_role_maps_to_its_issuer_role_fields() {
        let (spec, warnings) = applied(
            IssuerRoleSpec::new("pki-int"),
            json!({
                "allowed_domains": "example.com,example.org",
                "allow_subdomains": "true",
                "max_ttl": "720h",
                "ttl": 3600,
                "key_type": "ec",
                "key_bits": 384,
                "key_usage": ["DigitalSignature"],
                "issuer_ref": "root-2023",
                "organization": "Example Inc.",
            }),
        )
        .unwrap();
        assert_eq!(spec.allowed_domains, vec!["example.com", "example.org"]);
        assert!(spec.allow_subdomains);
        assert_eq!(spec.max_ttl.as_std().as_secs(), 720 * 3600);
        assert_eq!(spec.ttl.as_std().as_secs(), 3600);
        assert_eq!(spec.key.algorithm, KeyAlgorithm::Ecdsa);
        assert_eq!(spec.key.size, Some(384));
        assert_eq!(spec.key_usages, vec![KeyUsage::DigitalSignature]);
        assert_eq!(
            spec.subject.unwrap().organization,
            vec!["Example Inc.".to_owned()]
        );
        assert_eq!(warnings, vec!["issuer_ref has no effect in tlsmint"]);
    }

    #[test]
    fn a_value_tlsmint_cannot_honour_is_refused_by_name_and_unknown_fields_warned() {
        let err = applied(IssuerRoleSpec::new("m"), json!({ "no_store": false }))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no_store") && err.contains("store"), "{err}");
        let err = applied(
            IssuerRoleSpec::new("m"),
            json!({ "allowed_other_sans": "1.2.3;UTF8:x" }),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("allowed_other_sans"), "{err}");
        let err = applied(
            IssuerRoleSpec::new("m"),
            json!({ "allow_subdomains": "maybe" }),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("allow_subdomains") && err.contains("maybe"),
            "{err}"
        );
        let (_, warnings) = applied(
            IssuerRoleSpec::new("m"),
            json!({ "no_store": true, "frobnicate": 1 }),
        )
        .unwrap();
        assert_eq!(
            warnings,
            vec!["Endpoint ignored these unrecognized parameters: [frobnicate]"]
        );
    }

    #[test]
    fn a_partial_write_changes_only_the_fields_it_names() {
        let mut base = IssuerRoleSpec::new("m");
        base.allowed_domains = vec!["example.com".into()];
        base.allow_subdomains = true;
        let (spec, _) = applied(base, json!({ "max_ttl": "48h" })).unwrap();
        assert_eq!(spec.allowed_domains, vec!["example.com"]);
        assert!(spec.allow_subdomains);
        assert_eq!(spec.max_ttl.as_std().as_secs(), 48 * 3600);
    }

    #[test]
    fn role_names_must_be_object_names() {
        assert!(check_name("web-server").is_ok());
        assert!(check_name("2023-servers").is_ok());
        assert!(check_name("a/b").is_err());
        assert!(check_name("").is_err());
    }
}
