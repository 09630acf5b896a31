//! Tables for URI SANs: glob patterns with templates (SPIFFE style), URI syntax,
//! SPIFFE ID rules, and case.

use super::super::NameKind::Uri;
use super::super::Problem;
use super::*;

const SPIFFE_TEMPLATE: &str = "spiffe://cluster.local/ns/{{namespace}}/sa/{{serviceAccount}}";

#[test]
fn uri_patterns_and_templates() {
    let tpl = || role(&[]).uri_sans(&[SPIFFE_TEMPLATE]);
    let ns_glob = || role(&[]).uri_sans(&["spiffe://cluster.local/ns/default/sa/*"]);
    let host = || role(&[]).uri_sans(&["spiffe://host.com/*"]);
    let web = "spiffe://cluster.local/ns/default/sa/web";
    let n = run(vec![
        case(
            "spiffe_template_allows_own_id",
            tpl(),
            uris(&[web]),
            only_uris(&[web]),
        ),
        case(
            "spiffe_template_denies_other_sa",
            tpl(),
            uris(&["spiffe://cluster.local/ns/default/sa/admin"]),
            Want::Denied(Uri),
        ),
        case(
            "spiffe_template_denies_other_namespace",
            tpl(),
            uris(&["spiffe://cluster.local/ns/kube-system/sa/web"]),
            Want::Denied(Uri),
        ),
        Case {
            name: "spiffe_template_needs_a_service_account",
            policy: tpl(),
            identity: who("default", None),
            req: uris(&[web]),
            want: Want::Denied(Uri),
        },
        Case {
            name: "namespace_only_pattern_applies_without_sa",
            policy: role(&[]).uri_sans(&[
                SPIFFE_TEMPLATE,
                "spiffe://cluster.local/ns/{{namespace}}/cr",
            ]),
            identity: who("default", None),
            req: uris(&["spiffe://cluster.local/ns/default/cr"]),
            want: only_uris(&["spiffe://cluster.local/ns/default/cr"]),
        },
        Case {
            name: "spiffe_template_follows_the_identity",
            policy: tpl(),
            identity: who("team-a", Some("api")),
            req: uris(&["spiffe://cluster.local/ns/team-a/sa/api"]),
            want: only_uris(&["spiffe://cluster.local/ns/team-a/sa/api"]),
        },
        case(
            "glob_allows_any_sa_in_namespace",
            ns_glob(),
            uris(&["spiffe://cluster.local/ns/default/sa/x"]),
            only_uris(&["spiffe://cluster.local/ns/default/sa/x"]),
        ),
        case(
            "glob_star_crosses_slashes_as_vault",
            ns_glob(),
            uris(&["spiffe://cluster.local/ns/default/sa/x/y"]),
            only_uris(&["spiffe://cluster.local/ns/default/sa/x/y"]),
        ),
        case(
            "glob_keeps_its_literal_prefix",
            ns_glob(),
            uris(&["spiffe://cluster.local/ns/other/sa/x"]),
            Want::Denied(Uri),
        ),
        case(
            "no_allowed_uris_denies",
            role(&["a.com"]).any(),
            uris(&["spiffe://host.com/a"]),
            Want::Denied(Uri),
        ),
        case(
            "other_scheme_denied",
            host(),
            uris(&["http://www.mydomain.com/zxf"]),
            Want::Denied(Uri),
        ),
        case(
            "host_glob_allows_path",
            host(),
            uris(&["spiffe://host.com/a"]),
            only_uris(&["spiffe://host.com/a"]),
        ),
        case(
            "uppercase_scheme_normalised",
            host(),
            uris(&["SPIFFE://host.com/a"]),
            only_uris(&["spiffe://host.com/a"]),
        ),
        case(
            "uppercase_pattern_scheme_normalised",
            role(&[]).uri_sans(&["HTTPS://example.com/*"]),
            uris(&["https://example.com/x"]),
            only_uris(&["https://example.com/x"]),
        ),
        case(
            "authority_and_path_case_sensitive",
            role(&[]).uri_sans(&["https://example.com/*"]),
            uris(&["https://Example.com/x"]),
            Want::Denied(Uri),
        ),
        case(
            "pattern_without_scheme_matches_nothing",
            role(&[]).uri_sans(&["*"]),
            uris(&["https://example.com/x"]),
            Want::Denied(Uri),
        ),
        case(
            "urn_allowed_by_pattern",
            role(&[]).uri_sans(&["urn:uuid:*"]),
            uris(&["urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66"]),
            only_uris(&["urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66"]),
        ),
        case(
            "same_spiffe_id_twice_deduped",
            tpl(),
            uris(&[web, web]),
            only_uris(&[web]),
        ),
    ]);
    assert_eq!(n, 18);
}

