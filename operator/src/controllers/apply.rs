//! Writing to the API server the way every controller here does: Secrets created
//! create-only or written by server-side apply under one field manager, with owner
//! references; statuses written by server-side apply on the status subresource; and the
//! check that a Secret belongs to the object about to write it.
//!
//! Owns the field manager, label and annotation keys of what the operator writes. It must
//! not decide what to write: controllers build the objects.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;

use super::error::{Error, Result};

pub use tlsmint_api::labels::{
    FIELD_MANAGER, MANAGED_BY, MANAGED_BY_LABEL, MOUNT_LABEL, REQUEST_DIGEST_ANNOTATION,
    REQUEST_LABEL, SERIAL_ANNOTATION, TLS_SECRET_TYPE,
};

/// An owner reference to `owner` marking it as the controller of the dependent.
pub fn controller_reference<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.meta().name.clone().unwrap_or_default(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: None,
    }
}

/// Whether `secret` names the object with `uid` as its controller.
pub fn is_controlled_by(secret: &Secret, uid: &str) -> bool {
    !uid.is_empty()
        && secret
            .owner_references()
            .iter()
            .any(|r| r.controller == Some(true) && r.uid == uid)
}

/// The UTF-8 text of `key` in `secret` (`data`, or `stringData` on objects not yet stored).
pub fn text<'a>(secret: &'a Secret, key: &str) -> Option<&'a str> {
    if let Some(value) = secret.data.as_ref().and_then(|d| d.get(key)) {
        return std::str::from_utf8(&value.0).ok();
    }
    secret
        .string_data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(String::as_str)
}

/// A `kubernetes.io/tls` Secret named `name` in `namespace` holding `data`.
pub fn tls_secret(
    namespace: &str,
    name: &str,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    owner: OwnerReference,
    data: BTreeMap<String, String>,
) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        type_: Some(TLS_SECRET_TYPE.to_owned()),
        data: Some(
            data.into_iter()
                .map(|(k, v)| (k, ByteString(v.into_bytes())))
                .collect(),
        ),
        ..Secret::default()
    }
}

/// Reads Secret `name` in `namespace`; `None` when it does not exist.
pub async fn get_secret(api: &Api<Secret>, namespace: &str, name: &str) -> Result<Option<Secret>> {
    api.get_opt(name).await.map_err(|source| Error::GetSecret {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        source,
    })
}

/// Creates `secret` only if no Secret of that name exists. Returns `false` when one
/// already existed (it is left untouched).
pub async fn create_secret(api: &Api<Secret>, secret: &Secret) -> Result<bool> {
    match api.create(&PostParams::default(), secret).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(source) => Err(Error::CreateSecret {
            namespace: secret.namespace().unwrap_or_default(),
            name: secret.name_any(),
            source,
        }),
    }
}

/// Writes `secret` by server-side apply. With `force` (the Secret is known to be ours) the
/// operator takes over fields someone else edited; without it (the Secret did not exist a
/// moment ago) a Secret created meanwhile by someone else makes the apply conflict, and
/// `Ok(false)` is returned instead of overwriting it.
pub async fn apply_secret(api: &Api<Secret>, secret: &Secret, force: bool) -> Result<bool> {
    let mut body = secret.clone();
    body.metadata.managed_fields = None;
    body.metadata.resource_version = None;
    let mut params = PatchParams::apply(FIELD_MANAGER);
    if force {
        params = params.force();
    }
    let name = secret.name_any();
    match api
        .patch(
            &name,
            &params,
            &Patch::Apply(&with_type_meta::<Secret, _>(&body)),
        )
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 && !force => Ok(false),
        Err(source) => Err(Error::WriteSecret {
            namespace: secret.namespace().unwrap_or_default(),
            name,
            source,
        }),
    }
}

/// Writes the whole `status` of object `name` by server-side apply on the status
/// subresource. Fields left out of `status` are removed (they were applied by us before).
pub async fn apply_status<K, S>(api: &Api<K>, name: &str, status: &S) -> Result<()>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    let kind = kind_name::<K>();
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": serde_json::to_value(status).map_err(|source| Error::EncodeStatus {
            kind,
            name: name.to_owned(),
            source,
        })?,
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map(|_| ())
    .map_err(|source| Error::PatchStatus {
        kind,
        name: name.to_owned(),
        source,
    })
}

fn kind_name<K: Resource<DynamicType = ()>>() -> &'static str {
    match K::kind(&()).as_ref() {
        "PkiMount" => "PkiMount",
        "IssuerRole" => "IssuerRole",
        "CertificateRequest" => "CertificateRequest",
        _ => "object",
    }
}

fn with_type_meta<K: Resource<DynamicType = ()>, T: Serialize>(object: &T) -> serde_json::Value {
    let mut value = serde_json::to_value(object).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".into(), K::api_version(&()).into_owned().into());
        map.insert("kind".into(), K::kind(&()).into_owned().into());
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use tlsmint_api::v1alpha1::{CertificateRequest, CertificateRequestSpec};

    fn request(uid: &str) -> CertificateRequest {
        let mut cr = CertificateRequest::new("web", CertificateRequestSpec::new("r", "web-tls"));
        cr.metadata.namespace = Some("team-a".into());
        cr.metadata.uid = Some(uid.into());
        cr
    }

    #[test]
    fn secrets_written_by_a_request_are_controlled_by_it_only() {
        let owner = controller_reference(&request("uid-1"));
        assert_eq!(owner.kind, "CertificateRequest");
        assert_eq!(owner.api_version, "pki.tlsmint.io/v1alpha1");
        let secret = tls_secret(
            "team-a",
            "web-tls",
            BTreeMap::new(),
            BTreeMap::new(),
            owner,
            [("tls.crt".to_owned(), "C".to_owned())].into(),
        );
        assert!(is_controlled_by(&secret, "uid-1"));
        assert!(!is_controlled_by(&secret, "uid-2"));
        assert!(!is_controlled_by(&secret, ""));
        assert_eq!(text(&secret, "tls.crt"), Some("C"));
        assert_eq!(text(&secret, "tls.key"), None);
        assert_eq!(secret.type_.as_deref(), Some(TLS_SECRET_TYPE));
        let mut foreign = secret.clone();
        foreign.metadata.owner_references = None;
        assert!(!is_controlled_by(&foreign, "uid-1"));
    }
}
