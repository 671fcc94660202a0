#!/usr/bin/env python3
"""Verifies one received webhook with the maintained libraries of the Standard Webhooks
ecosystem, as a receiver would, and prints {"standardwebhooks": "ok" | "error: …", "svix": …}.

usage: verify_standard.py WHSEC_SECRET HEADERS_JSON BODY_FILE
"""
import json, sys
from standardwebhooks.webhooks import Webhook as StandardWebhook
from svix.webhooks import Webhook as SvixWebhook

secret, headers, body = sys.argv[1], json.loads(sys.argv[2]), open(sys.argv[3], "rb").read()
result = {}
for name, cls in (("standardwebhooks", StandardWebhook), ("svix", SvixWebhook)):
    try:
        cls(secret).verify(body, headers)
        result[name] = "ok"
    except Exception as error:  # each library raises its own verification error
        result[name] = "error: %s" % error
print(json.dumps(result))
