//! Fuzz target of the Vault request bodies (issue 9 §4), run as a property test within
//! `cargo test`: the real router, in process, gets arbitrary and mutated bodies on issue,
//! sign, revoke, login and OCSP. Every answer must be a Vault answer (never a 500, errors
//! as `{"errors":[...]}` with something said), and no handler may panic: proptest fails
//! on a panic and shrinks the input. Seeds: `operator/tests/corpus/vault/`.
//!
//! `PROPTEST_CASES=20000 cargo test -p tlsmint-operator vault::fuzz_tests` runs longer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{Request, StatusCode};
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use tlsmint_ca::{CaConfig, CertificateAuthority, KeySpec, Subject};
use tower::ServiceExt;

use crate::api::auth::DevAuthenticator;
use crate::api::ratelimit::RateLimiter;
use crate::api::recent::RecentCerts;
use crate::api::vault::tokens::ClientTokens;
use crate::api::{ApiState, Settings};
use crate::registry::{MountEntry, MountStatus, Registry, RoleEntry};
use crate::revocation::{MemoryStore, Revocations};

const CASES: u32 = 600;

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

fn state() -> Arc<ApiState> {
    let cfg = CaConfig {
        name: "pki".into(),
        subject: Subject::with_common_name("Fuzz CA"),
        key: KeySpec::EcdsaP256,
        ttl: Duration::from_secs(86400),
    };
    let ca = CertificateAuthority::generate_root(&cfg, OffsetDateTime::now_utc()).unwrap();
    let registry = Arc::new(Registry::new());
    registry
        .put_mount(MountEntry {
            name: "pki".into(),
            path: "pki".into(),
            status: MountStatus::Ready(Arc::new(ca)),
            crl_expiry: Duration::from_secs(3600),
            trusted_roots: Vec::new(),
            other_generations: Vec::new(),
        })
        .unwrap();
    let spec = serde_yaml_ng::from_str(
        "{mountRef: {name: pki}, subjects: [{namespace: '*', serviceAccount: '*'}], \
         allowAnyName: true, allowIPSANs: true, allowedURISANs: ['spiffe://*'], maxTTL: 2h}",
    )
    .unwrap();
    registry.put_role(RoleEntry::from_spec("any", &spec));
    registry.resolve("any").unwrap();
    Arc::new(ApiState {
        registry,
        auth: Arc::new(DevAuthenticator::new("root", "default", "default")),
        rights: Arc::new(crate::api::rights::DevRights),
        policy_checkers: Vec::new(),
        cpu: tlsmint_runtime::cpu::CpuPool::new(1),
        metrics: std::sync::Arc::new(crate::api::metrics::ApiMetrics::unregistered()),
        // Dev mode's writes too, so the fuzzer reaches the setup endpoints.
        admin: Some(super::DevAdmin::new()),
        revocations: Revocations::new(Arc::new(MemoryStore::default()), Default::default()),
        limiter: RateLimiter::new(0.0, 0),
        tokens: ClientTokens::new(&[7; 32]),
        recent: RecentCerts::new(100),
        settings: Settings {
            client_token_ttl: Duration::from_secs(3600),
            ocsp_validity: Duration::from_secs(3600),
            revoked_grace: Duration::from_secs(3600),
        },
    })
}

fn corpus() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/vault");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    seeds.sort();
    seeds
}

const KEYS: [&str; 16] = [
    "common_name",
    "alt_names",
    "ip_sans",
    "uri_sans",
    "other_sans",
    "ttl",
    "not_after",
    "format",
    "private_key_format",
    "csr",
    "serial_number",
    "certificate",
    "role",
    "jwt",
    "exclude_cn_from_sans",
    "key_type",
];

