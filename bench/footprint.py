"""Section 4 — footprint: the size of each module, and Envoy's resident memory (VmRSS from
/proc/<pid>/status) at `--concurrency 2` without a filter, with the no-op filter and with the
miroir filter: once ready, and after a warm-up of search load (every worker VM has then served
requests). Each Envoy is started fresh, alone, in front of the same three dev nodes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import time

import requests

from common import memory_by_kind_kib, noop_wasm, paths, rss_kib, start_envoy
from loadgen import run_load
from search_fleet import SEARCH_BODY, SEARCH_PATH, start_search_fleet

WARMUP_SECONDS = 5
WARMUP_CONNECTIONS = 32
# Read after the load and this long idle: three of the bootstraps' 1 s allocator release
# intervals, so what V8 freed while tiering up under the load has had its chance to go back.
IDLE_SECONDS = 3


@dataclass
class FootprintResult:
    module_bytes: dict[str, int] = field(default_factory=dict)
    rss_ready_kib: dict[str, int] = field(default_factory=dict)
    rss_warm_kib: dict[str, int] = field(default_factory=dict)
    hwm_kib: dict[str, int] = field(default_factory=dict)
    # After the warm-up: resident KiB by kind of mapping (`common.memory_by_kind_kib`), and how many
    # copies of the module's bytes the allocator arena holds.
    by_kind_kib: dict[str, dict[str, int]] = field(default_factory=dict)
    module_copies: dict[str, int] = field(default_factory=dict)
    # After the warm-up: Envoy's allocator (tcmalloc) as its admin `/memory` reports it, in bytes:
    # allocated (live), heap_size, pageheap_free, pageheap_unmapped, total_thread_cache.
    allocator_bytes: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def run(workdir: Path, wrk: str, log: Any = print) -> FootprintResult:
    result = FootprintResult()
    wasm_of: dict[str, Path | None] = {"no filter": None, "no-op wasm": noop_wasm(), "miroir": paths.filter_wasm()}
    for config, wasm in wasm_of.items():
        if wasm is not None:
            result.module_bytes[config] = wasm.stat().st_size
    fleet = start_search_fleet(workdir)
    try:
        for config, wasm in wasm_of.items():
            envoy = start_envoy(fleet, workdir, f"footprint-{config.split()[0]}", wasm=wasm)
            try:
                pid = envoy.process.pid
                assert pid is not None
                result.rss_ready_kib[config] = rss_kib(pid)["VmRSS"]
                run_load(wrk, envoy.url + SEARCH_PATH, SEARCH_BODY, connections=WARMUP_CONNECTIONS,
                         seconds=WARMUP_SECONDS)
                time.sleep(IDLE_SECONDS)
                memory = rss_kib(pid)
                result.rss_warm_kib[config] = memory["VmRSS"]
                result.hwm_kib[config] = memory["VmHWM"]
                result.by_kind_kib[config], result.module_copies[config] = memory_by_kind_kib(pid, wasm)
                answer = requests.get(envoy.admin_url + "/memory", timeout=10)
                answer.raise_for_status()
                result.allocator_bytes[config] = {k: int(v) for k, v in answer.json().items()}
                log(f"  {config:>10}: RSS ready {result.rss_ready_kib[config] / 1024:6.1f} MiB, after "
                    f"{WARMUP_SECONDS} s of load {memory['VmRSS'] / 1024:6.1f} MiB")
            finally:
                envoy.stop()
    finally:
        fleet.stop()
    return result
