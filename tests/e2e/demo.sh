#!/bin/bash
# The demo itself (scripts/demo, what `make run` runs), as the README tells a
# newcomer to use it: it serves on PORT, a login survives kill -9 of its
# sessiond (the demo starts another), a second demo on the same state
# directory is refused without touching it (also when only the first one's
# sessiond is left), and Ctrl-C (SIGINT) stops nginx and sessiond and exits 0. With its port taken by another web server it says
# so, exits non-zero, prints no banner, and leaves nothing running.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
DEMO="$SESSIOND_SRC/scripts/demo"

# alive PID: the process exists and is not a zombie.
alive() {
  local state
  state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) && [ "$state" != Z ]
}
# wait_exit PID: waits (bounded) for a child of ours that was told to stop,
# forgets it, and returns its exit status.
wait_exit() {
  local i=0
  while alive "$1"; do
    i=$((i + 1))
    [ "$i" -le 1500 ] || { echo "process $1 did not exit" >&2; return 124; }
    sleep 0.02
  done
  wait "$1"
  local status=$?
  stack_forget "$1"
  return "$status"
}
# start_demo STATEDIR PORT: scripts/demo in the background, its pid in
# DEMO_PID, its output in STATEDIR.out and STATEDIR.err. A background job of
# a script starts with SIGINT ignored, which no trap can undo: give the demo
# SIGINT back, as a terminal's Ctrl-C reaches it.
start_demo() {
  mkdir -p "$1"
  : >"$1.out"; : >"$1.err"
  DEMO_DIR=$1 PORT=$2 env --default-signal=INT "$DEMO" "$SESSIOND" >"$1.out" 2>"$1.err" &
  DEMO_PID=$!
  STACK_PIDS="$STACK_PIDS $DEMO_PID"
}
# nothing_left STATEDIR WHAT: no process of that demo runs: no sessiond or
# nginx names its state directory on its command line, and none of the pids
# it reported lives.
nothing_left() {
  local p
  if p=$(pgrep -f -- "$1/" | tr '\n' ' ') && [ -n "$p" ]; then
    for pid in $p; do alive "$pid" && fail "$2: left running: $(ps -o pid=,args= -p "$pid")"; done
  fi
  for pid in "${@:3}"; do alive "$pid" && fail "$2: pid $pid is still running"; done
  return 0
}
# When a check fails, the demo may have left its nginx and sessiond behind
# (that is what this test looks for): stop each by its pid, found through
# the test's own state directory on its command line.
demo_cleanup() {
  local pid
  for pid in $(pgrep -f -- "$DIR/demo"); do
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$DIR/demo" && kill -TERM "$pid" 2>/dev/null
  done
  cleanup
}
trap demo_cleanup EXIT
demo_log() { for f in "$1.out" "$1.err" "$1"/*.log; do [ -s "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }; done; }

# --- It serves, survives kill -9 of sessiond, and Ctrl-C stops it cleanly.
D1="$DIR/demo1"
PORT1=$(stack_random_port) || fail "no free port"
start_demo "$D1" "$PORT1"
stack_wait_for "$DEMO_PID" grep -q "^sessiond demo: http://127.0.0.1:$PORT1/" "$D1.out" ||
  fail "the demo printed no banner: $(demo_log "$D1")"
STACK_PORT=$PORT1
FIRST=$(sed -n 's/^  sessiond pid \([0-9]*\) .*/\1/p' "$D1.out")
NGINX=$(cat "$D1/nginx.pid")
[ -n "$FIRST" ] && [ -n "$NGINX" ] || fail "no sessiond or nginx pid: $(demo_log "$D1")"

login ann
get /home
expect_body "ann" "home after the login"

kill -KILL "$FIRST"
stack_wait_for "$DEMO_PID" grep -q "^sessiond pid [0-9]" "$D1.err" ||
  fail "the demo did not start sessiond again: $(demo_log "$D1")"
SECOND=$(sed -n 's/^sessiond pid \([0-9]*\)$/\1/p' "$D1.err")
[ "$SECOND" != "$FIRST" ] || fail "the same sessiond pid after kill -9"
get /home
expect_status 200 "home after kill -9 of sessiond"
expect_body "ann" "still logged in after kill -9 of sessiond"

# A second demo on the same state directory and port (make run again while
# one runs): it says the first runs, exits non-zero, and leaves it serving
# (it used to remove the first one's socket: every page a 502).
DEMO_DIR=$D1 PORT=$PORT1 timeout 60 "$DEMO" "$SESSIOND" >"$DIR/again.out" 2>"$DIR/again.err"
status=$?
[ "$status" != 0 ] && [ "$status" != 124 ] || fail "a second demo exited $status: $(cat "$DIR/again.out" "$DIR/again.err")"
grep -q "already running on http://127.0.0.1:$PORT1/" "$DIR/again.err" ||
  fail "a second demo did not say the first runs: $(cat "$DIR/again.err")"
! grep -q "sessiond demo: http" "$DIR/again.out" || fail "a second demo printed a banner"
[ -S "$D1/sessiond.sock" ] || fail "a second demo removed the first one's socket"
get /home
expect_status 200 "home after a second demo was refused"
expect_body "ann" "still logged in after a second demo was refused"

kill -INT "$DEMO_PID"
wait_exit "$DEMO_PID"
status=$?
[ "$status" = 0 ] || fail "the demo exited $status after SIGINT: $(demo_log "$D1")"
nothing_left "$D1" "after SIGINT" "$SECOND" "$NGINX"
! ss -Hltn "sport = :$PORT1" | grep -q . || fail "port $PORT1 still listens after the demo stopped"
[ ! -e "$D1/sessiond.sock" ] || fail "sessiond's socket is left after the demo stopped"

# --- Its port is taken by another web server: a clear error, nothing left.
D2="$DIR/demo2"
PORT2=$(stack_random_port) || fail "no free port"
mkdir -p "$DIR/other-www"
python3 -m http.server --bind 127.0.0.1 --directory "$DIR/other-www" "$PORT2" >"$DIR/other-www.log" 2>&1 &
OTHER=$!
STACK_PIDS="$STACK_PIDS $OTHER"
stack_wait_for "$OTHER" curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$PORT2/" ||
  fail "the other web server did not start: $(cat "$DIR/other-www.log")"
start_demo "$D2" "$PORT2"
wait_exit "$DEMO_PID"
status=$?
[ "$status" != 0 ] && [ "$status" != 124 ] || fail "the demo exited $status with port $PORT2 taken: $(demo_log "$D2")"
! grep -q "sessiond demo: http" "$D2.out" || fail "the demo printed its banner although nginx failed: $(demo_log "$D2")"
grep -q "could not serve 127.0.0.1:$PORT2" "$D2.err" || fail "the demo did not say why: $(demo_log "$D2")"
nothing_left "$D2" "with the port taken"
[ ! -e "$D2/sessiond.sock" ] || fail "sessiond's socket is left after the demo failed"
alive "$OTHER" || fail "the other web server died"
stack_kill TERM "$OTHER"

# --- A demo whose script was killed (kill -9) left its sessiond and nginx
# running: a new demo on that state directory says so and leaves them be.
D3="$DIR/demo3"
PORT3=$(stack_random_port) || fail "no free port"
start_demo "$D3" "$PORT3"
stack_wait_for "$DEMO_PID" grep -q "^sessiond demo: http://127.0.0.1:$PORT3/" "$D3.out" ||
  fail "the third demo printed no banner: $(demo_log "$D3")"
LEFT=$(sed -n 's/^  sessiond pid \([0-9]*\) .*/\1/p' "$D3.out")
NGINX=$(cat "$D3/nginx.pid")
kill -KILL "$DEMO_PID"
wait_exit "$DEMO_PID"
PORT4=$(stack_random_port) || fail "no free port"
DEMO_DIR=$D3 PORT=$PORT4 timeout 60 "$DEMO" "$SESSIOND" >"$DIR/again.out" 2>"$DIR/again.err"
status=$?
[ "$status" != 0 ] && [ "$status" != 124 ] || fail "a demo beside a left sessiond exited $status: $(cat "$DIR/again.err")"
grep -q "already running on http://127.0.0.1:$PORT3/ (its sessiond listens" "$DIR/again.err" ||
  fail "a demo beside a left sessiond did not say it runs: $(cat "$DIR/again.err")"
STACK_PORT=$PORT3
get /home
expect_status 200 "home through the left demo"
kill -TERM "$LEFT" "$NGINX"
for i in $(seq 500); do { alive "$LEFT" || alive "$NGINX"; } || break; sleep 0.02; done
nothing_left "$D3" "after stopping what the killed demo left" "$LEFT" "$NGINX"
exit 0
