"""Every Envoy bootstrap the project ships (and every shape the generator produces) is accepted by
the pinned Envoy's `--mode validate`.

Shipped configs are found, not listed: any `*.yaml` under `envoy/` whose top level has
`static_resources` is a bootstrap. Validation loads the wasm module and runs the filter's
`on_configure`, so a shipped plugin configuration the filter would refuse fails here too. Shipped
configs name the module where their deployment mounts it (e.g. inside a container); for validation
that path is replaced by the module built in this tree."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from conftest import filter_wasm_required
from harness import envoy_config, paths

VALIDATE_TIMEOUT_SECONDS = 60


def shipped_bootstraps(config_dir: Path = paths.ENVOY_CONFIG_DIR) -> list[Path]:
    found = []
    for path in sorted(config_dir.rglob("*.yaml")):
        text = path.read_text()
        try:
            documents = list(yaml.safe_load_all(text))
        except yaml.YAMLError:
            # Unparseable: keep it if it looks like a bootstrap, so validation reports the error.
            if "static_resources:" in text:
                found.append(path)
            continue
        if len(documents) == 1 and isinstance(documents[0], dict) and "static_resources" in documents[0]:
            found.append(path)
    return found


def wasm_filenames(node: Any) -> list[dict[str, Any]]:
    """Every `{"filename": ...}` object under a `code.local` key, wherever it sits."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        local = node.get("local") if "local" in node and isinstance(node.get("local"), dict) else None
        if local is not None and "filename" in local and str(local["filename"]).endswith(".wasm"):
            found.append(local)
        for value in node.values():
            found.extend(wasm_filenames(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(wasm_filenames(value))
    return found


def validate(config_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(paths.envoy_binary()), "--mode", "validate", "-c", str(config_path)],
        capture_output=True, text=True, timeout=VALIDATE_TIMEOUT_SECONDS,
    )


def assert_valid(config_path: Path) -> None:
    result = validate(config_path)
    output = result.stderr + result.stdout
    assert result.returncode == 0, f"envoy --mode validate rejected {config_path}:\n{output[-4000:]}"
    # Envoy's own success line, e.g. "configuration '/tmp/x.yaml' OK".
    assert re.search(r"^configuration '.*' OK$", result.stdout, re.MULTILINE), output[-2000:]


def validate_with_built_module(config_path: Path, scratch: Path) -> None:
    """Validate a bootstrap after pointing its wasm modules at the filter built in this tree."""
    config = yaml.safe_load(config_path.read_text())
    modules = wasm_filenames(config)
    if modules:
        wasm = filter_wasm_required()
        for local in modules:
            local["filename"] = str(wasm)
    checked = scratch / config_path.name
    checked.write_text(yaml.safe_dump(config, sort_keys=False))
    assert_valid(checked)


@pytest.mark.parametrize("config_path", shipped_bootstraps(), ids=lambda p: str(p.relative_to(paths.REPO_ROOT)))
def test_shipped_bootstrap_validates(config_path: Path, tmp_path: Path) -> None:
    validate_with_built_module(config_path, tmp_path)


def test_discovery_keeps_only_bootstraps_and_validation_uses_the_built_module(tmp_path: Path) -> None:
    """The discovery above finds bootstraps anywhere under the config directory and nothing else,
    and a bootstrap naming the module at its deployment path validates against the built one."""
    config_dir = tmp_path / "envoy"
    (config_dir / "compose").mkdir(parents=True)
    (config_dir / "istio").mkdir()
    bootstrap = envoy_config.bootstrap(envoy_config.nodes_on([7701, 7702]),
                                       wasm_path=Path("/etc/envoy/miroir_filter.wasm"))
    (config_dir / "compose" / "envoy.yaml").write_text(envoy_config.to_yaml(bootstrap))
    (config_dir / "stats_tags.yaml").write_text(paths.ENVOY_CONFIG_DIR.joinpath("stats_tags.yaml").read_text())
    (config_dir / "istio" / "plugin.yaml").write_text("kind: WasmPlugin\n---\nkind: EnvoyFilter\n")

    found = shipped_bootstraps(config_dir)
    assert found == [config_dir / "compose" / "envoy.yaml"]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    validate_with_built_module(found[0], scratch)


@pytest.mark.parametrize("node_count", [1, 3])
def test_generated_baseline_validates(node_count: int, tmp_path: Path) -> None:
    config = envoy_config.bootstrap(envoy_config.nodes_on([7701 + i for i in range(node_count)]))
    path = tmp_path / "baseline.yaml"
    path.write_text(envoy_config.to_yaml(config))
    assert_valid(path)


@pytest.mark.parametrize("node_count", [1, 3])
def test_generated_filter_bootstrap_validates(node_count: int, tmp_path: Path) -> None:
    wasm = filter_wasm_required()
    config = envoy_config.bootstrap(envoy_config.nodes_on([7701 + i for i in range(node_count)]), wasm_path=wasm)
    path = tmp_path / "filter.yaml"
    path.write_text(envoy_config.to_yaml(config))
    assert_valid(path)


def test_validation_rejects_a_broken_bootstrap(tmp_path: Path) -> None:
    """The check above can fail: a route to a cluster that does not exist is refused."""
    config = envoy_config.bootstrap(envoy_config.nodes_on([7701]))
    routes = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"][
        "route_config"]["virtual_hosts"][0]["routes"]
    routes[-1]["route"]["cluster"] = "no_such_cluster"
    path = tmp_path / "broken.yaml"
    path.write_text(envoy_config.to_yaml(config))
    result = validate(path)
    assert result.returncode != 0
    assert "no_such_cluster" in result.stdout + result.stderr


