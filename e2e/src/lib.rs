//! Helpers for end-to-end tests against the local cluster started by
//! `e2e/cluster/up` (see `e2e/cluster/README.md`).
//!
//! The tests find the cluster through the environment that `up` prints:
//! `KUBECONFIG` (required by every test), `K8S_BIN` (the folder with
//! `kubectl`, `helm`, ...) and `TEST_IMAGE` (the local busybox image).
//! Every test makes its own uniquely named objects and deletes them when it
//! ends, even when it fails, so tests run alone or in parallel.

pub mod chart;
pub mod operator;
pub mod proxy;

use std::fmt::Debug;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, Resource};
use kube::{Client, Config};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Label put on every namespace the tests create.
pub const E2E_LABEL: &str = "e2e.tlsmint.dev/test";

/// A default timeout for things that take a few seconds on the local cluster.
pub const TIMEOUT: Duration = Duration::from_secs(60);

const HINT: &str = "start the local cluster and export what it prints: \
    `set -a; eval \"$(e2e/cluster/up)\"; set +a` (or, for a running cluster, \
    `set -a; . /tmp/tlsmint-e2e/cluster.env; set +a`), \
    see e2e/cluster/README.md";

/// A required environment variable, with a hint on how to get it.
pub fn env(name: &str) -> Result<String> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => bail!("{name} is not set: {HINT}"),
    }
}

/// A client for the cluster in `$KUBECONFIG`.
pub async fn client() -> Result<Client> {
    let path = env("KUBECONFIG")?;
    let kubeconfig =
        Kubeconfig::read_from(&path).with_context(|| format!("reading KUBECONFIG={path}"))?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("loading KUBECONFIG={path}"))?;
    Client::try_from(config).context("building the Kubernetes client")
}

/// The busybox-style test image imported into the cluster (`$TEST_IMAGE`).
pub fn test_image() -> Result<String> {
    env("TEST_IMAGE")
}

/// A value of the running cluster's `cluster.env` (written by e2e/cluster/up): the
/// environment variable of that name if set, else the file's line.
pub fn cluster_env(key: &str) -> Result<String> {
    if let Ok(v) = std::env::var(key) {
        return Ok(v);
    }
    let state = std::env::var("TLSMINT_E2E_STATE").unwrap_or_else(|_| "/tmp/tlsmint-e2e".into());
    let path = std::path::Path::new(&state).join("cluster.env");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {} (is the local cluster up?)", path.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_owned)
        .with_context(|| format!("{key} is not in {}", path.display()))
}

/// `$K8S_BIN/<tool>`, e.g. `tool_path("kubectl")`.
pub fn tool_path(tool: &str) -> Result<std::path::PathBuf> {
    let path = std::path::Path::new(&env("K8S_BIN")?).join(tool);
    if !path.is_file() {
        bail!("{} does not exist: {HINT}", path.display());
    }
    Ok(path)
}

/// Runs `$K8S_BIN/kubectl ARGS` against `$KUBECONFIG`; its stdout on success,
/// an error with its stderr otherwise.
pub async fn kubectl<I, S>(args: I) -> Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let output = tokio::process::Command::new(tool_path("kubectl")?)
        .env("KUBECONFIG", env("KUBECONFIG")?)
        .args(&args)
        .output()
        .await
        .context("running kubectl")?;
    let shown = args
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    if !output.status.success() {
        bail!(
            "`kubectl {shown}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    String::from_utf8(output.stdout).with_context(|| format!("`kubectl {shown}` printed non-UTF-8"))
}

/// A name unique to this test process and call, valid as a DNS label:
/// `<prefix>-<suffix>`, at most 63 characters.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let seed = (nanos as u64)
        ^ (u64::from(std::process::id()) << 40)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let suffix = base36(seed);
    let keep = 62usize.saturating_sub(suffix.len()).min(prefix.len());
    let prefix = prefix[..keep].trim_end_matches('-');
    format!("{prefix}-{suffix}")
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    while n > 0 || out.is_empty() {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    out.truncate(8);
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// Deletes one object when dropped (also when the test panics), without
/// waiting for it to be gone. Works from inside a Tokio runtime.
#[derive(Debug)]
pub struct DeleteOnDrop {
    resource: ApiResource,
    namespace: Option<String>,
    name: String,
}

impl DeleteOnDrop {
    /// Arms deletion of the object `K` named `name` (in `namespace`, for
    /// namespaced kinds).
    pub fn new<K: Resource<DynamicType = ()>>(namespace: Option<&str>, name: &str) -> Self {
        Self {
            resource: ApiResource::erase::<K>(&()),
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
        }
    }
}

impl Drop for DeleteOnDrop {
    fn drop(&mut self) {
        // The test's runtime may be single-threaded and is blocked here, so
        // delete from a new thread with its own runtime and client.
        let resource = self.resource.clone();
        let namespace = self.namespace.clone();
        let name = self.name.clone();
        let what = format!("{} {}", resource.kind, name);
        let worker = std::thread::spawn(move || -> Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let client = client().await?;
                let api: Api<DynamicObject> = match &namespace {
                    Some(ns) => Api::namespaced_with(client, ns, &resource),
                    None => Api::all_with(client, &resource),
                };
                let params = DeleteParams::background();
                let delete = api.delete(&name, &params);
                match tokio::time::timeout(Duration::from_secs(15), delete).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(kube::Error::Api(e))) if e.code == 404 => Ok(()),
                    Ok(Err(e)) => Err(e.into()),
                    Err(_) => Err(anyhow!("timed out")),
                }
            })
        });
        match worker.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: cleanup of {what} failed: {e:#}"),
            Err(_) => eprintln!("warning: cleanup of {what} panicked"),
        }
    }
}

