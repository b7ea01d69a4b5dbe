"""The end-to-end harness in one import: `from harness import Fleet, Envoy, wait_until, ...`.

- `Fleet`      dev nodes and their control API (fleet.py)
- `Envoy`      the real Envoy on a generated bootstrap (envoy_process.py, envoy_config.py)
- `wait_until` deadline-bound polling (waiting.py)
- `paths`      where Envoy, the filter module and the dev node are found (paths.py)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import envoy_config
import paths
from envoy_process import Envoy, EnvoyStartError
from fleet import Fleet, FleetStartError
from waiting import WaitTimeout, wait_until

__all__ = [
    "Envoy", "EnvoyStartError", "Fleet", "FleetStartError", "WaitTimeout", "wait_until", "paths",
    "envoy_config", "envoy_for",
]


# meili_all's active health checks run every second in tests (5 s in the shipped configs), so a
# node that goes down is marked unhealthy within about two seconds.
TEST_HEALTH_CHECK_INTERVAL = "1s"


def envoy_for(fleet: Fleet, workdir: Path, *, wasm: Path | None = None, plugin_overrides: dict[str, Any] | None = None,
              env: dict[str, str] | None = None, access_log: bool = True, **kwargs: Any) -> Envoy:
    """An Envoy (not started) in front of `fleet`: with the filter module `wasm`, or the baseline
    without any filter when `wasm` is None. The access log is on: failure reports show where each
    request went."""
    config = envoy_config.bootstrap(fleet.envoy_nodes, wasm_path=wasm, plugin_overrides=plugin_overrides,
                                    access_log=access_log, health_check_interval=TEST_HEALTH_CHECK_INTERVAL)
    return Envoy(config, workdir, env=env, **kwargs)
