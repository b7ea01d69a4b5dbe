//! Resync (mirror mode, `POST /_miroir/indexes/{uid}/resync?node=ID`): a node that can no longer
//! catch up from the log gets the index copied from a node in sync, by Meilisearch's own
//! `POST /export` (documents and settings), as a job on the index's queue so no write lands in
//! between. Steps: delete the index on the node, export it from the source to the node, wait
//! for the node to finish what the export enqueued, then compare document counts and settings
//! fingerprints. Equal: the node is in sync again at the index's settings version.

use super::*;
use crate::core::state::records::NodeLag;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ResyncStage {
    DeleteOnTarget,
    WaitDelete,
    Export,
    WaitExport,
    /// The node applies what the export sent it.
    WaitTargetIdle,
    /// Stats and settings of both nodes.
    Compare,
}

#[derive(Debug, Clone)]
pub(super) struct ResyncRun {
    pub target: usize,
    pub source: usize,
    pub stage: ResyncStage,
    pub node_task: Option<u64>,
    pub next_poll_ms: u64,
    pub in_flight: usize,
    /// (documents, settings fingerprint) read from the source (0) and the target (1).
    pub seen: [(Option<u64>, Option<String>); 2],
}

const RESYNC_POLL_MS: u64 = 50;

impl Engine {
    pub(super) fn begin_resync(&mut self, host: &mut dyn Host, index: &str, target: usize, source: usize) {
        let Some(run) = self.jobs.get_mut(index) else { return };
        run.step = Step::Resync;
        run.resync = Some(ResyncRun {
            target,
            source,
            stage: ResyncStage::DeleteOnTarget,
            node_task: None,
            next_poll_ms: 0,
            in_flight: 0,
            seen: [(None, None), (None, None)],
        });
        let job = run.job.clone();
        let now = host.now_ms();
        self.update_task(host, job.task_uid, TaskChange::Start { now_ms: now });
        // The operator gets the task at once; it tells how the copy went.
        self.record_outcome(host, &job, ProposeOutcome::Accepted);
        self.resync_step(host, index);
    }

    fn resync_call(&mut self, host: &mut dyn Host, index: &str, node: usize, method: &str, path: &str, body: Option<Vec<u8>>) {
        let timeout = self.cfg.settings_broadcast.verify_timeout_s * 1000;
        let sent = self.call(host, index, node, Purpose::Resync, method, path, body, timeout);
        if let Some(r) = self.jobs.get_mut(index).and_then(|r| r.resync.as_mut()) {
            if sent {
                r.in_flight += 1;
            }
        }
        if !sent {
            self.resync_failed(host, index, format!("could not call node {}", self.node_name(node)));
        }
    }

    fn node_name(&self, node: usize) -> String {
        self.cfg.nodes.get(node).map(|n| n.id.clone()).unwrap_or_default()
    }

    /// Send what the current stage needs.
    pub(super) fn resync_step(&mut self, host: &mut dyn Host, index: &str) {
        let Some(r) = self.jobs.get(index).and_then(|r| r.resync.clone()) else { return };
        if r.in_flight > 0 || host.now_ms() < r.next_poll_ms {
            return;
        }
        match r.stage {
            ResyncStage::DeleteOnTarget => self.resync_call(host, index, r.target, "DELETE", &format!("/indexes/{index}"), None),
            ResyncStage::WaitDelete | ResyncStage::WaitExport => {
                let node = if r.stage == ResyncStage::WaitDelete { r.target } else { r.source };
                let path = format!("/tasks/{}", r.node_task.unwrap_or_default());
                self.resync_call(host, index, node, "GET", &path, None);
            }
            ResyncStage::Export => {
                let Some(key) = host.env(&self.cfg.node_api_key_env).filter(|k| !k.is_empty()) else {
                    return self.resync_failed(host, index, "no node key is set".into());
                };
                let Some(to) = self.cfg.nodes.get(r.target) else { return };
                let mut indexes = serde_json::Map::new();
                indexes.insert(index.to_string(), json!({"overrideSettings": true}));
                let body = json!({"url": format!("http://{}", to.authority), "apiKey": key, "indexes": indexes});
                self.resync_call(host, index, r.source, "POST", "/export", serde_json::to_vec(&body).ok());
            }
            ResyncStage::WaitTargetIdle => {
                let path = format!("/tasks?indexUids={index}&statuses=enqueued,processing&limit=1");
                self.resync_call(host, index, r.target, "GET", &path, None);
            }
            ResyncStage::Compare => {
                for node in [r.source, r.target] {
                    self.resync_call(host, index, node, "GET", &format!("/indexes/{index}/stats"), None);
                    self.resync_call(host, index, node, "GET", &format!("/indexes/{index}/settings"), None);
                }
            }
        }
    }

