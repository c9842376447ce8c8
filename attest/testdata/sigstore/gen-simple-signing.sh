#!/usr/bin/env bash
# Regenerates attest/testdata/sigstore/simple-signing/: legacy "simple
# signing" image signatures (`sha256-<hex>.sig` payload + layer annotations)
# in the formats containers/image (skopeo) and cosign < 3 write them.
#
#   attest/testdata/sigstore/gen-simple-signing.sh
#
# Why synthetic: Debian's skopeo 1.9.3 refuses `--sign-by-sigstore-private-key`
# ("Debian-local change: sigstore disabled"), cosign is not packaged, and a
# keyless signature needs Fulcio and Rekor. So this script plays those roles
# with Python `cryptography`, exactly as their formats specify:
#
# - key-signed/: containers/image `sigstore` payload (critical + optional
#   creator/timestamp), ECDSA P-256/SHA-256 signature, base64 in the
#   `dev.cosignproject.cosign/signature` annotation; no Rekor entry (what
#   skopeo writes by default);
# - keyless/: a private Sigstore instance (trusted_root.json: Fulcio root,
#   Rekor key, CT log key); a Fulcio-style leaf (SAN URI, OIDC issuer
#   extensions .1.1/.1.8, GitHub claims, embedded precertificate SCT per
#   RFC 6962 §3.2); the cosign payload signed by the leaf's key; the Rekor
#   hashedrekord 0.0.1 entry and its SET over the canonical
#   {body, integratedTime, logID, logIndex} (cosign `bundle.RekorBundle`
#   annotation format).
#
# Needs python3 with venv and PyPI access (cryptography). Temporary files in
# a mktemp directory removed on exit.
set -euo pipefail
cd "$(dirname "$0")"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
venv="${CRYPTO_VENV:-$work/venv}"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'cryptography==46.0.7'
fi

rm -rf simple-signing
"$venv/bin/python" - simple-signing <<'EOF'
import base64, datetime, hashlib, json, os, struct, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

out = sys.argv[1]
os.makedirs(f"{out}/key-signed")
os.makedirs(f"{out}/keyless")

def b64(data): return base64.b64encode(data).decode()
def spki(key): return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
def pub_pem(key): return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
def sign(key, data): return key.sign(data, ec.ECDSA(hashes.SHA256()))
def canonical(obj): return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
def write(path, data):
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
def der_len(n):
    if n < 0x80: return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body
def der_utf8(s):
    data = s.encode()
    return b"\x0c" + der_len(len(data)) + data

# The image: a fixed manifest digest (sha256 of a fixed OCI manifest).
manifest = canonical({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + "0" * 64, "size": 2},
    "layers": []})
digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
write(f"{out}/image-manifest.json", manifest)
write(f"{out}/image-digest.txt", digest + "\n")

# --- key-signed (containers/image) -----------------------------------------
signer = ec.generate_private_key(ec.SECP256R1())
other = ec.generate_private_key(ec.SECP256R1())
# containers/image `newUntrustedSigstorePayload` + MarshalJSON field order.
payload = json.dumps({"critical": {"identity": {"docker-reference": "registry.example/keyward/app:v1"},
    "image": {"docker-manifest-digest": digest}, "type": "cosign container image signature"},
    "optional": {"creator": "containers/image v5.23.1", "timestamp": 1760000000}},
    separators=(",", ":")).encode()
write(f"{out}/key-signed/payload.json", payload)
write(f"{out}/key-signed/annotations.json", json.dumps(
    {"dev.cosignproject.cosign/signature": b64(sign(signer, payload))}, indent=2) + "\n")
# Signed by the same key, but not a cosign image signature (the type
# containers/image uses for GPG "atomic" signatures).
atomic = payload.replace(b"cosign container image signature", b"atomic container signature")
write(f"{out}/key-signed/payload-atomic.json", atomic)
write(f"{out}/key-signed/annotations-atomic.json", json.dumps(
    {"dev.cosignproject.cosign/signature": b64(sign(signer, atomic))}, indent=2) + "\n")
write(f"{out}/key-signed/key.pub", pub_pem(signer))
write(f"{out}/key-signed/other.pub", pub_pem(other))

# --- keyless (cosign < 3 with a private Sigstore instance) -------------------
t0 = datetime.datetime(2025, 10, 9, 12, 0, 0, tzinfo=datetime.timezone.utc)
epoch = int(t0.timestamp())
fulcio_key = ec.generate_private_key(ec.SECP384R1())
rekor_key = ec.generate_private_key(ec.SECP256R1())
ct_key = ec.generate_private_key(ec.SECP256R1())
fulcio_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "keyward.test"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "keyward-test-fulcio")])
fulcio = (x509.CertificateBuilder().subject_name(fulcio_name).issuer_name(fulcio_name)
    .public_key(fulcio_key.public_key()).serial_number(1)
    .not_valid_before(t0 - datetime.timedelta(days=365)).not_valid_after(t0 + datetime.timedelta(days=3650))
    .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
    .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
    .add_extension(x509.SubjectKeyIdentifier.from_public_key(fulcio_key.public_key()), critical=False)
    .sign(fulcio_key, hashes.SHA384()))

