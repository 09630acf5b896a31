//! The driver's component-test bench: the real tonic CSI server on a Unix socket in a temp
//! folder, a tonic client over that socket, an in-process `tlsmint.v1.Issuer` that really
//! signs with the CA engine (and can deny a name or be down), and a mounter that records
//! mounts and empties a target when it is "unmounted" or the node "reboots", as a tmpfs
//! would.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use time::OffsetDateTime;
use tlsmint_ca::{
    CaConfig, CertificateAuthority, Identity, KeySpec, LeafProfile, NameRequest, Policy,
    PrivateKey, Role, Subject,
};
use tlsmint_client::proto::{self, issuer_server};
use tlsmint_csi::clock::Clock;
use tlsmint_csi::events::MemoryEvents;
use tlsmint_csi::issue::Issuer;
use tlsmint_csi::manager::{Config, Manager};
use tlsmint_csi::metrics::Metrics;
use tlsmint_csi::mount::{MountError, Mounter};
use tlsmint_csi::node::{IdentityService, NodeService, Plugin};
use tlsmint_csi::proto::csi::identity_client::IdentityClient;
use tlsmint_csi::proto::csi::node_client::NodeClient;
use tlsmint_csi::proto::csi::{self as pb, volume_capability};
use tlsmint_csi::server;
use tlsmint_csi::store::Store;
use tlsmint_runtime::cpu::CpuPool;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

/// The token every test pod presents (a canary: it must never show up in a log line).
pub const TOKEN: &str = "canary-token-eyJhbGciOiJSUzI1NiJ9.c2VjcmV0.do-not-log";

/// A two-level CA (root, intermediate) of the real engine.
pub struct FakeCa {
    pub root: CertificateAuthority,
    pub ca: CertificateAuthority,
    pub role: Role,
}

impl FakeCa {
    pub fn new(now: OffsetDateTime) -> Arc<Self> {
        let cfg = |name: &str, cn: &str| CaConfig {
            name: name.into(),
            subject: Subject::with_common_name(cn),
            key: KeySpec::EcdsaP256,
            ttl: Duration::from_secs(86400 * 365),
        };
        // Valid from a day back, so certificates signed on a clock that moves with the
        // paused tokio clock stay inside the CA's validity.
        let start = now - time::Duration::days(1);
        let root =
            CertificateAuthority::generate_root(&cfg("root", "CSI Test Root"), start).unwrap();
        let ca =
            CertificateAuthority::generate_intermediate(&cfg("int", "CSI Test Int"), &root, start)
                .unwrap();
        let role = Role {
            policy: Policy {
                role: "web".into(),
                allowed_domains: vec![],
                allow_bare_domains: false,
                allow_subdomains: false,
                allow_glob_domains: false,
                allow_wildcard_certificates: false,
                allow_localhost: true,
                allow_any_name: true,
                enforce_hostnames: true,
                allow_ip_sans: true,
                allowed_uri_sans: vec![],
                require_common_name: false,
            },
            profile: LeafProfile::default(),
        };
        Arc::new(FakeCa { root, ca, role })
    }
}

/// What the fake issuer does and saw.
#[derive(Default)]
pub struct IssuerState {
    /// Sign calls received.
    pub calls: AtomicU32,
    /// When set, every call fails with `Unavailable`.
    pub down: AtomicBool,
    /// Names refused with `PermissionDenied` and this message.
    pub denied: Mutex<HashMap<String, String>>,
    /// The bearer tokens seen, in order.
    pub tokens: Mutex<Vec<String>>,
    /// Serials issued, in order.
    pub serials: Mutex<Vec<String>>,
    /// The trust bundle (`ca_bundle_pem`) of Sign and GetCABundle; `None`: the root alone.
    pub bundle: Mutex<Option<String>>,
    /// GetCABundle calls received.
    pub bundle_calls: AtomicU32,
}

impl FakeIssuer {
    fn bundle(&self) -> String {
        self.state
            .bundle
            .lock()
            .unwrap()
            .clone()
            .unwrap_or_else(|| self.ca.root.certificate_pem())
    }
}

/// A `tlsmint.v1.Issuer` that signs CSRs with [`FakeCa`] on the test's clock.
pub struct FakeIssuer {
    pub ca: Arc<FakeCa>,
    pub clock: Clock,
    pub state: Arc<IssuerState>,
}

