"""The etcd ledger backend end to end (issue 12; docs/architecture.md §5, docs/operations.md "Choosing a state backend"): one truth for many gateways.

Two or three real Envoy processes (`--concurrency 2` each, so two filter VMs per gateway) run the
built filter with `"state": {"backend": "etcd", "cluster": "etcd", "prefix": "miroir/v1/",
"lease_ttl_ms": 3000}` in front of one fleet of three dev nodes; the state lives in real etcd
(one member; three for the etcd fault scenario). Clients are the official SDK, or plain HTTP where
a test needs a status code or a header, as users' are.

The contract under test (writes in the default mirror mode unless a test says otherwise):
- a settings write is a broadcast job that ends with a version; every response about an index
  carries `X-Miroir-Settings-Version` (the index's committed version), on every gateway;
- task uids start at 2130706432 and are unique and increasing across gateways; `GET /tasks/{uid}`
  is answered by any gateway (`miroir.phase`, `miroir.settings_version` in the task);
- writes to one index are serialized across gateways; a gateway killed mid-job loses its lease and
  another finishes the job; versions, freezes and tasks outlive every gateway;
- a freeze is seen by every gateway within 1 s;
- etcd without quorum: writes get `503 miroir_state_unavailable` and nothing reaches a node, reads
  are served with the last known headers, and service comes back by itself; a write etcd may
  still apply is held until it can say, and answered truthfully.

What the nodes applied is read from the nodes (their own task lists), never from the filter."""

from __future__ import annotations

import itertools
import string
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import meilisearch
import pytest
import requests

from conftest import ADMIN_KEY, NODE_KEY
from harness import Envoy, EtcdCluster, Fleet, etcd_state, wait_until
from scenario import (
    MIN_VERSION_HEADER, TASK_UID_BASE, TERMINAL, VERSION_HEADER, Proxy, assert_meili_error, clear_all_requests,
    fresh_uid, node_tasks, non_read_requests, settings_path,
)
from waiting import GiveUp

LEASE_TTL_MS = 3000
SDK_TIMEOUT_SECONDS = 90      # the SDK's HTTP timeout: a queued write's 202 may wait for the jobs ahead
WAIT_MS = 30_000              # the SDK's wait_for_task
TASK_SECONDS = 30.0           # a write's task to end when nothing is wrong
SAME_VERSION_SECONDS = 3.0    # (a) another gateway stamps a committed version
TAKEOVER_SECONDS = 20.0       # (c) a killed owner's job finished by another gateway (lease 3 s)
RESTART_SECONDS = 5.0         # (d) a new gateway stamps the version it finds in etcd
FREEZE_SPREAD_SECONDS = 1.0   # (e) a freeze seen by every gateway
QUORUM_BACK_SECONDS = 30.0    # (f) writes accepted again once etcd has its quorum back
UNAVAILABLE_SECONDS = 10.0    # (f) a gateway sees etcd without quorum (about 2 s of failed calls)
HELD_SECONDS = 90.0           # (f) a write in doubt, answered once etcd has its quorum back
FAST_REPAIR = {"max_repair_retries": 2, "repair_backoff_base_ms": 100}
BOOKS = [
    {"id": 1, "title": "Dune", "genre": "sf"},
    {"id": 2, "title": "Solaris", "genre": "sf"},
    {"id": 3, "title": "Emma", "genre": "novel"},
]


# --- several gateways on one etcd ------------------------------------------------------------------

@dataclass
class Gateways:
    """One fleet, one etcd cluster and the Envoys in front of them, all with the same plugin
    configuration (the etcd backend plus the test's overrides). Gateways are named A, B, C, …
    (their logs are gateway-A.log, …, and so are the sections of a failure report)."""

    fleet: Fleet
    etcd: EtcdCluster
    overrides: dict[str, Any]
    start_envoy: Callable[..., Envoy]
    envoys: list[Envoy] = field(default_factory=list)
    _proxies: dict[str, Proxy] = field(default_factory=dict)
    _names: Iterator[str] = field(default_factory=lambda: iter(string.ascii_uppercase))

    def add(self) -> Envoy:
        """Start one more gateway on the same etcd and fleet."""
        envoy = self.start_envoy(self.fleet, plugin_overrides=self.overrides, etcd_endpoints=self.etcd.endpoints,
                                 name=f"gateway-{next(self._names)}")
        self.envoys.append(envoy)
        return envoy

    def proxy(self, envoy: Envoy) -> Proxy:
        """A plain HTTP client of one gateway with the node key (tasks are private to a key)."""
        if envoy.name not in self._proxies:
            self._proxies[envoy.name] = Proxy(envoy)
        return self._proxies[envoy.name]

    def client(self, envoy: Envoy) -> meilisearch.Client:
        """The official SDK pointed at one gateway."""
        return meilisearch.Client(envoy.url, NODE_KEY, timeout=SDK_TIMEOUT_SECONDS)

    def close(self) -> None:
        for proxy in self._proxies.values():
            proxy.close()


