"""The drift check end to end (docs/architecture.md §3, drift check and admin API; issue 4): settings
changed behind the proxy's back are found, counted and repaired from the committed settings (or the
majority), an index deleted on one node is recreated, `auto_repair: false` only reports, drift in
masked embedder secrets freezes until an operator unfreezes, and the background calls use the node
key from the environment; reads taken before a write must not be judged after it. Real Envoy with
`--concurrency 2`, the built filter, dev nodes.

A drift check that ran is seen from the nodes: each run starts by listing `/indexes?limit=1000` on
every node, and only the drift check sends that request."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests

import jcs
from conftest import ADMIN_KEY, NODE_KEY
from harness import Envoy, Fleet, wait_until
from scenario import (
    Proxy, assert_every_node_holds, assert_meili_error, clear_all_requests, fresh_uid, index_stat, non_read_requests,
    settings_writes, version_stat,
)

# Every second, so a scenario sees a check within a couple of seconds.
EVERY_SECOND = {"interval_s": 1}
# How long a repair may take: a check (≤ 1 s away), the repair job, its verify.
DRIFT_DEADLINE = 20.0
DRIFT_LISTING = "/indexes?limit=1000"
NODE_IDS = ["node-0", "node-1", "node-2"]
COMMITTED = {"stopWords": ["a", "the"], "rankingRules": ["typo", "words"], "synonyms": {"car": ["auto"]}}
OUT_OF_BAND = {"stopWords": ["rogue"], "filterableAttributes": ["genre"]}
UNAUTHENTICATED_WARNING = "nodes refuse unauthenticated reads"


@pytest.fixture
def start(make_fleet: Callable[..., Fleet], make_envoy: Callable[..., Envoy],
          filter_wasm: Path) -> Iterator[Callable[..., tuple[Fleet, Envoy, Proxy]]]:
    """`start(drift={...}, broadcast={...}, before_envoy=fn(fleet), env={...}, master_key=...)` → a
    fresh fleet of three, an Envoy whose drift check (and broadcast) have that configuration, and a
    client. `before_envoy` shapes the nodes before Envoy (and so its startup check) exists."""
    clients: list[Proxy] = []

    def make(*, drift: dict[str, Any] | None = None, broadcast: dict[str, Any] | None = None,
             before_envoy: Callable[[Fleet], None] | None = None, env: dict[str, str] | None = None,
             master_key: str = NODE_KEY, writes: str | None = None) -> tuple[Fleet, Envoy, Proxy]:
        fleet = make_fleet(3, master_key=master_key)
        if before_envoy is not None:
            before_envoy(fleet)
        overrides = {"settings_drift_check": drift, "settings_broadcast": broadcast, "writes": writes}
        overrides = {key: value for key, value in overrides.items() if value is not None}
        envoy = make_envoy(fleet, wasm=filter_wasm, plugin_overrides=overrides or None,
                           env=env if env is not None else {"MIROIR_NODE_API_KEY": master_key,
                                                            "MIROIR_ADMIN_API_KEY": ADMIN_KEY})
        clients.append(Proxy(envoy, key=master_key))
        return fleet, envoy, clients[-1]

    yield make
    for client in clients:
        client.close()


# --- helpers -----------------------------------------------------------------------------------------

def admin(envoy: Envoy, method: str, path: str) -> requests.Response:
    return requests.request(method, envoy.url + path, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=30)


def index_state(envoy: Envoy, uid: str) -> dict[str, Any]:
    """The filter's state of one index (admin API)."""
    response = admin(envoy, "GET", f"/_miroir/indexes/{uid}")
    assert response.status_code == 200, response.text
    return response.json()


def drift_detected(envoy: Envoy, uid: str) -> int:
    return envoy.stat(index_stat("miroir_settings_drift_detected_total", uid))


def drift_repaired(envoy: Envoy, uid: str) -> int:
    return envoy.stat(index_stat("miroir_settings_drift_repair_total", uid))


def drift_listings(fleet: Fleet, node: int = 0) -> list[dict[str, Any]]:
    """The drift check's index listings node `node` received, oldest first."""
    return [r for r in fleet.requests(node) if r["method"] == "GET" and r["path"] == DRIFT_LISTING]


