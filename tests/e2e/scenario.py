"""Helpers shared by the settings-broadcast scenarios (test_broadcast.py, test_divergence.py,
test_tasks_sdk.py): a client of the filter through Envoy, what each node received, and assertions
on Meilisearch's shapes. Every wait here is a condition with a deadline.

The scenarios judge end states a user cares about: what every node holds, the committed version
(task, response header, stat), the task the client sees. These helpers only make that short."""

from __future__ import annotations

import contextlib
import json
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, Mapping

import requests

import conftest
from harness import Envoy, Fleet, envoy_for, wait_until

TASK_UID_BASE = 2130706432
TERMINAL = ("succeeded", "failed", "canceled")
VERSION_HEADER = "X-Miroir-Settings-Version"
INCONSISTENT_HEADER = "X-Miroir-Settings-Inconsistent"
MIN_VERSION_HEADER = "X-Miroir-Min-Settings-Version"
ROUTING_HEADER = "x-miroir-node"
TASK_TIMEOUT_SECONDS = 30.0
HTTP_TIMEOUT_SECONDS = 30.0
ERROR_KEYS = ["message", "code", "type", "link"]

# Meilisearch v1.50's settings of a fresh index with the experimental features off (reference §1).
DEFAULT_SETTINGS: dict[str, Any] = {
    "displayedAttributes": ["*"],
    "searchableAttributes": ["*"],
    "filterableAttributes": [],
    "sortableAttributes": [],
    "rankingRules": ["words", "typo", "proximity", "attributeRank", "sort", "wordPosition", "exactness"],
    "stopWords": [],
    "nonSeparatorTokens": [],
    "separatorTokens": [],
    "dictionary": [],
    "synonyms": {},
    "distinctAttribute": None,
    "proximityPrecision": "byWord",
    "typoTolerance": {
        "enabled": True,
        "minWordSizeForTypos": {"oneTypo": 5, "twoTypos": 9},
        "disableOnWords": [],
        "disableOnAttributes": [],
        "disableOnNumbers": False,
    },
    "faceting": {"maxValuesPerFacet": 100, "sortFacetValuesBy": {"*": "alpha"}},
    "pagination": {"maxTotalHits": 1000},
    "embedders": {},
    "searchCutoffMs": None,
    "localizedAttributes": None,
    "facetSearch": True,
    "prefixSearch": "indexingTime",
}


