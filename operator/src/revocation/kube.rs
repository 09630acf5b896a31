//! The cluster-mode revocation store: one ConfigMap per mount in the
//! operator's namespace (`tlsmint-revocations-<mount>`, key
//! `revocations.json`), written with optimistic concurrency so replicas never
//! lose each other's revocations.
//!
//! Owns: the ConfigMap's name, labels and read-modify-write loop. Must not:
//! hold anything secret (serials and times only), or grow past what pruning
//! allows (entries leave once their certificate has expired).

// Cluster-mode pieces: `run` (operator/src/run.rs) wires them in; dev mode does not.
#![allow(dead_code)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, PostParams};

use super::store::{Mutation, RevocationStore, StoreError, StoredMount};
use futures::future::BoxFuture;

/// Key of the JSON document in the ConfigMap.
pub const DATA_KEY: &str = "revocations.json";
/// Prefix of the ConfigMap names.
pub const NAME_PREFIX: &str = "tlsmint-revocations-";
/// Label naming the mount.
pub use tlsmint_api::labels::MOUNT_LABEL;
/// Attempts of a read-modify-write before giving up on conflicts.
const ATTEMPTS: usize = 8;
/// Largest document written: a ConfigMap holds at most 1 MiB (data and
/// metadata together), so a document past this is refused, never truncated.
pub const MAX_DOCUMENT_BYTES: usize = 900 * 1024;

/// Revocations in ConfigMaps of the operator's namespace.
#[derive(Clone)]
pub struct ConfigMapStore {
    api: Api<ConfigMap>,
}

impl std::fmt::Debug for ConfigMapStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigMapStore").finish_non_exhaustive()
    }
}

impl ConfigMapStore {
    /// A store in `namespace` (the operator's).
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        ConfigMapStore {
            api: Api::namespaced(client, namespace),
        }
    }

    /// The ConfigMap name of a mount.
    pub fn name(mount: &str) -> String {
        format!("{NAME_PREFIX}{mount}")
    }

    async fn get(&self, mount: &str) -> Result<Option<ConfigMap>, StoreError> {
        self.api
            .get_opt(&Self::name(mount))
            .await
            .map_err(|e| StoreError::Read {
                mount: mount.to_owned(),
                reason: e.to_string(),
            })
    }
}

fn parse(mount: &str, cm: Option<&ConfigMap>) -> Result<StoredMount, StoreError> {
    let Some(text) = cm.and_then(|cm| cm.data.as_ref()?.get(DATA_KEY)) else {
        return Ok(StoredMount::default());
    };
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        mount: mount.to_owned(),
        reason: e.to_string(),
    })
}

fn render(mount: &str, doc: &StoredMount) -> Result<String, StoreError> {
    let text = serde_json::to_string(doc).map_err(|e| StoreError::Write {
        mount: mount.to_owned(),
        reason: e.to_string(),
    })?;
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(StoreError::Full {
            mount: mount.to_owned(),
            reason: format!(
                "{} entries take {} bytes, over the {MAX_DOCUMENT_BYTES}-byte ConfigMap budget",
                doc.revoked.len(),
                text.len()
            ),
        });
    }
    Ok(text)
}

impl RevocationStore for ConfigMapStore {
    fn load<'a>(&'a self, mount: &'a str) -> BoxFuture<'a, Result<StoredMount, StoreError>> {
        Box::pin(async move { parse(mount, self.get(mount).await?.as_ref()) })
    }

    fn update<'a>(
        &'a self,
        mount: &'a str,
        mut mutate: Mutation,
    ) -> BoxFuture<'a, Result<StoredMount, StoreError>> {
        Box::pin(async move {
            let mut last = String::new();
            for _ in 0..ATTEMPTS {
                let current = self.get(mount).await?;
                let mut doc = parse(mount, current.as_ref())?;
                if !mutate(&mut doc)? {
                    return Ok(doc);
                }
                let text = render(mount, &doc)?;
                let result = match current {
                    Some(mut cm) => {
                        cm.data
                            .get_or_insert_with(BTreeMap::new)
                            .insert(DATA_KEY.to_owned(), text);
                        // metadata.resourceVersion is kept: a concurrent write makes this a 409.
                        self.api
                            .replace(&Self::name(mount), &PostParams::default(), &cm)
                            .await
                    }
                    None => {
                        let cm = ConfigMap {
                            metadata: ObjectMeta {
                                name: Some(Self::name(mount)),
                                labels: Some(BTreeMap::from([
                                    (
                                        tlsmint_api::labels::MANAGED_BY_LABEL.to_owned(),
                                        tlsmint_api::labels::MANAGED_BY.to_owned(),
                                    ),
                                    (MOUNT_LABEL.to_owned(), mount.to_owned()),
                                ])),
                                ..ObjectMeta::default()
                            },
                            data: Some(BTreeMap::from([(DATA_KEY.to_owned(), text)])),
                            ..ConfigMap::default()
                        };
                        self.api.create(&PostParams::default(), &cm).await
                    }
                };
                match result {
                    Ok(_) => return Ok(doc),
                    Err(kube::Error::Api(status)) if status.code == 409 => {
                        last = status.message.clone();
                        continue;
                    }
                    Err(e) => {
                        return Err(StoreError::Write {
                            mount: mount.to_owned(),
                            reason: e.to_string(),
                        });
                    }
                }
            }
            Err(StoreError::Write {
                mount: mount.to_owned(),
                reason: format!("still conflicting after {ATTEMPTS} attempts: {last}"),
            })
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_missing_and_stored_documents() {
        assert_eq!(parse("pki", None).unwrap(), StoredMount::default());
        let cm = ConfigMap {
            data: Some(BTreeMap::from([(
                DATA_KEY.to_owned(),
                r#"{"crlNumber":7,"revoked":[{"serial":"01:02","revokedAt":1,"keepUntil":2}]}"#
                    .to_owned(),
            )])),
            ..ConfigMap::default()
        };
        let doc = parse("pki", Some(&cm)).unwrap();
        assert_eq!(doc.crl_number, 7);
        assert_eq!(doc.revoked[0].serial, "01:02");
        let mut bad = cm.clone();
        bad.data
            .as_mut()
            .unwrap()
            .insert(DATA_KEY.to_owned(), "{".into());
        assert!(matches!(
            parse("pki", Some(&bad)),
            Err(StoreError::Corrupt { .. })
        ));
        assert_eq!(
            ConfigMapStore::name("pki-int"),
            "tlsmint-revocations-pki-int"
        );
    }

    #[test]
    fn a_document_over_the_configmap_budget_is_refused_not_written() {
        let entry = |i: usize| crate::revocation::StoredEntry {
            serial: format!("{i:040x}"),
            revoked_at: 1_700_000_000,
            keep_until: 1_800_000_000,
        };
        let small = StoredMount {
            crl_number: 1,
            revoked: (0..100).map(entry).collect(),
        };
        assert!(render("pki", &small).is_ok());
        let huge = StoredMount {
            crl_number: 1,
            revoked: (0..20_000).map(entry).collect(),
        };
        let err = render("pki", &huge).unwrap_err();
        assert!(matches!(err, StoreError::Full { .. }), "{err}");
        assert!(err.to_string().contains("full"), "{err}");
    }
}
