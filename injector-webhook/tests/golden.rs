//! Golden-file tests of the mutation: every `golden/<case>.input.yaml` is a Pod; the
//! expected result is `golden/<case>.expected.yaml` (the admitted Pod, or a comment saying
//! it is admitted unchanged or refused with the message). Each mutated result must be a fixed
//! point (mutating it again changes nothing) and the JSON Patch of the review must turn the
//! input into it. `UPDATE_GOLDEN=1 cargo test -p tlsmint-injector --test golden` rewrites
//! the expected files; review the diff.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use base64::Engine as _;
use k8s_openapi::api::core::v1::Pod;
use tlsmint_injector::mutate::{Outcome, mutate};
use tlsmint_injector::review::{self, Request};

mod common;
use common::injection;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn render(pod: &Pod) -> (String, Option<Pod>) {
    match mutate(pod, &injection()) {
        Ok(Outcome::Ignored) => ("# admitted unchanged\n".into(), None),
        Ok(Outcome::Mutated(after)) => (serde_yaml_ng::to_string(&after).unwrap(), Some(*after)),
        Err(refusal) => (format!("# refused: {refusal}\n"), None),
    }
}

fn check_patch(input: &Pod, expected: &Pod) {
    let request = Request {
        uid: "u".into(),
        operation: "CREATE".into(),
        namespace: Some("default".into()),
        object: Some(serde_json::to_value(input).unwrap()),
    };
    let (response, _) = review::decide(request, &injection());
    assert!(response.allowed);
    let mut doc = serde_json::to_value(input).unwrap();
    if let Some(patch) = response.patch {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(patch)
            .unwrap();
        let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
        json_patch::patch(&mut doc, &patch).unwrap();
    }
    assert_eq!(doc, serde_json::to_value(expected).unwrap());
}

#[test]
fn golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".input.yaml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 12, "{cases:?}");
    let mut mismatches = Vec::new();
    for input_path in cases {
        let name = input_path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(".input.yaml", "");
        let input: Pod = serde_yaml_ng::from_str(&std::fs::read_to_string(&input_path).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let (rendered, mutated) = render(&input);
        let expected_path = golden_dir().join(format!("{name}.expected.yaml"));
        if update {
            std::fs::write(&expected_path, &rendered).unwrap();
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != rendered {
            mismatches.push(format!(
                "{name}:\n--- expected\n{expected}\n--- got\n{rendered}"
            ));
            continue;
        }
        if let Some(after) = mutated {
            let (again, _) = render(&after);
            assert_eq!(
                again, rendered,
                "{name}: mutating the result again changed it"
            );
            check_patch(&input, &after);
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// `--agent-trust-refresh-interval` reaches the agent as its own variable, in a form the
/// agent's flag parser reads back; unset, the agent keeps its default (no variable).
#[test]
fn the_trust_refresh_interval_is_passed_only_when_set() {
    let pod: Pod = serde_yaml_ng::from_str(
        &std::fs::read_to_string(golden_dir().join("with-volumes.input.yaml")).unwrap(),
    )
    .unwrap();
    let agent_env = |cfg: &tlsmint_injector::config::Injection| {
        let Ok(Outcome::Mutated(after)) = mutate(&pod, cfg) else {
            panic!("not mutated")
        };
        let spec = after.spec.unwrap();
        let agent = spec
            .init_containers
            .unwrap()
            .into_iter()
            .find(|c| c.name == "tlsmint-agent")
            .unwrap();
        agent.env.unwrap()
    };
    let name = "TLSMINT_TRUST_REFRESH_INTERVAL";
    assert!(!agent_env(&injection()).iter().any(|e| e.name == name));
    let mut cfg = injection();
    cfg.agent_trust_refresh_interval = Some("90s".parse().unwrap());
    let value = agent_env(&cfg)
        .into_iter()
        .find(|e| e.name == name)
        .and_then(|e| e.value)
        .unwrap();
    let parsed: tlsmint_api::Duration = value.parse().unwrap();
    assert_eq!(parsed.as_std().as_secs(), 90, "{value}");
}
