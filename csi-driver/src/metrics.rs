//! The driver's Prometheus metrics (prefix `tlsmint_csi_`): volumes managed, issuances by
//! kind and result, first-publish latency, volumes whose renewal is failing, and the
//! earliest certificate expiry on the node.
//!
//! Owns metric names and label sets. Labels are bounded: `kind` (publish, renewal) and
//! `result` (a fixed list); never a volume id, a pod name or error text.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use time::OffsetDateTime;

/// `kind` and `result` of an issuance.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IssuanceLabels {
    /// `publish` (first publish, or after a reboot) or `renewal`.
    pub kind: &'static str,
    /// `ok`, `denied`, `invalid`, `unauthenticated`, `unavailable`, `no_token` or `error`.
    pub result: &'static str,
}

/// The driver's metrics.
#[derive(Debug)]
pub struct Metrics {
    volumes: Gauge,
    issuances: Family<IssuanceLabels, Counter>,
    publish_seconds: Histogram,
    failing: Gauge,
    earliest: Gauge,
    not_after: Mutex<HashMap<String, i64>>,
}

impl Metrics {
    /// Registers every metric in `registry` under `tlsmint_csi_`.
    pub fn register(registry: &mut Registry) -> Arc<Self> {
        let metrics = Arc::new(Metrics {
            volumes: Gauge::default(),
            issuances: Family::default(),
            publish_seconds: Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0]),
            failing: Gauge::default(),
            earliest: Gauge::default(),
            not_after: Mutex::new(HashMap::new()),
        });
        let sub = registry.sub_registry_with_prefix("tlsmint_csi");
        sub.register(
            "volumes",
            "Volumes the driver manages",
            metrics.volumes.clone(),
        );
        sub.register(
            "issuances",
            "Certificates requested, by kind (publish, renewal) and result",
            metrics.issuances.clone(),
        );
        sub.register(
            "publish_duration_seconds",
            "Time of a first NodePublishVolume: key, Sign, mount and files",
            metrics.publish_seconds.clone(),
        );
        sub.register(
            "renewals_failing",
            "Volumes whose last renewal attempt failed",
            metrics.failing.clone(),
        );
        sub.register(
            "earliest_not_after_timestamp_seconds",
            "Unix time of the earliest certificate expiry among the volumes (0: none)",
            metrics.earliest.clone(),
        );
        metrics
    }

    /// One issuance attempt.
    pub fn issuance(&self, kind: &'static str, result: &'static str) {
        self.issuances
            .get_or_create(&IssuanceLabels { kind, result })
            .inc();
    }

    /// Duration of a successful first publish.
    pub fn publish_took(&self, seconds: f64) {
        self.publish_seconds.observe(seconds);
    }

    /// Marks a volume as failing renewal (or not).
    pub fn failing(&self, now_failing: bool, was_failing: bool) {
        match (was_failing, now_failing) {
            (false, true) => {
                self.failing.inc();
            }
            (true, false) => {
                self.failing.dec();
            }
            _ => {}
        }
    }

    /// Records (or with `None` forgets) the expiry of a volume's certificate.
    pub fn expiry(&self, volume: &str, not_after: Option<OffsetDateTime>) {
        let mut map = self
            .not_after
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match not_after {
            Some(at) => {
                map.insert(volume.to_owned(), at.unix_timestamp());
            }
            None => {
                map.remove(volume);
            }
        }
        self.volumes
            .set(i64::try_from(map.len()).unwrap_or(i64::MAX));
        self.earliest.set(map.values().copied().min().unwrap_or(0));
    }
}
