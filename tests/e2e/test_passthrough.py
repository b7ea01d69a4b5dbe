"""Traffic the filter does not own passes through Envoy to the nodes unchanged, and an invalid
plugin configuration stops Envoy with a log line that names the offending key.

The pass-through scenarios run twice: behind the baseline Envoy (no filter; proves the harness and
the routes) and behind Envoy with the miroir filter (proves the filter leaves this traffic alone)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import meilisearch
import pytest
import requests

from conftest import NODE_KEY, filter_wasm_required
from harness import Envoy, Fleet, envoy_config, wait_until

TASK_TIMEOUT_SECONDS = 30.0
BOOKS = [
    {"id": 1, "title": "Dune", "author": "Frank Herbert", "year": 1965},
    {"id": 2, "title": "Solaris", "author": "Stanisław Lem", "year": 1961},
    {"id": 3, "title": "Dune Messiah", "author": "Frank Herbert", "year": 1969},
]


@pytest.fixture(params=["baseline", "filter", "filter-passthrough"])
def proxy_for(request: pytest.FixtureRequest, make_envoy: Callable[..., Envoy]) -> Callable[[Fleet], Envoy]:
    """Start an Envoy in front of a fleet: without a filter, or with the miroir filter."""
    wasm = filter_wasm_required() if request.param.startswith("filter") else None
    overrides = {"writes": "passthrough"} if request.param == "filter-passthrough" else None

    def start(fleet: Fleet) -> Envoy:
        envoy = make_envoy(fleet, wasm=wasm, plugin_overrides=overrides)
        if wasm is not None:
            assert_filter_loaded(envoy)
        return envoy

    return start


def assert_filter_loaded(envoy: Envoy) -> None:
    """The wasm VMs exist, so requests really go through the filter (not a silently empty chain)."""
    active = envoy.stats(r"^wasm\.envoy\.wasm\.runtime\.v8\.active$")
    assert active.get("wasm.envoy.wasm.runtime.v8.active", 0) >= 1, active


def wait_node_task(fleet: Fleet, i: int, task_uid: int) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        task = fleet.node_get(i, f"/tasks/{task_uid}").json()
        return task if task.get("status") in ("succeeded", "failed", "canceled") else None

    task = wait_until(finished, TASK_TIMEOUT_SECONDS, f"task {task_uid} on node {i}")
    assert task["status"] == "succeeded", task
    return task


def seed_every_node(fleet: Fleet, uid: str, documents: list[dict[str, Any]]) -> None:
    """Put the same documents on every node directly (document writes are not broadcast)."""
    for i in range(fleet.size):
        response = fleet.session.post(f"{fleet.node_url(i)}/indexes/{uid}/documents", json=documents,
                                      headers=fleet.auth_headers(), timeout=10)
        assert response.status_code == 202, response.text
        wait_node_task(fleet, i, response.json()["taskUid"])


def received(fleet: Fleet, method: str, path: str) -> list[tuple[int, dict[str, Any]]]:
    """(node index, logged request) for every node that received `method path`."""
    return [
        (i, entry)
        for i in range(fleet.size)
        for entry in fleet.requests(i)
        if entry.get("method") == method and entry.get("path") == path
    ]


def without_timing(search_response: dict[str, Any]) -> dict[str, Any]:
    """A search response minus the only field that differs between two identical searches."""
    return {k: v for k, v in search_response.items() if k != "processingTimeMs"}


def test_search_reaches_one_node_unchanged(make_fleet: Callable[..., Fleet], proxy_for: Callable[[Fleet], Envoy],
                                           http: requests.Session) -> None:
    fleet = make_fleet(3)
    seed_every_node(fleet, "books", BOOKS)
    envoy = proxy_for(fleet)
    for i in range(fleet.size):
        fleet.clear_requests(i)

    # Odd spacing and key order: if anything re-serializes the body, the node's copy differs.
    body = '{ "q" : "dune",  "limit": 5, "attributesToRetrieve": ["title","id"] }'
    through_envoy = http.post(f"{envoy.url}/indexes/books/search", data=body,
                              headers={"Content-Type": "application/json"}, timeout=10)
    assert through_envoy.status_code == 200, through_envoy.text

    hits = received(fleet, "POST", "/indexes/books/search")
    assert len(hits) == 1, f"the search should reach exactly one node, got {hits}"
    node, logged = hits[0]
    assert logged["body"] == body

    direct = fleet.session.post(f"{fleet.node_url(node)}/indexes/books/search", data=body,
                                headers={**fleet.auth_headers(), "Content-Type": "application/json"}, timeout=10)
    assert direct.status_code == 200
    assert without_timing(through_envoy.json()) == without_timing(direct.json())
    assert {hit["id"] for hit in through_envoy.json()["hits"]} == {1, 3}


def test_sdk_documents_task_wait_and_search(make_fleet: Callable[..., Fleet],
                                            proxy_for: Callable[[Fleet], Envoy]) -> None:
    """The official SDK's add → wait_for_task → search flow through Envoy, on a one-node fleet (with
    several nodes a document task would be polled on another node: documents are not broadcast)."""
    fleet = make_fleet(1)
    envoy = proxy_for(fleet)
    client = meilisearch.Client(envoy.url, NODE_KEY, timeout=10)
    index = client.index("books")

    task = index.add_documents(BOOKS, primary_key="id")
    finished = client.wait_for_task(task.task_uid, timeout_in_ms=int(TASK_TIMEOUT_SECONDS * 1000))
    assert finished.status == "succeeded", finished
    result = index.search("dune")
    assert sorted(hit["id"] for hit in result["hits"]) == [1, 3]

    additions = received(fleet, "POST", "/indexes/books/documents?primaryKey=id")
    assert len(additions) == 1, fleet.requests(0)
    assert json.loads(additions[0][1]["body"]) == BOOKS
    stored = fleet.node_get(0, "/indexes/books/documents", params={"limit": 100}).json()
    assert sorted(stored["results"], key=lambda d: d["id"]) == BOOKS


def test_with_writes_passthrough_a_document_write_reaches_one_node_as_before(
        make_fleet: Callable[..., Fleet], make_envoy: Callable[..., Envoy]) -> None:
    """`writes: passthrough` keeps the old behaviour for fleets replicated by other means: a
    document write goes through Envoy's router to one node and answers with that node's task."""
    fleet = make_fleet(3)
    envoy = make_envoy(fleet, wasm=filter_wasm_required(), plugin_overrides={"writes": "passthrough"})
    r = requests.post(f"{envoy.url}/indexes/books/documents", json=BOOKS, timeout=10,
                      headers={"Authorization": f"Bearer {NODE_KEY}"})
    assert r.status_code == 202, r.text
    assert r.json()["taskUid"] < 2**30, "a node's own task uid"
    received_by = [i for i in range(fleet.size)
                   if any(e["method"] == "POST" and e["path"].startswith("/indexes/books/documents")
                          for e in fleet.requests(i))]
    assert len(received_by) == 1, received_by


@pytest.mark.parametrize("path", ["/health", "/version"])
def test_health_and_version_pass_through(path: str, make_fleet: Callable[..., Fleet],
                                         proxy_for: Callable[[Fleet], Envoy], http: requests.Session) -> None:
    fleet = make_fleet(3)
    envoy = proxy_for(fleet)
    through_envoy = http.get(envoy.url + path, timeout=10)
    hits = received(fleet, "GET", path)
    assert len(hits) == 1, hits
    node = hits[0][0]
    direct = fleet.node_get(node, path)
    assert through_envoy.status_code == direct.status_code == 200
    assert through_envoy.json() == direct.json()


INVALID_CONFIGURATIONS = {
    "unknown nested key": ({"settings_broadcast": {"bogus": 1}}, "settings_broadcast.bogus"),
    "unknown top-level key": ({"bogus_top_level": True}, "bogus_top_level"),
    "zero nodes": ({"nodes": []}, "nodes"),
    "unknown writes mode": ({"writes": "Mirror"}, "writes"),
    "duplicate node id": (
        {"nodes": [{"id": "node-0", "cluster": "meili_node_0", "authority": "127.0.0.1:7701"},
                   {"id": "node-0", "cluster": "meili_node_1", "authority": "127.0.0.1:7702"}]},
        "nodes[1].id",
    ),
}


@pytest.mark.parametrize("overrides,key", INVALID_CONFIGURATIONS.values(), ids=INVALID_CONFIGURATIONS.keys())
def test_invalid_plugin_configuration_stops_envoy(overrides: dict[str, Any], key: str, workdir: Path) -> None:
    wasm = filter_wasm_required()
    # The nodes are never contacted: Envoy must refuse the configuration before serving anything.
    config = envoy_config.bootstrap(envoy_config.nodes_on([7701, 7702]), wasm_path=wasm, plugin_overrides=overrides)
    envoy = Envoy(config, workdir)
    try:
        envoy.launch()
        exit_code = envoy.wait_exit(timeout=60)
    finally:
        envoy.stop()
    assert exit_code != 0, envoy.log_excerpt()
    assert f"invalid plugin configuration: `{key}`" in envoy.log_text(), envoy.log_excerpt()
