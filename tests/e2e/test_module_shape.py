"""The shipped module keeps the shape that keeps Envoy's memory down.

Envoy compiles every function of the module with V8's optimizing compiler when it loads it, and
that compiler's working memory grows with the function: compiling one 81 KB function (what LLVM
made of the state ledger at opt-level 3) left ~12 MiB more in Envoy's allocator for good
(`make bench`, footprint). The filter crate is built at opt-level "s" (Cargo.toml) so that no
function comes near that; this test fails if a build setting or a change of code brings one back."""

from __future__ import annotations

from pathlib import Path

from wasm_module import function_sizes, section_sizes

# The largest function at "s" is ~20 KB; one at 3 was 81 KB.
LARGEST_FUNCTION_BYTES = 40_000


def test_no_function_is_large_enough_to_swell_envoys_memory(filter_wasm: Path) -> None:
    sizes = function_sizes(filter_wasm)
    assert len(sizes) > 100, f"{filter_wasm}: {len(sizes)} functions read; not the filter module?"
    assert sum(sizes) <= section_sizes(filter_wasm)["code"]
    largest = max(sizes)
    assert largest <= LARGEST_FUNCTION_BYTES, (
        f"function {sizes.index(largest)} of {filter_wasm} is {largest} bytes: V8 keeps memory "
        f"from compiling it (see this file's docstring)")
