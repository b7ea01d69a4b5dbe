"""Envoy bootstrap for the miroir filter in front of a fleet of Meilisearch nodes.

One generator serves the tests (ephemeral ports), `make run` (port 7700), the baseline without the
filter and benchmarks with another wasm module, so every Envoy started by this project is shaped
the same way (docs/architecture.md §1):

    listener ─► HTTP connection manager ─► [wasm: miroir] ─► [buffer] ─► router
        route 1: x-miroir-hold present   ─► meili_all (held by the buffer filter; the filter answers)
        route 2: routing header present  ─► cluster named by that header (a pinned read, §6)
        route 3: GET/HEAD, POST searches ─► meili_all, retried on another node on connect failure,
                                            reset or gateway error (reads are safe to repeat)
        route 4: "/"                     ─► meili_all, retried only when the node never got the
                                            request (connect failure, refused stream)
    clusters: meili_node_0 … meili_node_{N-1} (one endpoint each, targets of the filter's
              callouts) and meili_all (active health checks on GET /health, outlier detection);
              with `etcd_endpoints`, also `etcd` (the etcd ledger backend's JSON gateway, §14).
    The wasm filter runs with failure_policy FAIL_RELOAD: a VM that traps is replaced.

The shipped bootstraps under envoy/ carry the same pieces (a test compares them).

Run it as a script to print a bootstrap:  python envoy_config.py --node-port 7701 --node-port 7702
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
STATS_TAGS_FILE = REPO_ROOT / "envoy" / "stats_tags.yaml"

# Settings bodies (synonyms, stop words, dictionaries) can be several MiB; Envoy's 1 MiB default
# per-connection buffer would answer 413 before the filter ever sees the body.
BUFFER_LIMIT_BYTES = 16 * 1024 * 1024
# A node's task poll or a large search can be slow; Envoy's default route timeout is 15 s.
ROUTE_TIMEOUT = "60s"
CONNECT_TIMEOUT = "2s"
DEFAULT_ROUTING_HEADER = "x-miroir-node"
# Envoy environment variables the filter may read through WASI (docs/architecture.md §3: drift check and admin API).
HOST_ENV_KEYS = ["MIROIR_ADMIN_API_KEY", "MIROIR_NODE_API_KEY"]
# What Envoy does with a filter VM that hit a runtime error (a Rust panic traps the VM). The
# default, FAIL_CLOSED, answers 503 to every later request of that worker until Envoy restarts;
# FAIL_RELOAD also answers 503 (never bypasses the filter) but starts a new VM for new requests,
# after a backoff (1 s base by default). State in shared data survives; the dead VM's own
# in-memory state and callouts do not.
WASM_FAILURE_POLICY = "FAIL_RELOAD"

# --- meili_all: what happens when a node dies ------------------------------------------------------
# Active health check on Meilisearch's GET /health (200 {"status":"available"}; no key needed).
# Shipped default: every 5 s, out after 2 failures, back after 1 success. Tests use 1 s.
HEALTH_CHECK_INTERVAL = "5s"
# The shipped bootstraps' allocator setting (a test checks they carry it): Envoy gives memory its
# allocator freed back to the system, up to 64 MiB a second. V8's compilation of the module frees
# ~10-20 MiB that Envoy would otherwise keep resident for good (bench section 4).
MEMORY_ALLOCATOR_MANAGER = {"bytes_to_release": 64 * 1024 * 1024, "memory_release_interval": "1s"}
HEALTH_CHECK_TIMEOUT = "2s"
HEALTH_CHECK_PATH = "/health"
# Passive: a node that fails requests is ejected at once (not at the next health check).
# Gateway failures (connect failure, reset, 502/503/504) are not enforced by Envoy's default, so
# they are here; at most half the nodes are ejected (with 3 nodes: one).
OUTLIER_DETECTION = {
    "consecutive_5xx": 5,
    "consecutive_gateway_failure": 2,
    "enforcing_consecutive_gateway_failure": 100,
    "interval": "5s",
    "base_ejection_time": "30s",
    "max_ejection_percent": 50,
}
# Each retry goes to another node than the ones already tried.
_OTHER_HOST = {
    "retry_host_predicate": [{
        "name": "envoy.retry_host_predicates.previous_hosts",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
        },
    }],
    "host_selection_retry_max_attempts": 3,
}
# Reads (GET/HEAD, and the POST search routes, which change nothing) may be repeated whatever
# happened to the first try.
READ_RETRY_POLICY = {"retry_on": "connect-failure,refused-stream,reset,gateway-error", "num_retries": 2, **_OTHER_HOST}
# Everything else (document and index writes, …) only when the node never received the request:
# a reset or a 5xx after the request was sent may mean the write was applied, and Meilisearch
# writes are not idempotent (each enqueues a task).
WRITE_RETRY_POLICY = {"retry_on": "connect-failure,refused-stream", "num_retries": 2, **_OTHER_HOST}
# Methods and paths the read route takes (the path regex sees the path without its query).
READ_METHODS_REGEX = "^(GET|HEAD)$"
SEARCH_PATH_REGEX = "^/(indexes/[^/]+/(search|facet-search|similar)|multi-search)$"


@dataclass(frozen=True)
class Node:
    """One Meilisearch node as Envoy sees it."""

    index: int
    host: str
    port: int

    @property
    def id(self) -> str:
        return f"node-{self.index}"

    @property
    def cluster(self) -> str:
        return f"meili_node_{self.index}"

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"


def nodes_on(ports: Sequence[int], host: str = "127.0.0.1") -> list[Node]:
    return [Node(index=i, host=host, port=port) for i, port in enumerate(ports)]


def plugin_configuration(nodes: Sequence[Node], overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The filter's JSON configuration (docs/operations.md, configuration reference): the node list plus any top-level overrides.

    An override of `nodes` replaces the generated list (used to test invalid configurations)."""
    config: dict[str, Any] = {
        "nodes": [{"id": n.id, "cluster": n.cluster, "authority": n.authority} for n in nodes]
    }
    config.update(overrides or {})
    return config


