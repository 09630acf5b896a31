//! End-to-end tests of the CA engine: CA hierarchies, issue and sign, bad
#![allow(clippy::unwrap_used, clippy::expect_used)]
//! CSRs, and chain verification with rustls-webpki.

use std::time::Duration;
use tlsmint_ca::ExposeSecret as _;

use rcgen::{CertificateParams, KeyPair};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use time::OffsetDateTime;
use tlsmint_ca::{
    CaConfig, CertificateAuthority, Error, Identity, IssueRequest, KeySpec, LeafProfile,
    MountOptions, NameRequest, PendingIntermediate, Policy, Role, SignRequest, Subject, Urls, pem,
};
use webpki::{EndEntityCert, KeyUsage, anchor_from_trusted_cert};

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn hours(h: u64) -> Duration {
    Duration::from_secs(h * 3600)
}

fn config(name: &str, cn: &str, key: KeySpec, ttl: Duration) -> CaConfig {
    CaConfig {
        name: name.into(),
        subject: Subject::with_common_name(cn),
        key,
        ttl,
    }
}

fn root() -> CertificateAuthority {
    CertificateAuthority::generate_root(
        &config("pki", "Example Root CA", KeySpec::EcdsaP256, hours(87600)),
        now(),
    )
    .expect("root")
}

fn web_role() -> Role {
    Role {
        policy: Policy {
            role: "web".into(),
            allowed_domains: vec!["example.com".into()],
            allow_bare_domains: false,
            allow_subdomains: true,
            allow_glob_domains: false,
            allow_wildcard_certificates: false,
            allow_localhost: false,
            allow_any_name: false,
            enforce_hostnames: true,
            allow_ip_sans: true,
            allowed_uri_sans: vec![],
            require_common_name: false,
        },
        profile: LeafProfile::default(),
    }
}

fn identity() -> Identity {
    Identity {
        namespace: "default".into(),
        service_account: Some("web".into()),
    }
}

fn req(cn: &str, ttl: Option<Duration>) -> IssueRequest {
    IssueRequest {
        names: names(cn, &[]),
        ttl,
    }
}

fn names(cn: &str, dns: &[&str]) -> NameRequest {
    NameRequest {
        common_name: Some(cn.into()),
        dns_names: dns.iter().map(|s| s.to_string()).collect(),
        ..NameRequest::default()
    }
}

/// Verifies `leaf` for `host` as a TLS server certificate against `root`.
fn verify_server(
    leaf: &[u8],
    intermediates: &[Vec<u8>],
    root: &[u8],
    host: &str,
) -> Result<(), String> {
    let root_der = CertificateDer::from(root.to_vec());
    let anchor = anchor_from_trusted_cert(&root_der).map_err(|e| format!("{e:?}"))?;
    let leaf_der = CertificateDer::from(leaf.to_vec());
    let ee = EndEntityCert::try_from(&leaf_der).map_err(|e| format!("{e:?}"))?;
    let inter: Vec<CertificateDer<'_>> = intermediates
        .iter()
        .map(|d| CertificateDer::from(d.clone()))
        .collect();
    let time = UnixTime::since_unix_epoch(Duration::from_secs(now().unix_timestamp() as u64));
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &[anchor],
        &inter,
        time,
        KeyUsage::server_auth(),
        None,
        None,
    )
    .map_err(|e| format!("{e:?}"))?;
    let name = ServerName::try_from(host.to_owned()).map_err(|e| format!("{e:?}"))?;
    ee.verify_is_valid_for_subject_name(&name)
        .map_err(|e| format!("{e:?}"))
}

