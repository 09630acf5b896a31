//! NodePublishVolume and NodeUnpublishVolume.
//!
//! First publish: check, mount, issue, write, save, schedule; only then OK. Republish of a
//! ready volume: check it is still our tmpfs with files, keep the freshest token, OK; it
//! never mounts again and never answers with a final error. Unpublish: unschedule, unmount,
//! remove the folder and the metadata; OK for unknown or unmounted volumes.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::Instant;
use tlsmint_ca::ExposeSecret as _;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tlsmint_api::csi::{self, PodInfo, VolumeAttributes};
use tlsmint_client::Token;
use tlsmint_client::files::{AtomicDir, Owner};

use super::{Manager, PodToken, Volume, VolumeError, own_attributes, pod_record};
use crate::paths;
use crate::store::{CertificateRecord, RECORD_VERSION, VolumeRecord};

/// What kubelet asks for in NodePublishVolume. `Debug` hides the secrets and the context's
/// values (they hold the pod's tokens).
pub struct PublishRequest {
    /// Kubelet's volume id.
    pub volume_id: String,
    /// Where to mount.
    pub target_path: String,
    /// Attributes, pod info and (by default) the pod's tokens.
    pub volume_context: HashMap<String, String>,
    /// The pod's tokens when the CSIDriver sets `serviceAccountTokenInSecrets`.
    pub secrets: HashMap<String, String>,
    /// The pod's fsGroup (`VOLUME_MOUNT_GROUP`), empty if none.
    pub volume_mount_group: String,
}

impl fmt::Debug for PublishRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublishRequest")
            .field("volume_id", &self.volume_id)
            .field("target_path", &self.target_path)
            .field("volume_context", &"<redacted>")
            .field("secrets", &"<redacted>")
            .finish()
    }
}

impl PublishRequest {
    /// The pod's token for audience `tlsmint`, from `secrets` or the volume context.
    fn token(&self) -> Result<PodToken, VolumeError> {
        let json = self
            .secrets
            .get(csi::SERVICE_ACCOUNT_TOKENS_KEY)
            .or_else(|| self.volume_context.get(csi::SERVICE_ACCOUNT_TOKENS_KEY))
            .map(String::as_str)
            .unwrap_or_default();
        let token = csi::audience_token(json)?;
        let expires =
            OffsetDateTime::parse(&token.expiration_timestamp, &Rfc3339).map_err(|_| {
                tlsmint_api::csi::AttributeError {
                    key: csi::SERVICE_ACCOUNT_TOKENS_KEY.into(),
                    problem: tlsmint_api::InvalidValue::Shape {
                        value: "<hidden>".into(),
                        expected: "an RFC 3339 expirationTimestamp",
                    },
                }
            })?;
        let token = Token::new(token.token.expose_secret()).map_err(|_| {
            tlsmint_api::csi::AttributeError {
                key: csi::SERVICE_ACCOUNT_TOKENS_KEY.into(),
                problem: tlsmint_api::InvalidValue::Shape {
                    value: "<hidden>".into(),
                    expected: "a token that fits in an HTTP header",
                },
            }
        })?;
        Ok(PodToken { token, expires })
    }

    fn mount_group(&self) -> Result<Option<u32>, VolumeError> {
        if self.volume_mount_group.is_empty() {
            return Ok(None);
        }
        self.volume_mount_group
            .parse()
            .map(Some)
            .map_err(|_| VolumeError::MountGroup {
                value: self.volume_mount_group.clone(),
            })
    }
}

