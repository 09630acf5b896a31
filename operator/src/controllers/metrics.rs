//! The operator's Prometheus metrics (prefix `tlsmint_operator_`): reconciles and failures
//! by kind, certificates issued by role, leadership, and two scrape-time gauges read from
//! the watch caches: seconds until each CertificateRequest's certificate expires, and each
//! mount's CA notAfter.
//!
//! Owns metric names and label sets. Labels are bounded: `kind` (3 values), `category`
//! (error variants), `role` and `mount` (admin-created objects), and `namespace`/`name` of
//! live CertificateRequests only (series vanish with the object, since they are computed
//! from the cache at scrape time). It must never label with error text or request data.

use std::sync::{Arc, Mutex, PoisonError};

use kube::ResourceExt;
use kube::runtime::reflector::Store;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tlsmint_api::v1alpha1::{CertificateRequest, PkiMount};

/// `kind` label: which controller.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// `PkiMount`, `IssuerRole` or `CertificateRequest`.
    pub kind: &'static str,
}

/// `kind` and `category` labels of a failed reconcile.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// Which controller.
    pub kind: &'static str,
    /// The error variant, e.g. `get_secret` (see `Error::category`).
    pub category: &'static str,
}

/// `role` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoleLabels {
    /// The IssuerRole's name.
    pub role: String,
}

/// `role` and `result` labels of a PodCertificateRequest decision.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PcrLabels {
    /// The IssuerRole (signer `pki.tlsmint.io/<role>`).
    pub role: String,
    /// `issued`, `denied` or `pending` (left for a retry).
    pub result: &'static str,
}

/// Counters and gauges the controllers update.
#[derive(Debug)]
pub struct Metrics {
    reconciles: Family<KindLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    duration: Family<KindLabels, Histogram>,
    issued: Family<RoleLabels, Counter>,
    denied: Family<RoleLabels, Counter>,
    leader: Gauge,
    pcr: Family<PcrLabels, Counter>,
    pcr_seconds: Histogram,
    /// Pods annotated `tlsmint.io/inject: "true"` that exist without having been injected
    /// (set by `missed_injection` on the leader).
    pub not_injected: Gauge,
    /// The CertificateRequest cache of the current leadership term, read at scrape time.
    pub requests: StoreSlot<CertificateRequest>,
    /// The PkiMount cache of the loader, read at scrape time.
    pub mounts: StoreSlot<PkiMount>,
}

impl Metrics {
    /// Registers every metric in `registry` (under `tlsmint_operator_`).
    pub fn register(registry: &mut Registry) -> Arc<Self> {
        let metrics = Arc::new(Metrics {
            reconciles: Family::default(),
            failures: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new([0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0])
            }),
            issued: Family::default(),
            denied: Family::default(),
            leader: Gauge::default(),
            pcr: Family::default(),
            pcr_seconds: Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0]),
            not_injected: Gauge::default(),
            requests: StoreSlot::default(),
            mounts: StoreSlot::default(),
        });
        let sub = registry.sub_registry_with_prefix("tlsmint_operator");
        sub.register(
            "reconciles",
            "Reconciles run, by kind",
            metrics.reconciles.clone(),
        );
        sub.register(
            "reconcile_failures",
            "Reconciles that failed, by kind and error category",
            metrics.failures.clone(),
        );
        sub.register(
            "reconcile_duration_seconds",
            "Time spent in one reconcile, by kind",
            metrics.duration.clone(),
        );
        sub.register(
            "certificates_issued",
            "Certificates issued or renewed for CertificateRequests, by role",
            metrics.issued.clone(),
        );
        sub.register(
            "certificates_denied",
            "CertificateRequests denied by their role, by role",
            metrics.denied.clone(),
        );
        sub.register(
            "pcr_decisions",
            "PodCertificateRequests handled by the signer, by role and result (issued, denied, pending)",
            metrics.pcr.clone(),
        );
        sub.register(
            "pcr_sign_seconds",
            "Time to sign one PodCertificateRequest and write its status",
            metrics.pcr_seconds.clone(),
        );
        sub.register(
            "leader",
            "1 while this replica holds the leader lease and runs the controllers",
            metrics.leader.clone(),
        );
        sub.register(
            "pods_not_injected",
            "Pods annotated tlsmint.io/inject: \"true\" that were admitted without the injector (leader only)",
            metrics.not_injected.clone(),
        );
        sub.register_collector(Box::new(CacheGauges(metrics.clone())));
        metrics
    }

    /// Counts one reconcile of `kind` that took `seconds`.
    pub fn reconciled(&self, kind: &'static str, seconds: f64) {
        let labels = KindLabels { kind };
        self.reconciles.get_or_create(&labels).inc();
        self.duration.get_or_create(&labels).observe(seconds);
    }

    /// Counts one failed reconcile of `kind`.
    pub fn failed(&self, kind: &'static str, category: &'static str) {
        self.failures
            .get_or_create(&FailureLabels { kind, category })
            .inc();
    }

    /// Counts one certificate issued through `role`.
    pub fn issued(&self, role: &str) {
        self.issued
            .get_or_create(&RoleLabels { role: role.into() })
            .inc();
    }

    /// Counts one denial by `role`.
    pub fn denied(&self, role: &str) {
        self.denied
            .get_or_create(&RoleLabels { role: role.into() })
            .inc();
    }

    /// Counts one PodCertificateRequest decision (`issued`, `denied`, `pending`).
    pub fn pcr(&self, role: &str, result: &'static str) {
        self.pcr
            .get_or_create(&PcrLabels {
                role: role.into(),
                result,
            })
            .inc();
    }

    /// Records the time one PodCertificateRequest took to sign and write.
    pub fn pcr_seconds(&self, seconds: f64) {
        self.pcr_seconds.observe(seconds);
    }

    /// Records whether this replica leads.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }
}

