"""The two-phase settings broadcast end to end (issue 3): real Envoy with `--concurrency 2`, the
built filter, dev nodes. Each scenario asserts what a user cares about: what every node holds, the
committed version (task, response header, stat), and the answer and task the client gets.

Fault-free scenarios share one fleet and one Envoy per module (each on its own index); scenarios
with faults or another plugin configuration get their own."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests

from conftest import NODE_KEY
from harness import Envoy, Fleet
from scenario import (
    DEFAULT_SETTINGS, INCONSISTENT_HEADER, NO_BODY, VERSION_HEADER, Proxy, assert_every_node_holds,
    assert_meili_error, assert_summarized_task, clear_all_requests, fresh_uid, index_stat, node_tasks, parse_time,
    settings_path, settings_writes, shared_envoy, task_duration_ms, version_stat, wait_nodes_idle,
)


@pytest.fixture(scope="module")
def shared(module_fleet: Fleet, module_workdir: Path) -> Iterator[Envoy]:
    with shared_envoy(module_fleet, module_workdir) as envoy:
        yield envoy


@pytest.fixture
def proxy(shared: Envoy) -> Iterator[Proxy]:
    client = Proxy(shared)
    yield client
    client.close()


def assert_committed(proxy: Proxy, fleet: Fleet, uid: str, task: dict[str, Any], version: int) -> None:
    """`task` committed settings version `version`, and every place a user looks says so."""
    assert task["status"] == "succeeded" and task["error"] is None, task
    assert task["miroir"]["settings_version"] == version, task["miroir"]
    assert task["miroir"]["phase"] == "committed", task["miroir"]
    fingerprints = {n["fingerprint"] for n in task["miroir"]["nodes"]}
    assert len(fingerprints) == 1 and None not in fingerprints, task["miroir"]["nodes"]
    read = proxy.settings(uid)
    assert read.status_code == 200, read.text
    assert read.headers.get(VERSION_HEADER) == str(version), dict(read.headers)
    assert INCONSISTENT_HEADER not in read.headers, dict(read.headers)
    assert version_stat(proxy.envoy, uid) == version


# --- (1) every kind of settings write reaches every node, one version each -----------------------------

# (method, sub-route, body, what every node must read back afterwards), applied in order. The
# expectations carry Meilisearch's normalizations (reference §3, §4): sets sorted and deduplicated,
# searchable attributes deduplicated in client order, disableOnWords lowercased, typo tolerance and
# faceting merged field by field, sortFacetValuesBy gets "*".
WRITES: list[tuple[str, str | None, Any, dict[str, Any]]] = [
    ("PATCH", None,
     {"searchableAttributes": ["title", "author", "title"], "sortableAttributes": ["year", "author"],
      "stopWords": ["the", "a", "the"], "rankingRules": ["words", "typo", "year:desc"],
      "typoTolerance": {"disableOnWords": ["iPhone"]}, "distinctAttribute": "isbn",
      "pagination": {"maxTotalHits": 500}},
     {"searchableAttributes": ["title", "author"], "sortableAttributes": ["author", "year"],
      "stopWords": ["a", "the"], "rankingRules": ["words", "typo", "year:desc"],
      "typoTolerance": {**DEFAULT_SETTINGS["typoTolerance"], "disableOnWords": ["iphone"]},
      "distinctAttribute": "isbn", "pagination": {"maxTotalHits": 500}}),
    ("PUT", "synonyms", {"phone": ["mobile", "cell"], "car": ["auto"]},
     {"synonyms": {"car": ["auto"], "phone": ["mobile", "cell"]}}),
    ("PUT", "stop-words", ["of", "and"], {"stopWords": ["and", "of"]}),
    ("PATCH", "typo-tolerance", {"minWordSizeForTypos": {"oneTypo": 4}},
     {"typoTolerance": {"enabled": True, "minWordSizeForTypos": {"oneTypo": 4, "twoTypos": 9},
                        "disableOnWords": ["iphone"], "disableOnAttributes": [], "disableOnNumbers": False}}),
    ("PATCH", "faceting", {"maxValuesPerFacet": 50},
     {"faceting": {"maxValuesPerFacet": 50, "sortFacetValuesBy": {"*": "alpha"}}}),
    ("PUT", "ranking-rules", ["typo", "words", "sort"], {"rankingRules": ["typo", "words", "sort"]}),
    ("DELETE", "stop-words", NO_BODY, {"stopWords": [], "synonyms": {"car": ["auto"], "phone": ["mobile", "cell"]}}),
    ("DELETE", None, NO_BODY, DEFAULT_SETTINGS),
]


def test_every_settings_write_form_reaches_every_node_and_bumps_the_version(
        proxy: Proxy, module_fleet: Fleet) -> None:
    fleet = module_fleet
    uid = fresh_uid("writes")
    assert proxy.version_header(uid) is None, "no version before the first commit"
    for version, (method, sub_route, body, expected) in enumerate(WRITES, start=1):
        clear_all_requests(fleet)
        task = proxy.wait_task(proxy.accepted(method, uid, body, sub_route))
        step = f"write {version}: {method} {settings_path(uid, sub_route)}"
        assert task["status"] == "succeeded", f"{step}: {json.dumps(task, indent=1)}"
        assert_committed(proxy, fleet, uid, task, version)
        assert_every_node_holds(fleet, uid, expected)
        for i in range(fleet.size):
            # Exactly one copy of the client's write per node, with the client's credentials.
            writes = settings_writes(fleet, i, uid)
            assert [(w["method"], w["path"]) for w in writes] == [(method, settings_path(uid, sub_route))], step
            assert writes[0]["authorization"] == f"Bearer {NODE_KEY}", step
    # Other reads of the index are stamped too; the node's own task uids are not the filter's.
    search = proxy.request("POST", f"/indexes/{uid}/search", {"q": ""})
    assert search.status_code == 200 and search.headers.get(VERSION_HEADER) == str(len(WRITES)), search.headers
    assert proxy.envoy.stat(index_stat("miroir_settings_broadcast_total", uid, "succeeded")) == len(WRITES)


# Writes whose read-back Meilisearch rewrites (reference §3, §4). Each must commit at the first
# verify: a filter that mispredicts a normalization would "repair" a healthy fleet and end frozen.
NORMALIZED: list[tuple[str, str, str | None, Any, dict[str, Any]]] = [
    ("stop-words-unicode", "PATCH", None, {"stopWords": ["café", "Über", "the", "The", "the"]},
     {"stopWords": ["The", "U\u0308ber", "cafe\u0301", "the"]}),
    ("displayed-star", "PATCH", None, {"displayedAttributes": ["title", "*"]}, {"displayedAttributes": ["*"]}),
    ("displayed-star-sub-route", "PUT", "displayed-attributes", ["*", "x"], {"displayedAttributes": ["*"]}),
    ("searchable-dedup", "PATCH", None, {"searchableAttributes": ["b", "a", "b"]}, {"searchableAttributes": ["b", "a"]}),
    ("filterable-rules", "PATCH", None, {"filterableAttributes": [{"attributePatterns": ["genre"]}, "year"]},
     {"filterableAttributes": [
         {"attributePatterns": ["genre"],
          "features": {"facetSearch": False, "filter": {"equality": True, "comparison": False}}},
         "year"]}),
    ("ranking-duplicates", "PATCH", None, {"rankingRules": ["words", "words", "price:asc"]},
     {"rankingRules": ["words", "words", "price:asc"]}),
    ("locales", "PATCH", None, {"localizedAttributes": [{"attributePatterns": ["*_ja"], "locales": ["ja", "en"]}]},
     {"localizedAttributes": [{"attributePatterns": ["*_ja"], "locales": ["jpn", "eng"]}]}),
    ("typo-words", "PATCH", None,
     {"typoTolerance": {"disableOnWords": ["Café", "New York"], "disableOnAttributes": ["b", "a", "b"]}},
     {"typoTolerance": {**DEFAULT_SETTINGS["typoTolerance"], "disableOnWords": ["cafe", "new york"],
                        "disableOnAttributes": ["a", "b"]}}),
    ("facet-order", "PATCH", "faceting", {"sortFacetValuesBy": {"genre": "count"}},
     {"faceting": {"maxValuesPerFacet": 100, "sortFacetValuesBy": {"*": "alpha", "genre": "count"}}}),
    ("token-sets", "PATCH", None,
     {"dictionary": ["b", "a", "b"], "separatorTokens": ["|", "&"], "nonSeparatorTokens": ["@", "#", "@"]},
     {"dictionary": ["a", "b"], "separatorTokens": ["&", "|"], "nonSeparatorTokens": ["#", "@"]}),
    ("empty-is-default", "PATCH", None, {"stopWords": [], "synonyms": {}, "sortableAttributes": []},
     {"stopWords": [], "synonyms": {}, "sortableAttributes": []}),
    ("nulls-reset", "PATCH", None, {"distinctAttribute": None, "typoTolerance": None, "pagination": None},
     {"distinctAttribute": None, "typoTolerance": DEFAULT_SETTINGS["typoTolerance"], "pagination": {"maxTotalHits": 1000}}),
    ("enums-and-flags", "PATCH", None,
     {"proximityPrecision": "byAttribute", "prefixSearch": "disabled", "facetSearch": False, "searchCutoffMs": 150},
     {"proximityPrecision": "byAttribute", "prefixSearch": "disabled", "facetSearch": False, "searchCutoffMs": 150}),
    ("embedder-defaults", "PATCH", "embedders", {"manual": {"source": "userProvided", "dimensions": 3}},
     {"embedders": {"manual": {"source": "userProvided", "dimensions": 3}}}),
]


@pytest.mark.parametrize("method, sub_route, body, expected",
                         [pytest.param(*case[1:], id=case[0]) for case in NORMALIZED])
def test_normalized_read_backs_commit_without_repair(proxy: Proxy, module_fleet: Fleet, method: str,
                                                     sub_route: str | None, body: Any, expected: dict[str, Any]) -> None:
    uid = fresh_uid("norm")
    task = proxy.commit(method, uid, body, sub_route)
    assert task["miroir"]["repair_attempts"] == 0, task["miroir"]
    assert_committed(proxy, module_fleet, uid, task, 1)
    assert_every_node_holds(module_fleet, uid, expected)


def test_a_write_every_node_rejects_returns_the_node_answer_and_changes_nothing(
        proxy: Proxy, module_fleet: Fleet) -> None:
    fleet = module_fleet
    uid = fresh_uid("rejected")
    proxy.commit("PATCH", uid, {"stopWords": ["kept"]})
    tasks_before = [len(node_tasks(fleet, i, uid)) for i in range(fleet.size)]
    bad = {"rankingRules": ["words", "nonsense"]}

    response = proxy.write_settings("PATCH", uid, bad)

    body = assert_meili_error(response, 400, "invalid_settings_ranking_rules")
    # Byte for byte what a node answers to the same request.
    direct = fleet.session.patch(fleet.node_url(0) + settings_path(uid), json=bad, headers=fleet.auth_headers(),
                                 timeout=10)
    assert response.text == direct.text, (response.text, direct.text)
    assert "nonsense" in body["message"]
    assert [len(node_tasks(fleet, i, uid)) for i in range(fleet.size)] == tasks_before, "a node enqueued a task"
    assert proxy.version_header(uid) == 1 and version_stat(proxy.envoy, uid) == 1
    assert_every_node_holds(fleet, uid, {"stopWords": ["kept"], "rankingRules": DEFAULT_SETTINGS["rankingRules"]})


# Spellings of a settings write that Meilisearch (actix) routes to the settings handler: each must be
# broadcast like the plain one, never passed to a single node.
SPELLINGS = [
    ("PATCH", "/indexes/{uid}/%73ettings", {"stopWords": ["escaped"]}, ["escaped"]),
    ("PATCH", "//indexes/{uid}/settings/", {"stopWords": ["slashes"]}, ["slashes"]),
    ("PUT", "/indexes/{uid}/settings/stop%2Dwords", ["escaped-sub"], ["escaped-sub"]),
    ("PUT", "/indexes/{uid}/settings/stop-words/", ["trailing"], ["trailing"]),
    ("PATCH", "/indexes/{uid}/settings?customMetadata=note", {"stopWords": ["query"]}, ["query"]),
]


@pytest.mark.parametrize("method, spelling, body, stop_words", SPELLINGS, ids=[s[1] for s in SPELLINGS])
def test_every_spelling_of_a_settings_write_is_broadcast(proxy: Proxy, module_fleet: Fleet, method: str,
                                                         spelling: str, body: Any, stop_words: list[str]) -> None:
    uid = fresh_uid("spelled")
    proxy.commit("PATCH", uid, {"stopWords": ["plain"]})
    response = proxy.request(method, spelling.format(uid=uid), body)
    task = proxy.wait_task(assert_summarized_task(response, uid))
    assert_committed(proxy, module_fleet, uid, task, 2)
    assert_every_node_holds(module_fleet, uid, {"stopWords": stop_words})


@pytest.mark.parametrize("key, status, code", [
    ("wrong-key", 403, "invalid_api_key"),
    (None, 401, "missing_authorization_header"),
])
def test_a_write_with_bad_credentials_gets_the_node_refusal_and_changes_nothing(
        shared: Envoy, module_fleet: Fleet, key: str | None, status: int, code: str) -> None:
    """The filter forwards the client's Authorization and lends it no rights of its own."""
    uid = fresh_uid("creds")
    with Proxy(shared) as owner, Proxy(shared, key=key) as intruder:
        owner.commit("PATCH", uid, {"stopWords": ["mine"]})
        assert_meili_error(intruder.write_settings("PATCH", uid, {"stopWords": ["theirs"]}), status, code)
        assert owner.version_header(uid) == 1
    assert_every_node_holds(module_fleet, uid, {"stopWords": ["mine"]})


