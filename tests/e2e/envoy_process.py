"""The real Envoy binary, started on a generated bootstrap and observed through its admin API."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import requests

import envoy_config
import paths
from processes import ManagedProcess
from waiting import GiveUp, WaitTimeout, wait_until

START_TIMEOUT_SECONDS = 60.0
NOTABLE_LOG_LINE = re.compile(r"\]\[(warning|error|critical)\]\[|\]\[wasm\] |^\[access\] ")
_instance_numbers = itertools.count()


PROMETHEUS_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$')
PROMETHEUS_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus_line(line: str) -> tuple[str, dict[str, str], float] | None:
    """(name, labels, value) for a sample line of the text exposition format; None otherwise."""
    match = PROMETHEUS_SAMPLE.match(line.strip())
    if not match or line.startswith("#"):
        return None
    name, label_text, value = match.groups()
    labels = dict(PROMETHEUS_LABEL.findall(label_text or ""))
    try:
        return name, labels, float(value)
    except ValueError:
        return None


class EnvoyStartError(GiveUp):
    """Envoy exited or never became ready; the message carries its log tail."""


class Envoy:
    """One Envoy process.

    `--concurrency 2` on purpose: two worker threads mean two filter VMs, so state that is kept
    per VM instead of in shared data shows up as a test failure. `--disable-hot-restart` lets
    several Envoys run side by side without shared-memory base-id clashes."""

    def __init__(self, config: Mapping[str, Any], workdir: Path, *, env: Mapping[str, str] | None = None,
                 concurrency: int = 2, log_level: str | None = None, extra_args: Sequence[str] = (),
                 name: str | None = None) -> None:
        self.name = name or f"envoy-{next(_instance_numbers)}"
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / f"{self.name}.yaml"
        self.config_path.write_text(envoy_config.to_yaml(dict(config)))
        self.admin_address_path = workdir / f"{self.name}.admin"
        self.log_path = workdir / f"{self.name}.log"
        level = log_level or os.environ.get("MIROIR_E2E_ENVOY_LOG_LEVEL", "info")
        argv = [
            paths.envoy_binary(), "-c", self.config_path, "--disable-hot-restart",
            "--concurrency", str(concurrency), "-l", level,
            "--admin-address-path", self.admin_address_path, *extra_args,
        ]
        child_env = dict(os.environ)
        child_env.update(env or {})
        self.process = ManagedProcess(self.name, argv, self.log_path, env=child_env)
        self.admin_url = ""
        self.port = 0

    # --- lifecycle -------------------------------------------------------------------------------

    def launch(self) -> "Envoy":
        """Start the process without waiting for it (for tests that expect it to fail)."""
        # A previous Envoy's address file (same workdir, e.g. .run/) would point at a dead admin port.
        self.admin_address_path.unlink(missing_ok=True)
        self.process.start()
        return self

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> "Envoy":
        """Start and wait until the server is LIVE and the listener's port is known."""
        self.launch()
        try:
            wait_until(self._admin_address, timeout, f"{self.name} to write its admin address")
            wait_until(self._is_live, timeout, f"{self.name} admin /ready to say LIVE")
            self.port = wait_until(self._listener_port, timeout, f"{self.name} listener port")
        except (WaitTimeout, EnvoyStartError) as error:
            tail = self.log_excerpt()
            self.stop()
            raise EnvoyStartError(f"{error}\n--- {self.name} log tail ---\n{tail}") from None
        return self

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.process.wait_exit(timeout)
        except subprocess.TimeoutExpired:
            raise WaitTimeout(f"{self.name} still running after {timeout:.0f}s") from None

    def stop(self) -> int | None:
        return self.process.stop()

    def kill(self) -> int | None:
        """`kill -9`: the gateway dies mid-whatever, its callouts and in-memory state with it."""
        return self.process.kill()

    def __enter__(self) -> "Envoy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- readiness probes (each raises or returns falsy while not ready) ----------------------------

    def _check_alive(self) -> None:
        code = self.process.exit_code()
        if code is not None:
            raise EnvoyStartError(f"{self.name} exited with code {code}")

    def _admin_address(self) -> str:
        self._check_alive()
        address = self.admin_address_path.read_text().strip() if self.admin_address_path.exists() else ""
        if address:
            self.admin_url = f"http://{address}"
        return address

    def _is_live(self) -> bool:
        self._check_alive()
        response = requests.get(f"{self.admin_url}/ready", timeout=2)
        return response.status_code == 200 and response.text.strip() == "LIVE"

    def _listener_port(self) -> int:
        self._check_alive()
        statuses = requests.get(f"{self.admin_url}/listeners?format=json", timeout=2).json()
        for status in statuses.get("listener_statuses", []):
            port = status.get("local_address", {}).get("socket_address", {}).get("port_value", 0)
            if port:
                return int(port)
        return 0

    # --- observation --------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL of the listener clients talk to."""
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.process.log_text()

    def log_tail(self, lines: int = 80) -> str:
        return self.process.log_tail(lines)

    def log_excerpt(self, notable: int = 60, last: int = 15) -> str:
        """What explains a failure: every warning/error/critical line, every line of the wasm
        component (the filter's own log) and of the access log, plus the last few lines whatever
        they are. A plain tail
        is mostly Envoy's start-up banner."""
        lines = self.log_text().splitlines()
        keep = [i for i, line in enumerate(lines) if NOTABLE_LOG_LINE.search(line)][-notable:]
        keep_set = set(keep) | set(range(max(0, len(lines) - last), len(lines)))
        out: list[str] = []
        previous = -1
        for i in sorted(keep_set):
            if previous >= 0 and i != previous + 1:
                out.append("  …")
            out.append(lines[i])
            previous = i
        return "\n".join(out)

    def stats(self, name_filter: str | None = None) -> dict[str, Any]:
        """Counters and gauges by full stat name (e.g. `wasmcustom.miroir_settings_version.index.movies`).
        `name_filter` is Envoy's regex filter, applied server side."""
        params = {"format": "json"}
        if name_filter:
            params["filter"] = name_filter
        body = requests.get(f"{self.admin_url}/stats", params=params, timeout=5).json()
        return {s["name"]: s["value"] for s in body.get("stats", []) if "name" in s and "value" in s}

    def stat(self, name: str, default: Any = 0) -> Any:
        """One counter or gauge by its full name, `default` while it does not exist yet."""
        return self.stats(f"^{re.escape(name)}$").get(name, default)

    def wait_for_stat(self, name: str, predicate: Callable[[Any], bool], timeout: float = 30.0) -> Any:
        """Wait until stat `name` exists and satisfies `predicate`; return its value."""
        seen: list[Any] = [None]

        def check() -> bool:
            seen[0] = self.stat(name, None)
            return seen[0] is not None and predicate(seen[0])

        try:
            wait_until(check, timeout, f"stat {name} to satisfy the condition")
        except WaitTimeout as error:
            raise WaitTimeout(f"{error}; last value of {name}: {seen[0]!r}") from None
        return seen[0]

    def histograms(self, name_filter: str | None = None) -> list[dict[str, Any]]:
        params = {"format": "json"}
        if name_filter:
            params["filter"] = name_filter
        body = requests.get(f"{self.admin_url}/stats", params=params, timeout=5).json()
        found: list[dict[str, Any]] = []
        for entry in body.get("stats", []):
            found.extend(entry.get("histograms", {}).get("computed_quantiles", []))
        return found

    def prometheus(self) -> str:
        response = requests.get(f"{self.admin_url}/stats/prometheus", timeout=5)
        response.raise_for_status()
        return response.text

    def prometheus_value(self, name: str, **labels: str) -> float | None:
        """The value of the Prometheus sample `name{labels}` (labels must match exactly), or None."""
        wanted = dict(labels)
        for line in self.prometheus().splitlines():
            sample = parse_prometheus_line(line)
            if sample and sample[0] == name and sample[1] == wanted:
                return sample[2]
        return None

    def admin_json(self, path: str) -> Any:
        response = requests.get(f"{self.admin_url}{path}", timeout=5)
        response.raise_for_status()
        return json.loads(response.text)
