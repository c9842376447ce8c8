#!/usr/bin/env python3
"""Verifies a Keyward workload identity token as a relying party would,
with Python's `cryptography` (independent of the vault's Rust signer).

  verify-jwt.py < REQUEST
      REQUEST is {"jwks": ..., "token": ...}; prints
      {"header", "claims", "thumbprint"} or exits 1 with the reason.
      Used by tests/tests/identity_peer.rs.

  verify-jwt.py --issuer URL --audience AUD TOKEN_FILE
      Fetches the issuer's OpenID discovery document and its JWKS, verifies
      the signature, then checks iss, aud, nbf and exp; prints the claims.
      Used by scripts/demo.sh (the downstream service of the story).
"""
import base64, hashlib, json, sys, time, urllib.request
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils


def fail(reason):
    print(reason, file=sys.stderr)
    sys.exit(1)


def b64d(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify(jwks, token):
    parts = token.split(".")
    if len(parts) != 3:
        fail("not a compact JWS")
    header_b64, payload_b64, signature_b64 = parts
    header = json.loads(b64d(header_b64))
    if header.get("alg") != "ES256" or header.get("typ") != "JWT":
        fail("unexpected header")
    keys = [k for k in jwks["keys"] if k.get("kid") == header.get("kid")]
    if len(keys) != 1:
        fail("unknown kid")
    jwk = keys[0]
    if (jwk.get("kty"), jwk.get("crv"), jwk.get("alg"), jwk.get("use")) != ("EC", "P-256", "ES256", "sig"):
        fail("unexpected key")
    x, y = b64d(jwk["x"]), b64d(jwk["y"])
    if len(x) != 32 or len(y) != 32:
        fail("bad coordinates")
    public_key = ec.EllipticCurvePublicNumbers(
        int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
    ).public_key()
    signature = b64d(signature_b64)
    if len(signature) != 64:
        fail("bad signature length")
    der = utils.encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        public_key.verify(der, (header_b64 + "." + payload_b64).encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        fail("bad signature")
    canonical = json.dumps(
        {"crv": "P-256", "kty": "EC", "x": jwk["x"], "y": jwk["y"]}, separators=(",", ":"), sort_keys=True
    )
    thumbprint = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
    return {"header": header, "claims": json.loads(b64d(payload_b64)), "thumbprint": thumbprint}


def fetch_json(url):
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.load(answer)


def main(argv):
    if not argv:
        request = json.load(sys.stdin)
        print(json.dumps(verify(request["jwks"], request["token"])))
        return
    args = dict(zip(argv[0:-1:2], argv[1:-1:2]))
    if set(args) != {"--issuer", "--audience"} or len(argv) != 5:
        fail(__doc__)
    issuer, audience = args["--issuer"], args["--audience"]
    token = open(argv[-1]).read().strip()
    discovery = fetch_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
    if discovery.get("issuer") != issuer:
        fail("discovery document names another issuer")
    verified = verify(fetch_json(discovery["jwks_uri"]), token)
    claims = verified["claims"]
    now = time.time()
    if claims.get("iss") != issuer:
        fail(f"issuer {claims.get('iss')!r}, expected {issuer!r}")
    if claims.get("aud") != audience:
        fail(f"audience {claims.get('aud')!r}, expected {audience!r}")
    if not claims.get("nbf", 0) <= now < claims.get("exp", 0):
        fail("token not valid now")
    print(json.dumps(claims, indent=2, sort_keys=True))


main(sys.argv[1:])
