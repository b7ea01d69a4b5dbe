//! The `log` crate's lines, to Envoy's log (`proxy_log`), formatted only at levels Envoy prints:
//! the host drops a line below its level, but only after the VM has formatted it and crossed out
//! with it, and the engine logs at debug on every node's answer. The level follows Envoy's (read
//! at configure and on every tick, so a change through Envoy's admin `/logging` is seen).

use super::abi;

struct EnvoyLog;

static LOGGER: EnvoyLog = EnvoyLog;

/// The ABI's levels: 0 = trace, 1 = debug, 2 = info, 3 = warn, 4 = error, 5 = critical.
fn abi_level(level: log::Level) -> u32 {
    match level {
        log::Level::Trace => 0,
        log::Level::Debug => 1,
        log::Level::Info => 2,
        log::Level::Warn => 3,
        log::Level::Error => 4,
    }
}

impl log::Log for EnvoyLog {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            abi::log(abi_level(record.level()), &record.args().to_string());
        }
    }

    fn flush(&self) {}
}

/// Installs the logger (once per VM, at its start), at info until the root context is configured:
/// Envoy allows no hostcall during `_initialize`, not even reading its level.
pub fn install() {
    // Err: already installed; the logger in place is this one.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Info);
}

/// Sets the level lines are formatted at to Envoy's own (info when it cannot be read).
pub fn follow_envoys_level() {
    let filter = match abi::log_level() {
        Ok(0) => log::LevelFilter::Trace,
        Ok(1) => log::LevelFilter::Debug,
        Ok(3) => log::LevelFilter::Warn,
        Ok(4) => log::LevelFilter::Error,
        Ok(5) => log::LevelFilter::Off,
        _ => log::LevelFilter::Info,
    };
    log::set_max_level(filter);
}
