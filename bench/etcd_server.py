"""One etcd member for the benchmarks of the etcd state backend: Debian's `etcd-server` (etcd 3.4,
`/usr/bin/etcd`, or $MIROIR_ETCD_BIN) on 127.0.0.1, free client and peer ports, a data dir under
the run's directory, started by the end-to-end harness's `EtcdCluster`; this adds what the report
reads of it (disk metrics, calls served).

etcd 3.4 has no `--unsafe-no-fsync` (3.5 has), so every write waits for an fsync of its WAL on
this machine's disk; `wal_fsync()` reads etcd's own histogram of those fsyncs, so the report can
say how much of a commit they are."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import requests

import common  # noqa: F401  (puts the end-to-end harness on the import path)
from etcd_cluster import EtcdCluster

START_TIMEOUT_SECONDS = 30.0
CLUSTER_NAME = "etcd"  # the Envoy cluster the filter's `state.cluster` names


def etcd_binary() -> Path:
    override = os.environ.get("MIROIR_ETCD_BIN")
    if override:
        return Path(override)
    return Path(shutil.which("etcd") or "/usr/bin/etcd")


def ensure_etcd() -> float:
    """Installs Debian's `etcd-server` when etcd is missing (as `make test` does); returns the
    seconds it took (0 when it was there)."""
    if etcd_binary().is_file():
        return 0.0
    if os.geteuid() != 0:
        raise RuntimeError("etcd is not installed and this is not root: run `sudo apt-get install -y etcd-server`")
    started = time.monotonic()
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, timeout=300, env=env, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "etcd-server"], check=True,
                   timeout=300, env=env, capture_output=True)
    if not etcd_binary().is_file():
        raise RuntimeError("apt-get installed etcd-server but etcd is not on PATH")
    return time.monotonic() - started


@dataclass
class FsyncTotals:
    """etcd's cumulative `etcd_disk_wal_fsync_duration_seconds` (count, sum) and committed
    raft proposals (one per write, lease grants and keep-alives included)."""

    count: float
    seconds: float
    proposals: float

    def __sub__(self, other: "FsyncTotals") -> "FsyncTotals":
        return FsyncTotals(self.count - other.count, self.seconds - other.seconds, self.proposals - other.proposals)


class EtcdServer:
    """One member, started by the end-to-end harness (`tests/e2e/etcd_cluster.py`), with the
    readings the report needs."""

    def __init__(self, workdir: Path, name: str = "etcd") -> None:
        self.name = name
        self.cluster = EtcdCluster(1, workdir / name, binary=etcd_binary())

    @property
    def client_url(self) -> str:
        return self.cluster.client_url(0)

    @property
    def endpoint(self) -> tuple[str, int]:
        return self.cluster.endpoints[0]

    def start(self) -> "EtcdServer":
        if not etcd_binary().is_file():
            raise RuntimeError(f"etcd not found at {etcd_binary()}: apt-get install -y etcd-server")
        self.cluster.start(START_TIMEOUT_SECONDS)
        return self

    def stop(self) -> None:
        self.cluster.stop()

    def version(self) -> str:
        try:
            return requests.get(f"{self.client_url}/version", timeout=2).json().get("etcdserver", "?")
        except (requests.RequestException, ValueError):
            return "?"

    def wal_fsync(self) -> FsyncTotals:
        text = requests.get(f"{self.client_url}/metrics", timeout=5).text

        def value(name: str) -> float:
            found = re.search(rf"^{re.escape(name)}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.MULTILINE)
            return float(found.group(1)) if found else 0.0

        return FsyncTotals(count=value("etcd_disk_wal_fsync_duration_seconds_count"),
                           seconds=value("etcd_disk_wal_fsync_duration_seconds_sum"),
                           proposals=value("etcd_server_proposals_committed_total"))


    def calls(self) -> dict[str, float]:
        """Requests etcd served since it started, by gRPC method (`Range`, `Txn`, `LeaseGrant`, …;
        the JSON gateway's calls are counted as the gRPC calls they become)."""
        text = requests.get(f"{self.client_url}/metrics", timeout=5).text
        out: dict[str, float] = {}
        for found in re.finditer(r'^grpc_server_handled_total\{([^}]*)\} ([0-9.e+-]+)$', text, re.MULTILINE):
            method = re.search(r'grpc_method="([^"]*)"', found.group(1))
            if method:
                out[method.group(1)] = out.get(method.group(1), 0.0) + float(found.group(2))
        return out


def envoy_cluster(endpoint: tuple[str, int], name: str = CLUSTER_NAME) -> dict[str, object]:
    """The STATIC Envoy cluster the filter's etcd callouts go through (plain HTTP/1.1)."""
    host, port = endpoint
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "0.25s",
        "lb_policy": "ROUND_ROBIN",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}}]}],
        },
    }


def state_config(prefix: str) -> dict[str, object]:
    """The plugin configuration's `state` section for the etcd backend (the documented example's
    values, one prefix per Envoy so that no run sees another's keys)."""
    return {"backend": "etcd", "cluster": CLUSTER_NAME, "prefix": prefix, "lease_ttl_ms": 10000}
