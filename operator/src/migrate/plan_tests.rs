#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;
use tlsmint_ca::{CaConfig, KeyEncoding, KeySpec, Subject};

use super::*;

fn root(cn: &str) -> CertificateAuthority {
    let cfg = CaConfig {
        name: "pki".into(),
        subject: Subject::with_common_name(cn),
        key: KeySpec::EcdsaP384,
        ttl: std::time::Duration::from_secs(86_400),
    };
    CertificateAuthority::generate_root(&cfg, time::OffsetDateTime::now_utc()).unwrap()
}

fn intermediate(parent: &CertificateAuthority) -> CertificateAuthority {
    let cfg = CaConfig {
        name: "pki-int".into(),
        subject: Subject::with_common_name("example.com Intermediate Authority"),
        key: KeySpec::Rsa2048,
        ttl: std::time::Duration::from_secs(3_600),
    };
    CertificateAuthority::generate_intermediate(&cfg, parent, time::OffsetDateTime::now_utc())
        .unwrap()
}

fn issuer(ca: &CertificateAuthority) -> VaultIssuer {
    VaultIssuer {
        id: "0b1f".into(),
        name: "root-2023".into(),
        certificate: ca.certificate_pem(),
        ca_chain: std::iter::once(ca.certificate_pem())
            .chain(ca.ca_chain_pem().into_iter().skip(1))
            .collect(),
    }
}

fn object(value: serde_json::Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("an object"),
    }
}

/// A role as Vault 1.21 reads it back after the tutorial's
/// `vault write pki_int/roles/example-dot-com allowed_domains=example.com allow_subdomains=true max_ttl=720h`.
fn tutorial_role() -> Map<String, Value> {
    object(
        serde_json::from_str(
            r#"{
        "allow_any_name": false, "allow_bare_domains": false, "allow_glob_domains": false,
        "allow_ip_sans": true, "allow_localhost": true, "allow_subdomains": true,
        "allow_token_displayname": false, "allow_wildcard_certificates": true,
        "allowed_domains": ["example.com"], "allowed_domains_template": false,
        "allowed_other_sans": [], "allowed_serial_numbers": [], "allowed_uri_sans": [],
        "allowed_uri_sans_template": false, "allowed_user_ids": [],
        "basic_constraints_valid_for_non_ca": false, "client_flag": true,
        "cn_validations": ["email", "hostname"], "code_signing_flag": false, "country": [],
        "email_protection_flag": false, "enforce_hostnames": true, "ext_key_usage": [],
        "ext_key_usage_oids": [], "generate_lease": false, "issuer_ref": "default",
        "key_bits": 2048, "key_type": "rsa",
        "key_usage": ["DigitalSignature", "KeyAgreement", "KeyEncipherment"],
        "locality": [], "max_ttl": 2592000, "no_store": false, "no_store_metadata": false,
        "not_after": "", "not_before_duration": 30, "organization": [], "ou": [],
        "policy_identifiers": [], "postal_code": [], "province": [], "require_cn": true,
        "serial_number_source": "json-csr", "server_flag": true, "signature_bits": 256,
        "street_address": [], "ttl": 0, "use_csr_common_name": true, "use_csr_sans": true,
        "use_pss": false
    }"#,
        )
        .unwrap(),
    )
}

fn report_has(plan: &Plan, needle: &str) -> bool {
    plan.report.iter().any(|l| l.contains(needle))
}

#[test]
fn object_names_from_vault_paths() {
    assert_eq!(object_name("pki").as_deref(), Some("pki"));
    assert_eq!(object_name("pki_int").as_deref(), Some("pki-int"));
    assert_eq!(
        object_name("teams/Web_PKI").as_deref(),
        Some("teams-web-pki")
    );
    assert_eq!(object_name("_").as_deref(), None);
    assert_eq!(object_name(&"a".repeat(64)), None);
}

