//! The two host reads the SDK's wrappers would turn into a VM-killing panic, bound directly.
//!
//! The SDK's `get_map_value` unwraps `String::from_utf8` (a header byte >= 0x80 traps the VM), and
//! every map and buffer wrapper panics on a status other than Ok/NotFound — which Envoy returns,
//! e.g. `BadArgument` for the response headers of a callout that failed without a response (reset,
//! buffer limit, cluster gone). Here both reads return bytes and every status is a value.

use std::ptr::null_mut;

use proxy_wasm::types::{BufferType, MapType};

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
}

const STATUS_OK: u32 = 0;
const STATUS_NOT_FOUND: u32 = 1;

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
