//! Writing a certificate's files so that no reader ever sees half of an update: the
//! kubelet's atomic-writer layout, shared by the CSI driver (into a tmpfs) and the agent
//! (into an in-memory emptyDir).
//!
//! ```text
//! <dir>/..2030_01_01_00_00_00.000000001_1/   one generation: every file, complete
//! <dir>/..data -> ..2030_01_01_00_00_00.000000001_1
//! <dir>/tls.crt -> ..data/tls.crt            the names readers open
//! ```
//!
//! A new generation is written into a fresh folder, synced, and published by renaming a new
//! `..data` symlink over the old one (one `rename(2)`, atomic). A reader of one file (such as
//! the single-file bundle) therefore sees the old set or the new one, never a mixture; a
//! reader of two files must re-read both after a change. Old generations are removed after
//! the swap.
//!
//! Owns the layout, file modes and ownership. Must not: decide what goes into the files,
//! log their contents, or leave a key anywhere but inside the target folder.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use zeroize::Zeroizing;

/// Name of the symlink that points at the current generation.
pub const DATA_LINK: &str = "..data";
const DATA_LINK_TMP: &str = "..data_tmp";

/// Mode of certificate and CA files: readable by everyone in the pod.
pub const PUBLIC_MODE: u32 = 0o444;
/// Mode of a private key owned by the pod's user only.
pub const KEY_MODE: u32 = 0o400;
/// Mode of a private key shared with the files' group (`fsGroup`).
pub const KEY_MODE_GROUP: u32 = 0o440;

/// One file of a generation. `Debug` never shows the contents.
pub struct File {
    name: String,
    contents: Zeroizing<Vec<u8>>,
    mode: u32,
}

impl std::fmt::Debug for File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("File")
            .field("name", &self.name)
            .field("bytes", &self.contents.len())
            .field("mode", &format_args!("{:o}", self.mode))
            .finish()
    }
}

impl File {
    /// A file anyone in the pod may read (certificates, CA bundles): mode 0444.
    pub fn public(name: impl Into<String>, contents: impl Into<Vec<u8>>) -> Self {
        Self::with_mode(name, contents, PUBLIC_MODE)
    }

    /// A file holding a private key: 0400, or 0440 when the files get a group.
    pub fn secret(name: impl Into<String>, contents: impl Into<Vec<u8>>, shared: bool) -> Self {
        let mode = if shared { KEY_MODE_GROUP } else { KEY_MODE };
        Self::with_mode(name, contents, mode)
    }

    /// A file with an explicit mode.
    pub fn with_mode(name: impl Into<String>, contents: impl Into<Vec<u8>>, mode: u32) -> Self {
        File {
            name: name.into(),
            contents: Zeroizing::new(contents.into()),
            mode,
        }
    }

    /// The file's name inside the folder.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Who owns the files of a generation (`None`: leave as created).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Owner {
    /// User id.
    pub uid: Option<u32>,
    /// Group id (the pod's `fsGroup`).
    pub gid: Option<u32>,
}

