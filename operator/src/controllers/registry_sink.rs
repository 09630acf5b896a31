//! The bridge from the catalog to the issuance API's [`Registry`]: every mount the loader
//! loads or unloads and every role it compiles or rejects is put into the registry, so
//! every replica's API serves exactly what the cluster says.
//!
//! Owns only the translation. It must not decide anything: the loader decides what is
//! loaded, the registry how it answers.

use std::sync::Arc;

use crate::registry::{MountEntry, MountStatus, Registry, RoleEntry, RoleStatus};

use super::catalog::{CatalogSink, LoadedMount, LoadedRole, MountGone, RoleGone};

/// A [`CatalogSink`] that keeps a [`Registry`] in step.
#[derive(Debug)]
pub struct RegistrySink(pub Arc<Registry>);

impl CatalogSink for RegistrySink {
    fn mount_loaded(&self, mount: Arc<LoadedMount>) {
        let entry = MountEntry {
            name: mount.name.clone(),
            path: mount.path.clone(),
            status: MountStatus::Ready(mount.ca.clone()),
            crl_expiry: mount.crl_expiry,
        };
        if let Err(conflict) = self.0.put_mount(entry) {
            tracing::warn!(mount = %mount.name, error = &conflict as &dyn std::error::Error, "mount not served");
        }
    }

    fn mount_removed(&self, name: &str, why: &MountGone) {
        match why {
            MountGone::Deleted => self.0.remove_mount(name),
            MountGone::NotReady {
                path,
                reason,
                crl_expiry,
            } => {
                let entry = MountEntry {
                    name: name.to_owned(),
                    path: path.clone(),
                    status: MountStatus::NotReady(reason.clone()),
                    crl_expiry: *crl_expiry,
                };
                if let Err(conflict) = self.0.put_mount(entry) {
                    tracing::warn!(mount = %name, error = &conflict as &dyn std::error::Error, "mount not served");
                }
            }
        }
    }

    fn role_loaded(&self, role: Arc<LoadedRole>) {
        self.0.put_role(RoleEntry {
            name: role.name.clone(),
            mount: role.mount.clone(),
            subjects: role.subjects.clone(),
            status: RoleStatus::Ready(role.role.clone()),
        });
    }

    fn role_removed(&self, name: &str, why: &RoleGone) {
        match why {
            RoleGone::Deleted => self.0.remove_role(name),
            RoleGone::Invalid {
                mount,
                subjects,
                reason,
            } => self.0.put_role(RoleEntry {
                name: name.to_owned(),
                mount: mount.clone(),
                subjects: subjects.clone(),
                status: RoleStatus::Invalid(reason.clone()),
            }),
        }
    }
}
