//! The host-free core. Nothing in here may import the proxy-wasm SDK: everything the host provides
//! (shared data, callouts, clock, metrics, logs) comes in through the `host::Host` trait.

pub mod canonical;
pub mod config;
pub mod errors;
pub mod fingerprint;
pub mod route;
pub mod host;
pub mod proposal;
pub mod records;
pub mod store;
pub mod index_store;
pub mod queue;
pub mod time;
pub mod metrics;
pub mod job;
pub mod engine;
pub mod tasks;
pub mod admin;
pub mod admin_views;
pub mod headers;
pub mod request;
pub mod front;
pub mod http_flow;
#[cfg(test)]
mod fake_host;
#[cfg(test)]
mod engine_tests;
#[cfg(test)]
mod http_flow_tests;
