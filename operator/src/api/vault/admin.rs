//! Vault's setup writes: `sys/mounts/<path>` (enable, disable, tune),
//! `root/generate/*`, `intermediate/generate/*`, `root/sign-intermediate`,
//! `intermediate/set-signed`, `config/urls`, `config/crl`, `roles/<name>`
//! (write, delete), `tidy` and `crl/rotate`.
//!
//! In dev mode ([`DevAdmin`] present) they change the in-memory registry, so
//! the setup scripts of Vault's PKI tutorial run unchanged against
//! `tlsmint-operator dev --empty`; only the root token may use them. In a
//! cluster, mounts and roles are PkiMount and IssuerRole objects: these
//! writes answer 405 with the `kubectl apply` that does the same, except
//! `tidy` and `crl/rotate`, which work in both modes for a mount's
//! administrators (the `revoke` right).
//!
//! Owns: the dev-mode write state (CSRs waiting for `set-signed`, issuer
//! names) and the cluster refusals. Must not: return a CA key except to the
//! root token on an `exported` generate, or log one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::response::Response;
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tlsmint_ca::{
    CaConfig, CertificateAuthority, KeySpec, MountOptions, PendingIntermediate, Subject, Urls,
};

use super::envelope;
use super::inventory;
use super::params::{self, CommaList, Text, clip};
use super::role_write;
use crate::api::ApiState;
use crate::api::auth::Caller;
use crate::api::error::ApiError;
use crate::registry::{MountEntry, MountStatus, NotReady};
use tlsmint_api::conditions::reason;

/// Vault's default lifetime of a generated CA when `ttl` is not given (its
/// mount's max lease TTL, 32 days, is what Vault uses; tlsmint uses the
/// PkiMount defaults instead: 10 years for a root, 5 for an intermediate).
const ROOT_TTL: Duration = tlsmint_api::v1alpha1::defaults::ROOT_TTL.as_std();
const INTERMEDIATE_TTL: Duration = tlsmint_api::v1alpha1::defaults::INTERMEDIATE_TTL.as_std();

/// The dev-mode write state, beside the registry.
#[derive(Debug, Default)]
pub struct DevAdmin {
    mounts: Mutex<HashMap<String, DevMount>>,
}

/// What a dev mount has that its [`MountEntry`] does not hold.
#[derive(Debug, Default)]
struct DevMount {
    /// The key and CSR of `intermediate/generate`, until `set-signed`.
    pending: Option<PendingIntermediate>,
    /// `issuer_name` of the CA, when one was given.
    issuer_name: Option<String>,
    /// Options (max TTL, URLs) set before the mount had a CA.
    options: MountOptions,
}

