#!/usr/bin/env python3
"""Runs a FastCGI server on a socket it did not create, as spawn-fcgi or
systemd socket activation do, and then a second one on the same socket, as a
supervisor that restarts a service keeps its socket (standard library only).

  inherit_socket.py SOCKET RUNS STATEDIR LOG -- COMMAND...

Creates a listening unix socket at SOCKET (mode 0666), then runs COMMAND
RUNS times, one after the other, each with the socket as fd 0 and its
output appended to LOG: STATEDIR/<n>.pid holds the pid of run n while it
runs, STATEDIR/<n>.rc its exit status once it has ended (negative: the
signal that killed it). The socket stays open and listening between runs and
after the last one, until SIGTERM, which also stops the run in progress
(SIGTERM to it, then waits) and starts no other. Then the socket path is
removed if it still holds this socket.
"""
import os
import signal
import socket
import subprocess
import sys
import time

child = None
stopping = False


def on_term(signum, frame):
    global stopping
    stopping = True
    if child is not None and child.poll() is None:
        child.terminate()


def write_file(path, text):
    """Whole or not at all: a reader never sees it half-written."""
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def main(argv):
    global child
    if len(argv) < 7 or argv[5] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    path, runs, statedir, log, command = argv[1], int(argv[2]), argv[3], argv[4], argv[6:]
    signal.signal(signal.SIGTERM, on_term)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o666)
    listener.listen(128)
    ours = os.stat(path)
    with open(log, "ab") as out:
        for n in range(1, runs + 1):
            if stopping:
                break
            child = subprocess.Popen(command, stdin=listener.fileno(), stdout=out, stderr=out)
            if stopping:
                child.terminate()
            write_file(os.path.join(statedir, "%d.pid" % n), "%d\n" % child.pid)
            rc = child.wait()
            write_file(os.path.join(statedir, "%d.rc" % n), "%d\n" % rc)
    while not stopping:
        time.sleep(0.1)
    try:
        st = os.stat(path)
        if (st.st_dev, st.st_ino) == (ours.st_dev, ours.st_ino):
            os.unlink(path)
    except FileNotFoundError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
