//! Headers the filter stamps on responses under `/indexes/{uid}`: the index's committed settings
//! version, and a warning while a job on it is under way (or it is frozen).

use super::host::Host;
use super::state::index_store::read_hot;
use super::state::records::HotRecord;

pub const HEADER_VERSION: &str = "x-miroir-settings-version";
pub const HEADER_INCONSISTENT: &str = "x-miroir-settings-inconsistent";

/// The headers for an index in state `hot`.
pub fn for_hot(hot: HotRecord) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if hot.version > 0 {
        out.push((HEADER_VERSION, hot.version.to_string()));
    }
    if hot.inconsistent {
        out.push((HEADER_INCONSISTENT, "true".to_string()));
    }
    out
}

/// The headers for `index` as it stands now.
pub fn response_headers(host: &dyn Host, index: &str) -> Vec<(&'static str, String)> {
    for_hot(read_hot(host, index))
}
