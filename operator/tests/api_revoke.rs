//! Who may revoke, against a real `tlsmint-operator dev` (issue 9 §1): revoking
//! by serial needs the `revoke` right (dev mode: the root token), a holder
//! revokes its own certificate with its private key (`revoke-with-key`), a
//! certificate the mount did not sign is refused, revocations share the
//! caller's rate limit, and a full revocation list refuses cleanly.
//!
//! Tenants: A is `apps/web` (role `web`), B is `apps/api` (role `svc`), both
//! on mount `int` (path `pki_int`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::http::{Answer, get, post};
use serde_json::{Value, json};
use tlsmint_ca::Serial;
use x509_parser::prelude::{CertificateRevocationList, FromDer};

const TENANT_A: &str = "system:serviceaccount:apps:web";
const TENANT_B: &str = "system:serviceaccount:apps:api";

/// A certificate and key issued to tenant A.
struct Issued {
    serial: String,
    certificate: String,
    private_key: String,
}

fn issue_as_a(server: &common::DevServer, cn: &str) -> Issued {
    let answer = post(
        &server.http,
        "/v1/pki_int/issue/web",
        TENANT_A,
        &json!({"common_name": cn}),
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    let data = &answer.json()["data"];
    Issued {
        serial: data["serial_number"].as_str().unwrap().to_owned(),
        certificate: data["certificate"].as_str().unwrap().to_owned(),
        private_key: data["private_key"].as_str().unwrap().to_owned(),
    }
}

fn revoke(server: &common::DevServer, token: &str, body: &Value) -> Answer {
    post(&server.http, "/v1/pki_int/revoke", token, body)
}

fn revoke_with_key(server: &common::DevServer, token: &str, body: &Value) -> Answer {
    post(&server.http, "/v1/pki_int/revoke-with-key", token, body)
}

fn errors(answer: &Answer) -> String {
    answer.json()["errors"].to_string()
}

/// The serials on the mount's CRL.
fn crl_serials(server: &common::DevServer) -> Vec<String> {
    let answer = get(&server.http, "/v1/pki_int/crl");
    assert_eq!(answer.status, 200);
    let (_, crl) = CertificateRevocationList::from_der(&answer.body).unwrap();
    crl.iter_revoked_certificates()
        .map(|r| Serial::from_bytes(r.raw_serial()).to_colon_hex())
        .collect()
}

/// Waits (the CRL is rebuilt in batches) until the CRL lists `serial`.
fn wait_on_crl(server: &common::DevServer, serial: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !crl_serials(server).iter().any(|s| s == serial) {
        assert!(Instant::now() < deadline, "{serial} never reached the CRL");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn tenant_b_cannot_revoke_tenant_as_certificate_but_an_admin_can() {
    let server = common::start(&["--crl-batch-window", "100ms"]);
    let a = issue_as_a(&server, "a.example.com");
    for body in [
        json!({"serial_number": a.serial}),
        json!({"certificate": a.certificate}),
    ] {
        let denied = revoke(&server, TENANT_B, &body);
        assert_eq!(denied.status, 403, "{}", denied.text());
        let text = errors(&denied);
        for part in [
            "\\\"revoke\\\"",
            "pkimounts.pki.tlsmint.io",
            "\\\"int\\\"",
            "system:serviceaccount:apps:api",
            "revoke-with-key",
        ] {
            assert!(text.contains(part), "{part} missing from {text}");
        }
    }
    // Not even tenant A itself may revoke by serial: that is an administrator's right.
    assert_eq!(
        revoke(&server, TENANT_A, &json!({"serial_number": a.serial})).status,
        403
    );
    std::thread::sleep(Duration::from_millis(400));
    assert!(!crl_serials(&server).contains(&a.serial));
    // The administrator (dev mode: the root token) may.
    let done = revoke(
        &server,
        common::ROOT_TOKEN,
        &json!({"serial_number": a.serial}),
    );
    assert_eq!(done.status, 200, "{}", done.text());
    assert_eq!(done.json()["data"]["state"], "revoked");
    wait_on_crl(&server, &a.serial);
}

#[test]
fn the_holder_revokes_with_its_key_and_a_wrong_key_or_foreign_certificate_is_refused() {
    let server = common::start(&["--crl-batch-window", "100ms"]);
    let one = issue_as_a(&server, "one.example.com");
    let two = issue_as_a(&server, "two.example.com");
    // Someone else's key does not prove possession.
    let wrong = revoke_with_key(
        &server,
        TENANT_B,
        &json!({"certificate": one.certificate, "private_key": two.private_key}),
    );
    assert_eq!(wrong.status, 400, "{}", wrong.text());
    assert!(
        errors(&wrong).contains("does not prove possession"),
        "{}",
        errors(&wrong)
    );
    // The refusal never echoes the key.
    let key_body: String = two.private_key.lines().nth(1).unwrap().to_owned();
    assert!(!wrong.text().contains(&key_body));
    // No key at all.
    let keyless = revoke_with_key(&server, TENANT_B, &json!({"certificate": one.certificate}));
    assert_eq!(keyless.status, 400);
    assert!(
        errors(&keyless).contains("private_key"),
        "{}",
        errors(&keyless)
    );
    // A certificate the mount never signed (self-signed with its own key).
    let key = rcgen::KeyPair::generate().unwrap();
    let foreign = rcgen::CertificateParams::new(vec!["one.example.com".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let refused = revoke_with_key(
        &server,
        TENANT_B,
        &json!({"certificate": foreign.pem(), "private_key": key.serialize_pem()}),
    );
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(
        errors(&refused).contains("not issued by mount \\\"int\\\""),
        "{}",
        errors(&refused)
    );
    // ...nor by an administrator.
    let by_admin = revoke(
        &server,
        common::ROOT_TOKEN,
        &json!({"certificate": foreign.pem()}),
    );
    assert_eq!(by_admin.status, 400, "{}", by_admin.text());

    // The holder of the key needs no administrator right: any authenticated caller
    // holding it may revoke (here tenant B, who holds A's key).
    let done = revoke_with_key(
        &server,
        TENANT_B,
        &json!({"certificate": one.certificate, "private_key": one.private_key}),
    );
    assert_eq!(done.status, 200, "{}", done.text());
    wait_on_crl(&server, &one.serial);
    // By serial too, for a certificate this server issued.
    let by_serial = revoke_with_key(
        &server,
        TENANT_A,
        &json!({"serial_number": two.serial, "private_key": two.private_key}),
    );
    assert_eq!(by_serial.status, 200, "{}", by_serial.text());
    wait_on_crl(&server, &two.serial);
    // Without a token it is still refused.
    let anonymous = revoke_with_key(
        &server,
        "",
        &json!({"certificate": one.certificate, "private_key": one.private_key}),
    );
    assert_eq!(anonymous.status, 403);
}

#[test]
fn a_revocation_flood_is_throttled_and_legitimate_revocations_still_land() {
    let server = common::start(&[
        "--rate-limit",
        "0.5",
        "--rate-burst",
        "5",
        "--crl-batch-window",
        "100ms",
    ]);
    // A ServiceAccount flooding the endpoint is throttled before anything else is
    // looked at; the answers that pass the limiter are refused on their merits
    // (tenant B holds no revoke right).
    let (mut passed, mut limited) = (0, 0);
    for _ in 0..40 {
        let answer = revoke(
            &server,
            TENANT_B,
            &json!({"serial_number": Serial::random().to_colon_hex()}),
        );
        match answer.status {
            400 | 403 => passed += 1,
            429 => {
                limited += 1;
                assert!(answer.header("retry-after").is_some());
            }
            other => panic!("unexpected {other}: {}", answer.text()),
        }
    }
    assert!(limited >= 25, "only {limited} of 40 were throttled");
    assert!(passed >= 5, "the burst was not allowed: {passed}");
    // The root token has no limit, as in Vault: every one of its revocations lands.
    let mut revoked = Vec::new();
    for _ in 0..20 {
        let serial = Serial::random().to_colon_hex();
        let answer = revoke(
            &server,
            common::ROOT_TOKEN,
            &json!({"serial_number": serial}),
        );
        assert_eq!(answer.status, 200, "{}", answer.text());
        revoked.push(serial);
    }
    // Another caller's revocation is not held up by the flood.
    let mine = issue_as_a(&server, "mine.example.com");
    let done = revoke_with_key(
        &server,
        TENANT_A,
        &json!({"certificate": mine.certificate, "private_key": mine.private_key}),
    );
    assert_eq!(done.status, 200, "{}", done.text());
    wait_on_crl(&server, &mine.serial);
    let listed = crl_serials(&server);
    assert!(revoked.iter().all(|s| listed.contains(s)));
    assert_eq!(listed.len(), revoked.len() + 1);
}

#[test]
fn a_full_revocation_list_refuses_cleanly_and_keeps_what_it_has() {
    let server = common::start(&[
        "--rate-limit",
        "0",
        "--max-revocations",
        "5",
        "--crl-batch-window",
        "100ms",
    ]);
    let serials: Vec<String> = (0..5).map(|_| Serial::random().to_colon_hex()).collect();
    for serial in &serials {
        let answer = revoke(
            &server,
            common::ROOT_TOKEN,
            &json!({"serial_number": serial}),
        );
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    let full = revoke(
        &server,
        common::ROOT_TOKEN,
        &json!({"serial_number": Serial::random().to_colon_hex()}),
    );
    assert_eq!(full.status, 503, "{}", full.text());
    let text = errors(&full);
    assert!(
        text.contains("full") && text.contains("--max-revocations"),
        "{text}"
    );
    // Revoking one that is already on the list is still answered with its time.
    let again = revoke(
        &server,
        common::ROOT_TOKEN,
        &json!({"serial_number": serials[0]}),
    );
    assert_eq!(again.status, 200, "{}", again.text());
    wait_on_crl(&server, &serials[4]);
    let mut on_crl = crl_serials(&server);
    on_crl.sort();
    let mut expected = serials.clone();
    expected.sort();
    assert_eq!(on_crl, expected);
    // Issuance is not affected.
    issue_as_a(&server, "still.example.com");
}

#[test]
fn a_serial_only_revocation_records_who_did_it_in_the_audit_line() {
    let dir = std::env::temp_dir().join(format!("tlsmint-revoke-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("operator.log");
    let server = common::start_logged(&[], &log);
    let a = issue_as_a(&server, "audited.example.com");
    assert_eq!(
        revoke(&server, TENANT_B, &json!({"serial_number": a.serial})).status,
        403
    );
    assert_eq!(
        revoke(
            &server,
            common::ROOT_TOKEN,
            &json!({"serial_number": a.serial})
        )
        .status,
        200
    );
    let b = issue_as_a(&server, "keyed.example.com");
    assert_eq!(
        revoke_with_key(
            &server,
            TENANT_A,
            &json!({"certificate": b.certificate, "private_key": b.private_key}),
        )
        .status,
        200
    );
    drop(server);
    std::thread::sleep(Duration::from_millis(500));
    let text = std::fs::read_to_string(&log).unwrap();
    let line = |needle: &str| -> String {
        text.lines()
            .find(|l| l.contains("certificate revoked") && l.contains(needle))
            .unwrap_or_else(|| panic!("no revocation line for {needle} in:\n{text}"))
            .to_owned()
    };
    let by_serial = line(&a.serial);
    for part in ["default/default", "serial", "root_token", "revoke"] {
        assert!(by_serial.contains(part), "{part} missing: {by_serial}");
    }
    let by_key = line(&b.serial);
    for part in ["apps/web", "private_key", "revoke-with-key"] {
        assert!(by_key.contains(part), "{part} missing: {by_key}");
    }
    let denied = text
        .lines()
        .find(|l| l.contains("request denied") && l.contains("apps/api"))
        .unwrap_or_else(|| panic!("no denial line in:\n{text}"));
    assert!(denied.contains("permission_denied"), "{denied}");
    // No private key in the log.
    assert!(!text.contains("PRIVATE KEY"));
    let key_body: String = b.private_key.lines().nth(1).unwrap().to_owned();
    assert!(!text.contains(&key_body));
    let _ = std::fs::remove_dir_all(&dir);
}
