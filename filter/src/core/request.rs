//! What the filter reads of a client request: the head the HTTP glue hands to the core, and the
//! request headers that mean something to the filter.

pub const HEADER_MIN_VERSION: &str = "x-miroir-min-settings-version";

/// The parts of a request head the filter looks at.
#[derive(Debug, Clone, Default)]
pub struct RequestHead {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub min_settings_version: Option<String>,
    pub end_of_stream: bool,
}