/// A watch cache that may come and go (the CertificateRequest cache exists only while
/// this replica leads).
#[derive(Debug)]
pub struct StoreSlot<K: kube::Resource<DynamicType = ()> + 'static>(Mutex<Option<Store<K>>>);

impl<K: kube::Resource<DynamicType = ()> + 'static> Default for StoreSlot<K> {
    fn default() -> Self {
        StoreSlot(Mutex::new(None))
    }
}

impl<K: kube::Resource<DynamicType = ()> + Clone + 'static> StoreSlot<K> {
    /// Puts (or clears) the cache.
    pub fn set(&self, store: Option<Store<K>>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = store;
    }

    fn snapshot(&self) -> Vec<Arc<K>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(Store::state)
            .unwrap_or_default()
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    namespace: String,
    name: String,
    role: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MountLabels {
    mount: String,
}

/// Gauges computed at scrape time from the watch caches.
#[derive(Debug)]
struct CacheGauges(Arc<Metrics>);

impl Collector for CacheGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let requests = self.0.requests.snapshot();
        let expiring: Vec<_> = requests
            .iter()
            .filter_map(|cr| {
                let not_after = cr.status.as_ref()?.not_after.as_ref()?.0.as_second();
                Some((
                    RequestLabels {
                        namespace: cr.namespace().unwrap_or_default(),
                        name: cr.name_any(),
                        role: cr.spec.role_ref.name.clone(),
                    },
                    not_after - now,
                ))
            })
            .collect();
        let gauge = ConstGauge::new(0i64);
        let mut family = encoder.encode_descriptor(
            "certificate_expiry_seconds",
            "Seconds until the certificate of each CertificateRequest expires (negative once expired)",
            None,
            gauge.metric_type(),
        )?;
        for (labels, seconds) in &expiring {
            ConstGauge::new(*seconds).encode(family.encode_family(labels)?)?;
        }
        let mounts = self.0.mounts.snapshot();
        let mut family = encoder.encode_descriptor(
            "ca_not_after_timestamp_seconds",
            "notAfter of each PkiMount's CA certificate, as a Unix timestamp",
            None,
            gauge.metric_type(),
        )?;
        for mount in &mounts {
            let Some(not_after) = mount.status.as_ref().and_then(|s| s.not_after.as_ref()) else {
                continue;
            };
            let labels = MountLabels {
                mount: mount.name_any(),
            };
            ConstGauge::new(not_after.0.as_second()).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_exposed_with_bounded_labels() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        metrics.reconciled("CertificateRequest", 0.02);
        metrics.failed("CertificateRequest", "get_secret");
        metrics.issued("web");
        metrics.set_leader(true);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for expected in [
            "tlsmint_operator_reconciles_total{kind=\"CertificateRequest\"} 1",
            "tlsmint_operator_reconcile_failures_total{kind=\"CertificateRequest\",category=\"get_secret\"} 1",
            "tlsmint_operator_certificates_issued_total{role=\"web\"} 1",
            "tlsmint_operator_leader 1",
            "# TYPE tlsmint_operator_certificate_expiry_seconds gauge",
            "# TYPE tlsmint_operator_ca_not_after_timestamp_seconds gauge",
        ] {
            assert!(text.contains(expected), "missing {expected} in\n{text}");
        }
    }
}
