//! The hostcalls whose SDK wrappers can turn a host answer into a VM-killing panic, bound directly.
//!
//! The SDK's `get_map_value` unwraps `String::from_utf8` (a header byte >= 0x80 traps the VM), and
//! its map, buffer, shared-data and local-reply wrappers panic on any status they do not expect —
//! which Envoy does return, e.g. `BadArgument` for the response headers of a callout that failed
//! without a response (reset, buffer limit, cluster gone). Here reads return bytes and every
//! status is a value. (`dispatch_http_call` stays on the SDK: it registers the callout with the
//! SDK's dispatcher, and its wrapper already returns the statuses Envoy gives.)

use std::ptr::{null, null_mut};

use proxy_wasm::types::{BufferType, MapType};

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
}

const STATUS_OK: u32 = 0;
const STATUS_NOT_FOUND: u32 = 1;
pub const STATUS_CAS_MISMATCH: u32 = 8;

fn status(code: u32) -> Result<(), u32> {
    if code == STATUS_OK {
        Ok(())
    } else {
        Err(code)
    }
}

/// Takes ownership of memory the host filled through the SDK's `proxy_on_memory_allocate`, which
/// allocates exactly `size` bytes (a boxed slice), so capacity equals length.
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
pub fn header_bytes(map: MapType, name: &str) -> Result<Option<Vec<u8>>, u32> {
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
pub fn header_pairs(map: MapType) -> Result<header_map::Pairs, u32> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: as for `header_bytes`.
    status(unsafe { proxy_get_header_map_pairs(map as u32, &mut data, &mut size) })?;
    header_map::decode(&unsafe { take(data, size) }).ok_or(u32::MAX)
}

/// Up to `max_size` bytes of a buffer from its start: `Ok(None)` when there is no such buffer.
pub fn buffer_bytes(buffer: BufferType, max_size: usize) -> Result<Option<Vec<u8>>, u32> {
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
pub fn set_header(map: MapType, name: &str, value: Option<&str>) -> Result<(), u32> {
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

