#!/usr/bin/env bash
# Runs the host-free core's vector tests compiled to wasm32-unknown-unknown, under node, so the
# canonical JSON and fingerprints are shown to be byte-identical to the native build's.
#
# Installs what it needs: the wasm32-unknown-unknown target, node (Debian's nodejs) if absent,
# and wasm-bindgen-cli at exactly the wasm-bindgen version Cargo.lock pins (the test runner
# refuses to run a module built against another version).
#
# Usage: scripts/wasm-test.sh [extra cargo test args, e.g. a test-name filter]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

TEST_TARGET=canonical_vectors

# The version line follows the `name = "wasm-bindgen"` line in Cargo.lock.
wanted=$(awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/^version = "|"$/, ""); print; exit }' Cargo.lock)
if [ -z "$wanted" ]; then
    echo "wasm-test: no wasm-bindgen entry in Cargo.lock (run a wasm32 build first)" >&2
    exit 1
fi

installed=""
if command -v wasm-bindgen-test-runner >/dev/null 2>&1; then
    installed=$(wasm-bindgen-test-runner --version | awk '{ print $2 }')
fi
if [ "$installed" != "$wanted" ]; then
    echo "wasm-test: installing wasm-bindgen-cli $wanted (found '${installed:-none}'); ~2 min on 2 cores"
    # --locked first, for the dependency set the release was tested with. It can fail when a
    # locked dependency is no longer in the registry index (seen here: a yanked webpki-roots
    # for 0.2.130); then let cargo resolve current compatible versions instead.
    if ! cargo install wasm-bindgen-cli --version "$wanted" --locked; then
        echo "wasm-test: --locked install failed; retrying with fresh dependency resolution" >&2
        cargo install wasm-bindgen-cli --version "$wanted"
    fi
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    rustup target add wasm32-unknown-unknown
fi

if ! command -v node >/dev/null 2>&1; then
    apt-get update && apt-get install -y nodejs
fi

# wasm-bindgen-test runs in node unless the test crate asks for a browser.
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
exec cargo test -p miroir-filter --target wasm32-unknown-unknown --test "$TEST_TARGET" "$@"
