//! Every shared-data key the filter uses, in one place, under one versioned prefix
//! (docs/architecture.md §5 lists what each one holds and who writes it).

pub const PREFIX: &str = "miroir/v1/";

pub const TASK_COUNTER_KEY: &str = "miroir/v1/task_counter";
pub const ACTIVE_KEY: &str = "miroir/v1/active_indexes";
pub const DRIFT_LEASE_KEY: &str = "miroir/v1/drift_lease";
/// Held (for the few microseconds of one create) by the worker creating a key; see `store.rs`.
pub const CREATE_LOCK_KEY: &str = "miroir/v1/create_lock";
/// Mirror mode: node id → the indexes it is out of sync for (read by index-less reads).
pub const LAGGING_KEY: &str = "miroir/v1/lagging";
/// etcd backend: bumped by every transaction that writes, so a gateway polls one key to learn
/// whether anything changed (`etcd.rs`).
pub const GENERATION_KEY: &str = "miroir/v1/generation";
/// etcd backend, this gateway's shared data only: set once its view has been read from etcd.
pub const VIEW_LOADED_KEY: &str = "miroir/v1/view_loaded";
pub const INDEX_PREFIX: &str = "miroir/v1/index/";
pub const HOT_PREFIX: &str = "miroir/v1/hot/";
/// Rewritten (empty) after every write of a hot record: its CAS token tells a VM whether its copy
/// of the hot records still holds (`hot_cache.rs`).
pub const HOT_GENERATION_KEY: &str = "miroir/v1/hot_generation";
pub const JOB_PREFIX: &str = "miroir/v1/job/";
/// etcd backend: one key per filter VM, the number of its last commit (`etcd.rs`, in doubt).
pub const COMMIT_MARKER_PREFIX: &str = "miroir/v1/gateway/";
/// Set once by the first worker that warned about a missing node key (`engine/drift.rs`).
pub const WARNED_NODE_KEY: &str = "miroir/v1/warned_node_key";

pub fn index_key(uid: &str) -> String {
    format!("{INDEX_PREFIX}{uid}")
}
/// A few bytes read on the hot path: "<version> <inconsistent 0|1> <frozen 0|1> <rev>".
pub fn hot_key(uid: &str) -> String {
    format!("{HOT_PREFIX}{uid}")
}
pub fn job_key(task_uid: u64) -> String {
    format!("{JOB_PREFIX}{task_uid}")
}
pub fn commit_marker_key(worker: &str) -> String {
    format!("{COMMIT_MARKER_PREFIX}{worker}")
}
pub fn task_key(task_uid: u64) -> String {
    format!("{PREFIX}task/{task_uid}")
}
pub fn desired_key(uid: &str) -> String {
    format!("{PREFIX}desired/{uid}")
}
/// Mirror mode: the uids of the index's accepted writes whose node tasks are still running (a
/// short list of numbers, rewritten per write); each one's `OpenTask` is under `open_task_key`.
pub fn open_key(uid: &str) -> String {
    format!("{PREFIX}open/{uid}")
}
pub fn open_task_key(task_uid: u64) -> String {
    format!("{PREFIX}open_task/{task_uid}")
}
/// Mirror mode: the index's catch-up log (`LogEntry`s), writes a node out of sync still needs.
pub fn log_key(uid: &str) -> String {
    format!("{PREFIX}log/{uid}")
}
/// Outcome of the last check of one index, read by the admin API.
pub fn verify_result_key(index: &str) -> String {
    format!("{PREFIX}verified/{index}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_under_the_prefix() {
        let keys = [GENERATION_KEY, INDEX_PREFIX, HOT_PREFIX, HOT_GENERATION_KEY, JOB_PREFIX, COMMIT_MARKER_PREFIX, TASK_COUNTER_KEY, ACTIVE_KEY, DRIFT_LEASE_KEY, CREATE_LOCK_KEY, WARNED_NODE_KEY, LAGGING_KEY];
        let made = [index_key("m"), hot_key("m"), job_key(1), task_key(1), desired_key("m"), verify_result_key("m"), open_key("m"), open_task_key(1), log_key("m")];
        assert!(keys.iter().copied().chain(made.iter().map(String::as_str)).all(|k| k.starts_with(PREFIX)));
    }
}
