#!/usr/bin/env python3
"""Removes from a wasm module every export but the ones named, in place.

The proxy-wasm SDK exports a function for every callback of the ABI, whatever the filter
implements, and Envoy calls each one it finds: for every response it crosses into the VM once
per body chunk and once for trailers, only for the SDK to answer "continue". Envoy skips a
callback the module does not export, so the filter exports only those it handles (the list is
`scripts/optimize-wasm.sh`'s), and `wasm-opt` then drops the code only they reached (the
network-filter and gRPC callbacks). Standard library only: it runs in `make build`."""

from __future__ import annotations

import sys
from pathlib import Path

EXPORT_SECTION = 7


def leb128(raw: bytes, at: int) -> tuple[int, int]:
    """An unsigned LEB128 number at `at`, and where the next field starts."""
    value, shift = 0, 0
    while True:
        byte = raw[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def encode_leb128(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def keep_exports(raw: bytes, keep: set[str]) -> tuple[bytes, list[str]]:
    """The module with only the exports in `keep`, and the names it dropped."""
    if raw[:4] != b"\0asm":
        raise ValueError("not a wasm module")
    out = bytearray(raw[:8])
    dropped: list[str] = []
    at = 8
    while at < len(raw):
        kind = raw[at]
        size, start = leb128(raw, at + 1)
        end = start + size
        if kind != EXPORT_SECTION:
            out += raw[at:end]
        else:
            count, entry = leb128(raw, start)
            kept = bytearray()
            kept_count = 0
            for _ in range(count):
                name_size, name_at = leb128(raw, entry)
                name = raw[name_at:name_at + name_size].decode()
                _, after = leb128(raw, name_at + name_size + 1)  # kind byte, then the index
                if name in keep:
                    kept += raw[entry:after]
                    kept_count += 1
                else:
                    dropped.append(name)
                entry = after
            body = encode_leb128(kept_count) + kept
            out += bytes([EXPORT_SECTION]) + encode_leb128(len(body)) + body
        at = end
    return bytes(out), dropped


def main() -> int:
    if len(sys.argv) < 3:
        print("usage: keep-exports.py MODULE.wasm NAME...", file=sys.stderr)
        return 2
    module = Path(sys.argv[1])
    raw, dropped = keep_exports(module.read_bytes(), set(sys.argv[2:]))
    missing = set(sys.argv[2:]) - set(_export_names(raw))
    if missing:
        print(f"keep-exports: {module} does not export {sorted(missing)}", file=sys.stderr)
        return 1
    # A new file, not a write into the old one: cargo hard-links the module from its deps directory.
    tmp = module.with_suffix(".keep.tmp")
    tmp.write_bytes(raw)
    tmp.replace(module)
    print(f"   exports: dropped {len(dropped)} the filter does not handle")
    return 0


def _export_names(raw: bytes) -> list[str]:
    names: list[str] = []
    at = 8
    while at < len(raw):
        kind = raw[at]
        size, start = leb128(raw, at + 1)
        if kind == EXPORT_SECTION:
            count, entry = leb128(raw, start)
            for _ in range(count):
                name_size, name_at = leb128(raw, entry)
                names.append(raw[name_at:name_at + name_size].decode())
                _, entry = leb128(raw, name_at + name_size + 1)
        at = start + size
    return names


if __name__ == "__main__":
    sys.exit(main())