#[test]
fn uri_syntax() {
    let any = || role(&[]).uri_sans(&["spiffe://*", "https://*", "urn:*", "http://*"]);
    let too_long = format!("https://example.com/{}", "a".repeat(2030));
    let n = run(vec![
        case(
            "fragment_refused",
            any(),
            uris(&["https://host.com/a#frag"]),
            Want::Invalid(Uri, Problem::UriFragment),
        ),
        case(
            "space_refused",
            any(),
            uris(&["https://host.com/a b"]),
            Want::Invalid(Uri, Problem::UriBadChar),
        ),
        case(
            "newline_refused",
            any(),
            uris(&["https://host.com/a\nb"]),
            Want::Invalid(Uri, Problem::UriBadChar),
        ),
        case(
            "non_ascii_refused",
            any(),
            uris(&["https://host.com/\u{fc}"]),
            Want::Invalid(Uri, Problem::UriBadChar),
        ),
        case(
            "braces_refused",
            any(),
            uris(&["https://host.com/{{namespace}}"]),
            Want::Invalid(Uri, Problem::UriBadChar),
        ),
        case(
            "relative_reference_refused",
            any(),
            uris(&["host.com/a"]),
            Want::Invalid(Uri, Problem::UriNoScheme),
        ),
        case(
            "bad_scheme_refused",
            any(),
            uris(&["1http://host.com/a"]),
            Want::Invalid(Uri, Problem::UriNoScheme),
        ),
        case(
            "dot_dot_segment_refused",
            any(),
            uris(&["spiffe://host.com/ns/../x"]),
            Want::Invalid(Uri, Problem::UriDotSegment),
        ),
        case(
            "encoded_dot_segment_refused",
            any(),
            uris(&["https://host.com/a/%2e%2E/b"]),
            Want::Invalid(Uri, Problem::UriDotSegment),
        ),
        case(
            "userinfo_refused",
            any(),
            uris(&["https://user@host.com/x"]),
            Want::Invalid(Uri, Problem::UriUserinfo),
        ),
        case(
            "star_in_request_refused",
            any(),
            uris(&["https://host.com/*"]),
            Want::Invalid(Uri, Problem::UriWildcard),
        ),
        case(
            "bad_percent_refused",
            any(),
            uris(&["https://host.com/%zz"]),
            Want::Invalid(Uri, Problem::UriBadPercent),
        ),
        case(
            "good_percent_kept",
            any(),
            uris(&["https://host.com/a%20b"]),
            only_uris(&["https://host.com/a%20b"]),
        ),
        case(
            "query_allowed_outside_spiffe",
            any(),
            uris(&["https://host.com/a?b=c"]),
            only_uris(&["https://host.com/a?b=c"]),
        ),
        case(
            "spiffe_port_refused",
            any(),
            uris(&["spiffe://host.com:443/a"]),
            Want::Invalid(Uri, Problem::SpiffeId),
        ),
        case(
            "spiffe_query_refused",
            any(),
            uris(&["spiffe://host.com/a?x=1"]),
            Want::Invalid(Uri, Problem::SpiffeId),
        ),
        case(
            "spiffe_percent_refused",
            any(),
            uris(&["spiffe://host.com/a%20b"]),
            Want::Invalid(Uri, Problem::SpiffeId),
        ),
        case(
            "spiffe_trailing_slash_refused",
            any(),
            uris(&["spiffe://host.com/a/"]),
            Want::Invalid(Uri, Problem::SpiffeId),
        ),
        case(
            "spiffe_without_path_refused",
            any(),
            uris(&["spiffe://host.com"]),
            Want::Invalid(Uri, Problem::SpiffeId),
        ),
        case(
            "spiffe_uppercase_trust_domain_refused",
            any(),
            uris(&["spiffe://Host.com/a"]),
            Want::Invalid(Uri, Problem::SpiffeId),
        ),
        case(
            "spiffe_without_slashes_refused",
            any(),
            uris(&["spiffe:host.com/a"]),
            Want::Invalid(Uri, Problem::SpiffeId),
        ),
        case(
            "two_spiffe_ids_refused",
            any(),
            uris(&["spiffe://host.com/a", "spiffe://host.com/b"]),
            Want::Invalid(Uri, Problem::SpiffeNotAlone),
        ),
        case(
            "spiffe_id_with_other_uri_refused",
            any(),
            uris(&["https://host.com/a", "spiffe://host.com/b"]),
            Want::Invalid(Uri, Problem::SpiffeNotAlone),
        ),
        case(
            "several_non_spiffe_uris_allowed",
            any(),
            uris(&["https://host.com/a", "urn:x:y"]),
            only_uris(&["https://host.com/a", "urn:x:y"]),
        ),
        case(
            "uri_over_2048_bytes_refused",
            any(),
            uris(&[&too_long]),
            Want::TooLong(Uri),
        ),
        case(
            "empty_uri_refused",
            any(),
            uris(&[""]),
            Want::Invalid(Uri, Problem::Empty),
        ),
    ]);
    assert_eq!(n, 26);
}
