"""Real Meilisearch binaries as a fleet: one process per node, each with its own database directory
and port. Used by `make run` when MEILISEARCH_BIN is set (the dev node stands in otherwise)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import requests

import envoy_config
from processes import ManagedProcess
from waiting import GiveUp, WaitTimeout, wait_until

START_TIMEOUT_SECONDS = 60.0


class MeilisearchNodes:
    def __init__(self, binary: Path, ports: Sequence[int], workdir: Path, master_key: str) -> None:
        self.ports = list(ports)
        self.master_key = master_key
        self.processes: list[ManagedProcess] = []
        for i, port in enumerate(self.ports):
            node_dir = workdir / f"meili-{i}"
            node_dir.mkdir(parents=True, exist_ok=True)
            argv = [
                binary, "--http-addr", f"127.0.0.1:{port}", "--master-key", master_key,
                "--db-path", node_dir / "data.ms", "--dump-dir", node_dir / "dumps",
                "--snapshot-dir", node_dir / "snapshots", "--no-analytics", "--env", "development",
            ]
            # cwd per node: anything Meilisearch writes relative to its working directory stays apart.
            self.processes.append(ManagedProcess(f"meili-{i}", argv, workdir / f"meili-{i}.log", cwd=node_dir))

    @property
    def size(self) -> int:
        return len(self.ports)

    @property
    def envoy_nodes(self) -> list[envoy_config.Node]:
        return envoy_config.nodes_on(self.ports)

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> "MeilisearchNodes":
        for process in self.processes:
            process.start()
        try:
            for process, port in zip(self.processes, self.ports):
                wait_until(lambda: self._healthy(process, port), timeout, f"{process.name} /health on port {port}")
        except (WaitTimeout, GiveUp) as error:
            tails = "\n".join(f"--- {p.name} ---\n{p.log_tail(20)}" for p in self.processes)
            self.stop()
            raise RuntimeError(f"{error}\n{tails}") from None
        return self

    @staticmethod
    def _healthy(process: ManagedProcess, port: int) -> bool:
        code = process.exit_code()
        if code is not None:
            raise GiveUp(f"{process.name} exited with code {code}")
        return requests.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def running(self) -> bool:
        return all(p.is_running() for p in self.processes)
