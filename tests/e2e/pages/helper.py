#!/usr/bin/env python3
# The Python helper's page for tests/e2e/helpers.sh: as tests/e2e/pages/helper.
import json
import os
import sys
sys.path.insert(0, "/usr/share/sessiond/python")
import sessiond

s = sessiond.Session()
op = os.environ.get("QUERY_STRING", "")
form = {}
for pair in sys.stdin.buffer.read(int(os.environ.get("CONTENT_LENGTH") or 0)).split(b"&"):
    name, _, value = pair.partition(b"=")
    form[sessiond.decode(name)] = sessiond.decode(value)
k, v = form.get("k", ""), form.get("v", "")
head, body = "", b""
if op == "set":
    s.set(k, v)
elif op == "set_json":
    s.set_json(k, json.loads(v))
elif op == "remove":
    s.remove(k)
elif op == "clear":
    s.clear()
elif op == "regenerate":
    s.regenerate()
elif op == "abandon":
    s.abandon()
elif op == "get":
    head = "X-Type: %s\r\n" % (s.type(k) or "none")
    body = s.text(k, "").encode("utf-8", "surrogateescape")
elif op == "count":
    n = int(s.get("visits", 0)) + 1
    s.set("visits", n)
    body = b"python %d\n" % n
elif op == "status":
    body = ("status=%s\nmode=%s\nwritable=%s\nfrom=%s\n" % (
        s.status, s.mode, "yes" if s.writable else "no",
        "file" if os.environ.get("SESSION_FILE") else "env")).encode()
out = sys.stdout.buffer
out.write(("Content-Type: application/octet-stream\r\n" + head + s.headers() + "\r\n").encode())
out.write(body)
