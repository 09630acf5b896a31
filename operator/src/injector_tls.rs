//! The injector webhook's serving certificate and the `caBundle` of its
//! MutatingWebhookConfiguration, kept by the leader from the internal API CA (the one in
//! Secret `tlsmint-api-ca`): no second CA, no cert-manager.
//!
//! Every pass (each `--injector-check-interval`, and at the certificate's renewal time) reads
//! the Secret `--injector-tls-secret` and re-issues it when [`decide`] says so (missing,
//! unreadable, key and certificate not a pair, not signed by the internal CA, other names,
//! a lifetime longer than configured, or past half of its lifetime), then reads the
//! MutatingWebhookConfiguration `--injector-webhook-config` and patches every webhook whose
//! `caBundle` is not the internal CA's certificate ([`ca_bundle_patch`]). The injector
//! re-reads the Secret's files itself; the API server trusts any certificate of the CA, so a
//! rotation never fails an admission.
//!
//! Owns those two objects. Must not: touch any other object, or log key material.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, Patch, PatchParams};
use time::OffsetDateTime;
use tlsmint_ca::ExposeSecret as _;
use tlsmint_ca::{CertificateAuthority, PrivateKey, pem, x509};
use tlsmint_client::renewal;
use tlsmint_runtime::CancellationToken;

pub use tlsmint_api::labels::INJECTOR_TLS_FIELD_MANAGER as FIELD_MANAGER;
pub use tlsmint_api::labels::SERVING_NAMES_ANNOTATION as NAMES_ANNOTATION;
/// Slack allowed above the configured lifetime (the CA back-dates notBefore by 30 s).
const LIFETIME_SLACK: Duration = Duration::from_secs(120);

/// Flags of the injector's certificate (all off when `--injector-tls-secret` is empty).
#[derive(Clone, Debug, clap::Args)]
pub struct InjectorTlsArgs {
    /// Secret (in the operator's namespace) that holds the injector's serving certificate
    /// (`tls.crt`, `tls.key`, `ca.crt`), issued from the internal API CA and renewed at half
    /// of its lifetime by the leader. Empty: not managed.
    #[arg(long, env = "TLSMINT_INJECTOR_TLS_SECRET", default_value = "")]
    pub injector_tls_secret: String,

    /// MutatingWebhookConfiguration whose webhooks' `caBundle` the leader keeps equal to the
    /// internal API CA's certificate. Empty: not managed.
    #[arg(long, env = "TLSMINT_INJECTOR_WEBHOOK_CONFIG", default_value = "")]
    pub injector_webhook_config: String,

    /// DNS names and IP addresses of the injector's certificate (e.g. its Service's names,
    /// and 127.0.0.1 on the local test cluster).
    #[arg(long, env = "TLSMINT_INJECTOR_SERVING_NAMES", value_delimiter = ',')]
    pub injector_serving_names: Vec<String>,

    /// Lifetime of the injector's certificate; it is renewed at half of it.
    #[arg(long, env = "TLSMINT_INJECTOR_CERT_TTL", default_value = "24h")]
    pub injector_cert_ttl: tlsmint_api::Duration,

    /// How often the Secret and the webhook configuration are checked (someone may have
    /// deleted or edited them).
    #[arg(long, env = "TLSMINT_INJECTOR_CHECK_INTERVAL", default_value = "30s")]
    pub injector_check_interval: tlsmint_api::Duration,
}

impl InjectorTlsArgs {
    /// The settings, or `None` when nothing is managed. Names are required with a Secret.
    pub fn settings(&self, namespace: &str) -> anyhow::Result<Option<Settings>> {
        let secret = self.injector_tls_secret.trim();
        let webhook = self.injector_webhook_config.trim();
        if secret.is_empty() && webhook.is_empty() {
            return Ok(None);
        }
        let names: Vec<String> = self
            .injector_serving_names
            .iter()
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect();
        anyhow::ensure!(
            secret.is_empty() || !names.is_empty(),
            "--injector-tls-secret needs --injector-serving-names (the names of the injector's certificate)"
        );
        let ttl = self.injector_cert_ttl.as_std();
        anyhow::ensure!(
            ttl >= Duration::from_secs(60),
            "--injector-cert-ttl must be at least 1m"
        );
        Ok(Some(Settings {
            namespace: namespace.to_owned(),
            secret: Some(secret.to_owned()).filter(|s| !s.is_empty()),
            webhook: Some(webhook.to_owned()).filter(|s| !s.is_empty()),
            names,
            ttl,
            interval: self
                .injector_check_interval
                .as_std()
                .max(Duration::from_secs(1)),
        }))
    }
}

