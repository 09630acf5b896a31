//! The PodCertificateRequest signer (issue 11, SPEC §8): tlsmint signs Kubernetes' own pod
//! certificates for the signers `pki.tlsmint.io/<IssuerRole>`. Kubelet makes the key and
//! the request and writes the files; the signer decides ([`decide`]), signs through the
//! one issuance step ([`crate::issuance`]) and writes the request's status once.
//!
//! ```text
//!  registry (roles) ──> one watch per signer name (field selector spec.signerName)
//!                              │ pending requests
//!                              v
//!                    queue ──> decide ──> Sign ──> issuance::issue ──> PUT status (Issued)
//!                      ^          ├─────> Deny ──────────────────────> PUT status (Denied) + Events
//!                      └─ backoff ┴─────> Wait (role/mount not Ready, API error) + Event
//! ```
//!
//! Owns: the watches, the queue and the status writes. Runs on the leader only (started
//! with the controllers). Must not: mark a request Failed (final for the pod) for trouble
//! that may pass, or put key material anywhere (kubelet holds the key; only the public
//! key reaches the signer).

pub mod decide;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::api::certificates::v1beta1::{PodCertificateRequest, PodCertificateRequestStatus};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::PostParams;
use kube::runtime::events::EventType;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource, ResourceExt};
use tlsmint_api::user_annotations;
use tlsmint_ca::Issued;
use tlsmint_runtime::CancellationToken;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::Context;
use super::times::k8s_time;
use crate::api::audit::{self, Channel};
use crate::api::auth::Caller;
use crate::api::error::ApiError;
use crate::issuance::{self, Failure};
use decide::{Decision, Plan};

/// Share of the lifetime at which kubelet is told to refresh (`beginRefreshAt`).
const REFRESH_AT: f64 = 0.5;

type Queue = mpsc::UnboundedSender<Arc<PodCertificateRequest>>;

/// Whether this API server serves `certificates.k8s.io/v1beta1` PodCertificateRequests.
pub async fn served(client: &kube::Client) -> bool {
    match client
        .list_api_group_resources("certificates.k8s.io/v1beta1")
        .await
    {
        Ok(list) => list
            .resources
            .iter()
            .any(|r| r.name == "podcertificaterequests"),
        Err(_) => false,
    }
}

/// Runs the signer until `stop` (leader only).
pub async fn run(ctx: Arc<Context>, stop: CancellationToken) {
    if !served(&ctx.client).await {
        tracing::info!(
            "this cluster does not serve certificates.k8s.io/v1beta1 PodCertificateRequests: the pod-certificate signer is off"
        );
        return;
    }
    tracing::info!(signers = %user_annotations::signer_name("<IssuerRole>"), "pod-certificate signer running");
    let (queue, mut pending) = mpsc::unbounded_channel();
    let watches = tokio::spawn(watch_signers(ctx.clone(), queue.clone(), stop.clone()));
    let work = Arc::new(Work::default());
    let jobs = futures::stream::poll_fn(move |cx| pending.poll_recv(cx));
    let stopped = stop.clone();
    jobs.take_until(stopped.cancelled_owned())
        .for_each_concurrent(usize::from(ctx.concurrency.max(1)), |pcr| {
            let (ctx, work, queue) = (ctx.clone(), work.clone(), queue.clone());
            async move { handle(&ctx, &work, &queue, pcr).await }
        })
        .await;
    watches.abort();
}

/// One watch per signer name: field selectors match exactly, and a role's requests must
/// not wait behind a watch of every request in the cluster.
async fn watch_signers(ctx: Arc<Context>, queue: Queue, stop: CancellationToken) {
    let mut watches: HashMap<String, JoinHandle<()>> = HashMap::new();
    let mut changes = ctx.registry.changes();
    loop {
        let roles: HashSet<String> = ctx.registry.role_names().into_iter().collect();
        watches.retain(|role, task| {
            let keep = roles.contains(role);
            if !keep {
                task.abort();
            }
            keep
        });
        for role in roles {
            if let std::collections::hash_map::Entry::Vacant(slot) = watches.entry(role) {
                let role = slot.key().clone();
                slot.insert(tokio::spawn(watch_signer(ctx.clone(), role, queue.clone())));
            }
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            changed = changes.changed() => if changed.is_err() { break },
        }
    }
    for task in watches.into_values() {
        task.abort();
    }
}

