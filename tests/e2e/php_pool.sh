#!/bin/bash
# A stock php-fpm pool behind sessiond, smaller than the burst: real nginx ->
# real sessiond -> real php-fpm (pm = static with 2 workers, pm = dynamic
# with max_children = 5). Bursts of 4x the pool in parallel, reads and
# writes of one session (each write its own key) and of many sessions:
# every request answered 200 (none waits for the page timeout), every key
# kept. Without connections=N nothing is kept open (each request waits only
# for a free worker); with connections=N (N <= a static pool) requests wait
# inside sessiond for one of the N, and past --queue-timeout get a prompt
# 503 with Retry-After, never a hang.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
php_www
chmod 777 "$DIR"
stack_php_location "$WWW" php
FPM=""
# pool LINE...: php-fpm anew with these pool lines.
pool() {
  [ -z "$FPM" ] || stack_kill TERM "$FPM" || fail "php-fpm did not stop cleanly"
  stack_php_fpm php "$@" || fail "php-fpm did not start"
  FPM=$STACK_PID
}

# burst N WHAT: N requests of one session at once (odd ones write key kI,
# even ones read), then N requests of N new sessions at once (each writes
# its key), each a 50 ms page; all 200, all keys kept.
burst() {
  local n=$1 what=$2 i pids=()
  rm -f "$JAR"
  get "/pool?set[init]=1" -g
  expect_status 200 "$what: the session's first request"
  for i in $(seq 1 "$n"); do
    if [ $((i % 2)) = 1 ]; then q="set[k$i]=v$i&ms=50"; else q="ms=50"; fi
    curl -s -g -o /dev/null -w '%{http_code}' -b "$JAR" --max-time 60 "$(BASE)/pool?$q" >"$DIR/one.$i" &
    pids+=($!)
    curl -s -g -o /dev/null -w '%{http_code}' -c "$DIR/jar.$i" --max-time 60 "$(BASE)/pool?set[mine]=m$i&ms=50" \
      >"$DIR/many.$i" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  for i in $(seq 1 "$n"); do
    expect_eq "$(cat "$DIR/one.$i")" 200 "$what: request $i of one session"
    expect_eq "$(cat "$DIR/many.$i")" 200 "$what: request $i of many sessions"
  done
  get /pool
  for i in $(seq 1 2 "$n"); do expect_body "^k$i=v$i\$" "$what: key k$i of one session"; done
  for i in $(seq 1 "$n"); do
    JAR="$DIR/jar.$i" get /pool
    expect_body "^mine=m$i\$" "$what: the session of request $i"
  done
  ! grep -q " 50[0-9] " "$DIR/a.log" || fail "$what: sessiond logged failures: $(grep " 50[0-9] " "$DIR/a.log" | head -n 3)"
}

pool "pm = static" "pm.max_children = 2"
restart --app "php=unix:$DIR/php.sock" --page-timeout 20
start_nginx a
burst 8 "static 2, no kept connections"
restart --app "php=unix:$DIR/php.sock,connections=2" --page-timeout 20
burst 8 "static 2, connections=2"

pool "pm = dynamic" "pm.max_children = 5" "pm.start_servers = 2" "pm.min_spare_servers = 1" "pm.max_spare_servers = 3"
restart --app "php=unix:$DIR/php.sock" --page-timeout 20
burst 20 "dynamic 5, no kept connections"
# (No kept connections with pm = dynamic: php-fpm stops idle workers, and
# their kept connections with them; README, "Connections to an application".)

# --- All N connections busy past --queue-timeout: a prompt 503, Retry-After.
restart --app "php=unix:$DIR/php.sock,connections=1" --queue-timeout 0.5 --page-timeout 20
touch "$DIR/hold"
in_background "$DIR/held" "/pool?started=$DIR/started&hold=$DIR/hold"
HELD=$BG
stack_wait_for "$A" test -s "$DIR/started" || fail "the holding page did not start"
get /pool
expect_status 503 "a request while the one connection is busy"
expect_eq "$(header Retry-After)" 1 "Retry-After of the 503"
grep -q "503 GET /pool.php: app php: all 1 connections busy" "$DIR/a.log" || fail "no log line for the 503"
rm -f "$DIR/hold"
reap "$HELD"
expect_eq "$(cat "$DIR/held")" 200 "the request that held the connection"
get /pool
expect_status 200 "a request once the connection is free"
exit 0
