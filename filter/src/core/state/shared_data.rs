//! The ledger over Envoy shared data, the embedded default: every operation runs at once
//! against `store`, `index_store` and `queue`, and its answer is ready before `submit` returns,
//! so the engine continues from it without waiting (ledger.rs).

use std::collections::VecDeque;

use serde_json::{Map, Value};

use super::index_store::{self, update_index};
use super::keys;
use super::lease;
use super::ledger::{Answer, Commit, Freeze, Head, Ledger, Next, Op, OpId, VerifyView};
use super::queue;
use super::records::{DriftSchedule, IndexRecord, JobRecord, LogEntry, OpenTask, Phase, TaskRecord, VerifyResult};
use super::store::{self, StoreError};
use super::task_change::TaskChange;
use crate::core::config::Config;
use crate::core::host::Host;

pub struct SharedDataLedger {
    cfg: Config,
    answers: VecDeque<(OpId, Answer)>,
}

impl SharedDataLedger {
    pub fn new(cfg: Config) -> SharedDataLedger {
        SharedDataLedger { cfg, answers: VecDeque::new() }
    }

    /// Run `op` now and return its answer.
    pub fn run(&self, host: &mut dyn Host, op: Op) -> Answer {
        match op {
            Op::ReadActive => match store::read::<Vec<String>>(host, keys::ACTIVE_KEY) {
                Ok(list) => Answer::Active(list.unwrap_or_default()),
                Err(e) => Answer::Failed(e),
            },
            Op::ClaimHead { index, owner, now_ms } => {
                let open = !open_uids(host, &index).is_empty();
                match update_index(host, &index, |rec| {
                    let rec = rec?;
                    lease::claimed(rec, &owner, now_ms, self.cfg.state.lease_ttl_ms, open || rec.catching_up())
                }) {
                    Ok(Some(rec)) if lease::held_by(&rec, &owner) => {
                        let uid = rec.queue.first().copied().unwrap_or(0);
                        Answer::Head(Some(Box::new(head(host, &index, rec, uid))))
                    }
                    Ok(_) => Answer::Head(None),
                    Err(e) => Answer::Failed(e),
                }
            }
            Op::RenewLease { index, owner, now_ms } => {
                let renewed = update_as_owner(host, &index, &owner, |next| {
                    next.lease = Some(lease::fresh(&owner, now_ms, self.cfg.state.lease_ttl_ms));
                    true
                });
                Answer::Renewed(matches!(&renewed, Ok(Some(r)) if lease::renewed(r, &owner, now_ms, self.cfg.state.lease_ttl_ms)))
            }
            Op::SetPhase { index, owner, phase } => done(update_as_owner(host, &index, &owner, |next| {
                let changed = next.phase != phase;
                next.phase = phase;
                changed
            })),
            Op::CommitAsOwner(commit) => commit_as_owner(host, &commit),
            Op::Freeze(freeze) => record_freeze(host, &freeze),
            Op::Dequeue { index, owner, task_uid } => done(update_index(host, &index, |rec| {
                let rec = rec?;
                if lease::held_by_other(rec, &owner) {
                    return None;
                }
                let mut next = rec.clone();
                next.queue.retain(|t| *t != task_uid);
                if next.frozen.is_none() {
                    next.phase = Phase::Idle;
                }
                Some(next)
            })),
            Op::EndJob { index, owner, task_uid, now_ms } => {
                // A write in the catch-up log keeps its record until every node has it.
                if !read_log(host, &index).iter().any(|e| e.uid == task_uid) {
                    queue::release_job(&self.cfg, host, task_uid);
                }
                end_lease(host, &index, &owner, now_ms, self.cfg.state.lease_ttl_ms)
            }
            Op::Deactivate { index } => {
                deactivate(host, &index);
                Answer::Done
            }
            Op::UpdateTask { task_uid, change } => update_task(host, task_uid, change),
            Op::MergeDesired { index, proposal } => {
                done(store::update::<Map<String, Value>, _>(host, &keys::desired_key(&index), |d| {
                    let mut next = d.cloned().unwrap_or_default();
                    proposal.merge_into(&mut next);
                    Some(next)
                }))
            }
            Op::ReadTasks { uids } => {
                Answer::Tasks(uids.iter().map(|uid| store::read(host, &keys::task_key(*uid)).ok().flatten()).collect())
            }
            Op::ClaimDriftRun { owner, now_ms, interval_ms } => {
                let claimed = store::update::<DriftSchedule, _>(host, keys::DRIFT_LEASE_KEY, |s| {
                    lease::drift_claimed(&s.cloned().unwrap_or_default(), &owner, now_ms, interval_ms)
                });
                Answer::Claimed(matches!(claimed, Ok(Some(s))
                    if s.lease.as_ref().is_some_and(|l| l.owner == owner) && s.next_run_ms == now_ms + interval_ms))
            }
            Op::RenewDriftRun { owner, now_ms } => {
                done(store::update::<DriftSchedule, _>(host, keys::DRIFT_LEASE_KEY, |s| lease::drift_renewed(s?, &owner, now_ms)))
            }
            Op::EndDriftRun { owner } => {
                done(store::update::<DriftSchedule, _>(host, keys::DRIFT_LEASE_KEY, |s| lease::drift_released(s?, &owner)))
            }
            Op::ClaimNodeKeyWarning => {
                let mut first = false;
                let _ = store::update::<bool, _>(host, keys::WARNED_NODE_KEY, |warned| {
                    first = !warned.copied().unwrap_or(false);
                    first.then_some(true)
                });
                Answer::Claimed(first)
            }
            Op::ReadIndex { index, with_desired } => {
                let rec = index_store::read_index(host, &index).ok().flatten().unwrap_or_default();
                let desired = if with_desired { store::read(host, &keys::desired_key(&index)).ok().flatten() } else { None };
                Answer::IndexState { rec: Box::new(rec), desired, open_tasks: open_uids(host, &index).len() }
            }
            Op::WriteVerifyResult { index, result } => done(store::write(host, &keys::verify_result_key(&index), &result)),
            Op::RecordConverged { index, node_ids, fingerprint, lift_freeze } => {
                match record_converged(host, &index, &node_ids, &fingerprint) {
                    Ok(()) if lift_freeze => done(lift_freeze_record(host, &index)),
                    other => done(other),
                }
            }
            Op::ReadVerify { index } => {
                let result: Option<VerifyResult> = store::read(host, &keys::verify_result_key(&index)).ok().flatten();
                Answer::Verify(result.map(|result| {
                    let rec = index_store::read_index(host, &index).ok().flatten();
                    let repair_task = result.repair_task.and_then(|uid| store::read(host, &keys::task_key(uid)).ok().flatten());
                    Box::new(VerifyView { result, rec, repair_task })
                }))
            }
            Op::ReadOpenTasks { uids } => Answer::Open(read_open_tasks(host, &uids)),
            Op::ForgetEndedTasks { uids } => {
                for uid in uids {
                    let key = keys::task_key(uid);
                    if let Ok(Some(t)) = store::read::<TaskRecord>(host, &key) {
                        if t.finished_ms.is_some() {
                            let _ = store::clear(host, &key);
                        }
                    }
                }
                Answer::Done
            }
            Op::Track { index, open } => {
                if let Err(e) = store::write(host, &keys::open_task_key(open.uid), &open) {
                    return Answer::Failed(e);
                }
                done(store::update::<Vec<u64>, _>(host, &keys::open_key(&index), |list| {
                    let mut list = list.cloned().unwrap_or_default();
                    if list.contains(&open.uid) {
                        return None;
                    }
                    list.push(open.uid);
                    Some(list)
                }))
            }
            Op::Untrack { index, task_uid } => {
                let untracked = store::update::<Vec<u64>, _>(host, &keys::open_key(&index), |list| {
                    let list = list?;
                    list.contains(&task_uid).then(|| list.iter().copied().filter(|u| *u != task_uid).collect())
                });
                let _ = store::clear(host, &keys::open_task_key(task_uid));
                done(untracked)
            }
            Op::MarkOutOfSync { index, nodes } => {
                let marked = update_index(host, &index, |rec| {
                    let mut next = rec.cloned().unwrap_or_default();
                    let before = next.out_of_sync.clone();
                    for (node, lag) in &nodes {
                        let entry = next.out_of_sync.entry(node.clone()).or_insert_with(|| lag.clone());
                        if lag.replay_from.is_none() {
                            *entry = lag.clone();
                        }
                    }
                    (next.out_of_sync != before).then_some(next)
                });
                for (node, _) in &nodes {
                    set_lagging(host, node, &index, true);
                }
                prune_log(host, &index);
                done(marked)
            }
            Op::AppendLog { index, uid, bytes, max_bytes } => append_log(host, &index, LogEntry { uid, bytes }, max_bytes),
            Op::NextReplay { index, node } => {
                let from = index_store::read_index(host, &index)
                    .ok()
                    .flatten()
                    .and_then(|r| r.out_of_sync.get(&node).and_then(|l| l.replay_from));
                let next = from.and_then(|from| read_log(host, &index).into_iter().find(|e| e.uid >= from));
                let job = next.and_then(|e| store::read::<JobRecord>(host, &keys::job_key(e.uid)).ok().flatten().map(Box::new));
                if let (Some(e), None) = (next, &job) {
                    // The write is in the log but its record is gone: it cannot be replayed.
                    let _ = update_index(host, &index, |rec| {
                        let mut rec = rec?.clone();
                        let lag = rec.out_of_sync.get_mut(&node)?;
                        lag.replay_from = None;
                        lag.why = format!("{}; write {} could not be replayed (its record is gone)", lag.why, e.uid);
                        Some(rec)
                    });
                    prune_log(host, &index);
                    return Answer::Replay { from: None, job: None };
                }
                Answer::Replay { from, job }
            }
            Op::Replayed { index, node, uid } => {
                let moved = update_index(host, &index, |rec| {
                    let mut next = rec?.clone();
                    let lag = next.out_of_sync.get_mut(&node)?;
                    if lag.replay_from.is_none_or(|f| f > uid) {
                        return None;
                    }
                    lag.replay_from = Some(uid + 1);
                    Some(next)
                });
                prune_log(host, &index);
                done(moved)
            }
            Op::FenceForSwap { indexes, uid } => {
                let seq = store::read::<u64>(host, keys::TASK_COUNTER_KEY).ok().flatten().unwrap_or(0);
                for index in &indexes {
                    let fenced = update_index(host, index, |rec| {
                        let mut next = rec.cloned().unwrap_or_default();
                        next.swap_fence = Some(uid);
                        next.queued_seq = next.queued_seq.max(seq);
                        Some(next)
                    });
                    if let Err(e) = fenced {
                        return Answer::Failed(e);
                    }
                }
                Answer::Done
            }
            Op::SwapReady { indexes, uid } => Answer::Claimed(indexes.iter().all(|index| {
                index_store::read_index(host, index).ok().flatten().is_none_or(|r| r.queue.iter().all(|t| *t > uid))
            })),
            Op::Unfence { indexes, uid } => {
                for index in &indexes {
                    let _ = update_index(host, index, |rec| {
                        let rec = rec?;
                        (rec.swap_fence == Some(uid)).then(|| IndexRecord { swap_fence: None, ..rec.clone() })
                    });
                    queue::activate(host, index);
                }
                Answer::Done
            }
            Op::Resynced { index, node } => {
                let done_ = done(update_index(host, &index, |rec| {
                    let mut next = rec?.clone();
                    next.out_of_sync.remove(&node);
                    next.node_versions.insert(node.clone(), next.version);
                    let fp = next.fingerprint.clone();
                    next.node_fingerprints.insert(node.clone(), fp);
                    Some(next)
                }));
                set_lagging(host, &node, &index, false);
                prune_log(host, &index);
                done_
            }
            Op::Rejoin { index, node, from } => {
                let newer = read_log(host, &index).iter().any(|e| e.uid >= from);
                let mut rejoined = false;
                let result = update_index(host, &index, |rec| {
                    let mut next = rec?.clone();
                    if newer || next.out_of_sync.get(&node).and_then(|l| l.replay_from) != Some(from) {
                        return None;
                    }
                    next.out_of_sync.remove(&node);
                    next.node_versions.insert(node.clone(), next.version);
                    rejoined = true;
                    Some(next)
                });
                if rejoined {
                    set_lagging(host, &node, &index, false);
                }
                prune_log(host, &index);
                match result {
                    Ok(_) => Answer::Claimed(rejoined),
                    Err(e) => Answer::Failed(e),
                }
            }
            Op::ForgetSettings { index } => {
                let _ = store::clear(host, &keys::desired_key(&index));
                done(update_index(host, &index, |rec| {
                    let rec = rec?;
                    let mut next = rec.clone();
                    next.fingerprint = None;
                    next.node_fingerprints.clear();
                    (next != *rec).then_some(next)
                }))
            }
            Op::ReleaseIfIdle { index, owner, now_ms } => end_lease(host, &index, &owner, now_ms, self.cfg.state.lease_ttl_ms),
            Op::LiftFreeze { index } => done(lift_freeze_record(host, &index)),
            Op::Enqueue { job, details } => {
                let index = job.index.clone();
                match queue::enqueue_job(&self.cfg, host, *job, details) {
                    Ok(uid) => {
                        queue::activate(host, &index);
                        Answer::Enqueued(uid)
                    }
                    Err(e) => Answer::Failed(e),
                }
            }
        }
    }
}