def load_stats_tags(path: Path = STATS_TAGS_FILE) -> list[dict[str, str]]:
    tags = yaml.safe_load(path.read_text())
    if not isinstance(tags, list) or not all(isinstance(t, dict) and {"tag_name", "regex"} <= t.keys() for t in tags):
        raise ValueError(f"{path}: expected a YAML list of {{tag_name, regex}}")
    return tags


def wasm_filter(wasm_path: Path, plugin_config: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "miroir",
                "root_id": "miroir",
                "failure_policy": WASM_FAILURE_POLICY,
                "vm_config": {
                    "vm_id": "miroir",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": str(wasm_path)}},
                    "environment_variables": {"host_env_keys": HOST_ENV_KEYS},
                },
                # A StringValue reaches the filter byte for byte (a Struct would be re-serialized).
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": json.dumps(plugin_config, separators=(",", ":")),
                },
            },
        },
    }


# One line per request; the "[access]" prefix lets log excerpts pick these lines out.
ACCESS_LOG_FORMAT = (
    '[access] "%REQ(:METHOD)% %REQ(:PATH)%" %RESPONSE_CODE% %RESPONSE_FLAGS% '
    "cluster=%UPSTREAM_CLUSTER% upstream=%UPSTREAM_HOST% %DURATION%ms\n"
)


def stdout_access_log() -> dict[str, Any]:
    return {
        "name": "envoy.access_loggers.stdout",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
            "log_format": {"text_format_source": {"inline_string": ACCESS_LOG_FORMAT}},
        },
    }


def health_checks(interval: str = HEALTH_CHECK_INTERVAL) -> list[dict[str, Any]]:
    return [{
        "timeout": HEALTH_CHECK_TIMEOUT,
        "interval": interval,
        # Envoy checks a cluster without traffic only every 60 s unless told otherwise.
        "no_traffic_interval": interval,
        "unhealthy_threshold": 2,
        "healthy_threshold": 1,
        "http_health_check": {"path": HEALTH_CHECK_PATH},
    }]


