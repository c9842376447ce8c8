#!/usr/bin/env python3
"""Independent signer for container images in the legacy cosign /
containers-image "simple signing" format, for Keyward's registry tests.

Why this exists: Debian's skopeo 1.9.3 refuses
`skopeo copy --sign-by-sigstore-private-key` with "creating signature:
Debian-local change: sigstore disabled" (a Debian-local patch), and cosign is
not installable here. So this script plays the signer's role and writes the
signature artifact that `skopeo` then pushes unchanged to the
`sha256-<hex>.sig` tag.

It is independent of the Rust code under test: it uses only Python's
standard library and the `cryptography` package (the tools venv that
scripts/deps.sh creates), and follows the formats as the upstream tools
write them, not as Keyward reads them:

- payload (cosign `pkg/signature/payload`, containers/image
  `signature/sigstore`): {"critical":{"identity":{"docker-reference":REF},
  "image":{"docker-manifest-digest":DIGEST},"type":"cosign container image
  signature"},"optional":null};
- signature: ECDSA P-256 with SHA-256 over the payload bytes, ASN.1 DER,
  standard base64 in the layer annotation `dev.cosignproject.cosign/signature`;
- artifact: an OCI image manifest whose config is an OCI image config with
  the layers' digests as rootfs diff_ids, and whose layers (one per key) have
  media type `application/vnd.dev.cosign.simplesigning.v1+json`, the payload
  as blob (containers/image `putSignaturesToSigstoreAttachments`).

Usage:
  sign-image.py keygen PRIVATE.pem PUBLIC.pem
  sign-image.py sign --reference REF --digest sha256:HEX --key KEY.pem
                     [--key KEY2.pem ...] --out LAYOUT_DIR [--tag TAG]

`sign` writes an OCI image layout at LAYOUT_DIR with the artifact under TAG
(default "sig") and prints the registry tag to push it to (sha256-HEX.sig):
  skopeo copy --dest-tls-verify=false --preserve-digests \\
      oci:LAYOUT_DIR:sig docker://HOST/REPO:sha256-HEX.sig
"""

import argparse
import base64
import hashlib
import json
import os
import re
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


def keygen(private_path, public_path):
    key = ec.generate_private_key(ec.SECP256R1())
    with open(private_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(private_path, 0o600)
    with open(public_path, "wb") as f:
        f.write(key.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo))


def put_blob(layout, data):
    digest = hashlib.sha256(data).hexdigest()
    directory = os.path.join(layout, "blobs", "sha256")
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, digest), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}


def sign(reference, digest, key_paths, layout, tag):
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        sys.exit("sign-image.py: --digest must be sha256:<64 lower-case hex>")
    payload = json.dumps({
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": None,
    }, separators=(",", ":")).encode()

    os.makedirs(layout, exist_ok=True)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)

    layers = []
    for key_path in key_paths:
        with open(key_path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            sys.exit(f"sign-image.py: {key_path} is not an EC P-256 private key")
        signature = key.sign(payload, ec.ECDSA(hashes.SHA256()))
        layer = put_blob(layout, payload)
        layers.append({
            "mediaType": SIMPLE_SIGNING,
            "size": layer["size"],
            "digest": layer["digest"],
            "annotations": {
                "dev.cosignproject.cosign/signature": base64.b64encode(signature).decode(),
            },
        })

    # Field order and empty values as Go's encoding/json writes
    # imgspecv1.Image{Config: {}, RootFS: {Type: "layers", DiffIDs: ...}}.
    config = json.dumps({
        "architecture": "",
        "os": "",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
    }, separators=(",", ":")).encode()
    config_descriptor = put_blob(layout, config)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, **config_descriptor},
        "layers": layers,
    }, separators=(",", ":")).encode()
    manifest_descriptor = put_blob(layout, manifest)
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": OCI_MANIFEST,
                **manifest_descriptor,
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }],
        }, f)
    print(digest.replace(":", "-") + ".sig")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    k = commands.add_parser("keygen", help="write a new EC P-256 key pair (PEM)")
    k.add_argument("private")
    k.add_argument("public")
    s = commands.add_parser("sign", help="write a simple-signing signature artifact")
    s.add_argument("--reference", required=True, help="docker-reference to sign")
    s.add_argument("--digest", required=True, help="image manifest digest, sha256:<hex>")
    s.add_argument("--key", required=True, action="append", help="EC P-256 private key, PEM")
    s.add_argument("--out", required=True, help="OCI layout directory to write")
    s.add_argument("--tag", default="sig", help="tag inside the layout (default: sig)")
    args = parser.parse_args()
    if args.command == "keygen":
        keygen(args.private, args.public)
    else:
        sign(args.reference, args.digest, args.key, args.out, args.tag)


if __name__ == "__main__":
    main()