impl DevAdmin {
    /// An empty state.
    pub fn new() -> Arc<Self> {
        Arc::new(DevAdmin::default())
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, DevMount>> {
        self.mounts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The `issuer_name` given to the mount's CA, if any.
    pub fn issuer_name(&self, mount: &str) -> Option<String> {
        self.lock().get(mount).and_then(|m| m.issuer_name.clone())
    }
}

/// An administrative write, found by [`sys_op`] or [`mount_op`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op<'a> {
    /// `POST sys/mounts/<path>`.
    EnableMount(&'a str),
    /// `DELETE sys/mounts/<path>`.
    DisableMount(&'a str),
    /// `POST sys/mounts/<path>/tune`.
    TuneMount(&'a str),
    /// `POST <mount>/root/generate/<internal|exported>`.
    GenerateRoot { exported: bool },
    /// `DELETE <mount>/root`.
    DeleteRoot,
    /// `POST <mount>/intermediate/generate/<internal|exported>`.
    GenerateIntermediate { exported: bool },
    /// `POST <mount>/root/sign-intermediate`.
    SignIntermediate,
    /// `POST <mount>/intermediate/set-signed`.
    SetSigned,
    /// `POST <mount>/config/urls`.
    ConfigUrls,
    /// `POST <mount>/config/crl`.
    ConfigCrl,
    /// `POST <mount>/roles/<name>`.
    WriteRole(&'a str),
    /// `DELETE <mount>/roles/<name>`.
    DeleteRole(&'a str),
    /// `POST <mount>/tidy`.
    Tidy,
    /// `GET|POST <mount>/crl/rotate`.
    RotateCrl,
}

impl Op<'_> {
    /// The audit and metrics name of the operation.
    pub fn name(&self) -> &'static str {
        match self {
            Op::EnableMount(_) => "mount-enable",
            Op::DisableMount(_) => "mount-disable",
            Op::TuneMount(_) => "mount-tune",
            Op::GenerateRoot { .. } => "root-generate",
            Op::DeleteRoot => "root-delete",
            Op::GenerateIntermediate { .. } => "intermediate-generate",
            Op::SignIntermediate => "root-sign-intermediate",
            Op::SetSigned => "intermediate-set-signed",
            Op::ConfigUrls => "config-urls",
            Op::ConfigCrl => "config-crl",
            Op::WriteRole(_) => "role-write",
            Op::DeleteRole(_) => "role-delete",
            Op::Tidy => "tidy",
            Op::RotateCrl => "crl-rotate",
        }
    }
}

/// The write `method` asks for on `sys/mounts/<rest>`, if any.
pub fn sys_op<'a>(rest: &'a str, method: &Method) -> Option<Op<'a>> {
    let write = method == Method::POST || method == Method::PUT;
    match rest.strip_suffix("/tune") {
        Some(path) if write => Some(Op::TuneMount(path)),
        Some(_) => None,
        None if write => Some(Op::EnableMount(rest)),
        None if method == Method::DELETE => Some(Op::DisableMount(rest)),
        None => None,
    }
}

/// The write `method` asks for on a mount's `segments`, if any.
pub fn mount_op<'a>(segments: &[&'a str], method: &Method) -> Option<Op<'a>> {
    let write = method == Method::POST || method == Method::PUT;
    let delete = method == Method::DELETE;
    let kind = |k: &str| match k {
        "internal" => Some(false),
        "exported" => Some(true),
        _ => None,
    };
    match segments {
        ["root", "generate", k] if write => kind(k).map(|exported| Op::GenerateRoot { exported }),
        ["root"] if delete => Some(Op::DeleteRoot),
        ["intermediate", "generate", k] if write => {
            kind(k).map(|exported| Op::GenerateIntermediate { exported })
        }
        ["root", "sign-intermediate"] if write => Some(Op::SignIntermediate),
        ["intermediate", "set-signed"] if write => Some(Op::SetSigned),
        ["config", "urls"] if write => Some(Op::ConfigUrls),
        ["config", "crl"] if write => Some(Op::ConfigCrl),
        ["roles", name] if write => Some(Op::WriteRole(name)),
        ["roles", name] if delete => Some(Op::DeleteRole(name)),
        ["tidy"] if write => Some(Op::Tidy),
        ["crl", "rotate"] if write || method == Method::GET => Some(Op::RotateCrl),
        _ => None,
    }
}

/// Answers an administrative write. `mount` is the mount the path named
/// (`None` for `sys/mounts`).
pub async fn handle(
    state: &ApiState,
    headers: &http::HeaderMap,
    mount: Option<Arc<MountEntry>>,
    op: Op<'_>,
    body: &[u8],
) -> Response {
    let caller = match super::caller(state, headers, op.name()).await {
        Ok(caller) => caller,
        Err(e) => return envelope::error(&e),
    };
    let result = match (&state.admin, op, &mount) {
        (_, Op::Tidy, Some(mount)) => tidy(state, &caller, mount).await,
        (_, Op::RotateCrl, Some(mount)) => rotate_crl(state, &caller, mount).await,
        (None, op, mount) => return cluster_refusal(op, mount.as_deref()),
        (Some(_), _, _) if !caller.root => Err(ApiError::PermissionDenied(
            "permission denied: in dev mode only the root token may change mounts, CAs and roles"
                .into(),
        )),
        (Some(admin), op, mount) => dev_write(state, admin, mount.as_deref(), op, body).await,
    };
    result.unwrap_or_else(|e| envelope::error(&e))
}

async fn dev_write(
    state: &ApiState,
    admin: &DevAdmin,
    mount: Option<&MountEntry>,
    op: Op<'_>,
    body: &[u8],
) -> Result<Response, ApiError> {
    let mount = match (op, mount) {
        (Op::EnableMount(path), _) => return enable_mount(state, path, body),
        (Op::DisableMount(path), _) => return disable_mount(state, admin, path),
        (Op::TuneMount(path), _) => return tune_mount(state, admin, path, body),
        (_, Some(mount)) => mount,
        (_, None) => {
            return Err(ApiError::Internal(
                "a mount operation without a mount".into(),
            ));
        }
    };
    match op {
        Op::GenerateRoot { exported } => generate_root(state, admin, mount, exported, body).await,
        Op::DeleteRoot => delete_root(state, admin, mount),
        Op::GenerateIntermediate { exported } => {
            generate_intermediate(admin, mount, exported, body).await
        }
        Op::SignIntermediate => sign_intermediate(admin, mount, body).await,
        Op::SetSigned => set_signed(state, admin, mount, body),
        Op::ConfigUrls => config_urls(state, admin, mount, body),
        Op::ConfigCrl => config_crl(state, mount, body),
        Op::WriteRole(name) => role_write::write(state, mount, name, body),
        Op::DeleteRole(name) => role_write::delete(state, mount, name),
        _ => Err(ApiError::Internal("unrouted admin operation".into())),
    }
}

