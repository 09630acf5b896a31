//! The act step of the PkiMount controller: generating CAs (on the blocking pool), creating
//! key Secrets create-only, completing external intermediates, loading and checking a CA.
//!
//! Every path that could replace a key is guarded: Secrets are created with `create` (a
//! second replica gets "already exists" and loads the winner's CA), and the only update is
//! adding the signed certificate to an external intermediate's Secret, conditional on the
//! Secret's resourceVersion. Key material goes only into that Secret.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Api, ResourceExt};
use tlsmint_api::conditions::{Verdict, reason};
use tlsmint_api::v1alpha1::PkiMount;
use tlsmint_ca::ExposeSecret as _;
use tlsmint_ca::{CaConfig, CertificateAuthority, KeyEncoding, PendingIntermediate, PrivateKey};

use super::super::Context;
use super::super::apply::{self, MANAGED_BY, MANAGED_BY_LABEL, MOUNT_LABEL, text};
use super::super::error::{Error, Result};
use super::super::key_material::{KeyMaterial, MaterialError};
use super::decide::Decision;
use super::{Outcome, origin};
use crate::controllers::pki_mount::decide::Origin;

/// What `act` works with.
pub struct Inputs<'a> {
    pub mount: &'a PkiMount,
    pub ctx: &'a Context,
    pub secrets: &'a Api<Secret>,
    pub key_name: &'a str,
    pub key_secret: Option<&'a Secret>,
    pub signed_secret: Option<&'a Secret>,
    pub published: bool,
}

/// Carries out `decision`.
pub async fn act(decision: Decision, inputs: Inputs<'_>) -> Result<Outcome> {
    let settings = match crate::convert::mount(&inputs.mount.name_any(), &inputs.mount.spec) {
        Ok(settings) => settings,
        Err(e) => {
            return Ok(Outcome::not_ready(
                reason::INVALID_SPEC,
                tlsmint_ca::report(&e),
            ));
        }
    };
    let cfg = settings.ca;
    match decision {
        Decision::NotReady { .. } => Ok(decision.into()),
        Decision::CreateRoot => {
            let generated = blocking(&inputs, "root CA generation", move || {
                CertificateAuthority::generate_root(&cfg, time::OffsetDateTime::now_utc())
            })
            .await?;
            create_ca(inputs, generated, "root").await
        }
        Decision::CreateIntermediate => {
            let parent_name = inputs
                .mount
                .spec
                .parent_ref
                .as_ref()
                .map(|p| p.name.clone())
                .unwrap_or_default();
            let Some(parent) = inputs.ctx.registry.ca(&parent_name) else {
                return Ok(Outcome::not_ready(
                    reason::PARENT_NOT_READY,
                    format!("waiting for parent PkiMount {parent_name} to be Ready"),
                ));
            };
            let generated = blocking(&inputs, "intermediate CA generation", move || {
                CertificateAuthority::generate_intermediate(
                    &cfg,
                    &parent,
                    time::OffsetDateTime::now_utc(),
                )
            })
            .await?;
            create_ca(inputs, generated, "intermediate").await
        }
        Decision::CreateExternalKey => create_external_key(inputs, cfg).await,
        Decision::AwaitSigned { complete } => await_signed(inputs, cfg, complete).await,
        Decision::Load => Ok(load(&inputs)),
    }
}

async fn blocking<T: Send + 'static>(
    inputs: &Inputs<'_>,
    what: &'static str,
    work: impl FnOnce() -> tlsmint_ca::Result<T> + Send + 'static,
) -> Result<tlsmint_ca::Result<T>> {
    Ok(inputs.ctx.cpu.run(what, work).await?)
}

fn key_secret(inputs: &Inputs<'_>, certs: String, key: &PrivateKey) -> Result<Secret, String> {
    ca_key_secret(
        inputs.mount,
        &inputs.ctx.namespace,
        inputs.key_name,
        certs,
        key,
    )
}