identity = "https://github.com/keyward-test/app/.github/workflows/release.yml@refs/tags/v1.0.0"
issuer = "https://token.actions.githubusercontent.com"
ephemeral = ec.generate_private_key(ec.SECP256R1())
fulcio_arc = "1.3.6.1.4.1.57264.1."
def leaf_builder():
    b = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(fulcio_name)
        .public_key(ephemeral.public_key()).serial_number(0x5157)
        .not_valid_before(t0).not_valid_after(t0 + datetime.timedelta(minutes=10))
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ephemeral.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(fulcio_key.public_key()), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity)]), critical=True))
    # Fulcio docs/oid-info.md: .1.1-.1.6 raw strings (deprecated), .1.8+ DER UTF8String.
    raw = {"1": issuer, "2": "push", "3": "1111111111111111111111111111111111111111",
           "5": "keyward-test/app", "6": "refs/tags/v1.0.0"}
    der = {"8": issuer, "12": "https://github.com/keyward-test/app",
           "13": "1111111111111111111111111111111111111111", "14": "refs/tags/v1.0.0"}
    for n, v in raw.items():
        b = b.add_extension(x509.UnrecognizedExtension(ObjectIdentifier(fulcio_arc + n), v.encode()), critical=False)
    for n, v in der.items():
        b = b.add_extension(x509.UnrecognizedExtension(ObjectIdentifier(fulcio_arc + n), der_utf8(v)), critical=False)
    return b

# RFC 6962 §3.2: the SCT signs the TBSCertificate without the SCT extension.
precert_tbs = leaf_builder().sign(fulcio_key, hashes.SHA384()).tbs_certificate_bytes
sct_time = epoch * 1000 + 500
issuer_key_hash = hashlib.sha256(spki(fulcio_key)).digest()
signed = (struct.pack(">BBQH", 0, 0, sct_time, 1) + issuer_key_hash
          + len(precert_tbs).to_bytes(3, "big") + precert_tbs + struct.pack(">H", 0))
sct_sig = sign(ct_key, signed)
sct = (bytes([0]) + hashlib.sha256(spki(ct_key)).digest() + struct.pack(">Q", sct_time)
       + struct.pack(">H", 0) + bytes([4, 3]) + struct.pack(">H", len(sct_sig)) + sct_sig)
sct_list = struct.pack(">H", len(sct) + 2) + struct.pack(">H", len(sct)) + sct
sct_ext = b"\x04" + der_len(len(sct_list)) + sct_list
leaf = (leaf_builder()
    .add_extension(x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2"), sct_ext), critical=False)
    .sign(fulcio_key, hashes.SHA384()))
leaf_pem = leaf.public_bytes(serialization.Encoding.PEM)

# cosign's payload (`optional` null when no -a annotations were given).
keyless_payload = json.dumps({"critical": {"identity": {"docker-reference": "registry.example/keyward/app"},
    "image": {"docker-manifest-digest": digest}, "type": "cosign container image signature"},
    "optional": None}, separators=(",", ":")).encode()
keyless_sig = sign(ephemeral, keyless_payload)
body = canonical({"apiVersion": "0.0.1", "kind": "hashedrekord", "spec": {
    "data": {"hash": {"algorithm": "sha256", "value": hashlib.sha256(keyless_payload).hexdigest()}},
    "signature": {"content": b64(keyless_sig), "publicKey": {"content": b64(leaf_pem)}}}})
log_id = hashlib.sha256(spki(rekor_key)).hexdigest()
integrated = epoch + 30
set_payload = canonical({"body": b64(body), "integratedTime": integrated, "logID": log_id, "logIndex": 42})
rekor_bundle = json.dumps({"SignedEntryTimestamp": b64(sign(rekor_key, set_payload)),
    "Payload": {"body": b64(body), "integratedTime": integrated, "logIndex": 42, "logID": log_id}},
    separators=(",", ":"))
write(f"{out}/keyless/payload.json", keyless_payload)
write(f"{out}/keyless/annotations.json", json.dumps({
    "dev.cosignproject.cosign/signature": b64(keyless_sig),
    "dev.sigstore.cosign/certificate": leaf_pem.decode(),
    "dev.sigstore.cosign/chain": fulcio.public_bytes(serialization.Encoding.PEM).decode(),
    "dev.sigstore.cosign/bundle": rekor_bundle}, indent=2) + "\n")
write(f"{out}/keyless/identity.txt", identity + "\n")

start = (t0 - datetime.timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ")
def log(key):
    return {"baseUrl": "https://keyward.test", "hashAlgorithm": "SHA2_256",
            "publicKey": {"rawBytes": b64(spki(key)), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                          "validFor": {"start": start}},
            "logId": {"keyId": b64(hashlib.sha256(spki(key)).digest())}}
root = {"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
    "tlogs": [log(rekor_key)], "ctlogs": [log(ct_key)],
    "certificateAuthorities": [{"subject": {"organization": "keyward.test", "commonName": "keyward-test-fulcio"},
        "uri": "https://keyward.test", "certChain": {"certificates": [
            {"rawBytes": b64(fulcio.public_bytes(serialization.Encoding.DER))}]},
        "validFor": {"start": start}}],
    "timestampAuthorities": []}
write(f"{out}/keyless/trusted_root.json", json.dumps(root, indent=2) + "\n")
print(f"gen-simple-signing.sh: image {digest}; vectors in {out}")
EOF
