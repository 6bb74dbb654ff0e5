#!/bin/bash
# 8 requests of one session that provably run at once (a barrier page: each
# waits until all 8 have arrived, or fails), each setting its own key: all 8
# answered and all 8 keys kept (changes merge per key).
. "$SESSIOND_SRC/tests/e2e/lib.sh"
start_sessiond a --workers 16
start_nginx a

get "/set?start=1"
expect_status 200 "first write"
rm -rf "$PAGES/barrier.d"
pids=()
for i in $(seq 1 8); do
  curl -s -o "$DIR/out.$i" -w '%{http_code}' -b "$JAR" --max-time 30 "$(BASE)/barrier?n=8&k=key$i" \
    >"$DIR/status.$i" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent request failed"; done
for i in $(seq 1 8); do
  expect_eq "$(cat "$DIR/status.$i")" 200 "request $i of 8 at the barrier ($(cat "$DIR/out.$i"))"
done
get /dump
for i in $(seq 1 8); do expect_body "SESSION_VAR_key$i=here" "key $i after 8 concurrent writes"; done
expect_eq "$(sql 'SELECT count(*) FROM sessions')" 1 "sessions after concurrent writes"
expect_eq "$(sql 'SELECT count(*) FROM items')" 9 "items after concurrent writes"
