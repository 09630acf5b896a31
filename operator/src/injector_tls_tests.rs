//! Table tests of the injector certificate's decision and of the caBundle patch.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, WebhookClientConfig,
};
use kube::api::ObjectMeta;
use time::OffsetDateTime;
use tlsmint_ca::{CaConfig, CertificateAuthority, KeySpec, Subject};

use super::*;

fn ca(cn: &str) -> CertificateAuthority {
    let cfg = CaConfig {
        name: "tlsmint-api".into(),
        subject: Subject::with_common_name(cn),
        key: KeySpec::EcdsaP256,
        ttl: Duration::from_secs(365 * 24 * 3600),
    };
    CertificateAuthority::generate_root(&cfg, OffsetDateTime::now_utc() - time::Duration::HOUR)
        .unwrap()
}

fn names() -> Vec<String> {
    vec!["rel-injector.ns.svc".into(), "127.0.0.1".into()]
}

const HOUR: Duration = Duration::from_secs(3600);

fn issued_at(ca: &CertificateAuthority, at: OffsetDateTime) -> Secret {
    secret_for("rel-injector-tls", ca, &names(), HOUR, at)
        .unwrap()
        .0
}

#[test]
fn issues_when_the_secret_does_not_exist() {
    let step = decide(None, &ca("a"), &names(), HOUR, OffsetDateTime::now_utc());
    assert!(matches!(step, Step::Issue(r) if r.contains("does not exist")));
}

#[test]
fn keeps_a_fresh_certificate_until_half_of_its_lifetime() {
    let ca = ca("a");
    let now = OffsetDateTime::now_utc();
    let secret = issued_at(&ca, now);
    let Step::Keep { renew_at } = decide(Some(&secret), &ca, &names(), HOUR, now) else {
        panic!("a fresh certificate is kept");
    };
    // Half of 1h (plus the 30 s back-dating), brought forward by at most 5 % jitter.
    let half = renew_at - now;
    assert!(half <= time::Duration::minutes(30), "{half}");
    assert!(half >= time::Duration::minutes(26), "{half}");
    let later = renew_at + time::Duration::SECOND;
    assert!(matches!(
        decide(Some(&secret), &ca, &names(), HOUR, later),
        Step::Issue(r) if r.contains("half of its lifetime")
    ));
}

#[test]
fn renews_at_half_lifetime() {
    let ca = ca("a");
    let now = OffsetDateTime::now_utc();
    let secret = issued_at(&ca, now);
    assert!(matches!(
        decide(
            Some(&secret),
            &ca,
            &names(),
            HOUR,
            now + time::Duration::minutes(31)
        ),
        Step::Issue(_)
    ));
}

#[test]
fn reissues_a_certificate_of_another_ca() {
    let now = OffsetDateTime::now_utc();
    let secret = issued_at(&ca("old"), now);
    let step = decide(Some(&secret), &ca("new"), &names(), HOUR, now);
    assert!(
        matches!(&step, Step::Issue(r) if r.contains("not issued by the internal API CA")),
        "{step:?}"
    );
}

#[test]
fn reissues_for_other_names() {
    let ca = ca("a");
    let now = OffsetDateTime::now_utc();
    let secret = issued_at(&ca, now);
    let other = vec!["other.ns.svc".to_owned()];
    assert!(matches!(
        decide(Some(&secret), &ca, &other, HOUR, now),
        Step::Issue(r) if r.contains("wanted")
    ));
}

#[test]
fn reissues_when_the_lifetime_was_shortened() {
    let ca = ca("a");
    let now = OffsetDateTime::now_utc();
    let secret = issued_at(&ca, now);
    assert!(matches!(
        decide(Some(&secret), &ca, &names(), Duration::from_secs(120), now),
        Step::Issue(r) if r.contains("longer than")
    ));
}

