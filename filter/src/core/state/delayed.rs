//! A test double of a ledger that answers later: operations take effect at once (on the
//! shared-data ledger it wraps) but their answers are held until the test releases them, in an
//! order the test chooses. The engine must reach the same end states as with answers at once
//! (filter/src/core/engine_delayed_tests.rs).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use super::ledger::{Answer, Ledger, Op, OpId};
use super::shared_data::SharedDataLedger;
use crate::core::config::Config;
use crate::core::host::Host;

#[derive(Default)]
struct Mailbox {
    held: Vec<(OpId, Answer)>,
    released: VecDeque<(OpId, Answer)>,
}

pub struct DelayedLedger {
    inner: SharedDataLedger,
    mailbox: Rc<RefCell<Mailbox>>,
}

/// The test's hold on the answers of one `DelayedLedger`.
#[derive(Clone)]
pub struct Release {
    mailbox: Rc<RefCell<Mailbox>>,
}

/// In which order held answers are let go.
#[derive(Debug, Clone, Copy)]
pub enum Order {
    AsSubmitted,
    Reversed,
    /// A fixed permutation from this seed (a small linear congruential generator: tests replay).
    Shuffled(u64),
}

impl DelayedLedger {
    pub fn new(cfg: Config) -> (DelayedLedger, Release) {
        let mailbox = Rc::new(RefCell::new(Mailbox::default()));
        (DelayedLedger { inner: SharedDataLedger::new(cfg), mailbox: mailbox.clone() }, Release { mailbox })
    }
}

impl Ledger for DelayedLedger {
    fn submit(&mut self, host: &mut dyn Host, id: OpId, op: Op) {
        let answer = self.inner.run(host, op);
        self.mailbox.borrow_mut().held.push((id, answer));
    }

    fn take(&mut self, id: OpId) -> Option<Answer> {
        let mut mailbox = self.mailbox.borrow_mut();
        let at = mailbox.released.iter().position(|(i, _)| *i == id)?;
        mailbox.released.remove(at).map(|(_, a)| a)
    }

    fn next_answer(&mut self) -> Option<(OpId, Answer)> {
        self.mailbox.borrow_mut().released.pop_front()
    }
}

impl Release {
    pub fn held(&self) -> usize {
        self.mailbox.borrow().held.len()
    }

    /// Let every held answer go, in `order`. Returns how many.
    pub fn release(&self, order: Order) -> usize {
        let mut mailbox = self.mailbox.borrow_mut();
        let mut held = std::mem::take(&mut mailbox.held);
        match order {
            Order::AsSubmitted => {}
            Order::Reversed => held.reverse(),
            Order::Shuffled(seed) => {
                let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                for i in (1..held.len()).rev() {
                    state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                    let j = usize::try_from((state >> 33) % (i as u64 + 1)).unwrap_or(0);
                    held.swap(i, j);
                }
            }
        }
        let n = held.len();
        mailbox.released.extend(held);
        n
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::core::fake_host::{new_envoy, FakeHost};
    use crate::core::state::keys;
    use crate::core::state::store;

    #[test]
    fn answers_wait_for_the_test_and_come_in_its_order() {
        let mut host = FakeHost::new(new_envoy(0));
        store::seed(&mut host, keys::ACTIVE_KEY, br#"["a"]"#).unwrap();
        let cfg = Config::parse(json!({"nodes": [{"id": "n", "cluster": "c", "authority": "a"}]}).to_string().as_bytes()).unwrap();
        let (mut ledger, release) = DelayedLedger::new(cfg);
        for i in 0..3 {
            ledger.submit(&mut host, OpId(i), Op::ReadActive);
        }
        assert!(ledger.take(OpId(0)).is_none() && ledger.next_answer().is_none(), "held");
        assert_eq!(release.release(Order::Reversed), 3);
        let order: Vec<u64> = std::iter::from_fn(|| ledger.next_answer()).map(|(id, _)| id.0).collect();
        assert_eq!(order, vec![2, 1, 0]);
        for i in 0..8 {
            ledger.submit(&mut host, OpId(i), Op::ReadActive);
        }
        release.release(Order::Shuffled(7));
        let mut ids: Vec<u64> = std::iter::from_fn(|| ledger.next_answer()).map(|(id, _)| id.0).collect();
        assert_ne!(ids, (0..8).collect::<Vec<_>>(), "shuffled");
        ids.sort_unstable();
        assert_eq!(ids, (0..8).collect::<Vec<_>>(), "every answer exactly once");
    }
}