# --- failure_policy: FAIL_RELOAD really replaces a crashed VM --------------------------------------
#
# The filter must not crash, so the test crashes a module of its own: the smallest proxy-wasm
# module (ABI 0.2.1) Envoy loads, assembled below, whose proxy_on_request_headers executes
# `unreachable` (a trap, what a Rust panic becomes) when a request has more than CRASH_HEADERS
# headers, and lets every other request through. Its VM keeps no state, so a new VM behaves like
# the first one.

CRASH_HEADERS = 40


def _uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _section(section_id: int, payload: bytes) -> bytes:
    return bytes([section_id]) + _uleb(len(payload)) + payload


def _vector(items: list[bytes]) -> bytes:
    return _uleb(len(items)) + b"".join(items)


def _name(text: str) -> bytes:
    return _uleb(len(text)) + text.encode()


def crash_on_many_headers_module() -> bytes:
    i32 = 0x7F
    functype = lambda params, results: bytes([0x60]) + _vector([bytes([p]) for p in params]) + _vector(  # noqa: E731
        [bytes([r]) for r in results])
    types = [functype([], []), functype([i32, i32], []), functype([i32, i32], [i32]),
             functype([i32, i32, i32], [i32]), functype([i32], [i32])]
    # (export name, type index, body: locals vector + instructions + end)
    functions = [
        ("proxy_abi_version_0_2_1", 0, b"\x00\x0b"),
        ("proxy_on_context_create", 1, b"\x00\x0b"),
        ("proxy_on_vm_start", 2, b"\x00\x41\x01\x0b"),          # i32.const 1 (ok)
        ("proxy_on_configure", 2, b"\x00\x41\x01\x0b"),
        # if (num_headers > CRASH_HEADERS) unreachable; return 0 (Continue)
        ("proxy_on_request_headers", 3,
         b"\x00\x20\x01\x41" + _uleb(CRASH_HEADERS) + b"\x4b\x04\x40\x00\x0b\x41\x00\x0b"),
        ("malloc", 4, b"\x00\x41\x80\x08\x0b"),                # a fixed address; never called here
    ]
    module = b"\x00asm\x01\x00\x00\x00"
    module += _section(1, _vector(types))
    module += _section(3, _vector([_uleb(t) for _, t, _ in functions]))
    module += _section(5, _vector([b"\x00\x01"]))  # one memory, at least one page
    exports = [_name("memory") + b"\x02\x00"] + [_name(n) + b"\x00" + _uleb(i) for i, (n, _, _) in enumerate(functions)]
    module += _section(7, _vector(exports))
    module += _section(10, _vector([_uleb(len(body)) + body for _, _, body in functions]))
    return module


@pytest.fixture
def crash_module(tmp_path: Path) -> Path:
    path = tmp_path / "crash_on_many_headers.wasm"
    path.write_bytes(crash_on_many_headers_module())
    return path


def statuses_after_a_crash(envoy: Any, session: Any, seconds: float) -> tuple[int, list[int]]:
    crash_headers = {f"x-pad-{i}": "1" for i in range(CRASH_HEADERS + 10)}
    crashed = session.get(f"{envoy.url}/health", headers=crash_headers, timeout=10).status_code
    later = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        later.append(session.get(f"{envoy.url}/health", timeout=10).status_code)
        time.sleep(0.2)
    return crashed, later


@pytest.mark.parametrize("policy", ["FAIL_RELOAD", "FAIL_CLOSED"])
def test_a_crashed_vm_is_reloaded_under_the_shipped_failure_policy(
        policy: str, crash_module: Path, make_fleet: Any, make_envoy: Any) -> None:
    """With the harness's (and the shipped configs') FAIL_RELOAD, requests after a VM trap get 503
    only until the new VM is up (backoff 1 s), then pass again; with Envoy's default FAIL_CLOSED
    (the control) the worker answers 503 for good. One worker, so every request meets that VM."""
    fleet = make_fleet(1)
    envoy = make_envoy(fleet, wasm=crash_module, start=False, concurrency=1)
    config = yaml.safe_load(envoy.config_path.read_text())
    wasm = next(f for f in config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
                ["typed_config"]["http_filters"] if f["name"] == "envoy.filters.http.wasm")
    assert wasm["typed_config"]["config"]["failure_policy"] == envoy_config.WASM_FAILURE_POLICY == "FAIL_RELOAD"
    wasm["typed_config"]["config"]["failure_policy"] = policy
    envoy.config_path.write_text(yaml.safe_dump(config))
    envoy.start()

    with requests.Session() as session:
        assert session.get(f"{envoy.url}/health", timeout=10).status_code == 200, "the module lets requests through"
        crashed, later = statuses_after_a_crash(envoy, session, seconds=4)

    assert crashed == 503, "the module did not trap"
    assert "proxy_on_request_headers failed: Uncaught RuntimeError: unreachable" in envoy.log_text()
    if policy == "FAIL_RELOAD":
        assert later[-5:] == [200] * 5, later
        assert envoy.stat("wasm.miroir.vm_reload_success") >= 1
    else:
        assert set(later) == {503}, later