/// A namespace for one test, deleted (with everything in it) when dropped.
#[derive(Debug)]
pub struct TestNamespace {
    name: String,
    _delete: DeleteOnDrop,
}

impl TestNamespace {
    /// Creates a namespace named `<prefix>-<unique suffix>`.
    pub async fn create(client: &Client, prefix: &str) -> Result<Self> {
        let name = unique_name(prefix);
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([(E2E_LABEL.to_owned(), "true".to_owned())].into()),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        Ok(Self {
            _delete: DeleteOnDrop::new::<Namespace>(None, &name),
            name,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Polls `api.get(name)` until `cond` holds (an absent object never does).
/// On timeout the error shows the object as last seen.
pub async fn wait_for<K, F>(
    api: &Api<K>,
    name: &str,
    timeout: Duration,
    what: &str,
    cond: F,
) -> Result<K>
where
    K: Resource + Clone + Debug + DeserializeOwned + Serialize,
    F: Fn(&K) -> bool,
{
    let deadline = Instant::now() + timeout;
    let mut last: Option<K> = None;
    loop {
        match api.get_opt(name).await {
            Ok(Some(obj)) if cond(&obj) => return Ok(obj),
            Ok(obj) => last = obj,
            // Transient errors (e.g. a CRD not yet served) are retried.
            Err(e) if Instant::now() < deadline => eprintln!("wait_for {what}: {e}"),
            Err(e) => return Err(e).context(format!("waiting for {what}")),
        }
        if Instant::now() >= deadline {
            bail!(
                "timed out after {timeout:?} waiting for {what}; last seen: {}",
                shown(&last)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until `count` pods match `selector` and all of them are Running;
/// returns them. On timeout the error shows their status.
pub async fn wait_for_running_pods(
    api: &Api<Pod>,
    selector: &str,
    count: usize,
    timeout: Duration,
) -> Result<Vec<Pod>> {
    let deadline = Instant::now() + timeout;
    let params = ListParams::default().labels(selector);
    loop {
        let pods = api.list(&params).await.context("listing pods")?.items;
        let running = pods
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count();
        if pods.len() == count && running == count {
            return Ok(pods);
        }
        if Instant::now() >= deadline {
            let status: Vec<_> = pods.iter().map(|p| (&p.metadata.name, &p.status)).collect();
            bail!(
                "timed out after {timeout:?} waiting for {count} running pods ({selector}); \
                 {} found, {running} running: {}",
                pods.len(),
                shown(&Some(status))
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn shown<T: Serialize>(value: &Option<T>) -> String {
    let mut text = match value {
        Some(v) => serde_json::to_string(v).unwrap_or_else(|e| format!("<{e}>")),
        None => "nothing (not found)".to_owned(),
    };
    if text.len() > 4000 {
        let mut cut = 4000;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    text
}

/// A server certificate for `127.0.0.1` signed by a fresh throwaway CA.
#[derive(Debug)]
pub struct LoopbackCert {
    /// PEM of the CA: put it into a webhook's `caBundle`.
    pub ca_pem: String,
    /// TLS settings serving the certificate (HTTP/1.1).
    pub server_config: Arc<rustls::ServerConfig>,
}

impl LoopbackCert {
    pub fn generate() -> Result<Self> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose, SanType,
        };
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::default();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "tlsmint-e2e test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        params.subject_alt_names = vec![SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST))];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = params.signed_by(&key, &issuer)?;

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut server_config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )?;
        server_config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            ca_pem: ca_cert.pem(),
            server_config: Arc::new(server_config),
        })
    }
}

/// A boxed async request handler for [`HttpsServer`]: gets the request path
/// and body, returns a status and a JSON body.
pub type Handler = Arc<
    dyn Fn(String, Bytes) -> Pin<Box<dyn Future<Output = (StatusCode, Vec<u8>)> + Send>>
        + Send
        + Sync,
>;

/// An HTTPS server on `127.0.0.1:<random port>`, e.g. for admission webhooks
/// (the API server reaches it through `clientConfig.url`). Stops when dropped.
#[derive(Debug)]
pub struct HttpsServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl HttpsServer {
    pub async fn start(tls: Arc<rustls::ServerConfig>, handler: Handler) -> Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let acceptor = acceptor.clone();
                let handler = handler.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let handler = handler.clone();
                        async move {
                            let path = req.uri().path().to_owned();
                            let (status, body) = match req.into_body().collect().await {
                                Ok(body) => handler(path, body.to_bytes()).await,
                                Err(e) => (StatusCode::BAD_REQUEST, e.to_string().into_bytes()),
                            };
                            Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(body)))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, task })
    }

    /// `https://127.0.0.1:<port><path>`
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
