//! Tests of the IssuerRole types: JSON names, defaults, subjects and every validation error.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use super::*;
use crate::conditions;
use crate::v1alpha1::KeyAlgorithm;

fn full_spec() -> IssuerRoleSpec {
    IssuerRoleSpec {
        mount_ref: NameReference::new("pki-int"),
        subjects: vec![
            RoleSubject::new("web", "frontend"),
            RoleSubject::new("*", "ingress"),
        ],
        allowed_domains: vec![
            "example.com".into(),
            "{{namespace}}.svc.cluster.local".into(),
        ],
        allow_bare_domains: true,
        allow_subdomains: true,
        allow_glob_domains: true,
        allow_wildcard_certificates: true,
        allow_localhost: true,
        allow_any_name: true,
        enforce_hostnames: false,
        allow_ip_sans: true,
        allowed_uri_sans: vec![
            "spiffe://cluster.local/ns/{{namespace}}/sa/{{serviceAccount}}".into(),
        ],
        require_common_name: true,
        server_flag: false,
        client_flag: false,
        key_usages: vec![KeyUsage::DigitalSignature, KeyUsage::KeyAgreement],
        ext_key_usages: vec![ExtKeyUsage::CodeSigning, ExtKeyUsage::OcspSigning],
        subject: Some(DistinguishedName {
            organization: vec!["Example".into()],
            ..Default::default()
        }),
        key: KeySpec {
            algorithm: KeyAlgorithm::Rsa,
            size: Some(3072),
        },
        ttl: Duration::from_hours(2),
        max_ttl: Duration::from_hours(720),
        not_before_duration: Duration::from_secs(60),
    }
}

