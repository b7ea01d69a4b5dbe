//! A fake proxy host for native tests. It keeps state rather than scripting calls: shared data
//! with Envoy's exact CAS rules (shared by every fake worker of one "Envoy"), recorded callouts
//! that the test answers, replies delivered to paused clients, metrics, wake-ups and a clock.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use super::host::{Callout, Host, LocalReply, SharedError, Wake};

/// Envoy's shared data for one vm_id: value and CAS token per key; tokens from one global
/// counter that skips 0 (proxy-wasm-cpp-host `shared_data.cc`).
#[derive(Default)]
pub struct SharedData {
    pub map: BTreeMap<String, (Vec<u8>, u32)>,
    next_cas: u32,
}

impl SharedData {
    fn next_cas(&mut self) -> u32 {
        self.next_cas = self.next_cas.wrapping_add(1);
        if self.next_cas == 0 {
            self.next_cas = 1;
        }
        self.next_cas
    }
}

/// Process-wide state of the fake Envoy: shared data, metrics (stats are process-wide), clock.
#[derive(Default)]
pub struct FakeEnvoy {
    pub shared: SharedData,
    pub counters: BTreeMap<String, u64>,
    pub gauges: BTreeMap<String, u64>,
    pub histograms: BTreeMap<String, Vec<u64>>,
    pub now_ms: u64,
    pub env: BTreeMap<String, String>,
    /// Workers woken through their shared queue, and why, in order.
    pub wakes: Vec<(String, Wake)>,
}

pub type EnvoyRef = Rc<RefCell<FakeEnvoy>>;

/// One worker VM's view of the host.
pub struct FakeHost {
    pub envoy: EnvoyRef,
    next_token: u32,
    /// Dispatched and not yet answered.
    pub callouts: BTreeMap<u32, Callout>,
    /// Every callout ever dispatched, in order.
    pub history: Vec<Callout>,
    pub replies: Vec<(u32, LocalReply)>,
    /// HTTP contexts that no longer exist (client went away).
    pub gone: Vec<u32>,
    /// Task records this worker read from shared data.
    pub task_reads: std::cell::Cell<u64>,
}

impl FakeHost {
    pub fn new(envoy: EnvoyRef) -> FakeHost {
        FakeHost {
            envoy,
            next_token: 100,
            callouts: BTreeMap::new(),
            history: Vec::new(),
            replies: Vec::new(),
            gone: Vec::new(),
            task_reads: Default::default(),
        }
    }
}

pub fn new_envoy(now_ms: u64) -> EnvoyRef {
    Rc::new(RefCell::new(FakeEnvoy { now_ms, ..FakeEnvoy::default() }))
}

impl Host for FakeHost {
    fn now_ms(&self) -> u64 {
        self.envoy.borrow().now_ms
    }

    fn shared_get(&self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), SharedError> {
        if key.starts_with("miroir/v1/task/") {
            self.task_reads.set(self.task_reads.get() + 1);
        }
        Ok(match self.envoy.borrow().shared.map.get(key) {
            Some((v, cas)) => (Some(v.clone()), Some(*cas)),
            None => (None, None),
        })
    }

    fn shared_set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SharedError> {
        let mut envoy = self.envoy.borrow_mut();
        let shared = &mut envoy.shared;
        if let (Some((_, current)), Some(cas)) = (shared.map.get(key), cas) {
            if cas != 0 && cas != *current {
                return Err(SharedError::CasMismatch);
            }
        }
        let token = shared.next_cas();
        shared.map.insert(key.to_string(), (value.to_vec(), token));
        Ok(())
    }

    fn dispatch(&mut self, call: &Callout) -> Result<u32, String> {
        self.next_token += 1;
        self.callouts.insert(self.next_token, call.clone());
        self.history.push(call.clone());
        Ok(self.next_token)
    }

    fn reply(&mut self, http_context_id: u32, reply: &LocalReply) -> Result<(), String> {
        if self.gone.contains(&http_context_id) {
            return Err("context gone".into());
        }
        self.replies.push((http_context_id, reply.clone()));
        Ok(())
    }

