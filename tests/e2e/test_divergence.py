"""Divergence end to end (issue 4): repair with backoff, freeze and write fencing, unfreeze, pinned
reads, the admin API's keys, and secrets kept out of every log, stat and answer. Real Envoy with
`--concurrency 2`, the built filter, dev nodes with faults.

Every scenario ends in one of the two states the design allows: every node holds the proposal and
the version went up by one, or the index is frozen with the alert raised."""

from __future__ import annotations

import collections
import re
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests

from conftest import ADMIN_KEY, NODE_KEY
from harness import Envoy, Fleet, wait_until
from scenario import (
    MIN_VERSION_HEADER, NO_BODY, ROUTING_HEADER, VERSION_HEADER, Proxy, assert_every_node_holds, assert_meili_error,
    clear_all_requests, fresh_uid, index_stat, node_tasks, non_read_requests, parse_time, settings_path,
    settings_writes, version_stat,
)

FAST_REPAIR = {"max_repair_retries": 2, "repair_backoff_base_ms": 100}


@pytest.fixture
def start(make_fleet: Callable[..., Fleet], make_envoy: Callable[..., Envoy],
          filter_wasm: Path) -> Iterator[Callable[..., tuple[Fleet, Envoy, Proxy]]]:
    """`start(settings_broadcast={...}, envoy_kwargs={...}, fleet_kwargs={...})` → a fresh fleet of
    three, an Envoy with those plugin overrides, and a client."""
    clients: list[Proxy] = []

    def make(*, envoy_kwargs: dict[str, Any] | None = None, fleet_kwargs: dict[str, Any] | None = None,
             client_key: str = NODE_KEY, **overrides: Any) -> tuple[Fleet, Envoy, Proxy]:
        fleet = make_fleet(3, **(fleet_kwargs or {}))
        # These faults are the settings broadcast's own (docs/operations.md, fault matrix): with
        # `writes: passthrough` a node that does not answer is repaired, then frozen; mirror mode
        # leaves it behind to catch up instead (test_mirror.py).
        overrides.setdefault("writes", "passthrough")
        envoy = make_envoy(fleet, wasm=filter_wasm, plugin_overrides=overrides, **(envoy_kwargs or {}))
        clients.append(Proxy(envoy, key=client_key))
        return fleet, envoy, clients[-1]

    yield make
    for client in clients:
        client.close()


def admin(envoy: Envoy, method: str, path: str, key: str | None = ADMIN_KEY) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return requests.request(method, envoy.url + path, headers=headers, timeout=10)


def wait_for_task_state(proxy: Proxy, task_uid: int, predicate: Callable[[dict[str, Any]], bool],
                        what: str, timeout: float = 30) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        task = proxy.task(task_uid)
        return task if predicate(task) else None

    return wait_until(check, timeout, what)


# --- (11) one dropped update, one repair ---------------------------------------------------------------

def test_a_node_that_drops_the_first_update_converges_after_one_repair(start: Callable[..., Any]) -> None:
    fleet, envoy, proxy = start(settings_broadcast={"repair_backoff_base_ms": 50})
    uid = fresh_uid("dropped")
    fleet.fault(1, drop_updates=1)

    task = proxy.wait_task(proxy.accepted("PATCH", uid, {"stopWords": ["fixed"], "rankingRules": ["typo"]}))

    assert task["status"] == "succeeded", task
    assert task["miroir"]["repair_attempts"] == 1, task["miroir"]
    assert task["miroir"]["settings_version"] == 1
    assert_every_node_holds(fleet, uid, {"stopWords": ["fixed"], "rankingRules": ["typo"]})
    assert proxy.version_header(uid) == 1 and version_stat(envoy, uid) == 1
    assert envoy.stat(index_stat("miroir_settings_hash_mismatch_total", uid)) == 1
    # Only the node that dropped the write got it again.
    assert [len(settings_writes(fleet, i, uid)) for i in range(fleet.size)] == [1, 2, 1]


# --- (12) a node that stays wrong: freeze, fencing, admin, unfreeze ------------------------------------------

