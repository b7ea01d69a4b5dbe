"""The shape of a built wasm module, read from its binary format: bytes per section kind, the
size of every function body and the names it exports. Shared by the tests and the benchmark's
footprint section."""

from __future__ import annotations

from pathlib import Path

EXPORT_SECTION = 7
CODE_SECTION = 10
SECTION_NAMES = {CODE_SECTION: "code", 11: "data", 0: "custom"}


def _leb128(raw: bytes, at: int) -> tuple[int, int]:
    """An unsigned LEB128 number at `at`, and where the next field starts."""
    value, shift = 0, 0
    while True:
        byte = raw[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def _sections(raw: bytes) -> list[tuple[int, int, int]]:
    """(kind, start of contents, size) of every section, after the 8-byte header."""
    out = []
    at = 8
    while at < len(raw):
        kind = raw[at]
        size, start = _leb128(raw, at + 1)
        out.append((kind, start, size))
        at = start + size
    return out


def section_sizes(path: Path) -> dict[str, int]:
    """Bytes per section kind: code, data, custom (names, producers) and the rest."""
    sizes: dict[str, int] = {}
    for kind, _, size in _sections(Path(path).read_bytes()):
        name = SECTION_NAMES.get(kind, "other")
        sizes[name] = sizes.get(name, 0) + size
    return sizes


def _vector(raw: bytes, section: int) -> tuple[int, int]:
    """The entry count of the first `section` of that kind (a vector) and where its entries start;
    (0, 0) when the module has none."""
    for kind, start, _ in _sections(raw):
        if kind == section:
            return _leb128(raw, start)
    return 0, 0


def function_sizes(path: Path) -> list[int]:
    """Bytes of every function body in the code section, in index order."""
    raw = Path(path).read_bytes()
    sizes: list[int] = []
    count, at = _vector(raw, CODE_SECTION)
    for _ in range(count):
        size, at = _leb128(raw, at)
        sizes.append(size)
        at += size
    return sizes


def export_names(path: Path) -> list[str]:
    """The names the module exports, in order."""
    raw = Path(path).read_bytes()
    names: list[str] = []
    count, at = _vector(raw, EXPORT_SECTION)
    for _ in range(count):
        size, at = _leb128(raw, at)
        names.append(raw[at:at + size].decode())
        _, at = _leb128(raw, at + size + 1)  # the export's kind byte, then its index
    return names