/// The key Secret of one CA generation of `mount`: `tls.crt` (the chain), `tls.key`
/// (PKCS#8), controlled by the mount.
pub(super) fn ca_key_secret(
    mount: &PkiMount,
    namespace: &str,
    name: &str,
    certs: String,
    key: &PrivateKey,
) -> Result<Secret, String> {
    let key_pem = key
        .to_pem(KeyEncoding::Pkcs8)
        .map_err(|e| tlsmint_ca::report(&e))?;
    let labels = BTreeMap::from([
        (MANAGED_BY_LABEL.to_owned(), MANAGED_BY.to_owned()),
        (MOUNT_LABEL.to_owned(), mount.name_any()),
    ]);
    Ok(apply::tls_secret(
        namespace,
        name,
        labels,
        BTreeMap::new(),
        apply::controller_reference(mount),
        BTreeMap::from([
            (tlsmint_api::TLS_CERT_FILE.to_owned(), certs),
            (
                tlsmint_api::TLS_KEY_FILE.to_owned(),
                key_pem.expose_secret().to_owned(),
            ),
        ]),
    ))
}

async fn create_ca(
    inputs: Inputs<'_>,
    generated: tlsmint_ca::Result<CertificateAuthority>,
    what: &str,
) -> Result<Outcome> {
    let ca = match generated {
        Ok(ca) => ca,
        Err(e) => {
            return Ok(Outcome::not_ready(
                reason::FAILED,
                format!("generating the {what} CA failed: {e}"),
            ));
        }
    };
    let secret = match key_secret(&inputs, ca.ca_chain_pem().concat(), ca.key()) {
        Ok(secret) => secret,
        Err(e) => return Ok(Outcome::not_ready(reason::FAILED, e)),
    };
    if !apply::create_secret(inputs.secrets, &secret).await? {
        // Another replica (or an earlier run) created it first: its CA wins; ours was never
        // published and is dropped here.
        tracing::info!(
            secret = inputs.key_name,
            "key Secret already exists; loading it instead"
        );
        let existing =
            apply::get_secret(inputs.secrets, &inputs.ctx.namespace, inputs.key_name).await?;
        return Ok(load(&Inputs {
            key_secret: existing.as_ref(),
            ..inputs
        }));
    }
    let info = ca.info();
    tracing::info!(x509.serial = %info.serial.to_colon_hex(), secret = inputs.key_name, "{what} CA created");
    let note = format!(
        "created {what} CA {} (serial {}, valid until {}); key in Secret {}/{}",
        info.subject,
        info.serial.to_colon_hex(),
        tlsmint_ca::x509::rfc3339(info.not_after),
        inputs.ctx.namespace,
        inputs.key_name
    );
    let ca = ca
        .with_options(mount_options(inputs.mount))
        .map_err(|e| tlsmint_ca::report(&e));
    Ok(match ca {
        Ok(ca) => Outcome {
            ready: Verdict::yes(reason::READY, ready_message(&ca)),
            ca: Some(Arc::new(ca)),
            csr: None,
            key_secret_known: true,
            event: Some((EventType::Normal, "Created", note)),
        },
        Err(e) => Outcome::not_ready(reason::INVALID_SPEC, e),
    })
}

async fn create_external_key(inputs: Inputs<'_>, cfg: CaConfig) -> Result<Outcome> {
    let key_spec = cfg.key;
    let key = match blocking(&inputs, "intermediate key generation", move || {
        PrivateKey::generate(key_spec)
    })
    .await?
    {
        Ok(key) => key,
        Err(e) => return Ok(Outcome::not_ready(reason::FAILED, tlsmint_ca::report(&e))),
    };
    let pending = match PendingIntermediate::with_key(&cfg, key) {
        Ok(pending) => pending,
        Err(e) => {
            return Ok(Outcome::not_ready(
                reason::INVALID_SPEC,
                tlsmint_ca::report(&e),
            ));
        }
    };
    let secret = match key_secret(&inputs, String::new(), pending.key()) {
        Ok(secret) => secret,
        Err(e) => return Ok(Outcome::not_ready(reason::FAILED, e)),
    };
    if !apply::create_secret(inputs.secrets, &secret).await? {
        let existing =
            apply::get_secret(inputs.secrets, &inputs.ctx.namespace, inputs.key_name).await?;
        let Some(existing) = existing else {
            return Ok(Outcome::not_ready(
                reason::PENDING,
                "key Secret changed concurrently; retrying".into(),
            ));
        };
        let again = Inputs {
            key_secret: Some(&existing),
            ..inputs
        };
        return await_signed(again, cfg, false).await;
    }
    Ok(waiting(&inputs, pending.csr_pem().to_owned()))
}