impl Ledger for SharedDataLedger {
    fn submit(&mut self, host: &mut dyn Host, id: OpId, op: Op) {
        let answer = self.run(host, op);
        self.answers.push_back((id, answer));
    }

    fn take(&mut self, id: OpId) -> Option<Answer> {
        let at = self.answers.iter().position(|(i, _)| *i == id)?;
        self.answers.remove(at).map(|(_, a)| a)
    }

    fn next_answer(&mut self) -> Option<(OpId, Answer)> {
        self.answers.pop_front()
    }
}

fn done<T>(result: Result<T, StoreError>) -> Answer {
    match result {
        Ok(_) => Answer::Done,
        Err(e) => Answer::Failed(e),
    }
}

/// The head job of a claimed index, with its records.
fn head(host: &dyn Host, index: &str, rec: IndexRecord, task_uid: u64) -> Head {
    let (job, task) = if rec.queue.is_empty() {
        (None, None)
    } else {
        (store::read(host, &keys::job_key(task_uid)).ok().flatten(), store::read(host, &keys::task_key(task_uid)).ok().flatten())
    };
    let open = open_uids(host, index);
    Head { rec, task_uid, job, task, open }
}

/// Read-modify-write the index record only while `owner` holds the index's lease: `change`
/// edits a copy and says whether to write it. Returns the record as it stands after.
fn update_as_owner(
    host: &mut dyn Host,
    index: &str,
    owner: &str,
    mut change: impl FnMut(&mut IndexRecord) -> bool,
) -> Result<Option<IndexRecord>, StoreError> {
    update_index(host, index, |rec| {
        let rec = rec?;
        if !lease::held_by(rec, owner) {
            return None;
        }
        let mut next = rec.clone();
        change(&mut next).then_some(next)
    })
}

