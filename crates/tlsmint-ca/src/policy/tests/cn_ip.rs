//! Tables for the common name (host name, email, IP, free text, requirements),
//! IP SANs, dedupe and normalisation of the full output, and size limits.

use std::net::IpAddr;

use super::super::NameKind::{CommonName, DnsName as Dns, IpAddress};
use super::super::{MAX_NAMES, Problem};
use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or(IpAddr::from([255, 255, 255, 255]))
}

fn with_cn(mut req: NameRequest, common_name: &str) -> NameRequest {
    req.common_name = Some(common_name.to_owned());
    req
}

fn email_cn(address: &str) -> Want {
    Want::Issued(ValidatedNames {
        common_name: Some(address.to_owned()),
        email_addresses: vec![address.to_owned()],
        ..ValidatedNames::default()
    })
}

#[test]
fn common_name_rules() {
    let ex = || role(&["example.com"]).sub();
    let cn65 = format!("{}.example.com", "a".repeat(53));
    let n = run(vec![
        case(
            "host_cn_goes_first_in_dns_names",
            ex(),
            with_cn(dns(&["b.example.com"]), "api.example.com"),
            cn_dns("api.example.com", &["api.example.com", "b.example.com"]),
        ),
        case(
            "cn_repeated_in_sans_is_deduped",
            ex(),
            with_cn(dns(&["API.example.com."]), "api.example.com"),
            cn_dns("api.example.com", &["api.example.com"]),
        ),
        case(
            "cn_is_normalised_too",
            ex(),
            cn("API.Example.COM."),
            cn_dns("api.example.com", &["api.example.com"]),
        ),
        case(
            "cn_outside_role_denied_as_common_name",
            ex(),
            cn("evil.com"),
            Want::Denied(CommonName),
        ),
        case(
            "cn_of_65_chars_refused",
            ex(),
            cn(&cn65),
            Want::Invalid(CommonName, Problem::CommonNameTooLong),
        ),
        case(
            "same_65_chars_fine_as_dns_san",
            ex(),
            dns(&[&cn65]),
            only_dns(&[&cn65]),
        ),
        case(
            "email_cn_domain_bare",
            role(&["example.com"]).bare(),
            cn("alice@example.com"),
            email_cn("alice@example.com"),
        ),
        case(
            "email_cn_domain_subdomain",
            ex(),
            cn("bob@mail.example.com"),
            email_cn("bob@mail.example.com"),
        ),
        case(
            "email_cn_domain_normalised_local_part_kept",
            role(&["example.com"]).bare(),
            cn("Alice@Example.COM"),
            email_cn("Alice@example.com"),
        ),
        case(
            "email_cn_outside_role_denied",
            ex(),
            cn("eve@evil.com"),
            Want::Denied(CommonName),
        ),
        case(
            "email_cn_suffix_trick_denied",
            ex(),
            cn("eve@evilexample.com"),
            Want::Denied(CommonName),
        ),
        case(
            "email_cn_two_ats_refused",
            ex().any(),
            cn("a@b@example.com"),
            Want::Invalid(CommonName, Problem::EmailShape),
        ),
        case(
            "email_cn_wildcard_domain_refused",
            ex().wild().any(),
            cn("bob@*.example.com"),
            Want::Invalid(CommonName, Problem::WildcardEmail),
        ),
        case(
            "email_cn_empty_local_part_refused",
            ex(),
            cn("@example.com"),
            Want::Invalid(CommonName, Problem::EmailLocalPart),
        ),
        case(
            "email_cn_local_part_with_space_refused",
            ex().any(),
            cn("a b@example.com"),
            Want::Invalid(CommonName, Problem::EmailLocalPart),
        ),
        case(
            "email_cn_at_localhost",
            role(&[]).localhost(),
            cn("root@localhost"),
            email_cn("root@localhost"),
        ),
        case(
            "email_cn_domain_must_be_a_hostname",
            ex(),
            cn("bob@ex_ample.com"),
            Want::Invalid(CommonName, Problem::Underscore),
        ),
        case(
            "ip_cn_needs_allow_ip_sans",
            ex(),
            cn("10.0.0.1"),
            Want::Denied(CommonName),
        ),
        case(
            "ip_cn_goes_to_ip_sans",
            ex().ips(),
            cn("10.0.0.1"),
            Want::Issued(ValidatedNames {
                common_name: Some("10.0.0.1".into()),
                ip_addresses: vec![ip("10.0.0.1")],
                ..ValidatedNames::default()
            }),
        ),
        case(
            "ipv6_cn_canonical_text",
            ex().ips(),
            cn("2001:DB8:0::1"),
            Want::Issued(ValidatedNames {
                common_name: Some("2001:db8::1".into()),
                ip_addresses: vec![ip("2001:db8::1")],
                ..ValidatedNames::default()
            }),
        ),
        case(
            "ip_cn_with_leading_zero_is_no_ip_and_no_host",
            ex().ips().any(),
            cn("01.2.3.4"),
            Want::Invalid(CommonName, Problem::NumericTld),
        ),
        case(
            "ip_cn_v4_mapped_refused",
            ex().ips(),
            cn("::ffff:10.0.0.1"),
            Want::Invalid(CommonName, Problem::IpV4Mapped),
        ),
        case(
            "free_text_cn_with_any_name_and_loose",
            role(&[]).any().loose(),
            cn("John Doe"),
            Want::Issued(ValidatedNames {
                common_name: Some("John Doe".into()),
                ..ValidatedNames::default()
            }),
        ),
        case(
            "free_text_cn_refused_when_enforced",
            role(&[]).any(),
            cn("John Doe"),
            Want::Invalid(CommonName, Problem::ControlOrWhitespace),
        ),
        case(
            "free_text_cn_refused_without_any_name",
            ex().loose(),
            cn("John Doe"),
            Want::Invalid(CommonName, Problem::ControlOrWhitespace),
        ),
        case(
            "free_text_cn_dn_special_chars_refused",
            role(&[]).any().loose(),
            cn("Doe, John"),
            Want::Invalid(CommonName, Problem::DnSpecialChar),
        ),
        case(
            "free_text_cn_control_char_refused",
            role(&[]).any().loose(),
            cn("John\u{7}Doe"),
            Want::Invalid(CommonName, Problem::ControlOrWhitespace),
        ),
        case(
            "free_text_cn_star_refused",
            role(&[]).any().loose().wild(),
            cn("x.*.a com"),
            Want::Invalid(CommonName, Problem::ControlOrWhitespace),
        ),
        case(
            "require_cn_without_cn",
            ex().require_cn(),
            dns(&["a.example.com"]),
            Want::CnRequired,
        ),
        case(
            "require_cn_with_empty_cn",
            ex().require_cn(),
            cn(""),
            Want::CnRequired,
        ),
        case(
            "require_cn_satisfied",
            ex().require_cn(),
            cn("a.example.com"),
            cn_dns("a.example.com", &["a.example.com"]),
        ),
        case(
            "no_cn_needed_when_not_required",
            ex(),
            dns(&["a.example.com"]),
            only_dns(&["a.example.com"]),
        ),
        case(
            "request_with_no_names_refused",
            ex(),
            NameRequest::default(),
            Want::NoNames,
        ),
        case("empty_cn_alone_is_no_names", ex(), cn(""), Want::NoNames),
    ]);
    assert_eq!(n, 34);
}