def test_a_write_without_content_type_gets_the_node_415(proxy: Proxy, module_fleet: Fleet) -> None:
    uid = fresh_uid("noctype")
    proxy.commit("PATCH", uid, {"stopWords": ["kept"]})
    response = proxy.request("PATCH", settings_path(uid), data=b'{"stopWords": ["typed"]}', content_type=None)
    assert_meili_error(response, 415, "missing_content_type")
    assert_every_node_holds(module_fleet, uid, {"stopWords": ["kept"]})


@pytest.mark.parametrize("payload, code", [
    (b'{"rankingRules": ["words",', "malformed_payload"),
    (b'{"stopWords": ["a"]} trailing', "malformed_payload"),
    (b"", "missing_payload"),
])
def test_an_unreadable_body_is_refused_before_any_node_is_touched(
        proxy: Proxy, module_fleet: Fleet, payload: bytes, code: str) -> None:
    fleet = module_fleet
    uid = fresh_uid("badbody")
    clear_all_requests(fleet)

    response = proxy.request("PATCH", settings_path(uid), data=payload)

    body = assert_meili_error(response, 400, code)
    assert body["type"] == "invalid_request", body
    assert all(fleet.requests(i) == [] for i in range(fleet.size)), [fleet.requests(i) for i in range(fleet.size)]
    assert proxy.version_header(uid) is None


