"""Mirror mode (the default): every write reaches every node in one order, as one filter task, so
the fleet answers as one Meilisearch (issue 11). Driven as users drive it: the official SDK
through real Envoy, three dev nodes behind it; what every node holds is read from the nodes."""

from __future__ import annotations

import gzip
import json
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import meilisearch
import pytest
import requests
from meilisearch.errors import MeilisearchApiError

from conftest import NODE_KEY
from harness import Envoy, Fleet, wait_until
from scenario import TASK_UID_BASE, fresh_uid, node_tasks, shared_envoy, version_stat

WAIT_MS = 30_000
BOOKS = [
    {"id": 1, "title": "Dune", "genre": "sf"},
    {"id": 2, "title": "Solaris", "genre": "sf"},
    {"id": 3, "title": "Emma", "genre": "novel"},
]


@pytest.fixture(scope="module")
def shared(module_fleet: Fleet, module_workdir: Path) -> Iterator[Envoy]:
    with shared_envoy(module_fleet, module_workdir) as envoy:
        yield envoy


@pytest.fixture
def client(shared: Envoy) -> meilisearch.Client:
    return meilisearch.Client(shared.url, NODE_KEY)


def done(client: meilisearch.Client, info: Any) -> Any:
    """The SDK's own wait on the filter's task."""
    assert TASK_UID_BASE <= info.task_uid < TASK_UID_BASE + 2**24, info
    task = client.wait_for_task(info.task_uid, timeout_in_ms=WAIT_MS, interval_in_ms=20)
    return task


def node_search(fleet: Fleet, uid: str, q: str) -> list[list[Any]]:
    out = []
    for i in range(fleet.size):
        r = requests.post(f"{fleet.node_url(i)}/indexes/{uid}/search", json={"q": q},
                          headers=fleet.auth_headers(), timeout=10)
        assert r.status_code == 200, r.text
        out.append([h["id"] for h in r.json()["hits"]])
    return out


def test_documents_through_the_sdk_reach_every_node(client: meilisearch.Client, module_fleet: Fleet) -> None:
    uid = fresh_uid("docs")
    task = done(client, client.create_index(uid, {"primaryKey": "id"}))
    assert (task.status, task.type, task.index_uid) == ("succeeded", "indexCreation", uid), task
    index = client.index(uid)
    task = done(client, index.add_documents(BOOKS))
    assert (task.status, task.type) == ("succeeded", "documentAdditionOrUpdate"), task
    assert task.details["receivedDocuments"] == 3 and task.details["indexedDocuments"] == 3, task
    task = done(client, index.update_documents([{"id": 2, "title": "Solaris (1961)"}]))
    assert task.status == "succeeded", task
    task = done(client, index.delete_document(3))
    assert (task.status, task.type) == ("succeeded", "documentDeletion"), task
    expected = [{"id": 1, "title": "Dune", "genre": "sf"}, {"id": 2, "title": "Solaris (1961)", "genre": "sf"}]
    assert module_fleet.node_documents(uid) == [expected] * module_fleet.size
    assert node_search(module_fleet, uid, "solaris") == [[2]] * module_fleet.size
    # The same answer through the gateway, whichever node serves it.
    for _ in range(6):
        assert [h["id"] for h in index.search("solaris")["hits"]] == [2]
    assert index.get_stats().number_of_documents == 2


