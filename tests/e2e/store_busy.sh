#!/bin/bash
# Another writer holding the SQLite file past --busy-timeout: 503, nothing
# half-written; once it lets go, writes succeed.
. "$SESSIOND_SRC/tests/e2e/lib.sh"
start_sessiond a --busy-timeout 200ms
start_nginx a
get "/set?a=1"
expect_status 200 "first write"

# An operator's sqlite3 shell takes the write lock and keeps it.
hold_write_lock

get "/set?a=2"
expect_status 503 "write while another writer holds the lock"
grep -q "503 GET /set: store:" "$DIR/a.log" || fail "no log line for the busy store"
get /home
expect_status 200 "a read while another writer holds the lock"

release_write_lock
get /dump
expect_body "^HTTP_SESSION=a=1$" "session after the refused write"
get "/set?a=3"
expect_status 200 "write after the lock is released"
