"""The end-to-end harness in one import: `from harness import Fleet, Envoy, wait_until, ...`.

- `Fleet`      dev nodes and their control API (fleet.py)
- `Envoy`      the real Envoy on a generated bootstrap (envoy_process.py, envoy_config.py)
- `wait_until` deadline-bound polling (waiting.py)
- `paths`      where Envoy, the filter module, the dev node and etcd are found (paths.py)
- `EtcdCluster` real etcd members on loopback for the etcd ledger backend (etcd_cluster.py);
               `etcd_state()` is the plugin configuration's `state` section that selects it
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import envoy_config
import paths
from envoy_process import Envoy, EnvoyStartError
from etcd_cluster import EtcdCluster, EtcdStartError
from etcd_cluster import state_config as etcd_state
from fleet import Fleet, FleetStartError
from waiting import WaitTimeout, wait_until

__all__ = [
    "Envoy", "EnvoyStartError", "Fleet", "FleetStartError", "WaitTimeout", "wait_until", "paths",
    "envoy_config", "envoy_for", "EtcdCluster", "EtcdStartError", "etcd_state",
]


# meili_all's active health checks run every second in tests (5 s in the shipped configs), so a
# node that goes down is marked unhealthy within about two seconds.
TEST_HEALTH_CHECK_INTERVAL = "1s"


def envoy_for(fleet: Fleet, workdir: Path, *, wasm: Path | None = None, plugin_overrides: dict[str, Any] | None = None,
              env: dict[str, str] | None = None, access_log: bool = True,
              etcd_endpoints: Sequence[tuple[str, int]] | None = None, **kwargs: Any) -> Envoy:
    """An Envoy (not started) in front of `fleet`: with the filter module `wasm`, or the baseline
    without any filter when `wasm` is None. The access log is on: failure reports show where each
    request went. `etcd_endpoints` (e.g. `EtcdCluster.endpoints`) adds the Envoy cluster `etcd`;
    select the backend with `plugin_overrides={"state": etcd_state()}`."""
    config = envoy_config.bootstrap(fleet.envoy_nodes, wasm_path=wasm, plugin_overrides=plugin_overrides,
                                    access_log=access_log, health_check_interval=TEST_HEALTH_CHECK_INTERVAL,
                                    etcd_endpoints=etcd_endpoints)
    return Envoy(config, workdir, env=env, **kwargs)
