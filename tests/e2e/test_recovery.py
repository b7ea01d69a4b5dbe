"""A frozen index comes back without hand work (hardening issue): a node that was down returns and
`POST /_miroir/indexes/{uid}/repair` brings the fleet back to its committed settings and lifts the
freeze. Real Envoy with `--concurrency 2`, the built filter, dev nodes with faults."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests

from conftest import ADMIN_KEY
from harness import Envoy, Fleet, wait_until
from scenario import Proxy, assert_every_node_holds, assert_meili_error, fresh_uid, index_stat, settings_writes


@pytest.fixture
def frozen(make_fleet: Callable[..., Fleet], make_envoy: Callable[..., Envoy],
           filter_wasm: Path) -> Iterator[tuple[Fleet, Envoy, Proxy, str]]:
    """Version 1 committed everywhere, then a write while node 1 was down froze the index; node 1
    is back (holding version 1's settings)."""
    fleet = make_fleet(3)
    envoy = make_envoy(fleet, wasm=filter_wasm,
                       plugin_overrides={"settings_broadcast": {"max_repair_retries": 1, "repair_backoff_base_ms": 50},
                                         # a node down freezes the index (mirror mode would leave it behind)
                                         "writes": "passthrough"})
    proxy = Proxy(envoy)
    uid = fresh_uid("recover")
    assert proxy.commit("PATCH", uid, {"stopWords": ["kept"], "distinctAttribute": "sku"})["status"] == "succeeded"
    fleet.fault(1, down=True)
    task = proxy.wait_task(proxy.accepted("PATCH", uid, {"distinctAttribute": "isbn"}))
    assert task["status"] == "failed" and task["miroir"]["frozen"] is True, task
    fleet.clear(1)
    yield fleet, envoy, proxy, uid
    proxy.close()


def admin(envoy: Envoy, method: str, path: str) -> requests.Response:
    return requests.request(method, envoy.url + path, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30)


def test_a_repair_brings_a_frozen_index_back_once_its_node_returns(frozen: tuple[Fleet, Envoy, Proxy, str]) -> None:
    fleet, envoy, proxy, uid = frozen
    # A plain unfreeze finds the nodes still apart; nothing changes.
    assert_meili_error(admin(envoy, "POST", f"/_miroir/indexes/{uid}/unfreeze"), 409, "miroir_index_still_diverged")

    repair = admin(envoy, "POST", f"/_miroir/indexes/{uid}/repair")
    assert repair.status_code == 202, repair.text
    body = repair.json()
    assert body["indexUid"] == uid and body["status"] == "enqueued", body
    task = proxy.wait_task(body["taskUid"])  # the repair wrote with the node key, the proxy's key
    assert task["status"] == "succeeded", task

    state = admin(envoy, "GET", f"/_miroir/indexes/{uid}").json()
    assert state["frozen"] is None and state["settingsVersion"] == 1, state
    # The failed write is undone where it landed: every node holds the committed settings.
    assert_every_node_holds(fleet, uid, {"stopWords": ["kept"], "distinctAttribute": "sku"})
    assert [len(settings_writes(fleet, i, uid)) for i in range(3)][1] == 1, "node 1 needed nothing"
    assert envoy.stat(index_stat("miroir_settings_divergence", uid)) in (0, None)
    # Writes are accepted again and commit version 2.
    again = proxy.commit("PATCH", uid, {"distinctAttribute": "isbn"})
    assert again["status"] == "succeeded" and again["miroir"]["settings_version"] == 2, again


def test_repair_of_a_converged_index_changes_nothing(make_fleet: Callable[..., Fleet],
                                                     make_envoy: Callable[..., Envoy], filter_wasm: Path) -> None:
    fleet = make_fleet(3)
    envoy = make_envoy(fleet, wasm=filter_wasm)
    with Proxy(envoy) as proxy:
        uid = fresh_uid("calm")
        proxy.commit("PATCH", uid, {"stopWords": ["a"]})
        repaired = admin(envoy, "POST", f"/_miroir/indexes/{uid}/repair")
        assert repaired.status_code == 200 and repaired.json()["converged"] is True, repaired.text
        assert [len(settings_writes(fleet, i, uid)) for i in range(3)] == [1, 1, 1]


@pytest.mark.parametrize("query", ["force=trueish", "noforce=true", "x=force=true", "force", "force=false"])
def test_only_an_exact_force_parameter_skips_the_check(frozen: tuple[Fleet, Envoy, Proxy, str], query: str) -> None:
    _, envoy, _, uid = frozen
    assert_meili_error(admin(envoy, "POST", f"/_miroir/indexes/{uid}/unfreeze?{query}"), 409,
                       "miroir_index_still_diverged")
    assert admin(envoy, "GET", f"/_miroir/indexes/{uid}").json()["frozen"] is not None


def test_the_drift_check_leaves_a_frozen_index_to_the_operator(frozen: tuple[Fleet, Envoy, Proxy, str]) -> None:
    fleet, envoy, _, uid = frozen
    checked = admin(envoy, "POST", f"/_miroir/indexes/{uid}/verify")
    assert checked.status_code == 200 and checked.json()["converged"] is False, checked.text
    assert "repair" in checked.json()["detail"], checked.json()
    wait_until(lambda: admin(envoy, "GET", f"/_miroir/indexes/{uid}").json()["frozen"] is not None, 5,
               "the index stays frozen")