/// The 405 a cluster gives for a write that is a Kubernetes object there.
fn cluster_refusal(op: Op<'_>, mount: Option<&MountEntry>) -> Response {
    let path = match (op, mount) {
        (Op::EnableMount(p) | Op::DisableMount(p) | Op::TuneMount(p), _) => p.to_owned(),
        (_, Some(m)) => m.path.clone(),
        (_, None) => String::new(),
    };
    let path = clip(path.trim_matches('/'));
    let how = match (op, mount) {
        (Op::WriteRole(role) | Op::DeleteRole(role), Some(m)) => format!(
            "roles are IssuerRole objects here: {} an IssuerRole named {:?} with spec.mountRef.name {:?} (docs/crds.md)",
            if matches!(op, Op::DeleteRole(_)) {
                "kubectl delete issuerrole"
            } else {
                "kubectl apply -f"
            },
            clip(role),
            m.name
        ),
        (Op::DisableMount(_), _) => format!(
            "mounts are PkiMount objects here: kubectl delete pkimount the one with spec.path {path:?}"
        ),
        _ => format!(
            "mounts and their CAs are PkiMount objects here: kubectl apply -f a PkiMount with spec.path {path:?} \
             (type Root, or Intermediate with parentRef or signedCertificateSecretRef; urls, crl, maxTTL; docs/crds.md)"
        ),
    };
    let mut resp = envelope::json_response(
        StatusCode::METHOD_NOT_ALLOWED,
        json!({ "errors": [format!("tlsmint does not change its configuration through this API in a cluster ({}): {how}", op.name())] }),
    );
    resp.headers_mut()
        .insert(http::header::ALLOW, http::HeaderValue::from_static("GET"));
    resp
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EnableBody {
    #[serde(rename = "type")]
    kind: Text,
    config: Option<MountConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct MountConfig {
    max_lease_ttl: Text,
    default_lease_ttl: Text,
}

/// `POST sys/mounts/<path>` `{"type":"pki"}`: a mount with no CA yet.
fn enable_mount(state: &ApiState, path: &str, body: &[u8]) -> Result<Response, ApiError> {
    let body: EnableBody = params::parse(body)?;
    let path = crate::registry::normalize_path(path).to_owned();
    if path.is_empty() {
        return Err(ApiError::InvalidArgument("a mount needs a path".into()));
    }
    match body.kind.get() {
        Some("pki") => {}
        Some(other) => {
            return Err(ApiError::InvalidArgument(format!(
                "tlsmint serves only the pki secrets engine; type {:?} is not available",
                clip(other)
            )));
        }
        None => {
            return Err(ApiError::InvalidArgument(
                "a mount needs a type: tlsmint serves only \"pki\"".into(),
            ));
        }
    }
    if state.registry.mount_by_path(&path).is_some() {
        return Err(ApiError::InvalidArgument(format!(
            "path is already in use at {path}/"
        )));
    }
    let name = mount_name(&path);
    if let Some(other) = state.registry.mount(&name) {
        return Err(ApiError::InvalidArgument(format!(
            "path {path}/ would make mount {name}, which already serves {}/: pick another path",
            other.path
        )));
    }
    let config = body.config.unwrap_or_default();
    let max_ttl = params::ttl("config.max_lease_ttl", &config.max_lease_ttl)?;
    params::ttl("config.default_lease_ttl", &config.default_lease_ttl)?;
    let entry = MountEntry {
        name: name.clone(),
        path,
        status: no_ca(),
        crl_expiry: tlsmint_api::v1alpha1::defaults::CRL_EXPIRY.as_std(),
        trusted_roots: Vec::new(),
        other_generations: Vec::new(),
    };
    state
        .registry
        .put_mount(entry)
        .map_err(|e| ApiError::InvalidArgument(e.to_string()))?;
    if let Some(admin) = &state.admin {
        admin.lock().insert(
            name,
            DevMount {
                options: MountOptions {
                    max_ttl,
                    ..MountOptions::default()
                },
                ..DevMount::default()
            },
        );
    }
    Ok(envelope::no_content())
}

/// The mount (PkiMount) name of a Vault path: an object name, so `pki_int`
/// becomes `pki-int`, as the tutorial setup names it.
fn mount_name(path: &str) -> String {
    let name: String = path
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '.' | '-') => c,
            _ => '-',
        })
        .collect();
    let name = name.trim_matches(|c| c == '-' || c == '.');
    if name.is_empty() {
        "mount".to_owned()
    } else {
        name.chars().take(253).collect()
    }
}

