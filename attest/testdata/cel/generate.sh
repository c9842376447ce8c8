#!/usr/bin/env bash
# Generates a Keyward workload log (TCG Canonical Event Log, TLV encoding)
# with two launch records, written independently of the Rust encoder, and the
# PCR 23 value swtpm computes when both record digests are extended into it.
#
#   two-launches.cel   records 0 and 1, both for PCR 23
#   expected.json      the records' fields and the SHA-256 PCR 23 value
#
# Needs: swtpm, swtpm_ioctl, tpm2-tools, xxd, sha256sum, jq. swtpm runs as a
# child process with its state in a temporary directory; it is stopped and
# waited for on exit.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
state=$(mktemp -d)
swtpm_pid=""
cleanup() {
    if [[ -n "$swtpm_pid" ]]; then
        kill "$swtpm_pid" 2>/dev/null || true
        wait "$swtpm_pid" 2>/dev/null || true
    fi
    rm -rf "$state"
}
trap cleanup EXIT

ascii_hex() { printf '%s' "$1" | xxd -p | tr -d '\n'; }
sha256_of_hex() { printf '%s' "$1" | xxd -r -p | sha256sum | cut -d' ' -f1; }
tlv() { # type value_hex: 1-byte type, 4-byte big-endian length, value
    printf '%02x%08x%s' "$1" $(( ${#2} / 2 )) "$2"
}

WORKLOAD_PCR=23
LAUNCH_RECORD_CONTENT_TYPE=75
SHA256_ALG_ID=11

port=$((20000 + RANDOM % 20000))
ctrl=$((port + 1))
swtpm socket --tpm2 --tpmstate dir="$state" \
    --server type=tcp,port="$port",bindaddr=127.0.0.1 \
    --ctrl type=tcp,port="$ctrl",bindaddr=127.0.0.1 \
    --flags not-need-init,startup-clear >"$state/swtpm.log" 2>&1 &
swtpm_pid=$!
for _ in $(seq 50); do
    swtpm_ioctl --tcp 127.0.0.1:"$ctrl" -c >/dev/null 2>&1 && break
    sleep 0.1
done
export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$port"

log=""
records="[]"
recnum=0
launch() { # instance_id image_ref image_digest model_name model_digest public_key_text
    local key_sha256; key_sha256=$(printf '%s' "$6" | sha256sum | cut -d' ' -f1)
    local content
    content="$(tlv 0 "$(ascii_hex "$1")")$(tlv 1 "$(ascii_hex "$2")")$(tlv 2 "$(ascii_hex "$3")")"
    content+="$(tlv 3 "$(ascii_hex "$4")")$(tlv 4 "$(ascii_hex "$5")")$(tlv 5 "$key_sha256")"
    local content_tlv; content_tlv=$(tlv $LAUNCH_RECORD_CONTENT_TYPE "$content")
    # The event digest is SHA-256 over the whole content TLV.
    local digest; digest=$(sha256_of_hex "$content_tlv")
    log+="$(tlv 0 "$(printf '%016x' $recnum)")$(tlv 1 "$(printf '%02x' $WORKLOAD_PCR)")"
    log+="$(tlv 3 "$(tlv $SHA256_ALG_ID "$digest")")${content_tlv}"
    tpm2_pcrextend "${WORKLOAD_PCR}:sha256=${digest}"
    records=$(jq -c --arg a "$1" --arg b "$2" --arg c "$3" --arg d "$4" --arg e "$5" \
        --arg k "$key_sha256" --arg g "$digest" \
        '. + [{instance_id: $a, image_reference: $b, image_digest: $c, model_name: $d,
               model_digest: $e, instance_key_sha256: $k, event_digest: $g}]' <<<"$records")
    recnum=$((recnum + 1))
}

launch "inst-0001" "registry.example/keyward/agent:1.4" \
    "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172" \
    "summarizer-7b" "sha256:2f0e3b7c1d5a49e8b6a1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9" \
    "test instance public key 1"
launch "inst-0002" "registry.example/keyward/agent@sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172" \
    "sha256:c811d58de79c92f03214e63aa339484e488d694ae8a6283b5f3f17a9faf50172" \
    "classifier" "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff" \
    "test instance public key 2"

printf '%s' "$log" | xxd -r -p >"$here/two-launches.cel"
pcr=$(tpm2_pcrread "sha256:$WORKLOAD_PCR" | awk '/0x/ { sub(/.*0x/, ""); print tolower($0) }')
jq -n --argjson records "$records" --arg pcr "$pcr" --argjson index $WORKLOAD_PCR \
    '{pcr: $index, sha256: $pcr, records: $records}' >"$here/expected.json"

swtpm_ioctl --tcp 127.0.0.1:"$ctrl" -s >/dev/null
wait "$swtpm_pid" || true
swtpm_pid=""
echo "wrote two-launches.cel and expected.json to $here"
