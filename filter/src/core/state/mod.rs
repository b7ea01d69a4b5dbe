//! Everything the filter keeps in shared state, and the one seam through which the engine
//! reaches it (docs/architecture.md §5): the key layout (`keys`), the records (`records`, read back by `from_json`), typed shared-data
//! access (`store`, `index_store` and this VM's copy of its hot records, `hot_cache`, `queue`), the lease rules (`lease`), and the ledger — the
//! domain operations whose answers may come later (`ledger`), over shared data (`shared_data`),
//! over etcd for many gateways (`etcd`, with `txn_host` and `etcd_wire`) and, for tests, answering late and out of order (`delayed`) or through callouts like an
//! external store (`by_callout`), and an in-memory etcd behind its JSON gateway (`fake_etcd`).

pub mod keys;
pub mod records;
pub mod from_json;
pub mod store;
pub mod index_store;
pub mod hot_cache;
pub mod queue;
pub mod lease;
pub mod task_change;
pub mod ledger;
pub mod shared_data;
pub mod etcd_wire;
pub mod txn_host;
pub mod etcd;
#[cfg(test)]
pub mod delayed;
#[cfg(test)]
pub mod by_callout;
#[cfg(test)]
pub mod fake_etcd;
