#!/usr/bin/env python3
"""One FastCGI request, as a web server (or sessiond) would send it, and its
raw answer: for talking to a FastCGI application such as php-fpm directly.

  fcgi_request.py [--timeout S] ADDR SCRIPT_FILENAME [NAME=VALUE ...]
      Sends a GET request for SCRIPT_FILENAME (a POST with the body read from
      stdin when REQUEST_METHOD=POST is given) with the usual CGI parameters
      plus every NAME=VALUE (which override them; VALUE may be empty), and
      writes the application's whole FCGI_STDOUT (headers, blank line, body)
      to stdout and its FCGI_STDERR to stderr. Exit 0 once FCGI_END_REQUEST
      came, 1 otherwise.

ADDR is unix:PATH or HOST:PORT.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import struct  # noqa: E402
from fcgi_client import (BEGIN_REQUEST, END_REQUEST, PARAMS, RESPONDER, STDIN, STDOUT,  # noqa: E402
                         connect, name_value, record, stream)

STDERR_RECORD = 7


def main(argv):
    timeout = 30.0
    if len(argv) > 2 and argv[1] == "--timeout":
        timeout = float(argv[2])
        argv = argv[:1] + argv[3:]
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    addr, page = argv[1], argv[2]
    extra = {}
    for arg in argv[3:]:
        name, eq, value = arg.partition("=")
        if not eq or not name:
            print("not NAME=VALUE: %r" % arg, file=sys.stderr)
            return 2
        extra[name] = value
    env = {
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_SOFTWARE": "fcgi_request.py",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "REMOTE_ADDR": "127.0.0.1",
        "REQUEST_METHOD": "GET",
        "SCRIPT_FILENAME": page,
        "SCRIPT_NAME": "/" + os.path.basename(page),
        "REQUEST_URI": "/" + os.path.basename(page),
        "QUERY_STRING": "",
    }
    env.update(extra)
    body = b""
    if env["REQUEST_METHOD"] == "POST":
        body = sys.stdin.buffer.read()
        env.setdefault("CONTENT_TYPE", "application/x-www-form-urlencoded")
        env["CONTENT_LENGTH"] = str(len(body))
    params = b"".join(name_value(k.encode(), v.encode()) for k, v in env.items())
    request = (record(BEGIN_REQUEST, 1, struct.pack(">HB5x", RESPONDER, 0)) + stream(PARAMS, 1, params)
               + record(PARAMS, 1) + stream(STDIN, 1, body) + record(STDIN, 1))
    try:
        s = connect(addr, timeout)
        s.sendall(request)
        buf = b""
        while True:
            while len(buf) >= 8:
                _, rtype, _, clen, pad = struct.unpack(">BBHHBx", buf[:8])
                if len(buf) < 8 + clen + pad:
                    break
                content, buf = buf[8:8 + clen], buf[8 + clen + pad:]
                if rtype == STDOUT:
                    sys.stdout.buffer.write(content)
                elif rtype == STDERR_RECORD:
                    sys.stderr.buffer.write(content)
                elif rtype == END_REQUEST:
                    sys.stdout.buffer.flush()
                    return 0
            chunk = s.recv(65536)
            if not chunk:
                print("connection closed before FCGI_END_REQUEST", file=sys.stderr)
                return 1
            buf += chunk
    except OSError as e:
        print("fcgi_request.py: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