def write_forms(uid: str) -> list[tuple[str, str, Any]]:
    """Every way a client can change an index, including paths spelled the way actix still routes
    them (double slash, trailing slash, percent-escaped segment)."""
    return [
        ("POST", f"/indexes/{uid}/documents", [{"id": 9, "title": "new"}]),
        ("PUT", f"/indexes/{uid}/documents", [{"id": 1, "title": "changed"}]),
        ("DELETE", f"/indexes/{uid}/documents/1", NO_BODY),
        ("POST", f"/indexes/{uid}/documents/delete-batch", [1]),
        ("POST", f"/indexes/{uid}/documents/delete", {"filter": "id = 1"}),
        ("DELETE", f"/indexes/{uid}/documents", NO_BODY),
        ("PATCH", f"/indexes/{uid}/settings", {"stopWords": ["nope"]}),
        ("PUT", f"/indexes/{uid}/settings/stop-words", ["nope"]),
        ("PATCH", f"/indexes/{uid}/settings/typo-tolerance", {"enabled": False}),
        ("DELETE", f"/indexes/{uid}/settings/synonyms", NO_BODY),
        ("DELETE", f"/indexes/{uid}/settings", NO_BODY),
        ("PATCH", f"/indexes/{uid}", {"primaryKey": "id"}),
        ("DELETE", f"/indexes/{uid}", NO_BODY),
        ("POST", f"//indexes/{uid}/documents", [{"id": 10}]),
        ("POST", f"/indexes/{uid}/documents/", [{"id": 11}]),
        ("POST", f"/indexes/{uid}/%64ocuments", [{"id": 12}]),
        ("DELETE", f"/indexes/{uid}/", NO_BODY),
    ]


def test_a_node_that_stays_wrong_freezes_the_index_until_an_operator_unfreezes_it(
        start: Callable[..., Any]) -> None:
    fleet, envoy, proxy = start(settings_broadcast=FAST_REPAIR)
    uid, other = fresh_uid("frozen"), fresh_uid("other")
    proxy.commit("PATCH", uid, {"stopWords": ["v1"]})
    for i in range(fleet.size):  # documents, so that document writes would have something to change
        fleet.session.post(f"{fleet.node_url(i)}/indexes/{uid}/documents", json=[{"id": 1, "title": "one"}],
                           headers=fleet.auth_headers(), timeout=10)
    fleet.fault(2, apply_different={"stopWords": ["rogue"]})

    task = proxy.wait_task(proxy.accepted("PATCH", uid, {"stopWords": ["v2"]}))

    # The task: failed with the divergence error after exactly two repairs; the index frozen.
    assert task["status"] == "failed", task
    assert task["error"]["code"] == "miroir_settings_divergence", task["error"]
    assert task["miroir"]["frozen"] is True and task["miroir"]["repair_attempts"] == 2, task["miroir"]
    assert proxy.version_header(uid) == 1 and version_stat(envoy, uid) == 1
    assert envoy.stat(index_stat("miroir_settings_divergence", uid)) == 1, "divergence alert not raised"
    assert envoy.stat(index_stat("miroir_settings_hash_mismatch_total", uid)) >= 1

    # Repairs went to node 2 only, spaced by the backoff (100 ms, then 200 ms).
    assert [len(settings_writes(fleet, i, uid)) for i in range(fleet.size)] == [2, 2, 4]
    proposals = [t for t in node_tasks(fleet, 2, uid) if t["details"].get("stopWords") == ["v2"]]
    times = [parse_time(t["enqueuedAt"]) for t in proposals]
    assert len(times) == 3, proposals
    gaps_ms = [(b - a).total_seconds() * 1000 for a, b in zip(times, times[1:])]
    assert gaps_ms[0] >= 100 and gaps_ms[1] >= 200, f"repairs not spaced by the backoff: {gaps_ms}"

    # The admin API shows the freeze.
    shown = admin(envoy, "GET", f"/_miroir/indexes/{uid}")
    assert shown.status_code == 200, shown.text
    record = shown.json()["frozen"]
    assert record is not None and record["nodes"] == ["node-2"], record
    assert record["task_uid"] == task["uid"] and "diverged" in record["reason"], record
    fingerprints = record["fingerprints"]
    assert fingerprints["node-0"] == fingerprints["node-1"] != fingerprints["node-2"], fingerprints

    # Every write form is refused locally; nothing reaches a node.
    clear_all_requests(fleet)
    refused = 0
    for method, path, body in write_forms(uid):
        response = proxy.request(method, path, body)
        assert_meili_error(response, 503, "miroir_index_frozen")
        refused += 1
    assert non_read_requests(fleet, uid) == [], "a write to the frozen index reached a node"
    assert envoy.stat(index_stat("miroir_frozen_write_rejected_total", uid)) == refused

    # Reads go on, still stamped with the last committed version; other indexes are untouched. (The
    # rogue node is fixed first so the other index's write can converge; node 2 still holds the
    # wrong value for the frozen index.)
    fleet.clear(2)
    assert proxy.settings(uid).status_code == 200
    search = proxy.request("POST", f"/indexes/{uid}/search", {"q": "one"})
    assert search.status_code == 200 and search.headers.get(VERSION_HEADER) == "1", search.text
    assert proxy.request("GET", f"/indexes/{uid}/documents").status_code == 200
    proxy.commit("PATCH", other, {"stopWords": ["fine"]})
    assert proxy.request("POST", f"/indexes/{other}/documents", [{"id": 1}]).status_code == 202

    # Unfreeze: refused while the fleet still diverges, unless forced; then writes work again.
    assert fleet.node_settings(2, uid)["stopWords"] == ["rogue"]
    assert_meili_error(admin(envoy, "POST", f"/_miroir/indexes/{uid}/unfreeze"), 409, "miroir_index_still_diverged")
    unfrozen = admin(envoy, "POST", f"/_miroir/indexes/{uid}/unfreeze?force=true")
    assert unfrozen.status_code == 200 and unfrozen.json()["frozen"] is None, unfrozen.text
    assert envoy.stat(index_stat("miroir_settings_divergence", uid)) == 0
    proxy.commit("PATCH", uid, {"stopWords": ["v3"]})
    assert_every_node_holds(fleet, uid, {"stopWords": ["v3"]})
    assert proxy.version_header(uid) == 2
    assert proxy.request("POST", f"/indexes/{uid}/documents", [{"id": 2}]).status_code == 202


