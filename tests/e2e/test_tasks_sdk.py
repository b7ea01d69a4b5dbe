"""The official Python SDK (PyPI `meilisearch`) through Envoy and the filter, unmodified: settings
calls return the filter's task, `wait_for_task` follows it to its end, failures surface the way the
SDK reports Meilisearch's own, and tasks stay private to the key that created them (issue 3, §4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import meilisearch
import pytest
from meilisearch.errors import MeilisearchApiError

from conftest import NODE_KEY
from harness import Envoy, Fleet
from scenario import (
    DEFAULT_SETTINGS, TASK_UID_BASE, Proxy, assert_every_node_holds, fresh_uid, node_tasks,
    shared_envoy, version_stat,
)

WAIT_MS = 30_000


@pytest.fixture(scope="module")
def shared(module_fleet: Fleet, module_workdir: Path) -> Iterator[Envoy]:
    with shared_envoy(module_fleet, module_workdir) as envoy:
        yield envoy


@pytest.fixture
def client(shared: Envoy) -> meilisearch.Client:
    return meilisearch.Client(shared.url, NODE_KEY)


def finished(client: meilisearch.Client, task_info: Any) -> Any:
    """The SDK's own wait; the task must be one of the filter's."""
    assert TASK_UID_BASE <= task_info.task_uid < TASK_UID_BASE + 2**24, task_info
    assert task_info.status == "enqueued" and task_info.type == "settingsUpdate", task_info
    return client.wait_for_task(task_info.task_uid, timeout_in_ms=WAIT_MS)


def test_sdk_settings_calls_succeed_and_every_node_follows(
        client: meilisearch.Client, shared: Envoy, module_fleet: Fleet) -> None:
    uid = fresh_uid("sdk")
    index = client.index(uid)
    # (SDK call, what every node reads back afterwards), in order: one settings version each.
    steps: list[tuple[Callable[[], Any], dict[str, Any]]] = [
        (lambda: index.update_settings({"rankingRules": ["words", "typo"], "stopWords": ["the", "a"],
                                        "filterableAttributes": ["genre"]}),
         {"rankingRules": ["words", "typo"], "stopWords": ["a", "the"], "filterableAttributes": ["genre"]}),
        (lambda: index.update_synonyms({"sf": ["san francisco"], "ny": ["new york"]}),
         {"synonyms": {"ny": ["new york"], "sf": ["san francisco"]}}),
        (lambda: index.update_stop_words(["of"]), {"stopWords": ["of"]}),
        (lambda: index.update_typo_tolerance({"disableOnNumbers": True}),
         {"typoTolerance": {**DEFAULT_SETTINGS["typoTolerance"], "disableOnNumbers": True}}),
        (lambda: index.update_faceting_settings({"maxValuesPerFacet": 7}),
         {"faceting": {"maxValuesPerFacet": 7, "sortFacetValuesBy": {"*": "alpha"}}}),
        (lambda: index.update_pagination_settings({"maxTotalHits": 42}), {"pagination": {"maxTotalHits": 42}}),
        (lambda: index.update_ranking_rules(["typo", "words", "exactness"]),
         {"rankingRules": ["typo", "words", "exactness"]}),
        (lambda: index.reset_stop_words(), {"stopWords": []}),
        (lambda: index.reset_settings(), DEFAULT_SETTINGS),
    ]
    for version, (call, expected) in enumerate(steps, start=1):
        task = finished(client, call())
        assert task.status == "succeeded", (version, task)
        assert task.index_uid == uid and task.type == "settingsUpdate" and task.error is None, task
        assert task.finished_at is not None and task.started_at is not None, task
        assert_every_node_holds(module_fleet, uid, expected)
        assert version_stat(shared, uid) == version
    # The SDK reads the fleet's settings through Envoy too.
    assert index.get_settings() == DEFAULT_SETTINGS
    assert index.get_synonyms() == {}
    with Proxy(shared) as proxy:
        assert proxy.version_header(uid) == len(steps)


def test_sdk_sees_a_write_every_node_rejects_as_meilisearch_api_error(
        client: meilisearch.Client, shared: Envoy, module_fleet: Fleet) -> None:
    uid = fresh_uid("sdkbad")
    finished(client, client.index(uid).update_stop_words(["ok"]))
    with pytest.raises(MeilisearchApiError) as refused:
        client.index(uid).update_ranking_rules(["words", "nonsense"])
    assert refused.value.code == "invalid_settings_ranking_rules", refused.value
    assert refused.value.status_code == 400
    assert version_stat(shared, uid) == 1


def test_sdk_tasks_are_private_to_the_key_that_created_them(
        client: meilisearch.Client, shared: Envoy, module_fleet: Fleet) -> None:
    uid = fresh_uid("sdkprivate")
    task_uid = finished(client, client.index(uid).update_stop_words(["mine"])).uid
    assert client.get_task(task_uid).status == "succeeded"
    for stranger in (meilisearch.Client(shared.url, "another-key"), meilisearch.Client(shared.url)):
        with pytest.raises(MeilisearchApiError) as hidden:
            stranger.get_task(task_uid)
        assert hidden.value.code == "task_not_found" and hidden.value.status_code == 404, hidden.value


def test_sdk_node_task_uids_reach_the_nodes_in_passthrough_mode_only(
        make_fleet: Callable[..., Fleet], make_envoy: Callable[..., Envoy], filter_wasm: Path) -> None:
    """With `writes: passthrough` only the filter's uid range is answered by the filter and a node's
    own task uid passes through; in mirror mode a node's uid names nothing the fleet did."""
    fleet = make_fleet(3)
    passthrough = make_envoy(fleet, wasm=filter_wasm, plugin_overrides={"writes": "passthrough"})
    mirror = make_envoy(fleet, wasm=filter_wasm)
    client = meilisearch.Client(passthrough.url, NODE_KEY)
    uid = fresh_uid("sdknode")
    finished(client, client.index(uid).update_stop_words(["x"]))
    node_uid = node_tasks(fleet, 0, uid)[-1]["uid"]
    assert node_uid < TASK_UID_BASE
    task = client.get_task(node_uid)
    assert task.uid == node_uid and task.status in ("succeeded", "failed"), task
    with pytest.raises(MeilisearchApiError) as missing:
        meilisearch.Client(mirror.url, NODE_KEY).get_task(node_uid)
    assert missing.value.code == "task_not_found"


