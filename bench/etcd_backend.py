"""Sections 6 and 7 — the etcd state backend against the shared-data one (issue 12 item 5, issue 13
item 5), each measured side by side with the same filter module in one run:

6. commit latency (`--only etcd-commit`): the commit-latency set-up of section 2 (every node 20 ms
   late, 50 ms per task, `two_phase`), at N = 3 and 16 by default. Two Envoys in front of the same
   dev nodes, one per backend, each writing its own index; their commits alternate one by one
   (shared data first in even rounds, etcd first in odd ones), so machine drift hits both alike.
   One commit at a time: nothing queues behind another write.
7. hot path (`--only etcd-hot`): section 1's search load through two Envoys with the miroir filter,
   one per backend, in front of the same three dev nodes, interleaved rounds (the order alternates
   too), medians. Each Envoy committed one settings write first, so every answer is stamped with the
   index's version — with etcd, from the gateway's view in shared data, which a poll of etcd keeps
   fresh (the front door never waits on etcd).

One etcd member (Debian's etcd 3.4, `etcd_server.py`) serves every etcd Envoy of a section, each
Envoy under a prefix of its own. etcd 3.4 fsyncs its WAL on every write; the commit section reads
etcd's own fsync histogram around the measured commits so the report can say what the fsyncs cost."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

import commit_latency
import hot_path
from common import Envoy, Fleet, epoch_ms, median, paths, poll_task, start_envoy
from etcd_server import EtcdServer, FsyncTotals, envoy_cluster, state_config
from loadgen import LoadRun, run_load
from search_fleet import SEARCH_BODY, SEARCH_PATH, start_search_fleet

SHARED, ETCD = "shared_data", "etcd"
BACKENDS = (SHARED, ETCD)


def _start(fleet: Fleet, workdir: Path, backend: str, name: str, etcd: EtcdServer,
           overrides: dict[str, Any]) -> Envoy:
    if backend == SHARED:
        return start_envoy(fleet, workdir, name, wasm=paths.filter_wasm(), plugin_overrides=overrides)
    return start_envoy(fleet, workdir, name, wasm=paths.filter_wasm(),
                       plugin_overrides={**overrides, "state": state_config(f"miroir/bench/{name}/")},
                       extra_clusters=[envoy_cluster(etcd.endpoint)])


# --- 6. commit latency ----------------------------------------------------------------------------


@dataclass
class Commit:
    finished_ms: float  # PATCH sent → the task's finishedAt (the filter's clock)
    seen_ms: float  # PATCH sent → the client saw `succeeded` (polling every 10 ms)
    accepted_ms: float  # PATCH sent → its 202 (the enqueue: an etcd transaction with that backend)


@dataclass
class BackendRuns:
    cold: Commit
    warm: list[Commit] = field(default_factory=list)

    def median(self, what: str) -> float:
        return median([getattr(c, what) for c in self.warm])

    def as_dict(self) -> dict[str, Any]:
        return {"cold": vars(self.cold), "warm": [vars(c) for c in self.warm],
                "median_finished_ms": self.median("finished_ms") if self.warm else None}


@dataclass
class EtcdCommitResult:
    etcd_version: str = "?"
    by_size: dict[int, dict[str, BackendRuns]] = field(default_factory=dict)
    fsync: dict[int, FsyncTotals] = field(default_factory=dict)  # over the measured commits of each N

    def as_dict(self) -> dict[str, Any]:
        return {"etcd_version": self.etcd_version, "delay_ms": commit_latency.DELAY_MS,
                "task_ms": commit_latency.TASK_MS, "lower_bound_ms": commit_latency.lower_bound_ms(),
                "by_size": {str(n): {b: r.as_dict() for b, r in runs.items()} for n, runs in self.by_size.items()},
                "wal_fsync": {str(n): vars(f) for n, f in self.fsync.items()}}


def _one_commit(session: requests.Session, base_url: str, index: str, value: int) -> Commit:
    t0 = time.time()
    answer = session.patch(f"{base_url}/indexes/{index}/settings", json={"searchCutoffMs": value}, timeout=120)
    accepted = time.time()
    if answer.status_code != 202:
        raise RuntimeError(f"PATCH {index} via {base_url}: {answer.status_code} {answer.text[:300]}")
    task, seen = poll_task(base_url, answer.json()["taskUid"], timeout=600)
    if task["status"] != "succeeded":
        raise RuntimeError(f"commit on {index} via {base_url} did not succeed: {task}")
    return Commit(finished_ms=epoch_ms(task["finishedAt"]) - t0 * 1000, seen_ms=(seen - t0) * 1000,
                  accepted_ms=(accepted - t0) * 1000)


def run_commit(workdir: Path, *, sizes: list[int], commits: int, log: Any = print) -> EtcdCommitResult:
    result = EtcdCommitResult()
    etcd = EtcdServer(workdir, "etcd-commit").start()
    session = requests.Session()
    try:
        result.etcd_version = etcd.version()
        for nodes in sizes:
            fleet = Fleet(nodes, workdir).start()
            envoys: dict[str, Envoy] = {}
            try:
                for i in range(nodes):
                    fleet.fault(i, delay_ms=commit_latency.DELAY_MS, task_ms=commit_latency.TASK_MS)
                overrides = {"settings_broadcast": {"strategy": "two_phase"}}
                for backend in BACKENDS:
                    envoys[backend] = _start(fleet, workdir, backend, f"etcd-commit-{nodes}-{backend}", etcd, overrides)
                index = {b: f"bench_{b}" for b in BACKENDS}
                runs = {b: BackendRuns(cold=_one_commit(session, envoys[b].url, index[b], 100)) for b in BACKENDS}
                before = etcd.wal_fsync()
                for k in range(commits):
                    for backend in (BACKENDS if k % 2 == 0 else BACKENDS[::-1]):
                        runs[backend].warm.append(_one_commit(session, envoys[backend].url, index[backend], 101 + k))
                result.fsync[nodes] = etcd.wal_fsync() - before
                result.by_size[nodes] = runs
                log(f"  N={nodes:>3}: " + ", ".join(
                    f"{b} cold {runs[b].cold.finished_ms:.0f} ms, median of {commits} {runs[b].median('finished_ms'):.0f} ms"
                    for b in BACKENDS))
            finally:
                for envoy in envoys.values():
                    envoy.stop()
                fleet.stop()
    finally:
        session.close()
        etcd.stop()
    return result


# --- 7. hot path ---------------------------------------------------------------------------------


@dataclass
class EtcdHotResult:
    connections: int
    seconds_per_run: int
    rounds: int
    etcd_version: str = "?"
    runs: dict[str, list[LoadRun]] = field(default_factory=dict)
    # Calls the etcd Envoy made to etcd during the measured rounds, per second: all of them (Envoy's
    # count), then by etcd method, and the writes (raft proposals) among them.
    etcd_calls_per_s: float = 0.0
    etcd_methods_per_s: dict[str, float] = field(default_factory=dict)
    etcd_writes_per_s: float = 0.0

    def medians(self, config: str) -> dict[str, float]:
        runs = self.runs[config]
        return {"rps": median([r.rps for r in runs]), "p50_ms": median([r.p50_ms for r in runs]),
                "p99_ms": median([r.p99_ms for r in runs])}

    def as_dict(self) -> dict[str, Any]:
        return {"connections": self.connections, "seconds_per_run": self.seconds_per_run, "rounds": self.rounds,
                "etcd_version": self.etcd_version, "etcd_calls_per_s": self.etcd_calls_per_s,
                "etcd_methods_per_s": self.etcd_methods_per_s, "etcd_writes_per_s": self.etcd_writes_per_s,
                "runs": {k: [r.as_dict() for r in v] for k, v in self.runs.items()},
                "medians": {k: self.medians(k) for k in self.runs}}


def _etcd_calls(envoy: Envoy) -> float:
    return float(envoy.stat("cluster.etcd.upstream_rq_total", 0) or 0)


def run_hot(workdir: Path, wrk: str, *, rounds: int, seconds: int, connections: int,
            log: Any = print) -> EtcdHotResult:
    result = EtcdHotResult(connections=connections, seconds_per_run=seconds, rounds=rounds)
    etcd = EtcdServer(workdir, "etcd-hot").start()
    fleet = None
    envoys: dict[str, Envoy] = {}
    try:
        result.etcd_version = etcd.version()
        fleet = start_search_fleet(workdir)
        for backend in BACKENDS:
            envoys[backend] = _start(fleet, workdir, backend, f"etcd-hot-{backend}", etcd, {})
            hot_path._commit_one_settings_change(envoys[backend])
        urls = {b: envoys[b].url + SEARCH_PATH for b in BACKENDS}
        for backend in BACKENDS:
            hot_path._check_search(urls[backend], expect_version=True)
            run_load(wrk, urls[backend], SEARCH_BODY, connections=connections, seconds=hot_path.WARMUP_SECONDS)
        result.runs = {b: [] for b in BACKENDS}
        calls_before, methods_before, disk_before = _etcd_calls(envoys[ETCD]), etcd.calls(), etcd.wal_fsync()
        started = time.monotonic()
        for round_number in range(1, rounds + 1):
            for backend in (BACKENDS if round_number % 2 else BACKENDS[::-1]):
                load = run_load(wrk, urls[backend], SEARCH_BODY, connections=connections, seconds=seconds)
                result.runs[backend].append(load)
                log(f"  round {round_number}/{rounds} {backend:>11}: {load.rps:9.0f} req/s  "
                    f"p50 {load.p50_ms:6.2f} ms  p99 {load.p99_ms:6.2f} ms")
        elapsed = time.monotonic() - started
        result.etcd_calls_per_s = (_etcd_calls(envoys[ETCD]) - calls_before) / elapsed
        result.etcd_methods_per_s = {m: (n - methods_before.get(m, 0.0)) / elapsed for m, n in etcd.calls().items()
                                     if n > methods_before.get(m, 0.0)}
        result.etcd_writes_per_s = (etcd.wal_fsync() - disk_before).proposals / elapsed
        for backend in BACKENDS:  # still stamped after the load
            hot_path._check_search(urls[backend], expect_version=True)
    finally:
        for envoy in envoys.values():
            envoy.stop()
        if fleet is not None:
            fleet.stop()
        etcd.stop()
    return result
