//! The end of a mirrored write's propose round (mirror mode, docs/architecture.md §4): once
//! every node answered, the client learns the outcome and the index's queue moves on at once —
//! the next write goes to the nodes without waiting for this one to be processed, because every
//! node already enqueued it behind the previous one. The filter task then follows the node
//! tasks (`mirror_tasks.rs`).

use super::*;
use crate::core::mirror::{self, NodeAnswer, Verdict, INSTANCE_QUEUE};
use crate::core::state::records::OpenTask;

impl Engine {
    pub(super) fn mirror_proposed(&mut self, host: &mut dyn Host, index: &str) {
        let Some(run) = self.jobs.get(index) else { return };
        let round: Vec<usize> = run.nodes.iter().enumerate().filter(|(_, n)| n.in_round).map(|(i, _)| i).collect();
        let answers: Vec<NodeAnswer> = run
            .nodes
            .iter()
            .filter(|n| n.in_round)
            .map(|n| n.answer.clone().unwrap_or(NodeAnswer::Failed { reason: "no answer".into() }))
            .collect();
        let job = run.job.clone();
        let client_answered = run.client_answered;
        let ids: Vec<String> = round.iter().filter_map(|i| self.cfg.nodes.get(*i)).map(|c| c.id.clone()).collect();
        let node_id = |pos: usize| ids.get(pos).cloned();
        match mirror::verdict(&answers) {
            Verdict::Enqueued { kind, tasks, missed } => {
                let nodes: BTreeMap<String, u64> = tasks.iter().filter_map(|(pos, uid)| Some((node_id(*pos)?, *uid))).collect();
                let infos = nodes
                    .iter()
                    .map(|(id, uid)| NodeTaskInfo { node: id.clone(), task_uid: Some(*uid), status: Some("enqueued".into()), fingerprint: None })
                    .collect();
                self.update_task(host, job.task_uid, TaskChange::Mirrored { kind: kind.clone(), nodes: infos });
                if !client_answered {
                    self.record_outcome(host, &job, ProposeOutcome::Accepted);
                }
                let odd: Vec<(String, String)> = missed
                    .iter()
                    .filter_map(|pos| {
                        let why = match answers.get(*pos) {
                            Some(NodeAnswer::Refused { status, .. }) => format!("refused write task {} (HTTP {status})", job.task_uid),
                            Some(NodeAnswer::Failed { reason }) => format!("missed write task {}: {reason}", job.task_uid),
                            _ => format!("missed write task {}", job.task_uid),
                        };
                        Some((node_id(*pos)?, why))
                    })
                    .collect();
                self.mark_out_of_sync(host, index, odd);
                host.counter_add(&metrics::for_index_result(metrics::MIRROR_WRITES_TOTAL, index, "enqueued"), 1);
                let open = OpenTask { uid: job.task_uid, nodes, authorization: job.authorization.clone(), kind };
                self.submit(host, Op::Track { index: index.to_string(), open: open.clone() }, Awaiting::Logged(format!("index {index}: keeping task {} open failed", job.task_uid)));
                self.follow(host, index, open);
                self.finish(host, index, job.task_uid, Outcome::Tracked);
            }
            Verdict::Relay { status, body, odd } => {
                if !odd.is_empty() {
                    let ids: Vec<String> = odd.iter().filter_map(|p| node_id(*p)).collect();
                    log::warn!("miroir: {} write {} answered differently by node(s) {}", job.method, job.path, ids.join(", "));
                    if index != INSTANCE_QUEUE {
                        let why = format!("answered write task {} unlike the others", job.task_uid);
                        self.mark_out_of_sync(host, index, ids.into_iter().map(|id| (id, why.clone())).collect());
                    }
                }
                let result = if (200..300).contains(&status) { "answered" } else { "refused" };
                host.counter_add(&metrics::for_index_result(metrics::MIRROR_WRITES_TOTAL, index, result), 1);
                if !client_answered {
                    let outcome = ProposeOutcome::Answered { status, body, content_type: Some("application/json".into()) };
                    self.record_outcome(host, &job, outcome);
                }
                self.finish(host, index, job.task_uid, Outcome::Rejected);
            }
            Verdict::Unreachable => {
                host.counter_add(&metrics::for_index_result(metrics::MIRROR_WRITES_TOTAL, index, "unreachable"), 1);
                if !client_answered {
                    let err = mirror::unreachable_error();
                    let outcome = ProposeOutcome::Answered { status: err.status, body: err.body(), content_type: Some("application/json".into()) };
                    self.record_outcome(host, &job, outcome);
                }
                self.finish(host, index, job.task_uid, Outcome::Rejected);
            }
        }
    }

    /// Nodes that no longer hold what the others hold for `index`: recorded (reads avoid them),
    /// counted and logged as an alert.
    pub(super) fn mark_out_of_sync(&mut self, host: &mut dyn Host, index: &str, nodes: Vec<(String, String)>) {
        if nodes.is_empty() {
            return;
        }
        for (id, why) in &nodes {
            log::error!("miroir: index {index}: node {id} is OUT OF SYNC ({why}); reads avoid it");
            host.counter_add(&metrics::for_index_node(metrics::OUT_OF_SYNC_TOTAL, index, id), 1);
        }
        let op = Op::MarkOutOfSync { index: index.to_string(), nodes };
        self.submit(host, op, Awaiting::Logged(format!("index {index}: recording out-of-sync nodes failed")));
    }
}
