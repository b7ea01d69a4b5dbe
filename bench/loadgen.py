"""The load generator: `wrk` (Debian package), driven by wrk_post.lua.

Why wrk and not oha: `cargo install oha --locked` compiled for 5 min 49 s on this 2-core machine
(measured 2026-11-26), more than a quarter of the 20-minute budget of a fresh `make bench`;
`apt-get install wrk` takes seconds. wrk is a closed-loop generator: each connection sends its
next request when the previous answer arrives, so "concurrency" is the connection count."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from common import BENCH_DIR, Stopwatch

LUA_SCRIPT = BENCH_DIR / "wrk_post.lua"
SUMMARY_PREFIX = "WRK_JSON "


@dataclass
class LoadRun:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: dict[str, int]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "seconds": self.seconds, "rps": self.rps, "p50_ms": self.p50_ms,
                "p90_ms": self.p90_ms, "p99_ms": self.p99_ms, "errors": self.errors}


def ensure_wrk() -> tuple[str, float]:
    """The wrk binary, installing the Debian package when missing; returns (path, install seconds)."""
    found = shutil.which("wrk")
    if found:
        return found, 0.0
    if os.geteuid() != 0:
        raise RuntimeError("wrk is not installed and this is not root: run `sudo apt-get install -y wrk`")
    with Stopwatch() as sw:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, timeout=300, env=env, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, timeout=300, env=env,
                       capture_output=True)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("apt-get installed wrk but it is not on PATH")
    return found, sw.seconds


def run_load(wrk: str, url: str, body: str, *, connections: int, seconds: int, threads: int = 1,
             script_env: dict[str, str] | None = None, method: str = "POST",
             headers: dict[str, str] | None = None) -> LoadRun:
    """One bounded wrk run of POSTs of `body` to `url` (or of the numbered bodies `script_env`
    describes, see wrk_post.lua; or, with `method="GET"`, of GETs without a body). `headers` are
    sent with every request (wrk's -H). Any socket error or non-2xx/3xx answer fails the run: a
    benchmark of errors would measure nothing."""
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", str(LUA_SCRIPT)]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    argv.append(url)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30,
                            env=dict(os.environ, WRK_BODY=body, WRK_METHOD=method, **(script_env or {})))
    if result.returncode != 0:
        raise RuntimeError(f"wrk exited {result.returncode}: {result.stderr[-2000:]}")
    summary = None
    for line in result.stdout.splitlines():
        if line.startswith(SUMMARY_PREFIX):
            summary = json.loads(line[len(SUMMARY_PREFIX):])
    if summary is None:
        raise RuntimeError(f"wrk printed no summary line:\n{result.stdout[-2000:]}")
    errors = {k: int(v) for k, v in summary["errors"].items()}
    if summary["requests"] == 0 or any(errors.values()):
        raise RuntimeError(f"wrk run against {url} had errors or no requests: {summary}")
    latency = summary["latency_us"]
    return LoadRun(requests=int(summary["requests"]), seconds=summary["duration_us"] / 1e6,
                   p50_ms=latency["p50"] / 1000, p90_ms=latency["p90"] / 1000, p99_ms=latency["p99"] / 1000,
                   errors=errors)