#[test]
fn issues_a_server_leaf_that_verifies_through_an_intermediate() {
    let root = root();
    let int = CertificateAuthority::generate_intermediate(
        &config(
            "pki-int",
            "Example Intermediate CA",
            KeySpec::EcdsaP384,
            hours(43800),
        ),
        &root,
        now(),
    )
    .expect("intermediate");
    let issued = int
        .issue(
            &web_role(),
            &identity(),
            &req("api.example.com", Some(hours(1))),
            now(),
        )
        .expect("issue");
    assert!(issued.private_key.is_some());
    assert_eq!(issued.names.dns_names, vec!["api.example.com".to_string()]);
    assert_eq!(issued.ca_chain.pem.len(), 2, "intermediate then root");
    // Both forms of the chain name the same certificates, nearest first.
    assert_eq!(issued.ca_chain.der[0], int.certificate_der());
    assert_eq!(issued.ca_chain.der[1], root.certificate_der());
    assert_eq!(issued.ca_chain.pem[0], int.certificate_pem());
    let intermediates = vec![int.certificate_der().to_vec()];
    verify_server(
        &issued.certificate_der,
        &intermediates,
        root.certificate_der(),
        "api.example.com",
    )
    .expect("verifies");
    assert!(
        verify_server(
            &issued.certificate_der,
            &intermediates,
            root.certificate_der(),
            "evil.com"
        )
        .is_err()
    );
    // Lifetime: one hour, back-dated 30 s.
    let life = issued.not_after - issued.not_before;
    assert_eq!(life.whole_seconds(), 3630);
}

#[test]
fn every_key_type_can_be_a_ca_and_a_leaf() {
    for spec in [
        KeySpec::EcdsaP256,
        KeySpec::EcdsaP384,
        KeySpec::Ed25519,
        KeySpec::Rsa2048,
    ] {
        let ca =
            CertificateAuthority::generate_root(&config("pki", "Root", spec, hours(100)), now())
                .expect("root");
        let mut role = web_role();
        role.profile.key = spec;
        let issued = ca
            .issue(&role, &identity(), &req("a.example.com", None), now())
            .expect("issue");
        assert_eq!(issued.private_key.as_ref().map(|k| k.spec()), Some(spec));
        verify_server(
            &issued.certificate_der,
            &[],
            ca.certificate_der(),
            "a.example.com",
        )
        .expect("verifies");
    }
}

fn csr_for(key: &KeyPair, cn: &str, sans: &[&str]) -> Vec<u8> {
    let mut params = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .expect("params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params
        .serialize_request(key)
        .expect("csr")
        .pem()
        .expect("pem")
        .into_bytes()
}

#[test]
fn signs_a_csr_and_writes_only_the_checked_names() {
    let root = root();
    let key = KeyPair::generate().expect("key");
    let csr = csr_for(
        &key,
        "svc.example.com",
        &["svc.example.com", "other.example.com"],
    );
    let issued = root
        .sign(
            &web_role(),
            &identity(),
            &SignRequest {
                csr,
                ..SignRequest::default()
            },
            now(),
        )
        .expect("sign");
    assert!(issued.private_key.is_none());
    assert_eq!(
        issued.names.dns_names,
        vec![
            "svc.example.com".to_string(),
            "other.example.com".to_string()
        ]
    );
    verify_server(
        &issued.certificate_der,
        &[],
        root.certificate_der(),
        "other.example.com",
    )
    .expect("verifies");
}

#[test]
fn refuses_a_forbidden_name_inside_the_csr() {
    let root = root();
    let key = KeyPair::generate().expect("key");
    let csr = csr_for(&key, "svc.example.com", &["svc.example.com", "evil.com"]);
    let err = root
        .sign(
            &web_role(),
            &identity(),
            &SignRequest {
                csr,
                ..SignRequest::default()
            },
            now(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Policy(_)), "{err}");
    assert!(err.to_string().contains("evil.com"), "{err}");
}

#[test]
fn refuses_a_csr_with_a_bad_signature() {
    let root = root();
    let key = KeyPair::generate().expect("key");
    let csr = csr_for(&key, "svc.example.com", &[]);
    let mut der = pem::decode_csr(std::str::from_utf8(&csr).expect("utf8")).expect("der");
    let last = der.len() - 3;
    der[last] ^= 0x55; // corrupt the signature
    let err = root
        .sign(
            &web_role(),
            &identity(),
            &SignRequest {
                csr: der,
                ..SignRequest::default()
            },
            now(),
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::CsrSignature(_) | Error::CsrMalformed(_)),
        "{err}"
    );
}

