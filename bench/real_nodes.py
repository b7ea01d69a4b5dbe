"""Section 8 — real Meilisearch nodes: section 1's three Envoys (no filter, no-op wasm filter,
miroir filter) in front of three real Meilisearch processes holding a generated `movies` index of
a few thousand documents, when MEILISEARCH_BIN names a Meilisearch binary. Section 1 runs against
dev nodes, which answer in microseconds, so it shows the filter's own cost; these rows show what a
user would see, with a real engine's work in every answer.

Two requests, each measured through the three Envoys, interleaved round by round (document GET
no filter, no-op, miroir; search no filter, no-op, miroir; next round …); medians over the rounds.
Without MEILISEARCH_BIN the section costs nothing and the report says how to get the rows."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from common import Envoy, median, noop_wasm, paths, poll_task, start_envoy, table
from hot_path import ENVOY_CONFIGS, MIROIR, NO_FILTER, NOOP, VERSION_HEADER, WARMUP_SECONDS
from loadgen import LoadRun, run_load
from meilisearch_nodes import MeilisearchNodes

NODES = 3
INDEX = "movies"
DOCUMENT_COUNT = 5000
# Meilisearch refuses master keys shorter than 16 bytes outside development mode.
MASTER_KEY = "miroir-bench-master-key"
AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}
INDEXING_TIMEOUT_SECONDS = 180.0
WORDS = ("star", "moon", "river", "night", "voyage", "city", "storm", "garden", "shadow", "winter")
GENRES = ("drama", "comedy", "science fiction", "documentary", "thriller", "animation")

DOCUMENT_ID = 2024
DOCUMENT = "GET document"
SEARCH = "search"
# name -> (method, path, body)
REQUESTS: dict[str, tuple[str, str, str]] = {
    DOCUMENT: ("GET", f"/indexes/{INDEX}/documents/{DOCUMENT_ID}", ""),
    SEARCH: ("POST", f"/indexes/{INDEX}/search", json.dumps({"q": "star"}, separators=(",", ":"))),
}
# Issue 13: what the miroir filter may cost over the no-op filter on real nodes (req/s ratio).
GOALS = {DOCUMENT: 0.98, SEARCH: 0.99}

NOT_SET = "MEILISEARCH_BIN is not set: no real Meilisearch binary on this machine"


def documents(count: int = DOCUMENT_COUNT) -> list[dict[str, Any]]:
    """Deterministic movies: two words of WORDS in every title, so "star" is in one title of five."""
    out = []
    for i in range(count):
        first, second = WORDS[i % len(WORDS)], WORDS[(i * 7 + 3) % len(WORDS)]
        out.append({"id": i, "title": f"{first} {second} {i}", "year": 1950 + i % 75,
                    "genre": GENRES[i % len(GENRES)]})
    return out


@dataclass
class RealNodesResult:
    skipped: str | None = None
    version: dict[str, Any] = field(default_factory=dict)
    documents: int = 0
    connections: int = 0
    seconds_per_run: int = 0
    rounds: int = 0
    # request -> configuration -> one run per round
    runs: dict[str, dict[str, list[LoadRun]]] = field(default_factory=dict)

    def medians(self, request: str, config: str) -> dict[str, float]:
        runs = self.runs[request][config]
        return {"rps": median([r.rps for r in runs]), "p50_ms": median([r.p50_ms for r in runs]),
                "p99_ms": median([r.p99_ms for r in runs])}

    def as_dict(self) -> dict[str, Any]:
        if self.skipped:
            return {"skipped": self.skipped}
        return {"version": self.version, "documents": self.documents, "connections": self.connections,
                "seconds_per_run": self.seconds_per_run, "rounds": self.rounds,
                "requests": {name: {"method": m, "path": p, "body": b} for name, (m, p, b) in REQUESTS.items()},
                "runs": {q: {c: [r.as_dict() for r in runs] for c, runs in by.items()} for q, by in self.runs.items()},
                "medians": {q: {c: self.medians(q, c) for c in by} for q, by in self.runs.items()}}


def meilisearch_binary() -> Path | str:
    """The binary MEILISEARCH_BIN names, or why the section is skipped."""
    value = os.environ.get("MEILISEARCH_BIN", "").strip()
    if not value:
        return NOT_SET
    binary = Path(value)
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        return f"MEILISEARCH_BIN={value} is not an executable file"
    return binary


def free_ports(count: int) -> list[int]:
    """Ports the kernel hands out now (all held at once, so they differ); a small race remains
    between closing them and Meilisearch binding, which a failed start would show."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _accepted(answer: requests.Response, what: str) -> int:
    if answer.status_code != 202:
        raise RuntimeError(f"{what}: {answer.status_code} {answer.text[:300]}")
    return int(answer.json()["taskUid"])


def _succeeded(base_url: str, uid: int, what: str) -> None:
    task, _ = poll_task(base_url, uid, timeout=INDEXING_TIMEOUT_SECONDS, interval=0.05, headers=AUTH)
    if task["status"] != "succeeded":
        raise RuntimeError(f"{what} did not succeed: {json.dumps(task)[:500]}")


