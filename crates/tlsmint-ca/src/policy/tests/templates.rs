//! Tables for identity templates: substitution from the verified identity, entries
//! that need a service account, and hostile identity values (the injection class
//! where a namespace or service account name adds a glob or a label).

use super::super::NameKind::{DnsName as Dns, Uri};
use super::super::Problem;
use super::*;

fn as_caller(
    name: &'static str,
    policy: Policy,
    ns: &str,
    sa: Option<&str>,
    req: NameRequest,
    want: Want,
) -> Case {
    Case {
        name,
        policy,
        identity: who(ns, sa),
        req,
        want,
    }
}

#[test]
fn templates_fill_from_identity() {
    let svc = || role(&["{{namespace}}.svc.cluster.local"]).bare().sub();
    let both = || role(&["{{serviceAccount}}.{{namespace}}.svc"]).bare();
    let mixed = || role(&["{{serviceAccount}}.x.com", "{{namespace}}.y.com"]).bare();
    let n = run(vec![
        case(
            "namespace_template_bare",
            svc(),
            dns(&["default.svc.cluster.local"]),
            only_dns(&["default.svc.cluster.local"]),
        ),
        case(
            "namespace_template_subdomain",
            svc(),
            dns(&["api.default.svc.cluster.local"]),
            only_dns(&["api.default.svc.cluster.local"]),
        ),
        case(
            "namespace_template_denies_other_namespace",
            svc(),
            dns(&["api.kube-system.svc.cluster.local"]),
            Want::Denied(Dns),
        ),
        case(
            "both_templates_filled",
            both(),
            dns(&["web.default.svc"]),
            only_dns(&["web.default.svc"]),
        ),
        case(
            "both_templates_deny_other_sa",
            both(),
            dns(&["admin.default.svc"]),
            Want::Denied(Dns),
        ),
        as_caller(
            "sa_entry_skipped_for_certificate_requests",
            mixed(),
            "default",
            None,
            dns(&["web.x.com"]),
            Want::Denied(Dns),
        ),
        as_caller(
            "namespace_entry_still_applies_without_sa",
            mixed(),
            "default",
            None,
            dns(&["default.y.com"]),
            only_dns(&["default.y.com"]),
        ),
        case(
            "template_inside_a_label",
            role(&["{{namespace}}-api.example.com"]).bare(),
            dns(&["default-api.example.com"]),
            only_dns(&["default-api.example.com"]),
        ),
        case(
            "unknown_template_matches_nothing",
            role(&["{{foo}}.a.com"]).bare().sub(),
            dns(&["x.a.com"]),
            Want::Denied(Dns),
        ),
        case(
            "literal_template_text_in_request_is_not_a_name",
            svc(),
            dns(&["{{namespace}}.svc.cluster.local"]),
            Want::Invalid(Dns, Problem::BadHostnameChar),
        ),
        as_caller(
            "uppercase_request_matches_filled_template",
            svc(),
            "default",
            Some("web"),
            dns(&["DEFAULT.svc.cluster.local"]),
            only_dns(&["default.svc.cluster.local"]),
        ),
        as_caller(
            "sa_of_63_chars_accepted",
            both(),
            "default",
            Some(&"s".repeat(63)),
            dns(&[&format!("{}.default.svc", "s".repeat(63))]),
            only_dns(&[&format!("{}.default.svc", "s".repeat(63))]),
        ),
    ]);
    assert_eq!(n, 12);
}

