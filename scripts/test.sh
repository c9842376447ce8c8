#!/usr/bin/env bash
# The test suite: every crate's tests against real peers (swtpm, tpm2-tools,
# OpenSSL), plus the structural checks the design depends on. Run
# scripts/deps.sh first on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

jobs="${CARGO_BUILD_JOBS:-2}"

# Orphaned swtpm processes (reparented to PID 1, not zombies): what a test
# that forgot to stop its TPM leaves behind. Those of a concurrent test run
# still have their test process as parent and are not counted.
swtpm_pids() { { ps -C swtpm -o pid=,ppid=,stat= 2>/dev/null || true; } | awk '$2 == 1 && $3 !~ /^Z/ {print $1}' | sort; }
before="$(swtpm_pids)"

cargo test --workspace --locked -j "$jobs"

# attest is pure verification: no runtime, storage, network or TPM stack.
scripts/check-attest-deps.sh

# Every swtpm a test started must be gone (the harness kills and waits).
leftover="$(comm -13 <(echo "$before") <(swtpm_pids) | tr '\n' ' ')"
if [[ -n "${leftover// /}" ]]; then
  echo "test.sh: swtpm processes left running after the tests: $leftover" >&2
  exit 1
fi
echo "test.sh: no swtpm process left running"
