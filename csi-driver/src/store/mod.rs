//! Per-volume metadata on the node's disk (default `/var/lib/tlsmint-csi/volumes/`, never
//! /tmp, which tmpfiles cleaners empty): one versioned JSON file per volume, written
//! atomically (temporary file, fsync, rename). It lets a restarted driver resume renewing
//! every volume it published, and tells it after a reboot which volumes need a new key and
//! certificate.
//!
//! Owns the file format and its folder. It must not hold key material or tokens: the
//! record has the pod, the volume's own `csi.tlsmint.io/` attributes and the current
//! certificate's serial and validity, nothing else.

mod record;

pub use record::{CertificateRecord, PodRecord, RECORD_VERSION, VolumeRecord};

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Why a record could not be saved, loaded or removed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A volume id the store cannot use as a file name.
    #[error("volume id {id:?} has characters other than letters, digits, '-', '_' and '.'")]
    BadId {
        /// The id.
        id: String,
    },
    /// A file-system step failed.
    #[error("{op} {path} failed: {source}")]
    Io {
        /// The step.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
    /// A record that is not valid JSON of a known version.
    #[error("metadata file {path} is unreadable: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The metadata folder.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Opens (and creates) `<state_dir>/volumes`.
    pub fn open(state_dir: &Path) -> Result<Self, StoreError> {
        let dir = state_dir.join("volumes");
        fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
            op: "creating",
            path: dir.clone(),
            source,
        })?;
        Ok(Store { dir })
    }

    fn path(&self, id: &str) -> Result<PathBuf, StoreError> {
        let plain = !id.is_empty()
            && id.len() <= 200
            && !id.starts_with('.')
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !plain {
            return Err(StoreError::BadId { id: id.to_owned() });
        }
        Ok(self.dir.join(format!("{id}.json")))
    }

    /// Checks that `id` can be stored.
    pub fn check_id(&self, id: &str) -> Result<(), StoreError> {
        self.path(id).map(drop)
    }

    /// Writes `record`, replacing the previous one atomically.
    pub fn save(&self, record: &VolumeRecord) -> Result<(), StoreError> {
        let path = self.path(&record.volume_id)?;
        let tmp = path.with_extension("json.tmp");
        let io_err = |op, path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::Io { op, path, source }
        };
        let json = serde_json::to_vec_pretty(record).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let mut file = fs::File::create(&tmp).map_err(io_err("creating", &tmp))?;
        file.write_all(&json).map_err(io_err("writing", &tmp))?;
        file.sync_all().map_err(io_err("syncing", &tmp))?;
        fs::rename(&tmp, &path).map_err(io_err("renaming", &tmp))?;
        Ok(())
    }

    /// Removes the record of `id`; a missing record is fine.
    pub fn remove(&self, id: &str) -> Result<(), StoreError> {
        let path = self.path(id)?;
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StoreError::Io {
                op: "removing",
                path,
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// Whether a record of `id` exists.
    pub fn contains(&self, id: &str) -> bool {
        self.path(id).is_ok_and(|p| p.exists())
    }

    /// Every readable record; unreadable files are returned as errors beside them.
    pub fn load_all(&self) -> Result<(Vec<VolumeRecord>, Vec<StoreError>), StoreError> {
        let entries = fs::read_dir(&self.dir).map_err(|source| StoreError::Io {
            op: "listing",
            path: self.dir.clone(),
            source,
        })?;
        let (mut records, mut errors) = (Vec::new(), Vec::new());
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            match fs::read(&path) {
                Ok(bytes) => match VolumeRecord::from_json(&bytes) {
                    Ok(record) => records.push(record),
                    Err(reason) => errors.push(StoreError::Corrupt { path, reason }),
                },
                Err(source) => errors.push(StoreError::Io {
                    op: "reading",
                    path,
                    source,
                }),
            }
        }
        records.sort_by(|a, b| a.volume_id.cmp(&b.volume_id));
        Ok((records, errors))
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
