//! Tables for DNS names against `allowedDomains`: bare, subdomains, suffix
//! tricks, case and trailing dots, IDN, and host-name syntax (enforceHostnames).

use super::super::NameKind::DnsName as Dns;
use super::super::Problem;
use super::*;

fn long_label(n: usize) -> String {
    "a".repeat(n)
}

/// A name of exactly `total` bytes ending in `.a.com`.
fn name_of_len(total: usize) -> String {
    let mut left = total - ".a.com".len();
    let mut out = String::new();
    while left > 63 {
        out.push_str(&"b".repeat(62));
        out.push('.');
        left -= 63;
    }
    out.push_str(&"c".repeat(left));
    out + ".a.com"
}

#[test]
fn name_of_len_builds_exact_lengths() {
    for n in [20, 100, 253, 254] {
        assert_eq!(name_of_len(n).len(), n);
    }
}

#[test]
fn bare_subdomain_and_suffix_rules() {
    let n = run(vec![
        case(
            "bare_allows_exact_domain",
            role(&["a.com"]).bare(),
            dns(&["a.com"]),
            only_dns(&["a.com"]),
        ),
        case(
            "bare_alone_denies_subdomain",
            role(&["a.com"]).bare(),
            dns(&["x.a.com"]),
            Want::Denied(Dns),
        ),
        case(
            "subdomains_allow_one_level",
            role(&["a.com"]).sub(),
            dns(&["x.a.com"]),
            only_dns(&["x.a.com"]),
        ),
        case(
            "subdomains_allow_any_depth",
            role(&["a.com"]).sub(),
            dns(&["x.y.z.a.com"]),
            only_dns(&["x.y.z.a.com"]),
        ),
        case(
            "subdomains_alone_deny_the_domain_itself",
            role(&["a.com"]).sub(),
            dns(&["a.com"]),
            Want::Denied(Dns),
        ),
        case(
            "bare_and_subdomains_allow_domain",
            role(&["a.com"]).bare().sub(),
            dns(&["a.com"]),
            only_dns(&["a.com"]),
        ),
        case(
            "bare_and_subdomains_allow_below",
            role(&["a.com"]).bare().sub(),
            dns(&["w.a.com"]),
            only_dns(&["w.a.com"]),
        ),
        case(
            "no_switch_means_domains_match_nothing",
            role(&["a.com"]),
            dns(&["a.com"]),
            Want::Denied(Dns),
        ),
        case(
            "suffix_without_label_boundary_denied",
            role(&["a.com"]).bare().sub(),
            dns(&["evila.com"]),
            Want::Denied(Dns),
        ),
        case(
            "allowed_domain_as_prefix_denied",
            role(&["a.com"]).bare().sub(),
            dns(&["a.com.evil.com"]),
            Want::Denied(Dns),
        ),
        case(
            "parent_of_allowed_domain_denied",
            role(&["x.a.com"]).bare().sub(),
            dns(&["a.com"]),
            Want::Denied(Dns),
        ),
        case(
            "sibling_of_allowed_domain_denied",
            role(&["x.a.com"]).sub(),
            dns(&["y.a.com"]),
            Want::Denied(Dns),
        ),
        case(
            "second_allowed_domain_applies",
            role(&["a.com", "b.org"]).sub(),
            dns(&["x.b.org"]),
            only_dns(&["x.b.org"]),
        ),
        case(
            "one_bad_name_denies_the_whole_request",
            role(&["a.com"]).sub(),
            dns(&["x.a.com", "evil.com", "y.a.com"]),
            Want::Denied(Dns),
        ),
        case(
            "default_role_denies_everything",
            role(&[]),
            dns(&["a.com"]),
            Want::Denied(Dns),
        ),
        case(
            "empty_allowed_entry_is_ignored",
            role(&["", "a.com"]).sub(),
            dns(&["x.a.com"]),
            only_dns(&["x.a.com"]),
        ),
    ]);
    assert_eq!(n, 16);
}

