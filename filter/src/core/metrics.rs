//! Metric names. The proxy-wasm ABI has no labels, so labels are encoded in the name in a fixed
//! order — `<metric>[.index.<uid>][.node.<id>][.result.<result>]` — and `envoy/stats_tags.yaml`
//! turns them back into Prometheus labels. Envoy prefixes every name with `wasmcustom.`.
//! Index uids and node ids never contain a dot (both are `[A-Za-z0-9_-]`).

pub const SETTINGS_VERSION: &str = "miroir_settings_version";
pub const BROADCAST_PHASE: &str = "miroir_settings_broadcast_phase";
pub const HASH_MISMATCH_TOTAL: &str = "miroir_settings_hash_mismatch_total";
pub const DRIFT_DETECTED_TOTAL: &str = "miroir_settings_drift_detected_total";
pub const DRIFT_REPAIR_TOTAL: &str = "miroir_settings_drift_repair_total";
pub const DIVERGENCE: &str = "miroir_settings_divergence";
pub const FROZEN_WRITE_REJECTED_TOTAL: &str = "miroir_frozen_write_rejected_total";
pub const BROADCAST_TOTAL: &str = "miroir_settings_broadcast_total";
pub const BROADCAST_DURATION_MS: &str = "miroir_settings_broadcast_duration_ms";
pub const CALLOUT_ERRORS_TOTAL: &str = "miroir_callout_errors_total";
/// Verify: bytes of node settings read back and fingerprinted, and the time the VM spent on them
/// (canonical form, SHA-256, the check of the proposed keys), so rate(bytes) / rate(us) is the
/// fingerprint's throughput in this Envoy.
pub const VERIFY_FINGERPRINT_BYTES_TOTAL: &str = "miroir_verify_fingerprint_bytes_total";
pub const VERIFY_FINGERPRINT_US_TOTAL: &str = "miroir_verify_fingerprint_us_total";
/// Mirror mode: mirrored writes by outcome (enqueued, answered, refused, unreachable).
pub const MIRROR_WRITES_TOTAL: &str = "miroir_mirror_writes_total";
/// Mirror mode: times a node was found out of sync for an index (an alert).
pub const OUT_OF_SYNC_TOTAL: &str = "miroir_node_out_of_sync_total";
/// etcd backend: 1 while this gateway cannot reach etcd (or etcd has no quorum): its writes get
/// 503 and its view stops moving. 0 once etcd answers.
pub const STATE_UNAVAILABLE: &str = "miroir_state_unavailable";

pub fn for_index(metric: &str, index: &str) -> String {
    format!("{metric}.index.{index}")
}

pub fn for_index_result(metric: &str, index: &str, result: &str) -> String {
    format!("{metric}.index.{index}.result.{result}")
}

pub fn for_result(metric: &str, result: &str) -> String {
    format!("{metric}.result.{result}")
}

pub fn for_index_node(metric: &str, index: &str, node: &str) -> String {
    format!("{metric}.index.{index}.node.{node}")
}

pub fn for_node(metric: &str, node: &str) -> String {
    format!("{metric}.node.{node}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_order_is_fixed() {
        assert_eq!(for_index(SETTINGS_VERSION, "movies_v2-x"), "miroir_settings_version.index.movies_v2-x");
        assert_eq!(
            for_index_result(BROADCAST_TOTAL, "m", "succeeded"),
            "miroir_settings_broadcast_total.index.m.result.succeeded"
        );
        assert_eq!(for_node(CALLOUT_ERRORS_TOTAL, "node-0"), "miroir_callout_errors_total.node.node-0");
    }
}