fn no_ca() -> MountStatus {
    MountStatus::NotReady(NotReady::new(
        reason::PENDING,
        "the mount has no CA yet: write root/generate/internal, or intermediate/generate/internal then set-signed",
    ))
}

/// `DELETE sys/mounts/<path>`: the mount and its roles go.
fn disable_mount(state: &ApiState, admin: &DevAdmin, path: &str) -> Result<Response, ApiError> {
    let path = crate::registry::normalize_path(path);
    // Vault answers a disable of an unknown path with success too.
    if let Some(mount) = state.registry.mount_by_path(path) {
        for role in state.registry.roles_of(&mount.name) {
            state.registry.remove_role(&role.name);
        }
        state.registry.remove_mount(&mount.name);
        admin.lock().remove(&mount.name);
    }
    Ok(envelope::no_content())
}

/// `POST sys/mounts/<path>/tune` `{"max_lease_ttl": "87600h"}`.
fn tune_mount(
    state: &ApiState,
    admin: &DevAdmin,
    path: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let body: MountConfig = params::parse(body)?;
    let path = crate::registry::normalize_path(path);
    let mount = state
        .registry
        .mount_by_path(path)
        .ok_or_else(|| ApiError::InvalidArgument(format!("no mount at {}/", clip(path))))?;
    params::ttl("default_lease_ttl", &body.default_lease_ttl)?;
    if let Some(max_ttl) = params::ttl("max_lease_ttl", &body.max_lease_ttl)? {
        change_options(state, admin, &mount, |o| o.max_ttl = Some(max_ttl))?;
    }
    Ok(envelope::no_content())
}

/// Changes a mount's options: on its CA when it has one, else kept for the
/// CA it will get.
fn change_options(
    state: &ApiState,
    admin: &DevAdmin,
    mount: &MountEntry,
    change: impl FnOnce(&mut MountOptions),
) -> Result<(), ApiError> {
    let mut mounts = admin.lock();
    let dev = mounts.entry(mount.name.clone()).or_default();
    match mount.ca() {
        Some(ca) => {
            let mut options = ca.options().clone();
            change(&mut options);
            let ca = ca.rebuilt_with(options.clone())?;
            dev.options = options;
            put_status(state, mount, MountStatus::Ready(Arc::new(ca)))
        }
        None => {
            change(&mut dev.options);
            Ok(())
        }
    }
}

/// Replaces the mount's status, keeping the rest of its entry.
fn put_status(state: &ApiState, mount: &MountEntry, status: MountStatus) -> Result<(), ApiError> {
    state
        .registry
        .put_mount(MountEntry {
            name: mount.name.clone(),
            path: mount.path.clone(),
            status,
            crl_expiry: mount.crl_expiry,
            trusted_roots: Vec::new(),
            other_generations: Vec::new(),
        })
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// The body of `root/generate` and `intermediate/generate`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GenerateBody {
    common_name: Text,
    ttl: Text,
    key_type: Text,
    key_bits: Text,
    issuer_name: Text,
    organization: CommaList,
    ou: CommaList,
    country: CommaList,
    locality: CommaList,
    province: CommaList,
}

impl GenerateBody {
    fn config(&self, mount: &MountEntry, default_ttl: Duration) -> Result<CaConfig, ApiError> {
        let common_name = self
            .common_name
            .get()
            .ok_or_else(|| ApiError::InvalidArgument("the common_name field is required".into()))?;
        Ok(CaConfig {
            name: mount.name.clone(),
            subject: Subject {
                common_name: common_name.to_owned(),
                organization: self.organization.0.clone(),
                organizational_unit: self.ou.0.clone(),
                country: self.country.0.clone(),
                province: self.province.0.clone(),
                locality: self.locality.0.clone(),
            },
            key: key_spec(&self.key_type, &self.key_bits)?,
            ttl: params::ttl("ttl", &self.ttl)?.unwrap_or(default_ttl),
        })
    }
}

