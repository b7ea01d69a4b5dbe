"""Section 2 — commit latency against fleet size: how long a settings write takes, from the
client's PATCH to the filter's task reaching `succeeded`, with every node answering 20 ms late
and taking 50 ms per task, for the `two_phase` and `sequential` strategies.

The figure is `finishedAt − t0`: t0 is the client's wall clock just before it sends the PATCH,
`finishedAt` the filter's own wall-clock stamp (ms) when it marked the task succeeded. Both
clocks are this machine's, so no polling granularity is added, unlike a client that discovers
success at its next poll. (The client still polls `GET /tasks/{uid}` through Envoy, every
10 ms, to know when to send the next write; the seen-by-client time is kept in the raw data.)

The first commit after each Envoy starts is reported on its own (cold: new connections to every
node, the filter's start-up drift check may still be running); the median is over the commits
after it. Writes are one at a time: nothing queues behind another write."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from common import Envoy, Fleet, cpu_seconds, epoch_ms, median, paths, poll_task, start_envoy

DELAY_MS = 20
TASK_MS = 50
FIRST_POLL_MS = 20  # the filter's first task poll, after the propose answers (then 40, 80 … ms)
STRATEGIES = ("two_phase", "sequential")


def lower_bound_ms() -> float:
    """PATCH RTT + task time + verify GET RTT + one poll interval: what any strategy needs at the
    very least to know that one node applied the write (each RTT is at least the injected delay)."""
    return DELAY_MS + TASK_MS + DELAY_MS + FIRST_POLL_MS


def sequential_bound_ms(nodes: int) -> float:
    """The sequential strategy does, node after node: read the previous settings (for rollback),
    then PATCH, wait, verify — so its own bound is N × (one GET RTT + the bound above)."""
    return nodes * (DELAY_MS + lower_bound_ms())


@dataclass
class StrategyRuns:
    cold_ms: float
    warm_ms: list[float] = field(default_factory=list)
    seen_by_client_ms: list[float] = field(default_factory=list)
    # Over the warm commits, per commit: requests Envoy sent the nodes (its clusters' own count),
    # and Envoy's CPU (every thread; the client's task polls through it included).
    node_requests_per_commit: float = 0.0
    envoy_cpu_ms_per_commit: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"cold_ms": self.cold_ms, "warm_ms": self.warm_ms, "seen_by_client_ms": self.seen_by_client_ms,
                "median_ms": median(self.warm_ms) if self.warm_ms else None,
                "node_requests_per_commit": self.node_requests_per_commit,
                "envoy_cpu_ms_per_commit": self.envoy_cpu_ms_per_commit}


def _node_requests(envoy: Envoy) -> float:
    """Requests Envoy has sent to the dev nodes' clusters so far."""
    stats = envoy.stats(r"cluster\.meili_node_\d+\.upstream_rq_total")
    return float(sum(v for v in stats.values() if isinstance(v, (int, float))))


@dataclass
class CommitLatencyResult:
    by_size: dict[int, dict[str, StrategyRuns]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"delay_ms": DELAY_MS, "task_ms": TASK_MS, "lower_bound_ms": lower_bound_ms(),
                "by_size": {str(n): {s: r.as_dict() for s, r in runs.items()} for n, runs in self.by_size.items()}}


def _one_commit(base_url: str, index: str, value: int) -> tuple[float, float]:
    """One settings write; returns (PATCH → finishedAt, PATCH → seen succeeded by the client), ms."""
    t0 = time.time()
    answer = requests.patch(f"{base_url}/indexes/{index}/settings", json={"searchCutoffMs": value}, timeout=120)
    if answer.status_code != 202:
        raise RuntimeError(f"PATCH {index}: {answer.status_code} {answer.text[:300]}")
    task, seen = poll_task(base_url, answer.json()["taskUid"], timeout=600)
    if task["status"] != "succeeded":
        raise RuntimeError(f"commit on {index} did not succeed: {task}")
    return epoch_ms(task["finishedAt"]) - t0 * 1000, (seen - t0) * 1000


def _warm_repetitions(strategy: str, cold_ms: float, warm_max: int, budget_s: float) -> int:
    """two_phase: `warm_max`. sequential: as many as fit in `budget_s` (at least 3), since one
    commit at 64 nodes takes seconds."""
    if strategy == "two_phase":
        return warm_max
    return max(3, min(warm_max, int(budget_s * 1000 / max(cold_ms, 1.0))))


def run(workdir: Path, *, sizes: list[int], warm_max: int, sequential_budget_s: float,
        log: Any = print) -> CommitLatencyResult:
    result = CommitLatencyResult()
    for nodes in sizes:
        fleet = Fleet(nodes, workdir).start()
        try:
            for i in range(nodes):
                fleet.fault(i, delay_ms=DELAY_MS, task_ms=TASK_MS)
            result.by_size[nodes] = {}
            for strategy in STRATEGIES:
                overrides = {"settings_broadcast": {"strategy": strategy}}
                envoy = start_envoy(fleet, workdir, f"commit-{nodes}-{strategy}", wasm=paths.filter_wasm(),
                                    plugin_overrides=overrides)
                try:
                    index = f"bench_{strategy}"
                    cold_ms, _ = _one_commit(envoy.url, index, 100)
                    runs = StrategyRuns(cold_ms=cold_ms)
                    repetitions = _warm_repetitions(strategy, cold_ms, warm_max, sequential_budget_s)
                    requests_before, cpu_before = _node_requests(envoy), cpu_seconds(envoy.process.pid)
                    for k in range(repetitions):
                        finished_ms, seen_ms = _one_commit(envoy.url, index, 101 + k)
                        runs.warm_ms.append(finished_ms)
                        runs.seen_by_client_ms.append(seen_ms)
                    runs.node_requests_per_commit = (_node_requests(envoy) - requests_before) / repetitions
                    runs.envoy_cpu_ms_per_commit = (cpu_seconds(envoy.process.pid) - cpu_before) * 1000 / repetitions
                    result.by_size[nodes][strategy] = runs
                    log(f"  N={nodes:>3} {strategy:>10}: cold {cold_ms:8.0f} ms, median of {repetitions} "
                        f"{median(runs.warm_ms):8.0f} ms")
                finally:
                    envoy.stop()
        finally:
            fleet.stop()
    return result