#[test]
fn ip_sans() {
    let on = || role(&[]).ips();
    let n = run(vec![
        case(
            "ipv4_allowed",
            on(),
            ips(&["10.0.0.1"]),
            only_ips(&["10.0.0.1"]),
        ),
        case(
            "ipv4_denied_when_off",
            role(&["a.com"]).any(),
            ips(&["10.0.0.1"]),
            Want::Denied(IpAddress),
        ),
        case(
            "ipv6_allowed",
            on(),
            ips(&["2001:db8::1"]),
            only_ips(&["2001:db8::1"]),
        ),
        case(
            "ipv6_forms_deduped",
            on(),
            ips(&["2001:DB8:0:0::1", "2001:db8::1"]),
            only_ips(&["2001:db8::1"]),
        ),
        case(
            "ipv4_leading_zero_refused",
            on(),
            ips(&["01.2.3.4"]),
            Want::Invalid(IpAddress, Problem::NotAnIp),
        ),
        case(
            "ipv4_three_octets_refused",
            on(),
            ips(&["1.2.3"]),
            Want::Invalid(IpAddress, Problem::NotAnIp),
        ),
        case(
            "ipv4_octet_over_255_refused",
            on(),
            ips(&["256.1.1.1"]),
            Want::Invalid(IpAddress, Problem::NotAnIp),
        ),
        case(
            "ipv6_zone_refused",
            on(),
            ips(&["fe80::1%eth0"]),
            Want::Invalid(IpAddress, Problem::IpZone),
        ),
        case(
            "cidr_refused",
            on(),
            ips(&["10.0.0.0/8"]),
            Want::Invalid(IpAddress, Problem::IpNetwork),
        ),
        case(
            "bracketed_ipv6_refused",
            on(),
            ips(&["[::1]"]),
            Want::Invalid(IpAddress, Problem::NotAnIp),
        ),
        case(
            "ip_with_space_refused",
            on(),
            ips(&[" 10.0.0.1"]),
            Want::Invalid(IpAddress, Problem::NotAnIp),
        ),
        case(
            "ipv4_mapped_ipv6_refused",
            on(),
            ips(&["::ffff:10.0.0.1"]),
            Want::Invalid(IpAddress, Problem::IpV4Mapped),
        ),
        case(
            "unspecified_v4_refused",
            on(),
            ips(&["0.0.0.0"]),
            Want::Invalid(IpAddress, Problem::IpUnspecified),
        ),
        case(
            "unspecified_v6_refused",
            on(),
            ips(&["::"]),
            Want::Invalid(IpAddress, Problem::IpUnspecified),
        ),
        case(
            "malformed_ip_reported_even_when_ips_off",
            role(&[]),
            ips(&["10.0.0.300"]),
            Want::Invalid(IpAddress, Problem::NotAnIp),
        ),
        case(
            "overlong_ip_text_refused",
            on(),
            ips(&[&"1".repeat(46)]),
            Want::TooLong(IpAddress),
        ),
    ]);
    assert_eq!(n, 16);
}