def test_a_write_every_node_refuses_is_the_nodes_error_and_no_task(client: meilisearch.Client,
                                                                  shared: Envoy, module_fleet: Fleet) -> None:
    uid = fresh_uid("bad")
    done(client, client.create_index(uid))
    r = requests.post(f"{shared.url}/indexes/{uid}/documents", data=b"[{nope", timeout=10,
                      headers={"Authorization": f"Bearer {NODE_KEY}", "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "malformed_payload", r.json()
    for i in range(module_fleet.size):
        assert [t["type"] for t in node_tasks(module_fleet, i, uid)] == ["indexCreation"]


def test_a_compressed_or_non_utf8_batch_is_refused_and_reaches_no_node(client: meilisearch.Client,
                                                                      shared: Envoy, module_fleet: Fleet) -> None:
    """A node takes gzip bodies; the gateway holds a write as text until every node has it, so a
    body that is not UTF-8 would reach the nodes altered: refused, and no node is touched."""
    uid = fresh_uid("enc")
    done(client, client.create_index(uid, {"primaryKey": "id"}))
    auth = {"Authorization": f"Bearer {NODE_KEY}"}
    cases = [
        (gzip.compress(json.dumps(BOOKS).encode()), {"Content-Type": "application/json", "Content-Encoding": "gzip"}),
        ("id,title\n1,Amélie\n".encode("latin-1"), {"Content-Type": "text/csv"}),
    ]
    for body, headers in cases:
        r = requests.post(f"{shared.url}/indexes/{uid}/documents", data=body, timeout=10, headers={**auth, **headers})
        assert r.status_code == 400, r.text
        assert (r.json()["code"], r.json()["type"]) == ("malformed_payload", "invalid_request"), r.json()
        assert "UTF-8" in r.json()["message"] and r.json()["link"].endswith("#malformed_payload"), r.json()
    for i in range(module_fleet.size):
        assert [t["type"] for t in node_tasks(module_fleet, i, uid)] == ["indexCreation"]


def test_a_failed_node_task_fails_the_filter_task_with_the_nodes_error(client: meilisearch.Client) -> None:
    uid = fresh_uid("fail")
    index = client.index(uid)
    done(client, client.create_index(uid, {"primaryKey": "id"}))
    task = done(client, index.add_documents([{"title": "no id"}]))
    assert task.status == "failed", task
    assert task.error["code"] == "missing_document_id", task.error


def test_delete_and_recreate_an_index_then_settings_commit(client: meilisearch.Client, shared: Envoy,
                                                           module_fleet: Fleet) -> None:
    """The SDK suites' own pattern: before, the delete reached one node and the index froze."""
    uid = fresh_uid("recreate")
    index = client.index(uid)
    done(client, client.create_index(uid))
    assert done(client, index.update_settings({"stopWords": ["the"], "filterableAttributes": ["genre"]})).status == "succeeded"
    assert done(client, index.add_documents(BOOKS)).status == "succeeded"
    assert done(client, client.delete_index(uid)).status == "succeeded"
    for i in range(module_fleet.size):
        assert module_fleet.node_get(i, f"/indexes/{uid}").status_code == 404
    done(client, client.create_index(uid))
    # A recreated index starts from the defaults on every node, as on one Meilisearch.
    assert index.get_settings()["stopWords"] == []
    task = done(client, index.update_settings({"rankingRules": ["words", "typo"]}))
    assert task.status == "succeeded", task
    assert not version_stat(shared, uid) is None
    for i in range(module_fleet.size):
        assert module_fleet.node_settings(i, uid)["rankingRules"] == ["words", "typo"]
        assert module_fleet.node_settings(i, uid)["stopWords"] == []
    assert done(client, index.add_documents(BOOKS[:1])).status == "succeeded", "not frozen"


def test_concurrent_writers_leave_one_order_on_every_node(client: meilisearch.Client, shared: Envoy,
                                                          module_fleet: Fleet) -> None:
    """20 writers mixing settings and document writes on one index: every node enqueued them in
    the same order, the filter's uid order."""
    uid = fresh_uid("order")
    index = client.index(uid)
    done(client, client.create_index(uid, {"primaryKey": "id"}))
    infos: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        try:
            c = meilisearch.Client(shared.url, NODE_KEY).index(uid)
            info = c.update_stop_words([f"w{n}"]) if n % 4 == 0 else c.add_documents([{"id": n, "n": n}])
            with lock:
                infos.append(info)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    tasks = sorted((done(client, info) for info in infos), key=lambda t: t.uid)
    assert len({t.uid for t in tasks}) == 20
    assert all(t.status == "succeeded" for t in tasks), [(t.uid, t.status, t.error) for t in tasks]
    # The filter's order, as (type, what it wrote).
    def what(details: dict[str, Any] | None) -> Any:
        return (details or {}).get("stopWords") or (details or {}).get("receivedDocuments")
    filter_order = [(t.type, what(t.details)) for t in tasks]
    for i in range(module_fleet.size):
        mine = [t for t in node_tasks(module_fleet, i, uid) if t["type"] != "indexCreation"]
        assert [(t["type"], what(t["details"])) for t in mine] == filter_order, f"node {i}"
    # The last settings write in uid order is what every node holds.
    last_words = [t.details["stopWords"] for t in tasks if t.type == "settingsUpdate"][-1]
    for i in range(module_fleet.size):
        assert module_fleet.node_settings(i, uid)["stopWords"] == last_words
    assert index.get_stats().number_of_documents == 15


def test_a_key_created_through_the_gateway_works_on_every_node(client: meilisearch.Client,
                                                               module_fleet: Fleet) -> None:
    created = client.create_key({"description": "search only", "actions": ["search"], "indexes": ["*"],
                                 "expiresAt": None})
    assert created.uid and created.key
    for i in range(module_fleet.size):
        r = requests.get(f"{module_fleet.node_url(i)}/keys/{created.key}", timeout=10,
                         headers={"Authorization": f"Bearer {created.key}"})
        # A search-only key may not read keys, but it authenticates (403 would be "invalid key").
        assert r.status_code in (200, 401, 403), r.text
        r = requests.get(f"{module_fleet.node_url(i)}/keys/{created.uid}", timeout=10,
                         headers=module_fleet.auth_headers())
        assert r.status_code == 200 and r.json()["key"] == created.key, (i, r.text)
    client.delete_key(created.key)
    for i in range(module_fleet.size):
        r = requests.get(f"{module_fleet.node_url(i)}/keys/{created.uid}", timeout=10,
                         headers=module_fleet.auth_headers())
        assert r.status_code == 404, (i, r.text)


def test_get_tasks_lists_the_filters_tasks_with_meilisearch_filters(client: meilisearch.Client) -> None:
    uid = fresh_uid("list")
    index = client.index(uid)
    done(client, client.create_index(uid, {"primaryKey": "id"}))
    done(client, index.add_documents(BOOKS))
    done(client, index.update_stop_words(["a"]))
    listed = client.get_tasks({"indexUids": [uid]})
    types = [t.type for t in listed.results]
    assert types == ["settingsUpdate", "documentAdditionOrUpdate", "indexCreation"], types
    assert all(TASK_UID_BASE <= t.uid for t in listed.results)
    only_docs = client.get_tasks({"indexUids": [uid], "types": ["documentAdditionOrUpdate"]})
    assert [t.type for t in only_docs.results] == ["documentAdditionOrUpdate"]
    page = client.get_tasks({"indexUids": [uid], "limit": 2})
    assert len(page.results) == 2 and page.next_ is not None
    rest = client.get_tasks({"indexUids": [uid], "limit": 2, "from": page.next_})
    assert [t.uid for t in page.results + rest.results] == [t.uid for t in listed.results]
    with pytest.raises(MeilisearchApiError) as e:
        client.get_tasks({"statuses": ["nope"]})
    assert e.value.code == "invalid_task_statuses"


def test_writes_mirroring_cannot_keep_right_are_refused_with_the_reason(shared: Envoy) -> None:
    r = requests.patch(f"{shared.url}/network", json={"self": "a"}, timeout=10,
                       headers={"Authorization": f"Bearer {NODE_KEY}"})
    assert r.status_code == 400 and r.json()["code"] == "miroir_not_mirrored", r.text
    assert "network" in r.json()["message"]


def test_a_swap_lands_between_the_writes_around_it_on_every_node(client: meilisearch.Client,
                                                                 module_fleet: Fleet) -> None:
    a, b = fresh_uid("swapa"), fresh_uid("swapb")
    for uid, doc in ((a, {"id": 1, "from": "a"}), (b, {"id": 2, "from": "b"})):
        done(client, client.create_index(uid, {"primaryKey": "id"}))
        done(client, client.index(uid).add_documents([doc]))
    # Sent back to back without waiting: the swap must land after the first, before the second.
    before = client.index(a).add_documents([{"id": 10, "from": "before"}])
    swap = client.swap_indexes([{"indexes": [a, b]}])
    after = client.index(a).add_documents([{"id": 20, "from": "after"}])
    tasks = [done(client, t) for t in (before, swap, after)]
    assert [t.status for t in tasks] == ["succeeded"] * 3, tasks
    assert tasks[1].type == "indexSwap"
    assert before.task_uid < swap.task_uid < after.task_uid
    for i in range(module_fleet.size):
        assert [d["id"] for d in module_fleet.node_documents(a)[i]] == [2, 20], i
        assert [d["id"] for d in module_fleet.node_documents(b)[i]] == [1, 10], i
    failed = done(client, client.swap_indexes([{"indexes": [a, fresh_uid("missing")]}]))
    assert failed.status == "failed" and failed.error["code"] == "index_not_found", failed


def test_reads_avoid_a_node_that_missed_a_write(make_fleet: Callable[..., Fleet],
                                                make_envoy: Callable[..., Envoy]) -> None:
    fleet = make_fleet(3, master_key=NODE_KEY)
    envoy = make_envoy(fleet, wasm=conftest_wasm())
    client = meilisearch.Client(envoy.url, NODE_KEY)
    uid = fresh_uid("split")
    done(client, client.create_index(uid, {"primaryKey": "id"}))
    fleet.fault(2, down=True)
    task = done(client, client.index(uid).add_documents(BOOKS))
    assert task.status == "succeeded", task
    fleet.clear(2)
    # Node 2 missed the write: every read through the gateway still sees the documents.
    for _ in range(12):
        assert client.index(uid).get_stats().number_of_documents == 3


def conftest_wasm() -> Path:
    from conftest import filter_wasm_required
    return filter_wasm_required()


def admin_show(envoy: Envoy, uid: str) -> dict[str, Any]:
    from conftest import ADMIN_KEY
    r = requests.get(f"{envoy.url}/_miroir/indexes/{uid}", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_node_down_during_50_writes_replays_them_in_order_on_its_return(
        make_fleet: Callable[..., Fleet], make_envoy: Callable[..., Envoy]) -> None:
    fleet = make_fleet(3, master_key=NODE_KEY)
    envoy = make_envoy(fleet, wasm=conftest_wasm())
    client = meilisearch.Client(envoy.url, NODE_KEY)
    uid = fresh_uid("catchup")
    index = client.index(uid)
    done(client, client.create_index(uid, {"primaryKey": "id"}))
    fleet.fault(1, down=True)
    infos = [index.add_documents([{"id": n, "n": n}]) if n % 10 else index.update_stop_words([f"w{n}"])
             for n in range(50)]
    tasks = [done(client, info) for info in infos]
    assert all(t.status == "succeeded" for t in tasks), [(t.uid, t.status, t.error) for t in tasks]
    # While node 1 is away every read through the gateway still sees every write.
    for _ in range(6):
        assert index.get_stats().number_of_documents == 45
    fleet.clear(1)
    wait_until(lambda: module_docs_count(fleet, 1, uid) == 45, 30, "node 1 to replay the writes it missed")
    # Same writes, same order as the others, settings included.
    order = [[(t["type"], t["details"].get("receivedDocuments") or t["details"].get("stopWords"))
              for t in node_tasks(fleet, i, uid)] for i in range(3)]
    assert order[1] == order[0] == order[2]
    assert fleet.node_settings(1, uid)["stopWords"] == ["w40"]
    wait_until(lambda: not admin_show(envoy, uid)["outOfSync"], 10, "node 1 back in sync")
    # It takes writes again, in order.
    assert done(client, index.add_documents([{"id": 100}])).status == "succeeded"
    wait_until(lambda: all(module_docs_count(fleet, i, uid) == 46 for i in range(3)), 10, "every node at 46")


def module_docs_count(fleet: Fleet, i: int, uid: str) -> int:
    """Documents node i holds in `uid` (-1: no such index, or the node does not answer)."""
    try:
        r = fleet.node_get(i, f"/indexes/{uid}/stats")
    except requests.ConnectionError:
        return -1
    return r.json()["numberOfDocuments"] if r.status_code == 200 else -1


def raw_task(envoy: Envoy, uid: int) -> dict[str, Any]:
    r = requests.get(f"{envoy.url}/tasks/{uid}", headers={"Authorization": f"Bearer {NODE_KEY}"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def test_task_deletion_and_cancelation_are_translated_to_each_nodes_own_tasks(
        client: meilisearch.Client, shared: Envoy, module_fleet: Fleet) -> None:
    uid = fresh_uid("deltasks")
    index = client.index(uid)
    done(client, client.create_index(uid, {"primaryKey": "id"}))
    added = done(client, index.add_documents(BOOKS))
    behind = {n["node"]: n["task_uid"] for n in raw_task(shared, added.uid)["miroir"]["nodes"]}
    assert len(behind) == module_fleet.size
    deletion = done(client, client.delete_tasks({"uids": [str(added.uid)]}))
    assert (deletion.status, deletion.type) == ("succeeded", "taskDeletion"), deletion
    assert deletion.details == {"matchedTasks": 1, "deletedTasks": 1, "originalFilter": f"?uids={added.uid}"}
    assert deletion.index_uid is None
    with pytest.raises(MeilisearchApiError) as gone:
        client.get_task(added.uid)
    assert gone.value.code == "task_not_found"
    # Each node deleted its own task behind it, and nothing else.
    for i in range(module_fleet.size):
        assert [t["type"] for t in node_tasks(module_fleet, i, uid)] == ["indexCreation"], i
    canceled = done(client, client.cancel_tasks({"statuses": ["enqueued", "processing"], "indexUids": [uid]}))
    assert (canceled.status, canceled.type) == ("succeeded", "taskCancelation"), canceled
    with pytest.raises(MeilisearchApiError) as missing:
        client.delete_tasks({})
    assert missing.value.code == "missing_task_filters"


def test_a_write_canceled_while_it_waits_its_turn_never_reaches_a_node(
        client: meilisearch.Client, module_fleet: Fleet) -> None:
    """Meilisearch cancels a task still enqueued: through the gateway, a write waiting behind
    another in the filter's queue is one no node has yet, so the filter cancels it itself."""
    uid = fresh_uid("cancel")
    index = client.index(uid)
    done(client, client.create_index(uid, {"primaryKey": "id"}))
    for i in range(module_fleet.size):
        module_fleet.fault(i, task_ms=2000)  # the settings write below holds the index's queue
    try:
        settings = client.index(uid).update_settings({"stopWords": ["the"]})
        added: dict[str, Any] = {}
        writer = threading.Thread(target=lambda: added.update(info=index.add_documents(BOOKS)))
        writer.start()
        enqueued = {"indexUids": [uid], "types": ["documentAdditionOrUpdate"], "statuses": ["enqueued"]}
        wait_until(lambda: client.get_tasks(enqueued).results, 10, "the document write waiting its turn")
        cancel = client.cancel_tasks(enqueued)
        writer.join(timeout=30)
        assert "info" in added, "the writer got its task"
        task = done(client, added["info"])
        assert (task.status, task.canceled_by) == ("canceled", cancel.task_uid), task
        canceled = done(client, cancel)
        assert (canceled.status, canceled.details["canceledTasks"]) == ("succeeded", 1), canceled
        assert done(client, settings).status == "succeeded"
        assert [t.uid for t in client.get_tasks({"canceledBy": [str(cancel.task_uid)]}).results] == [task.uid]
    finally:
        module_fleet.clear_all()
    for i in range(module_fleet.size):
        assert [t["type"] for t in node_tasks(module_fleet, i, uid)] == ["indexCreation", "settingsUpdate"], i
    assert module_fleet.node_documents(uid) == [[]] * module_fleet.size


def test_batches_list_one_batch_per_task(client: meilisearch.Client, shared: Envoy) -> None:
    uid = fresh_uid("batches")
    task = done(client, client.create_index(uid))
    batches = client.get_batches({"limit": 1})
    assert len(batches.results) == 1 and batches.total >= 1
    batch_uid = raw_task(shared, task.uid)["batchUid"]
    assert batch_uid == task.uid
    batch = client.get_batch(batch_uid)
    assert batch.uid == task.uid and batch.stats["types"] == {"indexCreation": 1}


def test_past_the_log_a_node_needs_a_resync_and_the_admin_resync_copies_the_index(
        make_fleet: Callable[..., Fleet], make_envoy: Callable[..., Envoy]) -> None:
    from conftest import ADMIN_KEY
    fleet = make_fleet(3, master_key=NODE_KEY)
    envoy = make_envoy(fleet, wasm=conftest_wasm(), plugin_overrides={"mirror": {"log_max_bytes": 4096}})
    client = meilisearch.Client(envoy.url, NODE_KEY)
    uid = fresh_uid("resync")
    index = client.index(uid)
    done(client, client.create_index(uid, {"primaryKey": "id"}))
    done(client, index.update_filterable_attributes(["n"]))
    fleet.fault(2, down=True)
    tasks = [done(client, index.add_documents([{"id": n, "n": n, "pad": "x" * 300}])) for n in range(30)]
    assert all(t.status == "succeeded" for t in tasks)
    fleet.clear(2)
    node2 = lambda: next(n for n in admin_show(envoy, uid)["nodes"] if n["id"] == "node-2")  # noqa: E731
    assert node2()["sync"] == "needs_resync", node2()
    assert "log_max_bytes" in node2()["outOfSyncReason"]
    # Nothing is replayed to it; reads still avoid it, index-less ones too (Envoy would send one in
    # three to it: twelve all missing it by chance is under 1 %).
    for _ in range(12):
        assert index.get_stats().number_of_documents == 30
        assert client.get_all_stats()["indexes"][uid]["numberOfDocuments"] == 30
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    refused = requests.post(f"{envoy.url}/_miroir/indexes/{uid}/resync?node=node-0", headers=admin, timeout=10)
    assert refused.status_code == 409 and refused.json()["code"] == "miroir_node_in_sync", refused.text
    r = requests.post(f"{envoy.url}/_miroir/indexes/{uid}/resync?node=node-2", headers=admin, timeout=10)
    assert r.status_code == 202, r.text
    task_uid = r.json()["taskUid"]

    def finished() -> dict[str, Any] | None:
        t = requests.get(f"{envoy.url}/tasks/{task_uid}", headers=admin, timeout=10).json()
        return t if t["status"] in ("succeeded", "failed") else None
    task = wait_until(finished, 30, "the resync")
    assert task["status"] == "succeeded", task
    assert task["details"]["numberOfDocuments"] == 30, task
    assert module_docs_count(fleet, 2, uid) == 30
    assert fleet.node_settings(2, uid)["filterableAttributes"] == ["n"]
    assert node2()["sync"] == "in_sync"
    # In sync again: it takes the next write.
    assert done(client, index.add_documents([{"id": 99}])).status == "succeeded"
    wait_until(lambda: module_docs_count(fleet, 2, uid) == 31, 10, "node 2 to take writes again")


def test_the_drift_check_never_recreates_an_index_and_marks_a_node_that_lost_one(
        make_fleet: Callable[..., Fleet], make_envoy: Callable[..., Envoy]) -> None:
    fleet = make_fleet(3, master_key=NODE_KEY)
    envoy = make_envoy(fleet, wasm=conftest_wasm(), plugin_overrides={"settings_drift_check": {"interval_s": 1}})
    client = meilisearch.Client(envoy.url, NODE_KEY)
    kept, deleted = fresh_uid("kept"), fresh_uid("deleted")
    for uid in (kept, deleted):
        done(client, client.create_index(uid, {"primaryKey": "id"}))
        done(client, client.index(uid).update_settings({"stopWords": ["the"]}))
        done(client, client.index(uid).add_documents(BOOKS))
    # Deleted through the gateway while node 2 is away: it replays the deletion on its return,
    # and no drift check brings the index back meanwhile.
    fleet.fault(2, down=True)
    assert done(client, client.delete_index(deleted)).status == "succeeded"
    fleet.clear(2)
    wait_until(lambda: module_docs_count(fleet, 2, deleted) == -1, 20, "node 2 to replay the deletion")
    # Lost behind the gateway's back on node 1: marked for a resync, not recreated empty.
    fleet.remove_index_out_of_band(1, kept)
    wait_until(lambda: next(n for n in admin_show(envoy, kept)["nodes"] if n["id"] == "node-1")["sync"] == "needs_resync",
               20, "the drift check to mark node 1")
    for i in range(3):
        assert module_docs_count(fleet, i, deleted) == -1, i
    assert module_docs_count(fleet, 1, kept) == -1, "not recreated"
    for _ in range(6):
        assert client.index(kept).get_stats().number_of_documents == 3
    # A document added behind the gateway's back on node 0: its count differs, so it is marked
    # for a resync, which brings it back to what the others hold.
    counted = fresh_uid("counted")
    done(client, client.create_index(counted, {"primaryKey": "id"}))
    done(client, client.index(counted).add_documents(BOOKS))
    r = requests.post(f"{fleet.node_url(0)}/indexes/{counted}/documents", json=[{"id": 99}], timeout=10,
                      headers=fleet.auth_headers())
    assert r.status_code == 202
    wait_until(lambda: next(n for n in admin_show(envoy, counted)["nodes"] if n["id"] == "node-0")["sync"] == "needs_resync",
               20, "the drift check to mark node 0")
    from conftest import ADMIN_KEY
    r = requests.post(f"{envoy.url}/_miroir/indexes/{counted}/resync?node=node-0", timeout=10,
                      headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert r.status_code == 202, r.text
    wait_until(lambda: module_docs_count(fleet, 0, counted) == 3, 20, "node 0 resynced")


def test_a_swap_waits_for_writes_queued_before_it_and_holds_those_after(
        make_fleet: Callable[..., Fleet], make_envoy: Callable[..., Envoy]) -> None:
    """With slow node tasks a settings write holds index a's queue (its verify waits for the
    nodes), a document write queues behind it, and a swap arrives meanwhile: every node gets the
    three in uid order, and a write sent after the swap lands after it."""
    fleet = make_fleet(3, master_key=NODE_KEY, task_ms=150)
    envoy = make_envoy(fleet, wasm=conftest_wasm())
    client = meilisearch.Client(envoy.url, NODE_KEY)
    a, b = fresh_uid("fencea"), fresh_uid("fenceb")
    for uid in (a, b):
        done(client, client.create_index(uid, {"primaryKey": "id"}))
    infos: dict[str, Any] = {}

    def send(name: str, call: Callable[[], Any]) -> threading.Thread:
        t = threading.Thread(target=lambda: infos.__setitem__(name, call()))
        t.start()
        return t

    threads = [send("settings", lambda: client.index(a).update_stop_words(["x"]))]
    wait_until(lambda: "settings" in infos, 10, "the settings write to be queued")
    threads.append(send("docs", lambda: meilisearch.Client(envoy.url, NODE_KEY).index(a).add_documents([{"id": 1}])))
    wait_until(lambda: any(t["type"] == "documentAdditionOrUpdate"
                           for t in requests.get(f"{envoy.url}/tasks?indexUids={a}", timeout=10,
                                                 headers={"Authorization": f"Bearer {NODE_KEY}"}).json()["results"]),
               10, "the document write to be queued")
    threads.append(send("swap", lambda: meilisearch.Client(envoy.url, NODE_KEY).swap_indexes([{"indexes": [a, b]}])))
    wait_until(lambda: "swap" in infos, 20, "the swap to be answered")
    threads.append(send("after", lambda: meilisearch.Client(envoy.url, NODE_KEY).index(a).add_documents([{"id": 2}])))
    for t in threads:
        t.join(timeout=60)
    tasks = {name: done(client, info) for name, info in infos.items()}
    assert all(t.status == "succeeded" for t in tasks.values()), tasks
    order = sorted(tasks, key=lambda n: tasks[n].uid)
    assert order == ["settings", "docs", "swap", "after"], order
    for i in range(fleet.size):
        # A swap moves the earlier tasks' indexUid too, and has none itself: read every task.
        every = fleet.node_get(i, "/tasks?limit=1000").json()["results"]
        mine = sorted((t for t in every if t["indexUid"] in (a, b) or t["type"] == "indexSwap"), key=lambda t: t["uid"])
        on_node = [t["type"] for t in mine if t["type"] != "indexCreation"]
        assert on_node == ["settingsUpdate", "documentAdditionOrUpdate", "indexSwap", "documentAdditionOrUpdate"], (i, on_node)
        assert [d["id"] for d in fleet.node_documents(b)[i]] == [1], i
        assert [d["id"] for d in fleet.node_documents(a)[i]] == [2], i


def test_a_rename_holds_both_names_and_its_task_names_the_old_one(client: meilisearch.Client,
                                                                   module_fleet: Fleet) -> None:
    old, new = fresh_uid("old"), fresh_uid("new")
    done(client, client.create_index(old, {"primaryKey": "id"}))
    done(client, client.index(old).add_documents(BOOKS[:1]))
    renamed = done(client, client.index(old).update(new_uid=new))
    assert (renamed.status, renamed.type, renamed.index_uid) == ("succeeded", "indexUpdate", old), renamed
    after = done(client, client.index(new).add_documents(BOOKS[1:2]))
    assert after.status == "succeeded"
    for i in range(module_fleet.size):
        assert module_fleet.node_get(i, f"/indexes/{old}").status_code == 404
        assert [d["id"] for d in module_fleet.node_documents(new)[i]] == [1, 2], i


def test_deleting_a_running_task_deletes_it_once_it_ended_and_every_node_stays_in_sync(
        make_fleet: Callable[..., Fleet], make_envoy: Callable[..., Envoy]) -> None:
    """A deletion sent while the task it names still runs: each node deletes the task once it
    ended there (as a node does when it processes the deletion after the task), and so does the
    filter; no node is taken for out of sync (before: the task failed with
    `miroir_node_task_lost` and a node in sync was marked out of sync)."""
    fleet = make_fleet(3, master_key=NODE_KEY, task_ms=200)
    envoy = make_envoy(fleet, wasm=conftest_wasm())
    client = meilisearch.Client(envoy.url, NODE_KEY)
    uid = fresh_uid("running")
    done(client, client.create_index(uid, {"primaryKey": "id"}))
    added = client.index(uid).add_documents(BOOKS)
    deletion = done(client, client.delete_tasks({"uids": [str(added.task_uid)]}))
    assert deletion.status == "succeeded", deletion
    assert deletion.details["matchedTasks"] == 1, deletion

    def gone() -> bool:
        try:
            client.get_task(added.task_uid)
        except MeilisearchApiError as e:
            return e.code == "task_not_found"
        return False
    wait_until(gone, 20, "the deleted task to be gone through the gateway")
    for i in range(fleet.size):
        assert module_docs_count(fleet, i, uid) == 3
        assert [t["type"] for t in node_tasks(fleet, i, uid)] == ["indexCreation"], i
    assert admin_show(envoy, uid)["outOfSync"] == []


def test_a_key_created_while_a_node_is_down_reaches_it_on_its_return(
        make_fleet: Callable[..., Fleet], make_envoy: Callable[..., Envoy]) -> None:
    fleet = make_fleet(3, master_key=NODE_KEY)
    envoy = make_envoy(fleet, wasm=conftest_wasm())
    client = meilisearch.Client(envoy.url, NODE_KEY)
    fleet.fault(2, down=True)
    created = client.create_key({"description": "while away", "actions": ["*"], "indexes": ["*"], "expiresAt": None})
    # Meanwhile index-less reads (the key list) avoid the node that misses it.
    fleet.clear(2)

    def on_node_2() -> bool:
        r = requests.get(f"{fleet.node_url(2)}/keys/{created.uid}", timeout=10, headers=fleet.auth_headers())
        return r.status_code == 200 and r.json()["key"] == created.key
    wait_until(on_node_2, 20, "node 2 to replay the key")
    r = requests.get(f"{fleet.node_url(2)}/indexes", timeout=10, headers={"Authorization": f"Bearer {created.key}"})
    assert r.status_code == 200, r.text