@pytest.fixture
def gateways(make_fleet: Callable[..., Fleet], make_etcd: Callable[..., EtcdCluster],
             make_envoy: Callable[..., Envoy], filter_wasm: Path) -> Iterator[Callable[..., Gateways]]:
    """`gateways(count, members=1, fleet_kwargs=None, **plugin_overrides)` → started etcd (1 or 3
    members), three dev nodes, and `count` gateways with the etcd backend (lease 3 s)."""
    made: list[Gateways] = []

    def make(count: int, *, members: int = 1, fleet_kwargs: dict[str, Any] | None = None,
             **overrides: Any) -> Gateways:
        etcd = make_etcd(members)
        fleet = make_fleet(3, **(fleet_kwargs or {}))
        overrides.setdefault("state", etcd_state(lease_ttl_ms=LEASE_TTL_MS))
        world = Gateways(fleet, etcd, overrides, lambda *a, **k: make_envoy(*a, wasm=filter_wasm, **k))
        made.append(world)
        for _ in range(count):
            world.add()
        return world

    yield make
    for world in made:
        world.close()


def round_robin_client(envoys: Sequence[Envoy]) -> meilisearch.Client:
    """The official SDK behind a load balancer: each request goes to the next gateway in turn
    (the SDK reads `config.url` once per request)."""
    client = meilisearch.Client(envoys[0].url, NODE_KEY, timeout=SDK_TIMEOUT_SECONDS)
    urls = itertools.cycle([e.url for e in envoys])

    class RoundRobinConfig(type(client.config)):  # type: ignore[misc]
        @property
        def url(self) -> str:
            return next(urls)

        @url.setter
        def url(self, _value: str) -> None:
            pass

    client.config.__class__ = RoundRobinConfig
    return client


# --- what a gateway says ---------------------------------------------------------------------------

def task_json(proxy: Proxy, task_uid: int) -> dict[str, Any]:
    """GET /tasks/{uid} through one gateway; anything but 200 ends the wait at once (a gateway that
    does not know a task another one created is the bug this backend fixes)."""
    response = proxy.request("GET", f"/tasks/{task_uid}")
    if response.status_code != 200:
        raise GiveUp(f"{proxy.envoy.name}: GET /tasks/{task_uid} -> {response.status_code} {response.text}")
    return response.json()


def wait_terminal(proxy: Proxy, task_uid: int, timeout: float = TASK_SECONDS) -> dict[str, Any]:
    def terminal() -> dict[str, Any] | None:
        task = task_json(proxy, task_uid)
        return task if task["status"] in TERMINAL else None

    return wait_until(terminal, timeout, f"task {task_uid} to end, seen through {proxy.envoy.name}")


def wait_phase(proxies: Sequence[Proxy], task_uid: int, phase: str, timeout: float = 15.0) -> dict[str, Any]:
    """The task's `miroir.phase` is `phase`, as any of `proxies` shows it."""
    seen: list[Any] = []

    def there() -> dict[str, Any] | None:
        for proxy in proxies:
            try:
                task = proxy.task(task_uid)
            except (AssertionError, requests.RequestException):
                continue
            seen.append((proxy.envoy.name, task.get("status"), task.get("miroir", {}).get("phase")))
            if task.get("miroir", {}).get("phase") == phase:
                return task
            if task.get("status") in TERMINAL:
                raise GiveUp(f"task {task_uid} ended before phase {phase}: {task}")
        return None

    try:
        return wait_until(there, timeout, f"task {task_uid} in phase {phase}", interval=0.01, max_interval=0.05)
    except AssertionError as error:
        raise AssertionError(f"{error}; (gateway, status, phase) seen, last 10: {seen[-10:]}") from None


def read_version(proxy: Proxy, uid: str) -> int | None:
    """The version a search of `uid` is stamped with (None when the header is missing)."""
    response = proxy.request("POST", f"/indexes/{uid}/search", {"q": ""})
    assert response.status_code == 200, f"{proxy.envoy.name}: search {uid} -> {response.status_code} {response.text}"
    value = response.headers.get(VERSION_HEADER)
    return int(value) if value is not None else None


