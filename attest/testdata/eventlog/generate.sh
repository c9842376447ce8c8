#!/usr/bin/env bash
# Generates the synthetic TCG event logs in this directory and the PCR values
# a real (software) TPM computes for them.
#
#   locality3.bin          crypto-agile log (SHA-1, SHA-256) whose TPM was
#                          started from locality 3 (StartupLocality event),
#                          with Secure Boot on, an S-CRTM version, one EFI
#                          application and GRUB strings in PCR 8.
#   unknown-algorithm.bin  the same events, but the Spec ID event also lists
#                          SM3_256 (0x0012), whose digests sit between the
#                          SHA-1 and SHA-256 ones in every event.
#   expected.json          PCRs 0-9 and 14 in both banks, read back from swtpm
#                          after TPM2_Startup at locality 3 and the same extends.
#
# Needs: swtpm, swtpm_ioctl, tpm2-tools, xxd, sha1sum, sha256sum, iconv, jq.
# swtpm runs as a child process with its state in a temporary directory; it is
# stopped and waited for on exit.
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

# --- hex helpers: everything is built as lower-case hex, then written once ---
le16() { printf '%04x' "$1" | sed -E 's/(..)(..)/\2\1/'; }
le32() { printf '%08x' "$1" | sed -E 's/(..)(..)(..)(..)/\4\3\2\1/'; }
le64() { printf '%016x' "$1" | sed -E 's/(..)(..)(..)(..)(..)(..)(..)(..)/\8\7\6\5\4\3\2\1/'; }
ascii_hex() { printf '%s' "$1" | xxd -p | tr -d '\n'; }
ucs2_hex() { printf '%s' "$1" | iconv -f utf-8 -t utf-16le | xxd -p | tr -d '\n'; }
sha1_of_hex() { printf '%s' "$1" | xxd -r -p | sha1sum | cut -d' ' -f1; }
sha256_of_hex() { printf '%s' "$1" | xxd -r -p | sha256sum | cut -d' ' -f1; }
zeros() { printf '%0*d' $(($1 * 2)) 0; }

EV_NO_ACTION=3
EV_SEPARATOR=4
EV_S_CRTM_VERSION=8
EV_IPL=13
EV_EFI_VARIABLE_DRIVER_CONFIG=$((0x80000001))
EV_EFI_BOOT_SERVICES_APPLICATION=$((0x80000003))
EV_EFI_ACTION=$((0x80000007))

# --- swtpm, started at locality 3 ---
port=$((20000 + RANDOM % 20000))
ctrl=$((port + 1))
swtpm socket --tpm2 --tpmstate dir="$state" \
    --server type=tcp,port="$port",bindaddr=127.0.0.1 \
    --ctrl type=tcp,port="$ctrl",bindaddr=127.0.0.1 \
    --flags not-need-init --locality allow-set-locality >"$state/swtpm.log" 2>&1 &
swtpm_pid=$!
for _ in $(seq 50); do
    swtpm_ioctl --tcp 127.0.0.1:"$ctrl" -c >/dev/null 2>&1 && break
    sleep 0.1
done
export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$port"

# TPM2_Startup(TPM_SU_CLEAR) sent raw, so that it carries locality 3 (the TCTI
# would reset the locality to 0). PC Client: PCR 0 then starts as 0...03.
swtpm_ioctl --tcp 127.0.0.1:"$ctrl" -l 3 >/dev/null
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf '\x80\x01\x00\x00\x00\x0c\x00\x00\x01\x44\x00\x00' >&3
response=$(head -c 10 <&3 | xxd -p)
exec 3>&-
[[ "$response" == "80010000000a00000000" ]] || { echo "TPM2_Startup failed: $response" >&2; exit 1; }
swtpm_ioctl --tcp 127.0.0.1:"$ctrl" -l 0 >/dev/null

