#!/usr/bin/env python3
# The Python helper's page for tests/e2e/helpers.sh: as tests/e2e/pages/helper.
import json
import os
import sys
sys.path.insert(0, "/usr/share/sessiond/python")
import sessiond

s = sessiond.Session()
op = os.environ.get("QUERY_STRING", "")
form = []
for pair in sys.stdin.buffer.read(int(os.environ.get("CONTENT_LENGTH") or 0)).split(b"&"):
    name, _, value = pair.partition(b"=")
    form.append((sessiond.decode(name), sessiond.decode(value)))
keys = [v for n, v in form if n == "k"]
values = [v for n, v in form if n == "v"]
body = ""
if op == "set":
    for k, v in zip(keys, values):
        s.set(k, v)
elif op == "set_json":
    for k, v in zip(keys, values):
        s.set_json(k, json.loads(v))
elif op == "remove":
    for k in keys:
        s.remove(k)
elif op == "clear":
    s.clear()
elif op == "regenerate":
    s.regenerate()
elif op == "abandon":
    s.abandon()
elif op == "get":
    for k in keys:
        body += "%s %s\n" % (s.type(k) or "none", s.text(k, "").encode("utf-8", "surrogateescape").hex())
elif op == "count":
    n = int(s.get("visits", 0)) + 1
    s.set("visits", n)
    body = "python %d\n" % n
elif op == "status":
    body = "status=%s\nmode=%s\nwritable=%s\nfrom=%s\n" % (
        s.status, s.mode, "yes" if s.writable else "no", "file" if os.environ.get("SESSION_FILE") else "env")
sys.stdout.write("Content-Type: text/plain\r\n" + s.headers() + "\r\n" + body)
