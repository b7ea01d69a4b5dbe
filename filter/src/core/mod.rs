//! The host-free core. Nothing in here may import the proxy-wasm SDK: everything the host provides
//! (shared data, callouts, clock, metrics, logs) comes in through the `host::Host` trait.

pub mod canonical;
pub mod canonical_text;
pub mod config;
pub mod errors;
pub mod fingerprint;
pub mod route;
pub mod host;
pub mod proposal;
pub mod state;
/// The records' old path, kept for the property tests (`filter/tests/prop_node_answers.rs`).
pub use state::records;
pub mod time;
pub mod sort;
pub mod sorted_map;
pub mod sorted_set;
pub mod query_params;
pub mod metrics;
pub mod job;
pub mod mirror;
pub mod engine;
pub mod tasks;
pub mod task_query;
pub mod task_list;
pub mod admin;
pub mod admin_views;
pub mod headers;
pub mod header_map;
pub mod request;
pub mod pending_write;
pub mod front;
pub mod mirrored_write;
pub mod http_flow;
#[cfg(test)]
mod fake_host;
#[cfg(test)]
mod test_world;
#[cfg(test)]
mod engine_tests;
#[cfg(test)]
mod http_flow_tests;
#[cfg(test)]
mod engine_delayed_tests;
#[cfg(test)]
mod engine_by_callout_tests;
#[cfg(test)]
mod etcd_ledger_tests;
#[cfg(test)]
mod task_query_tests;
#[cfg(test)]
mod task_list_tests;
