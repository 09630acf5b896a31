#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1beta1::{PodCertificateRequest, PodCertificateRequestSpec};
use time::OffsetDateTime;
use tlsmint_api::v1alpha1::{IssuerRoleSpec, RoleSubject};
use tlsmint_ca::{CaConfig, CertificateAuthority, KeySpec, PrivateKey, Subject};
use tlsmint_runtime::cpu::CpuPool;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::decide::{self, Decision, reason};
use super::issued_status;
use crate::issuance;
use crate::registry::{MountEntry, MountStatus, NotReady, Registry, RoleEntry};

const SPIFFE: &str = "spiffe://cluster.local/ns/{{namespace}}/sa/{{serviceAccount}}";

fn ca() -> Arc<CertificateAuthority> {
    let cfg = CaConfig {
        name: "pki".into(),
        subject: Subject::with_common_name("Pods Root"),
        key: KeySpec::EcdsaP256,
        ttl: Duration::from_secs(86400 * 30),
    };
    Arc::new(CertificateAuthority::generate_root(&cfg, OffsetDateTime::now_utc()).unwrap())
}

fn role_spec() -> IssuerRoleSpec {
    let mut spec = IssuerRoleSpec::new("pki");
    spec.subjects = vec![RoleSubject::new("shop", "web")];
    spec.allowed_domains = vec!["svc.cluster.local".into()];
    spec.allow_subdomains = true;
    spec.allowed_uri_sans = vec![SPIFFE.into()];
    spec
}

fn registry(spec: &IssuerRoleSpec, mount: MountStatus) -> Registry {
    let registry = Registry::new();
    registry
        .put_mount(MountEntry {
            name: "pki".into(),
            path: "pki".into(),
            status: mount,
            crl_expiry: Duration::from_secs(3600),
            trusted_roots: Vec::new(),
            other_generations: Vec::new(),
        })
        .unwrap();
    registry.put_role(RoleEntry::from_spec("pods", spec));
    registry
}

fn ready() -> Registry {
    registry(&role_spec(), MountStatus::Ready(ca()))
}

/// A request as kubelet makes it: an empty CSR signed by a key made for the pod.
fn pcr(key: &PrivateKey, annotations: &[(&str, &str)]) -> PodCertificateRequest {
    let csr = tlsmint_ca::csr::proof_of_possession(key).unwrap();
    let mut pcr = PodCertificateRequest {
        spec: PodCertificateRequestSpec {
            signer_name: "pki.tlsmint.io/pods".into(),
            pod_name: "web-0".into(),
            pod_uid: "0d9d4f8e-5b1e-4c4a-9f0e-3a2b1c0d9e8f".into(),
            service_account_name: "web".into(),
            service_account_uid: "sa-uid".into(),
            node_name: "node".into(),
            node_uid: "node-uid".into(),
            max_expiration_seconds: Some(86400),
            stub_pkc_s10_request: ByteString(csr),
            unverified_user_annotations: (!annotations.is_empty()).then(|| {
                annotations
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect::<BTreeMap<_, _>>()
            }),
            ..PodCertificateRequestSpec::default()
        },
        ..PodCertificateRequest::default()
    };
    pcr.metadata.namespace = Some("shop".into());
    pcr.metadata.name = Some("req-abc".into());
    pcr
}

fn p256() -> PrivateKey {
    PrivateKey::generate(KeySpec::EcdsaP256).unwrap()
}