def test_concurrent_writes_on_one_index_commit_one_by_one_in_arrival_order(
        shared: Envoy, module_fleet: Fleet) -> None:
    """20 PATCHes at once from 20 connections: 20 tasks, 20 versions, none lost or interleaved; the
    order is the order of the task uids the filter handed out, and the last one wins on every node."""
    fleet = module_fleet
    uid = fresh_uid("concurrent")
    writers = 20
    bodies = [{"stopWords": [f"w{n:02d}"], "searchCutoffMs": 100 + n} for n in range(writers)]
    start = threading.Barrier(writers)
    answers: list[requests.Response | BaseException | None] = [None] * writers

    def write(n: int) -> None:
        client = Proxy(shared)  # its own session: its own connection
        try:
            start.wait(timeout=10)
            answers[n] = client.write_settings("PATCH", uid, bodies[n])
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            answers[n] = error
        finally:
            client.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(isinstance(a, requests.Response) and a.status_code == 202 for a in answers), answers
    task_uids = [a.json()["taskUid"] for a in answers if isinstance(a, requests.Response)]
    assert len(set(task_uids)) == writers, task_uids

    with Proxy(shared) as proxy:
        tasks = {t: proxy.wait_task(t) for t in task_uids}
        assert proxy.version_header(uid) == writers
    in_arrival_order = sorted(range(writers), key=lambda n: task_uids[n])
    versions = [tasks[task_uids[n]]["miroir"]["settings_version"] for n in in_arrival_order]
    assert [tasks[task_uids[n]]["status"] for n in in_arrival_order] == ["succeeded"] * writers
    assert versions == list(range(1, writers + 1)), versions
    last = bodies[in_arrival_order[-1]]
    assert_every_node_holds(fleet, uid, last)
    assert version_stat(shared, uid) == writers
    # Each node applied the writes one after the other in that same order.
    for i in range(fleet.size):
        applied = [t["details"]["stopWords"] for t in node_tasks(fleet, i, uid)]
        assert applied == [bodies[n]["stopWords"] for n in in_arrival_order], f"node {i}"


