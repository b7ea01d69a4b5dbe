//! The functions Envoy calls (proxy-wasm ABI 0.2.1): only the callbacks the filter handles are
//! exported, since Envoy crosses into the VM for every callback a module exports — a response's
//! body chunks and trailers, for one, are never called in. Each VM has a root context per plugin
//! (usually one) and an HTTP context per request; they are kept here by id. An id the host names
//! that is not known (or a context already in a callback) is answered "continue", never a panic.

use std::cell::RefCell;
use std::mem::MaybeUninit;

use super::http::Http;
use super::root::Root;
use crate::core::http_flow::Next;
use crate::core::sorted_map::SortedMap;

#[derive(Default)]
struct Contexts {
    roots: SortedMap<u32, Root>,
    /// Boxed: a request's entry moves when an older one is removed, so it is a pointer.
    requests: SortedMap<u32, Box<Http>>,
}

thread_local! {
    static CONTEXTS: RefCell<Contexts> = RefCell::new(Contexts::default());
}

/// Runs `f` on the contexts, unless a callback already holds them (the host does not call back
/// into a VM that is in a callback, so this is defensive): then `otherwise`.
fn with<T>(otherwise: T, f: impl FnOnce(&mut Contexts) -> T) -> T {
    CONTEXTS.with(|c| match c.try_borrow_mut() {
        Ok(mut contexts) => f(&mut contexts),
        Err(_) => otherwise,
    })
}

/// Runs `f` on request `context_id`'s context; `otherwise` when there is none.
fn on_request<T>(context_id: u32, otherwise: T, f: impl FnOnce(&mut Http) -> T) -> T {
    with(None, |c| c.requests.get_mut(&context_id).map(|h| f(h))).unwrap_or(otherwise)
}

/// Runs `f` on root context `root_id`; `otherwise` when there is none.
fn on_root<T>(root_id: u32, otherwise: T, f: impl FnOnce(&mut Root) -> T) -> T {
    with(None, |c| c.roots.get_mut(&root_id).map(f)).unwrap_or(otherwise)
}

const CONTINUE: u32 = 0;
const PAUSE: u32 = 1;

fn action(next: Next) -> u32 {
    match next {
        Next::Continue => CONTINUE,
        Next::Pause => PAUSE,
    }
}

#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

/// The host's allocations in the VM (every value a hostcall returns): exactly `size` bytes, which
/// `abi::take` takes back as a `Vec` of that capacity.
#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let mut bytes: Vec<MaybeUninit<u8>> = Vec::with_capacity(size);
    // SAFETY: the capacity is `size`; MaybeUninit needs no initialization.
    unsafe { bytes.set_len(size) };
    Box::into_raw(bytes.into_boxed_slice()) as *mut u8
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(context_id: u32, root_id: u32) {
    with((), |c| {
        if root_id == 0 {
            c.roots.insert(context_id, Root::new(context_id));
        } else if let Some(root) = c.roots.get(&root_id) {
            let http = Box::new(root.new_http(context_id));
            c.requests.insert(context_id, http);
        }
    });
}

#[no_mangle]
pub extern "C" fn proxy_on_vm_start(_root_id: u32, _vm_configuration_size: usize) -> u32 {
    1
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(root_id: u32, plugin_configuration_size: usize) -> u32 {
    on_root(root_id, 0, |root| u32::from(root.on_configure(plugin_configuration_size)))
}

#[no_mangle]
pub extern "C" fn proxy_on_tick(root_id: u32) {
    on_root(root_id, (), Root::on_tick);
}

#[no_mangle]
pub extern "C" fn proxy_on_queue_ready(root_id: u32, queue_id: u32) {
    on_root(root_id, (), |root| root.on_queue_ready(queue_id));
}

/// The filter's calls all go out on a root context; an answer named for another context (never
/// expected) goes to the VM's first root, whose engine owns every call.
#[no_mangle]
pub extern "C" fn proxy_on_http_call_response(context_id: u32, token: u32, _headers: usize, body_size: usize, _trailers: usize) {
    with((), |c| {
        let root = match c.roots.contains_key(&context_id) {
            true => c.roots.get_mut(&context_id),
            false => c.roots.iter_mut().next().map(|(_, root)| root),
        };
        if let Some(root) = root {
            root.on_http_call_response(token, body_size);
        }
    });
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(context_id: u32, _headers: usize, end_of_stream: u32) -> u32 {
    on_request(context_id, CONTINUE, |h| action(h.on_request_headers(end_of_stream != 0)))
}

#[no_mangle]
pub extern "C" fn proxy_on_request_body(context_id: u32, body_size: usize, end_of_stream: u32) -> u32 {
    on_request(context_id, CONTINUE, |h| action(h.on_request_body(body_size, end_of_stream != 0)))
}

#[no_mangle]
pub extern "C" fn proxy_on_request_trailers(context_id: u32, _trailers: usize) -> u32 {
    on_request(context_id, CONTINUE, |h| action(h.on_request_trailers()))
}

#[no_mangle]
pub extern "C" fn proxy_on_response_headers(context_id: u32, _headers: usize, _end_of_stream: u32) -> u32 {
    on_request(context_id, (), Http::on_response_headers);
    CONTINUE
}

/// A request's context is gone: whatever of the engine waited on it goes too. Done here rather
/// than in `proxy_on_log`, which Envoy calls just before on the same stack: neither
/// `proxy_on_log` nor `proxy_on_done` is exported (a host takes an unexported `proxy_on_done` as
/// "done"), two crossings into the VM fewer per request.
#[no_mangle]
pub extern "C" fn proxy_on_delete(context_id: u32) {
    with((), |c| match c.requests.remove(&context_id) {
        Some(mut http) => http.on_gone(),
        None => {
            c.roots.remove(&context_id);
        }
    });
}
