//! Readiness: named checks that each part of a process sets once it can serve (e.g. "the
//! CA catalog is loaded"). `/readyz` answers 200 only when every registered check is ready.
//!
//! Owns the flags. It must not decide what "ready" means for a part: the part sets its own.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The set of readiness checks of one process. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    checks: Arc<Mutex<BTreeMap<&'static str, bool>>>,
}

/// One named readiness check, owned by the part of the process it describes.
#[derive(Clone, Debug)]
pub struct Check {
    name: &'static str,
    readiness: Readiness,
}

impl Readiness {
    /// An empty set: ready until a check is registered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a check named `name`, initially not ready.
    pub fn register(&self, name: &'static str) -> Check {
        self.lock().insert(name, false);
        Check {
            name,
            readiness: self.clone(),
        }
    }

    /// Whether every check is ready; otherwise the names of those that are not.
    pub fn status(&self) -> Result<(), Vec<&'static str>> {
        let waiting: Vec<_> = self
            .lock()
            .iter()
            .filter(|(_, ready)| !**ready)
            .map(|(name, _)| *name)
            .collect();
        if waiting.is_empty() {
            Ok(())
        } else {
            Err(waiting)
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, bool>> {
        self.checks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Check {
    /// Marks this check ready (or not).
    pub fn set(&self, ready: bool) {
        self.readiness.lock().insert(self.name, ready);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_check_is() {
        let readiness = Readiness::new();
        assert_eq!(readiness.status(), Ok(()));
        let loader = readiness.register("catalog");
        let api = readiness.register("api");
        assert_eq!(readiness.status(), Err(vec!["api", "catalog"]));
        loader.set(true);
        assert_eq!(readiness.status(), Err(vec!["api"]));
        api.set(true);
        assert_eq!(readiness.status(), Ok(()));
        api.set(false);
        assert_eq!(readiness.status(), Err(vec!["api"]));
    }
}