/// Vault's `key_type` (`rsa` by default, `ec`, `ed25519`) and `key_bits`.
pub fn key_spec(key_type: &Text, key_bits: &Text) -> Result<KeySpec, ApiError> {
    let bits = match key_bits.get() {
        None | Some("0") => None,
        Some(text) => Some(text.parse::<u32>().map_err(|_| {
            ApiError::InvalidArgument(format!("key_bits {:?} is not a number", clip(text)))
        })?),
    };
    let spec = match (key_type.get().unwrap_or("rsa"), bits) {
        ("rsa", None | Some(2048)) => KeySpec::Rsa2048,
        ("rsa", Some(3072)) => KeySpec::Rsa3072,
        ("rsa", Some(4096)) => KeySpec::Rsa4096,
        ("ec", None | Some(256)) => KeySpec::EcdsaP256,
        ("ec", Some(384)) => KeySpec::EcdsaP384,
        ("ed25519", None) => KeySpec::Ed25519,
        ("ec", Some(521)) => {
            return Err(ApiError::InvalidArgument(
                "key_bits 521: tlsmint does not generate P-521 keys (use 256 or 384)".into(),
            ));
        }
        (kind @ ("rsa" | "ec" | "ed25519"), Some(bits)) => {
            return Err(ApiError::InvalidArgument(format!(
                "key_bits {bits} is not valid for key_type {kind} (rsa: 2048, 3072, 4096; ec: 256, 384; ed25519: none)"
            )));
        }
        (other, _) => {
            return Err(ApiError::InvalidArgument(format!(
                "key_type {:?} is not rsa, ec or ed25519",
                clip(other)
            )));
        }
    };
    Ok(spec)
}

/// Refuses to replace a CA: tlsmint holds one issuer per mount.
fn no_ca_yet(mount: &MountEntry) -> Result<(), ApiError> {
    if mount.ca().is_some() {
        return Err(ApiError::InvalidArgument(format!(
            "mount {} already has a CA and tlsmint holds one issuer per mount: \
             DELETE /v1/{}/root first (every certificate it issued stops verifying)",
            mount.name, mount.path
        )));
    }
    Ok(())
}

/// Runs CPU-heavy CA work (RSA key generation) on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, tlsmint_ca::Error> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(format!("CA work failed: {e}")))?
        .map_err(ApiError::from)
}

/// `POST <mount>/root/generate/<internal|exported>`.
async fn generate_root(
    state: &ApiState,
    admin: &DevAdmin,
    mount: &MountEntry,
    exported: bool,
    body: &[u8],
) -> Result<Response, ApiError> {
    let body: GenerateBody = params::parse(body)?;
    no_ca_yet(mount)?;
    let cfg = body.config(mount, ROOT_TTL)?;
    let options = admin
        .lock()
        .get(&mount.name)
        .map(|m| m.options.clone())
        .unwrap_or_default();
    let ca = blocking(move || {
        CertificateAuthority::generate_root(&cfg, OffsetDateTime::now_utc())?.with_options(options)
    })
    .await?;
    let ca = Arc::new(ca);
    let mut data = ca_data(&ca, body.issuer_name.get().unwrap_or(""));
    if exported {
        add_key(&mut data, ca.key())?;
    }
    admin
        .lock()
        .entry(mount.name.clone())
        .or_default()
        .issuer_name = body.issuer_name.get().map(str::to_owned);
    put_status(state, mount, MountStatus::Ready(ca))?;
    Ok(envelope::data(data, &[]))
}

/// The answer of a CA generate: what Vault returns about the new issuer.
fn ca_data(ca: &CertificateAuthority, issuer_name: &str) -> Value {
    let info = ca.info();
    json!({
        "certificate": ca.certificate_pem().trim_end(),
        "issuing_ca": ca.ca_chain_pem().last().map_or("", |p| p.trim_end()),
        "serial_number": info.serial.to_colon_hex(),
        "expiration": info.not_after.unix_timestamp(),
        "issuer_id": inventory::issuer_id(ca),
        "issuer_name": issuer_name,
        "key_id": inventory::key_id(ca),
        "key_name": "",
    })
}

/// Adds the private key to an `exported` answer, in Vault's encoding.
fn add_key(data: &mut Value, key: &tlsmint_ca::PrivateKey) -> Result<(), ApiError> {
    data["private_key"] =
        Value::String(super::pki::private_key(key, super::pki::Format::Pem, None)?);
    data["private_key_type"] = Value::String(key.spec().vault_type().to_owned());
    Ok(())
}