# --- (13) a node down during propose ----------------------------------------------------------------------

def test_a_node_down_during_propose_is_repaired_when_it_returns(start: Callable[..., Any]) -> None:
    fleet, envoy, proxy = start(settings_broadcast={"max_repair_retries": 3, "repair_backoff_base_ms": 200})
    uid = fresh_uid("comeback")
    fleet.fault(1, down=True)

    task_uid = proxy.accepted("PATCH", uid, {"stopWords": ["back"]})
    wait_for_task_state(proxy, task_uid, lambda t: t["miroir"]["repair_attempts"] >= 1, "a first repair attempt")
    fleet.clear(1)
    task = proxy.wait_task(task_uid)

    assert task["status"] == "succeeded", task
    assert 1 <= task["miroir"]["repair_attempts"] <= 3, task["miroir"]
    assert_every_node_holds(fleet, uid, {"stopWords": ["back"]})
    assert proxy.version_header(uid) == 1 and version_stat(envoy, uid) == 1
    assert envoy.stat("wasmcustom.miroir_callout_errors_total.node.node-1") >= 1


@pytest.mark.parametrize("fault, overrides", [
    pytest.param({"status_5xx": 503}, {}, id="5xx"),
    # A hung node: the propose and verify callouts time out instead of failing fast.
    pytest.param({"hang": True}, {"propose_timeout_ms": 300, "verify_timeout_s": 1}, id="hang"),
])
def test_a_failing_node_is_repaired_the_same_way_once_it_recovers(
        start: Callable[..., Any], fault: dict[str, Any], overrides: dict[str, Any]) -> None:
    fleet, envoy, proxy = start(settings_broadcast={"max_repair_retries": 3, "repair_backoff_base_ms": 200, **overrides})
    uid = fresh_uid("recovers")
    fleet.fault(1, **fault)

    task_uid = proxy.accepted("PATCH", uid, {"stopWords": ["healed"]})
    wait_for_task_state(proxy, task_uid, lambda t: t["miroir"]["repair_attempts"] >= 1, "a first repair attempt")
    fleet.clear(1)
    task = proxy.wait_task(task_uid)

    assert task["status"] == "succeeded", task
    assert_every_node_holds(fleet, uid, {"stopWords": ["healed"]})
    assert proxy.version_header(uid) == 1 and version_stat(envoy, uid) == 1


def test_a_node_down_through_every_retry_freezes_the_index(start: Callable[..., Any]) -> None:
    fleet, envoy, proxy = start(settings_broadcast={"max_repair_retries": 2, "repair_backoff_base_ms": 50})
    uid = fresh_uid("stayeddown")
    fleet.fault(1, down=True)

    task = proxy.wait_task(proxy.accepted("PATCH", uid, {"stopWords": ["lost"]}))

    assert task["status"] == "failed" and task["error"]["code"] == "miroir_settings_divergence", task
    assert task["miroir"]["frozen"] is True and task["miroir"]["repair_attempts"] == 2, task["miroir"]
    record = admin(envoy, "GET", f"/_miroir/indexes/{uid}").json()["frozen"]
    assert record is not None and record["nodes"] == ["node-1"], record
    assert_meili_error(proxy.write_settings("PATCH", uid, {"stopWords": ["again"]}), 503, "miroir_index_frozen")
    assert version_stat(envoy, uid) is None, "nothing was ever committed"


