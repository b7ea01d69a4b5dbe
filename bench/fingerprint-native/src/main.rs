//! Times the filter's fingerprint natively on settings bodies given as files.
//!
//! `fingerprint-native [--min-seconds S] FILE...` prints one JSON object per file on stdout:
//! `{"file","bytes","iterations","verify_ns","text_fingerprint_ns","value_parse_and_fingerprint_ns","fingerprint"}`
//! where each `*_ns` is the median over the iterations:
//! - `verify_ns` is what the filter does with one node's read-back during the bench's verify:
//!   `read_text` (canonical form and top-level members, one pass), SHA-256 of the canonical form
//!   and `Proposal::holds_in` for the bench's one-key PATCH (`searchCutoffMs`);
//! - `text_fingerprint_ns` is `fingerprint_bytes` alone;
//! - `value_parse_and_fingerprint_ns` is the way it was done before: `serde_json` parsing into a
//!   `Value`, then `fingerprint` of the value. Kept to show what reading the text saves.

use std::hint::black_box;
use std::time::{Duration, Instant};

use miroir_filter::core::canonical_text::read_text;
use miroir_filter::core::fingerprint::{fingerprint, fingerprint_bytes, fingerprint_canonical};
use miroir_filter::core::proposal::Proposal;
use serde_json::Value;

const MIN_ITERATIONS: usize = 5;
const MAX_ITERATIONS: usize = 10_000;

fn main() {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => {}
        Err(message) => {
            eprintln!("fingerprint-native: {message}");
            std::process::exit(2);
        }
    }
}

fn run(args: Vec<String>) -> Result<(), String> {
    let mut min_time = Duration::from_millis(500);
    let mut files = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        if arg == "--min-seconds" {
            let value = args.next().ok_or("--min-seconds needs a value")?;
            let seconds: f64 = value.parse().map_err(|_| format!("bad --min-seconds {value}"))?;
            min_time = Duration::from_secs_f64(seconds);
        } else {
            files.push(arg);
        }
    }
    if files.is_empty() {
        return Err("usage: fingerprint-native [--min-seconds S] FILE...".into());
    }
    for file in files {
        let body = std::fs::read(&file).map_err(|e| format!("{file}: {e}"))?;
        let value: Value = serde_json::from_slice(&body).map_err(|e| format!("{file}: not JSON: {e}"))?;
        let proposal = Proposal::Patch(serde_json::json!({"searchCutoffMs": 150}).as_object().cloned().unwrap_or_default());
        let verify_ns = median_ns(min_time, || {
            read_text(black_box(&body)).is_ok_and(|read| {
                let digest = fingerprint_canonical(&read.canonical);
                let holds = proposal.holds_in(&read);
                !black_box(digest).is_empty() && black_box(holds) == holds
            })
        });
        let text_ns = median_ns(min_time, || fingerprint_bytes(black_box(&body)).is_ok_and(|f| !black_box(f).is_empty()));
        let value_ns = median_ns(min_time, || {
            let parsed: Result<Value, _> = serde_json::from_slice(black_box(&body));
            parsed.map(|v| fingerprint(&v)).is_ok_and(|f| !black_box(f).is_empty())
        });
        let line = serde_json::json!({
            "file": file,
            "bytes": body.len(),
            "iterations": verify_ns.1,
            "verify_ns": verify_ns.0,
            "text_fingerprint_ns": text_ns.0,
            "value_parse_and_fingerprint_ns": value_ns.0,
            "fingerprint": fingerprint(&value),
        });
        println!("{line}");
    }
    Ok(())
}

/// Runs `work` at least `MIN_ITERATIONS` times and until `min_time` has passed (at most
/// `MAX_ITERATIONS`); returns the median duration in nanoseconds and the iteration count.
fn median_ns(min_time: Duration, mut work: impl FnMut() -> bool) -> (u128, usize) {
    let started = Instant::now();
    let mut samples: Vec<u128> = Vec::new();
    while samples.len() < MIN_ITERATIONS || (started.elapsed() < min_time && samples.len() < MAX_ITERATIONS) {
        let t = Instant::now();
        let ok = work();
        samples.push(t.elapsed().as_nanos());
        if !ok {
            // Cannot happen on bodies that parsed above; keep the sample anyway, the run is timed.
            eprintln!("fingerprint-native: an iteration produced no fingerprint");
        }
    }
    samples.sort_unstable();
    let count = samples.len();
    (samples.get(count / 2).copied().unwrap_or_default(), count)
}
