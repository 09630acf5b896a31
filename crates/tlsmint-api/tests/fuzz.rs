//! Fuzz targets of what pods hand to tlsmint, run as property tests on stable Rust within
//! `cargo test` (issue 9 §4): CSI volume attributes (with kubelet's pod info and token
//! JSON) and pod annotations. Keys come from the real key lists plus unknown ones; values
//! from the seed corpus in `tests/corpus/` (realistic values, templates, edge cases),
//! mutated, or arbitrary text. Every input must give Ok or an error naming the key, never a
//! panic (proptest fails on a panic and shrinks it).
//!
//! Case counts are bounded; `PROPTEST_CASES=100000 cargo test -p tlsmint-api --test fuzz`
//! runs longer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::test_runner::Config;
use tlsmint_api::annotations::{self, PodAnnotations};
use tlsmint_api::csi::{self, PodInfo, VolumeAttributes};

const CASES: u32 = 2000;

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

fn corpus_file(name: &str) -> String {
    let path = format!("{}/tests/corpus/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// `key=value` sets separated by blank lines; `#` lines are comments.
fn sets(name: &str) -> Vec<BTreeMap<String, String>> {
    corpus_file(name)
        .split("\n\n")
        .map(|block| {
            block
                .lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect::<BTreeMap<_, _>>()
        })
        .filter(|m| !m.is_empty())
        .collect()
}

fn seed_values() -> Vec<String> {
    corpus_file("values.txt")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A value: a seed, a seed with a character changed or added, or arbitrary text.
fn value() -> impl Strategy<Value = String> {
    let seeds = seed_values();
    prop_oneof![
        3 => prop::sample::select(seeds.clone()),
        2 => (prop::sample::select(seeds), any::<usize>(), any::<char>(), any::<bool>())
            .prop_map(|(seed, at, c, insert)| {
                let mut chars: Vec<char> = seed.chars().collect();
                let i = at % (chars.len() + 1);
                if insert || chars.is_empty() {
                    chars.insert(i, c);
                } else {
                    let last = chars.len() - 1;
                    chars[i.min(last)] = c;
                }
                chars.into_iter().collect()
            }),
        1 => "[ -~]{0,40}",
        1 => ".{0,24}",
        1 => prop::collection::vec("[a-z0-9.${}()_-]{0,12}", 0..6).prop_map(|v| v.join(",")),
    ]
}

/// A key of `known`, or a key under `prefix` that is not one, or any text.
fn key(known: &'static [&'static str], prefix: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        6 => prop::sample::select(known).prop_map(str::to_owned),
        1 => "[a-z-]{0,12}".prop_map(move |s| format!("{prefix}{s}")),
        1 => ".{0,16}",
    ]
}

/// A realistic set with some keys changed, added or removed.
fn map(
    seeds: Vec<BTreeMap<String, String>>,
    known: &'static [&'static str],
    prefix: &'static str,
) -> impl Strategy<Value = BTreeMap<String, String>> {
    (
        prop::sample::select(seeds),
        prop::collection::vec((key(known, prefix), value()), 0..8),
        prop::collection::vec(any::<prop::sample::Index>(), 0..3),
    )
        .prop_map(|(mut base, set, remove)| {
            for index in remove {
                if !base.is_empty() {
                    let k = base.keys().nth(index.index(base.len())).cloned().unwrap();
                    base.remove(&k);
                }
            }
            base.extend(set);
            base
        })
}

static CSI_KEYS: [&str; 20] = [
    csi::ROLE,
    csi::COMMON_NAME,
    csi::DNS_NAMES,
    csi::IP_SANS,
    csi::URI_SANS,
    csi::TTL,
    csi::KEY_ALGORITHM,
    csi::KEY_ENCODING,
    csi::RENEW_AT,
    csi::CERTIFICATE_FILE,
    csi::KEY_FILE,
    csi::CA_FILE,
    csi::BUNDLE_FILE,
    csi::FS_GROUP,
    csi::POD_NAME_KEY,
    csi::POD_NAMESPACE_KEY,
    csi::POD_UID_KEY,
    csi::SERVICE_ACCOUNT_NAME_KEY,
    csi::SERVICE_ACCOUNT_TOKENS_KEY,
    csi::EPHEMERAL_KEY,
];

fn assert_names(message: &str, keys: &[&str]) {
    assert!(
        keys.iter().any(|k| message.contains(k)),
        "the error does not name the key: {message}"
    );
    assert!(message.len() < 4096, "an error of {} bytes", message.len());
}

#[test]
fn csi_volume_attributes_never_panic() {
    let seeds = sets("csi-attributes.txt");
    for seed in &seeds {
        VolumeAttributes::parse(seed).expect("a corpus volume parses");
    }
    proptest!(config(), |(attrs in map(seeds, &CSI_KEYS, csi::PREFIX))| {
        match VolumeAttributes::parse(&attrs) {
            Ok(parsed) => {
                if let Ok(pod) = PodInfo::from_volume_context(&attrs)
                    && let Err(e) = parsed.resolve(&pod)
                {
                    assert_names(&e.to_string(), &[&e.key]);
                }
            }
            Err(e) => assert_names(&e.to_string(), &[&e.key]),
        }
        if let Err(e) = PodInfo::from_volume_context(&attrs) {
            assert_names(&e.to_string(), &[&e.key]);
        }
    });
}

#[test]
fn service_account_token_json_never_panics_nor_leaks() {
    let json = prop_oneof![
        Just(
            r#"{"tlsmint":{"token":"SECRET","expirationTimestamp":"2030-01-01T00:00:00Z"}}"#
                .to_owned()
        ),
        "\\{\"(tlsmint|other)\":\\{\"token\":(\"SECRET\"|1|null|\\[\\]),\"expirationTimestamp\":\"[0-9TZ:-]{0,24}\"\\}\\}",
        ".{0,64}",
    ];
    proptest!(config(), |(text in json)| {
        if let Err(e) = csi::audience_token(&text) {
            let message = e.to_string();
            prop_assert!(!message.contains("SECRET"), "the token leaked: {message}");
            assert_names(&message, &[csi::SERVICE_ACCOUNT_TOKENS_KEY]);
        }
    });
}

static ANNOTATION_KEYS: [&str; 12] = [
    annotations::INJECT,
    annotations::ROLE,
    annotations::COMMON_NAME,
    annotations::DNS_NAMES,
    annotations::IP_SANS,
    annotations::URI_SANS,
    annotations::TTL,
    annotations::KEY_ALGORITHM,
    annotations::MOUNT_PATH,
    annotations::CONTAINERS,
    annotations::MODE,
    annotations::STATUS,
];

#[test]
fn pod_annotations_never_panic_and_what_they_ask_the_driver_takes() {
    let seeds = sets("pod-annotations.txt");
    for seed in &seeds {
        PodAnnotations::parse(seed).expect("corpus annotations parse");
    }
    proptest!(config(), |(pod in map(seeds, &ANNOTATION_KEYS, annotations::PREFIX), container in "[a-z]{0,8}")| {
        match PodAnnotations::parse(&pod) {
            Ok(None) => {}
            Ok(Some(parsed)) => {
                parsed.applies_to_container(&container);
                // The webhook's volume must be one the CSI driver accepts.
                let attrs = parsed.csi_volume_attributes();
                let read = VolumeAttributes::parse(&attrs);
                prop_assert!(read.is_ok(), "annotations {pod:?} gave volume attributes {attrs:?} that the driver refuses: {:?}", read.err());
            }
            Err(e) => assert_names(&e.to_string(), &[&e.key]),
        }
    });
}
