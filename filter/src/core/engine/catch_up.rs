//! Catch-up (mirror mode): a node that missed writes of an index (down, unreachable) gets no
//! further writes of it — they would land out of order — and takes no reads of it. The lease
//! holder replays the writes it missed from the index's catch-up log, one at a time and in
//! order, retrying with backoff while the node does not answer; once the node enqueued the last
//! one and finished it, it rejoins (reads and writes reach it again). A node the log can no
//! longer serve needs a resync instead (`admin.rs`).

use super::*;
use crate::core::mirror::{self, NodeAnswer};
use crate::core::state::records::NodeLag;

/// Retry delay while a node does not answer: from this, doubling, up to `MAX_RETRY_MS`.
const FIRST_RETRY_MS: u64 = 250;
const MAX_RETRY_MS: u64 = 2_000;

#[derive(Debug, Default)]
pub(super) struct CatchUp {
    /// A ledger read or a call to the node is under way.
    busy: bool,
    next_try_ms: u64,
    failures: u32,
    /// The uid of the write being replayed.
    sending: Option<u64>,
    /// The node's task of the last write it replayed: it must finish before the node rejoins.
    last_node_task: Option<u64>,
}

impl Engine {
    /// Start (or keep) catching node `pos` up on `index`.
    pub(super) fn catch_up(&mut self, host: &mut dyn Host, index: &str, pos: usize) {
        let now = host.now_ms();
        let chores = self.chores_of(index, now);
        chores.catch_up.entry(pos).or_default();
    }

    pub(super) fn drive_catch_up(&mut self, host: &mut dyn Host, index: &str, now: u64) {
        if self.jobs.contains_key(index) {
            return; // between jobs only: a replay never overtakes a write in flight
        }
        let Some(chores) = self.following.get_mut(index) else { return };
        let due: Vec<usize> =
            chores.catch_up.iter().filter(|(_, c)| !c.busy && now >= c.next_try_ms).map(|(p, _)| *p).collect();
        for pos in due {
            let Some(node) = self.cfg.nodes.get(pos).map(|n| n.id.clone()) else { continue };
            if let Some(c) = self.following.get_mut(index).and_then(|f| f.catch_up.get_mut(&pos)) {
                c.busy = true;
            }
            let op = Op::NextReplay { index: index.to_string(), node };
            self.submit(host, op, Awaiting::Replay { index: index.to_string(), pos });
        }
    }

    fn catch_up_state(&mut self, index: &str, pos: usize) -> Option<&mut CatchUp> {
        self.following.get_mut(index).and_then(|f| f.catch_up.get_mut(&pos))
    }

    /// The ledger said where node `pos` is: send it its next write, or check it finished the last
    /// one, or let it rejoin.
    pub(super) fn on_next_replay(&mut self, host: &mut dyn Host, index: &str, pos: usize, from: Option<u64>, job: Option<JobRecord>) {
        let now = host.now_ms();
        let Some(from) = from else {
            // In sync again, or past the log: nothing to replay.
            if let Some(f) = self.following.get_mut(index) {
                f.catch_up.remove(&pos);
            }
            self.chores_maybe_done(host, index, now);
            return;
        };
        let Some(node) = self.cfg.nodes.get(pos).cloned() else { return };
        if let Some(job) = job {
            let mut headers = Vec::new();
            if let (Some(ct), true) = (job.content_type.clone(), job.body.is_some() || job.mirror.is_some()) {
                headers.push(("content-type".to_string(), ct));
            }
            if let Some(auth) = job.authorization.clone() {
                headers.push(("authorization".to_string(), auth));
            }
            let body = job.body.as_ref().map(|b| b.as_bytes().to_vec());
            let timeout = self.cfg.settings_broadcast.propose_timeout_ms;
            let path = super::round_propose::path_for(&job, Some(node.id.as_str()));
            let sent = self.dispatch_to(host, index, pos, Purpose::Replay, &job.method, &path, body, headers, timeout);
            if let Some(c) = self.catch_up_state(index, pos) {
                c.sending = Some(job.task_uid);
                if !sent {
                    c.busy = false;
                    c.next_try_ms = now + FIRST_RETRY_MS;
                }
            }
            return;
        }
        match self.catch_up_state(index, pos).and_then(|c| c.last_node_task) {
            Some(task) => {
                let headers = self.node_key_header(host);
                let timeout = self.cfg.settings_broadcast.propose_timeout_ms;
                let sent = self.dispatch_to(host, index, pos, Purpose::ReplayPoll, "GET", &format!("/tasks/{task}"), None, headers, timeout);
                if !sent {
                    if let Some(c) = self.catch_up_state(index, pos) {
                        c.busy = false;
                        c.next_try_ms = now + FIRST_RETRY_MS;
                    }
                }
            }
            None => {
                let op = Op::Rejoin { index: index.to_string(), node: node.id, from };
                self.submit(host, op, Awaiting::Rejoin { index: index.to_string(), pos });
            }
        }
    }