#[test]
fn hostile_identity_values_are_refused() {
    let ns_role = || role(&["{{namespace}}.svc"]).bare().sub().glob();
    let sa_role = || role(&["{{serviceAccount}}.apps.example.com"]).bare().glob();
    let sa_uri =
        || role(&[]).uri_sans(&["spiffe://cluster.local/ns/{{namespace}}/sa/{{serviceAccount}}"]);
    let req = || dns(&["x.svc"]);
    let n = run(vec![
        as_caller(
            "namespace_star_refused",
            ns_role(),
            "*",
            Some("web"),
            req(),
            Want::Refused("namespace", Problem::ValueBadChar),
        ),
        as_caller(
            "namespace_with_dot_refused",
            ns_role(),
            "a.b",
            Some("web"),
            req(),
            Want::Refused("namespace", Problem::ValueBadChar),
        ),
        as_caller(
            "namespace_template_literal_refused",
            ns_role(),
            "{{namespace}}",
            Some("web"),
            req(),
            Want::Refused("namespace", Problem::ValueBadChar),
        ),
        as_caller(
            "namespace_empty_refused",
            ns_role(),
            "",
            Some("web"),
            req(),
            Want::Refused("namespace", Problem::Empty),
        ),
        as_caller(
            "namespace_uppercase_refused",
            ns_role(),
            "Default",
            Some("web"),
            req(),
            Want::Refused("namespace", Problem::ValueUppercase),
        ),
        as_caller(
            "namespace_with_space_refused",
            ns_role(),
            "a b",
            Some("web"),
            req(),
            Want::Refused("namespace", Problem::ValueBadChar),
        ),
        as_caller(
            "namespace_with_at_refused",
            ns_role(),
            "a@b",
            Some("web"),
            req(),
            Want::Refused("namespace", Problem::ValueBadChar),
        ),
        as_caller(
            "namespace_with_colon_refused",
            ns_role(),
            "a:b",
            Some("web"),
            req(),
            Want::Refused("namespace", Problem::ValueBadChar),
        ),
        as_caller(
            "namespace_unicode_refused",
            ns_role(),
            "d\u{e9}faut",
            Some("web"),
            req(),
            Want::Refused("namespace", Problem::ValueBadChar),
        ),
        as_caller(
            "sa_star_refused_glob_injection",
            sa_role(),
            "default",
            Some("*"),
            dns(&["evil.apps.example.com"]),
            Want::Refused("serviceAccount", Problem::ValueBadChar),
        ),
        as_caller(
            "sa_path_traversal_refused",
            sa_uri(),
            "default",
            Some("evil/../x"),
            uris(&["spiffe://cluster.local/ns/default/sa/evil/../x"]),
            Want::Refused("serviceAccount", Problem::ValueBadChar),
        ),
        as_caller(
            "sa_comma_refused",
            sa_role(),
            "default",
            Some("x,y"),
            dns(&["x.apps.example.com"]),
            Want::Refused("serviceAccount", Problem::ValueBadChar),
        ),
        as_caller(
            "sa_braces_refused",
            sa_role(),
            "default",
            Some("{x}"),
            dns(&["x.apps.example.com"]),
            Want::Refused("serviceAccount", Problem::ValueBadChar),
        ),
        as_caller(
            "sa_of_64_chars_refused",
            sa_role(),
            "default",
            Some(&"s".repeat(64)),
            dns(&["x.apps.example.com"]),
            Want::Refused("serviceAccount", Problem::ValueTooLong),
        ),
        as_caller(
            "sa_leading_hyphen_refused",
            sa_role(),
            "default",
            Some("-web"),
            dns(&["x.apps.example.com"]),
            Want::Refused("serviceAccount", Problem::ValueHyphenEdge),
        ),
        as_caller(
            "sa_kubernetes_dotted_name_refused",
            sa_role(),
            "default",
            Some("my.sa"),
            dns(&["my.sa.apps.example.com"]),
            Want::Refused("serviceAccount", Problem::ValueBadChar),
        ),
        as_caller(
            "hostile_sa_ignored_when_no_entry_uses_it",
            ns_role(),
            "default",
            Some("a.b*"),
            dns(&["default.svc"]),
            only_dns(&["default.svc"]),
        ),
        as_caller(
            "hostile_namespace_refused_for_uri_templates",
            sa_uri(),
            "x/y",
            Some("web"),
            uris(&["spiffe://cluster.local/ns/x/y/sa/web"]),
            Want::Refused("namespace", Problem::ValueBadChar),
        ),
        as_caller(
            "sa_star_cannot_widen_uri_pattern",
            sa_uri(),
            "default",
            Some("*"),
            uris(&["spiffe://cluster.local/ns/default/sa/admin"]),
            Want::Refused("serviceAccount", Problem::ValueBadChar),
        ),
        as_caller(
            "valid_values_still_checked_as_names",
            sa_uri(),
            "default",
            Some("web"),
            uris(&["spiffe://cluster.local/ns/default/sa/other"]),
            Want::Denied(Uri),
        ),
    ]);
    assert_eq!(n, 20);
}