def drift_reads(fleet: Fleet, node: int, uid: str) -> int:
    """GETs of `uid`'s settings node `node` received: the drift check's reads, plus a broadcast's
    verify reads while one runs (the scenarios that count these make no client reads)."""
    return sum(1 for r in fleet.requests(node) if r["method"] == "GET" and r["path"] == f"/indexes/{uid}/settings")


def wait_for_whole_drift_checks(fleet: Fleet, runs: int = 1, timeout: float = DRIFT_DEADLINE) -> None:
    """Wait until `runs` drift checks started after now have finished. Runs never overlap (one
    lease), so once `runs + 1` new listings arrived, the first `runs` of them are over."""
    seen = len(drift_listings(fleet))
    wait_until(lambda: len(drift_listings(fleet)) >= seen + runs + 1, timeout,
               f"{runs} whole drift check(s) after {seen} listings")


def node_holds(fleet: Fleet, node: int, uid: str, expected: dict[str, Any]) -> bool:
    """Node `node` holds exactly these whole settings (False while the index is missing there)."""
    try:
        return fleet.node_settings(node, uid) == expected
    except AssertionError:  # 404 index_not_found from the control API
        return False


def assert_versions(envoy: Envoy, proxy: Proxy, uid: str, version: int, fingerprint: str) -> dict[str, Any]:
    """The committed version and fingerprint, as every place a user looks shows them; every node
    verified at that version with that fingerprint."""
    state = index_state(envoy, uid)
    assert state["settingsVersion"] == version and state["fingerprint"] == fingerprint, state
    assert state["nodes"] == verified_nodes(version, fingerprint), state
    assert state["frozen"] is None and state["phase"] == "idle", state
    assert proxy.version_header(uid) == version
    assert version_stat(envoy, uid) == version
    return state


def verified_nodes(version: int, fingerprint: str) -> list[dict[str, Any]]:
    """The admin API's `nodes` when every node verified `version` with `fingerprint`."""
    return [{"id": n, "settingsVersion": version, "fingerprint": fingerprint, "sync": "in_sync",
             "outOfSyncReason": None, "replayFrom": None} for n in NODE_IDS]


def freeze_stats(envoy: Envoy, uid: str) -> tuple[Any, Any]:
    """(divergence gauge, broadcast phase gauge) of one index."""
    return (envoy.stat(index_stat("miroir_settings_divergence", uid), None),
            envoy.stat(index_stat("miroir_settings_broadcast_phase", uid), None))


# --- (1) an out-of-band change is repaired from the committed settings ------------------------------------

def test_an_out_of_band_change_is_repaired_to_the_committed_settings_without_a_new_version(
        start: Callable[..., Any]) -> None:
    fleet, envoy, proxy = start(drift=EVERY_SECOND)
    uid = fresh_uid("drift_repair")
    proxy.commit("PATCH", uid, COMMITTED)
    committed = assert_every_node_holds(fleet, uid, COMMITTED)[0]
    clear_all_requests(fleet)

    fleet.out_of_band(1, uid, OUT_OF_BAND)

    assert fleet.node_settings(1, uid) != committed
    wait_until(lambda: node_holds(fleet, 1, uid, committed), DRIFT_DEADLINE, "node 1 to be repaired")
    envoy.wait_for_stat(index_stat("miroir_settings_drift_repair_total", uid), lambda v: v >= 1)
    assert drift_detected(envoy, uid) >= 1
    assert_every_node_holds(fleet, uid, COMMITTED)
    # Only the drifted node was written, with the node key; the version did not move.
    assert settings_writes(fleet, 0, uid) == [] and settings_writes(fleet, 2, uid) == []
    repairs = settings_writes(fleet, 1, uid)
    assert repairs and all(w["authorization"] == f"Bearer {NODE_KEY}" for w in repairs), repairs
    assert_versions(envoy, proxy, uid, 1, jcs.fingerprint(committed))
    assert all(r["authorization"] == f"Bearer {NODE_KEY}" for r in drift_listings(fleet))

    # The out-of-band change never comes back: later checks find nothing to do.
    wait_for_whole_drift_checks(fleet)
    detected, repaired = drift_detected(envoy, uid), drift_repaired(envoy, uid)
    writes = len(settings_writes(fleet, 1, uid))
    wait_for_whole_drift_checks(fleet, runs=2)
    assert (drift_detected(envoy, uid), drift_repaired(envoy, uid)) == (detected, repaired)
    assert len(settings_writes(fleet, 1, uid)) == writes
    assert_every_node_holds(fleet, uid, COMMITTED)
    assert fleet.node_settings(1, uid) == committed


