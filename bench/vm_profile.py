"""Where an Envoy's CPU goes during a load run, from `perf record` samples of the process: time in
code V8 compiled (the wasm module's functions and the stubs that cross into and out of it), in
Envoy's own code (the binary: HTTP, routing, the proxy-wasm host, V8's runtime), in the kernel.

Why a profile next to the process's CPU time: two Envoys running the same no-op module differed by
13 µs of CPU per request (measured here, 2026-12-03: 222.8 against 235.8 µs, medians of 3 rounds),
more than the whole filter costs, while their time in compiled wasm differed by 0.1 µs (2.3 and
2.4). So "miroir − no-op" in VM code is the filter's own code apart from Envoy's noise; the process
CPU keeps the total, the host's side of each host call included.

perf is Debian's `linux-perf`; without it, or without permission to profile (perf_event_paranoid),
the section reports the process CPU only."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

SAMPLE_HZ = 2999  # not a multiple of any timer tick of the process (10 ms ticks, 1 ms stats flushes)
START_SECONDS = 0.3  # perf attaches to every thread of the process before the load starts

VM, ENVOY, KERNEL, OTHER = "wasm VM code", "Envoy's code", "kernel", "libraries"
KINDS = (VM, ENVOY, KERNEL, OTHER)


def available() -> bool:
    """Whether perf can profile a process of this user here."""
    perf = shutil.which("perf")
    if not perf:
        return False
    probe = subprocess.run([perf, "stat", "-e", "task-clock", "--", "true"], capture_output=True, timeout=30)
    return probe.returncode == 0


def _kind(dso: str) -> str:
    if dso.startswith("[JIT]"):
        return VM
    if dso == "envoy":
        return ENVOY
    if dso.startswith("[kernel"):
        return KERNEL
    return OTHER


@dataclass
class Profile:
    """CPU seconds of the process by kind of code, over one profiled run."""

    seconds: dict[str, float]

    def per_request_us(self, requests: int) -> dict[str, float]:
        return {k: self.seconds.get(k, 0.0) / requests * 1e6 for k in KINDS} if requests > 0 else {}


class Profiler:
    """`with Profiler(pid, path) as p: <load>`; then `p.profile` (None when perf failed)."""

    def __init__(self, pid: int, data_path: Path) -> None:
        self.pid = pid
        self.data_path = data_path
        self.process: subprocess.Popen[bytes] | None = None
        self.profile: Profile | None = None

    def __enter__(self) -> "Profiler":
        self.process = subprocess.Popen(
            ["perf", "record", "-q", "-F", str(SAMPLE_HZ), "-p", str(self.pid), "-o", str(self.data_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            self.process.wait(timeout=START_SECONDS)  # returns only if perf could not start
        except subprocess.TimeoutExpired:
            pass
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
                return
        # perf record ends by the SIGINT it was sent (-2), or 0: either way its data file is complete.
        if self.process.returncode in (0, -signal.SIGINT) and exc[0] is None and self.data_path.exists():
            self.profile = _read(self.data_path)

    def per_request_us(self, requests: int) -> dict[str, float]:
        return self.profile.per_request_us(requests) if self.profile else {}


def _read(data_path: Path) -> Profile | None:
    report = subprocess.run(["perf", "report", "-i", str(data_path), "--stdio", "--sort", "dso", "-F", "sample,dso"],
                            capture_output=True, text=True, timeout=120)
    if report.returncode != 0:
        return None
    seconds = {k: 0.0 for k in KINDS}
    for line in report.stdout.splitlines():
        match = re.match(r"\s*(\d+)\s+(\S.*?)\s*$", line)
        if match and not line.lstrip().startswith("#"):
            seconds[_kind(match.group(2))] += int(match.group(1)) / SAMPLE_HZ
    data_path.unlink(missing_ok=True)
    return Profile(seconds)