def static_cluster(name: str, endpoints: Sequence[Node]) -> dict[str, Any]:
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": CONNECT_TIMEOUT,
        "lb_policy": "ROUND_ROBIN",
        "per_connection_buffer_limit_bytes": BUFFER_LIMIT_BYTES,
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": {"socket_address": {"address": n.host, "port_value": n.port}}}}
                        for n in endpoints
                    ]
                }
            ],
        },
    }


# The etcd ledger backend (docs/architecture.md §5, "The etcd backend"): the filter's callouts reach etcd's JSON gateway through
# this cluster (plugin configuration `state.cluster`). Plain HTTP/1.1 (a cluster's default), round
# robin over the members. No health check or ejection, as in the shipped compose config: when etcd
# does not answer, the filter itself refuses the writes that need it. A short connect timeout, so a
# dead member costs a callout little on loopback.
ETCD_CLUSTER = "etcd"
ETCD_CONNECT_TIMEOUT = "0.25s"


def etcd_cluster(endpoints: Sequence[tuple[str, int]], name: str = ETCD_CLUSTER) -> dict[str, Any]:
    if not endpoints:
        raise ValueError("the etcd cluster needs at least one endpoint")
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": ETCD_CONNECT_TIMEOUT,
        "lb_policy": "ROUND_ROBIN",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{
                "lb_endpoints": [
                    {"endpoint": {"address": {"socket_address": {"address": host, "port_value": int(port)}}}}
                    for host, port in endpoints
                ]
            }],
        },
    }


# Set by the filter on settings writes whose body it is reading (see the buffer filter below).
HOLD_HEADER = "x-miroir-hold"