/// Strings that reach the parsers' edges.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "a.example.com",
            "*.example.com",
            "localhost",
            "10.0.0.1",
            "::1",
            "spiffe://x/y",
            "24h",
            "1d",
            "90",
            "0",
            "-1",
            "99999999h",
            "99999999999999999999",
            "1e9",
            "2030-01-01T00:00:00Z",
            "1970-01-01T00:00:00Z",
            "pem",
            "der",
            "pem_bundle",
            "pkcs8",
            "sec1",
            "0a:1b:2c",
            "ff",
            "any",
            "system:serviceaccount:a:b",
            "a,b,,c",
            "",
            " ",
            "\u{0}",
            "é.example.com",
        ])
        .prop_map(str::to_owned),
        "[ -~]{0,48}",
        ".{0,16}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        text().prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A body: a JSON object over the parameters Vault takes, a seed with bytes changed, or
/// arbitrary bytes.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let seeds = corpus();
    prop_oneof![
        4 => prop::collection::btree_map(
            prop_oneof![4 => prop::sample::select(KEYS.to_vec()).prop_map(str::to_owned), 1 => "[a-z_]{0,10}"],
            json_value(),
            0..6,
        )
        .prop_map(|m| serde_json::to_vec(&Value::Object(m.into_iter().collect::<Map<_, _>>())).unwrap()),
        2 => (prop::sample::select(seeds), prop::collection::vec((any::<usize>(), any::<u8>()), 1..4))
            .prop_map(|(mut seed, changes)| {
                for (at, byte) in changes {
                    if !seed.is_empty() {
                        let i = at % seed.len();
                        seed[i] = byte;
                    }
                }
                seed
            }),
        1 => prop::collection::vec(any::<u8>(), 0..256),
    ]
}

const PATHS: [&str; 6] = [
    "/v1/pki/issue/any",
    "/v1/pki/sign/any",
    "/v1/pki/revoke",
    "/v1/auth/kubernetes/login",
    "/v1/pki/ocsp",
    "/v1/pki/issue/nope",
];

#[test]
fn vault_bodies_get_vault_answers_never_a_panic() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let state = state();
    assert!(corpus().len() >= 4, "the vault corpus is missing");
    let post = |path: &str, body: Vec<u8>| {
        let router = crate::api::vault::router(state.clone());
        let request = Request::post(path)
            .header("x-vault-token", "root")
            .body(Body::from(body))
            .unwrap();
        runtime.block_on(async { router.oneshot(request).await.unwrap().status() })
    };
    // The seeds reach the end of the path: a certificate is issued and signed.
    let seed = |name: &str| {
        std::fs::read(format!(
            "{}/tests/corpus/vault/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    assert_eq!(
        post("/v1/pki/issue/any", seed("issue.json")),
        StatusCode::OK
    );
    assert_eq!(post("/v1/pki/sign/any", seed("sign.json")), StatusCode::OK);
    proptest!(config(), |(path in prop::sample::select(PATHS.to_vec()), body in body(), chunked in any::<bool>())| {
        let router = crate::api::vault::router(state.clone());
        let mut request = Request::post(path).header("x-vault-token", "root");
        if !chunked {
            request = request.header("content-length", body.len());
        }
        let request = request.body(Body::from(body)).unwrap();
        let (status, bytes) = runtime.block_on(async {
            let response = router.oneshot(request).await.unwrap();
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
            (status, bytes)
        });
        prop_assert!(!status.is_server_error(), "{path}: {status}: {}", String::from_utf8_lossy(&bytes));
        if status.is_client_error() && path != "/v1/pki/ocsp" {
            let answer: Value = serde_json::from_slice(&bytes)
                .map_err(|e| TestCaseError::fail(format!("{path}: {status}: not JSON ({e})")))?;
            let errors = answer["errors"].as_array().cloned().unwrap_or_default();
            prop_assert!(
                !errors.is_empty() && errors.iter().all(|e| e.as_str().is_some_and(|s| !s.trim().is_empty() && s.len() < 4096)),
                "{path}: {status}: {answer}"
            );
        }
        prop_assert!(status == StatusCode::OK || status == StatusCode::NO_CONTENT || status.is_client_error());
    });
}
