//! A bounded, in-memory index of certificates this replica issued recently:
//! serves Vault's `GET /v1/<mount>/cert/<serial>` and gives revocation by
//! serial the certificate's notAfter (so the CRL entry can be pruned when the
//! certificate expires).
//!
//! Owns: the index and its bound. Must not: be relied on for correctness
//! (it is per replica and forgets on restart), or hold private keys.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use time::OffsetDateTime;
use tlsmint_ca::Serial;

/// One remembered certificate.
#[derive(Debug)]
pub struct RecentCert {
    /// The mount that issued it.
    pub mount: String,
    /// The certificate, PEM.
    pub certificate_pem: String,
    /// Its notAfter.
    pub not_after: OffsetDateTime,
}

/// The last `capacity` certificates issued by this replica.
#[derive(Debug)]
pub struct RecentCerts {
    capacity: usize,
    inner: Mutex<Index>,
}

type Index = (HashMap<Serial, Arc<RecentCert>>, VecDeque<Serial>);

impl RecentCerts {
    /// Remembers at most `capacity` certificates (0 remembers none).
    pub fn new(capacity: usize) -> Self {
        RecentCerts {
            capacity,
            inner: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }

    /// Remembers a certificate, forgetting the oldest beyond the capacity.
    pub fn insert(&self, serial: Serial, cert: RecentCert) {
        if self.capacity == 0 {
            return;
        }
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (map, order) = &mut *guard;
        if map.insert(serial.clone(), Arc::new(cert)).is_none() {
            order.push_back(serial);
        }
        while order.len() > self.capacity {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }

    /// The serials remembered for `mount`, oldest first.
    pub fn serials_of(&self, mount: &str) -> Vec<Serial> {
        let guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (map, order) = &*guard;
        order
            .iter()
            .filter(|s| map.get(*s).is_some_and(|c| c.mount == mount))
            .cloned()
            .collect()
    }

    /// A remembered certificate.
    pub fn get(&self, serial: &Serial) -> Option<Arc<RecentCert>> {
        let guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        guard.0.get(serial).cloned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn forgets_the_oldest_beyond_capacity() {
        let recent = RecentCerts::new(2);
        let serials: Vec<Serial> = (0..3).map(|_| Serial::random()).collect();
        for s in &serials {
            recent.insert(
                s.clone(),
                RecentCert {
                    mount: "pki".into(),
                    certificate_pem: String::new(),
                    not_after: OffsetDateTime::now_utc(),
                },
            );
        }
        assert!(recent.get(&serials[0]).is_none());
        assert!(recent.get(&serials[2]).is_some());
    }
}
