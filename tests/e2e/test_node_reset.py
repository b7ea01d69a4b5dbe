"""A node that resets the connection mid-response (devnode fault `reset`: status line, headers, half
the body, then RST). Envoy then reports the callout as failed with no response at all; the filter
must take that as "unreachable" and go on: every worker keeps serving, and the write ends the way
the engine decides — repaired once the node answers again, or frozen if it never does. Real Envoy
with `--concurrency 2`, the built filter."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from harness import Envoy, Fleet, wait_until
from scenario import Proxy, assert_every_node_holds, assert_meili_error, fresh_uid, settings_writes, version_stat
from survival import assert_every_worker_serves, assert_no_wasm_panic


def start(make_fleet: Callable[..., Fleet], make_envoy: Callable[..., Envoy], wasm: Path,
          **broadcast: Any) -> tuple[Fleet, Envoy, Proxy]:
    fleet = make_fleet(3)
    # A reset node is repaired, then frozen, by the settings broadcast with `writes: passthrough`;
    # mirror mode leaves it behind to catch up (test_mirror.py).
    envoy = make_envoy(fleet, wasm=wasm, plugin_overrides={"settings_broadcast": broadcast, "writes": "passthrough"})
    return fleet, envoy, Proxy(envoy)


def test_a_node_reset_mid_response_is_repaired_once_it_answers_again(
        make_fleet: Callable[..., Fleet], make_envoy: Callable[..., Envoy], filter_wasm: Path) -> None:
    fleet, envoy, proxy = start(make_fleet, make_envoy, filter_wasm, max_repair_retries=4, repair_backoff_base_ms=300)
    with proxy:
        uid = fresh_uid("reset")
        proxy.commit("PATCH", uid, {"stopWords": ["v1"]})
        fleet.fault(1, reset=True)

        task_uid = proxy.accepted("PATCH", uid, {"stopWords": ["v2"]})
        # The proposal reached node 1 and was cut short; then the node comes back.
        wait_until(lambda: len(settings_writes(fleet, 1, uid)) >= 2, 30, "the proposal to reach the resetting node")
        assert_every_worker_serves(envoy)
        fleet.clear(1)
        task = proxy.wait_task(task_uid)

        assert task["status"] == "succeeded", task
        assert task["miroir"]["repair_attempts"] >= 1, task["miroir"]
        assert_every_node_holds(fleet, uid, {"stopWords": ["v2"]})
        assert proxy.version_header(uid) == 2 and version_stat(envoy, uid) == 2
        assert envoy.stat("wasmcustom.miroir_callout_errors_total.node.node-1") >= 1
        assert_every_worker_serves(envoy)
        assert_no_wasm_panic(envoy)


def test_a_node_that_keeps_resetting_freezes_the_index_and_the_filter_survives(
        make_fleet: Callable[..., Fleet], make_envoy: Callable[..., Envoy], filter_wasm: Path) -> None:
    fleet, envoy, proxy = start(make_fleet, make_envoy, filter_wasm, max_repair_retries=2, repair_backoff_base_ms=50)
    with proxy:
        uid = fresh_uid("resetting")
        proxy.commit("PATCH", uid, {"stopWords": ["v1"]})
        fleet.fault(1, reset=True)

        task = proxy.wait_task(proxy.accepted("PATCH", uid, {"stopWords": ["v2"]}))

        assert task["status"] == "failed", task
        assert task["miroir"]["frozen"] is True, task["miroir"]
        assert_meili_error(proxy.write_settings("PATCH", uid, {"stopWords": ["v3"]}), 503, "miroir_index_frozen")
        # Every proposal and repair to node 1 was cut short; the other nodes hold the write.
        assert len(settings_writes(fleet, 1, uid)) == 1 + 1 + 2, settings_writes(fleet, 1, uid)
        for i in (0, 2):
            assert fleet.node_settings(i, uid)["stopWords"] == ["v2"]
        assert fleet.node_settings(1, uid)["stopWords"] == ["v1"]
        assert version_stat(envoy, uid) == 1
        fleet.clear(1)
        assert_every_worker_serves(envoy)
        assert_no_wasm_panic(envoy)
