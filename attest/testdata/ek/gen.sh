#!/usr/bin/env bash
# Regenerates the EK and SubjectPublicKeyInfo test vectors in this directory.
# See README.md for what each file is and which test uses it.
#
# Needs: openssl (3.x), swtpm + swtpm_setup + swtpm_localca (0.7), tpm2-tools (5.x).
# Hermetic: every piece of state (swtpm-localca CA keys, TPM state, sockets)
# lives in a mktemp directory that is removed on exit; /var/lib/swtpm-localca
# and the system swtpm configuration are never read or written. Private keys
# are never copied out of that directory.
#
# Usage: attest/testdata/ek/gen.sh   (from anywhere)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
swtpm_pid=""

cleanup() {
    if [ -n "$swtpm_pid" ]; then
        kill "$swtpm_pid" 2>/dev/null || true
        wait "$swtpm_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "gen.sh: failed at line $LINENO" >&2' ERR

# Crafted certificates are valid from "now" for 100 years; tests validate at
# 2090-01-01, so the vectors stay valid if regenerated before then.
long_days=36500

mkdir -p "$here/keys" "$here/swtpm" "$here/crafted"

### 1. SubjectPublicKeyInfo vectors (openssl genpkey), public halves only.
k="$work/keys"
mkdir -p "$k"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$k/rsa2048.key" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -pkeyopt rsa_keygen_pubexp:3 \
    -out "$k/rsa3072-e3.key" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$k/p256.key"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$k/p384.key"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-521 -out "$k/p521.key"
openssl genpkey -algorithm ED25519 -out "$k/ed25519.key"
for name in rsa2048 rsa3072-e3 p256 p384 p521 ed25519; do
    openssl pkey -in "$k/$name.key" -pubout -out "$here/keys/$name.pub.pem"
    openssl pkey -in "$k/$name.key" -pubout -outform DER -out "$here/keys/$name.pub.der"
done
openssl ec -in "$k/p256.key" -pubout -conv_form compressed -outform DER \
    -out "$here/keys/p256-compressed.pub.der" 2>/dev/null

### 2. swtpm local CA and two TPMs with EK certificates (swtpm_setup).
ca="$work/localca"
mkdir -p "$ca"
cat >"$work/swtpm-localca.conf" <<EOF
statedir = $ca
signingkey = $ca/signkey.pem
issuercert = $ca/issuercert.pem
certserial = $ca/certserial
EOF
cat >"$work/swtpm-localca.options" <<EOF
--platform-manufacturer Keyward
--platform-version 2.1
--platform-model test
EOF
cat >"$work/swtpm_setup.conf" <<EOF
create_certs_tool = /usr/bin/swtpm_localca
create_certs_tool_config = $work/swtpm-localca.conf
create_certs_tool_options = $work/swtpm-localca.options
active_pcr_banks = sha256
EOF

start_swtpm() { # state-dir
    local sock="$work/tpm.sock"
    rm -f "$sock" "$sock.ctrl"
    swtpm socket --tpm2 --tpmstate dir="$1" \
        --server type=unixio,path="$sock" --ctrl type=unixio,path="$sock.ctrl" \
        --flags not-need-init,startup-clear 2>>"$work/swtpm.log" &
    swtpm_pid=$!
    for _ in $(seq 50); do
        [ -S "$sock" ] && break
        sleep 0.1
    done
    [ -S "$sock" ] || { echo "swtpm did not start" >&2; exit 1; }
    export TPM2TOOLS_TCTI="swtpm:path=$sock"
}

stop_swtpm() {
    kill "$swtpm_pid"
    wait "$swtpm_pid" || true
    swtpm_pid=""
}

for tpm in tpm1 tpm2; do
    state="$work/$tpm"
    mkdir -p "$state"
    # HOME/XDG_CONFIG_HOME point into the work dir so no per-user swtpm
    # configuration is read or created.
    HOME="$work" XDG_CONFIG_HOME="$work" swtpm_setup --tpm2 --create-ek-cert \
        --config "$work/swtpm_setup.conf" --tpm-state "$state" >"$work/$tpm-setup.log" 2>&1 \
        || { cat "$work/$tpm-setup.log" >&2; exit 1; }

    start_swtpm "$state"
    # TCG EK Credential Profile (EK NV indices, low range): RSA 2048 EK certificate at
    # 0x01c00002; swtpm stores its ECC P-384 EK certificate at 0x01c00016.
    tpm2_nvread 0x01c00002 -o "$here/swtpm/$tpm-ek-rsa.der" 2>/dev/null
    tpm2_nvread 0x01c00016 -o "$here/swtpm/$tpm-ek-ecc.der" 2>/dev/null
    # The EK public as the enrolling host sees it: recreated from the default
    # template (TPM2B_PUBLIC), and as PEM from the persistent EKs swtpm_setup made.
    tpm2_createek -c - -G rsa -u "$here/swtpm/$tpm-ek-rsa.tpm2b" >/dev/null
    tpm2_readpublic -c 0x81010001 -f pem -o "$here/swtpm/$tpm-ek-rsa.pub.pem" >/dev/null
    tpm2_readpublic -c 0x81010016 -f pem -o "$here/swtpm/$tpm-ek-ecc.pub.pem" >/dev/null
    stop_swtpm
done
cp "$ca/swtpm-localca-rootca-cert.pem" "$here/swtpm/root.pem"
cp "$ca/issuercert.pem" "$here/swtpm/intermediate.pem"

# Sanity: the NV certificates carry the EK public keys read back from the TPMs.
for tpm in tpm1 tpm2; do
    for alg in rsa ecc; do
        cmp <(openssl x509 -inform DER -in "$here/swtpm/$tpm-ek-$alg.der" -noout -pubkey) \
            "$here/swtpm/$tpm-ek-$alg.pub.pem"
    done
    openssl verify -CAfile "$here/swtpm/root.pem" -untrusted "$here/swtpm/intermediate.pem" \
        <(openssl x509 -inform DER -in "$here/swtpm/$tpm-ek-rsa.der") >/dev/null
done

### 3. Crafted certificates (openssl), signed by the swtpm local CA keys or by
### throw-away CAs made here. Each one breaks exactly one rule.
c="$work/crafted"
mkdir -p "$c"
root_cert="$ca/swtpm-localca-rootca-cert.pem"
root_key="$ca/swtpm-localca-rootca-privkey.pem"
int_cert="$ca/issuercert.pem"
int_key="$ca/signkey.pem"
ek_pub="$here/swtpm/tpm1-ek-rsa.pub.pem"
ek_ecc_pub="$here/swtpm/tpm1-ek-ecc.pub.pem"

cat >"$c/ext.cnf" <<'EOF'
[ek]
basicConstraints = critical, CA:FALSE
keyUsage = critical, keyEncipherment
extendedKeyUsage = 2.23.133.8.1
subjectAltName = critical, dirName:tpm_dn
authorityKeyIdentifier = keyid

[ek_ecc]
basicConstraints = critical, CA:FALSE
keyUsage = critical, keyAgreement
extendedKeyUsage = 2.23.133.8.1
subjectAltName = critical, dirName:tpm_dn

[ek_no_eku]
basicConstraints = critical, CA:FALSE
keyUsage = critical, keyEncipherment
subjectAltName = critical, dirName:tpm_dn

[ek_wrong_eku]
basicConstraints = critical, CA:FALSE
keyUsage = critical, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = critical, dirName:tpm_dn

[ek_unknown_critical]
basicConstraints = critical, CA:FALSE
keyUsage = critical, keyEncipherment
extendedKeyUsage = 2.23.133.8.1
subjectAltName = critical, dirName:tpm_dn
1.3.6.1.4.1.55555.1 = critical, ASN1:NULL

[ek_is_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyEncipherment, keyCertSign
extendedKeyUsage = 2.23.133.8.1
subjectAltName = critical, dirName:tpm_dn

[ek_partial_tpm_identity]
basicConstraints = critical, CA:FALSE
subjectAltName = critical, dirName:partial_tpm_dn

[ek_bad_basic_constraints]
2.5.29.19 = critical, DER:0101

[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign

[ca_pathlen0]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign

[not_ca]
basicConstraints = critical, CA:FALSE
keyUsage = critical, keyCertSign, digitalSignature

[ca_no_keycertsign]
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature

[tpm_dn]
# openssl drops everything up to the first '.' of a field name.
a.2.23.133.2.1 = id:00001014
a.2.23.133.2.2 = swtpm
a.2.23.133.2.3 = id:20191023

[partial_tpm_dn]
a.2.23.133.2.1 = id:00001014
EOF

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$c/csr.key"
serial=1000
issue() { # out-der subject issuer-cert issuer-key pubkey-pem ext-section days [extra x509 args...]
    local out=$1 subject=$2 issuer_cert=$3 issuer_key=$4 pub=$5 section=$6 days=$7
    shift 7
    serial=$((serial + 1))
    openssl req -new -key "$c/csr.key" -subj "$subject" -out "$c/req.csr"
    openssl x509 -req -in "$c/req.csr" -CA "$issuer_cert" -CAkey "$issuer_key" \
        -force_pubkey "$pub" -extfile "$c/ext.cnf" -extensions "$section" \
        -days "$days" -set_serial "$serial" -outform DER -out "$out" "$@" 2>/dev/null
}
self_signed() { # out-pem key subject ext-section hash
    openssl req -new -x509 -key "$2" -subj "$3" -extensions "$4" -config <(
        printf '[req]\ndistinguished_name=dn\n[dn]\n'
        cat "$c/ext.cnf"
    ) -days "$long_days" -set_serial 1 "-$5" -out "$1"
}
new_key() { # out curve|rsa
    if [ "$2" = rsa ]; then
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null
    else
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:"$2" -out "$1"
    fi
}
pub_of() { openssl pkey -in "$1" -pubout -out "$2"; }
to_pem() { openssl x509 -inform DER -in "$1" -out "$2"; }

out="$here/crafted"
# Good EK certificates under the swtpm intermediate, other signature schemes.
issue "$out/ek-rsa-pss.der" "/CN=unknown" "$int_cert" "$int_key" "$ek_pub" ek "$long_days" \
    -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest
issue "$out/ek-sha1.der" "/CN=unknown" "$int_cert" "$int_key" "$ek_pub" ek "$long_days" -sha1
issue "$out/ek-sha384.der" "/CN=unknown" "$int_cert" "$int_key" "$ek_pub" ek "$long_days" -sha384
issue "$out/ek-sha512.der" "/CN=unknown" "$int_cert" "$int_key" "$ek_pub" ek "$long_days" -sha512
# One rule broken each.
issue "$out/ek-no-eku.der" "/CN=unknown" "$int_cert" "$int_key" "$ek_pub" ek_no_eku "$long_days" -sha256
issue "$out/ek-wrong-eku.der" "/CN=unknown" "$int_cert" "$int_key" "$ek_pub" ek_wrong_eku "$long_days" -sha256
issue "$out/ek-unknown-critical.der" "/CN=unknown" "$int_cert" "$int_key" "$ek_pub" ek_unknown_critical "$long_days" -sha256
issue "$out/ek-is-ca.der" "/CN=unknown" "$int_cert" "$int_key" "$ek_pub" ek_is_ca "$long_days" -sha256
issue "$out/ek-expired.der" "/CN=unknown" "$int_cert" "$int_key" "$ek_pub" ek 1 -sha256
issue "$out/ek-partial-tpm-identity.der" "/CN=unknown" "$int_cert" "$int_key" "$ek_pub" ek_partial_tpm_identity "$long_days" -sha256
issue "$out/ek-bad-basic-constraints.der" "/CN=unknown" "$int_cert" "$int_key" "$ek_pub" ek_bad_basic_constraints "$long_days" -sha256
new_key "$c/p521.key" P-521
pub_of "$c/p521.key" "$c/p521.pub"
issue "$out/ek-p521.der" "/CN=unknown" "$int_cert" "$int_key" "$c/p521.pub" ek "$long_days" -sha256
# Same issuer name as the swtpm intermediate, signed by another key.
new_key "$c/impostor.key" rsa
# string_mask=default makes the name a PrintableString, byte-identical to the
# swtpm intermediate's subject (the verifier compares names as DER bytes).
openssl req -new -x509 -key "$c/impostor.key" -subj "/CN=swtpm-localca" -days "$long_days" \
    -config <(printf '[req]\ndistinguished_name=dn\nstring_mask=default\n[dn]\n') \
    -addext "basicConstraints=critical,CA:TRUE" -addext "subjectKeyIdentifier=hash" \
    -out "$c/impostor.pem" 2>/dev/null
cmp <(openssl x509 -in "$c/impostor.pem" -noout -subject -nameopt RFC2253,dump_der) \
    <(openssl x509 -in "$int_cert" -noout -subject -nameopt RFC2253,dump_der)
issue "$out/ek-wrong-signer.der" "/CN=unknown" "$c/impostor.pem" "$c/impostor.key" "$ek_pub" ek "$long_days" -sha256

# CA rules: an intermediate that is not a CA, one without keyCertSign, and a
# pathlen:0 intermediate with another CA below it; all issued by the swtpm root.
for kind in not_ca ca_no_keycertsign ca_pathlen0; do
    name=${kind//_/-}
    new_key "$c/$name.key" P-256
    pub_of "$c/$name.key" "$c/$name.pub"
    issue "$c/$name.der" "/CN=keyward-test-$name" "$root_cert" "$root_key" "$c/$name.pub" "$kind" "$long_days" -sha256
    to_pem "$c/$name.der" "$out/intermediate-$name.pem"
done
issue "$out/ek-under-not-ca.der" "/CN=unknown" "$out/intermediate-not-ca.pem" "$c/not-ca.key" "$ek_pub" ek "$long_days" -sha256
issue "$out/ek-under-ca-no-keycertsign.der" "/CN=unknown" "$out/intermediate-ca-no-keycertsign.pem" \
    "$c/ca-no-keycertsign.key" "$ek_pub" ek "$long_days" -sha256
new_key "$c/below-pathlen0.key" P-256
pub_of "$c/below-pathlen0.key" "$c/below-pathlen0.pub"
issue "$c/below-pathlen0.der" "/CN=keyward-test-below-pathlen0" "$out/intermediate-ca-pathlen0.pem" \
    "$c/ca-pathlen0.key" "$c/below-pathlen0.pub" ca "$long_days" -sha256
to_pem "$c/below-pathlen0.der" "$out/intermediate-below-pathlen0.pem"
issue "$out/ek-under-pathlen0.der" "/CN=unknown" "$out/intermediate-below-pathlen0.pem" \
    "$c/below-pathlen0.key" "$ek_pub" ek "$long_days" -sha256

# ECDSA chain: P-384 root (ecdsa-with-SHA384) -> P-256 intermediate signed
# with ecdsa-with-SHA256 (P-384 key, SHA-256) -> EK (swtpm tpm1 ECC EK key)
# signed with ecdsa-with-SHA384 (P-256 key, SHA-384).
new_key "$c/ecc-root.key" P-384
self_signed "$out/ecc-root.pem" "$c/ecc-root.key" "/CN=keyward-test-ecc-root" ca sha384
new_key "$c/ecc-int.key" P-256
pub_of "$c/ecc-int.key" "$c/ecc-int.pub"
issue "$c/ecc-int.der" "/CN=keyward-test-ecc-intermediate" "$out/ecc-root.pem" "$c/ecc-root.key" \
    "$c/ecc-int.pub" ca "$long_days" -sha256
to_pem "$c/ecc-int.der" "$out/ecc-intermediate.pem"
issue "$out/ek-ecc-under-ecc.der" "/" "$out/ecc-intermediate.pem" "$c/ecc-int.key" "$ek_ecc_pub" ek_ecc "$long_days" -sha384

# A chain one intermediate longer than the verifier allows (root + 5).
new_key "$c/deep-0.key" P-256
self_signed "$c/deep-0.pem" "$c/deep-0.key" "/CN=keyward-test-deep-0" ca sha256
cp "$c/deep-0.pem" "$out/deep-root.pem"
: >"$out/deep-intermediates.pem"
prev=0
for i in 1 2 3 4 5; do
    new_key "$c/deep-$i.key" P-256
    pub_of "$c/deep-$i.key" "$c/deep-$i.pub"
    issue "$c/deep-$i.der" "/CN=keyward-test-deep-$i" "$c/deep-$prev.pem" "$c/deep-$prev.key" \
        "$c/deep-$i.pub" ca "$long_days" -sha256
    to_pem "$c/deep-$i.der" "$c/deep-$i.pem"
    cat "$c/deep-$i.pem" >>"$out/deep-intermediates.pem"
    prev=$i
done
issue "$out/ek-deep.der" "/CN=unknown" "$c/deep-5.pem" "$c/deep-5.key" "$ek_ecc_pub" ek_ecc "$long_days" -sha256

### 4. Public keys of the Google vTPM EK certificates (shared real-world data),
### so tests can present "the EK the TPM reported" independently of the cert.
gce="$here/../../../../shared/testdata/tpm/gce-certs"
mkdir -p "$here/gce"
for name in uca_tpm_rsa_enc uca_tpm_ecc_enc pca_tpm_rsa_enc pca_tpm_ecc_enc; do
    openssl x509 -in "$gce/${name}_cert.pem" -noout -pubkey >"$here/gce/$name.pub.pem"
done

echo "EK test vectors written to $here"