#[test]
fn case_trailing_dots_and_idn() {
    let n = run(vec![
        case(
            "uppercase_and_trailing_dot_normalised",
            role(&["a.com"]).bare(),
            dns(&["A.COM."]),
            only_dns(&["a.com"]),
        ),
        case(
            "mixed_case_subdomain_normalised",
            role(&["a.com"]).sub(),
            dns(&["X.a.Com"]),
            only_dns(&["x.a.com"]),
        ),
        case(
            "uppercase_allowed_entry_matches",
            role(&["Example.COM"]).sub(),
            dns(&["api.example.com"]),
            only_dns(&["api.example.com"]),
        ),
        case(
            "allowed_entry_trailing_dot_matches",
            role(&["example.com."]).sub(),
            dns(&["api.example.com"]),
            only_dns(&["api.example.com"]),
        ),
        case(
            "two_trailing_dots_rejected",
            role(&["a.com"]).bare(),
            dns(&["a.com.."]),
            Want::Invalid(Dns, Problem::EmptyLabel),
        ),
        case(
            "leading_dot_rejected",
            role(&["a.com"]).sub(),
            dns(&[".a.com"]),
            Want::Invalid(Dns, Problem::EmptyLabel),
        ),
        case(
            "empty_inner_label_rejected",
            role(&["a.com"]).sub(),
            dns(&["x..a.com"]),
            Want::Invalid(Dns, Problem::EmptyLabel),
        ),
        case(
            "lone_dot_rejected",
            role(&["a.com"]).any(),
            dns(&["."]),
            Want::Invalid(Dns, Problem::Empty),
        ),
        case(
            "empty_string_rejected",
            role(&["a.com"]).any(),
            dns(&[""]),
            Want::Invalid(Dns, Problem::Empty),
        ),
        case(
            "unicode_name_issued_as_a_label",
            role(&["example.com"]).sub(),
            dns(&["bücher.example.com"]),
            only_dns(&["xn--bcher-kva.example.com"]),
        ),
        case(
            "unicode_uppercase_folded",
            role(&["example.com"]).sub(),
            dns(&["BÜCHER.Example.com"]),
            only_dns(&["xn--bcher-kva.example.com"]),
        ),
        case(
            "a_label_input_kept",
            role(&["example.com"]).sub(),
            dns(&["xn--bcher-kva.example.com"]),
            only_dns(&["xn--bcher-kva.example.com"]),
        ),
        case(
            "unicode_allowed_entry_matches_a_label",
            role(&["bücher.de"]).sub(),
            dns(&["shop.xn--bcher-kva.de"]),
            only_dns(&["shop.xn--bcher-kva.de"]),
        ),
        case(
            "invalid_punycode_rejected",
            role(&["example.com"]).sub(),
            dns(&["xn--a.example.com"]),
            Want::Invalid(Dns, Problem::Idna),
        ),
        case(
            "fake_a_label_of_ascii_rejected",
            role(&["example.com"]).sub(),
            dns(&["xn--abc-.example.com"]),
            Want::Invalid(Dns, Problem::Idna),
        ),
        case(
            "cyrillic_lookalike_does_not_match_latin",
            role(&["paypal.example.com"]).bare(),
            dns(&["p\u{430}ypal.example.com"]),
            Want::Denied(Dns),
        ),
        case(
            "ideographic_full_stop_is_a_dot",
            role(&["example.com"]).sub(),
            dns(&["api\u{3002}example.com"]),
            only_dns(&["api.example.com"]),
        ),
        case(
            "soft_hyphen_is_removed_before_matching",
            role(&["example.com"]).bare(),
            dns(&["exam\u{ad}ple.com"]),
            only_dns(&["example.com"]),
        ),
    ]);
    assert_eq!(n, 18);
}

