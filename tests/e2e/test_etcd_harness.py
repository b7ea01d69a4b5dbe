"""The etcd part of the harness (etcd_cluster.py) really runs etcd: one member or three on loopback
ports, a killed member comes back on its ports and data dir and rejoins, two members down is no
quorum until they return; and the Envoy bootstrap with the `etcd` cluster is one Envoy accepts
(with the filter's `state` section for the etcd backend) and reaches the members. test_etcd.py's
scenarios build on these; if the harness silently ran no etcd, they could not be trusted."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Callable

import pytest
import requests

from conftest import filter_wasm_required
from harness import Envoy, EtcdCluster, Fleet, envoy_config, etcd_state, paths, wait_until
from test_envoy_configs import assert_valid

# A leader's death costs an election (election timeout 1 s, randomized up to 2 s) before writes work.
ELECTION_DEADLINE_SECONDS = 15.0


def test_etcd_binary_is_etcd_3_4_or_later() -> None:
    out = subprocess.run([str(paths.etcd_binary()), "--version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    version = out.stdout.split("etcd Version:")[1].split()[0]
    assert tuple(int(p) for p in version.split(".")[:2]) >= (3, 4), out.stdout


def test_one_member_reads_and_writes_through_the_json_gateway(make_etcd: Callable[..., EtcdCluster],
                                                             workdir: Path) -> None:
    etcd = make_etcd(1)
    assert etcd.running == [0] and len(set(etcd.client_ports + etcd.peer_ports)) == 2
    assert etcd.get("miroir/v1/nothing") is None
    first = etcd.put("miroir/v1/a", "one")
    second = etcd.put(b"miroir/v1/b\xff", b"\x00two")
    assert second == first + 1
    assert etcd.get("miroir/v1/a") == b"one"
    assert etcd.get_prefix("miroir/v1/") == {b"miroir/v1/a": b"one", b"miroir/v1/b\xff": b"\x00two"}
    assert etcd.get_prefix("miroir/v2/") == {}
    assert "miroir/v1/a = one" in etcd.dump()
    # The data dir is the test's, and each start has its own log.
    assert etcd.data_dir(0).is_relative_to(workdir) and etcd.data_dir(0).is_dir()
    assert "serving client traffic" in etcd.processes[0].log_text()  # type: ignore[union-attr]


def test_etcd_variables_from_the_environment_do_not_reach_members(make_etcd: Callable[..., EtcdCluster],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETCD_NAME", "not-from-the-harness")
    monkeypatch.setenv("ETCD_LISTEN_CLIENT_URLS", "http://127.0.0.1:1")
    etcd = make_etcd(1)
    assert etcd.put("k", "v") > 0 and "ETCD_NAME" not in etcd.env


def test_three_members_survive_one_kill_and_the_member_rejoins(make_etcd: Callable[..., EtcdCluster]) -> None:
    etcd = make_etcd(3)
    assert etcd.running == [0, 1, 2]
    etcd.put("miroir/v1/k", "before")
    leader = etcd.leader()
    assert leader in (0, 1, 2)
    # A member learns the leader from its heartbeats: wait for the third to have heard one.
    wait_until(lambda: all(etcd.status(i)["leader"] == etcd.status(leader)["leader"] for i in range(3)),
               ELECTION_DEADLINE_SECONDS, "every member to know the leader")
    assert all(etcd.leader(member=i) == leader for i in range(3)), "the members disagree on the leader"

    etcd.kill(leader)
    assert etcd.running == sorted({0, 1, 2} - {leader})
    survivor = etcd.running[0]
    wait_until(lambda: etcd.put("miroir/v1/k", "during", member=survivor), ELECTION_DEADLINE_SECONDS,
               "a write with one member of three down")
    assert etcd.get("miroir/v1/k", member=etcd.running[1]) == b"during"
    with pytest.raises(requests.ConnectionError):
        etcd.get("miroir/v1/k", member=leader)

    etcd.start_member(leader)  # same ports, same data dir
    assert etcd.running == [0, 1, 2]
    # A linearizable read on the restarted member: it rejoined and caught up.
    assert etcd.get("miroir/v1/k", member=leader) == b"during"
    assert etcd.processes[leader].log_path.name.endswith(".2.log")  # type: ignore[union-attr]


def test_two_members_down_is_no_quorum_until_they_return(make_etcd: Callable[..., EtcdCluster]) -> None:
    etcd = make_etcd(3)
    etcd.put("miroir/v1/k", "kept")
    # Committed means a quorum has it, not every member yet: wait until member 2 applied it.
    wait_until(lambda: etcd.get("miroir/v1/k", member=2, serializable=True) == b"kept", ELECTION_DEADLINE_SECONDS,
               "member 2 to apply the write")
    etcd.kill(0)
    etcd.kill(1)
    with pytest.raises(requests.RequestException):
        etcd.put("miroir/v1/k", "lost", member=2)
    # The last member still has its own copy (what a failure report reads).
    assert etcd.get("miroir/v1/k", member=2, serializable=True) == b"kept"
    assert "miroir/v1/k = kept" in etcd.dump()

    etcd.start_member(0, wait=False)  # alone with member 2: a quorum once both run
    etcd.start_member(1, wait=False)
    etcd.wait_healthy()
    wait_until(lambda: etcd.put("miroir/v1/k", "back", member=1), ELECTION_DEADLINE_SECONDS, "writes again")
    assert [etcd.get("miroir/v1/k", member=i) for i in range(3)] == [b"back"] * 3


# --- the Envoy side ------------------------------------------------------------------------------------

def etcd_bootstrap(wasm: Path | None, endpoints: list[tuple[str, int]]) -> dict:
    return envoy_config.bootstrap(envoy_config.nodes_on([7701, 7702, 7703]), wasm_path=wasm,
                                  plugin_overrides={"state": etcd_state()}, etcd_endpoints=endpoints)


def test_bootstrap_without_etcd_endpoints_has_no_etcd_cluster() -> None:
    config = envoy_config.bootstrap(envoy_config.nodes_on([7701]))
    assert "etcd" not in [c["name"] for c in config["static_resources"]["clusters"]]


def test_bootstrap_with_etcd_endpoints_has_the_etcd_cluster() -> None:
    config = etcd_bootstrap(None, [("127.0.0.1", 2379), ("127.0.0.1", 22379)])
    cluster = next(c for c in config["static_resources"]["clusters"] if c["name"] == "etcd")
    assert (cluster["type"], cluster["lb_policy"], cluster["connect_timeout"]) == ("STATIC", "ROUND_ROBIN", "0.25s")
    addresses = [e["endpoint"]["address"]["socket_address"] for e in cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]]
    assert addresses == [{"address": "127.0.0.1", "port_value": 2379}, {"address": "127.0.0.1", "port_value": 22379}]
    assert "http2_protocol_options" not in cluster and "typed_extension_protocol_options" not in cluster  # HTTP/1.1


@pytest.mark.parametrize("members", [1, 3])
def test_envoy_validates_the_filter_bootstrap_with_the_etcd_backend(members: int, tmp_path: Path) -> None:
    """`envoy --mode validate` loads the module and runs the filter's on_configure on the state section."""
    config = etcd_bootstrap(filter_wasm_required(), [("127.0.0.1", 23790 + i) for i in range(members)])
    path = tmp_path / "etcd.yaml"
    path.write_text(envoy_config.to_yaml(config))
    assert_valid(path)


