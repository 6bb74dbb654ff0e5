#!/bin/bash
# sessiond keeps serving when clients misbehave or the server is saturated:
# idle and half-sent connections cost no worker, a flood of half-sent ones
# at the connection limit cannot lock whole requests out, the wait for a worker is
# bounded in length and in time, an oversized parameter block is refused
# while it arrives, memory comes back after large responses, and a read
# whose last-access refresh cannot be written is still answered.
# E2E_CHECKS="name ..." runs only those checks (the functions below).
. "$SESSIOND_SRC/tests/e2e/lib.sh"
CLIENT="$SESSIOND_SRC/tests/e2e/tools/fcgi_client.py"

# background NAME CMD...: runs CMD, stopped with the stack; its pid in $NAME.
background() {
  local name=$1; shift
  "$@" &
  printf -v "$name" '%s' "$!"
  STACK_PIDS="$STACK_PIDS $!"
}
# release_checked: lets the blocked page finish; it must have been answered 200.
release_checked() {
  release_block
  reap "$BLOCKED_CURL"
  expect_eq "$(cat "$DIR/blocked")" 200 "the request that held the worker"
}
# get_home: GET /home through nginx; a server that cannot answer fails it in
# 20 s (the old server waited for ever).
get_home() {
  : >"$DIR/body"
  STATUS=$(curl -s -o "$DIR/body" -w '%{http_code}' --max-time 20 "$(BASE)/home") || STATUS="curl failed ($?)"
}
stop_pid() { kill "$1" 2>/dev/null; reap "$1" 2>/dev/null; }

check_idle_unix() {
  restart
  # Idle connections, and requests whose body never comes: no worker waits
  # on them, so a normal request is served at once.
  background IDLE python3 "$CLIENT" hold-idle "unix:$DIR/a.sock" 500 "$DIR/idle.ready"
  background PARTIAL python3 "$CLIENT" hold-partial "unix:$DIR/a.sock" "$PAGES/echo" 16 "$DIR/partial.ready"
  stack_wait_for "$IDLE" test -e "$DIR/idle.ready" || fail "500 idle connections could not be opened"
  stack_wait_for "$PARTIAL" test -e "$DIR/partial.ready" || fail "16 half-sent requests could not be sent"
  get_home
  expect_status 200 "a request while 500 idle connections and 16 half-sent requests are open"
  stop_pid "$IDLE"
  stop_pid "$PARTIAL"
}

# The same over TCP: a second sessiond on 127.0.0.1, a request straight from
# the raw client.
check_idle_tcp() {
  local port try=0
  while :; do
    try=$((try + 1))
    port=$(stack_random_port)
    : >"$DIR/tcp.log"
    background TCP "$SESSIOND" serve --listen "127.0.0.1:$port" $AS_ROOT --db "$DB" --pages "$PAGES" \
      >>"$DIR/tcp.log" 2>&1
    stack_wait_for "$TCP" grep -q "serving" "$DIR/tcp.log" && break
    stop_pid "$TCP"
    # Another program had the port: try another one.
    if [ "$try" -ge 10 ] || ! grep -q "in use" "$DIR/tcp.log"; then
      fail "sessiond on 127.0.0.1:$port did not start"
    fi
  done
  background IDLE python3 "$CLIENT" hold-idle "127.0.0.1:$port" 16 "$DIR/tcp-idle.ready"
  stack_wait_for "$IDLE" test -e "$DIR/tcp-idle.ready" || fail "16 idle TCP connections could not be opened"
  mkdir "$DIR/tcp-out"
  python3 "$CLIENT" --timeout 20 requests "127.0.0.1:$port" "$PAGES/home" 1 "$DIR/tcp.ready" "$DIR/tcp-out"
  expect_eq "$(cat "$DIR/tcp-out/1")" 200 "a request over TCP while 16 idle TCP connections are open"
  stop_pid "$IDLE"
  stack_kill TERM "$TCP" || fail "the TCP sessiond did not stop cleanly"
}

# A flood of half-sent requests as large as --max-connections: a whole
# request still gets in, answered while the half-sent ones (but the one
# closed to make room for it, answered 503) are still open. --io-timeout is
# far longer than the client waits: the answer cannot be the timeout's.
check_flood() {
  restart --max-connections 8 --io-timeout 300s
  local out
  out=$(python3 "$CLIENT" --timeout 20 flood "unix:$DIR/a.sock" "$PAGES/home" 8) ||
    fail "a whole request behind 8 half-sent ones at --max-connections 8 got no answer"
  expect_eq "$out" "status=200 open=7 answered=1 closed=0" "a whole request behind a flood of half-sent ones"
  grep -q "max_connections (8) reached: closed the request that has been arriving longest" "$DIR/a.log" ||
    fail "no log line for the request closed to make room"
}

check_queue_size() {
  restart --workers 1 --queue-size 1
  block_worker
  # Two more requests: one waits in the queue, the other finds it full and
  # is refused at once, while the first is still blocked.
  in_background "$DIR/second" /home
  local second=$BG
  in_background "$DIR/third" /home
  local third=$BG
  stack_wait_for "$A" eval 'test -s "$DIR/second" || test -s "$DIR/third"' ||
    fail "no request was refused while the only worker was busy and the queue full"
  local refused waiting
  if [ -s "$DIR/second" ]; then
    refused=second; waiting=$third; reap "$second"
  else
    refused=third; waiting=$second; reap "$third"
  fi
  [ -s "$DIR/blocked" ] && fail "the blocked request finished before it was released"
  expect_eq "$(cat "$DIR/$refused")" 503 "a request beyond --queue-size"
  grep -q "queue_size" "$DIR/a.log" || fail "no log line naming queue_size"
  release_checked
  reap "$waiting"
  expect_eq "$(printf '%s\n' "$(cat "$DIR/second")" "$(cat "$DIR/third")" | sort | tr '\n' ' ')" "200 503 " \
    "the queued request after the worker was released"
}