#[tonic::async_trait]
impl issuer_server::Issuer for FakeIssuer {
    async fn issue(
        &self,
        _req: tonic::Request<proto::IssueRequest>,
    ) -> Result<tonic::Response<proto::IssueResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented(
            "the CSI driver must call Sign, never Issue",
        ))
    }

    async fn sign(
        &self,
        req: tonic::Request<proto::SignRequest>,
    ) -> Result<tonic::Response<proto::SignResponse>, tonic::Status> {
        self.state.calls.fetch_add(1, Ordering::SeqCst);
        let auth = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        self.state.tokens.lock().unwrap().push(auth.clone());
        if self.state.down.load(Ordering::SeqCst) {
            return Err(tonic::Status::unavailable("the test issuer is down"));
        }
        if !auth.starts_with("Bearer ") {
            return Err(tonic::Status::unauthenticated("no bearer token"));
        }
        let req = req.into_inner();
        if req.role != "web" {
            return Err(tonic::Status::not_found(format!(
                "role {} not found",
                req.role
            )));
        }
        let names = req.names.unwrap_or_default();
        {
            let denied = self.state.denied.lock().unwrap();
            let all = std::iter::once(&names.common_name).chain(&names.dns_names);
            for name in all {
                if let Some(message) = denied.get(name) {
                    return Err(tonic::Status::permission_denied(message.clone()));
                }
            }
        }
        let names = NameRequest {
            common_name: Some(names.common_name).filter(|c| !c.is_empty()),
            dns_names: names.dns_names,
            ip_addresses: names.ip_addresses,
            uris: names.uris,
        };
        let identity = Identity {
            namespace: "default".into(),
            service_account: Some("web".into()),
        };
        let ttl = Duration::from_secs(if req.ttl_seconds == 0 {
            3600
        } else {
            req.ttl_seconds
        });
        let sign = tlsmint_ca::SignRequest {
            csr: req.csr,
            names,
            ttl: Some(ttl),
        };
        let issued = self
            .ca
            .ca
            .sign(&self.ca.role, &identity, &sign, self.clock.now())
            .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
        let serial = issued.serial.to_string();
        self.state.serials.lock().unwrap().push(serial.clone());
        Ok(tonic::Response::new(proto::SignResponse {
            certificate: Some(proto::IssuedCertificate {
                certificate_pem: issued.certificate_pem,
                ca_chain_pem: issued.ca_chain.pem.to_vec(),
                ca_bundle_pem: self.bundle(),
                serial_number: serial,
                not_before: Some(proto::timestamp(issued.not_before.unix_timestamp())),
                not_after: Some(proto::timestamp(issued.not_after.unix_timestamp())),
                warnings: issued.warnings,
            }),
        }))
    }

    async fn get_ca_bundle(
        &self,
        req: tonic::Request<proto::GetCaBundleRequest>,
    ) -> Result<tonic::Response<proto::GetCaBundleResponse>, tonic::Status> {
        self.state.bundle_calls.fetch_add(1, Ordering::SeqCst);
        let auth = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        self.state.tokens.lock().unwrap().push(auth.clone());
        if self.state.down.load(Ordering::SeqCst) {
            return Err(tonic::Status::unavailable("the test issuer is down"));
        }
        if !auth.starts_with("Bearer ") {
            return Err(tonic::Status::unauthenticated("no bearer token"));
        }
        if req.get_ref().role != "web" {
            return Err(tonic::Status::not_found("role not found"));
        }
        Ok(tonic::Response::new(proto::GetCaBundleResponse {
            ca_chain_pem: self.ca.ca.ca_chain_pem(),
            ca_bundle_pem: self.bundle(),
        }))
    }

    async fn check_policy(
        &self,
        _req: tonic::Request<proto::CheckPolicyRequest>,
    ) -> Result<tonic::Response<proto::CheckPolicyResponse>, tonic::Status> {
        Err(tonic::Status::unimplemented("the driver never asks"))
    }
}

/// A mounter that records mounts. "Unmounting" empties the target (a tmpfs's files vanish
/// with it) and a "reboot" forgets every mount and empties every target.
#[derive(Debug, Default)]
pub struct FakeMounter {
    mounted: Mutex<HashSet<PathBuf>>,
    /// Mounts ever made.
    pub mounts: AtomicU32,
    /// Unmounts ever made.
    pub unmounts: AtomicU32,
}

fn empty_folder(path: &Path) {
    if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            let p = entry.path();
            if p.symlink_metadata().is_ok_and(|m| m.is_dir()) {
                std::fs::remove_dir_all(&p).unwrap();
            } else {
                std::fs::remove_file(&p).unwrap();
            }
        }
    }
}

impl FakeMounter {
    pub fn mounted(&self) -> usize {
        self.mounted.lock().unwrap().len()
    }

    pub fn mounts(&self) -> u32 {
        self.mounts.load(Ordering::SeqCst)
    }

