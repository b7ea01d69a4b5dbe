//! Everything the filter keeps in shared state, and the one seam through which the engine
//! reaches it: the key layout (`keys`), the records (`records`), typed shared-data access
//! (`store`, `index_store`, `queue`).

pub mod keys;
pub mod records;
pub mod store;
pub mod index_store;
pub mod queue;
