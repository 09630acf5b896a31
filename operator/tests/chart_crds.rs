//! The chart installs exactly the CRDs the API crate generates: `charts/tlsmint/crds/` must
//! equal `crates/tlsmint-api`'s rendering (and so `crds/`). Regenerate with
//! `cargo run -p tlsmint-api --bin crdgen -- --out charts/tlsmint/crds` after changing the types.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

#[test]
fn chart_crds_match_the_generated_ones() {
    let chart = Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/tlsmint/crds");
    let rendered = tlsmint_api::crdgen::render_all().expect("render");
    let mut names: Vec<String> = std::fs::read_dir(&chart)
        .expect("charts/tlsmint/crds")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected: Vec<String> = rendered.iter().map(|(n, _)| (*n).to_owned()).collect();
    expected.sort();
    assert_eq!(names, expected, "the chart holds one file per CRD");
    for (file, text) in rendered {
        let held = std::fs::read_to_string(chart.join(file)).expect("read");
        assert!(
            held == text,
            "charts/tlsmint/crds/{file} is stale: run `cargo run -p tlsmint-api --bin crdgen -- --out charts/tlsmint/crds`"
        );
    }
}
