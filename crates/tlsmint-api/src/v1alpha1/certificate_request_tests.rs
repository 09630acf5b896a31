//! Tests of the CertificateRequest types: JSON names, defaults, key resolution and every
//! validation error.

use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use super::*;
use crate::conditions;

const CSR: &str = "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n";

fn time(secs: i64) -> Time {
    Time(Timestamp::from_second(secs).unwrap())
}

fn full_spec() -> CertificateRequestSpec {
    CertificateRequestSpec {
        role_ref: NameReference::new("web-server"),
        common_name: Some("api.example.com".into()),
        dns_names: vec!["api.example.com".into(), "*.api.example.com".into()],
        ip_addresses: vec!["10.0.0.7".into(), "fd00::7".into()],
        uris: vec!["spiffe://cluster.local/ns/web/sa/api".into()],
        ttl: Some(Duration::from_hours(24)),
        secret_name: "api-tls".into(),
        private_key: PrivateKeySpec {
            algorithm: Some(KeyAlgorithm::Rsa),
            size: Some(4096),
            encoding: KeyEncoding::Pkcs1,
            rotation_policy: RotationPolicy::Never,
        },
        csr: None,
        renew_at: Fraction::new(0.75).unwrap(),
        revoked: true,
    }
}

#[test]
fn serialises_every_field_with_its_spec_name() {
    let mut spec = full_spec();
    spec.csr = Some(CSR.into());
    let mut request = CertificateRequest::new("api", spec);
    request.metadata.namespace = Some("web".into());
    request.status = Some(CertificateRequestStatus {
        conditions: vec![
            conditions::ready(conditions::reason::ISSUED, "", Some(1), time(0)),
            conditions::not_issuing(conditions::reason::ISSUED, "", Some(1), time(0)),
        ],
        observed_generation: Some(1),
        serial_number: Some("0a:0b".into()),
        not_before: Some(time(0)),
        not_after: Some(time(3600)),
        renewal_time: Some(time(1800)),
        certificate: Some("CERT".into()),
        failure_count: Some(2),
        last_failure_time: Some(time(10)),
        revocation_time: Some(time(20)),
    });
    let value = serde_json::to_value(&request).unwrap();
    assert_eq!(value["kind"], json!("CertificateRequest"));
    assert_eq!(
        value["spec"],
        json!({
            "roleRef": {"name": "web-server"},
            "commonName": "api.example.com",
            "dnsNames": ["api.example.com", "*.api.example.com"],
            "ipAddresses": ["10.0.0.7", "fd00::7"],
            "uris": ["spiffe://cluster.local/ns/web/sa/api"],
            "ttl": "24h",
            "secretName": "api-tls",
            "privateKey": {
                "algorithm": "RSA",
                "size": 4096,
                "encoding": "PKCS1",
                "rotationPolicy": "Never",
            },
            "csr": CSR,
            "renewAt": 0.75,
            "revoked": true,
        })
    );
    let status_keys: Vec<&str> = value["status"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        status_keys,
        [
            "certificate",
            "conditions",
            "failureCount",
            "lastFailureTime",
            "notAfter",
            "notBefore",
            "observedGeneration",
            "renewalTime",
            "revocationTime",
            "serialNumber",
        ]
    );
    assert_eq!(
        value["status"]["renewalTime"],
        json!("1970-01-01T00:30:00Z")
    );
    let back: CertificateRequest = serde_json::from_value(value).unwrap();
    assert_eq!(back, request);
}

#[test]
fn minimal_yaml_gets_the_defaults() {
    let yaml = "roleRef:\n  name: web-server\nsecretName: api-tls\ndnsNames: [api.example.com]\n";
    let spec: CertificateRequestSpec = serde_yaml_ng::from_str(yaml).unwrap();
    let mut want = CertificateRequestSpec::new("web-server", "api-tls");
    want.dns_names = vec!["api.example.com".into()];
    assert_eq!(spec, want);
    assert_eq!(spec.renew_at.get(), 0.5);
    assert_eq!(spec.private_key.encoding, KeyEncoding::Pkcs8);
    assert_eq!(spec.private_key.rotation_policy, RotationPolicy::Always);
    assert_eq!(spec.private_key.algorithm, None);
    assert!(!spec.revoked);
    assert_eq!(spec.validate(), Ok(()));
}

#[test]
fn renew_at_outside_zero_one_is_refused_when_parsing() {
    let yaml = "roleRef: {name: r}\nsecretName: s\nrenewAt: 1\n";
    let err = serde_yaml_ng::from_str::<CertificateRequestSpec>(yaml).unwrap_err();
    assert!(err.to_string().contains("not between 0 and 1"), "{err}");
}

