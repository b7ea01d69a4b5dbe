//! Thin glue between the proxy-wasm ABI and the host-free core: the functions Envoy calls
//! (`exports`), the hostcalls the filter makes (`abi`), a root context per VM that owns the
//! engine and its callouts, and an HTTP context per request that asks the core what to do. All
//! logic lives in `crate::core`.

mod abi;
mod exports;
mod host;
mod http;
mod logger;
mod root;
mod shared;

#[cfg(target_os = "wasi")]
extern "C" {
    fn __wasm_call_ctors();
}

/// The VM's start (a WASI reactor's entry point, called once before any callback).
#[no_mangle]
pub extern "C" fn _initialize() {
    // SAFETY: the linker's constructors, run once, first, as a reactor must.
    #[cfg(target_os = "wasi")]
    unsafe {
        __wasm_call_ctors();
    }
    logger::install();
    std::panic::set_hook(Box::new(|info| {
        // A panic traps the VM; say where before it goes.
        abi::log(5, &format!("miroir: panic: {info}"));
    }));
}