fn commit_as_owner(host: &mut dyn Host, c: &Commit) -> Answer {
    let committed = update_as_owner(host, &c.index, &c.owner, |next| {
        if next.queue.first() != Some(&c.task_uid) {
            return false; // lost the lease meanwhile: whoever holds it re-runs the job
        }
        next.version += c.bump;
        for (id, fp) in &c.fingerprints {
            next.node_versions.insert(id.clone(), next.version);
            next.node_fingerprints.insert(id.clone(), fp.clone());
        }
        next.fingerprint = Some(c.fingerprint.clone());
        next.phase = Phase::Idle;
        next.frozen = None;
        next.queue.retain(|t| *t != c.task_uid);
        true
    });
    match committed {
        Ok(Some(rec)) if !rec.queue.contains(&c.task_uid) && rec.fingerprint.as_deref() == Some(c.fingerprint.as_str()) => {
            Answer::Committed(Some(rec.version))
        }
        Ok(_) => Answer::Committed(None),
        Err(e) => Answer::Failed(e),
    }
}

/// Fence first (hot key), then the record: a write never slips through between the two.
fn record_freeze(host: &mut dyn Host, f: &Freeze) -> Answer {
    index_store::fence(host, &f.index);
    let result = match &f.job {
        Some((owner, task_uid)) => update_as_owner(host, &f.index, owner, |next| {
            next.frozen = Some(f.record.clone());
            next.phase = Phase::Frozen;
            next.queue.retain(|t| t != task_uid);
            true
        }),
        None => update_index(host, &f.index, |rec| {
            let mut next = rec.cloned().unwrap_or_default();
            next.frozen = Some(f.record.clone());
            next.phase = Phase::Frozen;
            Some(next)
        }),
    };
    done(result)
}

