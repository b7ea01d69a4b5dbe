//! The index record and its hot-path projection. Every write of an index record goes through
//! `update_index`, which bumps the record's `rev` and then brings the hot record (the few bytes
//! read on every response) up to that revision by CAS. A hot record only ever moves forward in
//! `rev`, so two workers writing at once can never leave an older view behind: a freeze is never
//! lost, and a lifted freeze never comes back.

use crate::core::host::{Host, SharedError};
use super::records::{HotRecord, IndexRecord};
use super::keys;
use super::store::{self, StoreError, MAX_CAS_ATTEMPTS};

pub fn read_index(host: &dyn Host, index: &str) -> Result<Option<IndexRecord>, StoreError> {
    store::read(host, &keys::index_key(index))
}

/// Read-modify-write of the index record (see `store::update`), then the hot projection.
/// `change` gets the current record (None when missing) and returns the new one, or None to
/// leave it as it is. Returns the record as it stands afterwards.
pub fn update_index<F>(host: &mut dyn Host, index: &str, mut change: F) -> Result<Option<IndexRecord>, StoreError>
where
    F: FnMut(Option<&IndexRecord>) -> Option<IndexRecord>,
{
    update_index_with(host, index, &mut change)
}

/// `update_index` once in the module: the caller's change is called through a pointer (two
/// dozen callers, each of which used to get its own copy of the update and the hot sync).
fn update_index_with(
    host: &mut dyn Host,
    index: &str,
    change: &mut dyn FnMut(Option<&IndexRecord>) -> Option<IndexRecord>,
) -> Result<Option<IndexRecord>, StoreError> {
    let mut wrote = false;
    let stored = store::update::<IndexRecord, _>(host, &keys::index_key(index), |current| {
        let mut next = change(current);
        wrote = next.is_some();
        if let Some(next) = next.as_mut() {
            next.rev = current.map(|c| c.rev).unwrap_or(0) + 1;
        }
        next
    })?;
    if let (true, Some(rec)) = (wrote, stored.as_ref()) {
        sync_hot(host, index, HotRecord::of(rec));
    }
    Ok(stored)
}

pub fn read_hot(host: &dyn Host, index: &str) -> HotRecord {
    match host.shared_get(&keys::hot_key(index)) {
        Ok((Some(bytes), _)) => HotRecord::decode(&bytes).unwrap_or_default(),
        _ => HotRecord::default(),
    }
}

/// A hot record now reads otherwise: every VM's copy of the hot records (`hot_cache.rs`) is out
/// of date. A write that only moved its `rev` (most writes of an index record: a queue, a lease)
/// leaves the copies as good as they were, so searches keep them through a run of writes.
pub fn hot_changed(host: &mut dyn Host) {
    if let Err(e) = host.shared_set(keys::HOT_GENERATION_KEY, b"", None) {
        log::warn!("miroir: bumping the hot generation failed: {e:?}");
    }
}

/// Fence writes before a freeze is recorded: the hot record says frozen at once (same `rev`), so
/// no write slips through while the record is being written; the record's own projection
/// follows and keeps it frozen.
pub fn fence(host: &mut dyn Host, index: &str) {
    write_hot_if(host, index, |hot| (!hot.frozen).then_some(HotRecord { frozen: true, inconsistent: true, ..hot }));
}

fn sync_hot(host: &mut dyn Host, index: &str, next: HotRecord) {
    write_hot_if(host, index, |hot| (next.rev > hot.rev).then_some(next));
}

/// CAS loop on the hot key: `decide` sees the current value and returns the one to write.
fn write_hot_if(host: &mut dyn Host, index: &str, decide: impl Fn(HotRecord) -> Option<HotRecord>) {
    let key = keys::hot_key(index);
    for _ in 0..MAX_CAS_ATTEMPTS {
        let (current, cas) = match host.shared_get(&key) {
            Ok((value, cas)) => (value.as_deref().and_then(HotRecord::decode).unwrap_or_default(), cas),
            Err(e) => {
                log::warn!("miroir: index {index}: reading the hot record failed: {e:?}");
                return;
            }
        };
        let Some(next) = decide(current) else { return };
        let bytes = next.encode().into_bytes();
        let written = match cas {
            None => store::create(host, &key, &bytes).map_err(|e| format!("{e}")),
            Some(_) => match host.shared_set(&key, &bytes, cas) {
                Ok(()) => Ok(true),
                Err(SharedError::CasMismatch) => Ok(false),
                Err(e) => Err(format!("{e:?}")),
            },
        };
        match written {
            Ok(true) if next.reads_as(&current) => return,
            Ok(true) => return hot_changed(host),
            Ok(false) => continue,
            Err(e) => {
                log::warn!("miroir: index {index}: writing the hot record failed: {e}");
                return;
            }
        }
    }
    log::warn!("miroir: index {index}: the hot record stayed contended");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fake_host::{new_envoy, FakeHost, HookAt, HookedHost};
    use crate::core::state::records::{FrozenRecord, Phase};

    fn set_frozen(host: &mut dyn Host, frozen: bool) {
        update_index(host, "m", |rec| {
            let mut next = rec.cloned().unwrap_or_default();
            next.frozen = frozen.then(|| FrozenRecord { reason: "r".into(), ..FrozenRecord::default() });
            next.phase = if frozen { Phase::Frozen } else { Phase::Idle };
            Some(next)
        })
        .unwrap();
    }

    #[test]
    fn a_slow_writer_never_puts_an_older_view_back() {
        let envoy = new_envoy(0);
        store::seed(&mut FakeHost::new(envoy.clone()), keys::TASK_COUNTER_KEY, b"0").unwrap();
        set_frozen(&mut FakeHost::new(envoy.clone()), false);
        // Worker A freezes; right after its record write (before its hot write) worker B lifts
        // the freeze completely. The record ends unfrozen, and so must the hot record.
        let other = envoy.clone();
        let mut a = HookedHost::new(envoy.clone(), HookAt::Set, &keys::index_key("m"), move || {
            set_frozen(&mut FakeHost::new(other), false)
        });
        set_frozen(&mut a, true);
        assert!(a.fired());
        let host = FakeHost::new(envoy);
        let rec = read_index(&host, "m").unwrap().unwrap();
        assert!(rec.frozen.is_none());
        let hot = read_hot(&host, "m");
        assert_eq!(hot, HotRecord::of(&rec));
        assert!(!hot.frozen && !hot.inconsistent, "a stale freeze stuck: {hot:?}");
    }

    #[test]
    fn the_fence_freezes_at_once_and_the_record_keeps_it_so() {
        let envoy = new_envoy(0);
        let mut h = FakeHost::new(envoy);
        store::seed(&mut h, keys::TASK_COUNTER_KEY, b"0").unwrap();
        set_frozen(&mut h, false);
        fence(&mut h, "m");
        assert!(read_hot(&h, "m").frozen);
        set_frozen(&mut h, true);
        assert!(read_hot(&h, "m").frozen);
        set_frozen(&mut h, false);
        assert!(!read_hot(&h, "m").frozen);
    }
}
