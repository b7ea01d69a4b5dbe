//! The host-free core. Nothing in here may import `proxy_wasm`: everything the host provides
//! (shared data, callouts, clock, metrics, logs) comes in through the `host::Host` trait.

pub mod canonical;
pub mod config;
pub mod errors;
pub mod fingerprint;
pub mod route;
