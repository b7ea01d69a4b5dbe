//! miroir-devnode: a Meilisearch v1.50-compatible emulator with fault injection.
//!
//! One process hosts N independent nodes on their own loopback ports plus a control listener.
//! See `server.rs` for the control API and `routes.rs` for the Meilisearch routes.

pub mod auth;
pub mod documents;
pub mod embedders;
pub mod errors;
pub mod export;
pub mod faults;
pub mod filter;
pub mod jsoncheck;
pub mod node;
pub mod normalize;
pub mod routes;
pub mod server;
pub mod settings;
pub mod tasks;
pub mod timefmt;

#[cfg(test)]
mod settings_tests;

use std::sync::Arc;

use serde_json::json;

/// What to start.
#[derive(Clone, Debug, Default)]
pub struct Config {
    pub nodes: usize,
    pub master_key: Option<String>,
    pub task_ms: u64,
    /// Fixed node ports (else ephemeral).
    pub ports: Option<Vec<u16>>,
    /// Fixed control port (else ephemeral).
    pub control_port: Option<u16>,
}

/// A started fleet. Its listeners and workers run on the current tokio runtime.
pub struct Devnode {
    pub control_port: u16,
    pub fleet: Arc<server::Fleet>,
}

impl Devnode {
    pub fn node_ports(&self) -> &[u16] {
        &self.fleet.ports
    }

    /// The ready line: `{"control": P, "nodes": [{"id": "node-0", "port": P}, ...]}`.
    pub fn ready_json(&self) -> String {
        let nodes: Vec<_> =
            self.fleet.nodes.iter().zip(&self.fleet.ports).map(|(n, p)| json!({"id": n.id, "port": p})).collect();
        json!({"control": self.control_port, "nodes": nodes}).to_string()
    }
}

/// Binds every listener, then spawns the servers and task workers.
pub async fn start(config: Config) -> std::io::Result<Devnode> {
    let count = config.ports.as_ref().map_or(config.nodes, Vec::len);
    let mut listeners = Vec::with_capacity(count);
    let mut ports = Vec::with_capacity(count);
    let mut nodes = Vec::with_capacity(count);
    for i in 0..count {
        let wanted = config.ports.as_ref().and_then(|p| p.get(i).copied()).unwrap_or(0);
        let listener = server::bind(wanted).await?;
        ports.push(listener.local_addr()?.port());
        listeners.push(listener);
        nodes.push(node::Node::new(format!("node-{i}"), config.master_key.clone(), config.task_ms));
    }
    let control = server::bind(config.control_port.unwrap_or(0)).await?;
    let control_port = control.local_addr()?.port();
    let fleet = Arc::new(server::Fleet { nodes, ports });
    for ((node, listener), port) in fleet.nodes.iter().zip(listeners).zip(fleet.ports.iter().copied()) {
        tokio::spawn(server::run_node_listener(node.clone(), port, listener));
        tokio::spawn(node.clone().run_worker());
    }
    tokio::spawn(server::run_control(fleet.clone(), control));
    Ok(Devnode { control_port, fleet })
}
