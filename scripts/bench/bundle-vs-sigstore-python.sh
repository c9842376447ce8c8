#!/usr/bin/env bash
# Sigstore bundle verification, side by side in one run, on the same bundle:
# the conformance suite's happy-path-v0.3 (hashedrekord over a.txt; Fulcio
# chain, SCT, Rekor inclusion proof and checkpoint), against the production
# trusted root loaded once from a file (offline):
#   - keyward-attest (sigstore-verify 0.15.1), criterion;
#   - sigstore-python 4.5 (PyPI `sigstore`), an in-process loop.
# Both sides parse the bundle JSON on every iteration. Target (design brief
# §7): keyward at least 5x faster.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
venv="${KEYWARD_SIGSTORE_PYTHON_VENV:-$target_dir/bench-venv/sigstore-python}"
conformance="$root/../shared/testdata/sigstore/conformance"

if [[ ! -x "$venv/bin/python" ]]; then
  echo "bundle-vs-sigstore-python: creating $venv (sigstore 4.5)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'sigstore==4.5.*'
fi

echo "== keyward-attest (criterion)"
cargo bench -p keyward-attest --bench attest -- '^sigstore/' >/dev/null
keyward_us=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['median']['point_estimate']/1000)" \
  "$target_dir/criterion/sigstore/verify_bundle_happy_path_v0_3/new/estimates.json")

echo "== sigstore-python (in-process loop)"
python_us=$("$venv/bin/python" - "$conformance" <<'PY'
import logging, os, statistics, sys, time
logging.disable(logging.CRITICAL)
from sigstore.models import Bundle, TrustedRoot
from sigstore.verify import Verifier
from sigstore.verify.policy import Identity
d = sys.argv[1]
bundle_json = open(os.path.join(d, "happy-path-v0.3/bundle.sigstore.json"), "rb").read()
artifact = open(os.path.join(d, "a.txt"), "rb").read()
verifier = Verifier(trusted_root=TrustedRoot.from_file(os.path.join(d, "../trusted_root.production.json")))
policy = Identity(
    identity="https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main",
    issuer="https://token.actions.githubusercontent.com",
)
verifier.verify_artifact(artifact, Bundle.from_json(bundle_json), policy)
try:  # a tampered artifact must fail, or the timing means nothing
    verifier.verify_artifact(artifact + b"x", Bundle.from_json(bundle_json), policy)
    raise SystemExit("sigstore-python accepted a tampered artifact")
except Exception:
    pass
rounds = []
for _ in range(5):
    n = 100
    t = time.perf_counter()
    for _ in range(n):
        verifier.verify_artifact(artifact, Bundle.from_json(bundle_json), policy)
    rounds.append((time.perf_counter() - t) / n * 1e6)
print(f"{statistics.median(rounds):.1f}")
PY
)

python3 - "$keyward_us" "$python_us" <<'PY'
import sys
k, p = map(float, sys.argv[1:])
print()
print("| verifier (happy-path-v0.3, production root) | median µs/op | relative to keyward |")
print("|---|---:|---:|")
print(f"| keyward-attest (sigstore-verify 0.15.1) | {k:.1f} | 1.00x |")
print(f"| sigstore-python 4.5 | {p:.1f} | {p/k:.2f}x |")
print()
print(f"sigstore-python / keyward = {p/k:.1f} (target >= 5): {'met' if p/k >= 5 else 'NOT met'}")
PY