async fn watch_signer(ctx: Arc<Context>, role: String, queue: Queue) {
    let signer = user_annotations::signer_name(&role);
    let api = Api::<PodCertificateRequest>::all(ctx.client.clone());
    let config = watcher::Config::default().fields(&format!("spec.signerName={signer}"));
    let mut events = watcher(api, config)
        .default_backoff()
        .applied_objects()
        .boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(pcr) if !decide::is_final(&pcr) => {
                if queue.send(Arc::new(pcr)).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(
                signer = %signer,
                error = &error as &dyn std::error::Error,
                "watching PodCertificateRequests failed; retrying"
            ),
        }
    }
}

/// Requests being handled (a relist must not start a second signing) and the failures of
/// those waiting, for their backoff.
#[derive(Default)]
struct Work {
    busy: Mutex<HashSet<String>>,
    failures: Mutex<HashMap<String, u32>>,
}

impl Work {
    fn start(&self, uid: &str) -> bool {
        self.busy
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(uid.to_owned())
    }

    fn finish(&self, uid: &str) {
        self.busy
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(uid);
    }

    fn failed(&self, uid: &str) -> u32 {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let count = failures.entry(uid.to_owned()).or_default();
        *count += 1;
        *count
    }

    fn done(&self, uid: &str) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(uid);
    }
}

/// What became of one request.
enum Outcome {
    /// Issued or Denied (or gone): nothing more to do.
    Final,
    /// Try again after a backoff.
    Retry,
    /// It changed while being handled: handle this newer version after a backoff.
    Changed(Box<PodCertificateRequest>),
}

async fn handle(ctx: &Context, work: &Work, queue: &Queue, pcr: Arc<PodCertificateRequest>) {
    let uid = pcr.uid().unwrap_or_default();
    if !work.start(&uid) {
        return;
    }
    let outcome = process(ctx, &pcr).await;
    work.finish(&uid);
    let next = match outcome {
        Outcome::Final => {
            work.done(&uid);
            return;
        }
        Outcome::Retry => pcr,
        Outcome::Changed(fresh) => Arc::new(*fresh),
    };
    let failures = work.failed(&uid);
    let delay = tlsmint_client::renewal::failure_backoff(
        failures,
        tlsmint_client::renewal::seed_of(uid.as_bytes()),
    )
    // A request lives 15 minutes; waiting longer than half a minute risks its life.
    .min(std::time::Duration::from_secs(30));
    let queue = queue.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        let _ = queue.send(next);
    });
}

async fn process(ctx: &Context, pcr: &PodCertificateRequest) -> Outcome {
    let role = user_annotations::role_of_signer(&pcr.spec.signer_name)
        .unwrap_or_default()
        .to_owned();
    match decide::decide(pcr, &ctx.registry) {
        Decision::Skip => Outcome::Final,
        Decision::Wait { reason, message } => {
            ctx.metrics.pcr(&role, "pending");
            event(ctx, pcr, EventType::Warning, reason, message).await;
            Outcome::Retry
        }
        Decision::Deny { reason, message } => deny(ctx, pcr, &role, reason, message).await,
        Decision::Sign(plan) => sign(ctx, pcr, *plan).await,
    }
}

async fn sign(ctx: &Context, pcr: &PodCertificateRequest, plan: Plan) -> Outcome {
    let started = Instant::now();
    let Plan {
        role_name,
        mount,
        order,
    } = plan;
    let issued = match issuance::issue(&ctx.cpu, order).await {
        Ok(issued) => issued,
        Err(Failure::Engine(err)) => {
            return match decide::engine_denial(&err) {
                Some(reason) => deny(ctx, pcr, &role_name, reason, err.report()).await,
                None => {
                    ctx.metrics.pcr(&role_name, "pending");
                    event(ctx, pcr, EventType::Warning, "SigningFailed", err.report()).await;
                    Outcome::Retry
                }
            };
        }
        Err(Failure::Cpu(err)) => {
            ctx.metrics.pcr(&role_name, "pending");
            event(
                ctx,
                pcr,
                EventType::Warning,
                "SigningFailed",
                err.to_string(),
            )
            .await;
            return Outcome::Retry;
        }
    };
    let status = issued_status(&issued);
    match write_status(ctx, pcr, status).await {
        Ok(()) => {
            audit::issued(
                Channel::PodCertificate,
                "sign",
                &caller(pcr),
                &role_name,
                &mount,
                &issued,
            );
            ctx.metrics.pcr(&role_name, "issued");
            ctx.metrics.pcr_seconds(started.elapsed().as_secs_f64());
            Outcome::Final
        }
        Err(outcome) => outcome,
    }
}