def load_index(nodes: MeilisearchNodes) -> int:
    """Create `movies` and add the documents on every node directly (no filter involved), all nodes
    at once; wait (bounded) until every node's tasks succeeded. Returns the document count."""
    docs = documents()
    urls = [f"http://127.0.0.1:{port}" for port in nodes.ports]
    tasks = []
    for url in urls:
        created = _accepted(requests.post(f"{url}/indexes", json={"uid": INDEX, "primaryKey": "id"},
                                          headers=AUTH, timeout=30), f"create {INDEX} on {url}")
        added = _accepted(requests.post(f"{url}/indexes/{INDEX}/documents", json=docs, headers=AUTH, timeout=60),
                          f"add {len(docs)} documents on {url}")
        tasks.append((url, created, added))
    for url, created, added in tasks:
        _succeeded(url, created, f"creating {INDEX} on {url}")
        _succeeded(url, added, f"adding the documents on {url}")
        stats = requests.get(f"{url}/indexes/{INDEX}/stats", headers=AUTH, timeout=10)
        count = stats.json().get("numberOfDocuments") if stats.status_code == 200 else None
        if count != len(docs):
            raise RuntimeError(f"{url} holds {count} documents of {INDEX}, not {len(docs)}: {stats.text[:300]}")
    return len(docs)


def _commit_one_settings_change(envoy: Envoy) -> None:
    """As section 1: one settings write through the miroir filter, so every answer is stamped."""
    answer = requests.patch(f"{envoy.url}/indexes/{INDEX}/settings", json={"searchCutoffMs": 150}, headers=AUTH,
                            timeout=30)
    _succeeded(envoy.url, _accepted(answer, "settings write through the filter"), "settings write through the filter")


def _check(envoy: Envoy, request: str, expect_version: bool) -> None:
    method, path, body = REQUESTS[request]
    headers = dict(AUTH, **({"content-type": "application/json"} if body else {}))
    answer = requests.request(method, envoy.url + path, data=body or None, headers=headers, timeout=10)
    if answer.status_code != 200:
        raise RuntimeError(f"{request} via {envoy.name}: {answer.status_code} {answer.text[:200]}")
    payload = answer.json()
    ok = payload.get("id") == DOCUMENT_ID if request == DOCUMENT else bool(payload.get("hits"))
    if not ok:
        raise RuntimeError(f"{request} via {envoy.name}: unexpected answer {answer.text[:200]}")
    if expect_version != (VERSION_HEADER in answer.headers):
        raise RuntimeError(f"{request} via {envoy.name}: {VERSION_HEADER} expected={expect_version}, "
                           f"headers {dict(answer.headers)}")


def _wasm_vms(envoy: Envoy) -> int:
    stats = envoy.stats(r"wasm\.envoy\.wasm\.runtime\.v8\.active")
    return int(sum(v for v in stats.values() if isinstance(v, (int, float))))


def run(workdir: Path, wrk: str, *, rounds: int, seconds: int, connections: int,
        log: Any = print) -> RealNodesResult:
    binary = meilisearch_binary()
    if isinstance(binary, str):
        log(f"  skipped: {binary}")
        return RealNodesResult(skipped=binary)
    result = RealNodesResult(connections=connections, seconds_per_run=seconds, rounds=rounds)
    nodes = MeilisearchNodes(binary, free_ports(NODES), workdir / "real-nodes", MASTER_KEY)
    nodes.start()  # bounded; stops the nodes itself when one never becomes healthy
    envoys: dict[str, Envoy] = {}
    try:
        version = requests.get(f"http://127.0.0.1:{nodes.ports[0]}/version", headers=AUTH, timeout=10)
        version.raise_for_status()
        result.version = version.json()
        log(f"  {binary}: Meilisearch {result.version.get('pkgVersion')} on ports {nodes.ports}")
        result.documents = load_index(nodes)
        log(f"  {result.documents} documents indexed on each node")
        wasm_of = {NO_FILTER: None, NOOP: noop_wasm(), MIROIR: paths.filter_wasm()}
        # The filter's own calls (commit, task polls, verify) authenticate with the nodes' key.
        env = {"MIROIR_NODE_API_KEY": MASTER_KEY}
        for config in ENVOY_CONFIGS:
            envoys[config] = start_envoy(nodes, workdir, f"real-{config.split()[0]}", wasm=wasm_of[config], env=env)
        _commit_one_settings_change(envoys[MIROIR])
        for config in ENVOY_CONFIGS:
            for request in REQUESTS:
                _check(envoys[config], request, expect_version=config == MIROIR)
            vms = _wasm_vms(envoys[config])
            if (vms > 0) != (wasm_of[config] is not None):
                raise RuntimeError(f"{config}: Envoy reports {vms} live wasm VMs")

        def load(request: str, config: str, secs: int) -> LoadRun:
            method, path, body = REQUESTS[request]
            return run_load(wrk, envoys[config].url + path, body, connections=connections, seconds=secs,
                            method=method, headers=AUTH)

        for request in REQUESTS:
            for config in ENVOY_CONFIGS:
                load(request, config, WARMUP_SECONDS)
        result.runs = {request: {config: [] for config in ENVOY_CONFIGS} for request in REQUESTS}
        for round_number in range(1, rounds + 1):
            for request in REQUESTS:
                for config in ENVOY_CONFIGS:
                    measured = load(request, config, seconds)
                    result.runs[request][config].append(measured)
                    log(f"  round {round_number}/{rounds} {request:>12} {config:>10}: {measured.rps:9.0f} req/s  "
                        f"p50 {measured.p50_ms:6.2f} ms  p99 {measured.p99_ms:6.2f} ms")
        # The answers under load were the filter's too: the version stamp is still there.
        for request in REQUESTS:
            _check(envoys[MIROIR], request, expect_version=True)
    finally:
        for envoy in envoys.values():
            envoy.stop()
        nodes.stop()
    return result