impl Manager {
    /// NodePublishVolume.
    pub async fn publish(&self, req: PublishRequest) -> Result<(), VolumeError> {
        let target = paths::check_target(&self.inner.config.pods_dir, &req.target_path)?;
        if req
            .volume_context
            .get(csi::EPHEMERAL_KEY)
            .map(String::as_str)
            != Some("true")
        {
            return Err(VolumeError::NotEphemeral);
        }
        self.inner
            .store
            .check_id(&req.volume_id)
            .map_err(VolumeError::VolumeId)?;
        let slot = self.slot(&req.volume_id);
        let mut guard = slot.lock().await;
        if let Some(volume) = guard.as_mut() {
            // Known volume: a republish (or the first publish after a restart or reboot).
            return self.republish(volume, &target, &req).await;
        }
        let started = Instant::now();
        match self.first_publish(&target, &req).await {
            Ok(volume) => {
                self.inner.metrics.issuance("publish", "ok");
                self.inner
                    .metrics
                    .publish_took(started.elapsed().as_secs_f64());
                tracing::info!(volume.id = %req.volume_id, pod.name = %volume.record.pod.name,
                    pod.namespace = %volume.record.pod.namespace, role = %volume.attrs.role,
                    x509.serial = %volume.record.certificate.serial, "volume published");
                *guard = Some(volume);
                Ok(())
            }
            Err(error) => {
                self.inner.metrics.issuance("publish", result_of(&error));
                tracing::warn!(volume.id = %req.volume_id, error = %error, "publish failed");
                drop(guard);
                self.lock_map().remove(&req.volume_id);
                Err(error)
            }
        }
    }

    async fn first_publish(
        &self,
        target: &Path,
        req: &PublishRequest,
    ) -> Result<Volume, VolumeError> {
        let attrs = VolumeAttributes::parse(&req.volume_context)?;
        let pod = PodInfo::from_volume_context(&req.volume_context)?;
        let mut resolved = attrs.resolve(&pod)?;
        let mount_group = req.mount_group()?;
        if resolved.fs_group.is_none() {
            resolved.fs_group = mount_group;
        }
        let token = req.token()?;
        let mounted_now = self.ensure_mounted(target)?;
        let record = VolumeRecord {
            version: RECORD_VERSION,
            volume_id: req.volume_id.clone(),
            target_path: target.to_owned(),
            pod: pod_record(&pod),
            attributes: own_attributes(&req.volume_context),
            volume_mount_group: mount_group,
            certificate: CertificateRecord {
                serial: String::new(),
                not_before: OffsetDateTime::UNIX_EPOCH,
                not_after: OffsetDateTime::UNIX_EPOCH,
            },
        };
        let mut volume = Volume {
            record,
            attrs: resolved,
            token: Some(token),
            ready: false,
            failures: 0,
            trouble: None,
        };
        if let Err(error) = self.issue_into(&mut volume).await {
            if mounted_now {
                let _ = self.inner.mounter.unmount(target);
            }
            return Err(error);
        }
        Ok(volume)
    }

    /// Mounts the tmpfs unless the target already is ours. Returns whether it mounted now.
    fn ensure_mounted(&self, target: &Path) -> Result<bool, VolumeError> {
        if self.inner.mounter.is_our_tmpfs(target)? {
            return Ok(false);
        }
        std::fs::create_dir_all(target).map_err(|e| VolumeError::Target {
            op: "creating",
            path: target.to_owned(),
            reason: e.to_string(),
        })?;
        self.inner.mounter.mount_tmpfs(target)?;
        Ok(true)
    }

    /// Issues a new key and certificate for `volume`, writes them, saves the record and
    /// schedules the renewal. The previous files stay until the new ones are complete.
    pub(super) async fn issue_into(&self, volume: &mut Volume) -> Result<(), VolumeError> {
        let Some(token) = volume.token.clone() else {
            return Err(VolumeError::Retry {
                volume: volume.record.volume_id.clone(),
                reason: "no token yet (kubelet passes one at the next republish)".into(),
            });
        };
        let issued = self.inner.issuer.issue(&volume.attrs, token.token).await?;
        let owner = Owner {
            uid: None,
            gid: volume.attrs.fs_group,
        };
        let dir = AtomicDir::new(&volume.record.target_path);
        dir.write(&issued.files, owner)
            .map_err(|source| VolumeError::Files {
                volume: volume.record.volume_id.clone(),
                source,
            })?;
        self.inner.mounter.files_written(&volume.record.target_path);
        volume.record.certificate = CertificateRecord {
            serial: issued.serial,
            not_before: issued.not_before,
            not_after: issued.not_after,
        };
        self.inner
            .store
            .save(&volume.record)
            .map_err(VolumeError::Store)?;
        volume.ready = true;
        self.schedule_renewal(&volume.record.volume_id, &volume.record, &volume.attrs);
        self.inner
            .metrics
            .expiry(&volume.record.volume_id, Some(issued.not_after));
        Ok(())
    }