def wait_version(proxy: Proxy, uid: str, version: int, timeout: float) -> None:
    wait_until(lambda: read_version(proxy, uid) == version, timeout,
               f"{proxy.envoy.name} to stamp {uid} reads with {VERSION_HEADER}: {version}")


def admin(envoy: Envoy, method: str, path: str) -> requests.Response:
    return requests.request(method, envoy.url + path, headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=10)


# --- what the nodes applied ------------------------------------------------------------------------------

def applied_settings(fleet: Fleet, i: int, uid: str, key: str = "stopWords") -> list[Any]:
    """`key` of every settings task node i has on `uid`, in the node's own order (its task uids)."""
    return [t["details"].get(key) for t in node_tasks(fleet, i, uid) if t["type"] == "settingsUpdate"]


def without_repeats(values: Sequence[Any]) -> list[Any]:
    """Consecutive duplicates dropped: the same write sent again at once (a new owner re-proposing
    what the dead one had sent) is harmless; one sent again after a later write is not."""
    return [v for k, v in enumerate(values) if k == 0 or values[k - 1] != v]


# --- which gateway runs a job ----------------------------------------------------------------------------
#
# Only the gateway that runs a job calls the nodes' own clusters (meili_node_i: propose, task polls,
# verify); clients' reads go through meili_all. So the owner is the gateway whose node-cluster
# counters move, whatever the filter calls its workers.

NODE_CLUSTER_STATS = r"^cluster\.meili_node_[0-9]+\.upstream_rq_(total|active)$"


def node_calls(envoy: Envoy) -> tuple[int, int]:
    """(requests ever sent, requests in flight) to the per-node clusters of one gateway."""
    stats = envoy.stats(NODE_CLUSTER_STATS)
    total = sum(int(v) for k, v in stats.items() if k.endswith("_total"))
    active = sum(int(v) for k, v in stats.items() if k.endswith("_active"))
    return total, active


def quiet_nodes(envoys: Sequence[Envoy], timeout: float = 15.0) -> dict[str, int]:
    """Wait until no gateway is calling the nodes (start-up drift checks over, previous jobs
    done); returns each gateway's node-call count."""
    last: dict[str, tuple[int, int]] = {}

    def still() -> dict[str, int] | None:
        now = {e.name: node_calls(e) for e in envoys}
        steady = bool(last) and all(now[n][0] == last[n][0] and now[n][1] == 0 for n in now)
        last.clear()
        last.update(now)
        return {n: c[0] for n, c in now.items()} if steady else None

    return wait_until(still, timeout, "the gateways to stop calling the nodes", interval=0.3, max_interval=0.3)


def job_owner(envoys: Sequence[Envoy], before: dict[str, int], timeout: float = 10.0) -> Envoy:
    def one() -> Envoy | None:
        now = {e.name: node_calls(e) for e in envoys}
        busy = [e for e in envoys if now[e.name][0] > before[e.name] or now[e.name][1] > 0]
        if len(busy) == 1:
            return busy[0]
        in_flight = [e for e in busy if now[e.name][1] > 0]
        return in_flight[0] if len(in_flight) == 1 else None

    return wait_until(one, timeout, "exactly one gateway to call the nodes (the job's owner)")


# --- (a) write through A, wait through A and B ----------------------------------------------------------