/// Why a generation could not be written. The folder still serves the previous one.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A file name that is not a single, plain path component.
    #[error(
        "file name {name:?} is not allowed: use one path component without '/' that does not start with '.'"
    )]
    InvalidName {
        /// The name given.
        name: String,
    },
    /// Two files of one generation have the same name.
    #[error("file name {name:?} is given twice")]
    DuplicateName {
        /// The name given.
        name: String,
    },
    /// A file-system step failed.
    #[error("{op} {path} failed: {source}")]
    Io {
        /// The step (e.g. "creating", "renaming").
        op: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// What the kernel said.
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> WriteError + 'a {
    move |source| WriteError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// Checks that `name` is a plain file name the layout can hold.
pub fn check_name(name: &str) -> Result<(), WriteError> {
    let plain = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && !name.contains('/')
        && !name.contains('\0');
    if plain {
        Ok(())
    } else {
        Err(WriteError::InvalidName {
            name: name.to_owned(),
        })
    }
}

/// A folder written generation by generation.
#[derive(Clone, Debug)]
pub struct AtomicDir {
    root: PathBuf,
}

static GENERATION: AtomicU64 = AtomicU64::new(0);

impl AtomicDir {
    /// The folder at `root` (it must exist; a tmpfs or an emptyDir).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        AtomicDir { root: root.into() }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of the current generation, if one was ever written.
    pub fn current(&self) -> Option<PathBuf> {
        let target = fs::read_link(self.root.join(DATA_LINK)).ok()?;
        Some(self.root.join(target))
    }

    /// Reads `name` of the current generation.
    pub fn read(&self, name: &str) -> io::Result<Zeroizing<Vec<u8>>> {
        check_name(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        fs::read(self.root.join(DATA_LINK).join(name)).map(Zeroizing::new)
    }

    /// Writes `files` as the new generation and publishes it atomically. On error the
    /// previous generation is still what readers see, and the partial folder is removed.
    pub fn write(&self, files: &[File], owner: Owner) -> Result<PathBuf, WriteError> {
        let mut names = Vec::with_capacity(files.len());
        for file in files {
            check_name(&file.name)?;
            if names.contains(&file.name.as_str()) {
                return Err(WriteError::DuplicateName {
                    name: file.name.clone(),
                });
            }
            names.push(file.name.as_str());
        }
        let generation = self.new_generation_name();
        let dir = self.root.join(&generation);
        if let Err(err) = self.write_generation(&dir, files, owner) {
            let _ = fs::remove_dir_all(&dir);
            return Err(err);
        }
        self.publish(&generation)?;
        self.link_names(&names)?;
        self.remove_stale(&generation, &names);
        Ok(dir)
    }

    fn new_generation_name(&self) -> String {
        let now = time::OffsetDateTime::now_utc();
        let n = GENERATION.fetch_add(1, Ordering::Relaxed);
        format!(
            "..{:04}_{:02}_{:02}_{:02}_{:02}_{:02}.{:09}_{}_{n}",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second(),
            now.nanosecond(),
            std::process::id(),
        )
    }

    fn write_generation(&self, dir: &Path, files: &[File], owner: Owner) -> Result<(), WriteError> {
        fs::DirBuilder::new()
            .mode(0o755)
            .create(dir)
            .map_err(io_err("creating", dir))?;
        for file in files {
            let path = dir.join(&file.name);
            let mut out = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(io_err("creating", &path))?;
            out.write_all(&file.contents)
                .map_err(io_err("writing", &path))?;
            out.sync_all().map_err(io_err("syncing", &path))?;
            chown(&path, owner)?;
            fs::set_permissions(&path, fs::Permissions::from_mode(file.mode))
                .map_err(io_err("setting the mode of", &path))?;
        }
        chown(dir, owner)?;
        sync_dir(dir)
    }

    fn publish(&self, generation: &str) -> Result<(), WriteError> {
        let tmp = self.root.join(DATA_LINK_TMP);
        match fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("removing", &tmp)(e)),
        }
        std::os::unix::fs::symlink(generation, &tmp).map_err(io_err("linking", &tmp))?;
        let data = self.root.join(DATA_LINK);
        fs::rename(&tmp, &data).map_err(io_err("renaming", &data))?;
        sync_dir(&self.root)
    }

    fn link_names(&self, names: &[&str]) -> Result<(), WriteError> {
        for name in names {
            let link = self.root.join(name);
            let target = Path::new(DATA_LINK).join(name);
            match fs::read_link(&link) {
                Ok(existing) if existing == target => continue,
                Ok(_) => fs::remove_file(&link).map_err(io_err("replacing", &link))?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(_) => {
                    // Not a symlink: a plain file or folder left by something else.
                    fs::remove_file(&link).map_err(io_err("replacing", &link))?;
                }
            }
            std::os::unix::fs::symlink(&target, &link).map_err(io_err("linking", &link))?;
        }
        Ok(())
    }

    /// Best effort: old generations and links to names the new one no longer has.
    fn remove_stale(&self, current: &str, names: &[&str]) {
        let Ok(entries) = fs::read_dir(&self.root) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let path = entry.path();
            if name.starts_with("..") {
                if name != current && name != DATA_LINK && name != DATA_LINK_TMP {
                    let _ = fs::remove_dir_all(&path);
                }
            } else if !names.contains(&name)
                && fs::read_link(&path).is_ok_and(|t| t.starts_with(DATA_LINK))
            {
                let _ = fs::remove_file(&path);
            }
        }
    }
}

fn chown(path: &Path, owner: Owner) -> Result<(), WriteError> {
    if owner.uid.is_none() && owner.gid.is_none() {
        return Ok(());
    }
    std::os::unix::fs::chown(path, owner.uid, owner.gid)
        .map_err(io_err("changing the owner of", path))
}

