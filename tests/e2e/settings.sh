#!/bin/bash
# Every setting is checked at start: a bad one stops sessiond with exit status
# 2 and a message naming it, before it listens anywhere; good ones (durations
# in h and ms) start it. A TCP listener is on 127.0.0.1 unless told otherwise,
# and one on every address is warned about. A path that is not a socket is
# never replaced.
. "$SESSIOND_SRC/tests/e2e/lib.sh"

# refused STATUS TEXT ARGS...: sessiond serve ARGS exits STATUS ("nonzero": any
# but 0) and says TEXT.
refused() {
  local want_status=$1 want=$2 out status
  shift 2
  out=$(timeout 10 "$SESSIOND" serve $AS_ROOT --db "$DB" --pages "$PAGES" "$@" 2>&1)
  status=$?
  if [ "$want_status" = nonzero ]; then
    [ "$status" -ne 0 ] && [ "$status" -ne 124 ] || fail "sessiond $*: exit status $status, expected a refusal; said '$out'"
  else
    [ "$status" = "$want_status" ] || fail "sessiond $*: exit status $status, expected $want_status; said '$out'"
  fi
  [[ "$out" == *"$want"* ]] || fail "sessiond $*: said '$out', expected '$want'"
}
SOCK="unix:$DIR/c.sock"

refused 2 "--listen 127.0.0.1:99999" --listen 127.0.0.1:99999
refused 2 "--listen 127.0.0.1:" --listen 127.0.0.1:
refused 2 "--listen unix:" --listen unix:
refused 2 "--listen" --listen nonsense
refused 2 "--cookie-name" --listen "$SOCK" --cookie-name 'bad name;'
refused 2 "--cookie-samesite None" --listen "$SOCK" --cookie-samesite None
refused 2 "--no-such-flag" --listen "$SOCK" --no-such-flag
printf '[serve]\nno-such-option = 1\n' >"$DIR/bad.ini"
refused 2 "unknown option in the config file" --listen "$SOCK" --config "$DIR/bad.ini"
# SESSION_VAR_<key> of a 200 KiB value could never reach a page's environment.
refused 2 "--max-value-bytes" --listen "$SOCK" --max-value-bytes 200KiB
[ ! -e "$DIR/c.sock" ] || fail "a refused sessiond left its socket behind"

# A regular file where the socket should go is neither replaced nor touched.
echo "precious" >"$DIR/not-a-socket"
refused nonzero "not a socket" --listen "unix:$DIR/not-a-socket"
expect_eq "$(cat "$DIR/not-a-socket" 2>&1)" "precious" "the file named by --listen unix:"

# Accepted: SameSite=None with Secure; durations in hours and milliseconds.
start_sessiond a --cookie-samesite None --cookie-secure
stack_kill TERM "$STACK_PID" || fail "sessiond with --cookie-samesite None --cookie-secure: exit status $?"
start_sessiond a --page-timeout 1h --busy-timeout 500ms
stack_kill TERM "$STACK_PID" || fail "sessiond with --page-timeout 1h --busy-timeout 500ms: exit status $?"

# serve_tcp ADDRESS: a sessiond on --listen ADDRESS (a free port of our choice),
# once it listens; its pid in TCP_PID, the port in PORT. A port another
# process took between the look and the bind is another try.
serve_tcp() {
  local try
  for try in 1 2 3 4 5 6 7 8 9 10; do
    PORT=$(stack_random_port)
    ss -Hltn "sport = :$PORT" | grep -q . && continue
    : >"$DIR/tcp.log"
    "$SESSIOND" serve $AS_ROOT --listen "$1$PORT" --db "$DB" --pages "$PAGES" >>"$DIR/tcp.log" 2>&1 &
    TCP_PID=$!
    STACK_PIDS="$STACK_PIDS $TCP_PID"
    stack_wait_for "$TCP_PID" eval 'ss -Hltn "sport = :$PORT" | grep -q .' && return 0
    wait_exit "$TCP_PID" >/dev/null
    grep -q "Address already in use" "$DIR/tcp.log" || break
  done
  fail "sessiond --listen $1$PORT did not listen: $(cat "$DIR/tcp.log")"
}
# :PORT is loopback only: FastCGI has no authentication.
serve_tcp :
expect_eq "$(ss -Hltn "sport = :$PORT" | awk '{ print $4 }')" "127.0.0.1:$PORT" "local address of --listen :$PORT"
stack_kill TERM "$TCP_PID" || fail "sessiond --listen :$PORT: exit status $?"
# Every address: it serves, and says once that anyone who can reach it can use it.
serve_tcp 0.0.0.0:
expect_eq "$(ss -Hltn "sport = :$PORT" | awk '{ print $4 }')" "0.0.0.0:$PORT" "local address of --listen 0.0.0.0:$PORT"
grep -i "warning" "$DIR/tcp.log" | grep -qi "no authentication" ||
  fail "no warning for --listen 0.0.0.0:$PORT: $(cat "$DIR/tcp.log")"
stack_kill TERM "$TCP_PID" || fail "sessiond --listen 0.0.0.0:$PORT: exit status $?"
