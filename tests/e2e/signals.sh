#!/bin/bash
# Signals as an operator and a supervisor send them: USR1/USR2 are harmless,
# HUP reopens the log file, TERM serves every connection the kernel accepted
# (the listen backlog included) and exits 0; a socket sessiond did not
# create is left for the next server, and one it did create is removed only
# if it is still its own; a path that is not a socket is never replaced.
# E2E_CHECKS="name ..." runs only those checks (the functions below).
. "$SESSIOND_SRC/tests/e2e/lib.sh"
CLIENT="$SESSIOND_SRC/tests/e2e/tools/fcgi_client.py"

# get_home: GET /home through nginx, with a hang guard.
get_home() {
  : >"$DIR/body"
  STATUS=$(curl -s -o "$DIR/body" -w '%{http_code}' --max-time 20 "$(BASE)/home") || STATUS="curl failed ($?)"
}
# sent SIGNAL LINE: sends SIGNAL to sessiond "a" and waits until its log
# says LINE.
sent() {
  kill "-$1" "$A"
  stack_wait_for "$A" grep -q "$2" "$DIR/a.log" ||
    fail "after SIG$1, sessiond $(kill -0 "$A" 2>/dev/null && echo "did not log '$2'" || echo "is gone")"
}

check_usr() {
  restart
  sent USR1 "SIGUSR1: ignored"
  get_home
  expect_status 200 "a request after SIGUSR1"
  sent USR2 "SIGUSR2: ignored"
  get_home
  expect_status 200 "a request after SIGUSR2"
}

check_hup_log_file() {
  restart --log-file "$DIR/x.log"
  get /before-rotation
  expect_status 404 "a missing page"
  grep -q "before-rotation" "$DIR/x.log" || fail "the log file lacks the 404 before the rotation"
  # logrotate's way: rename the file, then HUP.
  mv "$DIR/x.log" "$DIR/x-rotated.log"
  kill -HUP "$A"
  stack_wait_for "$A" grep -qs "received SIGHUP: reopened" "$DIR/x.log" ||
    fail "no new log file after SIGHUP (sessiond $(kill -0 "$A" 2>/dev/null && echo alive || echo gone))"
  get /after-rotation
  expect_status 404 "a missing page after the rotation"
  grep -q "after-rotation" "$DIR/x.log" || fail "the new log file lacks the 404 after the rotation"
  grep -q "before-rotation" "$DIR/x-rotated.log" || fail "the rotated file lost the earlier lines"
  ! grep -q "after-rotation" "$DIR/x-rotated.log" || fail "sessiond still writes to the rotated file"
}

check_hup_stderr() {
  restart
  sent HUP "received SIGHUP"
  get_home
  expect_status 200 "a request after SIGHUP without --log-file"
}

# drain ARGS...: one request holds the only worker, 5 more are sent straight
# to the socket (a connect() that succeeded is one the kernel accepted,
# whether sessiond has taken it from the backlog yet or not), then SIGTERM,
# then the worker is released: all 6 are answered, and sessiond exits 0.
drain() {
  restart --workers 1 "$@"
  rm -f "$PAGES/block.started"
  [ -p "$PAGES/block.fifo" ] || mkfifo "$PAGES/block.fifo"
  rm -rf "$DIR/drain1" "$DIR/drain5" "$DIR"/drain*.ready
  mkdir "$DIR/drain1" "$DIR/drain5"
  python3 "$CLIENT" requests "unix:$DIR/a.sock" "$PAGES/block" 1 "$DIR/drain1.ready" "$DIR/drain1" &
  local first=$!
  STACK_PIDS="$STACK_PIDS $first"
  stack_wait_for "$A" test -e "$PAGES/block.started" || fail "the blocking page did not start"
  python3 "$CLIENT" requests "unix:$DIR/a.sock" "$PAGES/home" 5 "$DIR/drain5.ready" "$DIR/drain5" &
  local five=$!
  STACK_PIDS="$STACK_PIDS $five"
  stack_wait_for "$five" test -e "$DIR/drain5.ready" || fail "5 requests could not be sent"
  [ -z "${DRAIN_AFTER:-}" ] || stack_wait_for "$A" grep -q "$DRAIN_AFTER" "$DIR/a.log" ||
    fail "sessiond did not log '$DRAIN_AFTER' before SIGTERM"
  sent TERM "stopping"
  release_block
  reap "$first"
  reap "$five"
  expect_eq "$(cat "$DIR/drain1/1")" 200 "the request in flight at SIGTERM"
  local i
  for i in 1 2 3 4 5; do expect_eq "$(cat "$DIR/drain5/$i")" 200 "request $i accepted before SIGTERM"; done
  wait_exit "$A"
  expect_eq "$?" 0 "exit status after draining"
  A=""
}
check_drain() { DRAIN_AFTER="" drain; }
# Two connections at most: of the 5 requests behind the blocked one, one
# waits in the queue and 4 in the kernel's listen backlog at SIGTERM.
check_drain_backlog() { DRAIN_AFTER="max_connections (2) reached" drain --max-connections 2; }

