//! Tables for wildcard certificates: the switch, the RFC 9525 shape, and how a
//! wildcard must still fall under a subdomain, glob or literal bare rule.

use super::super::NameKind::{CommonName, DnsName as Dns};
use super::super::Problem;
use super::*;

#[test]
fn wildcard_switch_and_shape() {
    let n = run(vec![
        case(
            "wildcard_under_subdomains_allowed",
            role(&["a.com"]).sub().wild(),
            dns(&["*.a.com"]),
            only_dns(&["*.a.com"]),
        ),
        case(
            "wildcard_refused_when_switch_off",
            role(&["a.com"]).sub(),
            dns(&["*.a.com"]),
            Want::Denied(Dns),
        ),
        case(
            "wildcard_switch_wins_over_any_name",
            role(&[]).any(),
            dns(&["*.a.com"]),
            Want::Denied(Dns),
        ),
        case(
            "wildcard_with_any_name_allowed",
            role(&[]).any().wild(),
            dns(&["*.a.com"]),
            only_dns(&["*.a.com"]),
        ),
        case(
            "two_wildcard_labels_refused",
            role(&["a.com"]).sub().wild().any(),
            dns(&["*.*.a.com"]),
            Want::Invalid(Dns, Problem::MultipleWildcards),
        ),
        case(
            "wildcard_in_inner_label_refused",
            role(&["a.com"]).sub().wild().any(),
            dns(&["x.*.a.com"]),
            Want::Invalid(Dns, Problem::WildcardNotLeftmost),
        ),
        case(
            "partial_wildcard_prefix_refused",
            role(&["a.com"]).sub().wild().any(),
            dns(&["*a.com"]),
            Want::Invalid(Dns, Problem::PartialWildcard),
        ),
        case(
            "partial_wildcard_suffix_refused",
            role(&["a.com"]).sub().wild().any(),
            dns(&["a*.a.com"]),
            Want::Invalid(Dns, Problem::PartialWildcard),
        ),
        case(
            "partial_wildcard_middle_refused",
            role(&["a.com"]).sub().wild().any(),
            dns(&["x*x.a.com"]),
            Want::Invalid(Dns, Problem::PartialWildcard),
        ),
        case(
            "wildcard_over_tld_refused",
            role(&["com"]).sub().wild().any(),
            dns(&["*.com"]),
            Want::Invalid(Dns, Problem::WildcardTooBroad),
        ),
        case(
            "lone_star_refused",
            role(&[]).any().wild(),
            dns(&["*"]),
            Want::Invalid(Dns, Problem::WildcardTooBroad),
        ),
        case(
            "star_dot_refused",
            role(&[]).any().wild(),
            dns(&["*."]),
            Want::Invalid(Dns, Problem::WildcardTooBroad),
        ),
        case(
            "wildcard_below_localhost_refused",
            role(&[]).localhost().sub().wild(),
            dns(&["*.localhost"]),
            Want::Invalid(Dns, Problem::WildcardTooBroad),
        ),
        case(
            "fullwidth_asterisk_is_still_a_wildcard",
            role(&["a.com"]).sub(),
            dns(&["\u{ff0a}.a.com"]),
            Want::Denied(Dns),
        ),
        case(
            "wildcard_label_after_empty_label_refused",
            role(&["a.com"]).sub().wild(),
            dns(&["*..a.com"]),
            Want::Invalid(Dns, Problem::EmptyLabel),
        ),
    ]);
    assert_eq!(n, 15);
}

#[test]
fn wildcard_must_fall_under_a_rule() {
    let n = run(vec![
        case(
            "deeper_wildcard_under_subdomains",
            role(&["a.com"]).sub().wild(),
            dns(&["*.x.a.com"]),
            only_dns(&["*.x.a.com"]),
        ),
        case(
            "wildcard_needs_more_than_bare",
            role(&["a.com"]).bare().wild(),
            dns(&["*.a.com"]),
            Want::Denied(Dns),
        ),
        case(
            "wildcard_suffix_trick_denied",
            role(&["a.com"]).sub().wild(),
            dns(&["*.evila.com"]),
            Want::Denied(Dns),
        ),
        case(
            "wildcard_of_other_domain_denied",
            role(&["a.com"]).sub().wild(),
            dns(&["*.b.com"]),
            Want::Denied(Dns),
        ),
        case(
            "glob_matches_literal_wildcard",
            role(&["*.a.com"]).glob().wild(),
            dns(&["*.a.com"]),
            only_dns(&["*.a.com"]),
        ),
        case(
            "glob_matches_deeper_wildcard",
            role(&["*.a.com"]).glob().wild(),
            dns(&["*.x.a.com"]),
            only_dns(&["*.x.a.com"]),
        ),
        case(
            "glob_and_wildcard_do_not_layer",
            role(&["x*x.foo"]).glob().sub().wild(),
            dns(&["*.xyx.foo"]),
            Want::Denied(Dns),
        ),
        case(
            "bare_wildcard_entry_allows_exactly_itself",
            role(&["*.a.com"]).bare().wild(),
            dns(&["*.a.com"]),
            only_dns(&["*.a.com"]),
        ),
        case(
            "bare_wildcard_entry_denies_names_under_it",
            role(&["*.a.com"]).bare().wild(),
            dns(&["x.a.com"]),
            Want::Denied(Dns),
        ),
        case(
            "wildcard_normalised",
            role(&["a.com"]).sub().wild(),
            dns(&["*.A.COM."]),
            only_dns(&["*.a.com"]),
        ),
        case(
            "wildcard_over_idn_normalised",
            role(&["bücher.de"]).sub().wild(),
            dns(&["*.BÜCHER.de"]),
            only_dns(&["*.xn--bcher-kva.de"]),
        ),
        case(
            "wildcard_common_name",
            role(&["a.com"]).sub().wild(),
            cn("*.a.com"),
            cn_dns("*.a.com", &["*.a.com"]),
        ),
        case(
            "wildcard_common_name_refused_when_off",
            role(&["a.com"]).sub(),
            cn("*.a.com"),
            Want::Denied(CommonName),
        ),
    ]);
    assert_eq!(n, 13);
}
