//! Which target paths the driver accepts: absolute, below the kubelet's pods folder, with
//! no `.` or `..` component, and not leading out of that folder through a symlink. The
//! driver runs as root with the pods folder mounted from the host: an unchecked path would
//! let a bad request mount or delete anywhere.
//!
//! Owns the check. It must not create or remove anything.

use std::path::{Component, Path, PathBuf};

/// Why a target path was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    /// Empty or relative.
    #[error("target path {path:?} is not an absolute path")]
    NotAbsolute {
        /// The path given.
        path: String,
    },
    /// Has a `.` or `..` component.
    #[error("target path {path:?} has a '.' or '..' component")]
    DotComponent {
        /// The path given.
        path: String,
    },
    /// Not below the pods folder.
    #[error("target path {path:?} is not below the kubelet's pods folder {pods}")]
    Outside {
        /// The path given.
        path: String,
        /// The pods folder.
        pods: String,
    },
    /// A symlink leads out of the pods folder.
    #[error("target path {path:?} leads out of the kubelet's pods folder {pods} through a symlink")]
    SymlinkEscape {
        /// The path given.
        path: String,
        /// The pods folder.
        pods: String,
    },
}

/// Checks `target` against the kubelet's pods folder `pods` (e.g. `/var/lib/kubelet/pods`).
pub fn check_target(pods: &Path, target: &str) -> Result<PathBuf, PathError> {
    let path = Path::new(target);
    if target.is_empty() || !path.is_absolute() {
        return Err(PathError::NotAbsolute {
            path: target.to_owned(),
        });
    }
    let raw_dot = target.split('/').any(|c| c == "." || c == "..");
    if raw_dot
        || path
            .components()
            .any(|c| matches!(c, Component::CurDir | Component::ParentDir))
    {
        return Err(PathError::DotComponent {
            path: target.to_owned(),
        });
    }
    let outside = || PathError::Outside {
        path: target.to_owned(),
        pods: pods.display().to_string(),
    };
    if !path.starts_with(pods) || path == pods {
        return Err(outside());
    }
    let escape = || PathError::SymlinkEscape {
        path: target.to_owned(),
        pods: pods.display().to_string(),
    };
    // The target itself must not be a symlink; every existing ancestor must resolve below
    // the (resolved) pods folder.
    if path
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
    {
        return Err(escape());
    }
    let real_pods = std::fs::canonicalize(pods).unwrap_or_else(|_| pods.to_owned());
    let mut existing = path;
    while !existing.exists() {
        match existing.parent() {
            Some(parent) => existing = parent,
            None => break,
        }
    }
    let real = std::fs::canonicalize(existing).map_err(|_| escape())?;
    if !real.starts_with(&real_pods) {
        return Err(escape());
    }
    Ok(path.to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn accepts_kubelet_targets_and_refuses_the_rest() {
        let root = std::env::temp_dir().join(format!("tlsmint-csi-paths-{}", std::process::id()));
        let pods = root.join("pods");
        std::fs::create_dir_all(pods.join("u1/volumes")).unwrap();
        std::fs::create_dir_all(root.join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(root.join("elsewhere"), pods.join("u1/volumes/evil")).unwrap();
        let p = |s: &str| format!("{}/{s}", pods.display());
        let ok = p("u1/volumes/kubernetes.io~csi/v/mount");
        assert_eq!(check_target(&pods, &ok).unwrap(), PathBuf::from(&ok));
        let refused = [
            ("relative/path".to_owned(), "absolute"),
            (String::new(), "absolute"),
            (p("u1/../../etc"), "'..'"),
            (p("u1/./x"), "'..'"),
            ("/etc/shadow".to_owned(), "not below"),
            (pods.display().to_string(), "not below"),
            (format!("{}-other/x", pods.display()), "not below"),
            (p("u1/volumes/evil/mount"), "symlink"),
            (p("u1/volumes/evil"), "symlink"),
        ];
        for (target, want) in refused {
            let err = check_target(&pods, &target).unwrap_err().to_string();
            assert!(err.contains(want), "{target}: {err}");
        }
        std::fs::remove_dir_all(&root).unwrap();
    }
}
