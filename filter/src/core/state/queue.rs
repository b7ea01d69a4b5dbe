//! Jobs into and out of an index's queue.
//!
//! In: a job gets a task uid and its place in the index's queue together. The uid comes from one
//! counter for the whole Envoy and the queue is a CAS on the index record — two keys, so another
//! worker can take a later uid and queue it first. The queue therefore refuses a uid below the
//! last one it took, and the job simply takes a new uid: queue order is always uid order, as
//! Meilisearch promises for the tasks of one index (a refused uid is never shown to anyone).
//!
//! Out: when a job ends its record (the client's body and `Authorization`) is cleared at once;
//! task records are kept for the last `task_retention` uids, and only finished ones are evicted.

use serde_json::Value;

use crate::core::config::Config;
use crate::core::host::Host;
use super::index_store::update_index;
use super::records::{JobRecord, LogEntry, TaskMiroir, TaskRecord};
use super::keys;
use super::store::{self, StoreError};
use crate::core::tasks;

/// Task uids live in `[task_uid_base, task_uid_base + 2^24)`.
pub const TASK_UID_SPACE: u64 = 1 << 24;
/// A job that keeps losing the race for its index's queue gives up after this many uids.
const MAX_ENQUEUE_ATTEMPTS: usize = 32;

/// Give `job` a task uid, record the job and its task, and queue it on its index.
pub fn enqueue_job(cfg: &Config, host: &mut dyn Host, mut job: JobRecord, details: Value) -> Result<u64, StoreError> {
    let now = host.now_ms();
    for _ in 0..MAX_ENQUEUE_ATTEMPTS {
        let seq = allocate_task_seq(host)?;
        if seq >= cfg.task_retention {
            evict_if_finished(cfg, host, seq - cfg.task_retention)?;
        }
        let task_uid = uid_of(cfg, seq);
        job.task_uid = task_uid;
        // Records first: the job is claimable the moment it is queued.
        store::write(host, &keys::job_key(task_uid), &job)?;
        let task = TaskRecord {
            uid: task_uid,
            index_uid: task_index(&job),
            kind: job.mirror.clone().unwrap_or_else(|| "settingsUpdate".into()),
            status: "enqueued".into(),
            details: details.clone(),
            error: None,
            enqueued_ms: now,
            started_ms: None,
            finished_ms: None,
            propose: None,
            miroir: TaskMiroir { phase: "queued".into(), ..TaskMiroir::default() },
            auth_hash: tasks::auth_hash(job.authorization.as_deref()),
            custom_metadata: crate::core::query_params::decode_query(&job.path)
                .into_iter()
                .find(|(k, _)| k == "customMetadata")
                .map(|(_, v)| v),
            canceled_by: None,
        };
        store::write(host, &keys::task_key(task_uid), &task)?;
        let mut queued = false;
        update_index(host, &job.index, |rec| {
            let mut next = rec.cloned().unwrap_or_default();
            queued = next.queue.contains(&task_uid);
            if queued || seq < next.queued_seq {
                return None;
            }
            queued = true;
            next.queue.push(task_uid);
            next.queued_seq = seq + 1;
            Some(next)
        })?;
        if queued {
            activate(host, &job.index);
            return Ok(task_uid);
        }
        // A later uid got into the queue first: this one is never used.
        store::clear(host, &keys::job_key(task_uid))?;
        store::clear(host, &keys::task_key(task_uid))?;
    }
    Err(StoreError::Contended(keys::index_key(&job.index)))
}

/// The index a task is about, as a node shows it: the queue's, except on the instance queue,
/// whose tasks name no index (dumps, swaps) or, for a rename, the index renamed.
fn task_index(job: &JobRecord) -> String {
    if job.index != crate::core::mirror::INSTANCE_QUEUE {
        return job.index.clone();
    }
    match job.mirror.as_deref() {
        Some("indexUpdate") => job.holds.as_ref().and_then(|h| h.first()).cloned().unwrap_or_default(),
        _ => String::new(),
    }
}

