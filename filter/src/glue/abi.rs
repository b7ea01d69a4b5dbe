//! The proxy-wasm hostcalls the filter makes, bound directly (ABI 0.2.1, `env` imports).
//!
//! Every call returns the host's status as a value: nothing here can panic on an answer the host
//! gives. (The SDK's wrappers unwrap or panic on statuses they do not expect: a header byte of
//! 0x80 or more failed its UTF-8 unwrap and trapped the VM, and Envoy does answer `BadArgument`
//! for the response headers of a callout that failed without a response.) Reads return bytes.

use std::ptr::{null, null_mut};

use crate::core::header_map;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_get_header_map_pairs(map_type: u32, return_map_data: *mut *mut u8, return_map_size: *mut usize) -> u32;
    #[allow(clippy::too_many_arguments)]
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(key_data: *const u8, key_size: usize, value_data: *const u8, value_size: usize, cas: u32) -> u32;
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_log_level(return_level: *mut u32) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_property(path_data: *const u8, path_size: usize, return_value_data: *mut *mut u8, return_value_size: *mut usize) -> u32;
    fn proxy_register_shared_queue(name_data: *const u8, name_size: usize, return_id: *mut u32) -> u32;
    fn proxy_resolve_shared_queue(vm_id_data: *const u8, vm_id_size: usize, name_data: *const u8, name_size: usize, return_id: *mut u32) -> u32;
    fn proxy_enqueue_shared_queue(queue_id: u32, value_data: *const u8, value_size: usize) -> u32;
    fn proxy_dequeue_shared_queue(queue_id: u32, return_value_data: *mut *mut u8, return_value_size: *mut usize) -> u32;
    #[allow(clippy::too_many_arguments)]
    fn proxy_http_call(
        upstream_data: *const u8,
        upstream_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        body_data: *const u8,
        body_size: usize,
        trailers_data: *const u8,
        trailers_size: usize,
        timeout_ms: u32,
        return_token: *mut u32,
    ) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_define_metric(metric_type: u32, name_data: *const u8, name_size: usize, return_id: *mut u32) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
}

/// A header map, by the ABI's number for it.
#[derive(Clone, Copy)]
pub enum Headers {
    Request = 0,
    Response = 2,
    CallResponse = 6,
}

/// A buffer, by the ABI's number for it.
#[derive(Clone, Copy)]
pub enum Buffer {
    RequestBody = 0,
    CallResponseBody = 4,
    PluginConfiguration = 7,
}

/// A metric's kind, by the ABI's number for it.
#[derive(Clone, Copy)]
pub enum MetricKind {
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
}

const STATUS_OK: u32 = 0;
const STATUS_NOT_FOUND: u32 = 1;
const STATUS_EMPTY: u32 = 7;
pub const STATUS_CAS_MISMATCH: u32 = 8;

fn status(code: u32) -> Result<(), u32> {
    if code == STATUS_OK {
        Ok(())
    } else {
        Err(code)
    }
}

/// Takes ownership of memory the host filled through `proxy_on_memory_allocate` (`exports.rs`),
/// which allocates exactly `size` bytes (a boxed slice), so capacity equals length.
///
/// # Safety
/// `data` is null or was returned by the host for `size` bytes in this call.
unsafe fn take(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() {
        Vec::new()
    } else {
        Vec::from_raw_parts(data, size, size)
    }
}

/// A header's value as bytes: `Ok(None)` when absent, `Err(status)` when the map cannot be read.
pub fn header_bytes(map: Headers, name: &str) -> Result<Option<Vec<u8>>, u32> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: the pointers are valid for the call; the host writes them only on Ok.
    let status = unsafe { proxy_get_header_map_value(map as u32, name.as_ptr(), name.len(), &mut data, &mut size) };
    match status {
        STATUS_OK => Ok(Some(unsafe { take(data, size) })),
        STATUS_NOT_FOUND => Ok(None),
        other => Err(other),
    }
}

