"""A description of the machine the figures come from, for the head of results.md."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from common import paths


def _first(path: str, key: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key:
                return value.strip()
    except OSError:
        pass
    return "unknown"


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        text = (out.stdout or out.stderr).strip().splitlines()
        return text[0] if text else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def describe(wrk: str) -> dict[str, Any]:
    mem_kib = _first("/proc/meminfo", "MemTotal").split()[0]
    envoy_version = _version([str(paths.envoy_binary()), "--version"])
    # `envoy --version` prints "<binary>  version: <sha>/<version>/…": keep what follows "version:".
    envoy_version = envoy_version.split("version:", 1)[-1].strip()
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": _first("/proc/cpuinfo", "model name"),
        "memory_gib": round(int(mem_kib) / 1024 / 1024, 1) if mem_kib.isdigit() else "unknown",
        "os": f"{_os_name()}, Linux {platform.release()}",
        "envoy": envoy_version,
        "rustc": _version(["rustc", "--version"]),
        "wrk": _version([wrk, "--version"]).split(" Copyright")[0],
        "load_average_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
