//! Times the filter's fingerprint natively on settings bodies given as files.
//!
//! `fingerprint-native [--min-seconds S] FILE...` prints one JSON object per file on stdout:
//! `{"file","bytes","iterations","parse_ns","fingerprint_ns","parse_and_fingerprint_ns","fingerprint"}`
//! where each `*_ns` is the median over the iterations. `fingerprint_ns` is
//! `miroir_filter::core::fingerprint::fingerprint` on an already parsed value (canonical form +
//! SHA-256); `parse_and_fingerprint_ns` adds `serde_json` parsing, which is what the filter does
//! with each node's read-back during verify.

use std::hint::black_box;
use std::time::{Duration, Instant};

use miroir_filter::core::fingerprint::fingerprint;
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
        let parse_ns = median_ns(min_time, || {
            let parsed: Result<Value, _> = serde_json::from_slice(black_box(&body));
            black_box(parsed).is_ok()
        });
        let fingerprint_ns = median_ns(min_time, || !black_box(fingerprint(black_box(&value))).is_empty());
        let both_ns = median_ns(min_time, || {
            let parsed: Result<Value, _> = serde_json::from_slice(black_box(&body));
            parsed.map(|v| fingerprint(&v)).is_ok_and(|f| !black_box(f).is_empty())
        });
        let line = serde_json::json!({
            "file": file,
            "bytes": body.len(),
            "iterations": both_ns.1,
            "parse_ns": parse_ns.0,
            "fingerprint_ns": fingerprint_ns.0,
            "parse_and_fingerprint_ns": both_ns.0,
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
