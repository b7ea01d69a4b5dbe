"""Hostile input against the real Envoy (`--concurrency 2`) and the built filter: bytes no polite
client sends, in the headers, the path, the query and the body, over HTTP/1.1 and HTTP/2.

Whatever Envoy or the filter answers, after every request:
- every worker still serves (a filter VM that panicked answers nothing but errors from then on);
- no node saw what it should not: a write to the frozen index reaches no node, and the healthy
  index gets either nothing or the same broadcast on every node (never one node alone);
- errors from the filter have Meilisearch's shape.
The module ends by checking that Envoy's log has no wasm panic or trap."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

import rawhttp
from conftest import ADMIN_KEY, DEFAULT_NODES, NODE_KEY
from harness import Envoy, Fleet, wait_until
from rawhttp import RawResponse, build_http1
from scenario import TASK_UID_BASE, TERMINAL, Proxy, fresh_uid, shared_envoy
from survival import PROBE_TASK_UID, assert_every_worker_serves, assert_meili_shape, assert_no_wasm_panic

# Bodies up to 256 KiB are read by the filter (so 100 000-deep JSON reaches the parser); larger
# ones are refused with 413.
MAX_BODY_BYTES = 256 * 1024
FAST_REPAIR = {"max_repair_retries": 1, "repair_backoff_base_ms": 50}
AUTH = (b"Authorization", f"Bearer {NODE_KEY}".encode())
JSON = (b"Content-Type", b"application/json")


@dataclass
class World:
    fleet: Fleet
    envoy: Envoy
    ok: str
    frozen: str


@pytest.fixture(scope="module")
def world(module_fleet: Fleet, module_workdir: Path) -> Iterator[World]:
    overrides = {"max_body_bytes": MAX_BODY_BYTES, "settings_broadcast": FAST_REPAIR}
    with shared_envoy(module_fleet, module_workdir, plugin_overrides=overrides) as envoy:
        fleet = module_fleet
        ok, frozen = fresh_uid("hostile-ok"), fresh_uid("hostile-frozen")
        with Proxy(envoy) as proxy:
            proxy.commit("PATCH", ok, {"stopWords": ["ok"]})
            proxy.commit("PATCH", frozen, {"stopWords": ["v1"]})
            fleet.fault(DEFAULT_NODES - 1, apply_different={"stopWords": ["rogue"]})
            task = proxy.wait_task(proxy.accepted("PATCH", frozen, {"stopWords": ["v2"]}))
            fleet.clear_all()
            assert task["miroir"]["frozen"] is True, task
        yield World(fleet, envoy, ok, frozen)


# --- what must hold after every request --------------------------------------------------------------

def writes_seen(fleet: Fleet, uid: str, under: tuple[str, ...] = ()) -> list[list[tuple[str, str]]]:
    """Per node, every request other than a GET that a node routes under `/indexes/{uid}/{under}`,
    paths decoded the way a node decodes them (so `/%69ndexes/...` counts, `settings%ff` does not
    count as `settings`)."""
    prefix = ["indexes", uid, *under]
    seen: list[list[tuple[str, str]]] = []
    for i in range(fleet.size):
        mine = []
        for entry in fleet.requests(i):
            path = entry["path"].split("?")[0]
            segments = [urllib.parse.unquote(s, errors="replace") for s in path.split("/") if s]
            if segments[:len(prefix)] == prefix and entry["method"] != "GET":
                mine.append((entry["method"], "/".join(segments)))
        seen.append(mine)
    return seen


def wait_filter_task(envoy: Envoy, response: RawResponse) -> None:
    """A 202 from the filter: wait until its task ends, so what the nodes saw is complete."""
    task_uid = response.json()["taskUid"]
    if not TASK_UID_BASE <= task_uid < TASK_UID_BASE + 2**24:
        return

    def finished() -> bool:
        task = rawhttp.http1(envoy.port, build_http1(b"GET", f"/tasks/{task_uid}".encode(), [AUTH]))
        return task.status == 200 and task.json()["status"] in TERMINAL

    wait_until(finished, 30, f"filter task {task_uid} to finish")


def check_after(world: World, response: RawResponse, *, statuses: set[int], code: str | None = None,
                untouched: bool = False) -> None:
    assert response.status in statuses, f"expected one of {sorted(statuses)}, got {response}"
    if code is not None:
        assert_meili_shape(response, code)
    if response.status == 202:
        wait_filter_task(world.envoy, response)
    assert_every_worker_serves(world.envoy)
    frozen_writes = writes_seen(world.fleet, world.frozen)
    assert frozen_writes == [[]] * world.fleet.size, f"a write to the frozen index reached a node: {frozen_writes}"
    if untouched:
        ok_writes = writes_seen(world.fleet, world.ok)
        assert ok_writes == [[]] * world.fleet.size, f"a refused write reached a node: {ok_writes}"
    # A settings write reaches every node (the broadcast) or none; a path no node routes to the
    # settings (`settings%ff`, `./settings`) may reach one node, which answers 404.
    settings_writes = writes_seen(world.fleet, world.ok, ("settings",))
    assert all(w == settings_writes[0] for w in settings_writes), \
        f"nodes saw different settings writes (a leak to one node): {settings_writes}"
    held = world.fleet.all_node_settings(world.ok)
    assert all(s == held[0] for s in held), f"the nodes disagree on {world.ok}: {held}"
    assert_no_wasm_panic(world.envoy)


@pytest.fixture
def w(world: World) -> World:
    for i in range(world.fleet.size):
        world.fleet.clear_requests(i)
    return world


def settings_write(uid: str, headers: list[tuple[bytes, bytes]] | None = None, body: bytes = b'{"stopWords":["x"]}',
                   method: bytes = b"PATCH", target: str | None = None, **kwargs: Any) -> bytes:
    return build_http1(method, (target or f"/indexes/{uid}/settings").encode(),
                       [AUTH, JSON] if headers is None else headers, body, **kwargs)


# --- 1. header values that are not UTF-8 -------------------------------------------------------------

def test_min_settings_version_with_byte_0xff_is_a_bad_request(w: World) -> None:
    response = rawhttp.http1(w.envoy.port, build_http1(
        b"GET", f"/indexes/{w.ok}/search?q=a".encode(), [AUTH, (b"X-Miroir-Min-Settings-Version", b"\xff")]))
    check_after(w, response, statuses={400}, code="bad_request", untouched=True)


@pytest.mark.parametrize("value", [b"Bearer \xff", b"Bearer \xc3\x28", b"\xe9t\xe9"], ids=["0xff", "bad-utf8", "latin1"])
def test_authorization_not_utf8_on_a_settings_write_is_refused(w: World, value: bytes) -> None:
    response = rawhttp.http1(w.envoy.port, settings_write(w.ok, [(b"Authorization", value), JSON]))
    check_after(w, response, statuses={403}, code="invalid_api_key", untouched=True)


def test_authorization_not_utf8_on_a_task_read_reads_as_no_key(w: World) -> None:
    response = rawhttp.http1(w.envoy.port, build_http1(
        b"GET", f"/tasks/{PROBE_TASK_UID}".encode(), [(b"Authorization", b"Bearer \xff")]))
    check_after(w, response, statuses={404}, code="task_not_found")


def test_authorization_not_utf8_on_the_admin_api_is_refused(w: World) -> None:
    response = rawhttp.http1(w.envoy.port, build_http1(
        b"GET", f"/_miroir/indexes/{w.ok}".encode(), [(b"Authorization", b"Bearer \xff")]))
    check_after(w, response, statuses={401, 403})
    assert_meili_shape(response)


def test_content_type_not_utf8_on_a_settings_write_is_refused(w: World) -> None:
    response = rawhttp.http1(w.envoy.port, settings_write(w.ok, [AUTH, (b"Content-Type", b"application/json\xff")]))
    check_after(w, response, statuses={415}, code="invalid_content_type", untouched=True)


@pytest.mark.parametrize("target", ["/indexes/{frozen}/documents/\xff", "/indexes/{frozen}/documents?x=\xff"],
                         ids=["segment", "query"])
def test_path_with_byte_0xff_to_a_frozen_index_is_fenced(w: World, target: str) -> None:
    raw = target.format(frozen=w.frozen).encode("latin-1")
    response = rawhttp.http1(w.envoy.port, build_http1(b"POST", raw, [AUTH, JSON], b'[{"id":1}]'))
    # Envoy's codec may refuse the raw byte itself (400) before the filter sees it.
    check_after(w, response, statuses={400, 503})
    if response.status == 503:
        assert_meili_shape(response, "miroir_index_frozen")


def test_settings_write_with_byte_0xff_in_the_query_is_refused(w: World) -> None:
    target = f"/indexes/{w.ok}/settings?x=\xff".encode("latin-1")
    response = rawhttp.http1(w.envoy.port, build_http1(b"PATCH", target, [AUTH, JSON], b'{"stopWords":["q"]}'))
    check_after(w, response, statuses={400}, untouched=True)


# --- 2. percent-encoded paths ------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/%69ndexes/{uid}/documents", "/%69ndexes/{uid}/documents/", "/%69%6e%64%65%78%65%73/{uid}/documents",
    "/indexe%73/{uid}/documents", "/%2569ndexes-is-not-it/{uid}/documents",
], ids=["i", "i-trailing-slash", "all-escaped", "last-letter", "double-escape"])
def test_percent_encoded_document_write_to_a_frozen_index_is_fenced(w: World, path: str) -> None:
    target = path.format(uid=w.frozen).encode()
    response = rawhttp.http1(w.envoy.port, build_http1(b"POST", target, [AUTH, JSON], b'[{"id":7}]'))
    if "%25" in path:  # not a route to a node either: it gets the node's 404
        check_after(w, response, statuses={404})
        return
    check_after(w, response, statuses={503}, code="miroir_index_frozen")


def test_percent_encoded_settings_write_is_broadcast(w: World) -> None:
    target = f"/%69ndexes/{w.ok}/settings"
    response = rawhttp.http1(w.envoy.port, settings_write(w.ok, target=target, body=b'{"stopWords":["enc"]}'))
    check_after(w, response, statuses={202})
    assert response.json()["taskUid"] >= TASK_UID_BASE, "the write went to one node, not through the broadcast"
    assert all(s["stopWords"] == ["enc"] for s in w.fleet.all_node_settings(w.ok))


# --- 3. HTTP/2 request trailers ----------------------------------------------------------------------

def test_h2_settings_write_with_trailers_is_broadcast(w: World) -> None:
    response = rawhttp.http2(w.envoy.port, "PATCH", f"/indexes/{w.ok}/settings",
                             [("authorization", f"Bearer {NODE_KEY}"), ("content-type", "application/json")],
                             b'{"stopWords":["trailers"]}', trailers=[("x-checksum", "abc")])
    check_after(w, response, statuses={202})
    assert response.json()["taskUid"] >= TASK_UID_BASE, "the held write leaked to one node"
    assert all(s["stopWords"] == ["trailers"] for s in w.fleet.all_node_settings(w.ok))


def test_h2_settings_write_with_only_trailers_is_missing_its_payload(w: World) -> None:
    response = rawhttp.http2(w.envoy.port, "PATCH", f"/indexes/{w.ok}/settings",
                             [("authorization", f"Bearer {NODE_KEY}"), ("content-type", "application/json")],
                             None, trailers=[("x-checksum", "abc")])
    check_after(w, response, statuses={400}, code="missing_payload", untouched=True)


def test_h2_frozen_write_with_trailers_is_fenced(w: World) -> None:
    response = rawhttp.http2(w.envoy.port, "POST", f"/indexes/{w.frozen}/documents",
                             [("authorization", f"Bearer {NODE_KEY}"), ("content-type", "application/json")],
                             b'[{"id":3}]', trailers=[("x-checksum", "abc")])
    check_after(w, response, statuses={503}, code="miroir_index_frozen")


# --- 5. everything else a hostile client may send ------------------------------------------------------

LONG = b"a" * 50_000
# name -> (headers, acceptable statuses). A case whose statuses include 202 may be broadcast; the
# others must reach no node, except where a node alone can judge (a key: every node sees the same
# proposal and refuses it).
HEADER_CASES: dict[str, tuple[list[tuple[bytes, bytes]], set[int]]] = {
    "obs-text": ([AUTH, JSON, (b"X-Note", b"caf\xe9 \x80\xff")], {202}),
    "nul": ([AUTH, JSON, (b"X-Note", b"a\x00b")], {400}),
    "control-byte": ([AUTH, JSON, (b"X-Note", b"a\x01b\x7f")], {202, 400}),
    "bare-cr": ([AUTH, JSON, (b"X-Note", b"a\rb")], {202, 400}),
    "very-long-header": ([AUTH, JSON, (b"X-Note", LONG)], {202, 431}),
    "very-long-authorization": ([(b"Authorization", b"Bearer " + LONG), JSON], {400, 401, 403, 431}),
    "huge-header-block": ([AUTH, JSON] + [(f"X-N{i}".encode(), b"v" * 1000) for i in range(100)], {431}),
    "duplicate-authorization": ([AUTH, (b"Authorization", b"Bearer other"), JSON], {202, 400, 401, 403}),
    "duplicate-hold-and-routing": ([AUTH, JSON, (b"x-miroir-hold", b"1"), (b"x-miroir-hold", b"2"),
                                    (b"x-miroir-node", b"meili_node_0"), (b"x-miroir-node", b"meili_node_1")], {202}),
    "duplicate-content-type": ([AUTH, JSON, (b"Content-Type", b"text/plain")], {202, 400, 415}),
}


@pytest.mark.parametrize("case", list(HEADER_CASES), ids=list(HEADER_CASES))
def test_hostile_headers_on_a_settings_write(w: World, case: str) -> None:
    headers, statuses = HEADER_CASES[case]
    response = rawhttp.http1(w.envoy.port, settings_write(w.ok, headers, body=f'{{"stopWords":["{case}"]}}'.encode()))
    judged_by_nodes = case in ("very-long-authorization", "duplicate-authorization")
    check_after(w, response, statuses=statuses, untouched=202 not in statuses and not judged_by_nodes)


@pytest.mark.parametrize("case", list(HEADER_CASES), ids=list(HEADER_CASES))
def test_hostile_headers_on_a_frozen_write(w: World, case: str) -> None:
    headers, _ = HEADER_CASES[case]
    target = f"/indexes/{w.frozen}/documents".encode()
    response = rawhttp.http1(w.envoy.port, build_http1(b"POST", target, headers, b'[{"id":9}]'))
    check_after(w, response, statuses={400, 431, 503})
    if response.status == 503:
        assert_meili_shape(response, "miroir_index_frozen")


@pytest.mark.parametrize("versions", [[b"1", b"0"], [b"\xff", b"1"], [b"99999999999999999999999"], [b"-1"], [b""]],
                         ids=["two", "bad-then-good", "huge", "negative", "empty"])
def test_min_settings_version_oddities_on_a_read(w: World, versions: list[bytes]) -> None:
    headers = [AUTH] + [(b"X-Miroir-Min-Settings-Version", v) for v in versions]
    response = rawhttp.http1(w.envoy.port, build_http1(b"GET", f"/indexes/{w.ok}/settings".encode(), headers))
    check_after(w, response, statuses={200, 400, 503})
    if response.status != 200:
        assert_meili_shape(response)


@pytest.mark.parametrize("method", [b"patch", b"Patch", b"PATCH ", b"P\xc1TCH", b"DELETE\x00"],
                         ids=["patch", "Patch", "trailing-space", "non-ascii", "nul"])
def test_odd_methods_on_the_frozen_settings(w: World, method: bytes) -> None:
    target = f"/indexes/{w.frozen}/settings".encode()
    response = rawhttp.http1(w.envoy.port, build_http1(method, target, [AUTH, JSON], b'{"stopWords":["m"]}'))
    check_after(w, response, statuses={400, 405, 501, 503})
    if response.status == 503:
        assert_meili_shape(response, "miroir_index_frozen")


@pytest.mark.parametrize("method", [b"patch", b"Patch"], ids=["patch", "Patch"])
def test_odd_case_methods_never_change_settings(w: World, method: bytes) -> None:
    response = rawhttp.http1(w.envoy.port, settings_write(w.ok, method=method, body=b'{"stopWords":["case"]}'))
    # Not Meilisearch's PATCH: one node answers it (404/405) and nothing changes anywhere.
    check_after(w, response, statuses={400, 404, 405, 501})
    assert all(s["stopWords"] != ["case"] for s in w.fleet.all_node_settings(w.ok))


PATH_SEGMENT_CASES = {
    "uid-0xff": "/indexes/{ok}\xff/settings",
    "uid-escaped-0xff": "/indexes/{ok}%ff/settings",
    "uid-escaped-slash": "/indexes/{ok}%2Fsettings",
    "settings-escaped-0xff": "/indexes/{ok}/settings%ff",
    "bad-escape": "/indexes/{ok}/%zzsettings",
    "lone-percent": "/indexes/{ok}/settings%",
    "escaped-nul": "/indexes/{ok}/settings%00",
    "dot-segments": "/indexes/{ok}/./settings",
    "dotdot": "/indexes/x/../{ok}/settings",
    "query-bad-escapes": "/indexes/{ok}/settings?%ff%fe=%zz&%=%",
    "fragment": "/indexes/{ok}/settings#%ff",
}


@pytest.mark.parametrize("case", list(PATH_SEGMENT_CASES), ids=list(PATH_SEGMENT_CASES))
def test_hostile_paths_on_a_settings_write(w: World, case: str) -> None:
    target = PATH_SEGMENT_CASES[case].format(ok=w.ok).encode("latin-1")
    response = rawhttp.http1(w.envoy.port, settings_write(w.ok, target=target.decode("latin-1"),
                                                          body=b'{"stopWords":["path"]}'))
    # Either a broadcast the filter answers, or something no node applies (Envoy's or a node's 4xx).
    check_after(w, response, statuses={202, 400, 404, 405})


BODY_CASES: dict[str, tuple[bytes, set[int], str | None]] = {
    "invalid-utf8-string": (b'{"stopWords":["\xff"]}', {400}, "malformed_payload"),
    "invalid-utf8-key": (b'{"stop\xc3\x28Words":["a"]}', {400}, "malformed_payload"),
    "deep-arrays": (b"[" * 100_000 + b"]" * 100_000, {400}, "malformed_payload"),
    "deep-objects": (b'{"a":' * 40_000 + b"1" + b"}" * 40_000, {400}, "malformed_payload"),
    "deep-unclosed": (b"[" * 200_000, {400}, "malformed_payload"),
    "number-out-of-range": (b'{"pagination":{"maxTotalHits":1e999}}', {400}, "malformed_payload"),
    "huge-integer": (b'{"searchCutoffMs":123456789012345678901234567890}', {202, 400}, None),
    "huge-negative": (b'{"searchCutoffMs":-123456789012345678901234567890}', {202, 400}, None),
    "duplicate-keys": (b'{"stopWords":["a"],"stopWords":["b"]}', {202, 400}, None),
    "nul-in-string": (b'{"stopWords":["a\\u0000b"]}', {202, 400}, None),
    "lone-surrogate": (b'{"stopWords":["\\ud800"]}', {202, 400}, None),
    "bom": (b'\xef\xbb\xbf{"stopWords":["bom"]}', {202, 400}, None),
    "trailing-garbage": (b'{"stopWords":["a"]} x', {400}, "malformed_payload"),
    "not-an-object": (b'"stopWords"', {400}, None),
    "empty": (b"", {400}, "missing_payload"),
    "over-limit": (b'{"stopWords":["' + b"a" * (MAX_BODY_BYTES + 10) + b'"]}', {413}, None),
}


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest.mark.parametrize("case", list(BODY_CASES), ids=list(BODY_CASES))
def test_hostile_bodies_on_a_settings_write(w: World, case: str, framing: str) -> None:
    body, statuses, code = BODY_CASES[case]
    response = rawhttp.http1(w.envoy.port, settings_write(w.ok, body=body, chunked=framing == "chunked"))
    check_after(w, response, statuses=statuses, code=code, untouched=202 not in statuses)
    if response.status >= 400:
        assert_meili_shape(response)


def test_h2_hostile_header_values(w: World) -> None:
    response = rawhttp.http2(w.envoy.port, "GET", f"/indexes/{w.ok}/search?q=a",
                             [("authorization", f"Bearer {NODE_KEY}"), (b"x-miroir-min-settings-version", b"\xff")])
    check_after(w, response, statuses={400}, code="bad_request", untouched=True)


def test_h2_settings_write_with_bad_authorization(w: World) -> None:
    response = rawhttp.http2(w.envoy.port, "PATCH", f"/indexes/{w.ok}/settings",
                             [(b"authorization", b"Bearer \xff"), ("content-type", "application/json")],
                             b'{"stopWords":["h2"]}')
    check_after(w, response, statuses={403}, code="invalid_api_key", untouched=True)


def test_h2_percent_encoded_frozen_write(w: World) -> None:
    response = rawhttp.http2(w.envoy.port, "POST", f"/%69ndexes/{w.frozen}/documents",
                             [("authorization", f"Bearer {NODE_KEY}"), ("content-type", "application/json")],
                             b'[{"id":4}]')
    check_after(w, response, statuses={503}, code="miroir_index_frozen")


def test_h2_over_limit_body_without_content_length(w: World) -> None:
    body = b'{"stopWords":["' + b"a" * (MAX_BODY_BYTES + 10) + b'"]}'
    response = rawhttp.http2(w.envoy.port, "PATCH", f"/indexes/{w.ok}/settings",
                             [("authorization", f"Bearer {NODE_KEY}"), ("content-type", "application/json")], body)
    check_after(w, response, statuses={413}, untouched=True)


def test_admin_api_with_hostile_input_still_answers(w: World) -> None:
    for target, headers in [
        (f"/_miroir/indexes/{w.ok}%ff", [(b"Authorization", f"Bearer {ADMIN_KEY}".encode())]),
        (f"/_%6diroir/indexes/{w.ok}", [(b"Authorization", f"Bearer {ADMIN_KEY}".encode())]),
        (f"/_miroir/indexes/{w.ok}", [(b"Authorization", b"Bearer " + ADMIN_KEY.encode() + b"\xff")]),
    ]:
        response = rawhttp.http1(w.envoy.port, build_http1(b"GET", target.encode(), headers))
        check_after(w, response, statuses={200, 401, 403, 404})
        assert_meili_shape(response) if response.status != 200 else response.json()


def test_zz_envoy_log_has_no_wasm_panic(world: World) -> None:
    assert_every_worker_serves(world.envoy)
    assert_no_wasm_panic(world.envoy)