# --- (2) an index deleted on one node is recreated ---------------------------------------------------------

def test_an_index_deleted_on_one_node_is_recreated_with_the_committed_settings(start: Callable[..., Any]) -> None:
    """With `writes: passthrough` (mirror mode marks the node for a resync instead: test_mirror.py)."""
    fleet, envoy, proxy = start(drift=EVERY_SECOND, writes="passthrough")
    uid = fresh_uid("drift_deleted")
    proxy.commit("PATCH", uid, COMMITTED)
    committed = assert_every_node_holds(fleet, uid, COMMITTED)[0]
    clear_all_requests(fleet)

    fleet.remove_index_out_of_band(2, uid)

    assert fleet.node_get(2, f"/indexes/{uid}").status_code == 404
    wait_until(lambda: node_holds(fleet, 2, uid, committed), DRIFT_DEADLINE, "the index to be recreated on node 2")
    envoy.wait_for_stat(index_stat("miroir_settings_drift_repair_total", uid), lambda v: v >= 1)
    assert drift_detected(envoy, uid) >= 1
    assert fleet.node_get(2, f"/indexes/{uid}").status_code == 200
    assert settings_writes(fleet, 2, uid), "node 2 got no settings write"
    assert settings_writes(fleet, 0, uid) == [] and settings_writes(fleet, 1, uid) == []
    assert_every_node_holds(fleet, uid, COMMITTED)
    assert_versions(envoy, proxy, uid, 1, jcs.fingerprint(committed))


# --- (3) auto_repair off: counted, never repaired ----------------------------------------------------------

def test_with_auto_repair_off_drift_is_only_counted(start: Callable[..., Any]) -> None:
    fleet, envoy, proxy = start(drift={"interval_s": 1, "auto_repair": False})
    uid = fresh_uid("drift_reported")
    proxy.commit("PATCH", uid, COMMITTED)
    committed = assert_every_node_holds(fleet, uid, COMMITTED)[0]
    clear_all_requests(fleet)

    rogue = fleet.out_of_band(1, uid, OUT_OF_BAND)

    # Two checks found it; between and after them nothing was written anywhere.
    envoy.wait_for_stat(index_stat("miroir_settings_drift_detected_total", uid), lambda v: v >= 2,
                        timeout=DRIFT_DEADLINE)
    assert fleet.node_settings(1, uid) == rogue != committed
    assert fleet.node_settings(0, uid) == fleet.node_settings(2, uid) == committed
    assert non_read_requests(fleet, uid) == [], "auto_repair is off, yet something was written"
    assert drift_repaired(envoy, uid) == 0
    state = index_state(envoy, uid)
    assert state["frozen"] is None and state["settingsVersion"] == 1 and state["queuedTasks"] == [], state
    assert proxy.version_header(uid) == 1
    assert "auto_repair is off" in envoy.log_text()


# --- (4) startup: a fleet that already diverges, and one that agrees ---------------------------------------

