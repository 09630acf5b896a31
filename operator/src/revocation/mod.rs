//! Revocation: which serials of each mount are revoked, the mount's CRL
//! (rebuilt in batches after revocations, before it expires, and when the CA
//! changes), and the status lookups behind OCSP.
//!
//! State lives in a [`RevocationStore`] shared by every replica (a ConfigMap
//! per mount in cluster mode, memory in dev mode). Each replica keeps a cached
//! view, updated at once for its own revocations and refreshed from the store
//! every `refresh_interval` for the others'. Entries leave the store and the
//! CRL once their certificate has expired (`keep_until`), so a mount of
//! short-lived certificates keeps a tiny CRL.
//!
//! Owns: revocation records, CRL numbers and published CRLs. Must not:
//! decide who may revoke (the API does), or drop an entry before its
//! `keep_until`.

pub mod kube;
mod sink;
pub mod store;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tlsmint_ca::{CertificateAuthority, Crl, RevokedEntry, Serial};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::registry::{MountEntry, Registry};
pub use store::{MemoryStore, RevocationStore, StoreError, StoredEntry, StoredMount};

/// Timing of CRL work.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Wait after a revocation before rebuilding, so a burst makes one CRL.
    pub batch_window: Duration,
    /// How often each mount's state is re-read from the store (other replicas' revocations).
    pub refresh_interval: Duration,
    /// How long an entry stays on the CRL after its certificate expired
    /// (used where only the notAfter is known).
    pub grace: Duration,
    /// Most live entries one mount holds for API revocations; past it an API
    /// revocation is refused ([`StoreError::Full`]). CertificateRequest
    /// revocations may use a reserve of a quarter more, so a flood through
    /// the API cannot block them.
    pub max_entries: usize,
}

/// Default of [`Settings::max_entries`]: about 110 bytes each in the
/// ConfigMap, so 5,000 live entries (plus the reserve) stay well under 1 MiB.
pub const DEFAULT_MAX_ENTRIES: usize = 5_000;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            batch_window: Duration::from_secs(1),
            refresh_interval: Duration::from_secs(30),
            grace: Duration::from_secs(3600),
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}

/// Who asks for a revocation: decides how much of the list it may fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The issuance APIs (callers on the network): up to `max_entries`.
    Api,
    /// A CertificateRequest's `revoked: true` (the cluster's own objects):
    /// up to `max_entries` plus a quarter.
    Request,
}

/// A CRL as served, with the CA that signed it.
#[derive(Debug)]
pub struct PublishedCrl {
    /// The signed CRL.
    pub crl: Crl,
    ca_der: Vec<u8>,
}

/// Revoking or building a CRL failed.
#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The engine could not sign the CRL.
    #[error("signing the CRL of mount {mount} failed: {source}")]
    Sign {
        /// Mount name.
        mount: String,
        /// What the engine said.
        source: Box<tlsmint_ca::Error>,
    },
}

#[derive(Debug, Default, Clone)]
struct View {
    revoked: HashMap<Serial, (OffsetDateTime, i64)>,
    loaded: Option<Instant>,
}

/// The revocation state of every mount, as one replica sees it.
pub struct Revocations {
    store: Arc<dyn RevocationStore>,
    settings: Settings,
    views: RwLock<HashMap<String, View>>,
    crls: RwLock<HashMap<String, Arc<PublishedCrl>>>,
    dirty: Mutex<HashSet<String>>,
    wake: Notify,
    build: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocations")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Revocations {
    /// Revocations kept in `store`.
    pub fn new(store: Arc<dyn RevocationStore>, settings: Settings) -> Arc<Self> {
        Arc::new(Revocations {
            store,
            settings,
            views: RwLock::new(HashMap::new()),
            crls: RwLock::new(HashMap::new()),
            dirty: Mutex::new(HashSet::new()),
            wake: Notify::new(),
            build: tokio::sync::Mutex::new(()),
        })
    }