/// Every header of a map, in one host call: names and values as bytes. `Err(status)` when the
/// map cannot be read, or its encoding is not what it should be (`u32::MAX`).
pub fn header_pairs(map: Headers) -> Result<header_map::HeaderMap, u32> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: as for `header_bytes`.
    status(unsafe { proxy_get_header_map_pairs(map as u32, &mut data, &mut size) })?;
    header_map::HeaderMap::decode(unsafe { take(data, size) }).ok_or(u32::MAX)
}

/// Up to `max_size` bytes of a buffer from its start: `Ok(None)` when there is no such buffer.
pub fn buffer_bytes(buffer: Buffer, max_size: usize) -> Result<Option<Vec<u8>>, u32> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: as above.
    let status = unsafe { proxy_get_buffer_bytes(buffer as u32, 0, max_size, &mut data, &mut size) };
    match status {
        STATUS_OK => Ok(Some(unsafe { take(data, size) })),
        STATUS_NOT_FOUND => Ok(None),
        other => Err(other),
    }
}

/// Set (Some) or remove (None) a header.
pub fn set_header(map: Headers, name: &str, value: Option<&str>) -> Result<(), u32> {
    // SAFETY: the pointers are valid for the call; the host only reads them.
    status(unsafe {
        match value {
            Some(v) => proxy_replace_header_map_value(map as u32, name.as_ptr(), name.len(), v.as_ptr(), v.len()),
            None => proxy_remove_header_map_value(map as u32, name.as_ptr(), name.len()),
        }
    })
}

/// Answer the current HTTP context's request locally.
pub fn send_local_response(status_code: u16, headers: &[(String, String)], body: &[u8]) -> Result<(), u32> {
    let map = header_map::encode(headers);
    // SAFETY: as above; no status details, no gRPC status (-1).
    status(unsafe {
        proxy_send_local_response(
            u32::from(status_code),
            null(),
            0,
            body.as_ptr(),
            body.len(),
            map.as_ptr(),
            map.len(),
            -1,
        )
    })
}

/// A shared-data value and its CAS token; `(None, None)` when the key does not exist.
pub fn get_shared_data(key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), u32> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    let mut cas: u32 = 0;
    // SAFETY: as for `header_bytes`.
    let code = unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) };
    match code {
        STATUS_OK => {
            let value = if data.is_null() { None } else { Some(unsafe { take(data, size) }) };
            Ok((value, (cas != 0).then_some(cas)))
        }
        STATUS_NOT_FOUND => Ok((None, None)),
        other => Err(other),
    }
}

/// Write a shared-data value; `cas` None writes whatever is there. `Err(STATUS_CAS_MISMATCH)`
/// when the key holds another token.
pub fn set_shared_data(key: &str, value: &[u8], cas: Option<u32>) -> Result<(), u32> {
    // SAFETY: as above.
    status(unsafe { proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas.unwrap_or(0)) })
}


/// Logs `message` at `level` (the ABI's 0 = trace … 5 = critical). A failure is dropped: there is
/// nowhere else to say it.
pub fn log(level: u32, message: &str) {
    // SAFETY: the pointer is valid for the call; the host only reads it.
    let _ = unsafe { proxy_log(level, message.as_ptr(), message.len()) };
}

/// Envoy's log level for wasm (the ABI's 0 = trace … 5 = critical).
pub fn log_level() -> Result<u32, u32> {
    let mut level = 0;
    // SAFETY: the pointer is valid for the call.
    status(unsafe { proxy_get_log_level(&mut level) })?;
    Ok(level)
}

/// Envoy's wall clock, in nanoseconds since the epoch.
pub fn now_ns() -> Result<u64, u32> {
    let mut ns = 0;
    // SAFETY: as above.
    status(unsafe { proxy_get_current_time_nanoseconds(&mut ns) })?;
    Ok(ns)
}