#[test]
fn normalised_deduped_output_and_limits() {
    let full = role(&["example.com"])
        .sub()
        .ips()
        .uri_sans(&["spiffe://cluster.local/ns/{{namespace}}/sa/{{serviceAccount}}"]);
    let mixed = NameRequest {
        common_name: Some("API.example.com.".into()),
        dns_names: vec![
            "api.example.com".into(),
            "Bücher.example.com".into(),
            "xn--bcher-kva.example.com.".into(),
            "b.example.com".into(),
        ],
        ip_addresses: vec!["10.0.0.1".into(), "::1".into(), "10.0.0.1".into()],
        uris: vec![
            "SPIFFE://cluster.local/ns/default/sa/web".into(),
            "spiffe://cluster.local/ns/default/sa/web".into(),
        ],
    };
    let mixed_want = ValidatedNames {
        common_name: Some("api.example.com".into()),
        dns_names: vec![
            "api.example.com".into(),
            "xn--bcher-kva.example.com".into(),
            "b.example.com".into(),
        ],
        ip_addresses: vec![ip("10.0.0.1"), ip("::1")],
        uris: vec!["spiffe://cluster.local/ns/default/sa/web".into()],
        email_addresses: vec![],
    };
    let ip_cn = with_cn(ips(&["10.0.0.1", "10.0.0.2"]), "10.0.0.2");
    let ip_cn_want = ValidatedNames {
        common_name: Some("10.0.0.2".into()),
        ip_addresses: vec![ip("10.0.0.2"), ip("10.0.0.1")],
        ..ValidatedNames::default()
    };
    let names = |n: usize| {
        (0..n)
            .map(|i| format!("h{i}.example.com"))
            .collect::<Vec<_>>()
    };
    let at_limit = NameRequest {
        dns_names: names(MAX_NAMES),
        ..NameRequest::default()
    };
    let want_at_limit = ValidatedNames {
        dns_names: names(MAX_NAMES),
        ..ValidatedNames::default()
    };
    let over_limit = NameRequest {
        dns_names: names(MAX_NAMES + 1),
        ..NameRequest::default()
    };
    let cn_tips_over = with_cn(at_limit.clone(), "h0.example.com");
    let many_bad = NameRequest {
        dns_names: vec!["evil.com".into(); MAX_NAMES + 1],
        ..NameRequest::default()
    };
    let n = run(vec![
        case(
            "mixed_request_normalised_and_deduped",
            full.clone(),
            mixed,
            Want::Issued(mixed_want),
        ),
        case(
            "request_order_is_kept",
            role(&["example.com"]).sub(),
            dns(&["b.example.com", "a.example.com"]),
            only_dns(&["b.example.com", "a.example.com"]),
        ),
        case(
            "ip_cn_goes_first_in_ip_sans",
            role(&[]).ips(),
            ip_cn,
            Want::Issued(ip_cn_want),
        ),
        case(
            "exactly_max_names_accepted",
            role(&["example.com"]).sub(),
            at_limit,
            Want::Issued(want_at_limit),
        ),
        case(
            "one_over_max_names_refused",
            role(&["example.com"]).sub(),
            over_limit,
            Want::TooMany,
        ),
        case(
            "cn_counts_towards_max_names",
            role(&["example.com"]).sub(),
            cn_tips_over,
            Want::TooMany,
        ),
        case(
            "size_checked_before_names",
            role(&[]),
            many_bad,
            Want::TooMany,
        ),
        case(
            "dns_and_ip_together",
            role(&["example.com"]).sub().ips(),
            NameRequest {
                dns_names: vec!["a.example.com".into()],
                ip_addresses: vec!["10.1.2.3".into()],
                ..NameRequest::default()
            },
            Want::Issued(ValidatedNames {
                dns_names: vec!["a.example.com".into()],
                ip_addresses: vec![ip("10.1.2.3")],
                ..ValidatedNames::default()
            }),
        ),
        case(
            "good_dns_bad_ip_denies_all",
            role(&["example.com"]).sub(),
            NameRequest {
                dns_names: vec!["a.example.com".into()],
                ip_addresses: vec!["10.1.2.3".into()],
                ..NameRequest::default()
            },
            Want::Denied(IpAddress),
        ),
        case(
            "dns_checked_before_ip",
            role(&[]).ips(),
            NameRequest {
                dns_names: vec!["a.example.com".into()],
                ip_addresses: vec!["bad".into()],
                ..NameRequest::default()
            },
            Want::Denied(Dns),
        ),
    ]);
    assert_eq!(n, 10);
}
