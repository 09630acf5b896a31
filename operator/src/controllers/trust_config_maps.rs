//! Trust ConfigMaps (SPEC §8): per mount, `tlsmint-<mount>-ca` with key `ca.crt` (every
//! root the mount trusts, old and new during a rotation) in each namespace that the
//! mount's `spec.trustBundle.namespaceSelector` selects, and with `spec.trustBundle.pkcs12`
//! the same roots as a PKCS#12 truststore in `binaryData`. What trust-manager's Bundle
//! does for a cert-manager CA, for tlsmint's own CAs, without another controller.
//!
//! A PKCS#12 file differs on every write (random salts), so whether the truststore is
//! current is told by the annotation `pki.tlsmint.io/truststore-digest` (a digest of the
//! roots, key and password it was written for), not by its bytes.
//!
//! Every ConfigMap carries `app.kubernetes.io/managed-by: tlsmint-operator`,
//! `pki.tlsmint.io/mount`, `pki.tlsmint.io/operator` and `pki.tlsmint.io/trust-bundle:
//! "true"`: only those are ever updated or deleted. A ConfigMap of the same name that
//! tlsmint did not make is left alone, with a warning.
//!
//! Owns the ConfigMaps' names and contents. Runs on the leader, from the trust-bundle loop
//! of [`super::trust_bundles`]. Must not write a ConfigMap whose content did not change.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::core::Selector;
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt};
use tlsmint_api::labels::{TRUST_BUNDLE_LABEL, TRUSTSTORE_DIGEST_ANNOTATION};
use tlsmint_api::v1alpha1::{PkiMount, TrustStorePkcs12};

use super::apply::{MANAGED_BY, MANAGED_BY_LABEL, MOUNT_LABEL};
use super::trust_bundles::OPERATOR_LABEL;
use crate::registry::Registry;

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
    /// The PKCS#12 truststore to write next to it, if the mount asks for one.
    pub pkcs12: Option<TrustStorePkcs12>,
}

