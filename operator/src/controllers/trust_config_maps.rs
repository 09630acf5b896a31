//! Trust ConfigMaps (SPEC §8): per mount, `tlsmint-<mount>-ca` with key `ca.crt` (every
//! root the mount trusts, old and new during a rotation) in each namespace that the
//! mount's `spec.trustBundle.namespaceSelector` selects. What trust-manager's Bundle does
//! for a cert-manager CA, for tlsmint's own CAs, without another controller.
//!
//! Every ConfigMap carries `app.kubernetes.io/managed-by: tlsmint-operator`,
//! `pki.tlsmint.io/mount`, `pki.tlsmint.io/operator` and `pki.tlsmint.io/trust-bundle:
//! "true"`: only those are ever updated or deleted. A ConfigMap of the same name that
//! tlsmint did not make is left alone, with a warning.
//!
//! Owns the ConfigMaps' names and contents. Runs on the leader, from the trust-bundle loop
//! of [`super::trust_bundles`]. Must not write a ConfigMap whose content did not change.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::core::Selector;
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt};
use tlsmint_api::v1alpha1::PkiMount;

use super::apply::{MANAGED_BY, MANAGED_BY_LABEL, MOUNT_LABEL};
use super::trust_bundles::OPERATOR_LABEL;
use crate::registry::Registry;

/// Label that marks tlsmint's trust ConfigMaps (the operator's namespace has others).
pub const TRUST_BUNDLE_LABEL: &str = "pki.tlsmint.io/trust-bundle";

/// The name of a mount's trust ConfigMap.
pub fn config_map_name(mount: &str) -> String {
    format!("tlsmint-{mount}-ca")
}

/// One ConfigMap as it should be, keyed by `(namespace, name)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// The mount it comes from.
    pub mount: String,
    /// `ca.crt`.
    pub roots: String,
}

/// The label selector of this installation's trust ConfigMaps.
fn ours(operator: &str) -> String {
    format!("{MANAGED_BY_LABEL}={MANAGED_BY},{OPERATOR_LABEL}={operator},{TRUST_BUNDLE_LABEL}=true")
}

/// Every ConfigMap the mounts call for. A mount without trusted roots (its CA never
/// loaded) publishes nothing; its existing ConfigMaps stay (see [`sync`]).
pub async fn wanted(
    client: &Client,
    mounts: &Store<PkiMount>,
    registry: &Registry,
) -> kube::Result<BTreeMap<(String, String), Wanted>> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut out = BTreeMap::new();
    for mount in mounts.state() {
        let Some(bundle) = &mount.spec.trust_bundle else {
            continue;
        };
        let name = mount.name_any();
        let Some(entry) = registry.mount(&name) else {
            continue;
        };
        let roots = entry.trust_bundle_pem();
        if roots.is_empty() {
            continue;
        }
        let selector = match Selector::try_from(bundle.namespace_selector.clone()) {
            Ok(selector) => selector,
            Err(error) => {
                tracing::warn!(mount = %name, error = %error, "spec.trustBundle.namespaceSelector is invalid; no trust ConfigMaps for this mount");
                continue;
            }
        };
        let config_map = config_map_name(&name);
        if config_map.len() > 253 {
            tracing::warn!(mount = %name, "the trust ConfigMap's name would be longer than 253 characters; none is written");
            continue;
        }
        let selected = namespaces
            .list_metadata(&ListParams::default().labels_from(&selector))
            .await?;
        for namespace in selected.items {
            out.insert(
                (namespace.name_any(), config_map.clone()),
                Wanted {
                    mount: name.clone(),
                    roots: roots.clone(),
                },
            );
        }
    }
    Ok(out)
}

/// One resync: create, update or delete so that this installation's trust ConfigMaps are
/// exactly `wanted`. ConfigMaps of a mount that exists but lost its CA are kept: the
/// certificates issued under it still need them.
pub async fn sync(
    client: &Client,
    wanted: &BTreeMap<(String, String), Wanted>,
    registry: &Registry,
    operator: &str,
) -> kube::Result<()> {
    let all: Api<ConfigMap> = Api::all(client.clone());
    let existing = all
        .list(&ListParams::default().labels(&ours(operator)))
        .await?;
    let mut existing: BTreeMap<(String, String), ConfigMap> = existing
        .items
        .into_iter()
        .map(|c| ((c.namespace().unwrap_or_default(), c.name_any()), c))
        .collect();
    for ((namespace, name), want) in wanted {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
        match existing.remove(&(namespace.clone(), name.clone())) {
            Some(have) if roots_of(&have) == Some(want.roots.as_str()) => {}
            Some(mut have) => {
                have.data = Some(data(want));
                api.replace(name, &PostParams::default(), &have).await?;
                tracing::info!(namespace, config_map = %name, mount = %want.mount, "trust ConfigMap updated");
            }
            None => create(&api, namespace, name, want, operator).await?,
        }
    }
    for ((namespace, name), config_map) in existing {
        let mount = config_map
            .labels()
            .get(MOUNT_LABEL)
            .cloned()
            .unwrap_or_default();
        if registry.mount(&mount).is_some_and(|m| m.ca().is_none()) {
            continue;
        }
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => tracing::info!(namespace, config_map = %name, "trust ConfigMap removed"),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn roots_of(config_map: &ConfigMap) -> Option<&str> {
    config_map
        .data
        .as_ref()?
        .get(tlsmint_api::CA_CERT_FILE)
        .map(String::as_str)
}

fn data(want: &Wanted) -> BTreeMap<String, String> {
    BTreeMap::from([(tlsmint_api::CA_CERT_FILE.to_owned(), want.roots.clone())])
}

async fn create(
    api: &Api<ConfigMap>,
    namespace: &str,
    name: &str,
    want: &Wanted,
    operator: &str,
) -> kube::Result<()> {
    let mut config_map = ConfigMap {
        data: Some(data(want)),
        ..ConfigMap::default()
    };
    config_map.metadata.name = Some(name.to_owned());
    config_map.metadata.namespace = Some(namespace.to_owned());
    config_map.metadata.labels = Some(BTreeMap::from([
        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
        (MOUNT_LABEL.to_owned(), want.mount.clone()),
        (OPERATOR_LABEL.to_owned(), operator.to_owned()),
        (TRUST_BUNDLE_LABEL.to_owned(), "true".to_owned()),
    ]));
    match api.create(&PostParams::default(), &config_map).await {
        Ok(_) => {
            tracing::info!(namespace, config_map = %name, mount = %want.mount, "trust ConfigMap created");
            Ok(())
        }
        Err(kube::Error::Api(s)) if s.code == 409 => {
            tracing::warn!(
                namespace,
                config_map = %name,
                "a ConfigMap of this name exists and was not made by tlsmint; leaving it alone"
            );
            Ok(())
        }
        // A namespace being deleted refuses new objects; the next resync no longer
        // selects it.
        Err(kube::Error::Api(s)) if s.code == 403 && s.message.contains("being terminated") => {
            tracing::debug!(namespace, config_map = %name, message = %s.message, "trust ConfigMap not created");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_labels() {
        assert_eq!(config_map_name("pki-int"), "tlsmint-pki-int-ca");
        let selector = ours("tlsmint");
        assert!(selector.contains("pki.tlsmint.io/trust-bundle=true"));
        assert!(selector.contains("pki.tlsmint.io/operator=tlsmint"));
    }
}
