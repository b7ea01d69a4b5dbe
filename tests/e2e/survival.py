"""Did the filter survive? Every Envoy worker still runs a working filter VM, and Envoy's log has no
wasm panic or trap. Used after hostile input and node faults."""

from __future__ import annotations

import re
from typing import Any

import rawhttp
from harness import Envoy
from rawhttp import RawResponse, build_http1
from scenario import ERROR_KEYS, TASK_UID_BASE

# A task uid in the filter's range that no write reaches: answered by the filter, never a node.
PROBE_TASK_UID = TASK_UID_BASE + 2**24 - 1
PANIC = re.compile(r"panicked at|panic: |wasm trap|Uncaught RuntimeError|proxy_on_\w+ failed|Wasm VM failed")


def worker_connections(envoy: Envoy) -> dict[str, int]:
    """Connections accepted by each worker of the client listener."""
    stats = envoy.stats(r"^listener\.127\.0\.0\.1_[0-9]+\.worker_[0-9]+\.downstream_cx_total$")
    return {name: int(value) for name, value in stats.items()}


def assert_meili_shape(response: RawResponse, code: str | None = None) -> dict[str, Any]:
    body = response.json()
    assert list(body) == ERROR_KEYS, body
    assert isinstance(body["message"], str) and body["message"], body
    assert body["link"] == f"https://docs.meilisearch.com/errors#{body['code']}", body
    if code is not None:
        assert body["code"] == code, body
    return body


def assert_every_worker_serves(envoy: Envoy) -> None:
    """Ask the filter (a task uid only it answers) over fresh connections until each worker has
    answered at least once; any answer other than the filter's 404 fails at once (a VM that
    panicked makes its worker answer 503 from then on)."""
    before = worker_connections(envoy)
    assert len(before) == 2, f"expected two workers: {before}"
    for probe in range(64):
        response = rawhttp.http1(envoy.port, build_http1(b"GET", f"/tasks/{PROBE_TASK_UID}".encode()))
        assert response.status == 404, f"probe {probe}: a worker no longer serves: {response}"
        assert_meili_shape(response, "task_not_found")
        now = worker_connections(envoy)
        if all(now[name] > count for name, count in before.items()):
            return
    raise AssertionError(f"64 probes did not reach both workers: {before} -> {worker_connections(envoy)}")


def assert_no_wasm_panic(envoy: Envoy) -> None:
    found = [line for line in envoy.log_text().splitlines() if PANIC.search(line)]
    assert not found, "the filter panicked or trapped:\n" + "\n".join(found[:10])