/// The job ended: its record (body, credentials, embedder keys) goes now. Its task stays for
/// clients, unless it already fell out of the retention window while it ran.
pub fn release_job(cfg: &Config, host: &mut dyn Host, task_uid: u64) {
    if let Err(e) = store::clear(host, &keys::job_key(task_uid)) {
        log::warn!("miroir: task {task_uid}: clearing its job record failed: {e}");
    }
    let Ok(Some(next_seq)) = store::read::<u64>(host, keys::TASK_COUNTER_KEY) else { return };
    let behind = next_seq.saturating_sub(1).wrapping_sub(task_uid.wrapping_sub(cfg.task_uid_base)) % TASK_UID_SPACE;
    if behind >= cfg.task_retention {
        let _ = store::clear(host, &keys::task_key(task_uid));
    }
}

pub fn uid_of(cfg: &Config, seq: u64) -> u64 {
    cfg.task_uid_base + (seq % TASK_UID_SPACE)
}

/// Retention: the task `task_retention` uids back is dropped once it has finished; one still
/// queued or running is left to `release_job`.
fn evict_if_finished(cfg: &Config, host: &mut dyn Host, seq: u64) -> Result<(), StoreError> {
    let uid = uid_of(cfg, seq);
    let key = keys::task_key(uid);
    let (finished, index) = match store::read::<TaskRecord>(host, &key) {
        Ok(Some(task)) => (task.finished_ms.is_some() || task.status == "rejected", Some(task.index_uid)),
        Ok(None) | Err(StoreError::Corrupt(_)) => (true, None),
        Err(e) => return Err(e),
    };
    if finished {
        store::clear(host, &key)?;
        // A write a lagging node still has to replay keeps its record (the log lets it go).
        let logged = index.is_some_and(|i| {
            store::read::<Vec<LogEntry>>(host, &keys::log_key(&i)).ok().flatten().unwrap_or_default().iter().any(|e| e.uid == uid)
        });
        if !logged {
            store::clear(host, &keys::job_key(uid))?;
        }
    }
    Ok(())
}

/// Next task sequence number (the counter is seeded at configure time).
fn allocate_task_seq(host: &mut dyn Host) -> Result<u64, StoreError> {
    let mut allocated = 0;
    store::update::<u64, _>(host, keys::TASK_COUNTER_KEY, |n| {
        allocated = n.copied().unwrap_or(0);
        Some(allocated + 1)
    })?;
    Ok(allocated)
}

/// Every task still retained, newest first (`GET /tasks` in mirror mode).
pub fn retained_tasks(cfg: &Config, host: &dyn Host) -> Vec<TaskRecord> {
    let Ok(Some(next_seq)) = store::read::<u64>(host, keys::TASK_COUNTER_KEY) else { return Vec::new() };
    let oldest = next_seq.saturating_sub(cfg.task_retention);
    (oldest..next_seq)
        .rev()
        .filter_map(|seq| store::read::<TaskRecord>(host, &keys::task_key(uid_of(cfg, seq))).ok().flatten())
        .collect()
}