def test_the_startup_check_repairs_to_the_majority_and_records_a_converged_fleet(start: Callable[..., Any]) -> None:
    diverged, agreed = fresh_uid("startup_drift"), fresh_uid("startup_agree")
    majority = {"stopWords": ["majority"], "rankingRules": ["words", "typo"]}
    agreed_settings = {"synonyms": {"tv": ["television"]}, "filterableAttributes": ["genre", "year"]}

    def diverge(fleet: Fleet) -> None:
        for node in range(fleet.size):
            fleet.out_of_band(node, diverged, majority if node < 2 else {"stopWords": ["minority"]})
            fleet.out_of_band(node, agreed, agreed_settings)

    # The default interval (300 s): only the startup check runs during this test.
    fleet, envoy, proxy = start(before_envoy=diverge)
    majority_body = fleet.node_settings(0, diverged)
    assert fleet.node_settings(1, diverged) == majority_body != fleet.node_settings(2, diverged)

    wait_until(lambda: node_holds(fleet, 2, diverged, majority_body), DRIFT_DEADLINE,
               "the startup check to repair node 2 to the majority")
    envoy.wait_for_stat(index_stat("miroir_settings_drift_repair_total", diverged), lambda v: v == 1)
    assert drift_detected(envoy, diverged) == 1
    assert [len(settings_writes(fleet, i, diverged)) for i in range(fleet.size)] == [0, 0, 1]
    assert_every_node_holds(fleet, diverged, majority)

    # The converged fleet: fingerprint and per-node versions recorded, no repair, nothing written.
    agreed_body = fleet.node_settings(0, agreed)
    fingerprint = jcs.fingerprint(agreed_body)
    wait_until(lambda: index_state(envoy, agreed)["fingerprint"], DRIFT_DEADLINE,
               "the startup check to record the agreed index")
    state = index_state(envoy, agreed)
    assert state["fingerprint"] == fingerprint, f"filter {state['fingerprint']} != JCS sha256 {fingerprint}"
    assert state["nodes"] == verified_nodes(0, fingerprint), state
    assert state["settingsVersion"] == 0 and state["frozen"] is None, state
    assert drift_detected(envoy, agreed) == 0 and drift_repaired(envoy, agreed) == 0
    assert non_read_requests(fleet, agreed) == []
    # The repaired index is recorded too, with the majority's fingerprint.
    repaired = index_state(envoy, diverged)
    assert repaired["fingerprint"] == jcs.fingerprint(majority_body), repaired
    assert {n["fingerprint"] for n in repaired["nodes"]} == {repaired["fingerprint"]}, repaired
    assert repaired["settingsVersion"] == 0, "a drift repair must not create a settings version"


# --- (5) drift in masked embedder secrets: freeze, fix, unfreeze -------------------------------------------

EMBEDDER_KEY = "sk-drift-embedder-key-0123456789abcdef"
OTHER_EMBEDDER_KEY = "sk-other-embedder-key-fedcba9876543210"


def embedder(model: str, key: str) -> dict[str, Any]:
    return {"embedders": {"e": {"source": "openAi", "model": model, "apiKey": key}}}


def test_embedders_that_differ_freeze_the_index_until_fixed_and_unfrozen(start: Callable[..., Any]) -> None:
    uid = fresh_uid("drift_embedders")

    def diverge(fleet: Fleet) -> None:
        for node in range(fleet.size):
            fleet.out_of_band(node, uid, embedder("text-embedding-3-small", EMBEDDER_KEY) if node < 2
                              else embedder("text-embedding-3-large", OTHER_EMBEDDER_KEY))

    fleet, envoy, proxy = start(before_envoy=diverge)
    assert fleet.node_settings(2, uid)["embedders"] != fleet.node_settings(0, uid)["embedders"]

    # Frozen by the startup check: no desired settings held, and the apiKeys read back masked.
    wait_until(lambda: index_state(envoy, uid)["frozen"], DRIFT_DEADLINE, "the startup check to freeze the index")
    state = index_state(envoy, uid)
    assert state["frozen"]["nodes"] == ["node-2"] and "embedders" in state["frozen"]["reason"], state["frozen"]
    assert state["phase"] == "frozen", state
    assert freeze_stats(envoy, uid) == (1, 5)
    assert drift_detected(envoy, uid) == 1 and drift_repaired(envoy, uid) == 0

    # Writes are refused locally; nothing reaches a node; an unverified unfreeze is refused.
    clear_all_requests(fleet)
    assert_meili_error(proxy.request("POST", f"/indexes/{uid}/documents", [{"id": 1}]), 503, "miroir_index_frozen")
    assert_meili_error(proxy.write_settings("PATCH", uid, {"stopWords": ["x"]}), 503, "miroir_index_frozen")
    assert non_read_requests(fleet, uid) == []
    assert_meili_error(admin(envoy, "POST", f"/_miroir/indexes/{uid}/unfreeze"), 409, "miroir_index_still_diverged")
    assert freeze_stats(envoy, uid) == (1, 5)

    # The operator fixes node 2, then unfreezes: the verify finds the fleet converged.
    fleet.out_of_band(2, uid, embedder("text-embedding-3-small", EMBEDDER_KEY))
    assert fleet.node_settings(2, uid, clear_secrets=True) == fleet.node_settings(0, uid, clear_secrets=True)
    unfrozen = admin(envoy, "POST", f"/_miroir/indexes/{uid}/unfreeze")
    assert unfrozen.status_code == 200, unfrozen.text
    body = unfrozen.json()
    assert body["converged"] is True and body["index"]["frozen"] is None, body
    assert set(body["fingerprints"].values()) == {jcs.fingerprint(fleet.node_settings(0, uid))}, body
    assert freeze_stats(envoy, uid) == (0, 0)

    # Writes work again.
    assert proxy.request("POST", f"/indexes/{uid}/documents", [{"id": 1}]).status_code == 202
    proxy.commit("PATCH", uid, {"stopWords": ["fixed"]})
    assert_every_node_holds(fleet, uid, {"stopWords": ["fixed"]})
    assert proxy.version_header(uid) == 1
    # The embedders' keys never left the filter.
    for text in (envoy.log_text(), unfrozen.text, envoy.prometheus()):
        assert EMBEDDER_KEY not in text and OTHER_EMBEDDER_KEY not in text


