//! Fuzz targets of the CA engine's readers, run as property tests on stable Rust within
//! `cargo test` (issue 9 §4): the CSR reader and checker, the OCSP request reader (and the
//! responder fed what it read), the DER reader, and the PEM readers. Each gets arbitrary
//! bytes and mutations (byte flips, inserts, cuts, length-byte rewrites) of the seed
//! corpus in `tests/corpus/`, and must answer Ok or a clear error, never panic: proptest
//! turns a panic into a failure and shrinks it to a small input.
//!
//! Case counts are bounded so that the file runs in a few seconds; raise them with
//! `PROPTEST_CASES=100000 cargo test -p tlsmint-ca --test fuzz` for a longer run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::Config;
use time::OffsetDateTime;
use tlsmint_ca::der::{self, tag};
use tlsmint_ca::ocsp::{self, CertStatus};
use tlsmint_ca::{CaConfig, CertificateAuthority, KeySpec, Subject, csr};

/// Cases per target unless PROPTEST_CASES says otherwise.
const CASES: u32 = 1500;

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

/// The seed files of `tests/corpus/<kind>/`, PEM decoded to DER.
fn corpus(kind: &str) -> Vec<Vec<u8>> {
    let dir = format!("{}/tests/corpus/{kind}", env!("CARGO_MANIFEST_DIR"));
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {dir}: {e}"))
        .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .map(|bytes| match pem::parse(&bytes) {
            Ok(block) => block.into_contents(),
            Err(_) => bytes,
        })
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "no seeds in {dir}");
    seeds
}

/// One change to a seed; positions are taken modulo the length.
#[derive(Clone, Debug)]
enum Mutation {
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize, usize),
    Truncate(usize),
    /// A byte that DER reads as a length: long forms, indefinite, huge.
    Length(usize, u8),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1..16usize).prop_map(|(i, n)| Mutation::Remove(i, n)),
        any::<usize>().prop_map(Mutation::Truncate),
        (
            any::<usize>(),
            prop::sample::select(vec![0x00, 0x7f, 0x80, 0x81, 0x82, 0x84, 0x88, 0xff])
        )
            .prop_map(|(i, b)| Mutation::Length(i, b)),
        (any::<usize>(), 1..64usize).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
    ]
}

fn apply(seed: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for m in mutations {
        let len = out.len().max(1);
        match *m {
            Mutation::Set(i, b) | Mutation::Length(i, b) => {
                if !out.is_empty() {
                    out[i % len] = b;
                }
            }
            Mutation::Insert(i, b) => out.insert(i % (out.len() + 1), b),
            Mutation::Remove(i, n) => {
                let start = i % len;
                let end = (start + n).min(out.len());
                out.drain(start.min(end)..end);
            }
            Mutation::Truncate(i) => out.truncate(i % len),
            Mutation::Duplicate(i, n) => {
                let start = i % len;
                let end = (start + n).min(out.len());
                let copy = out.get(start..end).unwrap_or_default().to_vec();
                out.splice(start..start, copy);
            }
        }
    }
    out
}

/// A mutated seed of `kind`, or arbitrary bytes.
fn input(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => (prop::sample::select(seeds), prop::collection::vec(mutation(), 1..6))
            .prop_map(|(seed, m)| apply(&seed, &m)),
        1 => prop::collection::vec(any::<u8>(), 0..512),
    ]
}

/// An error must say something, and not endlessly (no unbounded echo of the input).
fn assert_clear(message: &str) {
    assert!(!message.trim().is_empty(), "an empty error message");
    assert!(message.len() < 2048, "an error of {} bytes", message.len());
}

#[test]
fn csr_reader_never_panics() {
    let seeds = corpus("csr");
    // The seeds themselves: the valid ones parse, the others are refused by name.
    let parsed = seeds.iter().filter(|s| csr::parse(s).is_ok()).count();
    assert!(parsed >= 3, "only {parsed} corpus CSRs parse");
    proptest!(config(), |(der in input(seeds), as_pem in any::<bool>())| {
        let bytes = if as_pem {
            tlsmint_ca::pem::encode("CERTIFICATE REQUEST", &der).into_bytes()
        } else {
            der
        };
        match csr::parse(&bytes) {
            Ok(parsed) => prop_assert!(!parsed.spki_der.is_empty()),
            Err(e) => assert_clear(&e.to_string()),
        }
    });
}

