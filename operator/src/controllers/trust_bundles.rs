//! ClusterTrustBundles (SPEC §8): the roots a pod must trust, published where kubelet's
//! `clusterTrustBundle` projected source reads them.
//!
//! - For every signer `pki.tlsmint.io/<role>`, a signer-linked bundle named
//!   `pki.tlsmint.io:<role>:<mount>` (Kubernetes requires the `<signer with : for />:`
//!   prefix) holding the root of the role's mount. A pod selects it with
//!   `signerName: pki.tlsmint.io/<role>` and a label selector.
//! - For every mount, an unlinked bundle `tlsmint-<mount>` for pods that trust a mount
//!   rather than a signer.
//!
//! Both carry `app.kubernetes.io/managed-by: tlsmint-operator`, `pki.tlsmint.io/mount:
//! <mount>` and `pki.tlsmint.io/operator: <operator namespace>`: an operator only ever
//! touches the bundles of its own installation (two installations, e.g. sharded by
//! label selector, keep theirs apart). A bundle of the same name that tlsmint did not make is
//! left alone (a warning says so): the operator never takes over another tool's object.
//!
//! Both hold every root the mount trusts (`status.trustedRoots`: old and new during a CA
//! rotation).
//!
//! Owns the bundles' names and contents. Runs on the leader only; a full resync (of the
//! bundles and of the trust ConfigMaps, [`trust_config_maps`]) on every CA-state change,
//! on any change to a bundle or a namespace, and every five minutes. Must not write a
//! bundle whose content did not change.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::certificates::v1beta1::{ClusterTrustBundle, ClusterTrustBundleSpec};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use tlsmint_api::user_annotations;
use tlsmint_runtime::CancellationToken;

use super::apply::{MANAGED_BY, MANAGED_BY_LABEL, MOUNT_LABEL};
use super::{Context, trust_config_maps};
use crate::registry::Registry;

/// Label naming the operator installation (its namespace) that keeps a bundle.
pub use tlsmint_api::labels::OPERATOR_LABEL;

/// How often the bundles are checked even when nothing was seen to change.
const RESYNC: Duration = Duration::from_secs(300);

/// One bundle as it should be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    /// `spec.signerName` (`None`: unlinked).
    pub signer: Option<String>,
    /// The mount it comes from (label).
    pub mount: String,
    /// PEM roots.
    pub roots: String,
}

/// The name of a role's signer-linked bundle.
pub fn signer_bundle_name(role: &str, mount: &str) -> String {
    format!(
        "{}:{mount}",
        user_annotations::signer_name(role).replace('/', ":")
    )
}

/// The name of a mount's unlinked bundle.
pub fn mount_bundle_name(mount: &str) -> String {
    format!("tlsmint-{mount}")
}

/// Every bundle the CA state calls for, by name. Mounts that cannot sign publish nothing
/// (a pod could not get a certificate from them either); their old bundle stays until the
/// mount is deleted, so a CA whose key Secret went missing does not break trust.
pub fn wanted(registry: &Registry) -> BTreeMap<String, Wanted> {
    let mut out = BTreeMap::new();
    for mount in registry.mounts() {
        let Some(ca) = mount.ca() else {
            continue;
        };
        let roots = match mount.trust_bundle_pem() {
            trust if !trust.is_empty() => trust,
            _ => tlsmint_ca::pem::encode_certificate(ca.root_der()),
        };
        out.insert(
            mount_bundle_name(&mount.name),
            Wanted {
                signer: None,
                mount: mount.name.clone(),
                roots: roots.clone(),
            },
        );
        for role in registry.roles_of(&mount.name) {
            out.insert(
                signer_bundle_name(&role.name, &mount.name),
                Wanted {
                    signer: Some(user_annotations::signer_name(&role.name)),
                    mount: mount.name.clone(),
                    roots: roots.clone(),
                },
            );
        }
    }
    out
}

/// Whether this API server serves `certificates.k8s.io/v1beta1` ClusterTrustBundles.
pub async fn served(client: &kube::Client) -> bool {
    client
        .list_api_group_resources("certificates.k8s.io/v1beta1")
        .await
        .is_ok_and(|list| {
            list.resources
                .iter()
                .any(|r| r.name == "clustertrustbundles")
        })
}

/// Keeps the bundles and the trust ConfigMaps until `stop` (leader only).
pub async fn run(ctx: Arc<Context>, stop: CancellationToken) {
    let bundles_served = served(&ctx.client).await;
    if !bundles_served {
        tracing::info!(
            "this cluster does not serve certificates.k8s.io/v1beta1 ClusterTrustBundles: none are published"
        );
    }
    let api = Api::<ClusterTrustBundle>::all(ctx.client.clone());
    let mut changes = ctx.registry.changes();
    let bundle_events = if bundles_served {
        watcher(
            api.clone(),
            watcher::Config::default().labels(&ours(&ctx.namespace)),
        )
        .default_backoff()
        .touched_objects()
        .map(|_| ())
        .boxed()
    } else {
        futures::stream::pending().boxed()
    };
    // A namespace that gains (or loses) a selected label gets (or loses) its ConfigMaps.
    let namespace_events = watcher(
        Api::<Namespace>::all(ctx.client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .touched_objects()
    .map(|_| ());
    let mut events = futures::stream::select(bundle_events, namespace_events.boxed());
    loop {
        if bundles_served && let Err(error) = sync(&api, &ctx.registry, &ctx.namespace).await {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                "syncing ClusterTrustBundles failed; retrying"
            );
        }
        let config_maps = async {
            let wanted =
                trust_config_maps::wanted(&ctx.client, &ctx.caches.mounts, &ctx.registry).await?;
            trust_config_maps::sync(&ctx.client, &wanted, &ctx.registry, &ctx.namespace).await
        };
        if let Err(error) = config_maps.await {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                "syncing trust ConfigMaps failed; retrying"
            );
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = changes.changed() => if changed.is_err() { return },
            _ = events.next() => {}
            _ = tokio::time::sleep(RESYNC) => {}
        }
        // Coalesce a burst of events into one resync.
        tokio::time::sleep(Duration::from_millis(200)).await;
        while let Some(Some(_)) = futures::FutureExt::now_or_never(events.next()) {}
    }
}