/// `DELETE <mount>/root`: the mount loses its CA (Vault deletes every issuer).
fn delete_root(
    state: &ApiState,
    admin: &DevAdmin,
    mount: &MountEntry,
) -> Result<Response, ApiError> {
    if let Some(dev) = admin.lock().get_mut(&mount.name) {
        dev.pending = None;
        dev.issuer_name = None;
    }
    put_status(state, mount, no_ca())?;
    Ok(envelope::no_content())
}

/// `POST <mount>/intermediate/generate/<internal|exported>`: a key and its
/// CSR, kept until `set-signed`.
async fn generate_intermediate(
    admin: &DevAdmin,
    mount: &MountEntry,
    exported: bool,
    body: &[u8],
) -> Result<Response, ApiError> {
    let body: GenerateBody = params::parse(body)?;
    no_ca_yet(mount)?;
    let cfg = body.config(mount, INTERMEDIATE_TTL)?;
    let pending = blocking(move || PendingIntermediate::generate(&cfg)).await?;
    let mut data = json!({
        "csr": pending.csr_pem().trim_end(),
        "key_id": inventory::colon_hex(&key_fingerprint(&pending.key().public_key_der())),
    });
    if exported {
        add_key(&mut data, pending.key())?;
    }
    let mut mounts = admin.lock();
    let dev = mounts.entry(mount.name.clone()).or_default();
    dev.pending = Some(pending);
    dev.issuer_name = body.issuer_name.get().map(str::to_owned);
    Ok(envelope::data(data, &[]))
}

/// A stable id of a key before it has a certificate: the first 20 bytes of
/// the SHA-256 of its SubjectPublicKeyInfo.
fn key_fingerprint(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)[..20].to_vec()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SignIntermediateBody {
    csr: Text,
    common_name: Text,
    ttl: Text,
    format: Text,
    issuer_ref: Text,
}

/// `POST <mount>/root/sign-intermediate`: this mount's CA signs a CSR as a CA.
async fn sign_intermediate(
    admin: &DevAdmin,
    mount: &MountEntry,
    body: &[u8],
) -> Result<Response, ApiError> {
    let body: SignIntermediateBody = params::parse(body)?;
    let ca = mount.ca().cloned().ok_or_else(|| {
        ApiError::FailedPrecondition(format!("mount {} has no CA to sign with", mount.name))
    })?;
    check_issuer_ref(admin, mount, &ca, &body.issuer_ref)?;
    let csr = body
        .csr
        .get()
        .ok_or_else(|| ApiError::InvalidArgument("the csr field is required".into()))?
        .to_owned();
    let format = super::pki::Format::parse(body.format.get())?;
    let common_name = body.common_name.get().map(str::to_owned);
    let ttl = params::ttl("ttl", &body.ttl)?.unwrap_or(INTERMEDIATE_TTL);
    let signer = ca.clone();
    let der = blocking(move || {
        signer.sign_intermediate(
            csr.as_bytes(),
            common_name.as_deref(),
            ttl,
            OffsetDateTime::now_utc(),
        )
    })
    .await?;
    let info = tlsmint_ca::x509::parse_certificate(&der, "intermediate CA")?;
    let pem = tlsmint_ca::pem::encode_certificate(&der);
    let chain: Vec<String> = ca
        .ca_chain()
        .der
        .iter()
        .zip(ca.ca_chain().pem.iter())
        .map(|(d, p)| format.cert(d, p).into_owned())
        .collect();
    let leaf = format.cert(&der, &pem).into_owned();
    let issuing_ca = chain.first().cloned().unwrap_or_default();
    let certificate = if format == super::pki::Format::PemBundle {
        format!("{leaf}\n{}", chain.join("\n"))
    } else {
        leaf
    };
    Ok(envelope::data(
        json!({
            "certificate": certificate,
            "issuing_ca": issuing_ca,
            "ca_chain": chain,
            "serial_number": info.serial.to_colon_hex(),
            "expiration": info.not_after.unix_timestamp(),
        }),
        &[],
    ))
}

