"""`make run`: a local fleet behind Envoy with the miroir filter, until Ctrl-C.

    nodes  127.0.0.1:7701 … (dev nodes, or real Meilisearch when MEILISEARCH_BIN is set)
    Envoy  127.0.0.1:7700 with the filter; admin on an ephemeral port (printed)

Environment: MEILISEARCH_BIN, MIROIR_RUN_NODES (3), MIROIR_RUN_PORT (7700), MEILI_MASTER_KEY,
MIROIR_ADMIN_API_KEY. Logs and node data go to .run/ at the repository root."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

import envoy_config
import paths
from envoy_process import Envoy
from fleet import Fleet
from meilisearch_nodes import MeilisearchNodes

RUN_DIR = paths.REPO_ROOT / ".run"
# Meilisearch refuses master keys shorter than 16 bytes outside development mode; this one works in both.
DEFAULT_MASTER_KEY = "miroir-local-master-key"
DEFAULT_ADMIN_KEY = "miroir-local-admin-key"


class Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise Stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=int(os.environ.get("MIROIR_RUN_NODES", "3")))
    parser.add_argument("--port", type=int, default=int(os.environ.get("MIROIR_RUN_PORT", "7700")),
                        help="Envoy's port; nodes take the next ones. 0: every port ephemeral (dev nodes only)")
    parser.add_argument("--no-filter", action="store_true", help="run the baseline Envoy without the filter")
    args = parser.parse_args()

    master_key = os.environ.get("MEILI_MASTER_KEY", DEFAULT_MASTER_KEY)
    admin_key = os.environ.get("MIROIR_ADMIN_API_KEY", DEFAULT_ADMIN_KEY)
    node_ports = [args.port + 1 + i for i in range(args.nodes)] if args.port else []
    RUN_DIR.mkdir(exist_ok=True)

    wasm: Path | None = None
    if not args.no_filter:
        wasm = paths.filter_wasm()
        if not paths.exports_proxy_wasm_abi(wasm):
            print(f"error: {wasm} is missing or is not a proxy-wasm module; run `make build` "
                  "(or `make run ARGS=--no-filter` for Envoy without the filter)", file=sys.stderr)
            return 2

    meili_bin = os.environ.get("MEILISEARCH_BIN")
    nodes: Fleet | MeilisearchNodes
    if meili_bin:
        if not node_ports:
            print("error: real Meilisearch nodes need fixed ports (--port > 0)", file=sys.stderr)
            return 2
        nodes = MeilisearchNodes(Path(meili_bin), node_ports, RUN_DIR, master_key)
        kind = f"Meilisearch ({meili_bin})"
    else:
        nodes = Fleet(args.nodes, RUN_DIR, master_key=master_key, ports=node_ports or None)
        kind = "dev nodes"

    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGTERM, _raise_stop)
    envoy: Envoy | None = None
    try:
        nodes.start()
        config = envoy_config.bootstrap(nodes.envoy_nodes, listen_port=args.port, wasm_path=wasm)
        env = {"MIROIR_NODE_API_KEY": master_key, "MIROIR_ADMIN_API_KEY": admin_key}
        envoy = Envoy(config, RUN_DIR, env=env, name="envoy").start()
        print_banner(envoy, nodes, kind, master_key, admin_key, filtered=wasm is not None)
        # Stay up until Ctrl-C, or until a server dies (then say which one, and stop the rest).
        while True:
            if not envoy.process.is_running():
                print(f"Envoy exited; log tail:\n{envoy.log_tail(30)}", file=sys.stderr)
                return 1
            if isinstance(nodes, Fleet) and not nodes.process.is_running():
                print(f"dev node exited; see {nodes.log_path}", file=sys.stderr)
                return 1
            if isinstance(nodes, MeilisearchNodes) and not nodes.running():
                print(f"a Meilisearch node exited; see {RUN_DIR}/meili-*.log", file=sys.stderr)
                return 1
            time.sleep(0.5)
    except Stop:
        print("\nstopping…")
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        if envoy is not None:
            envoy.stop()
        nodes.stop()


def print_banner(envoy: Envoy, nodes: Fleet | MeilisearchNodes, kind: str, master_key: str, admin_key: str,
                 filtered: bool) -> None:
    url = envoy.url
    auth = f"-H 'Authorization: Bearer {master_key}'"
    node_list = ", ".join(f"127.0.0.1:{p}" for p in nodes.ports)
    print(f"""
miroir: Envoy {'with the filter' if filtered else 'WITHOUT the filter'} on {url}  (admin {envoy.admin_url})
nodes:  {kind} on {node_list}
logs:   {RUN_DIR}/

Try:
  curl -s {url}/health
  curl -s {auth} -X PATCH {url}/indexes/movies/settings \\
       -H 'Content-Type: application/json' -d '{{"filterableAttributes":["genre"],"stopWords":["the"]}}'
  curl -s {auth} {url}/tasks/2130706432          # the filter's own task uid range
  curl -s {auth} {url}/indexes/movies/settings -D - -o /dev/null | grep -i x-miroir
  curl -s -H 'Authorization: Bearer {admin_key}' {url}/_miroir/indexes/movies
  curl -s {envoy.admin_url}/stats/prometheus | grep miroir

Ctrl-C stops everything.""", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
