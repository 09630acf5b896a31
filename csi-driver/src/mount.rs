//! Mounting the tmpfs that holds a volume's files: a trait (so the manager can be tested
//! without privileges) and its Linux implementation through `nix`'s safe `mount(2)` and
//! `umount2(2)` wrappers.
//!
//! "Is this target already our tmpfs?" is answered from `/proc/self/mountinfo` (mount point,
//! file-system type `tmpfs` and source [`TMPFS_SOURCE`]), never from a marker file, so a
//! republish or a restarted driver never mounts twice over a live volume. The kernel renders
//! the whole table on every read (6 ms at 1,000 mounts), so once a target is known to be
//! ours its device number and current `..data` generation are remembered: while the target
//! still has both, and a device other than its parent's (still a mount point), the answer
//! is yes without reading the table. Anything else (a renewal's new generation, an unmount,
//! another file system there) reads it again. The device alone would not do: the kernel
//! reuses a freed tmpfs device number for the next tmpfs at once.
//!
//! Owns mounting and unmounting. It must not write files or decide when to mount.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// The kubelet-layout link to the current generation (see `tlsmint_client::files`).
const DATA_LINK: &str = tlsmint_client::files::DATA_LINK;

/// Source name of the driver's tmpfs mounts, as `/proc/self/mountinfo` shows it.
pub const TMPFS_SOURCE: &str = "tlsmint-csi";
/// Options of every tmpfs: small (a few PEM files, two generations at a time).
pub const TMPFS_OPTIONS: &str = "size=1m,nr_inodes=256,mode=0755";

/// A mount step that failed.
#[derive(Debug, thiserror::Error)]
#[error("{op} {path} failed: {reason}")]
pub struct MountError {
    /// The step ("mounting a tmpfs at", "unmounting", "reading mountinfo for").
    pub op: &'static str,
    /// The target.
    pub path: PathBuf,
    /// What the kernel said.
    pub reason: String,
}

/// Mounts and unmounts the driver's tmpfs volumes.
pub trait Mounter: Send + Sync + fmt::Debug {
    /// Whether `target` is a mount point of one of the driver's tmpfs mounts.
    fn is_our_tmpfs(&self, target: &Path) -> Result<bool, MountError>;
    /// Mounts a new tmpfs at `target` (an existing, empty folder).
    fn mount_tmpfs(&self, target: &Path) -> Result<(), MountError>;
    /// Unmounts `target`.
    fn unmount(&self, target: &Path) -> Result<(), MountError>;
    /// The driver just wrote a new generation of files into `target`, a tmpfs it mounted
    /// or found to be its own (lets [`LinuxMounter`] skip mountinfo at the next check).
    fn files_written(&self, _target: &Path) {}
}

/// The real thing: needs `CAP_SYS_ADMIN` in the host's mount namespace (a privileged pod
/// with the kubelet's pods folder mounted `Bidirectional`).
#[derive(Debug, Default)]
pub struct LinuxMounter {
    /// Targets known to be our tmpfs: the mount's device number and the `..data` generation.
    known: Mutex<HashMap<PathBuf, (u64, PathBuf)>>,
}

/// The device numbers of `target` and of its parent, if both exist.
fn devices(target: &Path) -> Option<(u64, u64)> {
    let own = std::fs::metadata(target).ok()?.dev();
    let parent = std::fs::metadata(target.parent()?).ok()?.dev();
    Some((own, parent))
}

impl LinuxMounter {
    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, (u64, PathBuf)>> {
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The device number and `..data` generation of a mounted target that has files.
    fn identity(target: &Path) -> Option<(u64, PathBuf)> {
        let (own, parent) = devices(target)?;
        let generation = std::fs::read_link(target.join(DATA_LINK)).ok()?;
        (own != parent).then_some((own, generation))
    }
}

impl Mounter for LinuxMounter {
    fn is_our_tmpfs(&self, target: &Path) -> Result<bool, MountError> {
        // Not a mount point (or not there): cannot be our tmpfs.
        match devices(target) {
            None => return Ok(false),
            Some((own, parent)) if own == parent => return Ok(false),
            Some(_) => {}
        }
        let identity = Self::identity(target);
        if identity.is_some() && self.known().get(target) == identity.as_ref() {
            return Ok(true);
        }
        let text = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| MountError {
            op: "reading mountinfo for",
            path: target.to_owned(),
            reason: e.to_string(),
        })?;
        let ours = is_our_tmpfs_in(&text, target);
        match identity {
            Some(identity) if ours => {
                self.known().insert(target.to_owned(), identity);
            }
            _ => {
                self.known().remove(target);
            }
        }
        Ok(ours)
    }

