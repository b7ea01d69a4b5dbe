//! How the engine talks to its ledger (state/ledger.rs): every operation goes out with what to
//! do with its answer, and the engine continues from the answer when it comes — at once with
//! the shared-data ledger (so the embedded default runs exactly as inline reads would), later
//! with a ledger that answers later. No store result is used before its answer arrives.

use crate::core::sorted_set::SortedSet;

use super::Engine;
use crate::core::host::Host;
use crate::core::state::records::VerifyResult;
use crate::core::state::ledger::{Answer, Op, OpId};
use crate::core::state::store::StoreError;

/// What an operation's answer is for.
pub(super) enum Awaiting {
    /// A write whose answer matters only if it failed: what to log then.
    Logged(String),
    /// The active list, to claim with the indexes kicked by this VM.
    Active { kicked: SortedSet<String> },
    Claim { index: String },
    Renew { index: String, task_uid: u64, now_ms: u64 },
    Commit { index: String, task_uid: u64 },
    Freeze { index: String, task_uid: u64, detail: String, reason: String },
    Next { index: String },
    Waiters { uids: Vec<u64> },
    DriftClaim,
    NodeKeyWarning,
    /// The record of an index whose nodes the drift run `epoch` is about to read.
    DriftRead { index: String, epoch: u64 },
    /// The record to judge an index's reads against.
    DriftJudge { index: String, epoch: u64 },
    Converged { index: String, lift_freeze: bool },
    /// An operator's forced unfreeze of `index`, answered to `context_id`.
    ForceUnfrozen { context_id: u32, index: String },
    /// A drift repair job; `differ` names the nodes, `result` is the check to record.
    RepairQueued { index: String, differ: String, result: VerifyResult },
    /// The last check of an index operators wait on.
    VerifyRead { index: String },
    /// A client's write, paused in HTTP context `context_id`.
    ClientWrite { context_id: u32, index: String },
    /// The lease of an index followed for its open mirrored writes.
    FollowRenew { index: String },
    /// Where node `pos` stands in its catch-up on `index`.
    Replay { index: String, pos: usize },
    Rejoin { index: String, pos: usize },
    /// Open writes of `index` to take over.
    Adopt { index: String },
    /// Whether the swap `uid` running on `index` may go out.
    SwapReady { index: String, uid: u64 },
}

impl Engine {
    /// Send `op` to the ledger; continue from its answer now if it is there, else when it comes.
    pub(super) fn submit(&mut self, host: &mut dyn Host, op: Op, then: Awaiting) {
        self.last_op += 1;
        let id = OpId(self.last_op);
        self.ledger.submit(host, id, op);
        match self.ledger.take(id) {
            Some(answer) => self.on_answer(host, then, answer),
            None => {
                self.awaiting.insert(id, then);
            }
        }
    }

    /// Continue from every answer the ledger has received, in the order it gives them.
    pub fn on_ledger_answers(&mut self, host: &mut dyn Host) {
        while let Some((id, answer)) = self.ledger.next_answer() {
            match self.awaiting.remove(&id) {
                Some(then) => self.on_answer(host, then, answer),
                None => log::debug!("miroir: ledger answer {id:?} nobody waits for"),
            }
        }
    }

