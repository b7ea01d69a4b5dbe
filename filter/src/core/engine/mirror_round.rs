//! The end of a mirrored write's propose round (mirror mode, docs/architecture.md §4): once
//! every node answered, the client learns the outcome and the index's queue moves on at once —
//! the next write goes to the nodes without waiting for this one to be processed, because every
//! node already enqueued it behind the previous one. The filter task then follows the node
//! tasks (`mirror_tasks.rs`).

use super::*;
use crate::core::mirror::{self, NodeAnswer, Verdict, INSTANCE_QUEUE};
use crate::core::state::records::{NodeLag, OpenTask};

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
        let enqueued = answers.iter().any(|a| matches!(a, NodeAnswer::Task { .. }));
        self.end_swap(host, &job, enqueued);
        let ids: Vec<String> = round.iter().filter_map(|i| self.cfg.nodes.get(*i)).map(|c| c.id.clone()).collect();
        let node_id = |pos: usize| ids.get(pos).cloned();
        match mirror::verdict(&answers) {
            Verdict::Enqueued { kind, tasks, missed } => {
                let nodes: SortedMap<String, u64> = tasks.iter().filter_map(|(pos, uid)| Some((node_id(*pos)?, *uid))).collect();
                let infos = nodes
                    .iter()
                    .map(|(id, uid)| NodeTaskInfo { node: id.clone(), task_uid: Some(*uid), status: Some("enqueued".into()), fingerprint: None })
                    .collect();
                let accepted = !client_answered;
                self.update_task(host, job.task_uid, TaskChange::Mirrored { kind: kind.clone(), nodes: infos, accepted });
                if accepted {
                    self.outcome_recorded(host, &job);
                }
                // A node that did not answer missed the write: it replays it (and every later
                // one) from the log when it answers again. One that refused what the others
                // took holds something else: it needs a resync.
                let odd: Vec<(String, NodeLag)> = missed
                    .iter()
                    .filter_map(|pos| {
                        let lag = match answers.get(*pos) {
                            Some(NodeAnswer::Refused { status, .. }) => NodeLag {
                                why: format!("refused write task {} (HTTP {status}) the others enqueued", job.task_uid),
                                replay_from: None,
                            },
                            Some(NodeAnswer::Failed { reason }) => NodeLag {
                                why: format!("missed write task {}: {reason}", job.task_uid),
                                replay_from: Some(job.task_uid),
                            },
                            _ => NodeLag { why: format!("missed write task {}", job.task_uid), replay_from: None },
                        };
                        Some((node_id(*pos)?, lag))
                    })
                    .collect();
                if odd.iter().any(|(_, l)| l.replay_from.is_some()) {
                    self.keep_in_log(host, index, &job);
                }
                self.mark_out_of_sync(host, index, odd);
                count_write(host, index, "enqueued");
                for uid in job.cancels_unsent.iter().flatten() {
                    self.update_task(host, *uid, TaskChange::CancelRequested { by: job.task_uid });
                }
                let deletes_later = job.deletes_later.clone().unwrap_or_default();
                let open = OpenTask { uid: job.task_uid, nodes, authorization: job.authorization.clone(), kind, deletes_later };
                self.submit(host, Op::Track { index: index.to_string(), open: open.clone() }, Awaiting::Logged(format!("index {index}: keeping task {} open failed", job.task_uid)));
                self.follow(host, index, open);
                self.finish(host, index, job.task_uid, Outcome::Tracked);
            }
            Verdict::Relay { status, body, odd } => {
                if !odd.is_empty() {
                    let ids: Vec<String> = odd.iter().filter_map(|p| node_id(*p)).collect();
                    log::warn!("miroir: {} write {} answered differently by node(s) {}", job.method, mirror::loggable_path(&job.path), ids.join(", "));
                    // Applied elsewhere (a key, experimental features): a node that did not
                    // answer replays it from the log like any write it missed; one that
                    // answered otherwise holds something else.
                    let applied = (200..300).contains(&status);
                    let mut lags = Vec::new();
                    for pos in &odd {
                        let Some(id) = node_id(*pos) else { continue };
                        let lag = match answers.get(*pos) {
                            Some(NodeAnswer::Failed { reason }) if applied => {
                                NodeLag { why: format!("missed write task {}: {reason}", job.task_uid), replay_from: Some(job.task_uid) }
                            }
                            _ if index == INSTANCE_QUEUE => continue, // no index to resync: logged above
                            _ => NodeLag { why: format!("answered write task {} unlike the others", job.task_uid), replay_from: None },
                        };
                        lags.push((id, lag));
                    }
                    if lags.iter().any(|(_, l)| l.replay_from.is_some()) {
                        self.keep_in_log(host, index, &job);
                    }
                    self.mark_out_of_sync(host, index, lags);
                }
                let applied = (200..300).contains(&status);
                count_write(host, index, if applied { "answered" } else { "refused" });
                let error = (!applied).then(|| job::refusal_error(status, &body));
                if !client_answered {
                    let outcome = ProposeOutcome::Answered { status, body, content_type: Some("application/json".into()) };
                    self.record_outcome(host, &job, outcome);
                }
                self.finish(host, index, job.task_uid, Outcome::Rejected { error });
            }
            Verdict::Unreachable => {
                count_write(host, index, "unreachable");
                let err = mirror::unreachable_error();
                if !client_answered {
                    let outcome = ProposeOutcome::Answered { status: err.status, body: err.body(), content_type: Some("application/json".into()) };
                    self.record_outcome(host, &job, outcome);
                }
                self.finish(host, index, job.task_uid, Outcome::Rejected { error: Some(err.to_json()) });
            }
        }
    }

    /// Nodes that no longer hold what the others hold for `index`: recorded (reads avoid them),
    /// counted and logged as an alert.
    pub(super) fn mark_out_of_sync(&mut self, host: &mut dyn Host, index: &str, nodes: Vec<(String, NodeLag)>) {
        if nodes.is_empty() {
            return;
        }
        for (id, lag) in &nodes {
            let then = if lag.replay_from.is_some() { "it catches up from the log" } else { "it needs a resync" };
            log::error!("miroir: index {index}: node {id} is OUT OF SYNC ({}); reads avoid it, {then}", lag.why);
            let name = if index == INSTANCE_QUEUE {
                metrics::for_node(metrics::OUT_OF_SYNC_TOTAL, id)
            } else {
                metrics::for_index_node(metrics::OUT_OF_SYNC_TOTAL, index, id)
            };
            host.counter_add(&name, 1);
            if let (Some(pos), Some(_)) = (self.cfg.nodes.iter().position(|n| &n.id == id), lag.replay_from) {
                self.catch_up(host, index, pos);
            }
        }
        let op = Op::MarkOutOfSync { index: index.to_string(), nodes };
        self.submit(host, op, Awaiting::Logged(format!("index {index}: recording out-of-sync nodes failed")));
    }

    /// Keep the running job's write for the nodes that do not have it yet.
    pub(super) fn keep_in_log(&mut self, host: &mut dyn Host, index: &str, job: &JobRecord) {
        let bytes = job.body.as_ref().map_or(0, |b| b.len() as u64) + job.path.len() as u64 + 256;
        let op = Op::AppendLog { index: index.to_string(), uid: job.task_uid, bytes, max_bytes: self.cfg.mirror.log_max_bytes };
        self.submit(host, op, Awaiting::Logged(format!("index {index}: keeping write {} in the catch-up log failed", job.task_uid)));
    }
}

/// Writes to the instance (`INSTANCE_QUEUE`) are counted without an index label.
fn count_write(host: &mut dyn Host, index: &str, result: &str) {
    let name = if index == INSTANCE_QUEUE {
        metrics::for_result(metrics::MIRROR_WRITES_TOTAL, result)
    } else {
        metrics::for_index_result(metrics::MIRROR_WRITES_TOTAL, index, result)
    };
    host.counter_add(&name, 1);
}