/// The root context's tick period (0 stops the ticks).
pub fn set_tick_period_ms(period: u32) -> Result<(), u32> {
    // SAFETY: no pointers.
    status(unsafe { proxy_set_tick_period_milliseconds(period) })
}

/// A property of the plugin or stream, by its path (`["plugin_vm_id"]`): `Ok(None)` when unset.
pub fn property(path: &[&str]) -> Result<Option<Vec<u8>>, u32> {
    let joined = path.join("\0");
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: as for `header_bytes`.
    let code = unsafe { proxy_get_property(joined.as_ptr(), joined.len(), &mut data, &mut size) };
    match code {
        STATUS_OK => Ok(Some(unsafe { take(data, size) })),
        STATUS_NOT_FOUND => Ok(None),
        other => Err(other),
    }
}

/// Registers this VM's queue `name`, to be woken through `proxy_on_queue_ready`.
pub fn register_queue(name: &str) -> Result<u32, u32> {
    let mut id = 0;
    // SAFETY: as above.
    status(unsafe { proxy_register_shared_queue(name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

/// The queue `name` registered by a VM of `vm_id`: `Ok(None)` when there is none.
pub fn resolve_queue(vm_id: &str, name: &str) -> Result<Option<u32>, u32> {
    let mut id = 0;
    // SAFETY: as above.
    match unsafe { proxy_resolve_shared_queue(vm_id.as_ptr(), vm_id.len(), name.as_ptr(), name.len(), &mut id) } {
        STATUS_OK => Ok(Some(id)),
        STATUS_NOT_FOUND => Ok(None),
        other => Err(other),
    }
}

pub fn enqueue(queue: u32, value: &[u8]) -> Result<(), u32> {
    // SAFETY: as above.
    status(unsafe { proxy_enqueue_shared_queue(queue, value.as_ptr(), value.len()) })
}

/// The next item of `queue`: `Ok(None)` when it is empty.
pub fn dequeue(queue: u32) -> Result<Option<Vec<u8>>, u32> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: as for `header_bytes`.
    match unsafe { proxy_dequeue_shared_queue(queue, &mut data, &mut size) } {
        STATUS_OK => Ok(Some(unsafe { take(data, size) })),
        STATUS_EMPTY => Ok(None),
        other => Err(other),
    }
}

/// Sends an HTTP call to `cluster`; its answer comes to `proxy_on_http_call_response` with the
/// returned token, on the context that was effective here.
pub fn http_call(cluster: &str, headers: &[(String, String)], body: Option<&[u8]>, timeout_ms: u32) -> Result<u32, u32> {
    let map = header_map::encode(headers);
    let no_trailers = header_map::encode(&[]);
    let body = body.unwrap_or_default();
    let mut token = 0;
    // SAFETY: as above; an empty body is sent as none.
    status(unsafe {
        proxy_http_call(
            cluster.as_ptr(),
            cluster.len(),
            map.as_ptr(),
            map.len(),
            if body.is_empty() { null() } else { body.as_ptr() },
            body.len(),
            no_trailers.as_ptr(),
            no_trailers.len(),
            timeout_ms,
            &mut token,
        )
    })?;
    Ok(token)
}

/// Makes `context_id` the context later hostcalls act on (a local reply, a call's owner).
pub fn set_effective_context(context_id: u32) -> Result<(), u32> {
    // SAFETY: no pointers.
    status(unsafe { proxy_set_effective_context(context_id) })
}

pub fn define_metric(kind: MetricKind, name: &str) -> Result<u32, u32> {
    let mut id = 0;
    // SAFETY: as above.
    status(unsafe { proxy_define_metric(kind as u32, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

pub fn increment_metric(id: u32, delta: i64) -> Result<(), u32> {
    // SAFETY: no pointers.
    status(unsafe { proxy_increment_metric(id, delta) })
}

pub fn record_metric(id: u32, value: u64) -> Result<(), u32> {
    // SAFETY: no pointers.
    status(unsafe { proxy_record_metric(id, value) })
}
