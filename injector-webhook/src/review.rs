//! `admission.k8s.io/v1` AdmissionReview: the few fields the injector reads and writes, and
//! the decision for one review (pure, so tests run it without a server).
//!
//! Owns the wire format and the mapping of mutation outcomes to responses. Must not: log
//! the pod (it may carry secrets in env values).

use base64::Engine as _;
use k8s_openapi::api::core::v1::Pod;
use serde::{Deserialize, Serialize};

use crate::config::Injection;
use crate::mutate::{self, Outcome};
use crate::patch;

/// The review as sent and returned.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionReview {
    /// `admission.k8s.io/v1`.
    pub api_version: String,
    /// `AdmissionReview`.
    pub kind: String,
    /// The request (in what the API server sends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<Request>,
    /// The response (in what the webhook returns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Response>,
}

/// The part of the request the injector reads.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    /// Echoed in the response.
    pub uid: String,
    /// CREATE, UPDATE...
    #[serde(default)]
    pub operation: String,
    /// The request's namespace (a pod being created may have no metadata.namespace yet).
    #[serde(default)]
    pub namespace: Option<String>,
    /// The pod.
    #[serde(default)]
    pub object: Option<serde_json::Value>,
}

/// The answer.
#[derive(Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    /// The request's uid.
    pub uid: String,
    /// Admit or refuse.
    pub allowed: bool,
    /// Why it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// `JSONPatch` when a patch is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<String>,
    /// Base64 of the JSON Patch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
}

/// A refusal's status.
#[derive(Debug, Default, Deserialize, Serialize, PartialEq)]
pub struct Status {
    /// HTTP-style code (400 for a bad pod).
    pub code: u16,
    /// What the user sees.
    pub message: String,
}

/// What happened, for metrics (bounded).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Result {
    /// Not annotated.
    Ignored,
    /// Injected or repaired.
    Injected,
    /// Already as it should be.
    Unchanged,
    /// Refused.
    Denied,
    /// The review itself was unusable.
    Error,
}

impl Result {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Result::Ignored => "ignored",
            Result::Injected => "injected",
            Result::Unchanged => "unchanged",
            Result::Denied => "denied",
            Result::Error => "error",
        }
    }
}

/// A refusal with `message` (HTTP-style code 400).
pub fn refuse(uid: String, message: String) -> Response {
    Response {
        uid,
        allowed: false,
        status: Some(Status { code: 400, message }),
        ..Response::default()
    }
}

/// Decides one request.
pub fn decide(request: Request, cfg: &Injection) -> (Response, Result) {
    let uid = request.uid;
    let Some(object) = request.object else {
        return (
            refuse(uid, "the review has no object".into()),
            Result::Error,
        );
    };
    let pod: Pod = match serde_json::from_value(object) {
        Ok(pod) => pod,
        Err(e) => {
            return (
                refuse(uid, format!("the object is not a Pod: {e}")),
                Result::Error,
            );
        }
    };
    let admitted = Response {
        uid: uid.clone(),
        allowed: true,
        ..Response::default()
    };
    match mutate::mutate(&pod, cfg) {
        Ok(Outcome::Ignored) => (admitted, Result::Ignored),
        Ok(Outcome::Mutated(after)) => match patch::diff(&pod, &after) {
            Ok(ops) if ops.0.is_empty() => (admitted, Result::Unchanged),
            Ok(ops) => match serde_json::to_vec(&ops) {
                Ok(bytes) => (
                    Response {
                        patch_type: Some("JSONPatch".into()),
                        patch: Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
                        ..admitted
                    },
                    Result::Injected,
                ),
                Err(e) => (
                    refuse(uid, format!("encoding the patch failed: {e}")),
                    Result::Error,
                ),
            },
            Err(e) => (refuse(uid, e.to_string()), Result::Error),
        },
        Err(refusal) => (refuse(uid, format!("tlsmint: {refusal}")), Result::Denied),
    }
}