# --- (6) admin verify --------------------------------------------------------------------------------------

def test_admin_verify_reports_convergence_and_each_nodes_fingerprint(start: Callable[..., Any]) -> None:
    # No repair and no scheduled check after startup: only the operator's verify looks.
    fleet, envoy, proxy = start(drift={"auto_repair": False})
    uid = fresh_uid("verify")
    proxy.commit("PATCH", uid, COMMITTED)
    committed = assert_every_node_holds(fleet, uid, COMMITTED)[0]
    fingerprint = jcs.fingerprint(committed)

    converged = admin(envoy, "POST", f"/_miroir/indexes/{uid}/verify")
    assert converged.status_code == 200, converged.text
    body = converged.json()
    assert body["converged"] is True, body
    assert body["fingerprints"] == {n: fingerprint for n in NODE_IDS}, f"JCS sha256 is {fingerprint}: {body}"
    assert body["index"]["fingerprint"] == fingerprint and body["index"]["settingsVersion"] == 1, body

    rogue = fleet.out_of_band(1, uid, OUT_OF_BAND)
    diverged = admin(envoy, "POST", f"/_miroir/indexes/{uid}/verify")
    assert diverged.status_code == 200, diverged.text
    body = diverged.json()
    assert body["converged"] is False, body
    expected = {"node-0": fingerprint, "node-1": jcs.fingerprint(rogue), "node-2": fingerprint}
    assert body["fingerprints"] == expected, body
    assert "node-1" in body["detail"], body
    assert body["index"]["settingsVersion"] == 1 and body["index"]["frozen"] is None, body
    assert drift_detected(envoy, uid) == 1
    assert fleet.node_settings(1, uid) == rogue, "auto_repair is off, yet node 1 changed"


# --- (7) the node key for background calls ------------------------------------------------------------------

FLEET_MASTER_KEY = "drift-fleet-master-key-7c1d0e9a"


@pytest.mark.parametrize("with_node_key", [True, False], ids=["node-key", "no-node-key"])
def test_background_calls_use_the_node_key_from_the_environment(start: Callable[..., Any],
                                                                  with_node_key: bool) -> None:
    env = {"MIROIR_ADMIN_API_KEY": ADMIN_KEY}
    if with_node_key:
        env["MIROIR_NODE_API_KEY"] = FLEET_MASTER_KEY
    fleet, envoy, proxy = start(drift=EVERY_SECOND, master_key=FLEET_MASTER_KEY, env=env)
    uid = fresh_uid("drift_key")
    # The client's own key carries the broadcast either way.
    proxy.commit("PATCH", uid, COMMITTED)
    committed = assert_every_node_holds(fleet, uid, COMMITTED)[0]
    clear_all_requests(fleet)

    rogue = fleet.out_of_band(1, uid, OUT_OF_BAND)

    if with_node_key:
        wait_until(lambda: node_holds(fleet, 1, uid, committed), DRIFT_DEADLINE, "node 1 to be repaired")
        envoy.wait_for_stat(index_stat("miroir_settings_drift_repair_total", uid), lambda v: v >= 1)
        assert all(r["authorization"] == f"Bearer {FLEET_MASTER_KEY}" for r in drift_listings(fleet))
        assert UNAUTHENTICATED_WARNING not in envoy.log_text()
        return

    wait_for_whole_drift_checks(fleet, runs=3)
    listings = drift_listings(fleet)
    assert listings and not any(r["has_authorization"] for r in listings), listings
    warnings = unauthenticated_warnings(envoy)
    assert warnings and all("MIROIR_NODE_API_KEY" in line for line in warnings), warnings
    assert fleet.node_settings(1, uid) == rogue, "repaired without being able to read the nodes"
    assert non_read_requests(fleet, uid) == []
    assert drift_detected(envoy, uid) == 0 and drift_repaired(envoy, uid) == 0


