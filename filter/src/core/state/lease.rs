//! The lease rules of an index, in one place: who may run its jobs and write its record as
//! owner (docs/architecture.md §5). A lease outlives a missed renewal or two; a worker whose VM
//! is gone stops renewing and another one takes over after expiry.

use super::records::{DriftSchedule, IndexRecord, Lease};

/// The default TTL (`state.lease_ttl_ms`); the owner renews five times per TTL
/// (`StateConfig::lease_renew_ms`).
pub const LEASE_TTL_MS: u64 = crate::core::config::DEFAULT_LEASE_TTL_MS;
/// The drift check's lease: one worker runs it at a time (docs/architecture.md §3).
pub const DRIFT_LEASE_TTL_MS: u64 = 60_000;
/// A long run renews its lease well before it runs out.
pub const DRIFT_LEASE_RENEW_MS: u64 = 10_000;

/// The lease `owner` holds from `now_ms`.
pub fn fresh(owner: &str, now_ms: u64, ttl_ms: u64) -> Lease {
    Lease { owner: owner.to_string(), expires_ms: now_ms + ttl_ms }
}

/// `owner` holds the lease (whether or not it has run out: only the owner's own CAS moves it).
pub fn held_by(rec: &IndexRecord, owner: &str) -> bool {
    rec.lease.as_ref().is_some_and(|l| l.owner == owner)
}

/// Nobody else holds a live lease.
pub fn free_for(rec: &IndexRecord, owner: &str, now_ms: u64) -> bool {
    rec.lease_free_for(owner, now_ms)
}

/// Another worker holds the lease (live or not): a job end must not touch its queue.
pub fn held_by_other(rec: &IndexRecord, owner: &str) -> bool {
    rec.lease.as_ref().is_some_and(|l| l.owner != owner)
}

/// The record with the lease taken by `owner`, or None when there is nothing to run (no job
/// queued, no mirrored task to follow: `open_tasks`) or another worker holds it.
pub fn claimed(rec: &IndexRecord, owner: &str, now_ms: u64, ttl_ms: u64, open_tasks: bool) -> Option<IndexRecord> {
    if (rec.queue.is_empty() && !open_tasks) || !free_for(rec, owner, now_ms) {
        return None;
    }
    let mut next = rec.clone();
    next.lease = Some(fresh(owner, now_ms, ttl_ms));
    Some(next)
}

/// After a renewal at `now_ms`, `owner` still holds the lease for a full TTL.
pub fn renewed(rec: &IndexRecord, owner: &str, now_ms: u64, ttl_ms: u64) -> bool {
    rec.lease.as_ref().is_some_and(|l| l.owner == owner && l.expires_ms >= now_ms + ttl_ms)
}

/// The schedule with the drift run claimed by `owner`, or None when it is not due or another
/// worker's run is alive.
pub fn drift_claimed(s: &DriftSchedule, owner: &str, now_ms: u64, interval_ms: u64) -> Option<DriftSchedule> {
    let free = s.lease.as_ref().is_none_or(|l| l.expires_ms <= now_ms || l.owner == owner);
    if now_ms < s.next_run_ms || !free {
        return None;
    }
    Some(DriftSchedule {
        lease: Some(Lease { owner: owner.to_string(), expires_ms: now_ms + DRIFT_LEASE_TTL_MS }),
        next_run_ms: now_ms + interval_ms,
    })
}

/// The schedule with `owner`'s drift lease renewed, or None when it is not `owner`'s.
pub fn drift_renewed(s: &DriftSchedule, owner: &str, now_ms: u64) -> Option<DriftSchedule> {
    if s.lease.as_ref().is_none_or(|l| l.owner != owner) {
        return None;
    }
    Some(DriftSchedule { lease: Some(Lease { owner: owner.to_string(), expires_ms: now_ms + DRIFT_LEASE_TTL_MS }), ..s.clone() })
}

/// The schedule with `owner`'s drift lease released, or None when it is not `owner`'s.
pub fn drift_released(s: &DriftSchedule, owner: &str) -> Option<DriftSchedule> {
    if s.lease.as_ref().is_none_or(|l| l.owner != owner) {
        return None;
    }
    Some(DriftSchedule { lease: None, ..s.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expired_lease_is_free_and_a_live_one_only_for_its_owner() {
        const TTL: u64 = 3_000;
        let rec = IndexRecord { queue: vec![1], lease: Some(fresh("a", 0, TTL)), ..IndexRecord::default() };
        assert!(claimed(&rec, "b", TTL - 1, TTL, false).is_none());
        assert!(claimed(&rec, "a", 5, TTL, false).is_some_and(|r| renewed(&r, "a", 5, TTL)));
        assert!(claimed(&rec, "b", TTL, TTL, false).is_some_and(|r| held_by(&r, "b")));
        assert!(claimed(&IndexRecord::default(), "a", 0, TTL, false).is_none(), "nothing queued, nothing to claim");
        assert!(claimed(&IndexRecord::default(), "a", 0, TTL, true).is_some(), "open mirrored tasks are work too");
    }
}
