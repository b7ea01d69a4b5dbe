"""Section 5 — mirrored write throughput: how many document writes per second are answered 202
through the gateway (Envoy + the miroir filter in mirror mode, three dev nodes) against one dev
node written directly, for batches of 1, 100 and 1000 documents; and whether the order held.

Load: wrk (1 thread, `--connections` closed-loop connections, default 8) POSTs one batch again
and again to `/indexes/{uid}/documents` of a fresh index per run for `--writes-seconds`; the
first document of every batch carries a sequence number (wrk_post.lua), so every write is
distinct. Configurations are interleaved round by round (gateway, direct; per batch size), and
every figure is the median over the rounds.

The direct node is a dev node process of its own (one node), not one of the gateway's three: a
batch-1 direct run leaves ~100 000 tasks on its node, and a gateway node holding those answered
the filter markedly slower in every later round (measured while writing this section: 777, 454,
356, 261 writes/s in rounds 1–4), which would charge the direct runs' leftovers to the gateway.

In mirror mode the filter holds each write, sends it to every node in one order per index and
answers it with its own task (202, uid from its range); the next write of the index goes out as
soon as every node answered 202 for the previous one. So the gateway's rate is bounded by one
write's round trip to the slowest node, not by the nodes' indexing.

After each gateway run (outside the measured time), the order is checked:
- the filter's tasks of the index (`GET /tasks?indexUids=…` through the gateway), sorted by uid,
  are as many as the 202s wrk counted, plus at most one per connection (a request in flight when
  wrk stopped is answered after wrk stopped counting), and all succeeded once the nodes are idle;
- for every node, the node task uids the filter recorded (`miroir.nodes[].task_uid`), taken in
  the filter's uid order, are exactly the node's own task list of the index, sorted by node uid
  (asked of each node directly): same writes, same order, nothing extra, nothing missing;
- every node's task says `receivedDocuments` = the batch size, and every node holds the same
  final state (document count, and the sequence number of the last write in document 0).
Direct runs get the count check only (one node: nothing to order against)."""

from __future__ import annotations

import json
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from common import BENCH_DIR, Fleet, cpu_seconds, median, paths, start_envoy, thread_cpu_seconds, wait_until
from loadgen import LoadRun, run_load
from vm_profile import VM, Profiler, available as profiler_available

NODES = 3
GATEWAY, DIRECT = "gateway (Envoy + filter, 3 nodes)", "direct to one node"
CONFIGS = (GATEWAY, DIRECT)
WARMUP_SECONDS = 1
TASK_UID_FLOOR = 2**30  # every filter task uid is at least this (task_uid_base's lower limit)
IDLE_TIMEOUT_SECONDS = 180.0
# Large enough to keep every task of a run (the default, 1000, would drop most of a batch-1 run's).
TASK_RETENTION = 100_000


def batch_body(size: int) -> tuple[str, str]:
    """The JSON array of `size` documents around the sequence number of its first document:
    (prefix, suffix), body = prefix + str(n) + suffix. ~60 bytes a document."""
    docs = [{"id": i, "title": f"document {i} of the batch", "genre": ("sf", "novel", "essay")[i % 3],
             "year": 1950 + i % 70} for i in range(size)]
    docs[0] = {"id": 0, "seq": "__SEQ__", **{k: v for k, v in docs[0].items() if k != "id"}}
    text = json.dumps(docs, separators=(",", ":"))
    prefix, suffix = text.split('"__SEQ__"')
    return prefix, suffix


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class WriteRun:
    config: str
    batch: int
    index: str
    load: LoadRun
    # CPU seconds of each process / wall seconds of the run; "envoy_thread": Envoy's busiest thread
    # (the worker that runs the index's writes), the same way.
    cpu_cores: dict[str, float]
    check: dict[str, Any] = field(default_factory=dict)

    @property
    def writes_per_s(self) -> float:
        return self.load.rps

    @property
    def docs_per_s(self) -> float:
        return self.load.rps * self.batch

    def as_dict(self) -> dict[str, Any]:
        return {"config": self.config, "batch": self.batch, "index": self.index, "load": self.load.as_dict(),
                "writes_per_s": self.writes_per_s, "docs_per_s": self.docs_per_s, "cpu_cores": self.cpu_cores,
                "check": self.check}