#[test]
fn serialises_every_field_with_its_spec_name() {
    let mut role = IssuerRole::new("web-server", full_spec());
    role.status = Some(IssuerRoleStatus {
        conditions: vec![conditions::ready(
            conditions::reason::READY,
            "",
            Some(2),
            Time(Timestamp::UNIX_EPOCH),
        )],
        observed_generation: Some(2),
    });
    let value = serde_json::to_value(&role).unwrap();
    assert_eq!(value["kind"], json!("IssuerRole"));
    assert_eq!(
        value["spec"],
        json!({
            "mountRef": {"name": "pki-int"},
            "subjects": [
                {"namespace": "web", "serviceAccount": "frontend"},
                {"namespace": "*", "serviceAccount": "ingress"},
            ],
            "allowedDomains": ["example.com", "{{namespace}}.svc.cluster.local"],
            "allowBareDomains": true,
            "allowSubdomains": true,
            "allowGlobDomains": true,
            "allowWildcardCertificates": true,
            "allowLocalhost": true,
            "allowAnyName": true,
            "enforceHostnames": false,
            "allowIPSANs": true,
            "allowedURISANs": ["spiffe://cluster.local/ns/{{namespace}}/sa/{{serviceAccount}}"],
            "requireCommonName": true,
            "serverFlag": false,
            "clientFlag": false,
            "keyUsages": ["DigitalSignature", "KeyAgreement"],
            "extKeyUsages": ["CodeSigning", "OCSPSigning"],
            "subject": {"organization": ["Example"]},
            "key": {"algorithm": "RSA", "size": 3072},
            "ttl": "2h",
            "maxTTL": "720h",
            "notBeforeDuration": "1m",
        })
    );
    let status_keys: Vec<&str> = value["status"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(status_keys, ["conditions", "observedGeneration"]);
    let back: IssuerRole = serde_json::from_value(value).unwrap();
    assert_eq!(back, role);
}

#[test]
fn minimal_yaml_gets_the_defaults() {
    let spec: IssuerRoleSpec = serde_yaml_ng::from_str("mountRef:\n  name: pki\n").unwrap();
    assert_eq!(spec, IssuerRoleSpec::new("pki"));
    assert!(spec.subjects.is_empty());
    assert_eq!(spec.ttl.to_string(), "1h");
    assert_eq!(spec.max_ttl.to_string(), "24h");
    assert_eq!(spec.not_before_duration.to_string(), "30s");
    assert!(spec.server_flag && spec.client_flag && spec.enforce_hostnames);
    assert!(!spec.allow_wildcard_certificates);
    assert!(!spec.allow_localhost && !spec.allow_ip_sans && !spec.require_common_name);
    assert!(!spec.allow_bare_domains && !spec.allow_subdomains && !spec.allow_glob_domains);
    assert!(!spec.allow_any_name);
    assert_eq!(spec.key, KeySpec::DEFAULT);
    assert_eq!(spec.validate(), Ok(()));
}

#[test]
fn empty_subjects_allow_nobody() {
    let spec = IssuerRoleSpec::new("pki");
    assert!(!spec.allows_subject("default", "default"));
    assert!(!spec.allows_namespace("default"));
}

#[test]
fn subjects_match_exactly_or_by_wildcard() {
    let spec = full_spec();
    assert!(spec.allows_subject("web", "frontend"));
    assert!(!spec.allows_subject("web", "backend"));
    assert!(spec.allows_subject("other", "ingress"));
    assert!(!spec.allows_subject("webx", "frontend"));
    assert!(spec.allows_namespace("web"));
    assert!(spec.allows_namespace("anything"));
    let only_web = IssuerRoleSpec {
        subjects: vec![RoleSubject::new("web", "*")],
        ..IssuerRoleSpec::new("pki")
    };
    assert!(only_web.allows_subject("web", "any-sa"));
    assert!(!only_web.allows_namespace("db"));
    assert!(RoleSubject::new("*", "*").matches("a", "b"));
}

#[test]
fn valid_full_spec_passes() {
    assert_eq!(full_spec().validate(), Ok(()));
}

/// A field path and a change to a valid spec that makes that field invalid.
type Case = (&'static str, Box<dyn Fn(&mut IssuerRoleSpec)>);

#[test]
fn each_invalid_field_is_named() {
    let cases: Vec<Case> = vec![
        (
            "spec.mountRef.name",
            Box::new(|s| s.mount_ref.name = "Bad_Name".into()),
        ),
        (
            "spec.subjects[1].namespace",
            Box::new(|s| s.subjects[1].namespace.clear()),
        ),
        (
            "spec.subjects[0].namespace",
            Box::new(|s| s.subjects[0].namespace = "we*".into()),
        ),
        (
            "spec.subjects[0].namespace",
            Box::new(|s| s.subjects[0].namespace = "a.b".into()),
        ),
        (
            "spec.subjects[0].serviceAccount",
            Box::new(|s| s.subjects[0].service_account.clear()),
        ),
        (
            "spec.subjects[0].serviceAccount",
            Box::new(|s| s.subjects[0].service_account = "Front End".into()),
        ),
        (
            "spec.allowedDomains[0]",
            Box::new(|s| s.allowed_domains[0].clear()),
        ),
        (
            "spec.allowedDomains[0]",
            Box::new(|s| s.allowed_domains[0] = "a .com".into()),
        ),
        (
            "spec.allowedDomains[1]",
            Box::new(|s| s.allowed_domains[1] = "{{pod}}.example.com".into()),
        ),
        (
            "spec.allowedDomains[1]",
            Box::new(|s| s.allowed_domains[1] = "{{namespace}.example.com".into()),
        ),
        (
            "spec.allowedDomains[1]",
            Box::new(|s| s.allowed_domains[1] = "namespace}}.example.com".into()),
        ),
        (
            "spec.allowedURISANs[0]",
            Box::new(|s| s.allowed_uri_sans[0] = "spiffe://x/{{ namespace }}".into()),
        ),
        (
            "spec.subject.country[0]",
            Box::new(|s| s.subject.as_mut().unwrap().country = vec!["de".into()]),
        ),
        ("spec.key.size", Box::new(|s| s.key.size = Some(1024))),
        ("spec.ttl", Box::new(|s| s.ttl = Duration::ZERO)),
        ("spec.maxTTL", Box::new(|s| s.max_ttl = Duration::ZERO)),
        ("spec.ttl", Box::new(|s| s.ttl = Duration::from_hours(721))),
    ];
    for (want, mutate) in cases {
        let mut spec = full_spec();
        mutate(&mut spec);
        let err = spec.validate().unwrap_err();
        assert_eq!(err.field(), want, "{err}");
    }
}

#[test]
fn ttl_above_max_ttl_message() {
    let spec = IssuerRoleSpec {
        ttl: Duration::from_hours(48),
        ..IssuerRoleSpec::new("pki")
    };
    assert_eq!(
        spec.validate().unwrap_err().to_string(),
        "spec.ttl (48h) is longer than spec.maxTTL (24h)"
    );
}

#[test]
fn unknown_template_message_lists_the_known_ones() {
    let spec = IssuerRoleSpec {
        allowed_domains: vec!["{{pod}}.example.com".into()],
        ..IssuerRoleSpec::new("pki")
    };
    assert_eq!(
        spec.validate().unwrap_err().to_string(),
        "spec.allowedDomains[0]: \"{{pod}}.example.com\" has an unknown template \
         (use {{namespace}} or {{serviceAccount}})"
    );
}

#[test]
fn ext_key_usage_names_are_stable() {
    let all = [
        ExtKeyUsage::ServerAuth,
        ExtKeyUsage::ClientAuth,
        ExtKeyUsage::CodeSigning,
        ExtKeyUsage::EmailProtection,
        ExtKeyUsage::TimeStamping,
        ExtKeyUsage::OcspSigning,
    ];
    assert_eq!(
        serde_json::to_value(all).unwrap(),
        json!([
            "ServerAuth",
            "ClientAuth",
            "CodeSigning",
            "EmailProtection",
            "TimeStamping",
            "OCSPSigning"
        ])
    );
    let usages = [
        KeyUsage::DigitalSignature,
        KeyUsage::ContentCommitment,
        KeyUsage::KeyEncipherment,
        KeyUsage::DataEncipherment,
        KeyUsage::KeyAgreement,
    ];
    assert_eq!(
        serde_json::to_value(usages).unwrap(),
        json!([
            "DigitalSignature",
            "ContentCommitment",
            "KeyEncipherment",
            "DataEncipherment",
            "KeyAgreement"
        ])
    );
}
