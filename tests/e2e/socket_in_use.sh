#!/bin/bash
# sessiond never deletes a live socket: a second sessiond on the unix path a
# running one listens on exits 2 ("PATH is in use by a running server") and
# leaves it in place, so the first serves on; serve --test says so too. A
# stale socket (nobody listens: a sessiond killed -9) is replaced.
. "$SESSIOND_SRC/tests/e2e/lib.sh"

start_sessiond a
A=$STACK_PID
start_nginx a
login ann
inode=$(stat -c %i "$DIR/a.sock")

out=$(timeout 10 "$SESSIOND" serve --listen "unix:$DIR/a.sock" --db "$DB" --pages "$PAGES" $AS_ROOT 2>&1)
expect_eq "$?" 2 "a second sessiond on the socket of a running one: exit status ($out)"
[[ "$out" == *"$DIR/a.sock is in use by a running server"* ]] || fail "the second sessiond said '$out'"
expect_eq "$(stat -c %i "$DIR/a.sock" 2>&1)" "$inode" "the running sessiond's socket after the second one"
get /home
expect_status 200 "the running sessiond after a second one tried its socket"
expect_body "ann" "the running sessiond after a second one tried its socket"
# Straight to the socket as well (the FastCGI test client, no nginx).
python3 "$SESSIOND_SRC/tests/e2e/tools/fcgi_request.py" "unix:$DIR/a.sock" /home REQUEST_URI=/home \
  >"$DIR/direct" 2>&1 || fail "the running sessiond does not answer on its socket: $(cat "$DIR/direct")"

out=$(timeout 10 "$SESSIOND" serve --test --listen "unix:$DIR/a.sock" --db "$DB" --pages "$PAGES" $AS_ROOT 2>&1 >/dev/null)
expect_eq "$?" 0 "serve --test beside the running sessiond: exit status ($out)"
[[ "$out" == *"$DIR/a.sock is in use by a running server"* ]] || fail "serve --test said '$out'"

# --- A stale socket is replaced.
kill -KILL "$A"
reap "$A"
[ -S "$DIR/a.sock" ] || fail "sessiond killed -9 left no socket behind (nothing stale to test)"
"$SESSIOND" serve --listen "unix:$DIR/a.sock" --db "$DB" --pages "$PAGES" $AS_ROOT --socket-mode 0666 \
  >>"$DIR/a2.log" 2>&1 &
A=$!
STACK_PIDS="$STACK_PIDS $A"
stack_wait_for "$A" grep -q "serving unix:" "$DIR/a2.log" || fail "sessiond did not replace the stale socket"
get /home
expect_status 200 "the sessiond that replaced a stale socket"
expect_body "ann" "the sessiond that replaced a stale socket"

# --- The stack of make run and the tests: a second sessiond on the same name
# (a second `make run`) fails to start, and the running one serves on.
inode=$(stat -c %i "$DIR/a.sock")
! stack_sessiond a --db "$DB" --pages "$PAGES" 2>/dev/null || fail "a second sessiond a started beside the running one"
expect_eq "$(stat -c %i "$DIR/a.sock" 2>&1)" "$inode" "the running sessiond's socket after a second stack_sessiond"
get /home
expect_status 200 "the running sessiond after a second one was started on its socket"
expect_body "ann" "the running sessiond after a second one was started on its socket"
