//! Typed access to Envoy shared data (keys: `keys.rs`) and a bounded compare-and-swap update.
//!
//! Envoy's rules (proxy-wasm-cpp-host `shared_data.cc`): a set with a CAS token fails only when the
//! key exists with another token; a missing key is written whatever token is passed. So creation is
//! not atomic by itself: two workers that both read "missing" would both write, and the first
//! value would be lost. Every creation therefore happens under one creation lock, a key seeded at
//! configure time (so it always has a CAS token): whoever holds it re-reads the key and creates it
//! only if it is still missing; everyone else then goes through CAS. Update closures may run more
//! than once and must be idempotent for their own effect ("push X unless X is there").

use serde::Serialize;

use super::from_json::{decode, FromJson};

use super::keys::CREATE_LOCK_KEY;
use crate::core::host::{Host, SharedError};

/// Bound on CAS retries: contention is between a handful of workers, so 64 rounds means
/// something is wrong, and we give up rather than spin inside a host callback.
pub const MAX_CAS_ATTEMPTS: usize = 64;

/// A holder that died mid-create (VM crash) frees the lock after this long.
const CREATE_LOCK_TTL_MS: u64 = 1_000;
/// The lock is held across a handful of hostcalls on another thread, which the OS may preempt for
/// a few milliseconds: spin well past that (each attempt is one shared-data read, ~1 µs), still
/// bounded. Creations are rare (a key is created once), so the worst case is rare too.
const CREATE_LOCK_ATTEMPTS: usize = 1 << 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    Host(String),
    Corrupt(String),
    Contended(String),
    /// The store cannot be reached or cannot decide (etcd down or without quorum).
    Unavailable(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Host(e) => write!(f, "shared data: {e}"),
            StoreError::Corrupt(k) => write!(f, "shared data: unreadable record at {k}"),
            StoreError::Contended(k) => write!(f, "shared data: gave up after {MAX_CAS_ATTEMPTS} CAS attempts on {k}"),
            StoreError::Unavailable(why) => write!(f, "state store unavailable: {why}"),
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

pub fn read<T: FromJson>(host: &dyn Host, key: &str) -> Result<Option<T>, StoreError> {
    match read_raw(host, key)?.0 {
        None => Ok(None),
        Some(bytes) => decode(&bytes).map(Some).ok_or_else(|| StoreError::Corrupt(key.to_string())),
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
///
/// Only the JSON decoding and encoding are per record type; the CAS loop is `update_bytes`, once
/// in the module rather than once per (record, closure) pair (33 copies, 65 KB of the module).
pub fn update<T, F>(host: &mut dyn Host, key: &str, mut f: F) -> Result<Option<T>, StoreError>
where
    T: Serialize + FromJson,
    F: FnMut(Option<&T>) -> Option<T>,
{
    update_typed(host, key, &mut f)
}

/// `update` once per record type, not once per closure: the closure is called through a
/// pointer, so each caller's closure is its own code and the decoding around it is shared.
fn update_typed<T: Serialize + FromJson>(
    host: &mut dyn Host,
    key: &str,
    f: &mut dyn FnMut(Option<&T>) -> Option<T>,
) -> Result<Option<T>, StoreError> {
    let mut stored: Option<T> = None;
    update_bytes(host, key, &mut |raw| {
        let current: Option<T> = match raw {
            None => None,
            Some(bytes) => Some(decode(bytes).ok_or_else(|| StoreError::Corrupt(key.to_string()))?),
        };
        let next = f(current.as_ref());
        let bytes = match &next {
            None => None,
            Some(next) => Some(serde_json::to_vec(next).map_err(|e| StoreError::Host(e.to_string()))?),
        };
        stored = next.or(current);
        Ok(bytes)
    })?;
    Ok(stored)
}

/// The CAS loop of `update`: `step` gets the stored bytes (None when missing) and returns the bytes
/// to store, or None to leave the key as it is.
type UpdateStep<'a> = dyn FnMut(Option<&[u8]>) -> Result<Option<Vec<u8>>, StoreError> + 'a;

fn update_bytes(host: &mut dyn Host, key: &str, step: &mut UpdateStep<'_>) -> Result<(), StoreError> {
    for _ in 0..MAX_CAS_ATTEMPTS {
        let (raw, cas) = read_raw(host, key)?;
        let Some(bytes) = step(raw.as_deref())? else {
            return Ok(());
        };
        // A missing key has no CAS token: create it under the creation lock, or learn that
        // someone else just did and go round again with CAS. (An emptied key keeps its token.)
        if cas.is_none() {
            if create(host, key, &bytes)? {
                return Ok(());
            }
            continue;
        }
        match host.shared_set(key, &bytes, cas) {
            Ok(()) => return Ok(()),
            Err(SharedError::CasMismatch) => {}
            Err(e) => return Err(host_err(e)),
        }
    }
    Err(StoreError::Contended(key.to_string()))
}

/// Writes `value` at `key` if and only if the key does not exist (has no CAS token). Returns
/// whether it did. Atomic across workers as long as every creator goes through here.
pub fn create(host: &mut dyn Host, key: &str, value: &[u8]) -> Result<bool, StoreError> {
    let ticket = acquire_create_lock(host)?;
    let exists = host.shared_get(key).map_err(host_err)?.1.is_some();
    let written = if exists { Ok(false) } else { host.shared_set(key, value, None).map(|()| true).map_err(host_err) };
    release_create_lock(host, &ticket);
    written
}

/// The lock value: "<expires_ms> <nonce>"; empty when free. The nonce tells our hold from a
/// later holder's when releasing.
fn acquire_create_lock(host: &mut dyn Host) -> Result<Vec<u8>, StoreError> {
    for attempt in 0..CREATE_LOCK_ATTEMPTS {
        let now = host.now_ms();
        let (value, cas) = host.shared_get(CREATE_LOCK_KEY).map_err(host_err)?;
        let Some(cas) = cas else {
            // Not seeded (cannot happen after configure); seeding it here is as good as it gets.
            host.shared_set(CREATE_LOCK_KEY, b"", None).map_err(host_err)?;
            continue;
        };
        let held_until = value
            .as_deref()
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.split(' ').next())
            .and_then(|v| v.parse::<u64>().ok());
        if held_until.is_some_and(|until| until > now) {
            continue;
        }
        let ticket = format!("{} {cas}-{attempt}", now + CREATE_LOCK_TTL_MS).into_bytes();
        match host.shared_set(CREATE_LOCK_KEY, &ticket, Some(cas)) {
            Ok(()) => return Ok(ticket),
            Err(SharedError::CasMismatch) => {}
            Err(e) => return Err(host_err(e)),
        }
    }
    Err(StoreError::Contended(CREATE_LOCK_KEY.to_string()))
}

fn release_create_lock(host: &mut dyn Host, ticket: &[u8]) {
    if let Ok((Some(value), Some(cas))) = host.shared_get(CREATE_LOCK_KEY) {
        if value == ticket {
            let _ = host.shared_set(CREATE_LOCK_KEY, b"", Some(cas));
        }
    }
}

/// Create `key` with `value` only if it does not exist yet. Global keys are seeded at configure
/// time; the creation lock itself is seeded first, plainly, by the main-thread VM, which
/// configures before any worker VM exists.
pub fn seed(host: &mut dyn Host, key: &str, value: &[u8]) -> Result<(), StoreError> {
    if host.shared_get(CREATE_LOCK_KEY).map_err(host_err)?.1.is_none() {
        host.shared_set(CREATE_LOCK_KEY, b"", None).map_err(host_err)?;
    }
    create(host, key, value).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::state::keys::TASK_COUNTER_KEY;
    use crate::core::fake_host::{new_envoy, FakeHost, HookAt, HookedHost};

    fn push(host: &mut dyn Host, key: &str, item: &str) {
        update::<Vec<String>, _>(host, key, |list| {
            let mut list = list.cloned().unwrap_or_default();
            if list.iter().any(|i| i == item) {
                return None;
            }
            list.push(item.to_string());
            Some(list)
        })
        .unwrap();
    }

    #[test]
    fn two_workers_creating_one_key_keep_both_values() {
        let envoy = new_envoy(0);
        seed(&mut FakeHost::new(envoy.clone()), TASK_COUNTER_KEY, b"0").unwrap();
        // Worker A reads "missing"; before it writes, worker B creates the key with its item.
        let other = envoy.clone();
        let mut a = HookedHost::new(envoy.clone(), HookAt::Get, "k", move || push(&mut FakeHost::new(other), "k", "b"));
        push(&mut a, "k", "a");
        assert!(a.fired());
        let list: Vec<String> = read(&FakeHost::new(envoy), "k").unwrap().unwrap();
        assert_eq!(list, vec!["b".to_string(), "a".to_string()], "neither create is lost");
    }

    #[test]
    fn a_creation_lock_left_by_a_crashed_worker_expires() {
        let envoy = new_envoy(5_000);
        let mut h = FakeHost::new(envoy.clone());
        h.shared_set(CREATE_LOCK_KEY, b"5500 dead", None).unwrap();
        // Held until 5500: creating now gives up (bounded), then succeeds once it has expired.
        assert!(matches!(create(&mut h, "k", b"1"), Err(StoreError::Contended(_))));
        envoy.borrow_mut().now_ms = 5_500;
        assert_eq!(create(&mut h, "k", b"1"), Ok(true));
        assert_eq!(create(&mut h, "k", b"2"), Ok(false), "exists: not overwritten");
        assert_eq!(read_raw(&h, "k").unwrap().0.unwrap(), b"1");
        assert_eq!(read_raw(&h, CREATE_LOCK_KEY).unwrap().0, None, "released");
    }
}
