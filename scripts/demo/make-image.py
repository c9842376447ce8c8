#!/usr/bin/env python3
"""Writes a minimal OCI image layout (one layer holding one file) for the
demo, using only the standard library, and prints the manifest digest.

Usage: make-image.py LAYOUT_DIR TAG FILE_NAME CONTENT
"""

import hashlib
import io
import json
import os
import sys
import tarfile

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def blob(layout, media_type, data):
    digest = hashlib.sha256(data).hexdigest()
    path = os.path.join(layout, "blobs", "sha256", digest)
    with open(path, "wb") as f:
        f.write(data)
    return {"mediaType": media_type, "digest": "sha256:" + digest, "size": len(data)}


def main():
    layout, tag, name, content = sys.argv[1:5]
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        data = content.encode()
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = 0
        info.mode = 0o755
        tar.addfile(info, io.BytesIO(data))
    layer_bytes = buf.getvalue()
    layer = blob(layout, "application/vnd.oci.image.layer.v1.tar", layer_bytes)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/" + name]},
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
    }
    config_desc = blob(layout, "application/vnd.oci.image.config.v1+json",
                       json.dumps(config).encode())
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": config_desc, "layers": [layer]}
    manifest_desc = blob(layout, OCI_MANIFEST, json.dumps(manifest).encode())
    manifest_desc["annotations"] = {"org.opencontainers.image.ref.name": tag}
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [manifest_desc]}, f)
    print(manifest_desc["digest"])


if __name__ == "__main__":
    main()
