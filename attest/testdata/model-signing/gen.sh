#!/usr/bin/env bash
# Regenerates the model-signing test vectors in this directory with the real
# `model_signing` CLI (PyPI model-signing 1.1.1 and 1.0.1) and OpenSSL.
#
#   attest/testdata/model-signing/gen.sh
#
# Needs python3 (venv, pip) with network access to PyPI, and openssl. To reuse
# existing environments set MS11_VENV / MS10_VENV to venv directories that
# already hold the pinned packages below. Everything temporary lives in a
# mktemp directory removed on exit. Signatures are ECDSA with random nonces,
# so each run produces different signature bytes; the tests only depend on
# the files committed here.
set -euo pipefail
cd "$(dirname "$0")"
out="$PWD"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# model-signing declares neither pyOpenSSL (imported by its certificate
# module) nor, for 1.0.1, the protobuf specs it imports (which sigstore < 4
# brings in), so both are pinned here.
venv() { # dir, packages...
  local dir="$1"; shift
  python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check "$@"
}
ms11="${MS11_VENV:-$work/ms11}"
ms10="${MS10_VENV:-$work/ms10}"
[[ -x "$ms11/bin/model_signing" ]] || venv "$ms11" 'model-signing==1.1.1' 'pyopenssl==26.4.0'
[[ -x "$ms10/bin/model_signing" ]] || venv "$ms10" 'model-signing==1.0.1' 'sigstore==3.6.7' 'pyopenssl==26.2.0'
"$ms11/bin/python" -c 'import model_signing; assert model_signing.__version__ == "1.1.1"'
"$ms10/bin/python" -c 'import model_signing; assert model_signing.__version__ == "1.0.1"'

rm -rf model keys signatures
mkdir -p model/tokenizer model/.github keys signatures

# --- The model: a nested directory, a file signers ignore, git files. -------
python3 - <<'EOF'
import hashlib, json, pathlib
root = pathlib.Path("model")
(root / "config.json").write_text(json.dumps({"architecture": "toy", "layers": 2}, indent=2) + "\n")
# 4 KiB of deterministic "weights": SHA-256 in counter mode.
weights = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(128))
(root / "weights.bin").write_bytes(weights)
(root / "tokenizer" / "vocab.txt").write_text("\n".join(["<pad>", "<s>", "</s>", "hello", "world"]) + "\n")
(root / "tokenizer" / "empty.txt").write_bytes(b"")
(root / "README.md").write_text("Toy model for keyward's model-signing tests. Ignored when signing.\n")
(root / ".gitignore").write_text("*.tmp\n")
(root / ".github" / "ci.yml").write_text("on: push\n")
EOF

# --- Keys and certificates. --------------------------------------------------
k=keys
openssl ecparam -name prime256v1 -genkey -noout -out "$k/signer.key"
openssl ec -in "$k/signer.key" -pubout -out "$k/signer.pub" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$k/other.key"
openssl ec -in "$k/other.key" -pubout -out "$k/other.pub" 2>/dev/null

cat >"$work/ext.cnf" <<'EOF'
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[intermediate]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = codeSigning
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[plain]
basicConstraints = critical, CA:FALSE
keyUsage = critical, keyEncipherment
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
self_signed() { # name, curve, subject
  openssl ecparam -name "$2" -genkey -noout -out "$k/$1.key"
  openssl req -new -key "$k/$1.key" -subj "$3" -out "$work/$1.csr"
  openssl x509 -req -in "$work/$1.csr" -signkey "$k/$1.key" -days 3650 -sha256 \
    -extfile "$work/ext.cnf" -extensions ca -out "$k/$1.pem" 2>/dev/null
}
issue() { # name, curve, subject, issuer, extensions, days
  openssl ecparam -name "$2" -genkey -noout -out "$k/$1.key"
  openssl req -new -key "$k/$1.key" -subj "$3" -out "$work/$1.csr"
  openssl x509 -req -in "$work/$1.csr" -CA "$k/$4.pem" -CAkey "$k/$4.key" -CAcreateserial \
    -CAserial "$work/serial" -days "$6" -sha256 -extfile "$work/ext.cnf" -extensions "$5" \
    -out "$k/$1.pem" 2>/dev/null
}
self_signed ca-root prime256v1 "/O=Keyward Test/CN=Keyward Test Model Signing Root"
issue ca-intermediate prime256v1 "/O=Keyward Test/CN=Keyward Test Model Signing Intermediate" ca-root intermediate 3650
issue leaf secp384r1 "/O=Keyward Test/CN=release-engineer" ca-intermediate leaf 365
# A certificate from the same CA that is not for signing (keyUsage keyEncipherment only).
issue leaf-plain prime256v1 "/O=Keyward Test/CN=not-a-signer" ca-intermediate plain 365
# An RSA key: model signing supports EC keys only.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/rsa.key" 2>/dev/null
openssl pkey -in "$work/rsa.key" -pubout -out "$k/rsa.pub"
self_signed other-root prime256v1 "/O=Other/CN=Unrelated Root"
# The CA bundle a verifier trusts: root and intermediate.
cat "$k/ca-root.pem" "$k/ca-intermediate.pem" >"$k/ca-bundle.pem"
# Only signer.key is kept (the tests re-sign edited payloads with it).
rm -f "$k"/ca-root.key "$k"/ca-intermediate.key "$k"/other-root.key "$k"/other.key