def test_envoy_with_the_etcd_cluster_sees_every_member(make_etcd: Callable[..., EtcdCluster],
                                                      make_fleet: Callable[..., Fleet],
                                                      make_envoy: Callable[..., Envoy], filter_wasm: Path) -> None:
    etcd = make_etcd(3)
    fleet = make_fleet(3)
    envoy = make_envoy(fleet, wasm=filter_wasm, plugin_overrides={"state": etcd_state()}, etcd_endpoints=etcd.endpoints)
    clusters = requests.get(f"{envoy.admin_url}/clusters?format=json", timeout=5).json()["cluster_statuses"]
    etcd_status = next(c for c in clusters if c["name"] == "etcd")
    seen = sorted(h["address"]["socket_address"]["port_value"] for h in etcd_status["host_statuses"])
    assert seen == sorted(etcd.client_ports)
    assert requests.get(f"{envoy.url}/health", timeout=10).status_code == 200
    plugin = envoy.config_path.read_text()
    assert '"backend":"etcd"' in plugin and '"lease_ttl_ms":3000' in plugin, "the state section reaches the filter"


def test_free_ports_are_distinct_and_bindable() -> None:
    from etcd_cluster import free_ports

    ports = free_ports(6)
    assert len(set(ports)) == 6 and all(1024 <= p <= 65535 for p in ports)
