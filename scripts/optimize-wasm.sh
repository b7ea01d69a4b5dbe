#!/usr/bin/env bash
# Runs binaryen's wasm-opt over the release module in place, when wasm-opt is installed
# (Debian: `apt-get install binaryen`); without it the module cargo built is shipped as it is.
#
# -O3 without binaryen's inlining. Measured with `make bench ARGS="--only footprint"` (Envoy's
# RSS at --concurrency 2, over no filter): cargo's module +67 MiB; -O3, -O2, -Os or -Oz +75 to
# +79 MiB, though 11-12 % smaller (binaryen inlines into fewer, larger functions, and V8's
# compilation of those keeps more of Envoy's heap); -O3 with inlining off (the three sizes
# below at 0) +67 MiB and 10 % smaller; -O1 +69 MiB, 8 % smaller. rustc's opt-level "s"/"z"
# shrink more but make the per-search work and the settings fingerprint slower.
# The features are the ones rustc enables for wasm32-wasip1 and Envoy's V8 runs; wasm-opt
# releases older than 116 do not read them from the module and refuse it without these flags.
#
# Cargo puts its own build back at the module's path on every `cargo build`, even one that
# compiles nothing; so the optimized module is kept next to it with the SHA-256 of the build it
# came from, and copied back while that build is unchanged instead of being optimized again.
set -euo pipefail

module=${1:?usage: optimize-wasm.sh MODULE.wasm}
optimized="${module%.wasm}.optimized.wasm"
source_sum="$optimized.from"

if ! command -v wasm-opt >/dev/null; then
    echo "   wasm-opt not found (Debian: binaryen): module left as cargo built it"
    exit 0
fi
passes=(-O3 --always-inline-max-function-size 0 --flexible-inline-max-function-size 0
        --one-caller-inline-max-function-size 0)
# The build's SHA-256 and the passes: either changing means optimizing again.
sum="$(sha256sum "$module" | cut -d' ' -f1) ${passes[*]}"
if [[ -f $optimized && -f $source_sum && $(cat "$source_sum") == "$sum" ]]; then
    cp "$optimized" "$module.tmp"
    mv "$module.tmp" "$module"
    echo "   wasm-opt: unchanged build, optimized module reused"
    exit 0
fi
before=$(stat -c %s "$module")
wasm-opt "${passes[@]}" \
    --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
    --enable-nontrapping-float-to-int --enable-multivalue --enable-reference-types \
    "$module" -o "$optimized"
echo "$sum" > "$source_sum"
# A new file, not a write into the old one: cargo hard-links the module from its deps directory.
cp "$optimized" "$module.tmp"
mv "$module.tmp" "$module"
echo "   wasm-opt -O3, no inlining: $before -> $(stat -c %s "$module") bytes"
