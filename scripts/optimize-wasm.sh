#!/usr/bin/env bash
# Runs binaryen's wasm-opt over the release module in place, when wasm-opt is installed
# (Debian: `apt-get install binaryen`); without it the module cargo built is shipped as it is.
#
# -O3, not -Oz: measured in `make bench`, -Oz and rustc's opt-level "s"/"z" make the module
# smaller but the filter's per-search work and the settings fingerprint slower; -O3 still
# removes about a tenth of the module (dead code, duplicate functions, smaller encodings).
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
sum=$(sha256sum "$module" | cut -d' ' -f1)
if [[ -f $optimized && -f $source_sum && $(cat "$source_sum") == "$sum" ]]; then
    cp "$optimized" "$module.tmp"
    mv "$module.tmp" "$module"
    echo "   wasm-opt -O3: unchanged build, optimized module reused"
    exit 0
fi
before=$(stat -c %s "$module")
wasm-opt -O3 \
    --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
    --enable-nontrapping-float-to-int --enable-multivalue --enable-reference-types \
    "$module" -o "$optimized"
echo "$sum" > "$source_sum"
# A new file, not a write into the old one: cargo hard-links the module from its deps directory.
cp "$optimized" "$module.tmp"
mv "$module.tmp" "$module"
echo "   wasm-opt -O3: $before -> $(stat -c %s "$module") bytes"
