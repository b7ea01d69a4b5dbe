"""The shipped module keeps the shape that keeps Envoy's memory down and its requests cheap.

Envoy compiles every function of the module with V8's optimizing compiler when it loads it, and
that compiler's working memory grows with the function: compiling one 81 KB function (what LLVM
made of the state ledger at opt-level 3) left ~12 MiB more in Envoy's allocator for good
(`make bench`, footprint). The filter crate is built at opt-level "s" (Cargo.toml) so that no
function comes near that; this test fails if a build setting or a change of code brings one back."""

from __future__ import annotations

from pathlib import Path

from wasm_module import export_names, function_sizes, section_sizes

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


def test_only_the_callbacks_the_filter_handles_are_exported(filter_wasm: Path) -> None:
    """Envoy calls every callback a module exports. The proxy-wasm SDK exports them all, so with
    it every response crossed into the VM once per body chunk (and once for its trailers) for
    nothing, and the network and gRPC callbacks' code shipped; the filter's own `glue/exports.rs`
    exports the callbacks it handles and no other."""
    exports = set(export_names(filter_wasm))
    assert {"proxy_on_request_headers", "proxy_on_request_body", "proxy_on_response_headers",
            "proxy_on_http_call_response", "proxy_on_tick", "proxy_on_queue_ready"} <= exports
    # A request's end is handled in proxy_on_delete: on_log and on_done would be two more crossings.
    assert "proxy_on_delete" in exports
    for unused in ("proxy_on_response_body", "proxy_on_response_trailers", "proxy_on_grpc_receive",
                   "proxy_on_downstream_data", "proxy_on_new_connection", "proxy_on_foreign_function",
                   "proxy_on_log", "proxy_on_done"):
        assert unused not in exports, f"{filter_wasm} exports {unused}, which the filter does not handle"