/// What is kept, from the flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The operator's namespace (where the Secret lives).
    pub namespace: String,
    /// Name of the Secret.
    pub secret: Option<String>,
    /// Name of the MutatingWebhookConfiguration.
    pub webhook: Option<String>,
    /// Names of the certificate.
    pub names: Vec<String>,
    /// Its lifetime.
    pub ttl: Duration,
    /// Time between checks.
    pub interval: Duration,
}

/// What to do with the Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// It is good until `renew_at`.
    Keep {
        /// Half of its lifetime (with jitter).
        renew_at: OffsetDateTime,
    },
    /// Issue a new certificate, for this reason (no key material in it).
    Issue(String),
}

/// Decides whether the Secret's certificate can stay (pure; see the module docs).
pub fn decide(
    secret: Option<&Secret>,
    ca: &CertificateAuthority,
    names: &[String],
    ttl: Duration,
    now: OffsetDateTime,
) -> Step {
    let Some(secret) = secret else {
        return Step::Issue("the Secret does not exist".into());
    };
    match check(secret, ca, names, ttl) {
        Err(reason) => Step::Issue(reason),
        Ok(renew_at) if now >= renew_at => Step::Issue(format!(
            "half of its lifetime passed at {}",
            x509::rfc3339(renew_at)
        )),
        Ok(renew_at) => Step::Keep { renew_at },
    }
}

fn check(
    secret: &Secret,
    ca: &CertificateAuthority,
    names: &[String],
    ttl: Duration,
) -> Result<OffsetDateTime, String> {
    let empty = BTreeMap::new();
    let data = secret.data.as_ref().unwrap_or(&empty);
    let text = |key: &str| {
        data.get(key)
            .and_then(|v| std::str::from_utf8(&v.0).ok())
            .ok_or_else(|| format!("{key} is missing or not text"))
    };
    let chain = pem::decode_certificates(text(tlsmint_api::TLS_CERT_FILE)?)
        .map_err(|e| format!("tls.crt: {e}"))?;
    let leaf = chain.first().ok_or("tls.crt holds no certificate")?;
    let info = x509::parse_certificate(leaf, "tls.crt").map_err(|e| e.to_string())?;
    let key = PrivateKey::from_pem(text(tlsmint_api::TLS_KEY_FILE)?)
        .map_err(|_| "tls.key is not a private key".to_owned())?;
    if key.public_key_der() != info.spki_der {
        return Err("tls.key is not the key of tls.crt".into());
    }
    x509::verify_issued_by(leaf, ca.certificate_der())
        .map_err(|e| format!("not issued by the internal API CA: {e}"))?;
    let issued_for = secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(NAMES_ANNOTATION))
        .map(String::as_str)
        .unwrap_or_default();
    if issued_for != names.join(",") {
        return Err(format!(
            "issued for {issued_for:?}, wanted {:?}",
            names.join(",")
        ));
    }
    let lifetime = info.not_after - info.not_before;
    if lifetime > ttl + LIFETIME_SLACK {
        return Err(format!(
            "its lifetime ({}s) is longer than --injector-cert-ttl",
            lifetime.whole_seconds()
        ));
    }
    Ok(renewal::renewal_time(
        info.not_before,
        info.not_after,
        0.5,
        renewal::seed_of(leaf),
    ))
}

/// The Secret for a new certificate (leaf in `tls.crt`, key in `tls.key`, the CA in
/// `ca.crt`) and the certificate's serial; the error says why it could not be issued.
pub fn secret_for(
    name: &str,
    ca: &CertificateAuthority,
    names: &[String],
    ttl: Duration,
    now: OffsetDateTime,
) -> Result<(Secret, String), String> {
    let mut issued =
        crate::api::tls::issue_serving(ca, names, ttl, now).map_err(|e| e.to_string())?;
    let key = issued
        .private_key
        .take()
        .ok_or("the CA made no key")?
        .to_pem(tlsmint_ca::KeyEncoding::Pkcs8)
        .map_err(|e| e.to_string())?;
    let bytes = |s: &str| ByteString(s.as_bytes().to_vec());
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(BTreeMap::from([(
                tlsmint_api::labels::MANAGED_BY_LABEL.to_owned(),
                tlsmint_api::labels::MANAGED_BY.to_owned(),
            )])),
            annotations: Some(BTreeMap::from([(
                NAMES_ANNOTATION.to_owned(),
                names.join(","),
            )])),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(BTreeMap::from([
            (
                tlsmint_api::TLS_CERT_FILE.to_owned(),
                bytes(&issued.certificate_pem),
            ),
            (
                tlsmint_api::TLS_KEY_FILE.to_owned(),
                bytes(key.expose_secret()),
            ),
            (
                tlsmint_api::CA_CERT_FILE.to_owned(),
                bytes(&ca.certificate_pem()),
            ),
        ])),
        ..Secret::default()
    };
    Ok((secret, issued.serial.to_string()))
}