    fn wake(&mut self, worker_id: &str, why: Wake) {
        self.envoy.borrow_mut().wakes.push((worker_id.to_string(), why));
    }

    fn counter_add(&mut self, name: &str, delta: u64) {
        *self.envoy.borrow_mut().counters.entry(name.to_string()).or_default() += delta;
    }

    fn gauge_set(&mut self, name: &str, value: u64) {
        self.envoy.borrow_mut().gauges.insert(name.to_string(), value);
    }

    fn histogram_record(&mut self, name: &str, value: u64) {
        self.envoy.borrow_mut().histograms.entry(name.to_string()).or_default().push(value);
    }

    fn env(&self, name: &str) -> Option<String> {
        self.envoy.borrow().env.get(name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_rules_are_envoys() {
        let envoy = new_envoy(0);
        let mut h = FakeHost::new(envoy);
        // A missing key is written whatever CAS is passed.
        assert!(h.shared_set("k", b"a", Some(12345)).is_ok());
        let (_, cas) = h.shared_get("k").unwrap();
        assert!(h.shared_set("k", b"b", Some(cas.unwrap() + 1)).is_err());
        assert!(h.shared_set("k", b"b", cas).is_ok());
        // A stale token now fails; no token (0) always writes.
        assert_eq!(h.shared_set("k", b"c", cas), Err(SharedError::CasMismatch));
        assert!(h.shared_set("k", b"c", None).is_ok());
        assert_eq!(h.shared_get("k").unwrap().0.unwrap(), b"c");
    }
}

/// When a hooked host runs its hook: right after a shared-data read or write of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookAt {
    Get,
    Set,
}

/// Another worker's work, run once between two hostcalls of this one.
type Hook = (HookAt, String, Box<dyn FnOnce()>);

/// A worker whose next read or write of one key is followed at once by another worker's work
/// (`hook`): the interleaving two threads can produce between two hostcalls, made deterministic.
pub struct HookedHost {
    pub inner: FakeHost,
    hook: RefCell<Option<Hook>>,
}

impl HookedHost {
    pub fn new(envoy: EnvoyRef, at: HookAt, key: &str, hook: impl FnOnce() + 'static) -> HookedHost {
        HookedHost { inner: FakeHost::new(envoy), hook: RefCell::new(Some((at, key.to_string(), Box::new(hook)))) }
    }

    pub fn fired(&self) -> bool {
        self.hook.borrow().is_none()
    }

    fn after(&self, at: HookAt, key: &str) {
        let due = matches!(&*self.hook.borrow(), Some((a, k, _)) if *a == at && k == key);
        if due {
            if let Some((_, _, hook)) = self.hook.borrow_mut().take() {
                hook();
            }
        }
    }
}

impl Host for HookedHost {
    fn now_ms(&self) -> u64 {
        self.inner.now_ms()
    }
    fn shared_get(&self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), SharedError> {
        let got = self.inner.shared_get(key);
        self.after(HookAt::Get, key);
        got
    }
    fn shared_set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SharedError> {
        let set = self.inner.shared_set(key, value, cas);
        self.after(HookAt::Set, key);
        set
    }
    fn dispatch(&mut self, call: &Callout) -> Result<u32, String> {
        self.inner.dispatch(call)
    }
    fn reply(&mut self, http_context_id: u32, reply: &LocalReply) -> Result<(), String> {
        self.inner.reply(http_context_id, reply)
    }
    fn wake(&mut self, worker_id: &str, why: Wake) {
        self.inner.wake(worker_id, why)
    }
    fn counter_add(&mut self, name: &str, delta: u64) {
        self.inner.counter_add(name, delta)
    }
    fn gauge_set(&mut self, name: &str, value: u64) {
        self.inner.gauge_set(name, value)
    }
    fn histogram_record(&mut self, name: &str, value: u64) {
        self.inner.histogram_record(name, value)
    }
    fn env(&self, name: &str) -> Option<String> {
        self.inner.env(name)
    }
}