def test_a_write_whose_client_hangs_up_at_once_still_commits(shared: Envoy, module_fleet: Fleet) -> None:
    fleet = module_fleet
    uid = fresh_uid("hangup")
    body = json.dumps({"stopWords": ["gone"], "rankingRules": ["words"]}).encode()
    request = (
        f"PATCH {settings_path(uid)} HTTP/1.1\r\nHost: 127.0.0.1:{shared.port}\r\n"
        f"Authorization: Bearer {NODE_KEY}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.create_connection(("127.0.0.1", shared.port), timeout=10) as sock:
        sock.sendall(request)
    # The socket is closed before any answer could come back.

    shared.wait_for_stat(index_stat("miroir_settings_version", uid), lambda v: v == 1, timeout=30)
    assert_every_node_holds(fleet, uid, {"stopWords": ["gone"], "rankingRules": ["words"]})
    with Proxy(shared) as proxy:
        assert proxy.version_header(uid) == 1
    assert shared.stat(index_stat("miroir_settings_broadcast_total", uid, "succeeded")) == 1


def test_the_202_of_a_settings_write_carries_the_version(proxy: Proxy, module_fleet: Fleet) -> None:
    """Issue 3: `X-Miroir-Settings-Version` on every response for an index with a committed
    version, the filter's own local answer included."""
    uid = fresh_uid("stamped")
    proxy.commit("PATCH", uid, {"stopWords": ["one"]})
    accepted = proxy.write_settings("PATCH", uid, {"stopWords": ["two"]})
    assert accepted.status_code == 202
    proxy.wait_task(accepted.json()["taskUid"])
    assert accepted.headers.get(VERSION_HEADER) == "1", dict(accepted.headers)


# --- scenarios with faults or their own plugin configuration --------------------------------------------

@pytest.fixture
def start(make_fleet: Callable[..., Fleet], make_envoy: Callable[..., Envoy],
          filter_wasm: Path) -> Callable[..., tuple[Fleet, Envoy, Proxy]]:
    """`start(nodes=3, settings_broadcast={...})` → a fresh fleet, an Envoy with those overrides
    and a client."""
    clients: list[Proxy] = []

    def make(nodes: int = 3, **overrides: Any) -> tuple[Fleet, Envoy, Proxy]:
        fleet = make_fleet(nodes)
        envoy = make_envoy(fleet, wasm=filter_wasm, plugin_overrides=overrides or None)
        clients.append(Proxy(envoy))
        return fleet, envoy, clients[-1]

    yield make
    for client in clients:
        client.close()


FAIL = {"code": "invalid_settings_ranking_rules", "message": "the engine refused this", "type": "invalid_request"}


def test_node_tasks_that_all_fail_fail_the_task_with_the_node_error(start: Callable[..., Any]) -> None:
    fleet, envoy, proxy = start()
    uid = fresh_uid("allfail")
    proxy.commit("PATCH", uid, {"stopWords": ["before"]})
    for i in range(fleet.size):
        fleet.fault(i, fail_tasks=FAIL)

    task = proxy.wait_task(proxy.accepted("PATCH", uid, {"stopWords": ["after"]}))

    assert task["status"] == "failed", task
    assert task["error"]["code"] == FAIL["code"], task["error"]
    assert FAIL["message"] in task["error"]["message"], task["error"]
    assert task["miroir"]["repair_attempts"] == 0, task["miroir"]
    assert [n["status"] for n in task["miroir"]["nodes"]] == ["failed"] * fleet.size, task["miroir"]
    assert proxy.version_header(uid) == 1 and version_stat(envoy, uid) == 1
    assert_every_node_holds(fleet, uid, {"stopWords": ["before"]})
    assert all(len(settings_writes(fleet, i, uid)) == 2 for i in range(fleet.size)), "no repair expected"


def test_a_node_applying_another_value_fails_the_task_without_freezing(start: Callable[..., Any]) -> None:
    fleet, envoy, proxy = start(settings_broadcast={"max_repair_retries": 0, "freeze_writes_on_unrepairable": False})
    uid = fresh_uid("different")
    proxy.commit("PATCH", uid, {"stopWords": ["one"]})
    fleet.fault(1, apply_different={"stopWords": ["sneaky"]})

    task = proxy.wait_task(proxy.accepted("PATCH", uid, {"stopWords": ["two"]}))

    assert task["status"] == "failed", task
    assert task["error"]["code"] == "miroir_settings_divergence", task["error"]
    assert task["miroir"]["frozen"] is False and task["miroir"]["repair_attempts"] == 0, task["miroir"]
    assert proxy.version_header(uid) == 1 and version_stat(envoy, uid) == 1
    assert fleet.node_settings(1, uid)["stopWords"] == ["sneaky"]
    # Not frozen: once the node behaves, the next write converges the fleet.
    fleet.clear(1)
    proxy.commit("PATCH", uid, {"stopWords": ["three"]})
    assert_every_node_holds(fleet, uid, {"stopWords": ["three"]})
    assert proxy.version_header(uid) == 2


def test_reads_are_marked_inconsistent_until_a_slow_node_commits(start: Callable[..., Any]) -> None:
    fleet, envoy, proxy = start()
    uid = fresh_uid("slow")
    proxy.commit("PATCH", uid, {"stopWords": ["fast"]})
    fleet.fault(1, task_ms=2000)

    task_uid = proxy.accepted("PATCH", uid, {"stopWords": ["slow"]})
    during = []
    while proxy.task(task_uid)["status"] not in ("succeeded", "failed"):
        read = proxy.settings(uid)
        during.append((read.status_code, read.headers.get(INCONSISTENT_HEADER), read.headers.get(VERSION_HEADER)))
        if len(during) > 400:
            break
    task = proxy.wait_task(task_uid)

    assert task["status"] == "succeeded", task
    assert task_duration_ms(task) >= 1900, "the job did not wait for the slow node"
    # The last read may race the commit; every read before it was taken mid-job.
    assert len(during) >= 3, during
    assert all(r == (200, "true", "1") for r in during[:-1]), during
    after = proxy.settings(uid)
    assert INCONSISTENT_HEADER not in after.headers and after.headers.get(VERSION_HEADER) == "2", dict(after.headers)
    assert_every_node_holds(fleet, uid, {"stopWords": ["slow"]})


SEQUENTIAL = {"settings_broadcast": {"strategy": "sequential"}}


def test_sequential_strategy_applies_node_by_node(start: Callable[..., Any]) -> None:
    fleet, envoy, proxy = start(**SEQUENTIAL)
    uid = fresh_uid("seq")
    for version, (method, sub_route, body, expected) in enumerate(WRITES[:3] + WRITES[6:], start=1):
        task = proxy.wait_task(proxy.accepted(method, uid, body, sub_route))
        assert_committed(proxy, fleet, uid, task, version)
        assert_every_node_holds(fleet, uid, expected)
    # Node by node: a node's task is enqueued only after the previous node's task finished.
    first_write = [node_tasks(fleet, i, uid)[0] for i in range(fleet.size)]
    for earlier, later in zip(first_write, first_write[1:]):
        assert parse_time(later["enqueuedAt"]) >= parse_time(earlier["finishedAt"]), (earlier, later)


def test_sequential_strategy_rolls_back_the_updated_nodes_when_one_fails(start: Callable[..., Any]) -> None:
    fleet, envoy, proxy = start(**SEQUENTIAL)
    uid = fresh_uid("seqfail")
    before = {"stopWords": ["keep"], "rankingRules": ["words", "typo"], "synonyms": {"a": ["b"]}}
    proxy.commit("PATCH", uid, before)
    held_before = fleet.all_node_settings(uid)
    fleet.fault(2, fail_tasks=FAIL)

    task = proxy.wait_task(proxy.accepted("PATCH", uid, {"stopWords": ["new"], "rankingRules": ["typo"]}))

    assert task["status"] == "failed", task
    assert task["error"] is not None, task
    wait_nodes_idle(fleet, uid)
    assert fleet.all_node_settings(uid) == held_before, "nodes 0 and 1 were not rolled back"
    # Nodes 0 and 1 got the write and then the rollback; node 2 got the write only.
    assert [len(settings_writes(fleet, i, uid)) for i in range(fleet.size)] == [3, 3, 2]
    assert proxy.version_header(uid) == 1 and version_stat(envoy, uid) == 1


def test_verify_reads_every_node_in_parallel(start: Callable[..., Any]) -> None:
    """8 nodes that each take `delay` to answer anything: the whole job (propose, task polls,
    verify) must take well under what reading 8 nodes one after the other would."""
    # A long delay next to the filter's own overhead keeps the ratio meaningful on a loaded machine.
    nodes, delay_ms = 8, 200
    fleet, envoy, proxy = start(nodes=nodes)
    uid = fresh_uid("wide")
    proxy.commit("PATCH", uid, {"stopWords": ["warm"]})  # connections open, index exists
    for i in range(nodes):
        fleet.fault(i, delay_ms=delay_ms)

    task = proxy.commit("PATCH", uid, {"stopWords": ["wide"]})

    assert_every_node_holds(fleet, uid, {"stopWords": ["wide"]})
    sequential_reads_ms = nodes * delay_ms
    took = task_duration_ms(task)
    # Parallel: about 3-4 delays (propose, a poll or two, verify); one phase done node by node
    # alone would take 8.
    assert took < 0.6 * sequential_reads_ms, f"job took {took:.0f} ms; 8 sequential reads take {sequential_reads_ms} ms"
    assert took >= 2 * delay_ms, f"job took {took:.0f} ms: the delay fault did not apply"
