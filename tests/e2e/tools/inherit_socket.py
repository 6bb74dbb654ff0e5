#!/usr/bin/env python3
"""Runs a FastCGI server on a socket it did not create, as spawn-fcgi or
systemd socket activation do, and then more on the same socket, one after the
other, as a supervisor that restarts a service keeps its socket (standard
library only).

  inherit_socket.py [--listen-fds] [--notify] [--gate] SOCKET RUNS STATEDIR LOG -- COMMAND...

Creates a listening unix socket at SOCKET (mode 0666), then runs COMMAND
RUNS times, one after the other, each with its output appended to LOG:
STATEDIR/<n>.pid holds the pid of run n while it runs, STATEDIR/<n>.rc its
exit status once it has ended (negative: the signal that killed it). The
socket stays open and listening between runs and after the last one, until
SIGTERM, which also stops the run in progress (SIGTERM to it, then waits) and
starts no other. Then the socket path is removed if it still holds this
socket.

  --listen-fds  pass the socket as systemd does: as fd 3, with LISTEN_FDS=1
                and LISTEN_PID set to the run's pid, stdin /dev/null.
                Without it: as fd 0, as spawn-fcgi does.
  --notify      be systemd's notification socket for Type=notify: each run
                gets NOTIFY_SOCKET=STATEDIR/notify.sock, and what run n sends
                there (READY=1, STOPPING=1) is appended to STATEDIR/<n>.notify.
  --gate        start run n > 1 only once something is written into the FIFO
                STATEDIR/<n>.go (made at the start), after run n-1 has ended:
                a restart that takes as long as the caller wants. Connections that arrive
                meanwhile wait in the socket's backlog, as they do in the
                socket systemd holds while it restarts a service.
"""
import os
import select
import signal
import socket
import subprocess
import sys

child = None
stopping = False


def on_term(signum, frame):
    global stopping
    stopping = True
    if child is not None and child.returncode is None:
        try:
            os.kill(child.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def write_file(path, text):
    """Whole or not at all: a reader never sees it half-written."""
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def main(argv):
    global child
    options = set()
    while len(argv) > 1 and argv[1] in ("--listen-fds", "--notify", "--gate"):
        options.add(argv.pop(1))
    if len(argv) < 7 or argv[5] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    path, runs, statedir, log, command = argv[1], int(argv[2]), argv[3], argv[4], argv[6:]

    # First, so that it can be fd 3 before anything else is opened.
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o666)
    listener.listen(128)
    ours = os.stat(path)
    env = dict(os.environ)
    if "--listen-fds" in options:
        # systemd's protocol: the first socket is fd 3 (SD_LISTEN_FDS_START).
        if listener.fileno() != 3:
            os.dup2(listener.fileno(), 3, inheritable=False)
        env["LISTEN_FDS"] = "1"
        env.pop("LISTEN_FDNAMES", None)
        # LISTEN_PID must name the process that reads it: a shell that sets
        # it to its own pid and then becomes COMMAND (exec keeps the pid).
        command = ["/bin/sh", "-c", 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"', "sh"] + command

    # A signal wakes the select() below through this pipe, so every wait
    # blocks on what it waits for and nothing polls.
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    signal.signal(signal.SIGTERM, on_term)

    def wait_for(fds):
        """Blocks until one of `fds` is readable or a signal came; returns the readable ones."""
        ready, _, _ = select.select(list(fds) + [wake_r], [], [])
        if wake_r in ready:
            try:
                while os.read(wake_r, 512):
                    pass
            except BlockingIOError:
                pass
        return [fd for fd in ready if fd != wake_r]

    notify = None
    if "--notify" in options:
        notify_path = os.path.join(statedir, "notify.sock")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        notify.bind(notify_path)
        os.chmod(notify_path, 0o666)
        env["NOTIFY_SOCKET"] = notify_path

    def take_notifications(n):
        while True:
            try:
                message = notify.recv(4096, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            with open(os.path.join(statedir, "%d.notify" % n), "ab") as f:
                f.write(message.rstrip(b"\n") + b"\n")

    if "--gate" in options:
        for n in range(2, runs + 1):
            os.mkfifo(os.path.join(statedir, "%d.go" % n))

    with open(log, "ab") as out:
        for n in range(1, runs + 1):
            if stopping:
                break
            if "--gate" in options and n > 1:
                gate_fd = os.open(os.path.join(statedir, "%d.go" % n), os.O_RDONLY | os.O_NONBLOCK)
                while not stopping and not wait_for([gate_fd]):
                    pass
                os.close(gate_fd)
                if stopping:
                    break
            if "--listen-fds" in options:
                child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                         pass_fds=(3,), env=env)
            else:
                child = subprocess.Popen(command, stdin=listener.fileno(), stdout=out, stderr=out, env=env)
            if stopping:
                child.terminate()
            write_file(os.path.join(statedir, "%d.pid" % n), "%d\n" % child.pid)
            exited = os.pidfd_open(child.pid)
            while True:
                ready = wait_for([exited] + ([notify.fileno()] if notify else []))
                if notify:
                    take_notifications(n)
                if exited in ready:
                    break
            os.close(exited)
            rc = child.wait()
            if notify:
                take_notifications(n)
            write_file(os.path.join(statedir, "%d.rc" % n), "%d\n" % rc)
    while not stopping:
        wait_for([])
    try:
        st = os.stat(path)
        if (st.st_dev, st.st_ino) == (ours.st_dev, ours.st_ino):
            os.unlink(path)
    except FileNotFoundError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