/// A strategic-merge patch that sets `caBundle` to `ca_pem` on every webhook that has
/// another one, guarded by the resourceVersion read; `None` when all are current.
pub fn ca_bundle_patch(
    config: &MutatingWebhookConfiguration,
    ca_pem: &str,
) -> Option<serde_json::Value> {
    let stale: Vec<&str> = config
        .webhooks
        .iter()
        .flatten()
        .filter(|w| {
            w.client_config.ca_bundle.as_ref().map(|b| b.0.as_slice()) != Some(ca_pem.as_bytes())
        })
        .map(|w| w.name.as_str())
        .collect();
    if stale.is_empty() {
        return None;
    }
    let bundle = ByteString(ca_pem.as_bytes().to_vec());
    let webhooks: Vec<serde_json::Value> = stale
        .into_iter()
        .map(|name| serde_json::json!({"name": name, "clientConfig": {"caBundle": bundle}}))
        .collect();
    Some(serde_json::json!({
        "metadata": {"resourceVersion": config.metadata.resource_version},
        "webhooks": webhooks,
    }))
}

/// Keeps both objects until `stop` (the leader's term ends).
pub async fn run(
    client: kube::Client,
    ca: Arc<CertificateAuthority>,
    settings: Settings,
    stop: CancellationToken,
) {
    tracing::info!(
        secret = settings.secret.as_deref().unwrap_or_default(),
        webhook = settings.webhook.as_deref().unwrap_or_default(),
        ttl_seconds = settings.ttl.as_secs(),
        "keeping the injector's serving certificate and caBundle"
    );
    loop {
        let mut wait = settings.interval;
        if let Some(name) = &settings.secret {
            match keep_secret(&client, &ca, &settings, name).await {
                Ok(renew_at) => {
                    let until = renew_at - OffsetDateTime::now_utc();
                    let until = Duration::try_from(until).unwrap_or_default();
                    wait = wait.min(until.max(Duration::from_millis(200)));
                }
                Err(reason) => tracing::warn!(
                    k8s.namespace = %settings.namespace,
                    k8s.name = %name,
                    %reason,
                    "keeping the injector's serving certificate failed; retrying"
                ),
            }
        }
        if let Some(name) = &settings.webhook
            && let Err(reason) = keep_ca_bundle(&client, &ca, name).await
        {
            tracing::warn!(k8s.name = %name, %reason, "keeping the injector webhook's caBundle failed; retrying");
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// One pass over the Secret; returns when it is next due.
async fn keep_secret(
    client: &kube::Client,
    ca: &CertificateAuthority,
    settings: &Settings,
    name: &str,
) -> Result<OffsetDateTime, String> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &settings.namespace);
    let current = api
        .get_opt(name)
        .await
        .map_err(|e| format!("reading the Secret: {e}"))?;
    let now = OffsetDateTime::now_utc();
    let reason = match decide(current.as_ref(), ca, &settings.names, settings.ttl, now) {
        Step::Keep { renew_at } => return Ok(renew_at),
        Step::Issue(reason) => reason,
    };
    let (secret, serial) = secret_for(name, ca, &settings.names, settings.ttl, now)
        .map_err(|e| format!("issuing: {e}"))?;
    let body = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": secret.metadata,
        "type": secret.type_,
        "data": secret.data,
    });
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(|e| format!("writing the Secret: {e}"))?;
    tracing::info!(
        k8s.namespace = %settings.namespace,
        k8s.name = %name,
        x509.serial = %serial,
        %reason,
        "injector serving certificate issued"
    );
    match decide(Some(&secret), ca, &settings.names, settings.ttl, now) {
        Step::Keep { renew_at } => Ok(renew_at),
        Step::Issue(reason) => Err(format!("the new certificate is unusable: {reason}")),
    }
}

/// One pass over the webhook configuration.
async fn keep_ca_bundle(
    client: &kube::Client,
    ca: &CertificateAuthority,
    name: &str,
) -> Result<(), String> {
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let Some(config) = api
        .get_opt(name)
        .await
        .map_err(|e| format!("reading the MutatingWebhookConfiguration: {e}"))?
    else {
        tracing::debug!(k8s.name = %name, "no MutatingWebhookConfiguration yet");
        return Ok(());
    };
    let Some(patch) = ca_bundle_patch(&config, &ca.certificate_pem()) else {
        return Ok(());
    };
    api.patch(
        name,
        &PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        },
        &Patch::Strategic(&patch),
    )
    .await
    .map_err(|e| format!("patching caBundle: {e}"))?;
    tracing::info!(k8s.name = %name, "injector webhook caBundle set to the internal API CA");
    Ok(())
}

#[cfg(test)]
#[path = "injector_tls_tests.rs"]
mod tests;
