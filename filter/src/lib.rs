//! miroir-envoy: a proxy-wasm filter that makes Meilisearch settings changes safe across a fleet.
//!
//! `core` is host-free (never touches the proxy-wasm ABI) and is tested natively; `glue` binds it to the
//! proxy-wasm ABI and is compiled only for wasm targets.

pub mod core;

#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
mod glue;
