//! Tests of the PkiMount types: JSON names, defaults and every validation error.

use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use super::*;
use crate::conditions;
use crate::v1alpha1::KeyAlgorithm;

fn time(secs: i64) -> Time {
    Time(Timestamp::from_second(secs).unwrap())
}

fn full_spec() -> PkiMountSpec {
    PkiMountSpec {
        mount_type: MountType::Intermediate,
        subject: CaSubject {
            common_name: "Example Intermediate CA".into(),
            names: DistinguishedName {
                organization: vec!["Example".into()],
                organizational_unit: vec!["Platform".into()],
                country: vec!["DE".into()],
                province: vec!["Berlin".into()],
                locality: vec!["Berlin".into()],
            },
        },
        key: KeySpec {
            algorithm: KeyAlgorithm::Ecdsa,
            size: Some(384),
        },
        ttl: Some(Duration::from_hours(43800)),
        max_ttl: Some(Duration::from_hours(720)),
        leaf_not_after_behavior: LeafNotAfterBehavior::Truncate,
        parent_ref: Some(NameReference::new("pki")),
        signed_certificate_secret_ref: None,
        import_from: None,
        urls: Some(MountUrls {
            issuing_certificates: vec!["https://ca.example.com/v1/pki_int/ca".into()],
            crl_distribution_points: vec!["https://ca.example.com/v1/pki_int/crl".into()],
            ocsp_servers: vec!["https://ca.example.com/v1/pki_int/ocsp".into()],
        }),
        crl: CrlConfig {
            expiry: Duration::from_hours(48),
        },
        path: Some("pki_int".into()),
        rotation: RotationSpec {
            prepare_at: Fraction::new(0.4).unwrap(),
            activate_at: Fraction::new(0.7).unwrap(),
            rekey: false,
            propagation_delay: Duration::from_secs(600),
            requested_at: Some(time(120)),
            reissue: ReissuePolicy::Immediate,
        },
        trust_bundle: Some(TrustBundleSpec {
            namespace_selector: LabelSelector {
                match_labels: Some([("tlsmint.io/trust".to_owned(), "true".to_owned())].into()),
                ..LabelSelector::default()
            },
            pkcs12: None,
        }),
    }
}

fn mount(name: &str, spec: PkiMountSpec) -> PkiMount {
    PkiMount::new(name, spec)
}

