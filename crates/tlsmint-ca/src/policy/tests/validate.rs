//! Table for `Policy::validate`: template syntax and the shape of role entries.

use super::super::{Policy, PolicyError, Problem, RoleField};
use super::*;

struct VCase {
    name: &'static str,
    policy: Policy,
    want: Option<(RoleField, Problem)>,
}

fn ok(name: &'static str, policy: Policy) -> VCase {
    VCase {
        name,
        policy,
        want: None,
    }
}

fn bad(name: &'static str, policy: Policy, field: RoleField, problem: Problem) -> VCase {
    VCase {
        name,
        policy,
        want: Some((field, problem)),
    }
}

#[test]
fn validate_role_entries() {
    use Problem::*;
    use RoleField::{AllowedDomains as D, AllowedUriSans as U};
    let uri = |p: &str| role(&[]).uri_sans(&[p]);
    let cases = vec![
        ok(
            "typical_role_is_valid",
            role(&["example.com", "{{namespace}}.svc"])
                .sub()
                .bare()
                .uri_sans(&["spiffe://cluster.local/ns/{{namespace}}/sa/{{serviceAccount}}"]),
        ),
        ok("default_role_is_valid", Policy::default()),
        ok("unicode_domain_is_valid", role(&["bücher.de"]).sub()),
        ok("glob_entry_with_globs_on", role(&["*.a.com"]).glob()),
        ok(
            "templated_glob_entry",
            role(&["*.{{namespace}}.svc"]).glob(),
        ),
        ok(
            "literal_wildcard_entry_with_bare_and_wildcards",
            role(&["*.a.com"]).bare().wild(),
        ),
        ok("urn_pattern_is_valid", uri("urn:uuid:*")),
        bad(
            "unknown_template",
            role(&["{{foo}}.a.com"]).sub(),
            D,
            BadTemplate,
        ),
        bad(
            "unclosed_template",
            role(&["{{namespace}.a.com"]).sub(),
            D,
            BadTemplate,
        ),
        bad(
            "unopened_template",
            role(&["{namespace}}.a.com"]).sub(),
            D,
            BadTemplate,
        ),
        bad(
            "template_with_spaces",
            role(&["{{ namespace }}.a.com"]).sub(),
            D,
            BadTemplate,
        ),
        bad(
            "wrong_case_template",
            role(&["{{ServiceAccount}}.a.com"]).sub(),
            D,
            BadTemplate,
        ),
        bad(
            "stray_closing_braces",
            role(&["a.com}}"]).sub(),
            D,
            BadTemplate,
        ),
        bad("empty_domain_entry", role(&[""]).sub(), D, Empty),
        bad(
            "empty_label_in_entry",
            role(&["a..com"]).sub(),
            D,
            EmptyLabel,
        ),
        bad(
            "space_in_entry",
            role(&["a b.com"]).sub(),
            D,
            ControlOrWhitespace,
        ),
        bad(
            "slash_in_entry",
            role(&["a/b.com"]).sub(),
            D,
            BadHostnameChar,
        ),
        bad(
            "glob_entry_without_globs",
            role(&["*.a.com"]).sub(),
            D,
            GlobNotEnabled,
        ),
        bad(
            "literal_wildcard_entry_without_wildcards",
            role(&["*.a.com"]).bare(),
            D,
            GlobNotEnabled,
        ),
        bad("glob_star_alone", role(&["*"]).glob(), D, GlobTooBroad),
        bad("glob_star_dot_star", role(&["*.*"]).glob(), D, GlobTooBroad),
        bad(
            "ip_as_domain_entry",
            role(&["10.0.0.1"]).bare(),
            D,
            NumericTld,
        ),
        bad("invalid_idn_entry", role(&["xn--a.com"]).sub(), D, Idna),
        bad(
            "long_label_entry",
            role(&[&format!("{}.com", "a".repeat(64))]).sub(),
            D,
            LabelTooLong,
        ),
        bad("empty_uri_pattern", uri(""), U, Empty),
        bad("uri_pattern_without_scheme", uri("*"), U, UriPatternScheme),
        bad(
            "uri_pattern_glob_scheme",
            uri("*://x/y"),
            U,
            UriPatternScheme,
        ),
        bad(
            "uri_pattern_unknown_template",
            uri("spiffe://td/{{sa}}"),
            U,
            BadTemplate,
        ),
        bad(
            "uri_pattern_with_space",
            uri("spiffe://td/a b"),
            U,
            UriBadChar,
        ),
        bad(
            "uri_pattern_with_fragment",
            uri("spiffe://td/x#y"),
            U,
            UriFragment,
        ),
        bad(
            "uri_pattern_bad_percent",
            uri("https://td/%g1"),
            U,
            UriBadPercent,
        ),
    ];
    let mut failures = Vec::new();
    for c in &cases {
        let got = c.policy.validate();
        let pass = match (&c.want, &got) {
            (None, Ok(())) => true,
            (Some((f, p)), Err(PolicyError::InvalidRoleEntry { field, problem, .. })) => {
                f == field && p == problem
            }
            _ => false,
        };
        if !pass {
            failures.push(format!("{}: want {:?}, got {:?}", c.name, c.want, got));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(cases.len(), 31);
}

#[test]
fn validate_message_names_role_field_and_entry() {
    let err = role(&["example.com", "{{nope}}.svc"]).sub().validate();
    let msg = err.map_err(|e| e.to_string()).err().unwrap_or_default();
    assert_eq!(
        msg,
        "role \"web\": allowedDomains entry \"{{nope}}.svc\" is invalid: it is not a valid \
         template: use {{namespace}} or {{serviceAccount}}, with balanced braces"
    );
}