/// Add `index` to the list of indexes with queued work (scanned by every worker's root).
pub fn activate(host: &mut dyn Host, index: &str) {
    let result = store::update::<Vec<String>, _>(host, keys::ACTIVE_KEY, |list| {
        let mut list = list.cloned().unwrap_or_default();
        if list.iter().any(|i| i == index) {
            return None;
        }
        list.push(index.to_string());
        Some(list)
    });
    if let Err(e) = result {
        log::warn!("miroir: index {index}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::core::fake_host::{new_envoy, EnvoyRef, FakeHost, HookAt, HookedHost};
    use crate::core::state::index_store::read_index;

    fn config(retention: u64) -> Config {
        let cfg = json!({"nodes": [{"id": "n0", "cluster": "c0", "authority": "a"}], "task_retention": retention});
        Config::parse(cfg.to_string().as_bytes()).unwrap()
    }

    fn job(index: &str, body: &str) -> JobRecord {
        JobRecord {
            task_uid: 0,
            index: index.into(),
            method: "PATCH".into(),
            path: format!("/indexes/{index}/settings"),
            setting_key: None,
            body: Some(body.into()),
            content_type: None,
            authorization: Some("Bearer client-secret".into()),
            origin_worker: "w".into(),
            enqueued_ms: 0,
            ..JobRecord::default()
        }
    }

    fn envoy() -> EnvoyRef {
        let envoy = new_envoy(0);
        let mut h = FakeHost::new(envoy.clone());
        store::seed(&mut h, keys::CREATE_LOCK_KEY, b"").unwrap();
        store::seed(&mut h, keys::TASK_COUNTER_KEY, b"0").unwrap();
        envoy
    }

    #[test]
    fn queue_order_is_uid_order_when_another_worker_gets_between_uid_and_queue() {
        let envoy = envoy();
        let cfg = config(1000);
        // Worker A takes uid #0; before it queues, worker B takes uid #1 and queues it.
        let (other, other_cfg) = (envoy.clone(), cfg.clone());
        let mut a = HookedHost::new(envoy.clone(), HookAt::Set, keys::TASK_COUNTER_KEY, move || {
            enqueue_job(&other_cfg, &mut FakeHost::new(other), job("m", "{}"), json!({})).unwrap();
        });
        let uid_a = enqueue_job(&cfg, &mut a, job("m", "{}"), json!({})).unwrap();
        assert!(a.fired());
        let base = cfg.task_uid_base;
        let host = FakeHost::new(envoy);
        let rec = read_index(&host, "m").unwrap().unwrap();
        assert_eq!(rec.queue, vec![base + 1, base + 2], "A took a fresh uid behind B's");
        assert_eq!(uid_a, base + 2);
        // The uid A gave up is nobody's task.
        assert!(store::read::<TaskRecord>(&host, &keys::task_key(base)).unwrap().is_none());
        assert!(store::read::<JobRecord>(&host, &keys::job_key(base)).unwrap().is_none());
    }

    fn shared_bytes(envoy: &EnvoyRef) -> usize {
        envoy.borrow().shared.map.iter().map(|(k, (v, _))| k.len() + v.len()).sum()
    }

    #[test]
    fn retention_keeps_memory_bounded_and_never_drops_a_task_still_queued() {
        let envoy = envoy();
        let retention = 10;
        let cfg = config(retention);
        let mut h = FakeHost::new(envoy.clone());
        let body = format!("{{\"stopWords\":[\"{}\"]}}", "x".repeat(20_000));
        // One task that stays queued (its job never ends) ...
        let stuck = enqueue_job(&cfg, &mut h, job("stuck", "{}"), json!({})).unwrap();
        // ... and 2 × retention large ones that run and end.
        for _ in 0..2 * retention {
            let uid = enqueue_job(&cfg, &mut h, job("m", &body), json!({"stopWords": [body.clone()]})).unwrap();
            store::update::<TaskRecord, _>(&mut h, &keys::task_key(uid), |t| {
                let mut t = t.cloned()?;
                t.status = "succeeded".into();
                t.finished_ms = Some(1);
                Some(t)
            })
            .unwrap();
            release_job(&cfg, &mut h, uid);
        }
        let queued: TaskRecord = store::read(&h, &keys::task_key(stuck)).unwrap().expect("a queued task is kept");
        assert_eq!(queued.status, "enqueued");
        // No job record of an ended job is left: no body, no client credentials.
        let envoy_ref = envoy.borrow();
        let jobs: Vec<&String> =
            envoy_ref.shared.map.iter().filter(|(k, (v, _))| k.contains("/job/") && !v.is_empty()).map(|(k, _)| k).collect();
        assert_eq!(jobs, vec![&keys::job_key(stuck)]);
        let secrets = envoy_ref.shared.map.values().filter(|(v, _)| String::from_utf8_lossy(v).contains("client-secret")).count();
        assert_eq!(secrets, 1, "only the job still queued holds the credentials");
        drop(envoy_ref);
        // The documented bound: task_retention finished tasks (each about its details), the
        // jobs still queued, and a few small records.
        let per_task = body.len() + 2_048;
        let bound = retention as usize * per_task + 64 * 1024;
        assert!(shared_bytes(&envoy) <= bound, "{} bytes > {bound}", shared_bytes(&envoy));
        // Once the stuck task ends outside the window, it goes too.
        release_job(&cfg, &mut h, stuck);
        assert!(store::read::<TaskRecord>(&h, &keys::task_key(stuck)).unwrap().is_none());
    }
}
