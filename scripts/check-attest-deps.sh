#!/usr/bin/env bash
# keyward-attest must stay free of I/O stacks: fail if any of these crates
# enters its normal (non-dev) dependency tree.
set -euo pipefail
cd "$(dirname "$0")/.."
forbidden='^(tokio|sled|reqwest|hyper|tss-esapi|tss-esapi-sys|mio|async-std|axum) '
tree="$(cargo tree -p keyward-attest -e normal --prefix none --locked | sort -u)"
if bad="$(grep -E "$forbidden" <<<"$tree")"; then
  echo "check-attest-deps: forbidden crates in keyward-attest's dependency tree:" >&2
  echo "$bad" >&2
  exit 1
fi
echo "check-attest-deps: keyward-attest depends on none of tokio, sled, reqwest, hyper, tss-esapi"