/// One resync: create, update or delete so that tlsmint's bundles are [`wanted`].
pub async fn sync(
    api: &Api<ClusterTrustBundle>,
    registry: &Registry,
    operator: &str,
) -> kube::Result<()> {
    let wanted = wanted(registry);
    let ours = api
        .list(&ListParams::default().labels(&ours(operator)))
        .await?;
    let mut existing: BTreeMap<String, ClusterTrustBundle> =
        ours.items.into_iter().map(|b| (b.name_any(), b)).collect();
    for (name, want) in &wanted {
        match existing.remove(name) {
            Some(have) if have.spec.trust_bundle == want.roots => {}
            Some(mut have) => {
                have.spec.trust_bundle.clone_from(&want.roots);
                api.replace(name, &PostParams::default(), &have).await?;
                tracing::info!(bundle = %name, mount = %want.mount, "ClusterTrustBundle updated");
            }
            None => create(api, name, want, operator).await?,
        }
    }
    for (name, bundle) in existing {
        // A mount that still exists but cannot sign now keeps its bundles: its pods'
        // certificates are still valid and must still verify. Bundles of deleted mounts,
        // and of roles deleted or moved to another mount, go.
        let mount = bundle
            .labels()
            .get(MOUNT_LABEL)
            .cloned()
            .unwrap_or_default();
        if registry.mount(&mount).is_some_and(|m| m.ca().is_none()) {
            continue;
        }
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => tracing::info!(bundle = %name, "ClusterTrustBundle removed"),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The label selector of this installation's bundles.
fn ours(operator: &str) -> String {
    format!("{MANAGED_BY_LABEL}={MANAGED_BY},{OPERATOR_LABEL}={operator}")
}

async fn create(
    api: &Api<ClusterTrustBundle>,
    name: &str,
    want: &Wanted,
    operator: &str,
) -> kube::Result<()> {
    let mut bundle = ClusterTrustBundle {
        spec: ClusterTrustBundleSpec {
            signer_name: want.signer.clone(),
            trust_bundle: want.roots.clone(),
        },
        ..ClusterTrustBundle::default()
    };
    bundle.metadata.name = Some(name.to_owned());
    bundle.metadata.labels = Some(BTreeMap::from([
        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
        (MOUNT_LABEL.to_owned(), want.mount.clone()),
        (OPERATOR_LABEL.to_owned(), operator.to_owned()),
    ]));
    match api.create(&PostParams::default(), &bundle).await {
        Ok(_) => {
            tracing::info!(bundle = %name, mount = %want.mount, "ClusterTrustBundle created");
            Ok(())
        }
        // Not ours (we listed ours): another tool's object is never taken over.
        Err(kube::Error::Api(s)) if s.code == 409 => {
            tracing::warn!(
                bundle = %name,
                "a ClusterTrustBundle of this name exists and was not made by tlsmint; leaving it alone"
            );
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::registry::{MountEntry, MountStatus, NotReady, RoleEntry};
    use time::OffsetDateTime;
    use tlsmint_api::v1alpha1::IssuerRoleSpec;
    use tlsmint_ca::{CaConfig, CertificateAuthority, KeySpec, Subject};

    fn mount(name: &str, status: MountStatus) -> MountEntry {
        MountEntry {
            name: name.into(),
            path: name.into(),
            status,
            crl_expiry: Duration::from_secs(3600),
            trusted_roots: Vec::new(),
            other_generations: Vec::new(),
        }
    }

    #[test]
    fn every_role_gets_a_signer_linked_bundle_and_every_mount_its_own() {
        let root = CertificateAuthority::generate_root(
            &CaConfig {
                name: "root".into(),
                subject: Subject::with_common_name("Root"),
                key: KeySpec::EcdsaP256,
                ttl: Duration::from_secs(86400),
            },
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        let registry = Registry::new();
        registry
            .put_mount(mount("root", MountStatus::Ready(Arc::new(root))))
            .unwrap();
        registry
            .put_mount(mount(
                "broken",
                MountStatus::NotReady(NotReady::new("KeyMissing", "")),
            ))
            .unwrap();
        registry.put_role(RoleEntry::from_spec("web", &IssuerRoleSpec::new("root")));
        registry.put_role(RoleEntry::from_spec("db", &IssuerRoleSpec::new("broken")));
        let wanted = wanted(&registry);
        assert_eq!(
            wanted.keys().collect::<Vec<_>>(),
            ["pki.tlsmint.io:web:root", "tlsmint-root"]
        );
        let linked = &wanted["pki.tlsmint.io:web:root"];
        assert_eq!(linked.signer.as_deref(), Some("pki.tlsmint.io/web"));
        assert_eq!(linked.roots.matches("BEGIN CERTIFICATE").count(), 1);
        assert_eq!(wanted["tlsmint-root"].signer, None);
        assert_eq!(linked.roots, wanted["tlsmint-root"].roots);
    }
}
