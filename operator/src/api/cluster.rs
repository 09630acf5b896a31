//! Cluster mode of the issuance APIs, in one call for `run`: the internal
//! CA that signs the APIs' own serving certificates (kept in a Secret of the
//! operator's namespace, created once, never replaced, its certificate
//! published in a ConfigMap for clients), each replica's serving
//! certificate (rotated at half of its life without a restart), TokenReview
//! authentication, SubjectAccessReview for the revoke right,
//! ConfigMap-backed revocations, and both servers.
//!
//! Owns: that bootstrap. Must not: replace an existing internal CA key (a
//! broken one is an error), or log key material.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ObjectMeta, PostParams};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use tlsmint_ca::ExposeSecret as _;
use tlsmint_ca::{CaConfig, CertificateAuthority, KeyEncoding, KeySpec, Subject};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::metrics::ApiMetrics;
use super::rights::SubjectAccessReviewRights;
use super::tls::ServingCert;
use super::tokenreview::TokenReviewAuthenticator;
use super::{ApiArgs, ServeError, Services};
use crate::registry::Registry;
use crate::revocation::Revocations;
use crate::revocation::kube::ConfigMapStore;

/// Name of the Secret (and of the ConfigMap with its certificate) of the internal API CA.
pub const API_CA_NAME: &str = "tlsmint-api-ca";
/// Lifetime of the internal API CA.
const API_CA_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// The running cluster-mode APIs.
#[derive(Debug)]
pub struct ClusterApi {
    /// Give this to the CertificateRequest controller as its revocation sink.
    pub revocations: Arc<Revocations>,
    /// Both servers; ends after `shutdown`.
    pub task: JoinHandle<Result<(), ServeError>>,
    /// The internal API CA (it also signs the injector's serving certificate).
    pub ca: Arc<CertificateAuthority>,
}

/// Starting the cluster-mode APIs failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Reading or writing the internal CA's Secret or ConfigMap failed.
    #[error("{action} {kind} {namespace}/{name} failed: {reason}")]
    Kube {
        /// What was being done.
        action: &'static str,
        /// Secret or ConfigMap.
        kind: &'static str,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// What the API server said.
        reason: String,
    },
    /// The stored internal CA is unusable; it is never replaced automatically.
    #[error(
        "the internal API CA in Secret {namespace}/{API_CA_NAME} is unusable ({reason}); \
         fix or delete the Secret to let the operator create a new one"
    )]
    BadCa {
        /// Namespace.
        namespace: String,
        /// Why.
        reason: String,
    },
    /// The serving certificate could not be issued.
    #[error(transparent)]
    Tls(#[from] super::tls::TlsError),
    /// Binding a port failed.
    #[error(transparent)]
    Serve(#[from] ServeError),
}

/// Starts the APIs of one replica (see the module docs).
pub async fn start(
    client: kube::Client,
    namespace: &str,
    registry: Arc<Registry>,
    args: &ApiArgs,
    cpu: tlsmint_runtime::cpu::CpuPool,
    metrics: Arc<ApiMetrics>,
    shutdown: CancellationToken,
) -> Result<ClusterApi, ClusterError> {
    let ca = Arc::new(internal_ca(&client, namespace).await?);
    let ca_pem = ca.certificate_pem();
    publish_ca(&client, namespace, &ca_pem).await?;
    let names = args
        .serving_names
        .clone()
        .unwrap_or_else(|| default_serving_names(&args.service_name, namespace));
    let ttl = args.serving_cert_ttl.as_std();
    let serving = ServingCert::new();
    serving.issue_from(&ca, &names, ttl)?;
    let renew_ca = ca.clone();
    let internal_ca = ca.clone();
    tokio::spawn(serving.clone().keep_fresh(
        move || Some(renew_ca.clone()),
        names,
        ttl,
        shutdown.clone(),
    ));
    let revocations = Revocations::new(
        Arc::new(ConfigMapStore::new(client.clone(), namespace)),
        args.revocation_settings(),
    );
    let services = Services {
        registry,
        rights: Arc::new(SubjectAccessReviewRights::new(
            client.clone(),
            args.token_cache_ttl(),
        )),
        authenticator: Arc::new(TokenReviewAuthenticator::new(
            client,
            args.token_cache_ttl(),
            metrics.clone(),
        )),
        revocations: revocations.clone(),
        token_key: token_key(&ca),
        tls: Some(serving),
        cpu,
        metrics,
        dev_admin: false,
    };
    let listeners = super::bind(args, IpAddr::V4(Ipv4Addr::UNSPECIFIED))?;
    let args = args.clone();
    let task =
        tokio::spawn(async move { super::serve(listeners, services, &args, shutdown).await });
    Ok(ClusterApi {
        revocations,
        task,
        ca: internal_ca,
    })
}

/// `<service>`, `.<ns>`, `.<ns>.svc`, `.<ns>.svc.cluster.local`, `localhost`, `127.0.0.1`.
pub fn default_serving_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_owned(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
        "localhost".into(),
        "127.0.0.1".into(),
    ]
}

/// The key of Vault client tokens: derived from the internal CA key, so every
/// replica has the same one without another Secret.
fn token_key(ca: &CertificateAuthority) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(b"tlsmint vault client tokens v1\0");
    hash.update(ca.key().pkcs8_der());
    hash.finalize().into()
}

fn kube_err(action: &'static str, kind: &'static str, ns: &str, e: kube::Error) -> ClusterError {
    ClusterError::Kube {
        action,
        kind,
        namespace: ns.to_owned(),
        name: API_CA_NAME.to_owned(),
        reason: e.to_string(),
    }
}