def test_a_write_through_one_gateway_is_waited_for_through_another(gateways: Callable[..., Gateways]) -> None:
    gw = gateways(2)
    a, b = gw.envoys
    uid = fresh_uid("ab")

    info = gw.client(a).index(uid).update_settings({"rankingRules": ["words", "typo"], "stopWords": ["the", "a"]})

    assert info.task_uid == TASK_UID_BASE, "the first task of a fresh ledger"
    assert (info.status, info.type, info.index_uid) == ("enqueued", "settingsUpdate", uid), info
    # A client behind a load balancer: every poll goes to the other gateway, B first, each one 200.
    polled: list[tuple[str, str]] = []

    def alternating() -> dict[str, Any] | None:
        ended = None
        for envoy in (b, a):  # one round: both gateways, whatever the first said
            task = task_json(gw.proxy(envoy), info.task_uid)
            polled.append((envoy.name, task["status"]))
            if task["status"] in TERMINAL:
                ended = ended or task
        return ended

    task = wait_until(alternating, TASK_SECONDS, f"task {info.task_uid} to end, polled through B and A in turn")
    assert task["status"] == "succeeded", task
    assert task["miroir"]["settings_version"] == 1, task["miroir"]
    assert {name for name, _ in polled} == {a.name, b.name}, polled

    # The SDK's own wait: through B alone, then through a client that alternates B and A.
    assert gw.client(b).wait_for_task(info.task_uid, timeout_in_ms=WAIT_MS, interval_in_ms=20).status == "succeeded"
    alternate = round_robin_client([b, a])
    assert alternate.wait_for_task(info.task_uid, timeout_in_ms=WAIT_MS, interval_in_ms=20).status == "succeeded"
    assert alternate.get_task(info.task_uid).uid == info.task_uid  # through A this time

    # Both gateways stamp the committed version on reads.
    wait_version(gw.proxy(a), uid, 1, SAME_VERSION_SECONDS)
    wait_version(gw.proxy(b), uid, 1, SAME_VERSION_SECONDS)
    # And a write through B continues the same index and the same uid sequence.
    again = gw.client(b).index(uid).update_stop_words(["an"])
    assert again.task_uid > info.task_uid, again
    task = round_robin_client([a, b]).wait_for_task(again.task_uid, timeout_in_ms=WAIT_MS, interval_in_ms=20)
    assert task.status == "succeeded", task
    wait_version(gw.proxy(a), uid, 2, SAME_VERSION_SECONDS)
    wait_version(gw.proxy(b), uid, 2, SAME_VERSION_SECONDS)


# --- (b) 20 writers over three gateways --------------------------------------------------------------------