# --- Signatures. ---------------------------------------------------------------
# model-signing 1.0.1's signing.Config() builds a default Sigstore signer
# first, which fetches Sigstore's TUF root and OIDC configuration over the
# network (1.1 made it lazy). Key and certificate signing replace that signer
# before use, so the 1.0.1 CLI runs with the Sigstore signer's constructor
# stubbed out; the key and certificate code paths are the released ones.
cli11() { "$ms11/bin/model_signing" "$@"; }
cli10() {
  "$ms10/bin/python" -c '
import sys
from model_signing._signing import sign_sigstore
sign_sigstore.Signer.__init__ = lambda self, **kwargs: None
from model_signing._cli import main
sys.argv[0] = "model_signing"
main()' "$@"
}
# Signed from this directory, so ignore paths are given as the CLI user would.
for v in 11 10; do
  bin="cli$v"
  "$bin" sign key --private_key "$k/signer.key" --ignore-paths model/README.md \
    --signature "signatures/key-v$v.sig" model >/dev/null
  "$bin" sign certificate --private_key "$k/leaf.key" --signing_certificate "$k/leaf.pem" \
    --certificate_chain "$k/ca-intermediate.pem" --ignore-paths model/README.md \
    --signature "signatures/certificate-v$v.sig" model >/dev/null
done
cli11 sign certificate --private_key "$k/leaf-plain.key" --signing_certificate "$k/leaf-plain.pem" \
  --certificate_chain "$k/ca-intermediate.pem" --ignore-paths model/README.md \
  --signature signatures/certificate-not-for-signing-v11.sig model >/dev/null

# Shard serialization (not reachable from the CLI): 1000-byte shards.
"$ms11/bin/python" - <<'EOF'
import model_signing
cfg = model_signing.hashing.Config().use_shard_serialization(shard_size=1000)
cfg.set_ignored_paths(paths=["README.md"])
model_signing.signing.Config().use_elliptic_key_signer(private_key="keys/signer.key") \
    .set_hashing_config(cfg).sign("model", "signatures/key-shards-v11.sig")
EOF

# --- Cross-check: the real verifier accepts what we commit. -------------------
# model-signing 1.0.1 hashed git files although it was told to ignore them
# (1.1 records its ignore paths in the signature and fixed this), so its
# signatures verify only with git files included.
for v in 11 10; do
  git_flag=--ignore-git-paths
  [[ $v == 10 ]] && git_flag=--no-ignore-git-paths
  cli11 verify key --public_key "$k/signer.pub" "$git_flag" \
    --ignore-paths model/README.md --signature "signatures/key-v$v.sig" model >/dev/null
  cli11 verify certificate --certificate_chain "$k/ca-bundle.pem" "$git_flag" \
    --ignore-paths model/README.md --signature "signatures/certificate-v$v.sig" model >/dev/null
done
# A certificate without digitalSignature or codeSigning is refused.
if cli11 verify certificate --certificate_chain "$k/ca-bundle.pem" --ignore-paths model/README.md \
    --signature signatures/certificate-not-for-signing-v11.sig model >/dev/null 2>&1; then
  echo "gen.sh: model_signing accepted a certificate that is not for signing" >&2; exit 1
fi
# Without that flag, 1.1 rejects a 1.0.1 signature of a model with git files.
if cli11 verify key --public_key "$k/signer.pub" --ignore-paths model/README.md \
    --signature signatures/key-v10.sig model >/dev/null 2>&1; then
  echo "gen.sh: expected model_signing 1.1 to reject key-v10.sig with git paths ignored" >&2; exit 1
fi
"$ms11/bin/python" - <<'EOF'
import model_signing
cfg = model_signing.hashing.Config().use_shard_serialization(shard_size=1000)
cfg.set_ignored_paths(paths=["README.md"])
model_signing.verifying.Config().use_elliptic_key_verifier(public_key="keys/signer.pub") \
    .set_hashing_config(cfg).verify("model", "signatures/key-shards-v11.sig")
EOF
# And it rejects a changed file.
cp model/weights.bin "$work/weights.bin"
printf 'x' >>model/weights.bin
if cli11 verify key --public_key "$k/signer.pub" \
    --ignore-paths model/README.md --signature signatures/key-v11.sig model >/dev/null 2>&1; then
  echo "gen.sh: model_signing accepted a changed file" >&2; exit 1
fi
cp "$work/weights.bin" model/weights.bin

rm -f "$k/leaf.key" "$k/leaf-plain.key"

# Root digests the tool computed, for the tests and the README.
"$ms11/bin/python" - <<'EOF' >signatures/root-digests.txt
import base64, json, pathlib
for sig in sorted(pathlib.Path("signatures").glob("*.sig")):
    bundle = json.loads(sig.read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    print(sig.name, "sha256:" + statement["subject"][0]["digest"]["sha256"])
EOF
echo "gen.sh: vectors written to $out"