    pub(super) fn on_resync(&mut self, host: &mut dyn Host, tag: &Tag, resp: &CalloutResponse) {
        let now = host.now_ms();
        let index = tag.index.clone();
        let Some(r) = self.jobs.get_mut(&index).and_then(|r| r.resync.as_mut()) else { return };
        r.in_flight = r.in_flight.saturating_sub(1);
        let body: Option<Value> = serde_json::from_slice(&resp.body).ok();
        let task_uid = body.as_ref().and_then(|b| b.get("taskUid")).and_then(Value::as_u64);
        let status = body.as_ref().and_then(|b| b.get("status")).and_then(Value::as_str).map(str::to_string);
        let failure = |what: &str| format!("{what} answered {:?}: {}", resp.status, String::from_utf8_lossy(&resp.body));
        match (r.stage, resp.status) {
            (ResyncStage::DeleteOnTarget, Some(202)) if task_uid.is_some() => {
                r.node_task = task_uid;
                r.stage = ResyncStage::WaitDelete;
            }
            (ResyncStage::DeleteOnTarget, Some(404)) => r.stage = ResyncStage::Export,
            (ResyncStage::Export, Some(202)) if task_uid.is_some() => {
                r.node_task = task_uid;
                r.stage = ResyncStage::WaitExport;
            }
            (ResyncStage::WaitDelete | ResyncStage::WaitExport, Some(200)) => match status.as_deref() {
                Some("succeeded") => {
                    r.stage = if r.stage == ResyncStage::WaitDelete { ResyncStage::Export } else { ResyncStage::WaitTargetIdle };
                }
                Some("failed" | "canceled") => {
                    let what = if r.stage == ResyncStage::WaitDelete { "the deletion on the node" } else { "the export" };
                    let msg = failure(what);
                    return self.resync_failed(host, &index, msg);
                }
                _ => r.next_poll_ms = now + RESYNC_POLL_MS,
            },
            (ResyncStage::WaitTargetIdle, Some(200)) => {
                let pending = body.as_ref().and_then(|b| b.get("total")).and_then(Value::as_u64).unwrap_or(1);
                if pending == 0 {
                    r.stage = ResyncStage::Compare;
                } else {
                    r.next_poll_ms = now + RESYNC_POLL_MS;
                }
            }
            (ResyncStage::Compare, Some(200)) => {
                let slot = usize::from(tag.node == r.target);
                if let (Some(b), Some(seen)) = (body.as_ref(), r.seen.get_mut(slot)) {
                    match b.get("numberOfDocuments").and_then(Value::as_u64) {
                        Some(docs) => seen.0 = Some(docs),
                        None => seen.1 = Some(fingerprint(b)),
                    }
                }
                if r.in_flight == 0 {
                    return self.resync_compared(host, &index);
                }
                return;
            }
            (stage, _) => {
                let msg = failure(&format!("{stage:?}"));
                return self.resync_failed(host, &index, msg);
            }
        }
        self.resync_step(host, &index);
    }

    fn resync_compared(&mut self, host: &mut dyn Host, index: &str) {
        let Some(run) = self.jobs.get(index) else { return };
        let Some(r) = run.resync.clone() else { return };
        let [(src_docs, src_fp), (dst_docs, dst_fp)] = r.seen.clone();
        if src_docs.is_none() || src_docs != dst_docs || src_fp.is_none() || src_fp != dst_fp {
            let msg = format!(
                "after the copy, node {} holds {dst_docs:?} documents (source {src_docs:?}) and {} settings",
                self.node_name(r.target),
                if src_fp == dst_fp { "the same" } else { "different" }
            );
            return self.resync_failed(host, index, msg);
        }
        let (task_uid, node) = (run.job.task_uid, self.node_name(r.target));
        log::warn!("miroir: index {index}: node {node} resynced from {}; it takes reads and writes again", self.node_name(r.source));
        let op = Op::Resynced { index: index.to_string(), node: node.clone() };
        self.submit(host, op, Awaiting::Logged(format!("index {index}: recording the resync of {node} failed")));
        let source = self.node_name(r.source);
        if let Some(run) = self.jobs.get_mut(index) {
            run.node_details = Some(json!({"node": node, "source": source, "numberOfDocuments": src_docs}));
        }
        let now = host.now_ms();
        self.close_task(host, index, task_uid, "succeeded", None, None, now);
        self.next_job(host, index, task_uid);
    }

    fn resync_failed(&mut self, host: &mut dyn Host, index: &str, why: String) {
        let Some(run) = self.jobs.get(index) else { return };
        let (task_uid, node) = (run.job.task_uid, run.resync.as_ref().map(|r| r.target).unwrap_or_default());
        log::error!("miroir: index {index}: the resync of node {} failed: {why}", self.node_name(node));
        let lag = NodeLag { why: format!("resync failed: {why}"), replay_from: None };
        let op = Op::MarkOutOfSync { index: index.to_string(), nodes: vec![(self.node_name(node), lag)] };
        self.submit(host, op, Awaiting::Logged(format!("index {index}: recording a failed resync failed")));
        let err = MeiliError::new(500, "miroir_resync_failed", super::super::errors::ErrorType::System, why);
        self.finish(host, index, task_uid, Outcome::Failed(err.to_json()));
    }
}