@pytest.mark.timeout(300)
def test_twenty_writers_on_three_gateways_leave_one_order(gateways: Callable[..., Gateways]) -> None:
    gw = gateways(3)
    uid = fresh_uid("twenty")
    writers = 20
    task_uids: dict[int, int] = {}
    errors: list[tuple[int, BaseException]] = []
    lock = threading.Lock()
    start = threading.Barrier(writers, timeout=30)

    def writer(n: int) -> None:
        try:
            index = gw.client(gw.envoys[n % 3]).index(uid)
            start.wait()
            info = index.update_settings({"stopWords": [f"w{n}"]})
            with lock:
                task_uids[n] = info.task_uid
        except BaseException as error:  # noqa: BLE001 - reported below
            with lock:
                errors.append((n, error))

    threads = [threading.Thread(target=writer, args=(n,), name=f"writer-{n}") for n in range(writers)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 2 * SDK_TIMEOUT_SECONDS
    for t in threads:
        t.join(timeout=max(0.1, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "a writer is still waiting for its 202"
    assert not errors, errors

    uids = sorted(task_uids.values())
    assert len(set(uids)) == writers, f"task uids handed out twice: {sorted(task_uids.items(), key=lambda kv: kv[1])}"
    assert all(TASK_UID_BASE <= u < TASK_UID_BASE + 2**24 for u in uids), uids
    # Every task through a gateway other than the one it was written to.
    tasks = {n: wait_terminal(gw.proxy(gw.envoys[(n + 1) % 3]), u, timeout=120) for n, u in task_uids.items()}
    in_uid_order = sorted(tasks.items(), key=lambda kv: kv[1]["uid"])
    assert [t["status"] for _, t in in_uid_order] == ["succeeded"] * writers, \
        [(t["uid"], t["status"], t.get("error")) for _, t in in_uid_order]
    assert [t["miroir"]["settings_version"] for _, t in in_uid_order] == list(range(1, writers + 1)), \
        [(t["uid"], t["miroir"]) for _, t in in_uid_order]

    expected = [[f"w{n}"] for n, _ in in_uid_order]
    for i in range(gw.fleet.size):
        applied = applied_settings(gw.fleet, i, uid)
        assert applied == expected, f"node {i} applied {applied}; the filter's order is {expected}"
        assert gw.fleet.node_settings(i, uid)["stopWords"] == expected[-1]
    for envoy in gw.envoys:
        wait_version(gw.proxy(envoy), uid, writers, SAME_VERSION_SECONDS)


# --- (c) the gateway that owns a job is killed ---------------------------------------------------------------

# Faults that hold a job in one phase long enough to see it there and kill its owner:
# - propose: every node answers 3 s late (the proposal is in flight);
# - wait: node tasks take 4 s (the owner polls them);
# - verify: node tasks take 1 s, and once the job waits every answer comes 4 s late, so the
#   settings read-back is in flight when the job reaches verify.
HOLD = {"propose": {"delay_ms": 3000}, "wait": {"task_ms": 4000}, "verify": {"task_ms": 1000}}
VERIFY_DELAY_MS = 4000


def newest_task_uid(proxies: Sequence[Proxy], uid: str, after: int) -> int | None:
    """The uid of the newest task on `uid` after `after`, as any gateway lists it (GET /tasks)."""
    for proxy in proxies:
        try:
            response = proxy.request("GET", f"/tasks?indexUids={uid}&limit=20")
        except requests.RequestException:
            continue
        if response.status_code == 200:
            newer = [t["uid"] for t in response.json().get("results", []) if t["uid"] > after]
            if newer:
                return max(newer)
    return None


@pytest.mark.timeout(240)
@pytest.mark.parametrize("phase", ["propose", "wait", "verify"])
def test_a_job_whose_gateway_is_killed_is_finished_by_another(gateways: Callable[..., Gateways], phase: str) -> None:
    gw = gateways(3)
    fleet = gw.fleet
    uid = fresh_uid(f"kill-{phase}")
    first = gw.proxy(gw.envoys[0]).commit("PATCH", uid, {"stopWords": ["v1"]})
    assert first["miroir"]["settings_version"] == 1, first
    before = quiet_nodes(gw.envoys)
    for i in range(fleet.size):
        fleet.fault(i, **HOLD[phase])

    # The write goes to gateway A; if A turns out to own the job and is killed, the client's
    # connection dies with it (its answer is then unknown to it, as with any crashed server).
    outcome: dict[str, Any] = {}

    def write() -> None:
        try:
            outcome["response"] = gw.proxy(gw.envoys[0]).write_settings("PATCH", uid, {"stopWords": ["v2"]})
        except requests.RequestException as error:
            outcome["error"] = error

    writer = threading.Thread(target=write, name="writer")
    writer.start()
    proxies = [gw.proxy(e) for e in gw.envoys]
    task_uid = wait_until(lambda: newest_task_uid(proxies, uid, after=first["uid"]), 10, "the write's task")
    if phase == "verify":
        wait_phase(proxies, task_uid, "wait")
        for i in range(fleet.size):
            fleet.fault(i, delay_ms=VERIFY_DELAY_MS)
    held = wait_phase(proxies, task_uid, phase)
    owner = job_owner(gw.envoys, before)

    owner.kill()
    fleet.clear_all()  # the nodes are quick again: what remains is the lease running out
    survivors = [e for e in gw.envoys if e is not owner]
    task = wait_terminal(gw.proxy(survivors[0]), task_uid, timeout=TAKEOVER_SECONDS)

    assert task["status"] == "succeeded", (held["miroir"], task)
    assert task["miroir"]["settings_version"] == 2, task["miroir"]
    writer.join(timeout=SDK_TIMEOUT_SECONDS)
    if "response" in outcome:  # the client got its answer: the same task
        assert outcome["response"].status_code == 202, outcome["response"].text
        assert outcome["response"].json()["taskUid"] == task_uid
    # The survivors go on: the next write commits version 3 with a later uid.
    third = gw.proxy(survivors[1]).commit("PATCH", uid, {"stopWords": ["v3"]})
    assert third["miroir"]["settings_version"] == 3 and third["uid"] > task_uid, third
    for i in range(fleet.size):
        applied = applied_settings(fleet, i, uid)
        assert without_repeats(applied) == [["v1"], ["v2"], ["v3"]], f"node {i} applied {applied}"
        assert fleet.node_settings(i, uid)["stopWords"] == ["v3"]
    for envoy in survivors:
        assert task_json(gw.proxy(envoy), task_uid)["status"] == "succeeded"
        wait_version(gw.proxy(envoy), uid, 3, SAME_VERSION_SECONDS)


# --- (d) every gateway restarted -----------------------------------------------------------------------------

@pytest.mark.timeout(240)
def test_versions_freezes_and_tasks_outlive_every_gateway(gateways: Callable[..., Gateways]) -> None:
    # Passthrough: a node that keeps answering otherwise freezes the index (test_divergence.py).
    gw = gateways(2, writes="passthrough", settings_broadcast=FAST_REPAIR)
    fleet = gw.fleet
    a, b = gw.envoys
    uid, frozen_uid = fresh_uid("kept"), fresh_uid("kept-frozen")
    gw.proxy(a).commit("PATCH", uid, {"stopWords": ["v1"]})
    second = gw.proxy(b).commit("PATCH", uid, {"stopWords": ["v2"]})
    assert second["miroir"]["settings_version"] == 2, second
    gw.proxy(a).commit("PATCH", frozen_uid, {"stopWords": ["ok"]})
    fleet.fault(2, apply_different={"stopWords": ["rogue"]})
    failed = gw.proxy(a).wait_task(gw.proxy(a).accepted("PATCH", frozen_uid, {"stopWords": ["no"]}))
    assert failed["status"] == "failed" and failed["miroir"]["frozen"] is True, failed
    fleet.clear(2)

    for envoy in (a, b):
        envoy.stop()
    c, d = gw.add(), gw.add()
    clear_all_requests(fleet)

    for envoy in (c, d):
        proxy = gw.proxy(envoy)
        # The freeze holds from the first request on: nothing reaches a node.
        assert_meili_error(proxy.request("POST", f"/indexes/{frozen_uid}/documents", [{"id": 1}]), 503,
                           "miroir_index_frozen")
        assert_meili_error(proxy.write_settings("PATCH", frozen_uid, {"stopWords": ["still no"]}), 503,
                           "miroir_index_frozen")
        # The old tasks are there.
        old = wait_until(lambda: task_json(proxy, second["uid"]), RESTART_SECONDS, f"task {second['uid']} on {envoy.name}")
        assert old["status"] == "succeeded" and old["miroir"]["settings_version"] == 2, old
        assert task_json(proxy, failed["uid"])["status"] == "failed"
        # The version is stamped again, and a read pinned at it is served.
        wait_version(proxy, uid, 2, RESTART_SECONDS)
        pinned = proxy.settings(uid, headers={MIN_VERSION_HEADER: "2"})
        assert pinned.status_code == 200, pinned.text
        assert pinned.json()["stopWords"] == ["v2"] and pinned.headers.get(VERSION_HEADER) == "2"
    assert non_read_requests(fleet, frozen_uid) == [], "a write to the frozen index reached a node"
    shown = admin(c, "GET", f"/_miroir/indexes/{frozen_uid}")
    assert shown.status_code == 200 and shown.json()["frozen"] is not None, shown.text

    # The new gateways continue the uid sequence and the versions.
    third = gw.proxy(d).commit("PATCH", uid, {"stopWords": ["v3"]})
    assert third["uid"] > failed["uid"] and third["miroir"]["settings_version"] == 3, third
    wait_version(gw.proxy(c), uid, 3, SAME_VERSION_SECONDS)


# --- (e) a freeze made through A, refused on B within 1 s ------------------------------------------------------

def test_a_freeze_made_on_one_gateway_refuses_writes_on_another_within_a_second(
        gateways: Callable[..., Gateways]) -> None:
    gw = gateways(2, writes="passthrough", settings_broadcast=FAST_REPAIR)
    fleet = gw.fleet
    a, b = gw.envoys
    pa, pb = gw.proxy(a), gw.proxy(b)
    uid = fresh_uid("freeze")
    pa.commit("PATCH", uid, {"stopWords": ["v1"]})
    wait_version(pb, uid, 1, SAME_VERSION_SECONDS)
    fleet.fault(2, apply_different={"stopWords": ["rogue"]})

    task_uid = pa.accepted("PATCH", uid, {"stopWords": ["v2"]})

    def ended() -> dict[str, Any] | None:
        task = task_json(pa, task_uid)
        return task if task["status"] in TERMINAL else None

    # The index is frozen before its task fails (hot record, record, then the task).
    task = wait_until(ended, TASK_SECONDS, f"task {task_uid} to fail", interval=0.01, max_interval=0.02)
    frozen_by = time.monotonic()
    assert task["status"] == "failed" and task["miroir"]["frozen"] is True, task
    assert task["error"]["code"] == "miroir_settings_divergence", task["error"]

    # B: a document write (straight to the nodes while B has not heard) is refused within 1 s.
    def refused_on_b() -> list[requests.Response] | None:  # (a 503 Response is falsy itself)
        response = pb.request("POST", f"/indexes/{uid}/documents", [{"id": 1, "title": "late"}])
        return [response] if response.status_code == 503 else None

    remaining = max(0.05, FREEZE_SPREAD_SECONDS - (time.monotonic() - frozen_by))
    [refusal] = wait_until(refused_on_b, remaining, "gateway B to refuse writes to the frozen index",
                           interval=0.01, max_interval=0.05)
    assert_meili_error(refusal, 503, "miroir_index_frozen")

    clear_all_requests(fleet)
    for method, path, body in [("PATCH", settings_path(uid), {"stopWords": ["v3"]}),
                               ("POST", f"/indexes/{uid}/documents", [{"id": 2}]),
                               ("DELETE", f"/indexes/{uid}", None)]:
        response = pb.request(method, path, body) if body is not None else pb.request(method, path)
        assert_meili_error(response, 503, "miroir_index_frozen")
    assert non_read_requests(fleet, uid) == [], "a write refused by B reached a node"
    shown = admin(b, "GET", f"/_miroir/indexes/{uid}")
    assert shown.status_code == 200 and shown.json()["frozen"]["task_uid"] == task_uid, shown.text
    assert read_version(pb, uid) == 1, "reads of a frozen index go on, at the committed version"


# --- (f) etcd loses a member, then its quorum ---------------------------------------------------------------------

@pytest.mark.timeout(300)
def test_one_etcd_member_down_changes_nothing_two_down_refuses_writes_until_they_return(
        gateways: Callable[..., Gateways]) -> None:
    gw = gateways(2, members=3)
    fleet, etcd = gw.fleet, gw.etcd
    a, b = gw.envoys
    pa, pb = gw.proxy(a), gw.proxy(b)
    uid = fresh_uid("quorum")
    sdk_a, sdk_b = gw.client(a), gw.client(b)
    created = sdk_b.wait_for_task(sdk_a.create_index(uid, {"primaryKey": "id"}).task_uid, timeout_in_ms=WAIT_MS)
    assert created.status == "succeeded", created
    assert pa.commit("PATCH", uid, {"stopWords": ["v1"]})["miroir"]["settings_version"] == 1

    # One member down (a follower: no election in the way). Each gateway's `etcd` cluster still
    # sends some calls to the dead member; the filter must get by with the other two.
    follower = next(i for i in range(etcd.size) if i != etcd.leader())
    etcd.kill(follower)
    for n, proxy in enumerate([pa, pb, pa, pb]):
        task = proxy.commit("PATCH", uid, {"stopWords": [f"one-down-{n}"]})
        assert task["miroir"]["settings_version"] == 2 + n, task
    added = sdk_b.wait_for_task(sdk_a.index(uid).add_documents(BOOKS).task_uid, timeout_in_ms=WAIT_MS)
    assert added.status == "succeeded", added
    committed = 5
    for proxy in (pa, pb):
        wait_version(proxy, uid, committed, SAME_VERSION_SECONDS)

    # Two members down: no quorum, and the leader is the member left alone. For its last moments
    # as leader it takes writes into its log that it cannot commit, and commits them if it is
    # elected again once the others return. A write sent now may be one of them: it is held until
    # etcd can say whether it took effect (then answered truthfully), never refused while it
    # could still take effect. Once a gateway sees etcd down it refuses writes at once, and
    # nothing reaches a node; reads go on.
    clear_all_requests(fleet)
    leader = etcd.leader()
    etcd.kill(next(i for i in etcd.running if i != leader))
    assert etcd.running == [leader]
    held: dict[str, Any] = {}

    def send_held() -> None:
        try:
            held["response"] = requests.patch(a.url + settings_path(uid), json={"stopWords": ["held"]},
                                              headers={"Authorization": f"Bearer {NODE_KEY}"}, timeout=HELD_SECONDS)
        except requests.RequestException as e:
            held["error"] = e

    sender = threading.Thread(target=send_held, daemon=True)
    sender.start()
    for envoy in (a, b):
        envoy.wait_for_stat("wasmcustom.miroir_state_unavailable", lambda v: v == 1, timeout=UNAVAILABLE_SECONDS)
    for proxy in (pa, pb):
        assert_meili_error(proxy.write_settings("PATCH", uid, {"stopWords": ["lost"]}), 503,
                           "miroir_state_unavailable")
        assert_meili_error(proxy.request("POST", f"/indexes/{uid}/documents", [{"id": 9, "title": "lost"}]), 503,
                           "miroir_state_unavailable")
    for proxy in (pa, pb):
        assert read_version(proxy, uid) == committed, "reads keep the last known version"
        documents = proxy.request("GET", f"/indexes/{uid}/documents?limit=10")
        assert documents.status_code == 200 and len(documents.json()["results"]) == 3, documents.text
        assert sorted(h["id"] for h in proxy.request("POST", f"/indexes/{uid}/search", {"q": "dune"}).json()["hits"]) == [1]
    assert non_read_requests(fleet, uid) == [], "a write reached a node while etcd had no quorum"

    # Both members back: writes are accepted again without touching a gateway, and the held write
    # has its true outcome.
    for i in range(etcd.size):
        if not etcd.is_running(i):
            etcd.start_member(i, wait=False)
    etcd.wait_healthy()

    def accepted() -> requests.Response | None:  # a 202 Response is truthy
        response = pa.write_settings("PATCH", uid, {"stopWords": ["back"]})
        return response if response.status_code == 202 else None

    response = wait_until(accepted, QUORUM_BACK_SECONDS, "gateway A to accept writes again")
    tasks = [wait_terminal(pb, response.json()["taskUid"])]
    sender.join(HELD_SECONDS)
    assert "error" not in held and "response" in held, f"the held write got no answer: {held}"
    if held["response"].status_code == 202:
        tasks.append(wait_terminal(pa, held["response"].json()["taskUid"]))
    else:  # refused before it was ever sent to etcd
        assert_meili_error(held["response"], 503, "miroir_state_unavailable")
    assert all(t["status"] == "succeeded" for t in tasks), tasks
    assert sorted(t["miroir"]["settings_version"] for t in tasks) == [committed + 1 + k for k in range(len(tasks))], tasks
    again = pb.commit("PATCH", uid, {"stopWords": ["back-b"]})
    assert again["miroir"]["settings_version"] == committed + len(tasks) + 1, again
    for i in range(fleet.size):
        assert fleet.node_settings(i, uid)["stopWords"] == ["back-b"]
        applied = without_repeats(applied_settings(fleet, i, uid))
        assert ["lost"] not in applied, f"node {i}: a write answered 503 was applied: {applied}"
        assert applied.count(["held"]) == len(tasks) - 1, f"node {i}: the held write applied {applied.count(['held'])} times"
    assert fleet.node_documents(uid) == [BOOKS] * fleet.size


# --- (g) mirror mode on etcd ------------------------------------------------------------------------------------

def test_mirror_mode_document_write_through_one_gateway_is_waited_for_through_another(
        gateways: Callable[..., Gateways]) -> None:
    gw = gateways(2)
    a, b = gw.envoys
    sdk_a, sdk_b = gw.client(a), gw.client(b)
    uid = fresh_uid("mirror")

    created = sdk_a.create_index(uid, {"primaryKey": "id"})
    task = sdk_b.wait_for_task(created.task_uid, timeout_in_ms=WAIT_MS, interval_in_ms=20)
    assert (task.status, task.type, task.index_uid) == ("succeeded", "indexCreation", uid), task

    info = sdk_a.index(uid).add_documents(BOOKS)
    assert info.task_uid > created.task_uid, info
    task = sdk_b.wait_for_task(info.task_uid, timeout_in_ms=WAIT_MS, interval_in_ms=20)
    assert (task.status, task.type) == ("succeeded", "documentAdditionOrUpdate"), task
    assert task.details["receivedDocuments"] == 3 and task.details["indexedDocuments"] == 3, task
    assert gw.fleet.node_documents(uid) == [BOOKS] * gw.fleet.size

    # Through a load balancer too, and the fleet answers as one Meilisearch on either gateway.
    update = sdk_b.index(uid).update_documents([{"id": 2, "title": "Solaris (1961)"}])
    task = round_robin_client([a, b]).wait_for_task(update.task_uid, timeout_in_ms=WAIT_MS, interval_in_ms=20)
    assert task.status == "succeeded", task
    for sdk in (sdk_a, sdk_b):
        assert [h["id"] for h in sdk.index(uid).search("solaris")["hits"]] == [2]
        assert sdk.index(uid).get_stats().number_of_documents == 3
    listed = sdk_a.get_tasks({"indexUids": [uid]})
    assert sorted(t.uid for t in listed.results) == sorted([created.task_uid, info.task_uid, update.task_uid])


# --- the drift check: one gateway per interval ----------------------------------------------------------------

DRIFT_LISTING = "/indexes?limit=1000"


def test_the_drift_check_runs_on_one_gateway_per_interval(gateways: Callable[..., Gateways]) -> None:
    """Three gateways, a 1 s drift interval: the fleet sees about one check per second (each run
    lists `/indexes?limit=1000` on every node, and only the drift check sends that), not one per
    gateway per second."""
    gw = gateways(3, settings_drift_check={"interval_s": 1})
    fleet = gw.fleet
    gw.proxy(gw.envoys[0]).commit("PATCH", fresh_uid("drift"), {"stopWords": ["a"]})

    def listings() -> int:
        return sum(1 for r in fleet.requests(0) if r["method"] == "GET" and r["path"] == DRIFT_LISTING)

    fleet.clear_requests(0)
    started = time.monotonic()
    wait_until(lambda: listings() >= 5, 30, "five drift checks")
    elapsed = time.monotonic() - started
    # One check per interval reaches five after about four seconds; one per gateway (three per
    # interval) in under two.
    assert listings() <= elapsed / 1.0 + 2, f"{listings()} drift checks in {elapsed:.1f} s from three gateways"
