//! Tests of CSI volume attributes: valid volumes, defaults, unknown keys, bad file names,
//! pod info and template substitution.

use std::collections::HashMap;

use super::*;
use crate::v1alpha1::KeyAlgorithm;
use secrecy::ExposeSecret;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn parse(pairs: &[(&str, &str)]) -> Result<VolumeAttributes, AttributeError> {
    VolumeAttributes::parse(&map(pairs))
}

fn parse_err(pairs: &[(&str, &str)]) -> AttributeError {
    let mut all = vec![(ROLE, "web")];
    all.extend_from_slice(pairs);
    parse(&all).unwrap_err()
}

fn pod() -> PodInfo {
    PodInfo {
        name: "api-0".into(),
        namespace: "shop".into(),
        uid: "0b1c".into(),
        service_account_name: "api".into(),
    }
}

#[test]
fn minimal_volume_gets_the_defaults() {
    let got = parse(&[(ROLE, "web")]).unwrap();
    assert_eq!(
        got,
        VolumeAttributes {
            role: "web".into(),
            common_name: None,
            dns_names: vec![],
            ip_sans: vec![],
            uri_sans: vec![],
            ttl: None,
            key: None,
            key_encoding: KeyEncoding::Pkcs8,
            renew_at: Fraction::HALF,
            certificate_file: "tls.crt".into(),
            key_file: "tls.key".into(),
            ca_file: "ca.crt".into(),
            bundle_file: None,
            pkcs12_file: None,
            fs_group: None,
        }
    );
}

#[test]
fn full_volume_is_parsed_from_a_hash_map() {
    let context: HashMap<String, String> = map(&[
        (ROLE, "web"),
        (COMMON_NAME, "${POD_NAME}.${POD_NAMESPACE}.svc"),
        (
            DNS_NAMES,
            "${POD_NAME}.${POD_NAMESPACE}.svc, api.example.com",
        ),
        (IP_SANS, "10.0.0.1,::1"),
        (
            URI_SANS,
            "spiffe://cluster.local/ns/${POD_NAMESPACE}/sa/${SERVICE_ACCOUNT_NAME}",
        ),
        (TTL, "2h"),
        (KEY_ALGORITHM, "RSA-3072"),
        (KEY_ENCODING, "PKCS1"),
        (RENEW_AT, "0.66"),
        (CERTIFICATE_FILE, "cert.pem"),
        (KEY_FILE, "key.pem"),
        (CA_FILE, "ca.pem"),
        (BUNDLE_FILE, "bundle.pem"),
        (PKCS12_FILE, "tls.p12"),
        (FS_GROUP, "2000"),
        (POD_NAME_KEY, "api-0"),
        (EPHEMERAL_KEY, "true"),
    ])
    .into_iter()
    .collect();
    let got = VolumeAttributes::parse(&context).unwrap();
    assert_eq!(got.dns_names.len(), 2);
    assert_eq!(got.ip_sans.len(), 2);
    assert_eq!(got.ttl, Some(Duration::from_hours(2)));
    assert_eq!(
        got.key,
        Some(KeySpec {
            algorithm: KeyAlgorithm::Rsa,
            size: Some(3072)
        })
    );
    assert_eq!(got.key_encoding, KeyEncoding::Pkcs1);
    assert_eq!(got.renew_at.get(), 0.66);
    assert_eq!(
        (
            got.certificate_file.as_str(),
            got.key_file.as_str(),
            got.ca_file.as_str()
        ),
        ("cert.pem", "key.pem", "ca.pem")
    );
    assert_eq!(got.bundle_file.as_deref(), Some("bundle.pem"));
    assert_eq!(got.pkcs12_file.as_deref(), Some("tls.p12"));
    assert_eq!(got.fs_group, Some(2000));
}

#[test]
fn unknown_tlsmint_keys_are_refused_by_name() {
    let err = parse_err(&[("csi.tlsmint.io/dns-name", "a.com")]);
    assert_eq!(err.key, "csi.tlsmint.io/dns-name");
    let message = err.to_string();
    assert!(
        message.starts_with("volume attribute csi.tlsmint.io/dns-name: is not a known key"),
        "{message}"
    );
}

#[test]
fn other_prefixes_are_ignored() {
    let got = parse(&[
        (ROLE, "web"),
        ("csi.storage.k8s.io/pod.name", "x"),
        ("other", "y"),
    ]);
    assert!(got.is_ok());
}

