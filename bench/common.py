"""What every benchmark section shares: the harness import, where outputs go, timing helpers and
the statistics used in every table (medians of all runs, nothing dropped)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from datetime import datetime, timezone
from typing import Any, Sequence

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
E2E_DIR = REPO_ROOT / "tests" / "e2e"
OUT_DIR = BENCH_DIR / "out"  # git-ignored: logs, bootstraps, bodies, raw JSON of every run

# The benchmarks drive the same harness as the end-to-end tests (Fleet, Envoy, bootstrap).
if str(E2E_DIR) not in sys.path:
    sys.path.insert(0, str(E2E_DIR))

import envoy_config  # noqa: E402
import paths  # noqa: E402
from envoy_process import Envoy  # noqa: E402
from fleet import Fleet  # noqa: E402
from waiting import wait_until  # noqa: E402

__all__ = [
    "BENCH_DIR", "REPO_ROOT", "OUT_DIR", "Envoy", "Fleet", "envoy_config", "paths", "wait_until",
    "median", "Stopwatch", "run_command", "start_envoy", "noop_wasm", "rss_kib", "poll_task", "epoch_ms",
    "cpu_seconds", "memory_by_kind_kib", "table",
]

NOOP_WASM_NAME = "miroir_bench_noop_filter.wasm"


def noop_wasm() -> Path:
    return paths.TARGET_DIR / "wasm32-wasip1" / "release" / NOOP_WASM_NAME


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of no values")
    return float(statistics.median(values))


@dataclass
class Stopwatch:
    """Wall time of a block: `with Stopwatch() as sw: ...; sw.seconds`."""

    started: float = 0.0
    seconds: float = 0.0

    def __enter__(self) -> "Stopwatch":
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.monotonic() - self.started


def run_command(argv: Sequence[str], *, timeout: float, env: dict[str, str] | None = None,
                cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    """Run a command to completion (bounded), failing loudly with its output if it fails."""
    result = subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def start_envoy(fleet: Fleet, workdir: Path, name: str, *, wasm: Path | None,
                plugin_overrides: dict[str, Any] | None = None,
                extra_clusters: Sequence[dict[str, Any]] = (), env: dict[str, str] | None = None) -> Envoy:
    """An Envoy at `--concurrency 2` in front of `fleet` (anything with `envoy_nodes`: dev nodes or
    real Meilisearch), without access log (benchmarks measure the proxy, not its logging), started
    and ready. `extra_clusters` are added as they are (the etcd backend's cluster); `env` reaches
    Envoy's environment (the filter's MIROIR_NODE_API_KEY when the nodes have a master key)."""
    config = envoy_config.bootstrap(fleet.envoy_nodes, wasm_path=wasm, plugin_overrides=plugin_overrides,
                                    access_log=False)
    config["static_resources"]["clusters"].extend(extra_clusters)
    return Envoy(config, workdir, name=name, concurrency=2, env=env).start()


def rss_kib(pid: int) -> dict[str, int]:
    """Resident memory of a process from /proc/<pid>/status: VmRSS (now) and VmHWM (peak), KiB."""
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a live process (all its threads), from /proc/<pid>/stat."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """User + system CPU time of each live thread of a process, by thread id (/proc/<pid>/task)."""
    out: dict[int, float] = {}
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        out[int(stat.parent.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


ARENA = "allocator arena"


def memory_by_kind_kib(pid: int, module: Path | None = None) -> tuple[dict[str, int], int]:
    """Resident memory of a process by kind of mapping, from /proc/<pid>/smaps (KiB), and how many
    copies of `module`'s bytes the allocator arena holds:
    `jit code` — anonymous executable mappings (V8's compiled wasm and its own code);
    `allocator arena` — the largest anonymous mapping: Envoy's allocator's (tcmalloc's; its size
    follows the heap size Envoy's admin `/memory` reports), where Envoy's heap is, and where V8
    keeps what it allocates with malloc: the module's bytes, what it decoded and compiled from
    them, and the memory its compiler freed;
    `other anonymous` — the rest of the anonymous memory (V8's own heap pages, the VMs' linear
    memories, thread stacks);
    `files` — mapped files (the Envoy binary, libraries)."""
    maps: list[list[Any]] = []  # start, end, kind, resident KiB
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
            start, end = (int(x, 16) for x in head[0].split("-"))
            path = head[5] if len(head) > 5 else ""
            anonymous = head[4] == "0" and (path == "" or path.startswith("["))
            kind = "files" if not anonymous else "jit code" if "x" in head[1] else "other anonymous"
            maps.append([start, end, kind, 0])
        elif head and head[0] == "Rss:" and maps:
            maps[-1][3] += int(head[1])
    anonymous = [m for m in maps if m[2] == "other anonymous"]
    arena = max(anonymous, key=lambda m: m[3]) if anonymous else None
    copies = 0
    if arena is not None:
        arena[2] = ARENA
        if module is not None:
            probe = module.read_bytes()[:4096]
            with open(f"/proc/{pid}/mem", "rb") as memory:
                memory.seek(arena[0])
                copies = memory.read(arena[1] - arena[0]).count(probe)
    kinds = {"jit code": 0, ARENA: 0, "other anonymous": 0, "files": 0}
    for m in maps:
        kinds[m[2]] += m[3]
    return kinds, copies


def poll_task(base_url: str, uid: int, timeout: float, interval: float = 0.01,
              headers: dict[str, str] | None = None) -> tuple[dict[str, Any], float]:
    """Poll `GET /tasks/{uid}` (with `headers`, e.g. a node's key) until the task is terminal;
    returns the task and the wall time (time.time()) at which the client first saw it terminal."""
    import requests  # the venv's; imported here so `common` loads without it for --help

    session = requests.Session()
    deadline = time.monotonic() + timeout
    try:
        while True:
            response = session.get(f"{base_url}/tasks/{uid}", headers=headers, timeout=10)
            seen = time.time()
            if response.status_code == 200:
                task = response.json()
                if task.get("status") in ("succeeded", "failed", "canceled"):
                    return task, seen
            if time.monotonic() > deadline:
                raise TimeoutError(f"task {uid} not terminal after {timeout:.0f}s: {response.status_code} {response.text[:300]}")
            time.sleep(interval)
    finally:
        session.close()


def epoch_ms(rfc3339: str) -> float:
    """Milliseconds since the epoch of a task timestamp such as `2026-11-26T15:52:00.901Z` (the
    filter writes milliseconds; a node may write nanoseconds, which Python truncates to µs)."""
    text = rfc3339.rstrip("Z")
    whole, _, fraction = text.partition(".")
    moment = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return moment.timestamp() * 1000 + (float("0." + fraction) * 1000 if fraction else 0.0)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], align: str = "") -> str:
    """A Markdown table; `align` is one letter per column (l/r), right by default except the first."""
    align = align or "l" + "r" * (len(headers) - 1)
    marks = ["---:" if a == "r" else ":---" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