@dataclass
class MirrorWritesResult:
    connections: int
    seconds_per_run: int
    rounds: int
    batches: list[int]
    runs: dict[int, dict[str, list[WriteRun]]] = field(default_factory=dict)
    # Batch → Envoy's CPU per write by kind of code (vm_profile.KINDS, µs), from one more gateway
    # run under perf after the measured rounds (not in the medians: sampling slows Envoy a little,
    # and the direct runs have no Envoy to slow). Empty without perf.
    profile_us: dict[int, dict[str, float]] = field(default_factory=dict)

    def median_of(self, batch: int, config: str, key: str) -> float:
        runs = self.runs[batch][config]
        if key in ("writes_per_s", "docs_per_s"):
            return median([getattr(r, key) for r in runs])
        if key in ("p50_ms", "p99_ms"):
            return median([getattr(r.load, key) for r in runs])
        return median([r.cpu_cores[key] for r in runs])

    def as_dict(self) -> dict[str, Any]:
        return {"connections": self.connections, "seconds_per_run": self.seconds_per_run, "rounds": self.rounds,
                "batches": self.batches, "nodes": NODES,
                "runs": {str(b): {c: [r.as_dict() for r in runs] for c, runs in by.items()}
                         for b, by in self.runs.items()},
                "envoy_profile_us_per_write": {str(b): p for b, p in self.profile_us.items()},
                "medians": {str(b): {c: {k: self.median_of(b, c, k) for k in ("writes_per_s", "docs_per_s",
                                                                              "p50_ms", "p99_ms")}
                                     for c in by} for b, by in self.runs.items()}}


# --- talking to the gateway and the nodes ------------------------------------------------------


def _create_index(session: requests.Session, base_url: str, uid: str, *, through_filter: bool) -> None:
    answer = session.post(f"{base_url}/indexes", json={"uid": uid, "primaryKey": "id"}, timeout=30)
    if answer.status_code != 202:
        raise RuntimeError(f"create {uid} via {base_url}: {answer.status_code} {answer.text[:300]}")
    task_uid = answer.json()["taskUid"]
    if through_filter and task_uid < TASK_UID_FLOOR:
        raise RuntimeError(f"the gateway answered a node's task uid {task_uid}: the filter is not in mirror mode")

    def done() -> bool:
        task = session.get(f"{base_url}/tasks/{task_uid}", timeout=10).json()
        if task.get("status") == "failed":
            raise RuntimeError(f"creating {uid} failed: {task}")
        return task.get("status") == "succeeded"

    wait_until(done, 60, f"index {uid} to be created via {base_url}")


def _all_tasks(session: requests.Session, base_url: str, uid: str) -> list[dict[str, Any]]:
    """Every task of index `uid` that `base_url` lists (gateway: the filter's; node: its own),
    oldest first, following `next` page by page."""
    tasks: list[dict[str, Any]] = []
    query = f"indexUids={uid}&types=documentAdditionOrUpdate&limit=1000"
    url = f"{base_url}/tasks?{query}"
    while True:
        answer = session.get(url, timeout=30)
        if answer.status_code != 200:
            raise RuntimeError(f"GET {url}: {answer.status_code} {answer.text[:300]}")
        page = answer.json()
        tasks += page["results"]
        if page.get("next") is None:
            break
        url = f"{base_url}/tasks?{query}&from={page['next']}"
    return sorted(tasks, key=lambda t: t["uid"])


def _wait_terminal(session: requests.Session, base_url: str, uid: str) -> list[dict[str, Any]]:
    found: list[list[dict[str, Any]]] = [[]]

    def terminal() -> bool:
        found[0] = _all_tasks(session, base_url, uid)
        return all(t["status"] in ("succeeded", "failed", "canceled") for t in found[0])

    wait_until(terminal, IDLE_TIMEOUT_SECONDS, f"every task of {uid} at {base_url} to finish", interval=0.2)
    return found[0]


def _final_state(session: requests.Session, node_url: str, uid: str) -> tuple[int, Any]:
    stats = session.get(f"{node_url}/indexes/{uid}/stats", timeout=30).json()
    first = session.get(f"{node_url}/indexes/{uid}/documents/0", timeout=30).json()
    return stats.get("numberOfDocuments"), first.get("seq")