    fn mount_tmpfs(&self, target: &Path) -> Result<(), MountError> {
        use nix::mount::{MsFlags, mount};
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        mount(
            Some(TMPFS_SOURCE),
            target,
            Some("tmpfs"),
            flags,
            Some(TMPFS_OPTIONS),
        )
        .map_err(|e| MountError {
            op: "mounting a tmpfs at",
            path: target.to_owned(),
            reason: e.desc().to_owned(),
        })?;
        // Our mount's device, with no generation yet: never a match on its own, only the
        // base for `files_written`.
        if let Some((own, _)) = devices(target) {
            self.known()
                .insert(target.to_owned(), (own, PathBuf::new()));
        }
        Ok(())
    }

    fn files_written(&self, target: &Path) {
        let Some(identity) = Self::identity(target) else {
            return;
        };
        let mut known = self.known();
        if let Some(entry) = known.get_mut(target)
            && entry.0 == identity.0
        {
            *entry = identity;
        }
    }

    fn unmount(&self, target: &Path) -> Result<(), MountError> {
        use nix::mount::{MntFlags, umount2};
        self.known().remove(target);
        umount2(target, MntFlags::empty()).map_err(|e| MountError {
            op: "unmounting",
            path: target.to_owned(),
            reason: e.desc().to_owned(),
        })
    }
}