#[test]
fn private_key_falls_back_to_the_role_key() {
    let role_key = KeySpec {
        algorithm: KeyAlgorithm::Ecdsa,
        size: Some(384),
    };
    let resolve = |algorithm, size| {
        PrivateKeySpec {
            algorithm,
            size,
            ..Default::default()
        }
        .resolve(&role_key)
    };
    assert_eq!(resolve(None, None), role_key);
    assert_eq!(resolve(Some(KeyAlgorithm::Ecdsa), None), role_key);
    assert_eq!(
        resolve(Some(KeyAlgorithm::Rsa), None),
        KeySpec {
            algorithm: KeyAlgorithm::Rsa,
            size: Some(2048)
        }
    );
    assert_eq!(
        resolve(None, Some(256)),
        KeySpec {
            algorithm: KeyAlgorithm::Ecdsa,
            size: Some(256)
        }
    );
    assert_eq!(
        resolve(Some(KeyAlgorithm::Ed25519), None),
        KeySpec::new(KeyAlgorithm::Ed25519)
    );
    assert_eq!(
        PrivateKeySpec::default().resolve(&KeySpec::DEFAULT),
        KeySpec {
            algorithm: KeyAlgorithm::Ecdsa,
            size: Some(256)
        }
    );
}

#[test]
fn valid_specs_pass() {
    assert_eq!(full_spec().validate(), Ok(()));
    let mut csr_only = CertificateRequestSpec::new("r", "s");
    csr_only.csr = Some(format!("\n{CSR}"));
    assert_eq!(csr_only.validate(), Ok(()));
    csr_only.csr = Some(CSR.replace("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"));
    assert_eq!(csr_only.validate(), Ok(()));
}

/// A field path and a change to a valid spec that makes that field invalid.
type Case = (&'static str, Box<dyn Fn(&mut CertificateRequestSpec)>);

#[test]
fn each_invalid_field_is_named() {
    let cases: Vec<Case> = vec![
        ("spec.roleRef.name", Box::new(|s| s.role_ref.name.clear())),
        (
            "spec.secretName",
            Box::new(|s| s.secret_name = "API_TLS".into()),
        ),
        ("spec.secretName", Box::new(|s| s.secret_name.clear())),
        (
            "spec.commonName",
            Box::new(|s| s.common_name = Some(" ".into())),
        ),
        ("spec.dnsNames[1]", Box::new(|s| s.dns_names[1].clear())),
        (
            "spec.dnsNames[0]",
            Box::new(|s| s.dns_names[0] = "a b.com".into()),
        ),
        (
            "spec.ipAddresses[0]",
            Box::new(|s| s.ip_addresses[0] = "10.0.0.256".into()),
        ),
        (
            "spec.ipAddresses[1]",
            Box::new(|s| s.ip_addresses[1] = "example.com".into()),
        ),
        ("spec.uris[0]", Box::new(|s| s.uris[0] = "not a uri".into())),
        ("spec.ttl", Box::new(|s| s.ttl = Some(Duration::ZERO))),
        (
            "spec.privateKey.size",
            Box::new(|s| s.private_key.size = Some(256)),
        ),
        (
            "spec.privateKey.encoding",
            Box::new(|s| s.private_key.encoding = KeyEncoding::Sec1),
        ),
        ("spec.csr", Box::new(|s| s.csr = Some("MIIB...".into()))),
        (
            "spec.csr",
            Box::new(|s| s.csr = Some("-----BEGIN PRIVATE KEY-----\n".into())),
        ),
    ];
    for (want, mutate) in cases {
        let mut spec = full_spec();
        mutate(&mut spec);
        let err = spec.validate().unwrap_err();
        assert_eq!(err.field(), want, "{err}");
    }
}

#[test]
fn a_request_without_names_or_csr_is_refused() {
    let err = CertificateRequestSpec::new("r", "s")
        .validate()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "one of spec.commonName, spec.dnsNames, spec.ipAddresses, spec.uris is required"
    );
}

#[test]
fn size_without_algorithm_is_left_to_the_operator() {
    let mut spec = CertificateRequestSpec::new("r", "s");
    spec.common_name = Some("x".into());
    spec.private_key.size = Some(4096);
    assert_eq!(spec.validate(), Ok(()));
}

#[test]
fn bad_csr_error_shows_only_the_first_line() {
    let mut spec = CertificateRequestSpec::new("r", "s");
    spec.csr = Some(format!("garbage{}\nsecond line", "x".repeat(100)));
    let err = spec.validate().unwrap_err();
    let ValidationError::Invalid { value, .. } = err else {
        panic!("unexpected {err:?}");
    };
    assert_eq!(value.len(), 64);
    assert!(!value.contains("second"));
}
