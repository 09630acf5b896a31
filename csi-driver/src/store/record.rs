//! The per-volume record, version 1. New fields are added with serde defaults; a change
//! that old drivers could misread bumps [`RECORD_VERSION`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Version written by this driver.
pub const RECORD_VERSION: u32 = 1;

/// What the driver remembers of a published volume. No key, no token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeRecord {
    /// Format version ([`RECORD_VERSION`]).
    pub version: u32,
    /// Kubelet's volume id.
    pub volume_id: String,
    /// Where the tmpfs is mounted.
    pub target_path: PathBuf,
    /// The pod the volume belongs to.
    pub pod: PodRecord,
    /// The volume's `csi.tlsmint.io/` attributes as the pod spec gave them.
    pub attributes: BTreeMap<String, String>,
    /// The pod's fsGroup as kubelet passed it (`VOLUME_MOUNT_GROUP`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_mount_group: Option<u32>,
    /// The certificate now in the files.
    pub certificate: CertificateRecord,
}

/// The pod of a volume.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodRecord {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// UID.
    pub uid: String,
    /// ServiceAccount name.
    pub service_account_name: String,
}

/// The certificate in a volume's files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRecord {
    /// Serial, colon-separated hex.
    pub serial: String,
    /// Start of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
}

impl VolumeRecord {
    /// Reads a record, refusing versions this driver does not know.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let version: Version = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if version.version != RECORD_VERSION {
            return Err(format!(
                "version {} (this driver reads version {RECORD_VERSION})",
                version.version
            ));
        }
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}