check_inherited() {
  # The socket belongs to a supervisor (spawn-fcgi, systemd): sessiond gets
  # it on fd 0, and after it exits the next sessiond serves the same socket.
  [ -z "$A" ] || stack_kill TERM "$A" || fail "sessiond did not stop cleanly"
  A=""
  rm -f "$DIR/a.sock"
  mkdir "$DIR/inherit"
  python3 "$SESSIOND_SRC/tests/e2e/tools/inherit_socket.py" "$DIR/a.sock" 2 "$DIR/inherit" "$DIR/inherit.log" \
    -- "$SESSIOND" serve $AS_ROOT --db "$DB" --pages "$PAGES" &
  local launcher=$!
  STACK_PIDS="$STACK_PIDS $launcher"
  local n
  for n in 1 2; do
    stack_wait_for "$launcher" test -e "$DIR/inherit/$n.pid" || fail "sessiond #$n on the inherited socket did not start"
    get_home
    expect_status 200 "a request to sessiond #$n on the inherited socket"
    kill -TERM "$(cat "$DIR/inherit/$n.pid")"
    stack_wait_for "$launcher" test -e "$DIR/inherit/$n.rc" || fail "sessiond #$n did not exit after SIGTERM"
    expect_eq "$(cat "$DIR/inherit/$n.rc")" 0 "exit status of sessiond #$n on the inherited socket"
    [ -S "$DIR/a.sock" ] || fail "sessiond #$n removed the socket it inherited"
  done
  stack_kill TERM "$launcher"
}

check_successor() {
  restart
  block_worker
  local old=$A
  sent TERM "stopping"
  # A successor takes the path while the old one still finishes a request.
  : >"$DIR/b.log"
  "$SESSIOND" serve --listen "unix:$DIR/a.sock" --socket-mode 0666 $AS_ROOT --db "$DB" --pages "$PAGES" \
    >>"$DIR/b.log" 2>&1 &
  A=$!
  STACK_PIDS="$STACK_PIDS $A"
  stack_wait_for "$A" grep -q "serving" "$DIR/b.log" || fail "the successor did not start"
  release_block
  reap "$BLOCKED_CURL"
  expect_eq "$(cat "$DIR/blocked")" 200 "the request in flight when the successor started"
  wait_exit "$old"
  expect_eq "$?" 0 "exit status of the sessiond that was succeeded"
  [ -S "$DIR/a.sock" ] || fail "the old sessiond removed its successor's socket"
  get_home
  expect_status 200 "a request to the successor"
}

check_not_a_socket() {
  echo "precious data" >"$DIR/file.sock"
  local out
  out=$(timeout 10 "$SESSIOND" serve --listen "unix:$DIR/file.sock" $AS_ROOT --db "$DB" --pages "$PAGES" 2>&1) &&
    fail "sessiond started on a regular file"
  [[ "$out" == *"not a socket"* ]] || fail "sessiond --listen on a regular file said: $out"
  expect_eq "$(cat "$DIR/file.sock" 2>&1)" "precious data" "the file sessiond was asked to listen on"
}

start_sessiond a
A=$STACK_PID
start_nginx a
for check in ${E2E_CHECKS:-usr hup_log_file hup_stderr drain drain_backlog inherited successor not_a_socket}; do
  "check_$check"
done