    /// Revokes `serial` under `mount`, keeping it on the CRL until
    /// `keep_until`. Idempotent: revoking again returns the first revocation
    /// time. Expired entries are pruned first; when the live entries reach
    /// the limit of `origin`, nothing is written and [`StoreError::Full`]
    /// says so. The CRL follows within `batch_window`.
    pub async fn revoke(
        &self,
        mount: &str,
        serial: &Serial,
        keep_until: OffsetDateTime,
        now: OffsetDateTime,
        origin: Origin,
    ) -> Result<OffsetDateTime, RevocationError> {
        let hex = serial.to_colon_hex();
        let entry = StoredEntry {
            serial: hex.clone(),
            revoked_at: now.unix_timestamp(),
            keep_until: keep_until.unix_timestamp(),
        };
        let max = self.settings.max_entries.max(1);
        let limit = match origin {
            Origin::Api => max,
            Origin::Request => max.saturating_add(max / 4),
        };
        let now_secs = now.unix_timestamp();
        let name = mount.to_owned();
        let stored = self
            .store
            .update(
                mount,
                Box::new(move |doc| {
                    if doc.revoked.iter().any(|e| e.serial == entry.serial) {
                        return Ok(false);
                    }
                    doc.revoked.retain(|e| e.keep_until > now_secs);
                    if doc.revoked.len() >= limit {
                        return Err(StoreError::Full {
                            mount: name.clone(),
                            reason: format!(
                                "{} live entries, the limit is {limit}",
                                doc.revoked.len()
                            ),
                        });
                    }
                    doc.revoked.push(entry.clone());
                    Ok(true)
                }),
            )
            .await?;
        let revoked_at = stored
            .revoked
            .iter()
            .find(|e| e.serial == hex)
            .map(|e| unix(e.revoked_at))
            .unwrap_or(now);
        self.set_view(mount, &stored);
        self.dirty
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(mount.to_owned());
        self.wake.notify_one();
        Ok(revoked_at)
    }

    /// When `serial` of `mount` was revoked, or `None` if it is not revoked.
    pub async fn status(
        &self,
        mount: &str,
        serial: &Serial,
    ) -> Result<Option<OffsetDateTime>, RevocationError> {
        if let Some(view) = self.view(mount)
            && view.loaded.is_some()
        {
            return Ok(view.revoked.get(serial).map(|(at, _)| *at));
        }
        let stored = self.store.load(mount).await?;
        self.set_view(mount, &stored);
        Ok(self
            .view(mount)
            .and_then(|v| v.revoked.get(serial).map(|(at, _)| *at)))
    }

    /// Every serial of `mount` revoked and not yet pruned.
    pub async fn revoked(&self, mount: &str) -> Result<Vec<Serial>, RevocationError> {
        let loaded = self
            .view(mount)
            .filter(|view| view.loaded.is_some())
            .map(|view| view.revoked.keys().cloned().collect());
        if let Some(serials) = loaded {
            return Ok(serials);
        }
        let stored = self.store.load(mount).await?;
        self.set_view(mount, &stored);
        Ok(self
            .view(mount)
            .map(|v| v.revoked.keys().cloned().collect())
            .unwrap_or_default())
    }

    /// The mount's current CRL, built now if there is none yet, the CA
    /// changed, or it is past half of its validity.
    pub async fn crl(
        &self,
        mount: &MountEntry,
        ca: &CertificateAuthority,
        now: OffsetDateTime,
    ) -> Result<Arc<PublishedCrl>, RevocationError> {
        if let Some(published) = self.published(&mount.name)
            && fresh(&published, ca, now)
        {
            return Ok(published);
        }
        self.rebuild(mount, ca, now).await
    }

    fn published(&self, mount: &str) -> Option<Arc<PublishedCrl>> {
        self.crls
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(mount)
            .cloned()
    }