def check_gateway_run(session: requests.Session, fleet: Fleet, gateway_url: str, run: WriteRun,
                      connections: int) -> dict[str, Any]:
    """The order check of one gateway run (see the module's docstring); returns what it found."""
    filter_tasks = _wait_terminal(session, gateway_url, run.index)
    answered = run.load.requests
    problems: list[str] = []
    if not answered <= len(filter_tasks) <= answered + connections:
        problems.append(f"{len(filter_tasks)} filter tasks for {answered} 202s counted by wrk")
    not_succeeded = [t["uid"] for t in filter_tasks if t["status"] != "succeeded"]
    if not_succeeded:
        problems.append(f"{len(not_succeeded)} filter tasks did not succeed, e.g. {not_succeeded[:3]}")
    node_task_counts = []
    for i in range(fleet.size):
        node_id = f"node-{i}"
        recorded = []
        for t in filter_tasks:
            entry = next((n for n in t.get("miroir", {}).get("nodes", []) if n.get("node") == node_id), None)
            recorded.append(entry.get("task_uid") if entry else None)
        own = _wait_terminal(session, fleet.node_url(i), run.index)
        node_task_counts.append(len(own))
        if recorded != [t["uid"] for t in own]:
            first_bad = next((k for k, (a, b) in enumerate(zip(recorded, [t["uid"] for t in own])) if a != b),
                             min(len(recorded), len(own)))
            problems.append(f"{node_id}: its task list ({len(own)} tasks) is not the filter's order "
                            f"({len(recorded)} tasks), first difference at write {first_bad}")
        wrong = [t["uid"] for t in own if t["status"] != "succeeded"
                 or (t.get("details") or {}).get("receivedDocuments") != run.batch]
        if wrong:
            problems.append(f"{node_id}: {len(wrong)} tasks failed or received another batch size, e.g. {wrong[:3]}")
    states = [_final_state(session, url, run.index) for url in fleet.node_urls]
    if len(set(states)) != 1 or states[0][0] != run.batch:
        problems.append(f"final state differs between nodes (documents, seq of document 0): {states}")
    return {"answered_202": answered, "filter_tasks": len(filter_tasks), "node_tasks": node_task_counts,
            "final_state": [list(s) for s in states], "in_order": not problems, "problems": problems}


def _count(session: requests.Session, base_url: str, uid: str, statuses: str | None = None) -> int:
    """How many document tasks of `uid` the node lists (with these statuses): the `total` of a
    one-task page, so a run's ~10⁵ tasks are counted without paging through them."""
    query = f"indexUids={uid}&types=documentAdditionOrUpdate&limit=1" + (f"&statuses={statuses}" if statuses else "")
    answer = session.get(f"{base_url}/tasks?{query}", timeout=60)
    if answer.status_code != 200:
        raise RuntimeError(f"GET /tasks?{query} at {base_url}: {answer.status_code} {answer.text[:300]}")
    return int(answer.json()["total"])


def check_direct_run(session: requests.Session, node_url: str, run: WriteRun, connections: int) -> dict[str, Any]:
    """One node: as many tasks as 202s (plus those in flight at the stop), all succeeded."""
    wait_until(lambda: _count(session, node_url, run.index, "enqueued,processing") == 0, IDLE_TIMEOUT_SECONDS,
               f"the direct node to finish every task of {run.index}", interval=0.2)
    total = _count(session, node_url, run.index)
    succeeded = _count(session, node_url, run.index, "succeeded")
    answered = run.load.requests
    problems = []
    if not answered <= total <= answered + connections:
        problems.append(f"{total} node tasks for {answered} 202s counted by wrk")
    if succeeded != total:
        problems.append(f"{total - succeeded} node tasks did not succeed")
    return {"answered_202": answered, "node_tasks": [total], "ok": not problems, "problems": problems}


# --- the section -------------------------------------------------------------------------------


