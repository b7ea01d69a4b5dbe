//! `devnode --nodes N [--master-key KEY] [--task-ms MS] [--ready-file PATH]
//!          [--ports p1,p2,...] [--control-port P]`
//!
//! Prints one JSON ready line once every listener is bound (and writes it to --ready-file),
//! then serves until SIGTERM/SIGINT.

use std::io::Write;

use miroir_devnode::{start, Config};

const USAGE: &str = "usage: devnode --nodes N [--master-key KEY] [--task-ms MS] [--ready-file PATH] [--ports p1,p2,...] [--control-port P]";

fn parse_args(args: &[String]) -> Result<(Config, Option<String>), String> {
    let mut config = Config { nodes: 1, ..Config::default() };
    let mut nodes_given = None;
    let mut ready_file = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--nodes" => nodes_given = Some(value()?.parse::<usize>().map_err(|e| format!("--nodes: {e}"))?),
            "--master-key" => config.master_key = Some(value()?),
            "--task-ms" => config.task_ms = value()?.parse().map_err(|e| format!("--task-ms: {e}"))?,
            "--ready-file" => ready_file = Some(value()?),
            "--control-port" => {
                config.control_port = Some(value()?.parse().map_err(|e| format!("--control-port: {e}"))?)
            }
            "--ports" => {
                let ports: Result<Vec<u16>, _> = value()?.split(',').map(|p| p.trim().parse::<u16>()).collect();
                config.ports = Some(ports.map_err(|e| format!("--ports: {e}"))?);
            }
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    match (nodes_given, &config.ports) {
        (Some(n), Some(p)) if n != p.len() => return Err(format!("--nodes {n} but {} --ports", p.len())),
        (Some(n), _) => config.nodes = n,
        (None, Some(p)) => config.nodes = p.len(),
        (None, None) => {}
    }
    if config.nodes == 0 {
        return Err("--nodes must be at least 1".to_string());
    }
    Ok((config, ready_file))
}

async fn wait_for_shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (config, ready_file) = match parse_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
    runtime.block_on(async move {
        let devnode = match start(config).await {
            Ok(d) => d,
            Err(e) => {
                eprintln!("devnode: could not bind: {e}");
                std::process::exit(1);
            }
        };
        let line = devnode.ready_json();
        if let Some(path) = ready_file {
            // Write then rename so a poller never reads a partial line.
            let tmp = format!("{path}.tmp");
            if let Err(e) = std::fs::write(&tmp, format!("{line}\n")).and_then(|_| std::fs::rename(&tmp, &path)) {
                eprintln!("devnode: could not write ready file {path}: {e}");
                std::process::exit(1);
            }
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
        drop(out);
        wait_for_shutdown().await;
    });
    // Listeners and connections are torn down with the process.
    std::process::exit(0);
}
