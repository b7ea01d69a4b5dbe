"""What the benchmarks need besides the venv, built or installed here and timed, so that a fresh
machine's `make bench` includes the cost: the miroir filter and the no-op filter (wasm, release),
the dev node and the native fingerprint timer (release), and wrk."""

from __future__ import annotations

import os
import shutil
from typing import Any

from common import Stopwatch, noop_wasm, paths, run_command
from loadgen import ensure_wrk

BUILD_TIMEOUT_SECONDS = 900


def prepare(log: Any = print) -> tuple[str, dict[str, float]]:
    """Returns the wrk path and the seconds each step took (0 when there was nothing to do)."""
    timings: dict[str, float] = {}
    with Stopwatch() as sw:
        if shutil.which("rustup"):
            run_command(["rustup", "-q", "target", "add", "wasm32-wasip1"], timeout=BUILD_TIMEOUT_SECONDS)
        run_command(["cargo", "build", "--release", "--target", "wasm32-wasip1",
                     "-p", "miroir-filter", "-p", "miroir-bench-noop-filter"], timeout=BUILD_TIMEOUT_SECONDS)
        # The modules as `make build` ships them: wasm-opt over both when it is installed (over
        # what cargo built, never over a module given in MIROIR_WASM).
        for module in (paths.TARGET_DIR / "wasm32-wasip1" / "release" / "miroir_filter.wasm", noop_wasm()):
            run_command(["bash", str(paths.REPO_ROOT / "scripts" / "optimize-wasm.sh"), str(module)],
                        timeout=BUILD_TIMEOUT_SECONDS)
    timings["wasm modules (miroir, no-op)"] = sw.seconds
    log(f"  wasm modules built in {sw.seconds:.1f} s")
    with Stopwatch() as sw:
        run_command(["cargo", "build", "--release", "-p", "miroir-devnode", "-p", "miroir-bench-fingerprint"],
                    timeout=BUILD_TIMEOUT_SECONDS)
    timings["dev node + native fingerprint timer"] = sw.seconds
    log(f"  dev node and native fingerprint timer built in {sw.seconds:.1f} s")
    # The harness would take a debug dev node if it is newer (`cargo test` makes one): benchmark
    # the release build just made, unless the caller chose another.
    os.environ.setdefault("MIROIR_DEVNODE_BIN", str(paths.TARGET_DIR / "release" / "devnode"))
    wrk, install_seconds = ensure_wrk()
    timings["wrk install (apt-get)"] = install_seconds
    log(f"  wrk: {wrk}" + (f" (installed in {install_seconds:.1f} s)" if install_seconds else " (already installed)"))
    for module in (paths.filter_wasm(), noop_wasm()):
        if not paths.exports_proxy_wasm_abi(module):
            raise RuntimeError(f"{module} is missing or not a proxy-wasm module")
    return wrk, timings
