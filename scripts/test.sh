#!/usr/bin/env bash
# The test suite: every crate's tests against real peers (swtpm, tpm2-tools,
# OpenSSL), plus the structural checks the design depends on. Run
# scripts/deps.sh first on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

jobs="${CARGO_BUILD_JOBS:-2}"

swtpm_pids() { { ps -C swtpm -o pid=,stat= 2>/dev/null || true; } | awk '$2 !~ /^Z/ {print $1}' | sort; }
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