/// Release the lease if nothing is queued, and say what comes next.
fn end_lease(host: &mut dyn Host, index: &str, owner: &str, now_ms: u64, ttl_ms: u64) -> Answer {
    // Open mirrored tasks keep the lease: its holder follows them (engine/mirror_tasks.rs).
    let open = !open_uids(host, index).is_empty();
    let rec = update_as_owner(host, index, owner, |next| {
        if !next.queue.is_empty() || open || next.catching_up() {
            // Going on with the next job renews the lease: a run of jobs each shorter than the
            // renewal period would otherwise never renew it, and lose it to another worker
            // mid-run.
            next.lease = Some(lease::fresh(owner, now_ms, ttl_ms));
            return true;
        }
        next.lease = None;
        true
    });
    match rec {
        Ok(Some(rec)) if !rec.queue.is_empty() => match rec.queue.first().copied() {
            Some(uid) if lease::free_for(&rec, owner, now_ms) => Answer::Next(Next::Start(Box::new(head(host, index, rec.clone(), uid)))),
            _ => Answer::Next(Next::Elsewhere),
        },
        Ok(_) => {
            let phase = index_store::read_index(host, index).ok().flatten().map(|r| r.phase).unwrap_or_default();
            Answer::Next(Next::Idle(phase))
        }
        Err(e) => Answer::Failed(e),
    }
}