fn denial(decision: Decision) -> (&'static str, String) {
    match decision {
        Decision::Deny { reason, message } => (reason, message),
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[tokio::test]
async fn a_pod_gets_its_spiffe_id_and_asked_names_with_kubernetes_status_rules() {
    let key = p256();
    let pcr = pcr(
        &key,
        &[(
            "tlsmint.io/dns-names",
            "$(POD_NAME).web.shop.svc.cluster.local",
        )],
    );
    let Decision::Sign(plan) = decide::decide(&pcr, &ready()) else {
        panic!("expected a plan");
    };
    assert_eq!(
        plan.order.names.uris,
        ["spiffe://cluster.local/ns/shop/sa/web"]
    );
    assert_eq!(
        plan.order.names.dns_names,
        ["web-0.web.shop.svc.cluster.local"]
    );
    let issued = issuance::issue(&CpuPool::new(1), plan.order).await.unwrap();
    let status = issued_status(&issued);

    // Leaf first, for kubelet's key; a root mount's chain is the leaf alone.
    let chain = status.certificate_chain.unwrap();
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 1);
    let der = tlsmint_ca::pem::decode_certificates(&chain)
        .unwrap()
        .remove(0);
    let (_, leaf) = X509Certificate::from_der(&der).unwrap();
    assert_eq!(leaf.public_key().raw, &key.public_key_der()[..]);
    let sans: Vec<String> = leaf
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::URI(u) => (*u).to_owned(),
            GeneralName::DNSName(d) => (*d).to_owned(),
            other => format!("{other:?}"),
        })
        .collect();
    assert!(
        sans.contains(&"spiffe://cluster.local/ns/shop/sa/web".to_owned()),
        "{sans:?}"
    );
    assert!(
        sans.contains(&"web-0.web.shop.svc.cluster.local".to_owned()),
        "{sans:?}"
    );

    // notBefore/notAfter equal the leaf's; lifetime within [1h, maxExpirationSeconds].
    let nb = status.not_before.unwrap().0.as_second();
    let na = status.not_after.unwrap().0.as_second();
    assert_eq!(nb, leaf.validity().not_before.timestamp());
    assert_eq!(na, leaf.validity().not_after.timestamp());
    let lifetime = na - nb;
    assert!((3600..=86400).contains(&lifetime), "{lifetime}");
    // beginRefreshAt at half-life, brought forward by at most the jitter, 10 min margins.
    let refresh = status.begin_refresh_at.unwrap().0.as_second();
    let half = nb + lifetime / 2;
    assert!(
        refresh <= half && refresh >= half - lifetime / 20 - 1,
        "{refresh} vs {half}"
    );
    let conditions = status.conditions.unwrap();
    assert_eq!(conditions.len(), 1);
    assert_eq!(
        (conditions[0].type_.as_str(), conditions[0].status.as_str()),
        ("Issued", "True")
    );
}

#[test]
fn the_lifetime_is_the_roles_ttl_within_kubernetes_bounds() {
    let key = p256();
    for (role_ttl, role_max, max_exp, want_lifetime) in [
        // The role's 1h TTL plus 30s back-dating is over 1h: kept.
        (3600, 86400, 86400, 3630),
        // A 10 min TTL is raised to Kubernetes' 1h minimum (with the back-dating).
        (600, 86400, 86400, 3600),
        // A 30 day TTL is cut to maxExpirationSeconds, back-dating included.
        (30 * 86400, 90 * 86400, 7200, 7200),
        // maxExpirationSeconds exactly 1h.
        (3600, 86400, 3600, 3600),
    ] {
        let mut spec = role_spec();
        spec.ttl = tlsmint_api::Duration::from_secs(role_ttl);
        spec.max_ttl = tlsmint_api::Duration::from_secs(role_max);
        let mut pcr = pcr(&key, &[]);
        pcr.spec.max_expiration_seconds = Some(max_exp);
        let Decision::Sign(plan) = decide::decide(&pcr, &registry(&spec, MountStatus::Ready(ca())))
        else {
            panic!("expected a plan for ttl {role_ttl}");
        };
        assert_eq!(
            plan.order.ttl.unwrap().as_secs() + 30,
            want_lifetime,
            "ttl {role_ttl} max {max_exp}"
        );
    }
    // A role whose maxTTL is under 1h can never satisfy Kubernetes: final, with the fix.
    let mut spec = role_spec();
    spec.ttl = tlsmint_api::Duration::from_secs(600);
    spec.max_ttl = tlsmint_api::Duration::from_secs(1800);
    let (reason, message) = denial(decide::decide(
        &pcr(&key, &[]),
        &registry(&spec, MountStatus::Ready(ca())),
    ));
    assert_eq!(reason, reason::INVALID_REQUEST);
    assert!(message.contains("maxTTL"), "{message}");
}

#[test]
fn final_refusals_name_the_reason_kubernetes_expects() {
    let key = p256();
    // Not in the role's subjects.
    let mut other = pcr(&key, &[]);
    other.spec.service_account_name = "intruder".into();
    let (reason, message) = denial(decide::decide(&other, &ready()));
    assert_eq!(reason, reason::SUBJECT_NOT_ALLOWED);
    assert!(message.contains("shop/intruder"), "{message}");
    // An annotation key the signer does not know.
    let (reason, message) = denial(decide::decide(
        &pcr(&key, &[("tlsmint.io/dns-name", "a")]),
        &ready(),
    ));
    assert_eq!(reason, reason::INVALID_ANNOTATIONS);
    assert!(message.contains("tlsmint.io/dns-name"), "{message}");
    // A key type the role does not take (role key ECDSA; kubelet made Ed25519).
    let ed = PrivateKey::generate(KeySpec::Ed25519).unwrap();
    let (reason, message) = denial(decide::decide(&pcr(&ed, &[]), &ready()));
    assert_eq!(reason, reason::UNSUPPORTED_KEY_TYPE);
    assert!(message.contains("ECDSAP256"), "{message}");
    // No name at all: a role without templates and a pod without annotations.
    let mut spec = role_spec();
    spec.allowed_uri_sans.clear();
    let (reason, _) = denial(decide::decide(
        &pcr(&key, &[]),
        &registry(&spec, MountStatus::Ready(ca())),
    ));
    assert_eq!(reason, reason::NAME_NOT_ALLOWED);
}