#[test]
fn refuses_garbage_and_oversized_csrs_cheaply() {
    let root = root();
    for csr in [
        b"garbage".to_vec(),
        b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n".to_vec(),
    ] {
        let err = root
            .sign(
                &web_role(),
                &identity(),
                &SignRequest {
                    csr,
                    ..SignRequest::default()
                },
                now(),
            )
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::CsrMalformed(_) | Error::Pem { .. } | Error::PemSyntax { .. }
            ),
            "{err}"
        );
        assert_eq!(err.class(), tlsmint_ca::ErrorClass::InvalidInput, "{err}");
    }
    let big = vec![b'A'; 1024 * 1024];
    let err = root
        .sign(
            &web_role(),
            &identity(),
            &SignRequest {
                csr: big,
                ..SignRequest::default()
            },
            now(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::CsrTooLarge { .. }), "{err}");
}

#[test]
fn refuses_a_csr_that_asks_for_ca_true() {
    let root = root();
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(vec!["x.example.com".to_string()]).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let csr = params.serialize_request(&key).expect("csr").der().to_vec();
    let err = root
        .sign(
            &web_role(),
            &identity(),
            &SignRequest {
                csr,
                ..SignRequest::default()
            },
            now(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::CsrRequestsCa), "{err}");
}

#[test]
fn refuses_a_csr_key_weaker_than_the_role_allows() {
    let root = root();
    let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("key");
    let csr = csr_for(&key, "x.example.com", &[]);
    let err = root
        .sign(
            &web_role(),
            &identity(),
            &SignRequest {
                csr,
                ..SignRequest::default()
            },
            now(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::CsrKeyNotAllowed { .. }), "{err}");
    assert!(err.to_string().contains("ECDSA"), "{err}");
}

#[test]
fn external_intermediate_round_trip_and_wrong_certificate_refused() {
    let root = root();
    let cfg = config(
        "pki-ext",
        "External Intermediate",
        KeySpec::EcdsaP256,
        hours(1000),
    );
    let pending = PendingIntermediate::generate(&cfg).expect("pending");
    assert!(
        pending
            .csr_pem()
            .starts_with("-----BEGIN CERTIFICATE REQUEST-----")
    );
    // A certificate for some other key is refused.
    let other = CertificateAuthority::generate_intermediate(&cfg, &root, now()).expect("other");
    let wrong = format!("{}{}", other.certificate_pem(), root.certificate_pem());
    let err = PendingIntermediate::with_key(&cfg, pending.key().clone())
        .expect("pending")
        .complete(&wrong)
        .unwrap_err();
    assert!(matches!(err, Error::KeyMismatch { .. }), "{err}");
    // The root signs the CSR as an external CA would (here: rcgen on the root key).
    let csr = rcgen::CertificateSigningRequestParams::from_pem(pending.csr_pem()).expect("csr");
    let mut params = csr.params;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    params.use_authority_key_identifier_extension = true;
    let root_key = KeyPair::from_pem(
        root.key()
            .to_pem(tlsmint_ca::KeyEncoding::Pkcs8)
            .expect("pem")
            .expose_secret(),
    )
    .expect("key");
    let issuer = rcgen::Issuer::from_ca_cert_der(
        &CertificateDer::from(root.certificate_der().to_vec()),
        root_key,
    )
    .expect("issuer");
    let signed = params.signed_by(&csr.public_key, &issuer).expect("signed");
    let bundle = format!("{}{}", signed.pem(), root.certificate_pem());
    let int = pending.complete(&bundle).expect("complete");
    let issued = int
        .issue(
            &web_role(),
            &identity(),
            &req("ext.example.com", None),
            now(),
        )
        .expect("issue");
    verify_server(
        &issued.certificate_der,
        &[int.certificate_der().to_vec()],
        root.certificate_der(),
        "ext.example.com",
    )
    .expect("verifies");
}