/// Whether `mountinfo` (the text of `/proc/self/mountinfo`) lists `target` as a tmpfs
/// mounted by the driver. The last matching line wins (a later mount hides an earlier one).
pub fn is_our_tmpfs_in(mountinfo: &str, target: &Path) -> bool {
    let mut ours = false;
    for line in mountinfo.lines() {
        // id parent major:minor root mount-point options [optional...] - fstype source super
        let mut fields = line.split(' ');
        let Some(mount_point) = fields.nth(4) else {
            continue;
        };
        if Path::new(&unescape(mount_point)) != target {
            continue;
        }
        let mut rest = fields.skip_while(|f| *f != "-").skip(1);
        let (fstype, source) = (rest.next(), rest.next());
        ours = fstype == Some("tmpfs") && source == Some(TMPFS_SOURCE);
    }
    ours
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = std::str::from_utf8(&bytes[i + 1..i + 4]).ok();
            if let Some(value) = digits.and_then(|d| u8::from_str_radix(d, 8).ok()) {
                out.push(value);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An in-memory mounter for tests and the benchmark: records mount points, mounts nothing.
#[derive(Debug, Default)]
pub struct MemoryMounter {
    mounted: Mutex<HashSet<PathBuf>>,
}

impl MemoryMounter {
    /// How many targets are "mounted".
    pub fn count(&self) -> usize {
        self.mounted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Forgets every mount, as a node reboot does.
    pub fn reboot(&self) {
        self.mounted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

impl Mounter for MemoryMounter {
    fn is_our_tmpfs(&self, target: &Path) -> Result<bool, MountError> {
        let mounted = self.mounted.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(mounted.contains(target))
    }

    fn mount_tmpfs(&self, target: &Path) -> Result<(), MountError> {
        let mut mounted = self.mounted.lock().unwrap_or_else(PoisonError::into_inner);
        if !mounted.insert(target.to_owned()) {
            return Err(MountError {
                op: "mounting a tmpfs at",
                path: target.to_owned(),
                reason: "already mounted (a second mount would hide the first)".into(),
            });
        }
        Ok(())
    }

    fn unmount(&self, target: &Path) -> Result<(), MountError> {
        let mut mounted = self.mounted.lock().unwrap_or_else(PoisonError::into_inner);
        if !mounted.remove(target) {
            return Err(MountError {
                op: "unmounting",
                path: target.to_owned(),
                reason: "not mounted".into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const INFO: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
400 22 0:50 / /var/lib/kubelet/pods/u1/volumes/kubernetes.io~csi/v1/mount rw,nosuid shared:200 - tmpfs tlsmint-csi rw,size=1024k
401 22 0:51 / /var/lib/kubelet/pods/u2/volumes/kubernetes.io~csi/v2/mount rw - tmpfs tmpfs rw
402 22 0:52 / /var/lib/kubelet/pods/u3/my\\040dir/mount rw - tmpfs tlsmint-csi rw
";

    #[test]
    fn recognises_only_the_drivers_tmpfs_at_the_exact_target() {
        let ours = Path::new("/var/lib/kubelet/pods/u1/volumes/kubernetes.io~csi/v1/mount");
        assert!(is_our_tmpfs_in(INFO, ours));
        let other_tmpfs = Path::new("/var/lib/kubelet/pods/u2/volumes/kubernetes.io~csi/v2/mount");
        assert!(!is_our_tmpfs_in(INFO, other_tmpfs));
        assert!(!is_our_tmpfs_in(
            INFO,
            Path::new("/var/lib/kubelet/pods/u1")
        ));
        assert!(is_our_tmpfs_in(
            INFO,
            Path::new("/var/lib/kubelet/pods/u3/my dir/mount")
        ));
    }

    /// Real mounts (root only; skipped with a message otherwise): the remembered answer
    /// follows unmounts and a foreign tmpfs mounted over the same target.
    #[test]
    fn linux_mounter_remembers_only_the_same_mount() {
        // /proc/self belongs to the effective user.
        if std::fs::metadata("/proc/self")
            .map(|m| m.uid())
            .unwrap_or(1)
            != 0
        {
            eprintln!("not root: skipping the real-mount test");
            return;
        }
        let dir = std::env::temp_dir().join(format!("tlsmint-csi-mount-{}", std::process::id()));
        let target = dir.join("mount");
        std::fs::create_dir_all(&target).unwrap();
        let m = LinuxMounter::default();
        assert!(!m.is_our_tmpfs(&target).unwrap());
        m.mount_tmpfs(&target).unwrap();
        struct Unmount<'a>(&'a Path);
        impl Drop for Unmount<'_> {
            fn drop(&mut self) {
                while nix::mount::umount2(self.0, nix::mount::MntFlags::empty()).is_ok() {}
            }
        }
        let _guard = Unmount(&target);
        assert!(m.is_our_tmpfs(&target).unwrap());
        assert!(!m.known().contains_key(&target), "remembered without files");
        std::os::unix::fs::symlink("..gen-1", target.join("..data")).unwrap();
        assert!(m.is_our_tmpfs(&target).unwrap());
        assert!(m.known().contains_key(&target), "not remembered");
        assert!(m.is_our_tmpfs(&target).unwrap());
        // A new generation: read the table again, then remembered anew.
        std::fs::remove_file(target.join("..data")).unwrap();
        std::os::unix::fs::symlink("..gen-2", target.join("..data")).unwrap();
        assert!(m.is_our_tmpfs(&target).unwrap());
        assert_eq!(m.known()[&target].1, Path::new("..gen-2"));
        // Unmounted behind the driver's back: no longer ours.
        nix::mount::umount2(&target, nix::mount::MntFlags::empty()).unwrap();
        assert!(!m.is_our_tmpfs(&target).unwrap());
        // Files written by the driver after its own mount: known at once.
        m.mount_tmpfs(&target).unwrap();
        std::os::unix::fs::symlink("..gen-3", target.join("..data")).unwrap();
        m.files_written(&target);
        assert_eq!(m.known()[&target].1, Path::new("..gen-3"));
        nix::mount::umount2(&target, nix::mount::MntFlags::empty()).unwrap();
        // Someone else's tmpfs at the same place: not ours either.
        m.mount_tmpfs(&target).unwrap();
        nix::mount::umount2(&target, nix::mount::MntFlags::empty()).unwrap();
        nix::mount::mount(
            Some("other"),
            &target,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("size=1m"),
        )
        .unwrap();
        assert!(!m.is_our_tmpfs(&target).unwrap());
        nix::mount::umount2(&target, nix::mount::MntFlags::empty()).unwrap();
        drop(_guard);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn memory_mounter_refuses_a_second_mount() {
        let m = MemoryMounter::default();
        let p = Path::new("/x");
        m.mount_tmpfs(p).unwrap();
        assert!(m.is_our_tmpfs(p).unwrap());
        assert!(m.mount_tmpfs(p).is_err());
        m.unmount(p).unwrap();
        assert!(!m.is_our_tmpfs(p).unwrap());
    }
}