fn sync_dir(dir: &Path) -> Result<(), WriteError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("syncing", dir))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "tlsmint-files-{tag}-{}-{}",
            std::process::id(),
            GENERATION.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn generation(n: u32) -> Vec<File> {
        vec![
            File::public("tls.crt", format!("cert {n}")),
            File::secret("tls.key", format!("key {n}"), false),
            File::public("bundle.pem", format!("key {n}\ncert {n}\n")),
        ]
    }

    #[test]
    fn writes_the_kubelet_layout_with_modes() {
        let root = temp_dir("layout");
        let dir = AtomicDir::new(&root);
        dir.write(&generation(1), Owner::default()).unwrap();
        assert_eq!(fs::read_to_string(root.join("tls.crt")).unwrap(), "cert 1");
        assert_eq!(&*dir.read("tls.key").unwrap(), b"key 1");
        assert_eq!(
            fs::read_link(root.join("tls.crt")).unwrap(),
            Path::new("..data/tls.crt")
        );
        let mode = |name: &str| {
            fs::metadata(dir.current().unwrap().join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("tls.crt"), 0o444);
        assert_eq!(mode("tls.key"), 0o400);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn with_a_group_the_key_is_0440_and_owned_by_that_group() {
        use std::os::unix::fs::MetadataExt;
        let root = temp_dir("group");
        let dir = AtomicDir::new(&root);
        // As root any group works (the driver runs as root); otherwise one the process is in.
        let root_user = fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        let gid = if root_user {
            4242
        } else {
            fs::metadata(&root).unwrap().gid()
        };
        let files = vec![
            File::public("tls.crt", "cert"),
            File::secret("tls.key", "key", true),
        ];
        let owner = Owner {
            uid: None,
            gid: Some(gid),
        };
        dir.write(&files, owner).unwrap();
        let meta = |name: &str| fs::metadata(dir.current().unwrap().join(name)).unwrap();
        assert_eq!(meta("tls.key").permissions().mode() & 0o777, 0o440);
        assert_eq!(meta("tls.key").gid(), gid);
        assert_eq!(meta("tls.crt").permissions().mode() & 0o777, 0o444);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_new_generation_replaces_the_old_and_removes_it() {
        let root = temp_dir("replace");
        let dir = AtomicDir::new(&root);
        let first = dir.write(&generation(1), Owner::default()).unwrap();
        let second = dir.write(&generation(2), Owner::default()).unwrap();
        assert_ne!(first, second);
        assert!(!first.exists(), "old generation left behind");
        assert_eq!(fs::read_to_string(root.join("tls.crt")).unwrap(), "cert 2");
        // A generation without the bundle drops its link.
        dir.write(&generation(3)[..2], Owner::default()).unwrap();
        assert!(fs::symlink_metadata(root.join("bundle.pem")).is_err());
        let generations = fs::read_dir(&root)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                let name = name.to_str().unwrap();
                name.starts_with("..") && name != DATA_LINK
            })
            .count();
        assert_eq!(generations, 1);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn refuses_names_that_escape_or_hide() {
        let root = temp_dir("names");
        let dir = AtomicDir::new(&root);
        for bad in ["", "../x", "a/b", "..data", ".hidden"] {
            let err = dir
                .write(&[File::public(bad, "x")], Owner::default())
                .unwrap_err();
            assert!(
                matches!(err, WriteError::InvalidName { .. }),
                "{bad}: {err}"
            );
        }
        let err = dir
            .write(
                &[File::public("a", "1"), File::public("a", "2")],
                Owner::default(),
            )
            .unwrap_err();
        assert!(matches!(err, WriteError::DuplicateName { .. }));
        assert!(dir.current().is_none());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn debug_never_shows_contents() {
        let file = File::secret("tls.key", "-----BEGIN PRIVATE KEY----- canary", false);
        let shown = format!("{file:?}");
        assert!(!shown.contains("canary"), "{shown}");
        assert!(shown.contains("tls.key"));
    }

    #[test]
    fn a_reader_of_the_bundle_never_sees_a_mixed_generation() {
        let root = temp_dir("reader");
        let dir = AtomicDir::new(&root);
        dir.write(&generation(0), Owner::default()).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (root, stop) = (root.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut reads = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    // A read can race with removal of the old folder: that is a retry,
                    // never a wrong answer.
                    let Ok(text) = fs::read_to_string(root.join("bundle.pem")) else {
                        continue;
                    };
                    let mut lines = text.lines();
                    let key = lines.next().unwrap().trim_start_matches("key ");
                    let cert = lines.next().unwrap().trim_start_matches("cert ");
                    assert_eq!(key, cert, "mixed generation: {text:?}");
                    reads += 1;
                }
                reads
            })
        };
        for n in 1..300 {
            dir.write(&generation(n), Owner::default()).unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        let reads = reader.join().unwrap();
        assert!(reads > 0, "the reader never read");
        fs::remove_dir_all(&root).unwrap();
    }
}
