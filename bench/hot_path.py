"""Section 1 — hot path: search POSTs through Envoy without a wasm filter, with a no-op wasm
filter and with the miroir filter, interleaved round by round (A B C D A B C D …) so that drift
of a shared machine hits every configuration alike; medians over all rounds.

All three Envoys run at once in front of the same three dev nodes and only the one under load is
busy, so each is equally warm. A fourth, unproxied configuration (wrk straight to one dev node)
shows how much of the machine the upstream itself leaves to Envoy."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from common import Envoy, cpu_seconds, median, noop_wasm, paths, poll_task, start_envoy
from loadgen import LoadRun, run_load
from vm_profile import VM, Profiler, available as profiler_available
from search_fleet import INDEX, SEARCH_BODY, SEARCH_PATH, start_search_fleet

NO_FILTER, NOOP, MIROIR, DIRECT = "no filter", "no-op wasm", "miroir", "direct to node (no Envoy)"
ENVOY_CONFIGS = (NO_FILTER, NOOP, MIROIR)
WARMUP_SECONDS = 2
VERSION_HEADER = "x-miroir-settings-version"


@dataclass
class HotPathResult:
    connections: int
    seconds_per_run: int
    rounds: int
    runs: dict[str, list[LoadRun]] = field(default_factory=dict)
    # Envoy's CPU time per request served (all its threads: main, workers, wasm VMs), µs, per run.
    envoy_cpu_us: dict[str, list[float]] = field(default_factory=dict)
    # The same runs' CPU by kind of code (vm_profile.KINDS), µs per request, per run; empty
    # without perf.
    envoy_profile_us: dict[str, list[dict[str, float]]] = field(default_factory=dict)

    def medians(self, config: str) -> dict[str, float]:
        runs = self.runs[config]
        return {"rps": median([r.rps for r in runs]), "p50_ms": median([r.p50_ms for r in runs]),
                "p99_ms": median([r.p99_ms for r in runs])}

    def spread(self, config: str) -> tuple[float, float]:
        rps = [r.rps for r in self.runs[config]]
        return min(rps), max(rps)

    def as_dict(self) -> dict[str, Any]:
        return {"connections": self.connections, "seconds_per_run": self.seconds_per_run, "rounds": self.rounds,
                "runs": {k: [r.as_dict() for r in v] for k, v in self.runs.items()},
                "envoy_cpu_us_per_request": self.envoy_cpu_us,
                "envoy_profile_us_per_request": self.envoy_profile_us,
                "medians": {k: self.medians(k) for k in self.runs}}


def _commit_one_settings_change(envoy: Envoy) -> None:
    """One settings write through the miroir filter, so the index has a committed version and every
    search answer is stamped with it: the steady state of a fleet the filter manages."""
    answer = requests.patch(f"{envoy.url}/indexes/{INDEX}/settings", json={"searchCutoffMs": 150}, timeout=30)
    if answer.status_code != 202:
        raise RuntimeError(f"settings write through the filter: {answer.status_code} {answer.text[:300]}")
    task, _ = poll_task(envoy.url, answer.json()["taskUid"], timeout=60)
    if task["status"] != "succeeded":
        raise RuntimeError(f"settings write through the filter did not succeed: {task}")


def _check_search(url: str, expect_version: bool) -> None:
    answer = requests.post(url, data=SEARCH_BODY, headers={"content-type": "application/json"}, timeout=5)
    if answer.status_code != 200 or not answer.json().get("hits"):
        raise RuntimeError(f"search via {url}: {answer.status_code} {answer.text[:200]}")
    if expect_version != (VERSION_HEADER in answer.headers):
        raise RuntimeError(f"search via {url}: {VERSION_HEADER} expected={expect_version}, headers {dict(answer.headers)}")


def _wasm_vms(envoy: Envoy) -> int:
    """Live wasm VMs according to Envoy: proves a filter module really is loaded (or not)."""
    stats = envoy.stats(r"wasm\.envoy\.wasm\.runtime\.v8\.active")
    return int(sum(v for v in stats.values() if isinstance(v, (int, float))))


def run(workdir: Path, wrk: str, *, rounds: int, seconds: int, connections: int,
        log: Any = print) -> HotPathResult:
    result = HotPathResult(connections=connections, seconds_per_run=seconds, rounds=rounds)
    fleet = start_search_fleet(workdir)
    envoys: dict[str, Envoy] = {}
    try:
        wasm_of = {NO_FILTER: None, NOOP: noop_wasm(), MIROIR: paths.filter_wasm()}
        for config in ENVOY_CONFIGS:
            envoys[config] = start_envoy(fleet, workdir, f"hot-{config.split()[0]}", wasm=wasm_of[config])
        _commit_one_settings_change(envoys[MIROIR])
        urls = {config: envoys[config].url + SEARCH_PATH for config in ENVOY_CONFIGS}
        urls[DIRECT] = fleet.node_url(0) + SEARCH_PATH
        for config in ENVOY_CONFIGS:
            _check_search(urls[config], expect_version=config == MIROIR)
            vms = _wasm_vms(envoys[config])
            if (vms > 0) != (wasm_of[config] is not None):
                raise RuntimeError(f"{config}: Envoy reports {vms} live wasm VMs")
        order = [*ENVOY_CONFIGS, DIRECT]
        for config in order:
            run_load(wrk, urls[config], SEARCH_BODY, connections=connections, seconds=WARMUP_SECONDS)
        result.runs = {config: [] for config in order}
        result.envoy_cpu_us = {config: [] for config in ENVOY_CONFIGS}
        profiling = profiler_available()
        if profiling:
            result.envoy_profile_us = {config: [] for config in ENVOY_CONFIGS}
        else:
            log("  perf is not available: Envoy's CPU is reported without its split by kind of code")
        for round_number in range(1, rounds + 1):
            for config in order:
                pid = envoys[config].process.pid if config in envoys else None
                # Every Envoy configuration is profiled alike, so the sampling costs each the same.
                profiler = Profiler(pid, workdir / "hot.perf.data") if profiling and pid else None
                cpu_before = cpu_seconds(pid)
                with profiler or nullcontext():
                    load = run_load(wrk, urls[config], SEARCH_BODY, connections=connections, seconds=seconds)
                cpu = cpu_seconds(pid) - cpu_before
                result.runs[config].append(load)
                per_request = ""
                if config in envoys and load.requests > 0:
                    result.envoy_cpu_us[config].append(cpu / load.requests * 1e6)
                    per_request = f"  Envoy CPU {result.envoy_cpu_us[config][-1]:5.1f} µs/request"
                    split = profiler.per_request_us(load.requests) if profiler else {}
                    if split:
                        result.envoy_profile_us[config].append(split)
                        per_request += f" (VM code {split[VM]:.1f})"
                log(f"  round {round_number}/{rounds} {config:>26}: {load.rps:9.0f} req/s  "
                    f"p50 {load.p50_ms:6.2f} ms  p99 {load.p99_ms:6.2f} ms{per_request}")
        # The answers under load were the filter's too: the version stamp is still there.
        _check_search(urls[MIROIR], expect_version=True)
    finally:
        for envoy in envoys.values():
            envoy.stop()
        fleet.stop()
    return result
