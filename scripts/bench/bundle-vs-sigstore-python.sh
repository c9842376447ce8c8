#!/usr/bin/env bash
# Sigstore bundle verification, side by side in one run, on the same bundle:
# the conformance suite's happy-path-v0.3 (hashedrekord over a.txt; Fulcio
# chain, SCT, Rekor inclusion proof and checkpoint), against the production
# trusted root loaded once from a file (offline):
#   - keyward-attest (sigstore-verify 0.15.1), criterion;
#   - sigstore-python 4.5 (PyPI `sigstore`), an in-process loop.
# Both sides parse the bundle JSON on every iteration. Target (design brief
# §7): keyward at least 5x faster.
#
# Beside the bundle, each side also times the two kinds of public-key
# operation the bundle is made of, on the same data (ECDSA P-256/SHA-256: the
# artifact signature by the leaf key; ECDSA P-384/SHA-384: the Fulcio
# intermediate's signature on the leaf), with its own crypto library
# (aws-lc-rs; OpenSSL through pyca/cryptography). Four P-256 and one P-384
# verifications are the least a verifier can do on this bundle (artifact
# signature, SCT, SET, checkpoint; leaf certificate), which bounds the ratio.
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

# The machine may be shared: record its load beside each side's timings.
echo "== keyward-attest (criterion); loadavg $(cat /proc/loadavg)"
cargo bench -p keyward-attest --bench attest -- '^sigstore/' >/dev/null
median_us() {
  python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['median']['point_estimate']/1000)" \
    "$target_dir/criterion/sigstore/$1/new/estimates.json"
}
keyward_us=$(median_us verify_bundle_happy_path_v0_3)
keyward_p256_us=$(median_us floor_ecdsa_p256_sha256_verify)
keyward_p384_us=$(median_us floor_ecdsa_p384_sha384_verify)

echo "== sigstore-python (in-process loop); loadavg $(cat /proc/loadavg)"
python_out=$("$venv/bin/python" - "$conformance" <<'PY'
import base64, json, logging, os, statistics, sys, time
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
bundle_us = statistics.median(rounds)

# The single verifications, with pyca/cryptography (OpenSSL) as sigstore-python uses it.
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
b = json.loads(bundle_json)
root = json.load(open(os.path.join(d, "../trusted_root.production.json")))
leaf = x509.load_der_x509_certificate(base64.b64decode(b["verificationMaterial"]["certificate"]["rawBytes"]))
intermediate = x509.load_der_x509_certificate(base64.b64decode(
    root["certificateAuthorities"][1]["certChain"]["certificates"][0]["rawBytes"]))
artifact_sig = base64.b64decode(b["messageSignature"]["signature"])
leaf_key, intermediate_key = leaf.public_key(), intermediate.public_key()
def p256():
    leaf_key.verify(artifact_sig, artifact, ec.ECDSA(hashes.SHA256()))
def p384():
    intermediate_key.verify(leaf.signature, leaf.tbs_certificate_bytes, ec.ECDSA(hashes.SHA384()))
def per_op(f, n):
    f()
    rounds = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n):
            f()
        rounds.append((time.perf_counter() - t) / n * 1e6)
    return statistics.median(rounds)
print(f"{bundle_us:.1f} {per_op(p256, 1000):.1f} {per_op(p384, 200):.1f}")
PY
)
read -r python_us python_p256_us python_p384_us <<<"$python_out"

echo "== done; loadavg $(cat /proc/loadavg)"
python3 - "$keyward_us" "$python_us" "$keyward_p256_us" "$keyward_p384_us" "$python_p256_us" "$python_p384_us" <<'PY'
import sys
k, p, k256, k384, p256, p384 = map(float, sys.argv[1:])
print()
print("| verifier (happy-path-v0.3, production root) | median µs/op | relative to keyward |")
print("|---|---:|---:|")
print(f"| keyward-attest (sigstore-verify 0.15.1) | {k:.1f} | 1.00x |")
print(f"| sigstore-python 4.5 | {p:.1f} | {p/k:.2f}x |")
print()
print("| single verification, median µs | keyward (aws-lc-rs) | sigstore-python (OpenSSL) |")
print("|---|---:|---:|")
print(f"| ECDSA P-256/SHA-256 | {k256:.1f} | {p256:.1f} |")
print(f"| ECDSA P-384/SHA-384 | {k384:.1f} | {p384:.1f} |")
floor = 4 * k256 + k384
print(f"| floor: 4 x P-256 + 1 x P-384 | {floor:.1f} | {4 * p256 + p384:.1f} |")
print()
print(f"keyward: {k - floor:.1f} µs/op beyond its floor; best possible ratio at zero overhead = {p/floor:.2f}")
print(f"sigstore-python / keyward = {p/k:.1f} (target >= 5): {'met' if p/k >= 5 else 'NOT met'}")
PY
