//! This VM's copy of the hot records the front door reads on every request under `/indexes/{uid}`
//! (a search's version stamp, a pinned read's check). Reading a record from shared data makes the
//! host call back into the VM to allocate room for the value, which costs more than the rest of a
//! search's work in the filter. The copy holds while the hot generation key's CAS token is the
//! one it was made under: every write of a hot record rewrites that key after it, with an empty
//! value, so checking it copies nothing into the VM. A freeze is seen by every VM as soon as it is
//! written, exactly as without the copy.

use std::cell::RefCell;

use super::index_store;
use super::keys::HOT_GENERATION_KEY;
use super::records::HotRecord;
use crate::core::host::Host;
use crate::core::sorted_map::SortedMap;

/// Index names a copy holds at most: a client can ask for any name (most of them no index at all),
/// and the copy must not grow with them.
const MAX_CACHED: usize = 1024;

#[derive(Default)]
pub struct HotCache {
    cached: RefCell<Cached>,
}

#[derive(Default)]
struct Cached {
    /// The hot generation key's CAS token the records were read under (None: never written).
    generation: Option<u32>,
    records: SortedMap<String, HotRecord>,
}

impl HotCache {
    /// The hot record of `index` as it stands now.
    pub fn read(&self, host: &dyn Host, index: &str) -> HotRecord {
        let Ok((_, generation)) = host.shared_get(HOT_GENERATION_KEY) else {
            return index_store::read_hot(host, index);
        };
        let Ok(mut cached) = self.cached.try_borrow_mut() else {
            return index_store::read_hot(host, index);
        };
        if cached.generation != generation {
            cached.records.clear();
            cached.generation = generation;
        }
        if let Some(hot) = cached.records.get(index) {
            return *hot;
        }
        let hot = index_store::read_hot(host, index);
        if cached.records.len() >= MAX_CACHED {
            cached.records.clear();
        }
        cached.records.insert(index.to_string(), hot);
        hot
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fake_host::{new_envoy, FakeHost};
    use crate::core::state::index_store::{fence, update_index};
    use crate::core::state::keys;

    fn commit_version(host: &mut dyn Host, version: u64) {
        update_index(host, "m", |rec| {
            let mut next = rec.cloned().unwrap_or_default();
            next.version = version;
            Some(next)
        })
        .expect("index written");
    }

    /// Two VMs of one Envoy: one that writes, and one whose front door reads through its copy.
    fn two_vms() -> (FakeHost, FakeHost, HotCache) {
        let envoy = new_envoy(0);
        (FakeHost::new(envoy.clone()), FakeHost::new(envoy), HotCache::default())
    }

    #[test]
    fn a_copy_serves_until_a_hot_record_is_written_and_then_rereads() {
        let (mut writer, reader, cache) = two_vms();
        commit_version(&mut writer, 1);
        assert_eq!(cache.read(&reader, "m").version, 1);
        // A change to the shared value that no hot write announced is not seen: the copy answers.
        writer.shared_set(&keys::hot_key("m"), HotRecord { version: 9, ..HotRecord::default() }.encode().as_bytes(), None).unwrap();
        assert_eq!(cache.read(&reader, "m").version, 1, "answered from the copy");
        // A hot write through the index store announces itself: the next read is fresh.
        commit_version(&mut writer, 2);
        assert_eq!(cache.read(&reader, "m").version, 2);
    }

    #[test]
    fn names_that_are_no_index_do_not_grow_the_copy_without_bound() {
        let (mut writer, reader, cache) = two_vms();
        commit_version(&mut writer, 4);
        for n in 0..3 * MAX_CACHED {
            assert_eq!(cache.read(&reader, &format!("nothing-{n}")).version, 0);
        }
        assert!(cache.cached.borrow().records.len() <= MAX_CACHED);
        assert_eq!(cache.read(&reader, "m").version, 4);
    }

    #[test]
    fn a_freeze_made_by_another_vm_is_seen_by_the_next_read() {
        let (mut other_vm, this_vm, cache) = two_vms();
        commit_version(&mut other_vm, 3);
        assert!(!cache.read(&this_vm, "m").frozen);
        fence(&mut other_vm, "m");
        let hot = cache.read(&this_vm, "m");
        assert!(hot.frozen && hot.inconsistent, "{hot:?}");
        assert_eq!(hot.version, 3);
    }

    #[test]
    fn writes_that_leave_what_searches_read_keep_the_copies_and_any_change_reaches_them() {
        let (mut writer, reader, cache) = two_vms();
        commit_version(&mut writer, 5);
        assert_eq!(cache.read(&reader, "m").version, 5);
        let generation = |host: &FakeHost| host.shared_get(HOT_GENERATION_KEY).unwrap().1;
        let before = generation(&reader);
        // A queue and a lease change, as every mirrored write makes: the record's rev moves,
        // the hot record follows it, and what a search reads stays the same.
        for owner in ["w1", "w2"] {
            update_index(&mut writer, "m", |rec| {
                let mut next = rec.cloned().unwrap_or_default();
                next.queue.push(7);
                next.lease = Some(crate::core::state::records::Lease { owner: owner.into(), expires_ms: 1 });
                Some(next)
            })
            .expect("index written");
        }
        assert_eq!(generation(&reader), before, "the VMs' copies were not invalidated");
        assert!(index_store::read_hot(&reader, "m").rev > cache.read(&reader, "m").rev, "the copy holds an older rev");
        assert_eq!(cache.read(&reader, "m").version, 5);
        // A node out of sync splits reads: seen by the next search.
        update_index(&mut writer, "m", |rec| {
            let mut next = rec.cloned().unwrap_or_default();
            next.out_of_sync.insert("n1".into(), Default::default());
            Some(next)
        })
        .expect("index written");
        assert_ne!(generation(&reader), before);
        assert!(cache.read(&reader, "m").split);
    }
}