#[test]
fn root_signs_an_intermediate_csr_and_the_chain_verifies() {
    let root = root();
    let cfg = config("pki-int", "Int From CSR", KeySpec::EcdsaP256, hours(1000));
    let pending = PendingIntermediate::generate(&cfg).expect("pending");
    // No common name given: the CSR's is used; the lifetime is cut to the root's.
    let der = root
        .sign_intermediate(pending.csr_pem().as_bytes(), None, hours(1_000_000), now())
        .expect("signed");
    let bundle = format!(
        "{}{}",
        pem::encode_certificate(&der),
        root.certificate_pem()
    );
    let int = pending.complete(&bundle).expect("complete");
    assert_eq!(int.info().subject, "CN=Int From CSR");
    assert_eq!(int.info().not_after, root.info().not_after);
    let issued = int
        .issue(
            &web_role(),
            &identity(),
            &req("csr.example.com", None),
            now(),
        )
        .expect("issue");
    verify_server(
        &issued.certificate_der,
        &[int.certificate_der().to_vec()],
        root.certificate_der(),
        "csr.example.com",
    )
    .expect("verifies");
    // A given common name wins over the CSR's.
    let other = PendingIntermediate::generate(&cfg).expect("pending");
    let der = root
        .sign_intermediate(
            other.csr_pem().as_bytes(),
            Some("Renamed"),
            hours(10),
            now(),
        )
        .expect("signed");
    let renamed = other
        .complete(&pem::encode_certificate(&der))
        .expect("complete");
    assert_eq!(renamed.info().subject, "CN=Renamed");
    // Garbage is refused with the CSR error, and nothing is signed.
    let err = root
        .sign_intermediate(b"not a csr", None, hours(10), now())
        .unwrap_err();
    assert!(matches!(err, Error::CsrMalformed(_)), "{err}");
    // An expired parent signs nothing.
    let later = now() + time::Duration::days(20 * 365);
    let err = root
        .sign_intermediate(pending_csr(&cfg).as_bytes(), None, hours(10), later)
        .unwrap_err();
    assert!(matches!(err, Error::CaNotValid { .. }), "{err}");
}

fn pending_csr(cfg: &CaConfig) -> String {
    PendingIntermediate::generate(cfg)
        .expect("pending")
        .csr_pem()
        .to_owned()
}

#[test]
fn import_checks_the_pair_and_the_ca_flag() {
    let a = root();
    let b = root();
    let a_key = a.key().to_pem(tlsmint_ca::KeyEncoding::Sec1).expect("pem");
    let ok =
        CertificateAuthority::from_pem("imported", &a.certificate_pem(), a_key.expose_secret())
            .expect("import");
    assert_eq!(ok.info().serial, a.info().serial);
    let err =
        CertificateAuthority::from_pem("imported", &b.certificate_pem(), a_key.expose_secret())
            .unwrap_err();
    assert!(matches!(err, Error::KeyMismatch { .. }), "{err}");
    // A leaf is not a CA.
    let issued = a
        .issue(&web_role(), &identity(), &req("x.example.com", None), now())
        .expect("issue");
    let leaf_key = issued
        .private_key
        .expect("key")
        .to_pem(tlsmint_ca::KeyEncoding::Pkcs8)
        .expect("pem");
    let err = CertificateAuthority::from_pem(
        "imported",
        &issued.certificate_pem,
        leaf_key.expose_secret(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::NotCa { .. }), "{err}");
}

#[test]
fn leaf_outliving_the_ca_errors_or_truncates() {
    let ca = CertificateAuthority::generate_root(
        &config("short", "Short CA", KeySpec::EcdsaP256, hours(2)),
        now(),
    )
    .expect("root");
    let mut role = web_role();
    role.profile.lifetimes.max_ttl = hours(10);
    let req = req("x.example.com", Some(hours(5)));
    let err = ca.issue(&role, &identity(), &req, now()).unwrap_err();
    assert!(matches!(err, Error::LeafOutlivesCa { .. }), "{err}");
    let ca = ca
        .with_options(MountOptions {
            leaf_not_after: tlsmint_ca::LeafNotAfterBehavior::Truncate,
            ..MountOptions::default()
        })
        .expect("options");
    let issued = ca
        .issue(&role, &identity(), &req, now())
        .expect("truncated");
    assert_eq!(issued.not_after, ca.info().not_after);
    assert!(issued.warnings.iter().any(|w| w.contains("truncated")));
}

