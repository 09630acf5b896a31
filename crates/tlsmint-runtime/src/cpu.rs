//! CPU-bound work (key generation, signing) off the async threads, at most one job per
//! core at a time. More would not finish sooner, and every extra blocking thread costs
//! memory (a stack and, with glibc, often a malloc arena): a burst of a thousand requests
//! must not start hundreds of threads.
//!
//! Owns the bound. It must not know what the work is. Shared by the operator (controllers
//! and issuance API) and the CSI driver (keys made on the node).

use std::sync::Arc;

use tokio::sync::Semaphore;

/// A job on the pool did not finish.
#[derive(Debug, thiserror::Error)]
#[error("the blocking task for {what} did not finish: {source}")]
pub struct CpuError {
    /// What was running (names the job in errors; bounded, for metric labels too).
    pub what: &'static str,
    /// Why (it panicked, or the runtime is shutting down).
    #[source]
    pub source: tokio::task::JoinError,
}

/// A bounded runner for blocking work. Cheap to clone.
#[derive(Clone, Debug)]
pub struct CpuPool {
    permits: Arc<Semaphore>,
}

impl CpuPool {
    /// At most `jobs` jobs at once (at least one).
    pub fn new(jobs: usize) -> Self {
        CpuPool {
            permits: Arc::new(Semaphore::new(jobs.max(1))),
        }
    }

    /// One job per available core.
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, usize::from))
    }

    /// Runs `work` on the blocking pool once a slot is free; `what` names it in errors.
    pub async fn run<T: Send + 'static>(
        &self,
        what: &'static str,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, CpuError> {
        // The semaphore is never closed, so acquiring cannot fail; without a permit the
        // work still runs, unbounded, rather than not at all.
        let _permit = self.permits.acquire().await.ok();
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|source| CpuError { what, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_at_most_the_bound_at_once() {
        let pool = CpuPool::new(2);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let jobs = (0..8).map(|_| {
            let (running, peak, pool) = (running.clone(), peak.clone(), pool.clone());
            async move {
                pool.run("test", move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }
        });
        let handles: Vec<_> = jobs.map(tokio::spawn).collect();
        for handle in handles {
            handle.await.unwrap().unwrap();
        }
        assert!(peak.load(Ordering::SeqCst) <= 2);
    }
}
