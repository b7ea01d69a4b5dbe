//! What the HTTP contexts of one VM share with its root context: the engine and the host
//! bindings, configured in `on_configure` (None before). A VM is single-threaded: Rc + RefCell.

use std::cell::RefCell;
use std::rc::Rc;

use super::host::WasmHost;
use crate::core::engine::Engine;

pub struct Shared {
    pub engine: Engine,
    pub host: WasmHost,
}

pub type SharedRef = Rc<RefCell<Option<Shared>>>;
