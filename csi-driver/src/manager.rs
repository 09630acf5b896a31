//! The volumes: first publish (mount, issue, write), republish (cheap, idempotent), unpublish,
//! renewal through the one [`Schedule`], the periodic trust check that keeps CA files
//! current, and resuming after a restart or a reboot.
//!
//! Each volume has its own async lock, so publishes of different volumes run at once and
//! two calls for the same volume never interleave. Files are written with the atomic writer
//! into the volume's tmpfs; the old generation stays readable until the new one is complete.
//!
//! Owns the volume life cycle. It must not speak gRPC (the node adapter maps its errors to
//! status codes), and never logs tokens, keys or the attribute map.

mod publish;
mod renew;
mod trust;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use time::OffsetDateTime;
use tlsmint_api::csi::{self, AttributeError, PodInfo, VolumeAttributes};
use tlsmint_client::Token;
use tlsmint_client::files::AtomicDir;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::events::{EventSink, Trouble};
use crate::issue::{IssueError, Issuer};
use crate::metrics::Metrics;
use crate::mount::{MountError, Mounter};
use crate::paths::PathError;
use crate::schedule::Schedule;
use crate::store::{PodRecord, Store, StoreError, VolumeRecord};

pub use publish::PublishRequest;
pub use trust::TrustPass;

