//! The trust check: keeps every ready volume's CA file equal to the roots its role trusts
//! now, so a CA rotation (one root, then old and new, then new only) reaches the pods within
//! one interval instead of at each volume's next renewal.
//!
//! One driver-wide pass per interval: `GetCABundle` once per distinct role among the ready
//! volumes, authenticated with a still-valid token of one of that role's volumes (as a
//! renewal is). A volume whose CA file differs gets a new generation (one `..data` swap)
//! with the same key and leaf, byte for byte, and the new CA file. It never makes a key,
//! never issues, never fails a volume and never emits an Event: a failed check is logged
//! and retried at the next interval. Republish stays free of RPCs.
//!
//! The metadata record holds no CA bundle (only the certificate's serial and validity,
//! which a trust change leaves alone), so it needs no update: after a restart the files on
//! disk are compared, as always.

use std::collections::BTreeMap;
use std::time::Duration;

use tlsmint_client::files::{AtomicDir, Owner};
use tokio_util::sync::CancellationToken;

use super::renew::TOKEN_MARGIN;
use super::{Manager, PodToken, Slot, Volume};
use crate::issue;

/// What one trust pass did (for tests and the log).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustPass {
    /// Distinct roles asked with `GetCABundle`.
    pub roles_checked: usize,
    /// Roles that could not be checked (no valid token, or the call failed).
    pub roles_failed: usize,
    /// Volumes whose CA file was rewritten.
    pub volumes_updated: usize,
}

impl Manager {
    /// Runs [`Manager::refresh_trust`] every `every` until `cancel` (the first pass after
    /// one interval: a publish or renewal writes the bundle current at that moment).
    pub fn run_trust_refresh(
        &self,
        every: Duration,
        cancel: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let manager = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    _ = ticker.tick() => {}
                }
                let pass = manager.refresh_trust().await;
                if pass.volumes_updated > 0 || pass.roles_failed > 0 {
                    tracing::debug!(
                        roles = pass.roles_checked,
                        failed = pass.roles_failed,
                        updated = pass.volumes_updated,
                        "trust check done"
                    );
                }
            }
        })
    }

    /// One trust pass over every ready volume.
    pub async fn refresh_trust(&self) -> TrustPass {
        let mut pass = TrustPass::default();
        for (role, group) in self.by_role().await {
            let Some(token) = group.token else {
                pass.roles_failed += 1;
                tracing::debug!(role = %role,
                    "no valid pod token for the trust check yet; retrying at the next interval");
                continue;
            };
            pass.roles_checked += 1;
            let bundle = match self.inner.issuer.ca_bundle(&role, token.token).await {
                Ok(bundle) => bundle,
                Err(error) => {
                    pass.roles_failed += 1;
                    tracing::warn!(role = %role, error = %error,
                        "trust check failed; the CA files stay, retrying at the next interval");
                    continue;
                }
            };
            for slot in group.slots {
                let mut guard = slot.lock().await;
                let Some(volume) = guard.as_mut() else {
                    continue;
                };
                if volume.ready && volume.attrs.role == role && self.retrust(volume, &bundle) {
                    pass.volumes_updated += 1;
                }
            }
        }
        pass
    }

    /// The ready volumes by role, each with the token valid longest.
    async fn by_role(&self) -> BTreeMap<String, RoleGroup> {
        let slots: Vec<Slot> = self.lock_map().values().cloned().collect();
        let now = self.inner.clock.now();
        let mut roles: BTreeMap<String, RoleGroup> = BTreeMap::new();
        for slot in slots {
            let guard = slot.lock().await;
            let Some(volume) = guard.as_ref().filter(|v| v.ready) else {
                continue;
            };
            let group = roles.entry(volume.attrs.role.clone()).or_default();
            if let Some(token) = volume
                .token
                .as_ref()
                .filter(|t| t.expires > now + TOKEN_MARGIN)
            {
                let longer = group
                    .token
                    .as_ref()
                    .is_none_or(|best| token.expires > best.expires);
                if longer {
                    group.token = Some(token.clone());
                }
            }
            drop(guard);
            group.slots.push(slot);
        }
        roles
    }

    /// Rewrites `volume`'s files with `bundle` as the CA file if it differs. Returns whether
    /// it wrote. Failures are logged; the current files stay.
    fn retrust(&self, volume: &Volume, bundle: &str) -> bool {
        let id = &volume.record.volume_id;
        let dir = AtomicDir::new(&volume.record.target_path);
        if dir
            .read(&volume.attrs.ca_file)
            .is_ok_and(|current| current.as_slice() == bundle.as_bytes())
        {
            return false;
        }
        let files = match issue::with_trust(&volume.attrs, |name| dir.read(name), bundle) {
            Ok(files) => files,
            Err((file, error)) => {
                tracing::warn!(volume.id = %id, file = %file, error = %error,
                    "cannot read the current files to update the CA file; retrying at the next interval");
                return false;
            }
        };
        let owner = Owner {
            uid: None,
            gid: volume.attrs.fs_group,
        };
        if let Err(error) = dir.write(&files, owner) {
            tracing::warn!(volume.id = %id, error = %error,
                "updating the CA file failed; the current files stay, retrying at the next interval");
            return false;
        }
        self.inner.mounter.files_written(&volume.record.target_path);
        tracing::info!(volume.id = %id, role = %volume.attrs.role,
            x509.serial = %volume.record.certificate.serial,
            roots = bundle.matches("-----BEGIN CERTIFICATE-----").count(),
            "trust bundle changed; CA file updated (same key and certificate)");
        true
    }
}

/// The ready volumes of one role.
#[derive(Default)]
struct RoleGroup {
    token: Option<PodToken>,
    slots: Vec<Slot>,
}
