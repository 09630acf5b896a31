//! The HTTPS admission endpoint: `POST /mutate` takes an `admission.k8s.io/v1`
//! AdmissionReview and answers with the decision of [`crate::review::decide`]. The serving
//! certificate is read from files and swapped in whenever they change, without a restart.
//!
//! Owns serving and the certificate reload. Must not: decide anything about pods.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tlsmint_runtime::CancellationToken;
use tlsmint_runtime::tls::CertSwap;

use k8s_openapi::api::core::v1::Pod;
use tlsmint_api::annotations::PodAnnotations;
use tlsmint_client::proto::CheckPolicyRequest;

use crate::config::Injection;
use crate::policy::{self, Checker, Verdict};
use crate::review::{self, AdmissionReview};

/// Largest review accepted (the API server's own limit on objects is 3 MiB).
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// Labels of the admissions counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `review::Result::as_str`.
    pub result: &'static str,
}

/// The injector's metrics.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Reviews answered, by result.
    pub admissions: Family<ResultLabel, Counter>,
    /// Time to decide a review.
    pub seconds: Histogram,
}

impl Metrics {
    /// Registers the metrics in `registry` (prefix `tlsmint_injector`).
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Metrics {
            admissions: Family::default(),
            seconds: Histogram::new([0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.25]),
        };
        let sub = registry.sub_registry_with_prefix("tlsmint_injector");
        sub.register(
            "admissions",
            "Admission reviews answered, by result",
            metrics.admissions.clone(),
        );
        sub.register(
            "admission_seconds",
            "Time to decide an admission review",
            metrics.seconds.clone(),
        );
        metrics
    }
}

#[derive(Clone, Debug)]
struct AppState {
    injection: Arc<Injection>,
    metrics: Metrics,
    checker: Option<Checker>,
}

/// The admission router (`POST /mutate`, `GET /healthz`) without the policy check.
pub fn router(injection: Arc<Injection>, metrics: Metrics) -> axum::Router {
    router_with_check(injection, metrics, None)
}

/// The admission router; with `checker`, annotated pods are also checked against the
/// operator's policy before they are admitted ([`crate::policy`]).
pub fn router_with_check(
    injection: Arc<Injection>,
    metrics: Metrics,
    checker: Option<Checker>,
) -> axum::Router {
    axum::Router::new()
        .route("/mutate", post(mutate))
        .route("/healthz", get(|| async { "ok" }))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(AppState {
            injection,
            metrics,
            checker,
        })
}

/// The policy question for an annotated pod (None for any other review).
fn policy_question(request: &review::Request) -> Option<CheckPolicyRequest> {
    let pod: Pod = serde_json::from_value(request.object.clone()?).ok()?;
    let ann = PodAnnotations::parse(pod.metadata.annotations.as_ref()?).ok()??;
    let namespace = request
        .namespace
        .clone()
        .or_else(|| pod.metadata.namespace.clone())?;
    Some(policy::question(&pod, &namespace, &ann))
}

/// Refuses an admitted pod when the operator says it would not issue its certificate.
async fn check_policy(
    checker: &Checker,
    question: CheckPolicyRequest,
    uid: &str,
    admitted: (review::Response, review::Result),
) -> (review::Response, review::Result) {
    match checker.check(question).await {
        Verdict::Allowed => admitted,
        Verdict::Denied(reason) => (
            review::refuse(
                uid.to_owned(),
                format!("tlsmint: the operator would not issue this pod's certificate: {reason}"),
            ),
            review::Result::Denied,
        ),
        Verdict::Unknown(why) => {
            tracing::warn!(admission.uid = %uid, reason = %why, "policy check unanswered; admitting (fail open)");
            admitted
        }
    }
}

async fn mutate(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<AdmissionReview>, (StatusCode, String)> {
    let started = Instant::now();
    let review: AdmissionReview = serde_json::from_slice(&body).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            format!("not an AdmissionReview: {e}"),
        )
    })?;
    let request = review.request.ok_or((
        StatusCode::BAD_REQUEST,
        "the review has no request".to_owned(),
    ))?;
    let uid = request.uid.clone();
    let namespace = request.namespace.clone().unwrap_or_default();
    let question = state
        .checker
        .as_ref()
        .and_then(|_| policy_question(&request));
    let (mut response, mut result) = review::decide(request, &state.injection);
    if let (Some(checker), Some(question)) = (&state.checker, question)
        && response.allowed
        && matches!(result, review::Result::Injected | review::Result::Unchanged)
    {
        (response, result) = check_policy(checker, question, &uid, (response, result)).await;
    }
    state
        .metrics
        .seconds
        .observe(started.elapsed().as_secs_f64());
    state
        .metrics
        .admissions
        .get_or_create(&ResultLabel {
            result: result.as_str(),
        })
        .inc();
    match result {
        review::Result::Denied | review::Result::Error => tracing::info!(
            admission.uid = %uid,
            pod.namespace = %namespace,
            result = result.as_str(),
            reason = response.status.as_ref().map(|s| s.message.as_str()).unwrap_or_default(),
            "pod refused"
        ),
        _ => {
            tracing::debug!(admission.uid = %uid, pod.namespace = %namespace, result = result.as_str(), "pod admitted")
        }
    }
    Ok(Json(AdmissionReview {
        api_version: review.api_version,
        kind: review.kind,
        request: None,
        response: Some(response),
    }))
}

/// A certificate file's and a key file's bytes, as last loaded.
pub type Pair = (Vec<u8>, Vec<u8>);

/// Where the serving certificate comes from.
#[derive(Clone, Debug)]
pub struct CertFiles {
    /// PEM chain, leaf first.
    pub cert: PathBuf,
    /// PEM key.
    pub key: PathBuf,
}

impl CertFiles {
    /// Loads the files into `swap` if they differ from `last`; returns what was loaded.
    pub fn load_if_changed(
        &self,
        swap: &CertSwap,
        last: Option<&Pair>,
    ) -> Result<Option<Pair>, String> {
        let read = |path: &PathBuf| {
            std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))
        };
        let pair = (read(&self.cert)?, read(&self.key)?);
        if last == Some(&pair) {
            return Ok(None);
        }
        swap.set_pem(&pair.0, &pair.1)
            .map_err(|e| format!("loading {}: {e}", self.cert.display()))?;
        Ok(Some(pair))
    }

    /// Re-reads the files every `interval` until `shutdown`, swapping in a changed pair (a
    /// broken pair is logged and the old one kept).
    pub async fn watch(
        self,
        swap: Arc<CertSwap>,
        mut last: Option<Pair>,
        interval: Duration,
        shutdown: CancellationToken,
    ) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
            match self.load_if_changed(&swap, last.as_ref()) {
                Ok(Some(pair)) => {
                    tracing::info!(file = %self.cert.display(), "serving certificate reloaded");
                    last = Some(pair);
                }
                Ok(None) => {}
                Err(reason) => {
                    tracing::warn!(%reason, "serving certificate not reloaded; keeping the current one")
                }
            }
        }
    }
}
