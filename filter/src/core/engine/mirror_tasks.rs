//! Following the node tasks of mirrored writes (mirror mode): the filter task of a write is
//! enqueued until a node starts it, processing while any node works on it, and ends when every
//! node's task has ended (`mirror::task_end`). The worker holding the index's lease follows its
//! open tasks — one `GET /tasks?uids=…` per node and poll, however many writes are open — and
//! keeps the lease while any is open, so that another worker takes them over if this VM dies.

use super::*;
use crate::core::mirror::{self, NodeTaskState};
use crate::core::state::records::{NodeLag, OpenTask};

/// Node task uids asked for in one poll (the oldest open ones: a node runs them in order).
const UIDS_PER_POLL: usize = 100;
/// Poll again this soon after a poll that saw progress; back off to `MAX_QUIET_POLL_MS`.
const BUSY_POLL_MS: u64 = 10;
const MAX_QUIET_POLL_MS: u64 = 250;

pub(super) struct Followed {
    open: OpenTask,
    /// Node position → its task's last known state.
    states: SortedMap<usize, NodeTaskState>,
    started: bool,
    /// When a node was first seen working on it, while its start is not recorded yet.
    start_seen_ms: Option<u64>,
    since_ms: u64,
}

/// What the lease holder of an index does between and beside its jobs (mirror mode): follow the
/// open tasks, and catch lagging nodes up (`catch_up.rs`). The lease is kept while any is left.
#[derive(Default)]
pub(super) struct Following {
    tasks: Vec<Followed>,
    pub(super) catch_up: SortedMap<usize, super::catch_up::CatchUp>,
    next_poll_ms: u64,
    quiet_polls: u32,
    /// Node position → the node task uids its poll in flight asks for.
    in_flight: SortedMap<usize, Vec<u64>>,
    renew_at_ms: u64,
    renewing: bool,
}

impl Engine {
    /// The chores of `index`, created when it has none.
    pub(super) fn chores_of(&mut self, index: &str, now: u64) -> &mut Following {
        self.following.entry(index.to_string()).or_insert_with(|| Following {
            renew_at_ms: now + self.cfg.state.lease_renew_ms(),
            ..Following::default()
        })
    }

    /// No open task and no node to catch up left: drop the chores and, unless a job runs, let
    /// the ledger release the lease or start what was queued meanwhile.
    pub(super) fn chores_maybe_done(&mut self, host: &mut dyn Host, index: &str, now: u64) {
        if self.following.get(index).is_some_and(|f| !f.tasks.is_empty() || !f.catch_up.is_empty()) {
            return;
        }
        self.following.remove(index);
        if !self.jobs.contains_key(index) && self.claiming.insert(index.to_string()) {
            let op = Op::ReleaseIfIdle { index: index.to_string(), owner: self.worker.clone(), now_ms: now };
            self.submit(host, op, Awaiting::Next { index: index.to_string() });
        }
    }