async fn deny(
    ctx: &Context,
    pcr: &PodCertificateRequest,
    role: &str,
    reason: &'static str,
    message: String,
) -> Outcome {
    let status = PodCertificateRequestStatus {
        conditions: Some(vec![condition("Denied", reason, &message)]),
        ..PodCertificateRequestStatus::default()
    };
    match write_status(ctx, pcr, status).await {
        Ok(()) => {
            audit::denied(
                Channel::PodCertificate,
                "sign",
                &caller(pcr),
                role,
                &ApiError::PermissionDenied(message.clone()),
            );
            ctx.metrics.pcr(role, "denied");
            event(ctx, pcr, EventType::Warning, reason, message.clone()).await;
            // The pod's own events, where its author looks first.
            let pod = ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(pcr.spec.pod_name.clone()),
                namespace: pcr.namespace(),
                uid: Some(pcr.spec.pod_uid.clone()),
                ..ObjectReference::default()
            };
            let note = format!(
                "tlsmint denied the pod certificate for signer {}: {message}",
                pcr.spec.signer_name
            );
            ctx.publish(pod, EventType::Warning, reason, note, "Sign")
                .await;
            Outcome::Final
        }
        Err(outcome) => outcome,
    }
}

/// The status of an issued request: chain leaf first (intermediates follow, the root is
/// in the ClusterTrustBundle), times equal to the leaf's, `beginRefreshAt` at half-life.
fn issued_status(issued: &Issued) -> PodCertificateRequestStatus {
    let mut chain = issued.certificate_pem.clone();
    let intermediates = issued.ca_chain.pem.len().saturating_sub(1);
    for pem in issued.ca_chain.pem.iter().take(intermediates) {
        chain.push_str(pem);
    }
    let refresh = decide::begin_refresh_at(
        issued.not_before,
        issued.not_after,
        REFRESH_AT,
        tlsmint_client::renewal::seed_of(issued.serial.to_colon_hex().as_bytes()),
    );
    PodCertificateRequestStatus {
        begin_refresh_at: Some(k8s_time(refresh)),
        certificate_chain: Some(chain),
        conditions: Some(vec![condition(
            "Issued",
            "Issued",
            &format!("issued by tlsmint, serial {}", issued.serial.to_colon_hex()),
        )]),
        not_after: Some(k8s_time(issued.not_after)),
        not_before: Some(k8s_time(issued.not_before)),
    }
}

fn condition(type_: &str, reason: &str, message: &str) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: "True".to_owned(),
        reason: reason.to_owned(),
        message: message.chars().take(32 * 1024).collect(),
        last_transition_time: k8s_time(time::OffsetDateTime::now_utc()),
        observed_generation: None,
    }
}

/// PUTs the status (with the watched resourceVersion, so a request changed meanwhile is
/// read again rather than overwritten). A conflict or an API error is a retry.
async fn write_status(
    ctx: &Context,
    pcr: &PodCertificateRequest,
    status: PodCertificateRequestStatus,
) -> Result<(), Outcome> {
    let namespace = pcr.namespace().unwrap_or_default();
    let api = Api::<PodCertificateRequest>::namespaced(ctx.client.clone(), &namespace);
    let mut updated = pcr.clone();
    updated.status = Some(status);
    match api
        .replace_status(&pcr.name_any(), &PostParams::default(), &updated)
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Err(Outcome::Final),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            // Read it again: maybe it is final already.
            match api.get_opt(&pcr.name_any()).await {
                Ok(Some(fresh)) if !decide::is_final(&fresh) => {
                    Err(Outcome::Changed(Box::new(fresh)))
                }
                Ok(_) => Err(Outcome::Final),
                Err(_) => Err(Outcome::Retry),
            }
        }
        Err(error) => {
            tracing::warn!(
                k8s.name = %pcr.name_any(),
                k8s.namespace = %namespace,
                error = &error as &dyn std::error::Error,
                "writing the PodCertificateRequest status failed; retrying"
            );
            Err(Outcome::Retry)
        }
    }
}

async fn event(
    ctx: &Context,
    pcr: &PodCertificateRequest,
    type_: EventType,
    reason: &str,
    message: String,
) {
    ctx.publish(pcr.object_ref(&()), type_, reason, message, "Sign")
        .await;
}

/// The pod as a caller, for the audit line.
fn caller(pcr: &PodCertificateRequest) -> Caller {
    let mut caller = Caller::service_account(
        pcr.metadata.namespace.as_deref().unwrap_or_default(),
        &pcr.spec.service_account_name,
    );
    caller.pod_name = Some(pcr.spec.pod_name.clone());
    caller.pod_uid = Some(pcr.spec.pod_uid.clone());
    caller
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
