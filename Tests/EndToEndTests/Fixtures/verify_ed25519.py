#!/usr/bin/env python3
"""Checks the v1a (Ed25519) signatures of one received webhook with an implementation
independent of keysat's (pyca/cryptography, over OpenSSL's or its own code), as a receiver
holding only the public key would, and prints a JSON list: one true/false per v1a signature
of webhook-signature, in order.

usage: verify_ed25519.py WHPK_PUBLIC_KEY HEADERS_JSON BODY_FILE
"""
import base64, json, sys
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

public, headers, body = sys.argv[1], json.loads(sys.argv[2]), open(sys.argv[3], "rb").read()
assert public.startswith("whpk_")
key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public[len("whpk_"):]))
signed = ("%s.%s." % (headers["webhook-id"], headers["webhook-timestamp"])).encode() + body
verdicts = []
for versioned in headers["webhook-signature"].split(" "):
    version, _, signature = versioned.partition(",")
    if version != "v1a":
        continue
    try:
        key.verify(base64.b64decode(signature), signed)
        verdicts.append(True)
    except InvalidSignature:
        verdicts.append(False)
print(json.dumps(verdicts))