/// Drop `index` from the active list, then look again: a write queued in between re-adds it.
fn deactivate(host: &mut dyn Host, index: &str) {
    let _ = store::update::<Vec<String>, _>(host, keys::ACTIVE_KEY, |list| {
        let list = list?;
        if !list.iter().any(|i| i == index) {
            return None;
        }
        Some(list.iter().filter(|i| *i != index).cloned().collect())
    });
    if let Ok(Some(rec)) = index_store::read_index(host, index) {
        if !rec.queue.is_empty() || rec.catching_up() || !open_uids(host, index).is_empty() {
            queue::activate(host, index);
        }
    }
}

/// Compare-and-swap: a client's worker may record on a task (`Propose`) while the job's worker
/// closes it.
fn update_task(host: &mut dyn Host, task_uid: u64, change: TaskChange) -> Answer {
    let key = keys::task_key(task_uid);
    let updated = store::update::<TaskRecord, _>(host, &key, |task| {
        let mut task = task?.clone();
        change.clone().apply(&mut task);
        Some(task)
    });
    match updated {
        Ok(_) => Answer::Done,
        Err(e) => Answer::Failed(e),
    }
}

/// Every node at the current version with fingerprint `fp`, unless work is queued (its job's own
/// verify decides) or nothing changes.
fn record_converged(host: &mut dyn Host, index: &str, node_ids: &[String], fp: &str) -> Result<(), StoreError> {
    update_index(host, index, |rec| {
        let mut next = rec.cloned().unwrap_or_default();
        if !next.queue.is_empty() {
            return None;
        }
        let versions: crate::core::sorted_map::SortedMap<String, u64> = node_ids.iter().map(|id| (id.clone(), next.version)).collect();
        if next.node_versions == versions && next.fingerprint.as_deref() == Some(fp) {
            return None;
        }
        next.node_versions = versions;
        next.node_fingerprints = node_ids.iter().map(|id| (id.clone(), Some(fp.to_string()))).collect();
        next.fingerprint = Some(fp.to_string());
        Some(next)
    })
    .map(|_| ())
}

/// Lift a freeze in the record (whose hot projection follows): the reverse of freezing. Used by
/// a verify that finds the fleet converged and by an operator's forced unfreeze (`admin.rs`).
pub fn lift_freeze_record(host: &mut dyn Host, index: &str) -> Result<(), StoreError> {
    update_index(host, index, |rec| {
        let rec = rec?;
        if rec.frozen.is_none() && rec.phase != Phase::Frozen {
            return None;
        }
        let mut next = rec.clone();
        next.frozen = None;
        next.phase = Phase::Idle;
        Some(next)
    })
    .map(|_| ())
}

/// The uids of an index's open mirrored tasks.
fn open_uids(host: &dyn Host, index: &str) -> Vec<u64> {
    store::read(host, &keys::open_key(index)).ok().flatten().unwrap_or_default()
}