check_queue_timeout() {
  restart --workers 1 --queue-timeout 200ms
  block_worker
  in_background "$DIR/queued" /home
  local queued=$BG
  # The passage of time is what this checks: the request must wait in the
  # queue for longer than --queue-timeout (200 ms), so the worker stays held
  # for clearly longer than that. Nothing else is waited for by sleeping.
  sleep 1
  release_checked
  reap "$queued"
  expect_eq "$(cat "$DIR/queued")" 503 "a request that waited longer than --queue-timeout"
  grep -q "queue_timeout" "$DIR/a.log" || fail "no log line naming queue_timeout"
}

check_huge_params() {
  restart
  local total=100000000
  python3 "$CLIENT" huge-params "unix:$DIR/a.sock" "$total" "$DIR/huge.ready" >"$DIR/huge.out" &
  local huge=$!
  STACK_PIDS="$STACK_PIDS $huge"
  stack_wait_for "$huge" test -e "$DIR/huge.ready" || fail "the huge parameter block could not be started"
  get_home
  expect_status 200 "a request while a 100 MB parameter block is being sent"
  reap "$huge" || fail "the raw client failed: $(cat "$DIR/huge.out")"
  local out status sent closed
  out=$(cat "$DIR/huge.out")
  read -r status sent closed <<<"$out"
  expect_eq "$status" status=400 "answer to a 100 MB parameter block ($out)"
  expect_eq "$closed" closed=yes "connection of a 100 MB parameter block ($out)"
  [ "${sent#sent=}" -lt $((total / 10)) ] || fail "the connection was closed only after $sent of $total bytes"
  grep -q "max_params_bytes" "$DIR/a.log" || fail "no log line naming max_params_bytes"
}

check_memory() {
  restart --max-output-bytes 16MiB
  local round i pids
  for round in 1 2 3; do
    pids=()
    for i in $(seq 1 16); do
      in_background "$DIR/big.$round.$i" /big
      pids+=("$BG")
    done
    for i in "${pids[@]}"; do reap "$i"; done
    for i in $(seq 1 16); do expect_eq "$(cat "$DIR/big.$round.$i")" 200 "8 MiB response $i of round $round"; done
  done
  # Memory is given back once the server is idle: wait up to ~3 s for it.
  # Under AddressSanitizer freed memory stays in its quarantine by design:
  # there the responses above are the check, and the normal build the bound.
  [ "${SESSIOND_SANITIZED:-0}" = 1 ] && return 0
  local rss i=0
  while :; do
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$A/status")
    [ "$rss" -lt 65536 ] && break
    i=$((i + 1))
    [ "$i" -le 150 ] || fail "sessiond holds $rss kB after 48 responses of 8 MiB (limit 65536 kB)"
    sleep 0.02
  done
}

check_refresh_busy() {
  restart --idle-timeout 60s --busy-timeout 200ms
  rm -f "$JAR"
  login Grace
  # The last access is 30 s old: half the idle window, so this read is due
  # to refresh it.
  sql "UPDATE sessions SET accessed = accessed - 30 WHERE id_hash = sha3('$(cookie)', 256)"
  # An operator's sqlite3 shell takes the write lock and keeps it.
  hold_write_lock
  get /home
  expect_status 200 "a read whose last-access refresh cannot be written"
  expect_body "Grace" "a read whose last-access refresh cannot be written"
  release_write_lock
}

# Requests whose client went away while they waited for a worker: nginx
# closes its connection to sessiond (and logs 499), and the page never runs
# (each run of /mark leaves a line in mark.log), so clients that send and
# hang up at once cannot keep the workers busy for nobody.
check_client_gone() {
  restart --workers 1
  rm -f "$PAGES/mark.log"
  block_worker
  local pids="" p
  for p in 1 2 3 4 5; do
    curl -s -o /dev/null --max-time 1 "$(BASE)/mark?$p" &
    pids="$pids $!"
  done
  for p in $pids; do wait "$p"; done
  stack_wait_for "$A" eval '[ "$(grep -c "GET /mark?[0-9] HTTP/1.1\" 499 " "$DIR/nginx-access.log")" -ge 5 ]' ||
    fail "nginx did not give up the 5 requests whose clients left"
  release_checked
  get /home
  expect_status 200 "a request after the ones whose clients left"
  [ ! -e "$PAGES/mark.log" ] || fail "pages ran for clients that had gone: $(tr '\n' ' ' <"$PAGES/mark.log")"
  expect_eq "$(grep -c 'its client went away' "$DIR/a.log")" 5 "log lines for the requests not run"
}

start_sessiond a
A=$STACK_PID
start_nginx a
for check in ${E2E_CHECKS:-idle_unix idle_tcp flood queue_size queue_timeout huge_params memory refresh_busy client_gone}; do
  "check_$check"
done