    fn on_answer(&mut self, host: &mut dyn Host, then: Awaiting, answer: Answer) {
        match (then, answer) {
            (Awaiting::Logged(what), Answer::Failed(e)) => log::warn!("miroir: {what}: {e}"),
            (Awaiting::Logged(_), _) => {}
            (Awaiting::Active { mut kicked }, answer) => {
                self.reading_active = false;
                kicked.append(&mut self.kicked);
                match answer {
                    Answer::Active(list) => kicked.extend(list),
                    Answer::Failed(e) => log::warn!("miroir: {e}"),
                    other => log::warn!("miroir: unexpected ledger answer {} to the active list", other.summary()),
                }
                self.claim_indexes(host, kicked);
            }
            (Awaiting::Claim { index }, answer) => {
                self.claiming.remove(&index);
                match answer {
                    Answer::Head(Some(head)) => self.start_job(host, &index, *head),
                    Answer::Head(None) => {}
                    Answer::Failed(e) => log::warn!("miroir: claiming index {index}: {e}"),
                    other => log::warn!("miroir: unexpected ledger answer {} to a claim of {index}", other.summary()),
                }
            }
            (Awaiting::Renew { index, task_uid, now_ms }, answer) => {
                let still_mine = matches!(answer, Answer::Renewed(true));
                self.on_renewed(host, &index, task_uid, now_ms, still_mine);
            }
            (Awaiting::Commit { index, task_uid }, answer) => {
                let version = match answer {
                    Answer::Committed(v) => Ok(v),
                    Answer::Failed(e) => Err(e),
                    other => Err(unexpected(&other)),
                };
                self.on_committed(host, &index, task_uid, version);
            }
            (Awaiting::Freeze { index, task_uid, detail, reason }, answer) => {
                let failed = match answer {
                    Answer::Done => None,
                    Answer::Failed(e) => Some(e),
                    other => Some(unexpected(&other)),
                };
                self.on_frozen(host, &index, task_uid, &detail, &reason, failed);
            }
            (Awaiting::Next { index }, answer) => {
                let next = match answer {
                    Answer::Next(next) => Ok(next),
                    Answer::Failed(e) => Err(e),
                    other => Err(unexpected(&other)),
                };
                self.on_next(host, &index, next);
            }
            (Awaiting::Waiters { uids }, Answer::Tasks(tasks)) => self.answer_waiters(host, uids, tasks),
            (Awaiting::Waiters { .. }, other) => log::warn!("miroir: unexpected ledger answer {} to a task read", other.summary()),
            (Awaiting::DriftClaim, answer) => self.on_drift_claimed(host, matches!(answer, Answer::Claimed(true))),
            (Awaiting::NodeKeyWarning, Answer::Claimed(true)) => log::warn!(
                "miroir: drift check: nodes refuse unauthenticated reads; set the node key in ${}",
                self.cfg.node_api_key_env
            ),
            (Awaiting::NodeKeyWarning, _) => {}
            (Awaiting::DriftRead { index, epoch }, Answer::IndexState { rec, desired, open_tasks }) => {
                self.on_drift_index_read(host, &index, epoch, *rec, desired, open_tasks);
            }
            (Awaiting::DriftJudge { index, epoch }, Answer::IndexState { rec, open_tasks, .. }) => {
                self.on_drift_judge(host, &index, epoch, *rec, open_tasks);
            }
            (Awaiting::DriftRead { index, .. } | Awaiting::DriftJudge { index, .. }, other) => {
                log::warn!("miroir: unexpected ledger answer {} to a read of {index}", other.summary());
            }
            (Awaiting::ForceUnfrozen { context_id, index }, answer) => self.on_force_unfrozen(host, context_id, &index, answer),
            (Awaiting::Converged { index, lift_freeze }, answer) => {
                let failed = match answer {
                    Answer::Done => None,
                    Answer::Failed(e) => Some(e.to_string()),
                    other => Some(unexpected(&other).to_string()),
                };
                self.on_converged(host, &index, lift_freeze, failed);
            }
            (Awaiting::RepairQueued { index, differ, result }, answer) => {
                let uid = match answer {
                    Answer::Enqueued(uid) => Ok(uid),
                    Answer::Failed(e) => Err(e.to_string()),
                    other => Err(unexpected(&other).to_string()),
                };
                self.on_repair_queued(&index, &differ, result, uid, host);
            }
            (Awaiting::ClientWrite { context_id, index }, answer) => {
                let queued = match answer {
                    Answer::Enqueued(uid) => Ok(uid),
                    Answer::Failed(e) => Err(e),
                    other => Err(unexpected(&other)),
                };
                self.on_write_queued(host, context_id, &index, queued);
            }
            (Awaiting::Replay { index, pos }, Answer::Replay { from, job }) => {
                self.on_next_replay(host, &index, pos, from, job.map(|j| *j));
            }
            (Awaiting::Replay { index, pos }, other) => {
                log::warn!("miroir: index {index}: catch-up read failed: {}", other.summary());
                self.on_next_replay_failed(host, &index, pos);
            }
            (Awaiting::Rejoin { index, pos }, answer) => self.on_rejoin(host, &index, pos, matches!(answer, Answer::Claimed(true))),
            (Awaiting::Adopt { index }, Answer::Open(open)) => {
                for o in open {
                    self.follow(host, &index, o);
                }
            }
            (Awaiting::Adopt { index }, other) => log::warn!("miroir: index {index}: reading its open writes failed: {}", other.summary()),
            (Awaiting::SwapReady { index, uid }, answer) => self.on_swap_ready(host, &index, uid, matches!(answer, Answer::Claimed(true))),
            (Awaiting::FollowRenew { index }, answer) => self.on_follow_renewed(&index, matches!(answer, Answer::Renewed(true))),
            (Awaiting::VerifyRead { index }, Answer::Verify(view)) => self.on_verify_read(host, &index, view.map(|v| *v)),
            (Awaiting::VerifyRead { index }, other) => {
                log::warn!("miroir: unexpected ledger answer {} to the check of {index}", other.summary());
                self.on_verify_read(host, &index, None);
            }
        }
    }
}

fn unexpected(answer: &Answer) -> StoreError {
    StoreError::Host(format!("unexpected ledger answer: {}", answer.summary()))
}