# --- report -----------------------------------------------------------------------------------


def render(r: RealNodesResult) -> str:
    """The body of section 8 in results.md (report.py adds the heading)."""
    if r.skipped:
        return (f"Not measured in this run ({r.skipped}). These rows put three real Meilisearch processes, "
                f"each holding the same {DOCUMENT_COUNT} generated documents, behind section 1's three Envoys, "
                "so that next to the filter's own cost on dev nodes they show what a user would see. To get "
                "them, point MEILISEARCH_BIN at a Meilisearch v1.50 binary: "
                "`MEILISEARCH_BIN=/path/to/meilisearch make bench` (or `make bench ARGS=\"--only real\"` "
                "with the variable set, for this section alone).")
    v = r.version
    parts = [
        f"Three real Meilisearch {v.get('pkgVersion', '?')} processes (commit `{str(v.get('commitSha', '?'))[:12]}`, "
        f"`GET /version`) on loopback, each with its own database and the master key, holding the same "
        f"`{INDEX}` index of {r.documents:,} generated documents (id, title of two words, year, genre; "
        "\"star\" is in one title of five), loaded on each node directly. Section 1's three Envoys in front "
        f"of them (the miroir one committed one settings write first, so every answer is stamped); wrk with "
        f"1 thread and {r.connections} connections, every request with the master key, {r.rounds} rounds × "
        f"{r.seconds_per_run} s, requests and configurations interleaved in every round; medians over the "
        "rounds. Everything — wrk, the Envoys, the three Meilisearch processes — shares this machine's cores.",
    ]
    ratio_rows = []
    verdicts = []
    for request, (method, path, body) in REQUESTS.items():
        by = r.runs[request]
        m = {c: r.medians(request, c) for c in by}
        rows = []
        for config in ENVOY_CONFIGS:
            rps = [x.rps for x in by[config]]
            rows.append((config, f"{m[config]['rps']:.0f}", f"{m[config]['p50_ms']:.2f}",
                         f"{m[config]['p99_ms']:.2f}", f"{min(rps):.0f}–{max(rps):.0f}"))
        shown = f"`{method} {path}`" + (f" with `{body}`" if body else "")
        parts += ["", f"**{request}**: {shown}", "",
                  table(["configuration", "req/s", "p50 ms", "p99 ms", "req/s min–max"], rows)]
        for a, b in ((MIROIR, NOOP), (MIROIR, NO_FILTER), (NOOP, NO_FILTER)):
            paired = [x.rps / y.rps for x, y in zip(by[a], by[b])]
            of_medians = m[a]["rps"] / m[b]["rps"]
            goal = GOALS[request] if (a, b) == (MIROIR, NOOP) else None
            met = "—" if goal is None else f"≥ {goal}: {'yes' if of_medians >= goal else 'no'}"
            label = f"{a} / {b}"
            ratio_rows.append((request, label, f"{of_medians:.3f}",
                               f"{median(paired):.3f} ({min(paired):.2f}–{max(paired):.2f})",
                               f"{m[a]['p50_ms'] / m[b]['p50_ms']:.3f}", f"{m[a]['p99_ms'] / m[b]['p99_ms']:.3f}", met))
            if b == NOOP:
                low, high = min(paired), max(paired)
                agree = "the rounds disagree on the direction, so the difference is within this run's noise" \
                    if low <= 1.0 <= high else "every round agrees on the direction"
                verdicts.append(f"{request}, `{label}`: {agree} ({low:.2f}–{high:.2f})")
    parts += ["", table(["request", "ratio", "req/s (of medians)", "req/s per round: median (min–max)", "p50", "p99",
                         "goal (issue 13)"], ratio_rows, "llrrrrl"),
              "", "Significance: " + "; ".join(verdicts) + ". Read the ratios as in section 1; the goals "
              "compare the miroir filter with the no-op filter, i.e. the filter's own work per request with a "
              "real engine behind it."]
    return "\n".join(parts)