#[test]
fn the_deprecated_public_key_form_checks_its_proof_and_key_type() {
    let vectors = include_str!("../../../../crates/tlsmint-ca/tests/data/pod-proofs.txt");
    let vector = |name: &str| {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let line = vectors.lines().find(|l| l.starts_with(name)).unwrap();
        let mut f = line.split_whitespace().skip(1);
        (
            b64.decode(f.next().unwrap()).unwrap(),
            b64.decode(f.next().unwrap()).unwrap(),
        )
    };
    let with_key = |(spki, proof): (Vec<u8>, Vec<u8>)| {
        let mut pcr = pcr(&p256(), &[]);
        pcr.spec.stub_pkc_s10_request = ByteString(Vec::new());
        pcr.spec.pkix_public_key = Some(ByteString(spki));
        pcr.spec.proof_of_possession = Some(ByteString(proof));
        pcr
    };
    let good = with_key(vector("p256"));
    assert!(matches!(decide::decide(&good, &ready()), Decision::Sign(_)));
    // The same proof for another pod does not verify.
    let mut stolen = good.clone();
    stolen.spec.pod_uid = "another-pod".into();
    assert_eq!(
        denial(decide::decide(&stolen, &ready())).0,
        reason::INVALID_REQUEST
    );
    // P-521 is a kubelet key type tlsmint does not sign.
    let (reason, message) = denial(decide::decide(&with_key(vector("p521")), &ready()));
    assert_eq!(reason, reason::UNSUPPORTED_KEY_TYPE);
    assert!(message.contains("ECDSAP256"), "{message}");
}

#[test]
fn trouble_that_may_pass_leaves_the_request_pending() {
    let key = p256();
    let not_ready = registry(
        &role_spec(),
        MountStatus::NotReady(NotReady::new("KeyMissing", "the CA key Secret is missing")),
    );
    match decide::decide(&pcr(&key, &[]), &not_ready) {
        Decision::Wait { reason, message } => {
            assert_eq!(reason, "MountNotReady");
            assert!(message.contains("KeyMissing"), "{message}");
        }
        other => panic!("expected Wait, got {other:?}"),
    }
    let mut unknown = pcr(&key, &[]);
    unknown.spec.signer_name = "pki.tlsmint.io/not-yet".into();
    assert!(matches!(
        decide::decide(&unknown, &ready()),
        Decision::Wait {
            reason: "RoleNotFound",
            ..
        }
    ));
    // Not ours, or final already: untouched.
    let mut foreign = pcr(&key, &[]);
    foreign.spec.signer_name = "example.com/pods".into();
    assert!(matches!(decide::decide(&foreign, &ready()), Decision::Skip));
    // The engine's verdicts: a CA outside its validity waits; a name refusal is final.
    let expired = tlsmint_ca::Error::CaNotValid {
        ca: "pki".into(),
        not_before: "a".into(),
        not_after: "b".into(),
    };
    assert_eq!(decide::engine_denial(&expired), None);
}

#[test]
fn refresh_is_at_half_life_and_never_within_ten_minutes_of_either_end() {
    let nb = OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap();
    for (lifetime, seed) in [(3600, 1), (3600, u64::MAX), (86400, 7), (7 * 86400, 42)] {
        let na = nb + time::Duration::seconds(lifetime);
        let at = decide::begin_refresh_at(nb, na, 0.5, seed);
        let from_start = (at - nb).whole_seconds();
        assert!(
            from_start >= 600 && (na - at).whole_seconds() >= 600,
            "{lifetime}"
        );
        assert!(from_start <= lifetime / 2, "{lifetime}: {from_start}");
        // Brought forward by at most 5% of the lifetime, capped at 10 minutes.
        assert!(
            lifetime / 2 - from_start <= (lifetime / 20).min(600),
            "{lifetime}: {from_start}"
        );
    }
    // The refresh kubelet starts at beginRefreshAt is a new request for the same pod: it
    // gets a new certificate (a new serial), decided like the first.
    let key = p256();
    let first = decide::decide(&pcr(&key, &[]), &ready());
    let second = decide::decide(&pcr(&p256(), &[]), &ready());
    assert!(matches!(
        (first, second),
        (Decision::Sign(_), Decision::Sign(_))
    ));
}
