"""The harness itself: its fault, request-log and out-of-band helpers really act on the dev nodes,
and its Envoy helpers really read Envoy. Scenarios build on these; if one of them silently did
nothing, a scenario could pass without testing anything."""

from __future__ import annotations

from typing import Callable

import pytest
import requests

from harness import Envoy, EnvoyStartError, Fleet, WaitTimeout, wait_until


def test_down_fault_refuses_connections_until_cleared(fleet: Fleet) -> None:
    assert fleet.node_get(1, "/health").status_code == 200
    fleet.fault(1, down=True)
    assert fleet.faults(1) == {"down": True}
    with pytest.raises(requests.ConnectionError):
        fleet.node_get(1, "/health")
    assert fleet.node_get(0, "/health").status_code == 200, "a fault on node 1 must not touch node 0"
    fleet.clear(1)
    assert fleet.faults(1) == {}
    wait_until(lambda: fleet.node_get(1, "/health").status_code == 200, 10, "node 1 to listen again")


def test_status_fault_answers_with_that_status(fleet: Fleet) -> None:
    fleet.fault(2, status_5xx=503)
    assert fleet.node_get(2, "/health").status_code == 503
    fleet.clear(2)
    assert fleet.node_get(2, "/health").status_code == 200


def test_request_log_records_and_clears(fleet: Fleet) -> None:
    fleet.clear_requests(0)
    fleet.node_get(0, "/indexes/nothing/settings")
    logged = fleet.requests(0)
    assert [(r["method"], r["path"]) for r in logged] == [("GET", "/indexes/nothing/settings")]
    assert fleet.requests(1) == []
    fleet.clear_requests(0)
    assert fleet.requests(0) == []


def test_out_of_band_change_reaches_only_that_node(fleet: Fleet) -> None:
    for i in range(fleet.size):
        fleet.out_of_band(i, "books", {"searchableAttributes": ["title"]})
    fleet.out_of_band(2, "books", {"stopWords": ["the"]})
    assert fleet.node_settings(2, "books")["stopWords"] == ["the"]
    assert fleet.node_settings(0, "books")["stopWords"] == []
    # The control view is the node's own API view.
    assert fleet.node_get(2, "/indexes/books/settings").json() == fleet.node_settings(2, "books")
    fleet.remove_index_out_of_band(2, "books")
    assert fleet.node_get(2, "/indexes/books/settings").status_code == 404


def test_envoy_stats_and_prometheus(fleet: Fleet, baseline_envoy: Envoy, http: requests.Session) -> None:
    for _ in range(3):
        assert http.get(f"{baseline_envoy.url}/health", timeout=10).status_code == 200
    completed = baseline_envoy.wait_for_stat("http.meili.downstream_rq_completed", lambda v: v >= 3, timeout=20)
    assert completed >= 3
    assert baseline_envoy.stat("cluster.meili_all.upstream_rq_completed") >= 3
    assert baseline_envoy.stat("no.such.stat", default=None) is None
    with pytest.raises(WaitTimeout):
        baseline_envoy.wait_for_stat("http.meili.downstream_rq_completed", lambda v: v > 10**9, timeout=0.5)
    # Prometheus form: the stat prefix becomes a label, as dashboards expect.
    assert 'envoy_http_downstream_rq_completed{envoy_http_conn_manager_prefix="meili"}' in baseline_envoy.prometheus()


def test_every_node_has_its_own_cluster(fleet: Fleet, baseline_envoy: Envoy, http: requests.Session) -> None:
    """The routing header pins a request to the named node's cluster (the route the filter uses for
    X-Miroir-Min-Settings-Version); without the filter a client can set it itself."""
    for i in range(fleet.size):
        fleet.clear_requests(i)
    for i in (2, 0, 1):
        response = http.get(f"{baseline_envoy.url}/version", headers={"x-miroir-node": f"meili_node_{i}"}, timeout=10)
        assert response.status_code == 200
        assert [r["path"] for r in fleet.requests(i)] == ["/version"]
        fleet.clear_requests(i)


def test_envoy_refuses_to_start_on_a_broken_bootstrap(make_fleet: Callable[..., Fleet],
                                                      make_envoy: Callable[..., Envoy]) -> None:
    """Envoy.start() reports a dead Envoy at once, with its log, instead of waiting out its deadline."""
    fleet = make_fleet(1)
    envoy = make_envoy(fleet, start=False)
    envoy.config_path.write_text("static_resources: {listeners: [{name: x}]}\n")
    with pytest.raises(EnvoyStartError, match="exited with code"):
        envoy.start(timeout=30)
