//! Typed access to Envoy shared data: key layout under one versioned prefix and a bounded
//! compare-and-swap update.
//!
//! Envoy's rules (proxy-wasm-cpp-host `shared_data.cc`): a set with a CAS token fails only when the
//! key exists with another token; a missing key is written whatever token is passed. So creation is
//! not atomic. `update` handles it by re-reading after creating a key: if another worker's create
//! won, the update is applied again on top of the winner. Update closures must therefore be
//! idempotent for their own effect ("push X unless X is there").

use serde::{de::DeserializeOwned, Serialize};

use super::host::{Host, SharedError};

pub const PREFIX: &str = "miroir/v1/";
/// Bound on CAS retries: contention is between a handful of workers, so 64 rounds means
/// something is wrong, and we give up rather than spin inside a host callback.
pub const MAX_CAS_ATTEMPTS: usize = 64;

pub const TASK_COUNTER_KEY: &str = "miroir/v1/task_counter";
pub const ACTIVE_KEY: &str = "miroir/v1/active_indexes";
pub const DRIFT_LEASE_KEY: &str = "miroir/v1/drift_lease";

pub fn index_key(uid: &str) -> String {
    format!("{PREFIX}index/{uid}")
}
/// A few bytes read on the hot path: "<version> <inconsistent 0|1> <frozen 0|1>".
pub fn hot_key(uid: &str) -> String {
    format!("{PREFIX}hot/{uid}")
}
pub fn job_key(task_uid: u64) -> String {
    format!("{PREFIX}job/{task_uid}")
}
pub fn task_key(task_uid: u64) -> String {
    format!("{PREFIX}task/{task_uid}")
}
pub fn desired_key(uid: &str) -> String {
    format!("{PREFIX}desired/{uid}")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    Host(String),
    Corrupt(String),
    Contended(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Host(e) => write!(f, "shared data: {e}"),
            StoreError::Corrupt(k) => write!(f, "shared data: unreadable record at {k}"),
            StoreError::Contended(k) => write!(f, "shared data: gave up after {MAX_CAS_ATTEMPTS} CAS attempts on {k}"),
        }
    }
}

fn host_err(e: SharedError) -> StoreError {
    match e {
        SharedError::CasMismatch => StoreError::Host("cas mismatch".into()),
        SharedError::Other(s) => StoreError::Host(s),
    }
}

pub fn read_raw(host: &dyn Host, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), StoreError> {
    let (value, cas) = host.shared_get(key).map_err(host_err)?;
    Ok((value.filter(|v| !v.is_empty()), cas))
}

pub fn read<T: DeserializeOwned>(host: &dyn Host, key: &str) -> Result<Option<T>, StoreError> {
    match read_raw(host, key)?.0 {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|_| StoreError::Corrupt(key.to_string())),
    }
}

/// Unconditional write (single-writer keys: a task record written only by its job's owner).
pub fn write<T: Serialize>(host: &mut dyn Host, key: &str, value: &T) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Host(e.to_string()))?;
    host.shared_set(key, &bytes, None).map_err(host_err)
}

/// "Delete": the ABI has no delete, so the value is emptied and reads treat it as missing.
pub fn clear(host: &mut dyn Host, key: &str) -> Result<(), StoreError> {
    host.shared_set(key, b"", None).map_err(host_err)
}

/// Read-modify-write with CAS. `f` gets the current value (None when missing) and returns the new
/// value, or None to leave the key as it is. Returns the value that is stored when it returns.
pub fn update<T, F>(host: &mut dyn Host, key: &str, mut f: F) -> Result<Option<T>, StoreError>
where
    T: Serialize + DeserializeOwned,
    F: FnMut(Option<&T>) -> Option<T>,
{
    for _ in 0..MAX_CAS_ATTEMPTS {
        let (raw, cas) = read_raw(host, key)?;
        let current: Option<T> = match &raw {
            None => None,
            Some(bytes) => Some(
                serde_json::from_slice(bytes).map_err(|_| StoreError::Corrupt(key.to_string()))?,
            ),
        };
        let Some(next) = f(current.as_ref()) else {
            return Ok(current);
        };
        let bytes = serde_json::to_vec(&next).map_err(|e| StoreError::Host(e.to_string()))?;
        // A missing key has no CAS token: the write always lands, so check afterwards that ours
        // is the value that stuck. (An emptied key still has a token and is updated by CAS.)
        let creating = cas.is_none();
        match host.shared_set(key, &bytes, cas) {
            Ok(()) if !creating => return Ok(Some(next)),
            Ok(()) => {
                if read_raw(host, key)?.0.as_deref() == Some(bytes.as_slice()) {
                    return Ok(Some(next));
                }
            }
            Err(SharedError::CasMismatch) => {}
            Err(e) => return Err(host_err(e)),
        }
    }
    Err(StoreError::Contended(key.to_string()))
}

/// Create `key` with `value` only if it does not exist yet (best effort: creation is not atomic,
/// which is why global keys are seeded from the main-thread VM before any worker VM exists).
pub fn seed(host: &mut dyn Host, key: &str, value: &[u8]) -> Result<(), StoreError> {
    if read_raw(host, key)?.0.is_none() {
        host.shared_set(key, value, None).map_err(host_err)?;
    }
    Ok(())
}