#[test]
fn serialises_every_field_with_its_spec_name() {
    let mut object = mount("pki-int", full_spec());
    object.status = Some(PkiMountStatus {
        conditions: vec![conditions::ready(
            conditions::reason::ISSUED,
            "ok",
            Some(1),
            time(0),
        )],
        observed_generation: Some(1),
        path: Some("pki_int".into()),
        certificate: Some("CERT".into()),
        ca_chain: vec!["CERT".into(), "ROOT".into()],
        serial_number: Some("01:02".into()),
        not_before: Some(time(0)),
        not_after: Some(time(60)),
        csr: Some("CSR".into()),
        key_secret_name: Some("pki-int-ca-key".into()),
        trusted_roots: vec!["ROOT".into(), "NEXT ROOT".into()],
        rotation: Some(RotationStatus {
            phase: RotationPhase::Published,
            rotations: 1,
            rekey: Some(true),
            trigger: Some(RotationTrigger::Request),
            requested_at: Some(time(120)),
            phase_time: Some(time(130)),
            next: Some(CaGeneration {
                certificate: "NEXT".into(),
                ca_chain: vec!["NEXT".into(), "NEXT ROOT".into()],
                serial_number: "03:04".into(),
                not_before: Some(time(100)),
                not_after: Some(time(900)),
                key_secret_name: "pki-int-ca-key-2".into(),
                deactivated_at: None,
            }),
            previous: None,
            history: vec![PhaseChange {
                phase: RotationPhase::Prepared,
                time: time(125),
                serial_number: "03:04".into(),
            }],
        }),
    });
    let value = serde_json::to_value(&object).unwrap();
    assert_eq!(value["apiVersion"], json!("pki.tlsmint.io/v1alpha1"));
    assert_eq!(value["kind"], json!("PkiMount"));
    assert_eq!(
        value["spec"],
        json!({
            "type": "Intermediate",
            "subject": {
                "commonName": "Example Intermediate CA",
                "organization": ["Example"],
                "organizationalUnit": ["Platform"],
                "country": ["DE"],
                "province": ["Berlin"],
                "locality": ["Berlin"],
            },
            "key": {"algorithm": "ECDSA", "size": 384},
            "ttl": "43800h",
            "maxTTL": "720h",
            "leafNotAfterBehavior": "Truncate",
            "parentRef": {"name": "pki"},
            "urls": {
                "issuingCertificates": ["https://ca.example.com/v1/pki_int/ca"],
                "crlDistributionPoints": ["https://ca.example.com/v1/pki_int/crl"],
                "ocspServers": ["https://ca.example.com/v1/pki_int/ocsp"],
            },
            "crl": {"expiry": "48h"},
            "path": "pki_int",
            "rotation": {
                "prepareAt": 0.4,
                "activateAt": 0.7,
                "rekey": false,
                "propagationDelay": "10m",
                "requestedAt": "1970-01-01T00:02:00Z",
                "reissue": "Immediate",
            },
            "trustBundle": {"namespaceSelector": {"matchLabels": {"tlsmint.io/trust": "true"}}},
        })
    );
    let status = &value["status"];
    let keys: Vec<&str> = status
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "caChain",
            "certificate",
            "conditions",
            "csr",
            "keySecretName",
            "notAfter",
            "notBefore",
            "observedGeneration",
            "path",
            "rotation",
            "serialNumber",
            "trustedRoots",
        ]
    );
    assert_eq!(
        status["rotation"]["next"]["keySecretName"],
        json!("pki-int-ca-key-2")
    );
    assert_eq!(status["rotation"]["phase"], json!("Published"));
    let condition = status["conditions"][0].as_object().unwrap();
    let keys: Vec<&str> = condition.keys().map(|k| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "lastTransitionTime",
            "message",
            "observedGeneration",
            "reason",
            "status",
            "type"
        ]
    );
    assert_eq!(status["notAfter"], json!("1970-01-01T00:01:00Z"));
    let back: PkiMount = serde_json::from_value(value).unwrap();
    assert_eq!(back, object);
}

#[test]
fn serialises_import_and_external_signing_refs() {
    let mut spec = full_spec();
    spec.parent_ref = None;
    spec.signed_certificate_secret_ref = Some(SecretReference::new("pki-int-signed"));
    let value = serde_json::to_value(&spec).unwrap();
    assert_eq!(
        value["signedCertificateSecretRef"],
        json!({"name": "pki-int-signed"})
    );
    spec.signed_certificate_secret_ref = None;
    spec.import_from = Some(ImportFrom {
        secret_ref: SecretReference::new("old-ca"),
        pkcs12: None,
    });
    let value = serde_json::to_value(&spec).unwrap();
    assert_eq!(
        value["importFrom"],
        json!({"secretRef": {"name": "old-ca"}})
    );
}

#[test]
fn minimal_yaml_gets_the_defaults() {
    let yaml = "type: Root\nsubject:\n  commonName: Example Root CA\n";
    let spec: PkiMountSpec = serde_yaml_ng::from_str(yaml).unwrap();
    assert_eq!(spec.key, KeySpec::DEFAULT);
    assert_eq!(spec.ttl, None);
    assert_eq!(spec.effective_ttl(), defaults::ROOT_TTL);
    assert_eq!(spec.max_ttl, None);
    assert_eq!(spec.leaf_not_after_behavior, LeafNotAfterBehavior::Error);
    assert_eq!(spec.crl.expiry, Duration::from_hours(72));
    assert_eq!(spec.urls, None);
    assert_eq!(spec.rotation, RotationSpec::default());
    assert_eq!(spec.rotation.prepare_at.get(), 0.5);
    assert!((spec.rotation.activate_at.get() - 5.0 / 6.0).abs() < 0.001);
    assert!(spec.rotation.rekey);
    assert_eq!(spec.rotation.propagation_delay, Duration::from_secs(300));
    assert_eq!(spec.trust_bundle, None);
    assert_eq!(spec.validate(), Ok(()));
    let intermediate = PkiMountSpec {
        mount_type: MountType::Intermediate,
        ..spec
    };
    assert_eq!(intermediate.effective_ttl(), Duration::from_hours(43800));
}