#[test]
fn each_invalid_attribute_is_named() {
    let cases: [(&str, &str); 22] = [
        (ROLE, " "),
        (ROLE, "Web"),
        (COMMON_NAME, "${POD_IP}"),
        (DNS_NAMES, "a.com,,b.com"),
        (DNS_NAMES, "a b.com"),
        (DNS_NAMES, "${POD_NAME.svc"),
        (IP_SANS, "300.0.0.1"),
        (URI_SANS, "no scheme"),
        (TTL, "1 day"),
        (KEY_ALGORITHM, "ECDSA-521"),
        (KEY_ENCODING, "DER"),
        (RENEW_AT, "1.5"),
        (RENEW_AT, "half"),
        (CERTIFICATE_FILE, "../tls.crt"),
        (CERTIFICATE_FILE, "certs/tls.crt"),
        (KEY_FILE, ""),
        (KEY_FILE, ".."),
        (CA_FILE, "/etc/ca.crt"),
        (CA_FILE, "..data"),
        (FS_GROUP, "-1"),
        (FS_GROUP, "wheel"),
        (FS_GROUP, "4294967296"),
    ];
    for (key, value) in cases {
        let err = parse_err(&[(key, value)]);
        assert_eq!(err.key, key, "{key}={value:?}: {err}");
        assert!(
            err.to_string()
                .starts_with(&format!("volume attribute {key}: "))
        );
    }
}