impl Wanted {
    /// The truststore digest annotation's value, `None` without a truststore.
    fn truststore_digest(&self) -> Option<String> {
        let p12 = self.pkcs12.as_ref()?;
        let input = [self.roots.as_str(), &p12.key, &p12.password].join("\0");
        Some(super::certificate_request::digest::short_hex(
            input.as_bytes(),
        ))
    }
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
                    pkcs12: bundle.pkcs12.clone(),
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
            Some(have) if current(&have, want) => {}
            Some(mut have) => {
                fill(&mut have, want);
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

/// Whether `config_map` holds what `want` asks for: the same `ca.crt`, and a truststore
/// written for the same roots, key and password (or none, when none is wanted).
fn current(config_map: &ConfigMap, want: &Wanted) -> bool {
    let roots = config_map
        .data
        .as_ref()
        .and_then(|d| d.get(tlsmint_api::CA_CERT_FILE));
    let digest = config_map
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(TRUSTSTORE_DIGEST_ANNOTATION));
    let store_present = match &want.pkcs12 {
        Some(p12) => config_map
            .binary_data
            .as_ref()
            .is_some_and(|b| b.contains_key(&p12.key)),
        None => config_map.binary_data.as_ref().is_none_or(|b| b.is_empty()),
    };
    roots == Some(&want.roots) && digest == want.truststore_digest().as_ref() && store_present
}

/// Writes `want`'s content into `config_map`: `ca.crt`, and the truststore with its digest
/// annotation (or neither). A truststore that cannot be built (a root PKCS#12 cannot
/// hold; not expected for certificates the engine parsed) is left out with a warning:
/// `ca.crt` still goes out.
fn fill(config_map: &mut ConfigMap, want: &Wanted) {
    config_map.data = Some(BTreeMap::from([(
        tlsmint_api::CA_CERT_FILE.to_owned(),
        want.roots.clone(),
    )]));
    let annotations = config_map.metadata.annotations.get_or_insert_default();
    annotations.remove(TRUSTSTORE_DIGEST_ANNOTATION);
    config_map.binary_data = None;
    let (Some(p12), Some(digest)) = (&want.pkcs12, want.truststore_digest()) else {
        return;
    };
    match truststore(&want.roots, &p12.password) {
        Ok(bytes) => {
            config_map.binary_data = Some(BTreeMap::from([(p12.key.clone(), ByteString(bytes))]));
            annotations.insert(TRUSTSTORE_DIGEST_ANNOTATION.to_owned(), digest);
        }
        Err(error) => {
            tracing::warn!(mount = %want.mount, error = %error, "the PKCS#12 truststore could not be built; publishing ca.crt alone");
        }
    }
}

/// Why a truststore was not built.
#[derive(Debug, thiserror::Error)]
pub enum TruststoreError {
    /// The roots are not PEM certificates.
    #[error("the trusted roots are unreadable")]
    Roots(#[source] tlsmint_ca::Error),
    /// The PKCS#12 encoder refused.
    #[error("encoding the PKCS#12 truststore failed")]
    Encode(#[source] p12_keystore::error::Error),
}

/// The roots of `roots_pem` as a PKCS#12 truststore: one trusted-certificate entry each
/// (with Java's trusted-key-usage attribute, so `keytool` and `KeyStore` see them as
/// trusted certificates), aliased by the first 32 hex digits of their SHA-256 fingerprint;
/// PBES2/AES-256 with a SHA-256 MAC under `password`.
pub fn truststore(roots_pem: &str, password: &str) -> Result<Vec<u8>, TruststoreError> {
    let roots = tlsmint_ca::pem::decode_certificates(roots_pem).map_err(TruststoreError::Roots)?;
    let mut store = p12_keystore::KeyStore::new();
    for der in &roots {
        let cert = p12_keystore::Certificate::from_der(der).map_err(TruststoreError::Encode)?;
        let alias = super::certificate_request::digest::short_hex(der);
        store.add_entry(&alias, p12_keystore::KeyStoreEntry::Certificate(cert));
    }
    store
        .writer(password)
        .encryption_algorithm(p12_keystore::EncryptionAlgorithm::PbeWithHmacSha256AndAes256)
        .mac_algorithm(p12_keystore::MacAlgorithm::HmacSha256)
        .write()
        .map_err(TruststoreError::Encode)
}

async fn create(
    api: &Api<ConfigMap>,
    namespace: &str,
    name: &str,
    want: &Wanted,
    operator: &str,
) -> kube::Result<()> {
    let mut config_map = ConfigMap::default();
    fill(&mut config_map, want);
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
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn roots(names: &[&str]) -> String {
        names
            .iter()
            .map(|cn| {
                let cfg = tlsmint_ca::CaConfig {
                    name: "pki".into(),
                    subject: tlsmint_ca::Subject::with_common_name(*cn),
                    key: tlsmint_ca::KeySpec::EcdsaP256,
                    ttl: std::time::Duration::from_secs(86_400),
                };
                tlsmint_ca::CertificateAuthority::generate_root(
                    &cfg,
                    time::OffsetDateTime::now_utc(),
                )
                .unwrap()
                .certificate_pem()
            })
            .collect()
    }

    fn want(roots: &str, pkcs12: Option<TrustStorePkcs12>) -> Wanted {
        Wanted {
            mount: "pki".into(),
            roots: roots.to_owned(),
            pkcs12,
        }
    }

    #[test]
    fn a_written_config_map_is_current_until_its_inputs_change() {
        let two = roots(&["Old Root", "New Root"]);
        let store = TrustStorePkcs12::default();
        let wanted = want(&two, Some(store.clone()));
        let mut config_map = ConfigMap::default();
        fill(&mut config_map, &wanted);
        assert!(current(&config_map, &wanted));
        let bytes = config_map.binary_data.as_ref().unwrap()["truststore.p12"]
            .0
            .clone();
        // Written again, the file differs (salts) but the digest does not.
        let mut again = ConfigMap::default();
        fill(&mut again, &wanted);
        assert_ne!(
            again.binary_data.as_ref().unwrap()["truststore.p12"].0,
            bytes
        );
        assert_eq!(again.metadata.annotations, config_map.metadata.annotations);

        for changed in [
            want(&roots(&["Other"]), Some(store.clone())),
            want(
                &two,
                Some(TrustStorePkcs12 {
                    password: "changeit".into(),
                    ..store.clone()
                }),
            ),
            want(
                &two,
                Some(TrustStorePkcs12 {
                    key: "trust.p12".into(),
                    ..store.clone()
                }),
            ),
            want(&two, None),
        ] {
            assert!(!current(&config_map, &changed), "{changed:?}");
        }
        // Dropping the truststore removes the file and its annotation.
        let plain = want(&two, None);
        fill(&mut config_map, &plain);
        assert!(current(&config_map, &plain));
        assert_eq!(config_map.binary_data, None);
        assert!(config_map.metadata.annotations.unwrap().is_empty());
    }

    #[test]
    fn the_truststore_holds_every_root_as_a_trusted_certificate() {
        let two = roots(&["Old Root", "New Root"]);
        let bytes = truststore(&two, "changeit").unwrap();
        let store = p12_keystore::KeyStore::from_pkcs12(
            &bytes,
            "changeit",
            p12_keystore::Pkcs12ImportPolicy::Strict,
        )
        .unwrap();
        let mut held: Vec<Vec<u8>> = store
            .entries()
            .map(|(_, e)| match e {
                p12_keystore::KeyStoreEntry::Certificate(c) => c.as_der().to_vec(),
                other => panic!("unexpected entry {other:?}"),
            })
            .collect();
        let mut expected = tlsmint_ca::pem::decode_certificates(&two).unwrap();
        held.sort();
        expected.sort();
        assert_eq!(held, expected);
        assert!(matches!(
            truststore("not pem", ""),
            Err(TruststoreError::Roots(_))
        ));
    }

    /// Java's keytool lists both roots as trustedCertEntry, with and without a password
    /// (OpenJDK is on every machine this runs on).
    #[test]
    fn keytool_reads_the_truststore() {
        let two = roots(&["Old Root", "New Root"]);
        let dir = std::env::temp_dir().join(format!("tlsmint-truststore-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for password in ["changeit", ""] {
            let path = dir.join("truststore.p12");
            std::fs::write(&path, truststore(&two, password).unwrap()).unwrap();
            let out = std::process::Command::new("keytool")
                .args(["-list", "-storetype", "PKCS12", "-keystore"])
                .arg(&path)
                .args(["-storepass", password])
                .output()
                .expect("keytool (OpenJDK) must be installed");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "keytool refused the truststore ({password:?}): {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(stdout.matches("trustedCertEntry").count(), 2, "{stdout}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_and_labels() {
        assert_eq!(config_map_name("pki-int"), "tlsmint-pki-int-ca");
        let selector = ours("tlsmint");
        assert!(selector.contains("pki.tlsmint.io/trust-bundle=true"));
        assert!(selector.contains("pki.tlsmint.io/operator=tlsmint"));
    }
}
