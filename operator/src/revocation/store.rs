//! Where revocations are kept: the [`RevocationStore`] trait, its stored
//! shape ([`StoredMount`]), and the in-memory store of dev mode.
//!
//! Owns: the persisted format (one JSON document per mount). Must not: decide
//! when to prune or what a CRL says (`revocation::Revocations` does).

// Cluster-mode pieces: `run` (operator/src/run.rs) wires them in; dev mode does not.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use futures::future::BoxFuture;

/// Everything stored for one mount: its revoked serials and the last CRL number.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredMount {
    /// The number of the last CRL built for this mount (grows with every CRL).
    #[serde(default)]
    pub crl_number: u64,
    /// Revoked certificates not yet pruned.
    #[serde(default)]
    pub revoked: Vec<StoredEntry>,
}

/// One revoked certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredEntry {
    /// Serial, colon-separated hex.
    pub serial: String,
    /// Revocation time, Unix seconds.
    pub revoked_at: i64,
    /// Unix seconds after which the entry may leave the CRL (the
    /// certificate's notAfter plus a safety margin).
    pub keep_until: i64,
}

/// A change to a mount's stored document; returns whether it changed
/// anything, or an error that leaves the stored document as it was.
pub type Mutation = Box<dyn FnMut(&mut StoredMount) -> Result<bool, StoreError> + Send>;

/// A store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading the stored document failed.
    #[error("reading the revocations of mount {mount} failed: {reason}")]
    Read {
        /// Mount name.
        mount: String,
        /// Why.
        reason: String,
    },
    /// Writing it failed (after retries on conflicts).
    #[error("writing the revocations of mount {mount} failed: {reason}")]
    Write {
        /// Mount name.
        mount: String,
        /// Why.
        reason: String,
    },
    /// The mount's revocation list is full: nothing was written. Entries
    /// leave it as their certificates expire.
    #[error(
        "the revocation list of mount {mount} is full ({reason}); nothing was recorded. \
         Entries leave it once their certificates expire; retry later or raise --max-revocations"
    )]
    Full {
        /// Mount name.
        mount: String,
        /// Which limit was reached.
        reason: String,
    },
    /// The stored document is not valid JSON of the expected shape.
    #[error("the stored revocations of mount {mount} are unreadable: {reason}")]
    Corrupt {
        /// Mount name.
        mount: String,
        /// Why.
        reason: String,
    },
}

/// Persistent revocation state, shared by every replica.
pub trait RevocationStore: Send + Sync + 'static {
    /// The mount's document (empty when none was stored yet).
    fn load<'a>(&'a self, mount: &'a str) -> BoxFuture<'a, Result<StoredMount, StoreError>>;
    /// Read-modify-write of the mount's document, retried on concurrent
    /// writes; returns the document as stored.
    fn update<'a>(
        &'a self,
        mount: &'a str,
        mutate: Mutation,
    ) -> BoxFuture<'a, Result<StoredMount, StoreError>>;
}

/// Dev mode's store: in memory, lost on exit.
#[derive(Debug, Default)]
pub struct MemoryStore {
    mounts: Mutex<HashMap<String, StoredMount>>,
}

impl RevocationStore for MemoryStore {
    fn load<'a>(&'a self, mount: &'a str) -> BoxFuture<'a, Result<StoredMount, StoreError>> {
        Box::pin(async move {
            let mounts = self.mounts.lock().unwrap_or_else(|e| e.into_inner());
            Ok(mounts.get(mount).cloned().unwrap_or_default())
        })
    }

    fn update<'a>(
        &'a self,
        mount: &'a str,
        mut mutate: Mutation,
    ) -> BoxFuture<'a, Result<StoredMount, StoreError>> {
        Box::pin(async move {
            let mut mounts = self.mounts.lock().unwrap_or_else(|e| e.into_inner());
            let mut doc = mounts.get(mount).cloned().unwrap_or_default();
            if mutate(&mut doc)? {
                mounts.insert(mount.to_owned(), doc.clone());
            }
            Ok(doc)
        })
    }
}
