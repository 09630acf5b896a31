//! Pod Events on trouble only: a renewal that is overdue (failing past its grace) or a
//! certificate that expired, one `events.k8s.io/v1` Event per change of state, never one
//! per retry or per issuance. These are the only Kubernetes API writes the driver makes
//! (RBAC: `events.k8s.io` `events` `create`).
//!
//! Owns the event's shape and the sink seam ([`EventSink`]): the manager decides when, a
//! sink delivers. The real sink posts with kube-rs and in-cluster config; without it (or
//! with `--events=false`) events are only logged. A note carries the error text, which
//! never holds a token or a key.

use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use time::OffsetDateTime;

/// Longest note the API server accepts (events.k8s.io/v1 `note`: 1 kB).
pub const NOTE_LIMIT: usize = 1024;

/// The pod an event is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodRef {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID.
    pub uid: String,
}

/// What is wrong with a volume's certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Trouble {
    /// Past its renewal time (and grace) and the renewal keeps failing; still valid.
    RenewalOverdue,
    /// Past notAfter: the pod is serving an expired certificate.
    Expired,
}

impl Trouble {
    /// The event's `reason`.
    pub fn reason(self) -> &'static str {
        match self {
            Trouble::RenewalOverdue => "CertificateRenewalOverdue",
            Trouble::Expired => "CertificateExpired",
        }
    }
}

/// One event about a pod's tlsmint volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodEvent {
    /// The pod.
    pub pod: PodRef,
    /// What is wrong.
    pub trouble: Trouble,
    /// Human text: the volume, the certificate's expiry, the last error.
    pub note: String,
}

/// Delivers pod events. Must not block: the real sink posts in a task of its own.
pub trait EventSink: Send + Sync + fmt::Debug {
    /// Emits `event` (best effort: a failure is logged, never retried in a loop).
    fn emit(&self, event: PodEvent);
}

/// Logs events and posts nothing (`--events=false`, or no in-cluster config).
#[derive(Debug, Default, Clone, Copy)]
pub struct LogEvents;

impl EventSink for LogEvents {
    fn emit(&self, event: PodEvent) {
        tracing::warn!(pod.namespace = %event.pod.namespace, pod.name = %event.pod.name,
            reason = event.trouble.reason(), note = %event.note, "pod event (not posted)");
    }
}

/// Why the API sink could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Not in a pod (no service-account token and API server address).
    #[error("no in-cluster config: {0}")]
    Config(#[from] kube::config::InClusterError),
    /// The client could not be built.
    #[error("building the API client failed: {0}")]
    Client(#[from] kube::Error),
}

/// Posts events to the API server with kube-rs.
#[derive(Clone)]
pub struct KubeEvents {
    client: kube::Client,
    /// `reportingInstance`: the driver on this node.
    instance: String,
}

impl fmt::Debug for KubeEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeEvents")
            .field("instance", &self.instance)
            .finish()
    }
}

impl KubeEvents {
    /// A sink from the in-cluster config (the pod's ServiceAccount), if there is one.
    pub fn in_cluster(node_name: &str) -> Result<Self, SinkError> {
        let config = kube::Config::incluster()?;
        let client = kube::Client::try_from(config)?;
        Ok(Self::with_client(client, node_name))
    }

    /// A sink over `client`, reporting as the driver on `node_name`.
    pub fn with_client(client: kube::Client, node_name: &str) -> Self {
        KubeEvents {
            client,
            instance: format!("tlsmint-csi-{node_name}"),
        }
    }
}

impl KubeEvents {
    /// Posts `event` now and waits for the answer.
    pub async fn post(&self, event: &PodEvent) -> Result<Event, kube::Error> {
        let body = to_event(event, &self.instance, OffsetDateTime::now_utc());
        let api: kube::Api<Event> =
            kube::Api::namespaced(self.client.clone(), &event.pod.namespace);
        api.create(&kube::api::PostParams::default(), &body).await
    }
}

impl EventSink for KubeEvents {
    fn emit(&self, event: PodEvent) {
        let sink = self.clone();
        tokio::spawn(async move {
            match sink.post(&event).await {
                Ok(_) => tracing::info!(pod.namespace = %event.pod.namespace,
                    pod.name = %event.pod.name, reason = event.trouble.reason(), "posted a pod event"),
                Err(error) => tracing::warn!(pod.namespace = %event.pod.namespace,
                    pod.name = %event.pod.name, reason = event.trouble.reason(), error = %error,
                    "could not post a pod event"),
            }
        });
    }
}

