//! The missed-injection reporter (issue 10): pods annotated `tlsmint.io/inject: "true"` that
//! the injector never saw (created while its webhook was bypassed, deleted or pointed
//! elsewhere) have no `tlsmint.io/status: injected`. The leader watches pod metadata only,
//! publishes one Warning Event `NotInjected` per such pod and keeps the gauge
//! `tlsmint_operator_pods_not_injected` at the number that exist.
//!
//! Owns that report. Must not: change pods (a pod cannot be injected after its creation).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::events::EventType;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use tlsmint_api::annotations;
use tlsmint_runtime::CancellationToken;

use super::Context;

/// Reason of the Event.
pub const REASON: &str = "NotInjected";

/// Whether a pod with these annotations asked for injection and did not get it.
pub fn missed(annotations: &BTreeMap<String, String>) -> bool {
    annotations.get(annotations::INJECT).map(|v| v.trim()) == Some("true")
        && annotations.get(annotations::STATUS).map(String::as_str)
            != Some(annotations::STATUS_INJECTED)
}

/// The pods reported, by uid (only those that still exist).
#[derive(Debug, Default)]
struct Missed {
    uids: HashSet<String>,
}

impl Missed {
    /// Records `pod` as it is now; true when it is newly missed (report it).
    fn observe(&mut self, pod: &PartialObjectMeta<Pod>) -> bool {
        let uid = pod.uid().unwrap_or_default();
        if missed(pod.annotations()) {
            self.uids.insert(uid)
        } else {
            self.uids.remove(&uid);
            false
        }
    }

    fn forget(&mut self, pod: &PartialObjectMeta<Pod>) {
        self.uids.remove(&pod.uid().unwrap_or_default());
    }
}

/// Watches pods until `stop` (the leader's term ends).
pub async fn run(ctx: Arc<Context>, stop: CancellationToken) {
    // Metadata only: annotations are all it reads, and pods are many.
    let api: Api<PartialObjectMeta<Pod>> = Api::all(ctx.client.clone());
    let mut events = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .boxed();
    let mut state = Missed::default();
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => break,
            event = events.next() => event,
        };
        match event {
            Some(Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod))) => {
                if state.observe(&pod) {
                    report(&ctx, &pod).await;
                }
            }
            Some(Ok(watcher::Event::Delete(pod))) => state.forget(&pod),
            Some(Ok(watcher::Event::Init | watcher::Event::InitDone)) => {}
            Some(Err(error)) => {
                tracing::debug!(error = &error as &dyn std::error::Error, "pod watch");
            }
            None => break,
        }
        ctx.metrics
            .not_injected
            .set(i64::try_from(state.uids.len()).unwrap_or(i64::MAX));
    }
    ctx.metrics.not_injected.set(0);
}

async fn report(ctx: &Context, pod: &PartialObjectMeta<Pod>) {
    let namespace = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    tracing::warn!(k8s.namespace = %namespace, k8s.name = %name, "pod asked for a tlsmint certificate but was not injected");
    let object = ObjectReference {
        api_version: Some(Pod::api_version(&()).into_owned()),
        kind: Some(Pod::kind(&()).into_owned()),
        namespace: Some(namespace),
        name: Some(name),
        uid: pod.uid(),
        ..ObjectReference::default()
    };
    ctx.publish(
        object,
        EventType::Warning,
        REASON,
        format!(
            "the pod has {}: \"true\" but was admitted without the tlsmint injector (its webhook \
             was bypassed or not installed), so it has no tlsmint certificate; recreate it once \
             the injector is running",
            annotations::INJECT
        ),
        "Admit",
    )
    .await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn reports_only_annotated_pods_without_the_status() {
        assert!(missed(&ann(&[("tlsmint.io/inject", "true")])));
        assert!(missed(&ann(&[("tlsmint.io/inject", " true ")])));
        assert!(!missed(&ann(&[
            ("tlsmint.io/inject", "true"),
            ("tlsmint.io/status", "injected")
        ])));
        assert!(!missed(&ann(&[("tlsmint.io/inject", "false")])));
        assert!(!missed(&ann(&[])));
    }

    fn pod(uid: &str, pairs: &[(&str, &str)]) -> PartialObjectMeta<Pod> {
        let mut meta = PartialObjectMeta::<Pod>::default();
        meta.metadata.uid = Some(uid.into());
        meta.metadata.annotations = Some(ann(pairs));
        meta
    }

    #[test]
    fn each_pod_is_reported_once_and_counted_while_it_exists() {
        let mut state = Missed::default();
        let bad = pod("a", &[("tlsmint.io/inject", "true")]);
        assert!(state.observe(&bad));
        assert!(!state.observe(&bad), "reported once");
        assert!(!state.observe(&pod("b", &[])));
        assert_eq!(state.uids.len(), 1);
        state.forget(&bad);
        assert!(state.uids.is_empty());
    }
}
