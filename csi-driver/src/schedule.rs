//! One renewal schedule for every volume: a queue sorted by due time, served by a single
//! task that sleeps until the earliest entry. Adding, moving or removing a volume's entry
//! is O(log n) and wakes the task; there is no ticker or task per volume.
//!
//! Owns the queue and the wake-ups. It must not renew anything: it hands due volume ids to
//! the callback (the manager), which reschedules them.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;

#[derive(Debug, Default)]
struct Queue {
    by_time: BTreeSet<(OffsetDateTime, String)>,
    by_id: HashMap<String, OffsetDateTime>,
}

/// The renewal queue.
#[derive(Debug, Default)]
pub struct Schedule {
    queue: Mutex<Queue>,
    wake: Notify,
}

impl Schedule {
    /// An empty schedule.
    pub fn new() -> Arc<Self> {
        Arc::new(Schedule::default())
    }

    /// Sets (or moves) the due time of `id`.
    pub fn set(&self, id: &str, at: OffsetDateTime) {
        {
            let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(old) = q.by_id.insert(id.to_owned(), at) {
                q.by_time.remove(&(old, id.to_owned()));
            }
            q.by_time.insert((at, id.to_owned()));
        }
        self.wake.notify_one();
    }

    /// Removes `id` from the schedule.
    pub fn remove(&self, id: &str) {
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = q.by_id.remove(id) {
            q.by_time.remove(&(old, id.to_owned()));
        }
    }

    /// The due time of `id`, if scheduled.
    pub fn due(&self, id: &str) -> Option<OffsetDateTime> {
        let q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        q.by_id.get(id).copied()
    }

    /// Number of scheduled volumes.
    pub fn len(&self) -> usize {
        let q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        q.by_id.len()
    }

    /// Whether nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes every entry due at `now` out of the queue; returns them and the next due time.
    fn take_due(&self, now: OffsetDateTime) -> (Vec<String>, Option<OffsetDateTime>) {
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let mut due = Vec::new();
        while let Some((at, _)) = q.by_time.first() {
            if *at > now {
                break;
            }
            if let Some((_, id)) = q.by_time.pop_first() {
                q.by_id.remove(&id);
                due.push(id);
            }
        }
        let next = q.by_time.first().map(|(at, _)| *at);
        (due, next)
    }

    /// Serves the queue until `cancel`: every due id is passed to `on_due` (which must not
    /// block) and leaves the queue; the callback schedules it again.
    pub async fn run(
        self: Arc<Self>,
        clock: Clock,
        cancel: CancellationToken,
        on_due: impl Fn(String),
    ) {
        loop {
            let (due, next) = self.take_due(clock.now());
            for id in due {
                on_due(id);
            }
            let sleep = async {
                match next {
                    Some(at) => clock.sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = cancel.cancelled() => return,
                () = self.wake.notified() => {}
                () = sleep => {}
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn takes_due_entries_in_order_and_moves_entries() {
        let s = Schedule::new();
        let t0 = OffsetDateTime::UNIX_EPOCH;
        s.set("b", t0 + Duration::from_secs(20));
        s.set("a", t0 + Duration::from_secs(10));
        s.set("c", t0 + Duration::from_secs(30));
        s.set("c", t0 + Duration::from_secs(5));
        s.remove("b");
        let (due, next) = s.take_due(t0 + Duration::from_secs(15));
        assert_eq!(due, ["c", "a"]);
        assert_eq!(next, None);
        assert!(s.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn one_task_fires_each_entry_at_its_time() {
        let s = Schedule::new();
        let clock = Clock::tokio();
        let fired = Arc::new(Mutex::new(Vec::new()));
        let cancel = CancellationToken::new();
        let task = tokio::spawn({
            let (s, fired, cancel) = (s.clone(), fired.clone(), cancel.clone());
            s.run(clock, cancel, move |id| fired.lock().unwrap().push(id))
        });
        let now = clock.now();
        s.set("late", now + Duration::from_secs(90));
        s.set("early", now + Duration::from_secs(40));
        tokio::time::sleep(Duration::from_secs(41)).await;
        assert_eq!(*fired.lock().unwrap(), ["early"]);
        tokio::time::sleep(Duration::from_secs(50)).await;
        assert_eq!(*fired.lock().unwrap(), ["early", "late"]);
        cancel.cancel();
        task.await.unwrap();
    }
}