def test_sdk_wait_for_task_reports_a_failed_broadcast(
        make_fleet: Callable[..., Fleet], make_envoy: Callable[..., Envoy], filter_wasm: Path) -> None:
    fleet = make_fleet(3)
    envoy = make_envoy(fleet, wasm=filter_wasm)
    client = meilisearch.Client(envoy.url, NODE_KEY)
    uid = fresh_uid("sdkfail")
    finished(client, client.index(uid).update_stop_words(["before"]))
    failure = {"code": "invalid_settings_stop_words", "message": "no stop words today", "type": "invalid_request"}
    for i in range(fleet.size):
        fleet.fault(i, fail_tasks=failure)

    task = finished(client, client.index(uid).update_stop_words(["after"]))

    assert task.status == "failed", task
    assert task.error is not None and task.error["code"] == failure["code"], task.error
    assert failure["message"] in task.error["message"]
    assert_every_node_holds(fleet, uid, {"stopWords": ["before"]})
    with Proxy(envoy) as proxy:
        assert proxy.version_header(uid) == 1


def test_sdk_old_tasks_are_dropped_beyond_the_retention(
        make_fleet: Callable[..., Fleet], make_envoy: Callable[..., Envoy], filter_wasm: Path) -> None:
    fleet = make_fleet(3)
    envoy = make_envoy(fleet, wasm=filter_wasm, plugin_overrides={"task_retention": 2})
    client = meilisearch.Client(envoy.url, NODE_KEY)
    index = client.index(fresh_uid("sdkretention"))
    uids = [finished(client, index.update_stop_words([f"w{n}"])).uid for n in range(3)]
    with pytest.raises(MeilisearchApiError) as dropped:
        client.get_task(uids[0])
    assert dropped.value.code == "task_not_found", dropped.value
    assert [client.get_task(u).status for u in uids[1:]] == ["succeeded", "succeeded"]