def test_a_node_that_alone_refuses_the_write_ends_in_a_freeze(start: Callable[..., Any]) -> None:
    """Not every node refused, so the client got 202; the refusing node cannot be repaired."""
    fleet, envoy, proxy = start(settings_broadcast={"max_repair_retries": 1, "repair_backoff_base_ms": 20})
    uid = fresh_uid("loner")
    proxy.commit("PATCH", uid, {"stopWords": ["v1"]})
    fleet.fault(2, reject_settings={"status": 400, "code": "invalid_settings_stop_words", "message": "not here"})

    task = proxy.wait_task(proxy.accepted("PATCH", uid, {"stopWords": ["v2"]}))

    assert task["status"] == "failed" and task["error"]["code"] == "miroir_settings_divergence", task
    assert task["miroir"]["frozen"] is True, task["miroir"]
    assert [fleet.node_settings(i, uid)["stopWords"] for i in range(fleet.size)] == [["v2"], ["v2"], ["v1"]]
    assert admin(envoy, "GET", f"/_miroir/indexes/{uid}").json()["frozen"]["nodes"] == ["node-2"]
    assert proxy.version_header(uid) == 1


# --- (14) pinned reads and client-sent routing headers ---------------------------------------------------

def test_pinned_reads_need_a_node_at_the_requested_version(start: Callable[..., Any]) -> None:
    fleet, envoy, proxy = start()
    uid, never_written = fresh_uid("pinned"), fresh_uid("unversioned")
    proxy.commit("PATCH", uid, {"stopWords": ["one"]})

    fresh_enough = proxy.settings(uid, headers={MIN_VERSION_HEADER: "1"})
    assert fresh_enough.status_code == 200, fresh_enough.text
    assert fresh_enough.json()["stopWords"] == ["one"]
    assert fresh_enough.headers.get(VERSION_HEADER) == "1"
    assert_meili_error(proxy.settings(uid, headers={MIN_VERSION_HEADER: "5"}), 503, "miroir_settings_version_stale")
    assert_meili_error(proxy.settings(never_written, headers={MIN_VERSION_HEADER: "1"}), 503,
                       "miroir_settings_version_stale")
    assert_meili_error(proxy.settings(uid, headers={MIN_VERSION_HEADER: "soon"}), 400, "bad_request")


def test_a_client_cannot_pick_a_node_by_routing_header(start: Callable[..., Any]) -> None:
    fleet, envoy, proxy = start()
    uid = fresh_uid("unpinned")
    proxy.commit("PATCH", uid, {"stopWords": ["one"]})
    clear_all_requests(fleet)
    rounds = 12
    for _ in range(rounds):
        # A fresh connection each time, as many clients would; all name node 1's cluster.
        response = requests.get(envoy.url + settings_path(uid), timeout=10,
                                headers={"Authorization": f"Bearer {NODE_KEY}", ROUTING_HEADER: "meili_node_1",
                                         "x-miroir-hold": "1"})
        assert response.status_code == 200, response.text
    served = collections.Counter(
        i for i in range(fleet.size) for r in fleet.requests(i) if r["path"] == settings_path(uid))
    assert sum(served.values()) == rounds, served
    assert len(served) >= 2, f"every read went to one node: {served}"


# --- (15) the admin API's keys -----------------------------------------------------------------------------

def test_admin_api_is_off_without_a_key(start: Callable[..., Any]) -> None:
    fleet, envoy, proxy = start(envoy_kwargs={"env": {"MIROIR_NODE_API_KEY": NODE_KEY}})
    uid = fresh_uid("noadmin")
    proxy.commit("PATCH", uid, {"stopWords": ["x"]})
    clear_all_requests(fleet)
    for method, path in [("GET", f"/_miroir/indexes/{uid}"), ("POST", f"/_miroir/indexes/{uid}/unfreeze?force=true")]:
        for key in (None, ADMIN_KEY, ""):
            response = admin(envoy, method, path, key)
            assert response.status_code in (401, 404), (method, path, key, response.status_code, response.text)
            assert "fingerprint" not in response.text
    assert all(fleet.requests(i) == [] for i in range(fleet.size)), "an admin call reached a node"


