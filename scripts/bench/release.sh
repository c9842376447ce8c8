#!/usr/bin/env bash
# Release-path benchmarks against a real `keyward server` (issue 6,
# deliverable 8; results in docs/benchmarks.md):
#   - tests/benches/release.rs: 64 concurrent keep-alive clients, 2 s
#     warm-up + 10 s measured, for challenge issuance, (a) challenge +
#     attest + kv secret with pre-quoted swtpm evidence, (b) kv secret on
#     one session with a fresh proof of possession per request. Durable
#     audit (default).
#   - tests/benches/restart.rs: (c) restart-to-ready time and RSS with 100k
#     hosts and 1M live leases.
# Targets: (a) >= 3,000/s, (b) >= 10,000/s, p99 < 20 ms at 64 clients;
# (c) <= 2 s and <= 256 MiB. Nothing here asserts them; the tables say.
#
# Knobs (environment): KEYWARD_BENCH_SECS, KEYWARD_BENCH_WARMUP_SECS,
# KEYWARD_BENCH_WORKERS, KEYWARD_BENCH_POOL_SECS (longest evidence
# pre-generation, default 220), KEYWARD_BENCH_POOL_MAX (default 50000),
# KEYWARD_RESTART_HOSTS, KEYWARD_RESTART_LEASES, KEYWARD_RESTART_RUNS;
# PROFILE=1 also records `perf` profiles of the server during each timed
# phase (apt: linux-perf) and prints the top symbols
# (KEYWARD_BENCH_PERF_CALL_GRAPH=dwarf for whole call chains, at 97 Hz
# instead of 499); KEYWARD_BENCH_STAT=1
# counts the server's syncs, writes, futex calls and context switches per
# phase with `perf stat`.
# Needs what the end-to-end tests need: swtpm, skopeo and the test registry.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
export KEYWARD_BIN="$target_dir/release/keyward"

echo "== building (release)"
cargo build --release -j2 -p keyward-vault --bin keyward
cargo bench -j2 -p keyward-tests --bench release --bench restart --no-run

if [[ "${PROFILE:-0}" == 1 ]]; then
  perf_dir="$target_dir/bench-release/perf"
  mkdir -p "$perf_dir"
  export KEYWARD_BENCH_PERF="$perf_dir"
fi

echo "== release path: $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
cargo bench -j2 -p keyward-tests --bench release 2>&1 | grep -v '^ *Running\|Finished\|Compiling'

echo "== restart"
cargo bench -j2 -p keyward-tests --bench restart 2>&1 | grep -v '^ *Running\|Finished\|Compiling'

if [[ -n "${KEYWARD_BENCH_PERF:-}" ]]; then
  for data in "$KEYWARD_BENCH_PERF"/perf-*.data; do
    echo "== profile $(basename "$data") (self time, top 25 symbols)"
    perf report -i "$data" --no-children --sort dso,symbol --stdio 2>/dev/null |
      grep -v '^#' | grep -v '^$' | grep '%' | head -25
  done
fi
