#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::registry::MountStatus;
use tlsmint_ca::{CaConfig, KeySpec, Subject};
use x509_parser::prelude::{CertificateRevocationList, FromDer};

fn mount() -> (MountEntry, Arc<CertificateAuthority>) {
    let cfg = CaConfig {
        name: "pki".into(),
        subject: Subject::with_common_name("Test CA"),
        key: KeySpec::EcdsaP256,
        ttl: Duration::from_secs(86400 * 30),
    };
    let ca =
        Arc::new(CertificateAuthority::generate_root(&cfg, OffsetDateTime::now_utc()).unwrap());
    let entry = MountEntry {
        name: "pki".into(),
        path: "pki".into(),
        status: MountStatus::Ready(ca.clone()),
        crl_expiry: Duration::from_secs(72 * 3600),
        trusted_roots: Vec::new(),
        other_generations: Vec::new(),
    };
    (entry, ca)
}

fn serials_in(crl: &Crl) -> Vec<String> {
    let (_, parsed) = CertificateRevocationList::from_der(&crl.der).unwrap();
    parsed
        .iter_revoked_certificates()
        .map(|r| Serial::from_bytes(r.raw_serial()).to_colon_hex())
        .collect()
}

#[tokio::test]
async fn revoke_is_idempotent_and_reaches_the_crl_and_status() {
    let revocations = Revocations::new(Arc::new(MemoryStore::default()), Settings::default());
    let (mount, ca) = mount();
    let now = OffsetDateTime::now_utc();
    let serial = Serial::random();
    let keep = now + time::Duration::hours(1);
    let first = revocations
        .revoke("pki", &serial, keep, now, Origin::Api)
        .await
        .unwrap();
    let again = revocations
        .revoke(
            "pki",
            &serial,
            keep,
            now + time::Duration::seconds(5),
            Origin::Api,
        )
        .await
        .unwrap();
    assert_eq!(first.unix_timestamp(), again.unix_timestamp());
    assert!(revocations.status("pki", &serial).await.unwrap().is_some());
    assert!(
        revocations
            .status("pki", &Serial::random())
            .await
            .unwrap()
            .is_none()
    );
    let crl = revocations.crl(&mount, &ca, now).await.unwrap();
    assert_eq!(serials_in(&crl.crl), vec![serial.to_colon_hex()]);
}

#[tokio::test]
async fn expired_entries_are_pruned_and_numbers_grow() {
    let store = Arc::new(MemoryStore::default());
    let revocations = Revocations::new(store.clone(), Settings::default());
    let (mount, ca) = mount();
    let now = OffsetDateTime::now_utc();
    let short = Serial::random();
    let long = Serial::random();
    revocations
        .revoke(
            "pki",
            &short,
            now + time::Duration::minutes(1),
            now,
            Origin::Api,
        )
        .await
        .unwrap();
    revocations
        .revoke(
            "pki",
            &long,
            now + time::Duration::hours(2),
            now,
            Origin::Api,
        )
        .await
        .unwrap();
    let first = revocations.rebuild(&mount, &ca, now).await.unwrap();
    assert_eq!(serials_in(&first.crl).len(), 2);
    let later = now + time::Duration::minutes(10);
    let second = revocations.rebuild(&mount, &ca, later).await.unwrap();
    assert_eq!(serials_in(&second.crl), vec![long.to_colon_hex()]);
    assert!(second.crl.number > first.crl.number);
    assert_eq!(store.load("pki").await.unwrap().revoked.len(), 1);
    // A restarted replica (new cache, same store) keeps counting up.
    let restarted = Revocations::new(store, Settings::default());
    let third = restarted.rebuild(&mount, &ca, later).await.unwrap();
    assert!(third.crl.number > second.crl.number);
}

#[tokio::test]
async fn crl_is_cached_until_half_of_its_life() {
    let revocations = Revocations::new(Arc::new(MemoryStore::default()), Settings::default());
    let (mount, ca) = mount();
    let now = OffsetDateTime::now_utc();
    let a = revocations.crl(&mount, &ca, now).await.unwrap();
    let b = revocations
        .crl(&mount, &ca, now + time::Duration::hours(1))
        .await
        .unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    let c = revocations
        .crl(&mount, &ca, now + time::Duration::hours(37))
        .await
        .unwrap();
    assert!(c.crl.number > a.crl.number);
}

#[tokio::test]
async fn a_full_list_refuses_api_revocations_keeps_a_reserve_and_frees_as_entries_expire() {
    let store = Arc::new(MemoryStore::default());
    let settings = Settings {
        max_entries: 4,
        ..Settings::default()
    };
    let revocations = Revocations::new(store.clone(), settings);
    let now = OffsetDateTime::now_utc();
    let soon = now + time::Duration::minutes(1);
    let mut first = Vec::new();
    for _ in 0..4 {
        let serial = Serial::random();
        revocations
            .revoke("pki", &serial, soon, now, Origin::Api)
            .await
            .unwrap();
        first.push(serial);
    }
    let refused = revocations
        .revoke("pki", &Serial::random(), soon, now, Origin::Api)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, RevocationError::Store(StoreError::Full { .. })),
        "{refused}"
    );
    assert!(refused.to_string().contains("limit is 4"), "{refused}");
    assert_eq!(store.load("pki").await.unwrap().revoked.len(), 4);
    // Revoking an already revoked serial is still answered.
    revocations
        .revoke("pki", &first[0], soon, now, Origin::Api)
        .await
        .unwrap();
    // A CertificateRequest revocation may use the reserve (a quarter: 1 here).
    revocations
        .revoke("pki", &Serial::random(), soon, now, Origin::Request)
        .await
        .unwrap();
    assert!(
        revocations
            .revoke("pki", &Serial::random(), soon, now, Origin::Request)
            .await
            .is_err()
    );
    // Once the first certificates have expired, their entries leave and make room.
    let later = now + time::Duration::minutes(5);
    let fresh = Serial::random();
    revocations
        .revoke(
            "pki",
            &fresh,
            later + time::Duration::hours(1),
            later,
            Origin::Api,
        )
        .await
        .unwrap();
    let stored = store.load("pki").await.unwrap();
    assert_eq!(stored.revoked.len(), 1, "{stored:?}");
    assert_eq!(stored.revoked[0].serial, fresh.to_colon_hex());
    assert!(
        revocations
            .status("pki", &first[1])
            .await
            .unwrap()
            .is_none()
    );
}