/// Why a publish or unpublish failed.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// Not an ephemeral inline volume.
    #[error(
        "tlsmint volumes are ephemeral inline volumes only (csi.storage.k8s.io/ephemeral must be \"true\"; use a csi volume in the pod spec, not a PersistentVolume)"
    )]
    NotEphemeral,
    /// A bad volume id.
    #[error("volume id: {0}")]
    VolumeId(#[source] StoreError),
    /// A bad target path.
    #[error(transparent)]
    Path(#[from] PathError),
    /// A bad attribute (the message names it).
    #[error(transparent)]
    Attribute(#[from] AttributeError),
    /// A volume_mount_group that is not a group id.
    #[error("volume_mount_group {value:?} is not a group id")]
    MountGroup {
        /// The value kubelet passed.
        value: String,
    },
    /// The target folder could not be prepared or removed.
    #[error("{op} {path} failed: {reason}")]
    Target {
        /// The step.
        op: &'static str,
        /// The folder.
        path: PathBuf,
        /// What the kernel said.
        reason: String,
    },
    /// Mounting or unmounting failed.
    #[error(transparent)]
    Mount(#[from] MountError),
    /// The issuance failed (a denial carries the operator's message).
    #[error(transparent)]
    Issue(#[from] IssueError),
    /// Writing the files failed.
    #[error("writing the files of volume {volume} failed: {source}")]
    Files {
        /// The volume id.
        volume: String,
        /// The writer's error.
        #[source]
        source: tlsmint_client::files::WriteError,
    },
    /// Saving or removing the metadata failed.
    #[error(transparent)]
    Store(StoreError),
    /// A republish found trouble it could not repair now. Never final: kubelet retries,
    /// and the volume keeps serving its current files.
    #[error("republish of volume {volume} could not be completed, will retry: {reason}")]
    Retry {
        /// The volume id.
        volume: String,
        /// What went wrong.
        reason: String,
    },
}

/// A token of the pod (audience `tlsmint`) and when it expires. `Debug` hides the token.
#[derive(Clone, Debug)]
pub struct PodToken {
    /// The token.
    pub token: Token,
    /// Its expiry.
    pub expires: OffsetDateTime,
}

/// One volume's state.
#[derive(Debug)]
struct Volume {
    record: VolumeRecord,
    attrs: VolumeAttributes,
    token: Option<PodToken>,
    /// The files in the tmpfs are the record's certificate (false after a reboot).
    ready: bool,
    failures: u32,
    /// The trouble last reported in a pod Event (one Event per change, not per retry).
    trouble: Option<Trouble>,
}

type Slot = Arc<tokio::sync::Mutex<Option<Volume>>>;

/// What the manager needs from the process.
#[derive(Debug, Clone)]
pub struct Config {
    /// The kubelet's pods folder (`<kubelet-dir>/pods`).
    pub pods_dir: PathBuf,
    /// Where pod Events about overdue renewals and expired certificates go.
    pub events: Arc<dyn EventSink>,
}

/// Every volume of the node.
#[derive(Clone, Debug)]
pub struct Manager {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    volumes: Mutex<HashMap<String, Slot>>,
    store: Store,
    mounter: Arc<dyn Mounter>,
    issuer: Issuer,
    clock: Clock,
    metrics: Arc<Metrics>,
    schedule: Arc<Schedule>,
}

impl Manager {
    /// A manager with no volumes yet (call [`Manager::resume`] and [`Manager::run`]).
    pub fn new(
        config: Config,
        store: Store,
        mounter: Arc<dyn Mounter>,
        issuer: Issuer,
        clock: Clock,
        metrics: Arc<Metrics>,
    ) -> Self {
        Manager {
            inner: Arc::new(Inner {
                config,
                volumes: Mutex::new(HashMap::new()),
                store,
                mounter,
                issuer,
                clock,
                metrics,
                schedule: Schedule::new(),
            }),
        }
    }

    /// Runs the renewal schedule until `cancel`.
    pub fn run(&self, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
        let manager = self.clone();
        let schedule = self.inner.schedule.clone();
        let clock = self.inner.clock;
        tokio::spawn(schedule.run(clock, cancel, move |id| {
            let manager = manager.clone();
            tokio::spawn(async move { manager.renew(&id).await });
        }))
    }

    /// Loads the metadata of a previous run: volumes still mounted are renewed on schedule;
    /// volumes whose tmpfs is gone (a reboot) get a new key and certificate at their next
    /// publish; volumes whose pod folder is gone are forgotten. Returns how many resumed.
    pub fn resume(&self) -> Result<usize, StoreError> {
        let (records, errors) = self.inner.store.load_all()?;
        for error in errors {
            tracing::warn!(error = %error, "skipping unreadable volume metadata");
        }
        let mut resumed = 0;
        for record in records {
            match self.resume_one(record) {
                Ok(true) => resumed += 1,
                Ok(false) => {}
                Err(error) => tracing::warn!(error = %error, "could not resume a volume"),
            }
        }
        Ok(resumed)
    }

    fn resume_one(&self, record: VolumeRecord) -> Result<bool, VolumeError> {
        let id = record.volume_id.clone();
        let target = record.target_path.clone();
        let mounted = self.inner.mounter.is_our_tmpfs(&target)?;
        let pod_dir_exists =
            pod_dir(&self.inner.config.pods_dir, &target).is_some_and(|d| d.exists());
        if !pod_dir_exists {
            if mounted {
                self.inner.mounter.unmount(&target)?;
            }
            self.inner.store.remove(&id).map_err(VolumeError::Store)?;
            tracing::info!(volume.id = %id, "forgot a volume whose pod is gone");
            return Ok(false);
        }
        let attrs = attributes_of(&record)?;
        let ready = mounted && AtomicDir::new(&target).current().is_some();
        if ready {
            self.schedule_renewal(&id, &record, &attrs);
            self.inner
                .metrics
                .expiry(&id, Some(record.certificate.not_after));
        }
        tracing::info!(volume.id = %id, x509.serial = %record.certificate.serial, mounted = ready,
            "resumed a volume from metadata");
        let volume = Volume {
            record,
            attrs,
            token: None,
            ready,
            failures: 0,
            trouble: None,
        };
        self.slot(&id)
            .try_lock()
            .map(|mut g| *g = Some(volume))
            .ok();
        Ok(ready)
    }

    /// Number of volumes known.
    pub fn len(&self) -> usize {
        self.lock_map().len()
    }

    /// Whether no volume is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// When `volume` is due for renewal, if scheduled.
    pub fn renewal_due(&self, volume: &str) -> Option<OffsetDateTime> {
        self.inner.schedule.due(volume)
    }

    fn lock_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.inner
            .volumes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn slot(&self, id: &str) -> Slot {
        self.lock_map().entry(id.to_owned()).or_default().clone()
    }

    fn existing_slot(&self, id: &str) -> Option<Slot> {
        self.lock_map().get(id).cloned()
    }

    fn forget(&self, id: &str) {
        self.lock_map().remove(id);
        self.inner.schedule.remove(id);
        self.inner.metrics.expiry(id, None);
    }

    fn schedule_renewal(&self, id: &str, record: &VolumeRecord, attrs: &VolumeAttributes) {
        let cert = &record.certificate;
        let seed = tlsmint_client::renewal::seed_of(cert.serial.as_bytes());
        let at = tlsmint_client::renewal::renewal_time(
            cert.not_before,
            cert.not_after,
            attrs.renew_at.get(),
            seed,
        );
        self.inner.schedule.set(id, at);
    }
}

/// The pod's folder (`<pods>/<uid>`) of a target below it.
fn pod_dir(pods: &Path, target: &Path) -> Option<PathBuf> {
    let rest = target.strip_prefix(pods).ok()?;
    let uid = rest.components().next()?;
    Some(pods.join(uid))
}

/// The volume's own attributes from a volume context (no kubelet keys, no tokens).
fn own_attributes<'a>(
    context: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> BTreeMap<String, String> {
    context
        .into_iter()
        .filter(|(k, _)| k.starts_with(csi::PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn pod_record(pod: &PodInfo) -> PodRecord {
    PodRecord {
        name: pod.name.clone(),
        namespace: pod.namespace.clone(),
        uid: pod.uid.clone(),
        service_account_name: pod.service_account_name.clone(),
    }
}

/// The resolved attributes of a stored record.
fn attributes_of(record: &VolumeRecord) -> Result<VolumeAttributes, VolumeError> {
    let pod = PodInfo {
        name: record.pod.name.clone(),
        namespace: record.pod.namespace.clone(),
        uid: record.pod.uid.clone(),
        service_account_name: record.pod.service_account_name.clone(),
    };
    let mut attrs = VolumeAttributes::parse(&record.attributes)?.resolve(&pod)?;
    if attrs.fs_group.is_none() {
        attrs.fs_group = record.volume_mount_group;
    }
    Ok(attrs)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn pod_dir_is_the_first_component_below_pods() {
        let pods = Path::new("/var/lib/kubelet/pods");
        let target = Path::new("/var/lib/kubelet/pods/u1/volumes/kubernetes.io~csi/v/mount");
        assert_eq!(
            pod_dir(pods, target).unwrap(),
            Path::new("/var/lib/kubelet/pods/u1")
        );
        assert!(pod_dir(pods, Path::new("/etc")).is_none());
    }
}
