//! What the core needs from the proxy host, as a trait, so the core never touches the proxy-wasm SDK.
//!
//! The wasm glue implements it over the Result-returning hostcalls; native tests implement it with
//! a fake that keeps state (shared data with Envoy's exact CAS rules, recorded callouts, metrics).

/// Shared-data failures the core reacts to. Anything else the host reports becomes `Other`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharedError {
    /// The key exists and its CAS token differs from the one passed.
    CasMismatch,
    Other(String),
}

/// An outgoing HTTP call to one Envoy cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callout {
    pub cluster: String,
    pub method: String,
    /// Path with query, as sent on the wire.
    pub path: String,
    pub authority: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout_ms: u64,
}

/// What came back from a callout. `status == None` means the call failed before any response
/// (reset, connection refused, timeout reported as a reset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalloutResponse {
    pub status: Option<u16>,
    pub body: Vec<u8>,
}

/// A reply the core wants delivered to a paused client request of this VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why a worker is woken: work of its own to start, or the propose outcome of a write whose
/// client waits on it (`Engine::outcome_for`: that client's task is read then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    Work,
    Outcome { task_uid: u64 },
}

impl Wake {
    /// The wake-up token on the worker's shared queue: `w`, or `o` and the task uid.
    pub fn token(self) -> Vec<u8> {
        match self {
            Wake::Work => b"w".to_vec(),
            Wake::Outcome { task_uid } => format!("o{task_uid}").into_bytes(),
        }
    }

    /// A token read back from the queue; None for one this filter did not write.
    pub fn from_token(token: &[u8]) -> Option<Wake> {
        match token.split_first()? {
            (b'w', []) => Some(Wake::Work),
            (b'o', uid) => Some(Wake::Outcome { task_uid: std::str::from_utf8(uid).ok()?.parse().ok()? }),
            _ => None,
        }
    }
}

pub trait Host {
    /// Wall-clock milliseconds since the Unix epoch (shared by every worker).
    fn now_ms(&self) -> u64;
    /// Wall-clock microseconds, to time work done inside one callback (the host's clock has
    /// nanoseconds; a host without a finer clock keeps the default).
    fn now_us(&self) -> u64 {
        self.now_ms().saturating_mul(1000)
    }
    /// `(value, cas)`; a missing key is `(None, None)`. An empty value counts as missing: the ABI
    /// cannot delete, so "removed" keys hold an empty value.
    fn shared_get(&self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), SharedError>;
    /// Envoy's rules: cas `None` writes unconditionally; a missing key is written whatever cas is.
    fn shared_set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SharedError>;
    /// Dispatch from the root context; returns the token the response will carry.
    fn dispatch(&mut self, call: &Callout) -> Result<u32, String>;
    /// Deliver a reply to a paused HTTP context of this VM. Err when the context is gone.
    fn reply(&mut self, http_context_id: u32, reply: &LocalReply) -> Result<(), String>;
    /// Wake the root context of the worker `worker_id` (possibly this one) soon, for `why`.
    fn wake(&mut self, worker_id: &str, why: Wake);
    fn counter_add(&mut self, name: &str, delta: u64);
    fn gauge_set(&mut self, name: &str, value: u64);
    fn histogram_record(&mut self, name: &str, value: u64);
    /// An environment variable of the VM (Envoy `host_env_keys`).
    fn env(&self, name: &str) -> Option<String>;
}

#[cfg(test)]
mod tests {
    use super::Wake;

    #[test]
    fn a_wake_up_reads_back_as_it_was_sent_and_anything_else_as_nothing() {
        for why in [Wake::Work, Wake::Outcome { task_uid: 0 }, Wake::Outcome { task_uid: u64::MAX }] {
            assert_eq!(Wake::from_token(&why.token()), Some(why));
        }
        assert_eq!(Wake::Outcome { task_uid: 2130706432 }.token(), b"o2130706432");
        for other in [&b""[..], b"wx", b"o", b"o-1", b"o1x", b"x1", b"\xff"] {
            assert_eq!(Wake::from_token(other), None, "{other:?}");
        }
    }
}
