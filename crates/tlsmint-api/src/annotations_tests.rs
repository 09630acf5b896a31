//! Tests of pod annotation parsing: valid pods, each invalid key, pods that do not ask.

use super::*;
use crate::v1alpha1::KeyAlgorithm;

fn pod(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn parse(pairs: &[(&str, &str)]) -> Result<Option<PodAnnotations>, AnnotationError> {
    PodAnnotations::parse(&pod(pairs))
}

fn parse_err(pairs: &[(&str, &str)]) -> AnnotationError {
    let mut all = vec![(INJECT, "true"), (ROLE, "web")];
    all.extend_from_slice(pairs);
    parse(&all).unwrap_err()
}

#[test]
fn pods_that_do_not_ask_are_left_alone() {
    assert_eq!(parse(&[]), Ok(None));
    assert_eq!(parse(&[("app", "x"), (ROLE, "web")]), Ok(None));
    assert_eq!(parse(&[(INJECT, "false"), (TTL, "garbage")]), Ok(None));
}

#[test]
fn inject_must_be_true_or_false() {
    let err = parse(&[(INJECT, "yes"), (ROLE, "web")]).unwrap_err();
    assert_eq!(err.key, INJECT);
    assert_eq!(
        err.to_string(),
        r#"annotation tlsmint.io/inject: "yes" is not one of "true" or "false""#
    );
}

#[test]
fn minimal_pod_gets_the_defaults() {
    let got = parse(&[(INJECT, "true"), (ROLE, "web")]).unwrap().unwrap();
    assert_eq!(
        got,
        PodAnnotations {
            role: "web".into(),
            common_name: None,
            dns_names: vec![],
            ip_sans: vec![],
            uri_sans: vec![],
            ttl: None,
            key: None,
            mount_path: "/var/run/tlsmint".into(),
            containers: None,
            mode: InjectionMode::Sidecar,
            reload: Reload::default(),
        }
    );
    assert!(got.applies_to_container("anything"));
}

#[test]
fn full_pod_is_parsed() {
    let got = parse(&[
        (INJECT, "true"),
        (ROLE, "web"),
        (COMMON_NAME, "$(POD_NAME).$(POD_NAMESPACE).svc"),
        (DNS_NAMES, " api.example.com , $(POD_NAME).example.com"),
        (IP_SANS, "10.0.0.1, fd00::1"),
        (
            URI_SANS,
            "spiffe://cluster.local/ns/$(POD_NAMESPACE)/sa/$(SERVICE_ACCOUNT)",
        ),
        (TTL, "24h"),
        (KEY_ALGORITHM, "ECDSA-384"),
        (MOUNT_PATH, "/etc/tls/"),
        (CONTAINERS, "app, proxy"),
        (MODE, "csi"),
        (STATUS, STATUS_INJECTED),
        ("unrelated.io/x", "y"),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(
        got.common_name.as_deref(),
        Some("$(POD_NAME).$(POD_NAMESPACE).svc")
    );
    assert_eq!(
        got.dns_names,
        ["api.example.com", "$(POD_NAME).example.com"]
    );
    assert_eq!(got.ip_sans.len(), 2);
    assert_eq!(
        got.uri_sans,
        ["spiffe://cluster.local/ns/$(POD_NAMESPACE)/sa/$(SERVICE_ACCOUNT)"]
    );
    assert_eq!(got.ttl, Some(Duration::from_hours(24)));
    assert_eq!(
        got.key,
        Some(KeySpec {
            algorithm: KeyAlgorithm::Ecdsa,
            size: Some(384)
        })
    );
    assert_eq!(got.mount_path, "/etc/tls");
    assert_eq!(got.containers, Some(vec!["app".into(), "proxy".into()]));
    assert_eq!(got.mode, InjectionMode::Csi);
    assert!(got.applies_to_container("proxy"));
    assert!(!got.applies_to_container("sidecar"));
}

#[test]
fn ttl_error_names_the_annotation_and_value() {
    let err = parse_err(&[(TTL, "abc")]);
    assert_eq!(
        err.to_string(),
        r#"annotation tlsmint.io/ttl: "abc" is not a duration (use e.g. 90s, 15m, 1h)"#
    );
}

#[test]
fn each_invalid_annotation_is_named() {
    let cases: [(&str, &str); 22] = [
        (ROLE, ""),
        (ROLE, "Web_Role"),
        (ROLE, "$(POD)-role"),
        (COMMON_NAME, "$(POD_IP)"),
        (COMMON_NAME, "$(POD_NAME"),
        (DNS_NAMES, "a.com,,b.com"),
        (DNS_NAMES, "a.com,"),
        (DNS_NAMES, "a b.com"),
        (DNS_NAMES, "${POD_NAME}.x,$(NODE_NAME).x"),
        (IP_SANS, "10.0.0.256"),
        (IP_SANS, "$(POD_IP)"),
        (URI_SANS, "not-a-uri"),
        (TTL, "-1h"),
        (KEY_ALGORITHM, "DSA"),
        (KEY_ALGORITHM, "RSA-1024"),
        (MOUNT_PATH, "relative/path"),
        (MOUNT_PATH, "/var/../etc"),
        (MOUNT_PATH, "/var/$(POD_NAME)"),
        (CONTAINERS, ""),
        (CONTAINERS, "app,,proxy"),
        (CONTAINERS, "App"),
        (MODE, "daemonset"),
    ];
    for (key, value) in cases {
        let err = parse_err(&[(key, value)]);
        assert_eq!(err.key, key, "{key}={value:?}: {err}");
        assert!(err.to_string().starts_with(&format!("annotation {key}: ")));
    }
}

#[test]
fn a_missing_role_is_named() {
    let err = parse(&[(INJECT, "true")]).unwrap_err();
    assert_eq!(err.to_string(), "annotation tlsmint.io/role: is required");
}

#[test]
fn unknown_tlsmint_keys_are_refused_by_name() {
    let err = parse_err(&[("tlsmint.io/dns-name", "a.com")]);
    assert_eq!(err.key, "tlsmint.io/dns-name");
    assert!(err.to_string().contains("is not a known key"), "{err}");
    assert!(err.to_string().contains(DNS_NAMES), "{err}");
}

#[test]
fn a_bad_key_size_says_which_sizes_work() {
    let err = parse_err(&[(KEY_ALGORITHM, "RSA-1024")]);
    assert_eq!(
        err.to_string(),
        "annotation tlsmint.io/key-algorithm: \"RSA-1024\": 1024 is not a valid key size \
         for RSA (use 2048, 3072 or 4096)"
    );
}

#[test]
fn blank_optional_values_count_as_absent() {
    let got = parse(&[(INJECT, "true"), (ROLE, "web"), (TTL, " "), (DNS_NAMES, "")])
        .unwrap()
        .unwrap();
    assert_eq!(got.ttl, None);
    assert!(got.dns_names.is_empty());
}

#[test]
fn injected_status_is_detected() {
    assert!(is_injected(&pod(&[(STATUS, "injected")])));
    assert!(!is_injected(&pod(&[(STATUS, "pending")])));
    assert!(!is_injected(&pod(&[])));
}

#[test]
fn csi_mode_translates_placeholders_to_driver_templates() {
    let got = parse(&[
        (INJECT, "true"),
        (ROLE, "web"),
        (COMMON_NAME, "$(POD_NAME)"),
        (DNS_NAMES, "$(POD_NAME).$(POD_NAMESPACE).svc,a.com"),
        (IP_SANS, "10.0.0.1"),
        (
            URI_SANS,
            "spiffe://c/ns/$(POD_NAMESPACE)/sa/$(SERVICE_ACCOUNT)",
        ),
        (TTL, "90m"),
        (KEY_ALGORITHM, "ed25519"),
        (MODE, "csi"),
    ])
    .unwrap()
    .unwrap();
    let attrs = got.csi_volume_attributes();
    let expect = |key: &str| attrs.get(key).map(String::as_str);
    assert_eq!(expect(csi::ROLE), Some("web"));
    assert_eq!(expect(csi::COMMON_NAME), Some("${POD_NAME}"));
    assert_eq!(
        expect(csi::DNS_NAMES),
        Some("${POD_NAME}.${POD_NAMESPACE}.svc,a.com")
    );
    assert_eq!(expect(csi::IP_SANS), Some("10.0.0.1"));
    assert_eq!(
        expect(csi::URI_SANS),
        Some("spiffe://c/ns/${POD_NAMESPACE}/sa/${SERVICE_ACCOUNT_NAME}")
    );
    assert_eq!(expect(csi::TTL), Some("1h30m"));
    assert_eq!(expect(csi::KEY_ALGORITHM), Some("Ed25519"));
    // The result is accepted by the CSI parser.
    let parsed = csi::VolumeAttributes::parse(&attrs).unwrap();
    assert_eq!(parsed.role, "web");
}

#[test]
fn keys_all_have_the_prefix() {
    for key in KEYS.iter().chain([&STATUS]) {
        assert!(key.starts_with(PREFIX), "{key}");
    }
    assert_eq!(DEFAULT_MOUNT_PATH, "/var/run/tlsmint");
    assert_eq!(
        [CERTIFICATE_FILE, KEY_FILE, CA_FILE],
        ["tls.crt", "tls.key", "ca.crt"]
    );
}

/// Found by tests/fuzz.rs: `${` passed the webhook and made a volume the driver refuses.
#[test]
fn the_csi_template_syntax_is_refused_in_annotations() {
    for key in [COMMON_NAME, DNS_NAMES, URI_SANS, ROLE] {
        let value = if key == URI_SANS {
            "spiffe://x/${POD_NAME}"
        } else {
            "${"
        };
        let mut pairs = vec![(INJECT, "true"), (ROLE, "web")];
        pairs.retain(|(k, _)| *k != key);
        pairs.push((key, value));
        let err = parse_err(&pairs);
        assert_eq!(err.key, key);
        assert!(err.to_string().contains("$(POD_NAME)"), "{err}");
    }
}

#[test]
fn a_reload_signal_names_its_process_and_a_url_stays_in_the_pod() {
    let got = parse(&[
        (INJECT, "true"),
        (ROLE, "web"),
        (RELOAD_SIGNAL, "sighup"),
        (RELOAD_PROCESS, "nginx"),
        (RELOAD_URL, "http://127.0.0.1:8080/-/reload"),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(
        got.reload,
        Reload {
            signal: Some((ReloadSignal::Hup, "nginx".into())),
            url: Some("http://127.0.0.1:8080/-/reload".into()),
        }
    );
    // (extra annotations, the key the error names, part of its message)
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: &[Case] = &[
        (
            &[(RELOAD_SIGNAL, "HUP")],
            RELOAD_PROCESS,
            "annotation tlsmint.io/reload-process: is required when tlsmint.io/reload-signal is set",
        ),
        (
            &[(RELOAD_PROCESS, "nginx")],
            RELOAD_SIGNAL,
            "annotation tlsmint.io/reload-signal: is required when tlsmint.io/reload-process is set",
        ),
        (
            &[(RELOAD_SIGNAL, "KILL"), (RELOAD_PROCESS, "nginx")],
            RELOAD_SIGNAL,
            r#"annotation tlsmint.io/reload-signal: "KILL" is not one of HUP, USR1, USR2 or TERM"#,
        ),
        (
            &[(RELOAD_SIGNAL, "HUP"), (RELOAD_PROCESS, "/usr/sbin/nginx")],
            RELOAD_PROCESS,
            "at most 15 characters",
        ),
        (
            &[
                (RELOAD_SIGNAL, "HUP"),
                (RELOAD_PROCESS, "a-very-long-process-name"),
            ],
            RELOAD_PROCESS,
            "at most 15 characters",
        ),
        (
            &[(RELOAD_URL, "http://10.0.0.1:80/reload")],
            RELOAD_URL,
            "to the pod itself",
        ),
        (
            &[(RELOAD_URL, "https://127.0.0.1:8443/")],
            RELOAD_URL,
            "to the pod itself",
        ),
        (
            &[(RELOAD_URL, "http://127.0.0.1/")],
            RELOAD_URL,
            "with a port",
        ),
        (
            &[(RELOAD_URL, "http://127.0.0.1:0/")],
            RELOAD_URL,
            "with a port",
        ),
        (
            &[(RELOAD_URL, "http://localhost.evil.com:80/")],
            RELOAD_URL,
            "to the pod itself",
        ),
        (
            &[(MODE, "csi"), (RELOAD_URL, "http://127.0.0.1:80/")],
            RELOAD_URL,
            "cannot be used with tlsmint.io/mode: csi",
        ),
        (
            &[
                (MODE, "csi"),
                (RELOAD_SIGNAL, "HUP"),
                (RELOAD_PROCESS, "nginx"),
            ],
            RELOAD_SIGNAL,
            "use mode: sidecar",
        ),
    ];
    for (pairs, key, message) in cases {
        let err = parse_err(pairs);
        assert_eq!(&err.key, key, "{pairs:?}");
        assert!(err.to_string().contains(message), "{pairs:?}: {err}");
    }
}

#[test]
fn reload_signals_read_with_or_without_sig_in_any_case() {
    for signal in ReloadSignal::ALL {
        assert_eq!(signal.as_str().parse::<ReloadSignal>(), Ok(signal));
        let long = format!("sig{}", signal.as_str().to_lowercase());
        assert_eq!(long.parse::<ReloadSignal>(), Ok(signal));
    }
}
