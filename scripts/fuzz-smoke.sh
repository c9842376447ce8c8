#!/usr/bin/env bash
# Runs every fuzz target (attest/fuzz, then vault/fuzz) for a short time
# (default 20 s each), seeded from the real vectors: swtpm quotes, keys and
# credentials, real boot event logs, CEL logs, EK certificates, Sigstore
# bundles; and a JWKS and a user JWT for the vault's on-behalf-of check.
# Exits 1 on a crash, and on a target that did not run.
#
#   scripts/fuzz-smoke.sh            # all targets, 20 s each
#   FUZZ_SECONDS=600 scripts/fuzz-smoke.sh eventlog quote
#
# Needs a nightly toolchain and cargo-fuzz (installed here if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
seconds="${FUZZ_SECONDS:-20}"
shared="$root/../shared/testdata"
td="$root/attest/testdata"

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz-smoke: needs a nightly toolchain (rustup toolchain install nightly)" >&2
  exit 1
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked

corpus="$root/attest/fuzz/corpus"
seed() { # seed TARGET FILE...
  local target="$1"; shift
  mkdir -p "$corpus/$target"
  local f i=0
  for f in "$@"; do
    i=$((i + 1))
    [[ -f "$f" ]] && cp "$f" "$corpus/$target/seed-$i-$(basename "$f")"
  done
  return 0
}
seed tpm_attest "$td"/tpm/*.msg
seed tpm_signature "$td"/tpm/*.sig
seed tpm_public "$td"/tpm/ak_*.pub "$td"/tpm/ek_*.pub "$td"/ek/swtpm/*.tpm2b
seed pcr_file "$td"/tpm/*.pcrs
seed credential_file "$td"/tpm/makecredential_rsa.blob
seed eventlog "$shared"/tpm/eventlogs/*.bin "$td"/eventlog/*.bin
seed cel "$td"/cel/*.cel
seed ek_certificate "$td"/ek/swtpm/*.der "$td"/ek/swtpm/*.pem "$shared"/tpm/gce-certs/*
seed public_key "$td"/tpm/ak_*.pem "$td"/ek/swtpm/*.pub.pem
seed sigstore_bundle "$shared"/sigstore/conformance/*/bundle.sigstore.json "$shared"/sigstore/cosign-v3-image-kubewarden.sigstore.json
seed dsse_envelope "$td"/sigstore/simple-signing/*/*
seed signing_policy "$td"/sigstore/*.json
seed trusted_root "$shared"/sigstore/trusted_root.production.json
seed model_signature "$td"/model-signing/signatures/*.sig
mkdir -p "$corpus/pcr_selection" "$corpus/quote" "$corpus/boot_policy" "$corpus/pop_proof"
# pop_proof: a well-formed header (`v1.<time ms>.<32 hex id>.<base64url
# 64-byte signature>`), so mutations reach the signature check.
printf 'v1.1767225600000.00112233445566778899aabbccddeeff.%s' "$(printf 'A%.0s' {1..86})" \
  >"$corpus/pop_proof/seed-header"
printf '\x00\x00\x00\x01\x00\x0b\x03\xff\x00\x80' >"$corpus/pcr_selection/seed-sha256-0-7-23"
{ # quote: u16 split, then attest, then signature
  msg="$td/tpm/quote_rsa.msg"
  python3 -c "import os,sys; sys.stdout.buffer.write(os.path.getsize('$msg').to_bytes(2,'big'))"
  cat "$msg" "$td/tpm/quote_rsa.sig"
} >"$corpus/quote/seed-quote-rsa"
echo '{"golden_pcrs":{"sha256":{"0":"0000000000000000000000000000000000000000000000000000000000000000"}}}' \
  >"$corpus/boot_policy/seed-golden.json"

# vault's fuzz crate (vault/fuzz): the on-behalf-of user token and its JWKS.
vcorpus="$root/vault/fuzz/corpus"
mkdir -p "$vcorpus/obo_jwks" "$vcorpus/obo_jwt" "$vcorpus/oci_manifest" "$vcorpus/audit_verify"
cat >"$vcorpus/obo_jwks/seed-ec-rsa.json" <<'JWKS'
{"keys":[{"kty":"EC","crv":"P-256","kid":"ec-1","alg":"ES256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},{"kty":"RSA","kid":"rsa-1","alg":"RS256","e":"AQAB","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"}]}
JWKS
# A JWT with a well-formed header naming ec-1 and a claims set; the
# signature is zeros, so mutations explore parsing and key selection.
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
{
  printf '%s' '{"alg":"ES256","kid":"ec-1","typ":"JWT"}' | b64url
  printf '.'
  printf '%s' '{"iss":"https://idp.example","aud":"https://vault.example","sub":"alice","exp":1800000600,"scope":"read"}' | b64url
  printf '.'
  head -c 64 /dev/zero | b64url
} >"$vcorpus/obo_jwt/seed-es256"

# oci_manifest: a selector byte for the Content-Type (1: OCI manifest,
# 2: OCI index), then a signature manifest and a referrers index.
d="sha256:$(printf 'a%.0s' {1..64})"
{ printf '\x01'; printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"%s","size":2},"layers":[{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","digest":"%s","size":4321,"annotations":{"dev.sigstore.bundle.predicateType":"https://sigstore.dev/cosign/sign/v1"}}],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":525}}' "$d" "$d" "$d"; } \
  >"$vcorpus/oci_manifest/seed-bundle-manifest"
{ printf '\x02'; printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":700,"artifactType":"application/vnd.dev.sigstore.bundle.v0.3+json"}]}' "$d"; } \
  >"$vcorpus/oci_manifest/seed-referrers-index"
# audit_verify: an intact three-line chain (header, two records), built to
# the format in vault/src/audit/mod.rs.
python3 - "$vcorpus/audit_verify/seed-chain.jsonl" <<'PY'
import hashlib, json, sys
log_id = bytes(range(16))
prev = hashlib.sha256(b"keyward audit log v1 genesis\0" + log_id).hexdigest()
lines = [{"type": "header", "version": 1, "log_id": log_id.hex(), "seq": 0, "prev": prev}]
for seq, outcome in ((1, "attempt"), (2, "success")):
    prev = hashlib.sha256(json.dumps(lines[-1], separators=(",", ":")).encode()).hexdigest()
    lines.append({"seq": seq, "prev": prev, "time_ms": 1767225600000, "request_id": "r1",
                  "actor": "token:ab12", "operation": "kv.write", "path": "/v1/kv/x",
                  "outcome": outcome})
with open(sys.argv[1], "w") as f:
    f.write("".join(json.dumps(l, separators=(",", ":")) + "\n" for l in lines))
PY

# TARGET runs from attest/fuzz unless it is one of vault/fuzz's.
crate_of() { [[ -f "$root/vault/fuzz/fuzz_targets/$1.rs" ]] && echo vault || echo attest; }

targets=("$@")
if ((${#targets[@]} == 0)); then
  mapfile -t targets < <(cd attest/fuzz/fuzz_targets && ls *.rs | sed 's/\.rs$//'
    cd "$root/vault/fuzz/fuzz_targets" && ls *.rs | sed 's/\.rs$//')
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
built=" "
for target in "${targets[@]}"; do
  crate="$(crate_of "$target")"
  cd "$root/$crate"
  if [[ "$built" != *" $crate "* ]]; then
    CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}" cargo +nightly fuzz build
    built+="$crate "
  fi
  echo "== $crate/$target (${seconds}s)"
  dir="$root/$crate/fuzz/corpus/$target"
  mkdir -p "$dir"
  rc=0
  cargo +nightly fuzz run "$target" "$dir" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 || rc=$?
  grep -E "^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|stat::peak_rss_mb)|ERROR|panicked|SUMMARY" "$log" || true
  if compgen -G "fuzz/artifacts/$target/*" >/dev/null; then
    echo "fuzz-smoke: $target found a crash: $crate/fuzz/artifacts/$target/" >&2
    exit 1
  fi
  # A run that did not fuzz (no corpus directory, a build or option error)
  # is a failure too, never "ran without a crash".
  if ((rc != 0)) || ! grep -q '^stat::number_of_executed_units' "$log"; then
    echo "fuzz-smoke: $target did not run (exit $rc); its output:" >&2
    tail -20 "$log" >&2
    exit 1
  fi
done
echo "fuzz-smoke: all ${#targets[@]} targets ran without a crash"
