//! A ledger operation run as one etcd transaction. The shared-data ledger's operations are
//! written against Envoy shared data (read, compare-and-swap, write); run against this host
//! instead, they read a snapshot of etcd keys (each with the revision it was read at) and
//! buffer their writes. The etcd ledger then commits the writes only if no key read has changed
//! since (`mod_revision` compares): the same operation, the same rules, atomic across gateways.
//! A key the snapshot does not hold is a miss: the run is thrown away, the key fetched, and the
//! operation run again.

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::keys::CREATE_LOCK_KEY;
use crate::core::sorted_map::SortedMap;
use crate::core::sorted_set::SortedSet;
use crate::core::host::{Callout, Host, LocalReply, SharedError, Wake};

/// One key as last seen in etcd: its value (None: no such key) and the revision it was written at
/// (0 for a missing key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub value: Option<Vec<u8>>,
    pub mod_revision: i64,
}

pub struct TxnHost<'a> {
    outer: &'a mut dyn Host,
    snapshot: &'a BTreeMap<String, Seen>,
    /// Keys read from the snapshot, with the revision seen: the transaction's compares.
    reads: RefCell<SortedMap<String, i64>>,
    /// Keys the snapshot lacks.
    misses: RefCell<SortedSet<String>>,
    writes: SortedMap<String, Vec<u8>>,
    /// The creation lock only orders creators inside one Envoy: here the transaction does.
    create_lock: Vec<u8>,
}

/// What one run of an operation did.
pub struct Run {
    pub reads: SortedMap<String, i64>,
    pub misses: SortedSet<String>,
    pub writes: SortedMap<String, Vec<u8>>,
}

impl<'a> TxnHost<'a> {
    pub fn new(outer: &'a mut dyn Host, snapshot: &'a BTreeMap<String, Seen>) -> TxnHost<'a> {
        TxnHost {
            outer,
            snapshot,
            reads: RefCell::new(SortedMap::new()),
            misses: RefCell::new(SortedSet::new()),
            writes: SortedMap::new(),
            create_lock: Vec::new(),
        }
    }

    pub fn finish(self) -> Run {
        Run { reads: self.reads.into_inner(), misses: self.misses.into_inner(), writes: self.writes }
    }
}

impl Host for TxnHost<'_> {
    fn now_ms(&self) -> u64 {
        self.outer.now_ms()
    }

    fn shared_get(&self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), SharedError> {
        if key == CREATE_LOCK_KEY {
            return Ok((Some(self.create_lock.clone()), Some(1)));
        }
        if let Some(v) = self.writes.get(key) {
            return Ok((Some(v.clone()), Some(1)));
        }
        match self.snapshot.get(key) {
            Some(seen) => {
                self.reads.borrow_mut().entry(key.to_string()).or_insert(seen.mod_revision);
                Ok(match &seen.value {
                    Some(v) => (Some(v.clone()), Some(1)),
                    None => (None, None),
                })
            }
            None => {
                // Answer "missing" so the run goes on to find every other key it lacks; its
                // outcome is discarded.
                self.misses.borrow_mut().insert(key.to_string());
                Ok((None, None))
            }
        }
    }

    fn shared_set(&mut self, key: &str, value: &[u8], _cas: Option<u32>) -> Result<(), SharedError> {
        // Nobody else writes the snapshot during the run: every CAS holds here, and the
        // transaction's compares stand for them against etcd.
        if key == CREATE_LOCK_KEY {
            self.create_lock = value.to_vec();
        } else {
            self.writes.insert(key.to_string(), value.to_vec());
        }
        Ok(())
    }

    fn dispatch(&mut self, _call: &Callout) -> Result<u32, String> {
        Err("no calls from inside a ledger operation".into())
    }

    fn reply(&mut self, _http_context_id: u32, _reply: &LocalReply) -> Result<(), String> {
        Err("no replies from inside a ledger operation".into())
    }

    fn wake(&mut self, _worker_id: &str, _why: Wake) {}

    fn counter_add(&mut self, name: &str, delta: u64) {
        self.outer.counter_add(name, delta);
    }

    fn gauge_set(&mut self, name: &str, value: u64) {
        self.outer.gauge_set(name, value);
    }

    fn histogram_record(&mut self, name: &str, value: u64) {
        self.outer.histogram_record(name, value);
    }

    fn env(&self, name: &str) -> Option<String> {
        self.outer.env(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::fake_host::{new_envoy, FakeHost};
    use crate::core::state::store;

    fn seen(value: &str, rev: i64) -> Seen {
        Seen { value: Some(value.as_bytes().to_vec()), mod_revision: rev }
    }

    #[test]
    fn an_update_reads_at_a_revision_and_buffers_its_write() {
        let snapshot = BTreeMap::from([("a".to_string(), seen("1", 7)), ("gone".to_string(), Seen { value: None, mod_revision: 0 })]);
        let mut outer = FakeHost::new(new_envoy(0));
        let mut tx = TxnHost::new(&mut outer, &snapshot);
        store::update::<u64, _>(&mut tx, "a", |n| Some(n.copied().unwrap_or(0) + 1)).unwrap();
        store::update::<u64, _>(&mut tx, "gone", |_| Some(5)).unwrap();
        assert_eq!(store::read::<u64>(&tx, "a").unwrap(), Some(2), "a run reads its own writes");
        assert_eq!(store::read::<u64>(&tx, "unknown").unwrap(), None);
        let run = tx.finish();
        assert_eq!(run.reads, SortedMap::from([("a".to_string(), 7), ("gone".to_string(), 0)]));
        assert_eq!(run.writes.get("a").map(Vec::as_slice), Some(&b"2"[..]));
        assert_eq!(run.writes.get("gone").map(Vec::as_slice), Some(&b"5"[..]));
        assert!(run.misses.contains("unknown"));
        assert!(!run.writes.contains_key(CREATE_LOCK_KEY), "the creation lock stays out of etcd");
        assert_eq!(outer.shared_get("a").unwrap().0, None, "nothing reached the real shared data");
    }
}
