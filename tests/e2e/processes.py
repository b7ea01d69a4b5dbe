"""A child process whose output goes to a log file and which is always stopped, by its own id.

Every server the suite starts (dev nodes, Envoy, real Meilisearch for `make run`) is one of these,
so teardown is the same everywhere: SIGTERM, a bounded wait, then SIGKILL."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Mapping, Sequence

STOP_GRACE_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: the kernel sends it SIGKILL if our process dies without
    stopping it (pytest killed by a CI timeout, a crash), so no server outlives the suite."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        pass


class ManagedProcess:
    def __init__(self, name: str, argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.popen is not None:
            raise RuntimeError(f"{self.name} already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # A fresh log per start: a previous run's lines (same path under .run/) would mislead.
        with open(self.log_path, "wb") as log:
            # A session of its own: Ctrl-C in a terminal (make run) reaches only our Python process,
            # which then stops each child in order instead of all of them dying at once.
            self.popen = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=self.env, cwd=self.cwd, start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def exit_code(self) -> int | None:
        """None while running (or never started)."""
        return self.popen.poll() if self.popen else None

    def is_running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_exit(self, timeout: float) -> int:
        """The exit code; raises subprocess.TimeoutExpired if it is still running after `timeout`."""
        if self.popen is None:
            raise RuntimeError(f"{self.name} never started")
        return self.popen.wait(timeout=timeout)

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> int | None:
        """Stop the process: SIGTERM, wait up to `grace` seconds, then SIGKILL. Safe to call twice."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.popen.wait(timeout=grace)
        return self.popen.returncode

    def kill(self, timeout: float = STOP_GRACE_SECONDS) -> int | None:
        """SIGKILL at once (a crash, `kill -9`: no shutdown of any kind), then reap it."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self._signal(signal.SIGKILL)
        return self.popen.wait(timeout=timeout)

    def _signal(self, sig: signal.Signals) -> None:
        assert self.popen is not None
        try:
            os.kill(self.popen.pid, sig)
        except ProcessLookupError:
            pass

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])
