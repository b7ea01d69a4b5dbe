"""The deployment files the project ships work, agree with each other and with the filter:

- the Envoy bootstraps under `envoy/` (compose, local example) have the shape the filter needs, and
  really run it: a settings write is held away from the router and commits, and Prometheus'
  endpoint shows the metrics with their labels;
- docker-compose.yml passes `docker-compose config` and wires the right files, services and keys:
  two gateways on one config, and the etcd their `state` names;
- the Prometheus config, alert rules (with their promtool unit tests) and the Grafana dashboard
  pass their tools and only name metrics the filter defines;
- the Istio manifests pass the Kubernetes/Istio schemas, their plugin configuration is accepted by
  the filter, their cluster names are the ones Istio gives the per-node Services and the etcd
  client Service, and the Envoy pieces their EnvoyFilter adds hold a settings write in the real
  Envoy;
- docs/operations.md names every configuration key, error code, header and metric.

External validators (docker-compose, promtool, the npm schema checker in deploy/istio/check) are
installed by `make deploy-tools`. A test whose validator is missing is skipped with the reason,
unless MIROIR_REQUIRE_DEPLOY_VALIDATORS=1 (set by `make test`), where it fails instead."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests
import yaml

from conftest import NODE_KEY, filter_wasm_required
from envoy_process import parse_prometheus_line
from harness import Envoy, Fleet, envoy_config, paths, wait_until

ROOT = paths.REPO_ROOT
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / "deploy" / ".env.example"
COMPOSE_BOOTSTRAP = ROOT / "envoy" / "compose" / "envoy.yaml"
LOCAL_BOOTSTRAP = ROOT / "envoy" / "local.yaml"
SHIPPED_BOOTSTRAPS = [COMPOSE_BOOTSTRAP, LOCAL_BOOTSTRAP]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
GRAFANA_DIR = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA_DIR / "dashboards" / "miroir.json"
ISTIO_DIR = ROOT / "deploy" / "istio"
ISTIO_CHECK_DIR = ISTIO_DIR / "check"
ISTIO_MANIFESTS = [ISTIO_DIR / "meilisearch.yaml", ISTIO_DIR / "etcd.yaml", ISTIO_DIR / "gateway.yaml",
                   ISTIO_DIR / "wasmplugin.yaml"]
OPERATIONS_DOC = ROOT / "docs" / "operations.md"
CORE_SRC = ROOT / "filter" / "src" / "core"

HOLD_HEADER = "x-miroir-hold"
BUFFER_FILTER = "envoy.filters.http.buffer"
WASM_FILTER = "envoy.filters.http.wasm"
ROUTER_FILTER = "envoy.filters.http.router"
TOOL_TIMEOUT_SECONDS = 60
TASK_TIMEOUT_SECONDS = 30


# --- helpers: validators ------------------------------------------------------------------------

def validators_required() -> bool:
    return os.environ.get("MIROIR_REQUIRE_DEPLOY_VALIDATORS") == "1"


def missing_validator(reason: str) -> None:
    """Skip (a developer's machine without the tools) or fail (`make test`, which installs them)."""
    message = f"{reason} (install with `make deploy-tools`)"
    if validators_required():
        pytest.fail(message)
    pytest.skip(message)


def compose_command() -> list[str]:
    """docker-compose v1 (Debian's package), else the `docker compose` plugin."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    missing_validator("neither docker-compose nor the docker compose plugin is installed")
    raise AssertionError("unreachable")


def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        missing_validator("promtool (Debian package `prometheus`) is not installed")
    return str(found)


def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT_SECONDS, **kwargs)


# --- helpers: reading the filter's source of truth ---------------------------------------------

def filter_metric_names() -> set[str]:
    names = set(re.findall(r'pub const [A-Z_]+: &str = "(miroir_[a-z_]+)";', (CORE_SRC / "metrics.rs").read_text()))
    assert len(names) >= 10, f"metric names not found in metrics.rs: {names}"
    return names


def filter_config_keys() -> set[str]:
    """Every key the filter's configuration parser allows (the lists given to deny_unknown_keys)."""
    source = (CORE_SRC / "config.rs").read_text()
    keys: set[str] = set()
    for allowed in re.findall(r"deny_unknown_keys\(.*?&\[(.*?)\]", source, re.DOTALL):
        keys.update(re.findall(r'"([a-z_]+)"', allowed))
    assert {"nodes", "settings_broadcast", "id", "interval_s"} <= keys, keys
    return keys


def filter_error_codes() -> set[str]:
    """Every error code the filter builds (`MeiliError::new(status, "code", ...)` in the core)."""
    codes: set[str] = set()
    for source in CORE_SRC.rglob("*.rs"):
        if source.name.endswith("_tests.rs") or source.name.startswith("fake_"):
            continue  # test-only modules
        shipped = source.read_text().split("#[cfg(test)]")[0]
        codes.update(re.findall(r'new\(\s*\d{3},\s*"([a-z_]+)"', shipped))
    assert "miroir_index_frozen" in codes, codes
    return codes


def promql_metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression reads (the miroir ones, histogram suffixes removed)."""
    names = set(re.findall(r"\b(miroir_[a-z_]+)", expr))
    return {re.sub(r"_(bucket|sum|count)$", "", n) for n in names}


# --- helpers: Envoy bootstraps --------------------------------------------------------------------

def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_all_yaml(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def connection_manager(bootstrap: dict[str, Any], listener_name: str = "meili") -> dict[str, Any]:
    listener = next(l for l in bootstrap["static_resources"]["listeners"] if l["name"] == listener_name)
    return listener["filter_chains"][0]["filters"][0]["typed_config"]


def wasm_plugin_config(bootstrap: dict[str, Any]) -> dict[str, Any]:
    filters = connection_manager(bootstrap)["http_filters"]
    wasm = next(f for f in filters if f["name"] == WASM_FILTER)
    return wasm["typed_config"]["config"]


def plugin_json(bootstrap: dict[str, Any]) -> dict[str, Any]:
    configuration = wasm_plugin_config(bootstrap)["configuration"]
    assert configuration["@type"] == "type.googleapis.com/google.protobuf.StringValue"
    return json.loads(configuration["value"])


def cluster_endpoints(bootstrap: dict[str, Any]) -> dict[str, list[tuple[str, int]]]:
    out: dict[str, list[tuple[str, int]]] = {}
    for cluster in bootstrap["static_resources"]["clusters"]:
        addresses = []
        for group in cluster["load_assignment"]["endpoints"]:
            for endpoint in group["lb_endpoints"]:
                socket_address = endpoint["endpoint"]["address"]["socket_address"]
                addresses.append((socket_address["address"], int(socket_address["port_value"])))
        out[cluster["name"]] = addresses
    return out


def free_port() -> int:
    """A currently free loopback port, for the one address that must be known before Envoy starts
    (the compose bootstrap's stats listener forwards to the admin port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def retarget_bootstrap(bootstrap: dict[str, Any], fleet: Fleet, admin_port: int) -> dict[str, Any]:
    """A shipped bootstrap pointed at this machine: the built module, ephemeral listener ports,
    the dev nodes in place of the shipped node addresses (matched by cluster, in node order).
    A bootstrap keeping its state in etcd runs here on the default backend (its `state` and its
    etcd cluster removed): these tests are about the Envoy pieces; the etcd backend has tests of
    its own, with a real etcd."""
    config = copy.deepcopy(bootstrap)
    plugin = plugin_json(config)
    state = plugin.pop("state", None)
    if state is not None and state.get("backend") == "etcd":
        clusters = config["static_resources"]["clusters"]
        clusters[:] = [c for c in clusters if c["name"] != state["cluster"]]
    wasm_plugin_config(config)["configuration"]["value"] = json.dumps(plugin)
    wasm = filter_wasm_required()
    wasm_plugin_config(config)["vm_config"]["code"]["local"]["filename"] = str(wasm)
    config["admin"]["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": admin_port}
    for listener in config["static_resources"]["listeners"]:
        listener["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": 0}
    shipped_nodes = plugin_json(config)["nodes"]
    shipped_to_local: dict[tuple[str, int], tuple[str, int]] = {}
    for node, local_port in zip(shipped_nodes, fleet.ports):
        (address,) = cluster_endpoints(config)[node["cluster"]]
        shipped_to_local[address] = ("127.0.0.1", local_port)
    for cluster in config["static_resources"]["clusters"]:
        for group in cluster["load_assignment"]["endpoints"]:
            for endpoint in group["lb_endpoints"]:
                socket_address = endpoint["endpoint"]["address"]["socket_address"]
                key = (socket_address["address"], int(socket_address["port_value"]))
                if key == ("127.0.0.1", 9901):  # the compose stats listener's admin cluster
                    socket_address["port_value"] = admin_port
                elif key in shipped_to_local:
                    socket_address["address"], socket_address["port_value"] = shipped_to_local[key]
                else:
                    raise AssertionError(f"cluster {cluster['name']}: endpoint {key} is not a configured node")
        cluster["type"] = "STATIC"
        cluster.pop("dns_lookup_family", None)
    # The plugin's authorities follow the nodes too (they are sent as :authority on callouts).
    plugin = plugin_json(config)
    for node, local_port in zip(plugin["nodes"], fleet.ports):
        node["authority"] = f"127.0.0.1:{local_port}"
    wasm_plugin_config(config)["configuration"]["value"] = json.dumps(plugin)
    return config


def listener_port(envoy: Envoy, name: str) -> int:
    statuses = requests.get(f"{envoy.admin_url}/listeners?format=json", timeout=5).json()
    for status in statuses.get("listener_statuses", []):
        if status.get("name") == name:
            return int(status["local_address"]["socket_address"]["port_value"])
    raise AssertionError(f"listener {name} not found: {statuses}")


@pytest.fixture
def start_envoy(workdir: Path) -> Iterator[Callable[[dict[str, Any]], Envoy]]:
    """Factory: start an Envoy on a bootstrap dict; stopped at teardown."""
    started: list[Envoy] = []

    def start(config: dict[str, Any]) -> Envoy:
        envoy = Envoy(config, workdir, env={"MIROIR_NODE_API_KEY": NODE_KEY, "MIROIR_ADMIN_API_KEY": "admin-key"})
        started.append(envoy)
        return envoy.start()

    yield start
    for envoy in started:
        envoy.stop()


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {NODE_KEY}", "Content-Type": "application/json"}


def create_index_everywhere(fleet: Fleet, uid: str) -> None:
    """The index exists on every node before the settings write (index creation is not broadcast)."""
    for i in range(fleet.size):
        response = requests.post(f"{fleet.node_url(i)}/indexes", json={"uid": uid}, headers=auth(), timeout=5)
        assert response.status_code == 202, response.text
    wait_until(lambda: all(fleet.node_get(i, f"/indexes/{uid}").status_code == 200 for i in range(fleet.size)),
               TASK_TIMEOUT_SECONDS, f"index {uid} on every node")


def upstream_requests(envoy: Envoy, cluster: str) -> int:
    return int(envoy.stat(f"cluster.{cluster}.upstream_rq_total", 0))


def settings_write_is_held_and_commits(envoy: Envoy, fleet: Fleet, uid: str) -> None:
    """The write reaches the nodes only through the filter's callouts (never through the router to
    `meili_all`, which would hand one node a half-read write), and commits on every node."""
    before = upstream_requests(envoy, "meili_all")
    response = requests.patch(f"{envoy.url}/indexes/{uid}/settings", json={"searchableAttributes": ["title"]},
                              headers=auth(), timeout=10)
    assert response.status_code == 202, response.text
    task_uid = response.json()["taskUid"]

    def finished() -> dict[str, Any] | None:
        task = requests.get(f"{envoy.url}/tasks/{task_uid}", headers=auth(), timeout=5).json()
        return task if task.get("status") in ("succeeded", "failed") else None

    task = wait_until(finished, TASK_TIMEOUT_SECONDS, f"task {task_uid}")
    assert task["status"] == "succeeded", task
    assert upstream_requests(envoy, "meili_all") == before, (
        "the settings write went through the router to meili_all: the hold route/buffer filter "
        f"did not hold it\n{envoy.log_excerpt()}")
    for i in range(fleet.size):
        assert fleet.node_settings(i, uid)["searchableAttributes"] == ["title"], f"node {i}"


def prometheus_samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [s for s in (parse_prometheus_line(line) for line in text.splitlines()) if s]


def wait_for_sample(fetch: Callable[[], str], name: str, labels: dict[str, str],
                    accept: Callable[[float], bool] = lambda value: True) -> float:
    """Wait until the exposition has `name{labels}` with an acceptable value (histograms are
    merged at Envoy's stats flush, every 5 s by default)."""
    def found() -> tuple[float] | None:
        for sample_name, sample_labels, sample_value in prometheus_samples(fetch()):
            if sample_name == name and sample_labels == labels and accept(sample_value):
                return (sample_value,)
        return None

    (value,) = wait_until(found, TASK_TIMEOUT_SECONDS, f"sample {name}{labels}")
    return value


# === Envoy bootstraps ==============================================================================

def test_stats_tags_and_memory_release_are_the_same_everywhere() -> None:
    """One set of tag regexes (envoy/stats_tags.yaml) and one allocator setting (the harness's,
    which the bench measures), in every shipped bootstrap and the Istio bootstrap override."""
    expected = envoy_config.load_stats_tags()
    release = envoy_config.MEMORY_ALLOCATOR_MANAGER
    for path in SHIPPED_BOOTSTRAPS:
        shipped = load_yaml(path)
        assert shipped["stats_config"]["stats_tags"] == expected, path
        assert shipped["memory_allocator_manager"] == release, path
    config_map = next(d for d in load_all_yaml(ISTIO_DIR / "gateway.yaml") if d["kind"] == "ConfigMap")
    override = json.loads(config_map["data"]["custom_bootstrap.json"])
    assert override == {"memory_allocator_manager": release, "stats_config": {"stats_tags": expected}}


@pytest.mark.parametrize("path", SHIPPED_BOOTSTRAPS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_bootstrap_has_the_shape_the_filter_needs(path: Path) -> None:
    bootstrap = load_yaml(path)
    plugin = plugin_json(bootstrap)
    endpoints = cluster_endpoints(bootstrap)
    node_addresses = []
    for node in plugin["nodes"]:
        # Each node's own cluster reaches exactly that node, at the authority the filter sends.
        (address,) = endpoints[node["cluster"]]
        assert f"{address[0]}:{address[1]}" == node["authority"], node
        node_addresses.append(address)
    assert sorted(endpoints["meili_all"]) == sorted(node_addresses)
    state = plugin.get("state", {"backend": "shared_data"})
    assert state["backend"] in ("shared_data", "etcd"), state
    if state["backend"] == "etcd":
        # The ledger's cluster exists, reaches etcd's client port (plain HTTP/1.1: no
        # http2_protocol_options), and is not a node's.
        assert state["cluster"] in endpoints, f"state.cluster {state['cluster']} is not a cluster"
        assert state["cluster"] not in {n["cluster"] for n in plugin["nodes"]} | {"meili_all"}
        assert endpoints[state["cluster"]] and all(port == 2379 for _, port in endpoints[state["cluster"]])
        etcd_cluster = next(c for c in bootstrap["static_resources"]["clusters"] if c["name"] == state["cluster"])
        assert "http2_protocol_options" not in etcd_cluster and "typed_extension_protocol_options" not in etcd_cluster
        assert state["prefix"].endswith("/") and state["lease_ttl_ms"] >= 1000, state

    hcm = connection_manager(bootstrap)
    assert [f["name"] for f in hcm["http_filters"]] == [WASM_FILTER, BUFFER_FILTER, ROUTER_FILTER]
    vm_config = wasm_plugin_config(bootstrap)["vm_config"]
    assert vm_config["runtime"] == "envoy.wasm.runtime.v8"
    assert {plugin.get("admin_api_key_env", "MIROIR_ADMIN_API_KEY"),
            plugin.get("node_api_key_env", "MIROIR_NODE_API_KEY")} <= set(vm_config["environment_variables"]["host_env_keys"])

    routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
    hold, pinned, reads, searches, catch_all = routes
    routing_header = plugin.get("routing_header", "x-miroir-node")
    assert hold["match"]["headers"] == [{"name": HOLD_HEADER, "present_match": True}]
    assert BUFFER_FILTER not in hold.get("typed_per_filter_config", {}), "the hold route must buffer"
    assert pinned["match"]["headers"] == [{"name": routing_header, "present_match": True}]
    assert pinned["route"]["cluster_header"] == routing_header
    assert catch_all["match"] == {"prefix": "/"} and catch_all["route"]["cluster"] == "meili_all"
    for route in (pinned, reads, searches, catch_all):
        assert route["typed_per_filter_config"][BUFFER_FILTER]["disabled"] is True
    for route in (reads, searches):
        assert route["route"]["cluster"] == "meili_all"

    # Buffers hold the largest settings body the filter accepts.
    max_body = plugin.get("max_body_bytes", 10485760)
    listener = next(l for l in bootstrap["static_resources"]["listeners"] if l["name"] == "meili")
    assert listener["per_connection_buffer_limit_bytes"] >= max_body
    buffer_filter = next(f for f in hcm["http_filters"] if f["name"] == BUFFER_FILTER)
    assert buffer_filter["typed_config"]["max_request_bytes"] >= max_body


def retry_conditions(route: dict[str, Any]) -> set[str]:
    return set(route["route"].get("retry_policy", {}).get("retry_on", "").split(",")) - {""}


@pytest.mark.parametrize("path", SHIPPED_BOOTSTRAPS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_bootstrap_fails_safe_like_the_test_harness(path: Path) -> None:
    """What the end-to-end tests run is what users run: the shipped bootstrap has the generator's
    wasm failure policy, read/write routes and retry policies, and meili_all's health checks (only
    the interval differs: 5 s shipped, 1 s in tests) and outlier detection."""
    shipped = load_yaml(path)
    generated = envoy_config.bootstrap(envoy_config.nodes_on([7701, 7702, 7703]), wasm_path=Path("m.wasm"))

    assert wasm_plugin_config(shipped)["failure_policy"] == "FAIL_RELOAD"
    assert wasm_plugin_config(shipped)["failure_policy"] == wasm_plugin_config(generated)["failure_policy"]

    def routes(bootstrap: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"match": r["match"], "retry_policy": r["route"].get("retry_policy")}
                for r in connection_manager(bootstrap)["route_config"]["virtual_hosts"][0]["routes"]]

    assert routes(shipped) == routes(generated)
    hold, pinned, reads, searches, writes = connection_manager(shipped)["route_config"]["virtual_hosts"][0]["routes"]
    # Writes are retried only when the node never got them; reads whatever happened.
    assert retry_conditions(writes) == {"connect-failure", "refused-stream"}
    assert {"connect-failure", "reset"} <= retry_conditions(reads) == retry_conditions(searches)
    assert retry_conditions(hold) == retry_conditions(pinned) == set()
    assert 1 <= writes["route"]["retry_policy"]["num_retries"] <= 3

    def meili_all(bootstrap: dict[str, Any]) -> dict[str, Any]:
        return next(c for c in bootstrap["static_resources"]["clusters"] if c["name"] == "meili_all")

    assert meili_all(shipped)["outlier_detection"] == meili_all(generated)["outlier_detection"]
    assert meili_all(shipped)["health_checks"] == meili_all(generated)["health_checks"]
    (check,) = meili_all(shipped)["health_checks"]
    assert check["http_health_check"]["path"] == "/health"
    assert check["interval"] == envoy_config.HEALTH_CHECK_INTERVAL == "5s"
    assert (check["unhealthy_threshold"], check["healthy_threshold"]) == (2, 1)
    for cluster in shipped["static_resources"]["clusters"]:
        if cluster["name"] != "meili_all":
            assert "health_checks" not in cluster and "outlier_detection" not in cluster, cluster["name"]


READS_WITH_A_NODE_DOWN = 60


def reads_with_node_1_down(envoy: Envoy, fleet: Fleet) -> list[int]:
    """Statuses of consecutive searches through `envoy` (GET and POST, as the SDKs send them) while
    node 1 refuses connections."""
    create_index_everywhere(fleet, "movies")
    session = requests.Session()
    session.headers.update(auth())
    assert session.get(f"{envoy.url}/indexes/movies/search?q=dune", timeout=10).status_code == 200
    fleet.fault(1, down=True)
    statuses = []
    for i in range(READS_WITH_A_NODE_DOWN):
        if i % 2:
            response = session.post(f"{envoy.url}/indexes/movies/search", json={"q": "dune"}, timeout=10)
        else:
            response = session.get(f"{envoy.url}/indexes/movies/search?q=dune", timeout=10)
        statuses.append(response.status_code)
    session.close()
    return statuses


@pytest.mark.parametrize("source", ["harness", "envoy/local.yaml"])
def test_reads_skip_a_dead_node(source: str, make_fleet: Callable[..., Fleet],
                                start_envoy: Callable[[dict[str, Any]], Envoy]) -> None:
    """With one of three nodes down, every read through the gateway succeeds: the first failures
    on the dead node are retried on another one, then the node is ejected (outlier detection) and
    marked unhealthy (active health check)."""
    fleet = make_fleet(3)
    if source == "harness":
        config = envoy_config.bootstrap(fleet.envoy_nodes, wasm_path=filter_wasm_required(), access_log=True,
                                        health_check_interval="1s")
    else:
        config = retarget_bootstrap(load_yaml(ROOT / source), fleet, 0)
    envoy = start_envoy(config)

    statuses = reads_with_node_1_down(envoy, fleet)

    assert statuses == [200] * READS_WITH_A_NODE_DOWN, {s: statuses.count(s) for s in set(statuses)}
    assert envoy.stat("cluster.meili_all.upstream_rq_retry_success") >= 1, "the dead node was never tried"
    assert envoy.stat("cluster.meili_all.outlier_detection.ejections_enforced_total") >= 1
    if source == "harness":  # 1 s health checks: the node is marked unhealthy within seconds
        envoy.wait_for_stat("cluster.meili_all.membership_healthy", lambda v: v == 2, timeout=15)
        fleet.clear(1)
        envoy.wait_for_stat("cluster.meili_all.membership_healthy", lambda v: v == 3, timeout=15)


def test_without_retries_and_ejection_reads_fail_on_a_dead_node(
        make_fleet: Callable[..., Fleet], start_envoy: Callable[[dict[str, Any]], Envoy]) -> None:
    """Control for the test above: the same Envoy without retry policies, health checks and outlier
    detection answers 503 to the reads that land on the dead node (about one in three)."""
    fleet = make_fleet(3)
    config = envoy_config.bootstrap(fleet.envoy_nodes, wasm_path=filter_wasm_required(), access_log=True)
    for cluster in config["static_resources"]["clusters"]:
        cluster.pop("health_checks", None)
        cluster.pop("outlier_detection", None)
    for route in connection_manager(config)["route_config"]["virtual_hosts"][0]["routes"]:
        route["route"].pop("retry_policy", None)
    envoy = start_envoy(config)

    statuses = reads_with_node_1_down(envoy, fleet)

    assert statuses.count(503) >= READS_WITH_A_NODE_DOWN // 6, {s: statuses.count(s) for s in set(statuses)}


def test_compose_bootstrap_runs_the_filter_and_serves_labelled_metrics(
        make_fleet: Callable[..., Fleet], start_envoy: Callable[[dict[str, Any]], Envoy]) -> None:
    """envoy/compose/envoy.yaml, with only its addresses moved to this machine: a settings write is
    held and commits; Prometheus' endpoint (the stats-only listener) shows the metrics with their
    labels; the rest of the admin API is not reachable through that listener."""
    fleet = make_fleet(3)
    create_index_everywhere(fleet, "movies_v2-x")
    envoy = start_envoy(retarget_bootstrap(load_yaml(COMPOSE_BOOTSTRAP), fleet, free_port()))
    settings_write_is_held_and_commits(envoy, fleet, "movies_v2-x")

    stats_url = f"http://127.0.0.1:{listener_port(envoy, 'stats')}"
    scrape = lambda: requests.get(f"{stats_url}/stats/prometheus", timeout=5).text  # noqa: E731
    index = {"index": "movies_v2-x"}
    assert wait_for_sample(scrape, "miroir_settings_version", index) == 1
    assert wait_for_sample(scrape, "miroir_settings_broadcast_total", {**index, "result": "succeeded"}) == 1
    assert wait_for_sample(scrape, "miroir_settings_broadcast_duration_ms_count", index, lambda v: v > 0) == 1
    samples = prometheus_samples(scrape())
    assert ("miroir_settings_divergence", index, 0.0) in samples
    assert ("miroir_settings_broadcast_phase", index, 0.0) in samples
    # No miroir stat keeps a label folded into its name (a tag regex that did not match).
    assert not [s for s in samples if re.match(r"miroir_.*_(index|node|result)_", s[0])], samples

    for method, path in [("GET", "/server_info"), ("POST", "/quitquitquit"), ("GET", "/stats")]:
        response = requests.request(method, f"{stats_url}{path}", timeout=5)
        assert response.status_code == 404, (method, path, response.status_code)
    assert requests.get(f"{envoy.admin_url}/ready", timeout=5).text.strip() == "LIVE"


def test_local_example_bootstrap_runs_the_filter(
        make_fleet: Callable[..., Fleet], start_envoy: Callable[[dict[str, Any]], Envoy]) -> None:
    fleet = make_fleet(3)
    create_index_everywhere(fleet, "books")
    envoy = start_envoy(retarget_bootstrap(load_yaml(LOCAL_BOOTSTRAP), fleet, 0))
    settings_write_is_held_and_commits(envoy, fleet, "books")
    assert wait_for_sample(envoy.prometheus, "miroir_settings_version", {"index": "books"}) == 1


def test_local_example_names_the_module_make_build_produces() -> None:
    filename = wasm_plugin_config(load_yaml(LOCAL_BOOTSTRAP))["vm_config"]["code"]["local"]["filename"]
    assert filename == "target/wasm32-wasip1/release/miroir_filter.wasm"  # what `make build` writes
    assert load_yaml(LOCAL_BOOTSTRAP)["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"


# === docker-compose ================================================================================

def compose_config(*args: str, env_file: Path | None) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` with an environment free of the keys (so only the env file sets them)."""
    command = compose_command() + ["-f", str(COMPOSE_FILE), "--project-directory", str(ROOT)]
    if env_file is not None:
        command += ["--env-file", str(env_file)]
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith(("MEILI_", "MIROIR_", "GRAFANA_"))}
    return run(command + ["config", *args], env=clean_env, cwd=ROOT)


def test_compose_file_passes_docker_compose_config() -> None:
    result = compose_config(env_file=ENV_EXAMPLE)
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert set(resolved["services"]) >= {"envoy", "envoy-b", "etcd", "meili-0", "meili-1", "meili-2", "prometheus"}
    env_example = dict(line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines()
                       if line and not line.startswith("#"))
    assert resolved["services"]["meili-1"]["environment"]["MEILI_MASTER_KEY"] == env_example["MEILI_MASTER_KEY"]
    for gateway in ("envoy", "envoy-b"):
        assert resolved["services"][gateway]["environment"]["MIROIR_NODE_API_KEY"] == env_example["MIROIR_NODE_API_KEY"]


def test_compose_refuses_to_start_without_the_keys() -> None:
    result = compose_config(env_file=None)
    assert result.returncode != 0
    assert re.search(r"MEILI_MASTER_KEY|MIROIR_NODE_API_KEY", result.stderr + result.stdout), result.stderr


def compose_gateways(services: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The compose services that run Envoy with the filter."""
    return {n: s for n, s in services.items() if s["image"].startswith("envoyproxy/envoy:")}


def test_compose_wiring_matches_the_envoy_and_prometheus_configs() -> None:
    compose = load_yaml(COMPOSE_FILE)
    services = compose["services"]
    for name, service in services.items():
        image = service["image"]
        assert re.search(r":v?\d+\.\d+\.\d+$", image), f"{name}: image {image} is not pinned to a version"
    gateways = compose_gateways(services)
    assert set(gateways) == {"envoy", "envoy-b"}, "two gateways"
    envoy = services["envoy"]
    assert envoy["image"] == "envoyproxy/envoy:v1.40.0"
    # The second gateway is the first one on another host port: same image, config, module, keys.
    for key in ("image", "command", "environment", "volumes", "depends_on"):
        assert services["envoy-b"][key] == envoy[key], key
    assert services["envoy-b"]["ports"] != envoy["ports"]

    bootstrap = load_yaml(COMPOSE_BOOTSTRAP)
    binds = {v["target"]: v for v in envoy["volumes"]}
    module_path = wasm_plugin_config(bootstrap)["vm_config"]["code"]["local"]["filename"]
    assert (ROOT / binds[module_path]["source"]).resolve() == (
        ROOT / "target" / "wasm32-wasip1" / "release" / "miroir_filter.wasm").resolve()
    config_target = envoy["command"][envoy["command"].index("-c") + 1]
    assert (ROOT / binds[config_target]["source"]).resolve() == COMPOSE_BOOTSTRAP
    assert all(v["read_only"] for v in binds.values())
    # Keys the filter reads are in Envoy's environment; nothing is published beyond loopback.
    assert set(wasm_plugin_config(bootstrap)["vm_config"]["environment_variables"]["host_env_keys"]) <= set(envoy["environment"])
    published = []
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
            published.append(int(str(port).split(":")[1]))
    assert len(published) == len(set(published)), f"a host port is published twice: {published}"

    # Every node address in the bootstrap is a compose service on Meilisearch's port.
    meili_services = {n for n, s in services.items() if s["image"].startswith("getmeili/meilisearch:")}
    assert len({services[n]["image"] for n in meili_services}) == 1, "all nodes run the same version"
    for node in plugin_json(bootstrap)["nodes"]:
        (address,) = cluster_endpoints(bootstrap)[node["cluster"]]
        assert address[0] in meili_services and address[1] == 7700, node

    # Prometheus scrapes every gateway's stats listener, with the rules mounted where it loads them.
    prometheus_config = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    (job,) = prometheus_config["scrape_configs"]
    stats_listener = next(l for l in bootstrap["static_resources"]["listeners"] if l["name"] == "stats")
    stats_port = stats_listener["address"]["socket_address"]["port_value"]
    assert sorted(job["static_configs"][0]["targets"]) == sorted(f"{name}:{stats_port}" for name in gateways)
    assert job["metrics_path"] == "/stats/prometheus"
    assert set(gateways) <= set(services["prometheus"]["depends_on"])
    prometheus_binds = {v["target"]: v["source"] for v in services["prometheus"]["volumes"] if isinstance(v, dict)}
    for rule_file in prometheus_config["rule_files"]:
        assert (ROOT / prometheus_binds[f"/etc/prometheus/{rule_file}"]).resolve() == PROMETHEUS_DIR / rule_file
    # Every bind-mounted file or directory except the built module is in the repository.
    for name, service in services.items():
        for volume in service.get("volumes", []):
            if isinstance(volume, dict) and volume["type"] == "bind" and not volume["source"].endswith(".wasm"):
                assert (ROOT / volume["source"]).exists(), f"{name}: {volume['source']} does not exist"


def etcd_flags(argv: list[str]) -> dict[str, str]:
    """`--name=value` arguments of an etcd command line."""
    return dict(a[2:].split("=", 1) for a in argv if a.startswith("--") and "=" in a)


def test_compose_etcd_is_the_state_the_gateways_share() -> None:
    """Both gateways keep their state in the compose file's etcd: the bootstrap's `state` names its
    cluster, the cluster reaches the etcd service's client port, etcd is the official image (3.5,
    whose JSON gateway the filter speaks), keeps its data in a volume, is health-checked with
    etcdctl, starts before the gateways, and is not published (it holds clients' credentials)."""
    services = load_yaml(COMPOSE_FILE)["services"]
    bootstrap = load_yaml(COMPOSE_BOOTSTRAP)
    state = plugin_json(bootstrap)["state"]
    assert state == {"backend": "etcd", "cluster": "etcd", "prefix": "miroir/v1/", "lease_ttl_ms": 10000}
    ((host, port),) = cluster_endpoints(bootstrap)[state["cluster"]]
    etcd = services[host]
    assert re.fullmatch(r"(gcr\.io/etcd-development/etcd|quay\.io/coreos/etcd):v3\.5\.\d+", etcd["image"]), etcd["image"]
    flags = etcd_flags(etcd["command"])
    assert flags["listen-client-urls"].endswith(f":{port}") and flags["advertise-client-urls"] == f"http://{host}:{port}"
    assert flags["initial-cluster"] == f"{flags['name']}={flags['initial-advertise-peer-urls']}"
    assert flags.get("enable-grpc-gateway", "true") == "true", "the filter speaks the JSON gateway"
    assert int(flags["max-request-bytes"]) > plugin_json(bootstrap).get("max_body_bytes", 10485760)
    (data,) = etcd["volumes"]
    volume, target = data.split(":")[:2]
    assert volume in load_yaml(COMPOSE_FILE)["volumes"] and target == flags["data-dir"]
    test = etcd["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1].endswith("etcdctl") and test[-2:] == ["endpoint", "health"]
    assert "ports" not in etcd, "etcd is reached by the gateways only"
    for name, gateway in compose_gateways(services).items():
        assert gateway["depends_on"][host] == {"condition": "service_healthy"}, name


# === Prometheus ====================================================================================

def test_prometheus_config_and_rules_pass_promtool(tmp_path: Path) -> None:
    tool = promtool()
    result = run([tool, "check", "config", str(PROMETHEUS_DIR / "prometheus.yml")])
    assert result.returncode == 0, result.stdout + result.stderr
    # The Istio scrape job is a fragment: checked inside a config of its own.
    fragment = load_yaml(PROMETHEUS_DIR / "istio-scrape.yml")
    shutil.copy(PROMETHEUS_DIR / "rules.yml", tmp_path / "rules.yml")
    (tmp_path / "istio.yml").write_text(yaml.safe_dump({**fragment, "rule_files": ["rules.yml"]}))
    result = run([tool, "check", "config", str(tmp_path / "istio.yml")])
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_unit_tests_pass() -> None:
    result = run([promtool(), "test", "rules", str(PROMETHEUS_DIR / "rules_test.yml")])
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_unit_tests_catch_a_broken_rule(tmp_path: Path) -> None:
    """The promtool tests above can fail: the divergence alert with a wrong threshold does."""
    tool = promtool()
    rules = (PROMETHEUS_DIR / "rules.yml").read_text()
    broken = rules.replace("expr: miroir_settings_divergence > 0", "expr: miroir_settings_divergence > 1")
    assert broken != rules
    (tmp_path / "rules.yml").write_text(broken)
    shutil.copy(PROMETHEUS_DIR / "rules_test.yml", tmp_path / "rules_test.yml")
    result = run([tool, "test", "rules", str(tmp_path / "rules_test.yml")])
    assert result.returncode != 0
    assert "MiroirSettingsDivergence" in result.stdout + result.stderr


def test_alert_rules_cover_the_required_alerts_and_known_metrics() -> None:
    rules = {r["alert"]: r for g in load_yaml(PROMETHEUS_DIR / "rules.yml")["groups"] for r in g["rules"]}
    assert rules["MiroirSettingsDivergence"]["expr"].strip() == "miroir_settings_divergence > 0"
    assert "miroir_settings_broadcast_phase == 5" in rules["MiroirIndexFrozen"]["expr"]
    assert "miroir_settings_drift_detected_total" in rules["MiroirSettingsDriftRate"]["expr"]
    known = filter_metric_names()
    for name, rule in rules.items():
        assert promql_metric_names(rule["expr"]) <= known, f"{name} reads an unknown metric"
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name


# === Grafana =======================================================================================

def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_dashboard_shows_the_filter_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "miroir-settings"
    used: set[str] = set()
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            used |= promql_metric_names(target["expr"])
    known = filter_metric_names()
    assert used <= known, f"unknown metrics: {used - known}"
    assert used == known, f"metrics without a panel: {known - used}"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """Each panel query, with Grafana's variables filled in, parses as PromQL (checked by promtool
    as a recording rule)."""
    tool = promtool()
    rules = []
    for i, expr in enumerate(dashboard_expressions()):
        concrete = expr.replace("$__rate_interval", "5m").replace("$index", ".*")
        rules.append({"record": f"dashboard:query_{i}", "expr": concrete})
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run([tool, "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisioning_matches_compose_and_dashboard() -> None:
    (datasource,) = load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    dashboard = json.loads(DASHBOARD.read_text())
    variable = next(v for v in dashboard["templating"]["list"] if v["name"] == "datasource")
    assert variable["current"]["value"] == datasource["uid"]
    assert datasource["url"] == "http://prometheus:9090"
    (provider,) = load_yaml(GRAFANA_DIR / "provisioning" / "dashboards" / "miroir.yml")["providers"]
    grafana = load_yaml(COMPOSE_FILE)["services"]["grafana"]
    mounts = {v["target"]: v["source"] for v in grafana["volumes"]}
    assert (ROOT / mounts[provider["options"]["path"]]).resolve() == DASHBOARD.parent


# === Istio =========================================================================================

def istio_documents() -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> document, across the Istio manifests."""
    documents: dict[tuple[str, str], dict[str, Any]] = {}
    for path in ISTIO_MANIFESTS:
        for doc in load_all_yaml(path):
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in documents, f"duplicate {key}"
            documents[key] = doc
    return documents


def wasm_plugin() -> dict[str, Any]:
    return istio_documents()[("WasmPlugin", "miroir")]


def test_istio_manifests_pass_the_kubernetes_and_istio_schemas() -> None:
    if not shutil.which("node") or not (ISTIO_CHECK_DIR / "node_modules").is_dir():
        missing_validator("the schema checker in deploy/istio/check is not installed (node, npm ci)")
    result = run(["node", "validate.mjs", *[str(p) for p in ISTIO_MANIFESTS]], cwd=ISTIO_CHECK_DIR)
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(reports) == sum(len(load_all_yaml(p)) for p in ISTIO_MANIFESTS)
    assert all(r["errors"] == [] for r in reports), reports


def test_istio_schema_check_rejects_a_broken_manifest(tmp_path: Path) -> None:
    """The check above can fail: an unknown failStrategy and a kind without a schema are refused."""
    if not shutil.which("node") or not (ISTIO_CHECK_DIR / "node_modules").is_dir():
        missing_validator("the schema checker in deploy/istio/check is not installed (node, npm ci)")
    broken = copy.deepcopy(wasm_plugin())
    broken["spec"]["failStrategy"] = "FAIL_SOMETIMES"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump_all([broken, {"apiVersion": "example.com/v1", "kind": "Widget",
                                                 "metadata": {"name": "w"}}]))
    result = run(["node", "validate.mjs", str(path)], cwd=ISTIO_CHECK_DIR)
    assert result.returncode == 1, result.stdout + result.stderr
    errors = [json.loads(line)["errors"] for line in result.stdout.splitlines()]
    assert any("failStrategy" in e for e in errors[0]), errors
    assert errors[1] == ["no schema known for example.com/v1 Widget"]


def test_wasm_plugin_settings() -> None:
    spec = wasm_plugin()["spec"]
    assert spec["url"].startswith("oci://")
    # Fails closed and replaces a crashed VM (Envoy's FAIL_RELOAD); never FAIL_OPEN.
    assert spec["failStrategy"] == "FAIL_RELOAD"
    assert spec["phase"] == "STATS", "after Istio's authn/authz filters"
    plugin = spec["pluginConfig"]
    env = {e["name"]: e for e in spec["vmConfig"]["env"]}
    for key_env in (plugin.get("admin_api_key_env", "MIROIR_ADMIN_API_KEY"),
                    plugin.get("node_api_key_env", "MIROIR_NODE_API_KEY")):
        assert env[key_env]["valueFrom"] == "HOST"
    deployment = istio_documents()[("Deployment", "miroir-gateway")]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    container = next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "istio-proxy")
    assert set(env) <= {e["name"] for e in container["env"]}, "keys must be in the gateway's environment"


def test_wasm_plugin_configuration_is_accepted_by_the_filter(tmp_path: Path) -> None:
    """The pluginConfig, as Istio hands it over (JSON), passes the filter's own on_configure in
    Envoy's validate mode; an unknown key in it would not (the check can fail)."""
    from test_envoy_configs import validate

    plugin = wasm_plugin()["spec"]["pluginConfig"]

    def bootstrap_with(config: dict[str, Any]) -> Path:
        bootstrap = load_yaml(LOCAL_BOOTSTRAP)
        wasm_plugin_config(bootstrap)["vm_config"]["code"]["local"]["filename"] = str(filter_wasm_required())
        wasm_plugin_config(bootstrap)["configuration"]["value"] = json.dumps(config)
        path = tmp_path / f"istio-plugin-{len(list(tmp_path.iterdir()))}.yaml"
        path.write_text(yaml.safe_dump(bootstrap))
        return path

    accepted = validate(bootstrap_with(plugin))
    assert accepted.returncode == 0, accepted.stdout[-3000:] + accepted.stderr[-3000:]
    refused = validate(bootstrap_with({**plugin, "settings_broadcast": {"bogus": 1}}))
    assert refused.returncode != 0
    assert "settings_broadcast.bogus" in refused.stdout + refused.stderr


def test_istio_cluster_names_are_those_of_the_per_node_services() -> None:
    documents = istio_documents()
    statefulset = documents[("StatefulSet", "meili")]
    replicas = statefulset["spec"]["replicas"]
    pod_labels = statefulset["spec"]["template"]["metadata"]["labels"]
    pods = {f"{statefulset['metadata']['name']}-{i}" for i in range(replicas)}
    plugin = wasm_plugin()["spec"]["pluginConfig"]
    assert len(plugin["nodes"]) == replicas

    node_pods = []
    for node in plugin["nodes"]:
        match = re.fullmatch(r"outbound\|(\d+)\|\|([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local", node["cluster"])
        assert match, f"{node['cluster']} is not an Istio outbound cluster name"
        port, service_name, namespace = int(match[1]), match[2], match[3]
        service = documents[("Service", service_name)]
        assert service["metadata"]["namespace"] == namespace
        assert service["spec"].get("clusterIP") != "None", "headless services become ORIGINAL_DST clusters"
        assert port in [p["port"] for p in service["spec"]["ports"]]
        selector = service["spec"]["selector"]
        (pod,) = [p for p in pods if selector.items() <= {**pod_labels, "statefulset.kubernetes.io/pod-name": p}.items()]
        node_pods.append(pod)
        assert node["authority"] == f"{service_name}.{namespace}.svc.cluster.local:{port}"
    assert sorted(node_pods) == sorted(pods), "every node reaches its own pod"

    # Pinned reads: a route per node keyed by that node's cluster name, to that node's Service.
    virtual_service = documents[("VirtualService", "miroir-gateway")]
    http = virtual_service["spec"]["http"]
    routing_header = plugin.get("routing_header", "x-miroir-node")
    assert http[0]["name"] == "miroir-hold" and http[0]["match"] == [{"headers": {HOLD_HEADER: {}}}]
    for node in plugin["nodes"]:
        route = next(r for r in http if r.get("match") == [{"headers": {routing_header: {"exact": node["cluster"]}}}])
        (destination,) = route["route"]
        host, port = node["authority"].rsplit(":", 1)
        assert destination["destination"] == {"host": host, "port": {"number": int(port)}}
    assert "match" not in http[-1], "the catch-all route comes last"
    all_nodes = documents[("Service", http[-1]["route"][0]["destination"]["host"].split(".")[0])]
    assert all_nodes["spec"]["selector"].items() <= pod_labels.items()


def test_istio_reads_skip_a_dead_node_and_writes_are_not_replayed() -> None:
    """The Istio counterpart of the shipped bootstraps' meili_all settings: outlier detection on the
    all-nodes Service, retries on the read route (reset included) and on the catch-all only for
    requests a node never received. Active health checking is the pods' readiness probe."""
    documents = istio_documents()
    http = documents[("VirtualService", "miroir-gateway")]["spec"]["http"]
    all_nodes_host = http[-1]["route"][0]["destination"]["host"]
    rule = next(d for (kind, _), d in documents.items() if kind == "DestinationRule" and d["spec"]["host"] == all_nodes_host)
    outlier = rule["spec"]["trafficPolicy"]["outlierDetection"]
    assert outlier["consecutiveGatewayErrors"] == envoy_config.OUTLIER_DETECTION["consecutive_gateway_failure"]
    assert outlier["consecutive5xxErrors"] == envoy_config.OUTLIER_DETECTION["consecutive_5xx"]
    assert outlier["maxEjectionPercent"] == envoy_config.OUTLIER_DETECTION["max_ejection_percent"]

    reads = next(r for r in http if r.get("name") == "miroir-reads")
    writes = http[-1]
    assert reads["route"] == writes["route"], "reads and writes both go to every node"
    assert {"method": {"regex": envoy_config.READ_METHODS_REGEX}} in reads["match"]
    assert {"method": {"exact": "POST"}, "uri": {"regex": envoy_config.SEARCH_PATH_REGEX}} in reads["match"]
    assert {"connect-failure", "reset"} <= set(reads["retries"]["retryOn"].split(","))
    assert set(writes["retries"]["retryOn"].split(",")) == {"connect-failure", "refused-stream"}
    assert 1 <= writes["retries"]["attempts"] <= 3

    statefulset = documents[("StatefulSet", "meili")]
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == envoy_config.HEALTH_CHECK_PATH


def istio_shaped_bootstrap(fleet: Fleet, *, with_envoy_filter: bool) -> dict[str, Any]:
    """Envoy as the Istio gateway sees it: the generator's listener, routes and clusters without any
    buffer configuration, the hold route named like the VirtualService's, plus (when asked) every
    patch of the shipped EnvoyFilter applied the way Istio applies it."""
    config = envoy_config.bootstrap(fleet.envoy_nodes, wasm_path=filter_wasm_required(), access_log=True)
    listener = config["static_resources"]["listeners"][0]
    listener.pop("per_connection_buffer_limit_bytes")
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["http_filters"] = [f for f in hcm["http_filters"] if f["name"] != BUFFER_FILTER]
    virtual_host = hcm["route_config"]["virtual_hosts"][0]
    for route in virtual_host["routes"]:
        route.pop("typed_per_filter_config", None)
    virtual_host["routes"][0]["name"] = "miroir-hold"
    if not with_envoy_filter:
        return config
    envoy_filter = istio_documents()[("EnvoyFilter", "miroir-gateway")]
    applied = []
    for patch in envoy_filter["spec"]["configPatches"]:
        kind, operation, value = patch["applyTo"], patch["patch"]["operation"], patch["patch"]["value"]
        if kind == "HTTP_FILTER" and operation == "INSERT_BEFORE":
            assert patch["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"] == ROUTER_FILTER
            hcm["http_filters"].insert(len(hcm["http_filters"]) - 1, copy.deepcopy(value))
        elif kind == "VIRTUAL_HOST" and operation == "MERGE":
            virtual_host.update(copy.deepcopy(value))
        elif kind == "HTTP_ROUTE" and operation == "MERGE":
            name = patch["match"]["routeConfiguration"]["vhost"]["route"]["name"]
            next(r for r in virtual_host["routes"] if r.get("name") == name).update(copy.deepcopy(value))
        elif kind == "LISTENER" and operation == "MERGE":
            listener.update(copy.deepcopy(value))
        else:
            raise AssertionError(f"this test does not know how to apply {kind}/{operation}")
        applied.append(kind)
    assert sorted(applied) == ["HTTP_FILTER", "HTTP_ROUTE", "LISTENER", "VIRTUAL_HOST"]
    return config


def test_istio_envoy_filter_holds_settings_writes_in_envoy(
        make_fleet: Callable[..., Fleet], start_envoy: Callable[[dict[str, Any]], Envoy]) -> None:
    """The EnvoyFilter's patches, applied to the gateway's shape, make the real Envoy hold a
    settings write, and a document write too (mirror mode: the filter sends it to every node, the
    router never sees it). Istio's own merging is not run here."""
    fleet = make_fleet(3)
    create_index_everywhere(fleet, "movies")
    envoy = start_envoy(istio_shaped_bootstrap(fleet, with_envoy_filter=True))
    settings_write_is_held_and_commits(envoy, fleet, "movies")
    before = upstream_requests(envoy, "meili_all")
    response = requests.post(f"{envoy.url}/indexes/movies/documents", json=[{"id": 1, "title": "Dune"}],
                             headers=auth(), timeout=10)
    assert response.status_code == 202, response.text
    assert response.json()["taskUid"] >= 2**30, "the filter's task, not one node's"
    assert upstream_requests(envoy, "meili_all") == before, "the held write never reaches the router"
    wait_until(lambda: all(fleet.node_get(i, "/indexes/movies/documents/1").status_code == 200
                           for i in range(3)), 20, "the document on every node")


def test_without_the_envoy_filter_a_settings_write_is_not_held(
        make_fleet: Callable[..., Fleet], start_envoy: Callable[[dict[str, Any]], Envoy]) -> None:
    """Control for the test above: without the buffer filter the router starts forwarding the write,
    and the hold check notices."""
    fleet = make_fleet(3)
    create_index_everywhere(fleet, "movies")
    envoy = start_envoy(istio_shaped_bootstrap(fleet, with_envoy_filter=False))
    with pytest.raises(AssertionError, match="did not hold it"):
        settings_write_is_held_and_commits(envoy, fleet, "movies")


def test_istio_gateway_settings() -> None:
    documents = istio_documents()
    deployment = documents[("Deployment", "miroir-gateway")]
    backend = wasm_plugin()["spec"]["pluginConfig"].get("state", {}).get("backend", "shared_data")
    if backend == "shared_data":  # state in one Envoy's memory
        assert deployment["spec"]["replicas"] == 1, "one gateway for writes"
        assert deployment["spec"]["strategy"]["type"] == "Recreate", "never two gateways during a rollout"
    else:  # shared state: several replicas, and a rollout never takes the last one away
        assert deployment["spec"]["replicas"] >= 2
        strategy = deployment["spec"]["strategy"]
        assert strategy["type"] == "RollingUpdate" and strategy["rollingUpdate"]["maxUnavailable"] == 0
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["inject.istio.io/templates"] == "gateway"
    proxy_config = yaml.safe_load(annotations["proxy.istio.io/config"])
    prefixes = proxy_config["proxyStatsMatcher"]["inclusionPrefixes"]
    for metric in filter_metric_names():
        assert any(f"wasmcustom.{metric}".startswith(p) for p in prefixes), metric
    config_map = documents[("ConfigMap", annotations["sidecar.istio.io/bootstrapOverride"])]
    assert "custom_bootstrap.json" in config_map["data"]
    gateway = documents[("Gateway", "miroir-gateway")]
    assert gateway["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    (server,) = gateway["spec"]["servers"]
    envoy_filter = documents[("EnvoyFilter", "miroir-gateway")]
    for patch in envoy_filter["spec"]["configPatches"]:
        match = patch["match"]
        assert match["context"] == "GATEWAY"
        port = match.get("listener", {}).get("portNumber") or match.get("routeConfiguration", {}).get("portNumber")
        assert port in (None, server["port"]["number"]), patch
    # Prometheus scrapes every gateway pod (not the Service, which would hit one replica at random),
    # through a headless Service that selects them.
    scrape = load_yaml(PROMETHEUS_DIR / "istio-scrape.yml")["scrape_configs"][0]
    assert scrape["metrics_path"] == annotations["prometheus.io/path"]
    (discovery,) = scrape["dns_sd_configs"]
    (name,) = discovery["names"]
    service_name, namespace = re.fullmatch(r"([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local", name).groups()
    metrics = documents[("Service", service_name)]
    assert metrics["metadata"]["namespace"] == namespace == deployment["metadata"]["namespace"]
    assert metrics["spec"]["clusterIP"] == "None", "one address per gateway pod"
    assert metrics["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert discovery["type"] == "A" and discovery["port"] == int(annotations["prometheus.io/port"])
    assert discovery["port"] in [p["port"] for p in metrics["spec"]["ports"]]


def test_istio_etcd_is_the_state_the_wasm_plugin_names() -> None:
    """The WasmPlugin keeps its state in the etcd of etcd.yaml: `state.cluster` is the cluster
    Istio makes of the etcd client Service (a normal Service: a headless one would be an
    ORIGINAL_DST cluster), which selects the members; the members form one cluster of an odd
    size of at least 3 (quorum survives one loss), named by the headless Service, started
    together, on the official 3.5 image with the JSON gateway on; a disruption budget keeps
    quorum during drains; readiness needs quorum, liveness does not."""
    documents = istio_documents()
    state = wasm_plugin()["spec"]["pluginConfig"]["state"]
    assert state["backend"] == "etcd" and state["prefix"] == "miroir/v1/", state
    match = re.fullmatch(r"outbound\|(\d+)\|\|([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local", state["cluster"])
    assert match, f"{state['cluster']} is not an Istio outbound cluster name"
    port, service_name, namespace = int(match[1]), match[2], match[3]
    client = documents[("Service", service_name)]
    assert client["metadata"]["namespace"] == namespace
    assert client["spec"].get("clusterIP") != "None", "headless services become ORIGINAL_DST clusters"
    (client_port,) = [p for p in client["spec"]["ports"] if p["port"] == port]
    assert client_port["name"].startswith("tcp-"), "gRPC and HTTP/1.1 share etcd's client port"

    statefulset = next(d for (kind, _), d in documents.items()
                       if kind == "StatefulSet" and client["spec"]["selector"].items()
                       <= d["spec"]["template"]["metadata"]["labels"].items())
    spec = statefulset["spec"]
    assert spec["replicas"] >= 3 and spec["replicas"] % 2 == 1, "an odd number of members, at least 3"
    assert spec["podManagementPolicy"] == "Parallel", "the members must start together the first time"
    headless = documents[("Service", spec["serviceName"])]
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"] is True
    (container,) = spec["template"]["spec"]["containers"]
    assert re.fullmatch(r"(gcr\.io/etcd-development/etcd|quay\.io/coreos/etcd):v3\.5\.\d+", container["image"])
    flags = etcd_flags(container["command"])
    name = statefulset["metadata"]["name"]
    domain = f"{spec['serviceName']}.{namespace}.svc.cluster.local"
    members = [f"{name}-{i}" for i in range(spec["replicas"])]
    assert flags["initial-cluster"] == ",".join(f"{m}=http://{m}.{domain}:2380" for m in members)
    assert flags["initial-advertise-peer-urls"] == f"http://$(POD_NAME).{domain}:2380"
    assert flags["listen-client-urls"].endswith(f":{client_port['targetPort']}")
    assert flags.get("enable-grpc-gateway", "true") == "true", "the filter speaks the JSON gateway"
    assert int(flags["max-request-bytes"]) > wasm_plugin()["spec"]["pluginConfig"].get("max_body_bytes", 10485760)
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    budget = next(d for (kind, _), d in documents.items() if kind == "PodDisruptionBudget"
                  and d["spec"]["selector"]["matchLabels"] == spec["selector"]["matchLabels"])
    assert 1 <= budget["spec"]["maxUnavailable"] <= (spec["replicas"] - 1) // 2

    kustomization = load_yaml(ISTIO_DIR / "kustomization.yaml")
    assert sorted(kustomization["resources"]) == sorted(p.name for p in ISTIO_MANIFESTS)


def test_oci_image_recipe() -> None:
    """Istio's "compat" Wasm image: FROM scratch and one layer with plugin.wasm."""
    instructions = [line.split(None, 1) for line in (ISTIO_DIR / "Dockerfile").read_text().splitlines()
                    if line.strip() and not line.lstrip().startswith("#")]
    assert instructions == [["FROM", "scratch"], ["COPY", "plugin.wasm ./"]]
    text = (ISTIO_DIR / "Dockerfile").read_text()
    assert "target/wasm32-wasip1/release/miroir_filter.wasm" in text


# === docs ==========================================================================================

def test_operations_doc_names_every_key_code_header_and_metric() -> None:
    doc = OPERATIONS_DOC.read_text()
    missing = {
        # A key counts when it appears as a whole component of a backticked key path, e.g.
        # `settings_broadcast.strategy` names both `settings_broadcast` and `strategy`.
        "configuration keys": sorted(k for k in filter_config_keys()
                                     if not re.search(rf"`(?:[a-z_\[\]]+\.)*{k}(?:\.[a-z_]+)*`", doc)),
        "error codes": sorted(c for c in filter_error_codes() if f"`{c}`" not in doc),
        "metrics": sorted(m for m in filter_metric_names() if f"`{m}`" not in doc),
        "headers": sorted(h for h in ["X-Miroir-Settings-Version", "X-Miroir-Settings-Inconsistent",
                                      "X-Miroir-Min-Settings-Version", "x-miroir-node", HOLD_HEADER]
                          if f"`{h}" not in doc),
        "alerts": sorted(a["alert"] for g in load_yaml(PROMETHEUS_DIR / "rules.yml")["groups"] for a in g["rules"]
                         if f"`{a['alert']}`" not in doc),
    }
    assert not any(missing.values()), f"docs/operations.md does not mention: {missing}"