def test_admin_api_answers_only_the_right_key(start: Callable[..., Any]) -> None:
    fleet, envoy, proxy = start()
    uid = fresh_uid("admin")
    proxy.commit("PATCH", uid, {"stopWords": ["x"]})
    clear_all_requests(fleet)
    routes = [("GET", f"/_miroir/indexes/{uid}"), ("POST", f"/_miroir/indexes/{uid}/unfreeze?force=true"),
              ("POST", f"/_miroir/indexes/{uid}/verify")]
    for method, path in routes:
        for key in (None, "", "wrong", ADMIN_KEY + "x", ADMIN_KEY[:-1], NODE_KEY):
            assert_meili_error(admin(envoy, method, path, key), 401, "miroir_invalid_admin_key")
    basic = requests.get(envoy.url + routes[0][1], headers={"Authorization": f"Basic {ADMIN_KEY}"}, timeout=10)
    assert_meili_error(basic, 401, "miroir_invalid_admin_key")
    shown = admin(envoy, "GET", f"/_miroir/indexes/{uid}")
    assert shown.status_code == 200 and shown.json()["settingsVersion"] == 1, shown.text
    assert all(fleet.requests(i) == [] for i in range(fleet.size)), "an admin call reached a node"


# --- (16) secrets never leave the filter ------------------------------------------------------------------

EMBEDDER_KEY = "sk-very-secret-key-1234567890abcdef"
MASTER_KEY = "mk-fleet-master-key-5f1e2d3c4b5a69788796"


def test_secrets_appear_in_no_log_stat_or_answer(start: Callable[..., Any]) -> None:
    fleet, envoy, proxy = start(
        settings_broadcast={"max_repair_retries": 1, "repair_backoff_base_ms": 20},
        fleet_kwargs={"master_key": MASTER_KEY},
        envoy_kwargs={"env": {"MIROIR_NODE_API_KEY": MASTER_KEY, "MIROIR_ADMIN_API_KEY": ADMIN_KEY},
                      # The filter's own debug lines too; Envoy's other components stay at info
                      # (Envoy's http debug log prints request headers, which is Envoy's business).
                      "extra_args": ["--component-log-level", "wasm:debug"]},
        client_key=MASTER_KEY)
    uid = fresh_uid("secret")
    embedder = {"e": {"source": "openAi", "apiKey": EMBEDDER_KEY, "model": "text-embedding-3-small"}}

    accepted = proxy.write_settings("PATCH", uid, {"embedders": embedder, "stopWords": ["s"]})
    committed = proxy.wait_task(accepted.json()["taskUid"])
    assert committed["status"] == "succeeded", committed
    assert fleet.node_settings(0, uid, clear_secrets=True)["embedders"]["e"]["apiKey"] == EMBEDDER_KEY
    # A second write that ends frozen: the failure paths log and record the most.
    fleet.fault(1, apply_different={"stopWords": ["other"]})
    frozen = proxy.wait_task(proxy.accepted("PATCH", uid, {"embedders": embedder, "stopWords": ["t"]}))
    assert frozen["status"] == "failed" and frozen["miroir"]["frozen"] is True, frozen
    refused = proxy.request("PATCH", f"/indexes/{uid}/settings/embedders", embedder)
    assert refused.status_code == 503

    answers = {
        "202 answer": accepted.text,
        "task (committed)": proxy.request("GET", f"/tasks/{committed['uid']}").text,
        "task (frozen)": proxy.request("GET", f"/tasks/{frozen['uid']}").text,
        "frozen refusal": refused.text,
        "admin show": admin(envoy, "GET", f"/_miroir/indexes/{uid}").text,
        "admin unfreeze": admin(envoy, "POST", f"/_miroir/indexes/{uid}/unfreeze?force=true").text,
        "settings read": proxy.settings(uid).text,
        "stats": requests.get(f"{envoy.admin_url}/stats?format=json", timeout=10).text,
        "prometheus": envoy.prometheus(),
        "config dump": requests.get(f"{envoy.admin_url}/config_dump", timeout=10).text,
    }
    log = envoy.log_text()
    assert "FROZEN" in log, "the filter's error lines are not in the captured log"
    assert re.search(r"\]\[debug\]\[wasm\].*wasm log miroir", log), "the filter's debug lines are not in the log"
    answers["envoy log"] = log
    for secret in (EMBEDDER_KEY, MASTER_KEY, EMBEDDER_KEY[5:], MASTER_KEY[5:]):
        leaked = [where for where, text in answers.items() if secret in text]
        assert not leaked, f"secret {secret[:5]}… found in: {leaked}"
