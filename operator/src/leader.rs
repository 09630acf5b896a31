//! Leader election with a `coordination.k8s.io/v1` Lease, so that two or more replicas can
//! run: only the holder runs the controllers, and a holder that cannot renew stops them at
//! once (the task is aborted before the lease can expire for the others).
//!
//! The rules, client-go's: a lease is free when its holder has not renewed it for
//! `lease_duration` *as observed by this replica's monotonic clock* (no trust in other
//! clocks); every write carries the resourceVersion read just before, so two candidates
//! cannot both win; the holder gives up its leadership if renewals fail for
//! `renew_deadline` (shorter than `lease_duration`); on shutdown it releases the lease so a
//! peer takes over without waiting. [`decide`] is the pure part, table-tested.
//!
//! Owns the Lease. It must not know what the leader runs.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};
use tlsmint_runtime::CancellationToken;
use tokio::time::Instant;

/// Lease timing and identity.
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    /// Namespace of the Lease (the operator's).
    pub namespace: String,
    /// Name of the Lease.
    pub lease_name: String,
    /// This replica's identity (its pod name).
    pub identity: String,
    /// How long a lease is valid without renewal.
    pub lease_duration: Duration,
    /// How long the holder keeps leading while renewals fail.
    pub renew_deadline: Duration,
    /// Time between attempts to acquire or renew.
    pub retry_period: Duration,
}

/// What to do with the Lease, from what was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// No Lease: create it, holding it.
    Create,
    /// We hold it: renew it.
    Renew,
    /// Someone else held it, but it expired (or was released): take it over.
    TakeOver,
    /// Someone else holds it: wait.
    Wait,
}

/// Decides the step. `unchanged_for` is how long this replica has seen the same lease
/// record (holder and renew time) without change.
pub fn decide(
    lease: Option<&LeaseSpec>,
    me: &str,
    unchanged_for: Duration,
    lease_duration: Duration,
) -> Step {
    let Some(spec) = lease else {
        return Step::Create;
    };
    match spec.holder_identity.as_deref() {
        Some(holder) if holder == me => Step::Renew,
        None | Some("") => Step::TakeOver,
        Some(_) => {
            let duration = spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map(Duration::from_secs)
                .unwrap_or(lease_duration);
            if unchanged_for >= duration {
                Step::TakeOver
            } else {
                Step::Wait
            }
        }
    }
}

/// Runs `work` whenever this replica holds the lease, until `shutdown` is cancelled. The
/// work gets a token cancelled on shutdown; on a lost lease its task is aborted at once.
/// `on_change` is told about every change of leadership.
pub async fn run<F, Fut>(
    client: Client,
    config: LeaderConfig,
    shutdown: CancellationToken,
    on_change: impl Fn(bool),
    work: F,
) where
    F: Fn(CancellationToken) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let mut observer = Observer::default();
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        if try_acquire(&api, &config, &mut observer).await {
            tracing::info!(lease = %config.lease_name, identity = %config.identity, "became leader");
            on_change(true);
            let stop = shutdown.child_token();
            let task = tokio::spawn(work(stop.clone()));
            let released = hold(&api, &config, &shutdown).await;
            stop.cancel();
            if released {
                // Shutting down: let the work stop gracefully, then give the lease away.
                let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
                release(&api, &config).await;
                on_change(false);
                return;
            }
            task.abort();
            on_change(false);
            tracing::warn!(lease = %config.lease_name, identity = %config.identity, "lost the lease; controllers stopped");
            observer = Observer::default();
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(config.retry_period) => {}
        }
    }
}

/// Remembers the last lease record seen and since when.
#[derive(Default)]
struct Observer {
    record: Option<(Option<String>, Option<Timestamp>)>,
    since: Option<Instant>,
}

impl Observer {
    fn unchanged_for(&mut self, lease: Option<&LeaseSpec>) -> Duration {
        let record = lease.map(|s| {
            (
                s.holder_identity.clone(),
                s.renew_time.as_ref().map(|t| t.0),
            )
        });
        let now = Instant::now();
        if record != self.record || self.since.is_none() {
            self.record = record;
            self.since = Some(now);
        }
        self.since.map(|s| now - s).unwrap_or_default()
    }
}

fn now_micro() -> MicroTime {
    MicroTime(Timestamp::now())
}

fn held_spec(config: &LeaderConfig, previous: Option<&LeaseSpec>, take_over: bool) -> LeaseSpec {
    let transitions = previous.and_then(|s| s.lease_transitions).unwrap_or(0);
    LeaseSpec {
        holder_identity: Some(config.identity.clone()),
        lease_duration_seconds: i32::try_from(config.lease_duration.as_secs()).ok(),
        acquire_time: if take_over || previous.is_none() {
            Some(now_micro())
        } else {
            previous.and_then(|s| s.acquire_time.clone())
        },
        renew_time: Some(now_micro()),
        lease_transitions: Some(if take_over {
            transitions + 1
        } else {
            transitions
        }),
        ..LeaseSpec::default()
    }
}

