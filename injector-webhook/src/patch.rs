//! The JSON Patch the API server applies: the difference between the pod as received and
//! the pod to admit, both as the typed Pod serializes them (fields this Kubernetes version
//! does not know are absent from both sides, so the patch never touches them).
//!
//! Owns the diff. Must not: build patches by hand.

use k8s_openapi::api::core::v1::Pod;

/// Why a patch could not be made.
#[derive(Debug, thiserror::Error)]
#[error("serializing the pod failed: {0}")]
pub struct PatchError(#[from] serde_json::Error);

/// The RFC 6902 operations that turn `before` into `after`.
pub fn diff(before: &Pod, after: &Pod) -> Result<json_patch::Patch, PatchError> {
    let before = serde_json::to_value(before)?;
    let after = serde_json::to_value(after)?;
    Ok(json_patch::diff(&before, &after))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn applying_the_diff_gives_the_mutated_pod() {
        let before: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "annotations": {"a": "b"}},
            "spec": {"containers": [{"name": "app", "image": "busybox"}]}
        }))
        .unwrap();
        let mut after = before.clone();
        after
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert("tlsmint.io/status".into(), "injected".into());
        let patch = diff(&before, &after).unwrap();
        assert!(!patch.0.is_empty());
        let mut doc = serde_json::to_value(&before).unwrap();
        json_patch::patch(&mut doc, &patch).unwrap();
        assert_eq!(doc, serde_json::to_value(&after).unwrap());
        assert!(diff(&after, &after).unwrap().0.is_empty());
    }
}
