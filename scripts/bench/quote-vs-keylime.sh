#!/usr/bin/env bash
# Quote verification, side by side in one run, on the same swtpm quote
# (attest/testdata/tpm/quote_rsa.*: RSA-2048 AK, 9 SHA-256 PCRs):
#   - keyward-attest's verify_quote (AK, PCR file and quote parsed each time);
#   - a bare ring RSA-2048 PKCS#1 verify of the same signature (the floor);
#   - Keylime's keylime.tpm.tpm_util.checkquote (PyPI keylime 7.14, in a
#     venv with cryptography and pyyaml), timed in-process.
# Targets (design brief §7): keyward <= 1.2x ring, keylime >= 2x keyward.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
venv="${KEYWARD_KEYLIME_VENV:-$target_dir/bench-venv/keylime}"
vectors="$root/attest/testdata/tpm"

if [[ ! -x "$venv/bin/python" ]]; then
  echo "quote-vs-keylime: creating $venv (keylime 7.14, cryptography, pyyaml)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'keylime==7.14.*' cryptography pyyaml
fi

echo "== keyward-attest and ring (criterion)"
cargo bench -p keyward-attest --bench attest -- '^quote/' >/dev/null
estimate() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['median']['point_estimate']/1000)" "$1"; }
keyward_us=$(estimate "$target_dir/criterion/quote/keyward_verify_rsa2048_9pcrs/new/estimates.json")
ring_us=$(estimate "$target_dir/criterion/quote/ring_rsa2048_pkcs1_verify/new/estimates.json")

echo "== Keylime checkquote (in-process loop)"
keylime_us=$("$venv/bin/python" - "$vectors" <<'PY'
import logging, os, statistics, sys, time
logging.disable(logging.CRITICAL)
from keylime.tpm import tpm_util
d = sys.argv[1]
read = lambda n: open(os.path.join(d, n), "rb").read()
ak, msg, sig, pcrs = read("ak_rsa.pem"), read("quote_rsa.msg"), read("quote_rsa.sig"), read("quote_rsa.pcrs")
nonce = bytes.fromhex(read("nonce.hex").decode().strip())
result = tpm_util.checkquote(ak, nonce, sig, msg, pcrs, "sha256")
assert len(result) == 9, result
# Tampered nonce must be refused, or the timing means nothing.
try:
    tpm_util.checkquote(ak, b"x" * 32, sig, msg, pcrs, "sha256")
    raise SystemExit("keylime accepted a wrong nonce")
except Exception:
    pass
rounds = []
for _ in range(7):
    n = 500
    t = time.perf_counter()
    for _ in range(n):
        tpm_util.checkquote(ak, nonce, sig, msg, pcrs, "sha256")
    rounds.append((time.perf_counter() - t) / n * 1e6)
print(f"{statistics.median(rounds):.2f}")
PY
)

python3 - "$keyward_us" "$ring_us" "$keylime_us" <<'PY'
import sys
k, r, kl = map(float, sys.argv[1:])
print()
print("| verifier (same quote: RSA-2048, 9 PCRs) | median µs/op | relative to keyward |")
print("|---|---:|---:|")
print(f"| keyward-attest verify_quote (parse included) | {k:.1f} | 1.00x |")
print(f"| ring RSA-2048 PKCS#1 verify only | {r:.1f} | {r/k:.2f}x |")
print(f"| Keylime 7.14 tpm_util.checkquote | {kl:.1f} | {kl/k:.2f}x |")
print()
print(f"keyward / ring = {k/r:.2f} (target <= 1.20): {'met' if k/r <= 1.2 else 'NOT met'}")
print(f"keylime / keyward = {kl/k:.2f} (target >= 2.00): {'met' if kl/k >= 2 else 'NOT met'}")
PY