#[test]
fn csr_reader_refuses_arbitrary_text_clearly() {
    proptest!(config(), |(text in "(-----BEGIN CERTIFICATE REQUEST-----\n)?[A-Za-z0-9+/=\n -]{0,300}(-----END CERTIFICATE REQUEST-----\n)?.{0,8}")| {
        match csr::parse(text.as_bytes()) {
            Ok(_) => {}
            Err(e) => assert_clear(&e.to_string()),
        }
    });
}

fn ocsp_ca() -> CertificateAuthority {
    let cfg = CaConfig {
        name: "pki".into(),
        subject: Subject::with_common_name("Fuzz OCSP CA"),
        key: KeySpec::EcdsaP256,
        ttl: Duration::from_secs(86400),
    };
    CertificateAuthority::generate_root(&cfg, OffsetDateTime::now_utc()).unwrap()
}

#[test]
fn ocsp_request_reader_and_responder_never_panic() {
    let seeds = corpus("ocsp");
    assert!(seeds.iter().all(|s| ocsp::parse_request(s).is_ok()));
    let ca = ocsp_ca();
    let now = OffsetDateTime::now_utc();
    proptest!(config(), |(bytes in input(seeds))| {
        match ocsp::parse_request(&bytes) {
            Ok(request) => {
                let answers: Vec<CertStatus> = request
                    .certs
                    .iter()
                    .map(|id| if ca.ocsp_matches(id) { CertStatus::Good } else { CertStatus::Unknown })
                    .collect();
                let response = ca.ocsp_response(&request, &answers, now, Duration::from_secs(3600));
                prop_assert!(response.is_ok(), "{:?}", response.err());
            }
            Err(e) => assert_clear(&e.to_string()),
        }
    });
}

/// Reads every TLV of `input`, descending into constructed ones; the number read.
fn walk(input: &[u8], depth: usize) -> usize {
    let mut rest = input;
    let mut count = 0;
    while !rest.is_empty() {
        let Ok((t, contents, next)) = der::read_tlv(rest) else {
            return count;
        };
        assert!(contents.len() + next.len() < rest.len(), "no progress");
        count += 1;
        if t & 0x20 != 0 && depth < 32 {
            count += walk(contents, depth + 1);
        }
        rest = next;
    }
    count
}

#[test]
fn der_reader_never_panics() {
    let seeds = corpus("der");
    assert!(seeds.iter().all(|s| walk(s, 0) > 3));
    proptest!(config(), |(bytes in input(seeds))| {
        walk(&bytes, 0);
        if let Err(e) = der::expect(&bytes, tag::SEQUENCE) {
            assert_clear(&e.to_string());
        }
        if let Err(e) = der::pkcs8_private_key_octets(&bytes) {
            assert_clear(&e.to_string());
        }
    });
}

#[test]
fn pem_readers_never_panic() {
    let label = prop::sample::select(vec![
        "CERTIFICATE",
        "PRIVATE KEY",
        "EC PRIVATE KEY",
        "RSA PRIVATE KEY",
        "CERTIFICATE REQUEST",
        "X",
    ]);
    proptest!(config(), |(der in input(corpus("der")), label in label, junk in ".{0,16}", twice in any::<bool>())| {
        let mut text = tlsmint_ca::pem::encode(label, &der);
        if twice {
            text.push_str(&text.clone());
        }
        text.push_str(&junk);
        for result in [
            tlsmint_ca::pem::decode_certificates(&text).map(|_| ()),
            tlsmint_ca::pem::decode_certificate(&text).map(|_| ()),
            tlsmint_ca::pem::decode_private_key(&text).map(|_| ()),
        ] {
            if let Err(e) = result {
                assert_clear(&e.to_string());
            }
        }
    });
}
