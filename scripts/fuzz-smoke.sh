#!/usr/bin/env bash
# Runs every keyward-attest fuzz target for a short time (default 20 s each),
# seeded from the real vectors: swtpm quotes, keys and credentials, real
# boot event logs, CEL logs and EK certificates.
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
mkdir -p "$corpus/pcr_selection" "$corpus/quote" "$corpus/boot_policy"
printf '\x00\x00\x00\x01\x00\x0b\x03\xff\x00\x80' >"$corpus/pcr_selection/seed-sha256-0-7-23"
{ # quote: u16 split, then attest, then signature
  msg="$td/tpm/quote_rsa.msg"
  python3 -c "import os,sys; sys.stdout.buffer.write(os.path.getsize('$msg').to_bytes(2,'big'))"
  cat "$msg" "$td/tpm/quote_rsa.sig"
} >"$corpus/quote/seed-quote-rsa"
echo '{"golden_pcrs":{"sha256":{"0":"0000000000000000000000000000000000000000000000000000000000000000"}}}' \
  >"$corpus/boot_policy/seed-golden.json"

targets=("$@")
if ((${#targets[@]} == 0)); then
  mapfile -t targets < <(cd attest/fuzz/fuzz_targets && ls *.rs | sed 's/\.rs$//')
fi

cd attest
CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}" cargo +nightly fuzz build
for target in "${targets[@]}"; do
  echo "== $target (${seconds}s)"
  cargo +nightly fuzz run "$target" "$corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 2>&1 |
    grep -E "^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|stat::peak_rss_mb)|ERROR|panicked|SUMMARY" || true
  if compgen -G "fuzz/artifacts/$target/*" >/dev/null; then
    echo "fuzz-smoke: $target found a crash: attest/fuzz/artifacts/$target/" >&2
    exit 1
  fi
done
echo "fuzz-smoke: all targets ran without a crash"