#[test]
fn the_tutorial_hierarchy_with_the_root_key_imports_the_root_and_remakes_the_intermediate() {
    let root_ca = root("example.com");
    let int_ca = intermediate(&root_ca);
    let key = root_ca.key().to_pem(KeyEncoding::Pkcs8).unwrap();
    let mounts = vec![
        VaultMount {
            path: "pki_int".into(),
            max_lease_ttl: 43_800 * 3600,
            issuer: Some(issuer(&int_ca)),
            roles: vec![("example-dot-com".into(), tutorial_role())],
            ..VaultMount::default()
        },
        VaultMount {
            path: "pki".into(),
            max_lease_ttl: 87_600 * 3600,
            issuer: Some(issuer(&root_ca)),
            urls: object(json!({
                "issuing_certificates": ["http://127.0.0.1:8200/v1/pki/ca"],
                "crl_distribution_points": ["http://127.0.0.1:8200/v1/pki/crl"],
                "ocsp_servers": [], "enable_templating": false
            })),
            crl: object(json!({"expiry": "72h", "disable": false})),
            other_issuers: vec!["old-root".into()],
            ..VaultMount::default()
        },
    ];
    let options = Options {
        keys: BTreeMap::from([("pki".to_owned(), key.clone())]),
        subjects: vec![RoleSubject::new("apps", "*")],
    };
    let plan = plan(&mounts, &options);

    // The root: imported with its key, same subject and key type, Vault's config.
    let pki = plan
        .mounts
        .iter()
        .find(|m| m.metadata.name.as_deref() == Some("pki"))
        .unwrap();
    assert_eq!(pki.spec.mount_type, MountType::Root);
    assert_eq!(pki.spec.subject.common_name, "example.com");
    assert_eq!(pki.spec.key.algorithm, KeyAlgorithm::Ecdsa);
    assert_eq!(pki.spec.key.size, Some(384));
    assert_eq!(pki.spec.path, None);
    assert_eq!(pki.spec.max_ttl.unwrap().as_std().as_secs(), 87_600 * 3600);
    assert_eq!(pki.spec.crl.expiry.as_std().as_secs(), 72 * 3600);
    assert_eq!(
        pki.spec.urls.as_ref().unwrap().issuing_certificates,
        vec!["http://127.0.0.1:8200/v1/pki/ca"]
    );
    let import = pki.spec.import_from.as_ref().unwrap();
    assert_eq!(import.secret_ref.name, "pki-vault-import");
    assert_eq!(plan.secrets.len(), 1);
    assert_eq!(plan.secrets[0].key.expose_secret(), key.expose_secret());
    assert_eq!(
        tlsmint_ca::pem::decode_certificates(&plan.secrets[0].certificates).unwrap(),
        vec![root_ca.certificate_der().to_vec()]
    );
    assert!(pki.validate().is_ok(), "{:?}", pki.validate());

    // The intermediate: no key, so a new one signed by the imported root, same path.
    let int = plan
        .mounts
        .iter()
        .find(|m| m.metadata.name.as_deref() == Some("pki-int"))
        .unwrap();
    assert_eq!(int.spec.mount_type, MountType::Intermediate);
    assert_eq!(int.spec.path.as_deref(), Some("pki_int"));
    assert_eq!(int.spec.parent_ref.as_ref().unwrap().name, "pki");
    assert_eq!(int.spec.import_from, None);
    assert_eq!(int.spec.key.algorithm, KeyAlgorithm::Rsa);
    assert_eq!(
        int.spec.subject.common_name,
        "example.com Intermediate Authority"
    );
    assert!(int.validate().is_ok(), "{:?}", int.validate());
    assert!(report_has(
        &plan,
        "pki_int: no CA key given (--key): a NEW intermediate, signed by the imported root pki"
    ));

    // The role, on the intermediate, with the given subjects.
    assert_eq!(plan.roles.len(), 1);
    let role = &plan.roles[0];
    assert_eq!(role.metadata.name.as_deref(), Some("example-dot-com"));
    assert_eq!(role.spec.mount_ref.name, "pki-int");
    assert_eq!(role.spec.allowed_domains, vec!["example.com"]);
    assert!(role.spec.allow_subdomains);
    assert_eq!(role.spec.max_ttl.as_std().as_secs(), 720 * 3600);
    assert_eq!(role.spec.key.algorithm, KeyAlgorithm::Rsa);
    assert_eq!(role.spec.subjects, vec![RoleSubject::new("apps", "*")]);
    assert!(role.spec.validate().is_ok(), "{:?}", role.spec.validate());

    // What does not carry over is reported, each with its mount and role.
    for needle in [
        "pki_int/roles/example-dot-com: no_store=false: tlsmint supports only no_store=true",
        "pki_int/roles/example-dot-com: cn_validations has no effect in tlsmint",
        "pki_int/roles/example-dot-com: issuer_ref has no effect in tlsmint",
        "no tlsmint equivalent, not carried over: [no_store_metadata serial_number_source]",
        "pki_int/roles/example-dot-com: ttl 0 (in Vault: the mount's default lease TTL) keeps tlsmint's role default of 1h",
        "pki: issuer old-root is not the default issuer",
        "pki: spec.urls are Vault's config/urls",
    ] {
        assert!(report_has(&plan, needle), "{needle}: {:#?}", plan.report);
    }
    // Vault's defaults that are tlsmint's behaviour say nothing.
    for quiet in [
        "use_csr_sans",
        "generate_lease",
        "allowed_other_sans",
        "max_ttl",
    ] {
        assert!(
            !plan.report.iter().any(|l| l.contains(&format!(" {quiet}"))),
            "{quiet}: {:#?}",
            plan.report
        );
    }
}