    pub(super) fn on_next_replay_failed(&mut self, host: &mut dyn Host, index: &str, pos: usize) {
        let now = host.now_ms();
        if let Some(c) = self.catch_up_state(index, pos) {
            c.busy = false;
            c.next_try_ms = now + FIRST_RETRY_MS;
        }
    }

    pub(super) fn on_replay_answer(&mut self, host: &mut dyn Host, tag: &Tag, resp: &CalloutResponse) {
        let now = host.now_ms();
        let index = tag.index.clone();
        let Some(node) = self.cfg.nodes.get(tag.node).map(|n| n.id.clone()) else { return };
        let Some(c) = self.catch_up_state(&index, tag.node) else { return };
        let sending = c.sending.take();
        c.busy = false;
        match mirror::parse_answer(resp) {
            NodeAnswer::Task { uid, .. } => {
                c.failures = 0;
                c.last_node_task = Some(uid);
                c.next_try_ms = now;
                if let Some(write) = sending {
                    let op = Op::Replayed { index: index.clone(), node: node.clone(), uid: write };
                    self.submit(host, op, Awaiting::Logged(format!("index {index}: recording the replay to {node} failed")));
                    log::info!("miroir: index {index}: node {node} replayed write {write}");
                }
            }
            NodeAnswer::Failed { reason } => {
                c.failures += 1;
                c.next_try_ms = now + (FIRST_RETRY_MS << c.failures.min(4)).min(MAX_RETRY_MS);
                log::debug!("miroir: index {index}: node {node} still unreachable for its catch-up: {reason}");
            }
            // A write answered at once (a key, experimental features) has no task to wait for.
            NodeAnswer::Answered { status, .. } if (200..300).contains(&status) => {
                c.failures = 0;
                c.next_try_ms = now;
                if let Some(write) = sending {
                    let op = Op::Replayed { index: index.clone(), node: node.clone(), uid: write };
                    self.submit(host, op, Awaiting::Logged(format!("index {index}: recording the replay to {node} failed")));
                    log::info!("miroir: index {index}: node {node} replayed write {write}");
                }
            }
            NodeAnswer::Refused { status, .. } | NodeAnswer::Answered { status, .. } => {
                let why = format!("answered HTTP {status} to the replay of write {}", sending.unwrap_or_default());
                if let Some(f) = self.following.get_mut(&index) {
                    f.catch_up.remove(&tag.node);
                }
                self.mark_out_of_sync(host, &index, vec![(node, NodeLag { why, replay_from: None })]);
                self.chores_maybe_done(host, &index, now);
            }
        }
    }

    pub(super) fn on_replay_poll(&mut self, host: &mut dyn Host, tag: &Tag, resp: &CalloutResponse) {
        let now = host.now_ms();
        let Some(c) = self.catch_up_state(&tag.index, tag.node) else { return };
        c.busy = false;
        match job::parse_task(resp) {
            Some((NodeTask::Pending, _)) | None => c.next_try_ms = now + 20,
            Some(_) => {
                c.last_node_task = None;
                c.next_try_ms = now;
            }
        }
    }

    pub(super) fn on_rejoin(&mut self, host: &mut dyn Host, index: &str, pos: usize, rejoined: bool) {
        let now = host.now_ms();
        let Some(c) = self.catch_up_state(index, pos) else { return };
        c.busy = false;
        c.next_try_ms = now;
        if rejoined {
            if let Some(f) = self.following.get_mut(index) {
                f.catch_up.remove(&pos);
            }
            if let Some(node) = self.cfg.nodes.get(pos) {
                log::warn!("miroir: index {index}: node {} caught up; it takes reads and writes again", node.id);
            }
            self.chores_maybe_done(host, index, now);
        }
    }

    pub(super) fn node_key_header(&self, host: &dyn Host) -> Vec<(String, String)> {
        self.node_key(host).map(|k| vec![("authorization".to_string(), k)]).unwrap_or_default()
    }
}