def fresh_uid(prefix: str) -> str:
    """An index uid no other test uses, so tests sharing a fleet never see each other's state."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def settings_path(uid: str, sub_route: str | None = None) -> str:
    return f"/indexes/{uid}/settings" + (f"/{sub_route}" if sub_route else "")


# --- a client of the filter --------------------------------------------------------------------

# "No body at all", as opposed to a JSON null body (which resets a setting on a sub-route).
NO_BODY = object()


class Proxy:
    """An application talking to the fleet through Envoy with one API key. The filter shows a task
    only to the Authorization header that created it, so one Proxy sees its own tasks."""

    def __init__(self, envoy: Envoy, key: str | None = conftest.NODE_KEY) -> None:
        self.envoy = envoy
        self.session = requests.Session()
        if key is not None:
            self.session.headers["Authorization"] = f"Bearer {key}"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> "Proxy":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, body: Any = NO_BODY, *, data: bytes | None = None,
                headers: Mapping[str, str] | None = None, content_type: str | None = "application/json",
                ) -> requests.Response:
        """`path` goes out byte for byte: requests would otherwise decode escapes such as `%73`, and
        spellings like that are exactly what some scenarios test. `content_type=None` sends a raw
        `data` body without any Content-Type."""
        kwargs: dict[str, Any] = {"headers": dict(headers or {})}
        if body is not NO_BODY:
            kwargs["json"] = body
        if data is not None:
            kwargs["data"] = data
            if content_type is not None:
                kwargs["headers"].setdefault("Content-Type", content_type)
        prepared = self.session.prepare_request(requests.Request(method, self.envoy.url + "/", **kwargs))
        prepared.url = self.envoy.url + path
        return self.session.send(prepared, timeout=HTTP_TIMEOUT_SECONDS)

    def write_settings(self, method: str, uid: str, body: Any = NO_BODY, sub_route: str | None = None) -> requests.Response:
        return self.request(method, settings_path(uid, sub_route), body)

    def accepted(self, method: str, uid: str, body: Any = NO_BODY, sub_route: str | None = None) -> int:
        """Send a settings write, check the filter's 202 summarized task, return its uid."""
        response = self.write_settings(method, uid, body, sub_route)
        return assert_summarized_task(response, uid)

    def task(self, task_uid: int) -> dict[str, Any]:
        response = self.request("GET", f"/tasks/{task_uid}")
        assert response.status_code == 200, f"GET /tasks/{task_uid} -> {response.status_code} {response.text}"
        return response.json()

    def wait_task(self, task_uid: int, timeout: float = TASK_TIMEOUT_SECONDS) -> dict[str, Any]:
        """The task once terminal."""
        def terminal() -> dict[str, Any] | None:
            task = self.task(task_uid)
            return task if task.get("status") in TERMINAL else None

        return wait_until(terminal, timeout, f"filter task {task_uid} to finish")

    def commit(self, method: str, uid: str, body: Any = NO_BODY, sub_route: str | None = None) -> dict[str, Any]:
        """A settings write that must succeed; returns the finished task."""
        task = self.wait_task(self.accepted(method, uid, body, sub_route))
        assert task["status"] == "succeeded", json.dumps(task, indent=1)
        return task

    def settings(self, uid: str, headers: Mapping[str, str] | None = None) -> requests.Response:
        return self.request("GET", settings_path(uid), headers=headers)

    def version_header(self, uid: str) -> int | None:
        """The X-Miroir-Settings-Version stamped on a read of the index, None when absent."""
        value = self.settings(uid).headers.get(VERSION_HEADER)
        return int(value) if value is not None else None


# --- assertions on Meilisearch's shapes ------------------------------------------------------------

def assert_summarized_task(response: requests.Response, uid: str) -> int:
    """The 202 of a settings write (Meilisearch's SummarizedTaskView) with a uid from the filter's
    range; returns the task uid."""
    assert response.status_code == 202, f"expected 202, got {response.status_code}: {response.text}"
    body = response.json()
    assert list(body) == ["taskUid", "indexUid", "status", "type", "enqueuedAt"], body
    assert body["indexUid"] == uid and body["status"] == "enqueued" and body["type"] == "settingsUpdate", body
    assert TASK_UID_BASE <= body["taskUid"] < TASK_UID_BASE + 2**24, body
    assert parse_time(body["enqueuedAt"]) is not None
    return int(body["taskUid"])