#[test]
fn hostname_syntax_with_and_without_enforcement() {
    let a63 = format!("{}.a.com", long_label(63));
    let a64 = format!("{}.a.com", long_label(64));
    let n253 = name_of_len(253);
    let n254 = name_of_len(254);
    let huge = "a.".repeat(600) + "a.com";
    let n = run(vec![
        case(
            "underscore_refused_when_enforced",
            role(&["a.com"]).sub(),
            dns(&["_svc.a.com"]),
            Want::Invalid(Dns, Problem::Underscore),
        ),
        case(
            "underscore_allowed_when_not_enforced",
            role(&["a.com"]).sub().loose(),
            dns(&["_svc.a.com"]),
            only_dns(&["_svc.a.com"]),
        ),
        case(
            "space_refused",
            role(&["a.com"]).sub().loose(),
            dns(&["a b.a.com"]),
            Want::Invalid(Dns, Problem::ControlOrWhitespace),
        ),
        case(
            "nul_byte_refused",
            role(&["a.com"]).sub().loose(),
            dns(&["x\0.a.com"]),
            Want::Invalid(Dns, Problem::ControlOrWhitespace),
        ),
        case(
            "tab_refused",
            role(&["a.com"]).any(),
            dns(&["x\t.a.com"]),
            Want::Invalid(Dns, Problem::ControlOrWhitespace),
        ),
        case(
            "non_breaking_space_refused",
            role(&["a.com"]).any(),
            dns(&["x\u{a0}y.a.com"]),
            Want::Invalid(Dns, Problem::ControlOrWhitespace),
        ),
        case(
            "label_of_63_allowed",
            role(&["a.com"]).sub(),
            dns(&[&a63]),
            only_dns(&[&a63]),
        ),
        case(
            "label_of_64_refused",
            role(&["a.com"]).sub(),
            dns(&[&a64]),
            Want::Invalid(Dns, Problem::LabelTooLong),
        ),
        case(
            "name_of_253_allowed",
            role(&["a.com"]).sub(),
            dns(&[&n253]),
            only_dns(&[&n253]),
        ),
        case(
            "name_of_254_refused",
            role(&["a.com"]).sub(),
            dns(&[&n254]),
            Want::TooLong(Dns),
        ),
        case(
            "huge_raw_name_refused_early",
            role(&["a.com"]).sub(),
            dns(&[&huge]),
            Want::TooLong(Dns),
        ),
        case(
            "leading_hyphen_refused_when_enforced",
            role(&["a.com"]).sub(),
            dns(&["-x.a.com"]),
            Want::Invalid(Dns, Problem::HyphenAtLabelEdge),
        ),
        case(
            "trailing_hyphen_refused_when_enforced",
            role(&["a.com"]).sub(),
            dns(&["x-.a.com"]),
            Want::Invalid(Dns, Problem::HyphenAtLabelEdge),
        ),
        case(
            "edge_hyphen_allowed_when_not_enforced",
            role(&["a.com"]).sub().loose(),
            dns(&["-x.a.com"]),
            only_dns(&["-x.a.com"]),
        ),
        case(
            "inner_double_hyphen_allowed",
            role(&["a.com"]).sub(),
            dns(&["ab--cd.a.com"]),
            only_dns(&["ab--cd.a.com"]),
        ),
        case(
            "email_in_dns_field_refused",
            role(&["a.com"]).sub().bare(),
            dns(&["user@a.com"]),
            Want::Invalid(Dns, Problem::EmailInDnsName),
        ),
        case(
            "bang_refused",
            role(&["a.com"]).sub().loose(),
            dns(&["x!.a.com"]),
            Want::Invalid(Dns, Problem::BadHostnameChar),
        ),
        case(
            "slash_refused",
            role(&["a.com"]).any().loose(),
            dns(&["x/y.a.com"]),
            Want::Invalid(Dns, Problem::BadHostnameChar),
        ),
        case(
            "port_refused",
            role(&["a.com"]).any(),
            dns(&["x.a.com:443"]),
            Want::Invalid(Dns, Problem::BadHostnameChar),
        ),
        case(
            "ipv4_in_dns_field_refused",
            role(&[]).any(),
            dns(&["10.0.0.1"]),
            Want::Invalid(Dns, Problem::NumericTld),
        ),
        case(
            "numeric_single_label_refused",
            role(&[]).any(),
            dns(&["1234"]),
            Want::Invalid(Dns, Problem::NumericTld),
        ),
        case(
            "numeric_inner_label_allowed",
            role(&["a.com"]).sub(),
            dns(&["10.0.a.com"]),
            only_dns(&["10.0.a.com"]),
        ),
    ]);
    assert_eq!(n, 22);
}