/// One attempt to get (or keep) the lease; true when we hold it afterwards.
async fn try_acquire(api: &Api<Lease>, config: &LeaderConfig, observer: &mut Observer) -> bool {
    let current = match api.get_opt(&config.lease_name).await {
        Ok(lease) => lease,
        Err(error) => {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                "reading the lease failed"
            );
            return false;
        }
    };
    let spec = current.as_ref().and_then(|l| l.spec.as_ref());
    let unchanged = observer.unchanged_for(spec);
    match decide(spec, &config.identity, unchanged, config.lease_duration) {
        Step::Wait => false,
        Step::Create => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(config.lease_name.clone()),
                    namespace: Some(config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(held_spec(config, None, false)),
            };
            api.create(&PostParams::default(), &lease).await.is_ok()
        }
        step @ (Step::Renew | Step::TakeOver) => {
            let Some(mut lease) = current else {
                return false;
            };
            lease.spec = Some(held_spec(
                config,
                lease.spec.as_ref(),
                step == Step::TakeOver,
            ));
            // The resourceVersion read above makes this a compare-and-swap.
            api.replace(&config.lease_name, &PostParams::default(), &lease)
                .await
                .is_ok()
        }
    }
}

/// Renews while leading. Returns true when shutdown was asked, false when the lease was
/// lost (taken by another replica, or not renewed within the renew deadline).
async fn hold(api: &Api<Lease>, config: &LeaderConfig, shutdown: &CancellationToken) -> bool {
    let mut last_renewal = Instant::now();
    loop {
        let deadline = last_renewal + config.renew_deadline;
        tokio::select! {
            () = shutdown.cancelled() => return true,
            () = tokio::time::sleep(config.retry_period) => {}
        }
        let renewed = tokio::time::timeout_at(deadline, renew(api, config)).await;
        match renewed {
            Ok(Ok(true)) => last_renewal = Instant::now(),
            Ok(Ok(false)) => return false,
            Ok(Err(())) | Err(_) if Instant::now() >= deadline => return false,
            Ok(Err(())) | Err(_) => {}
        }
    }
}

/// Ok(true): renewed; Ok(false): someone else holds it now; Err: could not tell.
async fn renew(api: &Api<Lease>, config: &LeaderConfig) -> Result<bool, ()> {
    let mut lease = match api.get(&config.lease_name).await {
        Ok(lease) => lease,
        Err(kube::Error::Api(status)) if status.code == 404 => return Ok(false),
        Err(error) => {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                "reading the lease failed"
            );
            return Err(());
        }
    };
    let holder = lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref());
    if holder != Some(config.identity.as_str()) {
        return Ok(false);
    }
    lease.spec = Some(held_spec(config, lease.spec.as_ref(), false));
    match api
        .replace(&lease.name_any(), &PostParams::default(), &lease)
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(error) => {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                "renewing the lease failed"
            );
            Err(())
        }
    }
}

/// Gives the lease up (holder cleared), so a peer takes over at its next attempt.
async fn release(api: &Api<Lease>, config: &LeaderConfig) {
    let Ok(mut lease) = api.get(&config.lease_name).await else {
        return;
    };
    let Some(spec) = lease.spec.as_mut() else {
        return;
    };
    if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
        return;
    }
    spec.holder_identity = None;
    spec.renew_time = Some(now_micro());
    match api
        .replace(&config.lease_name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => tracing::info!(lease = %config.lease_name, "lease released"),
        Err(error) => tracing::warn!(
            error = &error as &dyn std::error::Error,
            "releasing the lease failed"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: Option<&str>, seconds: Option<i32>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            lease_duration_seconds: seconds,
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn decides_create_renew_take_over_or_wait() {
        let d = Duration::from_secs(15);
        let s = Duration::from_secs;
        let table = [
            (None, s(0), Step::Create),
            (Some(lease(Some("me"), Some(15))), s(0), Step::Renew),
            (Some(lease(Some("me"), Some(15))), s(60), Step::Renew),
            (Some(lease(Some("peer"), Some(15))), s(3), Step::Wait),
            (Some(lease(Some("peer"), Some(15))), s(14), Step::Wait),
            (Some(lease(Some("peer"), Some(15))), s(15), Step::TakeOver),
            (Some(lease(Some("peer"), Some(5))), s(6), Step::TakeOver),
            (Some(lease(Some("peer"), None)), s(16), Step::TakeOver),
            (Some(lease(None, Some(15))), s(0), Step::TakeOver),
            (Some(lease(Some(""), Some(15))), s(0), Step::TakeOver),
        ];
        for (spec, unchanged, want) in table {
            assert_eq!(
                decide(spec.as_ref(), "me", unchanged, d),
                want,
                "{spec:?} {unchanged:?}"
            );
        }
    }

    #[test]
    fn taking_over_counts_a_transition_and_renewing_does_not() {
        let config = LeaderConfig {
            namespace: "ns".into(),
            lease_name: "l".into(),
            identity: "me".into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        };
        let mut previous = lease(Some("peer"), Some(15));
        previous.lease_transitions = Some(3);
        let taken = held_spec(&config, Some(&previous), true);
        assert_eq!(taken.lease_transitions, Some(4));
        assert_eq!(taken.holder_identity.as_deref(), Some("me"));
        assert_eq!(taken.lease_duration_seconds, Some(15));
        let renewed = held_spec(&config, Some(&taken), false);
        assert_eq!(renewed.lease_transitions, Some(4));
        assert_eq!(renewed.acquire_time, taken.acquire_time);
    }
}