def unauthenticated_warnings(envoy: Envoy) -> list[str]:
    return [line for line in envoy.log_text().splitlines() if UNAUTHENTICATED_WARNING in line]


def test_the_missing_node_key_is_logged_once(start: Callable[..., Any]) -> None:
    fleet, envoy, proxy = start(master_key=FLEET_MASTER_KEY, env={"MIROIR_ADMIN_API_KEY": ADMIN_KEY})
    wait_until(lambda: unauthenticated_warnings(envoy), DRIFT_DEADLINE, "the startup check's warning")
    # More background reads, from whichever worker serves each operator's verify (a new connection
    # each time, so both workers get some).
    for _ in range(12):
        answer = admin(envoy, "POST", f"/_miroir/indexes/{fresh_uid('keyless')}/verify")
        assert answer.status_code == 200 and answer.json()["converged"] is False, answer.text
    warnings = unauthenticated_warnings(envoy)
    assert len(warnings) == 1, f"expected the warning once, got {len(warnings)}: {warnings}"


# --- (8) a write that commits while a check is reading is not drift -----------------------------------------

def test_a_write_committed_while_a_drift_check_reads_is_not_counted_as_drift(start: Callable[..., Any]) -> None:
    fleet, envoy, proxy = start(drift=EVERY_SECOND)
    uid = fresh_uid("drift_race")
    proxy.commit("PATCH", uid, {"stopWords": ["v1"]})
    wait_for_whole_drift_checks(fleet)

    # Hold the next check's read of node 2 for 1.5 s (the delay is taken when a request arrives),
    # and commit a write meanwhile: nodes 0 and 1 were read before it, node 2 after it.
    reads_before = drift_reads(fleet, 2, uid)
    fleet.fault(2, delay_ms=1500)
    wait_until(lambda: drift_reads(fleet, 2, uid) > reads_before, DRIFT_DEADLINE, "a drift read of node 2")
    fleet.clear(2)
    clear_all_requests(fleet)
    proxy.commit("PATCH", uid, {"stopWords": ["v2"]})
    wait_for_whole_drift_checks(fleet)

    assert_every_node_holds(fleet, uid, {"stopWords": ["v2"]})
    assert [len(settings_writes(fleet, i, uid)) for i in range(fleet.size)] == [1, 1, 1], "the commit was 'repaired'"
    assert drift_detected(envoy, uid) == 0, "a committed write was counted as drift"


def test_a_verify_that_read_before_a_freeze_does_not_lift_it(start: Callable[..., Any]) -> None:
    # No scheduled check after startup: the operator's verify is the only one.
    fleet, envoy, proxy = start(broadcast={"max_repair_retries": 1, "repair_backoff_base_ms": 50})
    uid = fresh_uid("verify_race")
    proxy.commit("PATCH", uid, {"stopWords": ["v1"]})

    # The verify reads nodes 0 and 1 at once and node 2 after 1.5 s; meanwhile a write freezes the
    # index because node 2 drops every update (so node 2 still reads the old settings).
    reads_before = drift_reads(fleet, 2, uid)
    fleet.fault(2, delay_ms=1500)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        verify = pool.submit(admin, envoy, "POST", f"/_miroir/indexes/{uid}/verify")
        wait_until(lambda: drift_reads(fleet, 2, uid) > reads_before, DRIFT_DEADLINE, "the verify's read of node 2")
        fleet.fault(2, delay_ms=0, drop_updates=-1)
        frozen = proxy.wait_task(proxy.accepted("PATCH", uid, {"stopWords": ["v2"]}))
        assert frozen["status"] == "failed" and frozen["miroir"]["frozen"] is True, frozen
        answer = verify.result(timeout=30)

    assert answer.status_code == 200, answer.text
    assert [fleet.node_settings(i, uid)["stopWords"] for i in range(fleet.size)] == [["v2"], ["v2"], ["v1"]]
    state = index_state(envoy, uid)
    assert state["frozen"] is not None, f"the freeze was lifted while the nodes diverge: {answer.text}"
    assert freeze_stats(envoy, uid) == (1, 5)
    assert_meili_error(proxy.request("POST", f"/indexes/{uid}/documents", [{"id": 1}]), 503, "miroir_index_frozen")
