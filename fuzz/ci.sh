#!/usr/bin/env bash
# Short fuzzing pass for CI: builds the seed corpora and every target, then runs each target
# for 20 s. Any crash fails the script (libFuzzer exits non-zero and leaves the input under
# fuzz/artifacts/<target>/). Needs the nightly toolchain and cargo-fuzz:
#   rustup toolchain install nightly && cargo install cargo-fuzz --locked
# Wall time: about 100 s of fuzzing plus the first build (~10 min cold on 2 cores,
# ~1 min warm). Override the per-target time with FUZZ_SECONDS.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${FUZZ_SECONDS:-20}"
targets=(client_requests admin_requests files store_records store_open)

# Seeds from real encodings (requests, policy/tier files, store records written by the store).
cargo +nightly run --quiet --example seeds
cargo +nightly fuzz build -O

for target in "${targets[@]}"; do
    echo "--- fuzz ${target} for ${seconds}s"
    cargo +nightly fuzz run -O "${target}" -- -max_total_time="${seconds}" -rss_limit_mb=2048
done
echo "fuzz: all ${#targets[@]} targets ran ${seconds}s each without a crash"