#[test]
fn bad_duration_in_yaml_names_the_value() {
    let yaml = "type: Root\nsubject:\n  commonName: x\nttl: ten years\n";
    let err = serde_yaml_ng::from_str::<PkiMountSpec>(yaml).unwrap_err();
    assert!(
        err.to_string().contains(r#""ten years" is not a duration"#),
        "{err}"
    );
}

#[test]
fn unknown_enum_values_are_refused() {
    let yaml = "type: Leaf\nsubject:\n  commonName: x\n";
    assert!(serde_yaml_ng::from_str::<PkiMountSpec>(yaml).is_err());
}

#[test]
fn activation_before_preparation_is_refused() {
    let mut spec = full_spec();
    spec.rotation.activate_at = spec.rotation.prepare_at;
    let err = spec.validate().unwrap_err().to_string();
    assert!(err.contains("spec.rotation.activateAt"), "{err}");
    assert!(err.contains("prepareAt"), "{err}");
}

#[test]
fn valid_full_spec_passes() {
    assert_eq!(full_spec().validate(), Ok(()));
    assert_eq!(mount("pki-int", full_spec()).validate(), Ok(()));
}

fn field_of(spec: PkiMountSpec) -> String {
    spec.validate().unwrap_err().field().to_owned()
}

/// A field path and a change to a valid spec that makes that field invalid.
type Case = (&'static str, Box<dyn Fn(&mut PkiMountSpec)>);

#[test]
fn each_invalid_field_is_named() {
    let cases: Vec<Case> = vec![
        (
            "spec.subject.commonName",
            Box::new(|s| s.subject.common_name.clear()),
        ),
        (
            "spec.subject.country[0]",
            Box::new(|s| s.subject.names.country = vec!["DEU".into()]),
        ),
        ("spec.key.size", Box::new(|s| s.key.size = Some(2048))),
        ("spec.ttl", Box::new(|s| s.ttl = Some(Duration::ZERO))),
        (
            "spec.maxTTL",
            Box::new(|s| s.max_ttl = Some(Duration::ZERO)),
        ),
        (
            "spec.crl.expiry",
            Box::new(|s| s.crl.expiry = Duration::ZERO),
        ),
        (
            "spec.parentRef.name",
            Box::new(|s| s.parent_ref = Some(NameReference::new(""))),
        ),
        (
            "spec.urls.issuingCertificates[0]",
            Box::new(|s| s.urls.as_mut().unwrap().issuing_certificates = vec!["ca".into()]),
        ),
        (
            "spec.urls.crlDistributionPoints[0]",
            Box::new(|s| s.urls.as_mut().unwrap().crl_distribution_points = vec!["x".into()]),
        ),
        (
            "spec.urls.ocspServers[0]",
            Box::new(|s| s.urls.as_mut().unwrap().ocsp_servers = vec!["ftp://x".into()]),
        ),
        ("spec.path", Box::new(|s| s.path = Some("sys".into()))),
        ("spec.path", Box::new(|s| s.path = Some("auth/x".into()))),
        ("spec.path", Box::new(|s| s.path = Some("pki//int".into()))),
        ("spec.path", Box::new(|s| s.path = Some("/pki".into()))),
        ("spec.path", Box::new(|s| s.path = Some("pki int".into()))),
        ("spec.path", Box::new(|s| s.path = Some("../x".into()))),
    ];
    for (want, mutate) in cases {
        let mut spec = full_spec();
        mutate(&mut spec);
        assert_eq!(field_of(spec), want);
    }
}

#[test]
fn nested_mount_paths_are_allowed() {
    let mut spec = full_spec();
    spec.path = Some("teams/web/pki_int".into());
    assert_eq!(spec.validate(), Ok(()));
}

#[test]
fn root_refuses_parent_and_signed_certificate() {
    let mut spec = full_spec();
    spec.mount_type = MountType::Root;
    assert_eq!(
        spec.validate(),
        Err(ValidationError::OnlyForIntermediate {
            field: "spec.parentRef".into()
        })
    );
    spec.parent_ref = None;
    spec.signed_certificate_secret_ref = Some(SecretReference::new("signed"));
    let err = spec.validate().unwrap_err();
    assert_eq!(err.field(), "spec.signedCertificateSecretRef");
    assert_eq!(
        err.to_string(),
        "spec.signedCertificateSecretRef is only valid when spec.type is Intermediate"
    );
}

#[test]
fn a_ca_comes_from_one_place_only() {
    let mut spec = full_spec();
    spec.signed_certificate_secret_ref = Some(SecretReference::new("signed"));
    assert_eq!(
        spec.validate().unwrap_err().to_string(),
        "spec.parentRef cannot be used together with spec.signedCertificateSecretRef"
    );
    spec.signed_certificate_secret_ref = None;
    spec.import_from = Some(ImportFrom {
        secret_ref: SecretReference::new("old"),
        pkcs12: None,
    });
    assert!(matches!(
        spec.validate(),
        Err(ValidationError::Conflict { .. })
    ));
    spec.parent_ref = None;
    assert_eq!(spec.validate(), Ok(()));
    spec.signed_certificate_secret_ref = Some(SecretReference::new("signed"));
    assert!(matches!(
        spec.validate(),
        Err(ValidationError::Conflict { .. })
    ));
    spec.signed_certificate_secret_ref = None;
    spec.import_from = Some(ImportFrom {
        secret_ref: SecretReference::new("Bad"),
        pkcs12: None,
    });
    assert_eq!(field_of(spec), "spec.importFrom.secretRef.name");
}

#[test]
fn pkcs12_import_defaults_and_checks() {
    let spec: PkiMountSpec = serde_json::from_value(json!({
        "type": "Root",
        "subject": {"commonName": "Imported"},
        "importFrom": {"secretRef": {"name": "old-ca"}, "pkcs12": {}},
    }))
    .unwrap();
    let import = spec.import_from.clone().unwrap();
    assert_eq!(import.pkcs12, Some(Pkcs12Import::default()));
    assert_eq!(import.entries(), "keystore.p12 and password");
    assert_eq!(
        ImportFrom {
            secret_ref: SecretReference::new("x"),
            pkcs12: None
        }
        .entries(),
        "tls.crt and tls.key"
    );
    assert_eq!(spec.validate(), Ok(()));
    for (key, password_key, field) in [
        ("", "password", "spec.importFrom.pkcs12.key"),
        ("a/b", "password", "spec.importFrom.pkcs12.key"),
        ("ca.p12", "..", "spec.importFrom.pkcs12.passwordKey"),
        ("same", "same", "spec.importFrom.pkcs12.passwordKey"),
    ] {
        let mut bad = spec.clone();
        bad.import_from.as_mut().unwrap().pkcs12 = Some(Pkcs12Import {
            key: key.into(),
            password_key: password_key.into(),
        });
        assert_eq!(field_of(bad), field, "{key:?}/{password_key:?}");
    }
}

#[test]
fn trust_store_defaults_and_checks() {
    let mut spec: PkiMountSpec = serde_json::from_value(json!({
        "type": "Root",
        "subject": {"commonName": "Root"},
        "trustBundle": {"namespaceSelector": {}, "pkcs12": {}},
    }))
    .unwrap();
    let store = spec.trust_bundle.as_ref().unwrap().pkcs12.clone().unwrap();
    assert_eq!(store.key, "truststore.p12");
    assert_eq!(store.password, "");
    assert_eq!(spec.validate(), Ok(()));
    for key in ["ca.crt", "", "trust store"] {
        spec.trust_bundle.as_mut().unwrap().pkcs12 = Some(TrustStorePkcs12 {
            key: key.into(),
            password: String::new(),
        });
        assert_eq!(
            field_of(spec.clone()),
            "spec.trustBundle.pkcs12.key",
            "{key:?}"
        );
    }
}

#[test]
fn mount_path_defaults_to_the_name() {
    let mut spec = full_spec();
    assert_eq!(mount("pki-int", spec.clone()).mount_path(), "pki_int");
    spec.path = None;
    assert_eq!(mount("pki-int", spec.clone()).mount_path(), "pki-int");
    let err = mount("sys", spec.clone()).validate().unwrap_err();
    assert_eq!(err.field(), "metadata.name (the default spec.path)");
    let err = mount("pki", spec).validate().unwrap_err();
    assert_eq!(err.field(), "spec.parentRef.name");
    assert!(err.to_string().contains("is this PkiMount itself"), "{err}");
}