    pub fn reboot(&self) {
        let mut mounted = self.mounted.lock().unwrap();
        for target in mounted.drain() {
            empty_folder(&target);
        }
    }
}

impl Mounter for FakeMounter {
    fn is_our_tmpfs(&self, target: &Path) -> Result<bool, MountError> {
        Ok(self.mounted.lock().unwrap().contains(target))
    }

    fn mount_tmpfs(&self, target: &Path) -> Result<(), MountError> {
        let mut mounted = self.mounted.lock().unwrap();
        let fail = |reason: &str| MountError {
            op: "mounting a tmpfs at",
            path: target.to_owned(),
            reason: reason.into(),
        };
        if !target.is_dir() {
            return Err(fail("no such folder"));
        }
        if !mounted.insert(target.to_owned()) {
            return Err(fail(
                "already mounted (a second mount would hide the first)",
            ));
        }
        self.mounts.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn unmount(&self, target: &Path) -> Result<(), MountError> {
        let mut mounted = self.mounted.lock().unwrap();
        if !mounted.remove(target) {
            return Err(MountError {
                op: "unmounting",
                path: target.to_owned(),
                reason: "not mounted".into(),
            });
        }
        empty_folder(target);
        self.unmounts.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

pub fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tlsmint-csi-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One test's world: the fake issuer, the node's folders and the mounter (both survive a
/// driver restart), and the running driver.
pub struct Bench {
    pub root: PathBuf,
    pub pods: PathBuf,
    pub state_dir: PathBuf,
    pub ca: Arc<FakeCa>,
    pub issuer: Arc<IssuerState>,
    pub mounter: Arc<FakeMounter>,
    pub clock: Clock,
    pub events: Arc<MemoryEvents>,
    pub issuer_addr: std::net::SocketAddr,
    issuer_stop: CancellationToken,
}

/// A running driver: the manager, its renewal loop and the CSI server on its socket.
pub struct Driver {
    pub manager: Manager,
    pub node: NodeClient<Channel>,
    pub identity: IdentityClient<Channel>,
    pub socket: PathBuf,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Bench {
    /// Starts the fake issuer. Call inside a (paused) tokio runtime.
    pub async fn new(tag: &str) -> Self {
        let clock = Clock::tokio();
        let root = temp_dir(tag);
        let pods = root.join("kubelet/pods");
        let state_dir = root.join("state");
        std::fs::create_dir_all(&pods).unwrap();
        let ca = FakeCa::new(clock.now());
        let issuer = Arc::new(IssuerState::default());
        let service = issuer_server::IssuerServer::new(FakeIssuer {
            ca: ca.clone(),
            clock,
            state: issuer.clone(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer_addr = listener.local_addr().unwrap();
        let issuer_stop = CancellationToken::new();
        // The operator's own listener (TCP_NODELAY: without it Nagle and delayed ACKs add
        // 40 ms to every Sign).
        let incoming =
            tlsmint_runtime::listen::accept(listener, None, issuer_stop.clone()).unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, issuer_stop.clone().cancelled_owned()),
        );
        Bench {
            root,
            pods,
            state_dir,
            ca,
            issuer,
            mounter: Arc::new(FakeMounter::default()),
            clock,
            events: MemoryEvents::new(),
            issuer_addr,
            issuer_stop,
        }
    }

    pub fn sign_calls(&self) -> u32 {
        self.issuer.calls.load(Ordering::SeqCst)
    }

    pub fn set_down(&self, down: bool) {
        self.issuer.down.store(down, Ordering::SeqCst);
    }

    /// Makes Sign and GetCABundle answer with `pem` as the trust bundle.
    pub fn set_bundle(&self, pem: &str) {
        *self.issuer.bundle.lock().unwrap() = Some(pem.to_owned());
    }

    pub fn bundle_calls(&self) -> u32 {
        self.issuer.bundle_calls.load(Ordering::SeqCst)
    }

    pub fn deny(&self, name: &str, message: &str) {
        self.issuer
            .denied
            .lock()
            .unwrap()
            .insert(name.into(), message.into());
    }

    /// Starts a driver over the bench's state folder and mounter (as a restarted driver
    /// would find them), resuming from the metadata. Returns how many volumes resumed too.
    pub async fn start(&self) -> (Driver, usize) {
        let channel = Endpoint::from_shared(format!("http://{}", self.issuer_addr))
            .unwrap()
            .connect_lazy();
        let issuer = Issuer::new(channel, CpuPool::new(2));
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Metrics::register(&mut registry);
        let manager = Manager::new(
            Config {
                pods_dir: self.pods.clone(),
                events: self.events.clone(),
            },
            Store::open(&self.state_dir).unwrap(),
            self.mounter.clone(),
            issuer,
            self.clock,
            metrics,
        );
        let resumed = manager.resume().unwrap();
        let stop = CancellationToken::new();
        let renewals = manager.run(stop.clone());
        static N: AtomicU32 = AtomicU32::new(0);
        let socket = self
            .root
            .join(format!("csi-{}.sock", N.fetch_add(1, Ordering::SeqCst)));
        let listener = server::bind(&socket).unwrap();
        let plugin = Plugin {
            name: "csi.tlsmint.io".into(),
            version: "test".into(),
            node_id: "node-1".into(),
        };
        let csi = tokio::spawn(server::serve_csi(
            listener,
            IdentityService::new(plugin.clone()),
            NodeService::new(plugin, manager.clone()),
            stop.clone(),
        ));
        let channel = unix_channel(&socket).await;
        let driver = Driver {
            manager,
            node: NodeClient::new(channel.clone()),
            identity: IdentityClient::new(channel),
            socket,
            stop,
            tasks: vec![
                renewals,
                tokio::spawn(async move {
                    csi.await.unwrap().unwrap();
                }),
            ],
        };
        (driver, resumed)
    }

    /// A pod with a folder under the pods dir; its volume's target path.
    pub fn pod(&self, name: &str) -> Pod {
        let uid = format!("0b5e{:04x}-7c1d-4e2a-9f3b-{:012x}", name.len(), hash(name));
        std::fs::create_dir_all(self.pods.join(&uid).join("volumes/kubernetes.io~csi/certs"))
            .unwrap();
        Pod {
            name: name.into(),
            namespace: "default".into(),
            uid: uid.clone(),
            service_account: "web".into(),
            volume_id: format!("csi-{}", hash(name)),
            target: self
                .pods
                .join(uid)
                .join("volumes/kubernetes.io~csi/certs/mount"),
            attributes: vec![
                ("csi.tlsmint.io/role".into(), "web".into()),
                (
                    "csi.tlsmint.io/common-name".into(),
                    "${POD_NAME}.${POD_NAMESPACE}.svc".into(),
                ),
                ("csi.tlsmint.io/dns-names".into(), "${POD_NAME}".into()),
                ("csi.tlsmint.io/bundle-file".into(), "bundle.pem".into()),
            ],
            token_expires: None,
            token: TOKEN.into(),
        }
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        self.issuer_stop.cancel();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl Driver {
    /// Stops the driver as a killed process would stop (mounts and metadata stay).
    pub async fn stop(self) {
        self.stop.cancel();
        for task in self.tasks {
            task.await.unwrap();
        }
    }

    pub async fn publish(&mut self, pod: &Pod, clock: Clock) -> Result<(), tonic::Status> {
        self.node
            .node_publish_volume(pod.request(clock))
            .await
            .map(drop)
    }

    pub async fn unpublish(&mut self, volume_id: &str, target: &Path) -> Result<(), tonic::Status> {
        self.node
            .node_unpublish_volume(pb::NodeUnpublishVolumeRequest {
                volume_id: volume_id.into(),
                target_path: target.display().to_string(),
            })
            .await
            .map(drop)
    }
}

fn hash(s: &str) -> u64 {
    // FNV-1a: stable names from a pod name.
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }) & 0xffff_ffff_ffff
}

/// A pod and its one tlsmint volume.
#[derive(Clone, Debug)]
pub struct Pod {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub service_account: String,
    pub volume_id: String,
    pub target: PathBuf,
    pub attributes: Vec<(String, String)>,
    /// Token expiry (default: ten minutes from the request).
    pub token_expires: Option<OffsetDateTime>,
    pub token: String,
}

impl Pod {
    pub fn set(&mut self, key: &str, value: &str) {
        self.attributes.retain(|(k, _)| k != key);
        self.attributes.push((key.into(), value.into()));
    }

    /// The NodePublishVolumeRequest kubelet would send now.
    pub fn request(&self, clock: Clock) -> pb::NodePublishVolumeRequest {
        let expires = self
            .token_expires
            .unwrap_or_else(|| clock.now() + time::Duration::minutes(10));
        let tokens = serde_json::json!({
            "tlsmint": {
                "token": self.token,
                "expirationTimestamp": expires
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap(),
            }
        });
        let mut context: HashMap<String, String> = self.attributes.iter().cloned().collect();
        for (k, v) in [
            ("csi.storage.k8s.io/ephemeral", "true"),
            ("csi.storage.k8s.io/pod.name", &self.name),
            ("csi.storage.k8s.io/pod.namespace", &self.namespace),
            ("csi.storage.k8s.io/pod.uid", &self.uid),
            (
                "csi.storage.k8s.io/serviceAccount.name",
                &self.service_account,
            ),
        ] {
            context.insert(k.into(), v.into());
        }
        context.insert(
            "csi.storage.k8s.io/serviceAccount.tokens".into(),
            tokens.to_string(),
        );
        pb::NodePublishVolumeRequest {
            volume_id: self.volume_id.clone(),
            publish_context: HashMap::new(),
            staging_target_path: String::new(),
            target_path: self.target.display().to_string(),
            volume_capability: Some(pb::VolumeCapability {
                access_mode: Some(pb::volume_capability::AccessMode {
                    mode: pb::volume_capability::access_mode::Mode::SingleNodeWriter as i32,
                }),
                access_type: Some(volume_capability::AccessType::Mount(
                    volume_capability::MountVolume {
                        fs_type: String::new(),
                        mount_flags: vec![],
                        volume_mount_group: String::new(),
                    },
                )),
            }),
            readonly: true,
            secrets: HashMap::new(),
            volume_context: context,
        }
    }
}

/// A tonic channel over the Unix socket at `path`.
pub async fn unix_channel(path: &Path) -> Channel {
    let path = path.to_owned();
    Endpoint::from_static("http://csi.invalid")
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
        .await
        .unwrap()
}

/// What a volume's files hold.
#[derive(Debug)]
pub struct Files {
    pub serial: String,
    pub key_spki: Vec<u8>,
    pub cert_spki: Vec<u8>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub leaf_der: Vec<u8>,
    pub chain_der: Vec<Vec<u8>>,
    pub ca_der: Vec<Vec<u8>>,
}

impl Files {
    /// Reads `tls.crt`, `tls.key` and `ca.crt` of a target.
    pub fn read(target: &Path) -> Self {
        let certs = std::fs::read_to_string(target.join("tls.crt")).unwrap();
        let key = std::fs::read_to_string(target.join("tls.key")).unwrap();
        let ca = std::fs::read_to_string(target.join("ca.crt")).unwrap();
        let mut chain = tlsmint_ca::pem::decode_certificates(&certs).unwrap();
        let leaf = chain.remove(0);
        let info = tlsmint_ca::x509::parse_certificate(&leaf, "leaf").unwrap();
        Files {
            serial: info.serial.to_string(),
            key_spki: PrivateKey::from_pem(&key).unwrap().public_key_der(),
            cert_spki: info.spki_der,
            not_before: info.not_before,
            not_after: info.not_after,
            leaf_der: leaf,
            chain_der: chain,
            ca_der: tlsmint_ca::pem::decode_certificates(&ca).unwrap(),
        }
    }
}

/// Whether a bundle (key PEM, then leaf, then chain) pairs its key with its leaf.
pub fn bundle_matches(text: &str) -> Result<String, String> {
    let key_end = "-----END PRIVATE KEY-----";
    let end = text.find(key_end).ok_or("no key in the bundle")? + key_end.len();
    let key = PrivateKey::from_pem(&text[..end]).map_err(|e| e.to_string())?;
    let certs = tlsmint_ca::pem::decode_certificates(&text[end..]).map_err(|e| e.to_string())?;
    let leaf = certs.first().ok_or("no certificate in the bundle")?;
    let info = tlsmint_ca::x509::parse_certificate(leaf, "leaf").map_err(|e| e.to_string())?;
    if info.spki_der != key.public_key_der() {
        return Err(format!("key does not match certificate {}", info.serial));
    }
    Ok(info.serial.to_string())
}

/// Sleeps (virtual time) in small steps until `done`, at most `limit`.
pub async fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let step = Duration::from_millis(50);
    let mut waited = Duration::ZERO;
    while !done() {
        if waited >= limit {
            return false;
        }
        tokio::time::sleep(step).await;
        waited += step;
    }
    true
}

impl Driver {
    /// Lets `total` (virtual) time pass the way kubelet does: a republish of `pod` every
    /// 60 s (each with a fresh token). Republishes must succeed.
    pub async fn kubelet_for(&mut self, pod: &Pod, clock: Clock, total: Duration) {
        let step = Duration::from_secs(60);
        let mut left = total;
        while !left.is_zero() {
            let now = step.min(left);
            tokio::time::sleep(now).await;
            left -= now;
            self.publish(pod, clock).await.unwrap();
        }
    }
}

/// The (virtual) time from now until `at`, zero if past.
pub fn until(clock: Clock, at: OffsetDateTime) -> Duration {
    Duration::try_from(at - clock.now()).unwrap_or(Duration::ZERO)
}