/// The controller name events are reported by.
pub const REPORTING_CONTROLLER: &str = "csi.tlsmint.io";

/// The `events.k8s.io/v1` Event for `event`, as `instance` reports it at `now`.
pub fn to_event(event: &PodEvent, instance: &str, now: OffsetDateTime) -> Event {
    let micro = now
        .replace_nanosecond(now.microsecond() * 1000)
        .unwrap_or(now);
    Event {
        metadata: ObjectMeta {
            // `<pod>.<unix nanos in hex>`, as client-go names events (the API server
            // refuses a generateName ending in '.').
            name: Some(format!(
                "{}.{:x}",
                truncate_plain(&event.pod.name, 200),
                now.unix_timestamp_nanos().max(0)
            )),
            namespace: Some(event.pod.namespace.clone()),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(to_jiff(micro))),
        action: Some("Renew".into()),
        reason: Some(event.trouble.reason().into()),
        note: Some(truncate(&event.note, NOTE_LIMIT)),
        type_: Some("Warning".into()),
        regarding: Some(ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(event.pod.name.clone()),
            namespace: Some(event.pod.namespace.clone()),
            uid: Some(event.pod.uid.clone()),
            ..ObjectReference::default()
        }),
        reporting_controller: Some(REPORTING_CONTROLLER.into()),
        reporting_instance: Some(truncate(instance, 128)),
        ..Event::default()
    }
}

fn to_jiff(t: OffsetDateTime) -> k8s_openapi::jiff::Timestamp {
    let nanos = t.unix_timestamp_nanos();
    k8s_openapi::jiff::Timestamp::from_nanosecond(nanos)
        .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)
}

/// `text` cut to at most `limit` bytes (an object name: ASCII), without a trailing '.' or '-'.
fn truncate_plain(text: &str, limit: usize) -> &str {
    let mut end = text.len().min(limit);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].trim_end_matches(['.', '-'])
}

/// `text` cut to at most `limit` bytes on a character boundary.
fn truncate(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut end = limit.saturating_sub(3);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// A sink that keeps what it is given (tests and the benchmark).
#[derive(Debug, Default)]
pub struct MemoryEvents {
    events: std::sync::Mutex<Vec<PodEvent>>,
}

impl MemoryEvents {
    /// A new, shared sink.
    pub fn new() -> Arc<Self> {
        Arc::new(MemoryEvents::default())
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<PodEvent> {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl EventSink for MemoryEvents {
    fn emit(&self, event: PodEvent) {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(event);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_event_regards_the_pod_and_fits_the_api() {
        let event = PodEvent {
            pod: PodRef {
                namespace: "shop".into(),
                name: "api-0".into(),
                uid: "0b1c".into(),
            },
            trouble: Trouble::Expired,
            note: "é".repeat(1000),
        };
        let now = OffsetDateTime::from_unix_timestamp_nanos(1_800_000_000_123_456_789).unwrap();
        let e = to_event(&event, "tlsmint-csi-node-1", now);
        let regarding = e.regarding.unwrap();
        assert_eq!(regarding.kind.as_deref(), Some("Pod"));
        assert_eq!(regarding.uid.as_deref(), Some("0b1c"));
        assert_eq!(regarding.namespace.as_deref(), Some("shop"));
        assert_eq!(e.metadata.namespace.as_deref(), Some("shop"));
        assert_eq!(e.metadata.name.as_deref(), Some("api-0.18fae2769b0fcd15"));
        let long = PodEvent {
            pod: PodRef {
                name: format!("{}.x", "a".repeat(199)),
                ..event.pod.clone()
            },
            ..event.clone()
        };
        let name = to_event(&long, "i", now).metadata.name.unwrap();
        assert_eq!(name, format!("{}.18fae2769b0fcd15", "a".repeat(199)));
        assert_eq!(e.reason.as_deref(), Some("CertificateExpired"));
        assert_eq!(e.type_.as_deref(), Some("Warning"));
        assert!(e.note.unwrap().len() <= NOTE_LIMIT);
        let json = serde_json::to_value(Event {
            event_time: e.event_time,
            ..Event::default()
        })
        .unwrap();
        // MicroTime: microseconds, not nanoseconds.
        assert_eq!(json["eventTime"], "2027-01-15T08:00:00.123456Z");
    }
}
