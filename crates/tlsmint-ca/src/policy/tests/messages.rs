//! Exact wording of representative denials, escaping and truncation of echoed
//! values, error classes, and a rough timing of `check` (ignored by default).

use super::super::{ErrorClass, MAX_ECHO_CHARS, NameRequest};
use super::*;

fn message(policy: &Policy, identity: &Identity, req: &NameRequest) -> String {
    match policy.check(identity, req) {
        Ok(v) => format!("unexpectedly issued {v:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn representative_denial_messages() {
    let web = role(&["example.com"]).sub();
    let uri_role = role(&[]).uri_sans(&["spiffe://cluster.local/ns/{{namespace}}/sa/*"]);
    let rows: Vec<(&str, Policy, Identity, NameRequest, &str)> = vec![
        (
            "dns_denial",
            web.clone(),
            caller(),
            dns(&["evil.com"]),
            "dns name \"evil.com\" is not allowed by role \"web\": allowed domains are example.com (subdomains)",
        ),
        (
            "ip_denial",
            web.clone(),
            caller(),
            ips(&["10.0.0.1"]),
            "ip address \"10.0.0.1\" is not allowed by role \"web\": allowIPSANs is false",
        ),
        (
            "uri_denial_shows_filled_template",
            uri_role.clone(),
            caller(),
            uris(&["spiffe://x/y"]),
            "uri \"spiffe://x/y\" is not allowed by role \"web\": allowed URI SANs are spiffe://cluster.local/ns/default/sa/*",
        ),
        (
            "cn_denial",
            web.clone().bare().localhost(),
            caller(),
            cn("evil.com"),
            "common name \"evil.com\" is not allowed by role \"web\": allowed domains are example.com (bare, subdomains); localhost is allowed",
        ),
        (
            "wildcard_denial",
            web.clone(),
            caller(),
            dns(&["*.example.com"]),
            "dns name \"*.example.com\" is not allowed by role \"web\": allowWildcardCertificates is false",
        ),
        (
            "default_deny",
            role(&[]),
            caller(),
            dns(&["a.com"]),
            "dns name \"a.com\" is not allowed by role \"web\": the role allows no DNS names",
        ),
        (
            "domains_without_switches",
            role(&["a.com"]),
            caller(),
            dns(&["a.com"]),
            "dns name \"a.com\" is not allowed by role \"web\": allowed domains are a.com, but none of allowBareDomains, allowSubdomains, allowGlobDomains is true",
        ),
        (
            "no_uri_sans",
            web.clone(),
            caller(),
            uris(&["spiffe://td/a"]),
            "uri \"spiffe://td/a\" is not allowed by role \"web\": the role allows no URI SANs",
        ),
        (
            "sa_entries_do_not_apply",
            role(&["{{serviceAccount}}.a.com"]).bare(),
            who("default", None),
            dns(&["web.a.com"]),
            "dns name \"web.a.com\" is not allowed by role \"web\": none of the allowed domains applies to this caller",
        ),
        (
            "malformed_name",
            web.clone(),
            caller(),
            dns(&["a..example.com"]),
            "dns name \"a..example.com\" is invalid for role \"web\": it has an empty label",
        ),
        (
            "template_refused",
            role(&["{{serviceAccount}}.a.com"]).glob(),
            who("default", Some("*")),
            dns(&["x.a.com"]),
            "role \"web\" cannot use the caller's serviceAccount \"*\" in a template: it contains characters other than a-z, 0-9 and '-'",
        ),
        (
            "no_names",
            web.clone(),
            caller(),
            NameRequest::default(),
            "request to role \"web\" names nothing to issue: give a common name, DNS names, IP addresses or URIs",
        ),
        (
            "cn_required",
            web.clone().require_cn(),
            caller(),
            dns(&["a.example.com"]),
            "role \"web\" requires a common name (requireCommonName is true)",
        ),
    ];
    let mut failures = Vec::new();
    for (name, policy, identity, req, want) in &rows {
        let got = message(policy, identity, req);
        if got != *want {
            failures.push(format!("{name}:\n    want {want}\n    got  {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn long_values_are_truncated_in_messages() {
    let long = format!("{}evil.com", "x.".repeat(150));
    let err = role(&["example.com"])
        .sub()
        .check(&caller(), &dns(&[&long]));
    let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
    let quoted = msg.split('"').nth(1).unwrap_or_default();
    assert_eq!(quoted.chars().count(), MAX_ECHO_CHARS + 1, "{msg}");
    assert!(quoted.ends_with('…'));
    let huge = "a".repeat(100_000);
    let err = role(&[]).check(&caller(), &uris(&[&huge]));
    let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.len() < 400, "message of {} bytes", msg.len());
    assert!(msg.ends_with("at most 2048 bytes"), "{msg}");
}

#[test]
fn control_characters_are_escaped_in_messages() {
    let err = role(&["example.com"])
        .sub()
        .check(&caller(), &dns(&["a\0b\u{1b}[31m.example.com"]));
    let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(!msg.chars().any(char::is_control), "{msg:?}");
    assert!(msg.contains(r#"a\0b\u{1b}[31m.example.com"#), "{msg}");
}

#[test]
fn error_classes_map_to_status_codes() {
    let web = role(&["example.com"]).sub();
    let class = |policy: &Policy, id: &Identity, req: &NameRequest| {
        policy.check(id, req).err().map(|e| (e.class(), e.label()))
    };
    assert_eq!(
        class(&web, &caller(), &dns(&["evil.com"])),
        Some((ErrorClass::Denied, "name_not_allowed"))
    );
    assert_eq!(
        class(&web, &caller(), &dns(&["a b"])),
        Some((ErrorClass::InvalidRequest, "invalid_name"))
    );
    assert_eq!(
        class(&web, &caller(), &NameRequest::default()),
        Some((ErrorClass::InvalidRequest, "no_names"))
    );
    let tpl = role(&["{{namespace}}.a.com"]).bare();
    assert_eq!(
        class(&tpl, &who("A", None), &dns(&["a.a.com"])),
        Some((ErrorClass::Denied, "template_value_refused"))
    );
    let bad = role(&["{{x}}"])
        .validate()
        .err()
        .map(|e| (e.class(), e.label()));
    assert_eq!(bad, Some((ErrorClass::RoleInvalid, "invalid_role_entry")));
    assert!(web.check(&caller(), &dns(&["ok.example.com"])).is_ok());
}

/// Rough timing: `cargo test -p tlsmint-ca --release policy -- --ignored --nocapture`.
#[test]
#[ignore = "timing, run by hand in release mode"]
fn time_a_typical_check() {
    let policy = role(&["example.com", "{{namespace}}.svc.cluster.local"])
        .sub()
        .bare()
        .ips()
        .uri_sans(&["spiffe://cluster.local/ns/{{namespace}}/sa/{{serviceAccount}}"]);
    let req = NameRequest {
        common_name: Some("api.example.com".into()),
        dns_names: vec![
            "api.example.com".into(),
            "api.default.svc.cluster.local".into(),
        ],
        ip_addresses: vec!["10.0.0.1".into()],
        uris: vec!["spiffe://cluster.local/ns/default/sa/web".into()],
    };
    let idn = dns(&["bücher.example.com", "straße.example.com"]);
    for (label, req) in [("typical", &req), ("idn", &idn)] {
        let n = 200_000u32;
        let start = std::time::Instant::now();
        for _ in 0..n {
            assert!(std::hint::black_box(policy.check(&caller(), req)).is_ok());
        }
        println!("{label}: {:?} per check", start.elapsed() / n);
    }
}