# --- the events (shared by both logs) ---
known_events=""   # hex of TCG_PCR_EVENT2 records with SHA-1 and SHA-256
sm3_events=""     # the same with an SM3_256 digest in between
add_event() {     # pcr type data_hex sha1_hex sha256_hex [extend]
    local pcr=$1 type=$2 data=$3 d1=$4 d256=$5 extend=${6:-yes}
    local size=$(( ${#data} / 2 ))
    local head; head="$(le32 "$pcr")$(le32 "$type")"
    known_events+="${head}$(le32 2)$(le16 4)${d1}$(le16 11)${d256}$(le32 "$size")${data}"
    sm3_events+="${head}$(le32 3)$(le16 4)${d1}$(le16 18)$(printf 'a5%.0s' $(seq 32))$(le16 11)${d256}$(le32 "$size")${data}"
    if [[ "$extend" == yes ]]; then
        tpm2_pcrextend "${pcr}:sha1=${d1},sha256=${d256}"
    fi
}
add_measured() { # pcr type data_hex: the digest is the hash of the data
    add_event "$1" "$2" "$3" "$(sha1_of_hex "$3")" "$(sha256_of_hex "$3")"
}

# PFP §10.4.5.3 StartupLocality (EV_NO_ACTION, not extended).
add_event 0 $EV_NO_ACTION "$(ascii_hex StartupLocality)0003" "$(zeros 20)" "$(zeros 32)" no
# PFP §10.4.5.1: the S-CRTM version is a NUL-terminated UCS-2 string.
add_measured 0 $EV_S_CRTM_VERSION "$(ucs2_hex 'Keyward Test Firmware 1.0')0000"
# UEFI_VARIABLE_DATA for EFI_GLOBAL_VARIABLE SecureBoot = 1.
secure_boot="61dfe48bca93d211aa0d00e098032b8c$(le64 10)$(le64 1)$(ucs2_hex SecureBoot)01"
add_measured 7 $EV_EFI_VARIABLE_DRIVER_CONFIG "$secure_boot"
for pcr in 0 1 2 3 5 6 7; do
    add_measured $pcr $EV_SEPARATOR 00000000
done
add_measured 4 $EV_EFI_ACTION "$(ascii_hex 'Calling EFI Application from Boot Option')"
# An application: the digest is an (here invented) Authenticode hash, the data
# an informational UEFI_IMAGE_LOAD_EVENT that does not hash to it.
app_image=$(ascii_hex 'keyward test boot application')
add_event 4 $EV_EFI_BOOT_SERVICES_APPLICATION "$(zeros 32)" \
    "$(sha1_of_hex "$app_image")" "$(sha256_of_hex "$app_image")"
add_measured 4 $EV_SEPARATOR 00000000
# GRUB 2.04+: logs "<prefix><string>\0", measures only <string>.
grub_string() { # pcr prefix text
    local text; text=$(ascii_hex "$3")
    add_event "$1" $EV_IPL "$(ascii_hex "$2")${text}00" "$(sha1_of_hex "$text")" "$(sha256_of_hex "$text")"
}
grub_string 8 'grub_cmd: ' 'linux /vmlinuz root=/dev/vda1 ro quiet'
grub_string 8 'kernel_cmdline: ' '/vmlinuz root=/dev/vda1 ro quiet'
add_measured 5 $EV_EFI_ACTION "$(ascii_hex 'Exit Boot Services Invocation')"

# --- the two logs ---
spec_id() { # number-of-algorithms, then alg/size pairs
    local n=$1; shift
    local body; body="$(ascii_hex 'Spec ID Event03')00$(le32 0)00020002$(le32 "$n")"
    while [[ $# -gt 0 ]]; do body+="$(le16 "$1")$(le16 "$2")"; shift 2; done
    body+=00
    printf '%s' "$(le32 0)$(le32 $EV_NO_ACTION)$(zeros 20)$(le32 $(( ${#body} / 2 )))${body}"
}
printf '%s' "$(spec_id 2 4 20 11 32)${known_events}" | xxd -r -p >"$here/locality3.bin"
printf '%s' "$(spec_id 3 4 20 18 32 11 32)${sm3_events}" | xxd -r -p >"$here/unknown-algorithm.bin"

# --- what the TPM computed ---
pcrs_json() { # bank
    tpm2_pcrread "$1:0,1,2,3,4,5,6,7,8,9,14" |
        awk '/^ *[0-9]+ *: *0x/ { gsub(/ /, ""); split($0, f, ":0x"); printf "%s %s\n", f[1], tolower(f[2]) }' |
        jq -R -n '[inputs | split(" ") | {(.[0]): .[1]}] | add'
}
jq -n --argjson sha1 "$(pcrs_json sha1)" --argjson sha256 "$(pcrs_json sha256)" \
    '{sha1: $sha1, sha256: $sha256}' >"$here/expected.json"

swtpm_ioctl --tcp 127.0.0.1:"$ctrl" -s >/dev/null
wait "$swtpm_pid" || true
swtpm_pid=""
echo "wrote locality3.bin, unknown-algorithm.bin and expected.json to $here"
