//! Throughput and latency of the CA engine on one core, printed as a table.
//!
//! Run: `cargo bench -p tlsmint-ca --bench engine` (add `-- --quick` for a
//! short run). Each row runs the operation in a loop on the current thread
//! for a fixed time and reports operations per second and the p50 / p99 /
//! max latency of single operations.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use rcgen::{CertificateParams, KeyPair};
use time::OffsetDateTime;
use tlsmint_ca::{
    CaConfig, CertificateAuthority, CsrKeyRule, Identity, IssueRequest, KeyEncoding, KeySpec,
    LeafProfile, NameRequest, Policy, PrivateKey, Role, SignRequest, Subject,
};

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let budget = if quick {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(3)
    };
    println!(
        "{:<56} {:>10} {:>10} {:>10} {:>10}",
        "operation (one core)", "ops/s", "p50 µs", "p99 µs", "max µs"
    );
    let now = OffsetDateTime::now_utc();
    let role = role();
    let who = Identity {
        namespace: "default".into(),
        service_account: Some("web".into()),
    };

    bench("P-256 key generation", budget, || {
        black_box(PrivateKey::generate(KeySpec::EcdsaP256).unwrap());
    });

    for (label, spec) in [
        (
            "sign P-256 CSR, P-256 CA (parse+verify+policy+sign+PEM)",
            KeySpec::EcdsaP256,
        ),
        ("sign P-256 CSR, P-384 CA", KeySpec::EcdsaP384),
        ("sign P-256 CSR, Ed25519 CA", KeySpec::Ed25519),
        ("sign P-256 CSR, RSA-2048 CA", KeySpec::Rsa2048),
    ] {
        let ca = ca(spec, now);
        let csr = csr();
        let req = SignRequest {
            csr,
            ..SignRequest::default()
        };
        bench(label, budget, || {
            let issued = ca.sign(&role, &who, &req, now).unwrap();
            black_box(issued.certificate_pem);
        });
    }

    let ca = ca(KeySpec::EcdsaP256, now);
    let req = IssueRequest {
        names: NameRequest {
            common_name: Some("api.example.com".into()),
            ..NameRequest::default()
        },
        ttl: None,
    };
    bench(
        "issue P-256 (keygen+policy+sign+PEM cert+key)",
        budget,
        || {
            let issued = ca.issue(&role, &who, &req, now).unwrap();
            let key = issued
                .private_key
                .unwrap()
                .to_pem(KeyEncoding::Pkcs8)
                .unwrap();
            black_box((issued.certificate_pem, key));
        },
    );
}

fn role() -> Role {
    Role {
        policy: Policy {
            role: "web".into(),
            allowed_domains: vec!["example.com".into()],
            allow_subdomains: true,
            enforce_hostnames: true,
            allow_ip_sans: true,
            ..Policy::default()
        },
        profile: LeafProfile {
            csr_keys: CsrKeyRule::Any,
            ..LeafProfile::default()
        },
    }
}

fn ca(spec: KeySpec, now: OffsetDateTime) -> CertificateAuthority {
    let cfg = CaConfig {
        name: "bench".into(),
        subject: Subject::with_common_name("Bench CA"),
        key: spec,
        ttl: Duration::from_secs(86400 * 365),
    };
    CertificateAuthority::generate_root(&cfg, now).unwrap()
}

fn csr() -> Vec<u8> {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![
        "api.example.com".to_string(),
        "www.example.com".to_string(),
    ])
    .unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "api.example.com");
    params
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap()
        .into_bytes()
}

fn bench(label: &str, budget: Duration, mut op: impl FnMut()) {
    for _ in 0..20 {
        op(); // warm-up
    }
    let mut samples = Vec::with_capacity(100_000);
    let start = Instant::now();
    while start.elapsed() < budget {
        let t = Instant::now();
        op();
        samples.push(t.elapsed());
    }
    let total = start.elapsed();
    samples.sort_unstable();
    let pct = |p: f64| {
        let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
        samples[i].as_secs_f64() * 1e6
    };
    println!(
        "{:<56} {:>10.0} {:>10.1} {:>10.1} {:>10.1}",
        label,
        samples.len() as f64 / total.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        pct(1.0)
    );
}