/// Loads the internal CA, creating it once when its Secret does not exist.
async fn internal_ca(
    client: &kube::Client,
    ns: &str,
) -> Result<CertificateAuthority, ClusterError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    for _ in 0..3 {
        if let Some(secret) = secrets
            .get_opt(API_CA_NAME)
            .await
            .map_err(|e| kube_err("reading", "Secret", ns, e))?
        {
            return load(ns, &secret);
        }
        let cfg = CaConfig {
            name: "tlsmint-api".into(),
            subject: Subject::with_common_name("tlsmint API CA"),
            key: KeySpec::EcdsaP256,
            ttl: API_CA_TTL,
        };
        let ca =
            CertificateAuthority::generate_root(&cfg, OffsetDateTime::now_utc()).map_err(|e| {
                ClusterError::BadCa {
                    namespace: ns.to_owned(),
                    reason: e.to_string(),
                }
            })?;
        let key = ca
            .key()
            .to_pem(KeyEncoding::Pkcs8)
            .map_err(|e| ClusterError::BadCa {
                namespace: ns.to_owned(),
                reason: e.to_string(),
            })?;
        let secret = Secret {
            metadata: meta(),
            type_: Some(tlsmint_api::labels::TLS_SECRET_TYPE.into()),
            data: Some(BTreeMap::from([
                (
                    tlsmint_api::TLS_CERT_FILE.to_owned(),
                    ByteString(ca.certificate_pem().into_bytes()),
                ),
                (
                    tlsmint_api::TLS_KEY_FILE.to_owned(),
                    ByteString(key.expose_secret().as_bytes().to_vec()),
                ),
            ])),
            ..Secret::default()
        };
        match secrets.create(&PostParams::default(), &secret).await {
            Ok(_) => {
                tracing::info!(namespace = %ns, secret = API_CA_NAME, "internal API CA created");
                return Ok(ca);
            }
            // Another replica created it first: use theirs.
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            Err(e) => return Err(kube_err("creating", "Secret", ns, e)),
        }
    }
    Err(ClusterError::BadCa {
        namespace: ns.to_owned(),
        reason: "it kept changing while being read".into(),
    })
}

fn load(ns: &str, secret: &Secret) -> Result<CertificateAuthority, ClusterError> {
    let bad = |reason: String| ClusterError::BadCa {
        namespace: ns.to_owned(),
        reason,
    };
    let data = secret.data.clone().unwrap_or_default();
    let text = |key: &str| {
        data.get(key)
            .and_then(|v| String::from_utf8(v.0.clone()).ok())
            .ok_or_else(|| bad(format!("{key} is missing or not text")))
    };
    CertificateAuthority::from_pem(
        "tlsmint-api",
        &text(tlsmint_api::TLS_CERT_FILE)?,
        &text(tlsmint_api::TLS_KEY_FILE)?,
    )
    .map_err(|e| bad(e.to_string()))
}

fn meta() -> ObjectMeta {
    ObjectMeta {
        name: Some(API_CA_NAME.into()),
        labels: Some(BTreeMap::from([(
            tlsmint_api::labels::MANAGED_BY_LABEL.to_owned(),
            tlsmint_api::labels::MANAGED_BY.to_owned(),
        )])),
        ..ObjectMeta::default()
    }
}

/// Writes the internal CA certificate to the ConfigMap `tlsmint-api-ca` (`ca.crt`).
async fn publish_ca(client: &kube::Client, ns: &str, pem: &str) -> Result<(), ClusterError> {
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let data = BTreeMap::from([(tlsmint_api::CA_CERT_FILE.to_owned(), pem.to_owned())]);
    match maps
        .get_opt(API_CA_NAME)
        .await
        .map_err(|e| kube_err("reading", "ConfigMap", ns, e))?
    {
        Some(cm) if cm.data.as_ref() == Some(&data) => Ok(()),
        Some(mut cm) => {
            cm.data = Some(data);
            maps.replace(API_CA_NAME, &PostParams::default(), &cm)
                .await
                .map(|_| ())
                .or_else(|e| match e {
                    kube::Error::Api(s) if s.code == 409 => Ok(()),
                    e => Err(kube_err("updating", "ConfigMap", ns, e)),
                })
        }
        None => {
            let cm = ConfigMap {
                metadata: meta(),
                data: Some(data),
                ..ConfigMap::default()
            };
            maps.create(&PostParams::default(), &cm)
                .await
                .map(|_| ())
                .or_else(|e| match e {
                    kube::Error::Api(s) if s.code == 409 => Ok(()),
                    e => Err(kube_err("creating", "ConfigMap", ns, e)),
                })
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn token_key_is_stable_per_ca_and_differs_between_cas() {
        let cfg = CaConfig {
            name: "x".into(),
            subject: Subject::with_common_name("x"),
            key: KeySpec::EcdsaP256,
            ttl: Duration::from_secs(3600),
        };
        let a = CertificateAuthority::generate_root(&cfg, OffsetDateTime::now_utc()).unwrap();
        let b = CertificateAuthority::generate_root(&cfg, OffsetDateTime::now_utc()).unwrap();
        assert_eq!(token_key(&a), token_key(&a));
        assert_ne!(token_key(&a), token_key(&b));
    }

    #[test]
    fn serving_names_cover_the_service() {
        let names = default_serving_names("rel-operator", "tlsmint-system");
        assert!(names.contains(&"rel-operator.tlsmint-system.svc".to_owned()));
        assert!(names.contains(&"127.0.0.1".to_owned()));
    }

    #[test]
    fn a_secret_without_a_key_is_refused_not_replaced() {
        let secret = Secret {
            data: Some(BTreeMap::from([(
                "tls.crt".to_owned(),
                ByteString(b"x".to_vec()),
            )])),
            ..Secret::default()
        };
        let err = load("ns", &secret).unwrap_err().to_string();
        assert!(err.contains("tls.key"), "{err}");
    }
}