#[test]
fn an_intermediate_of_an_unmigrated_parent_publishes_a_csr() {
    let root_ca = root("Elsewhere Root");
    let int_ca = intermediate(&root_ca);
    let mounts = vec![VaultMount {
        path: "pki_int".into(),
        issuer: Some(issuer(&int_ca)),
        roles: vec![("web".into(), tutorial_role())],
        ..VaultMount::default()
    }];
    let plan = plan(&mounts, &Options::default());
    let int = &plan.mounts[0];
    assert_eq!(int.spec.mount_type, MountType::Intermediate);
    assert_eq!(int.spec.parent_ref, None);
    assert!(int.validate().is_ok());
    assert!(report_has(&plan, "publishes status.csr"));
    assert!(report_has(&plan, "root/sign-intermediate"));
    assert!(report_has(&plan, "spec.subjects are empty"));
    assert!(plan.roles[0].spec.subjects.is_empty());
}

#[test]
fn a_key_that_does_not_fit_is_refused_and_nothing_of_the_mount_written() {
    let root_ca = root("Root");
    let other = root("Other").key().to_pem(KeyEncoding::Pkcs8).unwrap();
    let mounts = vec![VaultMount {
        path: "pki".into(),
        issuer: Some(issuer(&root_ca)),
        roles: vec![("web".into(), tutorial_role())],
        ..VaultMount::default()
    }];
    let options = Options {
        keys: BTreeMap::from([
            ("pki".to_owned(), other),
            ("nope".to_owned(), SecretString::from("x")),
        ]),
        subjects: Vec::new(),
    };
    let plan = plan(&mounts, &options);
    assert!(plan.mounts.is_empty() && plan.secrets.is_empty() && plan.roles.is_empty());
    assert!(report_has(
        &plan,
        "pki: the key given with --key does not fit"
    ));
    assert!(report_has(
        &plan,
        "--key nope=...: no PKI mount of that path"
    ));
    assert!(!plan.report.iter().any(|l| l.contains("PRIVATE KEY")));
}

#[test]
fn a_root_without_its_key_is_a_new_root_and_role_names_stay_unique() {
    let a = root("A");
    let b = root("B");
    let mounts = vec![
        VaultMount {
            path: "pki-a".into(),
            issuer: Some(issuer(&a)),
            roles: vec![("web".into(), tutorial_role())],
            ..VaultMount::default()
        },
        VaultMount {
            path: "pki-b".into(),
            issuer: Some(issuer(&b)),
            roles: vec![
                ("web".into(), tutorial_role()),
                ("Web_Server".into(), tutorial_role()),
            ],
            ..VaultMount::default()
        },
        VaultMount {
            path: "empty".into(),
            ..VaultMount::default()
        },
    ];
    let plan = plan(&mounts, &Options::default());
    assert_eq!(plan.mounts.len(), 2);
    assert!(report_has(
        &plan,
        "pki-a: no CA key given (--key): this PkiMount makes a NEW root CA"
    ));
    assert!(report_has(&plan, "empty: has no issuer"));
    let names: Vec<_> = plan
        .roles
        .iter()
        .map(|r| r.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, vec!["pki-a-web", "pki-b-web", "web-server"]);
    assert!(report_has(
        &plan,
        "pki-b/roles/Web_Server: renamed web-server"
    ));
}

#[test]
fn the_rendered_yaml_applies_as_kubernetes_objects() {
    let root_ca = root("Root");
    let key = root_ca.key().to_pem(KeyEncoding::Pkcs8).unwrap();
    let mounts = vec![VaultMount {
        path: "pki".into(),
        issuer: Some(issuer(&root_ca)),
        roles: vec![("web".into(), tutorial_role())],
        ..VaultMount::default()
    }];
    let options = Options {
        keys: BTreeMap::from([("pki".to_owned(), key)]),
        subjects: vec![RoleSubject::new("*", "*")],
    };
    let yaml = super::super::render(&plan(&mounts, &options), "tlsmint-system").unwrap();
    let docs: Vec<serde_json::Value> = serde_yaml_ng::Deserializer::from_str(&yaml)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let kinds: Vec<_> = docs
        .iter()
        .map(|d| d["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, vec!["Secret", "PkiMount", "IssuerRole"]);
    assert_eq!(docs[0]["metadata"]["namespace"], "tlsmint-system");
    assert_eq!(docs[0]["type"], "kubernetes.io/tls");
    assert_eq!(docs[1]["apiVersion"], "pki.tlsmint.io/v1alpha1");
    assert_eq!(
        docs[1]["spec"]["importFrom"]["secretRef"]["name"],
        "pki-vault-import"
    );
    let _: PkiMount = serde_json::from_value(docs[1].clone()).unwrap();
    let _: IssuerRole = serde_json::from_value(docs[2].clone()).unwrap();
}
