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
from pathlib import Path
from typing import Any

import pytest
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