def bootstrap(
    nodes: Sequence[Node],
    *,
    listen_port: int = 0,
    listen_host: str = "127.0.0.1",
    admin_port: int = 0,
    wasm_path: Path | None = None,
    plugin_overrides: dict[str, Any] | None = None,
    routing_header: str = DEFAULT_ROUTING_HEADER,
    access_log: bool = False,
    health_check_interval: str = HEALTH_CHECK_INTERVAL,
    etcd_endpoints: Sequence[tuple[str, int]] | None = None,
) -> dict[str, Any]:
    """The whole Envoy bootstrap. `wasm_path=None` gives the baseline: the same listener, routes and
    clusters with no wasm filter at all. `access_log` writes one line per request to Envoy's stdout
    (tests turn it on to see where each request went; benchmarks leave it off).
    `health_check_interval` is meili_all's active health-check period (tests shorten it).
    `etcd_endpoints` ((host, port) of each etcd member's client port) adds the cluster `etcd` for
    the etcd ledger backend; the plugin configuration's `state` section (in `plugin_overrides`)
    is what selects that backend."""
    if not nodes:
        raise ValueError("at least one node is needed to build the clusters")
    http_filters: list[dict[str, Any]] = []
    if wasm_path is not None:
        http_filters.append(wasm_filter(wasm_path, plugin_configuration(nodes, plugin_overrides)))
        # Holds a settings write away from the router while the filter reads its body: the filter
        # routes it to the hold route (header below), where this buffer filter keeps the headers
        # back; the filter answers the client itself, so no node ever sees a half-sent write.
        # Disabled on every other route: ordinary traffic is never buffered.
        http_filters.append(
            {
                "name": "envoy.filters.http.buffer",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
                    "max_request_bytes": BUFFER_LIMIT_BYTES,
                },
            }
        )
    http_filters.append(
        {
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
        }
    )
    buffer_off = {
        "envoy.filters.http.buffer": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute",
            "disabled": True,
        }
    }
    routes = [
        {
            "match": {"prefix": "/", "headers": [{"name": HOLD_HEADER, "present_match": True}]},
            "route": {"cluster": "meili_all", "timeout": ROUTE_TIMEOUT},
        },
        {
            # The filter sets this header to pin a request to one node; the header's value is a
            # cluster name. Must stay before the catch-all route.
            "match": {"prefix": "/", "headers": [{"name": routing_header, "present_match": True}]},
            "route": {"cluster_header": routing_header, "timeout": ROUTE_TIMEOUT},
            "typed_per_filter_config": buffer_off,
        },
        {
            "match": {"prefix": "/", "headers": [
                {"name": ":method", "string_match": {"safe_regex": {"regex": READ_METHODS_REGEX}}}]},
            "route": {"cluster": "meili_all", "timeout": ROUTE_TIMEOUT, "retry_policy": copy.deepcopy(READ_RETRY_POLICY)},
            "typed_per_filter_config": buffer_off,
        },
        {
            "match": {"safe_regex": {"regex": SEARCH_PATH_REGEX}, "headers": [
                {"name": ":method", "string_match": {"exact": "POST"}}]},
            "route": {"cluster": "meili_all", "timeout": ROUTE_TIMEOUT, "retry_policy": copy.deepcopy(READ_RETRY_POLICY)},
            "typed_per_filter_config": buffer_off,
        },
        {
            "match": {"prefix": "/"},
            "route": {"cluster": "meili_all", "timeout": ROUTE_TIMEOUT, "retry_policy": copy.deepcopy(WRITE_RETRY_POLICY)},
            "typed_per_filter_config": buffer_off,
        },
    ]
    if wasm_path is None:
        routes = routes[1:]
        for r in routes:
            r.pop("typed_per_filter_config", None)
    connection_manager = {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "meili",
            "codec_type": "AUTO",
            "route_config": {
                "name": "meili",
                "virtual_hosts": [{"name": "meili", "domains": ["*"], "routes": routes}],
            },
            "http_filters": http_filters,
        },
    }
    if access_log:
        connection_manager["typed_config"]["access_log"] = [stdout_access_log()]
    listener = {
        "name": "meili",
        "address": {"socket_address": {"address": listen_host, "port_value": listen_port}},
        "per_connection_buffer_limit_bytes": BUFFER_LIMIT_BYTES,
        "filter_chains": [{"filters": [connection_manager]}],
    }
    clusters = [static_cluster(n.cluster, [n]) for n in nodes]
    all_nodes = static_cluster("meili_all", nodes)
    all_nodes["health_checks"] = health_checks(health_check_interval)
    all_nodes["outlier_detection"] = copy.deepcopy(OUTLIER_DETECTION)
    clusters.append(all_nodes)
    if etcd_endpoints:
        clusters.append(etcd_cluster(etcd_endpoints))
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "stats_config": {"stats_tags": load_stats_tags()},
        "memory_allocator_manager": dict(MEMORY_ALLOCATOR_MANAGER),
        "static_resources": {"listeners": [listener], "clusters": clusters},
    }


def to_yaml(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False, width=120)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print an Envoy bootstrap for the miroir filter.")
    parser.add_argument("--node-port", type=int, action="append", required=True, help="one per node, in order")
    parser.add_argument("--listen-port", type=int, default=7700)
    parser.add_argument("--admin-port", type=int, default=0)
    parser.add_argument("--wasm", type=Path, help="filter module; omit for the baseline without the filter")
    parser.add_argument("--plugin-overrides", default="{}", help="JSON merged into the plugin configuration")
    parser.add_argument("--etcd", action="append", default=[], metavar="HOST:PORT",
                        help="an etcd member's client address (adds the `etcd` cluster); one per member")
    args = parser.parse_args(argv)
    config = bootstrap(
        nodes_on(args.node_port),
        listen_port=args.listen_port,
        admin_port=args.admin_port,
        wasm_path=args.wasm.resolve() if args.wasm else None,
        plugin_overrides=json.loads(args.plugin_overrides),
        etcd_endpoints=[(hp.rpartition(":")[0], int(hp.rpartition(":")[2])) for hp in args.etcd],
    )
    sys.stdout.write(to_yaml(config))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
