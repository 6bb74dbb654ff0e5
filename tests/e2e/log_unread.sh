#!/bin/bash
# sessiond's stderr a pipe nobody reads (a stuck journal, a paused
# supervisor): every request is still answered, and SIGTERM still stops it.
# (The lines that could not wait are counted in a line of their own once the
# log is read again: tests/log_test.cc.)
. "$SESSIOND_SRC/tests/e2e/lib.sh"
mkfifo "$DIR/log.fifo"
exec {held}<>"$DIR/log.fifo"  # open for reading, never read
# shellcheck disable=SC2086
"$SESSIOND" serve --listen "unix:$DIR/b.sock" --socket-mode 0666 $AS_ROOT --db "$DB" --pages "$PAGES" \
  2>"$DIR/log.fifo" &
B=$!
STACK_PIDS="$STACK_PIDS $B"
stack_wait_for "$B" test -S "$DIR/b.sock" || fail "sessiond did not start"
start_nginx b

# A line each (a 404), far past the 64 KiB the pipe holds, on one connection.
codes=$(curl -s -o /dev/null -w '%{http_code}\n' --max-time 30 "$(BASE)/missing[1-3000]" | sort | uniq -c |
  awk '{ printf "%s%sx%s", sep, $2, $1; sep = " " }')
expect_eq "$codes" "404x3000" "answers with the log unread"
get /login
expect_status 200 "a page with the log unread"
stack_kill TERM "$B" || fail "sessiond did not stop on SIGTERM with its log unread"

# What the pipe holds begins with the start-up line.
python3 - "$held" >"$DIR/log.out" <<'PY'
import os, sys
fd = int(sys.argv[1])
os.set_blocking(fd, False)
while True:
    try:
        chunk = os.read(fd, 65536)
    except BlockingIOError:
        break
    if not chunk:
        break
    sys.stdout.buffer.write(chunk)
PY
head -n 1 "$DIR/log.out" | grep -q "^sessiond: starting sessiond" || fail "the log lacks its first line: $(head -c 300 "$DIR/log.out")"
grep -q "^sessiond: 404 GET /missing1: " "$DIR/log.out" || fail "the log lacks the first 404: $(head -c 600 "$DIR/log.out")"
exec {held}<&-
