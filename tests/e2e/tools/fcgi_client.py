#!/usr/bin/env python3
"""A raw FastCGI client for the end-to-end tests (standard library only).

It speaks to sessiond directly, without nginx, for what nginx cannot do on
demand: hold connections idle or half-sent, send a parameter block far over
any limit, or open several connections and send whole requests before
reading any answer.

  fcgi_client.py requests ADDR PAGE COUNT READY OUTDIR
      COUNT connections, each sends a whole GET request for PAGE (a path
      under the pages directory, passed as SCRIPT_FILENAME); READY is created
      once every connection is open and every request sent; then each
      answer is read and OUTDIR/<n> gets its HTTP status (the page's
      "Status:" or 200), or "error: why" when FCGI_END_REQUEST never came.
      Exit 0 when every request got FCGI_END_REQUEST.
  fcgi_client.py hold-idle ADDR COUNT READY
      COUNT connections that send nothing; READY once all are open; holds
      them until killed.
  fcgi_client.py hold-partial ADDR PAGE COUNT READY
      COUNT connections, each sends FCGI_BEGIN_REQUEST, the whole parameter
      block (CONTENT_LENGTH=100000) and one FCGI_STDIN record of 1000 bytes,
      then nothing more; READY once all are sent; holds them until killed.
  fcgi_client.py huge-params ADDR TOTAL READY
      One request whose parameter block is TOTAL bytes; READY once its first
      32 KiB are sent. Prints "status=S sent=N closed=yes|no": the HTTP
      status sessiond answered (or "none"), how many bytes the kernel took
      before the connection was closed, and whether it was closed while
      sending. Exit 0 when it sent its parameters or was refused cleanly.

  fcgi_client.py flood ADDR PAGE COUNT
      COUNT connections, each sends FCGI_BEGIN_REQUEST and half of its
      parameter block, then nothing more; then one more connection sends a
      whole GET request for PAGE. Once that one is answered, prints
      "status=S open=N answered=A closed=C": its HTTP status, and how many
      of the COUNT half-sent connections were then still open and silent,
      had been answered, or had been closed without an answer. Exit 0 when
      the whole request got FCGI_END_REQUEST.

ADDR is unix:PATH or HOST:PORT. Every socket operation gives up after
--timeout seconds (default 30): a guard against a server that hangs.
"""
import os
import resource
import signal
import socket
import struct
import sys

BEGIN_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT = 1, 3, 4, 5, 6
RESPONDER = 1
MAX_CONTENT = 0xFFFF


def record(rtype, request_id, content=b""):
    pad = (8 - len(content) % 8) % 8
    return struct.pack(">BBHHBx", 1, rtype, request_id, len(content), pad) + content + b"\0" * pad


def stream(rtype, request_id, content):
    """Records of `content`, at most MAX_CONTENT bytes each (none when empty)."""
    return b"".join(record(rtype, request_id, content[i:i + MAX_CONTENT])
                    for i in range(0, len(content), MAX_CONTENT))


def name_value(name, value):
    def length(n):
        return struct.pack(">B", n) if n < 128 else struct.pack(">I", n | 0x80000000)
    return length(len(name)) + length(len(value)) + name + value


def params_for(page, method="GET", content_length=None):
    env = {
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_SOFTWARE": "fcgi_client.py",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "REMOTE_ADDR": "127.0.0.1",
        "REQUEST_METHOD": method,
        "SCRIPT_FILENAME": page,
        "SCRIPT_NAME": "/" + os.path.basename(page),
        "REQUEST_URI": "/" + os.path.basename(page),
        "QUERY_STRING": "",
    }
    if content_length is not None:
        env["CONTENT_LENGTH"] = str(content_length)
        env["CONTENT_TYPE"] = "application/octet-stream"
    return b"".join(name_value(k.encode(), v.encode()) for k, v in env.items())


def begin(request_id=1):
    return record(BEGIN_REQUEST, request_id, struct.pack(">HB5x", RESPONDER, 0))


def whole_request(page, request_id=1):
    return (begin(request_id) + stream(PARAMS, request_id, params_for(page)) + record(PARAMS, request_id)
            + record(STDIN, request_id))


def connect(addr, timeout):
    if addr.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target = addr[5:]
    else:
        host, _, port = addr.rpartition(":")
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        target = (host.strip("[]"), int(port))
    s.settimeout(timeout)
    s.connect(target)
    return s