#[test]
fn ttl_above_max_ttl_is_clamped_and_said() {
    let ca = root();
    let req = req("x.example.com", Some(hours(100)));
    let issued = ca
        .issue(&web_role(), &identity(), &req, now())
        .expect("issue");
    assert_eq!(
        (issued.not_after - issued.not_before).whole_seconds(),
        24 * 3600 + 30
    );
    assert!(
        issued.warnings.iter().any(|w| w.contains("clamped to 24h")),
        "{:?}",
        issued.warnings
    );
}

#[test]
fn expired_ca_refuses_to_issue() {
    let ca = root();
    let later = now() + time::Duration::days(365 * 11);
    let err = ca
        .issue(&web_role(), &identity(), &req("x.example.com", None), later)
        .unwrap_err();
    assert!(matches!(err, Error::CaNotValid { .. }), "{err}");
}

#[test]
fn urls_are_written_into_leaves() {
    let ca = root()
        .with_options(MountOptions {
            urls: Urls {
                issuing_certificates: vec!["http://127.0.0.1:8200/v1/pki/ca".into()],
                crl_distribution_points: vec!["http://127.0.0.1:8200/v1/pki/crl".into()],
                ocsp_servers: vec!["http://127.0.0.1:8200/v1/pki/ocsp".into()],
            },
            ..MountOptions::default()
        })
        .expect("options");
    let issued = ca
        .issue(&web_role(), &identity(), &req("x.example.com", None), now())
        .expect("issue");
    let (_, cert) = x509_parser::parse_x509_certificate(&issued.certificate_der).expect("parse");
    let text = format!("{:?}", cert.extensions());
    assert!(
        text.contains("v1/pki/ocsp") && text.contains("v1/pki/ca") && text.contains("v1/pki/crl"),
        "{text}"
    );
    let bc = cert.basic_constraints().expect("bc").expect("present");
    assert!(!bc.value.ca);
}

#[test]
fn serials_are_unique_and_crl_lists_revoked_ones() {
    let ca = root();
    let mut serials = std::collections::HashSet::new();
    let mut revoked = Vec::new();
    for _ in 0..50 {
        let issued = ca
            .issue(&web_role(), &identity(), &req("x.example.com", None), now())
            .expect("issue");
        assert!(serials.insert(issued.serial.clone()));
        if revoked.len() < 3 {
            revoked.push(tlsmint_ca::RevokedEntry {
                serial: issued.serial,
                revoked_at: now(),
            });
        }
    }
    let crl = ca.crl(&revoked, 7, now(), hours(72)).expect("crl");
    assert!(crl.pem.starts_with("-----BEGIN X509 CRL-----"));
    let (_, parsed) = x509_parser::parse_x509_crl(&crl.der).expect("parse crl");
    assert_eq!(parsed.iter_revoked_certificates().count(), 3);
    assert_eq!(
        parsed.crl_number().map(|n| n.to_string()),
        Some("7".to_string())
    );
    let (_, ca_cert) = x509_parser::parse_x509_certificate(ca.certificate_der()).expect("ca");
    parsed
        .verify_signature(ca_cert.public_key())
        .expect("CRL signed by the CA");
}

#[test]
fn issue_with_key_keeps_the_callers_key_and_checks_it_against_the_role() {
    let ca = root();
    let key = tlsmint_ca::PrivateKey::generate(KeySpec::EcdsaP256).expect("key");
    let spki = key.public_key_der();
    let req = req("keep.example.com", None);
    let issued = ca
        .issue_with_key(&web_role(), &identity(), &req, key, now())
        .expect("issue");
    let info = tlsmint_ca::x509::parse_certificate(&issued.certificate_der, "leaf").expect("parse");
    assert_eq!(info.spki_der, spki);
    assert_eq!(issued.private_key.expect("key").public_key_der(), spki);
    // The role wants ECDSA: an Ed25519 key is refused like a CSR's would be.
    let ed = tlsmint_ca::PrivateKey::generate(KeySpec::Ed25519).expect("key");
    let err = ca
        .issue_with_key(&web_role(), &identity(), &req, ed, now())
        .unwrap_err();
    assert!(matches!(err, Error::CsrKeyNotAllowed { .. }), "{err}");
}

