"""pytest fixtures for the end-to-end suite: fleets of dev nodes, Envoys in front of them, keys.

Every process a fixture starts is stopped at teardown, pass or fail. When a test fails, the log
tails of every Envoy and dev node still running are attached to its report, since the reason for
an end-to-end failure is almost always in a server's log rather than in the assertion."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Envoy, EtcdCluster, Fleet, envoy_for, paths  # noqa: E402

# Keys the suite runs with. The nodes get the node key as their master key, so the filter's
# background calls (which use MIROIR_NODE_API_KEY) are authorized exactly like a client's.
NODE_KEY = os.environ.get("MIROIR_E2E_NODE_KEY", "e2e-node-master-key")
ADMIN_KEY = os.environ.get("MIROIR_E2E_ADMIN_KEY", "e2e-admin-key")
DEFAULT_NODES = 3

# Servers started by fixtures and not yet stopped; their logs go into failure reports.
_running: list[Envoy | Fleet | EtcdCluster] = []


def envoy_env() -> dict[str, str]:
    """Environment for Envoy; the filter reads these through `host_env_keys`."""
    return {"MIROIR_NODE_API_KEY": NODE_KEY, "MIROIR_ADMIN_API_KEY": ADMIN_KEY}


def filter_wasm_required() -> Path:
    """The built filter module. A missing or unloadable module fails the test: the suite never
    skips the filter (`make e2e` builds it first)."""
    wasm = paths.filter_wasm()
    if not wasm.is_file():
        pytest.fail(f"filter module not built: {wasm} (run `make build`)")
    if not paths.exports_proxy_wasm_abi(wasm):
        pytest.fail(f"{wasm} does not export the proxy-wasm ABI (not a proxy-wasm module)")
    return wasm


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    for server in list(_running):
        if isinstance(server, Envoy):
            report.sections.append((f"{server.name} log excerpt ({server.log_path})", server.log_excerpt()))
        elif isinstance(server, EtcdCluster):
            # What the gateways share: the ledger's keys, then each member's log.
            report.sections.append((f"{server.name} keys", server.dump()))
            report.sections.append((f"{server.name} member logs ({server.workdir})", server.log_excerpt()))
        else:
            report.sections.append((f"{server.name} log tail ({server.log_path})", server.process.log_tail(40)))


def _start(server: Envoy | Fleet | EtcdCluster, **kwargs: Any) -> Any:
    _running.append(server)
    try:
        return server.start(**kwargs)
    except BaseException:
        _running.remove(server)
        raise


def _stop(server: Envoy | Fleet | EtcdCluster) -> None:
    try:
        server.stop()
    finally:
        if server in _running:
            _running.remove(server)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """Per-test directory for configs, logs and admin address files."""
    return tmp_path


@pytest.fixture
def filter_wasm() -> Path:
    return filter_wasm_required()


@pytest.fixture
def make_fleet(workdir: Path) -> Iterator[Callable[..., Fleet]]:
    """Factory: `make_fleet(nodes=3, task_ms=None, master_key=NODE_KEY)` → a started Fleet."""
    started: list[Fleet] = []

    def make(nodes: int = DEFAULT_NODES, **kwargs: Any) -> Fleet:
        kwargs.setdefault("master_key", NODE_KEY)
        fleet = Fleet(nodes, workdir, **kwargs)
        started.append(fleet)
        return _start(fleet)

    yield make
    for fleet in reversed(started):
        _stop(fleet)


@pytest.fixture
def make_envoy(workdir: Path) -> Iterator[Callable[..., Envoy]]:
    """Factory: `make_envoy(fleet, wasm=path_or_None, plugin_overrides={...}, start=True)`.

    With `start=False` the Envoy is returned unstarted (call `.launch()` for tests that expect it to
    refuse its configuration); it is stopped at teardown either way."""
    created: list[Envoy] = []

    def make(fleet: Fleet, *, wasm: Path | None = None, start: bool = True, **kwargs: Any) -> Envoy:
        kwargs.setdefault("env", envoy_env())
        envoy = envoy_for(fleet, workdir, wasm=wasm, **kwargs)
        created.append(envoy)
        _running.append(envoy)
        if start:
            try:
                envoy.start()
            except BaseException:
                _stop(envoy)
                raise
        return envoy

    yield make
    for envoy in reversed(created):
        _stop(envoy)


@pytest.fixture
def make_etcd(workdir: Path) -> Iterator[Callable[..., EtcdCluster]]:
    """Factory: `make_etcd(members=1)` → a started etcd cluster on loopback (etcd_cluster.py),
    stopped at teardown; its keys and member logs go into failure reports."""
    started: list[EtcdCluster] = []

    def make(members: int = 1, **kwargs: Any) -> EtcdCluster:
        cluster = EtcdCluster(members, workdir, **kwargs)
        started.append(cluster)
        return _start(cluster)

    yield make
    for cluster in reversed(started):
        _stop(cluster)


@pytest.fixture
def fleet(make_fleet: Callable[..., Fleet]) -> Fleet:
    """A started fleet of three dev nodes, fresh for each test."""
    return make_fleet(DEFAULT_NODES)


@pytest.fixture
def envoy(fleet: Fleet, make_envoy: Callable[..., Envoy], filter_wasm: Path) -> Envoy:
    """Envoy with the miroir filter in front of `fleet`."""
    return make_envoy(fleet, wasm=filter_wasm)


@pytest.fixture
def baseline_envoy(fleet: Fleet, make_envoy: Callable[..., Envoy]) -> Envoy:
    """Envoy without any wasm filter in front of `fleet` (same routes and clusters)."""
    return make_envoy(fleet, wasm=None)


@pytest.fixture(scope="module")
def module_workdir(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    return tmp_path_factory.mktemp(request.module.__name__)


@pytest.fixture(scope="module")
def module_fleet(module_workdir: Path) -> Iterator[Fleet]:
    """Three dev nodes shared by a whole test module (for read-only scenarios: faster)."""
    fleet = Fleet(DEFAULT_NODES, module_workdir, master_key=NODE_KEY)
    _start(fleet)
    yield fleet
    _stop(fleet)


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """An HTTP session carrying the node key, like an application with the master key would."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {NODE_KEY}"
    yield session
    session.close()