    /// One call to node `pos` on behalf of `index`'s chores.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn dispatch_to(
        &mut self,
        host: &mut dyn Host,
        index: &str,
        pos: usize,
        purpose: Purpose,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        headers: Vec<(String, String)>,
        timeout_ms: u64,
    ) -> bool {
        let Some(node) = self.cfg.nodes.get(pos) else { return false };
        let call = Callout {
            cluster: node.cluster.clone(),
            method: method.to_string(),
            path: path.to_string(),
            authority: node.authority.clone(),
            headers,
            body,
            timeout_ms,
        };
        match host.dispatch(&call) {
            Ok(token) => {
                self.callouts.insert(token, Tag { index: index.to_string(), epoch: 0, node: pos, purpose });
                true
            }
            Err(e) => {
                log::warn!("miroir: call to {} refused: {e}", node.id);
                host.counter_add(&metrics::for_node(metrics::CALLOUT_ERRORS_TOTAL, &node.id), 1);
                false
            }
        }
    }

    /// Follow `open` (a write the nodes accepted) until its node tasks end.
    pub(super) fn follow(&mut self, host: &mut dyn Host, index: &str, open: OpenTask) {
        let now = host.now_ms();
        let following = self.chores_of(index, now);
        if following.tasks.iter().any(|t| t.open.uid == open.uid) {
            return;
        }
        following.tasks.push(Followed { open, states: SortedMap::new(), started: false, start_seen_ms: None, since_ms: now });
        following.next_poll_ms = following.next_poll_ms.min(now + BUSY_POLL_MS).max(now);
        following.quiet_polls = 0;
    }

    /// Whether this worker follows open write `uid` of `index`.
    pub(super) fn follows(&self, index: &str, uid: u64) -> bool {
        self.following.get(index).is_some_and(|f| f.tasks.iter().any(|t| t.open.uid == uid))
    }

    pub(super) fn is_following(&self) -> bool {
        !self.following.is_empty()
    }

    /// Renew the leases of indexes followed without a running job, and send the polls due.
    pub(super) fn drive_following(&mut self, host: &mut dyn Host) {
        let now = host.now_ms();
        let indexes: Vec<String> = self.following.keys().cloned().collect();
        for index in indexes {
            let job_runs = self.jobs.contains_key(&index);
            let Some(f) = self.following.get_mut(&index) else { continue };
            if !job_runs && !f.renewing && now >= f.renew_at_ms {
                f.renewing = true;
                f.renew_at_ms = now + self.cfg.state.lease_renew_ms();
                let op = Op::RenewLease { index: index.clone(), owner: self.worker.clone(), now_ms: now };
                self.submit(host, op, Awaiting::FollowRenew { index: index.clone() });
            }
            let Some(f) = self.following.get(&index) else { continue };
            if now >= f.next_poll_ms && !f.tasks.is_empty() {
                self.poll_nodes(host, &index, now);
            }
            self.drive_catch_up(host, &index, now);
        }
    }

    /// The ledger answered a renewal of a followed index's lease.
    pub(super) fn on_follow_renewed(&mut self, index: &str, still_mine: bool) {
        let Some(f) = self.following.get_mut(index) else { return };
        f.renewing = false;
        if !still_mine && !self.jobs.contains_key(index) {
            log::warn!("miroir: index {index}: lease lost; another worker follows its open tasks");
            self.following.remove(index);
        }
    }

    fn poll_nodes(&mut self, host: &mut dyn Host, index: &str, now: u64) {
        let Some(f) = self.following.get_mut(index) else { return };
        f.next_poll_ms = now + (BUSY_POLL_MS << f.quiet_polls.min(5)).min(MAX_QUIET_POLL_MS);
        // Per node: its unfinished task uids, oldest first, and whose credentials read them.
        let mut wanted: SortedMap<usize, (Vec<u64>, Option<String>)> = SortedMap::new();
        for t in &f.tasks {
            for (id, uid) in &t.open.nodes {
                let Some(pos) = self.cfg.nodes.iter().position(|n| &n.id == id) else { continue };
                if t.states.get(&pos).is_some_and(NodeTaskState::is_final) || f.in_flight.contains_key(&pos) {
                    continue;
                }
                let entry = wanted.entry(pos).or_insert_with(|| (Vec::new(), t.open.authorization.clone()));
                if entry.0.len() < UIDS_PER_POLL {
                    entry.0.push(*uid);
                }
            }
        }
        let node_key = self.node_key_header(host);
        for (pos, (uids, client_auth)) in wanted {
            let list: Vec<String> = uids.iter().map(u64::to_string).collect();
            let path = format!("/tasks?uids={}&limit={}", list.join(","), uids.len());
            let headers = match (node_key.is_empty(), client_auth) {
                (true, Some(auth)) => vec![("authorization".to_string(), auth)],
                _ => node_key.clone(),
            };
            let timeout = self.cfg.settings_broadcast.propose_timeout_ms;
            if self.dispatch_to(host, index, pos, Purpose::Follow, "GET", &path, None, headers, timeout) {
                if let Some(f) = self.following.get_mut(index) {
                    f.in_flight.insert(pos, uids);
                }
            }
        }
    }

    pub(super) fn on_follow_poll(&mut self, host: &mut dyn Host, tag: &Tag, resp: &CalloutResponse) {
        let now = host.now_ms();
        let Some(node_id) = self.cfg.nodes.get(tag.node).map(|n| n.id.clone()) else { return };
        let Some(f) = self.following.get_mut(&tag.index) else { return };
        let asked = f.in_flight.remove(&tag.node).unwrap_or_default();
        let page = if resp.status == Some(200) { mirror::parse_task_page(&resp.body) } else { None };
        let Some(page) = page else {
            f.quiet_polls += 1;
            // Nothing was learned, but time went on: a task whose nodes stay silent past
            // `task_timeout_s` ends (failed) like one they never finish.
            self.settle_followed(host, &tag.index, now);
            return;
        };
        let mut progressed = false;
        for t in f.tasks.iter_mut() {
            let Some(node_uid) = t.open.nodes.get(&node_id).copied() else { continue };
            if !asked.contains(&node_uid) {
                continue;
            }
            let state = match page.iter().find(|(uid, _)| *uid == node_uid) {
                Some((_, state)) => state.clone(),
                // Asked for and not listed: the node no longer has it.
                None => NodeTaskState::lost(),
            };
            if t.states.get(&tag.node) != Some(&state) {
                progressed = true;
                t.states.insert(tag.node, state);
            }
        }
        f.quiet_polls = if progressed { 0 } else { f.quiet_polls + 1 };
        if progressed {
            f.next_poll_ms = f.next_poll_ms.min(now + BUSY_POLL_MS);
        }
        self.settle_followed(host, &tag.index, now);
    }

    /// Record what changed: tasks that started, and tasks whose every node task has ended.
    fn settle_followed(&mut self, host: &mut dyn Host, index: &str, now: u64) {
        let timeout_ms = self.cfg.settings_broadcast.task_timeout_s * 1000;
        let Some(f) = self.following.get_mut(index) else { return };
        // A start is recorded once the poll round is in (or a poll period after it was seen):
        // each node's answer settles on its own, and a task the round finds both started and
        // ended — most of them under load — is then closed in one update of its record.
        let round_in = f.in_flight.is_empty();
        let mut started = Vec::new();
        let mut ended = Vec::new();
        let mut kept = Vec::new();
        for mut t in std::mem::take(&mut f.tasks) {
            if !t.started && t.states.values().any(|s| s.status != "enqueued") {
                let seen = *t.start_seen_ms.get_or_insert(now);
                if round_in || now >= seen + BUSY_POLL_MS {
                    t.started = true;
                    started.push(t.open.uid);
                }
            }
            let node_positions: Vec<usize> =
                t.open.nodes.keys().filter_map(|id| self.cfg.nodes.iter().position(|n| &n.id == id)).collect();
            let timed_out = now >= t.since_ms + timeout_ms;
            if timed_out {
                for pos in &node_positions {
                    if !t.states.get(pos).is_some_and(NodeTaskState::is_final) {
                        let timeout = MeiliError::task_timeout().to_json();
                        t.states.insert(*pos, NodeTaskState { status: "failed".into(), error: Some(timeout), details: None });
                    }
                }
            }
            if node_positions.iter().all(|p| t.states.get(p).is_some_and(NodeTaskState::is_final)) {
                ended.push((t, node_positions));
            } else {
                kept.push(t);
            }
        }
        f.tasks = kept;
        // The close of a task that ends now sets its start too.
        for uid in started.into_iter().filter(|uid| !ended.iter().any(|(t, _)| t.open.uid == *uid)) {
            self.update_task(host, uid, TaskChange::Start { now_ms: now });
        }
        for (t, positions) in ended {
            self.close_followed(host, index, t, &positions, now);
        }
        self.chores_maybe_done(host, index, now);
    }

    fn close_followed(&mut self, host: &mut dyn Host, index: &str, t: Followed, positions: &[usize], now: u64) {
        let states: Vec<NodeTaskState> = positions.iter().filter_map(|p| t.states.get(p).cloned()).collect();
        let op = Op::Untrack { index: index.to_string(), task_uid: t.open.uid };
        self.submit(host, op, Awaiting::Logged(format!("index {index}: closing task {} failed", t.open.uid)));
        if !states.is_empty() && states.iter().all(NodeTaskState::is_lost) {
            // Every node forgot it: a task deletion processed after it ended there. The task is
            // gone through the gateway too, as on a node.
            self.update_task(host, t.open.uid, TaskChange::Rejected);
            return;
        }
        let end = mirror::task_end(&states);
        let nodes: Vec<NodeTaskInfo> = positions
            .iter()
            .filter_map(|p| {
                let id = self.cfg.nodes.get(*p)?.id.clone();
                Some(NodeTaskInfo {
                    task_uid: t.open.nodes.get(&id).copied(),
                    status: t.states.get(p).map(|s| s.status.clone()),
                    node: id,
                    fingerprint: None,
                })
            })
            .collect();
        let odd: Vec<(String, NodeLag)> = end
            .odd
            .iter()
            .filter_map(|i| positions.get(*i).and_then(|p| self.cfg.nodes.get(*p)))
            .map(|n| {
                let why = format!("task {} ended unlike on the other nodes", t.open.uid);
                (n.id.clone(), NodeLag { why, replay_from: None })
            })
            .collect();
        self.mark_out_of_sync(host, index, odd);
        if end.status == "succeeded" && forgets_settings(&t.open.kind, end.details.as_ref(), index) {
            let op = Op::ForgetSettings { index: index.to_string() };
            self.submit(host, op, Awaiting::Logged(format!("index {index}: forgetting its settings failed")));
        }
        // A translated task cancelation or deletion keeps the filter's own details: a node's
        // speak of its own uids.
        let translated = matches!(t.open.kind.as_str(), "taskCancelation" | "taskDeletion");
        let succeeded = end.status == "succeeded";
        let close = TaskClose {
            status: end.status,
            error: end.error,
            finished_ms: now,
            details: if translated { None } else { end.details },
            nodes,
            version: None,
            repair_attempts: 0,
        };
        self.update_task(host, t.open.uid, TaskChange::Close(Box::new(close)));
        if succeeded && !t.open.deletes_later.is_empty() {
            let op = Op::ForgetEndedTasks { uids: t.open.deletes_later.clone() };
            self.submit(host, op, Awaiting::Logged(format!("task {}: dropping the tasks it deleted failed", t.open.uid)));
        }
    }
}

/// A deleted index, or one renamed away, no longer has settings the filter keeps: a later index
/// of that name starts from Meilisearch's defaults, as on a node.
fn forgets_settings(kind: &str, details: Option<&Value>, index: &str) -> bool {
    match kind {
        "indexDeletion" => true,
        "indexUpdate" => details
            .and_then(|d| d.get("newIndexUid"))
            .and_then(Value::as_str)
            .is_some_and(|new| new != index),
        _ => false,
    }
}