fn waiting(inputs: &Inputs<'_>, csr: String) -> Outcome {
    let secret = inputs
        .mount
        .spec
        .signed_certificate_secret_ref
        .as_ref()
        .map(|r| format!("Secret {}", r.name))
        .unwrap_or_else(|| "a Secret named in spec.signedCertificateSecretRef".into());
    Outcome {
        ready: Verdict::no(
            reason::WAITING_FOR_SIGNED_CERTIFICATE,
            format!(
                "sign status.csr with the parent CA and put the certificate (tls.crt, optionally followed by its chain) into {secret} in namespace {}",
                inputs.ctx.namespace
            ),
        ),
        ca: None,
        csr: Some(csr),
        key_secret_known: true,
        event: None,
    }
}

async fn await_signed(inputs: Inputs<'_>, cfg: CaConfig, complete: bool) -> Result<Outcome> {
    let Some(key_pem) = inputs
        .key_secret
        .and_then(|s| text(s, tlsmint_api::TLS_KEY_FILE))
    else {
        return Ok(Outcome::not_ready(
            reason::KEY_MISSING,
            format!("Secret {} holds no tls.key", inputs.key_name),
        ));
    };
    let key = match PrivateKey::from_pem(key_pem) {
        Ok(key) => key,
        Err(e) => {
            return Ok(Outcome::not_ready(
                reason::KEY_MISMATCH,
                format!("Secret {}: {e}", inputs.key_name),
            ));
        }
    };
    let pending = match PendingIntermediate::with_key(&cfg, key) {
        Ok(pending) => pending,
        Err(e) => {
            return Ok(Outcome::not_ready(
                reason::INVALID_SPEC,
                tlsmint_ca::report(&e),
            ));
        }
    };
    // Keep the published CSR stable: a new signature would change its text.
    let csr = inputs
        .mount
        .status
        .as_ref()
        .and_then(|s| s.csr.clone())
        .unwrap_or_else(|| pending.csr_pem().to_owned());
    let signed = inputs
        .signed_secret
        .and_then(|s| text(s, tlsmint_api::TLS_CERT_FILE));
    let (true, Some(signed)) = (complete, signed) else {
        return Ok(waiting(&inputs, csr));
    };
    let ca = match pending.complete(signed) {
        Ok(ca) => ca,
        Err(e) => {
            let message = format!(
                "the certificate in Secret {} was refused: {e}",
                inputs
                    .signed_secret
                    .map(|s| s.name_any())
                    .unwrap_or_default()
            );
            let mut outcome = waiting(&inputs, csr);
            outcome.ready = Verdict::no(reason::INVALID_SIGNED_CERTIFICATE, message.clone());
            outcome.event = Some((
                EventType::Warning,
                reason::INVALID_SIGNED_CERTIFICATE,
                message,
            ));
            return Ok(outcome);
        }
    };
    // Add the certificate to the key Secret, only if nobody changed it since we read it.
    let resource_version = inputs.key_secret.and_then(|s| s.resource_version());
    let patch = serde_json::json!({
        "metadata": { "resourceVersion": resource_version },
        "stringData": { (tlsmint_api::TLS_CERT_FILE): ca.ca_chain_pem().concat() },
    });
    inputs
        .secrets
        .patch(
            inputs.key_name,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map_err(|source| Error::WriteSecret {
            namespace: inputs.ctx.namespace.clone(),
            name: inputs.key_name.to_owned(),
            source,
        })?;
    let note = format!(
        "intermediate CA completed with the signed certificate (serial {})",
        ca.info().serial.to_colon_hex()
    );
    Ok(match ca.with_options(mount_options(inputs.mount)) {
        Ok(ca) => Outcome {
            ready: Verdict::yes(reason::READY, ready_message(&ca)),
            ca: Some(Arc::new(ca)),
            csr: None,
            key_secret_known: true,
            event: Some((EventType::Normal, "Completed", note)),
        },
        Err(e) => Outcome::not_ready(reason::INVALID_SPEC, tlsmint_ca::report(&e)),
    })
}

/// Loads the CA from the key Secret and checks it against what the mount published.
fn load(inputs: &Inputs<'_>) -> Outcome {
    let import = origin(inputs.mount) == Origin::Import;
    let broken = if import && !inputs.published {
        reason::IMPORT_FAILED
    } else {
        reason::KEY_MISMATCH
    };
    let import_from = inputs.mount.spec.import_from.as_ref();
    let Some(secret) = inputs.key_secret else {
        return Outcome::not_ready(
            reason::KEY_MISSING,
            format!("Secret {} does not exist", inputs.key_name),
        );
    };
    let material = match KeyMaterial::read(secret, inputs.key_name, import_from) {
        Ok(material) => material,
        Err(e @ MaterialError::Missing { .. }) => {
            return Outcome::not_ready(reason::KEY_MISSING, e.to_string());
        }
        Err(e) => return Outcome::not_ready(broken, tlsmint_ca::report(&e)),
    };
    let ca = match material.into_ca(&inputs.mount.name_any()) {
        Ok(ca) => ca,
        Err(e) => {
            return Outcome::not_ready(
                broken,
                format!("Secret {}: {}", inputs.key_name, tlsmint_ca::report(&e)),
            );
        }
    };
    let published = inputs
        .mount
        .status
        .as_ref()
        .and_then(|s| s.certificate.as_deref());
    if let Some(published) = published {
        let same = tlsmint_ca::pem::decode_certificate(published)
            .is_ok_and(|der| der == ca.certificate_der());
        if !same {
            return Outcome::not_ready(
                reason::KEY_MISMATCH,
                format!(
                    "Secret {} holds a different CA (serial {}) than the one this mount published (serial {}); issuance has stopped and the operator will not replace the published CA",
                    inputs.key_name,
                    ca.info().serial.to_colon_hex(),
                    inputs
                        .mount
                        .status
                        .as_ref()
                        .and_then(|s| s.serial_number.clone())
                        .unwrap_or_default()
                ),
            );
        }
    }
    let now = time::OffsetDateTime::now_utc();
    if now >= ca.info().not_after {
        return Outcome::not_ready(
            reason::EXPIRED,
            format!(
                "the CA expired at {}",
                tlsmint_ca::x509::rfc3339(ca.info().not_after)
            ),
        );
    }
    match ca.with_options(mount_options(inputs.mount)) {
        Ok(ca) => Outcome {
            ready: Verdict::yes(reason::READY, ready_message(&ca)),
            ca: Some(Arc::new(ca)),
            csr: None,
            key_secret_known: true,
            event: import
                .then(|| {
                    (
                        EventType::Normal,
                        "Imported",
                        "CA imported and verified".to_owned(),
                    )
                })
                .filter(|_| !inputs.published),
        },
        Err(e) => Outcome::not_ready(reason::INVALID_SPEC, tlsmint_ca::report(&e)),
    }
}

pub(super) fn mount_options(mount: &PkiMount) -> tlsmint_ca::MountOptions {
    crate::convert::mount(&mount.name_any(), &mount.spec)
        .map(|s| s.options)
        .unwrap_or_default()
}

pub(super) fn ready_message(ca: &CertificateAuthority) -> String {
    let info = ca.info();
    format!(
        "CA {} (serial {}) can sign until {}",
        info.subject,
        info.serial.to_colon_hex(),
        tlsmint_ca::x509::rfc3339(info.not_after)
    )
}

#[cfg(test)]
#[path = "act_tests.rs"]
mod tests;