def assert_meili_error(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    """A Meilisearch-shaped error: exactly message, code, type, link in that order."""
    assert response.status_code == status, f"expected {status} {code}, got {response.status_code}: {response.text}"
    body = response.json()
    assert list(body) == ERROR_KEYS, body
    assert body["code"] == code, body
    assert body["link"] == f"https://docs.meilisearch.com/errors#{code}", body
    assert isinstance(body["message"], str) and body["message"], body
    return body


def assert_holds(settings: Mapping[str, Any], expected: Mapping[str, Any], where: str = "") -> None:
    """Every key of `expected` reads back with exactly that value."""
    wrong = {k: (settings.get(k), v) for k, v in expected.items() if settings.get(k) != v}
    assert not wrong, f"{where}: (held, expected) per key: {wrong}"


def assert_every_node_holds(fleet: Fleet, uid: str, expected: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every node holds `expected` and the nodes hold the same whole settings."""
    held = fleet.all_node_settings(uid)
    for i, settings in enumerate(held):
        assert_holds(settings, expected, f"node {i} index {uid}")
    assert all(s == held[0] for s in held), f"nodes disagree on {uid}: {held}"
    return held


def parse_time(value: str | None) -> datetime | None:
    """RFC 3339 with any number of fraction digits (Python before 3.11 only takes 6)."""
    if value is None:
        return None
    head, _, rest = value.rstrip("Z").partition(".")
    fraction = (rest + "000000")[:6] if rest else "000000"
    return datetime.fromisoformat(f"{head}.{fraction}+00:00")


def task_duration_ms(task: Mapping[str, Any]) -> float:
    started, finished = parse_time(task.get("startedAt")), parse_time(task.get("finishedAt"))
    assert started is not None and finished is not None, task
    return (finished - started).total_seconds() * 1000


# --- what the nodes saw --------------------------------------------------------------------------

def settings_writes(fleet: Fleet, i: int, uid: str) -> list[dict[str, Any]]:
    """The settings writes (any verb but GET, whole route or sub-route) node i received for `uid`,
    oldest first, from its request log."""
    prefix = settings_path(uid)
    return [
        entry for entry in fleet.requests(i)
        if entry["method"] != "GET" and entry["path"].split("?")[0].startswith(prefix)
    ]


def node_tasks(fleet: Fleet, i: int, uid: str) -> list[dict[str, Any]]:
    """Node i's own tasks on index `uid`, oldest first (asked of the node, not through Envoy)."""
    response = fleet.node_get(i, f"/tasks?indexUids={uid}&limit=1000")
    assert response.status_code == 200, response.text
    return sorted(response.json()["results"], key=lambda t: t["uid"])


def wait_nodes_idle(fleet: Fleet, uid: str, timeout: float = TASK_TIMEOUT_SECONDS) -> None:
    """Every node finished every task it has on `uid`."""
    def idle() -> bool:
        return all(t["status"] in TERMINAL for i in range(fleet.size) for t in node_tasks(fleet, i, uid))

    wait_until(idle, timeout, f"every node to finish its tasks on {uid}")


def non_read_requests(fleet: Fleet, uid: str) -> list[tuple[int, str, str]]:
    """(node, method, path) of every request on index `uid` that is neither a GET nor a search."""
    found = []
    for i in range(fleet.size):
        for entry in fleet.requests(i):
            path = entry["path"].split("?")[0]
            if f"/indexes/{uid}" not in path.replace("//", "/"):
                continue
            if entry["method"] == "GET" or (entry["method"] == "POST" and path.rstrip("/").endswith("/search")):
                continue
            found.append((i, entry["method"], entry["path"]))
    return found


def clear_all_requests(fleet: Fleet) -> None:
    for i in range(fleet.size):
        fleet.clear_requests(i)


# --- stats ---------------------------------------------------------------------------------------

def index_stat(metric: str, uid: str, result: str | None = None) -> str:
    """Full Envoy stat name of one of the filter's per-index metrics (filter/src/core/metrics.rs)."""
    return f"wasmcustom.{metric}.index.{uid}" + (f".result.{result}" if result else "")


def version_stat(envoy: Envoy, uid: str) -> Any:
    return envoy.stat(index_stat("miroir_settings_version", uid), default=None)


# --- an Envoy shared by a whole module -------------------------------------------------------------

@contextlib.contextmanager
def shared_envoy(fleet: Fleet, workdir: Path, **kwargs: Any) -> Iterator[Envoy]:
    """An Envoy with the filter, for a module-scoped fixture; registered like the function-scoped
    ones so its log lands in failure reports."""
    kwargs.setdefault("env", conftest.envoy_env())
    envoy = envoy_for(fleet, workdir, wasm=conftest.filter_wasm_required(), **kwargs)
    conftest._start(envoy)  # noqa: SLF001 - the conftest's registry of running servers
    try:
        yield envoy
    finally:
        conftest._stop(envoy)  # noqa: SLF001