#[test]
fn a_missing_role_is_named() {
    let err = parse(&[(TTL, "1h")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "volume attribute csi.tlsmint.io/role: is required"
    );
}

#[test]
fn key_encoding_must_fit_the_algorithm() {
    let err = parse_err(&[(KEY_ALGORITHM, "ECDSA"), (KEY_ENCODING, "PKCS1")]);
    assert_eq!(
        err.to_string(),
        r#"volume attribute csi.tlsmint.io/key-encoding: "PKCS1" cannot encode a ECDSA key (use PKCS8 or SEC1)"#
    );
    assert!(
        parse(&[
            (ROLE, "r"),
            (KEY_ALGORITHM, "ECDSA"),
            (KEY_ENCODING, "sec1")
        ])
        .is_ok()
    );
    // Without an algorithm the role decides; the driver checks the pair later.
    assert!(parse(&[(ROLE, "r"), (KEY_ENCODING, "PKCS1")]).is_ok());
}

#[test]
fn file_names_must_be_distinct() {
    let err = parse_err(&[(KEY_FILE, "tls.crt")]);
    assert_eq!(err.key, KEY_FILE);
    assert_eq!(
        err.to_string(),
        r#"volume attribute csi.tlsmint.io/key-file: "tls.crt" is also used by csi.tlsmint.io/certificate-file"#
    );
    let err = parse_err(&[(CA_FILE, "key.pem"), (KEY_FILE, "key.pem")]);
    assert_eq!(err.key, CA_FILE);
    let err = parse_err(&[(BUNDLE_FILE, "tls.key")]);
    assert_eq!(err.key, BUNDLE_FILE);
    let err = parse_err(&[(BUNDLE_FILE, "../x")]);
    assert_eq!(err.key, BUNDLE_FILE);
    let err = parse_err(&[(BUNDLE_FILE, "b.pem"), (PKCS12_FILE, "b.pem")]);
    assert_eq!(err.key, PKCS12_FILE);
    let err = parse_err(&[(PKCS12_FILE, "ca.crt")]);
    assert_eq!(err.key, PKCS12_FILE);
    for bad in ["../tls.p12", "a/b.p12", ".p12"] {
        let err = parse_err(&[(PKCS12_FILE, bad)]);
        assert_eq!(err.key, PKCS12_FILE, "{bad:?}");
    }
    for key in [CERTIFICATE_FILE, KEY_FILE, CA_FILE, BUNDLE_FILE] {
        let err = parse_err(&[(key, ".hidden")]);
        assert_eq!(err.key, key);
        assert!(err.to_string().contains("does not start with '.'"), "{err}");
    }
    // Blank counts as absent, as for every optional attribute.
    assert_eq!(
        parse(&[(ROLE, "web"), (PKCS12_FILE, " ")])
            .unwrap()
            .pkcs12_file,
        None
    );
}

#[test]
fn bad_file_name_message() {
    let err = parse_err(&[(CERTIFICATE_FILE, "../../etc/passwd")]);
    assert_eq!(
        err.to_string(),
        "volume attribute csi.tlsmint.io/certificate-file: \"../../etc/passwd\" is not a plain \
         file name (no '/', not starting with '..'; e.g. tls.crt)"
    );
}

#[test]
fn templates_are_substituted_from_pod_info() {
    let pod = pod();
    let table = [
        ("${POD_NAME}.${POD_NAMESPACE}.svc", "api-0.shop.svc"),
        ("${POD_UID}", "0b1c"),
        ("sa-${SERVICE_ACCOUNT_NAME}", "sa-api"),
        ("plain.example.com", "plain.example.com"),
        ("$(POD_NAME)", "$(POD_NAME)"),
    ];
    for (input, want) in table {
        assert_eq!(
            substitute_templates(input, &pod),
            Ok(want.into()),
            "{input}"
        );
    }
}

#[test]
fn unknown_or_unclosed_templates_are_errors() {
    let err = substitute_templates("${POD_IP}.svc", &pod()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "\"${POD_IP}.svc\" uses the unknown template ${POD_IP} (known: ${POD_NAME}, \
         ${POD_NAMESPACE}, ${POD_UID}, ${SERVICE_ACCOUNT_NAME})"
    );
    assert!(matches!(
        substitute_templates("${POD_NAME", &pod()),
        Err(InvalidValue::UnclosedTemplate { .. })
    ));
}

#[test]
fn resolve_substitutes_every_templated_attribute() {
    let attrs = parse(&[
        (ROLE, "${POD_NAMESPACE}-role"),
        (COMMON_NAME, "${POD_NAME}"),
        (DNS_NAMES, "${POD_NAME}.${POD_NAMESPACE}.svc"),
        (
            URI_SANS,
            "spiffe://c/ns/${POD_NAMESPACE}/sa/${SERVICE_ACCOUNT_NAME}",
        ),
    ])
    .unwrap();
    let resolved = attrs.resolve(&pod()).unwrap();
    assert_eq!(resolved.role, "shop-role");
    assert_eq!(resolved.common_name.as_deref(), Some("api-0"));
    assert_eq!(resolved.dns_names, ["api-0.shop.svc"]);
    assert_eq!(resolved.uri_sans, ["spiffe://c/ns/shop/sa/api"]);
    assert_eq!(resolved.certificate_file, attrs.certificate_file);
}

#[test]
fn pod_values_that_are_not_dns_labels_are_never_substituted() {
    let attrs = parse(&[
        (ROLE, "web"),
        (COMMON_NAME, "${POD_NAME}.${POD_NAMESPACE}.svc"),
    ])
    .unwrap();
    for (name, namespace) in [
        ("a/b", "shop"),
        ("..", "shop"),
        ("api-0.evil.example.com", "shop"),
        ("x,evil.example.com", "shop"),
        ("api-0", "../kube-system"),
        ("api-0", "with space"),
        ("api-0", ""),
        ("-api", "shop"),
        ("API", "shop"),
    ] {
        let mut pod = pod();
        pod.name = name.into();
        pod.namespace = namespace.into();
        let err = attrs.resolve(&pod).unwrap_err();
        assert_eq!(err.key, COMMON_NAME, "{name:?} {namespace:?}");
        assert!(err.to_string().contains("DNS label"), "{err}");
    }
    // Unused values do not matter; a long but valid label is fine.
    let mut pod = pod();
    pod.service_account_name = "not/used".into();
    pod.name = "a".repeat(63);
    assert!(attrs.resolve(&pod).is_ok());
    pod.name = "a".repeat(64);
    assert!(attrs.resolve(&pod).is_err());
}

#[test]
fn resolve_rechecks_the_role_name() {
    let attrs = parse(&[(ROLE, "${POD_NAME}")]).unwrap();
    let mut pod = pod();
    pod.name = "Not_A_Name".into();
    assert_eq!(attrs.resolve(&pod).unwrap_err().key, ROLE);
}

#[test]
fn pod_info_is_read_from_the_volume_context() {
    let context = map(&[
        (POD_NAME_KEY, "api-0"),
        (POD_NAMESPACE_KEY, "shop"),
        (POD_UID_KEY, "0b1c"),
        (SERVICE_ACCOUNT_NAME_KEY, "api"),
        (ROLE, "web"),
    ]);
    assert_eq!(PodInfo::from_volume_context(&context), Ok(pod()));
    let mut missing = context.clone();
    missing.remove(POD_UID_KEY);
    let err = PodInfo::from_volume_context(&missing).unwrap_err();
    assert_eq!(err.key, POD_UID_KEY);
    assert!(err.to_string().contains("is required"));
}

#[test]
fn audience_token_is_found_and_never_printed() {
    let json = r#"{"tlsmint":{"token":"secret-jwt","expirationTimestamp":"2030-01-01T00:00:00Z"},
                   "other":{"token":"x","expirationTimestamp":"2030-01-01T00:00:00Z"}}"#;
    let token = audience_token(json).unwrap();
    assert_eq!(token.token.expose_secret(), "secret-jwt");
    assert!(!format!("{token:?}").contains("secret-jwt"));
    let err = audience_token(r#"{"other":{"token":"secret-jwt","expirationTimestamp":"x"}}"#)
        .unwrap_err();
    assert!(err.to_string().contains("audience tlsmint"), "{err}");
    assert!(!err.to_string().contains("secret-jwt"));
    let err = audience_token("{not json secret-jwt").unwrap_err();
    assert!(!err.to_string().contains("secret-jwt"), "{err}");
}

#[test]
fn keys_all_have_the_prefix() {
    for key in KEYS {
        assert!(key.starts_with(PREFIX), "{key}");
    }
    assert_eq!(DRIVER_NAME, "csi.tlsmint.io");
    assert_eq!(
        [
            POD_NAME_KEY,
            POD_NAMESPACE_KEY,
            POD_UID_KEY,
            SERVICE_ACCOUNT_NAME_KEY
        ],
        [
            "csi.storage.k8s.io/pod.name",
            "csi.storage.k8s.io/pod.namespace",
            "csi.storage.k8s.io/pod.uid",
            "csi.storage.k8s.io/serviceAccount.name"
        ]
    );
    assert_eq!(
        SERVICE_ACCOUNT_TOKENS_KEY,
        "csi.storage.k8s.io/serviceAccount.tokens"
    );
    assert_eq!(EPHEMERAL_KEY, "csi.storage.k8s.io/ephemeral");
}
