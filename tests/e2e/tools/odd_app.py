#!/usr/bin/env python3
"""A FastCGI application that breaks the protocol on demand, for the
end-to-end tests of sessiond's app runner (standard library only).

  odd_app.py SOCKET      listens on the unix socket SOCKET (made 0666)

Each request is answered by its DOCUMENT_URI; every broken answer first
asks for a session change (X-Session-Set: odd=1), which sessiond must not
keep:
  /garbage     bytes that are not FastCGI records, then close
  /overloaded  a whole response, ended by FCGI_END_REQUEST with protocol
               status FCGI_OVERLOADED
  /wrongid     a response for request 2 (sessiond sent request 1)
  /half        half a record, then close
  anything else: a good response (200, "fine"), on a kept connection
"""
import os
import socket
import struct
import sys
import threading

STDOUT, END, PARAMS, STDIN, BEGIN = 6, 3, 4, 5, 1


def record(rtype, rid, content=b""):
    return struct.pack(">BBHHBx", 1, rtype, rid, len(content), 0) + content


def end_request(rid, protocol_status):
    return record(END, rid, struct.pack(">IB3x", 0, protocol_status))


def read_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def params_of(block):
    out, pos = {}, 0

    def length():
        nonlocal pos
        if block[pos] < 0x80:
            pos += 1
            return block[pos - 1]
        value = struct.unpack(">I", block[pos:pos + 4])[0] & 0x7FFFFFFF
        pos += 4
        return value

    while pos < len(block):
        n, v = length(), length()
        out[block[pos:pos + n].decode("latin-1")] = block[pos + n:pos + n + v].decode("latin-1")
        pos += n + v
    return out


def serve(conn):
    with conn:
        while True:
            params, keep = b"", False
            while True:  # one request: BEGIN, PARAMS..., STDIN... (empty ends it)
                header = read_exact(conn, 8)
                if header is None:
                    return
                _, rtype, rid, length, padding = struct.unpack(">BBHHBx", header)
                content = read_exact(conn, length + padding)
                if content is None:
                    return
                content = content[:length]
                if rtype == BEGIN:
                    keep = bool(content[2] & 1)
                elif rtype == PARAMS:
                    params += content
                elif rtype == STDIN and not content:
                    break
            uri = params_of(params).get("DOCUMENT_URI", "")
            head = b"Content-Type: text/plain\r\nX-Session-Set: odd=1\r\n\r\n"
            uri = "/" + uri.rsplit("/", 1)[-1]
            if uri == "/garbage":
                conn.sendall(b"HTTP/1.1 200 OK\r\n" + head + b"hello")
                return
            if uri == "/overloaded":
                conn.sendall(record(STDOUT, rid, head + b"busy") + record(STDOUT, rid) + end_request(rid, 2))
                continue
            if uri == "/wrongid":
                conn.sendall(record(STDOUT, 2, head + b"who?") + record(STDOUT, 2) + end_request(2, 0))
                continue
            if uri == "/half":
                conn.sendall(record(STDOUT, rid, head + b"hello")[:20])
                return
            conn.sendall(record(STDOUT, rid, b"Content-Type: text/plain\r\n\r\nfine\n") + record(STDOUT, rid) +
                         end_request(rid, 0))
            if not keep:
                return


def main():
    path = sys.argv[1]
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0)
    server.bind(path)
    os.umask(old)
    server.listen(64)
    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