/// Accepts the references Vault does for the one issuer of a mount.
fn check_issuer_ref(
    admin: &DevAdmin,
    mount: &MountEntry,
    ca: &CertificateAuthority,
    reference: &Text,
) -> Result<(), ApiError> {
    let Some(reference) = reference.get() else {
        return Ok(());
    };
    let named = admin.issuer_name(&mount.name);
    if reference == "default"
        || reference == mount.name
        || reference == inventory::issuer_id(ca)
        || named.as_deref() == Some(reference)
    {
        return Ok(());
    }
    Err(ApiError::InvalidArgument(format!(
        "unable to find PKI issuer for reference: {}",
        clip(reference)
    )))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SetSignedBody {
    certificate: Text,
}

/// `POST <mount>/intermediate/set-signed`: the signed certificate of the
/// pending key makes the mount's CA.
fn set_signed(
    state: &ApiState,
    admin: &DevAdmin,
    mount: &MountEntry,
    body: &[u8],
) -> Result<Response, ApiError> {
    let body: SetSignedBody = params::parse(body)?;
    let certificate = body
        .certificate
        .get()
        .ok_or_else(|| ApiError::InvalidArgument("the certificate field is required".into()))?;
    no_ca_yet(mount)?;
    let mut mounts = admin.lock();
    let dev = mounts.entry(mount.name.clone()).or_default();
    // A refused certificate leaves the pending key in place, so a corrected
    // certificate can still be set.
    let ca = dev
        .pending
        .as_ref()
        .ok_or_else(|| {
            ApiError::InvalidArgument(format!(
                "mount {} has no pending intermediate key: write intermediate/generate/internal first",
                mount.name
            ))
        })?
        .complete_with(certificate)
        .and_then(|ca| ca.with_options(dev.options.clone()))?;
    dev.pending = None;
    let id = inventory::issuer_id(&ca);
    let key_id = inventory::key_id(&ca);
    drop(mounts);
    put_status(state, mount, MountStatus::Ready(Arc::new(ca)))?;
    Ok(envelope::data(
        json!({
            "imported_issuers": [id.clone()],
            "imported_keys": [key_id.clone()],
            "mapping": { id: key_id },
            "existing_issuers": null,
            "existing_keys": null,
        }),
        &[],
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct UrlsBody {
    issuing_certificates: Option<CommaList>,
    crl_distribution_points: Option<CommaList>,
    ocsp_servers: Option<CommaList>,
}

/// `POST <mount>/config/urls`: the URLs written into later leaves.
fn config_urls(
    state: &ApiState,
    admin: &DevAdmin,
    mount: &MountEntry,
    body: &[u8],
) -> Result<Response, ApiError> {
    let body: UrlsBody = params::parse(body)?;
    let current = mount
        .ca()
        .map(|ca| ca.options().urls.clone())
        .unwrap_or_else(|| {
            admin
                .lock()
                .get(&mount.name)
                .map(|m| m.options.urls.clone())
                .unwrap_or_default()
        });
    let urls = Urls {
        issuing_certificates: body
            .issuing_certificates
            .map_or(current.issuing_certificates, |l| l.0),
        crl_distribution_points: body
            .crl_distribution_points
            .map_or(current.crl_distribution_points, |l| l.0),
        ocsp_servers: body.ocsp_servers.map_or(current.ocsp_servers, |l| l.0),
    };
    urls.validate()?;
    change_options(state, admin, mount, |o| o.urls = urls)?;
    Ok(envelope::no_content())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CrlBody {
    expiry: Text,
    disable: Text,
}

/// `POST <mount>/config/crl`: the validity of each CRL.
fn config_crl(state: &ApiState, mount: &MountEntry, body: &[u8]) -> Result<Response, ApiError> {
    let body: CrlBody = params::parse(body)?;
    if body.disable.get() == Some("true") {
        return Err(ApiError::InvalidArgument(
            "disable=true: tlsmint always publishes a CRL (revoked short-lived certificates drop off it when they expire)".into(),
        ));
    }
    let Some(expiry) = params::ttl("expiry", &body.expiry)? else {
        return Ok(envelope::no_content());
    };
    if expiry.is_zero() {
        return Err(ApiError::InvalidArgument(
            "expiry must be greater than zero".into(),
        ));
    }
    state
        .registry
        .put_mount(MountEntry {
            name: mount.name.clone(),
            path: mount.path.clone(),
            status: mount.status.clone(),
            crl_expiry: expiry,
            trusted_roots: Vec::new(),
            other_generations: Vec::new(),
        })
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(envelope::no_content())
}

/// `POST <mount>/tidy`: prunes revocation records past their certificate's
/// expiry (tlsmint stores no certificates, so there is nothing else to tidy).
async fn tidy(state: &ApiState, caller: &Caller, mount: &MountEntry) -> Result<Response, ApiError> {
    state.rights.may_revoke(caller, &mount.name).await?;
    rebuild_crl(state, mount).await?;
    let mut resp = envelope::data(
        Value::Null,
        &["Tidy operation successfully started. Any information from the operation will be printed to the server's logs.".to_owned()],
    );
    *resp.status_mut() = StatusCode::ACCEPTED;
    Ok(resp)
}

/// `crl/rotate`: a fresh CRL now.
async fn rotate_crl(
    state: &ApiState,
    caller: &Caller,
    mount: &MountEntry,
) -> Result<Response, ApiError> {
    state.rights.may_revoke(caller, &mount.name).await?;
    rebuild_crl(state, mount).await?;
    Ok(envelope::data(json!({ "success": true }), &[]))
}

async fn rebuild_crl(state: &ApiState, mount: &MountEntry) -> Result<(), ApiError> {
    let ca = mount
        .ca()
        .ok_or_else(|| ApiError::FailedPrecondition(format!("mount {} has no CA", mount.name)))?;
    state
        .revocations
        .rebuild(mount, ca, OffsetDateTime::now_utc())
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_found_by_method_and_path() {
        let post = Method::POST;
        assert_eq!(
            mount_op(&["root", "generate", "internal"], &post),
            Some(Op::GenerateRoot { exported: false })
        );
        assert_eq!(
            mount_op(&["intermediate", "generate", "exported"], &Method::PUT),
            Some(Op::GenerateIntermediate { exported: true })
        );
        assert_eq!(mount_op(&["root", "generate", "kms"], &post), None);
        assert_eq!(
            mount_op(&["roles", "web"], &post),
            Some(Op::WriteRole("web"))
        );
        assert_eq!(
            mount_op(&["roles", "web"], &Method::DELETE),
            Some(Op::DeleteRole("web"))
        );
        // Reads of the same paths are not writes.
        assert_eq!(mount_op(&["roles", "web"], &Method::GET), None);
        assert_eq!(mount_op(&["config", "urls"], &Method::GET), None);
        assert_eq!(
            mount_op(&["crl", "rotate"], &Method::GET),
            Some(Op::RotateCrl)
        );
        assert_eq!(sys_op("pki", &post), Some(Op::EnableMount("pki")));
        assert_eq!(sys_op("pki/tune", &post), Some(Op::TuneMount("pki")));
        assert_eq!(
            sys_op("pki", &Method::DELETE),
            Some(Op::DisableMount("pki"))
        );
        assert_eq!(sys_op("pki", &Method::GET), None);
        assert_eq!(sys_op("pki/tune", &Method::GET), None);
    }

    #[test]
    fn mount_names_are_object_names() {
        assert_eq!(mount_name("pki_int"), "pki-int");
        assert_eq!(mount_name("team/PKI"), "team-pki");
        assert_eq!(mount_name("__"), "mount");
    }

    #[test]
    fn vault_key_types_map_or_are_refused_by_name() {
        let t = |s: &str| Text(Some(s.to_owned()));
        let none = Text(None);
        assert_eq!(key_spec(&none, &none).unwrap(), KeySpec::Rsa2048);
        assert_eq!(key_spec(&t("ec"), &none).unwrap(), KeySpec::EcdsaP256);
        assert_eq!(key_spec(&t("ec"), &t("384")).unwrap(), KeySpec::EcdsaP384);
        assert_eq!(key_spec(&t("rsa"), &t("4096")).unwrap(), KeySpec::Rsa4096);
        assert_eq!(key_spec(&t("ed25519"), &t("0")).unwrap(), KeySpec::Ed25519);
        let err = key_spec(&t("ec"), &t("521")).unwrap_err().to_string();
        assert!(err.contains("P-521"), "{err}");
        let err = key_spec(&t("rsa"), &t("1024")).unwrap_err().to_string();
        assert!(err.contains("1024") && err.contains("rsa"), "{err}");
        let err = key_spec(&t("dsa"), &none).unwrap_err().to_string();
        assert!(err.contains("dsa"), "{err}");
    }

    #[test]
    fn the_cluster_refusal_names_the_kubectl_that_does_it() {
        let mount = MountEntry {
            name: "pki-int".into(),
            path: "pki_int".into(),
            status: no_ca(),
            crl_expiry: Duration::from_secs(3600),
            trusted_roots: Vec::new(),
            other_generations: Vec::new(),
        };
        let resp = cluster_refusal(Op::WriteRole("web"), Some(&mount));
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
        let resp = cluster_refusal(Op::EnableMount("pki"), None);
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}
