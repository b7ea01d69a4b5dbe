"""A fleet of Meilisearch-compatible dev nodes (one `devnode` process serving N nodes) and its
control API, which injects faults and shows what each node received."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any, Sequence

import requests

import envoy_config
import paths
from processes import ManagedProcess
from waiting import GiveUp, WaitTimeout, wait_until

START_TIMEOUT_SECONDS = 30.0
CONTROL_TIMEOUT_SECONDS = 10.0
_instance_numbers = itertools.count()


def is_health_check(entry: dict[str, Any]) -> bool:
    """A request-log entry that looks like Envoy's active health check (envoy_config.health_checks)."""
    return (entry.get("method") == "GET" and entry.get("path") == envoy_config.HEALTH_CHECK_PATH
            and not entry.get("has_authorization"))


class FleetStartError(GiveUp):
    """The dev node exited or never printed its ready line; the message carries its log tail."""


class Fleet:
    def __init__(self, nodes: int, workdir: Path, *, master_key: str | None = None, task_ms: int | None = None,
                 ports: Sequence[int] | None = None, binary: Path | None = None) -> None:
        if nodes < 1:
            raise ValueError("a fleet has at least one node")
        self.size = nodes
        self.master_key = master_key
        self.name = f"devnode-{next(_instance_numbers)}"
        self.workdir = workdir
        self.log_path = workdir / f"{self.name}.log"
        argv: list[Any] = [binary or paths.devnode_binary(), "--nodes", str(nodes)]
        if master_key:
            argv += ["--master-key", master_key]
        if task_ms is not None:
            argv += ["--task-ms", str(task_ms)]
        if ports:
            argv += ["--ports", ",".join(str(p) for p in ports)]
        self.process = ManagedProcess(self.name, argv, self.log_path)
        self.control_port = 0
        self.ports: list[int] = []
        self.session = requests.Session()

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> "Fleet":
        binary = Path(self.process.argv[0])
        if not binary.is_file():
            raise FleetStartError(f"dev node binary not found: {binary} (run `make build`)")
        self.process.start()
        try:
            ready = wait_until(self._ready_line, timeout, f"{self.name} to print its ready line")
        except (WaitTimeout, FleetStartError) as error:
            tail = self.process.log_tail()
            self.stop()
            raise FleetStartError(f"{error}\n--- {self.name} log tail ---\n{tail}") from None
        self.control_port = int(ready["control"])
        by_id = {node["id"]: int(node["port"]) for node in ready["nodes"]}
        self.ports = [by_id[f"node-{i}"] for i in range(self.size)]
        return self

    def _ready_line(self) -> dict[str, Any] | None:
        """The JSON object the dev node prints on stdout once every node listens."""
        code = self.process.exit_code()
        if code is not None:
            raise FleetStartError(f"{self.name} exited with code {code}")
        for line in self.process.log_text().splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                parsed = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line still being written
            if isinstance(parsed, dict) and "control" in parsed and "nodes" in parsed:
                return parsed
        return None

    def stop(self) -> int | None:
        self.session.close()
        return self.process.stop()

    def __enter__(self) -> "Fleet":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- addresses -------------------------------------------------------------------------------

    @property
    def envoy_nodes(self) -> list[envoy_config.Node]:
        return envoy_config.nodes_on(self.ports)

    def node_url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.ports[i]}"

    @property
    def node_urls(self) -> list[str]:
        return [self.node_url(i) for i in range(self.size)]

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.control_port}"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.master_key}"} if self.master_key else {}

    def node_get(self, i: int, path: str, **kwargs: Any) -> requests.Response:
        """A request straight to node i, bypassing Envoy (with the master key when there is one)."""
        return self.session.get(self.node_url(i) + path, headers=self.auth_headers(),
                                timeout=CONTROL_TIMEOUT_SECONDS, **kwargs)

    # --- control API -----------------------------------------------------------------------------

    def _control(self, method: str, path: str, body: Any = None) -> Any:
        response = self.session.request(method, self.control_url + path, json=body, timeout=CONTROL_TIMEOUT_SECONDS)
        if response.status_code >= 400:
            raise AssertionError(f"control {method} {path} -> {response.status_code}: {response.text}")
        return response.json() if response.content else None

    def fault(self, i: int, **faults: Any) -> Any:
        """Inject faults on node i, e.g. `fault(1, down=True)`, `fault(2, delay_ms=500)`. Known faults:
        down, delay_ms, task_ms, status_5xx, hang, reset, drop_updates, apply_different, fail_tasks,
        reject_settings."""
        return self._control("POST", f"/nodes/{i}/faults", faults)

    def faults(self, i: int) -> Any:
        return self._control("GET", f"/nodes/{i}/faults")

    def clear(self, i: int) -> Any:
        """Remove every fault from node i."""
        return self._control("DELETE", f"/nodes/{i}/faults")

    def clear_all(self) -> None:
        for i in range(self.size):
            self.clear(i)

    def requests(self, i: int, *, health_checks: bool = False) -> list[dict[str, Any]]:
        """What node i received, oldest first. Envoy's active health checks of `meili_all` (a
        `GET /health` without credentials, every second in tests) are left out unless asked for:
        they would otherwise show up in every scenario's request log."""
        logged = self._control("GET", f"/nodes/{i}/requests")
        if health_checks:
            return logged
        return [r for r in logged if not is_health_check(r)]

    def clear_requests(self, i: int) -> Any:
        return self._control("DELETE", f"/nodes/{i}/requests")

    def node_documents(self, uid: str) -> list[list[dict[str, Any]]]:
        """Every node's documents of `uid` (up to 1000), sorted by id, asked of the nodes directly."""
        out = []
        for i in range(self.size):
            r = self.node_get(i, f"/indexes/{uid}/documents?limit=1000")
            assert r.status_code == 200, r.text
            out.append(sorted(r.json()["results"], key=lambda d: d["id"]))
        return out

    def node_settings(self, i: int, uid: str, *, clear_secrets: bool = False) -> Any:
        """Index `uid`'s settings as node i holds them, read through the control port (no faults,
        no request log entry). Same body as the node's GET /indexes/{uid}/settings, secrets masked
        unless `clear_secrets`."""
        query = "?secrets=clear" if clear_secrets else ""
        return self._control("GET", f"/nodes/{i}/settings/{uid}{query}")

    def all_node_settings(self, uid: str) -> list[Any]:
        return [self.node_settings(i, uid) for i in range(self.size)]

    def out_of_band(self, i: int, uid: str, patch: dict[str, Any]) -> Any:
        """Change index `uid`'s settings on node i behind the proxy's back (drift); applied at once,
        without a task. Creates the index if needed."""
        return self._control("POST", f"/nodes/{i}/out-of-band/indexes/{uid}/settings", patch)

    def remove_index_out_of_band(self, i: int, uid: str) -> Any:
        """Delete index `uid` on node i behind the proxy's back."""
        return self._control("DELETE", f"/nodes/{i}/out-of-band/indexes/{uid}")