def run(workdir: Path, wrk: str, *, rounds: int, seconds: int, connections: int, batches: list[int],
        log: Any = print) -> MirrorWritesResult:
    result = MirrorWritesResult(connections=connections, seconds_per_run=seconds, rounds=rounds, batches=batches)
    fleet = Fleet(NODES, workdir).start()
    single: Fleet | None = None
    envoy = None
    session = requests.Session()
    try:
        single = Fleet(1, workdir).start()
        envoy = start_envoy(fleet, workdir, "writes", wasm=paths.filter_wasm(),
                            plugin_overrides={"writes": "mirror", "task_retention": TASK_RETENTION})
        base = {GATEWAY: envoy.url, DIRECT: single.node_url(0)}
        node_pid = {GATEWAY: fleet.process.pid, DIRECT: single.process.pid}
        envoy_pid = envoy.process.pid
        bodies = {b: batch_body(b) for b in batches}
        serial = 0

        def one(config: str, batch: int, secs: int, label: str) -> WriteRun:
            nonlocal serial
            serial += 1
            index = f"writes-{batch}-{'gw' if config == GATEWAY else 'direct'}-{label}-{serial}"
            _create_index(session, base[config], index, through_filter=config == GATEWAY)
            prefix, suffix = bodies[batch]
            threads_before = thread_cpu_seconds(envoy_pid)
            before = {"wrk": children_cpu_seconds(), "envoy": cpu_seconds(envoy_pid),
                      "nodes": cpu_seconds(node_pid[config])}
            load = run_load(wrk, f"{base[config]}/indexes/{index}/documents", "", connections=connections,
                            seconds=secs,
                            script_env={"WRK_BODY_PREFIX": prefix, "WRK_BODY_SUFFIX": suffix})
            after = {"wrk": children_cpu_seconds(), "envoy": cpu_seconds(envoy_pid),
                     "nodes": cpu_seconds(node_pid[config])}
            cores = {k: (after[k] - before[k]) / load.seconds for k in before}
            threads_after = thread_cpu_seconds(envoy_pid)
            # Direct runs: Envoy idles, and its busiest thread says so.
            cores["envoy_thread"] = max((t - threads_before.get(tid, 0.0) for tid, t in threads_after.items()),
                                        default=0.0) / load.seconds
            return WriteRun(config=config, batch=batch, index=index, load=load, cpu_cores=cores)

        for batch in batches:
            for config in CONFIGS:
                warm = one(config, batch, WARMUP_SECONDS, "warmup")
                # Let the nodes finish the warm-up's tasks before anything is measured.
                _wait_terminal(session, base[config], warm.index)
        result.runs = {b: {c: [] for c in CONFIGS} for b in batches}
        for round_number in range(1, rounds + 1):
            for batch in batches:
                for config in CONFIGS:
                    measured = one(config, batch, seconds, f"r{round_number}")
                    checked = time.monotonic()
                    if config == GATEWAY:
                        measured.check = check_gateway_run(session, fleet, envoy.url, measured, connections)
                        verdict = "order ok" if measured.check["in_order"] else "ORDER BROKEN"
                    else:
                        measured.check = check_direct_run(session, single.node_url(0), measured, connections)
                        verdict = "count ok" if measured.check["ok"] else "COUNT WRONG"
                    measured.check["seconds"] = round(time.monotonic() - checked, 2)
                    result.runs[batch][config].append(measured)
                    c = measured.cpu_cores
                    log(f"  round {round_number}/{rounds} batch {batch:>4} {config:>34}: "
                        f"{measured.writes_per_s:8.0f} writes/s {measured.docs_per_s:9.0f} docs/s  "
                        f"p50 {measured.load.p50_ms:7.2f} ms  cpu wrk {c['wrk']:.2f} envoy {c['envoy']:.2f} "
                        f"(busiest thread {c['envoy_thread']:.2f}) nodes {c['nodes']:.2f}  {verdict}")
                    for problem in measured.check.get("problems", []):
                        log(f"    ! {problem}")
        if profiler_available():
            for batch in batches:
                with Profiler(envoy_pid, workdir / "writes.perf.data") as profiler:
                    profiled = one(GATEWAY, batch, seconds, "profile")
                split = profiler.per_request_us(profiled.load.requests)
                _wait_terminal(session, envoy.url, profiled.index)
                if split:
                    result.profile_us[batch] = split
                    log(f"  profiled batch {batch:>4} gateway: {profiled.writes_per_s:8.0f} writes/s, "
                        f"{split[VM]:.0f} µs of VM code per write")
        else:
            log("  perf is not available: no split of Envoy's CPU per write by kind of code")
    finally:
        session.close()
        if envoy is not None:
            envoy.stop()
        if single is not None:
            single.stop()
        fleet.stop()
    return result