#[test]
fn issue_for_public_key_certifies_exactly_that_key() {
    let ca = root();
    let holder = tlsmint_ca::PrivateKey::generate(KeySpec::EcdsaP384).expect("key");
    let spki = holder.public_key_der();
    let issued = ca
        .issue_for_public_key(
            &web_role(),
            &identity(),
            &req("api.example.com", None),
            &spki,
            now(),
        )
        .expect("issued");
    let (_, cert) = x509_parser::parse_x509_certificate(&issued.certificate_der).expect("parse");
    assert_eq!(cert.public_key().raw, &spki[..]);
    assert!(issued.private_key.is_none());
    // The policy applies as on every other path.
    let err = ca
        .issue_for_public_key(
            &web_role(),
            &identity(),
            &req("evil.test", None),
            &spki,
            now(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("evil.test"), "{err}");
}

#[test]
fn a_renewed_ca_keeps_its_key_and_old_leaves_verify_under_the_new_certificate() {
    let root = root();
    let cfg = config("pki-int", "Int", KeySpec::EcdsaP256, hours(1000));
    let int = CertificateAuthority::generate_intermediate(&cfg, &root, now()).expect("int");
    let old_leaf = int
        .issue(
            &web_role(),
            &identity(),
            &req("old.example.com", None),
            now(),
        )
        .expect("issue");
    // The root renews itself: same key and subject, new serial; the old intermediate
    // still chains. A renewal that would change the subject is refused.
    let renamed = config("pki", "Renamed Root", KeySpec::EcdsaP256, hours(2000));
    let err = root.renewed(&renamed, None, now()).unwrap_err().to_string();
    assert!(err.contains("keeps the CA's subject"), "{err}");
    let root_cfg = config("pki", "Example Root CA", KeySpec::EcdsaP256, hours(2000));
    let root2 = root.renewed(&root_cfg, None, now()).expect("renewed root");
    assert_eq!(root2.key().public_key_der(), root.key().public_key_der());
    assert_ne!(root2.info().serial, root.info().serial);
    assert!(root2.parents_der().is_empty());
    assert_eq!(root2.info().subject, root.info().subject);
    verify_server(
        &old_leaf.certificate_der,
        &[int.certificate_der().to_vec()],
        root2.certificate_der(),
        "old.example.com",
    )
    .expect("an old leaf verifies under the renewed root");
    // The intermediate is re-signed by the renewed root: same key, new chain.
    let int2 = int.renewed(&cfg, Some(&root2), now()).expect("re-signed");
    assert_eq!(int2.key().public_key_der(), int.key().public_key_der());
    assert_eq!(int2.parents_der(), [root2.certificate_der().to_vec()]);
    verify_server(
        &old_leaf.certificate_der,
        &[int2.certificate_der().to_vec()],
        root.certificate_der(),
        "old.example.com",
    )
    .expect("an old leaf verifies through the re-signed intermediate");
    let new_leaf = int2
        .issue(
            &web_role(),
            &identity(),
            &req("new.example.com", None),
            now(),
        )
        .expect("issue");
    verify_server(
        &new_leaf.certificate_der,
        &[int.certificate_der().to_vec()],
        root2.certificate_der(),
        "new.example.com",
    )
    .expect("a new leaf verifies through the old intermediate certificate");
    // A re-key is different: a new root's key does not verify the old chain.
    let other = CertificateAuthority::generate_root(&root_cfg, now()).expect("new root");
    assert!(
        verify_server(
            &old_leaf.certificate_der,
            &[int.certificate_der().to_vec()],
            other.certificate_der(),
            "old.example.com",
        )
        .is_err()
    );
}
