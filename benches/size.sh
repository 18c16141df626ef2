#!/usr/bin/env bash
# Binary size of the smallest embedder, strata against wasmtime 48.
#
# Builds the same program (examples/minimal/src/embed.rs: load a precompiled module
# with `Module::deserialize_file`, instantiate it, call an export) twice, in release
# mode:
#
#   strata    `minimal-embedder` (examples/minimal, package strata-example-minimal):
#             strata with only its `runtime` feature, in the main workspace;
#   wasmtime  `minimal-wasmtime` (benches/minimal-wasmtime): wasmtime =48.0.8 with
#             `default-features = false, features = ["runtime", "std"]`.
#
# Checks that no Cranelift compiler crate is in strata's build (only the data-structure
# crates cranelift-entity and cranelift-bitset may be), copies both binaries to a
# temporary folder, strips them, prints their sizes, and checks that both run a module
# precompiled by their own runtime (`fib 20` of examples/hello.wat prints 6765).
#
# Usage: benches/size.sh   (from anywhere)
#
# Both workspaces build where cargo would (CARGO_TARGET_DIR, else their own `target`);
# BENCH_TARGET_DIR, if set, is the benches workspace's target directory alone, so that
# the main workspace keeps its own.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
benches=(--manifest-path benches/Cargo.toml)
bench_cargo() { CARGO_TARGET_DIR="${BENCH_TARGET_DIR:-${CARGO_TARGET_DIR:-$root/benches/target}}" cargo "$@"; }

# Both builds must use the same release profile. The two workspaces set it in their
# own Cargo.toml; compare the sections rather than trust that they stay equal.
profile() { awk '/^\[/{on = ($0 == "[profile.release]")} on && !/^#/ && NF' "$1"; }
if [[ "$(profile Cargo.toml)" != "$(profile benches/Cargo.toml)" ]]; then
    echo "error: [profile.release] differs between Cargo.toml and benches/Cargo.toml:" >&2
    diff <(profile Cargo.toml) <(profile benches/Cargo.toml) >&2 || true
    echo "make them equal, or pass the difference as CARGO_PROFILE_RELEASE_* here" >&2
    exit 1
fi
echo "release profile of both builds:"
profile Cargo.toml | sed 's/^/    /'

echo
echo "dependencies:"
tree_s="$(cargo tree -p strata-example-minimal -e normal)"
tree_w="$(bench_cargo tree "${benches[@]}" -p minimal-wasmtime -e normal)"
if grep -i cranelift <<<"$tree_s" | grep -Ev 'cranelift-(entity|bitset) '; then
    echo "error: a Cranelift compiler crate is in strata-example-minimal's dependencies" >&2
    exit 1
fi
crates() { sed 's/^[^a-z0-9_-]*//; s/ (\*)$//' | sort -u | wc -l; }
echo "    strata-example-minimal: no Cranelift compiler crate; $(crates <<<"$tree_s") crates in its tree"
echo "    minimal-wasmtime: $(grep -ci cranelift <<<"$tree_w" || true) lines naming cranelift" \
    "(cargo tree -e normal | grep -ci cranelift); $(crates <<<"$tree_w") crates in its tree"

echo
echo "building (release)..."
cargo build --release --quiet -p strata-example-minimal
bench_cargo build --release --quiet "${benches[@]}" -p minimal-wasmtime

target_dir() { "$1" metadata --format-version 1 --no-deps "${@:2}" | grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4; }
main_target="$(target_dir cargo)"
bench_target="$(target_dir bench_cargo "${benches[@]}")"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cp "$main_target/release/minimal-embedder" "$tmp/minimal-embedder"
cp "$bench_target/release/minimal-wasmtime" "$tmp/minimal-wasmtime"
unstripped_s=$(stat -c %s "$tmp/minimal-embedder")
unstripped_w=$(stat -c %s "$tmp/minimal-wasmtime")
strip "$tmp/minimal-embedder" "$tmp/minimal-wasmtime"
stripped_s=$(stat -c %s "$tmp/minimal-embedder")
stripped_w=$(stat -c %s "$tmp/minimal-wasmtime")

echo
row() { # label strata-bytes wasmtime-bytes
    awk -v l="$1" -v s="$2" -v w="$3" 'BEGIN {
        printf "| %s | %d (%.0f KiB) | %d (%.0f KiB) | %.2f |\n", l, s, s / 1024, w, w / 1024, s / w }'
}
echo "| binary | strata \`minimal-embedder\`, bytes | wasmtime \`minimal-wasmtime\`, bytes | strata/wasmtime |"
echo "|---|---:|---:|---:|"
row "stripped" "$stripped_s" "$stripped_w"
row "unstripped" "$unstripped_s" "$unstripped_w"

echo
echo "running a precompiled module with each (stripped) binary:"
cargo run --release --quiet -p strata-cli -- compile examples/hello.wat -o "$tmp/hello.swasm"
bench_cargo run --release --quiet "${benches[@]}" --bin load -- \
    --precompile-wasmtime examples/hello.wat "$tmp/hello.cwasm" >/dev/null
status=0
for run in "minimal-embedder hello.swasm" "minimal-wasmtime hello.cwasm"; do
    set -- $run
    got=$("$tmp/$1" "$tmp/$2" fib 20) || got="failed (exit status $?)"
    echo "    $1 $2 fib 20 -> $got"
    [[ "$got" == 6765 ]] || status=1
done
if [[ $status != 0 ]]; then
    echo "error: expected 6765 from both" >&2
fi
exit $status
