#!/bin/bash
# 20 requests of one session at once, each setting its own key: all 20 kept.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
start_sessiond a
start_nginx a

get "/set?start=1"
expect_status 200 "first write"
pids=()
for i in $(seq 1 20); do
  curl -s -o "$DIR/out.$i" -w '%{http_code}' -b "$JAR" --max-time 30 "$(BASE)/set?key$i=value$i" \
    >"$DIR/status.$i" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent request failed"; done
for i in $(seq 1 20); do expect_eq "$(cat "$DIR/status.$i")" 200 "concurrent request $i"; done
get /dump
for i in $(seq 1 20); do expect_body "SESSION_VAR_key$i=value$i" "key $i after 20 concurrent writes"; done
expect_eq "$(sql 'SELECT count(*) FROM sessions')" 1 "sessions after concurrent writes"
expect_eq "$(sql 'SELECT count(*) FROM items')" 21 "items after concurrent writes"
