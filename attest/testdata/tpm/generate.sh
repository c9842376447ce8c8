#!/usr/bin/env bash
# Regenerates the TPM 2.0 test vectors in this directory from a fresh swtpm.
#
# Needs: swtpm (0.7+), tpm2-tools (5.4), xxd, sha256sum. Run from anywhere:
#   attest/testdata/tpm/generate.sh
# Every run creates new keys, so every file changes; commit them together.
#
# swtpm runs as a child of this script (never daemonised), with its state in a
# fresh mktemp directory; the EXIT trap kills it, waits for it and removes the
# state. Nothing outside that directory and this one is touched.
set -euo pipefail

OUT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="$(mktemp -d)"
SWTPM_PID=""

cleanup() {
    if [[ -n "$SWTPM_PID" ]]; then
        kill "$SWTPM_PID" 2>/dev/null || true
        wait "$SWTPM_PID" 2>/dev/null || true
    fi
    rm -rf "$STATE"
}
trap cleanup EXIT

swtpm socket --tpm2 \
    --server "type=unixio,path=$STATE/sock" \
    --ctrl "type=unixio,path=$STATE/sock.ctrl" \
    --flags not-need-init,startup-clear \
    --tpmstate "dir=$STATE" \
    --log "file=$STATE/swtpm.log" &
SWTPM_PID=$!
for _ in $(seq 50); do
    [[ -S "$STATE/sock" ]] && break
    sleep 0.1
done
export TPM2TOOLS_TCTI="swtpm:path=$STATE/sock"
tpm2_getrandom 1 >/dev/null

W="$STATE/work"
mkdir "$W"

# The nonce every quote carries as qualifyingData (extraData).
NONCE="$(printf 'keyward test nonce' | sha256sum | cut -d' ' -f1)"
printf '%s\n' "$NONCE" >"$OUT/nonce.hex"

# Non-zero PCR values, so that a reordered or substituted value changes the digest.
for i in 0 1 2 3 4 5 6 7 23; do
    d256="$(printf 'keyward pcr %d' "$i" | sha256sum | cut -d' ' -f1)"
    d1="$(printf 'keyward pcr %d' "$i" | sha1sum | cut -d' ' -f1)"
    tpm2_pcrextend "$i:sha256=$d256,sha1=$d1"
done

# Endorsement keys (TCG EK Credential Profile default templates, low range).
tpm2_createek -G rsa -c "$W/ek_rsa.ctx" -u "$OUT/ek_rsa.pub"
tpm2_flushcontext -t
tpm2_createek -G ecc -c "$W/ek_ecc.ctx" -u "$OUT/ek_ecc.pub"
tpm2_flushcontext -t

# Attestation keys under the RSA EK: name, TPM2B_PUBLIC and PEM for each.
make_ak() { # name alg hash scheme
    tpm2_createak -C "$W/ek_rsa.ctx" -c "$W/$1.ctx" -G "$2" -g "$3" -s "$4" \
        -u "$OUT/$1.pub" -n "$OUT/$1.name" >/dev/null
    tpm2_flushcontext -t
    tpm2_readpublic -c "$W/$1.ctx" -f pem -o "$OUT/$1.pem" >/dev/null
}
make_ak ak_rsa rsa sha256 rsassa
make_ak ak_rsapss rsa sha256 rsapss
make_ak ak_ecc ecc256 sha256 ecdsa
make_ak ak_ecc384 ecc384 sha384 ecdsa
tpm2_flushcontext -t

PCRS="sha256:0,1,2,3,4,5,6,7,23"
quote() { # ak out-prefix selection hash scheme
    tpm2_quote -c "$W/$1.ctx" -l "$3" -g "$4" --scheme "$5" -q "$NONCE" \
        -m "$OUT/$2.msg" -s "$OUT/$2.sig" -o "$OUT/$2.pcrs" >/dev/null
    tpm2_flushcontext -t
    # Independent check of every vector with the reference tool.
    if [[ "$5" == rsapss ]]; then
        # tpm2_checkquote 5.4 verifies RSA signatures with PKCS#1 v1.5 padding
        # only (tpm2-software/tpm2-tools#3283), so the PSS signature is
        # checked with OpenSSL, salt length = digest length as the TPM uses.
        tail -c +7 "$OUT/$2.sig" >"$W/$2.sig.raw"
        openssl dgst -"$4" -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest \
            -verify "$OUT/$1.pem" -signature "$W/$2.sig.raw" "$OUT/$2.msg" >/dev/null
        echo "openssl dgst (RSA-PSS): $2 OK"
    else
        tpm2_checkquote -u "$OUT/$1.pem" -m "$OUT/$2.msg" -s "$OUT/$2.sig" \
            -f "$OUT/$2.pcrs" -g "$4" -q "$NONCE" >/dev/null
        echo "tpm2_checkquote: $2 OK"
    fi
}
quote ak_rsa quote_rsa "$PCRS" sha256 rsassa
quote ak_rsapss quote_rsapss "$PCRS" sha256 rsapss
quote ak_ecc quote_ecc "$PCRS" sha256 ecdsa
quote ak_ecc384 quote_ecc384 "$PCRS" sha384 ecdsa
quote ak_rsa quote_rsa_two_banks "sha256:0,23+sha1:0,7" sha256 rsassa

# TPM2_Certify output: a genuine TPMS_ATTEST signed by the AK, but of type
# TPM_ST_ATTEST_CERTIFY, not a quote.
tpm2_certify -c "$W/ak_rsa.ctx" -C "$W/ak_rsa.ctx" -g sha256 \
    -o "$OUT/certify_rsa.msg" -s "$OUT/certify_rsa.sig" >/dev/null
tpm2_flushcontext -t

# TPM2_Sign over a forged quote: the real quote with the first byte of the
# magic changed, so the TPM agrees to hash and sign it with the restricted AK
# (it refuses data starting with TPM_GENERATED_VALUE, Part 1 §36.3).
{ printf '\xfe'; tail -c +2 "$OUT/quote_rsa.msg"; } >"$OUT/forged_quote_rsa.msg"
tpm2_sign -c "$W/ak_rsa.ctx" -g sha256 -o "$OUT/forged_quote_rsa.sig" \
    "$OUT/forged_quote_rsa.msg" >/dev/null
tpm2_flushcontext -t

# A credential blob written by tpm2-tools itself, for the file-format test.
printf 'keyward credential secret 32 byt' >"$W/secret"
tpm2_makecredential -T none -e "$OUT/ek_rsa.pub" -s "$W/secret" \
    -n "$(xxd -p -c 256 "$OUT/ak_rsa.name")" -o "$OUT/makecredential_rsa.blob" \
    >/dev/null 2> >(grep -v 'tcti=none' >&2)

echo "vectors written to $OUT"
