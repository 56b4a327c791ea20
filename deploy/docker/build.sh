#!/usr/bin/env bash
# Builds the static (musl) binaries and the FROM-scratch image `switchyard:dev`.
#
#   deploy/docker/build.sh                 # build binaries + image, tag switchyard:dev
#   IMAGE=switchyard:ci deploy/docker/build.sh
#
# Nothing is pulled: the image is FROM scratch and its build context is a staging directory
# holding only the two binaries, so this works with no registry reachable and sends a few MB
# to the daemon instead of the whole repository (whose target/ is gigabytes).
#
# Re-running is cheap: cargo does nothing when the sources are unchanged, and the image is
# rebuilt only when the binaries or the Dockerfile changed (their digest is stored as an image
# label and compared first). The chaos tests (tests/chaos) call this script on every run.
#
# Environment:
#   IMAGE             tag to build (default switchyard:dev)
#   CARGO_TARGET_DIR  cargo's target directory (default <repo>/target), as for cargo itself
#   CARGO             the cargo to run (default cargo)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
image="${IMAGE:-switchyard:dev}"
target="x86_64-unknown-linux-musl"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
out="$target_dir/$target/release"
dockerfile="$repo/deploy/docker/Dockerfile.scratch"

log() { printf 'build.sh: %s\n' "$*" >&2; }

# ---- 1. static binaries
# `ring` (TLS) compiles C and assembly for the target, so a musl C compiler is needed; cc-rs
# looks for x86_64-linux-musl-gcc. Fail here with the fix rather than deep in cargo's output.
if ! command -v x86_64-linux-musl-gcc >/dev/null 2>&1 && [[ -z "${CC_x86_64_unknown_linux_musl:-}" ]]; then
    log "error: no musl C compiler (x86_64-linux-musl-gcc): install it with"
    log "       apt-get install -y musl-tools     (or set CC_x86_64_unknown_linux_musl)"
    exit 1
fi
if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$target"; then
    log "error: the Rust target $target is not installed: rustup target add $target"
    exit 1
fi
# One cargo invocation for both, so the dependency graph is compiled once for musl.
log "cargo build --release --target $target (switchyard, fraud_check example)"
(
    cd "$repo"
    "${CARGO:-cargo}" build --release --locked --target "$target" \
        -p switchyard-cli -p switchyard-sdk --bin switchyard --example fraud_check
)
binaries=("$out/switchyard" "$out/examples/fraud_check")

# A FROM-scratch image has no dynamic loader: a binary that is not static fails at start with
# a confusing "no such file or directory". Catch that here instead.
for bin in "${binaries[@]}"; do
    if command -v file >/dev/null 2>&1; then
        description="$(file -L "$bin")"
        case "$description" in
            *"statically linked"* | *"static-pie linked"*) ;;
            *)
                log "error: $bin is not static: $description"
                exit 1
                ;;
        esac
    elif ldd "$bin" >/dev/null 2>&1; then
        # ldd succeeds only for dynamic executables.
        log "error: $bin is dynamically linked: $(ldd "$bin" | tr '\n' ' ')"
        exit 1
    fi
done

# ---- 2. the image, unless one built from exactly these inputs exists
inputs_sha="$(cat "${binaries[@]}" "$dockerfile" | sha256sum | cut -d' ' -f1)"
label="org.switchyard.inputs-sha256"
existing="$(docker image inspect --format "{{ index .Config.Labels \"$label\" }}" "$image" 2>/dev/null || true)"
if [[ "$existing" == "$inputs_sha" ]]; then
    log "$image is up to date (inputs $inputs_sha)"
    exit 0
fi

context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp "$out/switchyard" "$context/switchyard"
cp "$out/examples/fraud_check" "$context/fraud_check"
mkdir "$context/data"
# The release profile keeps line tables for the host's backtraces; in the image they are 3/4 of
# the size. Dropping the DWARF sections keeps the symbol table, so a panic's backtrace still
# names the functions. Without `strip` the image is just larger.
if command -v strip >/dev/null 2>&1; then
    strip --strip-debug "$context/switchyard" "$context/fraud_check"
fi

# Without the buildx plugin, recent docker CLIs still build with the classic builder when told
# to; with buildx present, BuildKit is used. The Dockerfile works with both.
if ! docker buildx version >/dev/null 2>&1; then
    export DOCKER_BUILDKIT=0
fi
log "docker build -f deploy/docker/Dockerfile.scratch -t $image"
docker build --quiet --label "$label=$inputs_sha" -f "$dockerfile" -t "$image" "$context" >/dev/null
log "built $image ($(du -ch "$context/switchyard" "$context/fraud_check" | tail -1 | cut -f1) of binaries)"
