"""Real etcd for the etcd ledger backend's tests (issue 12; docs/architecture.md §5, docs/operations.md "Choosing a state backend"): a cluster of 1 or 3
members of Debian's `etcd-server` (etcd 3.4, installed by `make test`) on 127.0.0.1, every
client and peer port free and ephemeral, data dirs under the test's directory.

Members are `ManagedProcess`es, so they die with the suite. A member can be killed (SIGKILL) and
started again on the same ports and data dir, where it rejoins the cluster. The filter talks to
etcd through its JSON gateway (`POST /v3/kv/range`, `/v3/kv/txn`, base64 keys and values); this
module uses the same gateway to read and write keys for the tests and for failure reports.

Run it as a script to start a cluster by hand:  python etcd_cluster.py --members 3
"""

from __future__ import annotations

import argparse
import base64
import itertools
import os
import socket
import tempfile
import uuid
from pathlib import Path
from typing import Any, Sequence

import requests

import paths
from processes import ManagedProcess
from waiting import GiveUp, WaitTimeout, wait_until

HOST = "127.0.0.1"
START_TIMEOUT_SECONDS = 30.0
# One gateway call from the harness; a member without quorum holds a linearizable read until its
# own request timeout (several seconds), so the harness gives up sooner and asks again.
REQUEST_TIMEOUT_SECONDS = 2.0
# The filter's state section for tests (docs/operations.md, configuration reference). The lease is
# short so that a killed gateway's job is taken over within a few seconds.
DEFAULT_PREFIX = "miroir/v1/"
TEST_LEASE_TTL_MS = 3000
_instance_numbers = itertools.count()


def state_config(*, cluster: str = "etcd", prefix: str = DEFAULT_PREFIX,
                 lease_ttl_ms: int = TEST_LEASE_TTL_MS, **extra: Any) -> dict[str, Any]:
    """The plugin configuration's `state` section for the etcd backend (a `plugin_overrides` value)."""
    return {"backend": "etcd", "cluster": cluster, "prefix": prefix, "lease_ttl_ms": lease_ttl_ms, **extra}


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def unb64(text: str | None) -> bytes:
    return base64.b64decode(text or "")


