//! Thin glue between the proxy-wasm ABI and the host-free core: a root context per worker VM that
//! owns the broadcast engine and its callouts, and an HTTP context per request that asks the core
//! what to do. All logic lives in `crate::core`.

mod abi;
mod host;
mod http;
mod root;
mod shared;

use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Debug);
    std::panic::set_hook(Box::new(|info| {
        // A panic traps the VM; say where before it goes.
        let _ = proxy_wasm::hostcalls::log(LogLevel::Critical, &format!("miroir: panic: {info}"));
    }));
    proxy_wasm::set_root_context(|context_id| Box::new(root::Root::new(context_id)));
}}