    /// Rebuilds the mount's CRL from the store: prunes expired entries, takes
    /// the next CRL number (persisted, so numbers only grow across restarts
    /// and replicas), signs and publishes.
    pub async fn rebuild(
        &self,
        mount: &MountEntry,
        ca: &CertificateAuthority,
        now: OffsetDateTime,
    ) -> Result<Arc<PublishedCrl>, RevocationError> {
        let _one_at_a_time = self.build.lock().await;
        let now_secs = now.unix_timestamp();
        let stored = self
            .store
            .update(
                &mount.name,
                Box::new(move |doc| {
                    doc.revoked.retain(|e| e.keep_until > now_secs);
                    let next = u64::try_from(now_secs).unwrap_or(0);
                    doc.crl_number = doc.crl_number.saturating_add(1).max(next);
                    Ok(true)
                }),
            )
            .await?;
        self.set_view(&mount.name, &stored);
        let entries: Vec<RevokedEntry> = stored
            .revoked
            .iter()
            .filter_map(|e| {
                Some(RevokedEntry {
                    serial: Serial::parse(&e.serial)?,
                    revoked_at: unix(e.revoked_at),
                })
            })
            .collect();
        let crl = ca
            .crl(&entries, stored.crl_number, now, mount.crl_expiry)
            .map_err(|source| RevocationError::Sign {
                mount: mount.name.clone(),
                source: Box::new(source),
            })?;
        tracing::info!(
            mount = %mount.name,
            crl.number = crl.number,
            crl.entries = entries.len(),
            crl.next_update = crl.next_update.unix_timestamp(),
            "CRL built"
        );
        let published = Arc::new(PublishedCrl {
            crl,
            ca_der: ca.certificate_der().to_vec(),
        });
        self.crls
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(mount.name.clone(), published.clone());
        Ok(published)
    }

    fn view(&self, mount: &str) -> Option<View> {
        self.views
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(mount)
            .cloned()
    }

    /// Replaces the cached view; returns whether the set of serials changed.
    fn set_view(&self, mount: &str, stored: &StoredMount) -> bool {
        let revoked: HashMap<Serial, (OffsetDateTime, i64)> = stored
            .revoked
            .iter()
            .filter_map(|e| {
                Some((
                    Serial::parse(&e.serial)?,
                    (unix(e.revoked_at), e.keep_until),
                ))
            })
            .collect();
        let mut views = self.views.write().unwrap_or_else(|e| e.into_inner());
        let old = views.insert(
            mount.to_owned(),
            View {
                revoked: revoked.clone(),
                loaded: Some(Instant::now()),
            },
        );
        old.is_none_or(|o| {
            o.revoked.len() != revoked.len() || o.revoked.keys().any(|k| !revoked.contains_key(k))
        })
    }

    /// Background work until `shutdown`: batched rebuilds after revocations,
    /// rebuilds before expiry or after a CA change (woken by the registry),
    /// and periodic refreshes from the store.
    pub async fn run(self: Arc<Self>, registry: Arc<Registry>, shutdown: CancellationToken) {
        let mut last_refresh = Instant::now();
        let mut mounts_changed = registry.changes();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                // A new or replaced mount gets its CRL right away.
                Ok(()) = mounts_changed.changed() => {}
                () = self.wake.notified() => {
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(self.settings.batch_window) => {}
                    }
                }
                () = tokio::time::sleep(self.settings.refresh_interval.min(Duration::from_secs(60))) => {}
            }
            let dirty: HashSet<String> =
                std::mem::take(&mut *self.dirty.lock().unwrap_or_else(|e| e.into_inner()));
            let refresh = last_refresh.elapsed() >= self.settings.refresh_interval;
            if refresh {
                last_refresh = Instant::now();
            }
            for mount in registry.mounts() {
                let Some(ca) = mount.ca() else { continue };
                let now = OffsetDateTime::now_utc();
                let mut needed = dirty.contains(&mount.name)
                    || self
                        .published(&mount.name)
                        .is_none_or(|p| !fresh(&p, ca, now));
                if refresh {
                    match self.store.load(&mount.name).await {
                        Ok(stored) => needed |= self.set_view(&mount.name, &stored),
                        Err(err) => {
                            tracing::warn!(mount = %mount.name, error = %err, "refreshing revocations failed")
                        }
                    }
                }
                if needed && let Err(err) = self.rebuild(&mount, ca, now).await {
                    tracing::warn!(mount = %mount.name, error = %err, "building the CRL failed; retrying later");
                    self.dirty
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(mount.name.clone());
                }
            }
        }
    }
}

fn fresh(published: &PublishedCrl, ca: &CertificateAuthority, now: OffsetDateTime) -> bool {
    let crl = &published.crl;
    let half = (crl.next_update - crl.this_update) / 2;
    published.ca_der == ca.certificate_der() && now < crl.this_update + half
}

fn unix(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