def prefix_end(prefix: bytes) -> bytes:
    """etcd's `range_end` for every key starting with `prefix` (the prefix with its last byte + 1)."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\x00"  # every key


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free on 127.0.0.1 right now (all held open at once, so no two are
    the same; released before returning, for the servers that will bind them)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class EtcdStartError(GiveUp):
    """An etcd member exited or never served; the message carries its log tail."""


class EtcdCluster:
    """`members` etcd processes forming one cluster. Not started by the constructor."""

    def __init__(self, members: int, workdir: Path, *, binary: Path | None = None,
                 heartbeat_ms: int = 100, election_ms: int = 1000) -> None:
        if members < 1:
            raise ValueError("an etcd cluster has at least one member")
        self.size = members
        self.name = f"etcd-{next(_instance_numbers)}"
        self.workdir = workdir / self.name
        self.binary = Path(binary or paths.etcd_binary())
        ports = free_ports(2 * members)
        self.client_ports = ports[:members]
        self.peer_ports = ports[members:]
        self.heartbeat_ms = heartbeat_ms
        self.election_ms = election_ms
        self.token = f"miroir-e2e-{uuid.uuid4().hex[:12]}"
        self.processes: list[ManagedProcess | None] = [None] * members
        self._starts = [0] * members
        self.session = requests.Session()
        # etcd reads every flag from ETCD_* variables too; none may leak in from the environment.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}

    # --- addresses -------------------------------------------------------------------------------

    def member_name(self, i: int) -> str:
        return f"m{i}"

    def client_url(self, i: int) -> str:
        return f"http://{HOST}:{self.client_ports[i]}"

    @property
    def client_urls(self) -> list[str]:
        return [self.client_url(i) for i in range(self.size)]

    @property
    def endpoints(self) -> list[tuple[str, int]]:
        """(host, port) of every member's client port, for the Envoy cluster `etcd`
        (`envoy_config.bootstrap(etcd_endpoints=...)`)."""
        return [(HOST, p) for p in self.client_ports]

    def peer_url(self, i: int) -> str:
        return f"http://{HOST}:{self.peer_ports[i]}"

    def data_dir(self, i: int) -> Path:
        return self.workdir / f"{self.member_name(i)}.data"

    # --- lifecycle -------------------------------------------------------------------------------

    def _argv(self, i: int) -> list[Any]:
        initial = ",".join(f"{self.member_name(j)}={self.peer_url(j)}" for j in range(self.size))
        return [
            self.binary,
            "--name", self.member_name(i),
            "--data-dir", self.data_dir(i),
            "--listen-client-urls", self.client_url(i),
            "--advertise-client-urls", self.client_url(i),
            "--listen-peer-urls", self.peer_url(i),
            "--initial-advertise-peer-urls", self.peer_url(i),
            # Read only when the data dir is empty (the first start); a restart rejoins from it.
            "--initial-cluster", initial,
            "--initial-cluster-state", "new",
            "--initial-cluster-token", self.token,
            "--heartbeat-interval", str(self.heartbeat_ms),
            "--election-timeout", str(self.election_ms),
            "--logger", "zap",
            "--log-outputs", "stderr",
        ]

    def _launch(self, i: int) -> None:
        if self.is_running(i):
            raise RuntimeError(f"{self.name} member {i} already running")
        if not self.binary.is_file():
            raise EtcdStartError(f"etcd not found: {self.binary} (Debian: apt-get install -y etcd-server; "
                                 f"`make test` installs it)")
        self._starts[i] += 1
        log = self.workdir / f"{self.member_name(i)}.{self._starts[i]}.log"
        process = ManagedProcess(f"{self.name}-{self.member_name(i)}", self._argv(i), log, env=self.env)
        self.processes[i] = process
        process.start()

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> "EtcdCluster":
        """Start every member and wait until each serves a linearizable read."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        for i in range(self.size):
            self._launch(i)
        try:
            self.wait_healthy(timeout=timeout)
        except (WaitTimeout, EtcdStartError) as error:
            excerpt = self.log_excerpt()
            self.stop()
            raise EtcdStartError(f"{error}\n{excerpt}") from None
        return self

    def start_member(self, i: int, *, wait: bool = True, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Start member i again (same ports, same data dir: it rejoins). With `wait`, until it
        serves a linearizable read, which needs a quorum: pass `wait=False` when it cannot have one
        alone, then `wait_healthy()` once enough members run."""
        self._launch(i)
        if wait:
            self.wait_healthy([i], timeout=timeout)

    def kill(self, i: int) -> None:
        """SIGKILL member i (no shutdown: a crash)."""
        process = self.processes[i]
        if process is not None:
            process.kill()

    def stop_member(self, i: int) -> None:
        process = self.processes[i]
        if process is not None:
            process.stop()

    def stop(self) -> None:
        for process in self.processes:
            if process is not None:
                process.stop()
        self.session.close()

    def __enter__(self) -> "EtcdCluster":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def is_running(self, i: int) -> bool:
        process = self.processes[i]
        return process is not None and process.is_running()

    @property
    def running(self) -> list[int]:
        return [i for i in range(self.size) if self.is_running(i)]

    def _check_alive(self, i: int) -> None:
        process = self.processes[i]
        if process is None:
            raise EtcdStartError(f"{self.name} member {i} was never started")
        code = process.exit_code()
        if code is not None:
            raise EtcdStartError(f"{self.name} member {i} exited with code {code}\n{process.log_tail(30)}")

    def member_healthy(self, i: int) -> bool:
        """Member i answers a linearizable range (so it is part of a cluster with a quorum)."""
        self._check_alive(i)
        response = self.session.post(f"{self.client_url(i)}/v3/kv/range", json={"key": b64("x")},
                                     timeout=REQUEST_TIMEOUT_SECONDS)
        return response.status_code == 200 and "header" in response.json()

    def wait_healthy(self, members: Sequence[int] | None = None, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Every member in `members` (default: every running member) serves linearizable reads."""
        for i in (self.running if members is None else members):
            wait_until(lambda: self.member_healthy(i), timeout, f"{self.name} member {i} to serve a linearizable read")

    # --- the JSON gateway (keys and values as bytes or str) ----------------------------------------

    def call(self, path: str, body: dict[str, Any], member: int | None = None,
             timeout: float = REQUEST_TIMEOUT_SECONDS) -> dict[str, Any]:
        """POST `path` (e.g. `/v3/kv/range`) to `member` (default: the first running one)."""
        if member is None:
            alive = self.running
            if not alive:
                raise RuntimeError(f"{self.name}: no member is running")
            member = alive[0]
        response = self.session.post(f"{self.client_url(member)}{path}", json=body, timeout=timeout)
        if response.status_code != 200:
            raise AssertionError(f"etcd {path} on member {member} -> {response.status_code}: {response.text}")
        return response.json()

    def put(self, key: bytes | str, value: bytes | str, member: int | None = None) -> int:
        """Write one key; returns the store revision after the write."""
        answer = self.call("/v3/kv/put", {"key": b64(key), "value": b64(value)}, member)
        return int(answer["header"]["revision"])

    def get(self, key: bytes | str, member: int | None = None, *, serializable: bool = False) -> bytes | None:
        """One key's raw value, None when absent. `serializable` reads the member's own copy
        without asking the leader (works without a quorum; may be stale)."""
        body: dict[str, Any] = {"key": b64(key)}
        if serializable:
            body["serializable"] = True
        kvs = self.call("/v3/kv/range", body, member).get("kvs", [])
        return unb64(kvs[0].get("value")) if kvs else None

    def get_prefix(self, prefix: bytes | str, member: int | None = None, *,
                   serializable: bool = False) -> dict[bytes, bytes]:
        """Every key starting with `prefix` and its raw value, in key order."""
        raw = prefix.encode() if isinstance(prefix, str) else prefix
        body: dict[str, Any] = {"key": b64(raw), "range_end": b64(prefix_end(raw))}
        if serializable:
            body["serializable"] = True
        kvs = self.call("/v3/kv/range", body, member).get("kvs", [])
        return {unb64(kv.get("key")): unb64(kv.get("value")) for kv in kvs}

    def status(self, member: int | None = None) -> dict[str, Any]:
        """`/v3/maintenance/status` of a member (its id, the leader's id, the raft term)."""
        return self.call("/v3/maintenance/status", {}, member)

    def member_id(self, i: int) -> str:
        return str(self.status(i)["header"]["member_id"])

    def leader(self, member: int | None = None) -> int:
        """The index of the member `member` (default: the first running one) takes for the leader."""
        leader_id = str(self.status(member)["leader"])
        for i in self.running:
            if self.member_id(i) == leader_id:
                return i
        raise AssertionError(f"{self.name}: no running member has the leader's id {leader_id}")

    def revision(self, member: int | None = None) -> int:
        return int(self.call("/v3/kv/range", {"key": b64("x")}, member)["header"]["revision"])

    # --- failure reports -------------------------------------------------------------------------

    def dump(self, prefix: str = DEFAULT_PREFIX, value_chars: int = 300, max_keys: int = 200) -> str:
        """The keys under `prefix` with the start of each value (from any member that answers,
        serializable, so it works without a quorum)."""
        last = "none running"
        for i in self.running:
            try:
                found = self.get_prefix(prefix, i, serializable=True)
            except Exception as error:  # noqa: BLE001 - a report must not fail
                last = f"member {i}: {error!r}"
                continue
            lines = [f"{len(found)} keys under {prefix!r} (member {i}, serializable)"]
            for key, value in list(found.items())[:max_keys]:
                text = value.decode(errors="replace")
                lines.append(f"  {key.decode(errors='replace')} = {text[:value_chars]}{'…' if len(text) > value_chars else ''}")
            return "\n".join(lines)
        return f"no member answered ({last})"

    def log_excerpt(self, lines: int = 25) -> str:
        out = []
        for i, process in enumerate(self.processes):
            if process is None:
                continue
            state = "running" if process.is_running() else f"exited {process.exit_code()}"
            out.append(f"--- {process.name} ({state}, {process.log_path}) ---")
            out.append(process.log_tail(lines))
        return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Start an etcd cluster on loopback until Ctrl-C.")
    parser.add_argument("--members", type=int, default=1)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="miroir-etcd-") as tmp, EtcdCluster(args.members, Path(tmp)) as cluster:
        print("etcd client urls:", " ".join(cluster.client_urls), flush=True)
        try:
            for process in cluster.processes:
                assert process is not None
                process.wait_exit(timeout=None)  # type: ignore[arg-type]
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