    /// A publish of a volume the driver knows. Never a final error.
    async fn republish(
        &self,
        volume: &mut Volume,
        target: &Path,
        req: &PublishRequest,
    ) -> Result<(), VolumeError> {
        let id = volume.record.volume_id.clone();
        let retry = |reason: String| VolumeError::Retry {
            volume: id.clone(),
            reason,
        };
        if target != volume.record.target_path {
            return Err(retry(format!(
                "the volume is published at {}; a second target is not supported",
                volume.record.target_path.display()
            )));
        }
        if let Ok(token) = req.token() {
            let fresher = volume
                .token
                .as_ref()
                .is_none_or(|old| token.expires >= old.expires);
            if fresher {
                volume.token = Some(token);
            }
        }
        let mounted = self
            .inner
            .mounter
            .is_our_tmpfs(target)
            .map_err(|e| retry(e.to_string()))?;
        let has_files = AtomicDir::new(target).current().is_some();
        if volume.ready && mounted && has_files {
            return Ok(());
        }
        // The tmpfs is gone (a node reboot) or never got its files: a new key and
        // certificate together, never an old certificate with a new key.
        volume.ready = false;
        self.ensure_mounted(target)
            .map_err(|e| retry(e.to_string()))?;
        match self.issue_into(volume).await {
            Ok(()) => {
                self.inner.metrics.issuance("publish", "ok");
                tracing::info!(volume.id = %id, x509.serial = %volume.record.certificate.serial,
                    "volume re-issued after its tmpfs was lost");
                Ok(())
            }
            Err(error) => {
                self.inner.metrics.issuance("publish", result_of(&error));
                Err(retry(error.to_string()))
            }
        }
    }

    /// NodeUnpublishVolume: OK for an unknown volume and for a target that is not mounted.
    pub async fn unpublish(&self, volume_id: &str, target_path: &str) -> Result<(), VolumeError> {
        let target = paths::check_target(&self.inner.config.pods_dir, target_path)?;
        let slot = self.existing_slot(volume_id);
        let _guard = match &slot {
            Some(slot) => Some(slot.lock().await),
            None => None,
        };
        self.inner.schedule.remove(volume_id);
        if self.inner.mounter.is_our_tmpfs(&target)? {
            self.inner.mounter.unmount(&target)?;
        }
        match std::fs::remove_dir(&target) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(VolumeError::Target {
                    op: "removing",
                    path: target,
                    reason: e.to_string(),
                });
            }
            _ => {}
        }
        if self.inner.store.check_id(volume_id).is_ok() {
            self.inner
                .store
                .remove(volume_id)
                .map_err(VolumeError::Store)?;
        }
        self.forget(volume_id);
        tracing::info!(volume.id = %volume_id, "volume unpublished");
        Ok(())
    }
}

/// The bounded `result` label of a failed issuance.
pub(super) fn result_of(error: &VolumeError) -> &'static str {
    match error {
        VolumeError::Issue(issue) => match issue.status().map(tonic::Status::code) {
            Some(tonic::Code::PermissionDenied) => "denied",
            Some(tonic::Code::InvalidArgument) => "invalid",
            Some(tonic::Code::Unauthenticated) => "unauthenticated",
            Some(tonic::Code::Unavailable | tonic::Code::DeadlineExceeded) => "unavailable",
            _ => "error",
        },
        VolumeError::Attribute(_) | VolumeError::NotEphemeral | VolumeError::Path(_) => "invalid",
        VolumeError::Retry { .. } => "no_token",
        _ => "error",
    }
}