/// Open mirrored tasks, to follow (unreadable ones are picked up at the next claim).
fn read_open_tasks(host: &dyn Host, uids: &[u64]) -> Vec<OpenTask> {
    uids.iter().filter_map(|uid| store::read::<OpenTask>(host, &keys::open_task_key(*uid)).ok().flatten()).collect()
}

fn read_log(host: &dyn Host, index: &str) -> Vec<LogEntry> {
    store::read(host, &keys::log_key(index)).ok().flatten().unwrap_or_default()
}

/// Keep `entry` in the log, then drop the oldest entries beyond `max_bytes`: nodes that still
/// needed one of them need a resync.
fn append_log(host: &mut dyn Host, index: &str, entry: LogEntry, max_bytes: u64) -> Answer {
    let mut dropped: Vec<u64> = Vec::new();
    let written = store::update::<Vec<LogEntry>, _>(host, &keys::log_key(index), |log| {
        let mut log = log.cloned().unwrap_or_default();
        dropped.clear();
        if !log.iter().any(|e| e.uid == entry.uid) {
            log.push(entry);
        }
        let mut total: u64 = log.iter().map(|e| e.bytes).sum();
        while total > max_bytes && !log.is_empty() {
            let first = log.remove(0);
            total = total.saturating_sub(first.bytes);
            dropped.push(first.uid);
        }
        Some(log)
    });
    if let Err(e) = written {
        return Answer::Failed(e);
    }
    if let Some(&last_dropped) = dropped.iter().max() {
        for uid in &dropped {
            let _ = store::clear(host, &keys::job_key(*uid));
        }
        let _ = update_index(host, index, |rec| {
            let mut next = rec?.clone();
            let mut changed = false;
            for (node, lag) in next.out_of_sync.iter_mut() {
                if lag.replay_from.is_some_and(|f| f <= last_dropped) {
                    log::error!("miroir: index {index}: node {node} missed more than the catch-up log holds; it needs a resync");
                    lag.replay_from = None;
                    lag.why = format!("{}; past the catch-up log (mirror.log_max_bytes)", lag.why);
                    changed = true;
                }
            }
            changed.then_some(next)
        });
    }
    Answer::Done
}

/// Drop the log entries no node out of sync still needs, with their job records.
fn prune_log(host: &mut dyn Host, index: &str) {
    let Ok(Some(rec)) = index_store::read_index(host, index) else { return };
    let needed_from = rec.out_of_sync.values().filter_map(|l| l.replay_from).min();
    let mut released: Vec<u64> = Vec::new();
    let _ = store::update::<Vec<LogEntry>, _>(host, &keys::log_key(index), |log| {
        let log = log?;
        released = log.iter().filter(|e| needed_from.is_none_or(|f| e.uid < f)).map(|e| e.uid).collect();
        (!released.is_empty()).then(|| log.iter().filter(|e| !released.contains(&e.uid)).copied().collect())
    });
    for uid in released {
        let _ = store::clear(host, &keys::job_key(uid));
    }
}

/// Keep the fleet-wide map of which node lags on which index (index-less reads avoid them).
fn set_lagging(host: &mut dyn Host, node: &str, index: &str, lagging: bool) {
    let result = store::update::<crate::core::sorted_map::SortedMap<String, Vec<String>>, _>(host, keys::LAGGING_KEY, |map| {
        let mut map = map.cloned().unwrap_or_default();
        let indexes = map.entry(node.to_string()).or_default();
        let present = indexes.iter().any(|i| i == index);
        match (lagging, present) {
            (true, false) => indexes.push(index.to_string()),
            (false, true) => indexes.retain(|i| i != index),
            _ => return None,
        }
        map.retain(|_, v| !v.is_empty());
        Some(map)
    });
    if let Err(e) = result {
        log::warn!("miroir: recording that node {node} lags on {index} failed: {e}");
    }
}

/// The nodes out of sync for some index (mirror mode), for reads about no one index.
pub fn lagging_nodes(host: &dyn Host) -> Vec<String> {
    store::read::<crate::core::sorted_map::SortedMap<String, Vec<String>>>(host, keys::LAGGING_KEY)
        .ok()
        .flatten()
        .map(|m| m.into_keys().collect())
        .unwrap_or_default()
}