def read_response(s):
    """The HTTP status of the answer, or raises OSError/EOFError when no
    FCGI_END_REQUEST comes."""
    buf, out = b"", b""
    while True:
        while len(buf) >= 8:
            _, rtype, _, clen, pad = struct.unpack(">BBHHBx", buf[:8])
            if len(buf) < 8 + clen + pad:
                break
            content, buf = buf[8:8 + clen], buf[8 + clen + pad:]
            if rtype == STDOUT:
                out += content
            elif rtype == END_REQUEST:
                return http_status(out)
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError("connection closed before FCGI_END_REQUEST (stdout so far: %r)" % out[:200])
        buf += chunk


def http_status(out):
    head = out.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    for line in head.splitlines():
        if line.lower().startswith(b"status:"):
            return line.split(b":", 1)[1].strip().split(b" ")[0].decode()
    return "200" if out else "none"


def touch(path):
    with open(path, "w"):
        pass


def more_files():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def hold_forever():
    while True:
        signal.pause()


def cmd_requests(addr, page, count, ready, outdir, timeout):
    socks = []
    for _ in range(int(count)):
        s = connect(addr, timeout)
        s.sendall(whole_request(page))
        socks.append(s)
    touch(ready)
    ok = True
    for n, s in enumerate(socks, 1):
        try:
            result = read_response(s)
        except (OSError, EOFError) as e:
            result, ok = "error: %s" % e, False
        with open(os.path.join(outdir, str(n)), "w") as f:
            f.write(result + "\n")
        s.close()
    return 0 if ok else 1


def cmd_hold_idle(addr, count, ready, timeout):
    more_files()
    socks = [connect(addr, timeout) for _ in range(int(count))]
    touch(ready)
    hold_forever()
    return socks  # never reached; keeps them referenced


def cmd_hold_partial(addr, page, count, ready, timeout):
    more_files()
    socks = []
    for _ in range(int(count)):
        s = connect(addr, timeout)
        s.sendall(begin() + stream(PARAMS, 1, params_for(page, "POST", 100000)) + record(PARAMS, 1)
                  + record(STDIN, 1, b"x" * 1000))
        socks.append(s)
    touch(ready)
    hold_forever()
    return socks


def cmd_huge_params(addr, total, ready, timeout):
    total = int(total)
    s = connect(addr, timeout)
    # One pair: a 4-byte name, and a value as long as the rest of the block.
    head = struct.pack(">BI", 4, (total - 9) | 0x80000000) + b"HUGE"
    value = b"v" * MAX_CONTENT
    sent, closed = 0, False
    try:
        s.sendall(begin() + record(PARAMS, 1, head))
        sent = len(head)
        while sent < total:
            s.sendall(record(PARAMS, 1, value[:total - sent]))
            sent += min(MAX_CONTENT, total - sent)
            if sent >= 32 * 1024 and not os.path.exists(ready):
                touch(ready)
        s.sendall(record(PARAMS, 1) + record(STDIN, 1))
    except (BrokenPipeError, ConnectionResetError):
        closed = True
    if not os.path.exists(ready):
        touch(ready)
    try:
        status = read_response(s)
    except (OSError, EOFError) as e:
        print("no complete answer: %s" % e, file=sys.stderr)
        status = "none"
    print("status=%s sent=%d closed=%s" % (status, sent, "yes" if closed else "no"))
    return 0


def cmd_flood(addr, page, count, timeout):
    more_files()
    half = params_for(page)
    half = half[:len(half) // 2]
    socks = []
    for _ in range(int(count)):
        s = connect(addr, timeout)
        s.sendall(begin() + record(PARAMS, 1, half))
        socks.append(s)
    whole = connect(addr, timeout)
    whole.sendall(whole_request(page))
    status = read_response(whole)
    states = {"open": 0, "answered": 0, "closed": 0}
    for s in socks:
        s.setblocking(False)  # a socket with a timeout would wait for data first
        try:
            data = s.recv(1, socket.MSG_PEEK)
            states["answered" if data else "closed"] += 1
        except BlockingIOError:
            states["open"] += 1
        except OSError:
            states["closed"] += 1
    print("status=%s open=%d answered=%d closed=%d" % (status, states["open"], states["answered"], states["closed"]))
    return 0


def main(argv):
    timeout = 30.0
    if len(argv) > 2 and argv[1] == "--timeout":
        timeout = float(argv[2])
        argv = argv[:1] + argv[3:]
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[1], argv[2:]
    commands = {
        "requests": (cmd_requests, 5),
        "hold-idle": (cmd_hold_idle, 3),
        "hold-partial": (cmd_hold_partial, 4),
        "huge-params": (cmd_huge_params, 3),
        "flood": (cmd_flood, 3),
    }
    if cmd not in commands or len(args) != commands[cmd][1]:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        return commands[cmd][0](*args, timeout=timeout)
    except (OSError, EOFError) as e:
        print("fcgi_client.py %s: %s" % (cmd, e), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