#[test]
fn reissues_a_broken_pair() {
    let ca = ca("a");
    let now = OffsetDateTime::now_utc();
    let a = issued_at(&ca, now);
    let b = issued_at(&ca, now);
    let mut mixed = a.clone();
    mixed.data.as_mut().unwrap().insert(
        "tls.key".into(),
        b.data.as_ref().unwrap()["tls.key"].clone(),
    );
    assert!(matches!(
        decide(Some(&mixed), &ca, &names(), HOUR, now),
        Step::Issue(r) if r.contains("not the key")
    ));
    let mut garbage = a.clone();
    garbage
        .data
        .as_mut()
        .unwrap()
        .insert("tls.crt".into(), ByteString(b"nope".to_vec()));
    assert!(matches!(
        decide(Some(&garbage), &ca, &names(), HOUR, now),
        Step::Issue(r) if r.contains("tls.crt")
    ));
    let mut empty = a;
    empty.data = None;
    assert!(matches!(
        decide(Some(&empty), &ca, &names(), HOUR, now),
        Step::Issue(r) if r.contains("missing")
    ));
}

#[test]
fn the_secret_holds_leaf_key_and_ca() {
    let ca = ca("a");
    let (secret, serial) = secret_for("x", &ca, &names(), HOUR, OffsetDateTime::now_utc()).unwrap();
    assert!(!serial.is_empty());
    let data = secret.data.as_ref().unwrap();
    assert_eq!(
        std::str::from_utf8(&data["ca.crt"].0).unwrap(),
        ca.certificate_pem()
    );
    assert!(
        std::str::from_utf8(&data["tls.key"].0)
            .unwrap()
            .contains("PRIVATE KEY")
    );
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
}

fn webhook_config(bundles: &[Option<&str>]) -> MutatingWebhookConfiguration {
    MutatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some("rel-injector".into()),
            resource_version: Some("42".into()),
            ..ObjectMeta::default()
        },
        webhooks: Some(
            bundles
                .iter()
                .enumerate()
                .map(|(i, b)| MutatingWebhook {
                    name: format!("w{i}.tlsmint.io"),
                    client_config: WebhookClientConfig {
                        ca_bundle: b.map(|b| ByteString(b.as_bytes().to_vec())),
                        ..WebhookClientConfig::default()
                    },
                    ..MutatingWebhook::default()
                })
                .collect(),
        ),
    }
}

#[test]
fn patches_only_webhooks_with_another_ca_bundle() {
    let pem = "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n";
    let config = webhook_config(&[None, Some(pem), Some("old")]);
    let patch = ca_bundle_patch(&config, pem).unwrap();
    assert_eq!(patch["metadata"]["resourceVersion"], "42");
    let webhooks = patch["webhooks"].as_array().unwrap();
    let named: Vec<&str> = webhooks
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(named, ["w0.tlsmint.io", "w2.tlsmint.io"]);
    // ByteString serializes as base64.
    use base64::Engine as _;
    let expected = base64::engine::general_purpose::STANDARD.encode(pem);
    assert_eq!(webhooks[0]["clientConfig"]["caBundle"], expected);
}

#[test]
fn no_patch_when_every_ca_bundle_is_current() {
    let pem = "x";
    assert_eq!(
        ca_bundle_patch(&webhook_config(&[Some(pem), Some(pem)]), pem),
        None
    );
    assert_eq!(ca_bundle_patch(&webhook_config(&[]), pem), None);
}

#[test]
fn settings_are_off_without_names_of_objects_and_need_serving_names() {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: InjectorTlsArgs,
    }
    let parse = |args: &[&str]| {
        let mut all = vec!["x"];
        all.extend_from_slice(args);
        Wrapper::try_parse_from(all).unwrap().args
    };
    assert_eq!(parse(&[]).settings("ns").unwrap(), None);
    let err = parse(&["--injector-tls-secret=s"])
        .settings("ns")
        .unwrap_err()
        .to_string();
    assert!(err.contains("--injector-serving-names"), "{err}");
    let settings = parse(&[
        "--injector-tls-secret=s",
        "--injector-webhook-config=w",
        "--injector-serving-names=a.ns.svc, 127.0.0.1",
        "--injector-cert-ttl=2m",
    ])
    .settings("ns")
    .unwrap()
    .unwrap();
    assert_eq!(settings.names, ["a.ns.svc", "127.0.0.1"]);
    assert_eq!(settings.ttl, Duration::from_secs(120));
    assert_eq!(settings.secret.as_deref(), Some("s"));
    assert_eq!(settings.webhook.as_deref(), Some("w"));
    let short = parse(&["--injector-webhook-config=w", "--injector-cert-ttl=10s"]).settings("ns");
    assert!(short.is_err());
}
